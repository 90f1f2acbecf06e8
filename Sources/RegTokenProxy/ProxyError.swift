import RegToken

/// Why the proxy could not set up TLS, fetch a document from the issuer, or accept what it fetched.
///
/// Equality is on ``code`` only. ``reason`` is one line naming the file, URL or setting.
public struct ProxyError: CodedError {
    /// The class of failure, stable across releases (new codes may be added).
    public struct ErrorCode: Sendable, Hashable, CustomStringConvertible {
        let name: String
        /// A certificate, key, minimum version or cipher suite list that TLS cannot use.
        public static let invalidTLSConfiguration = ErrorCode(name: "invalid_tls_configuration")
        /// A URL, CA file or fetch setting that cannot be used.
        public static let invalidFetchConfiguration = ErrorCode(name: "invalid_fetch_configuration")
        /// The issuer did not answer in time, answered with another status, or sent too much.
        public static let fetchFailed = ErrorCode(name: "fetch_failed")
        /// A document older than the one in force (a rollback) was refused.
        public static let staleVersion = ErrorCode(name: "stale_version")
        /// A file the proxy keeps (the accepted version record) is damaged or cannot be used.
        public static let storage = ErrorCode(name: "storage")
        public var description: String { name }
    }

    public let code: ErrorCode
    public let reason: String

    public init(_ code: ErrorCode, _ reason: String) {
        self.code = code
        self.reason = reason
    }

}
