/// The claims regtoken's issuer writes, in the order it writes them: the one description of the
/// issued layout.
///
/// Everything that depends on the layout comes from here: the issuer writes each member as its
/// ``opening`` and then the value (``TokenClaims/json``); the HMAC prefix state starts from the
/// first member's opening (``TokenClaims/issuedOpening``); the strict parser's dispatch words
/// and member bits (``ClaimsParser/member(_:)``, ``ClaimsParser/nextMember(_:)``) and the
/// fixed-offset reader's constants (``ClaimsParser/issuedLayout(_:)``) are words of these texts.
///
/// Why words computed from `StaticString`s and not `static let` constants: a `static let` is a
/// global with a lazy-initialisation check on every access in the hot path, while these are
/// `@inline(__always)` loads from literals in read-only data, which the optimiser folds into
/// immediate operands (checked on the release build's machine code; the verifier's code is the
/// same as with hand-written constants). Tests compare the words with the texts byte by byte.
///
/// Adding a claim: one case here (its opening, and whether it is required), then its value in
/// ``TokenClaims/json`` and in ``ClaimsParser/parseMembers(_:namespace:)`` (which defines what is
/// accepted), and tests. The fixed-offset reader declines any layout it does not know, so the
/// strict parser reads the new claim until the reader learns it.
enum IssuedClaim: Int, CaseIterable {
    case jti, sub, region, scope, iat, exp, nbf, namespaces, repositories, allowFrom

    /// What the issuer writes before the member's value: `{` (the first member) or `,`, then the
    /// quoted name and `:`. For a string value, the value's opening quote follows.
    @inline(__always)
    var opening: StaticString {
        switch self {
        case .jti: "{\"jti\":"
        case .sub: ",\"sub\":"
        case .region: ",\"region\":"
        case .scope: ",\"scope\":"
        case .iat: ",\"iat\":"
        case .exp: ",\"exp\":"
        case .nbf: ",\"nbf\":"
        case .namespaces: ",\"namespaces\":"
        case .repositories: ",\"repositories\":"
        case .allowFrom: ",\"allow_from\":"
        }
    }

    /// True when every token carries the claim (the strict parser refuses claims without it).
    var isRequired: Bool {
        switch self {
        case .jti, .sub, .region, .scope, .iat: true
        case .exp, .nbf, .namespaces, .repositories, .allowFrom: false
        }
    }

    /// True when the value is a JSON string (written with its quotes by `JSONWriter.string`).
    var isString: Bool {
        switch self {
        case .jti, .sub, .region, .scope: true
        case .iat, .exp, .nbf, .namespaces, .repositories, .allowFrom: false
        }
    }

    /// The member's bit in the strict parser's set of members seen.
    @inline(__always)
    var bit: UInt16 { 1 << UInt16(rawValue) }

    /// The bits of the required members.
    @inline(__always)
    static var requiredBits: UInt16 {
        var bits: UInt16 = 0
        // By raw value, not `allCases` (an array built, so allocated, per call).
        var r = 0
        while let claim = IssuedClaim(rawValue: r) {
            if claim.isRequired { bits |= claim.bit }
            r += 1
        }
        return bits
    }

    /// The name's length in bytes (the opening less `{` or `,`, the quotes and `:`).
    @inline(__always)
    var nameCount: Int { opening.utf8CodeUnitCount - 4 }

    /// The quoted name and `:` (the opening less its first byte), as the strict parser meets it
    /// after `{` or `,` and whitespace.
    @inline(__always)
    var quotedNameCount: Int { opening.utf8CodeUnitCount - 1 }

    /// The opening, then for a string value its opening quote: what a token holds from the
    /// member's first byte up to the value's first character. `count` in bytes.
    @inline(__always)
    var leadCount: Int { opening.utf8CodeUnitCount + (isString ? 1 : 0) }

    /// Byte `i` of the lead (the opening and, for a string value, the quote after it).
    @inline(__always)
    func leadByte(_ i: Int) -> UInt8 {
        let n = opening.utf8CodeUnitCount
        return i < n ? opening.utf8Start[i] : UInt8(ascii: "\"")
    }

    /// Up to eight bytes of the lead from `offset`, as the little-endian word a reader loads
    /// from a token there (bytes past `offset + count`, or past the lead, are zero): compare
    /// with the token's word masked by ``mask(_:)``.
    @inline(__always)
    func leadWord(from offset: Int = 0, count: Int = 8) -> UInt64 {
        var word: UInt64 = 0
        let end = min(offset + count, leadCount)
        var i = offset
        while i < end {
            word |= UInt64(leadByte(i)) << UInt64(8 * (i - offset))
            i += 1
        }
        return word
    }

    /// The mask that keeps the first `count` (0...8) bytes of a little-endian word.
    @inline(__always)
    static func mask(_ count: Int) -> UInt64 {
        count >= 8 ? ~0 : (1 << UInt64(8 * count)) - 1
    }

    /// True when `name` (a decoded member name) is this claim's name.
    func isNamed(_ name: UnsafeBufferPointer<UInt8>) -> Bool {
        guard name.count == nameCount else { return false }
        for k in 0..<nameCount where name[k] != opening.utf8Start[2 + k] { return false }
        return true
    }
}

/// Up to eight bytes of `text` from `offset`, as the little-endian word a reader loads from a
/// buffer holding that text there (bytes past the text are zero). Folded into a constant where
/// `text` is a literal.
@inline(__always)
func littleEndianWord(_ text: StaticString, from offset: Int = 0, count: Int = 8) -> UInt64 {
    var word: UInt64 = 0
    let end = min(offset + count, text.utf8CodeUnitCount)
    var i = offset
    while i < end {
        word |= UInt64(text.utf8Start[i]) << UInt64(8 * (i - offset))
        i += 1
    }
    return word
}
