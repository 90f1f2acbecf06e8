/// A UUID as 16 bytes, parsed and formatted without Foundation or allocation.
///
/// Token ids are random (version 4) UUIDs written in the canonical lowercase 8-4-4-4-12 form.
public struct UUIDBytes: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// Bytes 0..<8, big-endian.
    public let high: UInt64
    /// Bytes 8..<16, big-endian.
    public let low: UInt64

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// A fresh random (version 4, RFC 9562) UUID.
    public static func random() -> UUIDBytes {
        var g = SystemRandomNumberGenerator()
        let a: UInt64 = g.next()
        let b: UInt64 = g.next()
        let h = (a & ~0xF000) | 0x4000
        let l = (b & ~(0xC000_0000_0000_0000 as UInt64)) | 0x8000_0000_0000_0000
        return UUIDBytes(high: h, low: l)
    }

    /// True for the nil UUID (all zero), which regtoken never issues.
    public var isNil: Bool { high == 0 && low == 0 }

    /// Parses the 36-character 8-4-4-4-12 form (hex digits in either case).
    public init?(_ string: String) {
        var s = string
        guard let v = s.withUTF8({ UUIDBytes(utf8: UnsafeRawBufferPointer($0)) }) else { return nil }
        self = v
    }

    init?(utf8 p: UnsafeRawBufferPointer) {
        guard p.count == 36 else { return nil }
        var h: UInt64 = 0
        var l: UInt64 = 0
        var nibbles = 0
        for i in 0..<36 {
            let c = p[i]
            if i == 8 || i == 13 || i == 18 || i == 23 {
                guard c == UInt8(ascii: "-") else { return nil }
                continue
            }
            let v: UInt8
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): v = c &- 48
            case UInt8(ascii: "a")...UInt8(ascii: "f"): v = c &- 87
            case UInt8(ascii: "A")...UInt8(ascii: "F"): v = c &- 55
            default: return nil
            }
            if nibbles < 16 { h = h << 4 | UInt64(v) } else { l = l << 4 | UInt64(v) }
            nibbles += 1
        }
        self.init(high: h, low: l)
    }

    init?(_ s: ShortString) {
        guard let v = s.withBytes({ UUIDBytes(utf8: $0) }) else { return nil }
        self = v
    }

    /// The canonical lowercase 8-4-4-4-12 form.
    public var description: String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(36)
        for i in 0..<32 {
            if i == 8 || i == 12 || i == 16 || i == 20 { out.append(UInt8(ascii: "-")) }
            let word = i < 16 ? high : low
            let shift = UInt64(60 - 4 * (i % 16))
            out.append(digits[Int((word >> shift) & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    public static func < (a: UUIDBytes, b: UUIDBytes) -> Bool {
        a.high != b.high ? a.high < b.high : a.low < b.low
    }
}
