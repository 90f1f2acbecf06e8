import NIOCore
@_spi(HTTPBytes) import RegTokenAccess

/// A response head read straight from the bytes the registry sent (RFC 9112 §4), strictly: the
/// registry side's counterpart of ``HTTP1RequestHead``, read by ``HTTP1ClientCodec``.
///
/// What it takes (anything else is an error, and the registry connection is dropped):
/// - The status line is `HTTP/1.1` or `HTTP/1.0`, a space, three digits (100 to 599), then
///   either CRLF or a space and a reason phrase (tab, space, visible ASCII, bytes from 0x80).
/// - Field lines as in a request head: `name ":" OWS value OWS CRLF`, no obs-fold, no control
///   bytes, CRLF line ends; the head at most `limit` bytes.
@_spi(Benchmarks) public struct HTTP1ResponseHead: Sendable, Equatable {
    public var status: Int
    /// Byte range of the reason phrase (empty when there is none).
    public var reason: Range<Int>
    /// 1 for HTTP/1.1, 0 for HTTP/1.0.
    public var minorVersion: Int
    public var fields: [HTTP1RequestHead.Field]
    /// The bytes the head took, the empty line that ends it included.
    public var length: Int
}

/// Finds and reads response heads in the bytes of a registry connection (as
/// ``HTTP1RequestHeadReader`` does for requests: one scan however the bytes arrive).
@_spi(Benchmarks) public struct HTTP1ResponseHeadReader: Sendable {
    private var scanner: HTTP1HeadScanner
    /// The fields' storage, used again for each head.
    private var fields: [HTTP1RequestHead.Field] = []

    public init(limit: Int) {
        scanner = HTTP1HeadScanner(limit: limit, isRequest: false)
    }

    /// Reads the head at the start of `bytes` (the bytes of the previous call included).
    /// - Returns: the head, or nil while it is incomplete.
    /// - Throws: ``HTTP1HeadError`` when the bytes cannot start a response head.
    public mutating func read(_ bytes: UnsafeRawBufferPointer) throws(HTTP1HeadError) -> HTTP1ResponseHead? {
        guard let end = try scanner.scan(bytes) else { return nil }
        return try Self.parse(UnsafeRawBufferPointer(rebasing: bytes[..<end]), fields: &fields)
    }

    /// Reads the complete head (every byte through `b(i)`: NUL past the end, as for requests).
    private static func parse(_ head: UnsafeRawBufferPointer, fields: inout [HTTP1RequestHead.Field]) throws(HTTP1HeadError) -> HTTP1ResponseHead {
        func bad(_ message: String) -> HTTP1HeadError { HTTP1HeadError(status: 502, message: "registry response: \(message)") }
        func b(_ i: Int) -> UInt8 { i < head.count ? head[i] : 0 }
        func digit(_ i: Int) -> Int? { b(i) >= 0x30 && b(i) <= 0x39 ? Int(b(i) - 0x30) : nil }
        let minor: Int
        if HTTP1HeadScanner.matches(head, at: 0, "HTTP/1.1 ") {
            minor = 1
        } else if HTTP1HeadScanner.matches(head, at: 0, "HTTP/1.0 ") {
            minor = 0
        } else {
            throw bad("the status line does not start with HTTP/1.1 or HTTP/1.0")
        }
        guard let d0 = digit(9), let d1 = digit(10), let d2 = digit(11), (1...5).contains(d0) else {
            throw bad("the status code is not three digits from 100 to 599")
        }
        var i = 12
        let reasonStart: Int
        if b(i) == 0x20 {
            i += 1
            reasonStart = i
            while HTTPBytes.isFieldText(b(i)) { i += 1 }
        } else {
            reasonStart = i
        }
        guard b(i) == 0x0D else { throw bad("the status line has a character a status line cannot have") }
        let reason = reasonStart..<i
        do {
            try HTTP1HeadScanner.fields(head, from: i + 2, into: &fields)
        } catch {
            throw bad(error.message)
        }
        return HTTP1ResponseHead(status: d0 * 100 + d1 * 10 + d2, reason: reason, minorVersion: minor, fields: fields, length: head.count)
    }
}

/// A registry response head as the proxy forwards it, on its bytes: what ``HTTP1ClientCodec``
/// hands on, and what ``HTTP1ServerCodec`` writes to the client (no `String` per field, no
/// `HTTPHeaders`).
@_spi(Benchmarks) public struct ForwardedResponseHead: Sendable, Equatable {
    /// 200 to 599 (interim responses are read past, never forwarded).
    public let status: Int
    /// The reason phrase (field text, as the reader checked it).
    public let reason: String
    /// The minor HTTP version: the registry's as read; the proxy sets the client's before writing.
    public var minorVersion: Int
    /// The registry keeps the connection open after this response (its `Connection` and
    /// version say so, and its body does not end with the close).
    public var keepAlive: Bool
    /// A `Content-Length` is among ``fields``.
    public let hasContentLength: Bool
    /// The head as the proxy writes it to an HTTP/1.1 client whose connection it keeps, when the
    /// body keeps the registry's framing: `HTTP/1.1`, the registry's status and reason, CRLF,
    /// ``fields``, the empty line. The client side writes these bytes as they are in that case
    /// (the usual one: no second buffer and no copy of the fields), and writes the head anew with
    /// the client's version, `Connection: close` or its own framing otherwise.
    public let bytes: ByteBuffer
    /// Where ``fields`` are in ``bytes`` (from its reader index).
    private let fieldsStart: Int
    private let fieldsCount: Int
    /// `Connection: close` is written after the fields (the proxy closes after this response).
    public var close = false

    /// The field lines to forward, each `name: value` and CRLF, in the registry's order, less
    /// hop-by-hop fields (RFC 9110 §7.6.1), those its `Connection` names, `Transfer-Encoding`
    /// (the client side frames the body again), and `Content-Length` on a 204 or 304. Every
    /// name is a token and every value field text: the reader checked them.
    public var fields: ByteBuffer { bytes.getSlice(at: bytes.readerIndex + fieldsStart, length: fieldsCount)! }

    /// A head whose ``bytes`` are written here from `fields`.
    public init(status: Int, reason: String, minorVersion: Int, keepAlive: Bool, hasContentLength: Bool, fields: ByteBuffer) {
        var bytes = ByteBuffer()
        let start = Self.writeStatusLine(status: status, reason: reason, to: &bytes)
        bytes.writeImmutableBuffer(fields)
        bytes.writeStaticString("\r\n")
        self.init(status: status, reason: reason, minorVersion: minorVersion, keepAlive: keepAlive, hasContentLength: hasContentLength,
                  bytes: bytes, fieldsStart: start, fieldsCount: fields.readableBytes)
    }

    /// A head whose ``bytes`` hold its status line (``writeStatusLine(status:reason:to:)``), then
    /// its fields at `fieldsStart` (from the reader index), `fieldsCount` bytes, then the empty line.
    init(status: Int, reason: String, minorVersion: Int, keepAlive: Bool, hasContentLength: Bool, bytes: ByteBuffer,
         fieldsStart: Int, fieldsCount: Int) {
        self.status = status
        self.reason = reason
        self.minorVersion = minorVersion
        self.keepAlive = keepAlive
        self.hasContentLength = hasContentLength
        self.bytes = bytes
        self.fieldsStart = fieldsStart
        self.fieldsCount = fieldsCount
    }

    /// Writes the status line: `HTTP/1.1` (`HTTP/1.0` for minor version 0), the status and the
    /// reason, and CRLF; returns where the fields start (from the reader index).
    @discardableResult
    static func writeStatusLine(status: Int, reason: String, minorVersion: Int = 1, to out: inout ByteBuffer) -> Int {
        out.writeStaticString(minorVersion == 0 ? "HTTP/1.0 " : "HTTP/1.1 ")
        HTTP1Wire.writeStatus(status, to: &out)
        out.writeStaticString(" ")
        out.writeString(reason)
        out.writeStaticString("\r\n")
        return out.readableBytes
    }
}

/// What ``HTTP1ClientCodec`` hands on: each response's head, its body's bytes, and its end.
@_spi(Benchmarks) public enum RegistryResponsePart: Sendable {
    // (Not boxed: the proxy's upstream handler gets parts by a direct call, not inside a `NIOAny`.)
    case head(ForwardedResponseHead)
    case body(ByteBuffer)
    case end
}
