/// Why a key or key ring could not be created, read, written or used.
///
/// Equality is on ``code`` only. A reason names files and key ids but never key bytes.
public struct KeyError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        let name: String
        /// The key material is not what the algorithm needs (too short, wrong curve, not a key).
        public static let invalidKey = Code(name: "invalid_key")
        /// A PEM or JWK document could not be parsed.
        public static let unreadable = Code(name: "unreadable")
        /// A private key file can be read by group or others.
        public static let insecurePermissions = Code(name: "insecure_permissions")
        /// A key id that is empty, too long or has characters outside `[A-Za-z0-9._-]`.
        public static let invalidKeyID = Code(name: "invalid_key_id")
        /// Two keys share an id, or a key id is not in the ring.
        public static let keyRing = Code(name: "key_ring")
        /// The key cannot sign (a public key) or no key is active for signing.
        public static let cannotSign = Code(name: "cannot_sign")
        /// A file system operation failed.
        public static let io = Code(name: "io")
        /// OpenSSL reported an internal failure.
        public static let crypto = Code(name: "crypto")
        public var description: String { name }
    }

    public let code: Code
    public let reason: String

    public init(_ code: Code, _ reason: String) {
        self.code = code
        self.reason = reason
    }

    public var description: String { reason }
    public static func == (lhs: KeyError, rhs: KeyError) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
}
