import Foundation
import RegToken
import RegTokenAccess
import Testing

/// The registry JWT that a stock registry (distribution's `auth: token`, Debian's docker-registry
/// 2.8) accepts with no proxy: signed by `RegistryTokenIssuer`, its key in the bundle
/// `regtoken keys export-cert` writes, read by the registry and by PyJWT.
@Suite("Registry tokens for distribution's auth: token")
struct RegistryTokenTests {
    @Test("docker-registry with auth: token and our certificate bundle grants exactly the JWT's access; PyJWT reads it with the certificate")
    func stockRegistryAcceptsOurJWT() throws {
        let issuer = try Issuer()
        let bundle = try Harness.tempDir("bundle") + "/rootcerts.pem"
        let export = try issuer("keys", "export-cert", "--out", bundle)
        #expect(export.status == 0, "\(export.stderr)")
        let registry = try Registry(tokenAuth: (realm: "https://issuer.invalid/token", service: "registry.test", issuer: "regtoken-test", certificates: bundle))
        defer { registry.stop() }
        let base = "http://127.0.0.1:\(registry.port)/v2"

        // The challenge a client gets: Bearer, naming the realm, the service and the scope.
        let challenge = try curl(["\(base)/acme/app/tags/list"])
        #expect(challenge.status == 401 && challenge.headers.contains(#"Bearer realm="https://issuer.invalid/token",service="registry.test",scope="repository:acme/app:pull""#),
                "\(challenge.headers)")

        let ring = try KeyRing.load(directory: issuer.home + "/keys")
        let key = try #require(ring.activeKey)
        let signer = try RegistryTokenIssuer(key: key, issuer: "regtoken-test", service: "registry.test")
        let now = Int64(Date().timeIntervalSince1970)
        let pull = try signer.issue(subject: "acme", access: [RegistryScope(type: "repository", name: "acme/app", actions: ["pull", "push"])], now: now).token
        // Granted: push (an upload starts), and pull of the repository (404: nothing pushed yet, not 401).
        let upload = try curl(["-H", "Authorization: Bearer \(pull)", "-X", "POST", "\(base)/acme/app/blobs/uploads/"])
        #expect(upload.status == 202, "\(upload)")
        #expect(try curl(["-H", "Authorization: Bearer \(pull)", "\(base)/acme/app/tags/list"]).status == 404)
        // Not in its access: another repository, refused by the registry itself.
        #expect(try curl(["-H", "Authorization: Bearer \(pull)", "\(base)/globex/app/tags/list"]).status == 401)
        // A JWT for another service, one past its exp (beyond the registry's leeway), one signed by another key: refused.
        let other = try RegistryTokenIssuer(key: key, issuer: "regtoken-test", service: "elsewhere")
        let wrongAudience = try other.issue(subject: "acme", access: [RegistryScope(type: "repository", name: "acme/app", actions: ["pull"])], now: now).token
        #expect(try curl(["-H", "Authorization: Bearer \(wrongAudience)", "\(base)/acme/app/tags/list"]).status == 401)
        let old = try signer.issue(subject: "acme", access: [RegistryScope(type: "repository", name: "acme/app", actions: ["pull"])], now: now - 3600).token
        #expect(try curl(["-H", "Authorization: Bearer \(old)", "\(base)/acme/app/tags/list"]).status == 401)
        let stranger = try RegistryTokenIssuer(key: try SigningKey.generate(.es256), issuer: "regtoken-test", service: "registry.test")
        let forged = try stranger.issue(subject: "acme", access: [RegistryScope(type: "repository", name: "acme/app", actions: ["pull"])], now: now).token
        #expect(try curl(["-H", "Authorization: Bearer \(forged)", "\(base)/acme/app/tags/list"]).status == 401)

        // A third party reads it: PyJWT with the certificate's key, the audience and the issuer;
        // and computes the libtrust kid from the certificate as distribution does.
        let py = try Harness.run("/usr/bin/env", ["python3", "-c", """
            import sys, jwt, hashlib, base64
            from cryptography import x509
            from cryptography.hazmat.primitives import serialization
            cert = x509.load_pem_x509_certificate(open(sys.argv[1], 'rb').read())
            claims = jwt.decode(sys.argv[2], cert.public_key(), algorithms=['ES256'], audience='registry.test', issuer='regtoken-test')
            spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
            b32 = base64.b32encode(hashlib.sha256(spki).digest()[:30]).decode().rstrip('=')
            kid = ':'.join(b32[i:i+4] for i in range(0, len(b32), 4))
            assert jwt.get_unverified_header(sys.argv[2])['kid'] == kid, (jwt.get_unverified_header(sys.argv[2]), kid)
            print(claims['sub'], claims['access'][0]['name'], ','.join(claims['access'][0]['actions']), claims['exp'] - claims['iat'])
            """, bundle, pull])
        #expect(py.status == 0 && py.out == "acme acme/app pull,push 300", "\(py.stdout) \(py.stderr)")

        // The JWKS for distribution 3 (auth.token.jwks): PyJWT finds the key by the JWT's kid in it.
        let jwks = try Harness.tempDir("jwks") + "/registry.jwks"
        let exported = try issuer("keys", "export-jwks", "--out", jwks)
        #expect(exported.status == 0, "\(exported.stderr)")
        let byKid = try Harness.run("/usr/bin/env", ["python3", "-c", """
            import sys, jwt, os, stat
            assert stat.S_IMODE(os.stat(sys.argv[1]).st_mode) == 0o644
            keys = jwt.PyJWKSet.from_json(open(sys.argv[1]).read())
            kid = jwt.get_unverified_header(sys.argv[2])['kid']
            key = [k for k in keys.keys if k.key_id == kid][0]
            claims = jwt.decode(sys.argv[2], key.key, algorithms=['ES256'], audience='registry.test', issuer='regtoken-test')
            print(len(keys.keys), claims['sub'])
            """, jwks, pull])
        #expect(byKid.status == 0 && byKid.out == "1 acme", "\(byKid.stdout) \(byKid.stderr)")
    }
}
