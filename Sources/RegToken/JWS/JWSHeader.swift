/// The algorithm named by a JWS header, including those regtoken refuses.
enum HeaderAlgorithm: Sendable, Equatable {
    case supported(Algorithm)
    /// `none` in any spelling, or an algorithm regtoken does not accept.
    case unsupported
}

/// A parsed JWS protected header. Only `alg`, `kid` and `typ` are accepted: any other member
/// (`crit`, `jku`, `jwk`, `x5u`, `x5c`, `b64`, `cty`, ...) makes the header malformed, so no
/// header can ask the verifier to fetch a key, trust an embedded key, skip base64 or nest tokens.
struct JWSHeader {
    var algorithm: HeaderAlgorithm = .unsupported
    var keyID = ShortString()
    var hasKeyID = false
    var type = ShortString()
    var hasType = false

    init() {}

    /// Parses the decoded header JSON, in place (its strings are decoded over their own text).
    static func parse(_ json: UnsafeMutableBufferPointer<UInt8>) throws(TokenError) -> JWSHeader {
        var header = JWSHeader()
        var reader = JSONReader(json)
        var seenAlg = false
        if try reader.beginObject("header is not a JSON object") {
            throw .malformed("header has no alg")
        }
        while true {
            let name = try reader.memberName()
            if JSONReader.equals(name, "alg") {
                guard !seenAlg else { throw .malformed("header has a duplicate member") }
                seenAlg = true
                guard reader.nextIsString else { throw .malformed("header alg is not a string") }
                let value = try reader.string(allowControl: true)
                if JSONReader.equals(value, "HS256") {
                    header.algorithm = .supported(.hs256)
                } else if JSONReader.equals(value, "ES256") {
                    header.algorithm = .supported(.es256)
                } else {
                    header.algorithm = .unsupported
                }
            } else if JSONReader.equals(name, "kid") {
                guard !header.hasKeyID else { throw .malformed("header has a duplicate member") }
                header.hasKeyID = true
                guard reader.nextIsString else { throw .malformed("header kid is not a string") }
                // A kid too long for any key id cannot name a key: unknown key (an empty kid).
                let value = try reader.string(allowControl: true)
                header.keyID = ShortString(bytes: value) ?? ShortString()
            } else if JSONReader.equals(name, "typ") {
                guard !header.hasType else { throw .malformed("header has a duplicate member") }
                header.hasType = true
                guard reader.nextIsString else { throw .malformed("header typ is not a string") }
                guard let type = ShortString(bytes: try reader.string(allowControl: true)) else {
                    throw .malformed("header typ is not accepted")
                }
                header.type = type
            } else {
                throw .malformed("header has a member other than alg, kid and typ")
            }
            if try reader.endOfMember() { break }
        }
        try reader.expectEnd()
        guard seenAlg else { throw .malformed("header has no alg") }
        return header
    }
}
