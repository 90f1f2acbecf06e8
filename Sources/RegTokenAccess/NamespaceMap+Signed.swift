import FoundationEssentials
import RegToken

/// The namespace map as `regtoken serve` publishes it at `/v1/namespaces`: a JWS (header `typ`
/// `regtoken-namespaces+jwt`), signed like the revocation list with the issuer's active key, whose
/// payload is `{"version":N,"iat":T,"namespaces":{"<namespace>":"<account>",...}}` with the
/// namespaces sorted. Proxies verify it with the issuer's public keys; versions only go up.
public struct SignedNamespaceMap: Sendable, Equatable {
    /// The `typ` of a signed namespace map's JWS header; tokens and revocation lists can never pass for one.
    public static let jwsType = "regtoken-namespaces+jwt"

    /// Which account owns each namespace.
    public let map: NamespaceMap
    /// Increases with every change; a proxy refuses a map older than the one in force.
    public let version: UInt64
    /// When this version was made, seconds since 1970.
    public let issuedAt: Int64

    /// A map of `owners` to sign, unchecked.
    /// - Parameters:
    ///   - owners: namespace → account.
    ///   - version: the map's version, larger than any published before.
    ///   - issuedAt: when this version was made, seconds since 1970.
    public init(owners: [String: String], version: UInt64, issuedAt: Int64) {
        map = NamespaceMap(owners: owners)
        self.version = version
        self.issuedAt = issuedAt
    }

    struct Payload: Codable {
        var version: UInt64
        var iat: Int64
        var namespaces: [String: String]
    }

    /// The signed document (a compact JWS and a newline).
    public func signed(with key: SigningKey) throws(KeyError) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let payload: Data
        do {
            payload = try encoder.encode(Payload(version: version, iat: issuedAt, namespaces: map.owners ?? [:]))
        } catch {
            throw KeyError(.crypto, "cannot encode the namespace map: \(error)")
        }
        return Array(try JWS.sign(payload: Array(payload), key: key, type: Self.jwsType).utf8) + [0x0A]
    }

    /// Verifies a signed map with `keys` and checks every name in it.
    /// - Throws: ``NamespaceMapError`` with code ``NamespaceMapError/ErrorCode/badSignature`` when
    ///   the JWS does not verify, ``NamespaceMapError/ErrorCode/malformed`` for anything else wrong.
    public init(signed bytes: [UInt8], keys: KeyRing) throws(NamespaceMapError) {
        guard bytes.count <= 16 << 20 else { throw NamespaceMapError(.malformed, "namespace map is larger than 16 MiB") }
        var compact = bytes[...]
        while let last = compact.last, last == 0x0A || last == 0x0D { compact.removeLast() }
        let verified: JWS.Verified
        do { verified = try JWS.verify(Array(compact), keys: keys) } catch {
            throw NamespaceMapError(.badSignature, "namespace map signature does not verify (\(error.code): \(error.reason))")
        }
        guard verified.type == Self.jwsType else {
            throw NamespaceMapError(.malformed, "not a namespace map (header typ is not \(Self.jwsType))")
        }
        let payload: Payload
        do { payload = try JSONDecoder().decode(Payload.self, from: Data(verified.payload)) } catch {
            throw NamespaceMapError(.malformed, "namespace map content is malformed")
        }
        guard payload.version <= RevocationList.maximumVersion else {
            throw NamespaceMapError(.malformed, "namespace map version is beyond the largest possible")
        }
        for (ns, account) in payload.namespaces {
            guard RegistryRequest.isNameComponent(ns), ns.utf8.count <= 255, TokenClaims.isNameComponent(account) || account.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
                throw NamespaceMapError(.malformed, "namespace map has an invalid name")
            }
        }
        self.init(owners: payload.namespaces, version: payload.version, issuedAt: payload.iat)
    }
}
