import CRegTokenMallocCounter
import Foundation
import NIOCore
import RegToken
@testable import RegTokenProxyCore
import Testing

/// Heap allocations per proxied request, counted on the real handler and codecs over
/// EmbeddedChannels (whose own buffers are counted too), in the debug build the tests run in
/// (unspecialised generics allocate more there than in the release build): an allowed GET with a
/// token, answered by the registry, on a kept-alive connection. The number is written in
/// BENCHMARKS.md; the bound here keeps it from creeping up.
@Suite("Allocations per proxied request", .serialized)
struct ProxyAllocationTests {
    @Test("an allowed GET through the proxy and its answer")
    func perRequest() throws {
        let p = try ProxyPipeline(state: ProxyPipelineTests.state)
        let token = ProxyPipelineTests.token(.pull)
        let request = "GET /v2/acme/app/manifests/v1 HTTP/1.1\r\nHost: registry\r\nAuthorization: \(token)\r\nAccept: application/vnd.oci.image.manifest.v1+json\r\n\r\n"
        let response = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nDocker-Distribution-Api-Version: registry/2.0\r\n\r\n{}"
        func exchange() {
            p.send(request)
            p.respond(response)
            _ = p.upstreamBytes()
            _ = p.clientBytes()
        }
        exchange()  // connects upstream and warms up
        exchange()
        #expect(CRegTokenMallocCounter_pauseThrowHooks() == 1)
        defer { CRegTokenMallocCounter_resumeThrowHooks() }
        let n = 50
        CRegTokenMallocCounter_start()
        for _ in 0..<n { exchange() }
        let perRequest = Double(CRegTokenMallocCounter_stop()) / Double(n)
        print("allocations per proxied request: \(perRequest)")
        #expect(p.clientBytes().isEmpty)
        // Debug build, EmbeddedChannels and the codecs included: 352 when this was written, 233 after
        // the second round, 255 before the proxy's own HTTP/1.1 codecs and 273 with them (their loops
        // over HTTPHeaders and tuples are not specialised in a debug build; in the release build the
        // proxy makes 41 malloc calls per request with either codecs: BENCHMARKS.md), 262 once the
        // codec handed its framing to the decision, 204 with heads forwarded on their bytes, the
        // credentials and path read on theirs, and the state machine's actions held in place
        // (release build: 16 malloc calls a request, from 39); 200 with the request and response
        // parts no longer boxed (release: 12); 147 with a kept-alive connection's repeated fields
        // read and forwarded without being made again (release: 9); 102 with a connection's
        // Authorization value decoded once and the access line's fields written on bytes (release: 7);
        // 88 with a repeated head read by its request line and the path's segments held in place;
        // 80 with the registry's response head written once and the metrics counted per event loop
        // (release: 4 an exchange in process); 78 with the forwarded head written into the
        // connection's buffer again.
        #expect(perRequest < 84, "\(perRequest) allocations per proxied request")
    }
}
