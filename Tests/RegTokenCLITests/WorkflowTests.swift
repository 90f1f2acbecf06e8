import Foundation
import Testing

@Suite("regtoken command line: the whole workflow")
struct WorkflowTests {
    @Test("add, list, get, verify, remove, verify again, list again")
    func workflow() throws {
        let cli = try CLI()
        let ro = try cli.add("--description", "ci pull")
        let rw = try cli.add("--readwrite", "--description", "deploy")
        let forever = try cli.add("--non-expiring", "--description", "mirror")

        // token-list: one row per token, never a value.
        let list = try cli("token-list")
        #expect(list.status == 0)
        let lines = list.out.split(separator: "\n").map(String.init)
        #expect(lines.first?.split(separator: " ", omittingEmptySubsequences: true) == ["TOKEN", "ID", "SCOPE", "NAMESPACES", "CREATED", "EXPIRY", "DESCRIPTION"])
        #expect(lines.count == 4)
        for t in [ro, rw, forever] {
            #expect(list.stdout.contains(t.id))
            #expect(!list.stdout.contains(t.token))
        }
        let roRow = try #require(lines.first { $0.hasPrefix(ro.id) })
        #expect(roRow.contains(" pull ") && roRow.contains(" * ") && roRow.hasSuffix("ci pull"))
        let rwRow = try #require(lines.first { $0.hasPrefix(rw.id) })
        #expect(rwRow.contains(" pull,push ") && rwRow.contains("T") && rwRow.contains("Z "))
        #expect(try #require(lines.first { $0.hasPrefix(forever.id) }).contains(" never "))
        let json = try cli("token-list", "--output", "json").array()
        #expect(json.count == 3)
        #expect(json.allSatisfy { $0["token"] == nil })
        #expect(json.first { $0["id"] as? String == ro.id }?["readonly"] as? Bool == true)
        #expect(json.first { $0["id"] as? String == forever.id }?["expires"] is NSNull || json.first { $0["id"] as? String == forever.id }?["expires"] == nil)

        // token-get: the same two lines as token-add. No value is stored: the claims are signed
        // again, so an ES256 token (this home's key) comes back with a fresh signature over the
        // very same header and claims, and verifies as the same token.
        let got = try cli("token-get", rw.id)
        #expect(got.status == 0)
        let lines2 = got.out.split(separator: "\n")
        #expect(lines2.count == 2 && lines2[0] == "Token identifier   \(rw.id)" && lines2[1].hasPrefix("Token              "))
        let resigned = try cli("token-get", rw.id, "-q").out
        #expect(resigned.split(separator: ".").prefix(2) == rw.token.split(separator: ".").prefix(2))
        #expect(resigned != rw.token)  // ES256: a fresh signature
        #expect(try cli("verify", resigned, "--access", "push").status == 0)

        // verify each for pull and push.
        #expect(try cli("verify", ro.token).status == 0)
        let roPush = try cli("verify", ro.token, "--access", "push")
        #expect(roPush.status == 14)
        #expect(roPush.stderr.contains("pull_only") && roPush.stderr.contains("pull-only"))
        #expect(try cli("verify", rw.token, "--access", "push").status == 0)
        #expect(try cli("verify", rw.token, "--access", "pull").status == 0)
        let v = try cli("verify", forever.token, "--output", "json").object()
        #expect(v["valid"] as? Bool == true && v["id"] as? String == forever.id && v["readonly"] as? Bool == true)
        #expect(v["expires"] == nil || v["expires"] is NSNull)

        // remove, then verify again: revoked.
        let rm = try cli("token-rm", rw.id, forever.id)
        #expect(rm.status == 0, "\(rm.stderr)")
        #expect(rm.stdout.contains("Removed \(rw.id) (revoked)"))
        let again = try cli("verify", rw.token, "--access", "push")
        #expect(again.status == 13)
        #expect(again.stderr.contains("revoked"))
        #expect(try cli("verify", forever.token).status == 13)
        #expect(try cli("verify", ro.token).status == 0)
        #expect(try cli.listIDs() == [ro.id])
        let shown = try cli("revocations", "show", "--output", "json").object()
        let entries = try #require(shown["entries"] as? [[String: Any]])
        #expect(Set(entries.compactMap { $0["id"] as? String }) == [rw.id, forever.id])
        #expect((shown["version"] as? Int ?? 0) >= 1)
        // Removing again: unknown now.
        let twice = try cli("token-rm", rw.id)
        #expect(twice.status == 3 && twice.stderr.contains("no token \(rw.id)"))
    }

    @Test("a token with a short --expires-in disappears from the list after it expires")
    func expiry() throws {
        let cli = try CLI()
        let short = try cli.add("--expires-in", "2s")
        let long = try cli.add("--expires-in", "1h")
        #expect(Set(try cli.listIDs()) == [short.id, long.id])
        // Revoke the short one too, so its revocation entry must also go in time (kept for retention).
        Thread.sleep(forTimeInterval: 3.2)
        #expect(try cli.listIDs() == [long.id])
        let get = try cli("token-get", short.id)
        #expect(get.status == 3)
        // The clock leeway past expiry is at most a tenth of the lifetime: none for a 2 s token.
        let expired = try cli("verify", short.token)
        #expect(expired.status == 12 && expired.stderr.contains("expired"))
        let expires = try #require(try cli("token-list", "--output", "json").array().first?["expires"] as? String)
        #expect(expires.hasSuffix("Z") && expires.count == 20)
    }

    @Test("namespaces and --output json of token-add")
    func namespacesAndJSON() throws {
        var cli = try CLI()
        _ = try cli("config", "set", "registry", "registry.example.com:5000")
        let r = try cli("token-add", "--readwrite", "--namespace", "acme", "--namespace", "acme-ci", "--output", "json").object()
        #expect(r["namespaces"] as? [String] == ["acme", "acme-ci"])
        #expect(r["readonly"] as? Bool == false)
        #expect(r["scope"] as? String == "pull,push")
        #expect(r["account"] as? String == "acme" && r["region"] as? String == "eu-west-1")
        let token = try #require(r["token"] as? String)
        #expect(r["login"] as? String == "echo '\(token)' | docker login -u token --password-stdin registry.example.com:5000")
        // acme-ci is acme's only where a namespaces file says so, for verify as for the proxy.
        #expect(try cli("verify", token, "--namespace", "acme-ci", "--access", "push").status == 14)
        let map = cli.home + "-namespaces"
        try "acme acme\nacme-ci acme\nother acme\n".write(toFile: map, atomically: true, encoding: .utf8)
        #expect(try cli("verify", token, "--namespace", "acme-ci", "--access", "push", "--namespaces", map).status == 0)
        let other = try cli("verify", token, "--namespace", "other", "--namespaces", map)
        #expect(other.status == 14 && other.stderr.contains("namespace_not_allowed"), "\(other.stderr)")
        let text = try cli("token-add")
        #expect(text.out.hasSuffix("echo '\(text.out.split(separator: "\n")[1].split(separator: " ").last!)' | docker login -u token --password-stdin registry.example.com:5000"))
        // Another region: a token of eu-west-1 is refused there.
        cli.region = "us-east-1"
        #expect(try cli("verify", token).status == 14)
        #expect(try cli.listIDs().isEmpty)
    }

    @Test("keys: generate, list, activate, export-public, retire (every token it signed stops verifying)")
    func keys() throws {
        let cli = try CLI()
        let first = try cli.add()
        let made = try cli("keys", "generate", "--alg", "HS256", "--activate", "--output", "json").object()
        let hsID = try #require(made["key_id"] as? String)
        #expect(made["active"] as? Bool == true)
        let second = try cli.add()
        let keys = try cli("keys", "list", "--output", "json").array()
        #expect(keys.count == 2)
        #expect(keys.first { $0["key_id"] as? String == hsID }?["active"] as? Bool == true)
        let esID = try #require(keys.first { $0["algorithm"] as? String == "ES256" }?["key_id"] as? String)
        // JWKS: the ES256 key only.
        let jwks = try cli("keys", "export-public").object()
        let jwk = try #require((jwks["keys"] as? [[String: Any]])?.first)
        #expect((jwks["keys"] as? [Any])?.count == 1 && jwk["kid"] as? String == esID && jwk["d"] == nil)
        // The active key cannot be retired.
        let refuse = try cli("keys", "retire", hsID)
        #expect(refuse.status == 2 && refuse.stderr.contains("active"))
        let retired = try cli("keys", "retire", esID)
        #expect(retired.status == 0, "\(retired.stderr)")
        #expect(try cli("verify", first.token).status == 11)
        #expect(try cli("verify", second.token).status == 0)
        #expect(try cli.listIDs() == [second.id])
        #expect(try cli("keys", "activate", "nope").status == 3)
        let home = cli.home
        #expect(FileManager.default.fileExists(atPath: "\(home)/keys/retired/\(esID).pem"))
    }

    @Test("revocations export writes the signed list that a verifier loads")
    func export() throws {
        let cli = try CLI()
        let t = try cli.add()
        #expect(try cli("token-rm", t.id).status == 0)
        let out = cli.home + "-exported.jws"
        let r = try cli("revocations", "export", "--out", out)
        #expect(r.status == 0, "\(r.stderr)")
        let text = try String(contentsOfFile: out, encoding: .utf8)
        #expect(text.split(separator: ".").count == 3)
        let attrs = try FileManager.default.attributesOfItem(atPath: out)
        #expect((attrs[.posixPermissions] as? Int) == 0o644)
        #expect(try String(contentsOfFile: cli.home + "/revocations.jws", encoding: .utf8) == text)
    }

    @Test("state directory: created 0700 with a fresh ES256 key; private files 0600; init --alg HS256 on request")
    func stateDirectory() throws {
        let cli = try CLI()
        _ = try cli.add()
        let fm = FileManager.default
        func mode(_ p: String) throws -> Int { try #require(try fm.attributesOfItem(atPath: p)[.posixPermissions] as? Int) }
        #expect(try mode(cli.home) == 0o700)
        #expect(try mode(cli.home + "/keys") == 0o700)
        #expect(try mode(cli.home + "/ledger.sqlite") == 0o600)
        let keyFiles = try fm.contentsOfDirectory(atPath: cli.home + "/keys").filter { $0.hasSuffix(".pem") }
        #expect(keyFiles.count == 1 && keyFiles[0].hasPrefix("es256-"))
        #expect(try mode(cli.home + "/keys/" + keyFiles[0]) == 0o600)

        let hs = try CLI()
        let r = try hs("init", "--alg", "HS256")
        #expect(r.status == 0 && r.stdout.contains("HS256"))
        let files = try fm.contentsOfDirectory(atPath: hs.home + "/keys")
        #expect(files.contains { $0.hasSuffix(".hs256") })
        #expect(try hs("verify", try hs.add().token).status == 0)
    }
}

@Suite("regtoken loadtest, in process (smoke)")
struct LoadtestSmokeTests {
    @Test("HS256 and ES256 with the cache: a report with throughput, percentiles, outcomes, and no wrong decision", arguments: [["--alg", "HS256"], ["--alg", "ES256", "--cache", "--threads", "2"]])
    func inProcess(_ args: [String]) throws {
        let cli = try CLI()
        let r = try cli.run(["loadtest", "--duration", "1s", "--output", "json"] + args)
        #expect(r.status == 0, "\(r.stderr)")
        let o = try r.object()
        #expect((o["operations"] as? Int ?? 0) > 100)
        #expect((o["throughput_per_second"] as? Double ?? 0) > 100)
        #expect(o["wrong_decisions"] as? Int == 0)
        let latency = try #require(o["latency_microseconds"] as? [String: Double])
        #expect(Set(latency.keys) == ["p50", "p90", "p99", "p99.9", "max"])
        #expect((latency["p50"] ?? 0) <= (latency["p99"] ?? 0) && (latency["p99"] ?? 0) <= (latency["max"] ?? 0))
        let outcomes = try #require(o["outcomes"] as? [String: Int])
        #expect(Set(outcomes.keys) == ["valid", "expired", "revoked", "wrongscope", "malformed"])
        let text = try cli.run(["loadtest", "--duration", "1s", "--mix", "valid=1,malformed=1"] + args)
        #expect(text.status == 0 && text.stdout.contains("throughput") && text.stdout.contains("wrong          0"))
        #expect(try cli.run(["loadtest", "--mix", "valid=1,bogus=2"]).status == 2)
    }
}
