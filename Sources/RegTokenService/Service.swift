import FoundationEssentials
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOCore
import NIOSSL
import OpenAPIHummingbird
import RegToken
import RegTokenAPI
import RegTokenAPIDocument
import RegTokenLedger
import RegTokenProxyCore
import ServiceLifecycle

/// `regtoken serve`: the issuer as an HTTP/JSON service (Hummingbird 2), following
/// `openapi.yaml`: account holders create, list, get and remove their own tokens with an API
/// key; verifiers fetch the public keys, the signed revocation list and the signed namespace map.
///
/// Run it as a swift-service-lifecycle service: on graceful shutdown it stops accepting and
/// finishes the requests in flight (Hummingbird's quiescing), within the group's grace.
/// What `GET /token` signs for: a stock registry configured with `auth: token` whose `service` and
/// `issuer` are these, serving one region.
public struct TokenServer: Sendable {
    /// The registry's `auth.token.service` (the JWT's `aud`).
    public var service: String
    /// The registry's `auth.token.issuer` (the JWT's `iss`).
    public var issuer: String
    /// The region whose tokens it accepts.
    public var region: String
    /// Seconds a registry token lasts (the longest a removed regtoken token keeps working there).
    public var lifetime: Int64
    /// Reverse proxies in front of the service whose `X-Forwarded-For` names the requester, for
    /// tokens limited to addresses; empty: the connection's peer is the requester.
    public var trustedProxies: [AddressRange]

    public init(service: String, issuer: String, region: String, lifetime: Int64 = 300, trustedProxies: [AddressRange] = []) {
        self.service = service
        self.issuer = issuer
        self.region = region
        self.lifetime = lifetime
        self.trustedProxies = trustedProxies
    }
}

public struct IssuerService {
    public struct Configuration: Sendable {
        public var host: String
        public var port: Int
        public var tls: TLSConfiguration?
        /// Largest request body.
        public var maxBodyBytes = 64 << 10
        /// The token server for stock registries (`GET /token`), when set.
        public var tokenServer: TokenServer?

        public init(host: String, port: Int, tls: TLSConfiguration? = nil) {
            self.host = host
            self.port = port
            self.tls = tls
        }
    }

    public let issuer: Issuer
    public let configuration: Configuration
    public let logger: Logger
    let now: @Sendable () -> Int64

    public init(issuer: Issuer, configuration: Configuration, logger: Logger, now: @escaping @Sendable () -> Int64 = Durations.now) {
        self.issuer = issuer
        self.configuration = configuration
        self.logger = logger
        self.now = now
    }

    /// The router: access log, metrics, body limit and client address, then `/openapi.yaml` and
    /// the API's operations.
    public func router() throws -> Router<ServiceRequestContext> {
        let router = Router(context: ServiceRequestContext.self)
        router.add(middleware: AccessLogMiddleware(logger: logger))
        router.add(middleware: MetricsMiddleware())
        router.add(middleware: GuardMiddleware(limit: configuration.maxBodyBytes))
        router.get("/openapi.yaml") { _, _ in
            var headers = HTTPFields()
            headers[.contentType] = "application/yaml"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: APIDocument.yaml)))
        }
        let api = TokenAPI(issuer: issuer, now: now, tokenServer: configuration.tokenServer)
        try api.registerHandlers(on: router, middlewares: [APIMiddleware(issuer: issuer, now: now, logger: logger)])
        return router
    }

    /// The application, to run in a service group.
    public func application(onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }) throws -> any Service {
        let router = try router()
        let address = BindAddress.hostname(configuration.host, port: configuration.port)
        if let tls = configuration.tls {
            // Plain HTTP sent to the TLS port gets a 400 that says to use https (not a TLS alert).
            // (What `.tls(.http1(), tlsConfiguration:)` builds, with the guard in front.)
            let server = HTTPServerBuilder { responder in
                PlainHTTPRefusal(base: try TLSChannel(HTTP1Channel(responder: responder), tlsConfiguration: tls))
            }
            return Application(router: router, server: server,
                               configuration: .init(address: address, serverName: "regtoken"),
                               onServerRunning: onServerRunning, logger: logger)
        }
        return Application(router: router, configuration: .init(address: address, serverName: "regtoken"),
                           onServerRunning: onServerRunning, logger: logger)
    }
}

/// A TLS child channel with `PlainHTTPOnTLSGuard` (RegTokenProxyCore) before its TLS handler.
struct PlainHTTPRefusal<Base: ServerChildChannel>: ServerChildChannel {
    typealias Value = Base.Value
    static var body: String { #"{"code":"invalid_input","message":"plain HTTP was sent to the HTTPS port: use https://"}"# }
    let base: Base

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(PlainHTTPOnTLSGuard(body: Self.body))
        }.flatMap {
            base.setup(channel: channel, logger: logger)
        }
    }

    func handle(value: Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }
}

/// Upkeep every `interval`: keys the operator changed, expired tokens and API keys, and the
/// revocation list signed again before verifiers would find its signature too old.
public struct Maintenance: Service {
    let issuer: Issuer
    let interval: Duration
    let logger: Logger

    public init(issuer: Issuer, interval: Duration = .seconds(30), logger: Logger) {
        self.issuer = issuer
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do { try issuer.maintain(now: Durations.now()) } catch let error as LedgerError {
                    logger.error("upkeep failed", metadata: ["error": "\(error.reason)"])
                } catch {
                    logger.error("upkeep failed", metadata: ["error": "\(error)"])
                }
                try? await Task.sleep(for: interval)
            }
        }
    }
}
