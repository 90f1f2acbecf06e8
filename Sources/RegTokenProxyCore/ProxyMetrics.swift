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
    }

    func record(_ decision: AccessDecision) {
        switch decision {
        case .allow: allowed.increment()
        case .deny(let d): denied[d.reason]?.increment()
        }
    }
}
