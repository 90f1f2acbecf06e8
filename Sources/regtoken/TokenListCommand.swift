import ArgumentParser
import RegToken
import RegTokenLedger

struct TokenListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token-list",
        abstract: "List the account's tokens in the region (never their values).")

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        var tokens: [TokenRecord] = []
        let remote = try await Remote.session(global) { remote in
            let region = try global.resolvedRegion(try global.peekConfig())
            try await global.checkRemoteAccount(remote)
            tokens = try await remote.list(region: region)
        }
        if !remote {
            let (home, account, region) = try global.openHome(needing: .accountAndRegion)
            // Expired tokens are not listed (the ledger keeps them until no verifier's leeway could
            // accept them, so that token-rm can still revoke one).
            let now = Durations.now()
            tokens = try cli { try home.ledger.tokens(account: account, region: region) }.filter { !$0.isExpired(at: now) }
        }
        if global.json {
            return try Output.json(tokens.map { TokenJSON($0, value: nil, registry: nil) })
        }
        // Columns for repository rules and address ranges only when a token has them.
        let rules = tokens.contains { $0.repositories != nil }, ranges = tokens.contains { $0.allowFrom != nil }
        var header = ["TOKEN ID", "SCOPE", "NAMESPACES"]
        if rules { header.append("REPOSITORIES") }
        if ranges { header.append("ALLOW FROM") }
        Output.table(header + ["CREATED", "EXPIRY", "DESCRIPTION"], tokens.map { t in
            var row = [t.id.description, t.scope.rawValue, t.namespaces?.joined(separator: ",") ?? "*"]
            if rules { row.append(t.repositories?.map(\.description).joined(separator: " ") ?? "*") }
            if ranges { row.append(t.allowFrom?.map(\.description).joined(separator: ",") ?? "*") }
            return row + [Durations.utc(t.createdAt), Output.time(t.expiresAt), t.description]
        })
    }
}
