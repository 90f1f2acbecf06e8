import Foundation
import Testing
@testable import RegToken

/// The JWT attack classes of the hostile-input issue not covered rule by rule in
/// StrictnessTests and VerifierTests: algorithm confusion with every encoding of the public
/// key, the JWS JSON serialization, ECDSA signature values out of range, high-S signatures
/// (the documented decision, with the cache), whitespace around a token, and big numbers.
@Suite("JWT attack classes")
struct AttackTests {
    /// P-256's group order n.
    static let n: [UInt8] = Fixture.hex("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551")

    let verifier: TokenVerifier
    init() throws { verifier = try Fixture.verifier() }

    func code(_ token: String, _ other: TokenVerifier? = nil, _ request: AccessRequest = Fixture.pull) -> TokenError.ErrorCode? {
        tokenErrorCode { _ = try (other ?? verifier).verify(token, at: Fixture.now, for: request) }
    }

    func cachedVerifier() throws -> TokenVerifier {
        TokenVerifier(keys: try Fixture.ring(), configuration: VerifierConfiguration(signatureCacheCapacity: 1024))
    }

    /// The ES256 key's public point in every form an attacker might use as an HMAC secret.
    func publicKeyForms() throws -> [(String, [UInt8])] {
        let jwk = try #require(try Fixture.esKey.publicJWK())
        let point = [0x04] + (try #require(Base64URL.decode(jwk.x ?? ""))) + (try #require(Base64URL.decode(jwk.y ?? "")))
        let pem = try Fixture.esKey.publicKeyPEM()
        let jwkJSON = try JSONEncoder().encode(jwk)
        return [
            ("PEM", Array(pem.utf8)),
            ("PEM without the final newline", Array(pem.utf8.dropLast())),
            ("DER (SubjectPublicKeyInfo)", P256Key.spkiPrefix + point),
            ("JWK JSON", Array(jwkJSON)),
            ("JWKS JSON", Array(try Fixture.ring().jwksJSON().utf8)),
            ("raw uncompressed point", point),
            ("raw x coordinate", Array(point[1...32])),
        ]
    }

    @Test("algorithm confusion: an HMAC token naming the ES256 key, MAC'd with its public key as PEM, DER, JWK or raw point, never verifies")
    func algorithmConfusion() throws {
        for (form, secret) in try publicKeyForms() {
            // The attacker's HS256 MAC over the header and claims, the public key bytes as secret
            // (padded to the 32 bytes our HMAC key type asks for; OpenSSL's HMAC pads with zeros
            // to the block size anyway, so short forms give the same MAC).
            let input = Fixture.b64(Fixture.header("HS256", kid: "es-test")) + "." + Fixture.b64(Fixture.claimsJSON())
            let mac = try SigningKey(id: "attacker", hmacSecret: secret.count >= 32 ? secret : secret + Array(repeating: 0, count: 32 - secret.count))
                .signature(for: Array(input.utf8))
            // The key fixes the algorithm: refused before any MAC is computed, whatever the MAC.
            #expect(code(input + "." + Base64URL.encode(mac)) == .algorithmMismatch, "HS256 with \(form)")
        }
        // HS384 and HS512 are not accepted at all, whatever the key or the signature.
        for alg in ["HS384", "HS512"] {
            let input = Fixture.b64(Fixture.header(alg, kid: "es-test")) + "." + Fixture.b64(Fixture.claimsJSON())
            #expect(code(input + "." + Base64URL.encode(Array(repeating: UInt8(1), count: alg == "HS384" ? 48 : 64))) == .unsupportedAlgorithm)
        }
    }

    @Test("the JWS JSON serialization (flattened and general) is refused as malformed")
    func jsonSerialization() throws {
        let token = try Fixture.issue(Fixture.claims())
        let p = token.split(separator: ".").map(String.init)
        let flattened = #"{"protected":"\#(p[0])","payload":"\#(p[1])","signature":"\#(p[2])"}"#
        let general = #"{"payload":"\#(p[1])","signatures":[{"protected":"\#(p[0])","signature":"\#(p[2])"}]}"#
        #expect(code(token) == nil)
        for json in [flattened, general, " " + flattened, Fixture.b64(flattened), Fixture.b64(flattened) + ".." ] {
            #expect(code(json) == .malformed, "\(json.prefix(40))")
        }
    }

    /// An ES256 token whose signature halves are replaced.
    func es256(r: [UInt8]? = nil, s: [UInt8]? = nil, from token: String) throws -> String {
        let p = token.split(separator: ".").map(String.init)
        let sig = try #require(Base64URL.decode(p[2]))
        return p[0] + "." + p[1] + "." + Base64URL.encode((r ?? Array(sig[..<32])) + (s ?? Array(sig[32...])))
    }

    static func minus(_ a: [UInt8], _ b: [UInt8]) -> [UInt8] {  // a - b, big-endian, a >= b
        var out = a, borrow = 0
        for i in stride(from: a.count - 1, through: 0, by: -1) {
            let d = Int(a[i]) - Int(b[i]) - borrow
            out[i] = UInt8((d + 256) % 256)
            borrow = d < 0 ? 1 : 0
        }
        return out
    }
    static func plusOne(_ a: [UInt8]) -> [UInt8] {
        var out = a
        for i in stride(from: a.count - 1, through: 0, by: -1) {
            out[i] &+= 1
            if out[i] != 0 { break }
        }
        return out
    }

    @Test("ECDSA r or s of 0, n, n+1 or 2^256-1 is a bad signature, with and without the cache")
    func signatureValuesOutOfRange() throws {
        let token = try Fixture.issue(Fixture.claims(), with: Fixture.esKey)
        let zero = [UInt8](repeating: 0, count: 32), ones = [UInt8](repeating: 0xFF, count: 32)
        for verifier in [try Fixture.verifier(), try cachedVerifier()] {
            #expect(code(token, verifier) == nil)
            for value in [zero, Self.n, Self.plusOne(Self.n), ones] {
                #expect(code(try es256(r: value, from: token), verifier) == .badSignature)
                #expect(code(try es256(s: value, from: token), verifier) == .badSignature)
                #expect(code(try es256(r: value, s: value, from: token), verifier) == .badSignature)
            }
            let p = token.split(separator: ".").map(String.init)
            let sig = try #require(Base64URL.decode(p[2]))
            let s = Array(sig[32...])
            // DER instead of the fixed 64-byte r||s (a common interop mistake) is refused too.
            let der: [UInt8] = [0x30, 0x44, 0x02, 0x20] + sig[..<32] + [0x02, 0x20] + s
            #expect(code(p[0] + "." + p[1] + "." + Base64URL.encode(der), verifier) == .badSignature)
        }
    }

    @Test("a high-S signature (s replaced by n - s) verifies, is cached on its own bytes, and is revoked with its token id")
    func highS() throws {
        let claims = Fixture.claims()
        let token = try Fixture.issue(claims, with: Fixture.esKey)
        let p = token.split(separator: ".").map(String.init)
        let s = Array(try #require(Base64URL.decode(p[2]))[32...])
        let flipped = try es256(s: Self.minus(Self.n, s), from: token)
        #expect(flipped != token)
        let verifier = try cachedVerifier()
        // Both forms verify (RFC 7518 and Wycheproof require accepting high-S), each from its own bytes.
        #expect(code(token, verifier) == nil)
        #expect(code(flipped, verifier) == nil)
        #expect(code(flipped, verifier) == nil)  // a hit on its own entry
        // Flipping s of the cached form does not make a third valid one: n - (n - s) is the original.
        #expect(try es256(s: Self.minus(Self.n, Self.minus(Self.n, s)), from: token) == token)
        // One character off the high-S form (cached just before) is verified afresh and rejected.
        var broken = Array(flipped.utf8)
        broken[broken.count - 3] = broken[broken.count - 3] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        #expect(code(String(decoding: broken, as: UTF8.self), verifier) == .badSignature)
        // Revoking the token id revokes both byte strings, cached or not.
        let list = RevocationList(version: 1, issuedAt: Fixture.now, entries: [.init(id: claims.id, expiresAt: claims.expiresAt)])
        #expect(try verifier.install(list))
        #expect(code(token, verifier) == .revoked)
        #expect(code(flipped, verifier) == .revoked)
        // And the high-S form is what OpenSSL itself accepts (the decision is not ours alone).
        #expect(Fixture.esKey.isValidSignature(Array(try #require(Base64URL.decode(String(flipped.split(separator: ".")[2])))),
                                               for: Array((p[0] + "." + p[1]).utf8)))
    }

    @Test("whitespace around or inside a token is malformed in the library (the command line trims what was pasted)")
    func whitespace() throws {
        let token = try Fixture.issue(Fixture.claims())
        let dot = token.firstIndex(of: ".")!
        for bad in [" " + token, token + " ", token + "\n", "\t" + token, token.replacingCharacters(in: dot...dot, with: " ."),
                    token.replacingCharacters(in: dot...dot, with: ".\n"), token + "\r\n"] {
            #expect(code(bad) == .malformed, "\(bad.debugDescription.prefix(20))")
        }
    }

    @Test("exp and iat: strings, floats, exponents, negatives, beyond 2^53, null, huge", arguments: [
        "\"1800003600\"", "1800003600.0", "1.8000036e9", "18000036E2", "-1", "-0", "null", "9007199254740993",
        "18446744073709551616", "1" + String(repeating: "0", count: 400), "0x6B49D200", "Infinity", "NaN", "[1800003600]",
        "{\"$numberLong\":\"1800003600\"}", "true",
    ])
    func numbers(_ value: String) throws {
        for claims in [Fixture.claimsJSON(exp: value), Fixture.claimsJSON(iat: value)] {
            let token = try Fixture.forge(header: Fixture.header(), claims: claims)
            #expect(code(token) == .malformed, "\(value) in \(claims.prefix(80))")
        }
    }
}
