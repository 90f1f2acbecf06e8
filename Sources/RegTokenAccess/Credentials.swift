import FoundationEssentials

/// The token carried by an `Authorization` header: `Basic base64(token:<token>)`, as
/// `docker login -u token -p <token>` sends it, or `Bearer <token>`.
public enum Credentials: Sendable, Equatable {
    /// The token's bytes: the password of `Basic` credentials for the user `token`, or the `Bearer` value.
    case token([UInt8])
    /// No `Authorization` header (or skopeo's empty `Basic Og==`): the client must log in.
    case none
    /// A header that carries no usable token; the reason says why.
    case unusable(String)

    /// Parses the values of every `Authorization` header of a request.
    public static func parse(_ values: [String]) -> Credentials {
        guard let value = values.first else { return .none }
        guard values.count == 1 else { return .unusable("several Authorization headers") }
        // One trimmed copy; the scheme and the credentials are slices of it (a token-long value
        // is parsed per proxied request).
        let trimmed = value.trimmingSpacesAndTabs
        let space = trimmed.utf8.firstIndex(of: UInt8(ascii: " ")) ?? trimmed.endIndex
        let scheme = String(trimmed[..<space]).asciiLowercased
        var rest = trimmed[space...].utf8
        while let c = rest.first, c == UInt8(ascii: " ") || c == UInt8(ascii: "\t") { rest.removeFirst() }
        switch scheme {
        case "basic":
            guard rest.count <= 16384, let decoded = Data(base64Encoded: String(Substring(rest))) else {
                return .unusable("Basic credentials are not valid base64")
            }
            guard let colon = decoded.firstIndex(of: UInt8(ascii: ":")) else {
                return .unusable("Basic credentials have no ':' between user and password")
            }
            let user = decoded[..<colon]
            let password = decoded[(colon + 1)...]
            if user.isEmpty && password.isEmpty { return .none }
            guard user.elementsEqual("token".utf8) else {
                return .unusable("log in with the user name 'token' and a token as password")
            }
            guard !password.isEmpty else { return .unusable("the password (the token) is empty") }
            return .token(Array(password))
        case "bearer":
            guard !rest.isEmpty else { return .unusable("the Bearer token is empty") }
            return .token(Array(rest))
        default:
            return .unusable("use Basic (user 'token') or Bearer credentials")
        }
    }
}

