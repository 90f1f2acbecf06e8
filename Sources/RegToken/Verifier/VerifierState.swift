internal import CRegTokenFastPath

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One key of the verifier's fast table: plain values and raw pointers only, so scanning it
/// touches no reference count. The objects the pointers point into are owned by the
/// ``VerifierState`` holding the table (through its ``KeyRing``).
struct FastKey {
    var keyID: ShortString
    var algorithm: Algorithm
    var hmacPads: UnsafePointer<CRegTokenFastPath_HMACSHA256Pads>?
    /// HS256: the inner pad state advanced over the first 64 bytes of every token the issuer
    /// writes with this key (see ``VerifierState/hmacPrefix(_:issuedHeader:)``), owned by the
    /// state; nil when those bytes are fewer than 64 (a key id of three characters or fewer).
    var hmacPrefix: UnsafeMutablePointer<CRegTokenFastPath_HMACSHA256Prefix>?
    var p256: OpaquePointer?
    var p256UID: UInt64
    /// The header segment regtoken's issuer writes for this key: the base64url of
    /// `{"alg":…,"kid":…,"typ":"JWT"}` (owned by the state). Strict base64url is one-to-one, so
    /// a token whose header segment is exactly these bytes has exactly this header, which parses
    /// to this key's `alg` and `kid` and `typ` `JWT`: the verifier skips decoding and parsing it.
    /// Any other header, valid or not, takes the strict parser.
    var issuedHeader: UnsafeRawBufferPointer
}

/// An immutable snapshot of everything verification reads: keys and revoked ids.
final class VerifierState: @unchecked Sendable {
    let keyRing: KeyRing
    let keys: UnsafeMutableBufferPointer<FastKey>
    let revoked: RevocationTable
    let revocationVersion: UInt64
    let revocationIssuedAt: Int64?

    init(keyRing: KeyRing, revoked: RevocationTable, revocationVersion: UInt64, revocationIssuedAt: Int64?) {
        self.keyRing = keyRing
        self.revoked = revoked
        self.revocationVersion = revocationVersion
        self.revocationIssuedAt = revocationIssuedAt
        keys = .allocate(capacity: max(keyRing.keys.count, 1))
        for (i, key) in keyRing.keys.enumerated() {
            // Key ids are validated to fit a short string when the key is made.
            let kid = ShortString(key.id) ?? ShortString()
            let header = Self.issuedHeader(algorithm: key.algorithm, keyID: key.id)
            switch key.material {
            case .hmac(let secret):
                (keys.baseAddress! + i).initialize(to: FastKey(keyID: kid, algorithm: .hs256, hmacPads: UnsafePointer(secret.pads),
                                                               hmacPrefix: Self.hmacPrefix(secret, issuedHeader: header), p256: nil,
                                                               p256UID: 0, issuedHeader: header))
            case .p256(let p):
                (keys.baseAddress! + i).initialize(to: FastKey(keyID: kid, algorithm: .es256, hmacPads: nil, hmacPrefix: nil, p256: p.pkey, p256UID: p.uid,
                                                               issuedHeader: header))
            }
        }
        keyCount = keyRing.keys.count
    }

    let keyCount: Int

    deinit {
        for i in 0..<keyCount {
            keys[i].issuedHeader.deallocate()
            if let prefix = keys[i].hmacPrefix {
                CRegTokenFastPath_hmac_sha256_prefix_clear(prefix)
                prefix.deallocate()
            }
        }
        keys.deallocate()
    }

    /// The header segment the issuer writes for a key (see ``FastKey/issuedHeader``), in a buffer
    /// the state frees. Checked once here with the strict parser, so that the shortcut can only
    /// ever stand for a header that parses to this key's algorithm and id; empty (never matching)
    /// otherwise.
    private static func issuedHeader(algorithm: Algorithm, keyID: String) -> UnsafeRawBufferPointer {
        var json = JWS.protectedHeader(algorithm: algorithm, keyID: keyID, type: "JWT")
        let encoded = Array(Base64URL.encode(json).utf8)
        let parsed = json.withUnsafeMutableBufferPointer { (b: inout UnsafeMutableBufferPointer<UInt8>) in try? JWSHeader.parse(b) }
        guard let parsed, parsed.algorithm == .supported(algorithm), parsed.hasKeyID, parsed.keyID.equals(keyID),
              parsed.hasType, parsed.type.equals("JWT") else {
            return UnsafeRawBufferPointer(UnsafeMutableRawBufferPointer.allocate(byteCount: 0, alignment: 1))
        }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: encoded.count, alignment: 1)
        buffer.copyBytes(from: encoded)
        return UnsafeRawBufferPointer(buffer)
    }

    /// The inner HMAC state of `secret` over the 64 bytes that start every token the issuer writes
    /// with this key: its issued header, the dot, and the base64url of the claims' constant opening
    /// `{"jti"` (whole 3-byte groups only, so these characters never depend on what follows). The
    /// MAC of such a token then hashes one 64-byte block fewer (one of five for a 300-byte token).
    /// nil when those bytes are fewer than 64, or the header is not the issuer's.
    private static func hmacPrefix(_ secret: HMACSecret, issuedHeader header: UnsafeRawBufferPointer)
        -> UnsafeMutablePointer<CRegTokenFastPath_HMACSHA256Prefix>? {
        let issued = TokenClaims.issuedOpening
        let opening = Array(UnsafeBufferPointer(start: issued.utf8Start, count: issued.utf8CodeUnitCount))
        var bytes = Array(header)
        bytes.append(UInt8(ascii: "."))
        bytes += Array(Base64URL.encode(opening.prefix(opening.count / 3 * 3)).utf8)
        guard header.count > 0, bytes.count >= 64 else { return nil }
        let prefix = UnsafeMutablePointer<CRegTokenFastPath_HMACSHA256Prefix>.allocate(capacity: 1)
        guard CRegTokenFastPath_hmac_sha256_prefix_init(prefix, secret.pads, bytes) == 1 else {
            CRegTokenFastPath_hmac_sha256_prefix_clear(prefix)
            prefix.deallocate()
            return nil
        }
        return prefix
    }

    /// The index of the key whose ``FastKey/issuedHeader`` is exactly `header`, or -1.
    @inline(__always)
    func keyIndex(issuedHeader header: UnsafeRawBufferPointer) -> Int {
        for i in 0..<keyCount {
            let expected = keys[i].issuedHeader
            if expected.count == header.count, memcmp(expected.baseAddress!, header.baseAddress!, header.count) == 0 { return i }
        }
        return -1
    }

    func replacingKeys(_ ring: KeyRing) -> VerifierState {
        VerifierState(keyRing: ring, revoked: revoked, revocationVersion: revocationVersion, revocationIssuedAt: revocationIssuedAt)
    }

    func replacingRevocations(_ list: RevocationList) -> VerifierState {
        VerifierState(keyRing: keyRing, revoked: RevocationTable(list.entries.map(\.id)),
                      revocationVersion: list.version, revocationIssuedAt: list.issuedAt)
    }
}
