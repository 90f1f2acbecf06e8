import RegTokenProxyCore
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle
import Synchronization

/// Serves `GET /metrics` with what `render` returns (the Prometheus text format), `GET /healthz`
/// (200 while the process serves), `GET /readyz` (200 when `unready` returns nil, else 503 with its
/// reason: for a load balancer or an orchestrator's readiness probe), and 404 otherwise. The
/// library does not depend on a metrics backend: the executable passes its registry's rendering in.
public final class MetricsServer: Service, Sendable {
    let render: @Sendable () async -> String
    let unready: @Sendable () -> String?
    let group: any EventLoopGroup

    /// A request head must arrive within this long, and a connection idle this long is closed.
    let timeout: TimeAmount
    /// Connections beyond this many are closed at once.
    let maxConnections: Int
    private let connections = Atomic<Int>(0)
    private let listener = Mutex<(any Channel)?>(nil)

    /// As a service: serves until graceful shutdown, then stops listening. Binds first if
    /// ``start(host:port:)`` was not called (it needs an address, so it must have been).
    public func run() async throws {
        await withGracefulShutdownHandler {
            guard let channel = listener.withLock({ $0 }) else { return }
            try? await channel.closeFuture.get()
        } onGracefulShutdown: {
            self.listener.withLock { $0 }?.close(promise: nil)
        }
    }

    /// - Parameters:
    ///   - unready: why the server is not ready for traffic (draining, no key), or nil when it is.
    ///   - render: the metrics in the Prometheus text format.
    public init(group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, timeout: TimeAmount = .seconds(10),
                maxConnections: Int = 64, unready: @escaping @Sendable () -> String? = { nil }, render: @escaping @Sendable () async -> String) {
        self.render = render
        self.unready = unready
        self.group = group
        self.timeout = timeout
        self.maxConnections = maxConnections
    }

    /// Binds; returns the port.
    @discardableResult
    public func start(host: String, port: Int) async throws -> Int {
        let render = self.render
        let unready = self.unready
        let timeout = self.timeout
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { [self] channel in
                let open = connections.wrappingAdd(1, ordering: .relaxed).newValue
                channel.closeFuture.whenComplete { [self] _ in _ = connections.wrappingSubtract(1, ordering: .relaxed) }
                if open > maxConnections { return channel.close() }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    // No request within the timeout, or nothing for that long: closed.
                    try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: timeout))
                    try channel.pipeline.syncOperations.addHandler(Handler(render: render, unready: unready))
                }
            }
            .bind(host: host, port: port).get()
        listener.withLock { $0 = channel }
        return channel.localAddress?.port ?? port
    }

    final class Handler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let render: @Sendable () async -> String
        let unready: @Sendable () -> String?
        var head: HTTPRequestHead?

        init(render: @escaping @Sendable () async -> String, unready: @escaping @Sendable () -> String?) {
            self.render = render
            self.unready = unready
        }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if event is IdleStateHandler.IdleStateEvent {
                context.close(promise: nil)
                return
            }
            context.fireUserInboundEventTriggered(event)
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let h): head = h
            case .body: break
            case .end:
                guard let head else { return }
                self.head = nil
                let path = head.uri.prefix { $0 != "?" }
                switch (head.method, path) {
                case (.GET, "/metrics"):
                    // (Rendered off the event loop: the proxy's counters are read on each of theirs.)
                    let render = self.render
                    context.eventLoop.makeFutureWithTask { await render() }.assumeIsolated().whenSuccess { text in
                        Self.respond(context: context, head: head, status: .ok, text: text, type: "text/plain; version=0.0.4; charset=utf-8")
                    }
                case (.GET, "/healthz"): Self.respond(context: context, head: head, status: .ok, text: "ok\n", type: "text/plain")
                case (.GET, "/readyz"):
                    let why = unready()
                    Self.respond(context: context, head: head, status: why == nil ? .ok : .serviceUnavailable,
                                 text: why.map { "not ready: \($0)\n" } ?? "ready\n", type: "text/plain")
                default: Self.respond(context: context, head: head, status: .notFound, text: "not found\n", type: "text/plain")
                }
            }
        }

        static func respond(context: ChannelHandlerContext, head: HTTPRequestHead, status: HTTPResponseStatus, text: String, type: String) {
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: type)
            headers.add(name: "Content-Length", value: String(text.utf8.count))
            if !head.isKeepAlive { headers.add(name: "Connection", value: "close") }
            context.write(NIOAny(HTTPServerResponsePart.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
            context.write(NIOAny(HTTPServerResponsePart.body(.byteBuffer(context.channel.allocator.buffer(string: text)))), promise: nil)
            let keep = head.isKeepAlive
            context.writeAndFlush(NIOAny(HTTPServerResponsePart.end(nil))).assumeIsolated().whenComplete { _ in
                if !keep { context.close(promise: nil) }
            }
        }
    }
}

@available(*, unavailable)
extension MetricsServer.Handler: Sendable {}
