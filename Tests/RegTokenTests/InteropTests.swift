import Foundation
import Testing
@testable import RegToken

/// Interoperability with a real third-party JWT library, PyJWT (installed by the README's test
/// command), both ways. These tests use the real clock, because PyJWT checks exp and iat itself.
@Suite("Interoperability with PyJWT")
struct InteropTests {
    let python = "/usr/bin/env"

    func pyjwt(_ args: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        try run(python, ["python3", try Fixture.url("Interop/pyjwt_interop.py").path] + args)
    }

    var now: Int64 { Int64(Date().timeIntervalSince1970) }

    func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    func decoded(_ stdout: String) throws -> (header: [String: Any], claims: [String: Any]) {
        let object = try #require(try JSONSerialization.jsonObject(with: Data(stdout.utf8)) as? [String: Any])
        return (try #require(object["header"] as? [String: Any]), try #require(object["claims"] as? [String: Any]))
    }

    @Test("PyJWT is installed (the test command installs it)")
    func installed() throws {
        let r = try run(python, ["python3", "-c", "import jwt; print(jwt.__version__)"])
        #expect(r.status == 0, "PyJWT missing: \(r.stderr)")
    }

    @Test("our HS256 tokens verify with PyJWT given our secret")
    func hsOursToPyJWT() throws {
        let key = try SigningKey.generate(.hs256)
        let claims = Fixture.claims(scope: .pushPull, issuedAt: now, expiresAt: now + 3600, namespaces: ["acme", "acme-ci"])
        let token = try TokenIssuer(key: key).issue(claims)
        let r = try pyjwt(["verify-hs", hex(try #require(key.hmacSecretBytes)), token, Fixture.region])
        #expect(r.status == 0, "\(r.stderr)")
        let (header, decoded) = try decoded(r.stdout)
        #expect(header["alg"] as? String == "HS256")
        #expect(header["kid"] as? String == key.id)
        #expect(header["typ"] as? String == "JWT")
        #expect(decoded["jti"] as? String == claims.id.description)
        #expect(decoded["sub"] as? String == "acme")
        #expect(decoded["scope"] as? String == "pull,push")
        #expect((decoded["iat"] as? NSNumber)?.int64Value == claims.issuedAt)
        #expect((decoded["exp"] as? NSNumber)?.int64Value == claims.expiresAt)
        #expect(decoded["namespaces"] as? [String] == ["acme", "acme-ci"])
        // A fine-grained token: PyJWT reads its repository rules and address ranges as written.
        var fine = claims
        fine.repositories = [RepositoryRule(pattern: "acme/ci-*", actions: [.pull, .push]), RepositoryRule(pattern: "acme/base/**", actions: .pull)]
        fine.allowFrom = [AddressRange("10.0.0.0/8")!, AddressRange("2001:db8::/32")!]
        let fineToken = try TokenIssuer(key: key).issue(fine)
        let fineRead = try pyjwt(["verify-hs", hex(try #require(key.hmacSecretBytes)), fineToken, Fixture.region])
        #expect(fineRead.status == 0, "\(fineRead.stderr)")
        let (_, fineClaims) = try self.decoded(fineRead.stdout)
        #expect(fineClaims["repositories"] as? [String] == ["acme/ci-*:pull,push", "acme/base/**:pull"])
        #expect(fineClaims["allow_from"] as? [String] == ["10.0.0.0/8", "2001:db8::/32"])
        // PyJWT refuses it with another secret: the check is real.
        let wrong = try pyjwt(["verify-hs", hex(Array(repeating: 7, count: 32)), token, Fixture.region])
        #expect(wrong.status == 1 && wrong.stderr.contains("InvalidSignatureError"))
    }

    @Test("our ES256 tokens verify with PyJWT given our JWKS; non-expiring ones too")
    func esOursToPyJWT() throws {
        let dir = try temporaryDirectory()
        let key = try SigningKey.generate(.es256)
        let ring = try KeyRing(keys: [key, SigningKey.generate(.es256), SigningKey.generate(.hs256)], activeKeyID: key.id)
        try ring.jwksJSON().write(toFile: "\(dir)/jwks.json", atomically: true, encoding: .utf8)
        for exp in [now + 86_400, nil] {
            let claims = Fixture.claims(issuedAt: now, expiresAt: exp)
            let token = try TokenIssuer(keyRing: ring).issue(claims)
            let r = try pyjwt(["verify-es", "\(dir)/jwks.json", token, Fixture.region])
            #expect(r.status == 0, "\(r.stderr)")
            let (header, decoded) = try decoded(r.stdout)
            #expect(header["alg"] as? String == "ES256" && header["kid"] as? String == key.id)
            #expect(decoded["jti"] as? String == claims.id.description)
            #expect(decoded["scope"] as? String == "pull")
            #expect((decoded["exp"] as? NSNumber)?.int64Value == exp)
        }
        // An expired token of ours is refused by PyJWT too.
        let old = try TokenIssuer(keyRing: ring).issue(Fixture.claims(issuedAt: now - 7200, expiresAt: now - 3600))
        let r = try pyjwt(["verify-es", "\(dir)/jwks.json", old, Fixture.region])
        #expect(r.status == 1 && r.stderr.contains("ExpiredSignatureError"))
    }

    func pyClaims(id: UUIDBytes, scope: String, exp: Int64?) -> String {
        var s = "{\"jti\":\"\(id)\",\"sub\":\"acme\",\"region\":\"\(Fixture.region)\",\"scope\":\"\(scope)\",\"iat\":\(now)"
        if let exp { s += ",\"exp\":\(exp)" }
        return s + ",\"namespaces\":[\"acme\"]}"
    }

    @Test("tokens PyJWT signs with our HS256 key and our claims verify here")
    func hsPyJWTToOurs() throws {
        let key = try SigningKey.generate(.hs256)
        let verifier = TokenVerifier(keys: try KeyRing(keys: [key]))
        let id = UUIDBytes.random()
        let r = try pyjwt(["sign-hs", hex(try #require(key.hmacSecretBytes)), key.id, pyClaims(id: id, scope: "pull,push", exp: now + 600)])
        #expect(r.status == 0, "\(r.stderr)")
        let token = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let v = try verifier.verify(token, at: now, for: AccessRequest(region: Fixture.region, access: .push, namespace: "acme"))
        #expect(v.id == id && v.scope == .pushPull && v.isNamespaceRestricted)
        #expect(tokenErrorCode { _ = try verifier.verify(token, at: now, for: AccessRequest(region: Fixture.region, access: .push, namespace: "other")) } == .namespaceNotAllowed)
        // PyJWT signing with a different secret: refused here.
        let other = try pyjwt(["sign-hs", hex(Array(repeating: 9, count: 32)), key.id, pyClaims(id: id, scope: "pull", exp: now + 600)])
        #expect(tokenErrorCode { _ = try verifier.verify(other.stdout.trimmingCharacters(in: .whitespacesAndNewlines), at: now, for: Fixture.pull) } == .badSignature)
    }

    @Test("tokens PyJWT signs with our ES256 private key file verify here with the public key only")
    func esPyJWTToOurs() throws {
        let dir = try temporaryDirectory()
        let key = try SigningKey.generate(.es256)
        try KeyRing.save(key, directory: dir)
        let verifier = TokenVerifier(keys: try KeyRing(keys: [try #require(try key.publicKey())]))
        let id = UUIDBytes.random()
        let r = try pyjwt(["sign-es", "\(dir)/\(key.id).pem", key.id, pyClaims(id: id, scope: "pull", exp: nil)])
        #expect(r.status == 0, "\(r.stderr)")
        let token = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let v = try verifier.verify(token, at: now, for: Fixture.pull)
        #expect(v.id == id && v.expiresAt == nil && v.algorithm == .es256)
        #expect(tokenErrorCode { _ = try verifier.verify(token, at: now, for: Fixture.push) } == .insufficientScope)
    }
}
