import ArgumentParser
import RegToken
import RegTokenLedger

struct TokenGetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token-get",
        abstract: "Show a token's identifier and value.")

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The token identifier (from token-add or token-list).")
    var id: String

    @Flag(name: .short, help: "Print the token value alone.")
    var quiet = false

    func run() async throws {
        let tokenID = try parseTokenID(id)
        if try await Remote.session(global, { remote in
            let config = try global.peekConfig()
            let region = try global.resolvedRegion(config)
            try await global.checkRemoteAccount(remote)
            let issued = try await remote.get(tokenID, region: region)
            try issued.printCredentials(json: global.json, registry: config.registries[region], quiet: quiet)
        }) { return }
        let (home, account, region) = try global.openHome(needing: .accountAndRegion)
        guard let record = try cli({ try home.ledger.token(id: tokenID, account: account, region: region) }) else {
            throw CLIError("no token \(tokenID) for account \(account) in region \(region) (it may have expired or been removed; see regtoken token-list)", exit: .notFound)
        }
        if record.isExpired(at: Durations.now()) {
            throw CLIError("token \(tokenID) expired at \(Durations.utc(record.expiresAt ?? 0)); it is no longer shown (regtoken token-rm still revokes it while a verifier's clock leeway could accept it)", exit: .notFound)
        }
        let issued = try cli { try home.tokenValue(record) }
        try issued.printCredentials(json: global.json, registry: home.config.registries[region], quiet: quiet)
    }
}

/// A token id as typed or pasted: surrounding whitespace is ignored.
func parseTokenID(_ text: String) throws -> UUIDBytes {
    guard let id = UUIDBytes(text.trimmingWhitespace) else {
        throw CLIError("'\(text.trimmingWhitespace.prefix(60))' is not a token identifier (a UUID such as 0b4e6a52-6f8e-4c1d-9a51-3f6e2c1d0a99)", exit: .invalidInput)
    }
    return id
}
