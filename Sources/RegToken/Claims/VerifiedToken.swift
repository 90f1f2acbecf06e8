/// The claims of a token that verified, held inline (no heap allocation).
///
/// Read-only to users. The stored fields are written by the verifier field by field into the
/// caller's value (see ``TokenVerifier``), and `TokenVerifier.verify(bytes:at:for:)` is inlinable,
/// so the value is built where the caller keeps it: no copy of these some 240 bytes on the way
/// out (building a second value and assigning it, or returning through the layers in between,
/// cost a `memcpy` per copy).
public struct VerifiedToken: Sendable, Hashable {
    @usableFromInline var _id: UUIDBytes
    @usableFromInline var _account: ShortString
    @usableFromInline var _region: ShortString
    @usableFromInline var _scope: Scope
    @usableFromInline var _issuedAt: Int64
    @usableFromInline var _expiresAt: Int64?
    @usableFromInline var _keyID: ShortString
    @usableFromInline var _algorithm: Algorithm
    @usableFromInline var _isNamespaceRestricted: Bool

    /// The token identifier (`jti`).
    public var id: UUIDBytes { _id }
    /// The account (`sub`).
    public var account: ShortString { _account }
    /// The region.
    public var region: ShortString { _region }
    /// Pull, or push and pull.
    public var scope: Scope { _scope }
    /// Issued-at, seconds since 1970 (`iat`).
    public var issuedAt: Int64 { _issuedAt }
    /// Expiry, seconds since 1970 (`exp`), or `nil` for a non-expiring token.
    public var expiresAt: Int64? { _expiresAt }
    /// The key id (`kid`) that signed the token.
    public var keyID: ShortString { _keyID }
    /// The algorithm of that key.
    public var algorithm: Algorithm { _algorithm }
    /// True when the token is limited to a list of namespaces.
    public var isNamespaceRestricted: Bool { _isNamespaceRestricted }

    /// All zero: what the verifier starts from before it writes a verified token.
    @inlinable @inline(__always)
    static var placeholder: VerifiedToken { VerifiedToken(placeholder: ()) }

    @inlinable @inline(__always)
    init(placeholder: ()) {
        _id = UUIDBytes(high: 0, low: 0)
        _account = ShortString()
        _region = ShortString()
        _scope = .pull
        _issuedAt = 0
        _expiresAt = nil
        _keyID = ShortString()
        _algorithm = .hs256
        _isNamespaceRestricted = false
    }
}
