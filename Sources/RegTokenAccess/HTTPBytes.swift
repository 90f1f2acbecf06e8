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
