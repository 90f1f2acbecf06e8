/// Why a revocation list was refused. The list in force stays unchanged whenever this is thrown.
///
/// Equality is on ``code`` only.
public struct RevocationError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct ErrorCode: Sendable, Hashable, CustomStringConvertible {
        let name: String
        /// Not a signed revocation list: bad JWS, bad JSON, a bad entry.
        public static let malformed = ErrorCode(name: "malformed")
        /// The signature does not verify with any key in the ring, or names an unknown key.
        public static let badSignature = ErrorCode(name: "bad_signature")
        /// The list is older than the one in force (or the same version with other content).
        public static let staleVersion = ErrorCode(name: "stale_version")
        /// The file could not be read or written.
        public static let io = ErrorCode(name: "io")
        public var description: String { name }
    }

    public let code: ErrorCode
    public let reason: String

    public init(_ code: ErrorCode, _ reason: String) {
        self.code = code
        self.reason = reason
    }

    public var description: String { reason }
    public static func == (lhs: RevocationError, rhs: RevocationError) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
}
