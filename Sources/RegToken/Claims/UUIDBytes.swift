/// A UUID as 16 bytes, parsed and formatted without Foundation or allocation.
///
/// Token ids are random (version 4) UUIDs written in the canonical lowercase 8-4-4-4-12 form.
public struct UUIDBytes: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// Bytes 0..<8, big-endian.
    public let high: UInt64
    /// Bytes 8..<16, big-endian.
    public let low: UInt64

    /// The UUID made of `high` then `low`.
    /// - Parameters:
    ///   - high: bytes 0..<8, big-endian.
    ///   - low: bytes 8..<16, big-endian.
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

    /// Parses the 36-character 8-4-4-4-12 form from UTF-8 bytes: the four dashes, then the 32
    /// hex digits eight at a time (``hexWord(_:)``). Every token's `jti` goes through here, and a
    /// loop with a branch per character cost a tenth of a verification.
    init?(utf8 p: UnsafeRawBufferPointer) {
        guard p.count == 36, let base = p.baseAddress else { return nil }
        guard p[8] == UInt8(ascii: "-"), p[13] == UInt8(ascii: "-"), p[18] == UInt8(ascii: "-"), p[23] == UInt8(ascii: "-") else {
            return nil
        }
        @inline(__always) func load8(_ offset: Int) -> UInt64 { UInt64(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt64.self)) }
        @inline(__always) func load4(_ offset: Int) -> UInt64 {
            UInt64(UInt32(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
        }
        // Digits 0-7 | 9-12 and 14-17 | 19-22 and 24-27 | 28-35.
        guard let a = Self.hexWord(load8(0)), let b = Self.hexWord(load4(9) | load4(14) << 32),
              let c = Self.hexWord(load4(19) | load4(24) << 32), let d = Self.hexWord(load8(28)) else { return nil }
        self.init(high: UInt64(a) << 32 | UInt64(b), low: UInt64(c) << 32 | UInt64(d))
    }

    /// The value of eight ASCII hex digits (either case), the first in the lowest byte of `v`, or
    /// nil when any byte is not one.
    ///
    /// Eight bytes at once: for bytes below 0x80 (checked first), adding `0x80 - k` sets a byte's
    /// high bit exactly when it is at least `k`, without a carry into the next byte, which gives
    /// the ranges `0-9` and (case folded with `| 0x20`, which only `A-F` and `a-f` fold into
    /// `a-f`) `a-f`. A digit's value is its low nibble, a letter's its low nibble plus 9.
    @inline(__always)
    static func hexWord(_ v: UInt64) -> UInt32? {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let high = ones &* 0x80
        guard v & high == 0 else { return nil }
        let atLeast0 = v &+ (ones &* (0x80 - 0x30))
        let above9 = v &+ (ones &* (0x80 - 0x3A))
        let folded = v | (ones &* 0x20)
        let atLeastA = folded &+ (ones &* (0x80 - 0x61))
        let aboveF = folded &+ (ones &* (0x80 - 0x67))
        let digit = atLeast0 & ~above9 & high      // 0-9
        let letter = atLeastA & ~aboveF & high    // A-F, a-f
        guard digit | letter == high else { return nil }
        // Nibbles, one per byte: low nibble, plus 9 for letters.
        let nibbles = (v & (ones &* 0x0F)) &+ ((letter &>> 7) &* 9)
        // Pack: byte 2k becomes nibble 2k << 4 | nibble 2k+1, then bytes 0, 2, 4, 6 are gathered
        // (first digit most significant).
        let pairs = ((nibbles &<< 4) | (nibbles &>> 8)) & 0x00FF_00FF_00FF_00FF
        let quads = (pairs | (pairs &>> 8)) & 0x0000_FFFF_0000_FFFF
        let packed = UInt32(truncatingIfNeeded: quads | (quads &>> 16))
        return packed.byteSwapped
    }

    /// The canonical lowercase 8-4-4-4-12 form.
    public var description: String {
        // Written straight into the string's storage: no intermediate arrays.
        String(unsafeUninitializedCapacity: 36) { out in
            write(into: out)
            return 36
        }
    }

    /// Writes ``description``'s 36 bytes at the start of `out` (at least 36 bytes long): the
    /// access log appends a token id per request to its line without a `String` made for it.
    package func write(into out: UnsafeMutableBufferPointer<UInt8>) {
        precondition(out.count >= 36)
        var j = 0
        for i in 0..<32 {
            if i == 8 || i == 12 || i == 16 || i == 20 {
                out[j] = UInt8(ascii: "-")
                j += 1
            }
            let word = i < 16 ? high : low
            let nibble = UInt8(truncatingIfNeeded: word >> UInt64(60 - 4 * (i % 16))) & 0xF
            out[j] = nibble < 10 ? 0x30 + nibble : 0x61 + nibble - 10
            j += 1
        }
    }

    /// Byte order, which is also the order of the canonical lowercase strings.
    public static func < (a: UUIDBytes, b: UUIDBytes) -> Bool {
        a.high != b.high ? a.high < b.high : a.low < b.low
    }
}
