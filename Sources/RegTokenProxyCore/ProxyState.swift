import RegToken
import RegTokenAccess
import Synchronization

/// What the proxy decides with, shared by every connection and swapped by reloads: the verifier
/// (keys and revocation list), the namespace map, and how fresh the revocation list is.
public final class ProxyState: Sendable {
    public let verifier: TokenVerifier
    public let region: String
    /// Past this age, non-expiring tokens are refused (fail closed): the age since the list in
    /// force was last verified current, and the age of its signature (`iat`), whichever is
    /// greater. `nil`: no limit.
    public let revocationMaxAge: Int64?

    final class NamespaceBox: Sendable {
        let map: NamespaceMap
        init(_ map: NamespaceMap) { self.map = map }
    }

    private let namespaceCell: SnapshotCell<NamespaceBox>
    private let confirmedAt: Atomic<Int64>
    /// A request was refused because the list was stale, since ``takeStaleRefusal()`` last looked.
    private let staleRefusal = Atomic<Bool>(false)

    public init(verifier: TokenVerifier, region: String, namespaces: NamespaceMap = .accountNamed,
                revocationMaxAge: Int64? = nil, now: Int64) {
        self.verifier = verifier
        self.region = region
        self.revocationMaxAge = revocationMaxAge
        namespaceCell = SnapshotCell(NamespaceBox(namespaces))
        confirmedAt = Atomic(now)
    }

    public var namespaces: NamespaceMap { namespaceCell.load().map }

    public func replaceNamespaces(_ map: NamespaceMap) {
        namespaceCell.replace(NamespaceBox(map))
    }

    /// Records that the revocation list in force was verified current at `now`: a list fetched,
    /// verified and accepted, or the one in force confirmed unchanged (the same file, or a 304
    /// for the ETag of the accepted list). Nothing else may call this: a refused list, a
    /// timeout or a stall leaves the age growing.
    public func revocationsConfirmed(at now: Int64) {
        confirmedAt.store(now, ordering: .relaxed)
    }

    /// Seconds since the revocation list in force was last verified current.
    public func revocationAge(now: Int64) -> Int64 {
        max(0, now - confirmedAt.load(ordering: .relaxed))
    }

    /// Seconds since the revocation list in force was signed (its `iat`), or nil before any.
    public func revocationSignedAge(now: Int64) -> Int64? {
        verifier.revocationIssuedAt.map { max(0, now - $0) }
    }

    /// True when non-expiring tokens must be refused: the list in force is older than
    /// ``revocationMaxAge`` by either measure.
    public func revocationsStale(now: Int64) -> Bool {
        guard let revocationMaxAge else { return false }
        return revocationAge(now: now) > revocationMaxAge || (revocationSignedAge(now: now) ?? 0) > revocationMaxAge
    }

    /// The decision for one request that would be forwarded: the forwarding rules, then the rights.
    /// - Parameter client: the client's address, for tokens limited to addresses.
    public func decide(_ head: RequestHead, client: IPAddress? = nil, now: Int64) -> AccessDecision {
        var credentials = CredentialsMemo()
        return decide(head, framing: head.framing(), client: client, now: now, credentials: &credentials)
    }

    /// ``decide(_:client:now:)`` with the head's framing already worked out (by the codec).
    /// - Parameter framing: `head.framing()`, as the codec found it.
    /// - Parameter credentials: the connection's memo of the last `Authorization` value decoded.
    package func decide(_ head: RequestHead, framing: Result<BodyFraming, HeadViolation>, client: IPAddress?, now: Int64,
                        credentials: inout CredentialsMemo) -> AccessDecision {
        let decision = namespaceCell.withValue { box in
            let stale = revocationsStale(now: now)
            return AccessPolicy(region: region, namespaces: box.map, revocationsStale: stale)
                .decide(head: head, framing: framing, client: client, verifier: verifier, now: now, credentials: &credentials)
        }
        if case .deny(let denied) = decision, denied.reason == .staleRevocations { staleRefusal.store(true, ordering: .relaxed) }
        return decision
    }

    /// Whether a request was refused because the revocation list was stale since the last call
    /// (so that a stale spell shorter than the reloader's look still gets its log line).
    public func takeStaleRefusal() -> Bool {
        staleRefusal.exchange(false, ordering: .relaxed)
    }
}
