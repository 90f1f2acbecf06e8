/// The one pair of trimming helpers every module of regtoken uses (package access: not API).
extension StringProtocol {
    /// Without leading and trailing spaces and tabs: HTTP's optional whitespace (RFC 9110 §5.6.3),
    /// for header values and their list items.
    package var trimmingSpacesAndTabs: String {
        var s = self[...]
        while let c = s.first, c == " " || c == "\t" { s.removeFirst() }
        while let c = s.last, c == " " || c == "\t" { s.removeLast() }
        return String(s)
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
