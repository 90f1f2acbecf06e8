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
        // Never through a symlink (a dangling one would create a file wherever it points), and
        // never a FIFO or device (O_NONBLOCK: opening one cannot hang; fstat refuses it).
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0o600)
        guard fd >= 0 else {
            let hint = errno == ELOOP ? " (it is a symlink: remove it)" : ""
            throw LedgerError(.storage, "cannot open lock file \(path)\(hint): \(String(cString: strerror(errno)))")
        }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            throw LedgerError(.storage, "lock file \(path) is not a regular file: remove it")
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
