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
package enum AtomicFile {
    /// Writes `bytes` to `path` atomically with permissions `mode` (0600 for secrets).
    /// - Parameter exclusive: when true, fails if `path` already exists (never replaces a key).
    package static func write(_ bytes: [UInt8], to path: String, mode: mode_t, exclusive: Bool = false) throws(FileError) {
        if exclusive, access(path, F_OK) == 0 {
            throw FileError(path: path, operation: "create", errno: EEXIST)
        }
        let dir = directory(of: path)
        var tmp = ""
        var fd: Int32 = -1
        for _ in 0..<16 {
            tmp = "\(dir)/.\(basename(of: path)).tmp-\(UUIDBytes.random().low & 0xFFFF_FFFF)"
            fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
            if fd >= 0 || errno != EEXIST { break }
        }
        guard fd >= 0 else { throw FileError(path: tmp, operation: "create", errno: errno) }
        var ok = false
        defer {
            if !ok { unlink(tmp) }
        }
        // The umask may have narrowed the mode; set exactly what was asked.
        if fchmod(fd, mode) != 0 {
            let e = errno; close(fd)
            throw FileError(path: tmp, operation: "chmod", errno: e)
        }
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + written, $0.count - written) }
            if n < 0 {
                if errno == EINTR { continue }
                let e = errno; close(fd)
                throw FileError(path: tmp, operation: "write", errno: e)
            }
            written += n
        }
        if fsync(fd) != 0 {
            let e = errno; close(fd)
            throw FileError(path: tmp, operation: "fsync", errno: e)
        }
        close(fd)
        if exclusive {
            // link() fails if the target exists: no key is ever replaced by a race.
            guard link(tmp, path) == 0 else { throw FileError(path: path, operation: "create", errno: errno) }
            unlink(tmp)
        } else {
            guard rename(tmp, path) == 0 else { throw FileError(path: path, operation: "rename", errno: errno) }
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

    /// How far a file's owner and permissions must be trusted before it is read.
    package enum Trust: Sendable, Equatable {
        /// Any owner and mode (still a regular file, not a symlink).
        case any
        /// Owned by the user running regtoken (or by root), not writable by group or others:
        /// keys, key directories, lists and configuration that decide who gets in.
        case owned
        /// As `owned`, and readable by nobody else (0600 or stricter): secrets.
        case secret
    }

    /// The whole file at `path`, which must be a regular file (not a FIFO, device, directory or
    /// symlink: opened with `O_NOFOLLOW | O_NONBLOCK`, then checked with `fstat`, so nothing can
    /// block or be swapped between the check and the read) trusted as `trust` says. Refuses
    /// anything larger than `limit` bytes.
    package static func read(_ path: String, limit: Int = 64 << 20, trust: Trust = .any) throws(FileError) -> [UInt8] {
        try readWithMode(path, limit: limit, trust: trust).bytes
    }

    /// As ``read(_:limit:trust:)``, with the permission bits the file had when it was read.
    package static func readWithMode(_ path: String, limit: Int = 64 << 20, trust: Trust = .any) throws(FileError) -> (bytes: [UInt8], mode: mode_t) {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
        guard fd >= 0 else {
            throw FileError(path: path, operation: errno == ELOOP ? "open (a symlink; give the file itself)" : "open", errno: errno, code: errno == ELOOP ? .untrusted : nil)
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw FileError(path: path, operation: "stat", errno: errno) }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw FileError(path: path, operation: "open (not a regular file)", errno: EINVAL, code: .untrusted)
        }
        if let problem = trustProblem(path: path, st: st, trust: trust) {
            throw FileError(path: path, operation: "refusing", errno: EPERM, detail: problem)
        }
        if st.st_size > limit { throw FileError(path: path, operation: "read (file too large)", errno: EFBIG) }
        var out: [UInt8] = []
        out.reserveCapacity(Int(st.st_size))
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw FileError(path: path, operation: "read", errno: errno)
            }
            if n == 0 { break }
            out.append(contentsOf: chunk[0..<n])
            if out.count > limit { throw FileError(path: path, operation: "read (file too large)", errno: EFBIG) }
        }
        return (out, st.st_mode & 0o7777)
    }

    /// What is wrong with a file's owner or mode for `trust`, with the command that fixes it, or nil.
    static func trustProblem(path: String, st: stat, trust: Trust) -> String? {
        let mode = st.st_mode & 0o7777
        switch trust {
        case .any:
            return nil
        case .owned, .secret:
            let me = geteuid()
            if st.st_uid != me && st.st_uid != 0 {
                return "owned by uid \(st.st_uid), not by the user running regtoken (uid \(me)) or root; run: chown \(me) \(path)"
            }
            if mode & 0o022 != 0 {
                return "writable by group or others (mode \(String(mode, radix: 8))); run: chmod go-w \(path)"
            }
            if case .secret = trust, mode & 0o077 != 0 {
                return "a secret readable by group or others (mode \(String(mode, radix: 8))); run: chmod 600 \(path)"
            }
            return nil
        }
    }

    /// Checks that the directory at `path` is a real directory (not a symlink) owned by the user
    /// running regtoken (or root) and not writable by group or others; with `private`, that
    /// group and others have no access at all (0700).
    package static func checkDirectory(_ path: String, private: Bool) throws(FileError) {
        var st = stat()
        guard lstat(path, &st) == 0 else { throw FileError(path: path, operation: "stat", errno: errno) }
        guard (st.st_mode & S_IFMT) == S_IFDIR else {
            throw FileError(path: path, operation: "open directory (not a directory, or a symlink)", errno: ENOTDIR)
        }
        let mode = st.st_mode & 0o7777
        if `private`, mode & 0o077 != 0 {
            throw FileError(path: path, operation: "refusing", errno: EPERM,
                          detail: "accessible by group or others (mode \(String(mode, radix: 8))); run: chmod 700 \(path)")
        }
        if let problem = trustProblem(path: path, st: st, trust: .owned) {
            throw FileError(path: path, operation: "refusing", errno: EPERM, detail: problem)
        }
    }

    /// The permission bits of `path` (`st_mode & 0o7777`).
    package static func permissions(of path: String) throws(FileError) -> mode_t {
        var st = stat()
        guard stat(path, &st) == 0 else { throw FileError(path: path, operation: "stat", errno: errno) }
        return st.st_mode & 0o7777
    }

    /// Creates `path` (and parents) as directories with `mode` if missing.
    package static func makeDirectory(_ path: String, mode: mode_t) throws(FileError) {
        var st = stat()
        if stat(path, &st) == 0 {
            guard (st.st_mode & S_IFMT) == S_IFDIR else { throw FileError(path: path, operation: "mkdir (not a directory)", errno: ENOTDIR) }
            return
        }
        let parent = directory(of: path)
        if parent != path && parent != "." && parent != "/" { try makeDirectory(parent, mode: mode) }
        if mkdir(path, mode) != 0 && errno != EEXIST { throw FileError(path: path, operation: "mkdir", errno: errno) }
        _ = chmod(path, mode)
    }

    /// The names in a directory (no `.` and `..`), sorted.
    package static func list(_ path: String) throws(FileError) -> [String] {
        guard let dir = opendir(path) else { throw FileError(path: path, operation: "open directory", errno: errno) }
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
