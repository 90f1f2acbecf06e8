import Foundation
import Testing
@testable import RegToken

@Suite("Strictness rules")
struct StrictnessTests {
    let verifier: TokenVerifier
    init() throws { verifier = try Fixture.verifier() }

    func code(_ token: String, _ request: AccessRequest = Fixture.pull) -> TokenError.ErrorCode? {
        tokenErrorCode { _ = try verifier.verify(token, at: Fixture.now, for: request) }
    }

    func error(_ token: String) -> TokenError? {
        tokenError { _ = try verifier.verify(token, at: Fixture.now, for: Fixture.pull) }
    }

    func forged(header: String = Fixture.header(), claims: String = Fixture.claimsJSON()) throws -> String {
        try Fixture.forge(header: header, claims: claims)
    }

    @Test("a token id prints as Foundation prints the same UUID, in lower case, and parses back")
    func tokenIDText() {
        var ids = [UUIDBytes(high: 0, low: 0), UUIDBytes(high: .max, low: .max), UUIDBytes(high: 0x0123_4567_89AB_CDEF, low: 0xFEDC_BA98_7654_3210)]
        for _ in 0..<200 { ids.append(.random()) }
        for id in ids {
            let text = id.description
            var bytes = [UInt8]()
            for word in [id.high, id.low] { for k in (0..<8).reversed() { bytes.append(UInt8(truncatingIfNeeded: word >> (8 * UInt64(k)))) } }
            let uuid = UUID(uuid: (bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
                                   bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]))
            #expect(text == uuid.uuidString.lowercased())
            #expect(UUIDBytes(text) == id)
        }
    }

    @Test("a well-formed forged token verifies (the baseline every rule below changes one thing of)")
    func baseline() throws {
        #expect(code(try forged()) == nil)
        // Members in another order and JSON whitespace are fine.
        let claims = "{ \"iat\" : \(Fixture.now),\r\n \"scope\":\"push,pull\", \"region\":\"\(Fixture.region)\",\"sub\":\"acme\",\t\"jti\":\"\(UUIDBytes.random())\" }"
        #expect(code(try forged(header: " {\"typ\":\"JWT\",\"kid\":\"hs-test\", \"alg\":\"HS256\"} ", claims: claims), Fixture.push) == nil)
        // typ may be absent; escaped characters that decode to the same text are the same text.
        #expect(code(try forged(header: #"{"alg":"HS256","kid":"hs\u002dtest"}"#)) == nil)
    }

    @Test("header members other than alg, kid and typ are refused", arguments: [
        #""crit":["exp"]"#, #""jku":"https://evil.example/jwks""#, #""jwk":{"kty":"oct","k":"AAAA"}"#,
        #""x5u":"https://evil.example/cert""#, #""x5c":["MIIB"]"#, #""b64":false"#, #""cty":"JWT""#,
        #""zip":"DEF""#, #""enc":"A128GCM""#,
    ])
    func headerMembers(_ member: String) throws {
        let token = try forged(header: "{\"alg\":\"HS256\",\"kid\":\"hs-test\",\(member)}")
        #expect(code(token) == .malformed)
    }

    @Test("header: duplicates, typ other than JWT, non-string alg, not an object")
    func headerShape() throws {
        #expect(code(try forged(header: #"{"alg":"HS256","alg":"HS256","kid":"hs-test"}"#)) == .malformed)
        #expect(code(try forged(header: #"{"alg":"HS256","kid":"hs-test","kid":"hs-test"}"#)) == .malformed)
        #expect(code(try forged(header: #"{"alg":"HS256","kid":"hs-test","typ":"JOSE"}"#)) == .malformed)
        #expect(code(try forged(header: #"{"alg":["HS256"],"kid":"hs-test"}"#)) == .malformed)
        #expect(code(try forged(header: #"{"alg":"HS256","kid":7}"#)) == .malformed)
        #expect(code(try forged(header: #"["alg","HS256"]"#)) == .malformed)
        #expect(code(try forged(header: #"{"alg":"HS256","kid":"hs-test"} x"#)) == .malformed)
        #expect(code(try forged(header: #"{}"#)) == .malformed)
    }

    @Test("non-canonical base64url is refused: padding, +, /, whitespace, unused bits")
    func base64() throws {
        let token = try forged()
        let parts = token.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        #expect(code(parts[0] + "=." + parts[1] + "." + parts[2]) == .malformed)
        #expect(code(parts[0] + "." + parts[1] + "." + parts[2] + "=") == .malformed)
        #expect(code(" " + token) == .malformed)
        #expect(code(token + "\n") == .malformed)
        #expect(code(parts[0] + ".\n" + parts[1] + "." + parts[2]) == .malformed)
        // Standard-alphabet characters in place of their url-safe twins.
        let std = token.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        if std != token { #expect(code(std) == .malformed) }
        #expect(code(parts[0] + "." + parts[1].dropLast() + "+" + "." + parts[2]) == .malformed)
        #expect(code(parts[0] + "." + parts[1].dropLast() + "/" + "." + parts[2]) == .malformed)
        // A last character whose unused low bits are not zero decodes to the same bytes: refused.
        for (i, part) in parts.enumerated() where part.count % 4 != 0 {
            var mutated = parts
            mutated[i] = String(part.dropLast()) + String(Self.withUnusedBitSet(part.last!, remainder: part.count % 4))
            #expect(code(mutated.joined(separator: ".")) == .malformed, "segment \(i)")
        }
        // A segment of impossible length (4n + 1).
        #expect(code(parts[0] + "." + parts[1] + "A." + parts[2]) == .malformed)
    }

    static func withUnusedBitSet(_ c: Character, remainder: Int) -> Character {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        let v = alphabet.firstIndex(of: c)!
        return alphabet[v | 1]  // 2 or 3 chars left over: the lowest bit is always unused
    }

    @Test("claims JSON must be valid, with no duplicate members and no unknown ones")
    func claimsShape() throws {
        let base = Fixture.claimsJSON()
        #expect(code(try forged(claims: base.replacingOccurrences(of: "}", with: ",\"sub\":\"globex\"}"))) == .malformed)
        #expect(code(try forged(claims: base.replacingOccurrences(of: "}", with: ",\"s\\u0075b\":\"globex\"}"))) == .malformed)
        #expect(code(try forged(claims: base.replacingOccurrences(of: "}", with: ",\"admin\":true}"))) == .malformed)
        #expect(code(try forged(claims: base.replacingOccurrences(of: "}", with: ",}"))) == .malformed)
        #expect(code(try forged(claims: base + " {}")) == .malformed)
        #expect(code(try forged(claims: "[" + base + "]")) == .malformed)
        #expect(code(try forged(claims: base.replacingOccurrences(of: "\"sub\":\"acme\",", with: ""))) == .malformed)
        #expect(code(try forged(claims: base.replacingOccurrences(of: "\"jti\":\"", with: "\"jti\":\"x"))) == .malformed)
        #expect(code(try forged(claims: Fixture.claimsJSON(jti: "00000000-0000-0000-0000-000000000000"))) == .malformed)
        #expect(code(try forged(claims: "{\"a\":" + String(repeating: "[", count: 10_000) + "}")) == .malformed)
    }

    @Test("every claim must have its type", arguments: [
        ("iat", "\"1800000000\""), ("iat", "1800000000.0"), ("iat", "1.8e9"), ("iat", "-1"), ("iat", "null"),
        ("iat", "9007199254740992"), ("iat", "01800000000"), ("iat", "true"), ("exp", "\"x\""), ("exp", "null"),
        ("exp", "1800003600.5"), ("exp", "18E8"), ("exp", "99999999999999999999"),
    ])
    func claimTypes(_ claim: String, _ value: String) throws {
        let json = claim == "iat" ? Fixture.claimsJSON(iat: value) : Fixture.claimsJSON(exp: value)
        #expect(code(try forged(claims: json)) == .malformed, "\(claim): \(value)")
    }

    @Test("string claims must be strings; namespaces a non-empty array of strings")
    func stringClaims() throws {
        let base = Fixture.claimsJSON()
        #expect(code(try forged(claims: base.replacingOccurrences(of: "\"sub\":\"acme\"", with: "\"sub\":7"))) == .malformed)
        #expect(code(try forged(claims: base.replacingOccurrences(of: "\"sub\":\"acme\"", with: "\"sub\":null"))) == .malformed)
        #expect(code(try forged(claims: base.replacingOccurrences(of: "\"sub\":\"acme\"", with: "\"sub\":\"\""))) == .malformed)
        #expect(code(try forged(claims: base.replacingOccurrences(of: "\"sub\":\"acme\"", with: "\"sub\":\"ac\\u0000me\""))) == .malformed)
        #expect(code(try forged(claims: Fixture.claimsJSON(extra: ",\"namespaces\":[]"))) == .malformed)
        #expect(code(try forged(claims: Fixture.claimsJSON(extra: ",\"namespaces\":\"acme\""))) == .malformed)
        #expect(code(try forged(claims: Fixture.claimsJSON(extra: ",\"namespaces\":[\"acme\",7]"))) == .malformed)
        #expect(code(try forged(claims: Fixture.claimsJSON(extra: ",\"namespaces\":[\"acme\",]"))) == .malformed)
        let many = (0..<65).map { "\"ns\($0)\"" }.joined(separator: ",")
        #expect(code(try forged(claims: Fixture.claimsJSON(extra: ",\"namespaces\":[\(many)]"))) == .malformed)
        #expect(code(try forged(claims: base.replacingOccurrences(of: "\"sub\":\"acme\"", with: "\"sub\":\"\(String(repeating: "a", count: 65))\""))) == .malformed)
    }

    @Test("unknown scope values are refused", arguments: ["\"admin\"", "\"push\"", "\"pull,delete\"", "\"pull,pull\"", "\"pull,push,push\"", "\"pull,,push\"", "\"pull,push,\"", "\"PULL\"", "\"pull \"", "[\"pull\"]", "null", "\"\""])
    func unknownScope(_ scope: String) throws {
        #expect(code(try forged(claims: Fixture.claimsJSON(scope: scope))) == .malformed)
    }

    @Test("scope sets in any order are accepted; delete is a right of its own")
    func scopes() throws {
        let cases: [(String, Scope)] = [("pull", .pull), ("push,pull", .pushPull), ("pull,push", .pushPull),
                                        ("delete,pull,push", .pushPullDelete), ("pull,push,delete", .pushPullDelete)]
        for (text, scope) in cases {
            let v = try verifier.verify(try forged(claims: Fixture.claimsJSON(scope: "\"\(text)\"")), at: Fixture.now, for: Fixture.pull)
            #expect(v.scope == scope, "\(text)")
        }
        let del = AccessRequest(region: Fixture.region, access: .delete)
        #expect(code(try forged(claims: Fixture.claimsJSON(scope: "\"pull,push\"")), del) == .insufficientScope)
        #expect(code(try forged(claims: Fixture.claimsJSON(scope: "\"pull,push,delete\"")), del) == nil)
        #expect(code(try forged(claims: Fixture.claimsJSON(scope: "\"pull,push,delete\"")), Fixture.push) == nil)
    }

    @Test("JSON text must be valid UTF-8", arguments: [
        [0xC0, 0xAF], [0xE0, 0x80, 0xAF], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xFF], [0x80], [0xC3],
    ] as [[UInt8]])
    func invalidUTF8(_ bytes: [UInt8]) throws {
        var claims = Array(Fixture.claimsJSON().utf8)
        let at = try #require(claims.firstIndex(of: UInt8(ascii: "m")))  // inside "acme"
        claims.insert(contentsOf: bytes, at: at)
        let input = Fixture.b64(Array(Fixture.header().utf8)) + "." + Fixture.b64(claims)
        let token = input + "." + Fixture.b64(try Fixture.hsKey.signature(for: Array(input.utf8)))
        #expect(code(token) == .malformed)
    }

    @Test("valid UTF-8 and escapes in claim values are accepted and decoded")
    func validUTF8() throws {
        let claims = Fixture.claimsJSON().replacingOccurrences(of: "\"sub\":\"acme\"", with: "\"sub\":\"\\u00e9t\u{e9}\\ud83d\\ude00\"")
        let v = try verifier.verify(try forged(claims: claims), at: Fixture.now, for: Fixture.pull)
        #expect(v.account.string == "\u{e9}t\u{e9}\u{1F600}")
        #expect(code(try forged(claims: claims.replacingOccurrences(of: "\\ude00", with: ""))) == .malformed)  // lone surrogate
    }

    @Test("tokens over 8 KiB are refused before any work")
    func sizeLimit() throws {
        let long = Fixture.claimsJSON(extra: ",\"pad\":\"\(String(repeating: "x", count: 7000))\"")
        let big = try forged(claims: long)
        #expect(big.utf8.count > 8192)
        let e = try #require(error(big))
        #expect(e.code == .malformed)
        #expect(e.reason.contains("size limit"))
        // The same rule catches 1 MiB of anything.
        #expect(error(String(repeating: "A", count: 1 << 20))?.reason.contains("size limit") == true)
        // Just under the limit, with claims past the stack buffer, still verifies.
        let medium = Fixture.claimsJSON(extra: ",\"namespaces\":[" + (0..<30).map { "\"\(String(repeating: "n", count: 50))\($0)\"" }.joined(separator: ",") + "]")
        let token = try forged(claims: medium)
        #expect(token.utf8.count < 8192)
        #expect(code(token, AccessRequest(region: Fixture.region, access: .pull, namespace: String(repeating: "n", count: 50) + "29")) == nil)
    }

    @Test("the reason never contains the token")
    func reasonsHoldNoToken() throws {
        let token = try Fixture.issue(Fixture.claims(region: "elsewhere"))
        let e = try #require(error(token))
        #expect(!e.description.contains(String(token.prefix(20))))
        #expect(!e.description.contains(String(token.suffix(20))))
    }
}
