import ArgumentParser
import Foundation
import RegToken
import RegTokenLedger

struct TokenAddCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token-add",
        abstract: "Create a token for the account in the region (read-only unless --readwrite; 24 hours unless told).")

    @OptionGroup var global: GlobalOptions

    @Option(help: "A note shown by token-list.")
    var description: String = ""

    @Flag(help: "The token never expires (until removed, or its key retired).")
    var nonExpiring = false

    @Flag(help: "Push and pull (default: pull only).")
    var readwrite = false

    @Flag(help: "Also allow deleting manifests and blobs (a right of its own; needs --readwrite).")
    var delete = false

    @Option(parsing: .unconditional, help: "Lifetime such as 90s, 15m, 1h, 7d (default 24h).")
    var expiresIn: String?

    @Option(name: .customLong("namespace"), help: "Limit the token to this namespace (repeatable; default: all of the account's).")
    var namespaces: [String] = []

    @Option(name: .customLong("repository"), help: ArgumentHelp(
        "Limit the token to repositories matching PATTERN[:ACTIONS] (repeatable), such as 'acme/ci-*:pull,push' or 'acme/base/**:pull'.",
        discussion: "* matches within one path segment, ** one or more whole segments; ACTIONS are pull, push, delete (default: the token's scope), never beyond it; the first segment is one of the account's namespaces."))
    var repositories: [String] = []

    @Option(name: .customLong("allow-from"), help: "Let the token be used only from this address range (CIDR, IPv4 or IPv6; repeatable).")
    var allowFrom: [String] = []

    @Flag(name: .short, help: "Print the token value alone.")
    var quiet = false

    func run() async throws {
        if delete && !readwrite {
            throw CLIError("--delete needs --readwrite: a token that deletes can also push", exit: .invalidInput)
        }
        if nonExpiring && expiresIn != nil {
            throw CLIError("--non-expiring and --expires-in contradict each other: give one", exit: .invalidInput)
        }
        if description.unicodeScalars.count > 1024 || description.contains(where: { $0.isNewline }) {
            throw CLIError("--description must be one line of at most 1024 characters", exit: .invalidInput)
        }
        let lifetime: Int64? = try cli {
            if nonExpiring { return nil }
            return try expiresIn.map { try Durations.parse($0) } ?? TokenClaims.defaultLifetime
        }
        let scope: Scope = delete ? .pushPullDelete : (readwrite ? .pushPull : .pull)
        // Checked here, before anything is asked of a service: each rule and range names what is wrong.
        let rules = RepositoryRule.merged(try repositories.map { text in try cli { try RepositoryRule.parse(text, defaultActions: .init(scope)) } })
        let ranges = try addressRanges(allowFrom, flag: "--allow-from")
        if let over = rules.first(where: { !RepositoryRule.Actions(scope).isSuperset(of: $0.actions) }) {
            throw CLIError("--repository '\(over.description)' asks for more than the token's scope (\(scope.rawValue)): add --readwrite for push, --delete for delete", exit: .invalidInput)
        }
        if try await Remote.session(global, { remote in
            let config = try global.peekConfig()
            let region = try global.resolvedRegion(config)
            try await global.checkRemoteAccount(remote)
            let issued = try await remote.create(.init(region: region, description: description, readwrite: readwrite, delete: delete,
                                                       nonExpiring: nonExpiring, expiresIn: nonExpiring ? nil : lifetime,
                                                       namespaces: namespaces.isEmpty ? nil : namespaces,
                                                       repositories: rules.isEmpty ? nil : rules.map(\.description),
                                                       allowFrom: ranges.isEmpty ? nil : ranges.map(\.description)))
            try issued.printCredentials(json: global.json, registry: config.registries[region], quiet: quiet)
            noteLeeway(lifetime)
        }) { return }
        let (home, account, region) = try global.openHome(needing: .accountAndRegion)
        try cli { try home.checkTokenCanWork(account: account, namespaces: namespaces.isEmpty ? nil : namespaces,
                                             repositories: rules.isEmpty ? nil : rules, now: Durations.now()) }
        let record = try cli {
            try home.issueToken(account: account, region: region, scope: scope, description: description,
                                lifetime: lifetime, namespaces: namespaces.isEmpty ? nil : namespaces,
                                repositories: rules.isEmpty ? nil : rules, allowFrom: ranges.isEmpty ? nil : ranges, now: Durations.now())
        }
        try record.printCredentials(json: global.json, registry: home.config.registries[region], quiet: quiet)
        noteLeeway(lifetime)
    }

    /// A short-lived token is honest about the clock leeway: verifiers accept a token past its
    /// expiry for their leeway (60 s by default) but never for more than a tenth of its lifetime.
    /// The note goes to standard error, so that scripts reading the output are not disturbed.
    func noteLeeway(_ lifetime: Int64?) {
        guard let lifetime, lifetime < 10 * VerifierConfiguration().leeway, !quiet else { return }
        let extra = max(0, lifetime / 10)
        let text = "note: verifiers accept this token for at most \(extra) s past its expiry "
            + "(clock leeway: a tenth of its \(lifetime) s lifetime, never more than their --leeway)\n"
        FileHandle.standardError.write(Data(text.utf8))
    }
}
