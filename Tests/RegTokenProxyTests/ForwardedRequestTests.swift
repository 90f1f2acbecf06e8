import Foundation
import NIOCore
import NIOHTTP1
@testable import RegTokenAccess
@_spi(Benchmarks) @testable import RegTokenProxyCore
import RegTokenLoadTest
import Testing

/// An allowed request's head as the registry gets it: the headers kept against a plain reading
/// of the forwarding rules, and the bytes the proxy writes straight from the client's head
/// against the same head written through NIOHTTP1's types by the registry side's codec.
@Suite("The forwarded request head")
struct ForwardedRequestTests {
    static let pool = ["Host", "Accept", "Content-Type", "User-Agent", "Docker-Distribution-Api-Version-Long-Name", "Connection", "Keep-Alive",
                       "Proxy-Connection", "Proxy-Authorization", "Proxy-Authenticate", "TE", "Trailer", "Upgrade", "Content-Length",
                       "Transfer-Encoding", "Authorization", "Forwarded", "X-Real-IP", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded",
                       "X-Drop", "X-Keep"]

    /// A random head: names from the pool in random letter case, repeated at times; Connection
    /// values naming others.
    static func randomHead(_ rng: inout SplitMix) -> (RequestHead, BodyFraming, String, String?) {
        func randomCase(_ s: String) -> String { String(s.map { rng.next() % 2 == 0 ? Character($0.uppercased()) : Character($0.lowercased()) }) }
        var headers: [(name: String, value: String)] = []
        for i in 0..<rng.below(9) {
            let name = randomCase(pool[rng.below(pool.count)])
            var value = "v\(i)"
            if name.lowercased() == "connection" {
                value = (0..<rng.below(3)).map { _ in randomCase(pool[rng.below(pool.count)]) }.joined(separator: [",", " , ", ",\t"][rng.below(3)])
            }
            headers.append((name, value))
        }
        let method = ["GET", "HEAD", "PUT", "PATCH", "POST", "DELETE"][rng.below(6)]
        let framing: BodyFraming = [.none, .length(rng.below(100_000)), .chunked][rng.below(3)]
        return (RequestHead(method: method, target: "/v2/acme/app/blobs/uploads/\(rng.below(1000))?x=\(rng.below(9))", headers: headers),
                framing, ["http", "https"][rng.below(2)], rng.below(2) == 0 ? nil : "10.0.0.\(rng.below(255))")
    }

    @Test("headers kept: the same as a plain reading of the rules (names lowered with Foundation, sets), on 5,000 random heads")
    func keptHeaders() {
        let dropped: Set = ["connection", "keep-alive", "proxy-connection", "proxy-authorization", "proxy-authenticate", "te", "trailer",
                            "upgrade", "content-length", "transfer-encoding", "authorization", "forwarded", "x-real-ip"]
        var rng = SplitMix(seed: 0xF0E1)
        var droppedSome = 0
        for _ in 0..<5_000 {
            let (head, framing, scheme, address) = Self.randomHead(&rng)
            let named = Set(head.headers.filter { $0.name.lowercased() == "connection" }
                .flatMap { $0.value.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: CharacterSet(charactersIn: " \t")).lowercased() } })
            var expected = head.headers.filter { name, _ in
                let lower = name.lowercased()
                return !dropped.contains(lower) && !named.contains(lower) && !lower.hasPrefix("x-forwarded-")
            }.map { "\($0.name): \($0.value)" }
            if expected.count < head.headers.count { droppedSome += 1 }
            switch framing {
            case .none: if !["GET", "HEAD", "DELETE"].contains(head.method) { expected.append("Content-Length: 0") }
            case .length(let n): expected.append("Content-Length: \(n)")
            case .chunked: expected.append("Transfer-Encoding: chunked")
            }
            expected.append("X-Forwarded-Proto: \(scheme)")
            if let address { expected.append("X-Forwarded-For: \(address)") }
            let ours = ForwardedHeaders.upstream(head, framing: framing, scheme: scheme, clientAddress: address).map { "\($0.name): \($0.value)" }
            #expect(ours == expected, "\(head.headers)")
        }
        #expect(droppedSome > 2_000)
    }

    @Test("the bytes written from the client's head: the same as NIOHTTP1's HTTPRequestHead of the same headers written by the codec, body framing included")
    func bytes() throws {
        var rng = SplitMix(seed: 0xB17E5)
        for _ in 0..<2_000 {
            let (head, framing, scheme, address) = Self.randomHead(&rng)
            let body = ByteBuffer(string: "hello")
            let forwarded = ProxyHandler.forwardedHead(head, framing: framing, scheme: scheme, clientAddress: address, allocator: ByteBufferAllocator())
            let ours = try HTTP1ClientCodecTests.written(proxy: [.forwardedHead(forwarded), .body(body), .end])
            let fields = ForwardedHeaders.upstream(head, framing: framing, scheme: scheme, clientAddress: address)
            let theirs = try HTTP1ClientCodecTests.written([
                .head(HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: head.method), uri: head.target, headers: HTTPHeaders(fields))),
                .body(.byteBuffer(body)), .end(nil),
            ])
            #expect(ours.0 == theirs.0 && !ours.refused && !theirs.refused, "\(ours.0.debugDescription) \(theirs.0.debugDescription)")
            #expect(forwarded.isHEAD == (head.method == "HEAD") && forwarded.chunked == (framing == .chunked))
        }
    }
}
