import RegToken
import RegTokenAccess
import RegTokenLedger

/// What the token server decides with, kept between requests: a verifier built from the home's
/// key ring and the ledger's revocation list, and the ledger's namespace map, rebuilt when the
/// ring or either version changes. Each request reads the two versions (one query), so a token
/// removed or revoked is refused at its very next request, as before, without reloading and
/// verifying the signed list, rebuilding the keys and reading the map every time.
///
/// Not thread-safe: used under the ``Issuer``'s home lock.
final class RegistryGrantState {
    private struct Key: Equatable {
        var keys: [String]
        var revocations: UInt64
        var namespaces: UInt64
    }
    private var key: Key?
    private var verifier: TokenVerifier?
    private var namespaces = NamespaceMap(owners: [:])

    /// What `token` may have of `scopes` at the token server's registry: the proxy's decision
    /// action by action (``AccessPolicy/grant(token:scopes:client:verifier:now:)``) with the
    /// home's keys, revocation list and account namespaces, for the region `region`.
    func grant(home: Home, token: [UInt8], scopes: [RegistryScope], client: IPAddress?, region: String, now: Int64) throws(LedgerError) -> ScopeGrant {
        let ring = try home.keyRing()
        let versions = try home.ledger.versions()
        let current = Key(keys: ring.keys.map { "\($0.id)/\($0.canSign)" }, revocations: versions.revocations, namespaces: versions.namespaces)
        if key != current || verifier == nil {
            // The verified-signature cache spares the ES256 arithmetic for a token seen before
            // (a client asks once per repository and action set).
            let fresh = TokenVerifier(keys: ring, configuration: VerifierConfiguration(signatureCacheCapacity: 4096))
            do { _ = try fresh.install(try home.ledger.revocationList()) } catch {
                throw LedgerError(.storage, "cannot install the revocation list: \(error)")
            }
            namespaces = NamespaceMap(owners: try home.ledger.namespaceMap().owners)
            verifier = fresh
            key = current
        }
        return AccessPolicy(region: region, namespaces: namespaces).grant(token: token, scopes: scopes, client: client, verifier: verifier!, now: now)
    }
}

extension Home {
    /// The regtoken token behind a refresh token: looked up by the id the refresh token names (it
    /// must still exist in the server's region and not have expired) and signed again with its own
    /// key, for ``RegistryGrantState/grant(home:token:scopes:client:region:now:)`` to grant as it grants the token itself,
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

    /// A refresh token for the regtoken token `tokenID` (just granted), signed by the active key.
    func signRefreshToken(tokenID: UUIDBytes, account: String, server: TokenServer, now: Int64) throws(LedgerError) -> String {
        guard let key = try keyRing().activeKey else { throw LedgerError(.storage, "no active signing key (regtoken keys activate)") }
        do {
            return try RegistryRefreshToken(tokenID: tokenID, account: account, service: server.service, issuedAt: now).signed(with: key)
        } catch {
            throw LedgerError(.storage, "cannot sign a refresh token: \(error.reason)")
        }
    }

    /// The registry JWT for `account` with `access`, signed by the active key (ES256: a registry
    /// takes ES256 keys); and its expiry.
    func signRegistryToken(account: String, access: [RegistryScope], server: TokenServer, now: Int64) throws(LedgerError) -> (token: String, expiresAt: Int64) {
        guard let key = try keyRing().activeKey else { throw LedgerError(.storage, "no active signing key (regtoken keys activate)") }
        do {
            let signer = try RegistryTokenIssuer(key: key, issuer: server.issuer, service: server.service, lifetime: server.lifetime)
            return try signer.issue(subject: account, access: access, now: now)
        } catch {
            throw LedgerError(.storage, "cannot sign a registry token: \(error.reason)")
        }
    }
}

/// Why a refresh token gets no registry token.
struct RefreshRefused: Error {
    var message: String
}
