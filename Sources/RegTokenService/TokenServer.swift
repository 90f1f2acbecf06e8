import RegToken
import RegTokenAccess
import RegTokenLedger

extension Home {
    /// What `token` may have of `scopes` at the token server's registry: the proxy's decision
    /// action by action (``AccessPolicy/grant(token:scopes:client:verifier:now:)``) with this home's keys,
    /// revocation list and account namespaces, for the region `region`.
    func registryGrant(for token: [UInt8], scopes: [RegistryScope], client: IPAddress?, region: String, now: Int64) throws(LedgerError) -> ScopeGrant {
        // The grant verifies the token once for itself and once per asked action: with a few
        // cache slots every look after the first skips the ES256 curve arithmetic.
        let verifier = TokenVerifier(keys: try keyRing(), configuration: VerifierConfiguration(signatureCacheCapacity: 16))
        do { _ = try verifier.install(revocationFile()) } catch {
            throw LedgerError(.storage, "cannot install the revocation list: \(error)")
        }
        let owners = try ledger.namespaceMap().owners
        return AccessPolicy(region: region, namespaces: NamespaceMap(owners: owners)).grant(token: token, scopes: scopes, client: client, verifier: verifier, now: now)
    }

    /// The regtoken token behind a refresh token: looked up by the id the refresh token names (it
    /// must still exist in the server's region and not have expired) and signed again with its own
    /// key, for ``registryGrant(for:scopes:client:region:now:)`` to grant as it grants the token itself,
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
