import Dispatch
import Logging
import NIOCore
import NIOPosix
import RegToken
import RegTokenAccess
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Keeps the proxy's snapshots current while it runs, dropping no connection: the revocation
/// list and the namespaces file are re-read within a second of a change (polled every 250 ms,
/// and on SIGHUP); keys on SIGHUP. A bad new file is refused with a log line, and the one in
/// force stays. A revocation list published at an http(s) URL is polled with `If-None-Match`.
public final class Reloader: Sendable {
    public enum KeySource: Sendable {
        case directory(String)
        case jwks(String)
    }

    public enum RevocationSource: Sendable {
        case file(String)
        case url(HTTPFetcher)
    }

    let state: ProxyState
    let server: ProxyServer?
    let keys: KeySource
    let revocations: RevocationSource?
    let namespacesPath: String?
    let logger: Logger
    let pollInterval: TimeAmount
    let urlInterval: TimeAmount

    private struct Seen: Equatable {
        var revocations: FileSignature?
        var namespaces: FileSignature?
        var etag: String?
    }

    private let seen = Mutex(Seen())
    private let tasks = Mutex<[RepeatedTask]>([])
    /// The SIGHUP source; DispatchSource objects are thread-safe.
    private final class SignalBox: @unchecked Sendable {
        var source: (any DispatchSourceSignal)?
    }
    private let signalBox = Mutex(SignalBox())

    public init(state: ProxyState, server: ProxyServer?, keys: KeySource, revocations: RevocationSource?,
                namespacesPath: String?, logger: Logger, pollInterval: TimeAmount = .milliseconds(250),
                urlInterval: TimeAmount = .seconds(1)) {
        self.state = state
        self.server = server
        self.keys = keys
        self.revocations = revocations
        self.namespacesPath = namespacesPath
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
            do { bytes = try AtomicFile.read(path, limit: 1 << 20) } catch {
                throw KeyError(.io, "cannot read JWKS: \(error)")
            }
            return try KeyRing(jwksJSON: bytes)
        }
    }

    /// The first load, before serving: every source must be good.
    public func loadInitial() async throws {
        let now = ProxyHandler.wallClock()
        if let namespacesPath {
            state.replaceNamespaces(try NamespaceMap.load(path: namespacesPath))
            seen.withLock { $0.namespaces = FileSignature(path: namespacesPath) }
        }
        switch revocations {
        case .file(let path)?:
            let sig = FileSignature(path: path)
            try state.verifier.loadRevocations(signed: try readList(path))
            seen.withLock { $0.revocations = sig }
            state.revocationsConfirmed(at: now)
        case .url(let fetcher)?:
            let response = try await fetcher.fetch(ifNoneMatch: nil)
            guard response.status == 200 else {
                throw HTTPFetcher.Failure(description: "revocation list URL answered \(response.status)")
            }
            try state.verifier.loadRevocations(signed: response.body)
            seen.withLock { $0.etag = response.etag }
            state.revocationsConfirmed(at: now)
        case nil:
            state.revocationsConfirmed(at: now)
        }
        server?.updateRevocationGauges(now: now)
    }

    private func readList(_ path: String) throws(RevocationError) -> [UInt8] {
        do { return try AtomicFile.read(path, limit: RevocationList.maximumBytes) } catch {
            throw RevocationError(.io, "cannot read revocation list: \(error)")
        }
    }

    // MARK: Running

    /// Starts polling and the SIGHUP handler.
    public func start(on loop: any EventLoop = MultiThreadedEventLoopGroup.singleton.next()) {
        var started: [RepeatedTask] = []
        started.append(loop.scheduleRepeatedTask(initialDelay: pollInterval, delay: pollInterval) { [self] _ in
            pollFiles(force: false)
        })
        if case .url(let fetcher) = revocations {
            started.append(loop.scheduleRepeatedAsyncTask(initialDelay: urlInterval, delay: urlInterval) { [self] task in
                loop.makeFutureWithTask { await self.pollURL(fetcher) }
            })
        }
        tasks.withLock { $0 = started }
        signal(SIGHUP, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
        source.setEventHandler { [self] in
            logger.info("SIGHUP: reloading keys, revocation list and namespaces")
            reloadKeys()
            pollFiles(force: true)
            if case .url(let fetcher) = revocations {
                Task { await self.pollURL(fetcher) }
            }
        }
        source.resume()
        let box = SignalBox()
        box.source = source
        signalBox.withLock { $0 = box }
    }

    public func stop() {
        tasks.withLock { tasks in
            for t in tasks { t.cancel() }
            tasks.removeAll()
        }
        signalBox.withLock { $0.source?.cancel(); $0 = SignalBox() }
    }

    /// Reloads the key ring (on SIGHUP).
    public func reloadKeys() {
        do {
            let ring = try Self.loadKeys(keys)
            state.verifier.replaceKeys(ring)
            logger.info("keys reloaded", metadata: ["keys": "\(ring.keys.map(\.id).sorted().joined(separator: ","))"])
        } catch {
            server?.reloadFailed()
            logger.error("keys not reloaded; keeping the keys in force", metadata: ["error": "\(error.reason)"])
        }
    }

    /// Re-reads files that changed (or all, when forced).
    public func pollFiles(force: Bool) {
        let now = ProxyHandler.wallClock()
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
            let sig = FileSignature(path: path)
            let changed = seen.withLock { s -> Bool in
                defer { s.revocations = sig }
                return force || sig != s.revocations
            }
            if sig == nil {
                if changed { logger.error("revocation list file is missing; keeping the list in force", metadata: ["path": "\(path)"]) }
            } else if changed {
                do {
                    let (list, didChange) = try state.verifier.loadRevocations(signed: try readList(path))
                    state.revocationsConfirmed(at: now)
                    if didChange {
                        logger.info("revocation list reloaded", metadata: ["version": "\(list.version)", "revoked": "\(list.entries.count)"])
                    }
                } catch {
                    server?.reloadFailed()
                    logger.error("revocation list refused; keeping the list in force",
                                 metadata: ["error": "\(error.reason)", "version_in_force": "\(state.verifier.revocationVersion)"])
                }
            } else {
                // Unchanged and still there: the list in force is current.
                state.revocationsConfirmed(at: now)
            }
        }
        server?.updateRevocationGauges(now: now)
    }

    func pollURL(_ fetcher: HTTPFetcher) async {
        let now = ProxyHandler.wallClock()
        let etag = seen.withLock { $0.etag }
        do {
            let response = try await fetcher.fetch(ifNoneMatch: etag)
            switch response.status {
            case 304:
                state.revocationsConfirmed(at: now)
            case 200:
                let (list, changed) = try state.verifier.loadRevocations(signed: response.body)
                seen.withLock { $0.etag = response.etag }
                state.revocationsConfirmed(at: now)
                if changed {
                    logger.info("revocation list reloaded from URL", metadata: ["version": "\(list.version)", "revoked": "\(list.entries.count)"])
                }
            default:
                server?.reloadFailed()
                logger.error("revocation list URL answered \(response.status); keeping the list in force")
            }
        } catch let error as RevocationError {
            server?.reloadFailed()
            logger.error("revocation list from URL refused; keeping the list in force", metadata: ["error": "\(error.reason)"])
        } catch {
            server?.reloadFailed()
            logger.error("revocation list URL unreachable; keeping the list in force", metadata: ["error": "\(error)"])
        }
        server?.updateRevocationGauges(now: now)
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
        guard stat(path, &st) == 0 else { return nil }
        device = UInt64(st.st_dev)
        inode = UInt64(st.st_ino)
        size = Int64(st.st_size)
        seconds = st.st_mtim.tv_sec
        nanoseconds = st.st_mtim.tv_nsec
    }
}
