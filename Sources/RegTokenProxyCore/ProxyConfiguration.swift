import NIOCore
import RegToken

/// How a ``ProxyServer`` listens, where it forwards, and its limits.
public struct ProxyConfiguration: Sendable {
    /// Address to listen on (`127.0.0.1`), and port (0 picks a free one).
    public var listenHost: String
    public var listenPort: Int
    /// The registry behind the proxy (plain HTTP).
    public var upstreamHost: String
    public var upstreamPort: Int
    /// The region this proxy serves.
    public var region: String
    /// The scheme clients use to reach the proxy (`https` when it terminates TLS): the registry
    /// builds upload URLs with it (`X-Forwarded-Proto`). `https`, or else `http`: any other
    /// value is forwarded as `http` (it is written into the forwarded head's bytes as it is, so
    /// only these two are ever written). The TLS context itself is the server's (``ProxyServer``).
    public var clientScheme: String = "http"
    /// The `realm` of the `WWW-Authenticate: Basic` challenge.
    public var realm: String = "regtoken"
    /// Connections beyond this are closed at once.
    public var maxConnections: Int = 1024
    /// A connection with nothing read from the client nor written to it for this long is closed
    /// (a response being streamed to the client, part after part, is traffic: a part counts when
    /// it is handed to the socket, so a client that reads slower than the socket's buffer per
    /// period is cut off), also one waiting to close after its last response.
    public var idleTimeout: TimeAmount = .seconds(60)
    /// A request head must arrive complete within this long (slow-header clients are cut off).
    public var headerTimeout: TimeAmount = .seconds(10)
    /// Largest request head (request line and headers) accepted; larger gets 431.
    public var maxHeaderBytes: Int = 16 * 1024
    /// Connecting to the registry may take this long, else 502.
    public var upstreamConnectTimeout: TimeAmount = .seconds(5)
    /// The registry must start its response this long after the request ended, else 504.
    public var upstreamResponseTimeout: TimeAmount = .seconds(60)
    /// On graceful shutdown, requests in flight get this long to finish; then their connections
    /// are closed.
    public var shutdownGrace: TimeAmount = .seconds(30)
    /// Reverse proxies in front of this one whose `X-Forwarded-For` is believed, for tokens
    /// limited to addresses (``ClientAddress/resolve(peer:forwardedFor:trusted:)``); empty: the
    /// connection's peer is the client.
    public var trustedProxies: [AddressRange] = []
    /// Where access log lines go, buffered and written off the event loops; `nil` sends them
    /// through the handler's `Logger` instead (at `info`), one by one.
    package var accessLog: AccessLog?

    public init(listenHost: String, listenPort: Int, upstreamHost: String, upstreamPort: Int, region: String) {
        self.listenHost = listenHost
        self.listenPort = listenPort
        self.upstreamHost = upstreamHost
        self.upstreamPort = upstreamPort
        self.region = region
    }
}
