import RegToken

/// The token carried by an `Authorization` header: `Basic base64(token:<token>)`, as
/// `docker login -u token -p <token>` sends it, or `Bearer <token>`.
public enum Credentials: Sendable, Equatable {
    /// The token's bytes: the password of `Basic` credentials for the user `token`, or the `Bearer` value.
    case token([UInt8])
    /// No `Authorization` header (or skopeo's empty `Basic Og==`): the client must log in.
    case none
    /// A header that carries no usable token; the reason says why.
    case unusable(String)

    /// Parses the values of every `Authorization` header of a request.
    public static func parse(_ values: [String]) -> Credentials {
        parse(first: values.first, count: values.count)
    }

    /// ``parse(_:)`` given the first value and how many there are (a proxy's decision finds
    /// them without making an array per request).
    ///
    /// The value is read on its bytes: spaces and tabs around it and after the scheme are
    /// skipped, the scheme is compared in any letter case, and `Basic` credentials are decoded
    /// by ``decodeBase64(_:)`` into the one array the token is returned in.
    package static func parse(first value: String?, count: Int) -> Credentials {
        guard var value else { return .none }
        guard count == 1 else { return .unusable("several Authorization headers") }
        return value.withUTF8 { bytes in
            var start = 0, end = bytes.count
            while start < end, bytes[start] == 0x20 || bytes[start] == 0x09 { start += 1 }
            while end > start, bytes[end - 1] == 0x20 || bytes[end - 1] == 0x09 { end -= 1 }
            var space = start
            while space < end, bytes[space] != 0x20 { space += 1 }
            let scheme = UnsafeBufferPointer(rebasing: bytes[start..<space])
            var rest = space
            while rest < end, bytes[rest] == 0x20 || bytes[rest] == 0x09 { rest += 1 }
            let credentials = UnsafeBufferPointer(rebasing: bytes[rest..<end])
            if HTTPBytes.equals(UnsafeRawBufferPointer(scheme), lowercase: "basic") {
                guard credentials.count <= 16384, var decoded = decodeBase64(credentials) else {
                    return .unusable("Basic credentials are not valid base64")
                }
                guard let colon = decoded.firstIndex(of: UInt8(ascii: ":")) else {
                    return .unusable("Basic credentials have no ':' between user and password")
                }
                if colon == 0 && decoded.count == 1 { return .none }
                guard decoded[..<colon].elementsEqual("token".utf8) else {
                    return .unusable("log in with the user name 'token' and a token as password")
                }
                guard colon + 1 < decoded.count else { return .unusable("the password (the token) is empty") }
                // The password moved to the front, in place: no second array.
                decoded.removeSubrange(...colon)
                return .token(decoded)
            }
            if HTTPBytes.equals(UnsafeRawBufferPointer(scheme), lowercase: "bearer") {
                guard !credentials.isEmpty else { return .unusable("the Bearer token is empty") }
                return .token(Array(credentials))
            }
            return .unusable("use Basic (user 'token') or Bearer credentials")
        }
    }

    /// Decodes standard base64 strictly (RFC 4648 §4: `A–Z a–z 0–9 + /`): groups of four
    /// characters, `=` padding only as the last one or two characters, no whitespace or other
    /// character anywhere (Go's `base64.StdEncoding` also skips CR and LF, which a header value
    /// cannot hold); unused bits of the last group may be set (Go and Python allow them too).
    ///
    /// Written here rather than called from Foundation because the proxy decodes a token's
    /// Basic credentials on every request: Foundation's decoder wants a `String` copy of them
    /// and returns `Data` that is copied again (three allocations for one token, against one).
    /// Foundation's also took `=` anywhere and missing padding, which no client sends: such
    /// credentials are now refused as not base64. `Tests/RegTokenProxyTests/CredentialsTests.swift`
    /// checks this decoder against Python's strict one and Foundation's.
    /// - Returns: the bytes, or nil when `text` is not base64.
    package static func decodeBase64(_ text: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        guard text.count % 4 == 0 else { return nil }
        if text.isEmpty { return [] }
        var padding = 0
        if text[text.count - 1] == UInt8(ascii: "=") { padding = text[text.count - 2] == UInt8(ascii: "=") ? 2 : 1 }
        let length = text.count / 4 * 3 - padding
        var failed = false
        // Each character's bits from a table, and no branch per group: a byte that is not
        // base64 (0xFF in the table) is found once the loop is done, from the bits of every
        // value seen (a branch on each character's class mispredicted on base64's random text).
        let out = sextets.withUnsafeBufferPointer { sextet in
            [UInt8](unsafeUninitializedCapacity: length) { out, initialized in
                func six(_ i: Int) -> UInt32 { UInt32(sextet[Int(text[i])]) }
                var seen: UInt32 = 0
                var o = 0
                var i = 0
                // Every group but the last, which may be padded.
                while i < text.count - 4 {
                    let s0 = six(i), s1 = six(i + 1), s2 = six(i + 2), s3 = six(i + 3)
                    seen |= s0 | s1 | s2 | s3
                    let group = s0 << 18 | s1 << 12 | s2 << 6 | s3
                    out[o] = UInt8(truncatingIfNeeded: group >> 16)
                    out[o + 1] = UInt8(truncatingIfNeeded: group >> 8)
                    out[o + 2] = UInt8(truncatingIfNeeded: group)
                    o += 3
                    i += 4
                }
                let s0 = six(i), s1 = six(i + 1)
                let s2 = padding == 2 ? 0 : six(i + 2)
                let s3 = padding >= 1 ? 0 : six(i + 3)
                seen |= s0 | s1 | s2 | s3
                let group = s0 << 18 | s1 << 12 | s2 << 6 | s3
                out[o] = UInt8(truncatingIfNeeded: group >> 16)
                if padding < 2 { out[o + 1] = UInt8(truncatingIfNeeded: group >> 8) }
                if padding < 1 { out[o + 2] = UInt8(truncatingIfNeeded: group) }
                failed = seen >= 64
                initialized = failed ? 0 : length
            }
        }
        return failed ? nil : out
    }

    /// Every byte's six bits as a base64 character, or 0xFF (``value(_:)``), by the byte.
    private static let sextets: [UInt8] = (0...255).map { value(UInt8($0)) }

    /// A base64 character's six bits, or 0xFF for any other byte (`=` included).
    private static func value(_ c: UInt8) -> UInt8 {
        switch c {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): c - UInt8(ascii: "A")
        case UInt8(ascii: "a")...UInt8(ascii: "z"): c - UInt8(ascii: "a") + 26
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0") + 52
        case UInt8(ascii: "+"): 62
        case UInt8(ascii: "/"): 63
        default: 0xFF
        }
    }
}

/// The `Authorization` value a connection sent last and the token it carried. A client sends the
/// same value on every request of a connection, and ``Credentials/parse(first:count:)`` is a
/// function of the value alone: a proxy keeps one of these per connection, and a value is decoded
/// only when its bytes differ from the one before (compared in constant time, as a credential:
/// not with `String`'s `==`, which takes canonically equivalent text, such as U+212A for `K`, as
/// equal). The token is checked on every request as if it had been decoded again: only the
/// decoding is saved.
package struct CredentialsMemo: Sendable {
    private var value: String?
    private var token: [UInt8] = []

    package init() {}

    /// ``Credentials/parse(first:count:)``, from the memo when `first` is the value it holds.
    package mutating func parse(first: String?, count: Int) -> Credentials {
        if count == 1, let first, let value, Self.sameBytes(first, value) { return .token(token) }
        let parsed = Credentials.parse(first: first, count: count)
        if case .token(let bytes) = parsed {
            value = first
            token = bytes
        }
        return parsed
    }

    /// The same storage (a proxy's codec hands on the previous head's strings when a head's
    /// field lines repeat it byte for byte) holds the same bytes; else they are compared.
    private static func sameBytes(_ a: String, _ b: String) -> Bool {
        a.utf8.span.withUnsafeBytes { pa in
            b.utf8.span.withUnsafeBytes { pb in
                (pa.baseAddress == pb.baseAddress && pa.count == pb.count) || HTTPBytes.sameBytes(pa, pb)
            }
        }
    }
}
