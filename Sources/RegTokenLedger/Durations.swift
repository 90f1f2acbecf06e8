#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import RegToken

/// Parsing and printing of durations and times for the command line.
public enum Durations {
    /// The longest `--expires-in` accepted: 10 years.
    public static let maximumSeconds: Int64 = 3650 * 86_400

    /// Parses `90s`, `15m`, `1h`, `7d`, `2w`, or combinations such as `1h30m`, into seconds.
    /// A bare number is refused (the unit must be explicit).
    /// - Parameter allowZero: whether `0s` is a valid answer (a leeway, an overlap), or refused (a lifetime).
    public static func parse(_ text: String, allowZero: Bool = false) throws(LedgerError) -> Int64 {
        let s = text.trimmingWhitespace
        func bad() -> LedgerError {
            LedgerError(.invalidInput, "invalid duration '\(text.prefix(40))': use a number and a unit, s, m, h, d or w (for example 90s, 1h, 7d)")
        }
        guard !s.isEmpty else { throw bad() }
        var total: Int64 = 0
        var number: Int64? = nil
        for c in s.utf8 {
            if c >= 0x30 && c <= 0x39 {
                let (m, o1) = (number ?? 0).multipliedReportingOverflow(by: 10)
                let (v, o2) = m.addingReportingOverflow(Int64(c - 0x30))
                guard !o1, !o2, v <= maximumSeconds else { throw LedgerError(.invalidInput, "duration '\(text.prefix(40))' is too long: at most 3650d") }
                number = v
                continue
            }
            let unit: Int64
            switch c {
            case UInt8(ascii: "s"): unit = 1
            case UInt8(ascii: "m"): unit = 60
            case UInt8(ascii: "h"): unit = 3600
            case UInt8(ascii: "d"): unit = 86_400
            case UInt8(ascii: "w"): unit = 7 * 86_400
            default: throw bad()
            }
            guard let n = number else { throw bad() }
            total += n * unit
            guard total <= maximumSeconds else { throw LedgerError(.invalidInput, "duration '\(text.prefix(40))' is too long: at most 3650d") }
            number = nil
        }
        guard number == nil else { throw bad() }
        guard total > 0 || allowZero else { throw LedgerError(.invalidInput, "duration '\(text.prefix(40))' must be longer than zero") }
        return total
    }

    /// `2026-11-29T08:18:58Z`.
    public static func utc(_ seconds: Int64) -> String {
        var t = time_t(seconds)
        var tm = tm()
        gmtime_r(&t, &tm)
        func pad(_ v: Int32, _ n: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, n - s.count)) + s
        }
        return "\(pad(tm.tm_year + 1900, 4))-\(pad(tm.tm_mon + 1, 2))-\(pad(tm.tm_mday, 2))T\(pad(tm.tm_hour, 2)):\(pad(tm.tm_min, 2)):\(pad(tm.tm_sec, 2))Z"
    }

    /// The inverse of ``utc(_:)``: `2026-11-29T08:18:58Z` to seconds since 1970, or nil.
    public static func parseUTC(_ text: String) -> Int64? {
        let b = Array(text.utf8)
        guard b.count == 20, b[4] == 0x2D, b[7] == 0x2D, b[10] == 0x54, b[13] == 0x3A, b[16] == 0x3A, b[19] == 0x5A else { return nil }
        func number(_ r: Range<Int>) -> Int32? {
            var v: Int32 = 0
            for c in b[r] {
                guard c >= 0x30 && c <= 0x39 else { return nil }
                v = v * 10 + Int32(c - 0x30)
            }
            return v
        }
        guard let y = number(0..<4), let mo = number(5..<7), let d = number(8..<10), let h = number(11..<13),
              let mi = number(14..<16), let s = number(17..<19), (1...12).contains(mo), (1...31).contains(d), h < 24, mi < 60, s < 61 else { return nil }
        var tm = tm()
        tm.tm_year = y - 1900
        tm.tm_mon = mo - 1
        tm.tm_mday = d
        tm.tm_hour = h
        tm.tm_min = mi
        tm.tm_sec = s
        let t = timegm(&tm)
        return t == -1 && text != "1969-12-31T23:59:59Z" ? nil : Int64(t)
    }

    /// Seconds since 1970, now.
    public static func now() -> Int64 {
        WallClock.now()
    }
}

