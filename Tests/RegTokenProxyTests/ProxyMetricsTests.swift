import Foundation
import NIOCore
import NIOPosix
import RegToken
import RegTokenAccess
@testable import RegTokenProxyCore
import Testing

@Suite("The request path's metrics: counted per event loop, summed at the scrape, read by Prometheus's own parser")
struct ProxyMetricsTests {
    /// The samples of a Prometheus text exposition as prometheus_client (the official Python
    /// client) parses them, keyed `name{label="value",…}` (labels sorted); fails the test with
    /// the parser's reason when it refuses the text or the text breaks the format's rules.
    static func parse(_ exposition: String, requireHelp: Bool = false) throws -> [String: Double] {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("e2e/prometheus_parse.py").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script] + (requireHelp ? ["--require-help"] : [])
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        input.fileHandleForWriting.write(Data(exposition.utf8))
        try input.fileHandleForWriting.close()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        try #require(process.terminationStatus == 0, "\(text)\n\(exposition)")
        return try JSONDecoder().decode([String: Double].self, from: data)
    }

    @Test("each loop counts its own connections' requests; the scrape sums them, as Prometheus reads it")
    func summedOverLoops() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        do {
            try await countOnTwoLoops(group)
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
        try await group.shutdownGracefully()
    }

    func countOnTwoLoops(_ group: MultiThreadedEventLoopGroup) async throws {
        let metrics = ProxyMetrics()
        let loops = [group.next(), group.next()]
        #expect(loops[0] !== loops[1])
        let t = AccessDecisionTests.self
        func decide(_ method: String, _ target: String, _ auth: [String]) -> AccessDecision {
            t.policy.decide(method: method, target: target, authorization: auth, verifier: t.verifier, now: t.now)
        }
        let allowed = decide("GET", "/v2/", [t.basic(t.ro)])
        let pullOnly = decide("POST", "/v2/acme/app/blobs/uploads/", [t.basic(t.ro)])
        let challenge = decide("GET", "/v2/", [])
        #expect(allowed.isAllowed)
        // Loop 0: 3 allowed (verified in 1.5 µs, 2.5 µs, 3 ms), a 2xx and a 4xx from the registry,
        // 100 bytes received, a 502. Loop 1: a refusal, a challenge, a 5xx, 10 bytes sent, a 504,
        // a request of exactly 1 ms and one over a minute.
        try await loops[0].submit {
            let counters = metrics.counters(on: loops[0])
            #expect(counters === metrics.counters(on: loops[0]))
            for ns: Int64 in [1_500, 2_500, 3_000_000] {
                counters.counts.record(allowed)
                counters.counts.verification.record(nanoseconds: ns)
            }
            counters.counts.recordUpstream(status: 200)
            counters.counts.recordUpstream(status: 404)
            counters.counts.receivedBytes += 100
            counters.counts.badGateway += 1
        }.get()
        try await loops[1].submit {
            let counters = metrics.counters(on: loops[1])
            counters.counts.record(pullOnly)
            counters.counts.record(challenge)
            counters.counts.recordUpstream(status: 503)
            counters.counts.recordUpstream(status: 99)
            counters.counts.sentBytes += 10
            counters.counts.gatewayTimeout += 1
            counters.counts.requestDuration.record(nanoseconds: 1_000_000)
            counters.counts.requestDuration.record(nanoseconds: 61_000_000_000)
        }.get()
        let text = ProxyMetrics.withHelp(await metrics.requestMetrics())
        let s = try Self.parse(text, requireHelp: true)
        #expect(s[#"regtoken_proxy_requests_total{decision="allow",reason="ok"}"#] == 3)
        #expect(s[#"regtoken_proxy_requests_total{decision="deny",reason="pull_only"}"#] == 1)
        #expect(s[#"regtoken_proxy_requests_total{decision="challenge",reason="missing_credentials"}"#] == 1)
        #expect(s[#"regtoken_proxy_requests_total{decision="deny",reason="revoked"}"#] == 0)
        #expect(s[#"regtoken_proxy_requests_total{decision="deny",reason="missing_credentials"}"#] == nil)
        #expect(s[#"regtoken_proxy_requests_total{decision="error",reason="bad_gateway"}"#] == 1)
        #expect(s[#"regtoken_proxy_requests_total{decision="error",reason="gateway_timeout"}"#] == 1)
        #expect(s[#"regtoken_proxy_upstream_responses_total{code="1xx"}"#] == 1)
        #expect(s[#"regtoken_proxy_upstream_responses_total{code="2xx"}"#] == 1)
        #expect(s[#"regtoken_proxy_upstream_responses_total{code="4xx"}"#] == 1)
        #expect(s[#"regtoken_proxy_upstream_responses_total{code="5xx"}"#] == 1)
        #expect(s["regtoken_proxy_received_bytes_total"] == 100)
        #expect(s["regtoken_proxy_sent_bytes_total"] == 10)
        // Buckets are cumulative, a value on a bound counts in that bound's bucket (`le`).
        let v = "regtoken_proxy_verification_seconds"
        #expect(s[v + #"_bucket{le="0.000001"}"#] == 0)
        #expect(s[v + #"_bucket{le="0.0000025"}"#] == 2)
        #expect(s[v + #"_bucket{le="0.001"}"#] == 2)
        #expect(s[v + #"_bucket{le="0.005"}"#] == 3)
        #expect(s[v + #"_bucket{le="+Inf"}"#] == 3)
        #expect(s[v + "_count"] == 3)
        #expect(abs((s[v + "_sum"] ?? 0) - 0.003004) < 1e-12)
        let d = "regtoken_proxy_request_duration_seconds"
        #expect(s[d + #"_bucket{le="0.001"}"#] == 1)
        #expect(s[d + #"_bucket{le="60.0"}"#] == 1)
        #expect(s[d + #"_bucket{le="+Inf"}"#] == 2)
        #expect(s[d + "_sum"] == 61.001)
        // The bounds are written as swift-prometheus wrote them (dashboards match on `le`).
        #expect(text.contains(#"regtoken_proxy_verification_seconds_bucket{le="0.0000025"} 2"#))
        #expect(text.contains(#"regtoken_proxy_request_duration_seconds_bucket{le="60.0"} 1"#))
    }

    @Test("seconds are written exactly, without trailing zeros")
    func seconds() {
        #expect(DurationCounts.seconds(0) == "0.0")
        #expect(DurationCounts.seconds(1) == "0.000000001")
        #expect(DurationCounts.seconds(2_500) == "0.0000025")
        #expect(DurationCounts.seconds(1_000_000_000) == "1.0")
        #expect(DurationCounts.seconds(61_001_000_000) == "61.001")
        // A sum past 64 bits of nanoseconds (a busy proxy's downloads add up) stays exact.
        var long = DurationCounts(buckets: ProxyMetrics.requestDurationBuckets)
        for _ in 0..<3 { long.record(nanoseconds: Int64.max) }
        #expect(DurationCounts.seconds(long.sumNanoseconds) == "27670116110.564327421")
        #expect(long.counts.last == 3)
    }
}
