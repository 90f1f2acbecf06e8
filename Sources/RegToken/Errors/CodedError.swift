/// The shape of every public error of regtoken (swift-certificates' pattern): a ``code`` of the
/// error's own `ErrorCode` type (static constants with stable snake_case names; new ones may be
/// added), a one-line ``reason`` that never holds token or key bytes, and equality and hashing on
/// the code alone, so that callers and tests match the kind of failure whatever the reason says.
public protocol CodedError: Error, Sendable, Hashable, CustomStringConvertible {
    associatedtype ErrorCode: Hashable & Sendable & CustomStringConvertible
    /// The class of failure.
    var code: ErrorCode { get }
    /// One line: what failed and why.
    var reason: String { get }
}

extension CodedError {
    /// Equal when the codes are equal, whatever the reasons.
    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.code == rhs.code }
    /// Hashes the code alone, as equality compares it alone.
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
    /// The reason (an error type may say more, such as its code).
    public var description: String { reason }
}
