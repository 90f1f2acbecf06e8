import ArgumentParser
import RegToken
import RegTokenLedger

struct TokenRmCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token-rm",
        abstract: "Remove tokens; those not yet expired are revoked (the signed list is rewritten before this returns).")

    @OptionGroup var global: GlobalOptions

    @Argument(help: "Token identifiers (through a service, at most 1000 at a time). All are removed, or (if one is unknown) none.")
    var ids: [String]

    func validate() throws {
        guard !ids.isEmpty else { throw ValidationError("give at least one token identifier") }
    }

    func run() async throws {
        // An id given twice is removed once.
        var seen = Set<UUIDBytes>()
        let tokenIDs = try ids.map(parseTokenID).filter { seen.insert($0).inserted }
        if try await Remote.session(global, { remote in
            let region = try global.resolvedRegion(try global.peekConfig())
            try await global.checkRemoteAccount(remote)
            // All or none, as in local mode: one request, one transaction on the service.
            let r = try await remote.remove(tokenIDs, region: region)
            if global.json {
                return try Output.json(Removed(removed: r.removed, revoked: r.revoked, revocationListVersion: UInt64(max(0, r.revocationListVersion))))
            }
            for id in r.removed { Output.line("Removed \(id)\(r.revoked.contains(id) ? " (revoked)" : "")") }
        }) { return }
        let (home, account, region) = try global.openHome(needing: .accountAndRegion)
        let now = Durations.now()
        let removed = try cli { try home.removeTokens(tokenIDs, account: account, region: region, now: now) }
        let version = try cli { try home.ledger.revocationList().version }
        if global.json {
            return try Output.json(Removed(removed: removed.map(\.id.description),
                                           revoked: removed.filter { $0.expiresAt.map { $0 > now } ?? true }.map(\.id.description),
                                           revocationListVersion: version))
        }
        for r in removed {
            let revoked = r.expiresAt.map { $0 > now } ?? true
            Output.line("Removed \(r.id)\(revoked ? " (revoked)" : "")")
        }
    }

    /// What `--output json` prints, in both modes.
    private struct Removed: Encodable {
        var removed: [String]
        var revoked: [String]
        var revocationListVersion: UInt64
    }
}
