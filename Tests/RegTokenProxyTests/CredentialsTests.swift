import Foundation
@testable import RegTokenAccess
import RegTokenLoadTest
import Testing

/// `Authorization` values read on their bytes, with a base64 decoder of our own: the decoder
/// against Python's strict one (`binascii.a2b_base64(strict_mode=True)`, RFC 4648 as Go's
/// `base64.StdEncoding` reads it) and Foundation's, and the parse against the one written on
/// Foundation before (trimmed copy, `String` scheme, `Data` split at the first colon).
@Suite("Credentials")
struct CredentialsTests {
    /// The parse as written on Foundation before it moved to bytes: the reference, but for the
    /// padding rule (Foundation also took `=` anywhere and missing padding; RFC 4648 does not,
    /// and the base64 test checks that rule against Python's decoder).
    static func foundationParse(_ values: [String]) -> Credentials {
        guard let value = values.first else { return .none }
        guard values.count == 1 else { return .unusable("several Authorization headers") }
        let trimmed = value.trimmingCharacters(in: CharacterSet(charactersIn: " \t"))
        let parts = trimmed.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
        let scheme = parts[0].lowercased()
        let rest = parts.count > 1 ? String(parts[1].drop { $0 == " " || $0 == "\t" }) : ""
        switch scheme {
        case "basic":
            guard rest.utf8.count <= 16384, isPadded(rest), let decoded = Data(base64Encoded: rest) else {
                return .unusable("Basic credentials are not valid base64")
            }
            guard let colon = decoded.firstIndex(of: UInt8(ascii: ":")) else {
                return .unusable("Basic credentials have no ':' between user and password")
            }
            let user = decoded[..<colon], password = decoded[(colon + 1)...]
            if user.isEmpty && password.isEmpty { return .none }
            guard user.elementsEqual("token".utf8) else { return .unusable("log in with the user name 'token' and a token as password") }
            guard !password.isEmpty else { return .unusable("the password (the token) is empty") }
            return .token(Array(password))
        case "bearer":
            guard !rest.isEmpty else { return .unusable("the Bearer token is empty") }
            return .token(Array(rest.utf8))
        default:
            return .unusable("use Basic (user 'token') or Bearer credentials")
        }
    }

    /// Whether `text` is padded as RFC 4648 says (groups of four, `=` only as the last one or
    /// two characters): Foundation's decoder also takes `=` anywhere, and missing padding.
    static func isPadded(_ text: String) -> Bool {
        let b = Array(text.utf8)
        guard b.count % 4 == 0 else { return false }
        var body = b[...]
        for _ in 0..<2 where body.last == UInt8(ascii: "=") { body = body.dropLast() }
        return !body.contains(UInt8(ascii: "="))
    }

    /// Python's strict decoding of each text: the bytes, or nil where it raises.
    static func python(_ texts: [String]) throws -> [[UInt8]?] {
        let input = FileManager.default.temporaryDirectory.appendingPathComponent("b64-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: input) }
        try Data(texts.map { Data($0.utf8).map { String(format: "%02x", $0) }.joined() }.joined(separator: "\n").utf8).write(to: input)
        let script = """
        import binascii, sys
        for line in open(sys.argv[1]).read().split("\\n"):
            try: print(binascii.a2b_base64(bytes.fromhex(line), strict_mode=True).hex())
            except binascii.Error: print("-")
        """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script, input.path]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        let lines = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        return lines.map { line in
            guard line != "-" else { return nil }
            var bytes: [UInt8] = []
            var i = line.startIndex
            while i < line.endIndex {
                let j = line.index(i, offsetBy: 2)
                bytes.append(UInt8(line[i..<j], radix: 16)!)
                i = j
            }
            return bytes
        }
    }

    static func decode(_ text: String) -> [UInt8]? {
        Array(text.utf8).withUnsafeBufferPointer { Credentials.decodeBase64($0) }
    }

    /// Random text close to base64: valid encodings of random bytes, then mutated (a character
    /// replaced by one from a set with padding, whitespace and other bytes; one dropped; one added).
    static func nearBase64(_ rng: inout some RandomNumberGenerator) -> String {
        let bytes = (0..<Int.random(in: 0...12, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        var text = Array(Data(bytes).base64EncodedString().utf8)
        let alphabet = Array("ABCxyz019+/=-_ \t\n.:é".utf8)
        for _ in 0..<Int.random(in: 0...2, using: &rng) {
            switch Int.random(in: 0..<3, using: &rng) {
            case 0 where !text.isEmpty: text[Int.random(in: text.indices, using: &rng)] = alphabet.randomElement(using: &rng)!
            case 1 where !text.isEmpty: text.remove(at: Int.random(in: text.indices, using: &rng))
            default: text.insert(alphabet.randomElement(using: &rng)!, at: Int.random(in: 0...text.count, using: &rng))
            }
        }
        return String(decoding: text, as: UTF8.self)
    }

    @Test("base64: the same bytes as Python's strict decoder, or nil where it refuses, on 50,000 near-base64 texts; Foundation's where the text is padded")
    func base64AgreesWithPython() throws {
        var rng = SplitMix(seed: 0xBA5E_64)
        var texts = ["", "QQ==", "QUI=", "QUJD", "QR==", "QUJ=", "Q===", "====", "QQ", "QQ=", "QQ==QQ==", "=QQ=", "Q=Q=", "Jy=x",
                     "QUJD\n", " QUJD", "QUJD ", "QU JD", "QUJDé==="]
        for _ in 0..<50_000 { texts.append(Self.nearBase64(&rng)) }
        let expected = try Self.python(texts)
        try #require(expected.count == texts.count)
        var valid = 0
        for (text, python) in zip(texts, expected) {
            let ours = Self.decode(text)
            // Python's strict mode also takes padding after a whole group (`QUJD=`), which RFC
            // 4648 and Go's decoder refuse: a length that is not a multiple of four is refused.
            #expect(ours == (text.utf8.count % 4 == 0 ? python : nil), "\(Array(text.utf8))")
            if ours != nil { valid += 1 }
            // Foundation decodes every text RFC 4648 calls base64 alike (it takes more: `=`
            // anywhere, missing padding).
            if Self.isPadded(text) { #expect(ours == Data(base64Encoded: text).map { Array($0) }, "\(Array(text.utf8))") }
            if ours != nil { #expect(Self.isPadded(text)) }
        }
        // Both outcomes were exercised, in numbers.
        #expect(valid > 10_000 && valid < 45_000)
    }

    @Test("Authorization values: the same credentials as the parse written on Foundation, on base64 padded as RFC 4648 says")
    func parseAgreesWithFoundation() {
        let token = Data("token:eyJhbGciOi.payload.sig".utf8).base64EncodedString()
        var values: [[String]] = [
            [], ["Basic Og=="], ["Basic \(token)"], ["  basic \t \(token) \t"], ["BASIC \(token)"], ["Basic\t\(token)"],
            ["Basic"], ["Basic "], [""], ["   "], ["Bearer abc.def"], ["bearer  abc"], ["Bearer"], ["Bearer "], ["Digest abc"],
            ["Basic \(token)", "Basic \(token)"], ["Basic !!!"], ["Basic \(Data("admin:x".utf8).base64EncodedString())"],
            ["Basic \(Data("token:".utf8).base64EncodedString())"], ["Basic \(Data("token".utf8).base64EncodedString())"],
            ["Basic \(Data(":x".utf8).base64EncodedString())"], ["Basic \(Data("token::a:b".utf8).base64EncodedString())"],
            ["Basic \(String(repeating: "QUJD", count: 4097))"], ["Basic \(String(repeating: "QUJD", count: 4096))"],
            ["Basıc \(token)"], ["Basic \(token) x"],
        ]
        var rng = SplitMix(seed: 0xC4ED)
        let users = ["token", "", "Token", "tok", "token:"]
        for _ in 0..<5_000 {
            let user = users.randomElement(using: &rng)!
            let password = String(decoding: (0..<Int.random(in: 0...6, using: &rng)).map { _ in UInt8.random(in: 0x21...0x7E, using: &rng) }, as: UTF8.self)
            var encoded = Data("\(user):\(password)".utf8).base64EncodedString()
            if Bool.random(using: &rng) { encoded = Self.nearBase64(&rng) }
            let scheme = ["Basic", "basic", "Bearer", "Basic ", " Basic"].randomElement(using: &rng)!
            values.append(["\(scheme) \(encoded)"])
        }
        for v in values {
            #expect(Credentials.parse(v) == Self.foundationParse(v), "\(v)")
        }
    }

    @Test("a connection's memo: every value in a sequence that repeats and changes gives what the Foundation parse gives for it alone")
    func memoAgreesWithParse() {
        let a = Data("token:aaa.bbb.ccc".utf8).base64EncodedString()
        let b = Data("token:ddd.eee.fff".utf8).base64EncodedString()
        // Repeats, changes back and forth, a value that is unusable or missing between two
        // equal ones, two headers whose first is the memo's value, Bearer after Basic.
        let sequence: [[String]] = [
            ["Basic \(a)"], ["Basic \(a)"], ["Basic \(b)"], ["Basic \(a)"], ["Basic !!!"], ["Basic \(a)"], [],
            ["Basic \(a)"], ["Basic \(a)", "Basic \(a)"], ["Basic \(a)"], ["Bearer xyz"], ["Bearer xyz"], ["Basic \(a) "],
            ["Basic \(b)"], ["Basic Og=="], ["Basic \(b)"],
        ]
        // Canonically equivalent to a value before, other bytes: U+212A KELVIN SIGN for `K`
        // (Swift's `==` takes them as equal; the memo must not).
        let kelvin = ["Bearer aKb"], sign = ["Bearer a\u{212A}b"]
        #expect(kelvin[0] == sign[0] && Array(kelvin[0].utf8) != Array(sign[0].utf8))
        var memo = CredentialsMemo()
        for values in [kelvin, sign, kelvin, sign] {
            #expect(memo.parse(first: values.first, count: values.count) == .token(Array(values[0].utf8.dropFirst(7))), "\(values)")
        }
        for values in sequence {
            #expect(memo.parse(first: values.first, count: values.count) == Self.foundationParse(values), "\(values)")
        }
        // Random sequences over a few values, some equal in bytes but separate strings.
        var rng = SplitMix(seed: 0x3E30)
        let pool = [["Basic \(a)"], ["Basic \(b)"], ["Basic " + String(a)], ["Bearer \(a)"], ["Basic \(a)x"], [], ["Basic \(a)", "Basic \(b)"]]
        for _ in 0..<2_000 {
            let values = pool.randomElement(using: &rng)!
            #expect(memo.parse(first: values.first, count: values.count) == Self.foundationParse(values), "\(values)")
        }
    }
}
