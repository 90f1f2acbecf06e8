import Foundation
import Testing

/// `regtoken serve`, its accounts and the command line as its client, as users would use them.
@Suite("regtoken serve: accounts, the API, and the command line as its client", .serialized)
struct ServeTests {
    /// `regtoken serve` on 127.0.0.1, its home made and its accounts added by the operator's commands.
    final class Server {
        let port: Int
        let home: String
        let log: String
        private(set) var process: Spawned

        init(home: String? = nil, alg: String = "ES256", extra: [String] = []) throws {
            port = Harness.freePort()
            self.home = try home ?? (Harness.tempDir("serve") + "/home")
            log = try Harness.tempDir("serve-log") + "/serve.log"
            if home == nil {
                let r = try Harness.run(Harness.binary, ["init", "--alg", alg, "--home", self.home])
                guard r.status == 0 else { throw HarnessError("init: \(r.stderr)") }
            }
            process = try Self.spawn(home: self.home, port: port, log: log, extra: extra)
        }

        static func spawn(home: String, port: Int, log: String, extra: [String]) throws -> Spawned {
            let p = try Spawned([Harness.binary, "serve", "--listen", "127.0.0.1:\(port)", "--home", home] + extra, log: log)
            guard Harness.waitForPort(port) else { throw HarnessError("serve did not start: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")") }
            return p
        }

        var url: String { "http://127.0.0.1:\(port)" }
        var logText: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }

        /// An operator command on the server's home.
        @discardableResult
        func callAsFunction(_ args: String...) throws -> Harness.Output {
            try Harness.run(Harness.binary, args + ["--home", home])
        }

        func addAccount(_ name: String, _ extra: String...) throws -> String {
            let r = try Harness.run(Harness.binary, ["accounts", "add", name, "-q", "--home", home] + extra)
            guard r.status == 0 else { throw HarnessError("accounts add: \(r.stderr)") }
            return r.out
        }

        func restart() throws {
            process = try Self.spawn(home: home, port: port, log: log, extra: [])
        }

        func kill9() { process.signal(SIGKILL); while process.isRunning { usleep(10_000) } }

        deinit { process.stop() }
    }

    /// A client machine: its own home, logged in to the service.
    struct Client {
        let home: String
        init(_ server: Server, key: String) throws {
            home = try Harness.tempDir("client") + "/home"
            let r = try Harness.run(Harness.binary, ["login", server.url, "--api-key-stdin", "--home", home], input: key + "\n")
            guard r.status == 0 else { throw HarnessError("login: \(r.stderr)") }
        }

        @discardableResult
        func callAsFunction(_ args: String...) throws -> Harness.Output {
            try Harness.run(Harness.binary, args + ["--home", home], env: ["REGTOKEN_REGION": "eu-west-1"])
        }
    }

    /// Replaces token ids, values and times by placeholders, to compare local and server mode.
    static func shape(_ text: String) -> String {
        var s = text
        for (pattern, placeholder) in [
            (#"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"#, "<id>"),
            (#"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+"#, "<token>"),
            (#"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"#, "<time>"),
            (#"(es256|hs256)-[0-9a-f]{12}"#, "<kid>"),
        ] {
            s = s.replacingOccurrences(of: pattern, with: placeholder, options: .regularExpression)
        }
        return s
    }

    func verify(_ server: Server, _ token: String, _ args: String...) throws -> Int32 {
        try Harness.run(Harness.binary, ["verify", token, "--home", server.home, "--region", "eu-west-1"] + args).status
    }

    @Test("two account holders on two machines: the whole workflow through serve, outputs as in local mode, neither sees the other's tokens")
    func workflow() throws {
        let server = try Server(alg: "HS256")
        let acmeKey = try server.addAccount("acme")
        let acme = try Client(server, key: acmeKey)
        let globex = try Client(server, key: try server.addAccount("globex"))
        let local = try Harness.tempDir("local") + "/home"
        func localRun(_ args: String...) throws -> Harness.Output {
            try Harness.run(Harness.binary, args + ["--home", local], env: ["REGTOKEN_REGION": "eu-west-1", "REGTOKEN_ACCOUNT": "acme"])
        }
        #expect(try localRun("init", "--alg", "HS256").status == 0)

        // token-add: the same lines, the same JSON fields.
        let added = try acme("token-add", "--description", "ci pull")
        #expect(added.status == 0, "\(added.stderr)")
        #expect(Self.shape(added.stdout) == Self.shape(try localRun("token-add", "--description", "ci pull").stdout))
        let addedJSON = try acme("token-add", "--readwrite", "--description", "deploy", "--output", "json")
        #expect(Self.shape(addedJSON.stdout) == Self.shape(try localRun("token-add", "--readwrite", "--description", "deploy", "--output", "json").stdout)
                .replacingOccurrences(of: "\"account\" : \"acme\"", with: "\"account\" : \"acme\""))
        let forever = try acme("token-add", "--non-expiring", "--output", "json")
        _ = try localRun("token-add", "--non-expiring", "--output", "json")
        #expect(Self.shape(try acme("token-add", "-q").stdout) == Self.shape(try localRun("token-add", "-q").stdout))

        // token-list, token-get: the same tables and lines.
        let list = try acme("token-list")
        #expect(list.status == 0)
        // (Rows made in the same second are ordered by id, which is random: compare them sorted.)
        func rows(_ text: String) -> [String] { Self.shape(text).split(separator: "\n").map(String.init).sorted() }
        let localList = try localRun("token-list").stdout
        #expect(rows(list.stdout) == rows(localList), "\(list.stdout)")
        let ids = try #require(try JSONSerialization.jsonObject(with: Data(try acme("token-list", "--output", "json").stdout.utf8)) as? [[String: Any]]).compactMap { $0["id"] as? String }
        #expect(ids.count == 4)
        let firstID = try #require(added.stdout.split(separator: "\n").first.map { String($0.dropFirst("Token identifier   ".count)) })
        #expect(ids.contains(firstID))
        let got = try acme("token-get", firstID)
        #expect(got.status == 0 && got.stdout.hasPrefix("Token identifier   \(firstID)\nToken              eyJ"))
        // HS256: the same bytes as token-add printed.
        let value = try #require(added.stdout.split(separator: "\n").last.map { String($0.dropFirst("Token              ".count)) })
        #expect(try acme("token-get", firstID, "-q").out == value)
        #expect(try verify(server, value) == 0)

        // Isolation: globex sees none of acme's tokens, by list, by id, by guessing.
        #expect(try globex("token-list").stdout.split(separator: "\n").count == 1)
        let other = try globex("token-get", firstID)
        let unknown = try globex("token-get", UUID().uuidString.lowercased())
        #expect(other.status == 3 && unknown.status == 3)
        #expect(Self.shape(other.stderr) == Self.shape(unknown.stderr), "\(other.stderr) vs \(unknown.stderr)")
        #expect(try globex("token-rm", firstID).status == 3)
        #expect(try verify(server, value) == 0, "globex removed acme's token")
        // The API answers another account's id exactly as an unknown one.
        let globexKey = try #require(try Harness.run(Harness.binary, ["accounts", "rotate-key", "globex", "-q", "--home", server.home]).out as String?)
        let a = try curl(["-H", "Authorization: Bearer \(globexKey)", "\(server.url)/v1/tokens/\(firstID)?region=eu-west-1"])
        let b = try curl(["-H", "Authorization: Bearer \(globexKey)", "\(server.url)/v1/tokens/0b4e6a52-6f8e-4c1d-9a51-3f6e2c1d0a99?region=eu-west-1"])
        #expect(a.status == 404 && b.status == 404)
        #expect(a.body.replacingOccurrences(of: firstID, with: "X") == b.body.replacingOccurrences(of: "0b4e6a52-6f8e-4c1d-9a51-3f6e2c1d0a99", with: "X"))

        // token-rm: removed and revoked, as verifiers see it.
        let rm = try acme("token-rm", firstID)
        #expect(rm.out == "Removed \(firstID) (revoked)")
        #expect(try verify(server, value) == 13)
        #expect(!(try acme("token-list").stdout.contains(firstID)))
        let foreverID = try #require((try JSONSerialization.jsonObject(with: Data(forever.stdout.utf8)) as? [String: Any])?["id"] as? String)
        #expect(try acme("token-rm", foreverID, "--output", "json").stdout.contains("\"revocation_list_version\""))
        // Several ids: one request, all or none. An unknown id among them removes nothing.
        func listed() throws -> [String] {
            try #require(try JSONSerialization.jsonObject(with: Data(try acme("token-list", "--output", "json").stdout.utf8)) as? [[String: Any]]).compactMap { $0["id"] as? String }
        }
        let remaining = try listed()
        #expect(remaining.count == 2)
        let missing = UUID().uuidString.lowercased()
        let partial = try acme("token-rm", remaining[0], missing, remaining[1])
        #expect(partial.status == 3 && partial.stderr.contains(missing) && partial.stderr.contains("nothing was removed"), "\(partial.stderr)")
        #expect(try listed().sorted() == remaining.sorted())
        // Through the API: the same, and bad input is 400 naming the field; another account's id is unknown.
        func removal(_ key: String, _ body: String) throws -> (status: Int, body: String) {
            let r = try curl(["-X", "POST", "-H", "Authorization: Bearer \(key)", "-H", "Content-Type: application/json", "--data-binary", body, "\(server.url)/v1/token-removals"])
            return (r.status, r.body)
        }
        let notUUID = try removal(acmeKey, #"{"region":"eu-west-1","ids":["\#(remaining[0])","nope"]}"#)
        #expect(notUUID.status == 400 && (try? JSONSerialization.jsonObject(with: Data(notUUID.body.utf8)) as? [String: Any])?["field"] as? String == "ids",
                "\(notUUID.body)")
        #expect(try removal(acmeKey, #"{"region":"eu-west-1","ids":[]}"#).status == 400)
        #expect(try removal(acmeKey, #"{"region":"eu west","ids":["\#(remaining[0])"]}"#).status == 400)
        #expect(try removal(acmeKey, #"{"region":"us-east-1","ids":["\#(remaining[0])"]}"#).status == 404)
        let many = (0..<1001).map { _ in "\"\(UUID().uuidString)\"" }.joined(separator: ",")
        #expect(try removal(acmeKey, #"{"region":"eu-west-1","ids":[\#(many)]}"#).status == 400)
        #expect(try removal(globexKey, #"{"region":"eu-west-1","ids":["\#(remaining[0])"]}"#).status == 404)
        #expect(try listed().sorted() == remaining.sorted())
        let both = try removal(acmeKey, #"{"region":"eu-west-1","ids":["\#(remaining[0])","\#(remaining[1].uppercased())","\#(remaining[0])"]}"#)
        #expect(both.status == 200, "\(both.body)")
        let answer = try #require(try JSONSerialization.jsonObject(with: Data(both.body.utf8)) as? [String: Any])
        #expect(Set(answer["removed"] as? [String] ?? []) == Set(remaining) && (answer["removed"] as? [String])?.count == 2)
        #expect(Set(answer["revoked"] as? [String] ?? []) == Set(remaining))
        #expect(try listed().isEmpty)
        // One token by DELETE: removed and revoked; again, or by another account, 404.
        let single = try #require(try JSONSerialization.jsonObject(with: Data(try acme("token-add", "--output", "json").stdout.utf8)) as? [String: Any])
        let singleID = try #require(single["id"] as? String)
        func delete(_ key: String, _ id: String) throws -> (status: Int, body: String) {
            let r = try curl(["-X", "DELETE", "-H", "Authorization: Bearer \(key)", "\(server.url)/v1/tokens/\(id)?region=eu-west-1"])
            return (r.status, r.body)
        }
        #expect(try delete(globexKey, singleID).status == 404)
        let deleted = try delete(acmeKey, singleID)
        let deletedBody = try JSONSerialization.jsonObject(with: Data(deleted.body.utf8)) as? [String: Any]
        #expect(deleted.status == 200 && deletedBody?["removed"] as? [String] == [singleID] && deletedBody?["revoked"] as? [String] == [singleID], "\(deleted.body)")
        #expect(try delete(acmeKey, singleID).status == 404)
        #expect(try listed().isEmpty)
        // Logged out: local mode again.
        #expect(try acme("logout").out == "Logged out of \(server.url)")
        #expect(try acme("token-list", "--account", "acme").status == 0)
        // The access log never holds a token or an API key.
        for line in server.logText.split(separator: "\n") { #expect(!line.contains("eyJ") && !line.contains("rtk_")) }
    }

    @Test("a proxy fed only by --issuer in front of the real registry: namespaces given to the account work, others do not; a token removed through the service is refused within 2 s")
    func proxyFedByIssuer() throws {
        let server = try Server()
        let acme = try Client(server, key: try server.addAccount("acme", "--namespace", "acme", "--namespace", "acme-team"))
        _ = try server.addAccount("globex")
        let registry = try Registry()
        let proxy = try ProxyProcess(upstream: registry.port, args: ["--issuer", server.url, "--home", try Harness.tempDir("proxy-home")])
        let added = try acme("token-add", "--readwrite", "--output", "json")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(added.stdout.utf8)) as? [String: Any])
        let token = try #require(object["token"] as? String), id = try #require(object["id"] as? String)
        let dir = try Harness.tempDir("img")
        #expect(try Harness.run("/bin/bash", ["\(Harness.scripts)/make-image.sh", dir, "v1"]).status == 0)
        let skopeo = try Skopeo()
        func push(_ repo: String) throws -> Harness.Output {
            try skopeo(["copy", "-q", "--dest-tls-verify=false", "--dest-creds", "token:\(token)", "oci:\(dir):v1", "docker://127.0.0.1:\(proxy.port)/\(repo):v1"])
        }
        #expect(try push("acme/app").status == 0)
        let given = try push("acme-team/app")
        #expect(given.status == 0, "\(given.stderr)")
        #expect(try push("globex/app").status != 0)
        #expect(try push("nobody/app").status != 0)
        // (skopeo stops at a refused HEAD, which has no body: the reasons, by GET.)
        let other = try curl(["-H", basicAuth(token), "http://127.0.0.1:\(proxy.port)/v2/globex/app/tags/list"])
        #expect(other.status == 403 && other.body.contains("not owned"), "\(other.body)")
        let unknown = try curl(["-H", basicAuth(token), "http://127.0.0.1:\(proxy.port)/v2/nobody/app/tags/list"])
        #expect(unknown.status == 403 && unknown.body.contains("does not exist"), "\(unknown.body)")
        // Removed through the service: refused at the proxy within 2 s.
        #expect(try acme("token-rm", id).status == 0)
        let removedAt = Date()
        var refused = false
        while Date().timeIntervalSince(removedAt) < 2 && !refused {
            refused = try curl(["-H", basicAuth(token), "http://127.0.0.1:\(proxy.port)/v2/"]).status == 401
            if !refused { usleep(100_000) }
        }
        #expect(refused, "the removed token still works after 2 s")
        #expect(try skopeo(["inspect", "--tls-verify=false", "--creds", "token:\(token)", "docker://127.0.0.1:\(proxy.port)/acme/app:v1"]).stderr.contains("token revoked"))
    }

    @Test("a service older than this client (Go's plain 404), or not a regtoken service: token-rm says to upgrade it; others say what answered, not 'cannot reach'")
    func olderService() throws {
        let port = Harness.freePort()
        let log = try Harness.tempDir("older") + "/log"
        let service = try Spawned(["python3", "\(Harness.scripts)/older_service.py", String(port)], log: log)
        defer { service.stop() }
        #expect(Harness.waitForPort(port))
        let env = ["REGTOKEN_SERVER": "http://127.0.0.1:\(port)", "REGTOKEN_API_KEY": "rtk_unused", "REGTOKEN_REGION": "eu-west-1",
                   "REGTOKEN_HOME": try Harness.tempDir("older-job") + "/never-made"]
        let rm = try Harness.run(Harness.binary, ["token-rm", "6ba7b810-9dad-11d1-80b4-00c04fd430c8"], env: env)
        #expect(rm.status == 1 && rm.stderr.contains("POST /v1/token-removals): upgrade the service"), "\(rm.stderr)")
        let add = try Harness.run(Harness.binary, ["token-add"], env: env)
        #expect(add.status != 0 && add.stderr.contains("the service answered 404"), "\(add.stderr)")
        // Not a regtoken service: a documented status without the API's JSON.
        let otherPort = Harness.freePort()
        let other = try Spawned(["python3", "\(Harness.scripts)/older_service.py", String(otherPort), "401"], log: log + ".401")
        defer { other.stop() }
        #expect(Harness.waitForPort(otherPort))
        var otherEnv = env
        otherEnv["REGTOKEN_SERVER"] = "http://127.0.0.1:\(otherPort)"
        let list = try Harness.run(Harness.binary, ["token-list"], env: otherEnv)
        #expect(list.status == 1 && list.stderr.contains("answered 401 with something this regtoken cannot read")
                && !list.stderr.contains("cannot reach"), "\(list.stderr)")
    }

    @Test("TLS, metrics, REGTOKEN_SERVER and REGTOKEN_API_KEY for a CI job, and accounts rm: its keys stop, its tokens are revoked")
    func operations() throws {
        let pki = try Harness.tempDir("pki")
        let certs = try Harness.bash("""
            set -e; cd "$1"
            openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.crt -days 2 -subj /CN=regtoken-test-ca 2>/dev/null
            openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server.key -out server.csr -subj /CN=127.0.0.1 2>/dev/null
            printf 'subjectAltName=IP:127.0.0.1\\nbasicConstraints=CA:FALSE\\nextendedKeyUsage=serverAuth\\n' > ext.cnf
            openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 2 -extfile ext.cnf 2>/dev/null
            chmod 600 server.key
            """, [pki])
        #expect(certs.status == 0, "\(certs.stderr)")
        let metricsPort = Harness.freePort()
        let server = try Server(extra: ["--tls-cert", "\(pki)/server.crt", "--tls-key", "\(pki)/server.key", "--metrics", "127.0.0.1:\(metricsPort)"])
        let key = try server.addAccount("acme")
        let url = "https://127.0.0.1:\(server.port)"
        // A CI job: no login, no home of its own; the environment names the service.
        let job = try Harness.tempDir("job") + "/never-made"
        let env = ["REGTOKEN_SERVER": url, "REGTOKEN_API_KEY": key, "REGTOKEN_SERVER_CA": "\(pki)/ca.crt", "REGTOKEN_REGION": "eu-west-1", "REGTOKEN_HOME": job]
        let added = try Harness.run(Harness.binary, ["token-add", "--readwrite", "-q"], env: env)
        #expect(added.status == 0, "\(added.stderr)")
        #expect(!FileManager.default.fileExists(atPath: job), "a CI job's token-add made a local home")
        #expect(try verify(server, added.out, "--access", "push") == 0)
        // Without the CA, the service's certificate is not trusted.
        var untrusted = env
        untrusted["REGTOKEN_SERVER_CA"] = nil
        let refused = try Harness.run(Harness.binary, ["token-list"], env: untrusted)
        #expect(refused.status == 1 && refused.stderr.contains("cannot reach the service"), "\(refused.stderr)")
        // Plain HTTP to the TLS port: a 400 that says to use https, in the API's error shape (not
        // a TLS alert a client shows as garbage); https goes on being served.
        let plain = try curl(["http://127.0.0.1:\(server.port)/healthz"])
        #expect(plain.status == 400 && plain.body.contains(#""code":"invalid_input""#) && plain.body.contains("use https://"), "\(plain)")
        #expect(try Harness.run(Harness.binary, ["token-list"], env: env).status == 0)
        // Metrics of the requests.
        let m = try curl(["http://127.0.0.1:\(metricsPort)/metrics"])
        #expect(m.status == 200 && m.body.contains("hb_"), "\(m.body.prefix(500))")
        // accounts rm: the key stops at once, the token is revoked.
        let rm = try server("accounts", "rm", "acme")
        #expect(rm.status == 0 && rm.out.contains("Removed account acme"), "\(rm.stderr)")
        #expect(try verify(server, added.out) == 13)
        let after = try Harness.run(Harness.binary, ["token-list"], env: env)
        #expect(after.status == 1 && after.stderr.contains("API key"), "\(after.stderr)")
        #expect(try server("accounts", "list").out.split(separator: "\n").count == 1)
    }

    @Test("schemathesis against the live service and its own /openapi.yaml: no 5xx, no answer outside the schema, every check")
    func schemathesis() throws {
        // Fuzzing sends many bad keys from one address: the 429 limit would hide the other answers.
        let server = try Server(extra: ["--auth-failure-limit", "100000000", "--token-service", "registry.test", "--token-issuer", "regtoken-test", "--token-region", "eu-west-1"])
        let key = try server.addAccount("acme", "--namespace", "acme", "--namespace", "acme-ci")
        let out = try Harness.tempDir("schemathesis") + "/report.txt"
        // The account API with its API key; /token (Basic credentials with a regtoken token) below.
        let r = try Harness.run("/usr/bin/env", ["schemathesis", "--config-file", "\(Harness.scripts)/schemathesis.toml", "run", "\(server.url)/openapi.yaml", "--checks", "all",
                                                 "-H", "Authorization: Bearer \(key)", "--max-examples", "40", "--workers", "2",
                                                 "--exclude-path", "/token", "--no-color"], env: ["SCHEMATHESIS_HOOKS": ""])
        try? r.stdout.write(toFile: out, atomically: true, encoding: .utf8)
        #expect(r.status == 0, "schemathesis found problems:\n\(r.stdout.suffix(6000))\n\(r.stderr.suffix(2000))")
        #expect(r.stdout.contains("No issues found"), "\(r.stdout.suffix(3000))")
        // The token endpoint with a real regtoken token of acme, so that its answers include the
        // 200s. Every check but "schema-valid data is accepted": a service other than the one
        // configured is schema-valid and still refused (400), since the right one is configuration.
        let client = try Client(server, key: key)
        let added = try client("token-add", "--readwrite", "-q")
        #expect(added.status == 0, "\(added.stderr)")
        let basic = Data("token:\(added.out)".utf8).base64EncodedString()
        let t = try Harness.run("/usr/bin/env", ["schemathesis", "--config-file", "\(Harness.scripts)/schemathesis.toml", "run", "\(server.url)/openapi.yaml", "--checks", "all",
                                                 "--exclude-checks", "positive_data_acceptance", "-H", "Authorization: Basic \(basic)",
                                                 "--include-path", "/token", "--max-examples", "60", "--workers", "2", "--no-color",
                                                 // (One operation alone has no links to follow: no stateful phase.)
                                                 "--phases", "examples,coverage,fuzzing"],
                                env: ["SCHEMATHESIS_HOOKS": ""])
        #expect(t.status == 0, "schemathesis found problems with /token:\n\(t.stdout.suffix(6000))\n\(t.stderr.suffix(2000))")
        // (Its one expected warning: most generated services are refused, see above.)
        #expect(t.stdout.contains(" passed") && !t.stdout.contains("FAILURES") && !t.stdout.contains("ERRORS"), "\(t.stdout.suffix(3000))")
        for line in server.logText.split(separator: "\n") { #expect(!line.contains(key) && !line.contains(added.out)) }
    }

    @Test("2 client processes x 100 concurrent token-add: 200 distinct tokens; kill -9 under that load loses no acknowledged token")
    func concurrencyAndCrash() throws {
        let server = try Server(alg: "HS256")
        let key = try server.addAccount("acme")
        let load = """
            import json, sys, threading, urllib.request
            url, key, n, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
            acked, lock = [], threading.Lock()
            def one():
                req = urllib.request.Request(url + "/v1/tokens", method="POST", data=b'{"region":"eu-west-1","readwrite":true}',
                                             headers={"Authorization": "Bearer " + key, "Content-Type": "application/json"})
                try:
                    with urllib.request.urlopen(req, timeout=30) as r:
                        body = json.load(r)
                        if r.status == 201:
                            with lock: acked.append([body["id"], body["token"]])
                except Exception:
                    pass
            threads = [threading.Thread(target=one) for _ in range(n)]
            for t in threads: t.start()
            for t in threads: t.join()
            json.dump(acked, open(out, "w"))
            """
        func run(_ tag: String) throws -> [Spawned: String] {
            var procs: [Spawned: String] = [:]
            for i in 0..<2 {
                let out = try Harness.tempDir("acked") + "/\(tag)\(i).json"
                procs[try Spawned(["python3", "-c", load, server.url, key, "100", out], log: out + ".log")] = out
            }
            return procs
        }
        func wait(_ procs: [Spawned: String]) -> [[String]] {
            var all: [[String]] = []
            for (p, out) in procs {
                while p.isRunning { usleep(50_000) }
                all += ((try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out)))) as? [[String]]) ?? []
            }
            return all
        }
        let first = wait(try run("a"))
        #expect(first.count == 200, "acknowledged \(first.count) of 200")
        let client = try Client(server, key: key)
        let listed = try #require(try JSONSerialization.jsonObject(with: Data(try client("token-list", "--output", "json").stdout.utf8)) as? [[String: Any]])
        #expect(Set(listed.compactMap { $0["id"] as? String }).count == 200)
        #expect(Set(first.map { $0[0] }) == Set(listed.compactMap { $0["id"] as? String }))

        // kill -9 in the middle of the same load.
        let second = try run("b")
        usleep(400_000)
        server.kill9()
        let acked = wait(second)
        try server.restart()
        for pair in acked {
            let r = try client("token-get", pair[0], "-q")
            #expect(r.status == 0, "acknowledged token \(pair[0]) lost: \(r.stderr)")
            #expect(r.out == pair[1])  // HS256: the same value
            #expect(try verify(server, pair[1], "--access", "push") == 0)
        }
    }

    @Test("SIGTERM during a slow request: it completes, then the process exits 0; a second process exits at once when idle")
    func drain() throws {
        let server = try Server(alg: "HS256")
        let key = try server.addAccount("acme")
        let slow = """
            import socket, sys, time
            port, key = int(sys.argv[1]), sys.argv[2]
            body = b'{"region":"eu-west-1","description":"slow"}'
            s = socket.create_connection(("127.0.0.1", port)); s.settimeout(20)
            s.sendall(("POST /v1/tokens HTTP/1.1\\r\\nHost: x\\r\\nAuthorization: Bearer %s\\r\\nContent-Type: application/json\\r\\nContent-Length: %d\\r\\n\\r\\n" % (key, len(body))).encode())
            s.sendall(body[:10]); time.sleep(2); s.sendall(body[10:])
            data = b""
            while b"\\r\\n\\r\\n" not in data:
                chunk = s.recv(4096)
                if not chunk: break
                data += chunk
            print(data.split(b"\\r\\n")[0].decode())
            """
        let out = try Harness.tempDir("slow") + "/out"
        let client = try Spawned(["python3", "-c", slow, String(server.port), key], log: out)
        usleep(700_000)
        server.process.signal(SIGTERM)
        while client.isRunning { usleep(50_000) }
        #expect(((try? String(contentsOfFile: out, encoding: .utf8)) ?? "").contains("HTTP/1.1 201"), "\((try? String(contentsOfFile: out, encoding: .utf8)) ?? "")")
        let deadline = Date().addingTimeInterval(10)
        while server.process.isRunning && Date() < deadline { usleep(50_000) }
        #expect(server.process.exitStatus == 0, "\(server.logText.suffix(1500))")
    }

    @Test("bad input: bodies, headers, sizes, Unicode, wrong and expired keys: exact statuses, JSON errors naming the field")
    func badInput() throws {
        let server = try Server()
        let key = try server.addAccount("acme", "--namespace", "acme", "--namespace", "acme-ci")
        let base = server.url + "/v1/tokens"
        func post(_ body: String, key k: String? = nil, contentType: String = "application/json") throws -> (status: Int, body: String, headers: String) {
            try curl(["-X", "POST", "-H", "Authorization: Bearer \(k ?? key)", "-H", "Content-Type: \(contentType)", "--data-binary", body, base])
        }
        let cases: [(String, String, Int, String?)] = [
            ("ok", #"{"region":"eu-west-1"}"#, 201, nil),
            ("ok, Unicode description", #"{"region":"eu-west-1","description":"déploiement 🚀"}"#, 201, nil),
            ("ok, owned namespaces", #"{"region":"eu-west-1","namespaces":["acme-ci"]}"#, 201, nil),
            ("not JSON", "region=eu-west-1", 400, nil),
            ("unknown field", #"{"region":"eu-west-1","admin":true}"#, 400, "admin"),
            ("wrong type", #"{"region":"eu-west-1","readwrite":"yes"}"#, 400, "readwrite"),
            ("missing region", #"{"readwrite":true}"#, 400, "region"),
            ("region too long", #"{"region":"\#(String(repeating: "r", count: 65))"}"#, 400, "region"),
            ("region with a space", #"{"region":"eu west"}"#, 400, "region"),
            ("region Unicode", #"{"region":"eu-wést"}"#, 400, "region"),
            ("description newline", #"{"region":"eu-west-1","description":"a\nb"}"#, 400, "description"),
            ("description too long", #"{"region":"eu-west-1","description":"\#(String(repeating: "d", count: 1025))"}"#, 400, "description"),
            ("delete without readwrite", #"{"region":"eu-west-1","delete":true}"#, 400, "delete"),
            ("non_expiring and expires_in", #"{"region":"eu-west-1","non_expiring":true,"expires_in":60}"#, 400, "expires_in"),
            ("expires_in zero", #"{"region":"eu-west-1","expires_in":0}"#, 400, "expires_in"),
            ("expires_in huge", #"{"region":"eu-west-1","expires_in":99999999999}"#, 400, "expires_in"),
            ("namespace not owned", #"{"region":"eu-west-1","namespaces":["globex"]}"#, 403, "namespaces"),
            ("namespace not a name", #"{"region":"eu-west-1","namespaces":["Acme"]}"#, 400, "namespaces"),
            ("null means absent", #"{"region":"eu-west-1","description":null,"namespaces":null}"#, 201, nil),
            ("no namespaces", #"{"region":"eu-west-1","namespaces":[]}"#, 400, "namespaces"),
            ("array body", "[]", 400, nil),
            ("empty body", "", 400, nil),
        ]
        for (name, body, status, field) in cases {
            let r = try post(body)
            #expect(r.status == status, "\(name): \(r.status) \(r.body)")
            if status == 400 || status == 403 {
                let json = try JSONSerialization.jsonObject(with: Data(r.body.utf8)) as? [String: Any]
                #expect(json?["code"] as? String == (status == 400 ? "invalid_input" : "forbidden"), "\(name): \(r.body)")
                if let field { #expect(json?["field"] as? String == field, "\(name): \(r.body)") }
            }
        }
        // Sizes: 413 for a body over 64 KiB, declared or streamed.
        let big = #"{"region":"eu-west-1","description":""# + String(repeating: "x", count: 70_000) + #""}"#
        #expect(try post(big).status == 413)
        let chunked = try curl(["-X", "POST", "-H", "Authorization: Bearer \(key)", "-H", "Content-Type: application/json",
                                "-H", "Transfer-Encoding: chunked", "--data-binary", big, base])
        #expect(chunked.status == 413, "\(chunked.status)")
        // Content type: JSON only.
        #expect(try post(#"{"region":"eu-west-1"}"#, contentType: "text/plain").status == 400)
        // Methods the API does not have: 405 with Allow.
        let trace = try curl(["-X", "TRACE", "-H", "Authorization: Bearer \(key)", base])
        #expect(trace.status == 405 && trace.headers.lowercased().contains("allow: get, post"), "\(trace.status) \(trace.headers)")
        // Parameters.
        #expect(try curl(["-H", "Authorization: Bearer \(key)", base]).status == 400)  // no region
        let badID = try curl(["-H", "Authorization: Bearer \(key)", "\(base)/not-a-uuid?region=eu-west-1"])
        let badIDField = (try JSONSerialization.jsonObject(with: Data(badID.body.utf8)) as? [String: Any])?["field"] as? String
        #expect(badID.status == 400 && badIDField == "id", "\(badID.body)")
        // Keys: none, malformed, wrong, another scheme.
        #expect(try curl(["-X", "POST", "-H", "Content-Type: application/json", "--data-binary", #"{"region":"eu-west-1"}"#, base]).status == 401)
        #expect(try post(#"{"region":"eu-west-1"}"#, key: "rtk_000000000000_AAAA").status == 401)
        let wrong = try post(#"{"region":"eu-west-1"}"#, key: String(key.dropLast(2)) + "AA")
        #expect(wrong.status == 401 && wrong.headers.lowercased().contains("www-authenticate: bearer"))
        #expect(try curl(["-H", "Authorization: Basic \(key)", "\(base)?region=eu-west-1"]).status == 401)
        // Rotation: the old key works for the overlap, then not; the new one works.
        let newKey = try #require(try server("accounts", "rotate-key", "acme", "--overlap", "2s", "-q").out as String?)
        #expect(try post(#"{"region":"eu-west-1"}"#).status == 201)
        Thread.sleep(forTimeInterval: 2.5)
        #expect(try post(#"{"region":"eu-west-1"}"#).status == 401)
        #expect(try post(#"{"region":"eu-west-1"}"#, key: newKey).status == 201)
        // Too many failures from one address: 429 with Retry-After, even with a good key.
        for _ in 0..<12 { _ = try post(#"{"region":"eu-west-1"}"#, key: "rtk_000000000000_" + String(repeating: "A", count: 43)) }
        let limited = try post(#"{"region":"eu-west-1"}"#, key: newKey)
        #expect(limited.status == 429 && limited.headers.lowercased().contains("retry-after:"), "\(limited.status) \(limited.headers)")
        // Public documents: ETag and If-None-Match.
        let list = try curl(["\(server.url)/v1/revocations"])
        let etag = try #require(list.headers.split(separator: "\r\n").first { $0.lowercased().hasPrefix("etag:") }).dropFirst(5).trimmingCharacters(in: .whitespaces)
        #expect(etag.hasPrefix("\"") && etag.hasSuffix("\""), "\(etag)")
        #expect(try curl(["-H", "If-None-Match: \(etag)", "\(server.url)/v1/revocations"]).status == 304)
        let ns = try curl(["\(server.url)/v1/namespaces"])
        #expect(ns.status == 200 && ns.headers.lowercased().contains("cache-control"))
        #expect(try curl(["\(server.url)/.well-known/jwks.json"]).body.contains("\"kty\""))
        #expect(!(try curl(["\(server.url)/.well-known/jwks.json"]).body.contains("\"d\"")))
    }
}

extension Spawned: Hashable {
    static func == (a: Spawned, b: Spawned) -> Bool { a === b }
    func hash(into hasher: inout Hasher) { hasher.combine(ObjectIdentifier(self)) }
}
