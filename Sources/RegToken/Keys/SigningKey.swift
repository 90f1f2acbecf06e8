/// One key of a key ring: an HS256 secret, an ES256 private key, or an ES256 public key
/// (verification only). The key fixes the algorithm: a token whose header names another
/// algorithm is refused before any cryptography.
public struct SigningKey: Sendable {
    enum Material: Sendable {
        case hmac(HMACSecret)
        case p256(P256Key)
    }

    /// The key id (`kid`): 1 to 64 characters of `[A-Za-z0-9._-]`, not starting with `.`.
    public let id: String
    let material: Material

    /// The algorithm this key signs and verifies.
    public var algorithm: Algorithm {
        switch material {
        case .hmac: return .hs256
        case .p256: return .es256
        }
    }

    /// True when the key can sign (an HS256 secret or an ES256 private key).
    public var canSign: Bool {
        switch material {
        case .hmac: return true
        case .p256(let key): return key.hasPrivateKey
        }
    }

    /// The minimum HS256 secret length (RFC 7518 §3.2: at least the hash size).
    public static let minimumHMACSecretLength = 32

    /// Checks a key id: 1 to 64 characters of `[A-Za-z0-9._-]`, not starting with `.`.
    public static func validate(keyID: String) throws(KeyError) {
        let bytes = Array(keyID.utf8)
        let ok = !bytes.isEmpty && bytes.count <= ShortString.capacity && bytes[0] != UInt8(ascii: ".")
            && bytes.allSatisfy { b in
                (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A)
                    || b == UInt8(ascii: "-") || b == UInt8(ascii: "_") || b == UInt8(ascii: ".")
            }
        guard ok else {
            throw KeyError(.invalidKeyID, "invalid key id '\(keyID.prefix(80))': use 1 to 64 characters of A-Z a-z 0-9 . _ - (not starting with '.')")
        }
    }

    /// A new key id for `algorithm`: `hs256-` or `es256-` and 12 random hex digits.
    public static func newKeyID(for algorithm: Algorithm) -> String {
        let r = UUIDBytes.random()
        let hex = String(r.low & 0xFFFF_FFFF_FFFF, radix: 16)
        return "\(algorithm.rawValue.lowercased())-\(String(repeating: "0", count: 12 - hex.count))\(hex)"
    }

    /// A fresh random key: 32 random bytes for HS256, a new P-256 key pair for ES256.
    public static func generate(_ algorithm: Algorithm, id: String? = nil) throws(KeyError) -> SigningKey {
        let kid = id ?? newKeyID(for: algorithm)
        switch algorithm {
        case .hs256: return try SigningKey(id: kid, hmacSecret: OpenSSL.randomBytes(32))
        case .es256: return try SigningKey(id: kid, material: .p256(P256Key.generate()))
        }
    }

    init(id: String, material: Material) throws(KeyError) {
        try Self.validate(keyID: id)
        self.id = id
        self.material = material
    }

    /// An HS256 key from its secret (at least 32 bytes).
    public init(id: String, hmacSecret: [UInt8]) throws(KeyError) {
        guard hmacSecret.count >= Self.minimumHMACSecretLength else {
            throw KeyError(.invalidKey, "HS256 secret for key '\(id)' is \(hmacSecret.count) bytes; at least \(Self.minimumHMACSecretLength) are needed")
        }
        try self.init(id: id, material: .hmac(HMACSecret(hmacSecret)))
    }

    /// An ES256 key from PEM: a private key (PKCS#8 `PRIVATE KEY` or SEC1 `EC PRIVATE KEY`) or a
    /// public key (`PUBLIC KEY`). The curve must be P-256.
    public init(id: String, pem: String) throws(KeyError) {
        try self.init(id: id, material: .p256(P256Key.fromPEM(Array(pem.utf8))))
    }

    /// An ES256 public key from its uncompressed point (0x04 || X || Y).
    public init(id: String, publicPoint: [UInt8]) throws(KeyError) {
        try self.init(id: id, material: .p256(P256Key.fromPublicPoint(publicPoint)))
    }

    /// The verification-only form of this key: the public key for ES256; `nil` for HS256,
    /// whose secret both signs and verifies.
    public func publicKey() throws(KeyError) -> SigningKey? {
        switch material {
        case .hmac: return nil
        case .p256(let key): return try SigningKey(id: id, material: .p256(key.hasPrivateKey ? key.publicOnly() : key))
        }
    }

    /// The private key as PKCS#8 PEM (ES256), for writing a key file.
    public func privateKeyPEM() throws(KeyError) -> String {
        guard case .p256(let key) = material else { throw KeyError(.invalidKey, "key '\(id)' is HS256: it has no PEM form") }
        return String(decoding: try key.privatePEM(), as: UTF8.self)
    }

    /// The public key as PEM (SubjectPublicKeyInfo), ES256 only.
    public func publicKeyPEM() throws(KeyError) -> String {
        guard case .p256(let key) = material else { throw KeyError(.invalidKey, "key '\(id)' is HS256: it has no public key") }
        return String(decoding: try key.publicPEM(), as: UTF8.self)
    }

    /// The key id distribution 2.8 (docker-registry) gives this ES256 key's public key in its
    /// `rootcertbundle`, and so looks for in a token's `kid`: libtrust's fingerprint, the SHA-256 of
    /// the DER SubjectPublicKeyInfo cut to 30 bytes, in base32 without padding, as 12 groups of 4
    /// joined by `:` (`25ZR:PKRW:…`).
    public func libtrustKeyID() throws(KeyError) -> String {
        guard case .p256(let key) = material else { throw KeyError(.invalidKey, "key '\(id)' is HS256: a registry takes ES256 keys") }
        let digest = Digest.sha256(try key.publicKeyDER()).prefix(30)
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
        var text = ""
        var buffer: UInt64 = 0, bits = 0
        for byte in digest {
            buffer = (buffer << 8) | UInt64(byte)
            bits += 8
            while bits >= 5 {
                bits -= 5
                text.append(alphabet[Int((buffer >> UInt64(bits)) & 31)])
            }
        }
        // 30 bytes are 240 bits: 48 characters, no remainder.
        var groups: [Substring] = []
        var rest = Substring(text)
        while !rest.isEmpty { groups.append(rest.prefix(4)); rest = rest.dropFirst(4) }
        return groups.joined(separator: ":")
    }

    /// A self-signed X.509 certificate (PEM) of this ES256 key, for a registry's `rootcertbundle`:
    /// named `commonName`, valid from an hour ago for `days` days, signed with the key itself.
    public func selfSignedCertificatePEM(commonName: String, days: Int = 3650) throws(KeyError) -> String {
        guard case .p256(let key) = material else { throw KeyError(.invalidKey, "key '\(id)' is HS256: it has no certificate") }
        let serial = UInt64(bigEndian: Digest.sha256(Array(id.utf8)).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        return String(decoding: try key.selfSignedCertificatePEM(commonName: commonName, days: days, serial: serial), as: UTF8.self)
    }

    /// The HS256 secret bytes, for writing a key file. `nil` for ES256.
    public var hmacSecretBytes: [UInt8]? {
        guard case .hmac(let secret) = material else { return nil }
        return secret.bytes
    }

    /// The signature of `message` (JWS signing input) with this key.
    public func signature(for message: [UInt8]) throws(KeyError) -> [UInt8] {
        guard canSign else { throw KeyError(.cannotSign, "key '\(id)' is a public key: it cannot sign") }
        let result: Result<[UInt8], KeyError> = message.withUnsafeBytes { m in
            switch material {
            case .hmac(let secret): return .success(secret.mac(m))
            case .p256(let key): return Result { () throws(KeyError) in try key.sign(m) }
            }
        }
        return try result.get()
    }

    /// True when `signature` is this key's signature of `message`: for HS256 the full 32-byte MAC
    /// compared in constant time, for ES256 a 64-byte raw `r || s` (any valid S, high or low).
    public func isValidSignature(_ signature: [UInt8], for message: [UInt8]) -> Bool {
        signature.withUnsafeBytes { s in
            message.withUnsafeBytes { m in isValidSignature(s, for: m) }
        }
    }

    func isValidSignature(_ signature: UnsafeRawBufferPointer, for message: UnsafeRawBufferPointer) -> Bool {
        switch material {
        case .hmac(let secret): return signature.count == 32 && secret.isValidTag(signature, for: message)
        case .p256(let key): return key.isValidSignature(signature, for: message)
        }
    }
}

/// A JSON Web Key (RFC 7517) for an ES256 public key.
public struct JWK: Codable, Sendable, Hashable {
    /// The key type: `EC` for every key regtoken accepts.
    public var kty: String
    /// The curve: `P-256`.
    public var crv: String?
    /// The public point's X coordinate: 32 bytes, base64url.
    public var x: String?
    /// The public point's Y coordinate: 32 bytes, base64url.
    public var y: String?
    /// The private scalar, which regtoken never writes: ``SigningKey/init(jwk:)`` refuses a JWK that has one.
    public var d: String?
    /// The key id (`kid`); ``SigningKey/init(jwk:)`` requires it.
    public var kid: String?
    /// The algorithm: `ES256`, or absent.
    public var alg: String?
    /// What the key is for: `sig` (signatures), or absent; ``SigningKey/init(jwk:)`` refuses any other.
    public var use: String?
    /// RFC 7517 §4.3: what the key may be used for (`verify` is what a verifier needs).
    public var keyOps: [String]?

    enum CodingKeys: String, CodingKey {
        case kty, crv, x, y, d, kid, alg, use
        case keyOps = "key_ops"
    }

    /// A JWK with these members; a `nil` member is left out of the JSON.
    /// - Parameters:
    ///   - kty: the key type (`EC`).
    ///   - crv: the curve (`P-256`).
    ///   - x: the X coordinate, base64url.
    ///   - y: the Y coordinate, base64url.
    ///   - d: the private scalar, base64url (never for a published key).
    ///   - kid: the key id.
    ///   - alg: the algorithm (`ES256`).
    ///   - use: the key's use (`sig`).
    ///   - keyOps: the operations the key may be used for (`key_ops`).
    public init(kty: String, crv: String? = nil, x: String? = nil, y: String? = nil, d: String? = nil,
                kid: String? = nil, alg: String? = nil, use: String? = nil, keyOps: [String]? = nil) {
        self.kty = kty; self.crv = crv; self.x = x; self.y = y; self.d = d
        self.kid = kid; self.alg = alg; self.use = use; self.keyOps = keyOps
    }
}

extension SigningKey {
    /// The public JWK of an ES256 key (`kty` EC, `crv` P-256, `x`, `y`, `kid`, `alg`, `use`: sig);
    /// `nil` for HS256, whose secret is never exported.
    public func publicJWK() throws(KeyError) -> JWK? {
        guard case .p256(let key) = material else { return nil }
        let point = try key.publicPoint()
        return JWK(kty: "EC", crv: "P-256", x: Base64URL.encode(point[1..<33]), y: Base64URL.encode(point[33..<65]),
                   kid: id, alg: "ES256", use: "sig")
    }

    /// An ES256 public key from a JWK. A JWK with a private part (`d`) is refused: verifiers
    /// are given public keys only.
    public init(jwk: JWK) throws(KeyError) {
        guard jwk.kty == "EC", jwk.crv == "P-256" else {
            throw KeyError(.invalidKey, "JWK '\(jwk.kid ?? "?")' is not an EC P-256 key (kty EC, crv P-256)")
        }
        if let alg = jwk.alg, alg != "ES256" {
            throw KeyError(.invalidKey, "JWK '\(jwk.kid ?? "?")' has alg \(alg); only ES256 is accepted for EC keys")
        }
        guard jwk.d == nil else {
            throw KeyError(.invalidKey, "JWK '\(jwk.kid ?? "?")' contains a private key (d); publish public keys only")
        }
        // A key published for encryption, or without the right to verify, is not a token key.
        if let use = jwk.use, use != "sig" {
            throw KeyError(.invalidKey, "JWK '\(jwk.kid ?? "?")' has use \(use); only signature keys (use sig) are accepted")
        }
        if let ops = jwk.keyOps, !ops.contains("verify") {
            throw KeyError(.invalidKey, "JWK '\(jwk.kid ?? "?")' has key_ops without verify")
        }
        guard let kid = jwk.kid else { throw KeyError(.invalidKeyID, "a JWK has no kid") }
        guard let x = jwk.x.flatMap(Base64URL.decode), let y = jwk.y.flatMap(Base64URL.decode), x.count == 32, y.count == 32 else {
            throw KeyError(.invalidKey, "JWK '\(kid)' must have x and y as 32-byte base64url values")
        }
        try self.init(id: kid, publicPoint: [0x04] + x + y)
    }
}
