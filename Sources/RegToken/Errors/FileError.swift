#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a file or directory could not be read, written or trusted (by regtoken's atomic file operations).
///
/// Equality is on ``code`` only. The description is one line: the operation, the path, and the
/// system's reason or what was refused and what to run.
public struct FileError: CodedError {
    /// The class of failure, stable across releases (new codes may be added).
    public struct ErrorCode: Sendable, Hashable, CustomStringConvertible {
        let name: String
        /// The file or directory does not exist.
        public static let notFound = ErrorCode(name: "not_found")
        /// Refused for its owner or permissions, or because it is a symlink or not a regular file
        /// (``reason`` says which and what to run).
        public static let untrusted = ErrorCode(name: "untrusted")
        /// Larger than the limit the caller gave.
        public static let tooLarge = ErrorCode(name: "too_large")
        /// Any other failure of the file system (the system's reason is in ``reason``).
        public static let io = ErrorCode(name: "io")
        /// The stable snake_case name, such as `not_found`.
        public var description: String { name }
    }

    /// The class of failure; equality and hashing use it alone.
    public let code: ErrorCode
    /// The file or directory concerned.
    public let path: String
    /// The system's error number (`EPERM` when refused for trust).
    public let errno: Int32
    /// One line: what was done, to which path, and why it failed.
    public let reason: String
    /// What was refused, when the file was refused for trust (without the operation and path).
    let detail: String?

    /// - Parameter detail: what was wrong when it is not an `errno` (a file refused for its owner or mode).
    init(path: String, operation: String, errno: Int32, detail: String? = nil, code: ErrorCode? = nil) {
        self.path = path
        self.errno = errno
        self.detail = detail
        self.code = code ?? (detail != nil ? .untrusted : errno == ENOENT ? .notFound : errno == EFBIG ? .tooLarge : .io)
        self.reason = "\(operation) \(path): \(detail ?? String(cString: strerror(errno)))"
    }

}
