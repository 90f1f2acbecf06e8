import ArgumentParser
import Foundation
import Logging
import Metrics
import NIOCore
import NIOSSL
import Prometheus
import RegToken
import RegTokenAccess
import RegTokenLedger
import RegTokenProxy

struct ProxyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "proxy",
        abstract: "Run a registry front proxy that checks tokens before forwarding to the registry.",
        discussion: """
            Clients log in with `docker login -u token -p <token> <proxy>`. The revocation list and \
            the namespaces file are re-read within a second of a change and on SIGHUP; keys on SIGHUP. \
            A bad new file is refused with a log line and the one in force stays.
            """)

    @Option(help: "Address to listen on, HOST:PORT.")
    var listen: String

    @Option(help: "The registry, http://HOST:PORT.")
    var upstream: String

    @Option(help: "The region this proxy serves (default: $REGTOKEN_REGION).")
    var region: String?

    @Option(help: "Key directory (the public keys are enough for ES256).")
    var keys: String?

    @Option(help: "JWKS file of public keys (instead of --keys).")
    var jwks: String?

    @Option(help: "The signed revocation list: a file, or an http(s):// URL polled with If-None-Match.")
    var revocations: String?

    @Option(help: "PEM certificates to trust for an https revocation list URL (default: system roots).")
    var revocationsCA: String?

    @Option(help: "Refuse non-expiring tokens when the revocation list in force has not been confirmed current for this long (e.g. 10m).")
    var revocationsMaxAge: String?

    @Option(help: "Namespaces file: 'namespace account' per line (default: each account owns the namespace of its name).")
    var namespaces: String?

    @Option(help: "TLS certificate chain (PEM).")
    var tlsCert: String?

    @Option(help: "TLS private key (PEM).")
    var tlsKey: String?

    @Option(help: "Serve Prometheus metrics at http://HOST:PORT/metrics.")
    var metrics: String?

    @Option(help: "Most client connections at once.")
    var maxConnections: Int = 1024

    @Option(help: "Close connections idle this long (e.g. 60s).")
    var idleTimeout: String = "60s"

    @Option(help: "A request head must arrive complete within this long (slow clients are cut off).")
    var headerTimeout: String = "10s"

    @Option(help: "Give up on the registry's answer after this long (504).")
    var upstreamTimeout: String = "60s"

    @Option(help: "Clock leeway in seconds for token expiry and issue time (0 to 600).")
    var leeway: Int64 = 60

    @Option(help: "Slots of the ES256 verified-signature cache (about 1 KiB each; 0 turns it off).")
    var signatureCache: Int = 4096

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    func validate() throws {
        if (keys == nil) == (jwks == nil) { throw ValidationError("give exactly one of --keys DIR or --jwks FILE") }
        if (tlsCert == nil) != (tlsKey == nil) { throw ValidationError("--tls-cert and --tls-key go together") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown --log-level \(logLevel)") }
        guard (1...1_000_000).contains(maxConnections) else { throw ValidationError("--max-connections must be between 1 and 1000000") }
        guard (0...(1 << 22)).contains(signatureCache) else { throw ValidationError("--signature-cache must be 0 to 4194304") }
        guard (0...VerifierConfiguration.maximumLeeway).contains(leeway) else { throw ValidationError("--leeway must be 0 to 600 seconds") }
    }

    /// Every client connection holds a descriptor, and one being forwarded holds a second to the
    /// registry: `--max-connections` needs about twice as many descriptors as it allows, plus a
    /// few for files and listeners. A soft limit below that (often 1024) is raised up to the hard
    /// limit, as nginx and Go servers do; if even the hard limit is too low, a warning says so
    /// rather than letting accept() fail later under load.
    static func raiseDescriptorLimit(for maxConnections: Int, logger: Logger) {
        let needed = rlim_t(2 * maxConnections + 64)
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < needed else { return }
        let wanted = min(needed, limit.rlim_max)
        if wanted > limit.rlim_cur {
            var raised = limit
            raised.rlim_cur = wanted
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 {
                logger.info("raised the open file limit", metadata: ["from": "\(limit.rlim_cur)", "to": "\(wanted)"])
                limit = raised
            }
        }
        if limit.rlim_cur < needed {
            logger.warning("--max-connections needs about \(needed) open files but the limit is \(limit.rlim_cur) (ulimit -n); lower --max-connections or raise the limit")
        }
    }

    static func hostPort(_ text: String, what: String) throws -> (String, Int) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else {
            throw CLIError("\(what) must be HOST:PORT, such as 127.0.0.1:8443", exit: .invalidInput)
        }
        let host = String(text[..<colon]).filter { $0 != "[" && $0 != "]" }
        return (host.isEmpty ? "0.0.0.0" : host, port)
    }

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        // Verification takes microseconds: buckets from 1 µs to 50 ms.
        factory.durationHistogramBuckets["regtoken_proxy_verification_seconds"] = [
            .nanoseconds(1_000), .nanoseconds(2_500), .nanoseconds(5_000), .nanoseconds(10_000), .nanoseconds(25_000),
            .nanoseconds(50_000), .nanoseconds(100_000), .nanoseconds(250_000), .nanoseconds(500_000), .milliseconds(1),
            .milliseconds(5), .milliseconds(50),
        ]
        MetricsSystem.bootstrap(factory)
        let logger = Logger(label: "regtoken.proxy")

        let (listenHost, listenPort) = try Self.hostPort(listen, what: "--listen")
        var upstreamText = upstream
        guard upstreamText.lowercased().hasPrefix("http://") else {
            throw CLIError("--upstream must be http://HOST:PORT (the registry behind the proxy)", exit: .invalidInput)
        }
        upstreamText.removeFirst(7)
        let (upstreamHost, upstreamPort) = try Self.hostPort(String(upstreamText.prefix { $0 != "/" }), what: "--upstream")
        guard let region = region ?? ProcessInfo.processInfo.environment["REGTOKEN_REGION"], !region.isEmpty else {
            throw CLIError("no region: pass --region NAME or set REGTOKEN_REGION", exit: .invalidInput)
        }
        let idle = try cli { try Durations.parse(idleTimeout) }
        let upstreamWait = try cli { try Durations.parse(upstreamTimeout) }
        let headerWait = try cli { try Durations.parse(headerTimeout) }
        let maxAge = try revocationsMaxAge.map { text in try cli { try Durations.parse(text) } }

        let keySource: Reloader.KeySource = keys.map { .directory($0) } ?? .jwks(jwks ?? "")
        let ring = try cli { try Reloader.loadKeys(keySource) }
        guard !ring.keys.isEmpty else { throw CLIError("no keys to verify with in \(keys ?? jwks ?? "")", exit: .invalidInput) }
        let verifier = TokenVerifier(keys: ring, configuration: VerifierConfiguration(leeway: leeway, signatureCacheCapacity: signatureCache))
        let state = ProxyState(verifier: verifier, region: region, revocationMaxAge: maxAge, now: Durations.now())

        var config = ProxyConfiguration(listenHost: listenHost, listenPort: listenPort, upstreamHost: upstreamHost,
                                        upstreamPort: upstreamPort, region: region)
        config.maxConnections = maxConnections
        config.idleTimeout = .seconds(idle)
        config.upstreamResponseTimeout = .seconds(upstreamWait)
        config.headerTimeout = .seconds(headerWait)
        if let tlsCert, let tlsKey {
            do {
                let chain = try NIOSSLCertificate.fromPEMFile(tlsCert).map { NIOSSLCertificateSource.certificate($0) }
                let key = try NIOSSLPrivateKey(file: tlsKey, format: .pem)
                config.tls = try NIOSSLContext(configuration: .makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key)))
            } catch {
                throw CLIError("cannot load TLS certificate or key (\(tlsCert), \(tlsKey)): \(error)")
            }
        }
        let revocationSource: Reloader.RevocationSource?
        if let revocations {
            if revocations.lowercased().hasPrefix("http://") || revocations.lowercased().hasPrefix("https://") {
                do { revocationSource = .url(try HTTPFetcher(url: revocations, caFile: revocationsCA)) } catch {
                    throw CLIError("--revocations: \(error)", exit: .invalidInput)
                }
            } else {
                revocationSource = .file(revocations)
            }
        } else {
            revocationSource = nil
            logger.warning("no --revocations: removed tokens stay valid until they expire")
        }

        Self.raiseDescriptorLimit(for: maxConnections, logger: logger)
        let server = ProxyServer(configuration: config, state: state, logger: logger)
        let reloader = Reloader(state: state, server: server, keys: keySource, revocations: revocationSource,
                                namespacesPath: namespaces, logger: logger)
        do {
            try await reloader.loadInitial()
        } catch let e as RevocationError {
            throw CLIError("revocation list refused: \(e.reason)")
        } catch let e as NamespaceMap.Invalid {
            throw CLIError("namespaces file refused: \(e.description)")
        } catch {
            throw CLIError("cannot load the revocation list: \(error)")
        }
        if let metrics {
            let (host, port) = try Self.hostPort(metrics, what: "--metrics")
            do {
                try await MetricsServer { registry.emitToString() }.start(host: host, port: port)
            } catch {
                throw CLIError("cannot listen for metrics on \(metrics): \(error)")
            }
        }
        do {
            try await server.start()
        } catch {
            throw CLIError("cannot listen on \(listen): \(error)")
        }
        reloader.start()
        for sig in [SIGTERM, SIGINT] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler {
                logger.info("shutting down")
                Task { try? await server.close() }
            }
            source.resume()
            Self.signalSources.append(source)
        }
        try await server.waitUntilClosed()
        reloader.stop()
    }

    nonisolated(unsafe) static var signalSources: [any DispatchSourceSignal] = []
}

extension PrometheusCollectorRegistry {
    func emitToString() -> String {
        var buffer: [UInt8] = []
        emit(into: &buffer)
        return String(decoding: buffer, as: UTF8.self)
    }
}
