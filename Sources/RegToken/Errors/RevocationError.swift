/// Why a revocation list was refused. The list in force stays unchanged whenever this is thrown.
///
/// Equality is on ``code`` only.
public struct RevocationError: CodedError {
    /// The class of failure, stable across releases (new codes may be added).
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
        /// The stable snake_case name, such as `stale_version`.
        public var description: String { name }
    }

    /// The class of failure; equality and hashing use it alone.
    public let code: ErrorCode
    /// One line: why the list was refused, or could not be read, signed or written.
    public let reason: String

    /// An error of the class `code`, with a one-line reason.
    /// - Parameters:
    ///   - code: the class of failure.
    ///   - reason: what failed and why, in one line.
    public init(_ code: ErrorCode, _ reason: String) {
        self.code = code
        self.reason = reason
    }

}
