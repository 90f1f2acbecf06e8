import RegToken
import RegTokenAccess

/// The accounts of a home that `regtoken serve` serves (operator commands: `regtoken accounts`).
extension Home {
    /// Adds an account; returns its API key (shown once: the ledger keeps only its hash).
    public func addAccount(_ name: String, namespaces: [String], now: Int64) throws(LedgerError) -> APIKey {
        let key = try APIKey.generate()
        try ledger.addAccount(name: name, namespaces: namespaces, key: key, now: now)
        return key
    }

    /// Removes an account, its API keys and namespaces, and its tokens (revoked when a verifier
    /// could still accept them); the revocation list is signed again before this returns.
    public func removeAccount(_ name: String, now: Int64) throws(LedgerError) -> [TokenRecord] {
        try withLock { () throws(LedgerError) -> [TokenRecord] in
            guard try keyRing().activeKey != nil else {
                throw LedgerError(.storage, "no active signing key to sign the revocation list; run regtoken keys activate <kid>")
            }
            let removed = try ledger.removeAccount(name: name, now: now)
            try syncRevocations(now: now)
            return removed
        }
    }

    /// A new API key for `name`; its old keys keep working for `overlap` seconds.
    public func rotateKey(_ name: String, overlap: Int64, now: Int64) throws(LedgerError) -> APIKey {
        let key = try APIKey.generate()
        try ledger.rotateKey(name: name, newKey: key, overlap: overlap, now: now)
        return key
    }

    /// The namespace map as the service publishes it, signed with the active key. Without any
    /// account, the map is empty.
    public func signedNamespaces() throws(LedgerError) -> (document: [UInt8], version: UInt64) {
        let (owners, version, issuedAt) = try ledger.namespaceMap()
        guard let key = try keyRing().activeKey else {
            throw LedgerError(.storage, "no active signing key to sign the namespace map; run regtoken keys activate <kid>")
        }
        do {
            return (try SignedNamespaceMap(owners: owners, version: version, issuedAt: issuedAt).signed(with: key), version)
        } catch {
            throw LedgerError(.storage, "cannot sign the namespace map: \(error.reason)")
        }
    }
}
