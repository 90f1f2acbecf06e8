import FoundationEssentials
import RegToken

/// A token server's refresh token: what OAuth2 calls `refresh_token` and docker stores as the
/// registry's identity token instead of the password, so that a regtoken token need not be kept
/// on the client after `docker login`.
///
/// It is a JWS (header `typ` `regtoken-refresh+jwt`) signed by the service's active key over
/// `{"tid":<token id>,"sub":<account>,"aud":<service>,"iat":<issued>}`. It carries no rights of
/// its own: each use looks the regtoken token up by its id and grants what that token would, so
/// a removed, expired or revoked token ends its refresh tokens at their next use. It lives as
/// long as its token and as long as the key that signed it stays in the ring.
///
/// Neither the proxy nor the verifier takes it for a token (their `typ` is `JWT`), and no token
/// passes for it.
public struct RegistryRefreshToken: Sendable, Equatable {
    /// The `typ` of its JWS header.
    public static let jwsType = "regtoken-refresh+jwt"

    /// The regtoken token it refreshes.
    public let tokenID: UUIDBytes
    /// That token's account.
    public let account: String
    /// The registry service it was issued for; it works only there.
    public let service: String
    /// When it was issued (seconds since 1970).
    public let issuedAt: Int64

    public init(tokenID: UUIDBytes, account: String, service: String, issuedAt: Int64) {
        self.tokenID = tokenID
        self.account = account
        self.service = service
        self.issuedAt = issuedAt
    }

    private struct Payload: Codable {
        var tid: String
        var sub: String
        var aud: String
        var iat: Int64
    }

    /// The compact JWS, signed by `key`.
    public func signed(with key: SigningKey) throws(KeyError) -> String {
        var w = JSONWriter()
        w.raw("{\"tid\":")
        w.string(tokenID.description)
        w.raw(",\"sub\":")
        w.string(account)
        w.raw(",\"aud\":")
        w.string(service)
        w.raw(",\"iat\":\(issuedAt)}")
        return try JWS.sign(payload: w.bytes, key: key, type: Self.jwsType)
    }

    /// What a presented refresh token turned out to be.
    public enum Verification: Sendable, Equatable {
        case valid(RegistryRefreshToken)
        /// Not one of ours for this service; the reason says why (never the value).
        case invalid(String)
    }

    /// Verifies `value` with the key its `kid` names in `keys`, and that it was issued for `service`.
    public static func verify(_ value: [UInt8], keys: KeyRing, service: String) -> Verification {
        guard value.count <= 4096 else { return .invalid("the refresh token is too long") }
        let verified: JWS.Verified
        do { verified = try JWS.verify(value, keys: keys) } catch {
            return .invalid("the refresh token does not verify (\(error.reason))")
        }
        guard verified.type == jwsType else { return .invalid("not a refresh token (a token goes in the password)") }
        guard let payload = try? JSONDecoder().decode(Payload.self, from: Data(verified.payload)),
              let id = UUIDBytes(payload.tid) else {
            return .invalid("the refresh token's claims are malformed")
        }
        guard payload.aud == service else { return .invalid("the refresh token is for another service") }
        return .valid(RegistryRefreshToken(tokenID: id, account: payload.sub, service: payload.aud, issuedAt: payload.iat))
    }
}
