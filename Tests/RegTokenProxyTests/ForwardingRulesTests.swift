import Foundation
import RegToken
import RegTokenAccess
import Testing

/// The forwarding rules of `AccessPolicy.decide(head:)` as a table: framing, bodies, Connection,
/// control bytes, Host, form bodies; and the headers sent upstream.
@Suite("The proxy's forwarding rules (framing, bodies, form parameters)")
struct ForwardingRulesTests {
    static let rw = AccessDecisionTests.basic(AccessDecisionTests.rw)

    struct Case: CustomTestStringConvertible, Sendable {
        let name: String
        let method: String
        let target: String
        let headers: [(name: String, value: String)]
        var version: (major: Int, minor: Int) = (1, 1)
        /// Allowed with this framing, or refused with 400 and this reason (and close).
        let expected: Either
        var testDescription: String { name }

        enum Either: Sendable {
            case allowed(BodyFraming)
            case refused(DenyReason, close: Bool)
        }
    }

    static let d = AccessDecisionTests.d
    static func h(_ extra: [(String, String)]) -> [(name: String, value: String)] {
        [("Host", "registry.example"), ("Authorization", rw)] + extra.map { (name: $0.0, value: $0.1) }
    }

    static let cases: [Case] = [
        Case(name: "plain GET", method: "GET", target: "/v2/acme/app/manifests/v1", headers: h([]), expected: .allowed(.none)),
        Case(name: "GET with Content-Length: 0", method: "GET", target: "/v2/acme/app/manifests/v1", headers: h([("Content-Length", "0")]), expected: .allowed(.none)),
        Case(name: "PATCH with a length", method: "PATCH", target: "/v2/acme/app/blobs/uploads/u1", headers: h([("Content-Type", "application/octet-stream"), ("Content-Length", "0042")]), expected: .allowed(.length(42))),
        Case(name: "PATCH chunked, any case", method: "PATCH", target: "/v2/acme/app/blobs/uploads/u1", headers: h([("Content-Type", "application/octet-stream"), ("Transfer-Encoding", " ChUnKeD ")]), expected: .allowed(.chunked)),
        Case(name: "PUT upload, no body, no type", method: "PUT", target: "/v2/acme/app/blobs/uploads/u1?digest=\(d)", headers: h([("Content-Length", "0")]), expected: .allowed(.none)),
        Case(name: "PUT manifest", method: "PUT", target: "/v2/acme/app/manifests/v1", headers: h([("Content-Type", "application/vnd.oci.image.manifest.v1+json"), ("Content-Length", "2")]), expected: .allowed(.length(2))),
        Case(name: "POST upload, empty", method: "POST", target: "/v2/acme/app/blobs/uploads/", headers: h([("Content-Length", "0")]), expected: .allowed(.none)),
        Case(name: "HTTP/1.0 without Host", method: "GET", target: "/v2/", headers: [("Authorization", rw)], version: (1, 0), expected: .allowed(.none)),

        Case(name: "GET chunked", method: "GET", target: "/v2/acme/app/manifests/v1", headers: h([("Transfer-Encoding", "chunked")]), expected: .refused(.ambiguousFraming, close: true)),
        Case(name: "HEAD with a body", method: "HEAD", target: "/v2/acme/app/manifests/v1", headers: h([("Content-Length", "5")]), expected: .refused(.ambiguousFraming, close: true)),
        Case(name: "DELETE with a body", method: "DELETE", target: "/v2/acme/app/manifests/\(d)", headers: h([("Content-Length", "5")]), expected: .refused(.ambiguousFraming, close: true)),
        Case(name: "POST with a body", method: "POST", target: "/v2/acme/app/blobs/uploads/", headers: h([("Content-Type", "application/octet-stream"), ("Content-Length", "5")]), expected: .refused(.ambiguousFraming, close: true)),
        Case(name: "gzip, chunked", method: "PATCH", target: "/v2/acme/app/blobs/uploads/u1", headers: h([("Transfer-Encoding", "gzip, chunked")]), expected: .refused(.ambiguousFraming, close: true)),
        Case(name: "two Transfer-Encodings", method: "PATCH", target: "/v2/acme/app/blobs/uploads/u1", headers: h([("Transfer-Encoding", "chunked"), ("Transfer-Encoding", "chunked")]), expected: .refused(.ambiguousFraming, close: true)),
        Case(name: "CL and TE", method: "PATCH", target: "/v2/acme/app/blobs/uploads/u1", headers: h([("Content-Length", "3"), ("Transfer-Encoding", "chunked")]), expected: .refused(.ambiguousFraming, close: true)),
        Case(name: "two CLs, same value", method: "PATCH", target: "/v2/acme/app/blobs/uploads/u1", headers: h([("Content-Length", "3"), ("Content-Length", "3")]), expected: .refused(.ambiguousFraming, close: true)),
        Case(name: "CL list", method: "PATCH", target: "/v2/acme/app/blobs/uploads/u1", headers: h([("Content-Length", "3, 3")]), expected: .refused(.ambiguousFraming, close: true)),
        Case(name: "CL signed", method: "PATCH", target: "/v2/acme/app/blobs/uploads/u1", headers: h([("Content-Length", "+3")]), expected: .refused(.ambiguousFraming, close: true)),
        Case(name: "CL huge", method: "PATCH", target: "/v2/acme/app/blobs/uploads/u1", headers: h([("Content-Length", "99999999999999999999")]), expected: .refused(.ambiguousFraming, close: true)),
        Case(name: "HTTP/1.0 chunked", method: "PATCH", target: "/v2/acme/app/blobs/uploads/u1", headers: h([("Transfer-Encoding", "chunked")]), version: (1, 0), expected: .refused(.ambiguousFraming, close: true)),
        Case(name: "Connection: Content-Length", method: "GET", target: "/v2/", headers: h([("Connection", "keep-alive, Content-Length")]), expected: .refused(.ambiguousFraming, close: true)),
        Case(name: "Connection: authorization", method: "GET", target: "/v2/", headers: h([("Connection", "authorization")]), expected: .refused(.ambiguousFraming, close: true)),
        Case(name: "Connection: X-Forwarded-For", method: "GET", target: "/v2/", headers: h([("Connection", "X-Forwarded-For")]), expected: .refused(.ambiguousFraming, close: true)),
        Case(name: "CR in a value", method: "GET", target: "/v2/", headers: h([("X-A", "a\r\nTransfer-Encoding: chunked")]), expected: .refused(.ambiguousFraming, close: true)),
        Case(name: "NUL in a value", method: "GET", target: "/v2/", headers: h([("X-A", "a\u{0}b")]), expected: .refused(.ambiguousFraming, close: true)),
        Case(name: "two Hosts", method: "GET", target: "/v2/", headers: h([("host", "other")]), expected: .refused(.ambiguousFraming, close: true)),
        Case(name: "HTTP/1.1 without Host", method: "GET", target: "/v2/", headers: [("Authorization", rw)], expected: .refused(.ambiguousFraming, close: true)),
        Case(name: "CL and TE, names in other letter cases", method: "PATCH", target: "/v2/acme/app/blobs/uploads/u1", headers: h([("cOnTeNt-LeNgTh", "3"), ("TRANSFER-ENCODING", "chunked")]), expected: .refused(.ambiguousFraming, close: true)),
        Case(name: "CONNECTION: HOST", method: "GET", target: "/v2/", headers: h([("CONNECTION", "HOST")]), expected: .refused(.ambiguousFraming, close: true)),
        Case(name: "two Hosts, one upper case", method: "GET", target: "/v2/", headers: h([("HOST", "other")]), expected: .refused(.ambiguousFraming, close: true)),
        Case(name: "two Content-Types", method: "PUT", target: "/v2/acme/app/manifests/v1", headers: h([("Content-Type", "application/json"), ("Content-Type", "application/json"), ("Content-Length", "2")]), expected: .refused(.ambiguousFraming, close: true)),

        Case(name: "PATCH as a form", method: "PATCH", target: "/v2/acme/app/blobs/uploads/u1", headers: h([("Content-Type", "application/x-www-form-urlencoded"), ("Content-Length", "3")]), expected: .refused(.formBody, close: true)),
        Case(name: "PATCH with no type and a body", method: "PATCH", target: "/v2/acme/app/blobs/uploads/u1", headers: h([("Content-Length", "3")]), expected: .refused(.formBody, close: true)),
        Case(name: "PATCH text/plain", method: "PATCH", target: "/v2/acme/app/blobs/uploads/u1", headers: h([("Content-Type", "text/plain"), ("Content-Length", "3")]), expected: .refused(.formBody, close: true)),
        Case(name: "POST typed as a form, empty", method: "POST", target: "/v2/acme/app/blobs/uploads/", headers: h([("Content-Type", "application/x-www-form-urlencoded"), ("Content-Length", "0")]), expected: .refused(.formBody, close: false)),
        Case(name: "PUT manifest as multipart", method: "PUT", target: "/v2/acme/app/manifests/v1", headers: h([("Content-Type", "Multipart/Form-Data; boundary=x"), ("Content-Length", "3")]), expected: .refused(.formBody, close: true)),
        Case(name: "PUT manifest, non-ASCII type", method: "PUT", target: "/v2/acme/app/manifests/v1", headers: h([("Content-Type", "\u{a0}application/x-www-form-urlencoded"), ("Content-Length", "3")]), expected: .refused(.formBody, close: true)),
        Case(name: "octet-stream with a parameter", method: "PATCH", target: "/v2/acme/app/blobs/uploads/u1", headers: h([("Content-Type", "Application/Octet-Stream; x=y"), ("Content-Length", "3")]), expected: .allowed(.length(3))),
        Case(name: "semicolon in the query", method: "POST", target: "/v2/acme/app/blobs/uploads/?mount=\(d);from=globex/app", headers: h([("Content-Length", "0")]), expected: .refused(.ambiguousPath, close: false)),
    ]

    @Test("forwarding rules table", arguments: cases)
    func table(_ c: Case) {
        let head = RequestHead(method: c.method, target: c.target, version: c.version, headers: c.headers)
        let decision = AccessDecisionTests.policy.decide(head: head, verifier: AccessDecisionTests.verifier, now: AccessDecisionTests.now)
        switch (decision, c.expected) {
        case (.allow(let a), .allowed(let framing)):
            #expect(a.framing == framing)
        case (.deny(let d), .refused(let reason, let close)):
            #expect(d.status == 400)
            #expect(d.reason == reason, "\(d.message)")
            #expect(d.close == close)
            #expect(!d.message.contains(AccessDecisionTests.rw))
        case (.allow, let e):
            Issue.record("allowed, expected \(e)")
        case (.deny(let d), let e):
            Issue.record("denied \(d.status) \(d.reason) \(d.message), expected \(e)")
        }
    }

    @Test("a refused request with a body closes the connection; without one it does not")
    func refusedWithBody() {
        let p = AccessDecisionTests.policy
        let v = AccessDecisionTests.verifier
        let ro = AccessDecisionTests.basic(AccessDecisionTests.ro)
        let push = RequestHead(method: "PATCH", target: "/v2/acme/app/blobs/uploads/u1",
                               headers: [("Host", "r"), ("Authorization", ro), ("Content-Type", "application/octet-stream"), ("Content-Length", "9")])
        guard case .deny(let d) = p.decide(head: push, verifier: v, now: AccessDecisionTests.now) else { Issue.record("allowed"); return }
        #expect(d.status == 403 && d.close)
        let pull = RequestHead(method: "GET", target: "/v2/globex/app/manifests/v1", headers: [("Host", "r"), ("Authorization", ro)])
        guard case .deny(let d2) = p.decide(head: pull, verifier: v, now: AccessDecisionTests.now) else { Issue.record("allowed"); return }
        #expect(d2.status == 403 && !d2.close)
    }

    @Test("upstream headers: client order kept, framing, credentials, hop-by-hop, named and forwarding headers replaced by the proxy's own")
    func upstreamHeaders() {
        let head = RequestHead(method: "PATCH", target: "/v2/acme/app/blobs/uploads/u1", headers: [
            ("Host", "registry.example:8443"), ("Authorization", Self.rw), ("Accept", "a"), ("accept", "b"),
            ("Connection", "keep-alive, X-Drop-Me"), ("X-Drop-Me", "1"), ("Keep-Alive", "timeout=5"), ("TE", "trailers"),
            ("Transfer-Encoding", "Chunked"), ("Content-Type", "application/octet-stream"),
            ("X-Forwarded-For", "6.6.6.6"), ("x-forwarded-host", "evil"), ("X-Forwarded-Proto", "https"), ("Forwarded", "for=6.6.6.6"),
            ("X-Real-IP", "6.6.6.6"), ("Upgrade", "h2c"), ("Proxy-Authorization", "x"), ("Trailer", "X"),
        ])
        let out = ForwardedHeaders.upstream(head, framing: .chunked, scheme: "http", clientAddress: "127.0.0.1")
        #expect(out.map { "\($0.name): \($0.value)" } == [
            "Host: registry.example:8443", "Accept: a", "accept: b", "Content-Type: application/octet-stream",
            "Transfer-Encoding: chunked", "X-Forwarded-Proto: http", "X-Forwarded-For: 127.0.0.1",
        ])
        let get = RequestHead(method: "GET", target: "/v2/", headers: [("Host", "r"), ("Content-Length", "0")])
        #expect(ForwardedHeaders.upstream(get, framing: .none, scheme: "https", clientAddress: nil).map { "\($0.name): \($0.value)" }
                == ["Host: r", "X-Forwarded-Proto: https"])
        let put = RequestHead(method: "PUT", target: "/v2/acme/app/blobs/uploads/u1", headers: [("Host", "r")])
        #expect(ForwardedHeaders.upstream(put, framing: .none, scheme: "http", clientAddress: nil).contains { $0.name == "Content-Length" && $0.value == "0" })
        let sized = ForwardedHeaders.upstream(put, framing: .length(12), scheme: "http", clientAddress: nil)
        #expect(sized.filter { $0.name.lowercased() == "content-length" }.map(\.value) == ["12"])
    }

    @Test("every ASCII control byte but tab, and DEL, in a header value or name is refused; every other byte passes")
    func everyByte() {
        for byte in UInt8(0)...UInt8(0x7F) {
            let text = "a" + String(UnicodeScalar(byte)) + "b"
            let control = (byte < 0x20 && byte != 0x09) || byte == 0x7F
            for headers in [Self.h([("X-A", text)]), Self.h([(text, "v")])] {
                let head = RequestHead(method: "GET", target: "/v2/acme/app/manifests/v1", headers: headers)
                switch AccessDecisionTests.policy.decide(head: head, verifier: AccessDecisionTests.verifier, now: AccessDecisionTests.now) {
                case .allow: #expect(!control, "byte \(byte) allowed")
                case .deny(let d): #expect(control && d.reason == .ambiguousFraming && d.close, "byte \(byte) refused: \(d.message)")
                }
            }
        }
        // Bytes of UTF-8 sequences pass the control check (the form-body rule reads them apart).
        let utf8 = RequestHead(method: "GET", target: "/v2/acme/app/manifests/v1", headers: Self.h([("X-A", "caf\u{e9} \u{1F600}")]))
        guard case .allow = AccessDecisionTests.policy.decide(head: utf8, verifier: AccessDecisionTests.verifier, now: AccessDecisionTests.now) else {
            Issue.record("a UTF-8 header value was refused"); return
        }
    }

    @Test("ASCII case folding: letters only, as Foundation's on ASCII, every other byte (UTF-8 included) as it is")
    func asciiCase() {
        for text in ["", "Content-Length", "X-FORWARDED-FOR", "already lower", "MiXeD-123_@[`{", "Caf\u{C9}-\u{1F600}-ABC", String(repeating: "Ab", count: 40)] {
            let folded = text.asciiLowercased
            #expect(Array(folded.utf8) == text.utf8.map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 })
            if text.utf8.allSatisfy({ $0 < 0x80 }) { #expect(folded == text.lowercased()) }
            #expect(text.equalsIgnoringASCIICase(folded))
            if text.utf8.allSatisfy({ $0 < 0x80 }) { #expect(folded.equalsIgnoringASCIICase(text.uppercased())) }
            #expect(!text.equalsIgnoringASCIICase(text + "x"))
        }
        // Only letters fold: '@' (0x40) and '`' (0x60), '[' (0x5B) and '{' (0x7B) differ by 0x20 and are not the same.
        #expect(!"@".equalsIgnoringASCIICase("`"))
        #expect(!"[".equalsIgnoringASCIICase("{"))
        #expect(!"Content-Length".equalsIgnoringASCIICase("Content-Lengti"))
        // Prefixes: every prefix of a string, in either case, and nothing longer.
        for text in ["X-Forwarded-Host", "x-forwarded-", "Authorization", ""] {
            for n in 0...text.utf8.count {
                let prefix = String(decoding: text.utf8.prefix(n), as: UTF8.self)
                #expect(text.hasPrefixIgnoringASCIICase(prefix))
                #expect(text.uppercased().hasPrefixIgnoringASCIICase(prefix.lowercased()))
            }
            #expect(!text.hasPrefixIgnoringASCIICase(text + "x"))
        }
        // Only ASCII letters fold.
        #expect("Caf\u{E9}-x".hasPrefixIgnoringASCIICase("CAF"))
        #expect(!"Caf\u{E9}-x".hasPrefixIgnoringASCIICase("CAF\u{C9}"))
        #expect("X-FORWARDED-FOR".hasPrefixIgnoringASCIICase("x-forwarded-"))
        #expect(!"X-Forwarded".hasPrefixIgnoringASCIICase("x-forwarded-"))
        #expect(!"X-Forwarded_For".hasPrefixIgnoringASCIICase("x-forwarded-"))
    }
}
