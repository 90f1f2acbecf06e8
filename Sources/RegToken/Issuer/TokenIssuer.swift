/// Issues tokens: the claims as fixed-order JSON, signed with the key ring's active key.
public struct TokenIssuer: Sendable {
    /// The signing key (the ring's active key).
    public let key: SigningKey

    /// An issuer that signs with the ring's active key.
    /// - Throws: ``IssueError`` when the ring has no active key that can sign.
    public init(keyRing: KeyRing) throws(IssueError) {
        guard let key = keyRing.activeKey else {
            throw IssueError(.noSigningKey, "the key ring has no active signing key; run `regtoken keys activate <kid>` (see `regtoken keys list`) or `regtoken keys generate --activate`")
        }
        try self.init(key: key)
    }

    /// An issuer that signs with `key`.
    /// - Throws: ``IssueError`` with code ``IssueError/ErrorCode/noSigningKey`` when `key` is a public key.
    public init(key: SigningKey) throws(IssueError) {
        guard key.canSign else { throw IssueError(.noSigningKey, "key '\(key.id)' is a public key: it cannot sign") }
        self.key = key
    }

    /// The token for `claims`, as a JWS compact serialization.
    /// - Throws: ``IssueError`` with code ``IssueError/ErrorCode/invalidClaims`` when
    ///   ``TokenClaims/validate()`` refuses the claims, ``IssueError/ErrorCode/crypto`` when signing fails.
    public func issue(_ claims: TokenClaims) throws(IssueError) -> String {
        try claims.validate()
        do {
            return try JWS.sign(payload: Array(claims.json.utf8), key: key, type: "JWT")
        } catch {
            throw IssueError(.crypto, "could not sign the token: \(error.reason)")
        }
    }
}
