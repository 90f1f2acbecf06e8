/// A UTF-8 string of at most 64 bytes stored inline, with no heap allocation.
///
/// The verifier returns claims (account, region, key id) as short strings so that verifying a
/// token allocates nothing. Use ``string`` for a `String`.
public struct ShortString: Sendable, Hashable, CustomStringConvertible, ExpressibleByStringLiteral {
    /// The most UTF-8 bytes a short string holds.
    public static let capacity = 64

    var storage: InlineArray<64, UInt8>
    var length: UInt8

    /// An empty string.
    public init() {
        storage = InlineArray(repeating: 0)
        length = 0
    }

    /// The string, or `nil` when it is longer than ``capacity`` bytes.
    public init?(_ string: String) {
        self.init()
        for byte in string.utf8 {
            guard append(byte) else { return nil }
        }
    }

    /// A copy of `bytes`, or `nil` when they are more than ``capacity``.
    @inline(__always)
    init?(bytes: UnsafeBufferPointer<UInt8>) {
        guard bytes.count <= Self.capacity else { return nil }
        self.init()
        if let base = bytes.baseAddress { _ = append(base, count: bytes.count) }
    }

    /// The literal's UTF-8 bytes. A literal longer than ``capacity`` bytes is a programming
    /// error and traps (as a `Character` literal of two characters would not compile): it is
    /// never cut short, which could split a character or make two names equal. Use
    /// ``init(_:)`` for text that is not a literal.
    public init(stringLiteral value: String) {
        precondition(value.utf8.count <= Self.capacity, "a ShortString literal is longer than \(Self.capacity) bytes")
        self.init()
        for byte in value.utf8 { _ = append(byte) }
    }

    /// The number of UTF-8 bytes.
    public var count: Int { Int(length) }

    /// True when the string holds no bytes.
    public var isEmpty: Bool { length == 0 }

    /// Empties the string (its storage stays as it is; only the length counts).
    mutating func removeAll() {
        length = 0
    }

    /// Appends a byte; `false` when full.
    @discardableResult
    mutating func append(_ byte: UInt8) -> Bool {
        guard length < 64 else { return false }
        storage[Int(length)] = byte
        length &+= 1
        return true
    }

    subscript(_ index: Int) -> UInt8 { storage[index] }

    /// The bytes, for the duration of `body`.
    @inline(__always)
    func withBytes<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
        let n = count
        return storage.span.withUnsafeBufferPointer { buffer in
            body(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: buffer[0..<n])))
        }
    }

    /// Appends `count` bytes at once; `false` (and nothing appended) when they do not fit.
    @inline(__always)
    mutating func append(_ bytes: UnsafePointer<UInt8>, count n: Int) -> Bool {
        let start = Int(length)
        guard n <= 64 - start else { return false }
        var span = storage.mutableSpan
        span.withUnsafeMutableBufferPointer { buffer in
            (buffer.baseAddress.unsafelyUnwrapped + start).update(from: bytes, count: n)
        }
        length = UInt8(start + n)
        return true
    }

    /// Appends `bytes` (a buffer of at most ``capacity`` bytes); `false` (and nothing appended)
    /// when they do not fit.
    @inline(__always)
    @discardableResult
    mutating func append(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let base = bytes.baseAddress else { return true }
        return append(base, count: bytes.count)
    }

    /// The string as a Swift `String` (allocates for more than 15 bytes).
    public var string: String {
        // Straight from the storage: a name of up to 15 bytes makes a small string, no allocation.
        storage.span.withUnsafeBufferPointer { String(decoding: UnsafeBufferPointer(rebasing: $0[..<count]), as: UTF8.self) }
    }

    /// The same as ``string``.
    public var description: String { string }

    /// True when the bytes equal the UTF-8 of `other`, without allocating.
    public func equals(_ other: String) -> Bool {
        var other = other
        return other.withUTF8 { equals(UnsafeRawBufferPointer($0)) }
    }

    /// True when the bytes equal `bytes`.
    public func equals(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard bytes.count == count else { return false }
        for i in 0..<count where storage[i] != bytes[i] { return false }
        return true
    }

    /// True when the bytes equal the ASCII `literal`.
    func equals(_ literal: StaticString) -> Bool {
        literal.withUTF8Buffer { equals(UnsafeRawBufferPointer($0)) }
    }

    /// Equal when the UTF-8 bytes are equal.
    public static func == (lhs: ShortString, rhs: ShortString) -> Bool {
        guard lhs.length == rhs.length else { return false }
        for i in 0..<lhs.count where lhs.storage[i] != rhs.storage[i] { return false }
        return true
    }

    /// Hashes the length and the UTF-8 bytes, as equality compares them.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(length)
        for i in 0..<count { hasher.combine(storage[i]) }
    }
}
