import ArgumentParser
import Foundation
import RegToken
import RegTokenLedger
import RegTokenLoadTest
import RegTokenProxy
import RegTokenService
import NIOCore
import NIOSSL

struct LoadtestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loadtest",
        abstract: "Verification under load: in process, or over HTTP against a running regtoken proxy.",
        discussion: """
            In process (default): --threads N --duration D --alg HS256|ES256 [--cache] [--mix ...]. \
            Over HTTP: --url http://HOST:PORT --connections C --duration D [--mix ...], with tokens \
            issued from the state directory the proxy trusts (--home, --account, --region). \
            Exits 1 when any decision was wrong.
            """)

    @OptionGroup var global: GlobalOptions

    @Option(help: "Worker threads (in process).")
    var threads: Int = 1

    @Option(parsing: .unconditional, help: "How long to run, such as 10s.")
    var duration: String = "10s"

    @Option(help: "HS256 or ES256 (in process).")
    var alg: Algorithm = .hs256

    @Flag(help: "Turn on the ES256 verified-signature cache (in process).")
    var cache = false

    @Option(help: "Outcome weights: valid, expired, revoked, wrongscope, malformed.")
    var mix: String = Mix.standard.description

    @Option(help: "A running regtoken proxy, http://HOST:PORT or https://HOST:PORT (HTTP mode).")
    var url: String?

    @Option(help: "PEM certificates to trust for an https:// --url (default: system roots).")
    var ca: String?

    @Option(help: "Keep-alive connections (HTTP mode).")
    var connections: Int = 8

    @Flag(help: "Issue tokens in process on --home (the work of regtoken serve's POST /v1/tokens without HTTP), --threads at once, for --duration; the benchmark's in-process row.")
    var issue = false

    func validate() throws {
        guard (1...256).contains(threads) else { throw ValidationError("--threads must be 1 to 256") }
        guard (1...4096).contains(connections) else { throw ValidationError("--connections must be 1 to 4096") }
    }

    func run() async throws {
        let seconds = Double(try cli { try Durations.parse(duration) })
        let mix: Mix
        do { mix = try Mix(parsing: self.mix) } catch { throw CLIError(error) }
        let live = isatty(STDERR_FILENO) == 1
        let progress: @Sendable (Double, Int) -> Void = { elapsed, ops in
            guard live else { return }
            let rate = Double(ops) / max(elapsed, 0.001)
            FileHandle.standardError.write(Data("\r\u{1B}[K\(Int(elapsed)) s  \(ops) operations  \(Int(rate)) /s".utf8))
        }
        if issue { return try issueLoad(seconds: seconds) }
        let report: Report
        if let url {
            report = try await http(url: url, seconds: seconds, mix: mix, progress: progress)
        } else {
            do {
                report = try InProcessLoadTest(threads: threads, duration: seconds, algorithm: alg, cache: cache, mix: mix, progress: progress).run()
            } catch {
                throw CLIError("load test failed: \(error)")
            }
        }
        if live { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
        if global.json { try Output.json(report) } else { Output.line(report.text) }
        if report.wrongDecisions > 0 {
            throw CLIError("\(report.wrongDecisions) wrong decision(s)")
        }
        if let failed = report.outcomes["errors"], failed > 0 {
            throw CLIError("\(failed) connection(s) failed before the end of the run (the proxy's log says why; for an https:// proxy, is its CA given with --ca?)")
        }
    }

    /// Tokens from the state directory the proxy trusts, leaving nothing in its `token-list`:
    /// valid (read-write) and pull-only ones for the wrong scope are signed with the active key but
    /// not recorded, and live only for the run plus five minutes; revoked ones must be on the
    /// revocation list, so they are recorded with the same short life and removed (revoked) at
    /// once; expired ones are signed in the past; and garbage.
    func http(url: String, seconds: Double, mix: Mix, progress: @escaping @Sendable (Double, Int) -> Void) async throws -> Report {
        var rest = url
        let https = rest.lowercased().hasPrefix("https://")
        guard https || rest.lowercased().hasPrefix("http://") else { throw CLIError("--url must be http://HOST:PORT or https://HOST:PORT", exit: .invalidInput) }
        rest.removeFirst(https ? 8 : 7)
        let (host, port) = try ProxyCommand.hostPort(String(rest.prefix { $0 != "/" }), what: "--url")
        let (home, account, region) = try global.openHome(needing: .accountAndRegion)
        let now = Durations.now()
        let lifetime = Int64(seconds.rounded(.up)) + 300
        var tokens: [Outcome: [String]] = [:]
        try cli {
            let issuer = try TokenIssuer(keyRing: home.keyRing())
            func sign(_ scope: Scope, issuedAt: Int64, expiresAt: Int64) throws -> String {
                try issuer.issue(TokenClaims(account: account, region: region, scope: scope, issuedAt: issuedAt, expiresAt: expiresAt))
            }
            tokens[.valid] = try (0..<8).map { _ in try sign(.pushPull, issuedAt: now, expiresAt: now + lifetime) }
            tokens[.wrongscope] = try (0..<4).map { _ in try sign(.pull, issuedAt: now, expiresAt: now + lifetime) }
            tokens[.expired] = try (0..<4).map { _ in try sign(.pushPull, issuedAt: now - 7200, expiresAt: now - 3600) }
            let revoked = try (0..<4).map { _ in
                try home.issueToken(account: account, region: region, scope: .pushPull, description: "loadtest (revoked)",
                                    lifetime: lifetime, namespaces: nil, now: now)
            }
            _ = try home.removeTokens(revoked.map(\.record.id), account: account, region: region, now: now)
            tokens[.revoked] = revoked.map(\.value)
        }
        FileHandle.standardError.write(Data("""
            loadtest: 16 tokens signed for this run and not recorded (they expire in \(lifetime) s); 4 recorded and \
            revoked at once for the revoked outcome: token-list shows none of them

            """.utf8))
        tokens[.malformed] = ["not.a.token", "garbage", String(tokens[.valid]![0].dropLast(4)) + "AAAA"]
        home.close()
        // Give proxies watching the revocation list (250 ms polls) time to see the new one.
        try await Task.sleep(nanoseconds: 1_500_000_000)
        do {
            return try await HTTPLoadTest(host: host, port: port, connections: connections, duration: seconds, mix: mix, tokens: tokens,
                                          repository: "\(account)/loadtest", progress: progress,
                                          secure: https ? try Self.tlsHandler(host: host, ca: ca) : nil).run()
        } catch {
            throw CLIError("cannot load \(url): \(error)")
        }
    }

    /// A TLS client handler maker for an https:// proxy: TLS 1.2+, the certificate checked against
    /// `ca` (else the system roots) and the host name (or address).
    static func tlsHandler(host: String, ca: String?) throws -> @Sendable (ChannelPipeline.SynchronousOperations) throws -> Void {
        let config: TLSConfiguration
        do { config = try ProxyTLS.clientConfiguration(caFile: ca) } catch { throw CLIError("--ca: \(error.reason)", exit: .invalidInput) }
        let context = try NIOSSLContext(configuration: config)
        let serverName = ProxyTLS.serverName(for: host)
        return { pipeline in try pipeline.addHandler(NIOSSLClientHandler(context: context, serverHostname: serverName)) }
    }

    /// In-process token issuing through the service's own ``Issuer`` (one lock, SQLite commit
    /// with fsync per token): throughput and latency percentiles, to set beside the same work
    /// through `regtoken serve` over HTTP (scripts/bench-serve.sh).
    func issueLoad(seconds: Double) throws {
        let path = Home.resolvePath(explicit: global.home, environment: global.environment)
        let issuer = try cli { try Issuer(home: path, now: Durations.now()) }
        let account = try global.account ?? global.environment["REGTOKEN_ACCOUNT"] ?? { throw CLIError("--issue needs --account", exit: .invalidInput) }()
        let region = global.region ?? global.environment["REGTOKEN_REGION"] ?? "eu-west-1"
        final class Samples: @unchecked Sendable {
            let lock = NSLock()
            var latencies: [Double] = []
            var failures = 0
        }
        let samples = Samples()
        let deadline = Date().addingTimeInterval(seconds)
        let group = DispatchGroup()
        for _ in 0..<threads {
            group.enter()
            Thread.detachNewThread {
                var mine: [Double] = []
                var failed = 0
                while Date() < deadline {
                    let t0 = DispatchTime.now().uptimeNanoseconds
                    do {
                        _ = try issuer.issueForBenchmark(account: account, region: region)
                        mine.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
                    } catch {
                        failed += 1
                    }
                }
                samples.lock.lock()
                samples.latencies += mine
                samples.failures += failed
                samples.lock.unlock()
                group.leave()
            }
        }
        group.wait()
        let sorted = samples.latencies.sorted()
        func p(_ q: Double) -> Double { sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(Double(sorted.count) * q))] }
        let rate = Double(sorted.count) / seconds
        if global.json {
            struct R: Encodable { var mode: String; var operations: Int; var perSecond: Double; var p50Ms: Double; var p99Ms: Double; var failures: Int }
            return try Output.json(R(mode: "issue", operations: sorted.count, perSecond: rate, p50Ms: p(0.5), p99Ms: p(0.99), failures: samples.failures))
        }
        Output.line("issue in process: \(sorted.count) tokens in \(Int(seconds)) s, \(Int(rate))/s, p50 \(p(0.5)) ms, p99 \(p(0.99)) ms, \(samples.failures) failures")
    }
}
