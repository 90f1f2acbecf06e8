/// Why a key or key ring could not be created, read, written or used.
///
/// Equality is on ``code`` only. A reason names files and key ids but never key bytes.
public struct KeyError: CodedError {
    /// The class of failure, stable across releases (new codes may be added).
    public struct ErrorCode: Sendable, Hashable, CustomStringConvertible {
        let name: String
        /// The key material is not what the algorithm needs (too short, wrong curve, not a key).
        public static let invalidKey = ErrorCode(name: "invalid_key")
        /// A PEM or JWK document could not be parsed.
        public static let unreadable = ErrorCode(name: "unreadable")
        /// A private key file can be read by group or others.
        public static let insecurePermissions = ErrorCode(name: "insecure_permissions")
        /// A key id that is empty, too long or has characters outside `[A-Za-z0-9._-]`.
        public static let invalidKeyID = ErrorCode(name: "invalid_key_id")
        /// Two keys share an id, or a key id is not in the ring.
        public static let keyRing = ErrorCode(name: "key_ring")
        /// The key cannot sign (a public key) or no key is active for signing.
        public static let cannotSign = ErrorCode(name: "cannot_sign")
        /// A file system operation failed.
        public static let io = ErrorCode(name: "io")
        /// OpenSSL reported an internal failure.
        public static let crypto = ErrorCode(name: "crypto")
        /// The stable snake_case name, such as `invalid_key`.
        public var description: String { name }
    }

    /// The class of failure; equality and hashing use it alone.
    public let code: ErrorCode
    /// One line: what failed and why, naming files and key ids but never key bytes.
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
