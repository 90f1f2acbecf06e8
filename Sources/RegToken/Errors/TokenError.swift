/// Why a token did not verify.
///
/// Equality is on ``code`` only, so tests and callers match the kind of failure while the
/// human ``reason`` can say more. A reason never contains token or key bytes.
///
/// The verifier throws this error with typed throws, so rejecting a token allocates nothing:
/// the detail is a `StaticString`.
public struct TokenError: CodedError {
    /// The class of failure, stable across releases (new codes may be added).
    public struct ErrorCode: Sendable, Hashable, CustomStringConvertible {
        enum Raw: UInt8, Sendable, CaseIterable {
            case malformed = 1
            case unsupportedAlgorithm
            case unknownKey
            case algorithmMismatch
            case badSignature
            case expired
            case notYetValid
            case wrongRegion
            case insufficientScope
            case namespaceNotAllowed
            case revoked
            case repositoryNotAllowed
            case addressNotAllowed
        }

        let raw: Raw

        /// Not a well-formed token: size, segments, base64url, JSON, claim types, or a refused header member.
        public static let malformed = ErrorCode(raw: .malformed)
        /// The header names an algorithm regtoken does not accept (`none`, `HS384`, `RS256`, ...).
        public static let unsupportedAlgorithm = ErrorCode(raw: .unsupportedAlgorithm)
        /// No key with the token's `kid` is in the key ring (it may have been retired).
        public static let unknownKey = ErrorCode(raw: .unknownKey)
        /// The header's `alg` is not the algorithm of the key its `kid` names.
        public static let algorithmMismatch = ErrorCode(raw: .algorithmMismatch)
        /// The signature does not verify.
        public static let badSignature = ErrorCode(raw: .badSignature)
        /// The token expired (past `exp` plus the clock leeway, which is at most a tenth of its lifetime).
        public static let expired = ErrorCode(raw: .expired)
        /// The token was issued in the future (past the clock leeway), or `nbf` is not reached yet.
        public static let notYetValid = ErrorCode(raw: .notYetValid)
        /// The token is for another region.
        public static let wrongRegion = ErrorCode(raw: .wrongRegion)
        /// A pull-only token was asked to push.
        public static let insufficientScope = ErrorCode(raw: .insufficientScope)
        /// The token is limited to other namespaces, or the namespace belongs to another account.
        public static let namespaceNotAllowed = ErrorCode(raw: .namespaceNotAllowed)
        /// The token's id is on the revocation list.
        public static let revoked = ErrorCode(raw: .revoked)
        /// The token has repository rules, and none that matches the repository allows the action.
        public static let repositoryNotAllowed = ErrorCode(raw: .repositoryNotAllowed)
        /// The token is limited to address ranges, and the client's address is in none (or unknown).
        public static let addressNotAllowed = ErrorCode(raw: .addressNotAllowed)

        /// Every code, for tables and exhaustive tests.
        public static var allCodes: [ErrorCode] { Raw.allCases.map { ErrorCode(raw: $0) } }

        /// A stable snake_case name, for logs, metrics and `--output json`.
        public var description: String {
            switch raw {
            case .malformed: return "malformed"
            case .unsupportedAlgorithm: return "unsupported_algorithm"
            case .unknownKey: return "unknown_key"
            case .algorithmMismatch: return "algorithm_mismatch"
            case .badSignature: return "bad_signature"
            case .expired: return "expired"
            case .notYetValid: return "not_yet_valid"
            case .wrongRegion: return "wrong_region"
            case .insufficientScope: return "insufficient_scope"
            case .namespaceNotAllowed: return "namespace_not_allowed"
            case .revoked: return "revoked"
            case .repositoryNotAllowed: return "repository_not_allowed"
            case .addressNotAllowed: return "address_not_allowed"
            }
        }
    }

    /// The class of failure.
    public let code: ErrorCode
    /// A fixed, token-free description of exactly what was wrong.
    public let detail: StaticString

    init(_ code: ErrorCode, _ detail: StaticString) {
        self.code = code
        self.detail = detail
    }

    /// The ``detail`` as a `String`, such as `token expired` (the code is not included).
    public var reason: String { detail.description }

    /// The code and the detail, such as `expired: token expired`.
    public var description: String { "\(code): \(detail)" }


    static func malformed(_ detail: StaticString) -> TokenError { TokenError(.malformed, detail) }
}
