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
    var repositoryRestricted = false
    var addressRestricted = false
}

/// One entry of a list claim, as the parser hands it to its caller (checked, not copied).
enum ClaimListItem {
    /// A namespace of `namespaces`.
    case namespace(UnsafeBufferPointer<UInt8>)
    /// A rule of `repositories`: its pattern (valid) and actions.
    case rule(pattern: UnsafeBufferPointer<UInt8>, actions: RepositoryRule.Actions)
    /// A range of `allow_from`.
    case range(AddressRange)
}

/// The strict claims parser: known members only, each at most once, each of its type.
enum ClaimsParser {
    // The members' bits, from the one description of the issued layout (``IssuedClaim``).
    private static var jti: UInt16 { IssuedClaim.jti.bit }
    private static var sub: UInt16 { IssuedClaim.sub.bit }
    private static var region: UInt16 { IssuedClaim.region.bit }
    private static var scope: UInt16 { IssuedClaim.scope.bit }
    private static var iat: UInt16 { IssuedClaim.iat.bit }
    private static var exp: UInt16 { IssuedClaim.exp.bit }
    private static var nbf: UInt16 { IssuedClaim.nbf.bit }
    private static var namespaces: UInt16 { IssuedClaim.namespaces.bit }
    private static var repositories: UInt16 { IssuedClaim.repositories.bit }
    private static var allowFrom: UInt16 { IssuedClaim.allowFrom.bit }
    private static var required: UInt16 { IssuedClaim.requiredBits }
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

    /// The bit of the member `name` names, or ``unknown``: the claim of ``IssuedClaim`` whose
    /// name has this length and these bytes. Out of the hot path (``nextMember(_:)`` reads the
    /// compact names), so a loop over the description: no table to keep beside it.
    @inline(__always)
    static func member(_ name: UnsafeBufferPointer<UInt8>) -> UInt16 {
        var r = 0
        // By raw value, not `allCases` (an array built, so allocated, per call).
        while let claim = IssuedClaim(rawValue: r) {
            if claim.isNamed(name) { return claim.bit }
            r += 1
        }
        return unknown
    }

    /// The member whose name starts at the reader, with the reader moved past the name, its `:`
    /// and any whitespace; what `member(reader.memberName())` returns, and where it leaves the reader.
    ///
    /// Compact names (`"jti":`, `"sub":`, `"iat":`, `"exp":`, `"nbf":`, `"scope":`, `"region":`,
    /// as the issuer writes them) are recognised by comparing the next eight bytes with words of
    /// ``IssuedClaim``'s openings (folded into constants by the optimiser):
    /// the reader then moves by a length the (predicted) match fixes, instead of by the result of
    /// a scan for the closing quote, which put a load and a bit scan per name on the chain of
    /// dependent loads that parsing is. The bytes compared are the whole quoted name and its
    /// colon, so a match is exactly the name the general path reads; anything else (escapes,
    /// whitespace before the colon, `namespaces`, unknown names, fewer than eight bytes left)
    /// takes the general path.
    @inline(__always)
    static func nextMember(_ reader: inout JSONReader) throws(TokenError) -> UInt16 {
        reader.skipWhitespace()
        if let w = reader.peekWord() {
            /// The claim's quoted name and `:` as the word `w` holds them (eight bytes at most).
            @inline(__always) func quoted(_ claim: IssuedClaim) -> UInt64 {
                claim.leadWord(from: 1, count: min(claim.quotedNameCount, 8))
            }
            var bit = unknown
            var length = 0
            // The three-letter names: `"abc":` in the low six bytes.
            switch w & IssuedClaim.mask(6) {
            case quoted(.jti): bit = jti; length = IssuedClaim.jti.quotedNameCount
            case quoted(.sub): bit = sub; length = IssuedClaim.sub.quotedNameCount
            case quoted(.iat): bit = iat; length = IssuedClaim.iat.quotedNameCount
            case quoted(.exp): bit = exp; length = IssuedClaim.exp.quotedNameCount
            case quoted(.nbf): bit = nbf; length = IssuedClaim.nbf.quotedNameCount
            default:
                if w == quoted(.scope) {  // "scope": (eight bytes)
                    bit = scope; length = IssuedClaim.scope.quotedNameCount
                } else if w == quoted(.region), reader.index &+ 8 < reader.end,
                          reader.base[reader.index &+ 8] == IssuedClaim.region.leadByte(9) {  // "region" and its `:`
                    bit = region; length = IssuedClaim.region.quotedNameCount
                }
            }
            if length > 0 {
                reader.index &+= length
                reader.skipWhitespace()
                return bit
            }
        }
        return try generalMember(&reader)
    }

    /// The general path of ``nextMember(_:)``, out of line so that the word compare inlines.
    @inline(never)
    static func generalMember(_ reader: inout JSONReader) throws(TokenError) -> UInt16 {
        member(try reader.memberName())
    }

    /// Reads the `jti` value. The common case, `"` and 36 bytes that parse as a UUID and `"`,
    /// is taken without scanning for the closing quote: a UUID's text is hex digits and dashes
    /// only (no quote, backslash or control byte), so those 36 bytes are exactly the string the
    /// reader would return. Anything else (escapes included) is read as a string and parsed.
    @inline(__always)
    static func readID(_ reader: inout JSONReader) throws(TokenError) -> UUIDBytes? {
        let i = reader.index
        if i &+ 38 <= reader.end && reader.base[i] == UInt8(ascii: "\"") && reader.base[i &+ 37] == UInt8(ascii: "\""),
           let id = UUIDBytes(utf8: UnsafeRawBufferPointer(start: reader.base + (i &+ 1), count: 36)) {
            reader.index = i &+ 38
            return id
        }
        let value = try reader.string(allowControl: false)
        return UUIDBytes(utf8: UnsafeRawBufferPointer(value))
    }

    /// Parses `json` in place (its strings are decoded over their own text), calling `item`
    /// for each entry of its list claims (namespaces, repository rules, address ranges).
    ///
    /// Claims exactly as regtoken's issuer lays them out are read by ``issuedLayout(_:)``; any
    /// other text (or any doubt) goes to the strict member-by-member parser, which defines what
    /// is accepted.
    @inline(__always)
    static func parse(_ json: UnsafeMutableBufferPointer<UInt8>, item: (ClaimListItem) -> Void) throws(TokenError) -> ParsedClaims {
        if let claims = issuedLayout(UnsafeBufferPointer(json)) { return claims }
        return try parseMembers(json, item: item)
    }

    /// Claims in the byte layout ``TokenClaims/json`` writes, without namespaces and without
    /// `nbf`, read by fixed offsets and word compares: `{"jti":"<uuid>","sub":"<account>",
    /// "region":"<region>","scope":"pull"|"pull,push"|"pull,push,delete","iat":<s>[,"exp":<s>]}`
    /// with no whitespace. Returns nil for anything else, and the caller then runs the strict
    /// parser from the start; nothing here writes to the buffer, so that parse sees the text
    /// as it came.
    ///
    /// Why: the strict parser's loop (whitespace checks, a member dispatch, the duplicate and
    /// required-member bookkeeping, an end-of-member test per member) is a chain of dependent
    /// branches; with the layout fixed, most positions are known once the account and region
    /// lengths are, and the member names are a few constant compares.
    ///
    /// It returns a value only where the strict parser returns the same value: every member is
    /// present once, in an order the parser accepts; the strings it slices are plain runs
    /// (printable ASCII without quote or backslash, see ``JSONReader/plainRunEnd(from:)``), which
    /// the parser returns unchanged, with the parser's length limits; the UUID goes through the
    /// same parser and nil check as ``readID(_:)``; the dates are 1 to 15 digits without a
    /// leading zero, followed by exactly `,` or `}`; and `}` must be the last byte. Escapes, non-ASCII
    /// or control bytes, whitespace, other members or orders, `0` as a date: nil, and the strict
    /// parser decides (checked against it for every byte value at every position in the tests).
    @inline(__always)
    static func issuedLayout(_ json: UnsafeBufferPointer<UInt8>) -> ParsedClaims? {
        // The layout's texts and offsets come from ``IssuedClaim`` (the optimiser folds them
        // into constants). The shortest such text: jti's lead, 36, `"`, sub's lead, 1, `"`,
        // region's lead, 1, `"`, scope's lead, `pull"`, iat's lead, 1 digit, `}`: 92 bytes, so
        // the offsets up to the account are safe.
        let jtiLead = IssuedClaim.jti.leadCount, subLead = IssuedClaim.sub.leadCount
        let regionLead = IssuedClaim.region.leadCount, scopeLead = IssuedClaim.scope.leadCount
        let shortest = jtiLead + 37 + subLead + 2 + regionLead + 2 + scopeLead + 5 + IssuedClaim.iat.leadCount + 2
        guard let base = json.baseAddress, json.count >= shortest else { return nil }
        let end = json.count
        let reader = JSONReader(base: UnsafeMutablePointer(mutating: base), end: end)
        /// The eight bytes at `i` as a little-endian word.
        @inline(__always) func word(_ i: Int) -> UInt64 {
            UInt64(littleEndian: UnsafeRawPointer(base + i).loadUnaligned(as: UInt64.self))
        }
        // The leads (a member's opening, and a string value's quote) as the words the token holds
        // there: computed here, in this function, where the optimiser folds them into constants
        // (passed to a helper as a claim, they were computed on every call).
        let jtiWord = IssuedClaim.jti.leadWord(), subWord = IssuedClaim.sub.leadWord()
        let regionWord = IssuedClaim.region.leadWord(), regionTail = IssuedClaim.region.leadWord(from: regionLead - 8)
        let scopeWord = IssuedClaim.scope.leadWord(), scopeTail = IssuedClaim.scope.leadWord(from: scopeLead - 8)
        let iatWord = IssuedClaim.iat.leadWord(), expWord = IssuedClaim.exp.leadWord()
        let iatLead = IssuedClaim.iat.leadCount, expLead = IssuedClaim.exp.leadCount
        /// True when the lead `first` (`count` bytes; when more than eight, `tail` holds its last
        /// eight) is at `i`; the caller has checked that `max(8, count)` bytes are there.
        @inline(__always) func lead(at i: Int, _ first: UInt64, _ count: Int, _ tail: UInt64 = 0) -> Bool {
            if count <= 8 { return word(i) & IssuedClaim.mask(count) == first }
            return word(i) == first && word(i &+ count &- 8) == tail
        }
        /// The plain string that starts at `start` (after its quote): the index of its closing
        /// quote when it is 1 to 64 plain bytes followed by `"`, else nil.
        @inline(__always) func plainString(_ start: Int) -> Int? {
            let close = reader.plainRunEnd(from: start)
            guard close < end, base[close] == UInt8(ascii: "\""), close > start, close &- start <= ShortString.capacity else { return nil }
            return close
        }
        /// The lead `leadWord` (`,"iat":` or `,"exp":`, `leadCount` bytes, at most eight) at `i`, then a date of 1 to 15
        /// digits that does not start with `0`: the date and the index after it. Such a date is
        /// below 2^53, so ``JSONReader/numericDate()`` reads the same value (it stops at the same
        /// byte, and the caller requires `,` or `}` there); a lone `0`, 16 digits or anything
        /// else is left to the strict parser.
        ///
        /// Two words: the eight bytes at the first digit, and when those are all digits, the
        /// eight bytes that end eight further on or at the end of the text, whichever comes
        /// first, shifted so that the ninth digit is lowest (the shift brings in zero bytes,
        /// which are not digits, in place of bytes past the end).
        @inline(__always) func date(_ i: Int, _ leadWord: UInt64, _ leadCount: Int) -> (Int64, Int)? {
            let start = i &+ leadCount
            guard start &+ 8 <= end, lead(at: i, leadWord, leadCount), base[start] != UInt8(ascii: "0") else { return nil }
            let first = word(start)
            let n = JSONReader.leadingDigits(first)
            guard n > 0 else { return nil }
            let high = Int64(JSONReader.value(ofDigits: first, count: n))
            if n < 8 { return (high, start &+ n) }
            let last = min(start &+ 16, end) &- 8
            let rest = word(last) &>> UInt64(8 &* (start &+ 8 &- last))
            let m = JSONReader.leadingDigits(rest)
            guard m < 8 else { return nil }
            if m == 0 { return (high, start &+ 8) }
            return (high &* JSONReader.powerOf10(m) &+ Int64(JSONReader.value(ofDigits: rest, count: m)), start &+ 8 &+ m)
        }

        var claims = ParsedClaims()
        // {"jti":"<36>"
        let idEnd = jtiLead &+ 36
        guard lead(at: 0, jtiWord, jtiLead), base[idEnd] == UInt8(ascii: "\""),
              let id = UUIDBytes(utf8: UnsafeRawBufferPointer(start: base + jtiLead, count: 36)), !id.isNil else { return nil }
        claims.id = id
        // ,"sub":"<account>"
        let accountStart = idEnd &+ 1 &+ subLead
        guard lead(at: idEnd &+ 1, subWord, subLead), let accountEnd = plainString(accountStart) else { return nil }
        claims.account = UnsafeBufferPointer(start: base + accountStart, count: accountEnd &- accountStart)
        // ,"region":"<region>"
        var i = accountEnd &+ 1
        guard i &+ regionLead &+ 1 <= end, lead(at: i, regionWord, regionLead, regionTail) else { return nil }
        i &+= regionLead
        guard let regionEnd = plainString(i) else { return nil }
        claims.region = UnsafeBufferPointer(start: base + i, count: regionEnd &- i)
        // ,"scope":"pull" or ,"scope":"pull,push"
        i = regionEnd &+ 1
        // scope's lead, `pull"`, iat's lead, 1 digit, `}`: 24 bytes at least.
        guard i &+ scopeLead &+ 5 &+ iatLead &+ 2 <= end, lead(at: i, scopeWord, scopeLead, scopeTail) else { return nil }
        i &+= scopeLead
        // The scope values the issuer writes most (and their closing quotes): Scope's spellings.
        let scope = word(i)
        if scope & IssuedClaim.mask(5) == littleEndianWord("pull\"") {
            claims.scope = .pull
            i &+= 5
        } else if scope == littleEndianWord("pull,push\""), base[i &+ 8] == UInt8(ascii: "h"), base[i &+ 9] == UInt8(ascii: "\"") {
            claims.scope = .pushPull
            i &+= 10
        } else {
            return nil  // pull,push,delete and every other spelling
        }
        // ,"iat":<s>
        guard let (issuedAt, afterIssuedAt) = date(i, iatWord, iatLead) else { return nil }
        claims.issuedAt = issuedAt
        i = afterIssuedAt
        // [,"exp":<s>]
        if i < end && base[i] == UInt8(ascii: ",") {
            guard let (expiresAt, afterExpiresAt) = date(i, expWord, expLead) else { return nil }
            claims.expiresAt = expiresAt
            i = afterExpiresAt
        }
        // } as the last byte
        guard i &+ 1 == end, base[i] == UInt8(ascii: "}") else { return nil }
        return claims
    }

    /// The strict parser: members in any order, with whitespace, escapes and `nbf`.
    static func parseMembers(_ json: UnsafeMutableBufferPointer<UInt8>, item: (ClaimListItem) -> Void) throws(TokenError) -> ParsedClaims {
        var claims = ParsedClaims()
        var reader = JSONReader(json)
        var seen: UInt16 = 0
        if try reader.beginObject("claims are not a JSON object") {
            throw .malformed("claims are missing jti, sub, region, scope or iat")
        }
        while true {
            let bit = try nextMember(&reader)
            switch bit {
            case jti:
                guard let id = try readID(&reader), !id.isNil else {
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
                try stringArray(&reader, maximum: maximumNamespaces, "claim namespaces is not a non-empty array of at most 64 namespaces") { (value) throws(TokenError) in
                    guard value.count <= ShortString.capacity, !value.isEmpty else {
                        throw .malformed("a namespace is empty or longer than 64 bytes")
                    }
                    item(.namespace(value))
                }
            case repositories:
                claims.repositoryRestricted = true
                try stringArray(&reader, maximum: RepositoryRule.maximumCount, "claim repositories is not a non-empty array of at most 32 rules") { (value) throws(TokenError) in
                    guard let (pattern, actions) = RepositoryRule.split(value) else {
                        throw .malformed("a repository rule is not pattern:actions")
                    }
                    item(.rule(pattern: pattern, actions: actions))
                }
            case allowFrom:
                claims.addressRestricted = true
                try stringArray(&reader, maximum: AddressRange.maximumCount, "claim allow_from is not a non-empty array of at most 32 ranges") { (value) throws(TokenError) in
                    guard let range = AddressRange(bytes: value) else { throw .malformed("an allow_from entry is not an address range") }
                    item(.range(range))
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

extension ClaimsParser {
    /// A non-empty JSON array of at most `maximum` strings, each handed to `value`.
    static func stringArray(_ reader: inout JSONReader, maximum: Int, _ problem: StaticString,
                            _ value: (UnsafeBufferPointer<UInt8>) throws(TokenError) -> Void) throws(TokenError) {
        try reader.expect(UInt8(ascii: "["), problem)
        reader.skipWhitespace()
        if reader.peek == UInt8(ascii: "]") { throw .malformed(problem) }
        var count = 0
        while true {
            reader.skipWhitespace()
            let string = try reader.string(allowControl: false)
            count += 1
            guard count <= maximum else { throw .malformed(problem) }
            try value(string)
            reader.skipWhitespace()
            guard !reader.isAtEnd else { throw .malformed(problem) }
            let c = reader.peek
            reader.index += 1
            if c == UInt8(ascii: "]") { break }
            guard c == UInt8(ascii: ",") else { throw .malformed(problem) }
        }
    }
}

extension TokenClaims {
    /// Parses claims JSON strictly, as the verifier does. This does not check any signature:
    /// use it on a token that ``TokenVerifier`` accepted, or for display.
    public init(json: [UInt8]) throws(TokenError) {
        var namespaces: [String] = []
        var rules: [RepositoryRule] = []
        var ranges: [AddressRange] = []
        var text = json  // parsed in place
        let parsed: Result<(ParsedClaims, String, String), TokenError> = text.withUnsafeMutableBufferPointer { buffer in
            Result { () throws(TokenError) in
                let claims = try ClaimsParser.parse(buffer) { item in
                    switch item {
                    case .namespace(let ns): namespaces.append(String(decoding: ns, as: UTF8.self))
                    case .rule(let pattern, let actions): rules.append(RepositoryRule(pattern: String(decoding: pattern, as: UTF8.self), actions: actions))
                    case .range(let range): ranges.append(range)
                    }
                }
                return (claims, String(decoding: claims.account, as: UTF8.self), String(decoding: claims.region, as: UTF8.self))
            }
        }
        let (claims, account, region) = try parsed.get()
        self.init(id: claims.id, account: account, region: region, scope: claims.scope,
                  issuedAt: claims.issuedAt, expiresAt: claims.expiresAt, notBefore: claims.notBefore,
                  namespaces: claims.namespaceRestricted ? namespaces : nil,
                  repositories: claims.repositoryRestricted ? rules : nil, allowFrom: claims.addressRestricted ? ranges : nil)
    }
}
