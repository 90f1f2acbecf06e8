import Foundation
import Testing

/// The proxy under load and faults at once: `regtoken loadtest` in HTTP mode sends mixed valid
/// and invalid tokens for 60 s through the proxy to the real registry, while a client opens
/// 1,000 idle connections, others send their requests a byte at a time, and others send
/// malformed HTTP. A bounded soak: about a minute.
@Suite("regtoken proxy: a bounded soak under load and faults", .serialized)
struct ProxySoakTests {
    static let faults = #"""
        import json, resource, socket, sys, threading, time
        port, pid, auth, idle_timeout = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
        t0 = time.time()
        out = {"rss": []}

        def rss():
            for line in open(f"/proc/{pid}/status"):
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        def at(t):
            time.sleep(max(0, t0 + t - time.time()))
        def sample(label):
            out["rss"].append([label, round(time.time() - t0, 1), rss()])

        def exchange(payload, timeout=12, per_byte=None):
            """Sends a request (all at once, or a byte at a time); returns the status and the time taken, or 'closed'."""
            s = socket.create_connection(("127.0.0.1", port)); s.settimeout(timeout)
            t = time.time()
            try:
                if per_byte is None:
                    s.sendall(payload)
                else:
                    for i in range(len(payload)):
                        s.send(payload[i:i + 1]); time.sleep(per_byte)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the proxy answered and closed before taking everything: read the answer
            data = b""
            try:
                while b"\r\n" not in data:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            except ConnectionResetError:
                pass
            except socket.timeout:
                return ("timeout", round(time.time() - t, 2))
            finally:
                s.close()
            if not data.startswith(b"HTTP/1.1 "):
                return ("closed", round(time.time() - t, 2))
            return (int(data[9:12]), round(time.time() - t, 2))

        def get(path="/v2/"):
            return exchange(f"GET {path} HTTP/1.1\r\nHost: registry\r\nAuthorization: {auth}\r\nConnection: close\r\n\r\n".encode(), timeout=5)

        at(5); sample("under load")

        # 1,000 connections that never send a byte: the proxy keeps serving meanwhile, then closes
        # them all when they have not sent a request head within the header timeout.
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(1000)]
        time.sleep(1); sample("1000 idle connections")
        out["with_idle"] = [get() for _ in range(5)]

        # Clients that send their request a byte at a time (about 4 s), all at once.
        slow = []
        def slow_client():
            req = f"GET /v2/ HTTP/1.1\r\nHost: registry\r\nAuthorization: {auth}\r\nConnection: close\r\n\r\n".encode()
            slow.append(exchange(req, per_byte=4.0 / len(req)))
        threads = [threading.Thread(target=slow_client) for _ in range(5)]
        # And one slower than the header timeout (10 s): cut off before it finishes.
        loris = []
        def slowloris():
            loris.append(exchange(b"GET /v2/ HTTP/1.1\r\nHost: registry\r\nX-Slow: " + b"a" * 200 + b"\r\n\r\n", timeout=20, per_byte=0.08))
        threads.append(threading.Thread(target=slowloris))
        for t in threads: t.start()

        # Malformed HTTP, each on its own connection.
        cases = {
            "garbage": b"\x00\x01\x02\xff" * 64,
            "no method": b" /v2/ HTTP/1.1\r\n\r\n",
            "header without colon": b"GET /v2/ HTTP/1.1\r\nHost registry\r\n\r\n",
            "bad version": b"GET /v2/ HTTP/9.9\r\nHost: registry\r\n\r\n",
            "negative length": b"PUT /v2/acme/app/manifests/v1 HTTP/1.1\r\nHost: r\r\nContent-Length: -1\r\n\r\n",
            "two lengths": b"PUT /v2/acme/app/manifests/v1 HTTP/1.1\r\nHost: r\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
            "length and chunked": b"POST /v2/acme/app/blobs/uploads/ HTTP/1.1\r\nHost: r\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            "bad chunk": b"POST /v2/acme/app/blobs/uploads/ HTTP/1.1\r\nHost: r\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\n",
            "bare LF line ends": b"GET /v2/ HTTP/1.1\nHost: r\n\n",
            "long request line": b"GET /v2/" + b"a" * 70000 + b" HTTP/1.1\r\nHost: r\r\n\r\n",
            "many headers": b"GET /v2/ HTTP/1.1\r\nHost: r\r\n" + b"X-A: b\r\n" * 3000 + b"\r\n",
            "NUL in header": b"GET /v2/ HTTP/1.1\r\nHost: r\r\nX-A: a\x00b\r\n\r\n",
        }
        out["malformed"] = {name: exchange(payload)[0] for name, payload in cases.items()}
        for t in threads: t.join()
        out["slow"] = slow
        out["slowloris"] = loris

        # Those connections were closed by the proxy (header timeout, 10 s).
        at(6 + idle_timeout + 4)
        closed = 0
        for s in idle:
            s.setblocking(False)
            try:
                if s.recv(1) == b"":
                    closed += 1
            except ConnectionResetError:
                closed += 1
            except BlockingIOError:
                pass  # still open
            s.close()
        out["idle_closed"] = closed
        out["after"] = [get() for _ in range(3)]

        # Flat memory: under the same load, after the faults, for half a minute.
        for t in range(28, 58, 3):
            at(t); sample("steady")
        print(json.dumps(out))
        """#

    @Test("60 s of mixed tokens over HTTP beside 1,000 idle connections, byte-at-a-time clients and malformed HTTP: no wrong decision, flat memory, the proxy keeps serving")
    func soak() throws {
        // 1,000 connections need more descriptors than a 1024 default: raise this process's limit
        // (the proxy and the client inherit it; root may raise the hard limit too).
        // The proxy starts with the common default soft limit of 1024 and must raise it itself
        // for --max-connections 1100 (the client raises its own).
        var limit = rlimit()
        #expect(getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0)
        let saved = limit
        var soft = rlimit(rlim_cur: 1024, rlim_max: max(limit.rlim_max, 4096))
        if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &soft) != 0 {
            soft = rlimit(rlim_cur: 1024, rlim_max: limit.rlim_max)
            #expect(setrlimit(Int32(RLIMIT_NOFILE.rawValue), &soft) == 0)
        }
        defer { var back = saved; _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &back) }
        let registry = try Registry()
        let issuer = try Issuer()
        let idleTimeout = 12
        let proxy = try ProxyProcess(upstream: registry.port, args: [
            "--keys", issuer.home + "/keys", "--revocations", issuer.home + "/revocations.jws",
            "--max-connections", "1100", "--idle-timeout", "\(idleTimeout)s", "--header-timeout", "10s",
        ])
        let ro = try issuer.token()
        var restored = saved
        _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &restored)
        let proxyLimit = (try? String(contentsOfFile: "/proc/\(proxy.pid)/limits", encoding: .utf8))?
            .split(separator: "\n").first { $0.hasPrefix("Max open files") }
            .flatMap { $0.split(separator: " ", omittingEmptySubsequences: true).dropFirst(3).first }.flatMap { Int($0) } ?? 0
        #expect(proxyLimit >= 2264 || proxy.logText.contains("lower --max-connections or raise the limit"), "the proxy's open-file limit is \(proxyLimit)")
        #expect(proxy.logText.contains("raised the open file limit"))
        let loadLog = try Harness.tempDir("soak") + "/loadtest.json"
        let load = try Spawned([Harness.binary, "loadtest", "--url", "http://127.0.0.1:\(proxy.port)", "--connections", "4",
                                "--duration", "60s", "--output", "json"], environment: issuer.env, log: loadLog)
        let faults = try Harness.run("/usr/bin/env", ["python3", "-c", Self.faults, String(proxy.port), String(proxy.pid),
                                                       String(basicAuth(ro.token).dropFirst("Authorization: ".count)), String(idleTimeout)])
        #expect(faults.status == 0, "\(faults.stderr)")
        let deadline = Date().addingTimeInterval(30)
        while load.isRunning && Date() < deadline { usleep(200_000) }
        #expect(!load.isRunning, "the loadtest did not finish")
        #expect(proxy.isRunning, "the proxy died: \(proxy.logText.suffix(2000))")

        // The loadtest: many requests, every decision right, no transport error.
        let loadText = (try? String(contentsOfFile: loadLog, encoding: .utf8)) ?? ""
        let json = loadText.firstIndex(of: "{").map { String(loadText[$0...]) } ?? ""
        let report = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any], "\(loadText.suffix(2000))")
        #expect(report["wrong_decisions"] as? Int == 0)
        #expect((report["operations"] as? Int ?? 0) > 2000)
        let outcomes = try #require(report["outcomes"] as? [String: Int])
        #expect(outcomes["errors"] == nil, "\(outcomes)")
        for kind in ["valid", "expired", "revoked", "wrongscope", "malformed"] { #expect((outcomes[kind] ?? 0) > 0, "no \(kind) request: \(outcomes)") }

        let f = try #require(try JSONSerialization.jsonObject(with: Data(faults.stdout.utf8)) as? [String: Any], "\(faults.stdout) \(faults.stderr)")
        // Served while 1,000 connections were idle, and after.
        for key in ["with_idle", "after"] {
            let results = try #require(f[key] as? [[Any]])
            #expect(results.allSatisfy { ($0.first as? Int) == 200 && (($0.last as? Double) ?? 9) < 2 }, "\(key): \(results)")
        }
        #expect(f["idle_closed"] as? Int == 1000)
        // Byte-at-a-time clients inside the header timeout are served; one slower than it is cut off.
        let slow = try #require(f["slow"] as? [[Any]])
        #expect(slow.count == 5 && slow.allSatisfy { ($0.first as? Int) == 200 }, "\(slow)")
        let loris = try #require((f["slowloris"] as? [[Any]])?.first)
        #expect(loris.first as? String == "closed" || loris.first as? Int == 408, "\(loris)")
        #expect(((loris.last as? Double) ?? 0) >= 9 && ((loris.last as? Double) ?? 99) < 16, "\(loris)")
        // Malformed HTTP is answered by the proxy itself: 400 when the head does not parse or
        // its framing is refused (a POST with a chunked body, whose bad chunk comes later), 431
        // when it is too large, 505 for a version other than 1.1 and 1.0. None of them carries a
        // token, so none could be forwarded.
        let malformed = try #require(f["malformed"] as? [String: Any])
        let expected = ["garbage": 400, "no method": 400, "header without colon": 400, "negative length": 400,
                        "two lengths": 400, "length and chunked": 400, "bad chunk": 400, "bare LF line ends": 400, "bad version": 505,
                        "long request line": 431, "many headers": 431, "NUL in header": 400]
        #expect(Set(malformed.keys) == Set(expected.keys))
        for (name, status) in malformed {
            #expect(status as? Int == expected[name], "\(name): \(status)")
        }
        // Memory: bounded with 1,000 connections open, flat under steady load afterwards.
        let samples = try #require(f["rss"] as? [[Any]]).compactMap { s in (s.last as? Int).map { (s.first as? String ?? "", $0) } }
        let steady = samples.filter { $0.0 == "steady" }.map(\.1)
        let peak = samples.map(\.1).max() ?? 0
        #expect(peak < 256 * 1024, "peak RSS \(peak / 1024) MiB")
        #expect(steady.count >= 8)
        let growth = (steady.last ?? 0) - (steady.first ?? 0)
        #expect(growth < 8 * 1024, "RSS grew \(growth) KiB in 30 s of steady load: \(steady)")
        print("soak: \(report["operations"] ?? "?") requests, RSS \(samples.map { "\($0.0) \($0.1 / 1024) MiB" }.joined(separator: ", ")); "
              + "malformed \(malformed.map { "\($0.key) \($0.value)" }.sorted().joined(separator: ", ")); slowloris \(loris)")
    }
}
