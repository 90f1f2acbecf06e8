import Foundation
import NIOHTTP1
@testable import RegTokenProxyCore
import RegTokenLoadTest
import Testing

/// The registry's response headers as the proxy forwards them to the client: hop-by-hop ones
/// (RFC 9110 §7.6.1), those `Connection` names and framing dropped, everything else kept in order.
@Suite("The registry's response headers, forwarded")
struct ResponseHeadersTests {
    static func forwarded(_ fields: [(String, String)]) -> [String] {
        ProxyHandler.forwardedResponseHeaders(HTTPHeaders(fields)).map { "\($0.name): \($0.value)" }
    }

    @Test("hop-by-hop headers in any letter case, those Connection names and framing are dropped; long names and repeated ones kept in order")
    func table() {
        #expect(Self.forwarded([
            ("Content-Type", "application/vnd.oci.image.manifest.v1+json"), ("CONNECTION", "keep-alive, X-Hop, docker-content-digest"),
            ("Docker-Content-Digest", "sha256:aa"), ("Docker-Distribution-Api-Version", "registry/2.0"), ("KEEP-ALIVE", "timeout=5"),
            ("Proxy-Connection", "close"), ("Proxy-Authenticate", "Basic"), ("Proxy-Authorization", "x"), ("tE", "trailers"),
            ("Trailer", "X-T"), ("Upgrade", "h2c"), ("Transfer-Encoding", "chunked"), ("x-hop", "1"), ("X-Content-Type-Options", "nosniff"),
            ("Content-Length", "2"), ("Www-Authenticate", "Bearer realm=x"), ("www-authenticate", "Basic realm=y"),
        ]) == [
            "Content-Type: application/vnd.oci.image.manifest.v1+json", "Docker-Distribution-Api-Version: registry/2.0",
            "X-Content-Type-Options: nosniff", "Content-Length: 2", "Www-Authenticate: Bearer realm=x", "www-authenticate: Basic realm=y",
        ])
        #expect(Self.forwarded([("Connection", " , ,"), ("Date", "d")]) == ["Date: d"])
    }

    @Test("random heads: the same as a plain reading of the rules (names lowered with Foundation, sets)")
    func random() {
        let hop = ["connection", "keep-alive", "proxy-connection", "proxy-authorization", "proxy-authenticate", "te", "trailer", "upgrade", "transfer-encoding"]
        let others = ["content-type", "content-length", "docker-content-digest", "docker-distribution-api-version", "etag", "location", "x-a", "date",
                      "x-content-type-options-and-a-long-name", "range"]
        var rng = SplitMix(seed: 13)
        func randomCase(_ s: String) -> String {
            String(s.map { rng.next() % 2 == 0 ? Character($0.uppercased()) : $0 })
        }
        for _ in 0..<3000 {
            var fields: [(String, String)] = []
            for i in 0..<Int(rng.next() % 10) {
                let pool = rng.next() % 3 == 0 ? hop : others
                let name = randomCase(pool[Int(rng.next() % UInt64(pool.count))])
                var value = "v\(i)"
                if name.lowercased() == "connection" {
                    value = (0..<Int(rng.next() % 3)).map { _ in randomCase(others[Int(rng.next() % UInt64(others.count))]) }
                        .joined(separator: rng.next() % 2 == 0 ? "," : " , ")
                }
                fields.append((name, value))
            }
            let named = Set(fields.filter { $0.0.lowercased() == "connection" }
                .flatMap { $0.1.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() } })
            let expected = fields.filter { !hop.contains($0.0.lowercased()) && !named.contains($0.0.lowercased()) }.map { "\($0.0): \($0.1)" }
            #expect(Self.forwarded(fields) == expected, "\(fields)")
        }
    }
}
