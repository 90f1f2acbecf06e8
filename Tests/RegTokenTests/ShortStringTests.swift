import RegToken
import Testing

@Suite("ShortString: inline claim strings")
struct ShortStringTests {
    @Test("a literal of up to 64 bytes is kept whole; text past that is refused, never cut short")
    func capacity() {
        let full: ShortString = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abdéf"
        #expect(full.count == 64 && full.string.hasSuffix("déf"))
        #expect(ShortString(String(repeating: "a", count: 64))?.count == 64)
        #expect(ShortString(String(repeating: "a", count: 65)) == nil)
        #expect(ShortString("é" + String(repeating: "a", count: 63)) == nil)
    }

    @Test("a literal longer than 64 bytes traps (a programming error) instead of being cut short")
    func longLiteralTraps() async {
        await #expect(processExitsWith: .failure) {
            _ = ShortString(stringLiteral: String(repeating: "a", count: 65))
        }
    }
}
