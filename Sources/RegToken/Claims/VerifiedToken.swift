/// The claims of a token that verified, held inline (no heap allocation).
public struct VerifiedToken: Sendable, Hashable {
    /// The token identifier (`jti`).
    public let id: UUIDBytes
    /// The account (`sub`).
    public let account: ShortString
    /// The region.
    public let region: ShortString
    /// Pull, or push and pull.
    public let scope: Scope
    /// Issued-at, seconds since 1970 (`iat`).
    public let issuedAt: Int64
    /// Expiry, seconds since 1970 (`exp`), or `nil` for a non-expiring token.
    public let expiresAt: Int64?
    /// The key id (`kid`) that signed the token.
    public let keyID: ShortString
    /// The algorithm of that key.
    public let algorithm: Algorithm
    /// True when the token is limited to a list of namespaces.
    public let isNamespaceRestricted: Bool

    /// All zero: what the verifier starts from before it writes a verified token.
    @inline(__always)
    static var placeholder: VerifiedToken {
        VerifiedToken(id: UUIDBytes(high: 0, low: 0), account: ShortString(), region: ShortString(), scope: .pull, issuedAt: 0,
                      expiresAt: nil, keyID: ShortString(), algorithm: .hs256, isNamespaceRestricted: false)
    }
}
