/// How strict a ``TokenVerifier`` is about time and size.
public struct VerifierConfiguration: Sendable, Hashable {
    /// Clock skew tolerated on `exp` (a token is accepted until `exp + leeway`) and on `iat`/`nbf`
    /// in the future. Default 60 s; at most ``maximumLeeway``.
    public var leeway: Int64
    /// Tokens longer than this many bytes are refused before any work. Default 8 KiB.
    public var maximumTokenBytes: Int

    /// The largest leeway accepted: revocation list entries are kept for
    /// ``RevocationList/retentionAfterExpiry`` after their token expires, which must cover it.
    public static let maximumLeeway: Int64 = 600

    public init(leeway: Int64 = 60, maximumTokenBytes: Int = 8192) {
        self.leeway = min(max(leeway, 0), Self.maximumLeeway)
        self.maximumTokenBytes = min(max(maximumTokenBytes, 64), 65536)
    }
}
