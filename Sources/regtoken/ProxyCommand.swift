import ArgumentParser
import Foundation
import Logging
import Metrics
import NIOCore
import NIOSSL
import Prometheus
import ServiceLifecycle
import Synchronization
import UnixSignals
import RegToken
import RegTokenAccess
import RegTokenLedger
import RegTokenProxy
import RegTokenProxyCore

struct ProxyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "proxy",
        abstract: "Run a registry front proxy that checks tokens before forwarding to the registry.",
        discussion: """
            Clients log in with `docker login -u token -p <token> <proxy>`. Keys, the revocation list \
            and the namespaces file are re-read within a second of a change and on SIGHUP (with the TLS \
            certificate). A bad new file is refused with a log line and the one in force stays.
            """)

    @Option(help: "Address to listen on, HOST:PORT.")
    var listen: String

    @Option(help: "The registry, http://HOST:PORT or https://HOST:PORT (its certificate checked against --upstream-ca, else the system roots).")
    var upstream: String

    @Option(help: "PEM certificates to trust for an https:// upstream (default: system roots).")
    var upstreamCA: String?

    @Option(help: "The region this proxy serves (default: $REGTOKEN_REGION, else `regtoken config set region` in --home).")
    var region: String?

    @Option(help: "A regtoken service (regtoken serve) to take keys, revocations and the namespace map from, https://HOST[:PORT] (instead of --keys, --jwks, --revocations and --namespaces).")
    var issuer: String?

    @Option(help: "PEM certificates to trust for --issuer (default: system roots).")
    var issuerCA: String?

    @Option(help: "Key directory (the public keys are enough for ES256).")
    var keys: String?

    @Option(help: "JWKS file of public keys (instead of --keys).")
    var jwks: String?

    @Option(help: "The signed revocation list: a file, or an http(s):// URL polled with If-None-Match.")
    var revocations: String?

    @Option(help: "PEM certificates to trust for an https revocation list URL (default: system roots).")
    var revocationsCA: String?

    @Option(parsing: .unconditional, help: "Refuse non-expiring tokens when the revocation list in force was last verified current, or was signed, longer ago than this (e.g. 10m).")
    var revocationsMaxAge: String?

    @Option(parsing: .unconditional, help: "The most one fetch of a revocation list URL may take, connecting and TLS included.")
    var revocationsTimeout: String = "10s"

    @Option(help: "The proxy's state directory: the highest revocation list version accepted is kept in <home>/proxy (default: $REGTOKEN_HOME, else ~/.regtoken).")
    var home: String?

    @Option(help: "Namespaces file: 'namespace account' per line (default: each account owns the namespace of its name).")
    var namespaces: String?

    @Option(help: "TLS certificate chain (PEM).")
    var tlsCert: String?

    @Option(help: "TLS private key (PEM, mode 0600).")
    var tlsKey: String?

    @Option(help: "Lowest TLS version accepted: 1.2 or 1.3.")
    var tlsMinVersion: String = "1.2"

    @Option(help: "TLS 1.2 cipher suites, OpenSSL names separated by ':' (default: ECDHE with AES-GCM or ChaCha20-Poly1305 only).")
    var tlsCiphers: String = ProxyTLS.defaultCipherSuites

    @Option(help: "Serve Prometheus metrics at http://HOST:PORT/metrics (HOST defaults to 127.0.0.1).")
    var metrics: String?

    @Option(help: "Most client connections at once.")
    var maxConnections: Int = 1024

    @Option(parsing: .unconditional, help: "Close connections idle this long (e.g. 60s).")
    var idleTimeout: String = "60s"

    @Option(parsing: .unconditional, help: "A request head must arrive complete within this long (slow clients are cut off).")
    var headerTimeout: String = "10s"

    @Option(parsing: .unconditional, help: "Give up on the registry's answer after this long (504).")
    var upstreamTimeout: String = "60s"

    @Option(parsing: .unconditional, help: "On SIGTERM or SIGINT, give requests in flight this long to finish before closing their connections.")
    var shutdownGrace: String = "30s"

    @Option(parsing: .unconditional, help: "Clock leeway for token expiry and issue time, 0s to 10m (past expiry never more than a tenth of a token's lifetime).")
    var leeway: String = "60s"

    @Option(help: "Slots of the ES256 verified-signature cache (about 1 KiB each; 0 turns it off).")
    var signatureCache: Int = 4096

    @Option(name: .customLong("trusted-proxy"), help: "A reverse proxy in front (CIDR, repeatable) whose X-Forwarded-For names the client, for tokens limited with --allow-from; from any other peer the header is ignored.")
    var trustedProxies: [String] = []
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    func validate() throws {
        if issuer != nil {
            if keys != nil || jwks != nil || revocations != nil || namespaces != nil {
                throw ValidationError("--issuer gives the keys, revocations and namespaces: leave out --keys, --jwks, --revocations and --namespaces")
            }
        } else if (keys == nil) == (jwks == nil) {
            throw ValidationError("give exactly one of --issuer URL, --keys DIR or --jwks FILE")
        }
        if (tlsCert == nil) != (tlsKey == nil) { throw ValidationError("--tls-cert and --tls-key go together") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown --log-level \(logLevel)") }
        guard (1...1_000_000).contains(maxConnections) else { throw ValidationError("--max-connections must be between 1 and 1000000") }
        guard (0...(1 << 22)).contains(signatureCache) else { throw ValidationError("--signature-cache must be 0 to 4194304") }
        if revocationsMaxAge != nil && revocations == nil && issuer == nil { throw ValidationError("--revocations-max-age needs --revocations or --issuer") }
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

    /// `HOST:PORT`; an empty host is `defaultHost`.
    static func hostPort(_ text: String, what: String, defaultHost: String = "0.0.0.0") throws -> (String, Int) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else {
            throw CLIError("\(what) must be HOST:PORT, such as 127.0.0.1:8443", exit: .invalidInput)
        }
        let host = String(text[..<colon]).filter { $0 != "[" && $0 != "]" }
        return (host.isEmpty ? defaultHost : host, port)
    }

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let registry = PrometheusCollectorRegistry()
        // (The request path's counters and histograms are the proxy's own: ProxyMetrics.)
        let factory = PrometheusMetricsFactory(registry: registry)
        MetricsSystem.bootstrap(factory)
        let logger = Logger(label: "regtoken.proxy")

        let (listenHost, listenPort) = try Self.hostPort(listen, what: "--listen")
        var upstreamText = upstream
        let upstreamTLS = upstreamText.lowercased().hasPrefix("https://")
        guard upstreamTLS || upstreamText.lowercased().hasPrefix("http://") else {
            throw CLIError("--upstream must be http://HOST:PORT or https://HOST:PORT (the registry behind the proxy)", exit: .invalidInput)
        }
        if upstreamCA != nil && !upstreamTLS { throw CLIError("--upstream-ca needs an https:// --upstream", exit: .invalidInput) }
        upstreamText.removeFirst(upstreamTLS ? 8 : 7)
        let (upstreamHost, upstreamPort) = try Self.hostPort(String(upstreamText.prefix { $0 != "/" }), what: "--upstream")
        // The region as every command finds it: --region, $REGTOKEN_REGION, the home's saved config.
        let environment = ProcessInfo.processInfo.environment
        if let region, region.trimmingWhitespace.isEmpty {
            throw CLIError("--region is empty: give a name, or leave the flag out", exit: .invalidInput)
        }
        // The saved config is read only when neither the flag nor the environment gives the region.
        let given = [region, environment["REGTOKEN_REGION"]].compactMap({ $0?.trimmingWhitespace }).first(where: { !$0.isEmpty })
        let savedRegion = try given == nil ? cli { try HomeConfig.peek(home: Home.resolvePath(explicit: home, environment: environment)) }.region : nil
        guard let region = given ?? savedRegion?.trimmingWhitespace, !region.isEmpty else {
            throw CLIError("no region set: pass --region NAME, set REGTOKEN_REGION, or run: regtoken config set region NAME", exit: .invalidInput)
        }
        let idle = try cli { try Durations.parse(idleTimeout) }
        let upstreamWait = try cli { try Durations.parse(upstreamTimeout) }
        let headerWait = try cli { try Durations.parse(headerTimeout) }
        let maxAge = try revocationsMaxAge.map { text in try cli { try Durations.parse(text) } }
        let fetchTimeout = try cli { try Durations.parse(revocationsTimeout) }

        // --issuer: keys, revocations and namespaces from regtoken serve.
        let issuerBase = issuer.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
        if let base = issuerBase, !(base.lowercased().hasPrefix("http://") || base.lowercased().hasPrefix("https://")) {
            throw CLIError("--issuer must be http(s)://HOST[:PORT]", exit: .invalidInput)
        }
        func fetcher(_ path: String) throws -> DocumentFetcher {
            do { return try DocumentFetcher(url: (issuerBase ?? "") + path, caFile: issuerCA, timeout: .seconds(fetchTimeout)) } catch {
                throw CLIError("--issuer: \(error)", exit: .invalidInput)
            }
        }
        let keySource: Reloader.KeySource
        let ring: KeyRing
        if issuerBase != nil {
            keySource = .url(try fetcher("/.well-known/jwks.json"))
            ring = try KeyRing(keys: [])  // fetched by loadInitial
        } else {
            keySource = keys.map { .directory($0) } ?? .jwks(jwks ?? "")
            ring = try cli { try Reloader.loadKeys(keySource) }
            guard !ring.keys.isEmpty else { throw CLIError("no keys to verify with in \(keys ?? jwks ?? "")", exit: .invalidInput) }
        }
        let verifier = TokenVerifier(keys: ring, configuration: VerifierConfiguration(leeway: try leewaySeconds(leeway), signatureCacheCapacity: signatureCache))
        let state = ProxyState(verifier: verifier, region: region, revocationMaxAge: maxAge, now: Durations.now())

        var config = ProxyConfiguration(listenHost: listenHost, listenPort: listenPort, upstreamHost: upstreamHost,
                                        upstreamPort: upstreamPort, region: region)
        config.maxConnections = maxConnections
        config.idleTimeout = .seconds(idle)
        config.upstreamResponseTimeout = .seconds(upstreamWait)
        config.headerTimeout = .seconds(headerWait)
        config.shutdownGrace = .seconds(try cli { try Durations.parse(shutdownGrace) })
        // The access log, buffered and written off the event loops (at --log-level info and below).
        let accessLog = level <= .info ? AccessLog(label: "regtoken.proxy") : nil
        config.accessLog = accessLog
        config.trustedProxies = try addressRanges(trustedProxies, flag: "--trusted-proxy")
        let tls: NIOSSLContext? = tlsCert != nil ? try loadTLS() : nil
        if tls != nil { config.clientScheme = "https" }
        let revocationSource: Reloader.RevocationSource?
        var acceptedVersion: AcceptedVersionFile? = nil
        let revocations = issuerBase.map { $0 + "/v1/revocations" } ?? self.revocations
        if let revocations {
            if revocations.lowercased().hasPrefix("http://") || revocations.lowercased().hasPrefix("https://") {
                do { revocationSource = .url(try DocumentFetcher(url: revocations, caFile: revocationsCA, timeout: .seconds(fetchTimeout))) } catch {
                    throw CLIError("--revocations: \(error)", exit: .invalidInput)
                }
            } else {
                revocationSource = .file(revocations)
            }
            let stateDirectory = Home.resolvePath(explicit: home, environment: ProcessInfo.processInfo.environment) + "/proxy"
            do { acceptedVersion = try AcceptedVersionFile(directory: stateDirectory, source: revocations) } catch {
                await Self.shutdown(keySource, revocationSource)
                throw CLIError("cannot use the proxy's state directory \(stateDirectory) (--home): \(error)")
            }
        } else {
            revocationSource = nil
            logger.warning("no --revocations: removed tokens stay valid until they expire")
        }

        Self.raiseDescriptorLimit(for: maxConnections, logger: logger)
        let upstreamContext = upstreamTLS ? try loadUpstreamTLS() : nil
        let server = ProxyServer(configuration: config, tls: tls, upstreamTLS: upstreamContext, state: state, logger: logger)
        let namespaceSource: Reloader.NamespaceSource?
        if issuerBase != nil {
            namespaceSource = .url(try fetcher("/v1/namespaces"))
        } else {
            namespaceSource = namespaces.map { .file($0) }
        }
        let reloader = Reloader(state: state, server: server, keys: keySource, revocations: revocationSource,
                                namespaces: namespaceSource, acceptedVersion: acceptedVersion, logger: logger)
        do {
            try await reloader.loadInitial()
        } catch {
            await reloader.shutdown()
            switch error {
            case let e as RevocationError: throw CLIError("revocation list refused: \(e.reason)")
            case let e as NamespaceMapError: throw CLIError("namespaces file refused: \(e.description)")
            default: throw CLIError("cannot load the revocation list: \(error)")
            }
        }
        // From here on, a signal waits for the service group rather than killing the process.
        let signals = await ServiceRunner.trapSignals(hangup: true)
        var metricsServer: MetricsServer? = nil
        if let metrics {
            // Metrics say which tokens are refused and why: loopback unless an address is given.
            let (host, port) = try Self.hostPort(metrics, what: "--metrics", defaultHost: "127.0.0.1")
            // Ready: not draining, keys to verify with, and a revocation list fresh enough that
            // non-expiring tokens are not being refused.
            let m = MetricsServer(timeout: .seconds(headerWait), unready: {
                if server.isDraining { return "draining (shutting down)" }
                if state.verifier.keyRing.keys.isEmpty { return "no keys to verify with" }
                if state.revocationsStale(now: Durations.now()) { return "the revocation list is older than --revocations-max-age" }
                return nil
            }) {
                // The revocation gauges are read at the scrape, not only after a poll: the list in
                // force and the gauges never disagree, and the ages are exact to the second.
                server.updateRevocationGauges(now: Durations.now())
                return ProxyMetrics.withHelp(registry.emitToString() + (await server.metrics.requestMetrics()))
            }
            do {
                try await m.start(host: host, port: port)
            } catch {
                await reloader.shutdown()
                throw CLIError("cannot listen for metrics on \(metrics): \(error)")
            }
            metricsServer = m
        }
        do {
            try await server.start()
        } catch {
            await reloader.shutdown()
            throw CLIError("cannot listen on \(listen): \(SystemErrorText.describe(error))")
        }

        // The services stop in the reverse of this order: the proxy drains first, while the
        // reloader and the metrics keep working.
        var services: [any Service] = [reloader]
        if let metricsServer { services.append(metricsServer) }
        services.append(server)
        let group = ServiceGroup(services: services, logger: logger)
        accessLog?.start()
        // Every exchange that ended is written before the process goes, however it stops.
        defer { accessLog?.close() }
        // SIGHUP reloads (keys, lists, the TLS certificate); SIGTERM or SIGINT drains.
        let outcome = await ServiceRunner.run(group, signals: signals, logger: logger) { [self] in
            await reloader.reloadAll()
            if tlsCert != nil {
                do {
                    server.replaceTLS(try loadTLS())
                    logger.info("TLS certificate reloaded")
                } catch {
                    logger.error("TLS certificate not reloaded; keeping the one in force", metadata: ["error": "\(error)"])
                }
            }
        }
        await reloader.shutdown()
        switch outcome {
        case .cut: throw CLIError("stopped at once by a second signal; requests in flight were cut")
        case .failed(let error): throw CLIError("proxy stopped: \(error)")
        case .stopped: break
        }
        logger.info("stopped")
    }

    /// Closes fetchers made before the reloader that owns them exists.
    static func shutdown(_ keys: Reloader.KeySource, _ revocations: Reloader.RevocationSource?) async {
        if case .url(let f) = keys { await f.shutdown() }
        if case .url(let f)? = revocations { await f.shutdown() }
    }

    /// TLS towards an https:// registry: TLS 1.2 or later, its certificate checked against
    /// --upstream-ca or the system roots, and its name (or address).
    func loadUpstreamTLS() throws -> NIOSSLContext {
        do {
            return try NIOSSLContext(configuration: ProxyTLS.clientConfiguration(caFile: upstreamCA))
        } catch let error as ProxyError {
            throw CLIError("--upstream-ca: \(error.reason)", exit: .invalidInput)
        } catch {
            throw CLIError("cannot set up TLS to the registry: \(SystemErrorText.describe(error))")
        }
    }

    func loadTLS() throws -> NIOSSLContext {
        guard let tlsCert, let tlsKey else { throw CLIError("--tls-cert and --tls-key go together", exit: .invalidInput) }
        do {
            return try ProxyTLS.serverContext(certificate: tlsCert, key: tlsKey, minimumVersion: tlsMinVersion, cipherSuites: tlsCiphers)
        } catch {
            throw CLIError("cannot use the TLS certificate or key: \(error.description)")
        }
    }
}

extension PrometheusCollectorRegistry {
    func emitToString() -> String {
        var buffer: [UInt8] = []
        emit(into: &buffer)
        return String(decoding: buffer, as: UTF8.self)
    }
}
