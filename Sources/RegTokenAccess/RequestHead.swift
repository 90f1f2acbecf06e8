/// A request head as a front proxy received it, and the rules that keep what the proxy forwards
/// identical to what the registry will read.
///
/// The registry (distribution, Go's `net/http`) parses the bytes the proxy sends on its own. Any
/// place where the two parsers could disagree is a way to make the registry run a request the
/// proxy never checked (request smuggling) or read a parameter the proxy never saw. The rules:
///
/// - **Framing is the proxy's.** The client's `Content-Length` and `Transfer-Encoding` are never
///   forwarded as received: the proxy writes the exact length it will send, or a literal
///   lowercase `chunked` (``BodyFraming``). `Transfer-Encoding` must be exactly one header whose
///   value is `chunked` (any letter case; `gzip, chunked`, `identity`, two headers: 400), never
///   with `Content-Length`, never on HTTP/1.0. `Content-Length` is one header of 1 to 18 decimal
///   digits. Anything else is ambiguous (RFC 9112 §6.3): 400, and the connection is closed.
/// - **Bodies only where the registry API has them**: `PUT` and `PATCH`. A `GET`, `HEAD`,
///   `DELETE` or `POST` (which only starts or mounts an upload) with a body is refused (400, and
///   the connection is closed) rather than forwarded or silently dropped: distribution ignores a
///   monolithic `POST` body anyway, and a body on a bodiless request is exactly what a smuggler
///   sends.
/// - **`Connection` never names a header the decision or the registry's framing reads**:
///   `Content-Length`, `Transfer-Encoding`, `Host`, `Authorization`, `Content-Type`, or the
///   forwarding headers the proxy sets (400).
/// - **No control bytes** (CR, LF, NUL, any byte below 0x20 but tab, DEL) in any header name or
///   value, and so no obs-fold continuation lines (400, closed); at most one `Host` (exactly one
///   for HTTP/1.1) and at most one `Content-Type`.
/// - **Parameters only from the query.** Go's `FormValue`, which distribution uses for `mount`,
///   `from`, `digest` and `_state`, also reads an `application/x-www-form-urlencoded` or
///   `multipart/form-data` body of a `POST`, `PUT` or `PATCH`, and the body wins over the query.
///   So on upload endpoints (`POST …/blobs/uploads/`, `PATCH`/`PUT …/blobs/uploads/<id>`) the
///   `Content-Type` must be `application/octet-stream` (parameters allowed) or absent with no
///   body; on a manifest `PUT` it must not be a form type. Otherwise 400.
public struct RequestHead: Sendable {
    /// The method as received (upper case for every method the registry API has).
    public var method: String
    /// The request target (path and query) as received.
    public var target: String
    /// The HTTP version's major and minor numbers (1.1 or 1.0).
    public var version: (major: Int, minor: Int)
    /// Every header as received, in order, repeated ones included.
    public var headers: [(name: String, value: String)]

    /// A request head as received.
    /// - Parameters:
    ///   - method: the method as received.
    ///   - target: the request target (path and query) as received.
    ///   - version: the HTTP version; 1.1 if omitted.
    ///   - headers: every header as received, in order, repeated ones included.
    public init(method: String, target: String, version: (major: Int, minor: Int) = (1, 1), headers: [(name: String, value: String)]) {
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
    }

    /// Every value of a header, by case-insensitive name.
    public func values(_ name: String) -> [String] {
        headers.compactMap { $0.name.equalsIgnoringASCIICase(name) ? $0.value : nil }
    }

    /// The first value of a header, by case-insensitive name, and how many it has (no array).
    package func first(_ name: String) -> (first: String?, count: Int) {
        var first: String?
        var count = 0
        for (n, value) in headers where n.equalsIgnoringASCIICase(name) {
            if count == 0 { first = value }
            count += 1
        }
        return (first, count)
    }
}

/// How the body of a forwarded request is framed towards the registry.
public enum BodyFraming: Sendable, Equatable {
    /// No body: no framing header for `GET`, `HEAD`, `DELETE`; `Content-Length: 0` otherwise.
    case none
    /// `Content-Length: n`.
    case length(Int)
    /// `Transfer-Encoding: chunked`, literally.
    case chunked
}

/// Why a request head breaks the forwarding rules of ``RequestHead``.
package struct HeadViolation: Error {
    /// What was wrong, for the client and the access log.
    package var message: String
    /// The framing itself is in doubt: the connection must be closed after the answer.
    package var close: Bool
    package var reason: DenyReason
}

extension RequestHead {
    /// Headers the client may never make hop-by-hop through `Connection`: framing, credentials,
    /// what the decision reads, and the forwarding headers the proxy sets itself.
    static let protectedHeaders: Set<String> = [
        "content-length", "transfer-encoding", "host", "authorization", "content-type",
        "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-forwarded-port", "forwarded",
    ]

    /// Checks the framing and header rules; returns how the body is framed.
    package func framing() -> Result<BodyFraming, HeadViolation> {
        func ambiguous(_ message: String) -> Result<BodyFraming, HeadViolation> {
            .failure(HeadViolation(message: message, close: true, reason: .ambiguousFraming))
        }
        var contentLengths: [String] = []
        var transferEncodings: [String] = []
        var hosts = 0
        var contentTypes = 0
        for (name, value) in headers {
            if !Self.isCleanHeaderText(name) || name.isEmpty || !Self.isCleanHeaderText(value) {
                return ambiguous("header \(Self.printable(name)) has a control character or a line break")
            }
            // (By length first, then without case: no lowered copy of every name.)
            switch name.utf8.count {
            case 14 where name.equalsIgnoringASCIICase("content-length"): contentLengths.append(value)
            case 17 where name.equalsIgnoringASCIICase("transfer-encoding"): transferEncodings.append(value)
            case 4 where name.equalsIgnoringASCIICase("host"): hosts += 1
            case 12 where name.equalsIgnoringASCIICase("content-type"): contentTypes += 1
            case 10 where name.equalsIgnoringASCIICase("connection"):
                for token in value.split(separator: ",") {
                    let named = String(token).trimmingSpacesAndTabs.asciiLowercased
                    if Self.protectedHeaders.contains(named) {
                        return ambiguous("Connection must not name \(named)")
                    }
                }
            default: break
            }
        }
        if hosts > 1 { return ambiguous("several Host headers") }
        if hosts == 0 && version.major == 1 && version.minor >= 1 { return ambiguous("HTTP/1.1 request without Host") }
        if contentTypes > 1 { return ambiguous("several Content-Type headers") }

        let framing: BodyFraming
        if !transferEncodings.isEmpty {
            if version.major == 1 && version.minor == 0 { return ambiguous("Transfer-Encoding on an HTTP/1.0 request") }
            if !contentLengths.isEmpty { return ambiguous("both Content-Length and Transfer-Encoding") }
            guard transferEncodings.count == 1, transferEncodings[0].trimmingSpacesAndTabs.asciiLowercased == "chunked" else {
                return ambiguous("Transfer-Encoding other than a single 'chunked'")
            }
            framing = .chunked
        } else if !contentLengths.isEmpty {
            guard contentLengths.count == 1 else { return ambiguous("several Content-Length headers") }
            let digits = contentLengths[0].trimmingSpacesAndTabs
            guard !digits.isEmpty, digits.utf8.count <= 18, digits.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let n = Int(digits) else {
                return ambiguous("Content-Length is not a decimal number")
            }
            framing = n == 0 ? .none : .length(n)
        } else {
            framing = .none
        }
        if framing != .none && !Self.methodsWithBody.contains(method) {
            return ambiguous("a \(Self.printable(method)) request has no body in the registry API")
        }
        return .success(framing)
    }

    /// The registry API's methods that carry a body.
    static let methodsWithBody: Set<String> = ["PUT", "PATCH"]

    /// Checks that the registry cannot read parameters from the body of this request (Go's
    /// `FormValue` on a form body): see the type's documentation.
    func checkNoFormParameters(endpoint: RegistryRequest.Endpoint, framing: BodyFraming) -> HeadViolation? {
        let contentType = values("content-type").first
        if let contentType, contentType.utf8.contains(where: { $0 >= 0x80 }) {
            return HeadViolation(message: "Content-Type has a non-ASCII character", close: framing != .none, reason: .formBody)
        }
        let mediaType = contentType.map { String($0.prefix { $0 != ";" }).trimmingSpacesAndTabs.asciiLowercased }
        switch endpoint {
        case .uploadStart, .upload:
            switch mediaType {
            case nil where framing == .none: return nil
            case "application/octet-stream": return nil
            default:
                return HeadViolation(message: "an upload's Content-Type must be application/octet-stream (the registry reads form bodies as parameters)",
                                     close: framing != .none, reason: .formBody)
            }
        default:
            guard let mediaType else { return nil }
            if mediaType == "application/x-www-form-urlencoded" || mediaType.hasPrefix("multipart/") {
                return HeadViolation(message: "form bodies are not accepted (the registry reads them as parameters)",
                                     close: framing != .none, reason: .formBody)
            }
            return nil
        }
    }

    /// Visible ASCII, space and tab only (and bytes of UTF-8 sequences). On the string's
    /// contiguous bytes in place, a word at a time: every header, the token-long
    /// `Authorization` among them, is checked per request.
    static func isCleanHeaderText(_ s: String) -> Bool {
        s.utf8.span.withUnsafeBytes { HTTPBytes.endOfFieldText($0, from: 0) == $0.count }
    }

    /// A header name or method for an error message: visible ASCII only, at most 32 bytes.
    static func printable(_ s: String) -> String {
        String(decoding: s.utf8.prefix(32).map { ($0 >= 0x21 && $0 < 0x7F) ? $0 : UInt8(ascii: "?") }, as: UTF8.self)
    }
}

/// The headers a proxy sends the registry for an allowed request.
public enum ForwardedHeaders {
    /// Headers of the client that never reach the registry: hop-by-hop headers (RFC 9110 §7.6.1),
    /// framing (the proxy writes its own), the credentials, and the forwarding headers (the
    /// proxy sets its own: a client cannot claim another address, scheme or host). Lower case;
    /// the longest has 19 bytes.
    static let dropped: [String] = [
        "connection", "keep-alive", "proxy-connection", "proxy-authorization", "proxy-authenticate", "te", "trailer",
        "upgrade", "content-length", "transfer-encoding", "authorization", "forwarded", "x-real-ip",
    ]

    /// The request headers to send upstream: the client's headers in order (repeated ones
    /// included, `Host` kept: the registry builds upload URLs from it), less hop-by-hop headers,
    /// the headers `Connection` names, framing, credentials and every `Forwarded`/`X-Forwarded-*`
    /// header; then the proxy's own framing header and `X-Forwarded-Proto` and `X-Forwarded-For`.
    /// - Parameters:
    ///   - head: the request as received (it passed ``AccessPolicy/decide(head:client:verifier:now:)``).
    ///   - framing: the body framing the decision returned.
    ///   - scheme: `http` or `https`: what the client used.
    ///   - clientAddress: the client's IP address, if known.
    public static func upstream(_ head: RequestHead, framing: BodyFraming, scheme: String, clientAddress: String?) -> [(name: String, value: String)] {
        var out: [(name: String, value: String)] = []
        out.reserveCapacity(head.headers.count + 3)
        forEach(head, framing: framing, scheme: scheme, clientAddress: clientAddress) { out.append(($0, $1)) }
        return out
    }

    /// ``upstream(_:framing:scheme:clientAddress:)`` one header at a time, in order, with no
    /// array, set or lowered copy of a name made (a front proxy writes them straight into the
    /// bytes it sends).
    ///
    /// What it writes depends on the head's fields and method, the framing (itself from the
    /// fields), the scheme and the client address, and on nothing else: `regtoken proxy` forwards
    /// a head whose fields and method repeat the previous one's with the lines this wrote for
    /// that one. A header that depended on anything else (the target, the time, a request id)
    /// would need that reuse changed too.
    package static func forEach(_ head: RequestHead, framing: BodyFraming, scheme: String, clientAddress: String?,
                                _ body: (_ name: String, _ value: String) -> Void) {
        var hasConnection = false
        for (name, _) in head.headers where name.equalsIgnoringASCIICase("connection") { hasConnection = true }
        for (name, value) in head.headers {
            if name.utf8.count <= 19 && dropped.contains(where: { name.equalsIgnoringASCIICase($0) }) { continue }
            if name.hasPrefixIgnoringASCIICase("x-forwarded-") { continue }
            if hasConnection && isNamedByConnection(name, in: head) { continue }
            body(name, value)
        }
        switch framing {
        case .none:
            if head.method != "GET" && head.method != "HEAD" && head.method != "DELETE" { body("Content-Length", "0") }
        case .length(let n): body("Content-Length", String(n))
        case .chunked: body("Transfer-Encoding", "chunked")
        }
        body("X-Forwarded-Proto", scheme)
        if let clientAddress { body("X-Forwarded-For", clientAddress) }
    }

    /// Whether a `Connection` header of `head` lists `name` (comma-separated, spaces and tabs
    /// around each, any letter case).
    private static func isNamedByConnection(_ name: String, in head: RequestHead) -> Bool {
        for (n, value) in head.headers where n.equalsIgnoringASCIICase("connection") {
            for token in value.utf8.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false) {
                var t = token[...]
                while let c = t.first, c == 0x20 || c == 0x09 { t.removeFirst() }
                while let c = t.last, c == 0x20 || c == 0x09 { t.removeLast() }
                if t.count == name.utf8.count && String(Substring(t)).equalsIgnoringASCIICase(name) { return true }
            }
        }
        return false
    }
}

extension String {
    /// ASCII letters lowered, everything else as it is (no Unicode case mapping: header names are
    /// ASCII). Written in place: a name of up to 15 bytes stays a small string, with no allocation.
    /// On the contiguous bytes (`utf8.span`), as the checks above.
    package var asciiLowercased: String {
        let bytes = utf8.span
        var hasUpper = false
        for i in bytes.indices where bytes[i] >= 0x41 && bytes[i] <= 0x5A {
            hasUpper = true
            break
        }
        guard hasUpper else { return self }
        return String(unsafeUninitializedCapacity: bytes.count) { out in
            for i in bytes.indices {
                let c = bytes[i]
                out[i] = c >= 0x41 && c <= 0x5A ? c | 0x20 : c
            }
            return bytes.count
        }
    }

    package func equalsIgnoringASCIICase(_ other: String) -> Bool {
        utf8.count == other.utf8.count && hasPrefixIgnoringASCIICase(other)
    }

    /// Whether the string starts with `prefix`, ASCII letters compared without case (no copy).
    package func hasPrefixIgnoringASCIICase(_ prefix: String) -> Bool {
        let a = utf8.span
        let b = prefix.utf8.span
        guard a.count >= b.count else { return false }
        for i in b.indices {
            let x = a[i], y = b[i]
            if x != y && !(x | 0x20 == y | 0x20 && (x | 0x20) >= 0x61 && (x | 0x20) <= 0x7A) { return false }
        }
        return true
    }
}
