import RegTokenProxyCore
import Logging
import NIOCore
import RegToken
import RegTokenAccess
import ServiceLifecycle
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Keeps the proxy's snapshots current while it runs, dropping no connection, off the event
/// loops (a task on Swift's global executor: parsing a large list never stalls a request).
///
/// - **Keys** are watched like the list (the key directory's entries, or the JWKS file, every
///   250 ms) and reloaded when they change; a list signed by a key the proxy does not know makes
///   it reload its keys and try the list again. A bad new key file is refused with a log line
///   and the keys in force stay.
/// - **The revocation list** (a file polled every 250 ms, or an http(s) URL polled every second
///   with `If-None-Match`) and the namespaces file are re-read when they change and on SIGHUP.
/// - **Freshness is what was verified**: the list's age counts from the last list fetched,
///   verified and accepted, or confirmed unchanged (the same file as the accepted one, or a 304
///   for the accepted list's ETag). A refused list, a missing file, an error status, a timeout or
///   a stall leaves the age growing, and polling never stops: every fetch ends within its timeout.
/// - **No rollback**: the highest version accepted is recorded on disk
///   (``AcceptedVersionFile``); after a restart a lower one is refused.
public final class Reloader: Service, Sendable {
    public enum KeySource: Sendable {
        case directory(String)
        case jwks(String)
        /// A JWKS published by `regtoken serve` (`/.well-known/jwks.json`), polled with the list.
        case url(DocumentFetcher)
    }

    /// Where the namespace map comes from: a file, or the signed map `regtoken serve` publishes
    /// (`/v1/namespaces`), verified with the keys and polled with `If-None-Match`.
    public enum NamespaceSource: Sendable {
        case file(String)
        case url(DocumentFetcher)
    }

    public enum RevocationSource: Sendable {
        case file(String)
        case url(DocumentFetcher)

        var name: String {
            switch self {
            case .file(let path): return path
            case .url(let fetcher): return fetcher.url
            }
        }
    }

    let state: ProxyState
    let server: ProxyServer?
    let keys: KeySource
    let revocations: RevocationSource?
    let namespaces: NamespaceSource?
    var namespacesPath: String? {
        if case .file(let path) = namespaces { return path }
        return nil
    }
    let acceptedVersion: AcceptedVersionFile?
    let logger: Logger
    let pollInterval: Duration
    let urlInterval: Duration

    private struct Seen {
        /// The key sources as last loaded (or last refused).
        var keys: [String: FileSignature?] = [:]
        /// The revocation file as last accepted, and as last looked at.
        var acceptedFile: FileSignature?
        var lastFile: FileSignature?
        var missingLogged = false
        var namespaces: FileSignature?
        /// The ETag of the accepted list.
        var etag: String?
        /// Issuer mode: the JWKS in force, and the signed namespace map's ETag and version.
        var jwks: [UInt8]?
        var namespacesETag: String?
        var namespacesVersion: UInt64?
        /// Whether the list in force was stale at the last look (non-expiring tokens refused).
        var stale = false
    }

    private let seen = Mutex(Seen())
    private let task = Mutex<Task<Void, Never>?>(nil)

    public init(state: ProxyState, server: ProxyServer?, keys: KeySource, revocations: RevocationSource?,
                namespaces: NamespaceSource?, acceptedVersion: AcceptedVersionFile? = nil, logger: Logger,
                pollInterval: Duration = .milliseconds(250), urlInterval: Duration = .seconds(1)) {
        self.state = state
        self.server = server
        self.keys = keys
        self.revocations = revocations
        self.namespaces = namespaces
        self.acceptedVersion = acceptedVersion
        self.logger = logger
        self.pollInterval = pollInterval
        self.urlInterval = urlInterval
    }

    // MARK: Loading

    /// Loads the key ring from its source.
    public static func loadKeys(_ source: KeySource) throws(KeyError) -> KeyRing {
        switch source {
        case .directory(let dir):
            return try KeyRing.load(directory: dir)
        case .jwks(let path):
            let bytes: [UInt8]
            do { bytes = try AtomicFile.read(path, limit: 1 << 20, trust: .owned) } catch {
                throw KeyError(.io, "cannot read JWKS: \(error)")
            }
            return try KeyRing(jwksJSON: bytes)
        case .url(let fetcher):
            throw KeyError(.io, "keys from \(fetcher.url) are fetched, not read")
        }
    }

    /// What identifies the key source's current contents.
    private func keySignature() -> [String: FileSignature?] {
        switch keys {
        case .url:
            return [:]
        case .jwks(let path):
            return [path: FileSignature(path: path)]
        case .directory(let dir):
            var out: [String: FileSignature?] = [dir: FileSignature(path: dir)]
            for name in (try? AtomicFile.list(dir)) ?? [] where !name.hasPrefix(".") {
                out[name] = FileSignature(path: "\(dir)/\(name)")
            }
            return out
        }
    }

    /// The first load, before serving: every source must be good, and the list no older than
    /// the highest version accepted before.
    public func loadInitial() async throws {
        let now = WallClock.now()
        seen.withLock { $0.keys = keySignature() }
        if case .url(let fetcher) = keys {
            let response = try await fetcher.fetch(ifNoneMatch: nil)
            guard response.status == 200 else { throw ProxyError(.fetchFailed, "\(fetcher.url) answered \(response.status)") }
            state.verifier.replaceKeys(try KeyRing(jwksJSON: response.body))
            seen.withLock { $0.jwks = response.body }
        }
        switch namespaces {
        case .file(let path)?:
            state.replaceNamespaces(try NamespaceMap.load(path: path))
            seen.withLock { $0.namespaces = FileSignature(path: path) }
        case .url(let fetcher)?:
            let response = try await fetcher.fetch(ifNoneMatch: nil)
            guard response.status == 200 else { throw ProxyError(.fetchFailed, "\(fetcher.url) answered \(response.status)") }
            let signed = try SignedNamespaceMap(signed: response.body, keys: state.verifier.keyRing)
            state.replaceNamespaces(signed.map)
            seen.withLock { $0.namespacesETag = response.etag; $0.namespacesVersion = signed.version }
        case nil:
            break
        }
        let recorded = try acceptedVersion?.load()
        func checkRollback(_ list: RevocationList) throws(RevocationError) {
            if let recorded, list.version < recorded {
                throw RevocationError(.staleVersion, "revocation list version \(list.version) is older than version \(recorded) this proxy accepted before (\(acceptedVersion?.path ?? "")): a rollback? Publish a newer list; remove that file only if the issuer's versions were reset on purpose")
            }
        }
        switch revocations {
        case .file(let path)?:
            let sig = FileSignature(path: path)
            let list = try RevocationList(signed: try readList(path), keys: state.verifier.keyRing)
            try checkRollback(list)
            try state.verifier.install(list)
            try acceptedVersion?.record(list)
            seen.withLock { $0.acceptedFile = sig; $0.lastFile = sig }
            state.revocationsConfirmed(at: now)
        case .url(let fetcher)?:
            let response = try await fetcher.fetch(ifNoneMatch: nil)
            guard response.status == 200 else {
                throw ProxyError(.fetchFailed, "revocation list URL answered \(response.status)")
            }
            let list = try RevocationList(signed: response.body, keys: state.verifier.keyRing)
            try checkRollback(list)
            try state.verifier.install(list)
            try acceptedVersion?.record(list)
            seen.withLock { $0.etag = response.etag }
            state.revocationsConfirmed(at: now)
        case nil:
            state.revocationsConfirmed(at: now)
        }
        server?.updateRevocationGauges(now: now)
    }

    private func readList(_ path: String) throws(RevocationError) -> [UInt8] {
        do { return try AtomicFile.read(path, limit: RevocationList.maximumBytes, trust: .owned) } catch {
            throw RevocationError(.io, "cannot read revocation list: \(error)")
        }
    }

    // MARK: Running

    /// Starts polling, on a task of its own (off the event loops), until ``stop()``.
    public func start() {
        let t = Task.detached { [self] in await self.poll() }
        task.withLock { $0 = t }
    }

    /// Stops polling started by ``start()``.
    public func stop() {
        task.withLock { $0?.cancel(); $0 = nil }
    }

    /// As a service: polls until graceful shutdown (or cancellation), then closes the fetcher's
    /// connections.
    public func run() async throws {
        await cancelWhenGracefulShutdown { await self.poll() }
        await shutdown()
    }

    /// Closes the URL fetcher's connections (needed before the fetcher goes away).
    public func shutdown() async {
        if case .url(let fetcher) = revocations { await fetcher.shutdown() }
        if case .url(let fetcher) = keys { await fetcher.shutdown() }
        if case .url(let fetcher) = namespaces { await fetcher.shutdown() }
    }

    /// Polls until cancelled. A fetch always ends (it has a deadline), so polling never stops.
    public func poll() async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { [self] in
                while !Task.isCancelled {
                    // Before a new list is taken: the ages logged are the stale spell's.
                    checkFreshness(now: WallClock.now())
                    pollFiles(force: false)
                    try? await Task.sleep(for: pollInterval)
                }
            }
            if case .url(let fetcher) = revocations {
                group.addTask { [self] in
                    while !Task.isCancelled {
                        await pollIssuer()
                        await pollURL(fetcher)
                        try? await Task.sleep(for: urlInterval)
                    }
                }
            }
        }
    }

    /// With `--revocations-max-age`: says when non-expiring tokens start being refused because
    /// the list in force is stale, and when they are accepted again: one line for each change,
    /// the first look included (a proxy started on a list already too old says so at once), and
    /// a spell shorter than the time between two looks is still told if it refused a request.
    func checkFreshness(now: Int64) {
        guard let maxAge = state.revocationMaxAge else { return }
        let stale = state.revocationsStale(now: now)
        let refused = state.takeStaleRefusal()
        let wasStale = seen.withLock { seen in
            defer { seen.stale = stale }
            return seen.stale
        }
        if !wasStale && (stale || refused) {
            let accepted = state.revocationAge(now: now)
            let signed = state.revocationSignedAge(now: now)
            // Which age is over the maximum says what to do about it (both may be).
            var advice: [String] = []
            if accepted > maxAge {
                advice.append("no list has been confirmed current from the source for longer than the maximum: see the errors above about the source")
            }
            if (signed ?? 0) > maxAge {
                advice.append("the list's signature is older than the maximum: on the issuer, run regtoken revocations refresh more often than half the maximum age")
            }
            logger.error("revocation list is stale: non-expiring tokens are refused until the list in force is confirmed current; \(advice.joined(separator: "; "))",
                         metadata: ["accepted_age_seconds": "\(accepted)", "signed_age_seconds": "\(signed.map { "\($0)" } ?? "none")",
                                    "max_age_seconds": "\(maxAge)", "source": "\(revocations?.name ?? "none")"])
        }
        if (wasStale || refused) && !stale {
            logger.info("revocation list fresh again: non-expiring tokens are accepted")
        }
    }

    /// Issuer mode: the keys first (a list signed by a new key verifies in the same round), then
    /// the namespace map. Each fetch has its deadline; a failure keeps what is in force.
    func pollIssuer() async {
        if case .url(let fetcher) = keys {
            do {
                let response = try await fetcher.fetch(ifNoneMatch: nil)
                guard response.status == 200 else { throw ProxyError(.fetchFailed, "answered \(response.status)") }
                if response.body != seen.withLock({ $0.jwks }) {
                    let ring = try KeyRing(jwksJSON: response.body)
                    state.verifier.replaceKeys(ring)
                    seen.withLock { $0.jwks = response.body }
                    server?.keysReloaded()
                    logger.info("keys reloaded from the issuer", metadata: ["keys": "\(ring.keys.map(\.id).sorted().joined(separator: ","))"])
                }
            } catch {
                server?.reloadFailed()
                logger.error("keys from the issuer not reloaded; keeping the keys in force", metadata: ["url": "\(fetcher.url)", "error": "\(error)"])
            }
        }
        if case .url(let fetcher) = namespaces {
            let etag = seen.withLock { $0.namespacesETag }
            do {
                let response = try await fetcher.fetch(ifNoneMatch: etag)
                if response.status == 304 && etag != nil { return }
                guard response.status == 200 else { throw ProxyError(.fetchFailed, "answered \(response.status)") }
                let signed = try SignedNamespaceMap(signed: response.body, keys: state.verifier.keyRing)
                if let version = seen.withLock({ $0.namespacesVersion }), signed.version < version {
                    throw ProxyError(.staleVersion, "namespace map version \(signed.version) is older than version \(version) in force")
                }
                state.replaceNamespaces(signed.map)
                seen.withLock { $0.namespacesETag = response.etag; $0.namespacesVersion = signed.version }
                logger.info("namespaces reloaded from the issuer", metadata: ["version": "\(signed.version)", "namespaces": "\(signed.map.count ?? 0)"])
            } catch {
                server?.reloadFailed()
                logger.error("namespace map from the issuer refused; keeping the map in force", metadata: ["url": "\(fetcher.url)", "error": "\(error)"])
            }
        }
    }

    /// SIGHUP: keys, files and the URL, at once.
    public func reloadAll() async {
        logger.info("SIGHUP: reloading keys, revocation list and namespaces")
        if case .url = keys { await pollIssuer() } else { reloadKeys() }
        pollFiles(force: true)
        if case .url(let fetcher) = revocations { await pollURL(fetcher) }
    }

    /// Reloads the key ring (on a change, on SIGHUP, or for a list signed by an unknown key).
    /// - Returns: true when the keys in force were replaced.
    @discardableResult
    public func reloadKeys() -> Bool {
        if case .url = keys { return false }  // fetched by pollIssuer()
        let signature = keySignature()
        seen.withLock { $0.keys = signature }
        do {
            let ring = try Self.loadKeys(keys)
            state.verifier.replaceKeys(ring)
            server?.keysReloaded()
            logger.info("keys reloaded", metadata: ["keys": "\(ring.keys.map(\.id).sorted().joined(separator: ","))"])
            return true
        } catch {
            server?.reloadFailed()
            logger.error("keys not reloaded; keeping the keys in force", metadata: ["error": "\(error.reason)"])
            return false
        }
    }

    /// Re-reads what changed (or everything, when forced): keys, the namespaces file, the list file.
    public func pollFiles(force: Bool) {
        let now = WallClock.now()
        var keysChanged = false
        if force || seen.withLock({ $0.keys }) != keySignature() {
            keysChanged = reloadKeys()
        }
        if let namespacesPath {
            let sig = FileSignature(path: namespacesPath)
            let changed = seen.withLock { s -> Bool in
                defer { s.namespaces = sig }
                return force || sig != s.namespaces
            }
            if changed, sig != nil {
                do {
                    let map = try NamespaceMap.load(path: namespacesPath)
                    state.replaceNamespaces(map)
                    logger.info("namespaces reloaded", metadata: ["namespaces": "\(map.count ?? 0)"])
                } catch {
                    server?.reloadFailed()
                    logger.error("namespaces file refused; keeping the map in force", metadata: ["error": "\(error.description)"])
                }
            }
        }
        if case .file(let path) = revocations {
            pollListFile(path, force: force || keysChanged, now: now)
        }
        server?.updateRevocationGauges(now: now)
    }

    private func pollListFile(_ path: String, force: Bool, now: Int64) {
        let sig = FileSignature(path: path)
        let (accepted, last) = seen.withLock { ($0.acceptedFile, $0.lastFile) }
        guard let sig else {
            let logged = seen.withLock { s -> Bool in defer { s.missingLogged = true; s.lastFile = nil }; return s.missingLogged }
            if !logged { logger.error("revocation list file is missing; keeping the list in force, its age growing", metadata: ["path": "\(path)"]) }
            return
        }
        seen.withLock { $0.missingLogged = false }
        if sig == accepted && !force {
            // The very file accepted last: the list in force is current.
            state.revocationsConfirmed(at: now)
            return
        }
        // A file refused before stays refused until it changes (or the keys do).
        guard force || sig != last else { return }
        seen.withLock { $0.lastFile = sig }
        do {
            let bytes = try readList(path)
            let (list, changed) = try installVerified(bytes)
            seen.withLock { $0.acceptedFile = sig }
            state.revocationsConfirmed(at: now)
            if changed {
                logger.info("revocation list reloaded", metadata: ["version": "\(list.version)", "revoked": "\(list.entries.count)"])
            }
        } catch {
            server?.reloadFailed()
            logger.error("revocation list refused; keeping the list in force, its age growing",
                         metadata: ["error": "\(error.reason)", "version_in_force": "\(state.verifier.revocationVersion)"])
        }
    }

    /// Verifies and installs a signed list; one signed by a key not in force makes the proxy
    /// reload its keys first and try again. Records the accepted version.
    private func installVerified(_ bytes: [UInt8]) throws(RevocationError) -> (RevocationList, Bool) {
        let list: RevocationList
        do {
            list = try RevocationList(signed: bytes, keys: state.verifier.keyRing)
        } catch where error.code == .badSignature {
            logger.info("revocation list signed by a key not in force: reloading keys", metadata: ["error": "\(error.reason)"])
            guard reloadKeys() else { throw error }
            list = try RevocationList(signed: bytes, keys: state.verifier.keyRing)
        }
        let changed = try state.verifier.install(list)
        if changed, let acceptedVersion {
            do { try acceptedVersion.record(list) } catch {
                logger.error("cannot record the accepted revocation list version", metadata: ["path": "\(acceptedVersion.path)", "error": "\(error)"])
            }
        }
        return (list, changed)
    }

    func pollURL(_ fetcher: DocumentFetcher) async {
        let etag = seen.withLock { $0.etag }
        do {
            let response = try await fetcher.fetch(ifNoneMatch: etag)
            let now = WallClock.now()
            switch response.status {
            case 304 where etag != nil:
                // Unchanged since the accepted list (its ETag): current.
                state.revocationsConfirmed(at: now)
            case 200:
                let (list, changed) = try installVerified(response.body)
                seen.withLock { $0.etag = response.etag }
                state.revocationsConfirmed(at: now)
                if changed {
                    logger.info("revocation list reloaded from URL", metadata: ["version": "\(list.version)", "revoked": "\(list.entries.count)"])
                }
            default:
                server?.reloadFailed()
                logger.error("revocation list URL answered \(response.status); keeping the list in force, its age growing")
            }
        } catch let error as RevocationError {
            server?.reloadFailed()
            logger.error("revocation list from URL refused; keeping the list in force, its age growing", metadata: ["error": "\(error.reason)"])
        } catch {
            server?.reloadFailed()
            logger.error("revocation list URL unreachable; keeping the list in force, its age growing", metadata: ["error": "\(error)"])
        }
        server?.updateRevocationGauges(now: WallClock.now())
    }
}

/// What identifies a version of a file on disk: device, inode, size and modification time.
struct FileSignature: Equatable, Sendable {
    var device: UInt64
    var inode: UInt64
    var size: Int64
    var seconds: Int
    var nanoseconds: Int

    init?(path: String) {
        var st = stat()
        guard lstat(path, &st) == 0 else { return nil }
        device = UInt64(st.st_dev)
        inode = UInt64(st.st_ino)
        size = Int64(st.st_size)
        seconds = st.st_mtim.tv_sec
        nanoseconds = st.st_mtim.tv_nsec
    }
}
