import RegToken
import RegTokenAccess
import RegTokenLedger

/// What the token server decides and signs with, kept between requests: a verifier built from
/// the home's key ring and the ledger's revocation list, the ledger's namespace map, and the
/// registry-token signer of the active key, rebuilt when the ring or either version changes. Each
/// request reads the two versions (one query), so a token removed or revoked is refused at its
/// very next request, without reloading and verifying the signed list, rebuilding the keys and
/// reading the map every time.
///
/// ``snapshot(home:server:)`` runs under the ``Issuer``'s home lock (the home is not
/// thread-safe); what it returns is immutable and thread-safe, so the grant's verifications and
/// the signatures run outside the lock, in parallel.
final class RegistryGrantState {
    private struct Key: Equatable {
        var keys: [String]
        var active: String?
        var revocations: UInt64
        var namespaces: UInt64
    }

    /// What one request decides and signs with.
    struct Snapshot: Sendable {
        let verifier: TokenVerifier
        let namespaces: NamespaceMap
        /// The registry-token signer (ES256 active key), nil when the active key cannot sign one.
        let signer: RegistryTokenIssuer?
        /// The active key, for refresh tokens.
        let activeKey: SigningKey?

        /// What `token` may have of `scopes` at the token server's registry: the proxy's decision
        /// action by action (``AccessPolicy/grant(token:scopes:client:verifier:now:)``), for `region`.
        func grant(token: [UInt8], scopes: [RegistryScope], client: IPAddress?, region: String, now: Int64) -> ScopeGrant {
            AccessPolicy(region: region, namespaces: namespaces).grant(token: token, scopes: scopes, client: client, verifier: verifier, now: now)
        }
    }

    private var key: Key?
    private var current: Snapshot?

    /// The snapshot in force for `server`, rebuilt first when the home changed.
    func snapshot(home: Home, server: TokenServer) throws(LedgerError) -> Snapshot {
        let ring = try home.keyRing()
        let versions = try home.ledger.versions()
        let now = Key(keys: ring.keys.map { "\($0.id)/\($0.canSign)" }, active: ring.activeKeyID,
                      revocations: versions.revocations, namespaces: versions.namespaces)
        if let current, key == now { return current }
        // The verified-signature cache spares the ES256 arithmetic for a token seen before (a
        // client asks once per repository and action set).
        let verifier = TokenVerifier(keys: ring, configuration: VerifierConfiguration(signatureCacheCapacity: 4096))
        do { _ = try verifier.install(try home.ledger.revocationList()) } catch {
            throw LedgerError(.storage, "cannot install the revocation list: \(error)")
        }
        let signer = ring.activeKey.flatMap { try? RegistryTokenIssuer(key: $0, issuer: server.issuer, service: server.service, lifetime: server.lifetime) }
        let fresh = Snapshot(verifier: verifier, namespaces: NamespaceMap(owners: try home.ledger.namespaceMap().owners),
                             signer: signer, activeKey: ring.activeKey)
        key = now
        current = fresh
        return fresh
    }
}

extension Home {
    /// The regtoken token behind a refresh token: looked up by the id the refresh token names (it
    /// must still exist in the server's region and not have expired) and signed again with its own
    /// key, for ``RegistryGrantState/Snapshot/grant(token:scopes:client:region:now:)`` to grant as it grants the token itself,
    /// so a revoked token is refused there as it is everywhere.
    /// - Returns: the token's value, or why the refresh token is refused.
    func tokenBehind(refreshToken refresh: [UInt8], server: TokenServer, now: Int64) throws(LedgerError) -> Result<[UInt8], RefreshRefused> {
        let presented: RegistryRefreshToken
        switch RegistryRefreshToken.verify(refresh, keys: try keyRing(), service: server.service) {
        case .invalid(let why): return .failure(RefreshRefused(message: why))
        case .valid(let r): presented = r
        }
        guard let record = try ledger.token(id: presented.tokenID, account: presented.account, region: server.region),
              !record.isExpired(at: now) else {
            return .failure(RefreshRefused(message: "the token this refresh token was issued for was removed or has expired"))
        }
        do {
            return .success(Array(try tokenValue(record).value.utf8))
        } catch where error.code == .notFound {
            return .failure(RefreshRefused(message: "the token this refresh token was issued for no longer exists (its key was retired)"))
        }
    }

}

extension RegistryGrantState.Snapshot {
    /// The registry JWT for `account` with `access`, signed by the active key (ES256: a registry
    /// takes ES256 keys); and its expiry.
    func signRegistryToken(account: String, access: [RegistryScope], now: Int64) throws(LedgerError) -> (token: String, expiresAt: Int64) {
        guard let signer else { throw LedgerError(.storage, "the active signing key is not an ES256 key that can sign (regtoken keys activate)") }
        do { return try signer.issue(subject: account, access: access, now: now) } catch {
            throw LedgerError(.storage, "cannot sign a registry token: \(error.reason)")
        }
    }

    /// A refresh token for the regtoken token `tokenID` (just granted), signed by the active key.
    func signRefreshToken(tokenID: UUIDBytes, account: String, service: String, now: Int64) throws(LedgerError) -> String {
        guard let key = activeKey else { throw LedgerError(.storage, "no active signing key (regtoken keys activate)") }
        do {
            return try RegistryRefreshToken(tokenID: tokenID, account: account, service: service, issuedAt: now).signed(with: key)
        } catch {
            throw LedgerError(.storage, "cannot sign a refresh token: \(error.reason)")
        }
    }
}

/// Why a refresh token gets no registry token.
struct RefreshRefused: Error {
    var message: String
}
