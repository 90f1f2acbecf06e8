import CRegTokenOpenSSL
import Foundation
import RegToken
import RegTokenAccess

/// What every fuzz target shares: fixed keys, so that the seed corpus (tokens and lists signed
/// with them) stays valid from run to run, a fixed clock, and the invariant check.
///
/// The ES256 key is the published RFC 7515 appendix A.3 key; the HS256 secret is 32 bytes of 0x42.
/// Neither protects anything.
public enum Fuzz {
    public static let now: Int64 = 1_800_000_000
    public static let region = "eu-west-1"

    public static let hsKey: SigningKey = must { try SigningKey(id: "hs-fuzz", hmacSecret: Array(repeating: 0x42, count: 32)) }
    public static let esKey: SigningKey = must {
        // RFC 7515 A.3's JWK (x f83OJ3D2..., y x_FEzRu9..., d jpsQnnGQ...) as SEC1 PEM.
        try SigningKey(id: "es-fuzz", pem: """
            -----BEGIN EC PRIVATE KEY-----
            MHcCAQEEII6bEJ5xkJi/mASH3x9dd+nLKWBuvtImO19XwhPfhPSyoAoGCCqGSM49
            AwEHoUQDQgAEf83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEXH8UTNG72b
            focs3+257rn0s2ldbqkLJK2KRiMohYjlrQ==
            -----END EC PRIVATE KEY-----

            """)
    }
    public static let ring: KeyRing = must { try KeyRing(keys: [hsKey, esKey], activeKeyID: "hs-fuzz") }

    /// A verifier with the ES256 cache on, so that hits and misses are both exercised.
    public static func verifier() -> TokenVerifier {
        TokenVerifier(keys: ring, configuration: VerifierConfiguration(signatureCacheCapacity: 64))
    }

    /// Stops the run with a message: an invariant that does not hold is a finding, like a crash.
    public static func check(_ condition: Bool, _ message: @autoclosure () -> String,
                             file: StaticString = #fileID, line: UInt = #line) {
        if !condition {
            FileHandle.standardError.write(Data("invariant failed at \(file):\(line): \(message())\n".utf8))
            abort()
        }
    }

    public static func must<T>(_ body: () throws -> T) -> T {
        do { return try body() } catch { fatalError("fuzz setup: \(error)") }
    }

    public static func base64(_ bytes: some Collection<UInt8>) -> String {
        Data(bytes).base64EncodedString()
    }

    public static func base64url(_ bytes: some Collection<UInt8>) -> String {
        Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// A compact JWS of exactly these header and payload bytes, correctly signed by `key`: lets
    /// the fuzzer reach the JSON parsers behind the signature check.
    public static func sign(header: some Collection<UInt8>, payload: some Collection<UInt8>, with key: SigningKey) -> String {
        let input = base64url(header) + "." + base64url(payload)
        return input + "." + base64url(must { try key.signature(for: Array(input.utf8)) })
    }

    /// True when the signature of a compact JWS is the HMAC-SHA256 of its signing input under
    /// `secret`, computed by OpenSSL's one-shot EVP_Q_mac (none of regtoken's HMAC code, no pad
    /// or prefix states): an independent second opinion on an accepted HS256 token.
    public static func independentHMACMatches(_ token: [UInt8], secret: [UInt8]) -> Bool {
        guard let dot = token.lastIndex(of: UInt8(ascii: ".")) else { return false }
        let input = Array(token[..<dot]) + [0]   // one byte more: an address even when empty
        var text = String(decoding: token[(dot + 1)...], as: UTF8.self).replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while text.utf8.count % 4 != 0 { text += "=" }
        guard let signature = Data(base64Encoded: text) else { return false }
        var mac = [UInt8](repeating: 0, count: 32)
        var length = 0
        let result = input.withUnsafeBufferPointer { m in
            EVP_Q_mac(nil, "HMAC", nil, "SHA256", nil, secret, secret.count, m.baseAddress, m.count - 1, &mac, 32, &length)
        }
        return result != nil && length == 32 && Array(signature) == mac
    }

    /// The claims of a compact JWS as Foundation reads them (base64url by hand, then
    /// JSONSerialization): an independent second opinion on what the verifier accepted.
    public static func independentClaims(_ token: [UInt8]) -> [String: Any]? {
        let parts = token.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard parts.count == 3 else { return nil }
        var text = String(decoding: parts[1], as: UTF8.self).replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while text.utf8.count % 4 != 0 { text += "=" }
        guard let data = Data(base64Encoded: text) else { return nil }
        return (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
    }

    /// Splits the input at the first occurrence of `separator` (the rest is empty when absent).
    public static func split(_ bytes: ArraySlice<UInt8>, at separator: UInt8) -> (ArraySlice<UInt8>, ArraySlice<UInt8>) {
        guard let i = bytes.firstIndex(of: separator) else { return (bytes, []) }
        return (bytes[..<i], bytes[(i + 1)...])
    }

    /// Whether `needle` occurs in `haystack`, byte for byte. (Foundation's `String.contains`
    /// traps on some strings with NUL and replacement characters: swift-corelibs-foundation's
    /// `range(of:)` converts indices through UTF-16. The targets must not crash on their own.)
    public static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard !needle.isEmpty else { return true }
        guard haystack.count >= needle.count else { return false }
        for start in 0...(haystack.count - needle.count) where haystack[start] == needle[0] {
            if haystack[start..<(start + needle.count)].elementsEqual(needle) { return true }
        }
        return false
    }

    public static func bytes(_ data: UnsafePointer<UInt8>?, _ size: Int) -> [UInt8] {
        guard let data, size > 0 else { return [] }
        return Array(UnsafeBufferPointer(start: data, count: size))
    }

    /// The plain reference for repository patterns: recursion over segments (`**` one or more
    /// whole segments) and, inside a segment, over bytes (`*` any run). Exponential at worst,
    /// which small inputs keep cheap; written apart from the matcher it checks.
    public static func referenceMatch(_ pattern: String, _ name: String) -> Bool {
        segments(Array(pattern.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)),
                 Array(name.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)))
    }

    private static func segments(_ p: [ArraySlice<UInt8>], _ n: [ArraySlice<UInt8>]) -> Bool {
        guard let first = p.first else { return n.isEmpty }
        if Array(first) == Array("**".utf8) {
            guard !n.isEmpty else { return false }
            for k in 1...n.count where segments(Array(p.dropFirst()), Array(n.dropFirst(k))) { return true }
            return false
        }
        guard let segment = n.first, glob(Array(first), Array(segment)) else { return false }
        return segments(Array(p.dropFirst()), Array(n.dropFirst()))
    }

    private static func glob(_ p: [UInt8], _ s: [UInt8]) -> Bool {
        guard let c = p.first else { return s.isEmpty }
        if c == UInt8(ascii: "*") {
            for k in 0...s.count where glob(Array(p.dropFirst()), Array(s.dropFirst(k))) { return true }
            return false
        }
        guard let d = s.first, d == c else { return false }
        return glob(Array(p.dropFirst()), Array(s.dropFirst()))
    }
}
