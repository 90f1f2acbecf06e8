import FoundationEssentials
import HTTPTypes
import OpenAPIRuntime
import RegToken
import RegTokenAPI
import RegTokenAPIDocument
import RegTokenAccess
import RegTokenLedger

/// The request's authenticated account and client address, set by the middlewares for the
/// handlers (task-local: each request runs in its own task).
enum RequestScope {
    @TaskLocal static var account: String?
    /// The request's `Authorization` values, for `GET /token` (Basic credentials that an OpenAPI
    /// operation cannot declare).
    @TaskLocal static var authorization: [String] = []
    /// The request's `X-Forwarded-For` values, for the token server behind trusted proxies.
    @TaskLocal static var forwardedFor: [String] = []
    @TaskLocal static var clientAddress: String = "unknown"
}

/// The handlers of the API in `openapi.yaml`. Input that the schema allows but the service does
/// not (lengths, character sets, contradictions) gets 400 with the field named, as the command
/// line's invalid input does.
struct TokenAPI: APIProtocol {
    let issuer: Issuer
    let now: @Sendable () -> Int64
    let tokenServer: TokenServer?

    typealias Err = Components.Schemas._Error

    static func error(_ code: Err.CodePayload, _ message: String, field: String? = nil) -> Err {
        Err(code: code, message: message, field: field)
    }

    /// The authenticated account (the auth middleware guarantees one on these operations).
    private var account: String {
        get throws {
            guard let account = RequestScope.account else { throw AuthMissing() }
            return account
        }
    }

    struct AuthMissing: Error {}

    // MARK: Tokens

    func getAccount(_ input: Operations.GetAccount.Input) async throws -> Operations.GetAccount.Output {
        let account = try account
        let namespaces = try issuer.ledger.account(named: account, now: now())?.namespaces ?? []
        return .ok(.init(body: .json(.init(name: account, namespaces: namespaces))))
    }

    func createToken(_ input: Operations.CreateToken.Input) async throws -> Operations.CreateToken.Output {
        let account = try account
        guard case .json(let request) = input.body else { return .badRequest(.init(body: .json(Self.error(.invalidInput, "a JSON body is needed")))) }
        if let problem = Self.check(region: request.region) { return .badRequest(.init(body: .json(problem))) }
        let description = request.description ?? ""
        if description.unicodeScalars.count > 1024 || description.contains(where: \.isNewline) {
            return .badRequest(.init(body: .json(Self.error(.invalidInput, "description must be one line of at most 1024 characters", field: "description"))))
        }
        let readwrite = request.readwrite ?? false, delete = request.delete ?? false, nonExpiring = request.nonExpiring ?? false
        if delete && !readwrite {
            return .badRequest(.init(body: .json(Self.error(.invalidInput, "delete needs readwrite: a token that deletes can also push", field: "delete"))))
        }
        if nonExpiring && request.expiresIn != nil {
            return .badRequest(.init(body: .json(Self.error(.invalidInput, "non_expiring and expires_in contradict each other: give one", field: "expires_in"))))
        }
        if let e = request.expiresIn, !(1...31_536_000).contains(e) {
            return .badRequest(.init(body: .json(Self.error(.invalidInput, "expires_in must be 1 to 31536000 seconds", field: "expires_in"))))
        }
        let now = self.now()
        var namespaces: [String]? = nil
        if let requested = request.namespaces {
            guard !requested.isEmpty, requested.count <= 64 else {
                return .badRequest(.init(body: .json(Self.error(.invalidInput, "namespaces must list 1 to 64 namespaces", field: "namespaces"))))
            }
            for ns in requested where ns.utf8.count > 64 || !TokenClaims.isNameComponent(ns) {
                return .badRequest(.init(body: .json(Self.error(.invalidInput, "namespace \(Self.printable(ns)) is not a namespace name", field: "namespaces"))))
            }
            let owned = try issuer.withHome { home throws(LedgerError) in try home.ledger.account(named: account, now: now)?.namespaces ?? [] }
            for ns in requested where !owned.contains(ns) {
                return .forbidden(.init(body: .json(Self.error(.forbidden, "namespace \(ns) is not owned by account \(account)", field: "namespaces"))))
            }
            namespaces = requested
        }
        let scope: Scope = delete ? .pushPullDelete : (readwrite ? .pushPull : .pull)
        let lifetime: Int64? = nonExpiring ? nil : (request.expiresIn ?? TokenClaims.defaultLifetime)
        var repositories: [RepositoryRule]? = nil
        if let rules = request.repositories {
            guard !rules.isEmpty, rules.count <= RepositoryRule.maximumCount else {
                return .badRequest(.init(body: .json(Self.error(.invalidInput, "repositories must list 1 to 32 rules", field: "repositories"))))
            }
            // Where a rule may be: the token's namespaces, else the account's (checked first: a
            // namespace the account does not own is 403 whatever else is wrong with the rule).
            let owned = try issuer.withHome { home throws(LedgerError) in try home.ledger.account(named: account, now: now)?.namespaces ?? [] }
            let allowed = namespaces ?? owned
            var parsed: [RepositoryRule] = []
            for text in rules {
                let namespace = String(text.prefix { $0 != "/" && $0 != ":" })
                guard allowed.contains(namespace) else {
                    let whose = namespaces == nil ? "account \(account)" : "the token (namespaces)"
                    return .forbidden(.init(body: .json(Self.error(.forbidden, "repository rule '\(Self.printable(text))' is outside the namespaces of \(whose)", field: "repositories"))))
                }
                do { parsed.append(try RepositoryRule.parse(text, defaultActions: .init(scope))) } catch {
                    return .badRequest(.init(body: .json(Self.error(.invalidInput, error.reason, field: "repositories"))))
                }
            }
            parsed = RepositoryRule.merged(parsed)
            if let over = parsed.first(where: { !RepositoryRule.Actions(scope).isSuperset(of: $0.actions) }) {
                return .badRequest(.init(body: .json(Self.error(.invalidInput, "repository rule '\(Self.printable(over.description))' asks for more than the token's scope (\(scope.rawValue)): set readwrite for push, delete for delete", field: "repositories"))))
            }
            repositories = parsed
        }
        var allowFrom: [AddressRange]? = nil
        if let ranges = request.allowFrom {
            guard !ranges.isEmpty, ranges.count <= AddressRange.maximumCount else {
                return .badRequest(.init(body: .json(Self.error(.invalidInput, "allow_from must list 1 to 32 ranges", field: "allow_from"))))
            }
            var parsed: [AddressRange] = []
            for text in ranges {
                guard let range = AddressRange(clearingHostBits: text) else {
                    return .badRequest(.init(body: .json(Self.error(.invalidInput, "allow_from '\(Self.printable(text))' \(AddressRange.problem(text) ?? "is not a range")", field: "allow_from"))))
                }
                parsed.append(range)
            }
            allowFrom = parsed
        }
        let result = Result { () throws(LedgerError) -> IssuedToken in
            try issuer.withHome { home throws(LedgerError) in
                try home.issueToken(account: account, region: request.region, scope: scope, description: description,
                                    lifetime: lifetime, namespaces: namespaces, repositories: repositories, allowFrom: allowFrom, now: now)
            }
        }
        switch result {
        case .success(let issued):
            return .created(.init(body: .json(Self.token(issued.record, value: issued.value))))
        case .failure(let error):
            guard error.code == .invalidInput else { throw error }
            return .badRequest(.init(body: .json(Self.error(.invalidInput, error.reason))))
        }
    }

    func listTokens(_ input: Operations.ListTokens.Input) async throws -> Operations.ListTokens.Output {
        let account = try account
        if let problem = Self.check(region: input.query.region) { return .badRequest(.init(body: .json(problem))) }
        let now = self.now()
        let tokens = try issuer.ledger.tokens(account: account, region: input.query.region).filter { !$0.isExpired(at: now) }
        return .ok(.init(body: .json(.init(tokens: tokens.map { Self.token($0, value: nil) }))))
    }

    func getToken(_ input: Operations.GetToken.Input) async throws -> Operations.GetToken.Output {
        let account = try account
        if let problem = Self.check(region: input.query.region) { return .badRequest(.init(body: .json(problem))) }
        guard let id = UUIDBytes(input.path.id) else {
            return .badRequest(.init(body: .json(Self.error(.invalidInput, "not a token identifier (a UUID)", field: "id"))))
        }
        let now = self.now()
        // Another account's token answers exactly as an unknown one.
        guard let record = try issuer.ledger.token(id: id, account: account, region: input.query.region), !record.isExpired(at: now) else {
            return .notFound(.init(body: .json(Self.notFound(id, account: account, region: input.query.region))))
        }
        switch Result(catching: { () throws(LedgerError) -> IssuedToken in try issuer.withHome { home throws(LedgerError) in try home.tokenValue(record) } }) {
        case .success(let issued):
            return .ok(.init(body: .json(Self.token(issued.record, value: issued.value))))
        case .failure(let error):
            guard error.code == .notFound else { throw error }
            return .notFound(.init(body: .json(Self.notFound(id, account: account, region: input.query.region))))
        }
    }

    func deleteToken(_ input: Operations.DeleteToken.Input) async throws -> Operations.DeleteToken.Output {
        let account = try account
        if let problem = Self.check(region: input.query.region) { return .badRequest(.init(body: .json(problem))) }
        guard let id = UUIDBytes(input.path.id) else {
            return .badRequest(.init(body: .json(Self.error(.invalidInput, "not a token identifier (a UUID)", field: "id"))))
        }
        switch try remove([id], account: account, region: input.query.region) {
        case .removed(let removal): return .ok(.init(body: .json(removal)))
        case .notFound: return .notFound(.init(body: .json(Self.notFound(id, account: account, region: input.query.region))))
        }
    }

    /// Several tokens in one transaction: all or none, and one signing of the revocation list
    /// (`regtoken token-rm` with several ids sends this, so a failure half-way cannot leave some
    /// removed and some not).
    func removeTokens(_ input: Operations.RemoveTokens.Input) async throws -> Operations.RemoveTokens.Output {
        let account = try account
        guard case .json(let request) = input.body else { return .badRequest(.init(body: .json(Self.error(.invalidInput, "a JSON body is needed")))) }
        if let problem = Self.check(region: request.region) { return .badRequest(.init(body: .json(problem))) }
        let maximum = Components.Schemas.TokenRemoval.maximumIDs
        guard (1...maximum).contains(request.ids.count) else {
            return .badRequest(.init(body: .json(Self.error(.invalidInput, "ids must list 1 to \(maximum) token identifiers", field: "ids"))))
        }
        var ids: [UUIDBytes] = []
        var seen = Set<UUIDBytes>()
        for text in request.ids {
            guard let id = UUIDBytes(text) else {
                return .badRequest(.init(body: .json(Self.error(.invalidInput, "\(Self.printable(text)) is not a token identifier (a UUID)", field: "ids"))))
            }
            if seen.insert(id).inserted { ids.append(id) }
        }
        switch try remove(ids, account: account, region: request.region) {
        case .removed(let removal): return .ok(.init(body: .json(removal)))
        case .notFound(let why): return .notFound(.init(body: .json(Self.error(.notFound, why))))
        }
    }

    private enum RemovalOutcome {
        case removed(Components.Schemas.Removal)
        /// One of the ids is not the account's in the region: nothing was removed.
        case notFound(String)
    }

    /// Removes `ids` in one transaction (all or none); the revocation list is signed again
    /// before this returns.
    private func remove(_ ids: [UUIDBytes], account: String, region: String) throws(LedgerError) -> RemovalOutcome {
        let now = self.now()
        do {
            let (removed, version) = try issuer.withHome { home throws(LedgerError) in
                (try home.removeTokens(ids, account: account, region: region, now: now), try home.ledger.revocationList().version)
            }
            let revoked = removed.filter { $0.expiresAt.map { $0 > now } ?? true }
            return .removed(.init(removed: removed.map(\.id.description), revoked: revoked.map(\.id.description),
                                  revocationListVersion: Int64(version)))
        } catch where error.code == .notFound {
            return .notFound(error.reason)
        }
    }

    static func notFound(_ id: UUIDBytes, account: String, region: String) -> Err {
        error(.notFound, "no token \(id) for account \(account) in region \(printable(region))")
    }

    /// A region as the issuer accepts it: 1 to 64 of `A-Z a-z 0-9 . _ @ -`.
    static func check(region: String) -> Err? {
        let ok = !region.isEmpty && region.utf8.count <= 64 && region.utf8.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x2E || c == 0x5F || c == 0x40 || c == 0x2D
        }
        return ok ? nil : error(.invalidInput, "region must be 1 to 64 of A-Z a-z 0-9 . _ @ -", field: "region")
    }

    /// Text from a request for an error message: visible ASCII only, at most 64 bytes.
    static func printable(_ s: String) -> String {
        String(decoding: s.utf8.prefix(64).map { ($0 >= 0x20 && $0 < 0x7F) ? $0 : UInt8(ascii: "?") }, as: UTF8.self)
    }

    static func token(_ r: TokenRecord, value: String?) -> Components.Schemas.Token {
        let scope: Components.Schemas.Token.ScopePayload
        switch r.scope {
        case .pull: scope = .pull
        case .pushPull: scope = .pull_comma_push
        case .pushPullDelete: scope = .pull_comma_push_comma_delete
        }
        return .init(id: r.id.description, token: value, account: r.account, region: r.region, readonly: r.isReadOnly, scope: scope,
                     description: r.description, created: Durations.utc(r.createdAt), expires: r.expiresAt.map(Durations.utc),
                     namespaces: r.namespaces, repositories: r.repositories?.map(\.description), allowFrom: r.allowFrom?.map(\.description),
                     keyId: r.keyID)
    }

    // MARK: Verifiers

    func getJWKS(_ input: Operations.GetJWKS.Input) async throws -> Operations.GetJWKS.Output {
        let json = try issuer.jwks()
        let jwks = try JSONDecoder().decode(Components.Schemas.Jwks.self, from: Data(json.utf8))
        return .ok(.init(headers: .init(cacheControl: "public, max-age=60"), body: .json(jwks)))
    }

    func getRevocations(_ input: Operations.GetRevocations.Input) async throws -> Operations.GetRevocations.Output {
        let document = try issuer.revocations()
        if input.headers.ifNoneMatch == document.etag { return .notModified(.init(headers: .init(eTag: document.etag))) }
        return .ok(.init(headers: .init(eTag: document.etag, cacheControl: "no-cache"), body: .applicationJose(HTTPBody(document.bytes))))
    }

    func getNamespaces(_ input: Operations.GetNamespaces.Input) async throws -> Operations.GetNamespaces.Output {
        let document = try issuer.namespaces()
        if input.headers.ifNoneMatch == document.etag { return .notModified(.init(headers: .init(eTag: document.etag))) }
        return .ok(.init(headers: .init(eTag: document.etag, cacheControl: "no-cache"), body: .applicationJose(HTTPBody(document.bytes))))
    }

    // MARK: Token server

    func getRegistryToken(_ input: Operations.GetRegistryToken.Input) async throws -> Operations.GetRegistryToken.Output {
        typealias Docker = Components.Schemas.DockerErrors
        func errors(_ code: String, _ message: String) -> Docker {
            Docker(errors: [.init(code: code, message: message)])
        }
        guard let server = tokenServer else {
            return .notFound(.init(body: .json(errors("UNSUPPORTED", "this service is not a token server (regtoken serve --token-service)"))))
        }
        // Credentials first: nothing about the service or scopes is said to an anonymous client.
        let token: [UInt8]
        switch Credentials.parse(RequestScope.authorization) {
        case .none:
            return .unauthorized(.init(headers: .init(wwwAuthenticate: "Basic realm=\"regtoken\""),
                                       body: .json(errors("UNAUTHORIZED", "log in with user 'token' and a regtoken token as password"))))
        case .unusable(let why):
            return .unauthorized(.init(headers: .init(wwwAuthenticate: "Basic realm=\"regtoken\""), body: .json(errors("UNAUTHORIZED", why))))
        case .token(let t): token = t
        }
        let offline = input.query.offlineToken?.lowercased() == "true"
        switch try registryToken(.token(token), scopeParameters: input.query.scope ?? [], service: input.query.service, offline: offline, server: server) {
        case .refused(let message):
            return .unauthorized(.init(headers: .init(wwwAuthenticate: "Basic realm=\"regtoken\""), body: .json(errors("UNAUTHORIZED", message))))
        case .badScope(let message), .wrongService(let message):
            return .badRequest(.init(body: .json(errors("UNSUPPORTED", message))))
        case .signed(let signed):
            return .ok(.init(headers: .init(cacheControl: "no-store"), body: .json(signed.answer(oauth: false))))
        }
    }

    func postRegistryToken(_ input: Operations.PostRegistryToken.Input) async throws -> Operations.PostRegistryToken.Output {
        typealias OAuth = Components.Schemas.OAuthError
        func bad(_ error: String, _ description: String) -> Operations.PostRegistryToken.Output {
            .badRequest(.init(body: .json(OAuth(error: error, errorDescription: description))))
        }
        guard let server = tokenServer else {
            return .notFound(.init(body: .json(OAuth(error: "invalid_request", errorDescription: "this service is not a token server (regtoken serve --token-service)"))))
        }
        guard case .urlEncodedForm(let form) = input.body else { return bad("invalid_request", "send the parameters as application/x-www-form-urlencoded") }
        // The credential first, as for GET: nothing about the service or scopes is said without one.
        let presented: PresentedCredential
        switch form.grantType {
        case "password":
            guard let password = form.password, !password.isEmpty else { return bad("invalid_request", "the password grant needs username 'token' and a regtoken token as password") }
            guard form.username == "token" else { return bad("invalid_grant", "log in with the user name 'token' and a regtoken token as password") }
            presented = .token(Array(password.utf8))
        case "refresh_token":
            guard let refresh = form.refreshToken, !refresh.isEmpty else { return bad("invalid_request", "the refresh_token grant needs a refresh_token") }
            presented = .refresh(Array(refresh.utf8))
        default:
            return bad("unsupported_grant_type", "grant_type must be password or refresh_token")
        }
        let offline: Bool
        switch form.accessType {
        case nil, "online": offline = false
        case "offline": offline = form.grantType == "password"
        default: return bad("invalid_request", "access_type must be online or offline")
        }
        switch try registryToken(presented, scopeParameters: form.scope ?? [], service: form.service, offline: offline, server: server) {
        case .refused(let message): return bad("invalid_grant", message)
        case .badScope(let message): return bad("invalid_scope", message)
        case .wrongService(let message): return bad("invalid_request", message)
        case .signed(let signed):
            return .ok(.init(headers: .init(cacheControl: "no-store"), body: .json(signed.answer(oauth: true))))
        }
    }

    /// What a client presents to the token server: a regtoken token (Basic password or the
    /// password grant), or a refresh token from an earlier answer.
    enum PresentedCredential {
        case token([UInt8])
        case refresh([UInt8])
    }

    struct SignedRegistryToken {
        var token: String
        var issuedAt: Int64
        var expiresAt: Int64
        var refreshToken: String?
        var granted: [RegistryScope]

        func answer(oauth: Bool) -> Components.Schemas.RegistryToken {
            .init(token: token, accessToken: token, expiresIn: Int(expiresAt - issuedAt), issuedAt: Durations.utc(issuedAt),
                  refreshToken: refreshToken, scope: oauth ? granted.map(\.description).joined(separator: " ") : nil)
        }
    }

    enum RegistryAnswer {
        /// The credential is refused (the reason, never the value).
        case refused(String)
        case badScope(String)
        case wrongService(String)
        case signed(SignedRegistryToken)
    }

    /// The token server's work for both methods, in one look at the home: the credential first
    /// (refused: 401 or `invalid_grant`), then what it asks for (a scope that does not parse,
    /// another service: 400), then the registry JWT, and a refresh token when asked.
    func registryToken(_ presented: PresentedCredential, scopeParameters: [String], service: String, offline: Bool, server: TokenServer) throws -> RegistryAnswer {
        let now = self.now()
        var scopes: [RegistryScope] = []
        var badScope: RequestError? = nil
        do {
            for parameter in scopeParameters { scopes += try RegistryScope.parse(parameter) }
        } catch {
            badScope = error
        }
        let asked = badScope == nil ? scopes : []
        // The requester, for tokens limited to addresses: the peer, or behind trusted proxies the client they name.
        let client = ClientAddress.resolve(peer: IPAddress(RequestScope.clientAddress), forwardedFor: RequestScope.forwardedFor,
                                           trusted: server.trustedProxies)
        // Under the home lock only what needs the home: the snapshot (current or rebuilt) and, for
        // a refresh token, the token behind it. The verifications and signatures run outside it.
        let looked = try issuer.withHome { home throws(LedgerError) -> (RegistryGrantState.Snapshot, Result<[UInt8], RefreshRefused>) in
            let snapshot = try issuer.grantState.snapshot(home: home, server: server)
            switch presented {
            case .token(let token): return (snapshot, .success(token))
            case .refresh(let refresh): return (snapshot, try home.tokenBehind(refreshToken: refresh, server: server, now: now))
            }
        }
        let (snapshot, token) = looked
        let grant: ScopeGrant
        switch token {
        case .failure(let refused): return .refused(refused.message)
        case .success(let token): grant = snapshot.grant(token: token, scopes: asked, client: client, region: server.region, now: now)
        }
        switch grant {
        case .refused(let denied): return .refused(denied.message)
        case .granted(let account, let tokenID, let access):
            if let badScope { return .badScope(badScope.reason) }
            guard service == server.service else {
                return .wrongService("service '\(Self.printable(service))' is not the one this token server signs for")
            }
            let (jwt, expiresAt) = try snapshot.signRegistryToken(account: account, access: access, now: now)
            let refresh = offline ? try snapshot.signRefreshToken(tokenID: tokenID, account: account, service: server.service, now: now) : nil
            return .signed(SignedRegistryToken(token: jwt, issuedAt: now, expiresAt: expiresAt, refreshToken: refresh, granted: access))
        }
    }

    // MARK: Health

    func getHealth(_ input: Operations.GetHealth.Input) async throws -> Operations.GetHealth.Output {
        .ok(.init(body: .plainText(HTTPBody("ok\n"))))
    }

    func getReadiness(_ input: Operations.GetReadiness.Input) async throws -> Operations.GetReadiness.Output {
        if let problem = issuer.readiness() { return .serviceUnavailable(.init(body: .plainText(HTTPBody("not ready: \(problem)\n")))) }
        return .ok(.init(body: .plainText(HTTPBody("ready\n"))))
    }
}
