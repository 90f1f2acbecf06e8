import NIOCore
import NIOHTTP1
@_spi(HTTPBytes) import RegTokenAccess

/// An allowed request's head as the proxy forwards it, written as bytes by the proxy's handler
/// (request line, the fields ``ForwardedHeaders`` keeps, the proxy's framing and forwarding
/// fields, the empty line): its method, target and fields are what ``HTTP1RequestHeadReader``
/// read and checked.
@_spi(Benchmarks) public struct ForwardedRequestHead: Sendable, Equatable {
    public var bytes: ByteBuffer
    /// The method is `HEAD`: its response has no body.
    public var isHEAD: Bool
    /// The body is sent chunked (`Transfer-Encoding: chunked` is among the fields).
    public var chunked: Bool

    public init(bytes: ByteBuffer, isHEAD: Bool, chunked: Bool) {
        self.bytes = bytes
        self.isHEAD = isHEAD
        self.chunked = chunked
    }
}

/// What ``HTTP1ClientCodec`` writes: a request head given as NIOHTTP1's `HTTPRequestHead`
/// (checked as it is written), or as the proxy's bytes (`forwardedHead`), then body and end.
@_spi(Benchmarks) public enum RegistryRequestPart: Sendable {
    // (Not boxed: the proxy hands parts to the codec by a direct call.)
    case head(HTTPRequestHead)
    case forwardedHead(ForwardedRequestHead)
    case body(ByteBuffer)
    case end
}

/// The registry side of the proxy's HTTP/1.1, in place of NIOHTTP1's client codecs
/// (`addHTTPClientHandlers`): requests are written as bytes, and responses read by
/// ``HTTP1ResponseHeadReader`` and, when chunked, ``HTTP1ChunkedBody``. The proxy's upstream
/// handler writes ``RegistryRequestPart``s (the proxy's forwarded heads as bytes, or NIOHTTP1's
/// `HTTPRequestHead`), and sees ``RegistryResponsePart``s: each head as a
/// ``ForwardedResponseHead``, the field lines to forward already picked out on their bytes (no
/// `String` per field).
///
/// Writing: the proxy writes its own framing fields (`ForwardedHeaders`: a `Content-Length`, or
/// `Transfer-Encoding: chunked`, or none for a bodiless `GET`, `HEAD` or `DELETE`); the codec
/// writes every field as given, and chunk-encodes the body when the head says `chunked`. Method,
/// target and fields of an `HTTPRequestHead` are checked as NIOHTTP1's request header validator
/// checks them (a method token, a target of the characters RFC 3986 allows, token names and
/// field-text values): a head that breaks this is not written, nor is anything after it, and the
/// connection is closed. A ``ForwardedRequestHead`` (what the proxy forwards) is written as it
/// is: its parts were checked by the same rules when the client's head was read.
///
/// Reading (RFC 9112 §6.3), strictly, since where a response ends is where the next one starts:
/// - 1xx responses (but 101, refused) are read past, as NIOHTTP1's client pipeline drops them;
///   one on HTTP/1.0 or with `Connection: close` is refused.
/// - A response to `HEAD`, and a 204 or 304, has no body, whatever its fields say.
/// - Otherwise `Transfer-Encoding` must be exactly one `chunked` and comes without
///   `Content-Length`; `Content-Length` is one field of 1 to 18 digits; with neither, the body
///   ends when the registry closes the connection (the head says the registry does not keep
///   the connection; a connection that fails rather than closes hands on no end).
/// - Nothing is read after a response that closes the connection (HTTP/1.0 without keep-alive,
///   `Connection: close`).
/// - A response nobody asked for, or anything else, is an error: the connection is closed (the
///   proxy answers 502 when no response has started).
///
/// Stored properties `@exclusivity(unchecked)`, for the reason and on the terms ``ProxyHandler`` gives.
@_spi(Benchmarks) public final class HTTP1ClientCodec: ChannelDuplexHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = RegistryResponsePart
    public typealias OutboundIn = RegistryRequestPart
    public typealias OutboundOut = ByteBuffer

    private enum Reading {
        case head
        case length(Int)
        case chunked(HTTP1ChunkedBody)
        /// Until the registry closes the connection.
        case untilClose
        case stopped
    }

    @exclusivity(unchecked) private var reading = Reading.head
    @exclusivity(unchecked) private var reader: HTTP1ResponseHeadReader
    @exclusivity(unchecked) private var partialHead: ByteBuffer?
    /// The last response's reason phrase (``forwardedHead(_:_:allocator:reason:)``).
    @exclusivity(unchecked) private var lastReason = ""
    /// The largest body given room behind its head (a registry's small JSON answers, manifests).
    static let bodyRoomLimit = 4096
    private let limit: Int
    /// For each request written whose response has not been read: whether it was a `HEAD`.
    @exclusivity(unchecked) private var awaiting = CircularBuffer<Bool>(initialCapacity: 4)
    /// The response being read does not keep the connection open (HTTP/1.0 without keep-alive,
    /// or `Connection: close`): nothing after it is read.
    @exclusivity(unchecked) private var lastResponse = false
    @exclusivity(unchecked) private var requestChunked = false
    /// A request head was not written: its body and end are not either, and nothing more is.
    @exclusivity(unchecked) private var requestRefused = false
    /// Reads that arrived while one was being handled (a handler reading again from within):
    /// handled after it, in order.
    @exclusivity(unchecked) private var waiting = CircularBuffer<ByteBuffer>(initialCapacity: 2)
    @exclusivity(unchecked) private var handling = false

    /// - Parameter maxHeadBytes: the largest response head taken, and the most bytes of chunk
    ///   extensions and trailers.
    public init(maxHeadBytes: Int = 64 * 1024) {
        reader = HTTP1ResponseHeadReader(limit: maxHeadBytes)
        limit = maxHeadBytes
    }

    // MARK: Reading

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let allocator = context.channel.allocator
        decode(unwrapInboundIn(data), allocator: allocator) { context.fireChannelRead(self.wrapInboundOut($0)) } error: { context.fireErrorCaught($0) }
    }

    public func channelInactive(context: ChannelHandlerContext) {
        if closed() { context.fireChannelRead(wrapInboundOut(.end)) }
        context.fireChannelInactive()
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        stop()
        context.fireErrorCaught(error)
    }

    /// Reads `next` (after what an earlier read left of a head) and hands on each part it
    /// completes, in order; bytes that are not a registry's HTTP/1.1 stop reading, and their
    /// error is handed on after the parts before them. The channel handler's reading, and the
    /// proxy's ``UpstreamHandler``'s, which runs this codec itself (no pipeline hop per part).
    func decode(_ next: ByteBuffer, allocator: ByteBufferAllocator, part: (RegistryResponsePart) -> Void, error: (HTTP1HeadError) -> Void) {
        waiting.append(next)
        guard !handling else { return }
        handling = true
        defer { handling = false }
        while let next = waiting.popFirst() {
            var bytes = HTTP1Wire.joined(&partialHead, next)
            do {
                try read(&bytes, allocator: allocator, part)
            } catch let failure {
                reading = .stopped
                error(failure)
            }
        }
    }

    /// The connection closed: whether that ends a body framed by the close (unless the
    /// connection failed: then it was cut short, and no end is handed on).
    func closed() -> Bool {
        guard case .untilClose = reading else { return false }
        reading = .stopped
        return true
    }

    /// The connection failed: nothing more is read.
    func stop() {
        reading = .stopped
    }

    private func read(_ bytes: inout ByteBuffer, allocator: ByteBufferAllocator, _ emit: (RegistryResponsePart) -> Void) throws(HTTP1HeadError) {
        while bytes.readableBytes > 0 {
            switch reading {
            case .stopped:
                return
            case .head:
                // The reader is used in place (no copy): its fields' storage stays unshared.
                let found = bytes.withUnsafeReadableBytes { raw -> Result<(ForwardedResponseHead, Int, Framing)?, HTTP1HeadError> in
                    do throws(HTTP1HeadError) {
                        guard let head = try self.reader.read(raw) else { return .success(nil) }
                        let framing = try Self.framing(head, raw)
                        // A small body of known length gets room behind the head: the client side
                        // writes the two as one buffer (``HTTP1ServerCodec``).
                        var bodyRoom = 0
                        if case .length(let n) = framing, n <= Self.bodyRoomLimit,
                           Self.hasBody(status: head.status, toHEAD: self.awaiting.first == true) {
                            bodyRoom = n
                        }
                        let forwarded = Self.forwardedHead(head, raw, allocator: allocator, reason: self.lastReason, bodyRoom: bodyRoom)
                        self.lastReason = forwarded.reason
                        return .success((forwarded, head.length, framing))
                    } catch {
                        return .failure(error)
                    }
                }
                guard let (head, length, framing) = try found.get() else {
                    partialHead = bytes
                    return
                }
                bytes.moveReaderIndex(forwardBy: length)
                try headRead(head, framing: framing, emit)
            case .length(let left):
                let n = min(left, bytes.readableBytes)
                let data = bytes.readSlice(length: n)!
                reading = n == left ? afterResponse : .length(left - n)
                emit(.body(data))
                if n == left { emit(.end) }
            case .chunked(var body):
                let (data, error) = body.read(&bytes)
                reading = error != nil ? .stopped : body.isComplete ? afterResponse : .chunked(body)
                for slice in data { emit(.body(slice)) }
                if let error { throw error }
                if body.isComplete { emit(.end) }
            case .untilClose:
                let data = bytes.readSlice(length: bytes.readableBytes)!
                emit(.body(data))
            }
        }
    }

    /// How a response's body is framed, by its fields alone (the request's method and the
    /// status come after).
    private enum Framing {
        case none, length(Int), chunked, untilClose
    }

    private func headRead(_ head: ForwardedResponseHead, framing: Framing, _ emit: (RegistryResponsePart) -> Void) throws(HTTP1HeadError) {
        var head = head
        let code = head.status
        if code == 101 { throw HTTP1HeadError(status: 502, message: "registry response: 101 Switching Protocols") }
        // An interim response: the final one follows, for the same request. One that would end
        // the connection (HTTP/1.0, which has no interim responses, or Connection: close) leaves
        // in doubt whether anything after it is read: refused.
        if code >= 100 && code < 200 {
            guard head.keepAlive else {
                throw HTTP1HeadError(status: 502, message: "registry response: an interim \(code) response that closes the connection")
            }
            return
        }
        guard let wasHEAD = awaiting.popFirst() else {
            throw HTTP1HeadError(status: 502, message: "registry response: a response to no request")
        }
        lastResponse = !head.keepAlive
        if !Self.hasBody(status: code, toHEAD: wasHEAD) {
            reading = afterResponse
        } else {
            switch framing {
            case .none: reading = afterResponse
            case .length(let n): reading = .length(n)
            case .chunked: reading = .chunked(HTTP1ChunkedBody(limit: limit))
            case .untilClose:
                // The connection ends with this response, whatever its fields say: the handler
                // is told so (it drops the connection after the response, never reuses it).
                reading = .untilClose
                lastResponse = true
                head.keepAlive = false
            }
        }
        let bodiless: Bool
        switch reading {
        case .head, .stopped: bodiless = true
        default: bodiless = false
        }
        emit(.head(head))
        if bodiless { emit(.end) }
    }

    /// Whether a response may have a body whatever its fields say: not an interim one, not a
    /// 204 or 304, not the answer to a `HEAD` request.
    private static func hasBody(status: Int, toHEAD: Bool) -> Bool {
        status >= 200 && status != 204 && status != 304 && !toHEAD
    }

    /// Where reading goes once a response has ended.
    private var afterResponse: Reading { lastResponse ? .stopped : .head }

    private static func framing(_ head: HTTP1ResponseHead, _ raw: UnsafeRawBufferPointer) throws(HTTP1HeadError) -> Framing {
        func bad(_ message: String) -> HTTP1HeadError { HTTP1HeadError(status: 502, message: "registry response: \(message)") }
        var length: Range<Int>?
        var encoding: Range<Int>?
        for field in head.fields {
            let name = UnsafeRawBufferPointer(rebasing: raw[field.name])
            if HTTPBytes.equals(name, lowercase: "content-length") {
                guard length == nil else { throw bad("several Content-Length fields") }
                length = field.value
            } else if HTTPBytes.equals(name, lowercase: "transfer-encoding") {
                guard encoding == nil else { throw bad("several Transfer-Encoding fields") }
                encoding = field.value
            }
        }
        if let encoding {
            guard length == nil else { throw bad("both Content-Length and Transfer-Encoding") }
            guard HTTPBytes.equals(UnsafeRawBufferPointer(rebasing: raw[encoding]), lowercase: "chunked") else {
                throw bad("a Transfer-Encoding other than chunked")
            }
            return .chunked
        }
        if let length {
            let digits = UnsafeRawBufferPointer(rebasing: raw[length])
            guard !digits.isEmpty, digits.count <= 18, digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
                throw bad("Content-Length is not a decimal number")
            }
            let n = digits.reduce(0) { $0 * 10 + Int($1 - 0x30) }
            return n == 0 ? .none : .length(n)
        }
        return .untilClose
    }

    /// Whether a response field is never forwarded as received: hop-by-hop (RFC 9110 §7.6.1, and
    /// `Proxy-*`, `Keep-Alive`), or `Transfer-Encoding` (the client side frames the body again).
    /// Classed by the name's length first.
    static func isHopByHop(_ name: UnsafeRawBufferPointer) -> Bool {
        switch name.count {
        case 2: HTTPBytes.equals(name, lowercase: "te")
        case 7: HTTPBytes.equals(name, lowercase: "trailer") || HTTPBytes.equals(name, lowercase: "upgrade")
        case 10: HTTPBytes.equals(name, lowercase: "connection") || HTTPBytes.equals(name, lowercase: "keep-alive")
        case 16: HTTPBytes.equals(name, lowercase: "proxy-connection")
        case 17: HTTPBytes.equals(name, lowercase: "transfer-encoding")
        case 18: HTTPBytes.equals(name, lowercase: "proxy-authenticate")
        case 19: HTTPBytes.equals(name, lowercase: "proxy-authorization")
        default: false
        }
    }

    /// The head as it is forwarded: status, reason, whether the registry keeps the connection
    /// (as NIOHTTP1's `isKeepAlive` decides), and the field lines to forward copied from the
    /// bytes (see ``ForwardedResponseHead/fields``).
    /// - Parameter reason: the previous response's reason phrase, used again when this one's
    ///   bytes are the same (a registry answers "OK" again and again: no string made each time).
    /// - Parameter bodyRoom: bytes of room left behind the head, for the body.
    static func forwardedHead(_ head: HTTP1ResponseHead, _ raw: UnsafeRawBufferPointer, allocator: ByteBufferAllocator,
                              reason previousReason: String = "", bodyRoom: Int = 0) -> ForwardedResponseHead {
        func bytes(_ range: Range<Int>) -> UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: raw[range]) }
        // The Connection fields: their one value (the usual case) looked at directly; several
        // (rare) gathered. Their tokens are read on the bytes, as NIOHTTP1 reads them.
        var connectionCount = 0
        var firstConnection = 0..<0
        var tokens = HTTP1Wire.ConnectionTokens()
        // The lengths of the names the Connection values list (bit n: a name of n bytes; the
        // last bit: one of 63 or more): a field whose name has none of them is not looked up.
        var namedLengths: UInt64 = 0
        for field in head.fields where field.name.count == 10 && HTTPBytes.equals(bytes(field.name), lowercase: "connection") {
            if connectionCount == 0 { firstConnection = field.value }
            connectionCount += 1
            tokens.read(bytes(field.value))
            namedLengths |= Self.tokenLengths(bytes(field.value))
        }
        let several = connectionCount > 1 ? head.fields.filter { HTTPBytes.equals(bytes($0.name), lowercase: "connection") }.map(\.value) : []
        let keepAlive = tokens.keepsAlive(major: 1, minor: head.minorVersion)
        func named(_ name: UnsafeRawBufferPointer) -> Bool {
            guard namedLengths & 1 << min(name.count, 63) != 0 else { return false }
            switch connectionCount {
            case 0: return false
            case 1: return names(bytes(firstConnection), name)
            default: return several.contains { names(bytes($0), name) }
            }
        }
        let bodiless = head.status == 204 || head.status == 304
        // The head as written to an HTTP/1.1 client (``ForwardedResponseHead/bytes``); the room
        // beyond the registry's head is for fields written anew (`name:value` as `name: value`),
        // and `bodyRoom` for the body.
        let reason = HTTP1Wire.string(head.reason, raw, reusing: previousReason)
        var fields = allocator.buffer(capacity: head.length + 64 + bodyRoom)
        let fieldsStart = ForwardedResponseHead.writeStatusLine(status: head.status, reason: reason, to: &fields)
        var hasContentLength = false
        // Consecutive kept lines already written as they are forwarded (`name: value` and CRLF)
        // are copied as one range of the head's bytes.
        var run = 0..<0
        for field in head.fields {
            let name = bytes(field.name)
            if Self.isHopByHop(name) { continue }
            if named(name) { continue }
            if name.count == 14 && HTTPBytes.equals(name, lowercase: "content-length") {
                if bodiless { continue }
                hasContentLength = true
            }
            let (colon, end) = (field.name.upperBound, field.value.upperBound)
            if field.value.lowerBound == colon + 2, end + 2 <= raw.count, raw[colon] == UInt8(ascii: ":"), raw[colon + 1] == 0x20,
               raw[end] == 0x0D, raw[end + 1] == 0x0A {
                if !run.isEmpty && run.upperBound == field.name.lowerBound {
                    run = run.lowerBound..<end + 2
                } else {
                    if !run.isEmpty { fields.writeBytes(bytes(run)) }
                    run = field.name.lowerBound..<end + 2
                }
                continue
            }
            if !run.isEmpty { fields.writeBytes(bytes(run)) }
            run = 0..<0
            fields.writeBytes(name)
            fields.writeStaticString(": ")
            fields.writeBytes(bytes(field.value))
            fields.writeStaticString("\r\n")
        }
        if !run.isEmpty { fields.writeBytes(bytes(run)) }
        let fieldsCount = fields.readableBytes - fieldsStart
        fields.writeStaticString("\r\n")
        return ForwardedResponseHead(status: head.status, reason: reason, minorVersion: head.minorVersion, keepAlive: keepAlive,
                                     hasContentLength: hasContentLength, bytes: fields, fieldsStart: fieldsStart, fieldsCount: fieldsCount)
    }

    /// The lengths of the tokens a `Connection` value lists (``tokens(_:_:)``): bit n for a
    /// token of n bytes, bit 63 for one of 63 or more.
    static func tokenLengths(_ value: UnsafeRawBufferPointer) -> UInt64 {
        var lengths: UInt64 = 0
        tokens(value) { token in
            lengths |= 1 << min(token.count, 63)
            return false
        }
        return lengths
    }

    /// Whether a `Connection` value lists `name` (``tokens(_:_:)``, any letter case).
    private static func names(_ value: UnsafeRawBufferPointer, _ name: UnsafeRawBufferPointer) -> Bool {
        tokens(value) { HTTPBytes.equalsIgnoringCase(UnsafeRawBufferPointer(rebasing: value[$0]), name) }
    }

    /// Calls `body` with each comma-separated token of `value` (the spaces and tabs around it
    /// left out; empty ones too), until it returns true; returns whether it did.
    @discardableResult
    private static func tokens(_ value: UnsafeRawBufferPointer, _ body: (Range<Int>) -> Bool) -> Bool {
        var start = 0
        while start <= value.count {
            var end = start
            while end < value.count, value[end] != UInt8(ascii: ",") { end += 1 }
            var a = start, b = end
            while a < b, value[a] == 0x20 || value[a] == 0x09 { a += 1 }
            while b > a, value[b - 1] == 0x20 || value[b - 1] == 0x09 { b -= 1 }
            if body(a..<b) { return true }
            start = end + 1
        }
        return false
    }

    // MARK: Writing

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if let error = encode(unwrapOutboundIn(data), context: context, promise: promise) { context.fireErrorCaught(error) }
    }

    /// Writes `part` as bytes to `context` (this handler's, or that of the ``UpstreamHandler``,
    /// which runs this codec itself); returns the error that refused a head (nothing more is
    /// written or read then), for the caller to act on.
    func encode(_ part: RegistryRequestPart, context: ChannelHandlerContext, promise: EventLoopPromise<Void>?) -> HTTPParserError? {
        switch part {
        case .head(let head):
            guard !requestRefused, let bytes = Self.requestHead(head, allocator: context.channel.allocator) else {
                requestRefused = true
                reading = .stopped
                promise?.fail(HTTPParserError.invalidHeaderToken)
                return .invalidHeaderToken
            }
            requestChunked = false
            for (name, value) in head.headers where name.equalsIgnoringASCIICase("transfer-encoding") {
                requestChunked = value.equalsIgnoringASCIICase("chunked")
            }
            awaiting.append(head.method == .HEAD)
            context.write(NIOAny(bytes), promise: promise)
        case .forwardedHead(let head):
            guard !requestRefused else {
                promise?.fail(HTTPParserError.invalidHeaderToken)
                return nil
            }
            requestChunked = head.chunked
            awaiting.append(head.isHEAD)
            context.write(NIOAny(head.bytes), promise: promise)
        case .body(let body):
            guard !requestRefused else {
                promise?.fail(ChannelError.operationUnsupported)
                return nil
            }
            HTTP1Wire.writeBody(body, chunked: requestChunked, context: context, promise: promise)
        case .end:
            guard !requestRefused else {
                promise?.fail(HTTPParserError.invalidHeaderToken)
                return nil
            }
            // Trailers are never forwarded (the proxy passes none).
            HTTP1Wire.writeEnd(chunked: requestChunked, context: context, promise: promise)
            requestChunked = false
        }
        return nil
    }

    /// The request line and fields, or nil when the method is not a token, the target has a
    /// character RFC 3986 does not allow, a name is not a token or a value not field text.
    private static func requestHead(_ head: HTTPRequestHead, allocator: ByteBufferAllocator) -> ByteBuffer? {
        let method = head.method.rawValue
        guard !method.isEmpty, method.utf8.allSatisfy({ HTTPBytes.isTokenCharacter($0) }),
              !head.uri.isEmpty, head.uri.utf8.allSatisfy(HTTP1Wire.isTargetCharacter) else { return nil }
        var out = allocator.buffer(capacity: method.utf8.count + head.uri.utf8.count + 12 + HTTP1Wire.size(head.headers))
        out.writeString(method)
        out.writeStaticString(" ")
        out.writeString(head.uri)
        out.writeStaticString(head.version.minor == 0 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n")
        return HTTP1Wire.write(head.headers, to: &out) ? out : nil
    }
}

@available(*, unavailable)
extension HTTP1ClientCodec: Sendable {}
