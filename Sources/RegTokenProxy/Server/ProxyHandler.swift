import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import RegToken
import RegTokenAccess

#if canImport(Glibc)
import Glibc
#endif

/// One client connection: decides on each request, answers refusals itself, and forwards what
/// is allowed to the registry over one upstream keep-alive connection on the same event loop,
/// streaming bodies both ways with backpressure (no reads from a side whose peer cannot write).
///
/// Per request: head → decision → (deny: Docker error, body discarded) or (allow: head, body and
/// end forwarded; the response streamed back). Requests on a connection are one at a time (the
/// pipeline's pipelining assistance holds later ones until the response ends).
final class ProxyHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private enum Phase {
        case idle
        case denied
        case forwarding
    }

    private let state: ProxyState
    private let config: ProxyConfiguration
    private let metrics: ProxyMetrics
    private let logger: Logger
    private var context: ChannelHandlerContext?

    private var upstream: Channel?
    private var upstreamHandler: UpstreamHandler?
    private var connecting = false
    private var pendingUpstream: [HTTPClientRequestPart] = []

    private var phase = Phase.idle
    /// Set once the connection is to be closed: nothing more is read from it or forwarded, even
    /// a request the pipelining assistant delivers after the answer that ends the connection.
    private var closing = false
    private var requestDone = false
    private var responseStarted = false
    private var responseDone = false
    private var keepAlive = true
    private var closeAfterResponse = false
    private var upstreamWantsClose = false
    private var readPending = false
    private var requestVersion = HTTPVersion.http1_1
    private var responseTimeout: Scheduled<Void>?
    private var headDeadline: Scheduled<Void>?

    // For the access log.
    private var started = NIODeadline.now()
    private var method = ""
    private var path = ""
    private var tokenID: UUIDBytes?
    private var status = 0

    private let connector: UpstreamConnector

    init(state: ProxyState, config: ProxyConfiguration, metrics: ProxyMetrics, logger: Logger,
         connector: UpstreamConnector? = nil) {
        self.state = state
        self.config = config
        self.metrics = metrics
        self.logger = logger
        self.connector = connector ?? .tcp(host: config.upstreamHost, port: config.upstreamPort, timeout: config.upstreamConnectTimeout)
    }

    var downstreamWritable: Bool { context?.channel.isWritable ?? false }

    // MARK: Lifecycle

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { scheduleHeadDeadline() }
    }

    func channelActive(context: ChannelHandlerContext) {
        scheduleHeadDeadline()
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        headDeadline?.cancel()
        responseTimeout?.cancel()
        dropUpstream()
        self.context = nil
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            logger.debug("closing idle connection")
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.debug("connection error", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }

    // MARK: Client → proxy

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if closing { return }
        switch unwrapInboundIn(data) {
        case .head(let head):
            requestHead(head, context: context)
        case .body(let buffer):
            if phase == .forwarding { sendUpstream(.body(.byteBuffer(buffer))) }
        case .end(let trailers):
            switch phase {
            case .forwarding:
                requestDone = true
                // Trailers are not forwarded: a registry has no use for them, and they are one
                // more place for headers the decision never saw.
                _ = trailers
                sendUpstream(.end(nil))
                upstream?.flush()
                if !responseStarted && !connecting && upstream != nil { scheduleResponseTimeout() }
                if responseDone { finishCycle() }
            case .denied:
                if !closeAfterResponse {
                    phase = .idle
                    scheduleHeadDeadline()
                }
            case .idle:
                break
            }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        upstream?.flush()
        context.fireChannelReadComplete()
    }

    /// Backpressure: no reads from the client while the registry side cannot take more.
    func read(context: ChannelHandlerContext) {
        if connecting || (upstream.map { !$0.isWritable } ?? false) {
            readPending = true
            return
        }
        context.read()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { upstreamHandler?.resumeReading() }
        context.fireChannelWritabilityChanged()
    }

    private func requestHead(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        headDeadline?.cancel()
        headDeadline = nil
        started = .now()
        keepAlive = head.isKeepAlive
        requestVersion = head.version
        requestDone = false
        responseStarted = false
        responseDone = false
        closeAfterResponse = false
        upstreamWantsClose = false
        tokenID = nil
        status = 0
        method = head.method.rawValue
        path = String(head.uri.prefix { $0 != "?" }.prefix(512))

        let headSize = head.uri.utf8.count + head.headers.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 4 }
        if headSize > config.maxHeaderBytes {
            phase = .denied
            closeAfterResponse = true
            respondError(status: 431, code: "UNSUPPORTED", message: "request headers are larger than \(config.maxHeaderBytes / 1024) KiB", close: true)
            logAccess(decision: "deny", reason: "headers_too_large")
            return
        }

        let request = RequestHead(method: head.method.rawValue, target: head.uri,
                                  version: (Int(head.version.major), Int(head.version.minor)), headers: Array(head.headers))
        let t0 = NIODeadline.now()
        let decision = state.decide(request, now: Self.wallClock())
        metrics.verification.recordNanoseconds((NIODeadline.now() - t0).nanoseconds)
        metrics.record(decision)

        switch decision {
        case .deny(let denied):
            phase = .denied
            tokenID = denied.tokenID
            closeAfterResponse = denied.close || !keepAlive
            respondError(status: denied.status, code: denied.code, message: denied.message, close: closeAfterResponse)
            logAccess(decision: "deny", reason: denied.reason.rawValue, message: denied.message)
        case .allow(let allowed):
            phase = .forwarding
            tokenID = allowed.tokenID
            // The registry builds absolute upload URLs from Host and X-Forwarded-Proto: with TLS
            // here, they must say https (and a client cannot claim otherwise).
            let headers = ForwardedHeaders.upstream(request, framing: allowed.framing, scheme: config.tls != nil ? "https" : "http",
                                                    clientAddress: context.channel.remoteAddress?.ipAddress)
            let forwarded = HTTPRequestHead(version: .http1_1, method: head.method, uri: head.uri, headers: HTTPHeaders(headers))
            sendUpstream(.head(forwarded))
        }
    }

    // MARK: Proxy → registry

    private func sendUpstream(_ part: HTTPClientRequestPart) {
        if let upstream, !connecting {
            upstream.write(part, promise: nil)
            return
        }
        pendingUpstream.append(part)
        if !connecting { connectUpstream() }
    }

    private func connectUpstream() {
        guard let context else { return }
        connecting = true
        connector.connect(context.eventLoop)
            .assumeIsolated()
            .whenComplete { result in self.upstreamConnected(result) }
    }

    private func upstreamConnected(_ result: Result<Channel, any Error>) {
        connecting = false
        switch result {
        case .failure(let error):
            pendingUpstream.removeAll()
            logger.warning("registry unreachable", metadata: ["upstream": "\(config.upstreamHost):\(config.upstreamPort)", "error": "\(error)"])
            upstreamFailed(status: 502, message: "registry unavailable")
        case .success(let channel):
            guard context != nil, let handler = try? channel.pipeline.syncOperations.handler(type: UpstreamHandler.self) else {
                channel.close(promise: nil)
                return
            }
            handler.owner = self
            upstream = channel
            upstreamHandler = handler
            for part in pendingUpstream { channel.write(part, promise: nil) }
            pendingUpstream.removeAll()
            channel.flush()
            if requestDone && !responseStarted { scheduleResponseTimeout() }
            if readPending {
                readPending = false
                context?.read()
            }
        }
    }

    func upstreamBecameWritable() {
        if readPending, !connecting {
            readPending = false
            context?.read()
        }
    }

    // MARK: Registry → client

    func upstreamRead(_ part: HTTPClientResponsePart, from channel: Channel) {
        guard let context, channel === upstream, phase == .forwarding else { return }
        switch part {
        case .head(let head):
            // An informational response (100 Continue) is not the response.
            if head.status.code >= 100 && head.status.code < 200 { return }
            responseTimeout?.cancel()
            responseTimeout = nil
            responseStarted = true
            upstreamWantsClose = !head.isKeepAlive
            status = Int(head.status.code)
            var headers = Self.forwardedResponseHeaders(head.headers)
            // An HTTP/1.0 client cannot take a chunked body: without a length, the end of the
            // connection ends the body.
            if requestVersion.minor == 0 && !headers.contains(name: "content-length") { closeAfterResponse = true }
            if !keepAlive || closeAfterResponse { headers.replaceOrAdd(name: "Connection", value: "close") }
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: requestVersion, status: head.status, headers: headers))), promise: nil)
        case .body(let buffer):
            context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        case .end(let trailers):
            responseDone = true
            logAccess(decision: "allow", reason: "ok")
            if upstreamWantsClose { dropUpstream() }
            if !requestDone { closeAfterResponse = true }  // answered before the body ended: cannot reuse
            let close = !keepAlive || closeAfterResponse
            if close { closing = true }
            // The cycle ends before the response's end is written: writing it lets the
            // pipelining assistant deliver the next request at once, inside this call.
            if !close && requestDone { finishCycle() }
            let promise = context.eventLoop.makePromise(of: Void.self)
            context.writeAndFlush(wrapOutboundOut(.end(trailers)), promise: promise)
            if close {
                promise.futureResult.assumeIsolated().whenComplete { _ in self.context?.close(promise: nil) }
            }
        }
    }

    func upstreamReadComplete() {
        context?.flush()
    }

    func upstreamClosed(_ channel: Channel) {
        guard channel === upstream else { return }
        upstream = nil
        upstreamHandler = nil
        if phase == .forwarding && !responseDone {
            if responseStarted {
                context?.close(promise: nil)
            } else {
                upstreamFailed(status: 502, message: "registry closed the connection")
            }
        }
    }

    private func finishCycle() {
        phase = .idle
        scheduleHeadDeadline()
    }

    private func dropUpstream() {
        upstreamHandler?.owner = nil
        upstreamHandler = nil
        upstream?.close(promise: nil)
        upstream = nil
    }

    private func upstreamFailed(status: Int, message: String) {
        (status == 504 ? metrics.gatewayTimeout : metrics.badGateway).increment()
        dropUpstream()
        if responseStarted {
            context?.close(promise: nil)
            return
        }
        responseStarted = true
        responseDone = true
        respondError(status: status, code: "UNAVAILABLE", message: message, close: true)
        logAccess(decision: "error", reason: status == 504 ? "gateway_timeout" : "bad_gateway")
    }

    // MARK: Timers

    private func scheduleHeadDeadline() {
        guard let context else { return }
        headDeadline?.cancel()
        headDeadline = context.eventLoop.assumeIsolated().scheduleTask(in: config.headerTimeout) {
            if self.phase == .idle { self.context?.close(promise: nil) }
        }
    }

    private func scheduleResponseTimeout() {
        guard let context else { return }
        responseTimeout?.cancel()
        responseTimeout = context.eventLoop.assumeIsolated().scheduleTask(in: config.upstreamResponseTimeout) {
            if self.phase == .forwarding && !self.responseStarted {
                self.logger.warning("registry did not answer in time", metadata: ["path": "\(self.path)"])
                self.upstreamFailed(status: 504, message: "registry did not answer in time")
            }
        }
    }

    // MARK: Responses

    private func respondError(status: Int, code: String, message: String, close: Bool) {
        guard let context else { return }
        if close { closing = true }
        self.status = status
        let (head, body) = DockerError.response(status: status, code: code, message: message, realm: config.realm,
                                                version: requestVersion, close: close, allocator: context.channel.allocator)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        let promise = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: promise)
        if close {
            promise.futureResult.assumeIsolated().whenComplete { _ in self.context?.close(promise: nil) }
        }
    }

    private func logAccess(decision: String, reason: String, message: String? = nil) {
        let latency = Double((NIODeadline.now() - started).nanoseconds) / 1_000_000
        // The method, path and message come from the client: every control byte is escaped, so
        // no client can forge or break a log line.
        var metadata: Logger.Metadata = [
            "method": "\(LogText.escape(method))", "path": "\(LogText.escape(path))", "status": "\(status)", "decision": "\(decision)",
            "reason": "\(reason)", "latency_ms": "\(String(format: latency))",
        ]
        if let tokenID { metadata["token_id"] = "\(tokenID)" }
        if let message { metadata["message"] = "\(LogText.escape(message))" }
        logger.info("access", metadata: metadata)
    }

    // MARK: Headers

    private static let hopByHop: Set<String> = ["connection", "keep-alive", "proxy-connection", "proxy-authorization", "proxy-authenticate", "te", "trailer", "upgrade"]

    /// The registry's headers less hop-by-hop ones and framing (re-framed for the client).
    static func forwardedResponseHeaders(_ headers: HTTPHeaders) -> HTTPHeaders {
        let named = Set(headers["connection"].flatMap { $0.split(separator: ",").map { $0.trimmingCharacters.lowercased() } })
        var out = HTTPHeaders()
        for (name, value) in headers {
            let lower = name.lowercased()
            if hopByHop.contains(lower) || named.contains(lower) || lower == "transfer-encoding" { continue }
            out.add(name: name, value: value)
        }
        return out
    }

    static func wallClock() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec)
    }
}

@available(*, unavailable)
extension ProxyHandler: Sendable {}

extension Substring {
    var trimmingCharacters: String {
        var s = self
        while let c = s.first, c == " " || c == "\t" { s.removeFirst() }
        while let c = s.last, c == " " || c == "\t" { s.removeLast() }
        return String(s)
    }
}

/// Text from a client made safe for a log line.
enum LogText {
    /// Control bytes (below 0x20, DEL) and backslashes as `\xHH`; everything else as it is.
    static func escape(_ text: String) -> String {
        guard text.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F || $0 == UInt8(ascii: "\\") }) else { return text }
        var out = ""
        out.reserveCapacity(text.utf8.count + 16)
        for scalar in text.unicodeScalars {
            if scalar.value < 0x20 || scalar.value == 0x7F || scalar == "\\" {
                out += "\\x" + (scalar.value < 0x10 ? "0" : "") + String(scalar.value, radix: 16)
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}

extension String {
    init(format value: Double) {
        let scaled = (value * 1000).rounded() / 1000
        self = "\(scaled)"
    }
}
