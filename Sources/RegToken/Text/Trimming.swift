/// The one pair of trimming helpers every module of regtoken uses (package access: not API).
extension StringProtocol {
    /// Without leading and trailing spaces and tabs: HTTP's optional whitespace (RFC 9110 §5.6.3),
    /// for header values and their list items.
    package var trimmingSpacesAndTabs: String {
        // On the contiguous UTF-8 bytes, looking only at the ends (the proxy trims a token-long
        // Authorization value per request): a space or tab is one byte, so what is left is
        // whole characters.
        let trimmed = utf8.withContiguousStorageIfAvailable { bytes -> String in
            var start = 0
            var end = bytes.count
            while start < end, bytes[start] == 0x20 || bytes[start] == 0x09 { start += 1 }
            while end > start, bytes[end - 1] == 0x20 || bytes[end - 1] == 0x09 { end -= 1 }
            return String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self)
        }
        return trimmed ?? String(self).trimmingSpacesAndTabs
    }

    /// Without leading and trailing whitespace of any kind (spaces, tabs, newlines): for what
    /// people type or paste, and one-line files.
    package var trimmingWhitespace: String {
        var s = self[...]
        while let c = s.first, c.isWhitespace { s.removeFirst() }
        while let c = s.last, c.isWhitespace { s.removeLast() }
        return String(s)
    }
}
