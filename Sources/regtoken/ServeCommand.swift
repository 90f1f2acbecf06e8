import ArgumentParser
import Foundation
import Logging
import Metrics
import NIOSSL
import Prometheus
import RegToken
import RegTokenLedger
import RegTokenProxy
import RegTokenService
import ServiceLifecycle
import Synchronization
import UnixSignals

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the issuer as an HTTP service: account holders manage their tokens with an API key; proxies fetch keys, revocations and namespaces.",
        discussion: """
            The contract is openapi.yaml, served at /openapi.yaml. Accounts are made with \
            `regtoken accounts add NAME` on the same --home (it can run while the service does). \
            SIGTERM or SIGINT: stop accepting, finish the requests in flight, exit 0; a second signal \
            stops at once.
            """)

    @Option(help: "Address to listen on, HOST:PORT.")
    var listen: String

    @Option(help: "The server's state directory (default: $REGTOKEN_HOME, else ~/.regtoken).")
    var home: String?

    @Option(help: "TLS certificate chain (PEM).")
    var tlsCert: String?

    @Option(help: "TLS private key (PEM, mode 0600).")
    var tlsKey: String?

    @Option(help: "Serve Prometheus metrics at http://HOST:PORT/metrics (HOST defaults to 127.0.0.1).")
    var metrics: String?

    @Option(parsing: .unconditional, help: "Sign the revocation list again when its signature is older than this (verifiers' --revocations-max-age should be at least twice it).")
    var revocationsRefresh: String = "5m"

    @Option(parsing: .unconditional, help: "On SIGTERM or SIGINT, give requests in flight this long to finish.")
    var shutdownGrace: String = "30s"

    @Option(help: "Failed authentications from one address within a minute before it gets 429.")
    var authFailureLimit: Int = 10

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    @Option(help: "Be the token server (GET /token) of a stock registry whose auth.token.service is this.")
    var tokenService: String?

    @Option(help: "The registry's auth.token.issuer: the registry tokens' iss.")
    var tokenIssuer: String?

    @Option(help: "The region the registry serves: only tokens of this region get registry tokens.")
    var tokenRegion: String?

    @Option(parsing: .unconditional, help: "How long a registry token lasts (and so how long a removed token keeps working at the registry), 1s to 1h.")
    var bearerLifetime: String = "5m"

    @Option(name: .customLong("trusted-proxy"), help: "A reverse proxy in front (CIDR, repeatable) whose X-Forwarded-For names the requester of /token, for tokens limited with --allow-from.")
    var trustedProxies: [String] = []

    func validate() throws {
        let token = [tokenService, tokenIssuer, tokenRegion]
        if token.contains(where: { $0 != nil }) && token.contains(where: { $0 == nil }) {
            throw ValidationError("--token-service, --token-issuer and --token-region go together")
        }
        if (tlsCert == nil) != (tlsKey == nil) { throw ValidationError("--tls-cert and --tls-key go together") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown --log-level \(logLevel)") }
        guard authFailureLimit >= 1 else { throw ValidationError("--auth-failure-limit must be at least 1") }
    }

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        let logger = Logger(label: "regtoken.serve")

        let (host, port) = try ProxyCommand.hostPort(listen, what: "--listen")
        let refresh = try cli { try Durations.parse(revocationsRefresh) }
        let grace = try cli { try Durations.parse(shutdownGrace) }
        let path = Home.resolvePath(explicit: home, environment: ProcessInfo.processInfo.environment)
        let issuer = try cli {
            try Issuer(home: path, revocationRefresh: refresh, failures: FailedAuthentications(limit: authFailureLimit), now: Durations.now())
        }
        var configuration = IssuerService.Configuration(host: host, port: port)
        if let tlsCert, let tlsKey {
            do {
                configuration.tls = try ProxyTLS.serverConfiguration(certificate: tlsCert, key: tlsKey)
            } catch {
                throw CLIError("cannot use the TLS certificate or key: \(error.description)")
            }
        }
        if let tokenService, let tokenIssuer, let tokenRegion {
            let lifetime = try cli { try Durations.parse(bearerLifetime) }
            guard lifetime <= 3600 else { throw CLIError("--bearer-lifetime \(bearerLifetime) is too long: at most 1h", exit: .invalidInput) }
            guard try cli({ try issuer.activeKeyAlgorithm() }) == .es256 else {
                throw CLIError("a token server signs with the active key, which must be ES256 (a registry takes ES256 keys): regtoken keys generate --alg ES256 --activate", exit: .invalidInput)
            }
            let trusted = try addressRanges(trustedProxies, flag: "--trusted-proxy")
            configuration.tokenServer = TokenServer(service: tokenService, issuer: tokenIssuer, region: tokenRegion, lifetime: lifetime,
                                                    trustedProxies: trusted)
        }
        let service = IssuerService(issuer: issuer, configuration: configuration, logger: logger)
        let listening = Mutex(false)
        let app = try service.application { channel in
            listening.withLock { $0 = true }
            logger.info("serving", metadata: ["listen": "\(channel.localAddress?.description ?? listen)", "home": "\(path)", "tls": "\(tlsCert != nil)"])
        }
        // From here on, a signal waits for the service group rather than killing the process.
        let signals = await ServiceRunner.trapSignals(hangup: false)
        var services: [any Service] = [Maintenance(issuer: issuer, logger: logger)]
        if let metrics {
            let (mhost, mport) = try ProxyCommand.hostPort(metrics, what: "--metrics", defaultHost: "127.0.0.1")
            let m = MetricsServer { registry.emitToString() }
            do { try await m.start(host: mhost, port: mport) } catch {
                throw CLIError("cannot listen for metrics on \(metrics): \(error)")
            }
            services.append(m)
        }
        services.append(app)
        var groupConfiguration = ServiceGroupConfiguration(services: services, logger: logger)
        groupConfiguration.maximumGracefulShutdownDuration = .seconds(grace)
        let group = ServiceGroup(configuration: groupConfiguration)
        switch await ServiceRunner.run(group, signals: signals, logger: logger) {
        case .cut: throw CLIError("stopped at once by a second signal; requests in flight were cut")
        case .failed(let error):
            throw CLIError(listening.withLock({ $0 }) ? "service stopped: \(error)" : "cannot listen on \(listen): \(SystemErrorText.describe(error))")
        case .stopped: break
        }
        logger.info("stopped")
    }
}
