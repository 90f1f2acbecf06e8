import RegToken
import RegTokenAccess
import RegTokenLedger

extension Home {
    /// What `token` may have of `scopes` at the token server's registry: the proxy's decision
    /// action by action (``AccessPolicy/grant(token:scopes:verifier:now:)``) with this home's keys,
    /// revocation list and account namespaces, for the region `region`.
    func registryGrant(for token: [UInt8], scopes: [RegistryScope], region: String, now: Int64) throws(LedgerError) -> ScopeGrant {
        // The grant verifies the token once for itself and once per asked action: with a few
        // cache slots every look after the first skips the ES256 curve arithmetic.
        let verifier = TokenVerifier(keys: try keyRing(), configuration: VerifierConfiguration(signatureCacheCapacity: 16))
        do { _ = try verifier.install(revocationFile()) } catch {
            throw LedgerError(.storage, "cannot install the revocation list: \(error)")
        }
        let owners = try ledger.namespaceMap().owners
        return AccessPolicy(region: region, namespaces: NamespaceMap(owners: owners)).grant(token: token, scopes: scopes, verifier: verifier, now: now)
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
