/// The claims of a regtoken token (RFC 7519), as the issuer writes them and `token-get`/`verify`
/// show them.
///
/// On the wire they are one JSON object in the fixed order of `IssuedClaim` (the one description
/// of the layout), without whitespace:
/// `{"jti":"<uuid>","sub":"<account>","region":"<region>","scope":"pull"|"pull,push"|"pull,push,delete","iat":<s>,"exp":<s>,"namespaces":["ns",...],"repositories":["pattern:actions",...],"allow_from":["cidr",...]}`
/// with `exp` absent for a non-expiring token, `namespaces` absent for a token valid on all
/// of the account's namespaces, `repositories` absent for a token without repository rules and
/// `allow_from` absent for a token usable from anywhere (`nbf`, before `namespaces`, only when
/// set). The verifier accepts these members in any order, and nothing else.
public struct TokenClaims: Sendable, Hashable {
    /// The token identifier (`jti`), a random UUID: the "Token identifier" users see.
    public var id: UUIDBytes
    /// The account (`sub`).
    public var account: String
    /// The region.
    public var region: String
    /// What the token allows: pull; push and pull; or push, pull and delete.
    public var scope: Scope
    /// Issued-at (`iat`), seconds since 1970.
    public var issuedAt: Int64
    /// Expiry (`exp`), seconds since 1970; `nil` for a non-expiring token.
    public var expiresAt: Int64?
    /// Not-before (`nbf`), seconds since 1970, or `nil`: written only when set (regtoken's commands
    /// never set it), and checked when verifying tokens from elsewhere.
    public var notBefore: Int64?
    /// The namespaces the token is limited to, or `nil` for all of the account's namespaces.
    public var namespaces: [String]?
    /// The repository rules the token is limited to (``RepositoryRule``), or `nil` for every
    /// repository of its namespaces.
    public var repositories: [RepositoryRule]?
    /// The client addresses the token may be used from, or `nil` for anywhere.
    public var allowFrom: [AddressRange]?

    /// Claims as given, unchecked: ``validate()`` checks them (``TokenIssuer/issue(_:)`` calls it).
    /// - Parameters:
    ///   - id: the token identifier (`jti`); a fresh random UUID by default.
    ///   - account: the account (`sub`).
    ///   - region: the region the token is valid in.
    ///   - scope: what the token allows.
    ///   - issuedAt: issued-at (`iat`), seconds since 1970.
    ///   - expiresAt: expiry (`exp`), seconds since 1970, or `nil` for a non-expiring token.
    ///   - notBefore: not-before (`nbf`), seconds since 1970, or `nil` (the default) for none.
    ///   - namespaces: the namespaces the token is limited to, or `nil` (the default) for all of
    ///     the account's namespaces.
    ///   - repositories: repository rules, or `nil` (the default) for none.
    ///   - allowFrom: the address ranges the token may be used from, or `nil` (the default) for anywhere.
    public init(id: UUIDBytes = .random(), account: String, region: String, scope: Scope, issuedAt: Int64,
                expiresAt: Int64?, notBefore: Int64? = nil, namespaces: [String]? = nil,
                repositories: [RepositoryRule]? = nil, allowFrom: [AddressRange]? = nil) {
        self.id = id
        self.account = account
        self.region = region
        self.scope = scope
        self.issuedAt = issuedAt
        self.expiresAt = expiresAt
        self.notBefore = notBefore
        self.namespaces = namespaces
        self.repositories = repositories
        self.allowFrom = allowFrom
    }

    /// The default lifetime of a token: 24 hours.
    public static let defaultLifetime: Int64 = 86_400

    /// True when the token has expired at `now` (no leeway).
    public func isExpired(at now: Int64) -> Bool {
        guard let expiresAt else { return false }
        return now >= expiresAt
    }

    /// How the claims JSON the issuer writes always begins: the first issued member's opening
    /// (the verifier's HMAC prefix state is built from it: see ``VerifierState``).
    static var issuedOpening: StaticString { IssuedClaim.jti.opening }

    /// The claims JSON: each member of `IssuedClaim` in its order, written as its opening and
    /// then its value, members without a value left out.
    public var json: String {
        var w = JSONWriter()
        for claim in IssuedClaim.allCases {
            switch claim {
            case .jti: w.member(claim.opening) { $0.string(id.description) }
            case .sub: w.member(claim.opening) { $0.string(account) }
            case .region: w.member(claim.opening) { $0.string(region) }
            case .scope: w.member(claim.opening) { $0.string(scope.rawValue) }
            case .iat: w.member(claim.opening) { $0.raw(String(issuedAt)) }
            case .exp: if let expiresAt { w.member(claim.opening) { $0.raw(String(expiresAt)) } }
            case .nbf: if let notBefore { w.member(claim.opening) { $0.raw(String(notBefore)) } }
            case .namespaces:
                if let namespaces {
                    w.member(claim.opening) { w in
                        w.raw("[")
                        for (i, ns) in namespaces.enumerated() {
                            if i > 0 { w.raw(",") }
                            w.string(ns)
                        }
                        w.raw("]")
                    }
                }
            case .repositories:
                if let repositories { w.member(claim.opening) { $0.stringArray(repositories.map(\.description)) } }
            case .allowFrom:
                if let allowFrom { w.member(claim.opening) { $0.stringArray(allowFrom.map(\.description)) } }
            }
        }
        w.raw("}")
        return w.output
    }

    /// Checks what the issuer writes: account and region of 1 to 64 characters of
    /// `[A-Za-z0-9._@-]`, namespaces as Docker repository name components (lowercase letters and
    /// digits, separated by `.`, `_`, `__` or `-`), 1 to 64 of them, no duplicates.
    /// - Throws: ``IssueError`` with code ``IssueError/ErrorCode/invalidClaims`` for a bad name,
    ///   an expiry not after issued-at, or a time outside 0 through 2^53 − 1 seconds.
    public func validate() throws(IssueError) {
        try Self.check(account, what: "account", allowed: Self.isAccountCharacter)
        try Self.check(region, what: "region", allowed: Self.isAccountCharacter)
        if let expiresAt, expiresAt <= issuedAt {
            throw IssueError(.invalidClaims, "expiry must be after issued-at")
        }
        guard issuedAt >= 0, issuedAt <= 9_007_199_254_740_991, (expiresAt ?? 0) <= 9_007_199_254_740_991 else {
            throw IssueError(.invalidClaims, "times must be between 1970 and 2^53 - 1 seconds")
        }
        if let namespaces {
            guard !namespaces.isEmpty, namespaces.count <= 64 else {
                throw IssueError(.invalidClaims, "a token is limited to 1 to 64 namespaces")
            }
            guard Set(namespaces).count == namespaces.count else {
                throw IssueError(.invalidClaims, "a namespace is listed twice")
            }
            for ns in namespaces where !Self.isNamespace(ns) {
                throw IssueError(.invalidClaims, "invalid namespace '\(ns.prefix(80))': use lowercase letters and digits separated by '.', '_' or '-' (at most 64 characters)")
            }
        }
        if let repositories {
            guard !repositories.isEmpty, repositories.count <= RepositoryRule.maximumCount else {
                throw IssueError(.invalidClaims, "a token has 1 to \(RepositoryRule.maximumCount) repository rules")
            }
            guard Set(repositories.map(\.pattern)).count == repositories.count else {
                throw IssueError(.invalidClaims, "a repository pattern is listed twice: give each pattern once, with all its actions")
            }
            let granted = RepositoryRule.Actions(scope)
            for rule in repositories {
                try rule.validate()
                guard granted.isSuperset(of: rule.actions) else {
                    throw IssueError(.invalidClaims, "repository rule '\(rule.description.prefix(80))' asks for more than the token's scope (\(scope.rawValue)): use --readwrite for push, --delete for delete")
                }
                if let namespaces, !namespaces.contains(rule.namespace) {
                    throw IssueError(.invalidClaims, "repository rule '\(rule.description.prefix(80))' is outside the token's namespaces (\(namespaces.joined(separator: ", ")))")
                }
            }
        }
        if let allowFrom {
            guard !allowFrom.isEmpty, allowFrom.count <= AddressRange.maximumCount else {
                throw IssueError(.invalidClaims, "a token has 1 to \(AddressRange.maximumCount) address ranges")
            }
        }
    }

    static func isAccountCharacter(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A)
            || b == UInt8(ascii: "-") || b == UInt8(ascii: "_") || b == UInt8(ascii: ".") || b == UInt8(ascii: "@")
    }

    static func check(_ value: String, what: String, allowed: (UInt8) -> Bool) throws(IssueError) {
        let bytes = Array(value.utf8)
        guard !bytes.isEmpty, bytes.count <= ShortString.capacity, bytes.allSatisfy(allowed) else {
            throw IssueError(.invalidClaims, "invalid \(what) '\(value.prefix(80))': use 1 to 64 characters of A-Z a-z 0-9 . _ @ -")
        }
    }

    /// A namespace as regtoken issues it: a repository name component of at most 64 bytes.
    public static func isNamespace(_ s: String) -> Bool {
        s.utf8.count <= ShortString.capacity && isNameComponent(s)
    }

    /// A Docker repository name component: `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`.
    public static func isNameComponent(_ s: String) -> Bool {
        var s = s
        return s.withUTF8 { isNameComponent(bytes: $0) }
    }

    /// ``isNameComponent(_:)`` on bytes.
    package static func isNameComponent(bytes b: UnsafeBufferPointer<UInt8>) -> Bool {
        guard !b.isEmpty else { return false }
        func alnum(_ c: UInt8) -> Bool { (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x7A) }
        var i = 0
        while true {
            guard i < b.count, alnum(b[i]) else { return false }
            while i < b.count, alnum(b[i]) { i += 1 }
            if i == b.count { return true }
            // a separator: '.', '_', '__' or one or more '-'
            if b[i] == UInt8(ascii: ".") {
                i += 1
            } else if b[i] == UInt8(ascii: "_") {
                i += 1
                if i < b.count, b[i] == UInt8(ascii: "_") { i += 1 }
            } else if b[i] == UInt8(ascii: "-") {
                while i < b.count, b[i] == UInt8(ascii: "-") { i += 1 }
            } else {
                return false
            }
        }
    }
}

/// Why a token could not be issued.
public struct IssueError: CodedError {
    /// The class of failure, stable across releases (new codes may be added).
    public struct ErrorCode: Sendable, Hashable, CustomStringConvertible {
        let name: String
        /// The claims are not what regtoken issues (see ``TokenClaims/validate()``).
        public static let invalidClaims = ErrorCode(name: "invalid_claims")
        /// The key ring has no active key that can sign.
        public static let noSigningKey = ErrorCode(name: "no_signing_key")
        /// Signing failed inside OpenSSL.
        public static let crypto = ErrorCode(name: "crypto")
        /// The stable snake_case name, such as `invalid_claims`.
        public var description: String { name }
    }

    /// The class of failure; equality and hashing use it alone.
    public let code: ErrorCode
    /// One line: why the token could not be issued (never key bytes).
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
