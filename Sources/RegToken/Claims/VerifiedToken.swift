/// The claims of a token that verified, held inline (no heap allocation).
///
/// The properties are settable inside the module only so that the verifier can fill in the
/// caller's value field by field (see ``TokenVerifier``): building a whole second value and
/// assigning it cost two more copies of these some 240 bytes per verification.
public struct VerifiedToken: Sendable, Hashable {
    /// The token identifier (`jti`).
    public internal(set) var id: UUIDBytes
    /// The account (`sub`).
    public internal(set) var account: ShortString
    /// The region.
    public internal(set) var region: ShortString
    /// Pull, or push and pull.
    public internal(set) var scope: Scope
    /// Issued-at, seconds since 1970 (`iat`).
    public internal(set) var issuedAt: Int64
    /// Expiry, seconds since 1970 (`exp`), or `nil` for a non-expiring token.
    public internal(set) var expiresAt: Int64?
    /// The key id (`kid`) that signed the token.
    public internal(set) var keyID: ShortString
    /// The algorithm of that key.
    public internal(set) var algorithm: Algorithm
    /// True when the token is limited to a list of namespaces.
    public internal(set) var isNamespaceRestricted: Bool

    /// All zero: what the verifier starts from before it writes a verified token.
    @inline(__always)
    static var placeholder: VerifiedToken {
        VerifiedToken(id: UUIDBytes(high: 0, low: 0), account: ShortString(), region: ShortString(), scope: .pull, issuedAt: 0,
                      expiresAt: nil, keyID: ShortString(), algorithm: .hs256, isNamespaceRestricted: false)
    }
}
