/// A strict, allocation-free reader of the JSON (RFC 8259) that JWS headers and JWT claims use.
///
/// regtoken's header and claims are flat objects of known members whose values are strings,
/// integers or arrays of strings, so the reader offers exactly those, typed: a member of the wrong
/// type is an error, never a coercion. Everything it accepts is valid JSON: whitespace where the
/// grammar allows it, every escape (`\uXXXX` with surrogate pairs), strictly valid UTF-8 (no
/// overlong forms, no surrogates, nothing above U+10FFFF), no control characters in strings.
///
/// Strings are decoded in place: a decoded string is never longer than its JSON text (an escape
/// of 2, 6 or 12 bytes decodes to 1 to 4 bytes), so the decoded bytes are written over the text
/// already read and handed out as a slice of the buffer. Reading a member name or a value copies
/// nothing in the common case (no escape), and callers compare slices where they need a value
/// only for a comparison (region, account, namespaces).
///
/// Why by hand: no JSON library parses into caller-owned storage without allocating, and the
/// verifier's fast path allocates nothing.
struct JSONReader {
    /// The JSON text; strings already read are overwritten with their decoded bytes.
    let base: UnsafeMutablePointer<UInt8>
    let end: Int
    var index: Int

    /// A reader of `buffer`, which it overwrites as it decodes strings in place.
    init(_ buffer: UnsafeMutableBufferPointer<UInt8>) {
        // An empty buffer may have a nil base; point at a harmless static byte instead (never
        // written: writing needs a string, and a string needs at least one byte).
        base = buffer.baseAddress ?? JSONReader.emptyBase
        end = buffer.count
        index = 0
    }

    /// A reader of the `end` bytes at `base` (not empty), from the start.
    init(base: UnsafeMutablePointer<UInt8>, end: Int) {
        self.base = base
        self.end = end
        index = 0
    }

    nonisolated(unsafe) static let emptyBase: UnsafeMutablePointer<UInt8> = {
        let p = UnsafeMutablePointer<UInt8>.allocate(capacity: 1)
        p.initialize(to: 0)
        return p
    }()

    var isAtEnd: Bool { index >= end }

    var peek: UInt8 { index < end ? base[index] : 0 }

    /// The eight bytes at `index` as a little-endian word (the byte at `index` lowest), or nil
    /// when fewer than eight remain. Not consumed.
    @inline(__always)
    func peekWord() -> UInt64? {
        guard index &+ 8 <= end else { return nil }
        return UInt64(littleEndian: UnsafeRawPointer(base + index).loadUnaligned(as: UInt64.self))
    }

    /// Skips JSON whitespace. Inlined test first: compact JSON (what regtoken writes) has none,
    /// and no byte above 0x20 is whitespace.
    @inline(__always)
    mutating func skipWhitespace() {
        if index < end && base[index] > 0x20 { return }
        skipWhitespaceLoop()
    }

    @inline(never)
    mutating func skipWhitespaceLoop() {
        while index < end {
            let c = base[index]
            guard c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D else { return }
            index += 1
        }
    }

    /// Consumes `byte` (after optional whitespace) or throws.
    mutating func expect(_ byte: UInt8, _ detail: StaticString) throws(TokenError) {
        skipWhitespace()
        guard index < end, base[index] == byte else { throw .malformed(detail) }
        index += 1
    }

    /// After the top-level value: only whitespace may follow.
    mutating func expectEnd() throws(TokenError) {
        skipWhitespace()
        guard index == end else { throw .malformed("unexpected bytes after the JSON object") }
    }

    /// Starts an object: `{`. Returns true when it is empty (`{}` consumed).
    mutating func beginObject(_ detail: StaticString) throws(TokenError) -> Bool {
        try expect(UInt8(ascii: "{"), detail)
        skipWhitespace()
        if peek == UInt8(ascii: "}") {
            index += 1
            return true
        }
        return false
    }

    /// Reads a member name and its `:`; returns the decoded name (a slice of the buffer).
    @inline(__always)
    mutating func memberName() throws(TokenError) -> UnsafeBufferPointer<UInt8> {
        skipWhitespace()
        guard peek == UInt8(ascii: "\"") else { throw .malformed("expected a member name") }
        let name = try string(allowControl: true)
        // The common case, `"name":` without whitespace, needs no call.
        if index < end && base[index] == UInt8(ascii: ":") {
            index += 1
        } else {
            try expect(UInt8(ascii: ":"), "expected ':' after a member name")
        }
        skipWhitespace()
        return name
    }

    /// After a member's value: `,` (returns false: more members) or `}` (returns true: done).
    @inline(__always)
    mutating func endOfMember() throws(TokenError) -> Bool {
        skipWhitespace()
        guard index < end else { throw .malformed("unterminated object") }
        let c = base[index]
        index += 1
        if c == UInt8(ascii: ",") { return false }
        if c == UInt8(ascii: "}") { return true }
        throw .malformed("expected ',' or '}' in an object")
    }

    /// True when `bytes` (a decoded name or value) are the ASCII `word`.
    @inline(__always)
    static func equals(_ bytes: UnsafeBufferPointer<UInt8>, _ word: StaticString) -> Bool {
        guard bytes.count == word.utf8CodeUnitCount else { return false }
        let w = word.utf8Start
        for k in 0..<bytes.count where bytes[k] != w[k] { return false }
        return true
    }

    /// The kind of the next value, without consuming it.
    var nextIsString: Bool { peek == UInt8(ascii: "\"") }

    var nextIsArray: Bool { peek == UInt8(ascii: "[") }

    /// Reads a string value and returns its decoded bytes: a slice of the buffer, written over
    /// the string's own text (see the type's comment), valid as long as the buffer is.
    /// - Parameter allowControl: when false, a decoded control character (U+0000–U+001F, U+007F)
    ///   is refused even when escaped: claim values never need one and logs must not get one.
    ///
    /// Inlined for the common case, a string of plain printable ASCII (every member name and
    /// every value regtoken issues): one scan to the closing quote. Anything else continues in
    /// ``decodeString(start:from:allowControl:)``.
    @inline(__always)
    mutating func string(allowControl: Bool) throws(TokenError) -> UnsafeBufferPointer<UInt8> {
        guard peek == UInt8(ascii: "\"") else { throw .malformed("a claim has the wrong type (expected a string)") }
        let start = index + 1
        let run = plainRunEnd(from: start)
        if run < end && base[run] == UInt8(ascii: "\"") {
            index = run + 1
            return UnsafeBufferPointer(start: base + start, count: run - start)
        }
        return try decodeString(start: start, from: run, allowControl: allowControl)
    }

    /// The rest of ``string(allowControl:)`` for a string that started at `start` and whose
    /// plain run ends at `run` with something other than the closing quote.
    @inline(never)
    mutating func decodeString(start: Int, from run: Int, allowControl: Bool) throws(TokenError) -> UnsafeBufferPointer<UInt8> {
        index = run
        // Where the next decoded byte goes: never past `index`, since nothing decodes longer
        // than its text. Equal to `index` until the first escape, so plain strings move nothing.
        var out = index
        while true {
            // A run of plain printable ASCII (no quote, backslash or control) is taken at once.
            let run = plainRunEnd(from: index)
            if run > index {
                if out != index { UnsafeMutableRawPointer(base + out).copyMemory(from: base + index, byteCount: run - index) }
                out += run - index
                index = run
            }
            guard index < end else { throw .malformed("unterminated string") }
            let c = base[index]
            if c == UInt8(ascii: "\"") {
                index += 1
                return UnsafeBufferPointer(start: base + start, count: out - start)
            }
            if c < 0x20 { throw .malformed("control character in a string") }
            if c == UInt8(ascii: "\\") {
                index += 1
                guard index < end else { throw .malformed("unterminated escape") }
                let e = base[index]
                index += 1
                var decoded: UInt8 = 0
                switch e {
                case UInt8(ascii: "\""): decoded = e
                case UInt8(ascii: "\\"): decoded = e
                case UInt8(ascii: "/"): decoded = e
                case UInt8(ascii: "b"): decoded = 0x08
                case UInt8(ascii: "f"): decoded = 0x0C
                case UInt8(ascii: "n"): decoded = 0x0A
                case UInt8(ascii: "r"): decoded = 0x0D
                case UInt8(ascii: "t"): decoded = 0x09
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if scalar >= 0xD800 && scalar <= 0xDBFF {
                        guard index + 1 < end, base[index] == UInt8(ascii: "\\"), base[index + 1] == UInt8(ascii: "u") else {
                            throw .malformed("unpaired surrogate escape")
                        }
                        index += 2
                        let low = try hex4()
                        guard low >= 0xDC00 && low <= 0xDFFF else { throw .malformed("unpaired surrogate escape") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if scalar >= 0xDC00 && scalar <= 0xDFFF {
                        throw .malformed("unpaired surrogate escape")
                    }
                    if !allowControl && (scalar < 0x20 || scalar == 0x7F) {
                        throw .malformed("control character in a claim value")
                    }
                    // 6 (or 12) bytes of text become at most 3 (or 4): `out` stays behind `index`.
                    out += Self.writeScalar(scalar, to: base + out)
                    continue
                default:
                    throw .malformed("invalid escape in a string")
                }
                if !allowControl && decoded < 0x20 { throw .malformed("control character in a claim value") }
                base[out] = decoded
                out += 1
                continue
            }
            if c < 0x80 {
                // DEL, the only byte below 0x80 a plain run stops at besides those above.
                if !allowControl && c == 0x7F { throw .malformed("control character in a claim value") }
                base[out] = c
                out += 1
                index += 1
                continue
            }
            let n = try utf8Sequence()
            if out != index { UnsafeMutableRawPointer(base + out).copyMemory(from: base + index, byteCount: n) }
            out += n
            index += n
        }
    }

    /// The end of the run of plain string bytes (printable ASCII other than `"` and `\`) that
    /// starts at `start`: the index of the first byte that needs a look, or `end`.
    ///
    /// Eight bytes at a time while eight remain (SWAR: each test sets the high bit of the bytes it
    /// flags; a borrow or carry can only flag bytes after a truly flagged one, so the lowest flag
    /// is exact), then byte by byte.
    @inline(__always)
    func plainRunEnd(from start: Int) -> Int {
        var i = start
        while i &+ 8 <= end {
            let v = UInt64(littleEndian: UnsafeRawPointer(base + i).loadUnaligned(as: UInt64.self))
            let flags = Self.nonPlainBytes(v)
            if flags != 0 { return i &+ (flags.trailingZeroBitCount &>> 3) }
            i &+= 8
        }
        while i < end {
            let b = base[i]
            if b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") || b < 0x20 || b >= 0x7F { return i }
            i &+= 1
        }
        return i
    }

    /// The high bit of each byte of `v` (little-endian) that is `"`, `\`, below 0x20 or at least
    /// 0x7F; exact for the lowest such byte (see ``plainRunEnd(from:)``).
    @inline(__always)
    static func nonPlainBytes(_ v: UInt64) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let quote = v ^ (ones &* 0x22)
        let backslash = v ^ (ones &* 0x5C)
        let isQuote = (quote &- ones) & ~quote            // byte == 0x22
        let isBackslash = (backslash &- ones) & ~backslash  // byte == 0x5C
        let isControl = (v &- (ones &* 0x20)) & ~v      // byte < 0x20
        let isHigh = (v &+ ones) | v                      // byte >= 0x7F
        return (isQuote | isBackslash | isControl | isHigh) & (ones &* 0x80)
    }

    /// Validates the multi-byte UTF-8 sequence at `index`; returns its length (not consumed).
    func utf8Sequence() throws(TokenError) -> Int {
        let c0 = base[index]
        @inline(__always) func cont(_ k: Int, _ lo: UInt8 = 0x80, _ hi: UInt8 = 0xBF) -> Bool {
            index + k < end && base[index + k] >= lo && base[index + k] <= hi
        }
        switch c0 {
        case 0xC2...0xDF:
            if cont(1) { return 2 }
        case 0xE0:
            if cont(1, 0xA0, 0xBF) && cont(2) { return 3 }
        case 0xE1...0xEC, 0xEE...0xEF:
            if cont(1) && cont(2) { return 3 }
        case 0xED:
            if cont(1, 0x80, 0x9F) && cont(2) { return 3 }
        case 0xF0:
            if cont(1, 0x90, 0xBF) && cont(2) && cont(3) { return 4 }
        case 0xF1...0xF3:
            if cont(1) && cont(2) && cont(3) { return 4 }
        case 0xF4:
            if cont(1, 0x80, 0x8F) && cont(2) && cont(3) { return 4 }
        default:
            break
        }
        throw .malformed("invalid UTF-8")
    }

    mutating func hex4() throws(TokenError) -> UInt32 {
        guard index + 4 <= end else { throw .malformed("truncated \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = base[index]
            let d: UInt32
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = UInt32(c &- 48)
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = UInt32(c &- 87)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = UInt32(c &- 55)
            default: throw .malformed("invalid \\u escape")
            }
            v = v << 4 | d
            index += 1
        }
        return v
    }

    /// Writes `s` as UTF-8 at `p`; returns the number of bytes (1 to 4).
    @inline(__always)
    static func writeScalar(_ s: UInt32, to p: UnsafeMutablePointer<UInt8>) -> Int {
        if s < 0x80 {
            p[0] = UInt8(s)
            return 1
        }
        if s < 0x800 {
            p[0] = UInt8(0xC0 | (s >> 6))
            p[1] = UInt8(0x80 | (s & 0x3F))
            return 2
        }
        if s < 0x10000 {
            p[0] = UInt8(0xE0 | (s >> 12))
            p[1] = UInt8(0x80 | ((s >> 6) & 0x3F))
            p[2] = UInt8(0x80 | (s & 0x3F))
            return 3
        }
        p[0] = UInt8(0xF0 | (s >> 18))
        p[1] = UInt8(0x80 | ((s >> 12) & 0x3F))
        p[2] = UInt8(0x80 | ((s >> 6) & 0x3F))
        p[3] = UInt8(0x80 | (s & 0x3F))
        return 4
    }

    /// How many of the eight bytes of `v` (the first in the lowest byte) are ASCII digits before
    /// the first byte that is not one: 0 to 8.
    ///
    /// For a byte below 0x80, adding `0x80 - k` sets its high bit exactly when it is at least `k`,
    /// without a carry into the next byte; a byte of 0x80 or more is flagged by its own high bit,
    /// and its carry can only disturb later bytes, so the lowest flag is exact (as in
    /// ``nonPlainBytes(_:)``).
    @inline(__always)
    static func leadingDigits(_ v: UInt64) -> Int {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let high = ones &* 0x80
        let atLeast0 = v &+ (ones &* (0x80 - 0x30))
        let above9 = v &+ (ones &* (0x80 - 0x3A))
        let notDigit = (~atLeast0 | above9 | v) & high
        return notDigit.trailingZeroBitCount &>> 3
    }

    /// The value of the first `count` (1 to 8) bytes of `v`, which are ASCII digits, the first
    /// in the lowest byte and most significant. The digits are moved to the top of the word
    /// (zeros, that is leading zero digits, below them), then pairs, quads and the two halves
    /// are combined with one multiply each.
    @inline(__always)
    static func value(ofDigits v: UInt64, count: Int) -> UInt64 {
        var d = (v & 0x0F0F_0F0F_0F0F_0F0F) &<< UInt64(8 &* (8 &- count))
        d = ((d &* 10) &+ (d &>> 8)) & 0x00FF_00FF_00FF_00FF
        d = ((d &* 100) &+ (d &>> 16)) & 0x0000_FFFF_0000_FFFF
        return ((d &* 10_000) &+ (d &>> 32)) & 0xFFFF_FFFF
    }

    /// 10 to the power `n`, for `n` from 0 to 8.
    @inline(__always)
    static func powerOf10(_ n: Int) -> Int64 {
        switch n {
        case 0: return 1
        case 1: return 10
        case 2: return 100
        case 3: return 1_000
        case 4: return 10_000
        case 5: return 100_000
        case 6: return 1_000_000
        case 7: return 10_000_000
        default: return 100_000_000
        }
    }

    /// Reads a NumericDate (RFC 7519 §2) as regtoken accepts it: a non-negative JSON integer no
    /// larger than 2^53 − 1. Fractions, exponents, negative values, strings and `null` are refused.
    mutating func numericDate() throws(TokenError) -> Int64 {
        guard index < end else { throw .malformed("a time claim is missing its value") }
        let first = base[index]
        if first == UInt8(ascii: "-") { throw .malformed("a time claim is negative") }
        guard first >= UInt8(ascii: "0") && first <= UInt8(ascii: "9") else {
            throw .malformed("a time claim has the wrong type (expected an integer)")
        }
        var value: Int64 = 0
        let start = index
        // Eight bytes at a time while eight remain: the run of digits they start with, converted
        // at once (a ten-digit time took ten dependent multiply-adds and as many branches).
        while let word = peekWord() {
            let n = Self.leadingDigits(word)
            if n == 0 { break }
            if index &- start &+ n > 16 { throw .malformed("a time claim is out of range") }
            value = value &* Self.powerOf10(n) &+ Int64(Self.value(ofDigits: word, count: n))
            index &+= n
            if n < 8 { break }
        }
        // The last bytes (fewer than eight left), one at a time.
        while index < end, base[index] >= UInt8(ascii: "0"), base[index] <= UInt8(ascii: "9") {
            if index - start >= 16 { throw .malformed("a time claim is out of range") }
            value = value &* 10 &+ Int64(base[index] &- 48)
            index += 1
        }
        if first == UInt8(ascii: "0") && index - start > 1 { throw .malformed("a number has a leading zero") }
        if index < end {
            let c = base[index]
            if c == UInt8(ascii: ".") || c == UInt8(ascii: "e") || c == UInt8(ascii: "E") {
                throw .malformed("a time claim is not an integer")
            }
        }
        guard value <= 9_007_199_254_740_991 else { throw .malformed("a time claim is out of range") }
        return value
    }
}
