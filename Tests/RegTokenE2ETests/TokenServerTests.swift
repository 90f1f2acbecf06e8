import Foundation
import Testing

/// `regtoken serve` as the token server of a stock registry: Debian's docker-registry 2.8 with
/// distribution's `auth: token`, no proxy in front, and skopeo as the client.
@Suite("regtoken serve as the token server of a stock registry (auth: token)", .serialized)
struct TokenServerTests {
    @Test("push and pull with a read-write token, pull only with a read-only one, no other account's namespace, no catalog; a removed token gets no more registry tokens")
    func stockRegistry() throws {
        let server = try ServeTests.Server(extra: ["--token-service", "registry.test", "--token-issuer", "regtoken-test", "--token-region", "eu-west-1",
                                                   "--trusted-proxy", "127.0.0.1/32"])
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

        let image = try Skopeo.makeImage()
        let skopeo = try Skopeo()
        func push(_ credentials: String, _ repo: String) throws -> Harness.Output { try skopeo.push(image, port: registry.port, repo, token: credentials) }
        func inspect(_ credentials: String, _ repo: String) throws -> Harness.Output { try skopeo.inspect(port: registry.port, repo, token: credentials) }
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

        // A cross-repository mount needs pull on its source: granted from acme/app, so the blob
        // is mounted (201); asked from globex/app, left out of the grant, so the registry refuses
        // the mount itself (401) and nothing lands in the target.
        let layer = try Self.firstLayerDigest(image)
        /// A mount of the layer at the stock registry with the registry token `credentials` gets for both repositories.
        func mount(from source: String, into target: String, with credentials: String? = nil) throws -> Int {
            let jwt = try #require(try ask(credentials ?? rw.value, "service=registry.test&scope=repository:\(target):pull,push&scope=repository:\(source):pull").body["token"] as? String)
            return try curl(["-X", "POST", "-H", "Authorization: Bearer \(jwt)",
                             "http://127.0.0.1:\(registry.port)/v2/\(target)/blobs/uploads/?mount=\(layer)&from=\(source)"]).status
        }
        #expect(try mount(from: "acme/app", into: "acme/mounted") == 201)
        #expect(try mount(from: "globex/app", into: "acme/stolen") == 401)
        let probe = try #require(try ask(rw.value, "service=registry.test&scope=repository:acme/stolen:pull").body["token"] as? String)
        #expect(try curl(["-I", "-H", "Authorization: Bearer \(probe)", "http://127.0.0.1:\(registry.port)/v2/acme/stolen/blobs/\(layer)"]).status == 404)

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

        // Fine-grained tokens (made through the service's API): the registry token grants what
        // the rules allow, so the stock registry refuses the rest; an address-limited token gets a
        // registry token only for a requester inside its ranges (the client a trusted proxy names).
        let ruled = try token(acme, "--readwrite", "--delete", "--repository", "acme/ci-*:pull,push", "--repository", "acme/app:pull")
        #expect(try push(ruled.value, "acme/ci-build").status == 0)
        #expect(try push(ruled.value, "acme/app").status != 0)
        #expect(try inspect(ruled.value, "acme/app").status == 0)
        // Its scope has delete, its rules do not: no delete granted; a mount from a repository no
        // rule allows (globex/app) is refused by the registry, one from acme/app (pull rule) is not.
        #expect(try access(try ask(ruled.value, "service=registry.test&scope=repository:acme/ci-build:delete")) == [])
        #expect(try mount(from: "acme/app", into: "acme/ci-mounted", with: ruled.value) == 201)
        #expect(try mount(from: "globex/app", into: "acme/ci-stolen", with: ruled.value) == 401)
        #expect(try mount(from: "acme/other", into: "acme/ci-stolen2", with: ruled.value) == 401)
        #expect(try access(try ask(ruled.value, "service=registry.test&scope=repository:acme/ci-x:pull,push&scope=repository:acme/app:pull,push&scope=repository:acme/other:pull"))
                == ["repository:acme/ci-x:pull,push", "repository:acme/app:pull"])
        let farm = try token(acme, "--allow-from", "198.51.100.0/24")
        func fromFarm(_ forwardedFor: String?) throws -> Int {
            var args = ["-u", "token:\(farm.value)"]
            if let forwardedFor { args += ["-H", "X-Forwarded-For: \(forwardedFor)"] }
            return try curl(args + ["\(server.url)/token?service=registry.test&scope=repository:acme/app:pull"]).status
        }
        #expect(try fromFarm(nil) == 401)
        #expect(try fromFarm("198.51.100.20") == 200)
        #expect(try fromFarm("203.0.113.20") == 401)

        // OAuth2 (POST): the password grant with a refresh token, then the refresh_token grant as
        // containers/image sends it: skopeo with the refresh token as the stored identity token
        // (what docker login keeps in place of the password) pushes, and stops when the token is removed.
        let kept = try token(acme, "--readwrite")
        func post(_ fields: [String: String], scopes: [String] = []) throws -> (status: Int, body: [String: Any]) {
            var args = ["-X", "POST"]
            for (name, value) in fields.sorted(by: { $0.key < $1.key }) { args += ["--data-urlencode", "\(name)=\(value)"] }
            for scope in scopes { args += ["--data-urlencode", "scope=\(scope)"] }
            let r = try curl(args + ["\(server.url)/token"])
            return (r.status, (try? JSONSerialization.jsonObject(with: Data(r.body.utf8)) as? [String: Any]) ?? [:])
        }
        let login = try post(["grant_type": "password", "username": "token", "password": kept.value, "service": "registry.test",
                              "client_id": "docker", "access_type": "offline"],
                             scopes: ["repository:acme/app:pull,push repository:globex/app:pull"])
        #expect(login.status == 200 && login.body["scope"] as? String == "repository:acme/app:pull,push", "\(login)")
        #expect(try access(login) == ["repository:acme/app:pull,push"])
        let refresh = try #require(login.body["refresh_token"] as? String)
        #expect(!refresh.contains(kept.value))
        // Without access_type=offline no refresh token; GET gives one for offline_token=true (docker login).
        #expect(try post(["grant_type": "password", "username": "token", "password": kept.value, "service": "registry.test", "client_id": "docker"]).body["refresh_token"] == nil)
        #expect(try ask(kept.value, "service=registry.test&offline_token=true&client_id=docker").body["refresh_token"] is String)
        let refreshed = try post(["grant_type": "refresh_token", "refresh_token": refresh, "service": "registry.test", "client_id": "containers/image"],
                                 scopes: ["repository:acme/app:pull", "repository:acme/app:delete"])
        #expect(refreshed.status == 200, "\(refreshed)")
        #expect(try access(refreshed) == ["repository:acme/app:pull"])
        // The spec's errors: each names what is wrong; a token is no refresh token and the reverse.
        func error(_ r: (status: Int, body: [String: Any])) -> String { "\(r.status) \(r.body["error"] as? String ?? "-")" }
        #expect(error(try post(["grant_type": "refresh_token", "refresh_token": kept.value, "service": "registry.test", "client_id": "c"])) == "400 invalid_grant")
        #expect(try ask(refresh, "service=registry.test").status == 401)
        #expect(error(try post(["grant_type": "client_credentials", "service": "registry.test", "client_id": "c"])) == "400 unsupported_grant_type")
        #expect(error(try post(["grant_type": "refresh_token", "refresh_token": refresh, "client_id": "c"])) == "400 invalid_request")
        #expect(error(try post(["grant_type": "refresh_token", "refresh_token": refresh, "service": "elsewhere", "client_id": "c"])) == "400 invalid_request")
        #expect(error(try post(["grant_type": "refresh_token", "refresh_token": refresh, "service": "registry.test", "client_id": "c"], scopes: ["repository:acme"])) == "400 invalid_scope")
        #expect(error(try post(["grant_type": "password", "username": "admin", "password": kept.value, "service": "registry.test", "client_id": "c"])) == "400 invalid_grant")

        let authfile = try Harness.tempDir("auth") + "/auth.json"
        let entry: [String: Any] = ["auths": ["127.0.0.1:\(registry.port)": ["auth": Data("token:".utf8).base64EncodedString(), "identitytoken": refresh]]]
        try JSONSerialization.data(withJSONObject: entry).write(to: URL(fileURLWithPath: authfile))
        func pushWithIdentity(_ repo: String) throws -> Harness.Output {
            try skopeo(["copy", "-q", "--dest-tls-verify=false", "--dest-authfile", authfile, "oci:\(image):v1", "docker://127.0.0.1:\(registry.port)/\(repo):v1"])
        }
        func grantedPosts() -> Int {
            server.logText.split(separator: "\n").filter { $0.contains("method=POST") && $0.contains("path=/token") && $0.contains("status=200") }.count
        }
        let postsBefore = grantedPosts()
        let viaRefresh = try pushWithIdentity("acme/refreshed")
        #expect(viaRefresh.status == 0, "\(viaRefresh.stderr) \(server.logText)")
        #expect(grantedPosts() > postsBefore, "skopeo did not use the refresh token grant")
        #expect(try acme("token-rm", kept.id).status == 0)
        let afterRemoval = try post(["grant_type": "refresh_token", "refresh_token": refresh, "service": "registry.test", "client_id": "containers/image"])
        #expect(error(afterRemoval) == "400 invalid_grant" && "\(afterRemoval.body)".contains("removed"), "\(afterRemoval)")
        #expect(try pushWithIdentity("acme/refreshed2").status != 0)

        // Removed through the service: its next registry token is refused, and so its next push.
        #expect(try acme("token-rm", rw.id).status == 0)
        let revoked = try ask(rw.value, "service=registry.test&scope=repository:acme/app:pull")
        #expect(revoked.status == 401 && "\(revoked.body)".contains("revoked"), "\(revoked)")
        #expect(try push(rw.value, "acme/app2").status != 0)
        // The service's log holds no token.
        #expect(!server.logText.contains(rw.value) && !server.logText.contains("eyJ"))
    }

    /// The digest of the first layer of the image in the OCI layout at `dir`.
    static func firstLayerDigest(_ dir: String) throws -> String {
        func json(_ path: String) throws -> [String: Any] {
            try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
        }
        let index = try json("\(dir)/index.json")
        let manifestDigest = try #require((index["manifests"] as? [[String: Any]])?.first?["digest"] as? String)
        let manifest = try json("\(dir)/blobs/sha256/\(manifestDigest.dropFirst("sha256:".count))")
        return try #require((manifest["layers"] as? [[String: Any]])?.first?["digest"] as? String)
    }
}
