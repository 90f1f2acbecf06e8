/// The one pair of trimming helpers every module of regtoken uses (package access: not API).
extension StringProtocol {
    /// Without leading and trailing spaces and tabs: HTTP's optional whitespace (RFC 9110 §5.6.3),
    /// for header values and their list items.
    package var trimmingSpacesAndTabs: String {
        // On the UTF-8 bytes (the proxy trims header values per request): a space or tab is one
        // byte, so the indices found are character boundaries.
        let bytes = utf8
        var first: String.Index? = nil
        var end = bytes.startIndex
        var i = bytes.startIndex
        while i < bytes.endIndex {
            let next = bytes.index(after: i)
            if bytes[i] != 0x20 && bytes[i] != 0x09 {
                if first == nil { first = i }
                end = next
            }
            i = next
        }
        guard let first else { return "" }
        return String(self[first..<end])
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
