import FoundationEssentials
import HTTPTypes
import Hummingbird
import Logging
import OpenAPIRuntime
import RegTokenAPI
import RegTokenLedger

/// The operations that need an account's API key (every other one is public).
let authenticatedOperations: Set<String> = ["getAccount", "createToken", "listTokens", "getToken", "deleteToken", "removeTokens"]

/// Checks the API key of the operations that need one, and turns every error of the generated
/// layer (a body that does not decode: unknown field, wrong type, missing member; a missing
/// parameter; a wrong content type) into a 400 with the project's JSON error naming the field.
///
/// Authentication: `Authorization: Bearer <API key>`. No key or a wrong one: 401 with
/// `WWW-Authenticate: Bearer`, counted against the client's address; past the limit the address
/// gets 429 with `Retry-After` until its window ends, whatever it sends. The key is never
/// logged or echoed.
struct APIMiddleware: ServerMiddleware {
    let issuer: Issuer
    let now: @Sendable () -> Int64
    let logger: Logger

    func intercept(_ request: HTTPRequest, body: HTTPBody?, metadata: ServerRequestMetadata, operationID: String,
                   next: @Sendable (HTTPRequest, HTTPBody?, ServerRequestMetadata) async throws -> (HTTPResponse, HTTPBody?)) async throws -> (HTTPResponse, HTTPBody?) {
        if authenticatedOperations.contains(operationID) {
            let address = RequestScope.clientAddress
            let t = now()
            if let wait = issuer.failures.blocked(address, now: t) {
                var response = Self.error(.tooManyRequests, .tooManyRequests, "too many failed authentications from this address; wait \(wait) s")
                response.0.headerFields[.retryAfter] = String(wait)
                return response
            }
            guard let account = try authenticated(request, now: t) else {
                issuer.failures.recordFailure(address, now: t)
                var response = Self.error(.unauthorized, .unauthorized, "a valid API key is needed: Authorization: Bearer <API key> (regtoken login)")
                response.0.headerFields[.wwwAuthenticate] = "Bearer realm=\"regtoken\""
                return response
            }
            return try await RequestScope.$account.withValue(account) {
                try await handle(request, body, metadata, operationID, next)
            }
        }
        if operationID == "getRegistryToken" || operationID == "postRegistryToken" {
            // Basic credentials with a regtoken token: the handler checks them (a token, not an API key).
            return try await RequestScope.$authorization.withValue(request.headerFields[values: .authorization]) {
                try await RequestScope.$forwardedFor.withValue(request.headerFields[values: HTTPField.Name("X-Forwarded-For")!]) {
                    try await handle(request, body, metadata, operationID, next)
                }
            }
        }
        return try await handle(request, body, metadata, operationID, next)
    }

    private func authenticated(_ request: HTTPRequest, now: Int64) throws -> String? {
        let values = request.headerFields[values: .authorization]
        guard values.count == 1, let value = values.first else { return nil }
        let parts = value.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        return try issuer.authenticate(String(parts[1]), now: now)
    }

    private func handle(_ request: HTTPRequest, _ body: HTTPBody?, _ metadata: ServerRequestMetadata, _ operationID: String,
                        _ next: @Sendable (HTTPRequest, HTTPBody?, ServerRequestMetadata) async throws -> (HTTPResponse, HTTPBody?)) async throws -> (HTTPResponse, HTTPBody?) {
        do {
            var (response, responseBody) = try await next(request, body, metadata)
            // The runtime percent-encodes header values: an entity tag's quotes must stay quotes.
            if let etag = response.headerFields[.eTag], etag.contains("%") {
                response.headerFields[.eTag] = etag.removingPercentEncoding ?? etag
            }
            return (response, responseBody)
        } catch let error as ServerError {
            if let ledger = error.underlyingError as? LedgerError {
                logger.error("storage failure", metadata: ["operation": "\(operationID)", "error": "\(ledger.reason)"])
                return Self.error(.internalServerError, .storage, "the service cannot use its storage now; try again")
            }
            if error.underlyingError is TooLarge {
                return Self.error(.contentTooLarge, .tooLarge, "the body is larger than 64 KiB")
            }
            let (message, field) = Self.describe(error.underlyingError)
            if operationID == "getRegistryToken" {
                // The token endpoint speaks distribution's error format, as its document says.
                return Self.dockerError(.badRequest, "UNSUPPORTED", message)
            }
            if operationID == "postRegistryToken" {
                // Its OAuth2 form speaks RFC 6749's.
                return Self.oauthError(.badRequest, "invalid_request", message)
            }
            return Self.error(.badRequest, .invalidInput, message, field: field)
        }
    }

    static func dockerError(_ status: HTTPResponse.Status, _ code: String, _ message: String) -> (HTTPResponse, HTTPBody?) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let errors = Components.Schemas.DockerErrors(errors: [.init(code: code, message: message)])
        var response = HTTPResponse(status: status)
        response.headerFields[.contentType] = "application/json; charset=utf-8"
        return (response, HTTPBody(Array((try? encoder.encode(errors)) ?? Data())))
    }

    static func oauthError(_ status: HTTPResponse.Status, _ error: String, _ description: String) -> (HTTPResponse, HTTPBody?) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var response = HTTPResponse(status: status)
        response.headerFields[.contentType] = "application/json; charset=utf-8"
        return (response, HTTPBody(Array((try? encoder.encode(Components.Schemas.OAuthError(error: error, errorDescription: description))) ?? Data())))
    }

    /// What was wrong with a request the generated layer could not read, and the field at fault.
    static func describe(_ error: any Error) -> (String, String?) {
        switch error {
        case DecodingError.keyNotFound(let key, let context):
            let field = (context.codingPath + [key]).map(\.stringValue).joined(separator: ".")
            return ("missing field \(field)", field)
        case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context):
            let field = context.codingPath.map(\.stringValue).joined(separator: ".")
            return ("field \(field.isEmpty ? "body" : field) has the wrong type", field.isEmpty ? nil : field)
        case DecodingError.dataCorrupted(let context):
            let field = printable(context.codingPath.map(\.stringValue).joined(separator: "."))
            // An unknown member: the runtime's strict decoding puts its name last in the path.
            if context.debugDescription.hasPrefix("Additional properties are disabled") {
                return ("unknown field \(field)", field)
            }
            return ("the body is not valid JSON for this request\(field.isEmpty ? "" : " (at \(field))")", field.isEmpty ? nil : field)
        default:
            let text = "\(error)"
            // Missing or malformed parameters and content types: the runtime's text names them.
            return (printable(String(text.prefix(200))), nil)
        }
    }

    static func printable(_ s: String) -> String { TokenAPI.printable(s) }

    static func error(_ status: HTTPResponse.Status, _ code: Components.Schemas._Error.CodePayload, _ message: String,
                      field: String? = nil) -> (HTTPResponse, HTTPBody?) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let body = (try? encoder.encode(Components.Schemas._Error(code: code, message: message, field: field))) ?? Data()
        var response = HTTPResponse(status: status)
        response.headerFields[.contentType] = "application/json; charset=utf-8"
        return (response, HTTPBody(Array(body)))
    }
}

/// Thrown when a request body is larger than the service takes.
struct TooLarge: Error {}

/// Before the API: bodies larger than ``limit`` get 413 (declared lengths at once, streamed ones
/// when they pass it); the client's address is made available to the API middleware.
struct GuardMiddleware<Context: ServiceRequestContextProtocol>: RouterMiddleware {
    let limit: Int

    /// The methods each path of the API answers: any other gets 405 with `Allow`.
    static var methods: [(prefix: String, exact: Bool, allowed: [HTTPRequest.Method])] { apiMethods }
}

let apiMethods: [(prefix: String, exact: Bool, allowed: [HTTPRequest.Method])] = [
        ("/v1/tokens", true, [.get, .post]), ("/v1/tokens/", false, [.get, .delete]), ("/v1/token-removals", true, [.post]), ("/v1/account", true, [.get]),
        ("/.well-known/jwks.json", true, [.get]), ("/v1/revocations", true, [.get]), ("/v1/namespaces", true, [.get]),
        ("/healthz", true, [.get]), ("/readyz", true, [.get]), ("/openapi.yaml", true, [.get]), ("/token", true, [.get, .post]),
]

extension GuardMiddleware {

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        if let route = Self.methods.first(where: { $0.exact ? path == $0.prefix : (path.hasPrefix($0.prefix) && path.count > $0.prefix.count && !path.dropFirst($0.prefix.count).contains("/")) }),
           !route.allowed.contains(request.method) {
            var headers = HTTPFields()
            headers[.allow] = route.allowed.map(\.rawValue).joined(separator: ", ")
            headers[.contentType] = "application/json; charset=utf-8"
            let body = "{\"code\":\"invalid_input\",\"message\":\"method \(TokenAPI.printable(request.method.rawValue)) is not allowed here\"}"
            return Response(status: .methodNotAllowed, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
        }
        if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > limit {
            return Self.tooLarge()
        }
        var request = request
        if request.method == .post || request.method == .put || request.method == .patch {
            do {
                let buffer = try await request.collectBody(upTo: limit)
                request.body = .init(buffer: buffer)
            } catch let error as HTTPError where error.status == .contentTooLarge {
                return Self.tooLarge()
            }
        }
        return try await RequestScope.$clientAddress.withValue(context.clientAddress) {
            try await next(request, context)
        }
    }

    static func tooLarge() -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let body = (try? encoder.encode(Components.Schemas._Error(code: .tooLarge, message: "the body is larger than 64 KiB"))) ?? Data()
        var headers = HTTPFields()
        headers[.contentType] = "application/json; charset=utf-8"
        headers[.connection] = "close"
        return Response(status: .contentTooLarge, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}

/// The access log: one line per request with method, path, status, account, client address and
/// latency. Never a header value, a body, a token or an API key; control bytes escaped.
struct AccessLogMiddleware<Context: ServiceRequestContextProtocol>: RouterMiddleware {
    let logger: Logger

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let started = ContinuousClock.now
        var status = 500
        defer {
            let elapsed = ContinuousClock.now - started
            let ms = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
            logger.info("access", metadata: [
                "method": "\(request.method.rawValue)", "path": "\(Self.escape(request.uri.path))", "status": "\(status)",
                "client": "\(context.clientAddress)", "latency_ms": "\((ms * 1000).rounded() / 1000)",
            ])
        }
        do {
            let response = try await next(request, context)
            status = response.status.code
            return response
        } catch let error as HTTPError {
            status = error.status.code
            throw error
        }
    }

    static func escape(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars.prefix(512) {
            if scalar.value < 0x20 || scalar.value == 0x7F || scalar == "\\" {
                out += "\\x" + (scalar.value < 0x10 ? "0" : "") + String(scalar.value, radix: 16)
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}

/// The request context: Hummingbird's, plus the client's address.
public protocol ServiceRequestContextProtocol: RequestContext {
    var clientAddress: String { get }
}

public struct ServiceRequestContext: ServiceRequestContextProtocol {
    public var coreContext: CoreRequestContextStorage
    public let clientAddress: String

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        clientAddress = source.channel.remoteAddress?.ipAddress ?? "unknown"
    }
}

