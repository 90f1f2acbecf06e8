#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// An IP address, IPv4 held as IPv4-mapped IPv6 (`::ffff:a.b.c.d`), so that an IPv4 range
/// matches an IPv4 client whether the socket reports it as IPv4 or as a mapped IPv6 address.
public struct IPAddress: Sendable, Hashable, CustomStringConvertible {
    /// The 128 bits, most significant first.
    public let high: UInt64
    public let low: UInt64

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// An IPv4 address from its four bytes.
    public init(ipv4 a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) {
        high = 0
        low = 0x0000_FFFF_0000_0000 | UInt64(a) << 24 | UInt64(b) << 16 | UInt64(c) << 8 | UInt64(d)
    }

    /// Parses an IPv4 (`192.0.2.1`) or IPv6 (`2001:db8::1`, `::ffff:192.0.2.1`) address; an
    /// IPv6 address may come in brackets (`[::1]`). Nil for anything else (no zone, no port).
    public init?(_ text: String) {
        var text = text
        guard let address = text.withUTF8({ IPAddress(bytes: $0) }) else { return nil }
        self = address
    }

    /// ``init(_:)`` on bytes, with no allocation (the text is copied to the stack for `inet_pton`).
    init?(bytes: UnsafeBufferPointer<UInt8>) {
        var text = bytes
        if text.count >= 2 && text[0] == UInt8(ascii: "[") && text[text.count - 1] == UInt8(ascii: "]") {
            text = UnsafeBufferPointer(rebasing: text[1..<(text.count - 1)])
        }
        guard !text.isEmpty, text.count <= 45 else { return nil }
        let parsed: IPAddress? = withUnsafeTemporaryAllocation(of: CChar.self, capacity: 48) { buffer in
            for i in 0..<text.count {
                // inet_pton stops at a NUL: an embedded one must not cut the text short.
                guard text[i] != 0 else { return nil }
                buffer[i] = CChar(bitPattern: text[i])
            }
            buffer[text.count] = 0
            var v6 = in6_addr()
            var v4 = in_addr()
            if inet_pton(AF_INET, buffer.baseAddress, &v4) == 1 {
                return withUnsafeBytes(of: &v4) { b in IPAddress(ipv4: b[0], b[1], b[2], b[3]) }
            }
            guard inet_pton(AF_INET6, buffer.baseAddress, &v6) == 1 else { return nil }
            return withUnsafeBytes(of: &v6) { raw in
                var high: UInt64 = 0, low: UInt64 = 0
                for i in 0..<8 { high = high << 8 | UInt64(raw[i]) }
                for i in 8..<16 { low = low << 8 | UInt64(raw[i]) }
                return IPAddress(high: high, low: low)
            }
        }
        guard let parsed else { return nil }
        self = parsed
    }

    /// True for an IPv4 address (held mapped).
    public var isIPv4: Bool { high == 0 && low >> 32 == 0xFFFF }

    /// `192.0.2.1` for IPv4, the RFC 5952 text for IPv6.
    public var description: String {
        if isIPv4 {
            return "\(low >> 24 & 0xFF).\(low >> 16 & 0xFF).\(low >> 8 & 0xFF).\(low & 0xFF)"
        }
        var raw = [UInt8](repeating: 0, count: 16)
        for i in 0..<8 { raw[i] = UInt8(truncatingIfNeeded: high >> UInt64(56 - 8 * i)) }
        for i in 0..<8 { raw[8 + i] = UInt8(truncatingIfNeeded: low >> UInt64(56 - 8 * i)) }
        var out = [CChar](repeating: 0, count: 64)
        _ = raw.withUnsafeBytes { inet_ntop(AF_INET6, $0.baseAddress, &out, 64) }
        return String(decoding: out.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// A range of addresses in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`, or one address), as
/// `token-add --allow-from` takes it and a token's `allow_from` claim lists it.
public struct AddressRange: Sendable, Hashable, CustomStringConvertible {
    /// The first address of the range (host bits zero).
    public let base: IPAddress
    /// The prefix length on the 128-bit (mapped) form: an IPv4 `/8` is 104.
    public let prefix: Int

    /// The most ranges a token may carry.
    public static let maximumCount = 32

    /// Parses `ADDRESS[/PREFIX]`; nil when it is not one, or when host bits are set (`10.1.2.3/8`:
    /// a typo more often than not; ``problem(_:)`` says which).
    public init?(_ text: String) {
        var text = text
        guard let range = text.withUTF8({ AddressRange(bytes: $0) }) else { return nil }
        self = range
    }

    /// Parses `ADDRESS[/PREFIX]` and clears the host bits (`10.1.2.3/8` becomes `10.0.0.0/8`),
    /// for callers that show the range they keep (the service's API); nil when it is not a range.
    public init?(clearingHostBits text: String) {
        var text = text
        guard let (address, prefix) = text.withUTF8({ Self.parts($0) }) else { return nil }
        self.init(base: Self.masked(address, prefix), prefix: prefix)
    }

    init?(base: IPAddress, prefix: Int) {
        guard (0...128).contains(prefix), Self.masked(base, prefix) == base else { return nil }
        self.base = base
        self.prefix = prefix
    }

    /// ``init(_:)`` on bytes, with no allocation.
    init?(bytes: UnsafeBufferPointer<UInt8>) {
        guard let (address, prefix) = Self.parts(bytes) else { return nil }
        self.init(base: address, prefix: prefix)
    }

    /// The address and the prefix length on the 128-bit form (an IPv4 `/8` is 104) of
    /// `ADDRESS[/PREFIX]`, host bits as written; nil when it is no such text. No allocation.
    private static func parts(_ bytes: UnsafeBufferPointer<UInt8>) -> (IPAddress, Int)? {
        var slash = -1
        for i in 0..<bytes.count where bytes[i] == UInt8(ascii: "/") { slash = i; break }
        let addressBytes = slash < 0 ? bytes : UnsafeBufferPointer(rebasing: bytes[0..<slash])
        guard let address = IPAddress(bytes: addressBytes) else { return nil }
        let width = address.isIPv4 && !addressBytes.contains(UInt8(ascii: ":")) ? 32 : 128
        var bits = width
        if slash >= 0 {
            let digits = UnsafeBufferPointer(rebasing: bytes[(slash + 1)...])
            guard !digits.isEmpty, digits.count <= 3, digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
                  !(digits.count > 1 && digits[0] == 0x30) else { return nil }
            bits = digits.reduce(0) { $0 * 10 + Int($1 - 0x30) }
            guard bits <= width else { return nil }
        }
        return (address, width == 32 ? bits + 96 : bits)
    }

    /// What is wrong with `text` as a range, or nil when it is one.
    public static func problem(_ text: String) -> String? {
        if AddressRange(text) != nil { return nil }
        guard let address = IPAddress(String(text.prefix { $0 != "/" })) else { return "is not an IPv4 or IPv6 address" }
        guard let written = AddressRange(clearingHostBits: text) else {
            return "has a prefix length that is not 0 to \(address.isIPv4 && !text.contains(":") ? 32 : 128)"
        }
        return "has host bits set: did you mean \(written)?"
    }

    /// True when `address` is in the range.
    @inline(__always)
    public func contains(_ address: IPAddress) -> Bool {
        Self.masked(address, prefix) == base
    }

    @inline(__always)
    static func masked(_ a: IPAddress, _ prefix: Int) -> IPAddress {
        let highMask: UInt64 = prefix >= 64 ? ~0 : (prefix == 0 ? 0 : ~0 << UInt64(64 - prefix))
        let lowMask: UInt64 = prefix <= 64 ? 0 : (prefix >= 128 ? ~0 : ~0 << UInt64(128 - prefix))
        return IPAddress(high: a.high & highMask, low: a.low & lowMask)
    }

    /// `10.0.0.0/8`, `2001:db8::/32`.
    public var description: String {
        if base.isIPv4 && prefix >= 96 { return "\(base)/\(prefix - 96)" }
        return "\(base)/\(prefix)"
    }
}
