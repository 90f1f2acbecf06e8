import CRegTokenFastPath
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
}
