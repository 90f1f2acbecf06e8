import CoreMetrics
import Metrics
import RegTokenAccess

/// The proxy's metrics, through the swift-metrics API (the executable bootstraps Prometheus).
/// Every metric object is made once, here, not per request.
public final class ProxyMetrics: Sendable {
    let allowed: Counter
    let denied: [DenyReason: Counter]
    let badGateway: Counter
    let gatewayTimeout: Counter
    let verification: Timer
    package let revocationVersion: Gauge
    package let revocationAge: Gauge
    package let revocationSignedAge: Gauge
    package let keyReloads: Counter
    package let reloadFailures: Counter
    /// The registry's answers by class (index 1 to 5: 1xx to 5xx).
    let upstreamResponses: [Counter]
    /// From the request head to the end of the response (or the refusal), as the client sees it.
    let requestDuration: Timer
    /// Body bytes from clients forwarded to the registry, and from the registry to clients.
    let bytesReceived: Counter
    let bytesSent: Counter

    public init() {
        let name = "regtoken_proxy_requests_total"
        allowed = Counter(label: name, dimensions: [("decision", "allow"), ("reason", "ok")])
        var denied: [DenyReason: Counter] = [:]
        for reason in DenyReason.allCases {
            // 401 before any credentials is the login challenge every client meets first: counted
            // apart, so that the deny counters mean refusals.
            let decision = reason == .missingCredentials ? "challenge" : "deny"
            denied[reason] = Counter(label: name, dimensions: [("decision", decision), ("reason", reason.rawValue)])
        }
        self.denied = denied
        badGateway = Counter(label: name, dimensions: [("decision", "error"), ("reason", "bad_gateway")])
        gatewayTimeout = Counter(label: name, dimensions: [("decision", "error"), ("reason", "gateway_timeout")])
        verification = Timer(label: "regtoken_proxy_verification_seconds", preferredDisplayUnit: .seconds)
        revocationVersion = Gauge(label: "regtoken_revocation_list_version")
        revocationAge = Gauge(label: "regtoken_revocation_list_age_seconds")
        revocationSignedAge = Gauge(label: "regtoken_revocation_list_signed_age_seconds")
        keyReloads = Counter(label: "regtoken_proxy_key_reloads_total")
        reloadFailures = Counter(label: "regtoken_proxy_reload_failures_total")
        upstreamResponses = (0...5).map { Counter(label: "regtoken_proxy_upstream_responses_total", dimensions: [("code", "\(max($0, 1))xx")]) }
        requestDuration = Timer(label: "regtoken_proxy_request_duration_seconds", preferredDisplayUnit: .seconds)
        bytesReceived = Counter(label: "regtoken_proxy_received_bytes_total")
        bytesSent = Counter(label: "regtoken_proxy_sent_bytes_total")
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

    func record(_ decision: AccessDecision) {
        switch decision {
        case .allow: allowed.increment()
        case .deny(let d): denied[d.reason]?.increment()
        }
    }
}
