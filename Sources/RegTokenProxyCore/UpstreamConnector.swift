import NIOCore
import NIOHTTP1
import NIOPosix
import Logging

/// How a ``ProxyHandler`` opens its connection to the registry: a channel on the handler's own
/// event loop whose pipeline ends in an ``UpstreamHandler``. The proxy uses TCP; tests and the
/// fuzz target hand it an `EmbeddedChannel` and read what would go over the wire.
package struct UpstreamConnector {
    package init(connect: @escaping (any EventLoop) -> EventLoopFuture<any Channel>) { self.connect = connect }

    package let connect: (any EventLoop) -> EventLoopFuture<any Channel>

    /// HTTP/1.1 over TCP, with Nagle off.
    /// - Parameter secure: adds the TLS client handler first, for an `https://` registry (this
    ///   module has no TLS of its own: the proxy passes swift-nio-ssl's handler in).
    package static func tcp(host: String, port: Int, timeout: TimeAmount,
                            secure: (@Sendable (ChannelPipeline.SynchronousOperations) throws -> Void)? = nil) -> UpstreamConnector {
        UpstreamConnector { eventLoop in
            ClientBootstrap(group: eventLoop)
                .connectTimeout(timeout)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try secure?(channel.pipeline.syncOperations)
                        try configureUpstreamPipeline(channel.pipeline.syncOperations)
                    }
                }
                .connect(host: host, port: port)
        }
    }

    /// The registry side's pipeline: the ``UpstreamHandler``, which runs the proxy's HTTP/1.1
    /// client codec on the bytes.
    package static func configureUpstreamPipeline(_ pipeline: ChannelPipeline.SynchronousOperations) throws {
        try pipeline.addHandler(UpstreamHandler())
    }
}

/// The proxy's pipelines on channels the caller provides, for the benchmarks
/// (`Benchmarks/RequestHead`, "exchange": whole proxied exchanges over `EmbeddedChannel`s, where
/// nothing but the proxy's own code and SwiftNIO's pipeline runs). Not API.
@_spi(Benchmarks) public enum ProxyPipelines {
    /// Adds the proxy's handler to a client connection's pipeline, as `regtoken proxy` does, with
    /// its registry connections made by `connect` (each set up with
    /// ``configureUpstream(_:)``), and its access log written to `accessLogDescriptor` (buffered,
    /// off the event loop, as by default).
    /// - Returns: what stops the access log's writer (after writing what is queued).
    public static func configureClient(_ pipeline: ChannelPipeline.SynchronousOperations, state: ProxyState, config: ProxyConfiguration,
                                       accessLogDescriptor: Int32,
                                       connect: @escaping (any EventLoop) -> EventLoopFuture<any Channel>) throws -> @Sendable () -> Void {
        var config = config
        let log = AccessLog(descriptor: accessLogDescriptor, label: "regtoken.proxy")
        log.start()
        config.accessLog = log
        try ProxyHandler.configureClientPipeline(pipeline, state: state, config: config, metrics: ProxyMetrics(),
                                                 logger: Logger(label: "regtoken.proxy"), connector: UpstreamConnector(connect: connect))
        return { log.close() }
    }

    /// Sets up a registry connection's pipeline (for the `connect` of ``configureClient(_:state:config:accessLogDescriptor:connect:)``).
    public static func configureUpstream(_ pipeline: ChannelPipeline.SynchronousOperations) throws {
        try UpstreamConnector.configureUpstreamPipeline(pipeline)
    }
}
