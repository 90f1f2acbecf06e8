import NIOCore
import NIOHTTP1
@_spi(HTTPBytes) import RegTokenAccess

/// A request head as ``HTTP1ServerCodec`` read it: the forwarding rules' view of it, and the
/// body framing those rules gave it, which the codec read the body by.
@_spi(Benchmarks) public struct ProxyRequestHead: Sendable {
    public var request: RequestHead
    /// `nil` when the forwarding rules refuse the head's framing (nothing after it was read; the
    /// decision says why).
    public var framing: BodyFraming?
    /// The head's place among the connection's heads (0 for the first).
    public var number = 0
    /// Its fields are the previous head's (number - 1): the same strings, in the same order.
    public var fieldsRepeated = false
    /// The client keeps the connection after this request (its version and `Connection`
    /// tokens, as NIOHTTP1's `isKeepAlive` reads them).
    public var keepAlive = true

    public init(request: RequestHead, framing: BodyFraming?, number: Int = 0, fieldsRepeated: Bool = false, keepAlive: Bool? = nil) {
        self.request = request
        self.framing = framing
        self.number = number
        self.fieldsRepeated = fieldsRepeated
        self.keepAlive = keepAlive ?? request.keepsAlive
    }
}

/// What ``HTTP1ServerCodec`` hands on: a head, its body's bytes, and the end of each request.
@_spi(Benchmarks) public enum ProxyRequestPart: Sendable {
    // (Not boxed: the proxy's handler gets parts by a direct call, not inside a `NIOAny`.)
    case head(ProxyRequestHead)
    case body(ByteBuffer)
    case end
}

/// What ``HTTP1ServerCodec`` writes: the proxy's own answers (`head`, fields checked as they
/// are written), or a registry response on its bytes (`forwardedHead`), then body and end.
@_spi(Benchmarks) public enum ProxyResponsePart: Sendable {
    // (Not boxed: the proxy's handler hands parts to the codec by a direct call.)
    case head(HTTPResponseHead)
    case forwardedHead(ForwardedResponseHead)
    case body(ByteBuffer)
    case end
}

/// The client side of the proxy's HTTP/1.1, in place of NIOHTTP1's server codecs
/// (`configureHTTPServerPipeline`): request heads are read by ``HTTP1RequestHeadReader`` and
/// chunked bodies by ``HTTP1ChunkedBody`` straight from the socket's bytes, and responses are
/// written as bytes. The proxy's handler reads ``ProxyRequestPart``s (each head with the
/// framing the codec found, so that the decision does not work it out again) and writes
/// ``ProxyResponsePart``s: its own answers as NIOHTTP1's `HTTPResponseHead`, registry responses
/// as ``ForwardedResponseHead``s, whose field lines are copied as they are.
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
/// - An `HTTPResponseHead` (the proxy's own answers) must have token names and field-text values
///   (no CR, LF or other control byte): a head that breaks this is not written, and the
///   connection is closed. A ``ForwardedResponseHead`` is written as it is: its reason phrase and
///   fields were checked by the same rules when the registry's head was read.
///
/// Stored properties `@exclusivity(unchecked)`, for the reason and on the terms ``ProxyHandler`` gives.
@_spi(Benchmarks) public final class HTTP1ServerCodec: ChannelDuplexHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ProxyRequestPart
    public typealias OutboundIn = ProxyResponsePart
    public typealias OutboundOut = ByteBuffer

    private enum Reading {
        case head
        /// A body of known length: the bytes left.
        case length(Int)
        case chunked(HTTP1ChunkedBody)
        /// After an error, or a head whose framing is refused: nothing more is read.
        case stopped
    }

    @exclusivity(unchecked) private var reading = Reading.head
    @exclusivity(unchecked) private var reader: HTTP1RequestHeadReader
    /// The connection's previous request head, whose strings the next may use again (heads of
    /// at most ``keptHeadBytes``).
    @exclusivity(unchecked) private var previous: RequestHead?
    /// That head's field lines as they came (to its end): a head that repeats them byte for byte
    /// is read without reading its fields again (``HTTP1RequestHeadReader/readRepeated(_:fieldLines:)``).
    @exclusivity(unchecked) private var previousFieldLines: [UInt8] = []
    static let keptHeadBytes = 4096
    /// Heads read on this connection so far.
    @exclusivity(unchecked) private var headsRead = 0
    /// The previous head's method, version, framing and keep-alive: a head with its fields (the
    /// same names and values, in the same order), method and version has its framing and
    /// keep-alive, which are worked out from those alone.
    @exclusivity(unchecked) private var lastFraming: (method: String, minor: Int, framing: Result<BodyFraming, HeadViolation>, keepAlive: Bool)?
    /// The bytes of a head not yet complete (``HTTP1RequestHeadReader`` is given them again, with
    /// what follows).
    @exclusivity(unchecked) private var partialHead: ByteBuffer?
    /// The most extension and trailer bytes a chunked body may have.
    private let chunkOverheadLimit: Int

    /// For each request whose final response is not written yet: whether it was a `HEAD`.
    @exclusivity(unchecked) private var awaitingHead = CircularBuffer<Bool>(initialCapacity: 4)
    @exclusivity(unchecked) private var responseChunked = false
    @exclusivity(unchecked) private var responseBodySuppressed = false
    @exclusivity(unchecked) private var responseRefused = false
    /// A response head written as bytes and not yet handed to the channel: the body part that
    /// follows it (a registry's small answer, read with its head) is copied behind it when it
    /// fits in the room the buffer has, and the two go out as one buffer (one write through the
    /// pipeline and one `write` system call, not two and a `writev`). Handed on, alone if need
    /// be, before the next part written and by ``flush(context:)``: never held past a flush.
    @exclusivity(unchecked) private var heldHead: ByteBuffer?
    /// Reads that arrived while one was being handled (a handler reading again from within):
    /// handled after it, in order.
    @exclusivity(unchecked) private var waiting = CircularBuffer<ByteBuffer>(initialCapacity: 2)
    @exclusivity(unchecked) private var handling = false

    /// - Parameter maxHeadBytes: the largest request head taken (431 beyond), also the most
    ///   bytes of chunk extensions and trailers a body may have (400 beyond).
    public init(maxHeadBytes: Int) {
        reader = HTTP1RequestHeadReader(limit: maxHeadBytes)
        chunkOverheadLimit = maxHeadBytes
    }

    // MARK: Reading

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        decode(unwrapInboundIn(data)) { context.fireChannelRead(self.wrapInboundOut($0)) } error: { context.fireErrorCaught($0) }
    }

    /// Reads `next` (after what an earlier read left of a head) and hands on each part it
    /// completes, in order; bytes that are not HTTP/1.1 stop reading, and their error is handed
    /// on after the parts before them. The channel handler's reading, and ``ProxyHandler``'s,
    /// which runs this codec itself (no pipeline hop per part).
    public func decode(_ next: ByteBuffer, part: (ProxyRequestPart) -> Void, error: (HTTP1HeadError) -> Void) {
        waiting.append(next)
        guard !handling else { return }
        handling = true
        defer { handling = false }
        while let next = waiting.popFirst() {
            let continued = partialHead != nil
            var bytes = HTTP1Wire.joined(&partialHead, next)
            do {
                try read(&bytes, headContinued: continued, part)
            } catch let failure {
                reading = .stopped
                error(failure)
            }
        }
    }

    /// - Parameter headContinued: `bytes` start with a head an earlier read began (the reader
    ///   goes on scanning it where it stopped).
    private func read(_ bytes: inout ByteBuffer, headContinued: Bool, _ emit: (ProxyRequestPart) -> Void) throws(HTTP1HeadError) {
        var continued = headContinued
        while bytes.readableBytes > 0 {
            switch reading {
            case .stopped:
                return
            case .head:
                // The reader is used in place (no copy): its fields' storage stays unshared.
                let found = bytes.withUnsafeReadableBytes { raw -> Result<(RequestHead, Bool, Int)?, HTTP1HeadError> in
                    do throws(HTTP1HeadError) {
                        // The previous head's field lines again (a keep-alive client's usual
                        // head): its request line read, and its fields the previous head's. Only
                        // on a head's first read: one that arrives in pieces is scanned once, by
                        // the reader, not read again from its start on every piece.
                        if !continued, let previous = self.previous,
                           let head = self.previousFieldLines.withUnsafeBytes({ self.reader.readRepeated(raw, fieldLines: $0) }) {
                            let request = Self.requestHead(head, raw, fieldsOf: previous)
                            // (Kept by the bound below: a long target can make it larger.)
                            if head.length <= Self.keptHeadBytes {
                                self.previous = request
                            } else {
                                self.previous = nil
                                self.previousFieldLines = []
                            }
                            return .success((request, true, head.length))
                        }
                        guard let head = try self.reader.read(raw) else { return .success(nil) }
                        let (request, repeated) = Self.requestHead(head, raw, previous: self.previous)
                        // Kept only when small (a docker client's heads take about 500 bytes): what
                        // an idle connection holds for it is bounded by twice the head's size (its
                        // strings and an array of its fields, and its field lines).
                        if head.length <= Self.keptHeadBytes {
                            self.previous = request
                            self.previousFieldLines = Array(UnsafeRawBufferPointer(rebasing: raw[head.fieldsStart..<head.length]))
                        } else {
                            self.previous = nil
                            self.previousFieldLines = []
                        }
                        return .success((request, repeated, head.length))
                    } catch {
                        return .failure(error)
                    }
                }
                guard let (head, repeated, length) = try found.get() else {
                    partialHead = bytes
                    return
                }
                bytes.moveReaderIndex(forwardBy: length)
                continued = false
                headRead(head, fieldsRepeated: repeated, emit)
            case .length(let left):
                let n = min(left, bytes.readableBytes)
                let data = bytes.readSlice(length: n)!
                reading = n == left ? .head : .length(left - n)
                emit(.body(data))
                if n == left { emit(.end) }
            case .chunked(var body):
                let (data, error) = body.read(&bytes)
                reading = error != nil ? .stopped : body.isComplete ? .head : .chunked(body)
                for slice in data { emit(.body(slice)) }
                if let error { throw error }
                if body.isComplete { emit(.end) }
            }
        }
    }

    private func headRead(_ request: RequestHead, fieldsRepeated: Bool, _ emit: (ProxyRequestPart) -> Void) {
        let checked: Result<BodyFraming, HeadViolation>
        let keepAlive: Bool
        if fieldsRepeated, let last = lastFraming, last.minor == request.version.minor, last.method == request.method {
            (checked, keepAlive) = (last.framing, last.keepAlive)
        } else {
            (checked, keepAlive) = (request.framing(), request.keepsAlive)
        }
        lastFraming = (request.method, request.version.minor, checked, keepAlive)
        let framing: BodyFraming?
        switch checked {
        case .success(let f):
            framing = f
            switch f {
            case .none: reading = .head
            case .length(let n): reading = .length(n)
            case .chunked: reading = .chunked(HTTP1ChunkedBody(limit: chunkOverheadLimit))
            }
        case .failure:
            // The decision refuses it with the same rules, and closes.
            framing = nil
            reading = .stopped
        }
        awaitingHead.append(request.method == "HEAD")
        // Decided before the head is handed on: the handler may act on the connection meanwhile.
        let bodiless: Bool
        if case .head = reading { bodiless = true } else { bodiless = false }
        emit(.head(ProxyRequestHead(request: request, framing: framing, number: headsRead, fieldsRepeated: fieldsRepeated, keepAlive: keepAlive)))
        headsRead += 1
        if bodiless { emit(.end) }
    }

    /// The head's `String`s, for the forwarding rules and the handler. A string of `previous`
    /// (the connection's previous head) whose bytes are exactly the new bytes at the same place
    /// is used again rather than made anew: a client on a keep-alive connection sends most of
    /// its fields, its credentials among them, byte for byte again, and a string made from
    /// equal bytes would be equal (no allocation, no UTF-8 check, one comparison of bytes).
    /// When every field is the previous head's, so is the array of them. (Each value is compared
    /// in constant time; which field first differs is not hidden, only where in its value.)
    /// - Returns: the head, and whether its fields are all the previous head's.
    static func requestHead(_ head: HTTP1RequestHead, _ raw: UnsafeRawBufferPointer, previous: RequestHead?) -> (RequestHead, fieldsRepeated: Bool) {
        func text(_ range: Range<Int>, _ old: String?) -> String { HTTP1Wire.string(range, raw, reusing: old) }
        let oldFields = previous?.headers ?? []
        var same = 0
        while same < head.fields.count && same < oldFields.count && HTTP1Wire.equals(oldFields[same].name, head.fields[same].name, raw)
            && HTTP1Wire.equals(oldFields[same].value, head.fields[same].value, raw) {
            same += 1
        }
        let repeated = previous != nil && same == head.fields.count && same == oldFields.count
        var fields = oldFields
        if !repeated {
            fields = []
            fields.reserveCapacity(head.fields.count)
            fields.append(contentsOf: oldFields[..<same])
            for i in same..<head.fields.count {
                let old = i < oldFields.count ? oldFields[i] : nil
                fields.append((text(head.fields[i].name, old?.name), text(head.fields[i].value, old?.value)))
            }
        }
        return (RequestHead(method: text(head.method, previous?.method), target: text(head.target, previous?.target),
                            version: (1, head.minorVersion), headers: fields), repeated)
    }

    /// The head read by ``HTTP1RequestHeadReader/readRepeated(_:fieldLines:)``: its method and
    /// target (the previous head's strings when they are the same bytes), and the previous
    /// head's fields, whose field lines it repeats.
    static func requestHead(_ head: HTTP1RequestHead, _ raw: UnsafeRawBufferPointer, fieldsOf previous: RequestHead) -> RequestHead {
        RequestHead(method: HTTP1Wire.string(head.method, raw, reusing: previous.method),
                    target: HTTP1Wire.string(head.target, raw, reusing: previous.target),
                    version: (1, head.minorVersion), headers: previous.headers)
    }

    // MARK: Writing

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        encode(unwrapOutboundIn(data), context: context, promise: promise)
    }

    /// Writes `part` as bytes to `context` (this handler's, or that of ``ProxyHandler``, which
    /// runs this codec itself and writes through its own context).
    func encode(_ part: ProxyResponsePart, context: ChannelHandlerContext, promise: EventLoopPromise<Void>?) {
        switch part {
        case .head(var head):
            writeHeld(context: context)
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
            write(head: bytes, context: context, promise: promise)
        case .forwardedHead(let head):
            writeHeld(context: context)
            // A registry's final response (never 1xx: the registry side reads those past), its
            // fields checked when they were read; on a 204 or 304, without Content-Length.
            responseBodySuppressed = awaitingHead.popFirst() ?? false
            let chunked = head.status != 204 && head.status != 304 && !head.hasContentLength && head.minorVersion >= 1
            responseChunked = chunked && !responseBodySuppressed
            responseRefused = false
            if head.minorVersion == 1 && !head.close && !chunked {
                // What the registry side wrote is this head (the usual case): written as it is.
                write(head: head.bytes, context: context, promise: promise)
                return
            }
            var out = context.channel.allocator.buffer(capacity: 64 + head.reason.utf8.count + head.bytes.readableBytes)
            ForwardedResponseHead.writeStatusLine(status: head.status, reason: head.reason, minorVersion: head.minorVersion, to: &out)
            out.writeImmutableBuffer(head.fields)
            if head.close { out.writeStaticString("Connection: close\r\n") }
            if chunked { out.writeStaticString("transfer-encoding: chunked\r\n") }
            out.writeStaticString("\r\n")
            write(head: out, context: context, promise: promise)
        case .body(let body):
            guard !responseRefused, !responseBodySuppressed else {
                writeHeld(context: context)
                promise?.fail(NIOHTTPResponseEncoderError.responseBodyNotAllowed)
                return
            }
            if var head = heldHead {
                // (Held only when the body is not chunked: its bytes follow the head as they are.)
                heldHead = nil
                if body.readableBytes <= head.writableBytes {
                    head.writeImmutableBuffer(body)
                    context.write(NIOAny(head), promise: promise)
                    return
                }
                context.write(NIOAny(head), promise: nil)
            }
            HTTP1Wire.writeBody(body, chunked: responseChunked, context: context, promise: promise)
        case .end:
            writeHeld(context: context)
            // The registry's trailers are not passed on (as for requests: nobody reads them).
            HTTP1Wire.writeEnd(chunked: responseChunked && !responseRefused, context: context, promise: promise)
            responseChunked = false
            responseBodySuppressed = false
        }
    }

    /// Writes a response head, or holds it for the body part that may follow (``heldHead``):
    /// when that body is not chunked, is not suppressed (the answer to a `HEAD` request), and
    /// nothing waits for this write's promise. (A 204's or 304's head, which no body follows, is
    /// held until its end, which comes with it.)
    private func write(head: ByteBuffer, context: ChannelHandlerContext, promise: EventLoopPromise<Void>?) {
        if promise == nil && !responseChunked && !responseBodySuppressed {
            heldHead = head
        } else {
            context.write(NIOAny(head), promise: promise)
        }
    }

    /// Hands a held head on to the channel.
    func writeHeld(context: ChannelHandlerContext) {
        guard let head = heldHead else { return }
        heldHead = nil
        context.write(NIOAny(head), promise: nil)
    }

    /// Flushes what was written, a held head included: ``ProxyHandler``, which runs this codec
    /// itself, flushes the client's side through here.
    public func flush(context: ChannelHandlerContext) {
        writeHeld(context: context)
        context.flush()
    }

    /// The status line and fields, or nil when a name is not a token or a value is not field text.
    private static func responseHead(_ head: HTTPResponseHead, allocator: ByteBufferAllocator) -> ByteBuffer? {
        var out = allocator.buffer(capacity: 32 + head.status.reasonPhrase.utf8.count + HTTP1Wire.size(head.headers))
        out.writeStaticString(head.version.minor == 0 ? "HTTP/1.0 " : "HTTP/1.1 ")
        out.writeString(String(head.status.code))
        out.writeStaticString(" ")
        let reason = head.status.reasonPhrase
        guard reason.utf8.allSatisfy({ HTTPBytes.isFieldText($0) }) else { return nil }
        out.writeString(reason)
        out.writeStaticString("\r\n")
        return HTTP1Wire.write(head.headers, to: &out) ? out : nil
    }
}

@available(*, unavailable)
extension HTTP1ServerCodec: Sendable {}
