import Foundation
import Testing

/// An operator's first hour, as a user meets it: the binary, the real registry, its proxy.
@Suite("regtoken: what an operator meets in the first hour")
struct OperatorTests {
    /// What the proxy answers for `access` on `namespace` with `token`: the status and the Docker
    /// error message (empty when allowed).
    static func proxyAnswer(_ proxy: ProxyProcess, token: String, access: String, namespace: String) throws -> (allowed: Bool, message: String) {
        let base = "http://127.0.0.1:\(proxy.port)/v2/\(namespace)/app"
        let args: [String]
        switch access {
        case "pull": args = ["-X", "GET", "\(base)/manifests/latest"]
        case "push": args = ["-X", "POST", "\(base)/blobs/uploads/"]
        default: args = ["-X", "DELETE", "\(base)/manifests/sha256:" + String(repeating: "0", count: 64)]
        }
        let r = try curl(["-H", basicAuth(token)] + args)
        let allowed = r.status != 401 && r.status != 403 && r.status != 400
        guard !allowed else { return (true, "") }
        let object = try JSONSerialization.jsonObject(with: Data(r.body.utf8)) as? [String: Any]
        let message = ((object?["errors"] as? [[String: Any]])?.first?["message"] as? String) ?? "(status \(r.status))"
        return (false, message)
    }

    @Test("verify gives the proxy's answer for the same token, access and namespace, with and without a namespaces file")
    func verifyAnswersAsTheProxy() throws {
        let registry = try Registry()
        defer { registry.stop() }
        let issuer = try Issuer()
        let ro = try issuer.token()
        let rw = try issuer.token("--readwrite")
        let rwd = try issuer.token("--readwrite", "--delete")
        let limited = try issuer.token("--readwrite", "--namespace", "acme")
        let revoked = try issuer.token("--readwrite")
        #expect(try issuer("token-rm", revoked.id).status == 0)
        let tokens = [("ro", ro.token), ("rw", rw.token), ("rwd", rwd.token), ("limited", limited.token), ("revoked", revoked.token)]
        // Without a namespaces file a namespace is its account's; with one, acme also owns tools.
        let map = try Harness.tempDir("map") + "/namespaces"
        try "acme acme\ntools acme\nglobex globex\n".write(toFile: map, atomically: true, encoding: .utf8)
        for mapArgs in [[String](), ["--namespaces", map]] {
            let proxy = try ProxyProcess(upstream: registry.port, args: ["--keys", issuer.home + "/keys",
                                                                         "--revocations", issuer.home + "/revocations.jws"] + mapArgs)
            defer { proxy.stop() }
            var allowedSome = 0, refusedSome = 0
            for (name, token) in tokens {
                for access in ["pull", "push", "delete"] {
                    for namespace in ["acme", "globex", "tools"] {
                        let answer = try Self.proxyAnswer(proxy, token: token, access: access, namespace: namespace)
                        let v = try issuer(["verify", token, "--access", access, "--namespace", namespace] + mapArgs)
                        let what = "\(name) \(access) \(namespace) \(mapArgs): proxy \(answer), verify \(v.status) \(v.stderr)"
                        #expect((v.status == 0) == answer.allowed, "\(what)")
                        if !answer.allowed {
                            refusedSome += 1
                            // The proxy names the repository (acme/app), verify the namespace alone.
                            let message = answer.message.replacingOccurrences(of: "\(namespace)/app", with: namespace)
                            #expect(v.stderr.contains(message), "\(what)")
                            #expect([13, 14].contains(v.status), "\(what)")
                        } else {
                            allowedSome += 1
                        }
                    }
                }
            }
            // The table has both answers in it (it would prove nothing otherwise).
            #expect(allowedSome >= 6 && refusedSome >= 20, "\(allowedSome) allowed, \(refusedSome) refused")
        }
        // The namespaces file moves the answer: acme's token may push to tools only with it.
        #expect(try issuer("verify", rw.token, "--access", "push", "--namespace", "tools").status == 14)
        #expect(try issuer("verify", rw.token, "--access", "push", "--namespace", "tools", "--namespaces", map).status == 0)
        // A namespace that cannot exist is bad input, not a refusal.
        let bad = try issuer("verify", rw.token, "--namespace", "Not/A/Namespace")
        #expect(bad.status == 2 && bad.stderr.contains("is not a namespace"), "\(bad.status) \(bad.stderr)")
    }

    @Test("a 5 s token is refused through the proxy once its 5 s are over, and token-add says how much leeway it gets")
    func shortTokensStayShort() throws {
        let registry = try Registry()
        defer { registry.stop() }
        let issuer = try Issuer()
        let proxy = try ProxyProcess(upstream: registry.port, args: ["--keys", issuer.home + "/keys",
                                                                     "--revocations", issuer.home + "/revocations.jws"])
        defer { proxy.stop() }
        let r = try issuer("token-add", "--expires-in", "5s", "--output", "json")
        #expect(r.status == 0)
        #expect(r.stderr.contains("at most 0 s past its expiry"), "\(r.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let token = try #require(object["token"] as? String)
        let claims = try #require(try JSONSerialization.jsonObject(with: Data(base64URL: String(token.split(separator: ".")[1]))) as? [String: Any])
        let exp = try #require(claims["exp"] as? Int)
        let pull = ["-H", basicAuth(token), "http://127.0.0.1:\(proxy.port)/v2/acme/app/tags/list"]
        if Int(Date().timeIntervalSince1970) < exp - 1 {
            #expect(try curl(pull).status == 404)    // allowed: the repository does not exist yet
        }
        // One second past its expiry (and the proxy's 60 s default leeway far from over): refused.
        while Int(Date().timeIntervalSince1970) < exp + 1 { usleep(200_000) }
        let late = try curl(pull)
        #expect(late.status == 401 && late.body.contains("token expired"), "\(late.status) \(late.body)")
        // A day-long token gets no note: the leeway is the verifiers' own.
        #expect(!(try issuer("token-add", "-q").stderr.contains("note:")))
    }

    @Test("tokens that could never work are refused when made: accounts that are no namespace, namespaces the account does not own")
    func refuseWhatCannotWork() throws {
        let issuer = try Issuer()
        for account in ["Acme", "ops@acme"] {
            let r = try issuer("token-add", "--account", account)
            #expect(r.status == 2 && r.stderr.contains("is not a namespace name") && r.stderr.contains("lowercase"), "\(account): \(r.stderr)")
        }
        let bad = try issuer("token-add", "--namespace", "Bad/NS")
        #expect(bad.status == 2 && bad.stderr.contains("namespace"), "\(bad.stderr)")
        // An account registered with its namespaces: others are refused, its own accepted.
        #expect(try issuer("accounts", "add", "shop", "--namespace", "shop", "--namespace", "shop-ci").status == 0)
        #expect(try issuer("token-add", "--account", "shop", "--namespace", "shop-ci", "-q").status == 0)
        let outside = try issuer("token-add", "--account", "shop", "--namespace", "acme")
        #expect(outside.status == 2 && outside.stderr.contains("does not own namespace acme"), "\(outside.stderr)")
        // Nothing was recorded for the refused ones.
        let list = try issuer("token-list", "--account", "Acme")
        #expect(list.status == 0 && list.stdout.split(separator: "\n").count <= 1, "\(list.stdout)")
    }

    @Test("one command line: one duration syntax, empty flags refused, --out -, ids once, no half-made home, the proxy reads the saved region")
    func consistentCommandLine() throws {
        // A first command that cannot run leaves no home behind.
        let fresh = try Harness.tempDir("fresh") + "/home"
        let none = try Harness.run(Harness.binary, ["token-add"], env: ["REGTOKEN_HOME": fresh, "REGTOKEN_ACCOUNT": "", "REGTOKEN_REGION": ""])
        #expect(none.status == 2 && none.stderr.contains("no account set"), "\(none.stderr)")
        #expect(!FileManager.default.fileExists(atPath: fresh))

        let issuer = try Issuer()
        let t = try issuer.token()
        // Every duration takes a unit, and the same syntax, everywhere; a negative one is named as such.
        #expect(try issuer("verify", t.token, "--leeway", "60s").status == 0)
        #expect(try issuer("verify", t.token, "--leeway", "0s").status == 0)
        for (args, words) in [(["verify", t.token, "--leeway", "60"], "invalid duration '60'"),
                              (["verify", t.token, "--leeway", "11m"], "at most 10m"),
                              (["token-add", "--expires-in", "-5m"], "invalid duration '-5m'"),
                              (["token-add", "--region", ""], "--region is empty"),
                              (["token-add", "--account", " "], "--account is empty"),
                              (["proxy", "--listen", "127.0.0.1:0", "--upstream", "http://127.0.0.1:9", "--keys", issuer.home + "/keys", "--idle-timeout", "60"], "invalid duration '60'"),
                              (["proxy", "--listen", "127.0.0.1:0", "--upstream", "http://127.0.0.1:9", "--keys", issuer.home + "/keys", "--leeway", "60"], "invalid duration '60'")] {
            let r = try issuer(args)
            #expect(r.status == 2 && r.stderr.contains(words), "\(args): \(r.status) \(r.stderr)")
        }
        // --out - is standard output: the signed list itself, and no file called '-'.
        let dir = try Harness.tempDir("cwd")
        let out = try Harness.bash("cd \"$1\" && \"$2\" revocations export --out -", [dir, Harness.binary], env: issuer.env)
        #expect(out.status == 0 && out.stdout.split(separator: ".").count == 3, "\(out.stdout)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/-"))
        // An id given twice is removed once.
        let twice = try issuer("token-rm", t.id, t.id)
        #expect(twice.status == 0 && twice.stdout.components(separatedBy: "Removed").count == 2, "\(twice.stdout)")
        // The proxy takes its region from the saved config, as every command does.
        let home = try Harness.tempDir("proxyhome") + "/home"
        let env = ["REGTOKEN_HOME": home, "REGTOKEN_REGION": ""]
        #expect(try Harness.run(Harness.binary, ["config", "set", "region", "ap-south-1"], env: env).status == 0)
        #expect(try Harness.run(Harness.binary, ["init"], env: env).status == 0)
        let port = Harness.freePort()
        let log = try Harness.tempDir("plog") + "/log"
        let proxy = try Spawned([Harness.binary, "proxy", "--home", home, "--listen", "127.0.0.1:\(port)", "--upstream", "http://127.0.0.1:9",
                                 "--keys", home + "/keys"], environment: env, log: log)
        defer { proxy.stop() }
        #expect(Harness.waitForPort(port))
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(text.contains("region=ap-south-1"), "\(text)")
    }

    @Test("the proxy answers /healthz and /readyz on its metrics address; not ready while its revocation list is too old")
    func healthAndReadiness() throws {
        let registry = try Registry()
        defer { registry.stop() }
        let issuer = try Issuer()
        let metrics = Harness.freePort()
        let proxy = try ProxyProcess(upstream: registry.port, args: ["--keys", issuer.home + "/keys", "--revocations", issuer.home + "/revocations.jws",
                                                                     "--metrics", "127.0.0.1:\(metrics)"])
        #expect(Harness.waitForPort(metrics))
        #expect(try curl(["http://127.0.0.1:\(metrics)/healthz"]).status == 200)
        let ready = try curl(["http://127.0.0.1:\(metrics)/readyz"])
        #expect(ready.status == 200 && ready.body == "ready\n", "\(ready)")
        proxy.stop()
        // A list that must be at most 1 s old, signed longer ago: alive, not ready.
        Thread.sleep(forTimeInterval: 1.5)
        let strictMetrics = Harness.freePort()
        let strict = try ProxyProcess(upstream: registry.port, args: ["--keys", issuer.home + "/keys", "--revocations", issuer.home + "/revocations.jws",
                                                                      "--revocations-max-age", "1s", "--metrics", "127.0.0.1:\(strictMetrics)"])
        defer { strict.stop() }
        #expect(Harness.waitForPort(strictMetrics))
        #expect(try curl(["http://127.0.0.1:\(strictMetrics)/healthz"]).status == 200)
        let stale = try curl(["http://127.0.0.1:\(strictMetrics)/readyz"])
        #expect(stale.status == 503 && stale.body.contains("revocation list is older"), "\(stale)")
    }

    @Test("an https:// registry: its certificate checked against --upstream-ca; untrusted, a 502 and a log line that says why")
    func httpsUpstream() throws {
        let tls = try Harness.loopbackCertificate("regtls")
        let registry = try Registry(tls: (tls + "/cert.pem", tls + "/key.pem"))
        defer { registry.stop() }
        let issuer = try Issuer()
        let rw = try issuer.token("--readwrite")
        let upstream = "https://127.0.0.1:\(registry.port)"
        let trusted = try ProxyProcess(upstream: registry.port, args: ["--keys", issuer.home + "/keys", "--upstream", upstream, "--upstream-ca", tls + "/cert.pem"])
        defer { trusted.stop() }
        let ok = try curl(["-H", basicAuth(rw.token), "http://127.0.0.1:\(trusted.port)/v2/"])
        #expect(ok.status == 200, "\(ok) \(trusted.logText)")
        // A push through it: the upload lands in the registry.
        let start = try curl(["-H", basicAuth(rw.token), "-X", "POST", "http://127.0.0.1:\(trusted.port)/v2/acme/app/blobs/uploads/"])
        #expect(start.status == 202, "\(start)")
        // Without the CA the registry's certificate is not trusted: 502, and the log says why.
        let untrusted = try ProxyProcess(upstream: registry.port, args: ["--keys", issuer.home + "/keys", "--upstream", upstream])
        defer { untrusted.stop() }
        let refused = try curl(["-H", basicAuth(rw.token), "http://127.0.0.1:\(untrusted.port)/v2/"])
        #expect(refused.status == 502, "\(refused)")
        #expect(waitUntil(3) { untrusted.logText.contains("registry connection failed") }, "\(untrusted.logText)")
        let bad = try issuer("proxy", "--listen", "127.0.0.1:0", "--upstream", "http://127.0.0.1:9", "--upstream-ca", tls + "/cert.pem", "--keys", issuer.home + "/keys")
        #expect(bad.status == 2 && bad.stderr.contains("--upstream-ca needs an https:// --upstream"), "\(bad.stderr)")
    }

    @Test("loadtest against an https:// proxy: every decision right, nothing left in token-list")
    func loadtestOverTLS() throws {
        let tls = try Harness.loopbackCertificate("lttls")
        let registry = try Registry()
        defer { registry.stop() }
        let issuer = try Issuer()
        let proxy = try ProxyProcess(upstream: registry.port, args: ["--keys", issuer.home + "/keys", "--revocations", issuer.home + "/revocations.jws",
                                                                     "--tls-cert", tls + "/cert.pem", "--tls-key", tls + "/key.pem"])
        defer { proxy.stop() }
        let r = try issuer("loadtest", "--url", "https://127.0.0.1:\(proxy.port)", "--ca", tls + "/cert.pem", "--connections", "2",
                           "--duration", "1s", "--output", "json")
        #expect(r.status == 0, "\(r.stderr)")
        let o = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(o["wrong_decisions"] as? Int == 0 && (o["operations"] as? Int ?? 0) > 10, "\(o)")
        #expect((o["outcomes"] as? [String: Int])?["errors"] == nil, "\(o)")
        let list = try issuer("token-list", "--output", "json")
        #expect(list.out.filter { !$0.isWhitespace } == "[]", "\(list.stdout)")
        // Without the CA, the proxy's certificate is not trusted: a clear error, no load.
        let untrusted = try issuer("loadtest", "--url", "https://127.0.0.1:\(proxy.port)", "--duration", "1s")
        #expect(untrusted.status != 0 && !untrusted.stderr.contains("Fatal"), "\(untrusted.stderr)")
    }

    @Test("words for people: a fresh home's revocation list, and an empty key set from HS256-only keys")
    func wordsForPeople() throws {
        let issuer = try Issuer()
        let show = try issuer("revocations", "show")
        #expect(show.status == 0 && show.stdout.contains("no token revoked yet") && !show.stdout.contains("1970"), "\(show.stdout)")
        let t = try issuer.token()
        #expect(try issuer("token-rm", t.id).status == 0)
        let after = try issuer("revocations", "show")
        #expect(after.stdout.contains("Version   1") && after.stdout.contains(t.id), "\(after.stdout)")

        let hs = try Harness.tempDir("hs") + "/home"
        let env = ["REGTOKEN_HOME": hs, "REGTOKEN_ACCOUNT": "acme", "REGTOKEN_REGION": "eu-west-1"]
        #expect(try Harness.run(Harness.binary, ["init", "--alg", "HS256"], env: env).status == 0)
        let export = try Harness.run(Harness.binary, ["keys", "export-public"], env: env)
        #expect(export.status == 0 && !export.stdout.contains("\"kty\""), "\(export.stdout)")
        #expect(export.stderr.contains("only HS256 keys"), "\(export.stderr)")

        // No library's internals in an error: a service that is not there, a port in use, a
        // certificate that is no certificate.
        let internals = ["SingleConnectionFailure", "bind(descriptor", "failedToLoad", "NIOConnectionError", "IOError"]
        func expectWords(_ r: Harness.Output, _ words: String, sourceLocation: SourceLocation = #_sourceLocation) {
            let last = r.stderr.split(separator: "\n").last.map(String.init) ?? ""
            #expect(r.status != 0 && last.contains(words), "\(r.stderr)", sourceLocation: sourceLocation)
            for i in internals { #expect(!r.stderr.contains(i), "\(r.stderr)", sourceLocation: sourceLocation) }
        }
        expectWords(try Harness.run(Harness.binary, ["token-list"], env: issuer.env.merging(["REGTOKEN_SERVER": "http://127.0.0.1:9", "REGTOKEN_API_KEY": "rtk_unused"]) { $1 }),
                    "cannot reach the service at http://127.0.0.1:9: connection refused")
        let registry = try Registry()
        defer { registry.stop() }
        expectWords(try issuer("proxy", "--listen", "127.0.0.1:\(registry.port)", "--upstream", "http://127.0.0.1:9", "--keys", issuer.home + "/keys"),
                    "address already in use")
        let tls = try Harness.loopbackCertificate("tls")
        try "junk\n".write(toFile: tls + "/junk.pem", atomically: true, encoding: .utf8)
        expectWords(try issuer("proxy", "--listen", "127.0.0.1:0", "--upstream", "http://127.0.0.1:9", "--keys", issuer.home + "/keys",
                               "--tls-cert", tls + "/junk.pem", "--tls-key", tls + "/key.pem"), "is not a PEM certificate chain")
        // Plain HTTP on the TLS port: a 400 that says to use https, as nginx answers.
        let proxy = try ProxyProcess(upstream: registry.port, args: ["--keys", issuer.home + "/keys", "--tls-cert", tls + "/cert.pem", "--tls-key", tls + "/key.pem"])
        defer { proxy.stop() }
        let plain = try curl(["http://127.0.0.1:\(proxy.port)/v2/"])
        #expect(plain.status == 400 && plain.body.contains("use https://"), "\(plain)")
        let secure = try curl(["--cacert", tls + "/cert.pem", "https://127.0.0.1:\(proxy.port)/v2/"])
        #expect(secure.status == 401, "\(secure)")
    }
}

extension Data {
    /// Decodes unpadded base64url.
    init(base64URL text: String) {
        var s = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while s.count % 4 != 0 { s += "=" }
        self = Data(base64Encoded: s) ?? Data()
    }
}

extension Issuer {
    @discardableResult
    func callAsFunction(_ args: [String]) throws -> Harness.Output {
        try Harness.run(Harness.binary, args, env: env)
    }
}
