import Testing
@testable import RegToken

@Suite("Trimming HTTP's optional whitespace")
struct TrimmingTests {
    @Test("spaces and tabs at both ends go; other whitespace and inner spaces stay", arguments: [
        (" \t a b \t", "a b"), ("", ""), (" \t ", ""), ("x", "x"), ("\u{00A0}x ", "\u{00A0}x"), ("\nx\n", "\nx\n"),
        ("  é  ", "é"), ("a\t", "a"), ("\ta", "a"),
    ])
    func trims(_ text: String, _ expected: String) {
        #expect(text.trimmingSpacesAndTabs == expected)
        #expect(text[...].trimmingSpacesAndTabs == expected)
    }
}
