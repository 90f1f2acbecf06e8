import RegToken

/// The client address a decision is made for, behind trusted reverse proxies or not.
public enum ClientAddress {
    /// The client of a request that reached us from `peer`: the peer itself, unless the peer is
    /// one of the `trusted` proxies; then the `X-Forwarded-For` entries (every such header, in
    /// order, comma-separated) are read from the right, skipping trusted proxies, and the first
    /// untrusted one is the client (the leftmost when all are trusted; the peer when there is no
    /// entry). An entry that is not an address makes the client unknown (`nil`), so a token
    /// limited to addresses is refused rather than matched against a guess. Headers from an
    /// untrusted peer are ignored: any client can write them.
    public static func resolve(peer: IPAddress?, forwardedFor: [String], trusted: [AddressRange]) -> IPAddress? {
        guard let peer else { return nil }
        guard !trusted.isEmpty, trusted.contains(where: { $0.contains(peer) }) else { return peer }
        var entries: [Substring] = []
        for value in forwardedFor { entries += value.split(separator: ",", omittingEmptySubsequences: false) }
        var client = peer
        for entry in entries.reversed() {
            guard let address = IPAddress(String(entry).trimmingSpacesAndTabs) else { return nil }
            client = address
            if !trusted.contains(where: { $0.contains(address) }) { return address }
        }
        return client
    }
}
