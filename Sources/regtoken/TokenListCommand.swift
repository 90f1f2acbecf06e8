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
        Output.table(["TOKEN ID", "SCOPE", "NAMESPACES", "CREATED", "EXPIRY", "DESCRIPTION"],
                     tokens.map { [$0.id.description, $0.scope.rawValue, $0.namespaces?.joined(separator: ",") ?? "*",
                                   Durations.utc($0.createdAt), Output.time($0.expiresAt), $0.description] })
    }
}
