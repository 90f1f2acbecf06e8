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

    func validate() throws {
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
        let service = IssuerService(issuer: issuer, configuration: configuration, logger: logger)
        let listening = Mutex(false)
        let app = try service.application { channel in
            listening.withLock { $0 = true }
            logger.info("serving", metadata: ["listen": "\(channel.localAddress?.description ?? listen)", "home": "\(path)", "tls": "\(tlsCert != nil)"])
        }
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
        switch await ServiceRunner.run(group, logger: logger) {
        case .cut: throw CLIError("stopped at once by a second signal; requests in flight were cut")
        case .failed(let error):
            throw CLIError(listening.withLock({ $0 }) ? "service stopped: \(error)" : "cannot listen on \(listen): \(SystemErrorText.describe(error))")
        case .stopped: break
        }
        logger.info("stopped")
    }
}
