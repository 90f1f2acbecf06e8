import AsyncHTTPClient
import Foundation
import HTTPTypes
import NIOCore
import NIOSSL
import OpenAPIAsyncHTTPClient
import OpenAPIRuntime
import RegToken
import RegTokenAPI
import RegTokenLedger
import RegTokenProxy

/// The command line as a client of `regtoken serve`, through the client generated from
/// `openapi.yaml`. Active when `REGTOKEN_SERVER` is set (with `REGTOKEN_API_KEY`, for CI jobs),
/// or after `regtoken login`; the token commands then print exactly what local mode prints.
struct Remote {
    let url: String
    let client: Client
    let http: HTTPClient

    /// The service to use, if any: the environment first, then the home's config.
    static func configured(_ global: GlobalOptions) throws -> Remote? {
        let env = global.environment
        if let server = env["REGTOKEN_SERVER"], !server.isEmpty {
            guard let key = env["REGTOKEN_API_KEY"], !key.isEmpty else {
                throw CLIError("REGTOKEN_SERVER is set but REGTOKEN_API_KEY is not: give the API key too", exit: .invalidInput)
            }
            return try Remote(url: server, apiKey: key, ca: env["REGTOKEN_SERVER_CA"])
        }
        let config = try cli { try HomeConfig.peek(home: Home.resolvePath(explicit: global.home, environment: env)) }
        guard let server = config.server else { return nil }
        guard let key = config.apiKey else { throw CLIError("logged in to \(server) without an API key: run regtoken login again", exit: .failure) }
        return try Remote(url: server, apiKey: key, ca: config.serverCA)
    }

    init(url: String, apiKey: String, ca: String?) throws {
        guard let serverURL = URL(string: url), let scheme = serverURL.scheme?.lowercased(), scheme == "http" || scheme == "https",
              serverURL.host != nil else {
            throw CLIError("the service URL must be http(s)://HOST[:PORT], not '\(url.prefix(80))'", exit: .invalidInput)
        }
        var configuration = HTTPClient.Configuration(tlsConfiguration: try ProxyTLS.clientConfiguration(caFile: ca), redirectConfiguration: .disallow,
                                                     timeout: .init(connect: .seconds(10), read: .seconds(60)))
        configuration.httpVersion = .http1Only
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        self.url = url
        client = Client(serverURL: serverURL, transport: AsyncHTTPClientTransport(configuration: .init(client: http, timeout: .seconds(60))),
                        middlewares: [Bearer(key: apiKey)])
    }

    /// Closes the connections (before the client goes away).
    func shutdown() async {
        try? await http.shutdown()
    }

    /// Runs `body` with the configured service, if there is one, and closes its connections
    /// afterwards; false (and `body` not run) in local mode.
    static func session(_ global: GlobalOptions, _ body: (Remote) async throws -> Void) async throws -> Bool {
        guard let remote = try configured(global) else { return false }
        do {
            try await body(remote)
            await remote.shutdown()
            return true
        } catch {
            await remote.shutdown()
            throw error
        }
    }

    /// Runs `body` against the service, mapping failures to the command line's errors.
    func run<T>(_ body: (Client) async throws -> T) async throws -> T {
        do {
            return try await body(client)
        } catch let error as CLIError {
            throw error
        } catch let error as ClientError {
            guard let status = error.response?.status.code else {
                throw CLIError("cannot reach the service at \(url): \(Self.describe(error.underlyingError))")
            }
            // Something answered, with what this regtoken's API does not have there: an older
            // service (Go's plain 404 for a path it lacks), or not a regtoken service at all.
            if error.operationID == "removeTokens" && status == 404 {
                throw Self.olderService
            }
            throw CLIError("the service at \(url) answered \(status) with something this regtoken cannot read (\(Self.describe(error.underlyingError))): is it a regtoken service, as recent as this command?")
        } catch {
            throw CLIError("cannot reach the service at \(url): \(Self.describe(error))")
        }
    }

    static let olderService = CLIError("the service does not remove tokens the way this regtoken does (POST /v1/token-removals): upgrade the service")

    static func describe(_ error: any Error) -> String {
        SystemErrorText.describe(error)
    }

    /// An error answer of the service as the command line's error (same exit codes).
    static func failure(_ status: Int, _ body: Components.Schemas._Error?) -> CLIError {
        let message = body?.message ?? "the service answered \(status)"
        switch body?.code {
        case .invalidInput?, .forbidden?: return CLIError(message, exit: .invalidInput)
        case .notFound?: return CLIError(message, exit: .notFound)
        case .unauthorized?: return CLIError("\(message)", exit: .failure)
        default: return CLIError(message, exit: status == 400 ? .invalidInput : (status == 404 ? .notFound : .failure))
        }
    }

    static func record(_ t: Components.Schemas.Token) throws -> TokenRecord {
        guard let id = UUIDBytes(t.id), let scope = Scope(rawValue: t.scope.rawValue),
              let created = Durations.parseUTC(t.created) else {
            throw CLIError("the service sent a token this command cannot read")
        }
        return TokenRecord(id: id, account: t.account, region: t.region, scope: scope, description: t.description, createdAt: created,
                           expiresAt: t.expires.flatMap(Durations.parseUTC), keyID: t.keyId, namespaces: t.namespaces,
                           repositories: try t.repositories?.map { text in
                               guard let rule = RepositoryRule(claim: text) else { throw CLIError("the service sent a repository rule this command cannot read") }
                               return rule
                           },
                           allowFrom: try t.allowFrom?.map { text in
                               guard let range = AddressRange(text) else { throw CLIError("the service sent an address range this command cannot read") }
                               return range
                           })
    }

    static func issued(_ t: Components.Schemas.Token) throws -> IssuedToken {
        guard let value = t.token else { throw CLIError("the service sent no token value") }
        return IssuedToken(record: try record(t), value: value)
    }

    // MARK: Operations

    func account() async throws -> (name: String, namespaces: [String]) {
        try await run { client in
            switch try await client.getAccount() {
            case .ok(let ok): let a = try ok.body.json; return (a.name, a.namespaces)
            case .unauthorized(let r): throw Self.failure(401, try? r.body.json)
            case .tooManyRequests(let r): throw Self.failure(429, try? r.body.json)
            case .undocumented(let status, _): throw Self.failure(status, nil)
            }
        }
    }

    func create(_ request: Components.Schemas.TokenRequest) async throws -> IssuedToken {
        try await run { client in
            switch try await client.createToken(body: .json(request)) {
            case .created(let r): return try Self.issued(try r.body.json)
            case .badRequest(let r): throw Self.failure(400, try? r.body.json)
            case .unauthorized(let r): throw Self.failure(401, try? r.body.json)
            case .forbidden(let r): throw Self.failure(403, try? r.body.json)
            case .contentTooLarge(let r): throw Self.failure(413, try? r.body.json)
            case .tooManyRequests(let r): throw Self.failure(429, try? r.body.json)
            case .undocumented(let status, _): throw Self.failure(status, nil)
            }
        }
    }

    func list(region: String) async throws -> [TokenRecord] {
        try await run { client in
            switch try await client.listTokens(query: .init(region: region)) {
            case .ok(let r): return try r.body.json.tokens.map(Self.record)
            case .badRequest(let r): throw Self.failure(400, try? r.body.json)
            case .unauthorized(let r): throw Self.failure(401, try? r.body.json)
            case .tooManyRequests(let r): throw Self.failure(429, try? r.body.json)
            case .undocumented(let status, _): throw Self.failure(status, nil)
            }
        }
    }

    func get(_ id: UUIDBytes, region: String) async throws -> IssuedToken {
        try await run { client in
            switch try await client.getToken(path: .init(id: id.description), query: .init(region: region)) {
            case .ok(let r): return try Self.issued(try r.body.json)
            case .badRequest(let r): throw Self.failure(400, try? r.body.json)
            case .unauthorized(let r): throw Self.failure(401, try? r.body.json)
            case .notFound(let r): throw Self.failure(404, try? r.body.json)
            case .tooManyRequests(let r): throw Self.failure(429, try? r.body.json)
            case .undocumented(let status, _): throw Self.failure(status, nil)
            }
        }
    }

    /// Removes `ids` in one request: all or none (`POST /v1/token-removals`).
    func remove(_ ids: [UUIDBytes], region: String) async throws -> Components.Schemas.Removal {
        let maximum = Components.Schemas.TokenRemoval.maximumIDs
        guard ids.count <= maximum else {
            throw CLIError("give at most \(maximum) token identifiers at a time through a service", exit: .invalidInput)
        }
        return try await run { client in
            switch try await client.removeTokens(body: .json(.init(region: region, ids: ids.map(\.description)))) {
            case .ok(let r): return try r.body.json
            case .badRequest(let r): throw Self.failure(400, try? r.body.json)
            case .unauthorized(let r): throw Self.failure(401, try? r.body.json)
            case .notFound(let r):
                // No error document: a service older than this client, without token-removals.
                guard let error = try? r.body.json else { throw Self.olderService }
                throw Self.failure(404, error)
            case .contentTooLarge(let r): throw Self.failure(413, try? r.body.json)
            case .tooManyRequests(let r): throw Self.failure(429, try? r.body.json)
            case .undocumented(let status, _): throw Self.failure(status, nil)
            }
        }
    }
}

/// Sends the API key with every request.
struct Bearer: ClientMiddleware {
    let key: String

    func intercept(_ request: HTTPRequest, body: HTTPBody?, baseURL: URL, operationID: String,
                   next: @Sendable (HTTPRequest, HTTPBody?, URL) async throws -> (HTTPResponse, HTTPBody?)) async throws -> (HTTPResponse, HTTPBody?) {
        var request = request
        request.headerFields[.authorization] = "Bearer \(key)"
        return try await next(request, body, baseURL)
    }
}
