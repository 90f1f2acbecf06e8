/// Claims as the verifier parses them: inline values, no allocation.
struct ParsedClaims {
    var id = UUIDBytes(high: 0, low: 0)
    var account = ShortString()
    var region = ShortString()
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

    /// The most namespaces a token may list.
    static let maximumNamespaces = 64

    /// A scope is a comma-separated set of actions, each at most once, in any order: `pull`,
    /// `pull,push` or `pull,push,delete`. Anything else (an unknown action, `push` without `pull`,
    /// `delete` without `push`, spaces, repeats) is refused.
    static func parseScope(_ value: ShortString) throws(TokenError) -> Scope {
        var pull = false, push = false, delete = false
        var start = 0
        var i = 0
        while i <= value.count {
            if i == value.count || value[i] == UInt8(ascii: ",") {
                if isWord(value, start, i, "pull") && !pull {
                    pull = true
                } else if isWord(value, start, i, "push") && !push {
                    push = true
                } else if isWord(value, start, i, "delete") && !delete {
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

    /// True when `value[start..<end]` is the ASCII `word`. (A function, not a closure: a closure
    /// capturing the loop's variables would be boxed on the heap in debug builds.)
    private static func isWord(_ value: borrowing ShortString, _ start: Int, _ end: Int, _ word: StaticString) -> Bool {
        guard end - start == word.utf8CodeUnitCount else { return false }
        for k in 0..<(end - start) where value[start + k] != word.utf8Start[k] { return false }
        return true
    }

    /// Parses `json`, calling `namespace` for each listed namespace.
    static func parse(_ json: UnsafeBufferPointer<UInt8>, namespace: (borrowing ShortString) -> Void) throws(TokenError) -> ParsedClaims {
        var claims = ParsedClaims()
        var reader = JSONReader(json)
        var seen: UInt16 = 0
        if try reader.beginObject("claims are not a JSON object") {
            throw .malformed("claims are missing jti, sub, region, scope or iat")
        }
        var name = ShortString()
        var value = ShortString()
        while true {
            guard try reader.memberName(into: &name) else { throw .malformed("claims have an unknown member") }
            let bit: UInt16
            if name.equals("jti") {
                bit = jti
                guard try reader.string(into: &value, allowControl: false), let id = UUIDBytes(value), !id.isNil else {
                    throw .malformed("claim jti is not a UUID")
                }
                claims.id = id
            } else if name.equals("sub") {
                bit = sub
                guard try reader.string(into: &claims.account, allowControl: false), !claims.account.isEmpty else {
                    throw .malformed("claim sub is empty or longer than 64 bytes")
                }
            } else if name.equals("region") {
                bit = region
                guard try reader.string(into: &claims.region, allowControl: false), !claims.region.isEmpty else {
                    throw .malformed("claim region is empty or longer than 64 bytes")
                }
            } else if name.equals("scope") {
                bit = scope
                guard try reader.string(into: &value, allowControl: false) else { throw .malformed("claim scope has an unknown value") }
                claims.scope = try parseScope(value)
            } else if name.equals("iat") {
                bit = iat
                claims.issuedAt = try reader.numericDate()
            } else if name.equals("exp") {
                bit = exp
                claims.expiresAt = try reader.numericDate()
            } else if name.equals("nbf") {
                bit = nbf
                claims.notBefore = try reader.numericDate()
            } else if name.equals("namespaces") {
                bit = namespaces
                claims.namespaceRestricted = true
                try reader.expect(UInt8(ascii: "["), "claim namespaces is not an array")
                reader.skipWhitespace()
                if reader.peek == UInt8(ascii: "]") { throw .malformed("claim namespaces is empty") }
                var count = 0
                while true {
                    reader.skipWhitespace()
                    guard try reader.string(into: &value, allowControl: false), !value.isEmpty else {
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
            } else {
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
        let parsed: Result<ParsedClaims, TokenError> = json.withUnsafeBufferPointer { buffer in
            Result { () throws(TokenError) in try ClaimsParser.parse(buffer) { namespaces.append($0.string) } }
        }
        let claims = try parsed.get()
        self.init(id: claims.id, account: claims.account.string, region: claims.region.string, scope: claims.scope,
                  issuedAt: claims.issuedAt, expiresAt: claims.expiresAt, notBefore: claims.notBefore,
                  namespaces: claims.namespaceRestricted ? namespaces : nil)
    }
}
