/// Claims as the verifier parses them: no allocation, no copy. The strings are slices of the
/// claims buffer, decoded in place (see ``JSONReader``), valid as long as that buffer is: the
/// verifier compares them where they lie and copies only what it returns.
struct ParsedClaims {
    var id = UUIDBytes(high: 0, low: 0)
    /// `sub`: 1 to ``ShortString/capacity`` bytes.
    var account = UnsafeBufferPointer<UInt8>(start: nil, count: 0)
    /// `region`: 1 to ``ShortString/capacity`` bytes.
    var region = UnsafeBufferPointer<UInt8>(start: nil, count: 0)
    var scope = Scope.pull
    var issuedAt: Int64 = 0
    var expiresAt: Int64? = nil
    var notBefore: Int64? = nil
    var namespaceRestricted = false
}

/// The strict claims parser: known members only, each at most once, each of its type.
enum ClaimsParser {
    private static let jti: UInt16 = 1 << 0
    private static let sub: UInt16 = 1 << 1
    private static let region: UInt16 = 1 << 2
    private static let scope: UInt16 = 1 << 3
    private static let iat: UInt16 = 1 << 4
    private static let exp: UInt16 = 1 << 5
    private static let nbf: UInt16 = 1 << 6
    private static let namespaces: UInt16 = 1 << 7
    private static let required: UInt16 = jti | sub | region | scope | iat
    /// An unknown member name.
    private static let unknown: UInt16 = 0

    /// The most namespaces a token may list.
    static let maximumNamespaces = 64

    /// A scope is a comma-separated set of actions, each at most once, in any order: `pull`,
    /// `pull,push` or `pull,push,delete`. Anything else (an unknown action, `push` without `pull`,
    /// `delete` without `push`, spaces, repeats) is refused.
    static func parseScope(_ value: UnsafeBufferPointer<UInt8>) throws(TokenError) -> Scope {
        // What the issuer writes, recognised whole; every other spelling takes the loop below.
        if JSONReader.equals(value, "pull,push") { return .pushPull }
        if JSONReader.equals(value, "pull") { return .pull }
        var pull = false, push = false, delete = false
        var start = 0
        var i = 0
        while i <= value.count {
            if i == value.count || value[i] == UInt8(ascii: ",") {
                let word = UnsafeBufferPointer(rebasing: value[start..<i])
                if JSONReader.equals(word, "pull") && !pull {
                    pull = true
                } else if JSONReader.equals(word, "push") && !push {
                    push = true
                } else if JSONReader.equals(word, "delete") && !delete {
                    delete = true
                } else {
                    throw .malformed("claim scope has an unknown value")
                }
                start = i + 1
            }
            i += 1
        }
        switch (pull, push, delete) {
        case (true, false, false): return .pull
        case (true, true, false): return .pushPull
        case (true, true, true): return .pushPullDelete
        default: throw .malformed("claim scope has an unknown value")
        }
    }

    /// The bit of the member `name` names, or ``unknown``. By length first, then the bytes as one
    /// little-endian word: one or two compares per name instead of a byte loop per candidate.
    @inline(__always)
    private static func member(_ name: UnsafeBufferPointer<UInt8>) -> UInt16 {
        @inline(__always) func word3(_ a: UInt8, _ b: UInt8, _ c: UInt8) -> UInt32 { UInt32(a) | UInt32(b) << 8 | UInt32(c) << 16 }
        switch name.count {
        case 3:
            switch word3(name[0], name[1], name[2]) {
            case word3(0x6A, 0x74, 0x69): return jti  // "jti"
            case word3(0x73, 0x75, 0x62): return sub  // "sub"
            case word3(0x69, 0x61, 0x74): return iat  // "iat"
            case word3(0x65, 0x78, 0x70): return exp  // "exp"
            case word3(0x6E, 0x62, 0x66): return nbf  // "nbf"
            default: return unknown
            }
        case 5:
            return JSONReader.equals(name, "scope") ? scope : unknown
        case 6:
            return JSONReader.equals(name, "region") ? region : unknown
        case 10:
            return JSONReader.equals(name, "namespaces") ? namespaces : unknown
        default:
            return unknown
        }
    }

    /// Parses `json` in place (its strings are decoded over their own text), calling `namespace`
    /// for each listed namespace.
    @inline(__always)
    static func parse(_ json: UnsafeMutableBufferPointer<UInt8>, namespace: (UnsafeBufferPointer<UInt8>) -> Void) throws(TokenError) -> ParsedClaims {
        var claims = ParsedClaims()
        var reader = JSONReader(json)
        var seen: UInt16 = 0
        if try reader.beginObject("claims are not a JSON object") {
            throw .malformed("claims are missing jti, sub, region, scope or iat")
        }
        while true {
            let bit = member(try reader.memberName())
            switch bit {
            case jti:
                let value = try reader.string(allowControl: false)
                guard let id = UUIDBytes(utf8: UnsafeRawBufferPointer(value)), !id.isNil else {
                    throw .malformed("claim jti is not a UUID")
                }
                claims.id = id
            case sub:
                claims.account = try reader.string(allowControl: false)
                guard claims.account.count <= ShortString.capacity, !claims.account.isEmpty else {
                    throw .malformed("claim sub is empty or longer than 64 bytes")
                }
            case region:
                claims.region = try reader.string(allowControl: false)
                guard claims.region.count <= ShortString.capacity, !claims.region.isEmpty else {
                    throw .malformed("claim region is empty or longer than 64 bytes")
                }
            case scope:
                let value = try reader.string(allowControl: false)
                guard value.count <= ShortString.capacity else { throw .malformed("claim scope has an unknown value") }
                claims.scope = try parseScope(value)
            case iat:
                claims.issuedAt = try reader.numericDate()
            case exp:
                claims.expiresAt = try reader.numericDate()
            case nbf:
                claims.notBefore = try reader.numericDate()
            case namespaces:
                claims.namespaceRestricted = true
                try reader.expect(UInt8(ascii: "["), "claim namespaces is not an array")
                reader.skipWhitespace()
                if reader.peek == UInt8(ascii: "]") { throw .malformed("claim namespaces is empty") }
                var count = 0
                while true {
                    reader.skipWhitespace()
                    let value = try reader.string(allowControl: false)
                    guard value.count <= ShortString.capacity, !value.isEmpty else {
                        throw .malformed("a namespace is empty or longer than 64 bytes")
                    }
                    count += 1
                    guard count <= maximumNamespaces else { throw .malformed("claim namespaces lists more than 64 namespaces") }
                    namespace(value)
                    reader.skipWhitespace()
                    guard !reader.isAtEnd else { throw .malformed("unterminated namespaces array") }
                    let c = reader.peek
                    reader.index += 1
                    if c == UInt8(ascii: "]") { break }
                    guard c == UInt8(ascii: ",") else { throw .malformed("expected ',' or ']' in namespaces") }
                }
            default:
                throw .malformed("claims have an unknown member")
            }
            guard seen & bit == 0 else { throw .malformed("claims have a duplicate member") }
            seen |= bit
            if try reader.endOfMember() { break }
        }
        try reader.expectEnd()
        guard seen & required == required else { throw .malformed("claims are missing jti, sub, region, scope or iat") }
        return claims
    }
}

extension TokenClaims {
    /// Parses claims JSON strictly, as the verifier does. This does not check any signature:
    /// use it on a token that ``TokenVerifier`` accepted, or for display.
    public init(json: [UInt8]) throws(TokenError) {
        var namespaces: [String] = []
        var text = json  // parsed in place
        let parsed: Result<(ParsedClaims, String, String), TokenError> = text.withUnsafeMutableBufferPointer { buffer in
            Result { () throws(TokenError) in
                let claims = try ClaimsParser.parse(buffer) { namespaces.append(String(decoding: $0, as: UTF8.self)) }
                return (claims, String(decoding: claims.account, as: UTF8.self), String(decoding: claims.region, as: UTF8.self))
            }
        }
        let (claims, account, region) = try parsed.get()
        self.init(id: claims.id, account: account, region: region, scope: claims.scope,
                  issuedAt: claims.issuedAt, expiresAt: claims.expiresAt, notBefore: claims.notBefore,
                  namespaces: claims.namespaceRestricted ? namespaces : nil)
    }
}
