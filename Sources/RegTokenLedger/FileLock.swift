#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// An exclusive advisory lock on a file (flock), held until ``unlock()`` or process exit. The
/// kernel releases it when the process dies, even by SIGKILL, so a crash never leaves it held.
public final class FileLock {
    private var fd: Int32

    /// Blocks until the lock on `path` (created 0600 if missing) is held.
    public init(path: String) throws(LedgerError) {
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw LedgerError(.storage, "cannot open lock file \(path): \(String(cString: strerror(errno)))")
        }
        while flock(fd, LOCK_EX) != 0 {
            if errno == EINTR { continue }
            let e = errno
            close(fd)
            throw LedgerError(.storage, "cannot lock \(path): \(String(cString: strerror(e)))")
        }
    }

    public func unlock() {
        guard fd >= 0 else { return }
        _ = flock(fd, LOCK_UN)
        close(fd)
        fd = -1
    }

    deinit { unlock() }
}
