import RegToken
import RegTokenAccess
import Testing

/// Which client a token limited to addresses is checked against, behind reverse proxies or not.
@Suite("The client address behind trusted proxies")
struct ClientAddressTests {
    static let trusted = [AddressRange("10.0.0.0/8")!, AddressRange("fd00::/8")!]

    func resolve(_ peer: String?, _ xff: [String], trusted: [AddressRange] = trusted) -> String? {
        ClientAddress.resolve(peer: peer.flatMap(IPAddress.init), forwardedFor: xff, trusted: trusted)?.description
    }

    @Test("an untrusted peer is the client, whatever X-Forwarded-For says")
    func untrusted() {
        #expect(resolve("203.0.113.5", ["10.1.1.1"]) == "203.0.113.5")
        #expect(resolve("203.0.113.5", ["10.1.1.1"], trusted: []) == "203.0.113.5")
        #expect(resolve("::ffff:203.0.113.5", []) == "203.0.113.5")
        #expect(resolve(nil, ["10.1.1.1"]) == nil)
    }

    @Test("a trusted peer: the rightmost untrusted entry, across headers; IPv6 and mapped IPv4")
    func trustedChain() {
        #expect(resolve("10.0.0.2", ["198.51.100.7"]) == "198.51.100.7")
        #expect(resolve("10.0.0.2", ["1.2.3.4, 198.51.100.7, 10.0.0.9"]) == "198.51.100.7")  // a spoofed left entry is not believed
        #expect(resolve("10.0.0.2", ["1.2.3.4", "198.51.100.7 ,10.0.0.9"]) == "198.51.100.7")
        #expect(resolve("fd00::1", ["2001:db8::5"]) == "2001:db8::5")
        #expect(resolve("::ffff:10.0.0.2", ["[2001:db8::6]"]) == "2001:db8::6")
        // Every entry trusted: the leftmost; no entry: the peer itself.
        #expect(resolve("10.0.0.2", ["10.0.0.7, 10.0.0.8"]) == "10.0.0.7")
        #expect(resolve("10.0.0.2", []) == "10.0.0.2")
    }

    @Test("an entry that is no address makes the client unknown (refused, never guessed)")
    func unknown() {
        #expect(resolve("10.0.0.2", ["198.51.100.7, garbage"]) == nil)
        #expect(resolve("10.0.0.2", ["198.51.100.7:8080"]) == nil)
        #expect(resolve("10.0.0.2", [""]) == nil)
    }
}
