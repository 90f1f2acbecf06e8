#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Parsing and printing of durations and times for the command line.
public enum Durations {
    /// The longest `--expires-in` accepted: 10 years.
    public static let maximumSeconds: Int64 = 3650 * 86_400

    /// Parses `90s`, `15m`, `1h`, `7d`, `2w`, or combinations such as `1h30m`, into seconds.
    /// A bare number is refused (the unit must be explicit).
    public static func parse(_ text: String) throws(LedgerError) -> Int64 {
        let s = text.trimmingCharacters
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
        guard total > 0 else { throw LedgerError(.invalidInput, "duration '\(text.prefix(40))' must be longer than zero") }
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

    /// Seconds since 1970, now.
    public static func now() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec)
    }
}

extension String {
    /// Without leading and trailing whitespace (spaces, tabs, newlines).
    public var trimmingCharacters: String {
        var s = Substring(self)
        while let c = s.first, c.isWhitespace { s.removeFirst() }
        while let c = s.last, c.isWhitespace { s.removeLast() }
        return String(s)
    }
}
