import RegTokenProxyCore
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import ServiceLifecycle
import Synchronization

/// The registry front proxy: listens, and gives each connection a pipeline of (TLS or a guard
/// against TLS on the plain port) → ``ProxyHandler``, which runs the HTTP/1.1 server codec on the
/// bytes, queues pipelined requests, answers malformed ones and keeps the connection's timeouts
/// itself.
///
/// As a swift-service-lifecycle `Service`, it drains on graceful shutdown (SIGTERM, SIGINT): it
/// stops listening (new connections are refused), closes idle connections, lets every request in
/// flight finish, body and response included, and closes each connection after its response
/// (`ChannelShouldQuiesceEvent`); whatever is still open after ``ProxyConfiguration/shutdownGrace``
/// is closed. Cancellation (a second signal) closes everything at once.
public final class ProxyServer: Service, Sendable {
    public let configuration: ProxyConfiguration
    public let state: ProxyState
    public let metrics: ProxyMetrics
    let logger: Logger
    let group: any EventLoopGroup
    private let channel = Mutex<(any Channel)?>(nil)
    private let connections = Atomic<Int>(0)
    /// Every open client connection, to quiesce or close them on shutdown.
    private let open = Mutex<[ObjectIdentifier: any Channel]>([:])
    /// The TLS context new connections get (replaced on SIGHUP by ``replaceTLS(_:)``).
    private let tls: Mutex<NIOSSLContext?>

    /// TLS towards the registry, for an `https://` upstream.
    private let upstreamTLS: NIOSSLContext?

    /// - Parameters:
    ///   - tls: TLS on the listening side, when set (replaced by ``replaceTLS(_:)``).
    ///   - upstreamTLS: TLS towards the registry (an `https://` upstream), with the trust roots to
    ///     check its certificate against; the certificate must name the upstream host (or address).
    public init(configuration: ProxyConfiguration, tls: NIOSSLContext? = nil, upstreamTLS: NIOSSLContext? = nil, state: ProxyState,
                metrics: ProxyMetrics = ProxyMetrics(), logger: Logger, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.upstreamTLS = upstreamTLS
        self.configuration = configuration
        self.state = state
        self.metrics = metrics
        self.logger = logger
        self.group = group
        self.tls = Mutex(tls)
    }

    /// Swaps the TLS certificate and key: connections accepted from now on use `context`; those
    /// open keep theirs.
    public func replaceTLS(_ context: NIOSSLContext) {
        tls.withLock { $0 = context }
    }

    /// The number of client connections open now.
    public var openConnections: Int { connections.load(ordering: .relaxed) }

    /// Binds the listening socket; returns the port it is bound to.
    @discardableResult
    public func start() async throws -> Int {
        let config = configuration
        let state = self.state
        let metrics = self.metrics
        let logger = self.logger
        // To the registry: plain TCP, or TLS with the host name sent (SNI) and checked, unless
        // the upstream is an address (then the certificate must name the address).
        let upstreamTLS = self.upstreamTLS
        let upstreamHost = config.upstreamHost
        let serverName = ProxyTLS.serverName(for: upstreamHost)
        let secure: (@Sendable (ChannelPipeline.SynchronousOperations) throws -> Void)? = upstreamTLS.map { context in
            { @Sendable pipeline in try pipeline.addHandler(NIOSSLClientHandler(context: context, serverHostname: serverName)) }
        }
        let server = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 4)
            .childChannelInitializer { [self] channel in
                let count = connections.wrappingAdd(1, ordering: .relaxed).newValue
                let id = ObjectIdentifier(channel)
                self.open.withLock { $0[id] = channel }
                channel.closeFuture.whenComplete { [self] _ in
                    _ = connections.wrappingSubtract(1, ordering: .relaxed)
                    _ = self.open.withLock { $0.removeValue(forKey: id) }
                }
                if count > config.maxConnections {
                    logger.warning("connection limit reached; closing a new connection", metadata: ["limit": "\(config.maxConnections)"])
                    return channel.close()
                }
                return channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    if let tls = tls.withLock({ $0 }) {
                        try sync.addHandler(PlainHTTPOnTLSGuard(body: PlainHTTPOnTLSGuard.registryBody))
                        try sync.addHandler(NIOSSLServerHandler(context: tls))
                    } else {
                        try sync.addHandler(PlainTextGuard())
                    }
                    // (Made here, on the connection's event loop, from Sendable parts: the connector
                    // itself may hold closures that are not, as the tests' do.)
                    let connector = UpstreamConnector.tcp(host: upstreamHost, port: config.upstreamPort, timeout: config.upstreamConnectTimeout,
                                                          secure: secure)
                    try ProxyHandler.configureClientPipeline(sync, state: state, config: config, metrics: metrics, logger: logger,
                                                             connector: connector)
                }
            }
        let bound = try await server.bind(host: config.listenHost, port: config.listenPort).get()
        channel.withLock { $0 = bound }
        let port = bound.localAddress?.port ?? config.listenPort
        logger.info("proxy listening", metadata: [
            "listen": "\(config.listenHost):\(port)", "upstream": "\(config.upstreamHost):\(config.upstreamPort)",
            "region": "\(config.region)", "tls": "\(tls.withLock { $0 } != nil)",
        ])
        return port
    }

    /// Runs until graceful shutdown, then drains (see the type's documentation). Binds first if
    /// ``start()`` was not called.
    public func run() async throws {
        if channel.withLock({ $0 }) == nil { try await start() }
        try await withTaskCancellationHandler {
            try await withGracefulShutdownHandler {
                try await waitUntilClosed()
            } onGracefulShutdown: {
                self.beginDrain()
            }
            await finishDrain()
        } onCancel: {
            self.closeAll()
        }
    }

    /// True once ``beginDrain()`` was called: the proxy is going away (not ready for traffic).
    public var isDraining: Bool { draining.load(ordering: .relaxed) }
    private let draining = Atomic<Bool>(false)

    /// Stops listening and asks every open connection to finish what it is doing and close.
    public func beginDrain() {
        draining.store(true, ordering: .relaxed)
        logger.info("draining: no new connections; finishing the requests in flight",
                    metadata: ["connections": "\(openConnections)", "grace": "\(configuration.shutdownGrace)"])
        channel.withLock { $0 }?.close(promise: nil)
        for c in open.withLock({ Array($0.values) }) {
            c.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        }
    }

    /// Waits for open connections to close, at most the shutdown grace; then closes the rest.
    func finishDrain() async {
        let deadline = ContinuousClock.now + .nanoseconds(configuration.shutdownGrace.nanoseconds)
        while openConnections > 0 && ContinuousClock.now < deadline && !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(50))
        }
        let left = openConnections
        if left > 0 {
            logger.warning("shutdown grace over: closing the connections still open", metadata: ["connections": "\(left)"])
            closeAll()
        } else {
            logger.info("drained: every request in flight finished")
        }
    }

    /// Closes the listener and every connection now.
    func closeAll() {
        channel.withLock { $0 }?.close(promise: nil)
        for c in open.withLock({ Array($0.values) }) { c.close(promise: nil) }
    }

    /// Waits until the listening socket closes.
    public func waitUntilClosed() async throws {
        guard let ch = channel.withLock({ $0 }) else { return }
        try await ch.closeFuture.get()
    }

    /// Stops listening (open connections finish what they are doing).
    public func close() async throws {
        guard let ch = channel.withLock({ $0 }) else { return }
        try await ch.close()
    }

    /// Refreshes the revocation gauges (called by the reloader).
    public func updateRevocationGauges(now: Int64) {
        metrics.revocationVersion.record(Int64(state.verifier.revocationVersion))
        metrics.revocationAge.record(state.revocationAge(now: now))
        metrics.revocationSignedAge.record(state.revocationSignedAge(now: now) ?? 0)
    }

    func reloadFailed() {
        metrics.reloadFailures.increment()
    }

    func keysReloaded() {
        metrics.keyReloads.increment()
    }
}
