import RegToken

/// Signs the short-lived JWT a stock registry (distribution's `auth: token`) accepts: ES256, with
/// the header `{"typ":"JWT","alg":"ES256","kid":<libtrust fingerprint>}` that distribution 2.8
/// finds its key by in its `rootcertbundle`, and the claims `iss`, `sub`, `aud` (the service, a
/// string), `exp`, `nbf`, `iat`, `jti` and `access`.
///
/// Its lifetime bounds how long a removed regtoken token keeps working at such a registry: the
/// registry checks only this JWT, which nothing revokes.
public struct RegistryTokenIssuer: Sendable {
    /// The default lifetime of a registry token: 5 minutes.
    public static let defaultLifetime: Int64 = 300

    let key: SigningKey
    let header: [UInt8]
    /// The `iss` claim; the registry's `auth.token.issuer` must be the same.
    public let issuer: String
    /// The `aud` claim; the registry's `auth.token.service` must be the same.
    public let service: String
    /// Seconds from issue to `exp`.
    public let lifetime: Int64

    /// - Parameters:
    ///   - key: an ES256 key that can sign (its certificate goes in the registry's `rootcertbundle`).
    ///   - issuer: the `iss` claim.
    ///   - service: the `aud` claim.
    ///   - lifetime: seconds from issue to expiry, 1 s to 1 hour.
    /// - Throws: `KeyError` when the key is not an ES256 key that can sign.
    public init(key: SigningKey, issuer: String, service: String, lifetime: Int64 = defaultLifetime) throws(KeyError) {
        guard key.algorithm == .es256, key.canSign else {
            throw KeyError(.cannotSign, "a registry token needs an ES256 key that can sign; key '\(key.id)' is not one")
        }
        self.key = key
        self.issuer = issuer
        self.service = service
        self.lifetime = min(max(lifetime, 1), 3600)
        var w = JSONWriter()
        w.raw("{\"typ\":\"JWT\",\"alg\":\"ES256\",\"kid\":")
        w.string(try key.libtrustKeyID())
        w.raw("}")
        header = w.bytes
    }

    /// A registry token for `subject` (the account) granting `access`, issued at `now`.
    /// - Returns: the compact JWT and its expiry (seconds since 1970).
    public func issue(subject: String, access: [RegistryScope], now: Int64) throws(KeyError) -> (token: String, expiresAt: Int64) {
        let expiresAt = now + lifetime
        var w = JSONWriter()
        w.raw("{\"iss\":")
        w.string(issuer)
        w.raw(",\"sub\":")
        w.string(subject)
        w.raw(",\"aud\":")
        w.string(service)
        w.raw(",\"exp\":\(expiresAt),\"nbf\":\(now),\"iat\":\(now),\"jti\":")
        w.string(UUIDBytes.random().description)
        w.raw(",\"access\":[")
        for (i, scope) in access.enumerated() {
            if i > 0 { w.raw(",") }
            w.raw("{\"type\":")
            w.string(scope.type)
            w.raw(",\"name\":")
            w.string(scope.name)
            w.raw(",\"actions\":[")
            for (j, action) in scope.actions.enumerated() {
                if j > 0 { w.raw(",") }
                w.string(action)
            }
            w.raw("]}")
        }
        w.raw("]}")
        return (try JWS.sign(header: header, payload: w.bytes, key: key), expiresAt)
    }
}
