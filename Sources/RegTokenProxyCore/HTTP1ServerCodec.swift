import NIOCore
import NIOHTTP1
@_spi(HTTPBytes) import RegTokenAccess

/// The client side of the proxy's HTTP/1.1, in place of NIOHTTP1's server codecs
/// (`configureHTTPServerPipeline`): request heads are read by ``HTTP1RequestHeadReader`` and
/// chunked bodies by ``HTTP1ChunkedBody`` straight from the socket's bytes, and responses are
/// written as bytes. The proxy's handler sees the same `HTTPServerRequestPart`s and writes the
/// same `HTTPServerResponsePart`s as with NIOHTTP1.
///
/// Reading:
/// - A body is framed by the forwarding rules of `RequestHead` (`framing()`), the very rules the
///   access decision applies: `Content-Length`, or a single `Transfer-Encoding: chunked`. A head
///   whose framing those rules refuse is handed on (the decision answers it with 400 and closes)
///   and nothing after it is read: where its body would end is exactly what is in doubt.
/// - Bytes that are not HTTP/1.1 reach the handler as ``HTTP1HeadError`` (400, 431 for a head
///   over the limit, 505 for another HTTP version), and nothing after them is read.
/// - Pipelined requests are all read, in order; the handler holds those behind the exchange in
///   progress. Trailers are read past and not handed on (a registry has no use for them).
///
/// Writing, as NIOHTTP1's response encoder does:
/// - A response that may have a body and has no `Content-Length` is chunked on HTTP/1.1 (on
///   HTTP/1.0 it ends with the connection, which the handler closes).
/// - 1xx (but 101), 204 and 304 responses have no body and no framing headers; a response to a
///   `HEAD` request keeps its framing headers and has no body.
/// - Header names must be tokens and values field text (no CR, LF or other control byte): a
///   response head that breaks this is not written, and the connection is closed.
@_spi(Benchmarks) public final class HTTP1ServerCodec: ChannelDuplexHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = HTTPServerRequestPart
    public typealias OutboundIn = HTTPServerResponsePart
    public typealias OutboundOut = ByteBuffer

    private enum Reading {
        case head
        /// A body of known length: the bytes left.
        case length(Int)
        case chunked(HTTP1ChunkedBody)
        /// After an error, or a head whose framing is refused: nothing more is read.
        case stopped
    }

    private var reading = Reading.head
    private var reader: HTTP1RequestHeadReader
    /// The bytes of a head not yet complete (``HTTP1RequestHeadReader`` is given them again, with
    /// what follows).
    private var partialHead: ByteBuffer?
    /// The most extension and trailer bytes a chunked body may have.
    private let chunkOverheadLimit: Int

    /// For each request whose final response is not written yet: whether it was a `HEAD`.
    private var awaitingHead = CircularBuffer<Bool>(initialCapacity: 4)
    private var responseChunked = false
    private var responseBodySuppressed = false
    private var responseRefused = false

    /// - Parameter maxHeadBytes: the largest request head taken (431 beyond), also the most
    ///   bytes of chunk extensions and trailers a body may have (400 beyond).
    public init(maxHeadBytes: Int) {
        reader = HTTP1RequestHeadReader(limit: maxHeadBytes)
        chunkOverheadLimit = maxHeadBytes
    }

    // MARK: Reading

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if var partial = partialHead {
            partialHead = nil
            partial.writeBuffer(&bytes)
            bytes = partial
        }
        do {
            try read(&bytes, context: context)
        } catch {
            reading = .stopped
            context.fireErrorCaught(error)
        }
    }

    private func read(_ bytes: inout ByteBuffer, context: ChannelHandlerContext) throws(HTTP1HeadError) {
        while bytes.readableBytes > 0 {
            switch reading {
            case .stopped:
                return
            case .head:
                // The reader is used in place (no copy): its fields' storage stays unshared.
                let found = bytes.withUnsafeReadableBytes { raw -> Result<((HTTPRequestHead, RequestHead), Int)?, HTTP1HeadError> in
                    do throws(HTTP1HeadError) {
                        guard let head = try self.reader.read(raw) else { return .success(nil) }
                        return .success((Self.requestHead(head, raw), head.length))
                    } catch {
                        return .failure(error)
                    }
                }
                guard let (head, length) = try found.get() else {
                    partialHead = bytes
                    return
                }
                bytes.moveReaderIndex(forwardBy: length)
                headRead(head, context: context)
            case .length(let left):
                let n = min(left, bytes.readableBytes)
                let data = bytes.readSlice(length: n)!
                reading = n == left ? .head : .length(left - n)
                context.fireChannelRead(wrapInboundOut(.body(data)))
                if n == left { context.fireChannelRead(wrapInboundOut(.end(nil))) }
            case .chunked(var body):
                let (data, error) = body.read(&bytes)
                reading = error != nil ? .stopped : body.isComplete ? .head : .chunked(body)
                for slice in data { context.fireChannelRead(wrapInboundOut(.body(slice))) }
                if let error { throw error }
                if body.isComplete { context.fireChannelRead(wrapInboundOut(.end(nil))) }
            }
        }
    }

    private func headRead(_ heads: (HTTPRequestHead, RequestHead), context: ChannelHandlerContext) {
        let (head, request) = heads
        switch request.framing() {
        case .success(.none):
            reading = .head
        case .success(.length(let n)):
            reading = .length(n)
        case .success(.chunked):
            reading = .chunked(HTTP1ChunkedBody(limit: chunkOverheadLimit))
        case .failure:
            // The decision refuses it with the same rules, and closes.
            reading = .stopped
        }
        awaitingHead.append(head.method == .HEAD)
        context.fireChannelRead(wrapInboundOut(.head(head)))
        if case .head = reading { context.fireChannelRead(wrapInboundOut(.end(nil))) }
    }

    /// The head's `String`s, as NIOHTTP1's decoder makes them (bytes that are not UTF-8 become
    /// U+FFFD there too; the forwarding rules refuse control bytes, not those).
    /// (Both values share the fields' storage.)
    private static func requestHead(_ head: HTTP1RequestHead, _ raw: UnsafeRawBufferPointer) -> (HTTPRequestHead, RequestHead) {
        func string(_ range: Range<Int>) -> String { String(decoding: UnsafeRawBufferPointer(rebasing: raw[range]), as: UTF8.self) }
        var fields: [(String, String)] = []
        fields.reserveCapacity(head.fields.count)
        for field in head.fields { fields.append((string(field.name), string(field.value))) }
        let method = string(head.method)
        let target = string(head.target)
        return (HTTPRequestHead(version: HTTPVersion(major: 1, minor: head.minorVersion), method: HTTPMethod(rawValue: method),
                                uri: target, headers: HTTPHeaders(fields)),
                RequestHead(method: method, target: target, version: (1, head.minorVersion), headers: fields.map { (name: $0.0, value: $0.1) }))
    }

    // MARK: Writing

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(var head):
            let code = head.status.code
            // A 1xx (but 101) is followed by the final response to the same request.
            if !(code >= 100 && code < 200 && code != 101) {
                responseBodySuppressed = awaitingHead.popFirst() ?? false
            }
            // (Removing only what is there: a removal copies the headers the handler still holds.)
            if !head.status.mayHaveResponseBody {
                if head.headers.contains(name: "content-length") { head.headers.remove(name: "content-length") }
                if head.headers.contains(name: "transfer-encoding") { head.headers.remove(name: "transfer-encoding") }
                responseChunked = false
            } else if head.headers.contains(name: "content-length") {
                if head.headers.contains(name: "transfer-encoding") { head.headers.remove(name: "transfer-encoding") }
                responseChunked = false
            } else if head.version.major == 1 && head.version.minor >= 1 {
                head.headers.replaceOrAdd(name: "transfer-encoding", value: "chunked")
                responseChunked = !responseBodySuppressed
            } else {
                responseChunked = false
            }
            guard let bytes = Self.responseHead(head, allocator: context.channel.allocator) else {
                responseRefused = true
                promise?.fail(HTTPParserError.invalidHeaderToken)
                context.close(promise: nil)
                return
            }
            responseRefused = false
            context.write(wrapOutboundOut(bytes), promise: promise)
        case .body(let part):
            guard !responseRefused, !responseBodySuppressed, case .byteBuffer(let body) = part else {
                promise?.fail(NIOHTTPResponseEncoderError.responseBodyNotAllowed)
                return
            }
            if responseChunked && body.readableBytes > 0 {
                var size = context.channel.allocator.buffer(capacity: 18)
                size.writeString(String(body.readableBytes, radix: 16))
                size.writeStaticString("\r\n")
                context.write(wrapOutboundOut(size), promise: nil)
                context.write(wrapOutboundOut(body), promise: nil)
                context.write(wrapOutboundOut(context.channel.allocator.buffer(staticString: "\r\n")), promise: promise)
            } else {
                context.write(wrapOutboundOut(body), promise: promise)
            }
        case .end:
            // The registry's trailers are not passed on (as for requests: nobody reads them).
            if responseChunked && !responseRefused {
                context.write(wrapOutboundOut(context.channel.allocator.buffer(staticString: "0\r\n\r\n")), promise: promise)
            } else if let promise {
                // Nothing to write; the promise still completes in order.
                context.write(wrapOutboundOut(context.channel.allocator.buffer(capacity: 0)), promise: promise)
            }
            responseChunked = false
            responseBodySuppressed = false
        }
    }

    /// The status line and fields, or nil when a name is not a token or a value is not field text.
    private static func responseHead(_ head: HTTPResponseHead, allocator: ByteBufferAllocator) -> ByteBuffer? {
        var size = 64
        for (name, value) in head.headers { size += name.utf8.count + value.utf8.count + 4 }
        var out = allocator.buffer(capacity: size)
        out.writeStaticString(head.version.minor == 0 ? "HTTP/1.0 " : "HTTP/1.1 ")
        out.writeString(String(head.status.code))
        out.writeStaticString(" ")
        let reason = head.status.reasonPhrase
        guard reason.utf8.allSatisfy({ HTTPBytes.isFieldText($0) }) else { return nil }
        out.writeString(reason)
        out.writeStaticString("\r\n")
        for (name, value) in head.headers {
            guard !name.isEmpty, name.utf8.allSatisfy({ HTTPBytes.isTokenCharacter($0) }),
                  value.utf8.allSatisfy({ HTTPBytes.isFieldText($0) }) else { return nil }
            out.writeString(name)
            out.writeStaticString(": ")
            out.writeString(value)
            out.writeStaticString("\r\n")
        }
        out.writeStaticString("\r\n")
        return out
    }
}

@available(*, unavailable)
extension HTTP1ServerCodec: Sendable {}

extension HTTP1ChunkedBody {
    /// Reads the body's part of `bytes` (moving past it) and returns its data as slices of them,
    /// and the error that stopped it, if any: the data before an error is returned too, so that
    /// what is handed on does not depend on how the bytes arrived. The slices are made before
    /// anything is handed on: a handler may write or close meanwhile, and must not meet these
    /// bytes borrowed.
    mutating func read(_ bytes: inout ByteBuffer) -> (data: [ByteBuffer], error: HTTP1HeadError?) {
        var data: [Range<Int>] = []
        let result = bytes.withUnsafeReadableBytes { raw -> Result<Int, HTTP1HeadError> in
            do throws(HTTP1HeadError) {
                return .success(try read(raw) { data.append($0) })
            } catch {
                return .failure(error)
            }
        }
        let start = bytes.readerIndex
        let slices = data.map { bytes.getSlice(at: start + $0.lowerBound, length: $0.count)! }
        switch result {
        case .success(let used):
            bytes.moveReaderIndex(forwardBy: used)
            return (slices, nil)
        case .failure(let error):
            return (slices, error)
        }
    }
}

extension HTTPHeaders {
    /// Whether a message with these fields keeps the connection open, as NIOHTTP1's
    /// `isKeepAlive` decides it (the `Connection` tokens `close` and `keep-alive`, any letter
    /// case; both, or either twice, mean close; neither: open on HTTP/1.1, closed on 1.0),
    /// without its allocations: headers made through the public API leave NIOHTTP1 to split
    /// every `Connection` value into a new array on each call.
    func keepsAlive(version: HTTPVersion) -> Bool {
        var close = false
        var keepAlive = false
        var seen = false
        for (name, value) in self where name.equalsIgnoringASCIICase("connection") {
            // One pass over the value: each comma-separated token, without the whitespace
            // around it, compared as it goes with the two words (letters in either case).
            var length = 0
            var spaceAfter = false
            var maybeClose = true
            var maybeKeepAlive = true
            func endToken() {
                let isClose = maybeClose && length == 5
                let isKeepAlive = maybeKeepAlive && length == 10
                if isClose || isKeepAlive {
                    if seen || isClose { close = true } else { keepAlive = true }
                    seen = true
                }
                (length, spaceAfter, maybeClose, maybeKeepAlive) = (0, false, true, true)
            }
            for c in value.utf8 {
                switch c {
                case UInt8(ascii: ","):
                    endToken()
                case 0x20, 0x09:
                    if length > 0 { spaceAfter = true }
                default:
                    let lower = c >= 0x41 && c <= 0x5A ? c + 0x20 : c
                    if spaceAfter || length >= 5 || lower != Self.closeWord[length] { maybeClose = false }
                    if spaceAfter || length >= 10 || lower != Self.keepAliveWord[length] { maybeKeepAlive = false }
                    length += 1
                }
            }
            endToken()
        }
        if close { return false }
        if keepAlive { return true }
        return version.major == 1 && version.minor >= 1
    }

    private static let closeWord = Array("close".utf8)
    private static let keepAliveWord = Array("keep-alive".utf8)
}
