import ArgumentParser
import Foundation
import RegToken
import RegTokenLedger

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case text
    case json
}

/// Options every command takes.
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: "State directory (default: $REGTOKEN_HOME, else ~/.regtoken).")
    var home: String?

    @Option(name: .long, help: "Account (default: $REGTOKEN_ACCOUNT, else `regtoken config set account`).")
    var account: String?

    @Option(name: .long, help: "Region (default: $REGTOKEN_REGION, else `regtoken config set region`).")
    var region: String?

    @Option(name: .long, help: "Output format: text or json (stable field names, for scripts).")
    var output: OutputFormat = .text

    var environment: [String: String] { ProcessInfo.processInfo.environment }

    var json: Bool { output == .json }

    /// Opens the state directory (creating it on first use).
    func openHome(initialAlgorithm: Algorithm = .es256) throws -> Home {
        try cli { try Home(path: Home.resolvePath(explicit: home, environment: environment), initialAlgorithm: initialAlgorithm, now: Durations.now()) }
    }

    func resolvedAccount(_ home: Home) throws -> String {
        if let account = nonEmpty(account) ?? nonEmpty(environment["REGTOKEN_ACCOUNT"]) ?? nonEmpty(home.config.account) { return account }
        throw CLIError("no account set: pass --account NAME, set REGTOKEN_ACCOUNT, or run: regtoken config set account NAME", exit: .invalidInput)
    }

    func resolvedRegion(_ home: Home) throws -> String {
        try resolvedRegion(home.config)
    }

    func resolvedRegion(_ config: HomeConfig) throws -> String {
        if let region = nonEmpty(region) ?? nonEmpty(environment["REGTOKEN_REGION"]) ?? nonEmpty(config.region) { return region }
        throw CLIError("no region set: pass --region NAME, set REGTOKEN_REGION, or run: regtoken config set region NAME", exit: .invalidInput)
    }

    /// The home's config without opening (or creating) the home.
    func peekConfig() throws -> HomeConfig {
        try cli { try HomeConfig.peek(home: Home.resolvePath(explicit: home, environment: environment)) }
    }

    /// In server mode the account is the API key's: an explicit `--account` that names another
    /// is an error rather than ignored.
    func checkRemoteAccount(_ remote: Remote) async throws {
        guard let wanted = nonEmpty(account) else { return }
        let (name, _) = try await remote.account()
        if name != wanted {
            throw CLIError("logged in to \(remote.url) as account \(name), not \(wanted): the API key decides the account", exit: .invalidInput)
        }
    }

    private func nonEmpty(_ s: String?) -> String? {
        guard let s = s?.trimmingWhitespace, !s.isEmpty else { return nil }
        return s
    }
}
