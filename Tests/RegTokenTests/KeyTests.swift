import Foundation
import Testing
@testable import RegToken

@Suite("Keys and key rings")
struct KeyTests {
    func openssl(_ args: [String]) throws -> String {
        let r = try run("/usr/bin/openssl", args)
        #expect(r.status == 0, "openssl \(args.joined(separator: " ")): \(r.stderr)")
        return r.stdout
    }

    @Test("ES256 keys from openssl: PKCS#8 (genpkey) and SEC1 (ecparam -genkey) PEM, and public PEM")
    func opensslPEM() throws {
        let dir = try temporaryDirectory()
        _ = try openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "\(dir)/pkcs8.pem"])
        _ = try openssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "\(dir)/sec1.pem"])
        let pkcs8 = try String(contentsOfFile: "\(dir)/pkcs8.pem", encoding: .utf8)
        let sec1 = try String(contentsOfFile: "\(dir)/sec1.pem", encoding: .utf8)
        #expect(pkcs8.contains("BEGIN PRIVATE KEY"))
        #expect(sec1.contains("BEGIN EC PRIVATE KEY"))
        for pem in [pkcs8, sec1] {
            let key = try SigningKey(id: "k1", pem: pem)
            #expect(key.algorithm == .es256 && key.canSign)
            // What we write back is PKCS#8 that openssl reads, with the same public key.
            let written = try key.privateKeyPEM()
            #expect(written.hasPrefix("-----BEGIN PRIVATE KEY-----"))
            try written.write(toFile: "\(dir)/back.pem", atomically: true, encoding: .utf8)
            let opensslPub = try openssl(["pkey", "-in", "\(dir)/back.pem", "-pubout"])
            #expect(opensslPub == (try key.publicKeyPEM()))
            // Sign with ours, verify with openssl's public key read back by us.
            let pub = try SigningKey(id: "k1", pem: opensslPub)
            #expect(!pub.canSign)
            let sig = try key.signature(for: Array("hello".utf8))
            #expect(pub.isValidSignature(sig, for: Array("hello".utf8)))
            #expect(!pub.isValidSignature(sig, for: Array("hellp".utf8)))
        }
    }

    @Test("keys that are not ES256 P-256 or are encrypted are refused with a clear error")
    func refusedKeys() throws {
        let dir = try temporaryDirectory()
        _ = try openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384", "-out", "\(dir)/p384.pem"])
        _ = try openssl(["genpkey", "-algorithm", "ED25519", "-out", "\(dir)/ed.pem"])
        _ = try openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-aes-128-cbc", "-pass", "pass:secret", "-out", "\(dir)/enc.pem"])
        let p384 = try String(contentsOfFile: "\(dir)/p384.pem", encoding: .utf8)
        #expect(throws: KeyError(.invalidKey, "")) { try SigningKey(id: "k", pem: p384) }
        let ed = try String(contentsOfFile: "\(dir)/ed.pem", encoding: .utf8)
        #expect(throws: KeyError(.invalidKey, "")) { try SigningKey(id: "k", pem: ed) }
        let enc = try String(contentsOfFile: "\(dir)/enc.pem", encoding: .utf8)
        #expect(throws: KeyError(.unreadable, "")) { try SigningKey(id: "k", pem: enc) }
        #expect(throws: KeyError(.unreadable, "")) { try SigningKey(id: "k", pem: "not a key") }
        #expect(throws: KeyError(.unreadable, "")) { try SigningKey(id: "k", pem: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n") }
        #expect(throws: KeyError(.invalidKey, "")) { try SigningKey(id: "k", hmacSecret: Array(repeating: 1, count: 31)) }
        // A point not on the curve.
        var point = try #require(try Fixture.esKey.publicJWK())
        point.y = Base64URL.encode(Array(repeating: UInt8(7), count: 32))
        #expect(throws: KeyError(.invalidKey, "")) { try SigningKey(jwk: point) }
    }

    @Test("a private key file whose public part does not match its private scalar is refused (found by fuzzing)", arguments: ["ec", "pkey"])
    func mismatchedKeyPair(tool: String) throws {
        // Two keys made by the openssl tool; A's file gets B's public point (the last 65 bytes of
        // both the SEC1 and the PKCS#8 DER). OpenSSL loads such a file as it is: it would sign
        // with A's scalar and publish B's point.
        let dir = try temporaryDirectory()
        for name in ["a", "b"] {
            _ = try openssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "\(dir)/\(name).sec1"])
            _ = try openssl([tool, "-in", "\(dir)/\(name).sec1", "-out", "\(dir)/\(name).pem"])
        }
        func der(_ name: String) throws -> (label: String, bytes: [UInt8]) {
            let lines = try String(contentsOfFile: "\(dir)/\(name).pem", encoding: .utf8).split(separator: "\n")
            let label = String(lines[0].dropFirst(11).dropLast(5))
            return (label, Array(try #require(Data(base64Encoded: lines.dropFirst().dropLast().joined()))))
        }
        let (label, a) = try der("a")
        let b = try der("b").bytes
        let damaged = Array(a.dropLast(65)) + b.suffix(65)
        let pem = "-----BEGIN \(label)-----\n\(Data(damaged).base64EncodedString(options: .lineLength64Characters))\n-----END \(label)-----\n"
        #expect(throws: KeyError(.invalidKey, "")) { try SigningKey(id: "k", pem: pem) }
        let error = try #require(keyError { _ = try SigningKey(id: "k", pem: pem) })
        #expect(error.reason.contains("does not match its private scalar"))
        // The undamaged files load, sign and verify.
        let key = try SigningKey(id: "k", pem: try String(contentsOfFile: "\(dir)/a.pem", encoding: .utf8))
        let signature = try key.signature(for: Array("x".utf8))
        #expect(try #require(try key.publicKey()).isValidSignature(signature, for: Array("x".utf8)))
    }

    @Test("key ids are checked", arguments: ["", ".hidden", "a/b", "../etc", "a b", "ключ", String(repeating: "k", count: 65), "a\u{0}b"])
    func keyIDs(_ kid: String) {
        #expect(throws: KeyError(.invalidKeyID, "")) { try SigningKey(id: kid, hmacSecret: Array(repeating: 1, count: 32)) }
    }

    @Test("generated keys: 32-byte HS256 secrets, fresh P-256 pairs, distinct ids")
    func generate() throws {
        let a = try SigningKey.generate(.hs256)
        let b = try SigningKey.generate(.hs256)
        #expect(a.hmacSecretBytes?.count == 32)
        #expect(a.hmacSecretBytes != b.hmacSecretBytes)
        #expect(a.id != b.id && a.id.hasPrefix("hs256-"))
        let e = try SigningKey.generate(.es256)
        #expect(e.id.hasPrefix("es256-") && e.canSign)
    }

    @Test("a key ring has unique ids and one active key that can sign")
    func ring() throws {
        #expect(throws: KeyError(.keyRing, "")) { try KeyRing(keys: [Fixture.hsKey, Fixture.otherHS]) }
        #expect(throws: KeyError(.keyRing, "")) { try KeyRing(keys: [Fixture.hsKey], activeKeyID: "nope") }
        let pub = try #require(try Fixture.esKey.publicKey())
        #expect(throws: KeyError(.cannotSign, "")) { try KeyRing(keys: [pub], activeKeyID: "es-test") }
        let ring = try Fixture.ring()
        #expect(ring.activeKey?.id == "hs-test")
        let verifierRing = try ring.publicOnly()
        #expect(verifierRing.keys.map(\.id) == ["es-test"])
        #expect(verifierRing.keys.allSatisfy { !$0.canSign })
    }

    @Test("JWKS export holds public ES256 keys only and reads back into a verifier ring")
    func jwks() throws {
        let ring = try Fixture.ring()
        let json = try ring.jwksJSON()
        #expect(!json.contains("\"d\""))
        #expect(!json.contains("hs-test"))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        let keys = try #require(object["keys"] as? [[String: Any]])
        #expect(keys.count == 1)
        #expect(keys[0]["kty"] as? String == "EC" && keys[0]["crv"] as? String == "P-256" && keys[0]["alg"] as? String == "ES256")
        let back = try KeyRing(jwksJSON: Array(json.utf8))
        let token = try Fixture.issue(Fixture.claims(), with: Fixture.esKey)
        let verifier = TokenVerifier(keys: back)
        #expect(try verifier.verify(token, at: Fixture.now, for: Fixture.pull).keyID.string == "es-test")
        // A JWKS carrying a private key is refused.
        var jwk = try #require(try Fixture.esKey.publicJWK())
        jwk.d = Base64URL.encode(Array(repeating: UInt8(1), count: 32))
        let withPrivate = try JSONEncoder().encode(JWKSet(keys: [jwk]))
        #expect(throws: KeyError(.invalidKey, "")) { try KeyRing(jwksJSON: Array(withPrivate)) }
        #expect(throws: KeyError(.unreadable, "")) { try KeyRing(jwksJSON: Array("{\"keys\":5}".utf8)) }
        // A key published for encryption, or whose operations exclude verify, is not a token key.
        for (use, ops) in [("enc", nil), (nil, ["encrypt"]), ("sig", ["sign"])] as [(String?, [String]?)] {
            var k = try #require(try Fixture.esKey.publicJWK())
            k.use = use
            k.keyOps = ops
            #expect(throws: KeyError(.invalidKey, "")) { try KeyRing(jwksJSON: Array(try JSONEncoder().encode(JWKSet(keys: [k])))) }
        }
        // A degenerate key (private scalar 1 or n - 1: the public point is the generator, or its negation).
        let gx = Fixture.hex("6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296")
        let gy = Fixture.hex("4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5")
        let negGy = Fixture.hex("B01CBD1C01E58065711814B583F061E9D431CCA994CEA1313449BF97C840AE0A")
        #expect(throws: KeyError(.invalidKey, "")) { try SigningKey(id: "g", publicPoint: [0x04] + gx + gy) }
        #expect(throws: KeyError(.invalidKey, "")) { try SigningKey(id: "g", publicPoint: [0x04] + gx + negGy) }
        var verifyOnly = try #require(try Fixture.esKey.publicJWK())
        verifyOnly.keyOps = ["verify"]
        #expect(try KeyRing(jwksJSON: Array(try JSONEncoder().encode(JWKSet(keys: [verifyOnly])))).keys.count == 1)
    }

    @Test("a key directory: private files 0600, public 0644, active file; reloads to the same ring")
    func directory() throws {
        let dir = try temporaryDirectory() + "/keys"
        let hs = try SigningKey.generate(.hs256, id: "hs-1")
        let es = try SigningKey.generate(.es256, id: "es-1")
        let esPub = try #require(try SigningKey.generate(.es256, id: "es-2").publicKey())
        try KeyRing.save(hs, directory: dir)
        try KeyRing.save(es, directory: dir)
        try KeyRing.save(esPub, directory: dir)
        try KeyRing.activate(keyID: "es-1", directory: dir)
        #expect(try AtomicFile.permissions(of: dir) == 0o700)
        #expect(try AtomicFile.permissions(of: "\(dir)/hs-1.hs256") == 0o600)
        #expect(try AtomicFile.permissions(of: "\(dir)/es-1.pem") == 0o600)
        #expect(try AtomicFile.permissions(of: "\(dir)/es-2.pub.pem") == 0o644)
        #expect(try AtomicFile.list(dir) == ["active", "es-1.pem", "es-2.pub.pem", "hs-1.hs256"])
        let ring = try KeyRing.load(directory: dir)
        #expect(ring.activeKeyID == "es-1")
        #expect(Set(ring.keys.map(\.id)) == ["hs-1", "es-1", "es-2"])
        #expect(ring.key(id: "hs-1")?.hmacSecretBytes == hs.hmacSecretBytes)
        #expect(ring.key(id: "es-2")?.canSign == false)
        // A token signed by the saved key verifies with the loaded ring.
        let token = try TokenIssuer(keyRing: ring).issue(Fixture.claims())
        #expect(throws: Never.self) { try TokenVerifier(keys: ring).verify(token, at: Fixture.now, for: Fixture.pull) }
        // Saving over an existing key id is refused.
        #expect(throws: KeyError(.keyRing, "")) { try KeyRing.save(SigningKey.generate(.hs256, id: "es-1"), directory: dir) }
    }

    @Test("a group- or world-readable private key file is refused with the chmod to run")
    func permissions() throws {
        let dir = try temporaryDirectory()
        try KeyRing.save(SigningKey.generate(.hs256, id: "hs-1"), directory: dir)
        chmod("\(dir)/hs-1.hs256", 0o640)
        let e = try #require(throws: KeyError.self) { try KeyRing.load(directory: dir) }
        #expect(e.code == .insecurePermissions)
        #expect(e.reason.contains("chmod 600 \(dir)/hs-1.hs256"))
        chmod("\(dir)/hs-1.hs256", 0o600)
        try KeyRing.save(SigningKey.generate(.es256, id: "es-1"), directory: dir)
        chmod("\(dir)/es-1.pem", 0o604)
        #expect(throws: KeyError(.insecurePermissions, "")) { try KeyRing.load(directory: dir) }
        chmod("\(dir)/es-1.pem", 0o600)
        #expect(try KeyRing.load(directory: dir).keys.count == 2)
        // A stray file is an error, not silently ignored.
        _ = FileManager.default.createFile(atPath: "\(dir)/notes.txt", contents: Data())
        #expect(throws: KeyError(.keyRing, "")) { try KeyRing.load(directory: dir) }
    }
}
