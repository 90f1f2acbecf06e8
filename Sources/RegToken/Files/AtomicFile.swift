#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Small, careful file operations: whole-file reads, and writes that either fully happen or
/// leave the old file in place (temporary file in the same directory, fsync, rename, fsync of
/// the directory), so a crash never leaves a half-written key or revocation list.
public enum AtomicFile {
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public let path: String
        public let operation: String
        public let errno: Int32
        public var description: String { "\(operation) \(path): \(String(cString: strerror(errno)))" }
    }

    /// Writes `bytes` to `path` atomically with permissions `mode` (0600 for secrets).
    /// - Parameter exclusive: when true, fails if `path` already exists (never replaces a key).
    public static func write(_ bytes: [UInt8], to path: String, mode: mode_t, exclusive: Bool = false) throws(Failure) {
        if exclusive, access(path, F_OK) == 0 {
            throw Failure(path: path, operation: "create", errno: EEXIST)
        }
        let dir = directory(of: path)
        var tmp = ""
        var fd: Int32 = -1
        for _ in 0..<16 {
            tmp = "\(dir)/.\(basename(of: path)).tmp-\(UUIDBytes.random().low & 0xFFFF_FFFF)"
            fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
            if fd >= 0 || errno != EEXIST { break }
        }
        guard fd >= 0 else { throw Failure(path: tmp, operation: "create", errno: errno) }
        var ok = false
        defer {
            if !ok { unlink(tmp) }
        }
        // The umask may have narrowed the mode; set exactly what was asked.
        if fchmod(fd, mode) != 0 {
            let e = errno; close(fd)
            throw Failure(path: tmp, operation: "chmod", errno: e)
        }
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + written, $0.count - written) }
            if n < 0 {
                if errno == EINTR { continue }
                let e = errno; close(fd)
                throw Failure(path: tmp, operation: "write", errno: e)
            }
            written += n
        }
        if fsync(fd) != 0 {
            let e = errno; close(fd)
            throw Failure(path: tmp, operation: "fsync", errno: e)
        }
        close(fd)
        if exclusive {
            // link() fails if the target exists: no key is ever replaced by a race.
            guard link(tmp, path) == 0 else { throw Failure(path: path, operation: "create", errno: errno) }
            unlink(tmp)
        } else {
            guard rename(tmp, path) == 0 else { throw Failure(path: path, operation: "rename", errno: errno) }
        }
        ok = true
        syncDirectory(dir)
    }

    /// fsync of a directory, so a rename survives a power loss.
    static func syncDirectory(_ dir: String) {
        let dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 {
            _ = fsync(dfd)
            close(dfd)
        }
    }

    /// The whole file. Refuses anything larger than `limit` bytes.
    public static func read(_ path: String, limit: Int = 64 << 20) throws(Failure) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw Failure(path: path, operation: "open", errno: errno) }
        defer { close(fd) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw Failure(path: path, operation: "read", errno: errno)
            }
            if n == 0 { break }
            out.append(contentsOf: chunk[0..<n])
            if out.count > limit { throw Failure(path: path, operation: "read (file too large)", errno: EFBIG) }
        }
        return out
    }

    /// The permission bits of `path` (`st_mode & 0o7777`).
    public static func permissions(of path: String) throws(Failure) -> mode_t {
        var st = stat()
        guard stat(path, &st) == 0 else { throw Failure(path: path, operation: "stat", errno: errno) }
        return st.st_mode & 0o7777
    }

    /// Creates `path` (and parents) as directories with `mode` if missing.
    public static func makeDirectory(_ path: String, mode: mode_t) throws(Failure) {
        var st = stat()
        if stat(path, &st) == 0 {
            guard (st.st_mode & S_IFMT) == S_IFDIR else { throw Failure(path: path, operation: "mkdir (not a directory)", errno: ENOTDIR) }
            return
        }
        let parent = directory(of: path)
        if parent != path && parent != "." && parent != "/" { try makeDirectory(parent, mode: mode) }
        if mkdir(path, mode) != 0 && errno != EEXIST { throw Failure(path: path, operation: "mkdir", errno: errno) }
        _ = chmod(path, mode)
    }

    /// The names in a directory (no `.` and `..`), sorted.
    public static func list(_ path: String) throws(Failure) -> [String] {
        guard let dir = opendir(path) else { throw Failure(path: path, operation: "open directory", errno: errno) }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        if slash == path.startIndex { return "/" }
        return String(path[..<slash])
    }

    static func basename(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }
}
