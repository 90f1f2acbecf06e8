import Foundation
import Testing

/// SIGTERM (as an orchestrator sends on every rolling deploy) while a 64 MiB blob is pulled or
/// pushed slowly through the proxy in front of the real registry: the transfer finishes with
/// every byte and the right digest, new connections are refused meanwhile, and the proxy exits 0.
@Suite("regtoken proxy: graceful drain on SIGTERM", .serialized)
struct GracefulDrainTests {
    static let size = 64 << 20


    /// A 64 MiB file of random bytes and its digest.
    func blob() throws -> (path: String, digest: String) {
        let path = try Harness.tempDir("blob") + "/blob"
        let r = try Harness.bash("head -c \(Self.size) /dev/urandom > \"$1\" && sha256sum \"$1\"", [path])
        guard r.status == 0, let hex = r.out.split(separator: " ").first else { throw HarnessError("blob: \(r.stderr)") }
        return (path, "sha256:\(hex)")
    }

    /// curl in the background, rate-limited so that the transfer takes several seconds.
    func slowCurl(_ args: [String], log: String) throws -> Spawned {
        try Spawned(["curl", "-sS", "--limit-rate", "8M", "-o", log + ".body", "-w", "%{http_code}\n", "--max-time", "60"] + args, log: log)
    }

    func drained(_ proxy: ProxyProcess) throws {
        // Draining: the listener is closed, so a new connection is refused at once.
        #expect(waitUntil(3) { !Harness.canConnect(proxy.port) }, "new connections are still accepted while draining")
    }

    @Test("a slow 64 MiB pull: SIGTERM mid-transfer, the client gets every byte, new connections are refused, exit 0")
    func pull() throws {
        let registry = try Registry()
        let issuer = try Issuer()
        let rw = try issuer.token("--readwrite")
        let (file, digest) = try blob()
        // The blob, straight into the registry.
        let up = try Harness.bash("""
            loc=$(curl -sS -X POST -D - -o /dev/null "http://127.0.0.1:$1/v2/acme/big/blobs/uploads/" | tr -d '\\r' | sed -n 's/^[Ll]ocation: //p')
            curl -sS -o /dev/null -w '%{http_code}' -X PUT -H 'Content-Type: application/octet-stream' --data-binary @"$2" "$loc&digest=$3"
            """, [String(registry.port), file, digest])
        #expect(up.out == "201", "\(up.stdout) \(up.stderr)")
        let proxy = try ProxyProcess(upstream: registry.port, args: ["--keys", issuer.home + "/keys", "--shutdown-grace", "30s"])
        let log = try Harness.tempDir("pull") + "/curl"
        let client = try slowCurl(["-H", basicAuth(rw.token), "http://127.0.0.1:\(proxy.port)/v2/acme/big/blobs/\(digest)"], log: log)
        Thread.sleep(forTimeInterval: 2)
        #expect(client.isRunning, "the transfer ended before the signal")
        proxy.signal(SIGTERM)
        try drained(proxy)
        #expect(waitUntil(40) { !client.isRunning })
        #expect(client.exitStatus == 0, "curl: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
        #expect(((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("200"))
        let got = try Harness.run("/usr/bin/sha256sum", [log + ".body"]).out.split(separator: " ").first.map { "sha256:\($0)" }
        #expect(got == digest, "the client did not get every byte")
        #expect(waitUntil(10) { !proxy.isRunning })
        #expect(proxy.exitStatus == 0, "\(proxy.logText.suffix(2000))")
        #expect(proxy.logText.contains("drained"))
    }

    @Test("a slow 64 MiB push: SIGTERM mid-upload, the upload completes with the right digest, exit 0")
    func push() throws {
        let registry = try Registry()
        let issuer = try Issuer()
        let rw = try issuer.token("--readwrite")
        let (file, digest) = try blob()
        let proxy = try ProxyProcess(upstream: registry.port, args: ["--keys", issuer.home + "/keys", "--shutdown-grace", "30s"])
        // Start the upload through the proxy; then the whole blob in one PUT, slowly.
        let start = try curl(["-X", "POST", "-H", basicAuth(rw.token), "-H", "Content-Length: 0",
                              "http://127.0.0.1:\(proxy.port)/v2/acme/big/blobs/uploads/"])
        #expect(start.status == 202)
        let location = try #require(start.headers.split(separator: "\r\n").first { $0.lowercased().hasPrefix("location:") })
            .dropFirst("location:".count).trimmingCharacters(in: .whitespaces)
        let log = try Harness.tempDir("push") + "/curl"
        let client = try slowCurl(["-X", "PUT", "-H", basicAuth(rw.token), "-H", "Content-Type: application/octet-stream",
                                   "--data-binary", "@\(file)", "\(location)&digest=\(digest)"], log: log)
        Thread.sleep(forTimeInterval: 2)
        #expect(client.isRunning, "the transfer ended before the signal")
        proxy.signal(SIGTERM)
        try drained(proxy)
        #expect(waitUntil(40) { !client.isRunning })
        #expect(client.exitStatus == 0)
        #expect(((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("201"), "\((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
        #expect(waitUntil(10) { !proxy.isRunning })
        #expect(proxy.exitStatus == 0, "\(proxy.logText.suffix(2000))")
        // The registry holds the blob, every byte of it.
        let pulled = try Harness.tempDir("pulled") + "/blob"
        let r = try Harness.run("/usr/bin/curl", ["-sS", "-o", pulled, "-w", "%{http_code}", "http://127.0.0.1:\(registry.port)/v2/acme/big/blobs/\(digest)"])
        #expect(r.out == "200")
        #expect(try Harness.run("/usr/bin/sha256sum", [pulled]).out.split(separator: " ").first.map { "sha256:\($0)" } == digest)
    }

    @Test("a second signal ends at once; an idle proxy exits 0 at once on the first")
    func secondSignal() throws {
        let registry = try Registry()
        let issuer = try Issuer()
        let rw = try issuer.token("--readwrite")
        let idle = try ProxyProcess(upstream: registry.port, args: ["--keys", issuer.home + "/keys"])
        idle.signal(SIGTERM)
        #expect(waitUntil(5) { !idle.isRunning })
        #expect(idle.exitStatus == 0)
        let (file, digest) = try blob()
        let proxy = try ProxyProcess(upstream: registry.port, args: ["--keys", issuer.home + "/keys", "--shutdown-grace", "60s"])
        let start = try curl(["-X", "POST", "-H", basicAuth(rw.token), "-H", "Content-Length: 0",
                              "http://127.0.0.1:\(proxy.port)/v2/acme/big/blobs/uploads/"])
        let location = try #require(start.headers.split(separator: "\r\n").first { $0.lowercased().hasPrefix("location:") })
            .dropFirst("location:".count).trimmingCharacters(in: .whitespaces)
        let client = try slowCurl(["-X", "PUT", "-H", basicAuth(rw.token), "-H", "Content-Type: application/octet-stream",
                                   "--data-binary", "@\(file)", "\(location)&digest=\(digest)"], log: try Harness.tempDir("cut") + "/curl")
        Thread.sleep(forTimeInterval: 1)
        proxy.signal(SIGTERM)
        Thread.sleep(forTimeInterval: 1)
        #expect(proxy.isRunning, "the proxy did not wait for the upload")
        proxy.signal(SIGINT)
        #expect(waitUntil(5) { !proxy.isRunning }, "a second signal did not end the proxy")
        #expect(proxy.exitStatus != 0)
        #expect(proxy.logText.contains("stopping at once"))
        #expect(waitUntil(10) { !client.isRunning })
    }
}
