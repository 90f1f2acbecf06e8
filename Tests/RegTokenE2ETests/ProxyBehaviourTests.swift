import Foundation
import RegToken
import Testing

/// The proxy's behaviour around the decision: what reaches the registry, reloads, faults, metrics.
@Suite("regtoken proxy: forwarding, reloads, faults and metrics", .serialized)
struct ProxyBehaviourTests {
    /// The stand-in registry: records requests, answers 200.
    final class FakeUpstream {
        let port = Harness.freePort()
        let log: String
        let process: Spawned

        init(_ extra: [String] = []) throws {
            log = try Harness.tempDir("fake") + "/requests.jsonl"
            _ = FileManager.default.createFile(atPath: log, contents: nil)
            process = try Spawned(["python3", "\(Harness.scripts)/fake_upstream.py", String(port), log] + extra, log: log + ".out")
            guard Harness.waitForPort(port) else { throw HarnessError("fake upstream did not start") }
        }

        var requests: [[String: Any]] {
            ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").compactMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }
        }

        func stop() { process.stop() }

        deinit { stop() }
    }


    @Test("Host and repeated headers pass through unchanged; the token never reaches the registry")
    func passThrough() throws {
        let upstream = try FakeUpstream()
        let issuer = try Issuer()
        let proxy = try ProxyProcess(upstream: upstream.port, args: ["--keys", issuer.home + "/keys"])
        let ro = try issuer.token()
        let r = try curl(["-H", basicAuth(ro.token), "-H", "Host: registry.example.com:8443",
                          "-H", "Accept: application/vnd.oci.image.manifest.v1+json", "-H", "Accept: application/vnd.docker.distribution.manifest.v2+json",
                          "-H", "X-Custom: a", "-H", "X-Custom: b",
                          "http://127.0.0.1:\(proxy.port)/v2/acme/app/manifests/v1"])
        #expect(r.status == 200, "\(r.body)")
        // Repeated response headers come back as they were sent.
        #expect(r.headers.components(separatedBy: "X-Multi: ").count == 3)
        let req = try #require(upstream.requests.last)
        let headers = try #require(req["headers"] as? [[String]])
        #expect(headers.filter { $0[0].lowercased() == "host" }.map { $0[1] } == ["registry.example.com:8443"])
        #expect(headers.filter { $0[0].lowercased() == "accept" }.map { $0[1] } == ["application/vnd.oci.image.manifest.v1+json", "application/vnd.docker.distribution.manifest.v2+json"])
        #expect(headers.filter { $0[0].lowercased() == "x-custom" }.map { $0[1] } == ["a", "b"])
        #expect(!headers.contains { $0[0].lowercased() == "authorization" })
        #expect(req["target"] as? String == "/v2/acme/app/manifests/v1")
    }

    @Test("ambiguous paths get 400 and never reach the registry; the catalog is refused; no credentials get the Basic challenge")
    func refusedBeforeUpstream() throws {
        let upstream = try FakeUpstream()
        let issuer = try Issuer()
        let proxy = try ProxyProcess(upstream: upstream.port, args: ["--keys", issuer.home + "/keys"])
        let rw = try issuer.token("--readwrite")
        for path in ["/v2/acme/../globex/app/manifests/v1", "/v2/acme//app/manifests/v1", "/v2/acme%2Fapp/manifests/v1",
                     "/v2/acme/%2e%2e/x/manifests/v1", "/v2/acme/app%2e/manifests/v1"] {
            let r = try curl(["--path-as-is", "-H", basicAuth(rw.token), "http://127.0.0.1:\(proxy.port)\(path)"])
            #expect(r.status == 400, "\(path): \(r.status)")
            #expect(r.body.contains("\"errors\":[{\"code\":"), "\(r.body)")
        }
        let catalog = try curl(["-H", basicAuth(rw.token), "http://127.0.0.1:\(proxy.port)/v2/_catalog"])
        #expect(catalog.status == 403 && catalog.body.contains("DENIED"))
        let none = try curl(["http://127.0.0.1:\(proxy.port)/v2/"])
        #expect(none.status == 401)
        #expect(none.headers.lowercased().contains("www-authenticate: basic realm=\"regtoken\""))
        #expect(none.body == #"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required: log in with user 'token' and a token as password","detail":null}]}"#)
        #expect(upstream.requests.isEmpty)
        // A denied upload with a body is answered and the connection closed, the body not forwarded.
        let denied = try curl(["-X", "PATCH", "--data-binary", "@/etc/hostname", "-H", "Content-Type: application/octet-stream", "-H", basicAuth(try issuer.token().token),
                               "http://127.0.0.1:\(proxy.port)/v2/acme/app/blobs/uploads/abc"])
        #expect(denied.status == 403)
        #expect(upstream.requests.isEmpty)
    }

    @Test("registry down: 502; slow: 504; both with a Docker JSON body, and the proxy keeps serving")
    func upstreamFaults() throws {
        let issuer = try Issuer()
        let ro = try issuer.token()
        let downPort = Harness.freePort()
        let proxy = try ProxyProcess(upstream: downPort, args: ["--keys", issuer.home + "/keys", "--upstream-timeout", "1s"])
        let down = try curl(["-H", basicAuth(ro.token), "http://127.0.0.1:\(proxy.port)/v2/"])
        #expect(down.status == 502)
        #expect(down.body.contains("\"code\":\"UNAVAILABLE\"") && down.body.contains("registry unavailable"))
        let slow = try FakeUpstream(["--sleep", "3"])
        let slowProxy = try ProxyProcess(upstream: slow.port, args: ["--keys", issuer.home + "/keys", "--upstream-timeout", "1s"])
        let started = Date()
        let timedOut = try curl(["-H", basicAuth(ro.token), "http://127.0.0.1:\(slowProxy.port)/v2/"])
        #expect(timedOut.status == 504)
        #expect(timedOut.body.contains("did not answer in time"))
        #expect(Date().timeIntervalSince(started) < 2.9)
        // Still serving.
        #expect(try curl(["http://127.0.0.1:\(slowProxy.port)/v2/"]).status == 401)
        #expect(try curl(["http://127.0.0.1:\(proxy.port)/v2/"]).status == 401)
    }

    @Test("the registry killed and restarted: 502 meanwhile, then recovery without restarting the proxy")
    func upstreamRestart() throws {
        let registry = try Registry()
        let issuer = try Issuer()
        let proxy = try ProxyProcess(upstream: registry.port, args: ["--keys", issuer.home + "/keys"])
        let ro = try issuer.token()
        #expect(try curl(["-H", basicAuth(ro.token), "http://127.0.0.1:\(proxy.port)/v2/"]).status == 200)
        registry.stop()
        #expect(try curl(["-H", basicAuth(ro.token), "http://127.0.0.1:\(proxy.port)/v2/"]).status == 502)
        try registry.start()
        #expect(try waitUntil(5) { try curl(["-H", basicAuth(ro.token), "http://127.0.0.1:\(proxy.port)/v2/"]).status == 200 })
    }

    @Test("namespaces file reloads within 1 s; a bad one is refused with a log line and the one in force stays")
    func namespacesReload() throws {
        let upstream = try FakeUpstream()
        let issuer = try Issuer()
        let file = try Harness.tempDir("ns") + "/namespaces"
        try "acme acme\n".write(toFile: file, atomically: true, encoding: .utf8)
        let proxy = try ProxyProcess(upstream: upstream.port, args: ["--keys", issuer.home + "/keys", "--namespaces", file])
        let ro = try issuer.token()
        let url = "http://127.0.0.1:\(proxy.port)/v2/tools/app/manifests/v1"
        #expect(try curl(["-H", basicAuth(ro.token), url]).status == 403)
        try "acme acme\ntools acme\n".write(toFile: file, atomically: true, encoding: .utf8)
        let changed = Date()
        #expect(try waitUntil(3) { try curl(["-H", basicAuth(ro.token), url]).status == 200 })
        #expect(Date().timeIntervalSince(changed) < 1.5)
        // A broken file: refused, logged, and 'tools' still works.
        try "acme acme\ntools\n".write(toFile: file, atomically: true, encoding: .utf8)
        #expect(waitUntil(3) { proxy.logText.contains("namespaces file refused") })
        #expect(try curl(["-H", basicAuth(ro.token), url]).status == 200)
        // SIGHUP also reloads.
        try "acme acme\n".write(toFile: file, atomically: true, encoding: .utf8)
        proxy.signal(SIGHUP)
        #expect(try waitUntil(3) { try curl(["-H", basicAuth(ro.token), url]).status == 403 })
    }

    @Test("keys reload when they change and on SIGHUP; a bad revocation list is refused and the one in force stays")
    func keysAndBadList() throws {
        let upstream = try FakeUpstream()
        let issuer = try Issuer()
        let first = try issuer.token()
        let listCopy = try Harness.tempDir("list") + "/revocations.jws"
        try FileManager.default.copyItem(atPath: issuer.home + "/revocations.jws", toPath: listCopy)
        let proxy = try ProxyProcess(upstream: upstream.port, args: ["--keys", issuer.home + "/keys", "--revocations", listCopy])
        #expect(try issuer("keys", "generate", "--alg", "ES256", "--activate").status == 0)
        let second = try issuer.token()
        let url = "http://127.0.0.1:\(proxy.port)/v2/"
        // Keys are watched: the new key works within a second, with no signal.
        #expect(try waitUntil(2) { try curl(["-H", basicAuth(second.token), url]).status == 200 })
        proxy.signal(SIGHUP)
        #expect(waitUntil(3) { proxy.logText.contains("SIGHUP: reloading") })
        #expect(try curl(["-H", basicAuth(second.token), url]).status == 200)
        #expect(try curl(["-H", basicAuth(first.token), url]).status == 200)
        // A corrupted list: refused with a log line; revocations in force still apply.
        #expect(try issuer("token-rm", first.id).status == 0)
        try FileManager.default.removeItem(atPath: listCopy)
        try FileManager.default.copyItem(atPath: issuer.home + "/revocations.jws", toPath: listCopy)
        #expect(try waitUntil(3) { try curl(["-H", basicAuth(first.token), url]).status == 401 })
        try "garbage".write(toFile: listCopy, atomically: true, encoding: .utf8)
        #expect(waitUntil(3) { proxy.logText.contains("revocation list refused") })
        #expect(try curl(["-H", basicAuth(first.token), url]).status == 401)
        #expect(try curl(["-H", basicAuth(second.token), url]).status == 200)
    }

    @Test("Prometheus metrics: requests by decision and reason, verification latency, revocation list version and age")
    func metrics() throws {
        let upstream = try FakeUpstream()
        let issuer = try Issuer()
        let metricsPort = Harness.freePort()
        let proxy = try ProxyProcess(upstream: upstream.port, args: ["--keys", issuer.home + "/keys", "--revocations", issuer.home + "/revocations.jws",
                                                                  "--metrics", "127.0.0.1:\(metricsPort)"])
        let ro = try issuer.token()
        for _ in 0..<3 { _ = try curl(["-H", basicAuth(ro.token), "http://127.0.0.1:\(proxy.port)/v2/"]) }
        _ = try curl(["http://127.0.0.1:\(proxy.port)/v2/"])
        _ = try curl(["-H", basicAuth(ro.token), "-X", "PUT", "http://127.0.0.1:\(proxy.port)/v2/acme/app/manifests/v1"])
        #expect(try issuer("token-rm", ro.id).status == 0)
        #expect(try waitUntil(3) { try curl(["-H", basicAuth(ro.token), "http://127.0.0.1:\(proxy.port)/v2/"]).status == 401 })
        let m = try curl(["http://127.0.0.1:\(metricsPort)/metrics"])
        #expect(m.status == 200)
        let allowed = m.body.split(separator: "\n").first { $0.hasPrefix(#"regtoken_proxy_requests_total{decision="allow",reason="ok"} "#) }
        #expect((allowed?.split(separator: " ").last.flatMap { Int($0) } ?? 0) >= 3, "\(m.body)")
        // The login challenge (401 before credentials) is counted apart from refusals, and logged
        // as one with the client's address; allowed requests are logged with their account.
        #expect(m.body.contains(#"regtoken_proxy_requests_total{decision="challenge",reason="missing_credentials"} 1"#), "\(m.body)")
        #expect(!m.body.contains(#"decision="deny",reason="missing_credentials""#))
        #expect(waitUntil(2) { proxy.logText.contains("decision=challenge") && proxy.logText.contains("decision=allow") })
        #expect(proxy.logText.contains("decision=challenge") && proxy.logText.contains("client=127.0.0.1"), "\(proxy.logText)")
        #expect(proxy.logText.split(separator: "\n").contains { $0.contains("decision=allow") && $0.contains("account=acme") }, "\(proxy.logText)")
        #expect(m.body.contains(#"regtoken_proxy_requests_total{decision="deny",reason="pull_only"} 1"#))
        #expect(m.body.contains(#"regtoken_proxy_requests_total{decision="deny",reason="revoked"}"#))
        #expect(m.body.contains("regtoken_proxy_verification_seconds_bucket"))
        // What operators expect: HELP lines, the registry's answers, whole-request latency, bytes.
        #expect(m.body.contains("# HELP regtoken_proxy_requests_total Requests by decision"))
        #expect(m.body.contains("# HELP regtoken_proxy_request_duration_seconds"))
        let upstream2xx = m.body.split(separator: "\n").first { $0.hasPrefix(#"regtoken_proxy_upstream_responses_total{code="2xx"} "#) }
        #expect((upstream2xx?.split(separator: " ").last.flatMap { Int($0) } ?? 0) >= 3, "\(m.body)")
        #expect(m.body.contains("regtoken_proxy_request_duration_seconds_bucket"))
        let sent = m.body.split(separator: "\n").first { $0.hasPrefix("regtoken_proxy_sent_bytes_total ") }
        #expect((sent?.split(separator: " ").last.flatMap { Int($0) } ?? 0) > 0, "\(m.body)")
        #expect(m.body.contains("regtoken_revocation_list_version 1"))
        #expect(m.body.contains("regtoken_revocation_list_age_seconds"))
        #expect(!m.body.contains(ro.token))
        // The whole scrape (the proxy's per-loop counts and the Prometheus registry's gauges, with
        // HELP lines) as Prometheus's official Python client reads it: every family once, each
        // with its HELP, histograms consistent; the counts as above.
        let parse = Process()
        parse.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        parse.arguments = ["python3", Harness.scripts + "/prometheus_parse.py", "--require-help"]
        let input = Pipe(), output = Pipe()
        parse.standardInput = input
        parse.standardOutput = output
        try parse.run()
        input.fileHandleForWriting.write(Data(m.body.utf8))
        try input.fileHandleForWriting.close()
        let parsed = output.fileHandleForReading.readDataToEndOfFile()
        parse.waitUntilExit()
        #expect(parse.terminationStatus == 0, "\(String(decoding: parsed, as: UTF8.self))")
        let samples = (try? JSONDecoder().decode([String: Double].self, from: parsed)) ?? [:]
        #expect(samples[#"regtoken_proxy_requests_total{decision="deny",reason="pull_only"}"#] == 1)
        #expect(samples["regtoken_revocation_list_version"] == 1)
        #expect((samples["regtoken_proxy_verification_seconds_count"] ?? 0) >= 6, "\(samples)")
    }

    @Test("many proxies, one issuer: the list from an http URL, polled with If-None-Match; past the age limit non-expiring tokens fail closed")
    func remoteRevocations() throws {
        let upstream = try FakeUpstream()
        let issuer = try Issuer()
        let forever = try issuer.token("--non-expiring")
        let daily = try issuer.token()
        let served = try Harness.tempDir("served") + "/revocations.jws"
        // A freshly signed list: the age limit bounds how old its signature may be too.
        #expect(try issuer("revocations", "refresh").status == 0)
        try FileManager.default.copyItem(atPath: issuer.home + "/revocations.jws", toPath: served)
        let filePort = Harness.freePort()
        let serverLog = try Harness.tempDir("served-log") + "/log.jsonl"
        let fileServer = try Spawned(["python3", "\(Harness.scripts)/serve_file.py", String(filePort), served, serverLog], log: serverLog + ".out")
        #expect(Harness.waitForPort(filePort))
        let proxies = try (0..<2).map { _ in
            try ProxyProcess(upstream: upstream.port, args: ["--jwks", try jwks(issuer), "--revocations", "http://127.0.0.1:\(filePort)/revocations.jws",
                                                             "--revocations-max-age", "6s"])
        }
        for p in proxies { #expect(try curl(["-H", basicAuth(forever.token), "http://127.0.0.1:\(p.port)/v2/"]).status == 200) }
        // Publish a new list: every proxy follows within about 2 s.
        #expect(try issuer("token-rm", forever.id).status == 0)
        try FileManager.default.removeItem(atPath: served)
        try FileManager.default.copyItem(atPath: issuer.home + "/revocations.jws", toPath: served)
        for p in proxies {
            #expect(try waitUntil(3) { try curl(["-H", basicAuth(forever.token), "http://127.0.0.1:\(p.port)/v2/"]).status == 401 })
        }
        // Unchanged since: the next polls send the ETag back and get 304 Not Modified.
        func polls() -> [Substring] { ((try? String(contentsOfFile: serverLog, encoding: .utf8)) ?? "").split(separator: "\n") }
        #expect(waitUntil(4) { polls().contains { $0.contains("\"status\": 304") } }, "server log: \(polls())")
        #expect(polls().contains { $0.contains("\"if_none_match\": \"\\\"") })
        // The publisher goes away: past 6 s, a non-expiring token is refused, an expiring one still works.
        let other = try issuer.token("--non-expiring")
        fileServer.stop()
        let p = proxies[0]
        #expect(try waitUntil(12) {
            let r = try curl(["-H", basicAuth(other.token), "http://127.0.0.1:\(p.port)/v2/"])
            return r.status == 401 && r.body.contains("revocation list is stale")
        })
        #expect(try curl(["-H", basicAuth(daily.token), "http://127.0.0.1:\(p.port)/v2/"]).status == 200)
    }

    @Test("limits: headers over 16 KiB get 431, slow or idle clients are cut off, connections past the limit are closed")
    func limits() throws {
        let upstream = try FakeUpstream()
        let issuer = try Issuer()
        let proxy = try ProxyProcess(upstream: upstream.port, args: ["--keys", issuer.home + "/keys", "--header-timeout", "1s",
                                                                  "--idle-timeout", "2s", "--max-connections", "3"])
        let ro = try issuer.token()
        let big = try curl(["-H", basicAuth(ro.token), "-H", "X-Big: " + String(repeating: "b", count: 17 * 1024), "http://127.0.0.1:\(proxy.port)/v2/"])
        #expect(big.status == 431, "\(big.status) \(big.body)")
        #expect(try curl(["-H", basicAuth(ro.token), "http://127.0.0.1:\(proxy.port)/v2/"]).status == 200)
        // A client that sends half a request head and stalls, and one that sends nothing: both closed.
        let probe = """
            import socket, sys, time
            port = int(sys.argv[1])
            def closed_after(payload, wait):
                s = socket.create_connection(("127.0.0.1", port)); s.settimeout(wait)
                if payload: s.sendall(payload)
                t = time.time()
                try:
                    data = s.recv(1024)
                except socket.timeout:
                    return -1
                return round(time.time() - t, 2) if data == b"" else -2
            print(closed_after(b"GET /v2/ HTTP/1.1\\r\\nHost: x\\r\\n", 6), closed_after(b"", 6))
            # Past the connection limit: the fourth connection is closed at once while three are held.
            held = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
            time.sleep(0.3)
            s = socket.create_connection(("127.0.0.1", port)); s.settimeout(3)
            try:
                print("closed" if s.recv(1) == b"" else "open")
            except socket.timeout:
                print("open")
            """
        let r = try Harness.run("/usr/bin/env", ["python3", "-c", probe, String(proxy.port)])
        let lines = r.out.split(separator: "\n").map(String.init)
        #expect(lines.count == 2, "\(r.stdout) \(r.stderr)")
        let times = lines.first?.split(separator: " ").compactMap { Double($0) } ?? []
        #expect(times.count == 2 && times.allSatisfy { $0 >= 0.5 && $0 < 4 }, "\(lines)")
        #expect(lines.last == "closed")
        // And it still serves.
        #expect(try waitUntil(3) { try curl(["-H", basicAuth(ro.token), "http://127.0.0.1:\(proxy.port)/v2/"]).status == 200 })
    }

    func jwks(_ issuer: Issuer) throws -> String {
        let path = try Harness.tempDir("jwks") + "/jwks.json"
        try issuer("keys", "export-public").stdout.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }
}

@Suite("regtoken loadtest over HTTP against the proxy (smoke)")
struct HTTPLoadtestSmokeTests {
    @Test("every response's status is checked against the expected decision; none is wrong")
    func http() throws {
        let registry = try Registry()
        let issuer = try Issuer()
        let proxy = try ProxyProcess(upstream: registry.port, args: ["--keys", issuer.home + "/keys", "--revocations", issuer.home + "/revocations.jws"])
        let r = try Harness.run(Harness.binary, ["loadtest", "--url", "http://127.0.0.1:\(proxy.port)", "--connections", "4", "--duration", "2s", "--output", "json"],
                                env: issuer.env)
        #expect(r.status == 0, "\(r.stderr)")
        let o = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(o["mode"] as? String == "http")
        #expect(o["wrong_decisions"] as? Int == 0)
        #expect((o["operations"] as? Int ?? 0) > 50)
        let outcomes = try #require(o["outcomes"] as? [String: Int])
        #expect((outcomes["valid"] ?? 0) > 0 && (outcomes["revoked"] ?? 0) >= 0)
        #expect(outcomes["errors"] == nil)
        #expect(waitUntil(2) { proxy.logText.contains("reason=revoked") } || (outcomes["revoked"] ?? 0) == 0)
        // The load test leaves nothing in the live ledger's list, and says what it did.
        #expect(r.stderr.contains("token-list shows none of them"), "\(r.stderr)")
        let list = try issuer("token-list", "--output", "json")
        #expect(list.status == 0 && list.out.filter { !$0.isWhitespace } == "[]", "\(list.stdout)")
    }
}
