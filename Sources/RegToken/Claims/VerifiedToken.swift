/// The claims of a token that verified, held inline (no heap allocation).
///
/// Read-only to users: the verifier writes the fields. ``TokenVerifier/verify(bytes:at:for:into:)``
/// writes them field by field into the caller's own value, so that the some 240 bytes are not
/// copied on the way out (returning through the layers in between cost a `memcpy` per copy:
/// BENCHMARKS.md, 267 → 244 ns); the value-returning `verify` methods are inlinable wrappers of it.
public struct VerifiedToken: Sendable, Hashable {
    /// The token identifier (`jti`).
    public internal(set) var id: UUIDBytes
    /// The account (`sub`).
    public internal(set) var account: ShortString
    /// The region.
    public internal(set) var region: ShortString
    /// What the token allows: pull; push and pull; or push, pull and delete.
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
    /// True when the token carries repository rules.
    public internal(set) var isRepositoryRestricted: Bool
    /// True when the token is limited to address ranges.
    public internal(set) var isAddressRestricted: Bool

    /// An empty value (all zero, empty strings), for ``TokenVerifier/verify(bytes:at:for:into:)`` to write into.
    public init() {
        id = UUIDBytes(high: 0, low: 0)
        account = ShortString()
        region = ShortString()
        scope = .pull
        issuedAt = 0
        expiresAt = nil
        keyID = ShortString()
        algorithm = .hs256
        isNamespaceRestricted = false
        isRepositoryRestricted = false
        isAddressRestricted = false
    }
}
