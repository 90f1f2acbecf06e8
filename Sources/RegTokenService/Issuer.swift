import FoundationEssentials
import Logging
import NIOConcurrencyHelpers
import RegToken
import RegTokenAccess
import RegTokenLedger
import Synchronization

/// What the service shares between requests: the server's home (ledger and keys, opened shared
/// so that the operator's commands run beside the service), the signed documents it publishes,
/// and the failed-authentication counters.
///
/// The home is a class that is not thread-safe (its key ring is cached), so every use of it goes
/// through one lock; SQLite serialises writes anyway, and reads of the ledger (which is
/// thread-safe) take the lock only for as long as they run.
public final class Issuer: @unchecked Sendable {
    private let home: Home
    private let lock = NIOLock()
    public let path: String
    /// How long the signature of the revocation list may age before it is signed again (verifiers
    /// bound it with `--revocations-max-age`).
    public let revocationRefresh: Int64
    let failures: FailedAuthentications
    /// The token server's verifier and namespace map, kept between requests (under the home lock).
    let grantState = RegistryGrantState()

    public init(home path: String, revocationRefresh: Int64 = 300, failures: FailedAuthentications = FailedAuthentications(),
                now: Int64) throws(LedgerError) {
        self.path = path
        self.home = try Home(path: path, now: now, shared: true)
        self.revocationRefresh = revocationRefresh
        self.failures = failures
    }

    /// Runs `body` with the home, one caller at a time.
    func withHome<T>(_ body: (Home) throws(LedgerError) -> T) throws(LedgerError) -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body(home)
    }

    var ledger: Ledger { home.ledger }

    /// The algorithm of the key that signs now, nil when none is active.
    public func activeKeyAlgorithm() throws(LedgerError) -> Algorithm? {
        try withHome { home throws(LedgerError) in try home.keyRing().activeKey?.algorithm }
    }

    /// The account an API key belongs to.
    func authenticate(_ text: String, now: Int64) throws(LedgerError) -> String? {
        guard let key = APIKey(text: text) else { return nil }
        return try home.ledger.authenticate(key, now: now)
    }

    /// What `POST /v1/tokens` does for a read-write token, without HTTP: the in-process row of
    /// the service's benchmark.
    public func issueForBenchmark(account: String, region: String) throws(LedgerError) -> IssuedToken {
        try withHome { home throws(LedgerError) in
            try home.issueToken(account: account, region: region, scope: .pushPull, description: "", lifetime: TokenClaims.defaultLifetime,
                                namespaces: nil, now: Durations.now())
        }
    }

    /// Periodic upkeep: re-read keys the operator changed, delete tokens and API keys past their
    /// time, and sign the revocation list again when it changed or its signature got old.
    public func maintain(now: Int64) throws(LedgerError) {
        try withHome { home throws(LedgerError) in
            try home.withLock { () throws(LedgerError) in
                try home.ledger.purgeExpired(now: now)
                try home.ledger.purgeExpiredKeys(now: now)
                guard try home.keyRing().activeKey != nil else { return }
                try home.syncRevocations(now: now)
                try home.refreshRevocations(now: now, olderThan: revocationRefresh)
            }
        }
    }

    // MARK: Published documents

    /// A published document and its entity tag (the first 128 bits of its SHA-256, quoted).
    public struct Document: Sendable {
        public var bytes: [UInt8]
        public var etag: String

        init(_ bytes: [UInt8]) {
            self.bytes = bytes
            etag = "\"" + Digest.sha256(bytes).prefix(16).map { String($0, radix: 16).leftPadded(2) }.joined() + "\""
        }
    }

    private let namespacesCache = Mutex<(version: UInt64, keyID: String, document: Document)?>(nil)

    func revocations() throws(LedgerError) -> Document {
        let bytes: [UInt8]
        do { bytes = try AtomicFile.read(path + "/revocations.jws", limit: RevocationList.maximumBytes, trust: .owned) } catch {
            throw LedgerError(.storage, "cannot read the revocation list: \(error)")
        }
        return Document(bytes)
    }

    func namespaces() throws(LedgerError) -> Document {
        try withHome { home throws(LedgerError) -> Document in
            let (_, version, _) = try home.ledger.namespaceMap()
            let keyID = try home.keyRing().activeKeyID ?? ""
            if let cached = namespacesCache.withLock({ $0 }), cached.version == version, cached.keyID == keyID { return cached.document }
            let document = Document(try home.signedNamespaces().document)
            namespacesCache.withLock { $0 = (version, keyID, document) }
            return document
        }
    }

    func jwks() throws(LedgerError) -> String {
        try withHome { home throws(LedgerError) -> String in
            let ring = try home.keyRing()
            do throws(KeyError) { return try ring.jwksJSON() } catch {
                throw LedgerError(.storage, "cannot export the public keys: \(error.reason)")
            }
        }
    }

    /// Whether the service can issue tokens: the ledger answers and a signing key is active.
    func readiness() -> String? {
        do {
            return try withHome { home throws(LedgerError) -> String? in
                _ = try home.ledger.revocationList()
                return try home.keyRing().activeKey == nil ? "no active signing key (regtoken keys activate)" : nil
            }
        } catch {
            return error.reason
        }
    }
}

/// Failed authentications per client address: past ``limit`` failures within ``window``
/// seconds, the address is answered 429 (with Retry-After) until the window ends, whatever key
/// it sends. Bounded: the oldest addresses are forgotten past ``capacity``.
public final class FailedAuthentications: Sendable {
    public let limit: Int
    public let window: Int64
    let capacity: Int
    private let entries = Mutex<[String: (count: Int, since: Int64)]>([:])

    public init(limit: Int = 10, window: Int64 = 60, capacity: Int = 100_000) {
        self.limit = limit
        self.window = window
        self.capacity = capacity
    }

    /// Seconds to wait when `address` is blocked now, else nil.
    func blocked(_ address: String, now: Int64) -> Int64? {
        entries.withLock { e in
            guard let entry = e[address] else { return nil }
            if now - entry.since >= window {
                e[address] = nil
                return nil
            }
            return entry.count >= limit ? max(1, entry.since + window - now) : nil
        }
    }

    func recordFailure(_ address: String, now: Int64) {
        entries.withLock { e in
            if e.count >= capacity, e[address] == nil {
                // Forget the stalest windows first.
                let cutoff = now - window
                e = e.filter { $0.value.since > cutoff }
                if e.count >= capacity, let oldest = e.min(by: { $0.value.since < $1.value.since })?.key { e[oldest] = nil }
            }
            if let entry = e[address], now - entry.since < window {
                e[address] = (entry.count + 1, entry.since)
            } else {
                e[address] = (1, now)
            }
        }
    }
}

extension String {
    func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
