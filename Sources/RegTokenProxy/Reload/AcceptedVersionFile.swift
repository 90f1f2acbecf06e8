import RegTokenProxyCore
import FoundationEssentials
import RegToken

#if canImport(Glibc)
import Glibc
#endif

/// The highest revocation list version a verifier has accepted from one source, kept on disk so
/// that a restart cannot be fed an older list (a rollback would un-revoke tokens).
///
/// One small JSON file per source (`{"source":…,"version":N,"issued_at":T}`), written atomically
/// (temporary file, fsync, rename) under an `flock`, so that proxies sharing the directory and
/// source only ever raise it.
public struct AcceptedVersionFile: Sendable {
    public let path: String
    public let source: String

    struct Record: Codable {
        var source: String
        var version: UInt64
        var issuedAt: Int64

        enum CodingKeys: String, CodingKey {
            case source, version
            case issuedAt = "issued_at"
        }
    }

    /// The file for `source` (a path or URL) in `directory` (created 0700 if missing).
    public init(directory: String, source: String) throws {
        try AtomicFile.makeDirectory(directory, mode: 0o700)
        try AtomicFile.checkDirectory(directory, private: false)
        // FNV-1a of the source names the file: stable, and no path characters in it.
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in source.utf8 { hash = (hash ^ UInt64(b)) &* 0x100_0000_01b3 }
        path = "\(directory)/revocations-\(String(hash, radix: 16)).accepted"
        self.source = source
    }

    /// The highest version accepted so far, or nil when none was recorded.
    public func load() throws -> UInt64? {
        let bytes: [UInt8]
        do { bytes = try AtomicFile.read(path, limit: 4096, trust: .owned) } catch {
            if error.code == .notFound { return nil }
            throw error
        }
        do {
            return try JSONDecoder().decode(Record.self, from: Data(bytes)).version
        } catch {
            throw ProxyError(.storage, "\(path) is damaged; remove it to accept the next list as it comes (\(error))")
        }
    }

    /// Records `list` when its version is higher than the one recorded.
    public func record(_ list: RevocationList) throws {
        let lock = open(path + ".lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard lock >= 0 else { throw ProxyError(.storage, "cannot open \(path).lock: \(String(cString: strerror(errno)))") }
        defer { close(lock) }
        while flock(lock, LOCK_EX) != 0 && errno == EINTR {}
        if let current = try? load(), current >= list.version { return }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let bytes = Array(try encoder.encode(Record(source: source, version: list.version, issuedAt: list.issuedAt))) + [0x0A]
        try AtomicFile.write(bytes, to: path, mode: 0o600)
    }
}
