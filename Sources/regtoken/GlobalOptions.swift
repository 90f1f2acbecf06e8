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

    /// Opens the home for a command that works on an account's tokens in a region. Both are
    /// resolved first (flags, environment, saved config), so that a command that cannot run
    /// leaves no new home behind.
    func openHome(needing what: Needs) throws -> (home: Home, account: String, region: String) {
        let config = try peekConfig()
        let account = what == .accountAndRegion ? try resolvedAccount(config) : ""
        let region = try resolvedRegion(config)
        return (try openHome(), account, region)
    }

    enum Needs { case region, accountAndRegion }

    func resolvedAccount(_ config: HomeConfig) throws -> String {
        if let account = try explicit(account, "--account") ?? nonEmpty(environment["REGTOKEN_ACCOUNT"]) ?? nonEmpty(config.account) { return account }
        throw CLIError("no account set: pass --account NAME, set REGTOKEN_ACCOUNT, or run: regtoken config set account NAME", exit: .invalidInput)
    }

    func resolvedRegion(_ home: Home) throws -> String {
        try resolvedRegion(home.config)
    }

    func resolvedRegion(_ config: HomeConfig) throws -> String {
        if let region = try explicit(region, "--region") ?? nonEmpty(environment["REGTOKEN_REGION"]) ?? nonEmpty(config.region) { return region }
        throw CLIError("no region set: pass --region NAME, set REGTOKEN_REGION, or run: regtoken config set region NAME", exit: .invalidInput)
    }

    /// A value given on the command line: nil when not given; an error when given empty.
    private func explicit(_ value: String?, _ flag: String) throws -> String? {
        guard let value else { return nil }
        guard let v = nonEmpty(value) else { throw CLIError("\(flag) is empty: give a name, or leave the flag out", exit: .invalidInput) }
        return v
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
