/// Why a key or key ring could not be created, read, written or used.
///
/// Equality is on ``code`` only. A reason names files and key ids but never key bytes.
public struct KeyError: Error, Sendable, Hashable, CustomStringConvertible {
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
        public var description: String { name }
    }

    public let code: ErrorCode
    public let reason: String

    public init(_ code: ErrorCode, _ reason: String) {
        self.code = code
        self.reason = reason
    }

    public var description: String { reason }
    public static func == (lhs: KeyError, rhs: KeyError) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
}
