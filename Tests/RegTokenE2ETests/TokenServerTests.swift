import Foundation
import Testing

/// `regtoken serve` as the token server of a stock registry: Debian's docker-registry 2.8 with
/// distribution's `auth: token`, no proxy in front, and skopeo as the client.
@Suite("regtoken serve as the token server of a stock registry (auth: token)", .serialized)
struct TokenServerTests {
    @Test("push and pull with a read-write token, pull only with a read-only one, no other account's namespace, no catalog; a removed token gets no more registry tokens")
    func stockRegistry() throws {
        let server = try ServeTests.Server(extra: ["--token-service", "registry.test", "--token-issuer", "regtoken-test", "--token-region", "eu-west-1"])
        let acme = try ServeTests.Client(server, key: try server.addAccount("acme"))
        let globex = try ServeTests.Client(server, key: try server.addAccount("globex"))
        let bundle = try Harness.tempDir("bundle") + "/rootcerts.pem"
        #expect(try server("keys", "export-cert", "--out", bundle).status == 0)
        let registry = try Registry(tokenAuth: (realm: "\(server.url)/token", service: "registry.test", issuer: "regtoken-test", certificates: bundle))
        defer { registry.stop() }

        func token(_ client: ServeTests.Client, _ args: String...) throws -> (id: String, value: String) {
            let r = try Harness.run(Harness.binary, ["token-add", "--output", "json", "--home", client.home] + args, env: ["REGTOKEN_REGION": "eu-west-1"])
            let o = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], "\(r.stderr)")
            return (try #require(o["id"] as? String), try #require(o["token"] as? String))
        }
        let rw = try token(acme, "--readwrite")
        let ro = try token(acme)
        let other = try token(globex, "--readwrite")

        let image = try Harness.tempDir("img")
        #expect(try Harness.run("/bin/bash", ["\(Harness.scripts)/make-image.sh", image, "v1"]).status == 0)
        let skopeo = try Skopeo()
        let target = "docker://127.0.0.1:\(registry.port)"
        func push(_ credentials: String, _ repo: String) throws -> Harness.Output {
            try skopeo(["copy", "-q", "--dest-tls-verify=false", "--dest-creds", "token:\(credentials)", "oci:\(image):v1", "\(target)/\(repo):v1"])
        }
        func inspect(_ credentials: String, _ repo: String) throws -> Harness.Output {
            try skopeo(["inspect", "--tls-verify=false", "--creds", "token:\(credentials)", "\(target)/\(repo):v1"])
        }
        let pushed = try push(rw.value, "acme/app")
        #expect(pushed.status == 0, "\(pushed.stderr) \(server.logText)")
        #expect(try inspect(rw.value, "acme/app").status == 0)
        let pulled = try inspect(ro.value, "acme/app")
        #expect(pulled.status == 0, "\(pulled.stderr)")
        // A read-only token cannot push; another account's token cannot reach acme, nor acme globex.
        #expect(try push(ro.value, "acme/other").status != 0)
        #expect(try inspect(other.value, "acme/app").status != 0)
        #expect(try push(rw.value, "globex/app").status != 0)
        #expect(try push(other.value, "globex/app").status == 0)

        // The token endpoint itself, as the specification has it.
        func ask(_ credentials: String?, _ query: String) throws -> (status: Int, body: [String: Any]) {
            var args = ["\(server.url)/token?\(query)"]
            if let credentials { args = ["-u", "token:\(credentials)"] + args }
            let r = try curl(args)
            return (r.status, (try? JSONSerialization.jsonObject(with: Data(r.body.utf8)) as? [String: Any]) ?? [:])
        }
        func access(_ answer: (status: Int, body: [String: Any])) throws -> [String] {
            let jwt = try #require(answer.body["token"] as? String)
            #expect(answer.body["access_token"] as? String == jwt)
            let payload = try #require(try JSONSerialization.jsonObject(with: Data(base64URL: String(jwt.split(separator: ".")[1]))) as? [String: Any])
            #expect(payload["aud"] as? String == "registry.test" && payload["iss"] as? String == "regtoken-test" && payload["sub"] as? String == "acme")
            return (payload["access"] as? [[String: Any]] ?? []).map { "\($0["type"]!):\($0["name"]!):\(($0["actions"] as? [String] ?? []).joined(separator: ","))" }
        }
        // Several scopes, in one parameter and in several; unknown types and the catalog left out.
        let several = try ask(rw.value, "service=registry.test&scope=repository:acme/app:pull,push%20repository:acme/x:delete&scope=registry:catalog:*&scope=thing:acme/app:pull")
        #expect(several.status == 200 && (several.body["expires_in"] as? Int) == 300, "\(several)")
        #expect(try access(several) == ["repository:acme/app:pull,push"])
        // Without a scope (docker login): a token with no access.
        #expect(try access(try ask(ro.value, "service=registry.test")) == [])
        // A registry token asking for the catalog gets nothing the registry accepts for it.
        let catalogJWT = try #require(try ask(rw.value, "service=registry.test&scope=registry:catalog:*").body["token"] as? String)
        #expect(try curl(["-H", "Authorization: Bearer \(catalogJWT)", "http://127.0.0.1:\(registry.port)/v2/_catalog"]).status == 401)
        // Malformed scope, missing or wrong service: 400; no or bad credentials: 401 with a challenge.
        #expect(try ask(rw.value, "service=registry.test&scope=repository:acme/app").status == 400)
        #expect(try ask(rw.value, "scope=repository:acme/app:pull").status == 400)
        #expect(try ask(rw.value, "service=elsewhere&scope=repository:acme/app:pull").status == 400)
        let anonymous = try curl(["\(server.url)/token?service=registry.test"])
        #expect(anonymous.status == 401 && anonymous.headers.lowercased().contains("www-authenticate: basic"), "\(anonymous)")
        #expect(try ask("garbage", "service=registry.test").status == 401)

        // Removed through the service: its next registry token is refused, and so its next push.
        #expect(try acme("token-rm", rw.id).status == 0)
        let revoked = try ask(rw.value, "service=registry.test&scope=repository:acme/app:pull")
        #expect(revoked.status == 401 && "\(revoked.body)".contains("revoked"), "\(revoked)")
        #expect(try push(rw.value, "acme/app2").status != 0)
        // The service's log holds no token.
        #expect(!server.logText.contains(rw.value) && !server.logText.contains("eyJ"))
    }
}
