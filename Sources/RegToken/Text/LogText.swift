/// Text from a client (or echoed from the user) made safe for a log line or a terminal.
package enum LogText {
    /// Control bytes (below 0x20, DEL) and backslashes as `\xHH`; everything else as it is.
    package static func escape(_ text: String) -> String {
        guard needsEscape(text) else { return text }
        var out = ""
        out.reserveCapacity(text.utf8.count + 16)
        for scalar in text.unicodeScalars {
            if scalar.value < 0x20 || scalar.value == 0x7F || scalar == "\\" {
                out += "\\x" + (scalar.value < 0x10 ? "0" : "") + String(scalar.value, radix: 16)
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// Whether `text` has a byte ``escape(_:)`` escapes (on its bytes in place: every access log
    /// line checks three fields).
    static func needsEscape(_ text: String) -> Bool {
        let bytes = text.utf8.span
        for i in bytes.indices {
            let c = bytes[i]
            if c < 0x20 || c == 0x7F || c == UInt8(ascii: "\\") { return true }
        }
        return false
    }
}
