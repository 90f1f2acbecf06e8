import Foundation
import Testing
@testable import RegToken

@Suite("Published test vectors")
struct VectorTests {
    func example(_ id: String) throws -> [String: Any] {
        let file = try Fixture.json("Vectors/rfc7515_rfc7519_examples.json")
        let examples = try #require(file["examples"] as? [[String: Any]])
        return try #require(examples.first { $0["id"] as? String == id })
    }

    @Test("RFC 7515 A.1 verifies, and signing reproduces its signature byte for byte")
    func rfc7515A1() throws {
        let e = try example("rfc7515-A.1")
        let key = try SigningKey(id: "a1", hmacSecret: Fixture.hex(try #require(e["keyHex"] as? String)))
        let compact = try #require(e["compact"] as? String)
        let verified = try JWS.verify(Array(compact.utf8), key: key)
        #expect(verified.algorithm == .hs256)
        #expect(verified.type == "JWT")
        #expect(String(decoding: verified.payload, as: UTF8.self) == e["payload"] as? String)
        let signingInput = try #require(e["signingInput"] as? String)
        let signature = try key.signature(for: Array(signingInput.utf8))
        #expect(Base64URL.encode(signature) == e["signatureB64"] as? String)
        #expect(signingInput + "." + Base64URL.encode(signature) == compact)
        // One changed byte in the payload no longer verifies.
        var tampered = Array(compact.utf8)
        tampered[50] = tampered[50] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        #expect(tokenErrorCode { _ = try JWS.verify(tampered, key: key) } == .badSignature)
    }

    @Test("RFC 7515 A.3 (ES256) verifies with its public JWK; a fresh signature with its d verifies")
    func rfc7515A3() throws {
        let e = try example("rfc7515-A.3")
        let jwkObject = try #require(e["publicJwk"] as? [String: Any])
        var jwk = try JSONDecoder().decode(JWK.self, from: JSONSerialization.data(withJSONObject: jwkObject))
        jwk.kid = "a3"
        let key = try SigningKey(jwk: jwk)
        #expect(!key.canSign)
        let compact = try #require(e["compact"] as? String)
        let verified = try JWS.verify(Array(compact.utf8), key: key)
        #expect(verified.algorithm == .es256)
        #expect(String(decoding: verified.payload, as: UTF8.self) == e["payload"] as? String)
        // The public point matches the published one.
        let pub = try #require(try key.publicJWK())
        #expect(pub.x == jwk.x && pub.y == jwk.y)

        // The private scalar d, as a SEC1 "EC PRIVATE KEY" PEM (what `openssl ecparam -genkey` writes).
        let d = Fixture.hex(try #require(e["privateKeyHex"] as? String))
        let sec1: [UInt8] = [0x30, 0x31, 0x02, 0x01, 0x01, 0x04, 0x20] + d
            + [0xa0, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]
        let pem = "-----BEGIN EC PRIVATE KEY-----\n\(Data(sec1).base64EncodedString())\n-----END EC PRIVATE KEY-----\n"
        let signer = try SigningKey(id: "a3", pem: pem)
        #expect(signer.canSign)
        let signingInput = try #require(e["signingInput"] as? String)
        let fresh = try signer.signature(for: Array(signingInput.utf8))
        #expect(fresh.count == 64)
        #expect(Base64URL.encode(fresh) != e["signatureB64"] as? String)
        let resigned = signingInput + "." + Base64URL.encode(fresh)
        #expect(try JWS.verify(Array(resigned.utf8), key: key).algorithm == .es256)
    }

    @Test("RFC 7515 A.5 (alg none) never verifies")
    func rfc7515A5() throws {
        let e = try example("rfc7515-A.5")
        let compact = try #require(e["compact"] as? String)
        let hs = try SigningKey(id: "k", hmacSecret: Array(repeating: 1, count: 32))
        #expect(tokenErrorCode { _ = try JWS.verify(Array(compact.utf8), key: hs) } == .unsupportedAlgorithm)
        #expect(tokenErrorCode { _ = try Fixture.verifier().verify(compact, at: Fixture.now, for: Fixture.pull) } == .unsupportedAlgorithm)
        // With a signature segment present it is still refused, for its algorithm.
        let withSig = compact + "AAAA"
        #expect(tokenErrorCode { _ = try JWS.verify(Array(withSig.utf8), key: hs) } == .unsupportedAlgorithm)
        #expect(tokenErrorCode { _ = try Fixture.verifier().verify(withSig, at: Fixture.now, for: Fixture.pull) } == .unsupportedAlgorithm)
    }

    @Test("RFC 7519 §3.1 verifies as a JWS; as a regtoken token it is refused (no kid, foreign claims)")
    func rfc7519() throws {
        let e = try example("rfc7519-3.1")
        let a1 = try example("rfc7515-A.1")
        let key = try SigningKey(id: "a1", hmacSecret: Fixture.hex(try #require(a1["keyHex"] as? String)))
        let jwt = try #require(e["jwt"] as? String)
        #expect(try JWS.verify(Array(jwt.utf8), key: key).algorithm == .hs256)
        let verifier = TokenVerifier(keys: try KeyRing(keys: [key]))
        #expect(tokenErrorCode { _ = try verifier.verify(jwt, at: Fixture.now, for: Fixture.pull) } == .unknownKey)
    }

    @Test("RFC 4231 HMAC-SHA256 test cases 1-7")
    func rfc4231() throws {
        let file = try Fixture.json("Vectors/rfc4231_hmac_sha256.json")
        let tests = try #require(file["tests"] as? [[String: Any]])
        #expect(tests.count == 7)
        for t in tests {
            let secret = try HMACSecret(Fixture.hex(try #require(t["keyHex"] as? String)))
            let data = Fixture.hex(try #require(t["dataHex"] as? String))
            let expected = Fixture.hex(try #require(t["macHex"] as? String))
            let mac = data.withUnsafeBytes { secret.mac($0) }
            #expect(Array(mac.prefix(expected.count)) == expected, "RFC 4231 case \(t["tcId"] ?? "?")")
            let ok = expected.withUnsafeBytes { tag in data.withUnsafeBytes { secret.isValidTag(tag, for: $0) } }
            #expect(ok)
        }
    }

    @Test("Wycheproof HMAC-SHA256: valid tags verify, invalid ones are rejected")
    func wycheproofHMAC() throws {
        let file = try Fixture.json("Vectors/wycheproof/hmac_sha256_test.json")
        let groups = try #require(file["testGroups"] as? [[String: Any]])
        var valid = 0, invalid = 0
        for g in groups {
            for t in try #require(g["tests"] as? [[String: Any]]) {
                let secret = try HMACSecret(Fixture.hex(try #require(t["key"] as? String)))
                let msg = Fixture.hex(try #require(t["msg"] as? String))
                let tag = Fixture.hex(try #require(t["tag"] as? String))
                let ok = tag.withUnsafeBytes { tg in msg.withUnsafeBytes { secret.isValidTag(tg, for: $0) } }
                let result = try #require(t["result"] as? String)
                if result == "valid" { valid += 1; #expect(ok, "tcId \(t["tcId"] ?? "?")") }
                if result == "invalid" { invalid += 1; #expect(!ok, "tcId \(t["tcId"] ?? "?")") }
            }
        }
        #expect(valid == 66 && invalid == 108)
    }

    @Test("Wycheproof ECDSA P-256 P1363: every valid signature verifies, every invalid one is rejected")
    func wycheproofECDSA() throws {
        let file = try Fixture.json("Vectors/wycheproof/ecdsa_secp256r1_sha256_p1363_test.json")
        let groups = try #require(file["testGroups"] as? [[String: Any]])
        var valid = 0, invalid = 0
        for (gi, g) in groups.enumerated() {
            let pk = try #require(g["publicKey"] as? [String: Any])
            let point = Fixture.hex(try #require(pk["uncompressed"] as? String))
            let key: SigningKey
            do {
                key = try SigningKey(id: "g\(gi)", publicPoint: point)
            } catch {
                // A key refused (by OpenSSL, or as degenerate: the public point ±G): then every
                // test in the group must be invalid, and is rejected with its key.
                for t in try #require(g["tests"] as? [[String: Any]]) {
                    #expect(t["result"] as? String != "valid")
                    if t["result"] as? String == "invalid" { invalid += 1 }
                }
                continue
            }
            for t in try #require(g["tests"] as? [[String: Any]]) {
                let msg = Fixture.hex(try #require(t["msg"] as? String))
                let sig = Fixture.hex(try #require(t["sig"] as? String))
                let ok = key.isValidSignature(sig, for: msg)
                switch try #require(t["result"] as? String) {
                case "valid": valid += 1; #expect(ok, "tcId \(t["tcId"] ?? "?")")
                case "invalid": invalid += 1; #expect(!ok, "tcId \(t["tcId"] ?? "?")")
                default: break
                }
            }
        }
        #expect(valid == 173 && invalid == 89)
    }
}
