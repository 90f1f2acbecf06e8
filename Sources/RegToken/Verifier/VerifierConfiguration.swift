/// How strict a ``TokenVerifier`` is about time and size. Read-only: the initializer clamps each
/// value to its range, and nothing can set it past that afterwards.
public struct VerifierConfiguration: Sendable, Hashable {
    /// Clock skew tolerated on `exp` (a token is accepted until `exp + leeway`, but never for more
    /// than a tenth of its lifetime `exp − iat` past `exp`, so short tokens stay short) and on
    /// `iat`/`nbf` in the future. Default 60 s; at most ``maximumLeeway``.
    public let leeway: Int64
    /// Tokens longer than this many bytes are refused before any work. Default 8 KiB.
    public let maximumTokenBytes: Int

    /// Slots of the ES256 verified-signature cache; 0 turns it off. A hit skips the curve
    /// arithmetic for a token whose exact bytes verified before with the same key; expiry,
    /// revocation, region, scope and namespace are checked on every verification all the same.
    /// Each slot holds one token of up to ``cacheableTokenBytes`` (about 1 KiB of memory a slot).
    public let signatureCacheCapacity: Int
    /// Tokens longer than this are never cached (always verified).
    public let cacheableTokenBytes: Int

    /// The largest leeway accepted: revocation list entries are kept for
    /// ``RevocationList/retentionAfterExpiry`` after their token expires, which must cover it.
    public static let maximumLeeway: Int64 = 600

    /// Rules with each value clamped to its range.
    /// - Parameters:
    ///   - leeway: clock skew tolerated, in seconds, clamped to 0 through ``maximumLeeway``.
    ///   - maximumTokenBytes: the largest token accepted, in bytes, clamped to 64 through 65,536.
    ///   - signatureCacheCapacity: slots of the ES256 verified-signature cache, clamped to 0
    ///     through 4,194,304 (2^22); 0 turns the cache off.
    ///   - cacheableTokenBytes: the longest token cached, in bytes, clamped to 64 through
    ///     `maximumTokenBytes`.
    public init(leeway: Int64 = 60, maximumTokenBytes: Int = 8192, signatureCacheCapacity: Int = 0, cacheableTokenBytes: Int = 1024) {
        self.leeway = min(max(leeway, 0), Self.maximumLeeway)
        self.maximumTokenBytes = min(max(maximumTokenBytes, 64), 65536)
        self.signatureCacheCapacity = min(max(signatureCacheCapacity, 0), 1 << 22)
        self.cacheableTokenBytes = min(max(cacheableTokenBytes, 64), self.maximumTokenBytes)
    }
}
