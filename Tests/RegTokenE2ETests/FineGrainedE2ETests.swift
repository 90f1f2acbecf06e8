import Foundation
import Testing

/// Fine-grained tokens through `regtoken proxy` in front of Debian's docker-registry, with
/// skopeo and curl: repository rules on push, pull, mount and delete; address ranges with and
/// without a trusted reverse proxy's X-Forwarded-For.
@Suite("Fine-grained tokens through the proxy and a real registry", .serialized)
struct FineGrainedE2ETests {
    @Test("repository rules: push only where a rule allows it, pull by another rule, a mount from a source no rule allows refused, delete only with the action")
    func repositoryRules() throws {
        let issuer = try Issuer()
        let registry = try Registry()
        defer { registry.stop() }
        let proxy = try ProxyProcess(upstream: registry.port, args: ["--keys", issuer.home + "/keys"])
        defer { proxy.stop() }
        let full = try issuer.token("--readwrite", "--delete")
        let ci = try issuer.token("--readwrite", "--delete", "--repository", "acme/ci-*:pull,push", "--repository", "acme/base/**:pull")
        let deleter = try issuer.token("--readwrite", "--delete", "--repository", "acme/ci-*")

        let image = try Skopeo.makeImage()
        let skopeo = try Skopeo()
        func push(_ token: String, _ repo: String) throws -> Harness.Output { try skopeo.push(image, port: proxy.port, repo, token: token) }
        func inspect(_ token: String, _ repo: String) throws -> Harness.Output { try skopeo.inspect(port: proxy.port, repo, token: token) }
        for repo in ["acme/base/alpine", "acme/app"] {
            let r = try push(full.token, repo)
            #expect(r.status == 0, "\(r.stderr)")
        }
        // Push where a rule allows it; not elsewhere, not where the rule is pull only.
        let pushed = try push(ci.token, "acme/ci-one")
        #expect(pushed.status == 0, "\(pushed.stderr) \(proxy.logText)")
        let outside = try push(ci.token, "acme/app")
        #expect(outside.status != 0, "\(outside.stderr)")
        #expect(try push(ci.token, "acme/base/alpine2").status != 0)
        // Pull by the other rule; nothing outside the rules.
        #expect(try inspect(ci.token, "acme/base/alpine").status == 0)
        #expect(try inspect(ci.token, "acme/app").status != 0)

        // A cross-repository mount reads its source: allowed from acme/base (pull rule), refused from acme/app.
        let layer = try TokenServerTests.firstLayerDigest(image)
        let base = "http://127.0.0.1:\(proxy.port)/v2"
        let fromBase = try curl(["-X", "POST", "-H", basicAuth(ci.token), "\(base)/acme/ci-two/blobs/uploads/?mount=\(layer)&from=acme/base/alpine"])
        #expect(fromBase.status == 201, "\(fromBase)")
        let fromApp = try curl(["-X", "POST", "-H", basicAuth(ci.token), "\(base)/acme/ci-three/blobs/uploads/?mount=\(layer)&from=acme/app"])
        #expect(fromApp.status == 403 && fromApp.body.contains("mount source"), "\(fromApp)")
        #expect(try curl(["-I", "-H", basicAuth(full.token), "\(base)/acme/ci-three/blobs/\(layer)"]).status == 404)

        // Delete: the token's scope has it, but its rule does not; a rule with the action deletes.
        let head = try curl(["-I", "-H", basicAuth(ci.token), "-H", "Accept: application/vnd.oci.image.manifest.v1+json", "\(base)/acme/ci-one/manifests/v1"])
        let digest = try #require(head.headers.split(separator: "\r\n").first { $0.lowercased().hasPrefix("docker-content-digest:") }?
            .split(separator: ":", maxSplits: 1)[1].trimmingCharacters(in: .whitespaces), "\(head)")
        let refused = try curl(["-X", "DELETE", "-H", basicAuth(ci.token), "\(base)/acme/ci-one/manifests/\(digest)"])
        #expect(refused.status == 403 && refused.body.contains("no repository rule"), "\(refused)")
        let deleted = try curl(["-X", "DELETE", "-H", basicAuth(deleter.token), "\(base)/acme/ci-one/manifests/\(digest)"])
        #expect(deleted.status == 202, "\(deleted)")
        #expect(waitUntil(2) { proxy.logText.contains("repository_not_allowed") })
    }

    @Test("--allow-from: allowed and refused addresses (IPv4, IPv6, mapped IPv4); X-Forwarded-For believed only from a trusted proxy")
    func allowFrom() throws {
        let issuer = try Issuer()
        let registry = try Registry()
        defer { registry.stop() }
        let direct = try ProxyProcess(upstream: registry.port, args: ["--keys", issuer.home + "/keys"])
        defer { direct.stop() }
        let behind = try ProxyProcess(upstream: registry.port, args: ["--keys", issuer.home + "/keys", "--trusted-proxy", "127.0.0.0/8"])
        defer { behind.stop() }
        let farm = try issuer.token("--allow-from", "198.51.100.0/24", "--allow-from", "2001:db8::/32").token
        let local = try issuer.token("--allow-from", "127.0.0.1").token
        func status(_ proxy: ProxyProcess, _ token: String, forwardedFor: String? = nil) throws -> Int {
            var args = ["-H", basicAuth(token)]
            if let forwardedFor { args += ["-H", "X-Forwarded-For: \(forwardedFor)"] }
            return try curl(args + ["http://127.0.0.1:\(proxy.port)/v2/"]).status
        }
        // Straight from the client (127.0.0.1): its own address decides; a forged header changes nothing.
        #expect(try status(direct, local) == 200)
        #expect(try status(direct, farm) == 403)
        #expect(try status(direct, farm, forwardedFor: "198.51.100.7") == 403)
        // Behind a trusted proxy: the client it names, from the right, IPv4, IPv6 and mapped IPv4.
        #expect(try status(behind, farm, forwardedFor: "198.51.100.7") == 200)
        #expect(try status(behind, farm, forwardedFor: "2001:db8::7") == 200)
        #expect(try status(behind, farm, forwardedFor: "::ffff:198.51.100.9") == 200)
        #expect(try status(behind, farm, forwardedFor: "203.0.113.1") == 403)
        #expect(try status(behind, farm, forwardedFor: "198.51.100.7, 203.0.113.1") == 403)  // the left entry is the client's own claim
        #expect(try status(behind, farm, forwardedFor: "198.51.100.7, 127.0.0.5") == 200)  // trusted hops are skipped
        #expect(try status(behind, farm, forwardedFor: "nonsense") == 403)
        #expect(try status(behind, farm) == 403)  // no header: the peer, 127.0.0.1
        #expect(try status(behind, local) == 200)
        #expect(waitUntil(2) { direct.logText.contains("address_not_allowed") })
    }
}
