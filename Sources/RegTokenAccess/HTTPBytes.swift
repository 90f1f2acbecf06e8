/// The byte classes of HTTP/1.1 that the forwarding rules (``RequestHead``) and the proxy's
/// byte-level readers share, so that both read a header by the same rule.
///
/// Not API (`@_spi(HTTPBytes)`). Public and `@inlinable` rather than `package`: the readers call
/// these once a byte, and an `@inlinable package` function was not inlined into another module
/// (the request head reader ran 1.5× slower, `Benchmarks` target `RequestHead`).
@_spi(HTTPBytes) public enum HTTPBytes {
    /// Field text (RFC 9110 §5.5): tab, space, visible ASCII and bytes from 0x80 (UTF-8 or
    /// obs-text). Never CR, LF, NUL, another control byte or DEL.
    @inlinable
    public static func isFieldText(_ c: UInt8) -> Bool {
        c == 0x09 || (c >= 0x20 && c != 0x7F)
    }

    /// Where the field text (``isFieldText(_:)``) that starts at `start` ends: the index of the
    /// first other byte (CR, LF, another control byte or DEL), or `b.count`. Eight bytes at a
    /// time while none of them is below 0x20 or DEL (a word-wide test, exact for "any": the
    /// borrow that can blur which byte it flags never invents or hides one); a word it flags is
    /// stepped into a byte at a time (a tab is field text and below 0x20), and the words start
    /// again after the byte. Headers are mostly field text (a token in `Authorization` is
    /// hundreds of bytes): this is most of reading and checking them (3.1× faster than byte by
    /// byte on a docker client's head, BENCHMARKS.md).
    @inlinable
    public static func endOfFieldText(_ b: UnsafeRawBufferPointer, from start: Int) -> Int {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        var i = start
        while true {
            while i + 8 <= b.count {
                let x = b.loadUnaligned(fromByteOffset: i, as: UInt64.self)
                let below20 = (x &- ones &* 0x20) & ~x & highs
                let y = x ^ (ones &* 0x7F)
                let del = (y &- ones) & ~y & highs
                if below20 | del != 0 { break }
                i += 8
            }
            guard i < b.count, isFieldText(b[i]) else { return i }
            i += 1
        }
    }

    /// Whether `a` and `b` hold the same bytes, in a time that depends on their lengths only:
    /// every byte is read, the differences are ORed together and looked at once at the end (the
    /// loop has no exit at the first difference, as `memcmp` has, and no branch on the bytes),
    /// so that how long a comparison takes tells nothing about where a secret differs. For
    /// header values, which may be credentials: a connection's request heads are compared with
    /// the one before (the credentials memo, and the proxy's codec, which keeps the strings of
    /// repeated fields). A plain loop, which the compiler turns into vector operations: 14 ns on
    /// a 400-byte value, where OpenSSL's `CRYPTO_memcmp`, a byte at a time, takes several times
    /// that (BENCHMARKS.md, "Tenth round").
    @inlinable
    public static func sameBytes(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for i in 0..<a.count { difference |= a[i] ^ b[i] }
        return difference == 0
    }

    /// RFC 9110 §5.6.2 `tchar`: what a method, a field name or a chunk extension is made of.
    @inlinable
    public static func isTokenCharacter(_ c: UInt8) -> Bool {
        switch c {
        case 0x30...0x39, 0x41...0x5A, 0x61...0x7A,
             UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"),
             UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
             UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            true
        default:
            false
        }
    }

    /// A hexadecimal digit's value (either case), nil for any other byte.
    @inlinable
    public static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: c - 0x30
        case 0x41...0x46: c - 0x41 + 10
        case 0x61...0x66: c - 0x61 + 10
        default: nil
        }
    }

    /// Whether `bytes` spell `lower` (lower case) in any letter case.
    @inlinable
    public static func equals(_ bytes: UnsafeRawBufferPointer, lowercase lower: StaticString) -> Bool {
        guard bytes.count == lower.utf8CodeUnitCount else { return false }
        let l = lower.utf8Start
        for k in 0..<bytes.count {
            let c = bytes[k]
            if (c >= 0x41 && c <= 0x5A ? c | 0x20 : c) != l[k] { return false }
        }
        return true
    }

    /// Whether `a` and `b` are the same bytes but for the letter case of ASCII letters.
    @inlinable
    public static func equalsIgnoringCase(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        guard a.count == b.count else { return false }
        for k in 0..<a.count {
            let x = a[k], y = b[k]
            if x != y && !(x | 0x20 == y | 0x20 && (x | 0x20) >= 0x61 && (x | 0x20) <= 0x7A) { return false }
        }
        return true
    }
}
