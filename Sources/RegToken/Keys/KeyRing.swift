internal import FoundationEssentials

/// Keys by key id: exactly one active for signing (on an issuer's ring), all of them for
/// verification. Immutable: build a new ring to change it, and hand it to a running
/// ``TokenVerifier`` with ``TokenVerifier/replaceKeys(_:)``.
public struct KeyRing: Sendable {
    /// Every key, in the order given.
    public let keys: [SigningKey]
    /// The key id that signs, or `nil` for a verification-only ring.
    public let activeKeyID: String?

    /// A ring of `keys` that signs with the key `activeKeyID` names, if any.
    /// - Parameters:
    ///   - keys: every key, each with its own id.
    ///   - activeKeyID: the id of the key that signs, or `nil` for a verification-only ring.
    /// - Throws: ``KeyError`` when two keys share an id, or the active id is not in the ring or
    ///   cannot sign.
    public init(keys: [SigningKey], activeKeyID: String? = nil) throws(KeyError) {
        var seen = Set<String>()
        for key in keys where !seen.insert(key.id).inserted {
            throw KeyError(.keyRing, "two keys have the id '\(key.id)'")
        }
        if let activeKeyID {
            guard let active = keys.first(where: { $0.id == activeKeyID }) else {
                throw KeyError(.keyRing, "the active key '\(activeKeyID)' is not in the key ring")
            }
            guard active.canSign else {
                throw KeyError(.cannotSign, "the active key '\(activeKeyID)' is a public key: it cannot sign")
            }
        }
        self.keys = keys
        self.activeKeyID = activeKeyID
    }

    /// The key that signs, if any.
    public var activeKey: SigningKey? {
        guard let activeKeyID else { return nil }
        return key(id: activeKeyID)
    }

    /// The key with this id, or `nil` when the ring has none.
    public func key(id: String) -> SigningKey? { keys.first { $0.id == id } }

    /// The ring a verifier that must not sign should hold: ES256 public keys only (HS256 secrets
    /// are dropped, since holding one is being able to sign).
    public func publicOnly() throws(KeyError) -> KeyRing {
        var out: [SigningKey] = []
        for key in keys {
            if let pub = try key.publicKey() { out.append(pub) }
        }
        return try KeyRing(keys: out)
    }

    /// The public keys as a JWKS (RFC 7517 §5) document: ES256 keys only, sorted by key id.
    public func jwksJSON() throws(KeyError) -> String {
        var jwks: [JWK] = []
        for key in keys.sorted(by: { $0.id < $1.id }) {
            if let jwk = try key.publicJWK() { jwks.append(jwk) }
        }
        return try Self.encode(JWKSet(keys: jwks))
    }

    /// `keys` (ES256) as the JWKS a registry reads (distribution 3's `auth.token.jwks`): each key's
    /// `kid` is its libtrust fingerprint, the `kid` of the registry tokens it signs.
    public static func registryJWKSJSON(_ keys: [SigningKey]) throws(KeyError) -> String {
        var jwks: [JWK] = []
        for key in keys {
            guard var jwk = try key.publicJWK() else { continue }
            jwk.kid = try key.libtrustKeyID()
            jwks.append(jwk)
        }
        return try encode(JWKSet(keys: jwks))
    }

    private static func encode(_ set: JWKSet) throws(KeyError) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        do {
            return String(decoding: try encoder.encode(set), as: UTF8.self) + "\n"
        } catch {
            throw KeyError(.crypto, "could not encode the JWKS: \(error)")
        }
    }

    /// A verification-only ring from a JWKS document (EC P-256 public keys).
    public init(jwksJSON: [UInt8]) throws(KeyError) {
        let set: JWKSet
        do {
            set = try JSONDecoder().decode(JWKSet.self, from: Data(jwksJSON))
        } catch {
            throw KeyError(.unreadable, "not a JWKS document (expected {\"keys\":[...]}): \(Self.describe(error))")
        }
        var keys: [SigningKey] = []
        for jwk in set.keys { keys.append(try SigningKey(jwk: jwk)) }
        try self.init(keys: keys)
    }

    static func describe(_ error: any Error) -> String {
        switch error {
        case DecodingError.dataCorrupted(let c): return c.debugDescription
        case DecodingError.keyNotFound(let k, _): return "missing '\(k.stringValue)'"
        case DecodingError.typeMismatch(_, let c): return "wrong type at '\(c.codingPath.map(\.stringValue).joined(separator: "."))'"
        case DecodingError.valueNotFound(_, let c): return "missing value at '\(c.codingPath.map(\.stringValue).joined(separator: "."))'"
        default: return "invalid JSON"
        }
    }
}

struct JWKSet: Codable {
    var keys: [JWK]
}
