import Foundation
import Testing
@testable import RegToken

/// ``IssuedClaim`` is the one description of the issued claims layout: the issuer writes from it,
/// the strict parser's dispatch and the fixed-offset reader compare words of it, and the HMAC
/// prefix starts from it. These tests tie each of them to the description's text, byte by byte.
@Suite("The issued claims layout has one description")
struct IssuedLayoutTests {
    static func text(_ s: StaticString) -> [UInt8] {
        Array(UnsafeBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
    }

    @Test("each opening is `{` (the first member) or `,`, the quoted name and `:`; names, bits and lengths agree with it")
    func openings() {
        var bits: UInt16 = 0
        var names = Set<[UInt8]>()
        for claim in IssuedClaim.allCases {
            let opening = Self.text(claim.opening)
            let name = Array(opening.dropFirst(2).dropLast(2))
            #expect(opening.first == UInt8(ascii: claim == IssuedClaim.allCases.first ? "{" : ","))
            #expect(opening.dropFirst().first == UInt8(ascii: "\"") && opening.suffix(2) == [UInt8(ascii: "\""), UInt8(ascii: ":")])
            #expect(name.count == claim.nameCount && !name.isEmpty && name.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || $0 == UInt8(ascii: "_") })
            #expect(names.insert(name).inserted, "a name twice")
            #expect(bits & claim.bit == 0 && claim.bit != 0, "a bit twice")
            bits |= claim.bit
            // The strict parser's general dispatch finds exactly this claim by its name.
            #expect(name.withUnsafeBufferPointer { ClaimsParser.member($0) } == claim.bit)
            #expect(name.withUnsafeBufferPointer { claim.isNamed($0) })
            #expect(Array(name.dropLast()).withUnsafeBufferPointer { ClaimsParser.member($0) } == 0)
            #expect((name + [UInt8(ascii: "s")]).withUnsafeBufferPointer { ClaimsParser.member($0) } == 0)
            // The lead is the opening, then a string value's quote.
            let lead = opening + (claim.isString ? [UInt8(ascii: "\"")] : [])
            #expect(claim.leadCount == lead.count)
            for i in 0..<lead.count { #expect(claim.leadByte(i) == lead[i]) }
        }
        #expect(IssuedClaim.requiredBits == IssuedClaim.allCases.filter(\.isRequired).reduce(0) { $0 | $1.bit })
        #expect(IssuedClaim.allCases.first == .jti && IssuedClaim.jti.isRequired)
    }

    @Test("the words compared by the parsers are the little-endian words of the description's bytes, for every offset and count")
    func words() {
        for claim in IssuedClaim.allCases {
            let lead = (0..<claim.leadCount).map(claim.leadByte)
            for offset in 0...lead.count {
                for count in 0...8 {
                    var expected: UInt64 = 0
                    for (k, byte) in lead.dropFirst(offset).prefix(count).enumerated() { expected |= UInt64(byte) << UInt64(8 * k) }
                    #expect(claim.leadWord(from: offset, count: count) == expected, "\(claim) from \(offset) count \(count)")
                    // The word a reader loads from a buffer holding the lead there, masked.
                    let buffer = Array(lead.dropFirst(offset)) + [UInt8](repeating: 0xEE, count: 8)
                    let loaded = buffer.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
                    #expect(loaded & IssuedClaim.mask(min(count, lead.count - offset)) == expected)
                }
            }
        }
        #expect(littleEndianWord("pull\"") == 0x22_6C6C_7570)
        #expect(littleEndianWord("pull,push\"") == 0x7375_702C_6C6C_7570)
        #expect(IssuedClaim.mask(0) == 0 && IssuedClaim.mask(3) == 0xFF_FFFF && IssuedClaim.mask(8) == ~0)
    }

    @Test("the issuer writes each claim as its opening and its value, in the description's order; the fast reader reads it")
    func issuerWritesTheDescription() throws {
        let full = TokenClaims(account: "acme", region: "eu-west-1", scope: .pushPull, issuedAt: 1_800_000_000,
                               expiresAt: 1_800_086_400, notBefore: 1_799_999_000, namespaces: ["team", "app"],
                               repositories: [RepositoryRule(pattern: "team/ci-*", actions: [.pull, .push])],
                               allowFrom: [AddressRange("10.0.0.0/8")!])
        var expected: [UInt8] = []
        for claim in IssuedClaim.allCases {
            expected += Self.text(claim.opening)
            switch claim {
            case .jti: expected += Array("\"\(full.id)\"".utf8)
            case .sub: expected += Array("\"acme\"".utf8)
            case .region: expected += Array("\"eu-west-1\"".utf8)
            case .scope: expected += Array("\"pull,push\"".utf8)
            case .iat: expected += Array("1800000000".utf8)
            case .exp: expected += Array("1800086400".utf8)
            case .nbf: expected += Array("1799999000".utf8)
            case .namespaces: expected += Array("[\"team\",\"app\"]".utf8)
            case .repositories: expected += Array("[\"team/ci-*:pull,push\"]".utf8)
            case .allowFrom: expected += Array("[\"10.0.0.0/8\"]".utf8)
            }
        }
        expected.append(UInt8(ascii: "}"))
        #expect(Array(full.json.utf8) == expected)
        #expect(try TokenClaims(json: expected) == full)

        // Optional claims absent: left out, the others in order; what the fast reader reads.
        let short = TokenClaims(account: "a", region: "r", scope: .pull, issuedAt: 1_800_000_000, expiresAt: nil)
        let json = Array(short.json.utf8)
        #expect(json.starts(with: Self.text(IssuedClaim.jti.opening)))
        var positions: [Int] = []
        for claim in IssuedClaim.allCases {
            let opening = Self.text(claim.opening)
            let at = (0...(json.count - opening.count)).first { Array(json[$0..<($0 + opening.count)]) == opening }
            if claim.isRequired { #expect(at != nil, "\(claim)") } else { #expect(at == nil, "\(claim)") }
            if let at { positions.append(at) }
        }
        #expect(positions == positions.sorted())
        let fast = json.withUnsafeBufferPointer { ClaimsParser.issuedLayout($0) }
        #expect(fast?.id == short.id && fast?.issuedAt == 1_800_000_000 && fast?.expiresAt == nil && fast?.scope == .pull)
    }

    @Test("the HMAC prefix is the issued header, the dot and the base64url of the first claim's opening (whole groups)")
    func hmacPrefix() throws {
        let opening = Self.text(TokenClaims.issuedOpening)
        #expect(opening == Self.text(IssuedClaim.jti.opening))
        #expect(Base64URL.encode(opening.prefix(opening.count / 3 * 3)) == "eyJqdGki")
        let key = try SigningKey(id: "hs-layout", hmacSecret: Array(repeating: 7, count: 32))
        let token = try Fixture.issue(Fixture.claims(), with: key)
        let header = Base64URL.encode(JWS.protectedHeader(algorithm: .hs256, keyID: key.id, type: "JWT"))
        #expect(token.hasPrefix(header + ".eyJqdGki"))
    }
}
