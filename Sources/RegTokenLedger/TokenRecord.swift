import RegToken

/// One issued token as the ledger keeps it: what `token-list`, `token-get` and `token-rm` need.
/// What the ledger keeps of a token: its claims and the id of the key that signed it, never the
/// token's value.
public struct TokenRecord: Sendable, Hashable {
    public var id: UUIDBytes
    public var account: String
    public var region: String
    public var scope: Scope
    public var description: String
    /// Seconds since 1970.
    public var createdAt: Int64
    /// Seconds since 1970, or `nil` for a non-expiring token.
    public var expiresAt: Int64?
    /// The key that signed the token: ``Home/tokenValue(_:)`` signs the claims again with it.
    public var keyID: String
    public var namespaces: [String]?
    /// The token's repository rules, or `nil` for none.
    public var repositories: [RepositoryRule]?
    /// The address ranges the token may be used from, or `nil` for anywhere.
    public var allowFrom: [AddressRange]?

    public init(id: UUIDBytes, account: String, region: String, scope: Scope, description: String, createdAt: Int64,
                expiresAt: Int64?, keyID: String, namespaces: [String]?, repositories: [RepositoryRule]? = nil,
                allowFrom: [AddressRange]? = nil) {
        self.id = id
        self.account = account
        self.region = region
        self.scope = scope
        self.description = description
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.keyID = keyID
        self.namespaces = namespaces
        self.repositories = repositories
        self.allowFrom = allowFrom
    }

    public var isReadOnly: Bool { scope.isReadOnly }

    /// The token's claims, exactly as issued (no value is stored: the claims are signed again).
    public var claims: TokenClaims {
        TokenClaims(id: id, account: account, region: region, scope: scope, issuedAt: createdAt, expiresAt: expiresAt, namespaces: namespaces,
                    repositories: repositories, allowFrom: allowFrom)
    }
}

/// A token just issued or signed again: its record and its value. The value is shown only to
/// whoever asked for it and is never stored.
public struct IssuedToken: Sendable {
    public var record: TokenRecord
    /// The compact JWS. Printed only by `token-add` and `token-get`; never logged or stored.
    public var value: String

    public init(record: TokenRecord, value: String) {
        self.record = record
        self.value = value
    }
}

/// Why the state directory, its ledger or its files could not be used.
///
/// Equality is on ``code`` only. ``reason`` is one line that says what is wrong and what to do.
public struct LedgerError: CodedError {
    /// The class of failure, stable across releases (new codes may be added).
    public struct ErrorCode: Sendable, Hashable, CustomStringConvertible {
        let name: String
        /// A token id (or account) that is not in the ledger for this account and region.
        public static let notFound = ErrorCode(name: "not_found")
        /// Input that is not acceptable (bad duration, bad name, missing account...).
        public static let invalidInput = ErrorCode(name: "invalid_input")
        /// The ledger, a key or the revocation list could not be read or written.
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
