import CRegTokenFastPath
import CRegTokenOpenSSL
import Foundation
import Testing
@testable import RegToken

/// The word-at-a-time shortcuts of the verifier's parsing, each checked against a plain reference
/// on every byte value where it matters, so that being fast never changes what is accepted.
@Suite("Fast paths agree with plain references")
struct FastPathTests {
    /// The plain UUID parser: one character at a time.
    static func referenceUUID(_ p: [UInt8]) -> UUIDBytes? {
        guard p.count == 36 else { return nil }
        var h: UInt64 = 0
        var l: UInt64 = 0
        var nibbles = 0
        for i in 0..<36 {
            let c = p[i]
            if i == 8 || i == 13 || i == 18 || i == 23 {
                guard c == UInt8(ascii: "-") else { return nil }
                continue
            }
            let v: UInt8
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): v = c - 48
            case UInt8(ascii: "a")...UInt8(ascii: "f"): v = c - 87
            case UInt8(ascii: "A")...UInt8(ascii: "F"): v = c - 55
            default: return nil
            }
            if nibbles < 16 { h = h << 4 | UInt64(v) } else { l = l << 4 | UInt64(v) }
            nibbles += 1
        }
        return UUIDBytes(high: h, low: l)
    }

    @Test("UUID: every byte value at every position parses as the plain parser says")
    func uuid() {
        let samples = [UUIDBytes.random().description, UUIDBytes.random().description.uppercased(),
                       "0123abcd-ABCD-ef01-9fA0-fedcba987654", "ffffffff-ffff-ffff-ffff-ffffffffffff"]
        for sample in samples {
            let bytes = Array(sample.utf8)
            #expect(bytes.withUnsafeBytes { UUIDBytes(utf8: $0) } == Self.referenceUUID(bytes))
            #expect(Self.referenceUUID(bytes) != nil)
            for position in 0..<36 {
                for value in 0...255 {
                    var mutated = bytes
                    mutated[position] = UInt8(value)
                    let fast = mutated.withUnsafeBytes { UUIDBytes(utf8: $0) }
                    #expect(fast == Self.referenceUUID(mutated), "\(sample) with byte \(value) at \(position)")
                }
            }
        }
        #expect([UInt8](repeating: 0x30, count: 35).withUnsafeBytes { UUIDBytes(utf8: $0) } == nil)
    }

    @Test("JSON strings: the 8-byte scan stops where a byte-by-byte scan does")
    func plainRun() {
        var generator = SystemRandomNumberGenerator()
        let interesting: [UInt8] = [0x00, 0x1F, 0x20, 0x21, 0x22, 0x23, 0x5B, 0x5C, 0x5D, 0x7E, 0x7F, 0x80, 0xC3, 0xFF, 0x41, 0x61]
        for _ in 0..<2000 {
            let count = Int.random(in: 0..<40, using: &generator)
            var bytes = (0..<count).map { _ in UInt8.random(in: 0x20...0x7E, using: &generator) }
            for _ in 0..<Int.random(in: 0...2, using: &generator) where !bytes.isEmpty {
                bytes[Int.random(in: 0..<bytes.count, using: &generator)] = interesting.randomElement(using: &generator)!
            }
            bytes.withUnsafeMutableBufferPointer { buffer in
                let reader = JSONReader(buffer)
                for start in 0...buffer.count {
                    var expected = start
                    while expected < buffer.count {
                        let b = buffer[expected]
                        if b == 0x22 || b == 0x5C || b < 0x20 || b >= 0x7F { break }
                        expected += 1
                    }
                    #expect(reader.plainRunEnd(from: start) == expected)
                }
            }
        }
    }

    @Test("JSON strings decode in place to what was encoded, escapes and all")
    func inPlaceStrings() throws {
        let alphabet: [String] = ["a", "Z", "0", " ", "\"", "\\", "/", "\n", "\t", "\u{7F}", "\u{1}", "é", "€", "😀", "\u{FFFF}", "\u{10000}"]
        for _ in 0..<500 {
            let text = (0..<Int.random(in: 0..<30)).map { _ in alphabet.randomElement()! }.joined()
            // Foundation's encoder and ours, with and without escaped slashes and \u escapes.
            var w = JSONWriter()
            w.string(text)
            let encodings = [w.bytes, Array(try JSONSerialization.data(withJSONObject: [text], options: [.fragmentsAllowed]).dropFirst().dropLast()),
                             // Every UTF-16 code unit escaped: surrogate pairs for the scalars above U+FFFF.
                             Array(("\"" + text.utf16.map { String(format: "\\u%04x", $0) }.joined() + "\"").utf8)]
            for encoded in encodings {
                let expected = text
                var buffer = encoded
                let decoded = try buffer.withUnsafeMutableBufferPointer { (b: inout UnsafeMutableBufferPointer<UInt8>) throws(TokenError) -> String in
                    var reader = JSONReader(b)
                    let value = try reader.string(allowControl: true)
                    #expect(reader.isAtEnd)
                    return String(decoding: value, as: UTF8.self)
                }
                #expect(decoded == expected, "\(String(decoding: encoded, as: UTF8.self))")
            }
        }
    }

    @Test("base64url: the decoder accepts exactly the canonical encodings")
    func base64() {
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
        for iteration in 0..<20_000 {
            // Short texts for the group and tail rules; long ones for the 32-character vector loop.
            let count = iteration % 4 == 0 ? Int.random(in: 64..<300, using: &generator) : Int.random(in: 0..<24, using: &generator)
            var bytes = (0..<count).map { _ in alphabet.randomElement(using: &generator)! }
            if Bool.random(using: &generator), !bytes.isEmpty {
                bytes[Int.random(in: 0..<count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
            }
            let text = String(decoding: bytes, as: UTF8.self)
            let decoded = Base64URL.decode(text)
            // Canonical: only the alphabet, and encoding the decoded bytes gives the text back.
            var reference: [UInt8]? = nil
            if Array(text.utf8) == bytes, bytes.allSatisfy({ alphabet.contains($0) }), count % 4 != 1 {
                var standard = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
                while standard.count % 4 != 0 { standard += "=" }
                if let data = Data(base64Encoded: standard), Base64URL.encode(Array(data)) == text { reference = Array(data) }
            }
            #expect(decoded == reference, "\(text)")
        }
    }

    @Test("base64url: every byte value at every position of the 32-character vector blocks, against a plain decoder")
    func base64EveryByte() {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
        func value(_ c: UInt8) -> UInt32? { alphabet.firstIndex(of: c).map(UInt32.init) }
        /// Four characters to three bytes, one group at a time: nothing shared with the fast path.
        func plain(_ text: [UInt8]) -> [UInt8]? {
            var out: [UInt8] = []
            for g in stride(from: 0, to: text.count, by: 4) {
                guard let a = value(text[g]), let b = value(text[g + 1]), let c = value(text[g + 2]), let d = value(text[g + 3]) else { return nil }
                let v = a << 18 | b << 12 | c << 6 | d
                out += [UInt8(v >> 16), UInt8(v >> 8 & 0xff), UInt8(v & 0xff)]
            }
            return out
        }
        // The vector decoder is what runs here when the CPU has AVX2 (else this checks the tables).
        let cpuHasAVX2 = ((try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? "")
            .split(separator: "\n").first { $0.hasPrefix("flags") }?.split(separator: " ").contains("avx2") ?? false
        #expect((CRegTokenFastPath_base64url_vectorised() == 1) == cpuHasAVX2)
        // 128 characters: three 32-character vector blocks (the fourth is left to the scalar tail).
        let base = (0..<128).map { alphabet[($0 * 7 + 3) % 64] }
        #expect(Base64URL.decode(String(decoding: base, as: UTF8.self)) == plain(base))
        for position in 0..<128 {
            for byte in 0...255 {
                var text = base
                text[position] = UInt8(byte)
                var out = [UInt8](repeating: 0, count: 96)
                let n = CRegTokenFastPath_base64url_decode(text, text.count, &out, out.count)
                #expect((n == 96 ? out : nil) == plain(text), "byte \(byte) at \(position)")
            }
        }
    }

    @Test("the issuer's header takes the shortcut; the same header spelled otherwise the parser, with the same outcome")
    func issuedHeader() throws {
        let verifier = try Fixture.verifier()
        let token = try Fixture.issue(Fixture.claims())
        let header = String(decoding: Array(token.utf8.prefix { $0 != UInt8(ascii: ".") }), as: UTF8.self)
        #expect(Base64URL.decode(header).map { String(decoding: $0, as: UTF8.self) } == #"{"alg":"HS256","kid":"hs-test","typ":"JWT"}"#)
        #expect(tokenErrorCode { _ = try verifier.verify(token, at: Fixture.now, for: Fixture.pull) } == nil)
        // Equivalent headers that are not byte for byte the issuer's.
        for json in [#"{"alg":"HS256","kid":"hs-test"}"#, #"{"typ":"JWT","alg":"HS256","kid":"hs-test"}"#, #"{"alg":"HS256","kid":"hs-test","typ":"JWT"} "#] {
            #expect(tokenErrorCode { _ = try verifier.verify(try Fixture.forge(header: json, claims: Fixture.claimsJSON()), at: Fixture.now, for: Fixture.pull) } == nil)
        }
        // The issuer's header of a key the verifier does not hold, and of the ES256 key with an HS256 signature.
        let other = try SigningKey(id: "hs-other", hmacSecret: Array(repeating: 0x42, count: 32))
        #expect(tokenErrorCode { _ = try verifier.verify(try Fixture.issue(Fixture.claims(), with: other), at: Fixture.now, for: Fixture.pull) } == .unknownKey)
        let esHeader = #"{"alg":"ES256","kid":"es-test","typ":"JWT"}"#
        #expect(tokenErrorCode { _ = try verifier.verify(try Fixture.forge(header: esHeader, claims: Fixture.claimsJSON()), at: Fixture.now, for: Fixture.pull) } == .badSignature)
    }

    /// HMAC-SHA256 by OpenSSL's one-shot EVP_Q_mac: no pad states, none of regtoken's code.
    static func opensslHMAC(key: [UInt8], _ message: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        var outLength = 0
        // One byte more than the message, so that even an empty message has an address.
        let padded = message + [0]
        let result = padded.withUnsafeBufferPointer { m in
            EVP_Q_mac(nil, "HMAC", nil, "SHA256", nil, key, key.count, m.baseAddress, message.count, &out, 32, &outLength)
        }
        precondition(result != nil && outLength == 32, "EVP_Q_mac failed")
        return out
    }

    @Test("HMAC prefix state: the MAC of OpenSSL's one-shot HMAC for every message length, with the prefix, without it, and with it but for one byte")
    func hmacPrefixState() throws {
        let key = (0..<32).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
        let secret = try HMACSecret(key)
        let prefixBytes = (0..<64).map { _ in UInt8.random(in: 0x21...0x7E) }
        var prefix = CRegTokenFastPath_HMACSHA256Prefix()
        #expect(CRegTokenFastPath_hmac_sha256_prefix_init(&prefix, secret.pads, prefixBytes) == 1)
        var checked = 0
        for length in 0...320 {
            // Each message with how many of its first bytes may be vouched for as the prefix's.
            var variants: [([UInt8], Int)] = [((0..<length).map { _ in UInt8.random(in: 0...255) }, 0)]
            if length >= 64 {
                var withPrefix = variants[0].0
                withPrefix.replaceSubrange(0..<64, with: prefixBytes)
                variants.append((withPrefix, 64))
                for position in [0, 31, 63] {
                    var nearMiss = withPrefix
                    nearMiss[position] ^= 0x01
                    variants.append((nearMiss, position))
                }
            }
            for (message, vouchable) in variants {
                let expected = Self.opensslHMAC(key: key, message)
                var wrong = expected
                wrong[length % 32] ^= 0x80
                for state in [true, false] {
                    for known in Set([0, vouchable / 2, vouchable]) {
                        let ok = message.withUnsafeBufferPointer { m in
                            withUnsafePointer(to: &prefix) { p in
                                (CRegTokenFastPath_hmac_sha256_verify32(secret.pads, state ? p : nil, known, m.baseAddress, m.count, expected),
                                 CRegTokenFastPath_hmac_sha256_verify32(secret.pads, state ? p : nil, known, m.baseAddress, m.count, wrong))
                            }
                        }
                        #expect(ok.0 == 1 && ok.1 == 0, "length \(length), prefix state \(state), known \(known)")
                        checked += 1
                    }
                }
            }
        }
        #expect(checked > 2_000)
    }

    @Test("HS256 keys with ids of every length up to 40: the prefix state exists exactly when 64 bytes are known; issued tokens verify and any change in their first 80 bytes is refused")
    func hmacPrefixInVerifier() throws {
        for length in 1...40 {
            let kid = String(repeating: "k", count: length)
            let key = try SigningKey(id: kid, hmacSecret: (0..<32).map { UInt8($0) })
            let verifier = TokenVerifier(keys: try KeyRing(keys: [key]))
            // Issued header, the dot, and "eyJqdGki" (the base64url of `{"jti"`).
            let known = Fixture.b64(Fixture.header(kid: kid)).utf8.count + 1 + 8
            let hasPrefix = verifier.cell.load().keys[0].hmacPrefix != nil
            #expect(hasPrefix == (known >= 64), "kid of \(length)")

            let token = try Fixture.issue(Fixture.claims(), with: key)
            #expect(Array(token.utf8).count > 80)
            #expect(tokenErrorCode { _ = try verifier.verify(token, at: Fixture.now, for: Fixture.pull) } == nil)
            var bytes = Array(token.utf8)
            for position in 0..<80 where bytes[position] != UInt8(ascii: ".") {
                let original = bytes[position]
                bytes[position] = original == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
                let code = tokenErrorCode { _ = try bytes.withUnsafeBytes { try verifier.verify(bytes: $0, at: Fixture.now, for: Fixture.pull) } }
                #expect(code != nil, "kid of \(length), byte \(position)")
                bytes[position] = original
            }
            // Signed by the key but starting otherwise: other member orders in the header or the
            // claims, or spaces. These take the whole HMAC and verify as well.
            let others = [
                (#"{"kid":"\#(kid)","alg":"HS256","typ":"JWT"}"#, Fixture.claimsJSON()),
                (Fixture.header(kid: kid), #"{"sub":"acme","jti":"\#(UUIDBytes.random())","region":"\#(Fixture.region)","scope":"pull","iat":\#(Fixture.now)}"#),
                (Fixture.header(kid: kid) + "   ", Fixture.claimsJSON()),
            ]
            for (header, claims) in others {
                let forged = try Fixture.forge(header: header, claims: claims, key: key)
                #expect(tokenErrorCode { _ = try verifier.verify(forged, at: Fixture.now, for: Fixture.pull) } == nil, "\(header) \(claims)")
            }
            // The issued token's MAC comes from the prefix state: spoil the state and only the
            // issued token stops verifying.
            if let prefix = verifier.cell.load().keys[0].hmacPrefix {
                let saved = prefix.pointee
                withUnsafeMutableBytes(of: &prefix.pointee) { $0[0] ^= 1 }
                #expect(tokenErrorCode { _ = try verifier.verify(token, at: Fixture.now, for: Fixture.pull) } == .badSignature)
                let forged = try Fixture.forge(header: others[0].0, claims: others[0].1, key: key)
                #expect(tokenErrorCode { _ = try verifier.verify(forged, at: Fixture.now, for: Fixture.pull) } == nil)
                prefix.pointee = saved
                #expect(tokenErrorCode { _ = try verifier.verify(token, at: Fixture.now, for: Fixture.pull) } == nil)
            }
        }
    }

    /// Runs `body` with a reader over a copy of `bytes`, and where it left the reader.
    static func reading<R>(_ bytes: [UInt8], _ body: (inout JSONReader) throws(TokenError) -> R) -> (Result<R, TokenError>, Int) {
        var copy = bytes
        return copy.withUnsafeMutableBufferPointer { buffer in
            var reader = JSONReader(buffer)
            let result = Result { () throws(TokenError) -> R in try body(&reader) }
            return (result, reader.index)
        }
    }

    /// The same outcome: the same value or the same error, and the reader left at the same place
    /// when it succeeded.
    static func same<R: Equatable>(_ a: (Result<R, TokenError>, Int), _ b: (Result<R, TokenError>, Int)) -> Bool {
        switch (a.0, b.0) {
        case (.success(let x), .success(let y)): return x == y && a.1 == b.1
        case (.failure(let x), .failure(let y)): return x.code == y.code && x.reason == y.reason
        default: return false
        }
    }

    @Test("claim names: the word compare reads every name as the general path does, every byte value at every position")
    func memberNames() {
        let texts = [#""jti":"x","#, #""sub":"x","#, #""iat":1,"#, #""exp":1,"#, #""nbf":1,"#, #""scope":"pull""#,
                     #""region":"x""#, #""namespaces":["a"]"#, #""regions":"x""#, #""jti" :"x""#]
        for text in texts {
            let bytes = Array(text.utf8)
            for cut in [bytes.count, 9, 8, 7, 6] where cut <= bytes.count {
                let base = Array(bytes.prefix(cut))
                for position in 0..<min(base.count, 10) {
                    for value in 0...255 {
                        var mutated = base
                        mutated[position] = UInt8(value)
                        let fast = Self.reading(mutated) { (r) throws(TokenError) in try ClaimsParser.nextMember(&r) }
                        let general = Self.reading(mutated) { (r) throws(TokenError) in ClaimsParser.member(try r.memberName()) }
                        #expect(Self.same(fast, general), "\(String(decoding: mutated, as: UTF8.self))")
                    }
                }
            }
        }
    }

    @Test("jti: the 36-byte shortcut reads what the string reader and the UUID parser read, every byte value at every position")
    func quotedID() {
        let id = Array(("\"" + UUIDBytes.random().description + "\"").utf8)
        for tail in [[], Array(",".utf8), Array("\\u0030\"".utf8)] {
            let base = id + tail
            for position in 0..<base.count {
                for value in 0...255 {
                    var mutated = base
                    mutated[position] = UInt8(value)
                    let fast = Self.reading(mutated) { (r) throws(TokenError) in try ClaimsParser.readID(&r) }
                    let general = Self.reading(mutated) { (r) throws(TokenError) in UUIDBytes(utf8: UnsafeRawBufferPointer(try r.string(allowControl: false))) }
                    #expect(Self.same(fast, general), "\(String(decoding: mutated, as: UTF8.self))")
                }
            }
        }
    }

    /// The plain NumericDate reader the eight-digit path replaced: one digit at a time.
    static func referenceNumericDate(_ bytes: [UInt8]) -> (Result<Int64, TokenError>, Int) {
        reading(bytes) { (r) throws(TokenError) -> Int64 in
            guard r.index < r.end else { throw .malformed("a time claim is missing its value") }
            let first = r.base[r.index]
            if first == UInt8(ascii: "-") { throw .malformed("a time claim is negative") }
            guard first >= UInt8(ascii: "0") && first <= UInt8(ascii: "9") else { throw .malformed("a time claim has the wrong type (expected an integer)") }
            var value: Int64 = 0
            let start = r.index
            while r.index < r.end, r.base[r.index] >= UInt8(ascii: "0"), r.base[r.index] <= UInt8(ascii: "9") {
                if r.index - start >= 16 { throw .malformed("a time claim is out of range") }
                value = value &* 10 &+ Int64(r.base[r.index] &- 48)
                r.index += 1
            }
            if first == UInt8(ascii: "0") && r.index - start > 1 { throw .malformed("a number has a leading zero") }
            if r.index < r.end {
                let c = r.base[r.index]
                if c == UInt8(ascii: ".") || c == UInt8(ascii: "e") || c == UInt8(ascii: "E") { throw .malformed("a time claim is not an integer") }
            }
            guard value <= 9_007_199_254_740_991 else { throw .malformed("a time claim is out of range") }
            return value
        }
    }

    @Test("NumericDate: eight digits at a time reads what one at a time reads, for every length and every byte after the digits")
    func numericDates() {
        var generator = SystemRandomNumberGenerator()
        for length in 1...20 {
            for _ in 0..<20 {
                var digits = (0..<length).map { _ in UInt8.random(in: 0x30...0x39, using: &generator) }
                if Bool.random(using: &generator) { digits[0] = 0x30 }
                if length >= 16 && Bool.random(using: &generator) { digits = Array("9007199254740991".utf8) + digits.dropFirst(16) }
                for value in 0...256 {
                    // 256: nothing after the digits.
                    for padding in [0, 1, 7] {
                        let bytes = digits + (value < 256 ? [UInt8(value)] : []) + [UInt8](repeating: 0x7D, count: value < 256 ? padding : 0)
                        let fast = Self.reading(bytes) { (r) throws(TokenError) in try r.numericDate() }
                        #expect(Self.same(fast, Self.referenceNumericDate(bytes)), "\(String(decoding: bytes, as: UTF8.self))")
                    }
                }
            }
        }
        // Every byte value at every position of a ten-digit time with a comma after it.
        let base = Array("1764400000,".utf8)
        for position in 0..<base.count {
            for value in 0...255 {
                var bytes = base
                bytes[position] = UInt8(value)
                let fast = Self.reading(bytes) { (r) throws(TokenError) in try r.numericDate() }
                #expect(Self.same(fast, Self.referenceNumericDate(bytes)), "\(String(decoding: bytes, as: UTF8.self))")
            }
        }
    }

    @Test("request strings (small, heap-allocated, non-ASCII) are compared byte for byte with the claims")
    func requestStrings() throws {
        let verifier = try Fixture.verifier()
        // The issuer writes ASCII names only; requests may ask for anything.
        let values = ["a", "eu-west-1", "eu-west-10", "eu-west-2", "region-with-a-long-name-on-the-heap",
                      "region-with-a-long-name-on-the-hea", "region-u", String(repeating: "x", count: 64)]
        for claimed in values {
            for asked in values + ["région-u", "", String(repeating: "x", count: 65)] {
                let region = try Fixture.issue(Fixture.claims(region: claimed))
                let code = tokenErrorCode { _ = try verifier.verify(region, at: Fixture.now, for: AccessRequest(region: asked, access: .pull)) }
                #expect(code == (claimed == asked ? nil : .wrongRegion), "region \(claimed) asked \(asked)")
                let namespaced = try Fixture.issue(Fixture.claims(account: claimed, namespaces: [claimed]))
                let request = AccessRequest(region: Fixture.region, access: .pull, namespace: asked, namespaceOwner: asked)
                let nsCode = tokenErrorCode { _ = try verifier.verify(namespaced, at: Fixture.now, for: request) }
                #expect(nsCode == (claimed == asked ? nil : .namespaceNotAllowed), "namespace \(claimed) asked \(asked)")
            }
        }
    }

    /// What a parse produced, by value (the parsed strings are slices of the parse's buffer).
    struct ClaimsOutcome: Equatable {
        var id: UUIDBytes, account: [UInt8], region: [UInt8], scope: Scope
        var issuedAt: Int64, expiresAt: Int64?, notBefore: Int64?, namespaceRestricted: Bool, namespaces: [[UInt8]]

        init(_ c: ParsedClaims, namespaces: [[UInt8]]) {
            id = c.id
            account = Array(c.account)
            region = Array(c.region)
            scope = c.scope
            issuedAt = c.issuedAt
            expiresAt = c.expiresAt
            notBefore = c.notBefore
            namespaceRestricted = c.namespaceRestricted
            self.namespaces = namespaces
        }
    }

    /// The issued-layout reader on `bytes` (nil when it declines), checking that it wrote nothing.
    static func issuedLayout(_ bytes: [UInt8]) -> ClaimsOutcome? {
        bytes.withUnsafeBufferPointer { buffer in
            ClaimsParser.issuedLayout(buffer).map { ClaimsOutcome($0, namespaces: []) }
        }
    }

    /// A parse of a copy of `bytes`: `ClaimsParser.parse` (fast path first) or the strict parser alone.
    static func parsed(_ bytes: [UInt8], strictOnly: Bool) -> Result<ClaimsOutcome, TokenError> {
        var copy = bytes
        return copy.withUnsafeMutableBufferPointer { buffer in
            Result { () throws(TokenError) -> ClaimsOutcome in
                var namespaces: [[UInt8]] = []
                func collect(_ item: ClaimListItem) {
                    if case .namespace(let ns) = item { namespaces.append(Array(ns)) }
                }
                let claims = strictOnly
                    ? try ClaimsParser.parseMembers(buffer, item: collect)
                    : try ClaimsParser.parse(buffer, item: collect)
                return ClaimsOutcome(claims, namespaces: namespaces)
            }
        }
    }

    static func sameOutcome(_ a: Result<ClaimsOutcome, TokenError>, _ b: Result<ClaimsOutcome, TokenError>) -> Bool {
        switch (a, b) {
        case (.success(let x), .success(let y)): return x == y
        case (.failure(let x), .failure(let y)): return x.code == y.code && x.reason == y.reason
        default: return false
        }
    }

    @Test("issued claims layout: the fixed-offset reader agrees with the strict parser on every byte value at every position, and on every cut and insertion")
    func issuedClaimsLayout() throws {
        let samples: [TokenClaims] = [
            Fixture.claims(),
            Fixture.claims(account: "a", region: "r", scope: .pushPull, issuedAt: 1, expiresAt: 9_007_199_254_740_991),
            Fixture.claims(account: String(repeating: "x", count: 64), region: String(repeating: "-", count: 64), expiresAt: nil),
            Fixture.claims(account: "user@example.com", region: "eu-west-1", scope: .pushPullDelete),
            Fixture.claims(region: "us", issuedAt: 999_999_999_999_998, expiresAt: 999_999_999_999_999),
            Fixture.claims(issuedAt: 12_345_678, expiresAt: nil),
            Fixture.claims(issuedAt: 123_456_789, expiresAt: 1_234_567_890_123),
            Fixture.claims(region: "us", issuedAt: 0, expiresAt: 1),
            Fixture.claims(namespaces: ["team", "app"]),
            TokenClaims(account: "acme", region: "eu", scope: .pull, issuedAt: 100, expiresAt: 200, notBefore: 150),
        ]
        var fastTaken = 0
        for sample in samples {
            let text = Array(sample.json.utf8)
            // Unmutated: the same claims as the issuer's and the strict parser's.
            let strict = Self.parsed(text, strictOnly: true)
            #expect(try TokenClaims(json: text) == sample)
            #expect(Self.sameOutcome(Self.parsed(text, strictOnly: false), strict))
            if let fast = Self.issuedLayout(text) {
                #expect(Self.sameOutcome(.success(fast), strict))
            }
            var variants: [[UInt8]] = []
            for position in 0..<text.count {
                for value in 0...255 {
                    var mutated = text
                    mutated[position] = UInt8(value)
                    variants.append(mutated)
                }
                var cut = text
                cut.remove(at: position)
                variants.append(cut)
                for inserted: UInt8 in [0x20, 0x22, 0x2C, 0x30, 0x31, 0x5C, 0x61, 0x7D, 0xC3] {
                    var longer = text
                    longer.insert(inserted, at: position)
                    variants.append(longer)
                }
            }
            variants.append(text + [0x20])
            variants.append(Array(text.prefix(91)))
            for mutated in variants {
                let strict = Self.parsed(mutated, strictOnly: true)
                if let fast = Self.issuedLayout(mutated) {
                    fastTaken += 1
                    #expect(Self.sameOutcome(.success(fast), strict), "\(String(decoding: mutated, as: UTF8.self))")
                }
                #expect(Self.sameOutcome(Self.parsed(mutated, strictOnly: false), strict), "\(String(decoding: mutated, as: UTF8.self))")
            }
        }
        // The reader is taken for what the issuer writes without namespaces or nbf, with the
        // scopes `pull` and `pull,push` and dates of 1 to 15 digits (not a lone 0).
        for sample in [0, 2, 4, 5, 6].map({ samples[$0] }) {
            #expect(Self.issuedLayout(Array(sample.json.utf8)) != nil, "\(sample.json)")
        }
        #expect(fastTaken > 1000)
    }
}

