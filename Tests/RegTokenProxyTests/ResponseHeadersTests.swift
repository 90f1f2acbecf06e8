import Foundation
import NIOCore
import NIOHTTP1
@_spi(Benchmarks) @testable import RegTokenProxyCore
import RegTokenLoadTest
import Testing

/// The registry's response headers as the proxy forwards them to the client: hop-by-hop ones
/// (RFC 9110 §7.6.1), those `Connection` names and framing dropped, everything else kept in order.
@Suite("The registry's response headers, forwarded")
struct ResponseHeadersTests {
    /// The field lines the registry side's codec forwards of a response with these fields.
    /// - Parameter spacing: the whitespace written before and after each value (`": "` and none
    ///   by default, as the proxy forwards them; the codec copies such lines as they are).
    static func forwarded(_ fields: [(String, String)], status: Int = 200, spacing: [(before: String, after: String)]? = nil) -> [String] {
        let text = "HTTP/1.1 \(status) X\r\n" + fields.enumerated().map { i, field in
            let (before, after) = spacing?[i] ?? (" ", "")
            return "\(field.0):\(before)\(field.1)\(after)\r\n"
        }.joined() + "\r\n"
        var reader = HTTP1ResponseHeadReader(limit: 65536)
        let head = Array(text.utf8).withUnsafeBytes { raw in
            (try? reader.read(raw)).flatMap { $0 }.map { HTTP1ClientCodec.forwardedHead($0, raw, allocator: ByteBufferAllocator()) }
        }
        guard let head else {
            Issue.record("not read: \(text.debugDescription)")
            return []
        }
        return HTTP1ClientCodecTests.lines(head.fields)
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
        // Two Connection fields: what either names is dropped.
        #expect(Self.forwarded([("Connection", "X-A"), ("X-A", "1"), ("x-b", "2"), ("Connection", "keep-alive,\tX-B "), ("X-C", "3")]) == ["X-C: 3"])
        // No Content-Length on a 204 or 304 (nor any body); kept on others.
        #expect(Self.forwarded([("Content-Length", "5"), ("ETag", "e")], status: 304) == ["ETag: e"])
        #expect(Self.forwarded([("content-length", "0")], status: 204) == [])
        #expect(Self.forwarded([("Content-Length", "0")], status: 404) == ["Content-Length: 0"])
    }

    @Test("random heads: the same as a plain reading of the rules (names lowered with Foundation, sets: HTTP1ClientCodecTests.forwardedFields)")
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
            #expect(Self.forwarded(fields) == HTTP1ClientCodecTests.forwardedFields(fields, status: 200), "\(fields)")
            // The same fields with other whitespace around some values: forwarded as `name: value`.
            let spaces = ["", " ", "  ", "\t", " \t"]
            let spacing = fields.map { _ in
                rng.next() % 2 == 0 ? (" ", "") : (spaces[Int(rng.next() % 5)], spaces[Int(rng.next() % 5)])
            }
            #expect(Self.forwarded(fields, spacing: spacing) == HTTP1ClientCodecTests.forwardedFields(fields, status: 200), "\(fields) \(spacing)")
        }
    }
}
