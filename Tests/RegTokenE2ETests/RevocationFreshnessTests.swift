import Foundation
import Testing

/// Revocation that nothing can silently stop (the second security issue, proxy side): each test
/// reproduces an attack or fault the review found and shows that it fails now.
@Suite("regtoken proxy: revocation freshness, rollback, key changes and edges", .serialized)
struct RevocationFreshnessTests {
    typealias FakeUpstream = ProxyBehaviourTests.FakeUpstream


    func status(_ proxy: ProxyProcess, _ token: String) throws -> Int {
        try curl(["-H", basicAuth(token), "http://127.0.0.1:\(proxy.port)/v2/"]).status
    }

    func metric(_ port: Int, _ name: String) throws -> Double? {
        let body = try curl(["http://127.0.0.1:\(port)/metrics"]).body
        return body.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Double($0.split(separator: " ").last ?? "") }
    }

    /// A test CA and a server certificate for 127.0.0.1 (an IP address, no host name).
    func pki(_ names: [String] = ["server"]) throws -> String {
        let dir = try Harness.tempDir("pki")
        var script = """
            set -e; cd "$1"
            openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.crt -days 2 -subj /CN=regtoken-test-ca 2>/dev/null
            printf 'subjectAltName=IP:127.0.0.1\\nbasicConstraints=CA:FALSE\\nextendedKeyUsage=serverAuth\\n' > ext.cnf
            """
        for n in names {
            script += """

                openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout \(n).key -out \(n).csr -subj /CN=\(n) 2>/dev/null
                openssl x509 -req -in \(n).csr -CA ca.crt -CAkey ca.key -CAcreateserial -out \(n).crt -days 2 -extfile ext.cnf 2>/dev/null
                chmod 600 \(n).key
                """
        }
        let r = try Harness.bash(script, [dir])
        guard r.status == 0 else { throw HarnessError("pki: \(r.stderr)") }
        return dir
    }

    /// The list published over https by Tests/e2e/list_server.py, whose behaviour a mode file sets.
    final class ListServer {
        let port = Harness.freePort()
        let file: String
        let modeFile: String
        let process: Spawned

        init(list: String, pki: String) throws {
            let dir = try Harness.tempDir("list-server")
            file = dir + "/revocations.jws"
            modeFile = dir + "/mode"
            try FileManager.default.copyItem(atPath: list, toPath: file)
            try "serve".write(toFile: modeFile, atomically: true, encoding: .utf8)
            process = try Spawned(["python3", "\(Harness.scripts)/list_server.py", String(port), file, "\(pki)/server.crt", "\(pki)/server.key",
                                   modeFile, dir + "/log.jsonl"], log: dir + "/out.log")
            guard Harness.waitForPort(port) else { throw HarnessError("list server did not start") }
        }

        func mode(_ m: String) throws { try m.write(toFile: modeFile, atomically: true, encoding: .utf8) }

        func publish(_ list: String) throws {
            let tmp = file + ".new"
            try? FileManager.default.removeItem(atPath: tmp)
            try FileManager.default.copyItem(atPath: list, toPath: tmp)
            _ = rename(tmp, file)
        }

        deinit { process.stop() }
    }

    /// Replaces a file atomically with a copy of another (or with text).
    func replace(_ path: String, with source: String? = nil, text: String? = nil) throws {
        let tmp = path + ".tmp"
        try? FileManager.default.removeItem(atPath: tmp)
        if let source { try FileManager.default.copyItem(atPath: source, toPath: tmp) }
        if let text { try text.write(toFile: tmp, atomically: false, encoding: .utf8) }
        _ = rename(tmp, path)
    }

    @Test("a new active key and a removal, then a key retired: the running proxy follows with no signal, and a retired key's tokens stop")
    func keyChanges() throws {
        let upstream = try FakeUpstream()
        let issuer = try Issuer()
        let old = try issuer.token("--non-expiring")
        let oldToo = try issuer.token()
        let metricsPort = Harness.freePort()
        let proxy = try ProxyProcess(upstream: upstream.port, args: ["--keys", issuer.home + "/keys", "--revocations", issuer.home + "/revocations.jws",
                                                                  "--metrics", ":\(metricsPort)", "--home", try Harness.tempDir("proxy-home")])
        #expect(try status(proxy, old.token) == 200)
        let oldKey = try #require(try issuer("keys", "list", "--output", "json").stdout.split(separator: "\"").first { $0.hasPrefix("es256-") })
        #expect(try issuer("keys", "generate", "--alg", "ES256", "--activate").status == 0)
        #expect(try issuer("token-rm", old.id).status == 0)
        let fresh = try issuer.token()
        #expect(try waitUntil(2) { try status(proxy, old.token) == 401 }, "a removed token still works after a key change")
        #expect(try status(proxy, fresh.token) == 200)
        #expect(try status(proxy, oldToo.token) == 200)
        #expect(try metric(metricsPort, "regtoken_revocation_list_age_seconds") ?? 99 < 2)
        // Retiring the old key: its tokens stop at once, with no signal.
        #expect(try issuer("keys", "retire", String(oldKey)).status == 0)
        #expect(try waitUntil(2) { try status(proxy, oldToo.token) == 401 }, "a retired key's token still works")
        #expect(try status(proxy, fresh.token) == 200)
        #expect(proxy.logText.contains("keys reloaded"))
    }

    @Test("garbage, an older list and a list signed by an unknown key: refused, the age grows and non-expiring tokens fail closed; a good list recovers")
    func refusedFilesAge() throws {
        let upstream = try FakeUpstream()
        let issuer = try Issuer()
        let forever = try issuer.token("--non-expiring")
        let victim = try issuer.token()
        let list = try Harness.tempDir("list") + "/revocations.jws"
        #expect(try issuer("revocations", "refresh").status == 0)
        try FileManager.default.copyItem(atPath: issuer.home + "/revocations.jws", toPath: list)
        let older = list + ".v-old"
        try FileManager.default.copyItem(atPath: list, toPath: older)
        let metricsPort = Harness.freePort()
        let proxy = try ProxyProcess(upstream: upstream.port, args: ["--keys", issuer.home + "/keys", "--revocations", list, "--revocations-max-age", "4s",
                                                                  "--metrics", "127.0.0.1:\(metricsPort)", "--home", try Harness.tempDir("proxy-home")])
        #expect(try issuer("token-rm", victim.id).status == 0)
        try replace(list, with: issuer.home + "/revocations.jws")
        #expect(try waitUntil(2) { try status(proxy, victim.token) == 401 })
        let stranger = try Issuer()
        #expect(try stranger("revocations", "refresh").status == 0)
        for (name, bad) in [("garbage", "garbage"), ("older", try String(contentsOfFile: older, encoding: .utf8)),
                            ("unknown key", try String(contentsOfFile: stranger.home + "/revocations.jws", encoding: .utf8))] {
            // A fresh good list first, then the bad one: the age must grow from there.
            #expect(try issuer("revocations", "refresh").status == 0)
            try replace(list, with: issuer.home + "/revocations.jws")
            #expect(try waitUntil(3) { try status(proxy, forever.token) == 200 }, "\(name): the good list is not taken")
            try replace(list, text: bad)
            #expect(waitUntil(3) { proxy.logText.contains("revocation list refused") }, "\(name)")
            Thread.sleep(forTimeInterval: 2.5)
            #expect(try metric(metricsPort, "regtoken_revocation_list_age_seconds") ?? 0 >= 2, "\(name): the age does not grow")
            #expect(try waitUntil(4) { try status(proxy, forever.token) == 401 }, "\(name): fail-closed did not trip")
            #expect(try status(proxy, victim.token) == 401, "\(name): the revocation in force was lost")
        }
        // The operator is told each time the list went stale, and each time it recovered.
        func lines() -> String { proxy.logText.split(separator: "\n").filter { $0.contains("revocation list") }.joined(separator: "\n") }
        func count(_ text: String) -> Int { lines().components(separatedBy: text).count - 1 }
        let stale = "revocation list is stale: non-expiring tokens are refused until the list in force is confirmed current"
        #expect(waitUntil(2) { count(stale) >= 3 }, "\(lines())")
        #expect(count("revocation list fresh again") >= 2, "\(lines())")
        #expect(lines().contains("max_age_seconds=4") && lines().contains("see the errors above about the source"), "\(lines())")
    }

    @Test("https polling: a stalled TLS handshake costs a timeout, never the polling; 304 forever cannot keep a list fresh; an IP literal works")
    func stalledAndNotModified() throws {
        let upstream = try FakeUpstream()
        let issuer = try Issuer()
        let forever = try issuer.token("--non-expiring")
        let victim = try issuer.token()
        let pki = try pki()
        #expect(try issuer("revocations", "refresh").status == 0)
        let server = try ListServer(list: issuer.home + "/revocations.jws", pki: pki)
        let metricsPort = Harness.freePort()
        let proxy = try ProxyProcess(upstream: upstream.port, args: [
            "--keys", issuer.home + "/keys", "--revocations", "https://127.0.0.1:\(server.port)/revocations.jws", "--revocations-ca", "\(pki)/ca.crt",
            "--revocations-timeout", "1s", "--revocations-max-age", "5s", "--metrics", "127.0.0.1:\(metricsPort)", "--home", try Harness.tempDir("proxy-home"),
        ])
        #expect(try status(proxy, forever.token) == 200)
        // The server accepts connections and never answers the ClientHello.
        try server.mode("stall")
        #expect(try issuer("token-rm", victim.id).status == 0)
        try server.publish(issuer.home + "/revocations.jws")
        Thread.sleep(forTimeInterval: 3)
        #expect(try status(proxy, victim.token) == 200)  // not published to it yet
        let failures = try metric(metricsPort, "regtoken_proxy_reload_failures_total") ?? 0
        #expect(failures >= 1)
        #expect(try metric(metricsPort, "regtoken_revocation_list_age_seconds") ?? 0 >= 2)
        // Still polling: when the server answers again, the removal arrives.
        try server.mode("serve")
        #expect(try waitUntil(5) { try status(proxy, victim.token) == 401 }, "polling stopped after a stalled handshake")
        // A server answering 304 to everything keeps confirming, but the list's signature ages:
        // past the limit, non-expiring tokens fail closed all the same.
        try server.mode("304")
        #expect(try status(proxy, forever.token) == 200)
        #expect(try waitUntil(8) { try status(proxy, forever.token) == 401 }, "304 forever kept the list fresh")
        #expect(try metric(metricsPort, "regtoken_revocation_list_signed_age_seconds") ?? 0 >= 5)
    }

    @Test("rollback across a restart: yesterday's signed list is refused")
    func rollback() throws {
        let upstream = try FakeUpstream()
        let issuer = try Issuer()
        let victim = try issuer.token()
        let list = try Harness.tempDir("list") + "/revocations.jws"
        try FileManager.default.copyItem(atPath: issuer.home + "/revocations.jws", toPath: list)
        let yesterday = list + ".old"
        try FileManager.default.copyItem(atPath: list, toPath: yesterday)
        let home = try Harness.tempDir("proxy-home")
        let args = ["--keys", issuer.home + "/keys", "--revocations", list, "--home", home]
        var proxy: ProxyProcess? = try ProxyProcess(upstream: upstream.port, args: args)
        #expect(try issuer("token-rm", victim.id).status == 0)
        try replace(list, with: issuer.home + "/revocations.jws")
        #expect(try waitUntil(2) { try status(proxy!, victim.token) == 401 })
        proxy?.stop()
        proxy = nil
        try replace(list, with: yesterday)
        let restarted = try ProxyProcess(upstream: upstream.port, args: args, waitReady: false)
        #expect(waitUntil(10) { !restarted.isRunning }, "the proxy started with an older list")
        #expect(restarted.logText.contains("older than version") && restarted.logText.contains("rollback"), "\(restarted.logText)")
        #expect(!restarted.logText.contains("Fatal"))
    }

    @Test("a FIFO at the revocation path: refused at once, the proxy and its metrics keep answering")
    func fifo() throws {
        let upstream = try FakeUpstream()
        let issuer = try Issuer()
        let ro = try issuer.token()
        let list = try Harness.tempDir("list") + "/revocations.jws"
        try FileManager.default.copyItem(atPath: issuer.home + "/revocations.jws", toPath: list)
        let metricsPort = Harness.freePort()
        let proxy = try ProxyProcess(upstream: upstream.port, args: ["--keys", issuer.home + "/keys", "--revocations", list,
                                                                  "--metrics", "127.0.0.1:\(metricsPort)", "--home", try Harness.tempDir("proxy-home")])
        try FileManager.default.removeItem(atPath: list)
        #expect(mkfifo(list, 0o644) == 0)
        #expect(waitUntil(3) { proxy.logText.contains("not a regular file") })
        for _ in 0..<5 {
            #expect(try status(proxy, ro.token) == 200)
            #expect(try curl(["http://127.0.0.1:\(metricsPort)/metrics"]).status == 200)
            usleep(300_000)
        }
        // And at start: refused with a message, not a hang.
        let second = try ProxyProcess(upstream: upstream.port, args: ["--keys", issuer.home + "/keys", "--revocations", list, "--home", try Harness.tempDir("h")],
                                      waitReady: false)
        #expect(waitUntil(10) { !second.isRunning })
        #expect(second.logText.contains("not a regular file"), "\(second.logText)")
    }

    @Test("control bytes from a client never reach the access log raw")
    func logInjection() throws {
        let upstream = try FakeUpstream()
        let issuer = try Issuer()
        let proxy = try ProxyProcess(upstream: upstream.port, args: ["--keys", issuer.home + "/keys"])
        let ro = try issuer.token()
        let forged = "%1b%5b31mX%0d%0a2026-01-01T00:00:00%2B0000%20info%20regtoken.proxy:%20decision%3Dallow%20FORGED"
        let r = try curl(["--path-as-is", "-H", basicAuth(ro.token), "http://127.0.0.1:\(proxy.port)/v2/acme/app/tags/list?\(forged)=1&\(forged)=2"])
        #expect(r.status == 400)
        #expect(waitUntil(2) { proxy.logText.contains("reason=ambiguous_path") })
        let log = proxy.logText
        #expect(!log.contains("\u{1b}") && !log.contains("\r"))
        #expect(!log.split(separator: "\n").contains { $0.hasPrefix("2026-01-01T00:00:00+0000") })
        #expect(!r.body.contains("\u{1b}"))
    }

    @Test("TLS: 1.0, 1.1, static RSA and CBC suites refused (probed with openssl s_client); the key must be 0600; SIGHUP loads a new certificate")
    func tls() throws {
        let upstream = try FakeUpstream()
        let issuer = try Issuer()
        let pki = try pki(["first", "second"])
        try FileManager.default.copyItem(atPath: "\(pki)/first.crt", toPath: "\(pki)/live.crt")
        try FileManager.default.copyItem(atPath: "\(pki)/first.key", toPath: "\(pki)/live.key")
        #expect(chmod("\(pki)/live.key", 0o644) == 0)
        let refused = try ProxyProcess(upstream: upstream.port, args: ["--keys", issuer.home + "/keys", "--tls-cert", "\(pki)/live.crt", "--tls-key", "\(pki)/live.key"],
                                       waitReady: false)
        #expect(waitUntil(10) { !refused.isRunning })
        #expect(refused.logText.contains("chmod 600"), "\(refused.logText)")
        #expect(chmod("\(pki)/live.key", 0o600) == 0)
        let proxy = try ProxyProcess(upstream: upstream.port, args: ["--keys", issuer.home + "/keys", "--tls-cert", "\(pki)/live.crt", "--tls-key", "\(pki)/live.key"])
        func probe(_ args: String) throws -> (ok: Bool, subject: String) {
            let r = try Harness.bash("echo | timeout 10 openssl s_client -connect 127.0.0.1:\(proxy.port) \(args) 2>&1", [])
            let ok = r.stdout.contains("BEGIN CERTIFICATE") && !r.stdout.contains("Cipher is (NONE)") && !r.stdout.contains("alert")
            let subject = r.stdout.split(separator: "\n").first { $0.hasPrefix("subject=") }.map(String.init) ?? ""
            return (ok, subject)
        }
        #expect(try probe("-tls1 -cipher DEFAULT:@SECLEVEL=0").ok == false)
        #expect(try probe("-tls1_1 -cipher DEFAULT:@SECLEVEL=0").ok == false)
        #expect(try probe("-tls1_2 -cipher AES128-SHA:@SECLEVEL=0").ok == false)
        #expect(try probe("-tls1_2 -cipher ECDHE-ECDSA-AES128-SHA:@SECLEVEL=0").ok == false)
        #expect(try probe("-tls1_2 -cipher ECDHE-ECDSA-AES128-GCM-SHA256").ok == true)
        #expect(try probe("-tls1_2 -cipher ECDHE-ECDSA-CHACHA20-POLY1305").ok == true)
        let before = try probe("-tls1_3")
        #expect(before.ok && before.subject.contains("first"), "\(before)")
        // A new certificate and key, then SIGHUP: new connections get it.
        try replace("\(pki)/live.crt", with: "\(pki)/second.crt")
        try replace("\(pki)/live.key", with: "\(pki)/second.key")
        #expect(chmod("\(pki)/live.key", 0o600) == 0)
        proxy.signal(SIGHUP)
        #expect(try waitUntil(3) { try probe("-tls1_3").subject.contains("second") })
    }

    @Test("metrics: loopback unless an address is given, idle connections cut off, connections capped")
    func metricsListener() throws {
        let upstream = try FakeUpstream()
        let issuer = try Issuer()
        let metricsPort = Harness.freePort()
        let proxy = try ProxyProcess(upstream: upstream.port, args: ["--keys", issuer.home + "/keys", "--metrics", ":\(metricsPort)", "--header-timeout", "1s"])
        #expect(waitUntil(3) { Harness.canConnect(metricsPort) })
        let listening = try Harness.bash("ss -Hltn 'sport = :\(metricsPort)'", [])
        #expect(listening.stdout.contains("127.0.0.1:\(metricsPort)") && !listening.stdout.contains("0.0.0.0:\(metricsPort)"), "\(listening.stdout)")
        let probe = """
            import socket, sys, time
            port = int(sys.argv[1])
            s = socket.create_connection(("127.0.0.1", port)); s.settimeout(6)
            t = time.time()
            try:
                print("closed" if s.recv(1) == b"" else "data", round(time.time() - t, 1))
            except socket.timeout:
                print("open", 6)
            held = [socket.create_connection(("127.0.0.1", port)) for _ in range(70)]
            time.sleep(0.3)
            closed = 0
            for h in held:
                h.setblocking(False)
                try:
                    if h.recv(1) == b"": closed += 1
                except BlockingIOError:
                    pass
                except ConnectionResetError:
                    closed += 1
            print(closed)
            """
        let r = try Harness.run("/usr/bin/env", ["python3", "-c", probe, String(metricsPort)])
        let lines = r.out.split(separator: "\n")
        #expect(lines.first?.hasPrefix("closed") == true, "\(r.stdout) \(r.stderr)")
        #expect(Int(lines.last ?? "") ?? 0 >= 6, "connections past the cap were not closed: \(r.stdout)")
        #expect(try curl(["http://127.0.0.1:\(metricsPort)/metrics"]).status == 200)
        _ = proxy
    }

    @Test("a 1,000,000-entry list is parsed off the event loops: requests are answered meanwhile")
    func largeList() throws {
        let upstream = try FakeUpstream()
        let hs = try Issuer()  // a home whose active key is HS256, so PyJWT can sign a big list quickly
        #expect(try hs("keys", "generate", "--alg", "HS256", "--activate").status == 0)
        let ro = try hs.token()
        let list = try Harness.tempDir("list") + "/revocations.jws"
        try FileManager.default.copyItem(atPath: hs.home + "/revocations.jws", toPath: list)
        let proxy = try ProxyProcess(upstream: upstream.port, args: ["--keys", hs.home + "/keys", "--revocations", list, "--home", try Harness.tempDir("h")])
        let make = """
            import glob, jwt, os, sys, time, uuid
            home, out = sys.argv[1], sys.argv[2]
            kid = open(home + "/keys/active").read().strip()
            secret = open(home + "/keys/" + kid + ".hs256", "rb").read()
            revoked = [[str(uuid.UUID(int=i + 1, version=4)), None] for i in range(1000000)]
            text = jwt.encode({"version": 1000, "iat": int(time.time()), "revoked": revoked}, secret, algorithm="HS256",
                              headers={"kid": kid, "typ": "regtoken-revocations+jwt"})
            open(out + ".tmp", "w").write(text + "\\n")
            os.rename(out + ".tmp", out)
            """
        let made = try Harness.run("/usr/bin/env", ["python3", "-c", make, hs.home, list])
        #expect(made.status == 0, "\(made.stderr)")
        // While it is read and parsed, the proxy answers: no request waits on the parse.
        var slowest = 0.0
        let until = Date().addingTimeInterval(4)
        while Date() < until {
            let t = Date()
            #expect(try status(proxy, ro.token) == 200)
            slowest = max(slowest, Date().timeIntervalSince(t))
        }
        #expect(slowest < 1.0, "a request waited \(slowest) s")
        #expect(waitUntil(20) { proxy.logText.contains("revoked=1000000") }, "the big list was not taken")
    }
}
