import Logging
import NIOCore
import NIOHTTP1
import RegToken
import RegTokenAccess

#if canImport(Glibc)
import Glibc
#endif

/// One client connection: decides on each request, answers refusals itself, and forwards what
/// is allowed to the registry over one upstream keep-alive connection on the same event loop,
/// streaming bodies both ways with backpressure (no reads from a side whose peer cannot write).
///
/// It reads and writes the client's bytes: its ``HTTP1ServerCodec`` runs here rather than as a
/// handler before it, as the registry side's codec runs in ``UpstreamHandler``, so that no part
/// of a message costs a pipeline hop (a proxied request takes the socket's read, one write each
/// way per message part, and a flush each way).
///
/// What happens when is ``ProxyConnectionStateMachine``'s: every callback here turns into one of
/// its events, and this class performs the actions it returns (writes, reads, timers, logging).
///
/// Its stored properties, and those of ``UpstreamHandler`` and the two codecs, are
/// `@exclusivity(unchecked)`: Swift's run-time check that no two accesses to a class's property
/// overlap took 6 % of a proxied exchange's time in these classes (BENCHMARKS.md, "Tenth
/// round"), and here no access can overlap another: each runs on the channel's event loop, and
/// none is held across a call that could reach the same property (the state machine's mutating
/// methods, the credentials memo's `inout` through the decision and the codecs' readers are
/// pure: no callback, no I/O). Keep it so: never pass one of these properties `inout`, or mutate
/// it in place, around a call that can come back into the handler.
package final class ProxyHandler: ChannelDuplexHandler {
    package typealias InboundIn = ByteBuffer
    package typealias OutboundIn = ByteBuffer
    package typealias OutboundOut = ByteBuffer

    private let state: ProxyState
    private let config: ProxyConfiguration
    /// The request path's metrics: this event loop's counters.
    private let counters: LoopCounters
    /// This event loop's queue of the buffered access log, when there is one.
    private let logQueue: AccessLog.Queue?
    private let logger: Logger
    private let connector: UpstreamConnector
    @exclusivity(unchecked) private var context: ChannelHandlerContext?
    @exclusivity(unchecked) private var machine = ProxyConnectionStateMachine()
    private let codec: HTTP1ServerCodec

    @exclusivity(unchecked) private var upstream: (any Channel)?
    @exclusivity(unchecked) private var upstreamHandler: UpstreamHandler?
    /// Parts of pipelined requests that arrived before the exchange in progress ended; handled
    /// in order once it has. While any wait, nothing more is read from the client, so they are
    /// bounded by what one read brought. When none wait (clients that do not pipeline), reads are
    /// never withheld, so the socket's read interest is never switched off and on per request.
    @exclusivity(unchecked) private var queued = CircularBuffer<ProxyRequestPart>()
    /// A read from the client was asked for while parts were queued.
    @exclusivity(unchecked) private var readHeldForQueue = false
    @exclusivity(unchecked) private var draining = false
    /// Within a read batch from the client (its end flushes what went to the registry).
    @exclusivity(unchecked) private var readingClient = false
    /// Within a read batch from the registry (its end flushes what went to the client).
    @exclusivity(unchecked) private var readingUpstream = false
    /// Something was written to the client within the registry's read batch: its end moves
    /// ``lastActivity`` (one clock read per batch, not per part written).
    @exclusivity(unchecked) private var wroteInBatch = false
    /// The request bytes stopped being HTTP/1.1 behind the exchange in progress: the answer
    /// (400, 431 or 505) and a close once it has ended.
    @exclusivity(unchecked) private var malformedQueued: HTTP1HeadError?
    /// Request parts waiting for the registry connection.
    @exclusivity(unchecked) private var pending: [RegistryRequestPart] = []
    // The connection's deadlines, kept as values and watched by one scheduled task
    // (``deadlinesDue()``): a request sets and clears them without touching the event loop's
    // timer heap; the task, when it fires, acts on what is due and schedules itself for the next.
    /// No request head by then: the connection closes (set while waiting for a head).
    @exclusivity(unchecked) private var headerDeadline: NIODeadline?
    /// No response head from the registry by then: 504 (set once the request is sent).
    @exclusivity(unchecked) private var responseDeadline: NIODeadline?
    /// The last read from or write to the client: `idleTimeout` without either closes the connection.
    @exclusivity(unchecked) private var lastActivity = NIODeadline.uptimeNanoseconds(0)
    @exclusivity(unchecked) private var watch: Scheduled<Void>?
    @exclusivity(unchecked) private var watchAt = NIODeadline.distantFuture

    // The exchange in progress: what is forwarded, what a refusal says, and the access log.
    /// The field lines of the last head forwarded (all after its request line), with its number
    /// and method: the next head, if its fields repeat that one's and its method is the same, is
    /// forwarded with them (``forwardedHead(_:framing:scheme:clientAddress:fieldLines:reusing:allocator:)``).
    @exclusivity(unchecked) private var lastForwarded: (number: Int, method: String, fieldLines: ByteBuffer)?
    /// The buffer forwarded heads are written into, written again for each: by the next head,
    /// the registry connection has usually sent the one before, and the buffer is this
    /// handler's alone (no allocation); while a write still holds it, a new one is made (copy on
    /// write: a head waiting to go out is never changed). Kept only when small.
    @exclusivity(unchecked) private var forwardBuffer: ByteBuffer?
    @exclusivity(unchecked) private var refusal: (code: String, message: String, reason: String)?
    @exclusivity(unchecked) private var requestVersion = HTTPVersion.http1_1
    @exclusivity(unchecked) private var started = NIODeadline.now()
    @exclusivity(unchecked) private var method = ""
    @exclusivity(unchecked) private var path = ""
    @exclusivity(unchecked) private var tokenID: UUIDBytes?
    /// The account of the token that was allowed, for the access log.
    @exclusivity(unchecked) private var account: String?
    /// The client's address, for the access log (read once per connection).
    @exclusivity(unchecked) private var clientAddress: String?
    /// The connection's peer as an address, for tokens limited to addresses (read once per connection).
    @exclusivity(unchecked) private var peer: IPAddress?
    @exclusivity(unchecked) private var status = 0
    /// The last `Authorization` value decoded on this connection, and its token.
    @exclusivity(unchecked) private var credentials = CredentialsMemo()

    /// Sets up a client connection's pipeline: the proxy's handler, which runs the HTTP/1.1
    /// codec. (TLS, when there is any, comes before.)
    package static func configureClientPipeline(_ pipeline: ChannelPipeline.SynchronousOperations, state: ProxyState,
                                                config: ProxyConfiguration, metrics: ProxyMetrics, logger: Logger,
                                                connector: UpstreamConnector? = nil) throws {
        try pipeline.addHandler(ProxyHandler(state: state, config: config, counters: metrics.counters(on: pipeline.eventLoop),
                                             logQueue: config.accessLog?.queue(on: pipeline.eventLoop), logger: logger, connector: connector))
    }

    package init(state: ProxyState, config: ProxyConfiguration, counters: LoopCounters, logQueue: AccessLog.Queue?, logger: Logger,
                 connector: UpstreamConnector? = nil) {
        self.state = state
        self.config = config
        self.counters = counters
        self.logQueue = logQueue
        self.logger = logger
        self.codec = HTTP1ServerCodec(maxHeadBytes: config.maxHeaderBytes)
        self.connector = connector ?? .tcp(host: config.upstreamHost, port: config.upstreamPort, timeout: config.upstreamConnectTimeout)
    }

    var downstreamWritable: Bool { context?.channel.isWritable ?? false }

    // MARK: Lifecycle

    package func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { connectionStarted() }
    }

    package func handlerRemoved(context: ChannelHandlerContext) {
        stopWatch()
        self.context = nil
    }

    package func channelActive(context: ChannelHandlerContext) {
        connectionStarted()
        context.fireChannelActive()
    }

    private func connectionStarted() {
        lastActivity = context?.eventLoop.now ?? .now()
        watch(lastActivity + config.idleTimeout)
        startHeaderTimer()
    }

    package func channelInactive(context: ChannelHandlerContext) {
        perform(machine.clientClosed())
        stopWatch()
        self.context = nil
        context.fireChannelInactive()
    }

    package func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            // Graceful drain: requests queued behind the one in progress are not started.
            queued.removeAll()
            perform(machine.quiesce())
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    package func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let error = error as? HTTP1HeadError {
            malformed(error)
            return
        }
        logger.debug("connection error", metadata: ["error": "\(error)"])
        perform(machine.idleTimedOut())
    }

    /// Bytes that are not HTTP/1.1. Behind a request whose answer is awaited (a pipelining
    /// client), the answer waits for that one, as a queued request would; else now.
    private func malformed(_ error: HTTP1HeadError) {
        if !queued.isEmpty || machine.awaitingResponse {
            malformedQueued = error
            return
        }
        answerMalformed(error)
    }

    private func answerMalformed(_ error: HTTP1HeadError) {
        malformedQueued = nil
        refusal = ("UNSUPPORTED", "malformed HTTP request: \(error.message)", error.status == 431 ? "headers_too_large" : "malformed_request")
        method = ""
        path = ""
        perform(machine.protocolError(status: error.status))
    }

    // MARK: Client → proxy

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        codec.decode(unwrapInboundIn(data)) { part in
            // (Per part: a TLS handler may end a read batch within this read.)
            self.readingClient = true
            self.received(part, context: context)
        } error: { error in
            self.malformed(error)
        }
    }

    private func received(_ part: ProxyRequestPart, context: ChannelHandlerContext) {
        // A pipelined request (its head while an exchange is in progress, and everything after it)
        // waits its turn.
        if !queued.isEmpty {
            queued.append(part)
            return
        }
        if case .head = part, !machine.isIdle {
            if case .closing = machine.state { return }
            queued.append(part)
            return
        }
        handle(part, context: context)
    }

    private func handle(_ part: ProxyRequestPart, context: ChannelHandlerContext) {
        switch part {
        case .head(let head):
            requestHead(head, context: context)
        case .body(let buffer):
            counters.counts.receivedBytes += buffer.readableBytes
            perform(machine.requestBody(), request: .body(buffer))
        case .end:
            // Trailers are not forwarded: a registry has no use for them, and they are one
            // more place for headers the decision never saw.
            perform(machine.requestEnd(), request: .end)
            // Within a read from the client, the read's end flushes; a queued request handed
            // over later (after a response) is flushed now.
            if !readingClient { upstreamHandler?.flush() }
        }
    }

    package func channelReadComplete(context: ChannelHandlerContext) {
        readingClient = false
        lastActivity = context.eventLoop.now
        upstreamHandler?.flush()
        context.fireChannelReadComplete()
    }

    /// Backpressure: no reads from the client while the registry side cannot take more, or while
    /// pipelined requests wait.
    package func read(context: ChannelHandlerContext) {
        if !queued.isEmpty {
            readHeldForQueue = true
            return
        }
        perform(machine.clientReadRequested(upstreamWritable: upstream?.isWritable ?? true))
    }

    /// Hands queued parts over once the exchange before them has ended, in order, until one is a
    /// head that must wait again; then lets reads go on when nothing waits.
    private func drainQueue() {
        guard !draining, let context else { return }
        draining = true
        defer { draining = false }
        while let part = queued.first {
            if case .closing = machine.state {
                queued.removeAll()
                break
            }
            if case .head = part, !machine.isIdle { break }
            queued.removeFirst()
            handle(part, context: context)
        }
        if queued.isEmpty, let error = malformedQueued, machine.isIdle {
            answerMalformed(error)
            return
        }
        if queued.isEmpty && readHeldForQueue {
            readHeldForQueue = false
            read(context: context)
        }
    }

    /// A flush or write from the channel's side (not the proxy's own) passes the codec too: a
    /// response head it holds for its body goes out first.
    package func flush(context: ChannelHandlerContext) {
        codec.flush(context: context)
    }

    package func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        codec.writeHeld(context: context)
        context.write(data, promise: promise)
    }

    package func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { perform(machine.clientBecameWritable()) }
        context.fireChannelWritabilityChanged()
    }

    private func requestHead(_ head: ProxyRequestHead, context: ChannelHandlerContext) {
        let request = head.request
        started = .now()
        requestVersion = HTTPVersion(major: 1, minor: request.version.minor == 0 ? 0 : 1)
        tokenID = nil
        account = nil
        if clientAddress == nil {
            clientAddress = context.channel.remoteAddress?.ipAddress
            peer = clientAddress.flatMap(IPAddress.init)
        }
        status = 0
        refusal = nil
        method = request.method
        // The path for the log: the target without its query, at most 512 bytes (the target
        // itself when it is that already: no copy).
        let target = request.target.utf8.span
        var pathEnd = 0
        while pathEnd < target.count && pathEnd < 512 && target[pathEnd] != UInt8(ascii: "?") { pathEnd += 1 }
        path = pathEnd == target.count ? request.target : target.extracting(0..<pathEnd).withUnsafeBufferPointer { String(decoding: $0, as: UTF8.self) }
        let http10 = request.version.minor == 0
        let keepAlive = head.keepAlive
        // Behind trusted reverse proxies, the client their X-Forwarded-For names; else the peer.
        let client = config.trustedProxies.isEmpty
            ? peer : ClientAddress.resolve(peer: peer, forwardedFor: request.values("x-forwarded-for"), trusted: config.trustedProxies)
        // The codec read the body by the framing it found; a head it refused is checked again
        // here only for the reason, which the answer names.
        let framing = head.framing.map { .success($0) } ?? request.framing()
        let decision = state.decide(request, framing: framing, client: client, now: WallClock.now(), credentials: &credentials)
        counters.counts.verification.record(nanoseconds: (NIODeadline.now() - started).nanoseconds)
        counters.counts.record(decision)

        switch decision {
        case .deny(let denied):
            tokenID = denied.tokenID
            refusal = (denied.code, denied.message, denied.reason.rawValue)
            perform(machine.requestHead(.refuse(status: denied.status, close: denied.close), keepAlive: keepAlive, http10: http10))
        case .allow(let allowed):
            tokenID = allowed.tokenID
            account = allowed.account
            // The registry builds absolute upload URLs from Host and X-Forwarded-Proto: with TLS
            // here, they must say https (and a client cannot claim otherwise).
            // The field lines of the head before, when this one's fields and method are its.
            var repeated: ByteBuffer?
            if head.fieldsRepeated, let last = lastForwarded, last.number == head.number - 1, last.method == request.method {
                repeated = last.fieldLines
            }
            let forwarded = Self.forwardedHead(request, framing: allowed.framing, scheme: config.clientScheme == "https" ? "https" : "http",
                                               clientAddress: config.trustedProxies.isEmpty ? clientAddress : client?.description,
                                               fieldLines: repeated, reusing: &forwardBuffer, allocator: context.channel.allocator)
            // Only small heads and buffers are kept (a buffer grows to the largest head written
            // into it, dropped fields such as a long Authorization counted): an idle connection
            // holds at most two buffers of a few KiB.
            if forwarded.head.bytes.readableBytes <= HTTP1ServerCodec.keptHeadBytes {
                lastForwarded = (head.number, request.method, forwarded.fieldLines)
            } else {
                lastForwarded = nil
            }
            if forwarded.head.bytes.capacity <= 2 * HTTP1ServerCodec.keptHeadBytes { forwardBuffer = forwarded.head.bytes }
            perform(machine.requestHead(.forward, keepAlive: keepAlive, http10: http10), request: .forwardedHead(forwarded.head))
        }
    }

    /// The bytes of an allowed request's head as the registry gets it: the request line (as
    /// HTTP/1.1: the proxy's connection to the registry is), the headers ``ForwardedHeaders``
    /// keeps, the proxy's framing and forwarding headers, the empty line. Written as they are:
    /// the client's method, target and fields were checked when they were read.
    static func forwardedHead(_ request: RequestHead, framing: BodyFraming, scheme: String, clientAddress: String?,
                              allocator: ByteBufferAllocator) -> ForwardedRequestHead {
        var none: ByteBuffer?
        return forwardedHead(request, framing: framing, scheme: scheme, clientAddress: clientAddress, fieldLines: nil, reusing: &none,
                             allocator: allocator).head
    }

    /// ``forwardedHead(_:framing:scheme:clientAddress:allocator:)``, with the field lines (all
    /// that follows the request line) given when they are known: those of an earlier head with
    /// the same fields and method on the same connection, which are the same bytes (framing
    /// comes from the fields, the forwarding headers from the connection, or from the fields
    /// behind trusted proxies).
    /// - Parameter buffer: a buffer to write the head into (taken, leaving nil): its storage is
    ///   used again when nothing else holds it (a write of an earlier head that has gone out);
    ///   when nil, or still held, a new one is made.
    /// - Returns: the head, and its field lines: `fieldLines` when given, else a copy of their
    ///   own (the head's buffer is written again for the next head).
    static func forwardedHead(_ request: RequestHead, framing: BodyFraming, scheme: String, clientAddress: String?, fieldLines: ByteBuffer?,
                              reusing buffer: inout ByteBuffer?, allocator: ByteBufferAllocator) -> (head: ForwardedRequestHead, fieldLines: ByteBuffer) {
        // The request line: method, target, two spaces and "HTTP/1.1\r\n".
        var size = request.method.utf8.count + request.target.utf8.count + 12
        if let fieldLines {
            size += fieldLines.readableBytes
        } else {
            // Room for the proxy's framing and forwarding lines and the empty line.
            size += 84 + scheme.utf8.count + (clientAddress?.utf8.count ?? 0)
            for (name, value) in request.headers { size += name.utf8.count + value.utf8.count + 4 }
        }
        var out: ByteBuffer
        if var reused = buffer.take() {
            reused.clear(minimumCapacity: size)
            out = reused
        } else {
            out = allocator.buffer(capacity: size)
        }
        out.writeString(request.method)
        out.writeStaticString(" ")
        out.writeString(request.target)
        out.writeStaticString(" HTTP/1.1\r\n")
        let linesStart = out.writerIndex
        if let fieldLines {
            out.writeImmutableBuffer(fieldLines)
        } else {
            ForwardedHeaders.forEach(request, framing: framing, scheme: scheme, clientAddress: clientAddress) { name, value in
                out.writeString(name)
                out.writeStaticString(": ")
                out.writeString(value)
                out.writeStaticString("\r\n")
            }
            out.writeStaticString("\r\n")
        }
        let head = ForwardedRequestHead(bytes: out, isHEAD: request.method == "HEAD", chunked: framing == .chunked)
        if let fieldLines { return (head, fieldLines) }
        var lines = allocator.buffer(capacity: out.writerIndex - linesStart)
        lines.writeBytes(out.readableBytesView[linesStart...])
        return (head, lines)
    }

    // MARK: Registry → client (called by UpstreamHandler)

    func upstreamRead(_ part: RegistryResponsePart, from channel: any Channel) {
        guard channel === upstream else { return }
        readingUpstream = true
        switch part {
        case .head(var head):
            status = head.status
            counters.counts.recordUpstream(status: status)
            // A 204 or 304 ends without a length (it has no body): an HTTP/1.0 client keeps its connection.
            let lengthKnown = head.hasContentLength || status == 204 || status == 304
            let actions = machine.responseHead(status: status, upstreamKeepAlive: head.keepAlive, hasContentLength: lengthKnown)
            if case .writeResponseHead(let close)? = actions.last { head.close = close }
            head.minorVersion = requestVersion.minor == 0 ? 0 : 1
            perform(actions, response: .forwardedHead(head))
        case .body(let buffer):
            counters.counts.sentBytes += buffer.readableBytes
            perform(machine.responseBody(), response: .body(buffer))
        case .end:
            perform(machine.responseEnd(), response: .end)
        }
    }

    func upstreamReadComplete() {
        endUpstreamBatch()
    }

    /// What a read batch from the registry wrote to the client goes out now, if the batch ends
    /// without its read complete (the registry connection failed or was let go within it).
    private func flushUpstreamBatch() {
        guard readingUpstream else { return }
        endUpstreamBatch()
    }

    /// The end of a read batch from the registry: what it wrote to the client is flushed, and
    /// was activity (a batch that wrote nothing, such as a head arriving a byte at a time, is not).
    private func endUpstreamBatch() {
        readingUpstream = false
        guard let context else { return }
        if wroteInBatch {
            wroteInBatch = false
            lastActivity = context.eventLoop.now
        }
        codec.flush(context: context)
    }

    func upstreamBecameWritable() {
        perform(machine.upstreamBecameWritable())
    }

    func upstreamReadRequested() -> Bool {
        var allowed = false
        for action in machine.upstreamReadRequested(clientWritable: downstreamWritable) where action == .readUpstream { allowed = true }
        return allowed
    }

    func upstreamFailed(_ error: any Error) {
        logger.warning("registry connection failed", metadata: ["upstream": "\(config.upstreamHost):\(config.upstreamPort)",
                                                                "error": "\(SystemErrorText.describe(error))"])
    }

    func upstreamClosed(_ channel: any Channel) {
        guard channel === upstream else { return }
        upstream = nil
        // A read that failed ends its batch without a read complete.
        flushUpstreamBatch()
        upstreamHandler?.owner = nil
        upstreamHandler = nil
        perform(machine.upstreamClosed())
    }

    // MARK: Actions

    /// Performs an event's actions, in order: `request`, the request part that event brought
    /// (for `forwardHead`, `forwardBody`, `forwardEnd`), `response` the response part (for the
    /// `writeResponse…` actions). (Handed down, not kept in the handler: no copy of a part per
    /// action that uses it.)
    private func perform(_ actions: ProxyConnectionStateMachine.Actions, request: RegistryRequestPart? = nil, response: ProxyResponsePart? = nil) {
        for action in actions { perform(action, request: request, response: response) }
        if (!queued.isEmpty || malformedQueued != nil) && !draining && machine.isIdle { drainQueue() }
    }

    private func perform(_ action: ProxyConnectionStateMachine.Action, request: RegistryRequestPart?, response: ProxyResponsePart?) {
        switch action {
        case .cancelHeaderTimer:
            headerDeadline = nil
        case .startHeaderTimer:
            startHeaderTimer()
        case .startResponseTimer:
            guard let context else { return }
            let deadline = context.eventLoop.now + config.upstreamResponseTimeout
            responseDeadline = deadline
            watch(deadline)
        case .cancelResponseTimer:
            responseDeadline = nil
        case .respondError(let status, let close):
            respondError(status: status, close: close)
        case .connectUpstream:
            connectUpstream()
        case .forwardHead, .forwardBody, .forwardEnd:
            if let request { sendUpstream(request) }
        case .flushPending:
            if let upstreamHandler {
                for part in pending { upstreamHandler.send(part) }
                pending.removeAll()
                upstreamHandler.flush()
            }
        case .writeResponseHead, .writeResponseBody:
            // A long download is activity: the idle deadline moves with every part written (at
            // the end of the read batch that wrote it, ``upstreamReadComplete()``: one clock
            // read per batch).
            guard let context, let response else { return }
            wrote(context)
            codec.encode(response, context: context, promise: nil)
        case .writeResponseEnd(let close):
            guard let context, let response else { return }
            wrote(context)
            if close {
                writeLast(response, context: context)
            } else {
                codec.encode(response, context: context, promise: nil)
                // Within a read from the registry, the read's end flushes
                // (``upstreamReadComplete()``): one flush per batch.
                if !(readingUpstream && upstream != nil) { codec.flush(context: context) }
            }
        case .closeClient:
            context?.close(promise: nil)
        case .dropUpstream:
            pending.removeAll()
            upstreamHandler?.owner = nil
            upstreamHandler = nil
            upstream?.close(promise: nil)
            upstream = nil
            flushUpstreamBatch()
        case .readClient:
            context?.read()
        case .readUpstream:
            upstreamHandler?.readNow()
        case .logAllowed:
            logAccess(decision: "allow", reason: "ok")
        case .logUpstreamFailure(let status):
            if status == 504 { counters.counts.gatewayTimeout += 1 } else { counters.counts.badGateway += 1 }
            self.status = status
            logAccess(decision: "error", reason: status == 504 ? "gateway_timeout" : "bad_gateway")
        }
    }

    /// A response part is written to the client: activity, now or at the end of the read batch.
    private func wrote(_ context: ChannelHandlerContext) {
        if readingUpstream { wroteInBatch = true } else { lastActivity = context.eventLoop.now }
    }

    private func startHeaderTimer() {
        guard let context else { return }
        let deadline = context.eventLoop.now + config.headerTimeout
        headerDeadline = deadline
        watch(deadline)
    }

    /// Makes sure the watch fires no later than `deadline`. A later deadline than the one it
    /// waits for (the usual case: each request pushes the deadlines forward) changes nothing now;
    /// the watch finds it when it fires.
    private func watch(_ deadline: NIODeadline) {
        guard let context else { return }
        if watch != nil && watchAt <= deadline { return }
        watch?.cancel()
        watchAt = deadline
        watch = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { self.deadlinesDue() }
    }

    private func stopWatch() {
        watch?.cancel()
        watch = nil
        watchAt = .distantFuture
    }

    /// The watch fired: the deadlines that are due act (in the order header, response, idle),
    /// and the watch waits for the earliest one left.
    private func deadlinesDue() {
        watch = nil
        watchAt = .distantFuture
        guard let context else { return }
        let now = context.eventLoop.now
        if let deadline = headerDeadline, deadline <= now {
            headerDeadline = nil
            perform(machine.headerTimedOut())
        }
        if let deadline = responseDeadline, deadline <= now {
            responseDeadline = nil
            logger.warning("registry did not answer in time", metadata: ["path": "\(LogText.escape(path))"])
            perform(machine.responseTimedOut())
        }
        // Also while closing: a connection whose last write never goes out (a client that stopped
        // reading) would otherwise wait for it forever.
        if lastActivity + config.idleTimeout <= now {
            logger.debug("closing idle connection")
            // A close may take a while (TLS says goodbye first): the next try is a period later,
            // not at once again.
            lastActivity = now
            perform(machine.idleTimedOut())
        }
        guard self.context != nil else { return }
        watch(min(headerDeadline ?? .distantFuture, responseDeadline ?? .distantFuture, lastActivity + config.idleTimeout))
    }

    private func sendUpstream(_ part: RegistryRequestPart) {
        if let upstreamHandler {
            upstreamHandler.send(part)
        } else {
            pending.append(part)
        }
    }

    private func connectUpstream() {
        guard let context else { return }
        connector.connect(context.eventLoop)
            .assumeIsolated()
            .whenComplete { result in
                switch result {
                case .failure(let error):
                    self.logger.warning("registry unreachable", metadata: ["upstream": "\(self.config.upstreamHost):\(self.config.upstreamPort)", "error": "\(error)"])
                    self.perform(self.machine.upstreamConnectFailed())
                case .success(let channel):
                    guard self.context != nil, let handler = try? channel.pipeline.syncOperations.handler(type: UpstreamHandler.self) else {
                        channel.close(promise: nil)
                        return
                    }
                    self.upstream = channel
                    self.upstreamHandler = handler
                    handler.owner = self
                    self.perform(self.machine.upstreamConnected())
                }
            }
    }

    // MARK: Responses

    private func respondError(status: Int, close: Bool) {
        guard let context else { return }
        lastActivity = context.eventLoop.now
        self.status = status
        let (code, message): (String, String)
        if status == 502 || status == 504 {
            (code, message) = ("UNAVAILABLE", status == 504 ? "registry did not answer in time" : "registry unavailable")
        } else {
            (code, message) = (refusal?.code ?? "UNSUPPORTED", refusal?.message ?? "refused")
            // 401 before any credentials is the login challenge every client meets first, not a refusal.
            let challenge = refusal?.reason == DenyReason.missingCredentials.rawValue
            logAccess(decision: challenge ? "challenge" : "deny", reason: refusal?.reason ?? "refused", message: refusal?.message)
        }
        let (head, body) = DockerError.response(status: status, code: code, message: message, realm: config.realm,
                                                version: requestVersion, close: close, allocator: context.channel.allocator)
        codec.encode(.head(head), context: context, promise: nil)
        codec.encode(.body(body), context: context, promise: nil)
        if close {
            writeLast(.end, context: context)
        } else {
            codec.encode(.end, context: context, promise: nil)
            codec.flush(context: context)
        }
    }

    /// Writes a response's last part and closes the connection once it has gone out.
    private func writeLast(_ part: ProxyResponsePart, context: ChannelHandlerContext) {
        let written = context.eventLoop.makePromise(of: Void.self)
        codec.encode(part, context: context, promise: written)
        codec.flush(context: context)
        written.futureResult.assumeIsolated().whenComplete { _ in self.context?.close(promise: nil) }
    }

    private func logAccess(decision: String, reason: String, message: String? = nil) {
        let elapsed = (NIODeadline.now() - started).nanoseconds
        counters.counts.requestDuration.record(nanoseconds: elapsed)
        let entry = AccessLog.Entry(time: WallClock.now(), method: method, path: path, status: status, decision: decision, reason: reason,
                                    latencyMicroseconds: (elapsed + 500) / 1000, client: clientAddress, tokenID: tokenID,
                                    account: account, message: message)
        if let accessLog = config.accessLog {
            // Queued as fields: formatting and writing happen off the event loop.
            accessLog.record(consume entry, in: logQueue)
        } else {
            logger.info("access", metadata: entry.metadata)
        }
    }
}

@available(*, unavailable)
extension ProxyHandler: Sendable {}
