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

    /// Parses the decoded header JSON.
    static func parse(_ json: UnsafeBufferPointer<UInt8>) throws(TokenError) -> JWSHeader {
        var header = JWSHeader()
        var reader = JSONReader(json)
        var seenAlg = false
        if try reader.beginObject("header is not a JSON object") {
            throw .malformed("header has no alg")
        }
        var name = ShortString()
        var value = ShortString()
        while true {
            guard try reader.memberName(into: &name) else { throw .malformed("header has a member other than alg, kid and typ") }
            if name.equals("alg") {
                guard !seenAlg else { throw .malformed("header has a duplicate member") }
                seenAlg = true
                guard reader.nextIsString else { throw .malformed("header alg is not a string") }
                let fits = try reader.string(into: &value, allowControl: true)
                if fits && value.equals("HS256") {
                    header.algorithm = .supported(.hs256)
                } else if fits && value.equals("ES256") {
                    header.algorithm = .supported(.es256)
                } else {
                    header.algorithm = .unsupported
                }
            } else if name.equals("kid") {
                guard !header.hasKeyID else { throw .malformed("header has a duplicate member") }
                header.hasKeyID = true
                guard reader.nextIsString else { throw .malformed("header kid is not a string") }
                // A kid too long for any key id cannot name a key: unknown key.
                if try !reader.string(into: &header.keyID, allowControl: true) {
                    header.keyID = ShortString()
                }
            } else if name.equals("typ") {
                guard !header.hasType else { throw .malformed("header has a duplicate member") }
                header.hasType = true
                guard reader.nextIsString else { throw .malformed("header typ is not a string") }
                if try !reader.string(into: &header.type, allowControl: true) {
                    throw .malformed("header typ is not accepted")
                }
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
