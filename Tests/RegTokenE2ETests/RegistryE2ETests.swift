import Foundation
import RegToken
import Testing

/// regtoken proxy in front of a real registry (docker-registry), used by a real client (skopeo).
@Suite("regtoken proxy with docker-registry and skopeo", .serialized)
struct RegistryE2ETests {
    func image(_ tag: String = "v1", seed: String? = nil, bigMB: Int = 0) throws -> (dir: String, digest: String) {
        let dir = try Harness.tempDir("img")
        var env: [String: String] = [:]
        if let seed { env["E2E_IMAGE_SEED"] = seed }
        if bigMB > 0 { env["E2E_BIG_LAYER_MB"] = String(bigMB) }
        let r = try Harness.run("/bin/bash", ["\(Harness.scripts)/make-image.sh", dir, tag], env: env)
        guard r.status == 0 else { throw HarnessError("make-image failed: \(r.stderr)") }
        return (dir, r.out.split(separator: "\n").last.map(String.init) ?? "")
    }

    func proxy(_ registry: Registry, _ issuer: Issuer, _ extra: [String] = []) throws -> ProxyProcess {
        try ProxyProcess(upstream: registry.port, args: ["--keys", issuer.home + "/keys", "--revocations", issuer.home + "/revocations.jws"] + extra)
    }

    func sha256(_ path: String) throws -> String {
        try Harness.run("/usr/bin/sha256sum", [path]).out.split(separator: " ").first.map { "sha256:\($0)" } ?? ""
    }

    @Test("push and pull an image through the proxy with a read-write token; digests match")
    func pushPull() throws {
        let registry = try Registry()
        let issuer = try Issuer()
        let rw = try issuer.token("--readwrite")
        let ro = try issuer.token()
        let proxy = try proxy(registry, issuer)
        let (img, digest) = try image()
        let skopeo = try Skopeo()
        let out = try Harness.tempDir("pull")
        let push = try skopeo(["copy", "-q", "--dest-tls-verify=false", "--dest-creds", "token:\(rw.token)", "--digestfile", "\(out)/push.digest",
                               "oci:\(img):v1", "docker://127.0.0.1:\(proxy.port)/acme/app:v1"])
        #expect(push.status == 0, "\(push.stderr)")
        #expect(try String(contentsOfFile: "\(out)/push.digest", encoding: .utf8) == digest)
        // The registry itself holds it (asked directly, not through the proxy).
        let direct = try skopeo(["inspect", "--tls-verify=false", "--format", "{{.Digest}}", "docker://127.0.0.1:\(registry.port)/acme/app:v1"])
        #expect(direct.out == digest)
        // Pull with the read-only token and compare every blob.
        let pull = try skopeo(["copy", "-q", "--src-tls-verify=false", "--src-creds", "token:\(ro.token)",
                               "docker://127.0.0.1:\(proxy.port)/acme/app:v1", "dir:\(out)/pulled"])
        #expect(pull.status == 0, "\(pull.stderr)")
        #expect(try sha256("\(out)/pulled/manifest.json") == digest)
        let blobs = try FileManager.default.contentsOfDirectory(atPath: "\(out)/pulled").filter { $0.count == 64 }
        #expect(blobs.count == 3)
        for b in blobs { #expect(try sha256("\(out)/pulled/\(b)") == "sha256:\(b)") }
        // The access log names the token, never its value (written within its flush interval).
        #expect(waitUntil(2) { proxy.logText.contains("token_id=\(rw.id)") && proxy.logText.contains("token_id=\(ro.id)") && proxy.logText.contains("status=201") })
        let log = proxy.logText
        #expect(log.contains("token_id=\(rw.id)") && log.contains("token_id=\(ro.id)"))
        #expect(!log.contains(rw.token) && !log.contains(ro.token))
        #expect(log.contains("decision=allow") && log.contains("method=PUT") && log.contains("status=201"))
    }

    @Test("a read-only token pulls, but its push fails and skopeo prints the denial")
    func readOnly() throws {
        let registry = try Registry()
        let issuer = try Issuer()
        let rw = try issuer.token("--readwrite")
        let ro = try issuer.token()
        let proxy = try proxy(registry, issuer)
        let (img, digest) = try image()
        let skopeo = try Skopeo()
        #expect(try skopeo(["copy", "-q", "--dest-tls-verify=false", "--dest-creds", "token:\(rw.token)", "oci:\(img):v1", "docker://127.0.0.1:\(proxy.port)/acme/app:v1"]).status == 0)
        let inspect = try skopeo(["inspect", "--tls-verify=false", "--creds", "token:\(ro.token)", "--format", "{{.Digest}}", "docker://127.0.0.1:\(proxy.port)/acme/app:v1"])
        #expect(inspect.status == 0 && inspect.out == digest, "\(inspect.stderr)")
        let (img2, _) = try image("v2", seed: "second")
        let push = try skopeo(["copy", "-q", "--dest-tls-verify=false", "--dest-creds", "token:\(ro.token)", "oci:\(img2):v2", "docker://127.0.0.1:\(proxy.port)/acme/app:v2"])
        #expect(push.status != 0)
        #expect(push.stderr.contains("denied: token is pull-only for acme/app"), "\(push.stderr)")
        #expect(try skopeo(["inspect", "--tls-verify=false", "docker://127.0.0.1:\(registry.port)/acme/app:v2"]).status != 0)
    }

    @Test("expired, removed, wrong-region, other-account and garbage tokens are refused with their messages")
    func refusals() throws {
        let registry = try Registry()
        let issuer = try Issuer()
        let proxy = try proxy(registry, issuer)
        let (img, _) = try image()
        let skopeo = try Skopeo()
        func push(_ token: String, _ repo: String = "acme/app") throws -> Harness.Output {
            try skopeo(["copy", "-q", "--dest-tls-verify=false", "--dest-creds", "token:\(token)", "oci:\(img):v1", "docker://127.0.0.1:\(proxy.port)/\(repo):v1"])
        }
        // skopeo prints the proxy's message from the JSON body of a refused GET (a refused HEAD
        // has no body), so each refusal is shown through inspect, and push is checked to fail.
        func inspect(_ token: String, _ repo: String = "acme/app") throws -> Harness.Output {
            try skopeo(["inspect", "--tls-verify=false", "--creds", "token:\(token)", "docker://127.0.0.1:\(proxy.port)/\(repo):v1"])
        }
        let rw0 = try issuer.token("--readwrite")
        #expect(try push(rw0.token).status == 0)
        // Expired: a token of this issuer's key that expired an hour ago.
        let ring = try KeyRing.load(directory: issuer.home + "/keys")
        let expired = try TokenIssuer(keyRing: ring).issue(TokenClaims(account: "acme", region: "eu-west-1", scope: .pushPull,
            issuedAt: Int64(Date().timeIntervalSince1970) - 7200, expiresAt: Int64(Date().timeIntervalSince1970) - 3600))
        // Wrong region, and another account's token on acme's namespace.
        let wrongRegion = try issuer("token-add", "--readwrite", "-q", "--region", "us-east-1").out
        let otherAccount = try issuer("token-add", "--readwrite", "-q", "--account", "globex").out
        let cases: [(String, String, String)] = [
            ("expired", expired, "unauthorized: token expired"),
            ("wrong region", wrongRegion, "denied: token is for another region than eu-west-1"),
            ("other account", otherAccount, "denied: namespace acme is not owned by the token's account"),
            ("garbage", "not-a-token", "unauthorized: malformed token"),
        ]
        for (what, token, message) in cases {
            let i = try inspect(token)
            #expect(i.status != 0 && i.stderr.contains(message), "\(what): \(i.stderr)")
            let p = try push(token)
            #expect(p.status != 0, "\(what) pushed")
        }
        #expect(waitUntil(2) { proxy.logText.contains("reason=malformed") })
        let log = proxy.logText
        for reason in ["reason=expired", "reason=wrong_region", "reason=namespace_not_owned", "reason=malformed"] {
            #expect(log.contains(reason), "\(reason)")
        }
        // Removed while the proxy runs: the next push fails within 2 s.
        let rw = try issuer.token("--readwrite")
        #expect(try push(rw.token).status == 0)
        let rm = try issuer("token-rm", rw.id)
        #expect(rm.status == 0)
        let removedAt = Date()
        var refusedAfter: Double? = nil
        while Date().timeIntervalSince(removedAt) < 5 {
            let r = try curl(["-H", basicAuth(rw.token), "http://127.0.0.1:\(proxy.port)/v2/"])
            if r.status == 401 { refusedAfter = Date().timeIntervalSince(removedAt); break }
            usleep(50_000)
        }
        let after = try #require(refusedAfter)
        #expect(after < 2, "refused only after \(after) s")
        #expect(try push(rw.token).status != 0)
        let removed = try inspect(rw.token)
        #expect(removed.status != 0 && removed.stderr.contains("unauthorized: token revoked"), "\(removed.stderr)")
        #expect(proxy.logText.contains("revocation list reloaded"))
    }

    @Test("a mount from another account's repository is refused; from one's own it works")
    func mounts() throws {
        let registry = try Registry()
        let issuer = try Issuer()
        let namespaces = try Harness.tempDir("ns") + "/namespaces"
        try "acme acme\nglobex globex\n".write(toFile: namespaces, atomically: true, encoding: .utf8)
        let proxy = try proxy(registry, issuer, ["--namespaces", namespaces])
        let (img, _) = try image()
        let skopeo = try Skopeo()
        let globex = try issuer("token-add", "--readwrite", "-q", "--account", "globex").out
        let acme = try issuer.token("--readwrite")
        #expect(try skopeo(["copy", "-q", "--dest-tls-verify=false", "--dest-creds", "token:\(globex)", "oci:\(img):v1", "docker://127.0.0.1:\(proxy.port)/globex/base:v1"]).status == 0)
        #expect(try skopeo(["copy", "-q", "--dest-tls-verify=false", "--dest-creds", "token:\(acme.token)", "oci:\(img):v1", "docker://127.0.0.1:\(proxy.port)/acme/base:v1"]).status == 0)
        // A layer of the image (the first of the manifest's layers).
        let index = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(img)/index.json"))) as? [String: Any])
        let manifestDigest = try #require(((index["manifests"] as? [[String: Any]])?.first?["digest"] as? String)?.dropFirst(7))
        let manifest = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(img)/blobs/sha256/\(manifestDigest)"))) as? [String: Any])
        let digest = try #require((manifest["layers"] as? [[String: Any]])?.first?["digest"] as? String)
        let stolen = try curl(["-X", "POST", "-H", basicAuth(acme.token), "http://127.0.0.1:\(proxy.port)/v2/acme/app/blobs/uploads/?mount=\(digest)&from=globex%2Fbase"])
        #expect(stolen.status == 403)
        #expect(stolen.body.contains("\"code\":\"DENIED\"") && stolen.body.contains("mount source: namespace globex is not owned"))
        let own = try curl(["-X", "POST", "-H", basicAuth(acme.token), "http://127.0.0.1:\(proxy.port)/v2/acme/app/blobs/uploads/?mount=\(digest)&from=acme%2Fbase"])
        #expect(own.status == 201, "\(own.body)")
        // skopeo pushing the same image into acme/app with a blob-info cache that knows globex/base
        // tries the mount, is refused, and uploads instead: the push still completes.
        let shared = try skopeo(["copy", "-q", "--dest-tls-verify=false", "--dest-creds", "token:\(acme.token)", "oci:\(img):v1", "docker://127.0.0.1:\(proxy.port)/acme/app2:v1"])
        #expect(shared.status == 0, "\(shared.stderr)")
    }

    @Test("TLS with a test CA: skopeo verifies the proxy's certificate and pushes through it")
    func tls() throws {
        let registry = try Registry()
        let issuer = try Issuer()
        let pki = try Harness.tempDir("pki")
        let certs = try Harness.bash("""
            set -e; cd "$1"
            openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.crt -days 2 -subj /CN=regtoken-test-ca 2>/dev/null
            openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server.key -out server.csr -subj /CN=127.0.0.1 2>/dev/null
            printf 'subjectAltName=IP:127.0.0.1\\nbasicConstraints=CA:FALSE\\nextendedKeyUsage=serverAuth\\n' > ext.cnf
            openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 2 -extfile ext.cnf 2>/dev/null
            mkdir -p trust && cp ca.crt trust/ca.crt
            """, [pki])
        #expect(certs.status == 0, "\(certs.stderr)")
        let proxy = try proxy(registry, issuer, ["--tls-cert", "\(pki)/server.crt", "--tls-key", "\(pki)/server.key"])
        let rw = try issuer.token("--readwrite")
        let (img, digest) = try image()
        let skopeo = try Skopeo()
        let push = try skopeo(["copy", "-q", "--dest-cert-dir", "\(pki)/trust", "--dest-creds", "token:\(rw.token)", "oci:\(img):v1", "docker://127.0.0.1:\(proxy.port)/acme/app:v1"])
        #expect(push.status == 0, "\(push.stderr)")
        let inspect = try skopeo(["inspect", "--cert-dir", "\(pki)/trust", "--creds", "token:\(rw.token)", "--format", "{{.Digest}}", "docker://127.0.0.1:\(proxy.port)/acme/app:v1"])
        #expect(inspect.out == digest, "\(inspect.stderr)")
        // Without the CA, the certificate is not trusted.
        let untrusted = try skopeo(["inspect", "--creds", "token:\(rw.token)", "docker://127.0.0.1:\(proxy.port)/acme/app:v1"])
        #expect(untrusted.status != 0 && untrusted.stderr.contains("certificate"))
        let plain = try curl(["http://127.0.0.1:\(proxy.port)/v2/"])
        #expect(plain.status != 200)
    }

    @Test("a 1 GiB layer pushed and pulled through the proxy: peak resident memory under 64 MiB")
    func bigLayer() throws {
        let registry = try Registry()
        let issuer = try Issuer()
        let proxy = try proxy(registry, issuer)
        let rw = try issuer.token("--readwrite")
        let (img, digest) = try image(bigMB: 1024)
        let skopeo = try Skopeo()
        let push = try skopeo(["copy", "-q", "--dest-tls-verify=false", "--dest-creds", "token:\(rw.token)", "oci:\(img):v1", "docker://127.0.0.1:\(proxy.port)/acme/big:v1"])
        #expect(push.status == 0, "\(push.stderr)")
        let out = try Harness.tempDir("bigpull")
        let pull = try skopeo(["copy", "-q", "--src-tls-verify=false", "--src-creds", "token:\(rw.token)", "docker://127.0.0.1:\(proxy.port)/acme/big:v1", "dir:\(out)/pulled"])
        #expect(pull.status == 0, "\(pull.stderr)")
        #expect(try sha256("\(out)/pulled/manifest.json") == digest)
        let blobs = try FileManager.default.contentsOfDirectory(atPath: "\(out)/pulled").filter { $0.count == 64 }
        let sizes = try blobs.map { try FileManager.default.attributesOfItem(atPath: "\(out)/pulled/\($0)")[.size] as? Int ?? 0 }
        #expect(sizes.max() ?? 0 > 1 << 30)
        for b in blobs { #expect(try sha256("\(out)/pulled/\(b)") == "sha256:\(b)") }
        let peak = try #require(proxy.peakRSSKiB)
        print("proxy peak RSS after 1 GiB up and down: \(peak / 1024) MiB")
        #expect(peak < 64 * 1024, "peak RSS \(peak) KiB")
        try? FileManager.default.removeItem(atPath: out)
        try? FileManager.default.removeItem(atPath: img)
    }
}
