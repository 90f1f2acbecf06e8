import CoreMetrics
import Metrics
import NIOCore
import RegTokenAccess
import Synchronization

/// The proxy's metrics.
///
/// Those of the request path (requests by decision, the registry's answers, body bytes, the
/// decision's and the whole request's latency) are counted per event loop, in plain integers that
/// only that loop touches (``LoopCounters``: one per event loop, shared by its connections), and
/// summed when they are scraped (``requestMetrics()``, which asks each loop for its counts on
/// that loop). Shared counters and locked histograms, updated from every event loop on every
/// request, moved a cache line from the other core with each update: a build without them used
/// 6 % less CPU a request (BENCHMARKS.md, "Eleventh round"). The others (the revocation gauges, reloads) change rarely and
/// go through the swift-metrics API (the executable bootstraps Prometheus).
public final class ProxyMetrics: Sendable {
    package let revocationVersion: Gauge
    package let revocationAge: Gauge
    package let revocationSignedAge: Gauge
    package let keyReloads: Counter
    package let reloadFailures: Counter
    /// Each event loop's counters, made when its first connection is.
    private let loops = Mutex<[ObjectIdentifier: NIOLoopBound<LoopCounters>]>([:])

    /// The decision's latency buckets: verification takes microseconds (1 µs to 50 ms).
    static let verificationBuckets: [Int64] = [
        1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 5_000_000, 50_000_000,
    ]
    /// A whole request's latency buckets, as the client sees it: 1 ms to a minute.
    static let requestDurationBuckets: [Int64] = [
        1_000_000, 5_000_000, 10_000_000, 25_000_000, 50_000_000, 100_000_000, 250_000_000, 500_000_000,
        1_000_000_000, 5_000_000_000, 15_000_000_000, 60_000_000_000,
    ]

    public init() {
        revocationVersion = Gauge(label: "regtoken_revocation_list_version")
        revocationAge = Gauge(label: "regtoken_revocation_list_age_seconds")
        revocationSignedAge = Gauge(label: "regtoken_revocation_list_signed_age_seconds")
        keyReloads = Counter(label: "regtoken_proxy_key_reloads_total")
        reloadFailures = Counter(label: "regtoken_proxy_reload_failures_total")
    }

    /// The counters of `loop`'s connections (called on `loop`, once per connection).
    package func counters(on loop: any EventLoop) -> LoopCounters {
        loops.withLock { loops in
            if let bound = loops[ObjectIdentifier(loop)] { return bound.value }
            let counters = LoopCounters()
            // (The bound value keeps its loop alive: no other loop gets its identifier.)
            loops[ObjectIdentifier(loop)] = NIOLoopBound(counters, eventLoop: loop)
            return counters
        }
    }

    /// Every event loop's request counts, summed; each loop's are read on that loop, so every
    /// loop that has served a connection must still run (a scrape waits for each; one after its
    /// group has shut down would wait for ever: `regtoken proxy`'s group runs until the process
    /// ends, and an embedder scrapes only while its proxy's group runs).
    package func requestCounts() async -> RequestCounts {
        let bound = loops.withLock { Array($0.values) }
        var total = RequestCounts()
        for counters in bound {
            if let counts = try? await counters.eventLoop.submit({ counters.value.counts }).get() { total.add(counts) }
        }
        return total
    }

    /// The request path's metrics in the Prometheus text format (without `# HELP` lines:
    /// ``withHelp(_:)`` adds them).
    public func requestMetrics() async -> String {
        await requestCounts().exposition()
    }

    /// What each metric counts, for the `# HELP` lines of the Prometheus exposition.
    package static let help: [String: String] = [
        "regtoken_proxy_requests_total": "Requests by decision (allow, deny, challenge: the 401 before credentials, error) and reason.",
        "regtoken_proxy_verification_seconds": "Time to decide on a request: parsing, the token's verification, the rights.",
        "regtoken_proxy_request_duration_seconds": "Time from a request's head to the end of its response, as the client sees it.",
        "regtoken_proxy_upstream_responses_total": "The registry's responses by status class.",
        "regtoken_proxy_received_bytes_total": "Request body bytes from clients forwarded to the registry.",
        "regtoken_proxy_sent_bytes_total": "Response body bytes from the registry sent to clients.",
        "regtoken_revocation_list_version": "Version of the revocation list in force.",
        "regtoken_revocation_list_age_seconds": "Seconds since the revocation list in force was last confirmed current.",
        "regtoken_revocation_list_signed_age_seconds": "Seconds since the revocation list in force was signed.",
        "regtoken_proxy_key_reloads_total": "Key ring reloads.",
        "regtoken_proxy_reload_failures_total": "Reloads refused (a bad key, list or namespaces file); the one in force stays.",
    ]

    /// `exposition` (the Prometheus text format) with a `# HELP` line before each `# TYPE` line
    /// of a metric in ``help``.
    package static func withHelp(_ exposition: String) -> String {
        var out = ""
        out.reserveCapacity(exposition.utf8.count + 2048)
        for line in exposition.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("# TYPE "), let name = line.dropFirst(7).split(separator: " ").first, let text = help[String(name)] {
                out += "# HELP \(name) \(text)\n"
            }
            out += line
            out += "\n"
        }
        if !exposition.hasSuffix("\n"), out.hasSuffix("\n") { out.removeLast() }
        return out
    }
}

/// One event loop's counters of the request path: touched only on that loop (its connections'
/// handlers count here, and ``ProxyMetrics/requestCounts()`` reads them there), so plain
/// integers, with no lock or atomic. Its property is `@exclusivity(unchecked)` on the terms of
/// ``ProxyHandler``'s (one event loop; no access held across a call that could come back).
package final class LoopCounters {
    @exclusivity(unchecked) package var counts = RequestCounts()

    init() {}
}

@available(*, unavailable)
extension LoopCounters: Sendable {}

/// Counts of the request path, as one event loop's or summed over all.
package struct RequestCounts: Sendable, Equatable {
    /// Requests allowed.
    package var allowed = 0
    /// Requests refused, by reason (in the order of `DenyReason.allCases`).
    package var denied = [Int](repeating: 0, count: DenyReason.allCases.count)
    /// Requests answered 502 (the registry unreachable or its connection lost) and 504 (no answer in time).
    package var badGateway = 0
    package var gatewayTimeout = 0
    /// The registry's answers by class: index 0 to 4 for 1xx to 5xx.
    package var upstreamResponses = [Int](repeating: 0, count: 5)
    /// Body bytes from clients forwarded to the registry, and from the registry to clients.
    package var receivedBytes = 0
    package var sentBytes = 0
    /// From the request head to the decision.
    package var verification = DurationCounts(buckets: ProxyMetrics.verificationBuckets)
    /// From the request head to the end of the response (or the refusal), as the client sees it.
    package var requestDuration = DurationCounts(buckets: ProxyMetrics.requestDurationBuckets)

    package init() {}

    package mutating func record(_ decision: AccessDecision) {
        switch decision {
        case .allow: allowed += 1
        case .deny(let d): denied[DenyReason.allCases.firstIndex(of: d.reason)!] += 1
        }
    }

    /// A response head from the registry: counted by its class (below 200 as 1xx, above 599 as 5xx).
    package mutating func recordUpstream(status: Int) {
        upstreamResponses[min(max(status / 100, 1), 5) - 1] += 1
    }

    /// Adds `other`'s counts to these.
    package mutating func add(_ other: RequestCounts) {
        allowed += other.allowed
        for i in denied.indices { denied[i] += other.denied[i] }
        badGateway += other.badGateway
        gatewayTimeout += other.gatewayTimeout
        for i in upstreamResponses.indices { upstreamResponses[i] += other.upstreamResponses[i] }
        receivedBytes += other.receivedBytes
        sentBytes += other.sentBytes
        verification.add(other.verification)
        requestDuration.add(other.requestDuration)
    }

    /// The counts in the Prometheus text format, as swift-prometheus writes its counters and
    /// histograms (same names, labels and bucket bounds as before they were counted per loop).
    package func exposition() -> String {
        var out = ""
        let requests = "regtoken_proxy_requests_total"
        out += "# TYPE \(requests) counter\n"
        out += "\(requests){decision=\"allow\",reason=\"ok\"} \(allowed)\n"
        for (reason, count) in zip(DenyReason.allCases, denied) {
            // 401 before any credentials is the login challenge every client meets first: counted
            // apart, so that the deny counters mean refusals.
            let decision = reason == .missingCredentials ? "challenge" : "deny"
            out += "\(requests){decision=\"\(decision)\",reason=\"\(reason.rawValue)\"} \(count)\n"
        }
        out += "\(requests){decision=\"error\",reason=\"bad_gateway\"} \(badGateway)\n"
        out += "\(requests){decision=\"error\",reason=\"gateway_timeout\"} \(gatewayTimeout)\n"
        out += "# TYPE regtoken_proxy_upstream_responses_total counter\n"
        for (i, count) in upstreamResponses.enumerated() {
            out += "regtoken_proxy_upstream_responses_total{code=\"\(i + 1)xx\"} \(count)\n"
        }
        out += "# TYPE regtoken_proxy_received_bytes_total counter\nregtoken_proxy_received_bytes_total \(receivedBytes)\n"
        out += "# TYPE regtoken_proxy_sent_bytes_total counter\nregtoken_proxy_sent_bytes_total \(sentBytes)\n"
        verification.write(name: "regtoken_proxy_verification_seconds", into: &out)
        requestDuration.write(name: "regtoken_proxy_request_duration_seconds", into: &out)
        return out
    }
}

/// A histogram of durations: how many fell in each bucket (not cumulative: the exposition adds
/// them up), and their sum.
package struct DurationCounts: Sendable, Equatable {
    /// Upper bounds in nanoseconds, ascending.
    package let bounds: [Int64]
    /// `counts[i]`: durations above `bounds[i - 1]` and at most `bounds[i]`; the last, those above
    /// every bound.
    package var counts: [Int]
    /// (128 bits: a sum of 64-bit nanoseconds would wrap after 292 years of requests, which a
    /// proxy with a thousand downloads always in flight adds up in about 107 days.)
    package var sumNanoseconds: Int128 = 0

    package init(buckets: [Int64]) {
        bounds = buckets
        counts = [Int](repeating: 0, count: buckets.count + 1)
    }

    package mutating func record(nanoseconds: Int64) {
        var i = 0
        while i < bounds.count && bounds[i] < nanoseconds { i += 1 }
        counts[i] += 1
        sumNanoseconds += Int128(nanoseconds)
    }

    mutating func add(_ other: DurationCounts) {
        for i in counts.indices { counts[i] += other.counts[i] }
        sumNanoseconds += other.sumNanoseconds
    }

    /// `# TYPE`, the cumulative `_bucket` lines (`le` in seconds), `_sum` and `_count`.
    func write(name: String, into out: inout String) {
        out += "# TYPE \(name) histogram\n"
        var cumulative = 0
        for (bound, count) in zip(bounds, counts) {
            cumulative += count
            out += "\(name)_bucket{le=\"\(Self.seconds(bound))\"} \(cumulative)\n"
        }
        cumulative += counts[bounds.count]
        out += "\(name)_bucket{le=\"+Inf\"} \(cumulative)\n"
        out += "\(name)_sum \(Self.seconds(sumNanoseconds))\n"
        out += "\(name)_count \(cumulative)\n"
    }

    /// Nanoseconds as seconds in decimal, as swift-prometheus writes a `Duration`: `0.0025`,
    /// `5.0` (the fraction without its trailing zeros, at least one digit).
    static func seconds(_ nanoseconds: some BinaryInteger) -> String {
        let magnitude = nanoseconds.magnitude
        var fraction = String(magnitude % 1_000_000_000)
        fraction = String(repeating: "0", count: 9 - fraction.count) + fraction
        while fraction.count > 1 && fraction.hasSuffix("0") { fraction.removeLast() }
        return (nanoseconds < 0 ? "-" : "") + "\(magnitude / 1_000_000_000).\(fraction)"
    }
}
