import RegToken

/// What the proxy does with a request: forward it, or answer it with a Docker error.
public enum AccessDecision: Sendable, Equatable {
    /// Forward the request: its token has the rights it needs.
    case allow(Allowed)
    /// Answer the request with a Docker error; forward nothing.
    case deny(Denied)

    /// What an allowed request does, and which token allowed it.
    public struct Allowed: Sendable, Equatable {
        /// The identifier (`jti`) of the token that allowed the request.
        public var tokenID: UUIDBytes
        /// The token's account (`sub`).
        public var account: String
        /// The right the request used.
        public var access: Access
        /// The request, as parsed from its target.
        public var request: RegistryRequest
        /// How the body is framed towards the registry (``AccessPolicy/decide(head:client:verifier:now:)``
        /// only; `.none` from the rights-only decision).
        public var framing: BodyFraming = .none
    }

    /// How to answer a refused request, and why it was refused.
    public struct Denied: Sendable, Equatable {
        /// 400, 401, 403, 404 or 405.
        public var status: Int
        /// The Docker error code: `UNAUTHORIZED`, `DENIED`, `NAME_INVALID`, `UNSUPPORTED`.
        public var code: String
        /// What was wrong, for the client (skopeo prints it) and the access log. Never a token.
        public var message: String
        /// A stable reason for logs and metrics.
        public var reason: DenyReason
        /// The token's id when a valid token was refused.
        public var tokenID: UUIDBytes?
        /// The request's framing is in doubt (or it carries a body nobody will read): answer,
        /// then close the connection, reading nothing more from it.
        public var close: Bool = false
    }

    /// True for ``allow(_:)``.
    public var isAllowed: Bool {
        if case .allow = self { return true }
        return false
    }
}

/// Why a request was refused, as a metric label.
public enum DenyReason: String, Sendable, CaseIterable {
    /// The path or query could mean two things to the proxy and the registry (400).
    case ambiguousPath = "ambiguous_path"
    /// The head breaks the framing or header rules of ``RequestHead`` (400, connection closed).
    case ambiguousFraming = "ambiguous_framing"
    /// The registry could read parameters from the body: a form or non-ASCII `Content-Type`, or an
    /// upload that is not `application/octet-stream` (400).
    case formBody = "form_body"
    /// A repository name, reference or namespace outside the distribution grammar (400).
    case invalidName = "invalid_name"
    /// Not a registry API path (404).
    case notFound = "not_found"
    /// A method the registry API does not have on that endpoint (405).
    case methodNotAllowed = "method_not_allowed"
    /// No credentials, or skopeo's empty `Basic Og==`: the client must log in (401).
    case missingCredentials = "missing_credentials"
    /// `Authorization` headers that carry no usable token (401).
    case badCredentials = "bad_credentials"
    /// A malformed token, or one refused for a reason with no label of its own (401).
    case malformed
    /// The token's algorithm is not accepted (401).
    case unsupportedAlgorithm = "unsupported_algorithm"
    /// No key in force has the token's key id: retired, or another issuer's (401).
    case unknownKey = "unknown_key"
    /// The token's algorithm is not that of the key it names (401).
    case algorithmMismatch = "algorithm_mismatch"
    /// The token's signature does not verify (401).
    case badSignature = "bad_signature"
    /// The token expired, clock leeway included (401).
    case expired
    /// The token was issued in the future or its `nbf` is not reached, clock leeway included (401).
    case notYetValid = "not_yet_valid"
    /// The token is on the revocation list (401).
    case revoked
    /// A non-expiring token while the revocation list in force is stale
    /// (``AccessPolicy/revocationsStale``) (401).
    case staleRevocations = "stale_revocations"
    /// The token is for another region (403).
    case wrongRegion = "wrong_region"
    /// A pull-only token asked to push (403).
    case pullOnly = "pull_only"
    /// A token without the delete right asked to delete (403).
    case deleteNotAllowed = "delete_not_allowed"
    /// The namespace map has no owner for the namespace (403).
    case namespaceUnknown = "namespace_unknown"
    /// The namespace belongs to another account than the token's (403).
    case namespaceNotOwned = "namespace_not_owned"
    /// The token is limited to other namespaces (403).
    case namespaceNotAllowed = "namespace_not_allowed"
    /// A catalog listing by a valid token: always refused, since it would list other accounts'
    /// repositories (403).
    case catalog
    /// The token's repository rules do not allow the action on the repository (403).
    case repositoryNotAllowed = "repository_not_allowed"
    /// The token is limited to address ranges that do not hold the client's address (403).
    case addressNotAllowed = "address_not_allowed"
}

/// The access decision, as a pure function of the request and the snapshots in force: no I/O,
/// no clock of its own, no state. The proxy calls it once per request; tests call it with tables.
public struct AccessPolicy: Sendable {
    /// The region this proxy serves.
    public var region: String
    /// Who owns each namespace.
    public var namespaces: NamespaceMap
    /// True when the revocation list in force is older than the configured limit: non-expiring
    /// tokens are then refused (fail closed), since a revocation may be missing.
    public var revocationsStale: Bool

    /// A policy for one region.
    /// - Parameters:
    ///   - region: the region this proxy serves.
    ///   - namespaces: who owns each namespace; by default each account owns the namespace of its own name.
    ///   - revocationsStale: true to refuse non-expiring tokens, because the revocation list in force is stale.
    public init(region: String, namespaces: NamespaceMap = .accountNamed, revocationsStale: Bool = false) {
        self.region = region
        self.namespaces = namespaces
        self.revocationsStale = revocationsStale
    }

    /// The rights a request needs: the access on its namespace, plus pull on a mount's source.
    static func requiredAccess(method: String, endpoint: RegistryRequest.Endpoint) -> Access? {
        switch (endpoint, method) {
        case (.base, "GET"), (.base, "HEAD"): return .pull
        case (.tags, "GET"), (.tags, "HEAD"): return .pull
        case (.referrers, "GET"), (.referrers, "HEAD"): return .pull
        case (.manifest, "GET"), (.manifest, "HEAD"): return .pull
        case (.manifest, "PUT"): return .push
        case (.manifest, "DELETE"): return .delete
        case (.blob, "GET"), (.blob, "HEAD"): return .pull
        case (.blob, "DELETE"): return .delete
        case (.uploadStart, "POST"): return .push
        case (.upload, "GET"), (.upload, "PATCH"), (.upload, "PUT"), (.upload, "DELETE"): return .push
        default: return nil
        }
    }

    /// The decision on a token alone, for `access` on `namespace` (or on no namespace): the
    /// very checks and answers of ``decide(method:target:authorization:client:verifier:now:)`` after it
    /// has parsed the request, so that `regtoken verify --namespace` answers what the proxy does.
    /// - Parameters:
    ///   - token: the token's bytes (no `Bearer` or Basic wrapping).
    ///   - access: what the request would do.
    ///   - namespace: the namespace it would touch; ``namespaces`` says who owns it.
    ///   - repository: the repository it would touch (its first segment is the namespace, which
    ///     may then be left `nil`), for tokens with repository rules; `nil` for none.
    ///   - client: the client's address, for tokens limited to addresses (`nil`: unknown, and
    ///     such tokens are refused).
    ///   - verifier: the token verifier (its keys and revocation list snapshots).
    ///   - now: seconds since 1970.
    public func decide(token: [UInt8], access: Access, namespace: String?, repository: String? = nil, client: IPAddress? = nil,
                       verifier: TokenVerifier, now: Int64) -> AccessDecision {
        if let repository, !RegistryRequest.isRepositoryName(repository) {
            return deny(400, "NAME_INVALID", "'\(repository.prefix(64))' is not a repository name", .invalidName)
        }
        let namespace = namespace ?? repository.map { String($0.prefix { $0 != "/" }) }
        if let namespace, !RegistryRequest.isNameComponent(namespace) {
            return deny(400, "NAME_INVALID", "'\(namespace.prefix(64))' is not a namespace (lowercase letters, digits, separators)", .invalidName)
        }
        let request = RegistryRequest(endpoint: .base, repository: repository ?? namespace, mountFrom: nil)
        return verify(token, access: access, namespace: namespace, request: request, client: client, verifier: verifier, now: now,
                      repository: repository)
    }

    /// Decides on a request that a front proxy would forward to the registry: the forwarding
    /// rules of ``RequestHead`` (framing, bodies, `Connection`, form bodies) first, then the
    /// rights (``decide(method:target:authorization:client:verifier:now:)``). An allowed request carries
    /// the ``BodyFraming`` to forward it with; build its upstream headers with
    /// ``ForwardedHeaders/upstream(_:framing:scheme:clientAddress:)``.
    public func decide(head: RequestHead, client: IPAddress? = nil, verifier: TokenVerifier, now: Int64) -> AccessDecision {
        var credentials = CredentialsMemo()
        return decide(head: head, framing: head.framing(), client: client, verifier: verifier, now: now, credentials: &credentials)
    }

    /// ``decide(head:client:verifier:now:)`` with the head's `framing()` already worked out (a
    /// front proxy's HTTP codec needs it first, to know where the body ends) and the connection's
    /// ``CredentialsMemo`` (an `Authorization` value the connection sent before is not decoded
    /// again). `framing` must be what `head.framing()` returns: it is trusted, not checked again.
    package func decide(head: RequestHead, framing checked: Result<BodyFraming, HeadViolation>, client: IPAddress?,
                        verifier: TokenVerifier, now: Int64, credentials memo: inout CredentialsMemo) -> AccessDecision {
        let framing: BodyFraming
        switch checked {
        case .success(let f): framing = f
        case .failure(let v): return deny(v)
        }
        // The path first (400 and 404 come before credentials, as in the rights-only decision),
        // then where the registry could read parameters from.
        let parsed = RegistryRequest.parse(target: head.target)
        if case .success(let request) = parsed,
           let violation = head.checkNoFormParameters(endpoint: request.endpoint, framing: framing) {
            return deny(violation)
        }
        let authorization = head.first("authorization")
        let credentials = memo.parse(first: authorization.first, count: authorization.count)
        switch decide(method: head.method, parsed: parsed, credentials: credentials, client: client, verifier: verifier, now: now) {
        case .allow(var allowed):
            allowed.framing = framing
            return .allow(allowed)
        case .deny(var denied):
            // Nobody reads the body of a refused request: the connection cannot be reused.
            denied.close = framing != .none
            return .deny(denied)
        }
    }

    private func deny(_ v: HeadViolation) -> AccessDecision {
        .deny(AccessDecision.Denied(status: 400, code: "UNSUPPORTED", message: "refused request: \(v.message)", reason: v.reason, tokenID: nil, close: v.close))
    }

    /// The rights a request needs and whether its token has them: the access decision without
    /// the forwarding rules. A front end that serves the request itself can use this; one that
    /// forwards the request to a registry must use ``decide(head:client:verifier:now:)``.
    /// - Parameters:
    ///   - method: the HTTP method, upper case.
    ///   - target: the request target (path and query).
    ///   - authorization: the values of every `Authorization` header.
    ///   - client: the client's address, for tokens limited to addresses (`nil`: unknown, and
    ///     such tokens are refused).
    ///   - verifier: the token verifier (its keys and revocation list snapshots).
    ///   - now: seconds since 1970.
    public func decide(method: String, target: String, authorization: [String], client: IPAddress? = nil,
                       verifier: TokenVerifier, now: Int64) -> AccessDecision {
        decide(method: method, parsed: RegistryRequest.parse(target: target),
               credentials: Credentials.parse(first: authorization.first, count: authorization.count), client: client, verifier: verifier, now: now)
    }

    /// ``decide(method:target:authorization:client:verifier:now:)`` on a target already parsed
    /// (the forwarding decision parses it once for both of its checks) and on the credentials of
    /// its `Authorization` headers (read first, answered after the path's errors).
    private func decide(method: String, parsed: Result<RegistryRequest, RequestError>, credentials: Credentials, client: IPAddress?,
                        verifier: TokenVerifier, now: Int64) -> AccessDecision {
        // 1. What the request is: refuse what could mean two things before anything else.
        let request: RegistryRequest
        switch parsed {
        case .success(let r): request = r
        case .failure(let e) where e.code == .ambiguous: return deny(400, "UNSUPPORTED", "ambiguous request: \(e.reason)", .ambiguousPath)
        case .failure(let e) where e.code == .invalidName: return deny(400, "NAME_INVALID", e.reason, .invalidName)
        case .failure(let e): return deny(404, "UNSUPPORTED", e.reason, .notFound)
        }

        // 2. Who is asking.
        let token: [UInt8]
        switch credentials {
        case .none: return deny(401, "UNAUTHORIZED", "authentication required: log in with user 'token' and a token as password", .missingCredentials)
        case .unusable(let why): return deny(401, "UNAUTHORIZED", why, .badCredentials)
        case .token(let t): token = t
        }

        // 3. What it needs.
        if request.endpoint == .catalog {
            if case .deny(let d) = verify(token, access: .pull, namespace: nil, request: request, client: client, verifier: verifier, now: now) { return .deny(d) }
            return deny(403, "DENIED", "catalog listing is disabled: it would list other accounts' repositories", .catalog)
        }
        guard let access = Self.requiredAccess(method: method, endpoint: request.endpoint) else {
            return deny(405, "UNSUPPORTED", "method \(method.prefix(16)) is not allowed here", .methodNotAllowed)
        }
        let decision = verify(token, access: access, namespace: request.namespace, request: request, client: client, verifier: verifier, now: now)
        guard case .allow = decision else { return decision }
        // A cross-repository mount reads the source repository: it needs pull there too.
        if let from = request.mountFrom {
            let source = verify(token, access: .pull, namespace: request.mountFromNamespace, request: request, client: client, verifier: verifier, now: now, repository: from)
            if case .deny(var d) = source {
                d.message = "mount source: \(d.message)"
                return .deny(d)
            }
        }
        return decision
    }

    private func verify(_ token: [UInt8], access: Access, namespace: String?, request: RegistryRequest, client: IPAddress?,
                        verifier: TokenVerifier, now: Int64, repository: String? = nil) -> AccessDecision {
        let repository = repository ?? request.repository
        let repo = repository ?? ""
        var owner: String? = nil
        if let namespace {
            guard let o = namespaces.owner(of: namespace) else {
                return deny(403, "DENIED", "namespace \(namespace) does not exist", .namespaceUnknown)
            }
            owner = o
        }
        let verified: VerifiedToken
        do {
            verified = try token.withUnsafeBytes { bytes in
                try verifier.verify(bytes: bytes, at: now, for: AccessRequest(region: region, access: access, namespace: namespace,
                                                                              repository: repository, clientAddress: client))
            }
        } catch let error as TokenError {
            return deny(error, access: access, namespace: namespace, repository: repo)
        } catch {
            return deny(401, "UNAUTHORIZED", "malformed token", .malformed)
        }
        if let owner, !verified.account.equals(owner) {
            return deny(403, "DENIED", "namespace \(namespace ?? "") is not owned by the token's account", .namespaceNotOwned, verified.id)
        }
        if revocationsStale && verified.expiresAt == nil {
            return deny(401, "UNAUTHORIZED", "revocation list is stale: non-expiring tokens are refused until it is refreshed", .staleRevocations, verified.id)
        }
        return .allow(AccessDecision.Allowed(tokenID: verified.id, account: verified.account.string, access: access, request: request))
    }

    private func deny(_ error: TokenError, access: Access, namespace: String?, repository: String) -> AccessDecision {
        switch error.code {
        case .expired: return deny(401, "UNAUTHORIZED", "token expired", .expired)
        case .notYetValid: return deny(401, "UNAUTHORIZED", "token is not valid yet (check the clocks)", .notYetValid)
        case .revoked: return deny(401, "UNAUTHORIZED", "token revoked", .revoked)
        case .unknownKey: return deny(401, "UNAUTHORIZED", "token signed by an unknown key (retired, or from another issuer)", .unknownKey)
        case .badSignature: return deny(401, "UNAUTHORIZED", "token signature does not verify", .badSignature)
        case .algorithmMismatch: return deny(401, "UNAUTHORIZED", "token algorithm is not its key's", .algorithmMismatch)
        case .unsupportedAlgorithm: return deny(401, "UNAUTHORIZED", "token algorithm is not accepted", .unsupportedAlgorithm)
        case .malformed: return deny(401, "UNAUTHORIZED", "malformed token", .malformed)
        case .wrongRegion: return deny(403, "DENIED", "token is for another region than \(region)", .wrongRegion)
        case .insufficientScope:
            if access == .delete {
                return deny(403, "DENIED", "token cannot delete in \(repository) (deleting needs a token made with --delete)", .deleteNotAllowed)
            }
            return deny(403, "DENIED", "token is pull-only for \(repository)", .pullOnly)
        case .namespaceNotAllowed:
            return deny(403, "DENIED", "token is not valid for namespace \(namespace ?? "")", .namespaceNotAllowed)
        case .repositoryNotAllowed:
            return deny(403, "DENIED", "no repository rule of the token allows \(access.rawValue) on \(repository)", .repositoryNotAllowed)
        case .addressNotAllowed:
            return deny(403, "DENIED", "token is not valid from this address", .addressNotAllowed)
        default:
            return deny(401, "UNAUTHORIZED", "token refused", .malformed)
        }
    }

    private func deny(_ status: Int, _ code: String, _ message: String, _ reason: DenyReason, _ tokenID: UUIDBytes? = nil) -> AccessDecision {
        .deny(AccessDecision.Denied(status: status, code: code, message: message, reason: reason, tokenID: tokenID))
    }
}
