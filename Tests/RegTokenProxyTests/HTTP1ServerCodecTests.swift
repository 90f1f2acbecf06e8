import NIOCore
import NIOEmbedded
import NIOHTTP1
@_spi(Benchmarks) @testable import RegTokenProxyCore
import RegTokenAccess
import RegTokenLoadTest
import Testing

/// The proxy's HTTP/1.1 codec for clients: the request parts it hands on are NIOHTTP1's for the
/// same bytes however they arrive, and its responses are framed as NIOHTTP1's encoder frames them.
@Suite("HTTP1ServerCodec: the client side's HTTP/1.1")
struct HTTP1ServerCodecTests {
    /// A part as compared: heads by their fields, body bytes joined up to the end.
    enum Part: ComparedPart, CustomStringConvertible {
        case head(String, String, Int, [String])
        case body([UInt8])
        case end

        var description: String {
            switch self {
            case .head(let m, let t, let v, let f): "head(\(m) \(t) 1.\(v) \(f))"
            case .body(let b): "body(\(String(decoding: b, as: UTF8.self).debugDescription))"
            case .end: "end"
            }
        }
    }

    /// Joins adjacent body parts (the two readers may slice a body differently).
    static func normalized(_ parts: [HTTPServerRequestPart]) -> [Part] {
        Part.joined(parts) { h in .head(h.method.rawValue, h.uri, Int(h.version.minor), h.headers.map { "\($0.name): \($0.value)" }) }
    }

    /// The codec's parts as compared with NIOHTTP1's.
    static func normalized(_ parts: [ProxyRequestPart]) -> [Part] {
        normalized(parts.map { part -> HTTPServerRequestPart in
            switch part {
            case .head(let h):
                .head(HTTPRequestHead(version: HTTPVersion(major: h.request.version.major, minor: h.request.version.minor),
                                      method: HTTPMethod(rawValue: h.request.method), uri: h.request.target,
                                      headers: HTTPHeaders(h.request.headers.map { ($0.name, $0.value) })))
            case .body(let b): .body(b)
            case .end: .end(nil)
            }
        })
    }

    /// What the codec hands on for `bytes` arriving in the given pieces, and the error it met.
    static func ours(_ bytes: [UInt8], cuts: [Int] = [], limit: Int = 16384) -> (parts: [Part], error: HTTP1HeadError?, framings: [BodyFraming?]) {
        let channel = EmbeddedChannel(handler: HTTP1ServerCodec(maxHeadBytes: limit))
        defer { _ = try? channel.finish() }
        var error: HTTP1HeadError?
        var start = 0
        for cut in cuts.sorted() + [bytes.count] where cut >= start {
            do {
                try channel.writeInbound(ByteBuffer(bytes: bytes[start..<cut]))
            } catch let e as HTTP1HeadError {
                error = e
                break
            } catch {
                Issue.record("unexpected error \(error)")
            }
            start = cut
        }
        var parts: [ProxyRequestPart] = []
        while let part = try? channel.readInbound(as: ProxyRequestPart.self) { parts.append(part) }
        let framings = parts.compactMap { part -> BodyFraming?? in
            if case .head(let h) = part { h.framing } else { nil }
        }
        return (normalized(parts), error, framings)
    }

    static func chunked(_ data: [UInt8], sizes: [Int]) -> [UInt8] {
        var out: [UInt8] = []
        var i = 0
        for size in sizes where i < data.count {
            let n = min(size, data.count - i)
            out += Array(String(n, radix: 16).utf8) + [13, 10] + data[i..<i + n] + [13, 10]
            i += n
        }
        if i < data.count { out += Array(String(data.count - i, radix: 16).utf8) + [13, 10] + data[i...] + [13, 10] }
        return out + Array("0\r\n\r\n".utf8)
    }

    @Test("pipelined requests of every framing, arriving in random pieces: the same parts as NIOHTTP1's decoder")
    func agreesWithNIO() {
        var rng = SplitMix(seed: 0x5EED_C0DE)
        for round in 0..<3_000 {
            var bytes: [UInt8] = []
            for k in 0..<(1 + rng.below(3)) {
                let body = (0..<rng.below(300)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                switch rng.below(3) {
                case 0:
                    bytes += Array("GET /v2/acme/app/manifests/t\(k) HTTP/1.1\r\nHost: r\r\nAuthorization: Basic dG9rZW46eA==\r\n\r\n".utf8)
                case 1:
                    bytes += Array("PUT /v2/acme/app/manifests/t\(k) HTTP/1.1\r\nHost: r\r\nContent-Length: \(body.count)\r\n\r\n".utf8) + body
                default:
                    let sizes = (0..<4).map { _ in 1 + rng.below(120) }
                    bytes += Array("PATCH /v2/acme/app/blobs/uploads/u\(k) HTTP/1.1\r\nHost: r\r\nTransfer-Encoding: chunked\r\n\r\n".utf8)
                        + Self.chunked(body, sizes: sizes)
                }
            }
            let cuts = (0..<rng.below(6)).map { _ in rng.below(bytes.count + 1) }
            let ours = Self.ours(bytes, cuts: cuts)
            let theirs = NIORequestDecoder.parts(bytes)
            #expect(ours.error == nil && !theirs.refused)
            #expect(ours.parts == Self.normalized(theirs.parts), "round \(round), cuts \(cuts)")
            if ours.parts != Self.normalized(theirs.parts) { break }
        }
    }

    @Test("heads of one connection that repeat, change or reorder fields (same lengths, other bytes, invalid UTF-8): each read as NIOHTTP1 reads it")
    func repeatedFields() {
        let heads = [
            "GET /v2/acme/app/manifests/v1 HTTP/1.1\r\nHost: r\r\nAuthorization: Basic dG9rZW46eA==\r\nUser-Agent: docker/27.0\r\n\r\n",
            "GET /v2/acme/app/manifests/v1 HTTP/1.1\r\nHost: r\r\nAuthorization: Basic dG9rZW46eA==\r\nUser-Agent: docker/27.0\r\n\r\n",
            "GET /v2/acme/app/manifests/v2 HTTP/1.1\r\nHost: r\r\nAuthorization: Basic dG9rZW46eB==\r\nUser-Agent: docker/27.0\r\n\r\n",
            "HEAD /v2/acme/app/manifests/v2 HTTP/1.1\r\nhost: r\r\nUser-Agent: docker/27.0\r\nAuthorization: Basic dG9rZW46eB==\r\n\r\n",
            "HEAD /v2/acme/app/manifests/v2 HTTP/1.1\r\nhost: s\r\n\r\n",
            "GET /v2/acme/app/manifests/v2 HTTP/1.1\r\nhost: s\r\nX-A: \u{FF}\u{FE}\r\nX-B: b\r\n\r\n",
            "GET /v2/acme/app/manifests/v2 HTTP/1.1\r\nhost: s\r\nX-A: \u{FF}\u{FE}\r\nX-B: b\r\n\r\n",
            // Heads over the size whose strings are kept, and one after them.
            "GET /v2/acme/app/manifests/v3 HTTP/1.1\r\nhost: s\r\nX-Big: \(String(repeating: "a", count: 5000))\r\n\r\n",
            "GET /v2/acme/app/manifests/v3 HTTP/1.1\r\nhost: s\r\nX-Big: \(String(repeating: "b", count: 5000))\r\n\r\n",
            "GET /v2/acme/app/manifests/v3 HTTP/1.1\r\nhost: s\r\nX-Big: b\r\n\r\n",
            // The previous head's fields and more, then fewer, then none (last: an HTTP/1.0
            // request without keep-alive ends what NIOHTTP1 reads).
            "GET /v2/acme/app/manifests/v3 HTTP/1.1\r\nhost: s\r\nX-Big: b\r\nX-C: c\r\n\r\n",
            "GET /v2/acme/app/manifests/v3 HTTP/1.1\r\nhost: s\r\nX-Big: b\r\n\r\n",
            "GET /v2/ HTTP/1.0\r\n\r\n",
        ]
        // (Latin-1 here: \u{FF} is the byte 0xFF, not UTF-8.)
        let bytes = heads.flatMap { $0.unicodeScalars.map { UInt8(truncatingIfNeeded: $0.value) } }
        let ours = Self.ours(bytes)
        let theirs = NIORequestDecoder.parts(bytes)
        #expect(ours.error == nil && !theirs.refused)
        #expect(ours.parts == Self.normalized(theirs.parts))
        #expect(ours.parts.count == 2 * heads.count)
    }

    @Test("a byte at a time: the same parts as all at once")
    func byteAtATime() {
        let bytes = Array(("\r\nPUT /v2/a/b/manifests/x HTTP/1.1\r\nHost: r\r\nContent-Length: 5\r\n\r\nhello"
                           + "PATCH /v2/a/b/blobs/uploads/u HTTP/1.1\r\nHost: r\r\nTransfer-Encoding: chunked\r\n\r\n3;x=\"y\"\r\nabc\r\n0\r\nT: 1\r\n\r\n"
                           + "GET /v2/ HTTP/1.0\r\n\r\n").utf8)
        let whole = Self.ours(bytes)
        #expect(whole.error == nil)
        #expect(whole.parts.count == 8, "\(whole.parts)")
        #expect(Self.ours(bytes, cuts: Array(1..<bytes.count)).parts == whole.parts)
    }

    @Test("bytes that are not HTTP/1.1 stop the reading: 400, 431 over the limit, 505 for another version; parts before them are handed on")
    func errors() {
        let get = "GET /v2/ HTTP/1.1\r\nHost: r\r\n\r\n"
        let cases: [(String, Int)] = [
            ("GET /v2/ HTTP/1.1\nHost: r\r\n\r\n", 400),
            ("GET /v2/ HTTP/2.0\r\nHost: r\r\n\r\n", 505),
            ("GET /v2/ HTTP/1.1\r\nHost: r\r\nX: " + String(repeating: "a", count: 200) + "\r\n\r\n", 431),
            ("PATCH /v2/a/b/blobs/uploads/u HTTP/1.1\r\nHost: r\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
        ]
        for (bad, status) in cases {
            let out = Self.ours(Array((get + bad + get).utf8), limit: 128)
            #expect(out.error?.status == status, "\(bad.debugDescription): \(String(describing: out.error))")
            // The request before is handed on whole; nothing after the error is.
            let heads = out.parts.filter { if case .head = $0 { true } else { false } }
            #expect(heads.count == (status == 400 && bad.hasPrefix("PATCH") ? 2 : 1), "\(bad.debugDescription): \(out.parts)")
            #expect(out.parts.first == .head("GET", "/v2/", 1, ["Host: r"]) && out.parts.dropFirst().first == .end)
        }
    }

    @Test("a head whose framing the forwarding rules refuse is handed on, and nothing after it is read")
    func refusedFraming() {
        for framing in ["Content-Length: 5\r\nContent-Length: 6", "Content-Length: 5\r\nTransfer-Encoding: chunked", "Transfer-Encoding: gzip, chunked",
                        "Content-Length: -1", "Content-Length: 5"] {
            let method = framing == "Content-Length: 5" ? "GET" : "PUT"
            let out = Self.ours(Array("\(method) /v2/a/b/manifests/x HTTP/1.1\r\nHost: r\r\n\(framing)\r\n\r\nhelloGET /v2/ HTTP/1.1\r\nHost: r\r\n\r\n".utf8))
            #expect(out.error == nil)
            #expect(out.parts.count == 1, "\(framing): \(out.parts)")
            // The decision gets no framing and works out why itself.
            #expect(out.framings.count == 1 && out.framings[0] == nil, "\(framing): \(out.framings)")
        }
    }

    @Test("each head is handed on with the framing its body was read by, for the decision to forward it with")
    func framingHandedOn() {
        let out = Self.ours(Array(("GET /v2/ HTTP/1.1\r\nHost: r\r\n\r\n"
            + "PUT /v2/a/b/manifests/x HTTP/1.1\r\nHost: r\r\nContent-Length: 5\r\n\r\nhello"
            + "PATCH /v2/a/b/blobs/uploads/u HTTP/1.1\r\nHost: r\r\nTransfer-Encoding: Chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
            + "PUT /v2/a/b/manifests/y HTTP/1.1\r\nHost: r\r\nContent-Length: 0\r\n\r\n"
            + "HEAD /v2/ HTTP/1.0\r\n\r\n").utf8))
        #expect(out.error == nil)
        #expect(out.framings == [BodyFraming.none, .length(5), .chunked, BodyFraming.none, BodyFraming.none], "\(out.framings)")
        #expect(out.parts.filter { $0 == .end }.count == 5, "\(out.parts)")
    }

    @Test("a head with the previous head's fields but another method or version gets the framing the rules give it, not the previous one's")
    func framingOfRepeatedFields() {
        // A body is allowed on PUT, not on GET; Transfer-Encoding on HTTP/1.1, not on HTTP/1.0.
        for (first, second, body) in [("PUT", "GET", "Content-Length: 5"), ("PATCH", "DELETE", "Content-Length: 5"),
                                      ("PUT HTTP/1.1", "PUT HTTP/1.0", "Transfer-Encoding: chunked")] {
            func head(_ spec: String) -> String {
                let parts = spec.split(separator: " ")
                return "\(parts[0]) /v2/a/b/blobs/uploads/u \(parts.count > 1 ? String(parts[1]) : "HTTP/1.1")\r\nHost: r\r\n\(body)\r\n\r\n"
            }
            let payload = body.hasPrefix("Content-Length") ? "hello" : "5\r\nhello\r\n0\r\n\r\n"
            let out = Self.ours(Array((head(first) + payload + head(first) + payload + head(second) + payload).utf8))
            let expected: BodyFraming = body.hasPrefix("Content-Length") ? .length(5) : .chunked
            // The first head twice (the second with its fields repeated: the same framing), then
            // the other method or version: refused, and nothing after it is read.
            #expect(out.framings == [expected, expected, nil], "\(first) then \(second): \(out.framings)")
        }
    }

    @Test("keep-alive of heads whose fields repeat the previous head's under another version: as NIOHTTP1's isKeepAlive reads each")
    func keepAliveOfRepeatedFields() throws {
        for fields in ["Host: r", "Host: r\r\nConnection: keep-alive", "Host: r\r\nConnection: close"] {
            var bytes = ""
            for version in ["1.1", "1.1", "1.0", "1.0", "1.1"] { bytes += "GET /v2/ HTTP/\(version)\r\n\(fields)\r\n\r\n" }
            let channel = EmbeddedChannel(handler: HTTP1ServerCodec(maxHeadBytes: 16384))
            try channel.writeInbound(ByteBuffer(string: bytes))
            var ours: [Bool] = []
            while let part = try channel.readInbound(as: ProxyRequestPart.self) {
                if case .head(let h) = part { ours.append(h.keepAlive) }
            }
            let theirs = try ["1.1", "1.1", "1.0", "1.0", "1.1"].map { version -> Bool in
                let decoder = EmbeddedChannel(handler: ByteToMessageHandler(HTTPRequestDecoder()))
                try decoder.writeInbound(ByteBuffer(string: "GET /v2/ HTTP/\(version)\r\n\(fields)\r\n\r\n"))
                guard case .head(let h)? = try decoder.readInbound(as: HTTPServerRequestPart.self) else { return false }
                return h.isKeepAlive
            }
            #expect(ours == theirs, "\(fields.debugDescription): \(ours) against \(theirs)")
        }
    }

    @Test("a head that repeats the previous head's field lines is held to the same rules: the size limit (431), empty lines before it, its request line")
    func repeatedHeadRules() {
        let get = "GET /v2/ HTTP/1.1\r\nHost: r\r\n\r\n"
        // Over the limit only by its target: 431, as a head read in full gets.
        let long = Self.ours(Array((get + "GET /v2/" + String(repeating: "a", count: 120) + " HTTP/1.1\r\nHost: r\r\n\r\n").utf8), limit: 128)
        #expect(long.error?.status == 431, "\(String(describing: long.error))")
        #expect(long.parts.count == 2, "\(long.parts)")
        // Empty lines before a repeated head are skipped, as before any head; a CR alone is not a line.
        let blank = Self.ours(Array((get + "\r\n\r\n" + get).utf8))
        #expect(blank.error == nil && blank.parts.count == 4, "\(blank.parts) \(String(describing: blank.error))")
        let loneCR = Self.ours(Array((get + "\rX" + get).utf8))
        #expect(loneCR.error?.status == 400 && loneCR.parts.count == 2, "\(loneCR.parts) \(String(describing: loneCR.error))")
        // A request line that breaks the rules in front of repeated field lines: refused as any.
        for line in ["GET  /v2/ HTTP/1.1", "GET /v2/ HTTP/1.2", "GET /v2/\u{7F} HTTP/1.1", "G\u{0}T /v2/ HTTP/1.1", "GET /v2/ HTTP/1.1 "] {
            let out = Self.ours(Array((get + line + "\r\nHost: r\r\n\r\n").utf8))
            #expect(out.error != nil && out.parts.count == 2, "\(line.debugDescription): \(out.parts) \(String(describing: out.error))")
        }
    }

    /// What the codec writes for these response parts, after a request with `method`.
    static func written(method: String = "GET", version: String = "1.1", _ parts: [HTTPServerResponsePart]) throws -> (String, active: Bool) {
        try written(method: method, version: version, proxy: parts.map {
            switch $0 {
            case .head(let h): .head(h)
            case .body(.byteBuffer(let b)): .body(b)
            case .body: preconditionFailure("file regions are not written by the proxy")
            case .end: .end
            }
        })
    }

    static func written(method: String = "GET", version: String = "1.1", proxy parts: [ProxyResponsePart]) throws -> (String, active: Bool) {
        let channel = EmbeddedChannel(handler: HTTP1ServerCodec(maxHeadBytes: 16384))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try channel.writeInbound(ByteBuffer(string: "\(method) /v2/ HTTP/\(version)\r\nHost: r\r\n\r\n"))
        for part in parts { channel.write(part, promise: nil) }
        channel.flush()
        var out = ""
        while let b = try channel.readOutbound(as: ByteBuffer.self) { out += String(buffer: b) }
        return (out, channel.isActive)
    }

    @Test("responses are framed as NIOHTTP1's encoder frames them: length kept, chunked when there is none, no body for HEAD, 1xx, 204 and 304")
    func responses() throws {
        let body = ByteBuffer(string: "hello")
        func head(_ status: HTTPResponseStatus, _ headers: [(String, String)], version: HTTPVersion = .http1_1) -> HTTPServerResponsePart {
            .head(HTTPResponseHead(version: version, status: status, headers: HTTPHeaders(headers)))
        }
        #expect(try Self.written([head(.ok, [("Content-Length", "5")]), .body(.byteBuffer(body)), .end(nil)]).0
                == "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
        #expect(try Self.written([head(.ok, [("X", "y")]), .body(.byteBuffer(body)), .body(.byteBuffer(body)), .end(nil)]).0
                == "HTTP/1.1 200 OK\r\nX: y\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n5\r\nhello\r\n0\r\n\r\n")
        // HTTP/1.0: no chunking (the body ends with the connection).
        #expect(try Self.written(version: "1.0", [head(.ok, [], version: .http1_0), .body(.byteBuffer(body)), .end(nil)]).0
                == "HTTP/1.0 200 OK\r\n\r\nhello")
        // HEAD: the framing a GET would have had, no body.
        #expect(try Self.written(method: "HEAD", [head(.ok, [("Content-Length", "5")]), .end(nil)]).0
                == "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
        #expect(try Self.written(method: "HEAD", [head(.ok, [])]).0 == "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        #expect(try Self.written(method: "HEAD", [head(.ok, []), .end(nil)]).0 == "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        // A body written after a HEAD's head is not sent (its write fails).
        #expect(try Self.written(method: "HEAD", [head(.ok, [("Content-Length", "5")]), .body(.byteBuffer(body)), .end(nil)]).0
                == "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
        // 204 and 304: no framing headers at all.
        #expect(try Self.written([head(.noContent, [("Content-Length", "0"), ("Transfer-Encoding", "chunked")]), .end(nil)]).0
                == "HTTP/1.1 204 No Content\r\n\r\n")
        #expect(try Self.written([head(.notModified, [("Content-Length", "5")]), .end(nil)]).0 == "HTTP/1.1 304 Not Modified\r\n\r\n")
        // A 100 Continue does not answer the HEAD: the final response after it does.
        #expect(try Self.written(method: "HEAD", [head(.continue, []), head(.ok, [("Content-Length", "5")]), .end(nil)]).0
                == "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
    }

    @Test("a registry's head forwarded on its bytes is written as the same head with the same fields would be: status line, fields, Connection: close, framing, body")
    func forwardedHeads() throws {
        var cases = 0
        let combinations = [200, 201, 204, 304, 404].flatMap { status in [false, true].flatMap { hasLength in [false, true].flatMap { close in
            ["GET", "HEAD"].flatMap { method in [0, 1].map { minor in (status, hasLength, close, method, minor) } } } } }
        for (status, hasLength, close, method, minor) in combinations {
            // The registry side drops Content-Length from a 204 or 304 (and never forwards 1xx).
            let bodiless = status == 204 || status == 304
            var fields = [("Docker-Content-Digest", "sha256:a"), ("X", "")]
            if hasLength && !bodiless { fields.append(("Content-Length", "5")) }
            var bytes = ByteBuffer()
            for (name, value) in fields { bytes.writeString("\(name): \(value)\r\n") }
            // (NIOHTTP1 writes its own reason phrase for a status it knows; ours forwards the
            // registry's, as nginx does: here the same one.)
            let reason = HTTPResponseStatus(statusCode: status).reasonPhrase
            var forwarded = ForwardedResponseHead(status: status, reason: reason, minorVersion: minor, keepAlive: true,
                                                  hasContentLength: hasLength && !bodiless, fields: bytes)
            forwarded.close = close
            let own = HTTPResponseHead(version: HTTPVersion(major: 1, minor: minor), status: HTTPResponseStatus(statusCode: status),
                                       headers: HTTPHeaders(fields + (close ? [("Connection", "close")] : [])))
            let rest: [ProxyResponsePart] = [.body(ByteBuffer(string: "hello")), .end]
            let ours = try Self.written(method: method, version: "1.\(minor)", proxy: [.forwardedHead(forwarded)] + rest)
            let theirs = try Self.written(method: method, version: "1.\(minor)", proxy: [.head(own)] + rest)
            #expect(ours.0 == theirs.0 && ours.active == theirs.active, "\(status) \(method) 1.\(minor): \(ours.0.debugDescription) \(theirs.0.debugDescription)")
            cases += 1
        }
        #expect(cases == 80)
        // And what that is, once in full.
        let fields = ByteBuffer(string: "ETag: e\r\n")
        var head = ForwardedResponseHead(status: 200, reason: "OK", minorVersion: 1, keepAlive: true, hasContentLength: false, fields: fields)
        head.close = true
        #expect(try Self.written(proxy: [.forwardedHead(head), .body(ByteBuffer(string: "hi")), .end]).0
                == "HTTP/1.1 200 OK\r\nETag: e\r\nConnection: close\r\ntransfer-encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n")
    }

    @Test("keep-alive as NIOHTTP1's isKeepAlive decides it, on every mix of Connection tokens, versions and letter case")
    func keepAlive() {
        let words = ["close", "keep-alive", "Close", "KEEP-ALIVE", "upgrade", " close ", "\tkeep-alive", "", "x-close", "closed", "keep-alive,close"]
        var rng = SplitMix(seed: 7)
        for _ in 0..<5_000 {
            var headers = HTTPHeaders()
            for _ in 0..<rng.below(3) {
                let value = (0..<(1 + rng.below(3))).map { _ in words[rng.below(words.count)] }.joined(separator: ",")
                headers.add(name: rng.below(2) == 0 ? "Connection" : "connection", value: value)
            }
            if rng.below(2) == 0 { headers.add(name: "X", value: "close") }
            for version in [HTTPVersion.http1_1, .http1_0] {
                let nio = HTTPRequestHead(version: version, method: .GET, uri: "/", headers: headers).isKeepAlive
                #expect(HTTP1Wire.keepsAlive(headers, major: version.major, minor: version.minor) == nio, "\(headers) \(version)")
            }
        }
    }

    @Test("a response head with a line break or a control byte in a field is not written, and the connection closes")
    func responseSplitting() throws {
        for (name, value) in [("X", "a\r\nSet-Cookie: s=1"), ("X", "a\nb"), ("X\r\nY", "v"), ("", "v"), ("X Y", "v"), ("X", "a\u{0}b")] {
            let (out, active) = try Self.written([.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: HTTPHeaders([(name, value)]))),
                                                  .body(.byteBuffer(ByteBuffer(string: "x"))), .end(nil)])
            #expect(out.isEmpty, "\(name.debugDescription): \(value.debugDescription): \(out.debugDescription)")
            #expect(!active)
        }
    }
}
