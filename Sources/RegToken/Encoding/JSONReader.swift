/// A strict, allocation-free reader of the JSON (RFC 8259) that JWS headers and JWT claims use.
///
/// regtoken's header and claims are flat objects of known members whose values are strings,
/// integers or arrays of strings, so the reader offers exactly those, typed: a member of the wrong
/// type is an error, never a coercion. Everything it accepts is valid JSON: whitespace where the
/// grammar allows it, every escape (`\uXXXX` with surrogate pairs), strictly valid UTF-8 (no
/// overlong forms, no surrogates, nothing above U+10FFFF), no control characters in strings.
///
/// Why by hand: no JSON library parses into fixed inline storage without allocating, and the
/// verifier's fast path allocates nothing.
struct JSONReader {
    let base: UnsafePointer<UInt8>
    let end: Int
    var index: Int

    init(_ buffer: UnsafeBufferPointer<UInt8>) {
        // An empty buffer may have a nil base; point at a harmless static byte instead.
        base = buffer.baseAddress ?? JSONReader.emptyBase
        end = buffer.count
        index = 0
    }

    nonisolated(unsafe) static let emptyBase: UnsafePointer<UInt8> = {
        let p = UnsafeMutablePointer<UInt8>.allocate(capacity: 1)
        p.initialize(to: 0)
        return UnsafePointer(p)
    }()

    var isAtEnd: Bool { index >= end }

    var peek: UInt8 { index < end ? base[index] : 0 }

    mutating func skipWhitespace() {
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

    /// Reads a member name and its `:`; the name is decoded into `name`. A name longer than
    /// a short string is returned truncated-and-flagged as `nil` (no known member is that long).
    mutating func memberName(into name: inout ShortString) throws(TokenError) -> Bool {
        skipWhitespace()
        guard peek == UInt8(ascii: "\"") else { throw .malformed("expected a member name") }
        let fits = try string(into: &name, allowControl: true)
        try expect(UInt8(ascii: ":"), "expected ':' after a member name")
        skipWhitespace()
        return fits
    }

    /// After a member's value: `,` (returns false: more members) or `}` (returns true: done).
    mutating func endOfMember() throws(TokenError) -> Bool {
        skipWhitespace()
        guard index < end else { throw .malformed("unterminated object") }
        let c = base[index]
        index += 1
        if c == UInt8(ascii: ",") { return false }
        if c == UInt8(ascii: "}") { return true }
        throw .malformed("expected ',' or '}' in an object")
    }

    /// The kind of the next value, without consuming it.
    var nextIsString: Bool { peek == UInt8(ascii: "\"") }

    var nextIsArray: Bool { peek == UInt8(ascii: "[") }

    /// Reads a string value into `out`. Returns `false` when the decoded value is longer than a
    /// short string (the rest is still validated and consumed).
    /// - Parameter allowControl: when false, a decoded control character (U+0000–U+001F, U+007F)
    ///   is refused even when escaped: claim values never need one and logs must not get one.
    mutating func string(into out: inout ShortString, allowControl: Bool) throws(TokenError) -> Bool {
        guard peek == UInt8(ascii: "\"") else { throw .malformed("a claim has the wrong type (expected a string)") }
        index += 1
        out = ShortString()
        var fits = true
        while true {
            // Fast path: a run of plain printable ASCII (no quote, backslash or control) is
            // copied at once.
            var run = index
            while run < end {
                let b = base[run]
                if b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") || b < 0x20 || b >= 0x7F { break }
                run += 1
            }
            if run > index {
                if fits { fits = out.append(base + index, count: run - index) }
                index = run
            }
            guard index < end else { throw .malformed("unterminated string") }
            let c = base[index]
            if c == UInt8(ascii: "\"") {
                index += 1
                return fits
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
                    if fits { fits = Self.appendScalar(scalar, to: &out) }
                    continue
                default:
                    throw .malformed("invalid escape in a string")
                }
                if !allowControl && decoded < 0x20 { throw .malformed("control character in a claim value") }
                if fits { fits = out.append(decoded) }
                continue
            }
            if c < 0x80 {
                if !allowControl && c == 0x7F { throw .malformed("control character in a claim value") }
                index += 1
                if fits { fits = out.append(c) }
                continue
            }
            let n = try utf8Sequence()
            if fits {
                if out.count + n > ShortString.capacity {
                    fits = false
                } else {
                    for k in 0..<n { out.append(base[index + k]) }
                }
            }
            index += n
        }
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

    static func appendScalar(_ s: UInt32, to out: inout ShortString) -> Bool {
        if s < 0x80 { return out.append(UInt8(s)) }
        let need = s < 0x800 ? 2 : (s < 0x10000 ? 3 : 4)
        guard out.count + need <= ShortString.capacity else { return false }
        switch need {
        case 2:
            out.append(UInt8(0xC0 | (s >> 6)))
            out.append(UInt8(0x80 | (s & 0x3F)))
        case 3:
            out.append(UInt8(0xE0 | (s >> 12)))
            out.append(UInt8(0x80 | ((s >> 6) & 0x3F)))
            out.append(UInt8(0x80 | (s & 0x3F)))
        default:
            out.append(UInt8(0xF0 | (s >> 18)))
            out.append(UInt8(0x80 | ((s >> 12) & 0x3F)))
            out.append(UInt8(0x80 | ((s >> 6) & 0x3F)))
            out.append(UInt8(0x80 | (s & 0x3F)))
        }
        return true
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
