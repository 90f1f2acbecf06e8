import ArgumentParser
import Foundation
import RegToken
import RegTokenLedger
import RegTokenLoadTest

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

    @Option(help: "How long to run, such as 10s.")
    var duration: String = "10s"

    @Option(help: "HS256 or ES256 (in process).")
    var alg: Algorithm = .hs256

    @Flag(help: "Turn on the ES256 verified-signature cache (in process).")
    var cache = false

    @Option(help: "Outcome weights: valid, expired, revoked, wrongscope, malformed.")
    var mix: String = Mix.standard.description

    @Option(help: "A running regtoken proxy, http://HOST:PORT (HTTP mode).")
    var url: String?

    @Option(help: "Keep-alive connections (HTTP mode).")
    var connections: Int = 8

    func validate() throws {
        guard (1...256).contains(threads) else { throw ValidationError("--threads must be 1 to 256") }
        guard (1...4096).contains(connections) else { throw ValidationError("--connections must be 1 to 4096") }
    }

    func run() async throws {
        let seconds = Double(try cli { try Durations.parse(duration) })
        let mix: Mix
        do { mix = try Mix(parsing: self.mix) } catch { throw CLIError("\(error)", exit: .invalidInput) }
        let live = isatty(STDERR_FILENO) == 1
        let progress: @Sendable (Double, Int) -> Void = { elapsed, ops in
            guard live else { return }
            let rate = Double(ops) / max(elapsed, 0.001)
            FileHandle.standardError.write(Data("\r\u{1B}[K\(Int(elapsed)) s  \(ops) operations  \(Int(rate)) /s".utf8))
        }
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
    }

    /// Tokens from the state directory the proxy trusts: valid (read-write), revoked (issued then
    /// removed: the proxy must have picked up the list), expired (signed with the active key, in the
    /// past), pull-only ones for the wrong scope, and garbage.
    func http(url: String, seconds: Double, mix: Mix, progress: @escaping @Sendable (Double, Int) -> Void) async throws -> Report {
        var rest = url
        guard rest.lowercased().hasPrefix("http://") else { throw CLIError("--url must be http://HOST:PORT", exit: .invalidInput) }
        rest.removeFirst(7)
        let (host, port) = try ProxyCommand.hostPort(String(rest.prefix { $0 != "/" }), what: "--url")
        let home = try global.openHome()
        let account = try global.resolvedAccount(home)
        let region = try global.resolvedRegion(home)
        let now = Durations.now()
        var tokens: [Outcome: [String]] = [:]
        try cli {
            func add(_ scope: Scope, _ lifetime: Int64?) throws -> IssuedToken {
                try home.issueToken(account: account, region: region, scope: scope, description: "loadtest", lifetime: lifetime, namespaces: nil, now: now)
            }
            tokens[.valid] = try (0..<8).map { _ in try add(.pushPull, 3600).value }
            tokens[.wrongscope] = try (0..<4).map { _ in try add(.pull, 3600).value }
            let revoked = try (0..<4).map { _ in try add(.pushPull, 3600) }
            _ = try home.removeTokens(revoked.map(\.record.id), account: account, region: region, now: now)
            tokens[.revoked] = revoked.map(\.value)
            let issuer = try TokenIssuer(keyRing: home.keyRing())
            tokens[.expired] = try (0..<4).map { _ in
                try issuer.issue(TokenClaims(account: account, region: region, scope: .pushPull, issuedAt: now - 7200, expiresAt: now - 3600))
            }
        }
        tokens[.malformed] = ["not.a.token", "garbage", String(tokens[.valid]![0].dropLast(4)) + "AAAA"]
        home.close()
        // Give proxies watching the revocation list (250 ms polls) time to see the new one.
        try await Task.sleep(nanoseconds: 1_500_000_000)
        do {
            return try await HTTPLoadTest(host: host, port: port, connections: connections, duration: seconds, mix: mix, tokens: tokens,
                                          repository: "\(account)/loadtest", progress: progress).run()
        } catch {
            throw CLIError("cannot load \(url): \(error)")
        }
    }
}
