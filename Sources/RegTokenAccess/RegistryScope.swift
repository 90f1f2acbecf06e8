import RegToken

/// One scope of distribution's token authentication: `type:name:actions`, such as
/// `repository:acme/app:pull,push` or `registry:catalog:*`, as a registry puts it in its
/// `WWW-Authenticate: Bearer … scope="…"` challenge and a client asks a token server for it.
///
/// The same shape is the `access` claim of the registry's JWT: what ``AccessPolicy/grant(token:scopes:client:verifier:now:)``
/// returns is what the token server signs.
public struct RegistryScope: Sendable, Hashable, CustomStringConvertible {
    /// The resource type: `repository`, `registry`, or another a registry may define.
    public var type: String
    /// The resource name: a repository name (`acme/app`), or `catalog` for `registry`.
    public var name: String
    /// The actions, in the order given, without duplicates: `pull`, `push`, `delete`, `*`, ...
    public var actions: [String]

    /// A scope; duplicate actions are dropped, the first of each kept in place.
    public init(type: String, name: String, actions: [String]) {
        self.type = type
        self.name = name
        var seen = Set<String>()
        self.actions = actions.filter { seen.insert($0).inserted }
    }

    /// `type:name:action,action`.
    public var description: String { "\(type):\(name):\(actions.joined(separator: ","))" }

    /// The scopes of one `scope` parameter: one or more, separated by spaces (OAuth2's form).
    /// A name may hold a colon (a registry host with a port, `localhost:5000/app`): the type ends
    /// at the first colon and the actions start after the last one.
    /// - Throws: ``RequestError/ErrorCode/invalidScope`` for a scope without three parts, an empty
    ///   type, name or action, or a control or non-ASCII character.
    public static func parse(_ parameter: String) throws(RequestError) -> [RegistryScope] {
        var scopes: [RegistryScope] = []
        for part in parameter.split(separator: " ", omittingEmptySubsequences: true) {
            let text = String(part)
            guard text.utf8.count <= 1024, text.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }),
                  let first = text.firstIndex(of: ":"), let last = text.lastIndex(of: ":"), first < last else {
                throw RequestError(.invalidScope, "scope '\(text.prefix(64))' is not type:name:actions")
            }
            let type = String(text[..<first])
            let name = String(text[text.index(after: first)..<last])
            let actions = text[text.index(after: last)...].split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard !type.isEmpty, !name.isEmpty, !actions.contains(where: \.isEmpty) else {
                throw RequestError(.invalidScope, "scope '\(text.prefix(64))' has an empty type, name or action")
            }
            scopes.append(RegistryScope(type: type, name: name, actions: actions))
        }
        return scopes
    }
}

extension AccessPolicy {
    /// What a token server grants a regtoken token for the `scopes` a client asked: each asked
    /// action that this policy would allow the token on a request (the proxy's decision, action by
    /// action, namespace by namespace), and nothing else. Denied actions and unknown resource types
    /// are left out, as the token specification says, not refused; `registry:catalog:*` is never
    /// granted (it would list other accounts' repositories).
    ///
    /// - Returns: the granted scopes (only those with at least one action, merged by type and
    ///   name), or the refusal when the token itself is bad (malformed, bad signature, expired,
    ///   revoked, another region): the token server answers that 401.
    ///
    /// The token's repository rules and address ranges apply as at the proxy: each action is
    /// decided on the scope's repository, for the client at `client`.
    public func grant(token: [UInt8], scopes: [RegistryScope], client: IPAddress? = nil, verifier: TokenVerifier, now: Int64) -> ScopeGrant {
        let account: String, tokenID: UUIDBytes
        switch decide(token: token, access: .pull, namespace: nil, client: client, verifier: verifier, now: now) {
        case .deny(let denied): return .refused(denied)
        case .allow(let allowed): (account, tokenID) = (allowed.account, allowed.tokenID)
        }
        var granted: [RegistryScope] = []
        for scope in scopes where scope.type == "repository" && RegistryRequest.isRepositoryName(scope.name) {
            let allowed = scope.actions.filter { action in
                guard let access = Access(rawValue: action) else { return false }
                if case .allow = decide(token: token, access: access, namespace: nil, repository: scope.name, client: client, verifier: verifier, now: now) { return true }
                return false
            }
            guard !allowed.isEmpty else { continue }
            if let i = granted.firstIndex(where: { $0.type == scope.type && $0.name == scope.name }) {
                granted[i] = RegistryScope(type: scope.type, name: scope.name, actions: granted[i].actions + allowed)
            } else {
                granted.append(RegistryScope(type: scope.type, name: scope.name, actions: allowed))
            }
        }
        return .granted(account: account, tokenID: tokenID, scopes: granted)
    }
}

/// A token server's answer for a regtoken token and the scopes asked.
public enum ScopeGrant: Sendable, Equatable {
    /// The token is good: its account (the registry JWT's `sub`), its id (what a refresh token
    /// is bound to) and these scopes (possibly none) for the JWT's `access` claim.
    case granted(account: String, tokenID: UUIDBytes, scopes: [RegistryScope])
    /// The token itself is refused (401, with the reason).
    case refused(AccessDecision.Denied)
}
