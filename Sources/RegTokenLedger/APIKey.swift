import FoundationEssentials
import RegToken

/// An account's API key for `regtoken serve`: `rtk_<id>_<secret>`, where the id (12 hex digits)
/// names the key and the secret is 32 random bytes in base64url. The ledger keeps the id and
/// the SHA-256 of the secret, never the key; a key is checked by looking its id up and comparing
/// the hash of the secret presented with the stored one in constant time. (A random 256-bit
/// secret needs no slow password hash: nobody can guess it from its SHA-256.)
public struct APIKey: Sendable {
    public let id: String
    public let secret: [UInt8]

    /// The key as the user types it. Shown once, when it is made.
    public var text: String { "rtk_\(id)_\(Self.base64url(secret))" }

    /// The hash the ledger keeps.
    public var hash: [UInt8] { Digest.sha256(secret) }

    /// A new random key.
    public static func generate() throws(LedgerError) -> APIKey {
        do {
            let id = try Digest.randomBytes(6).map { String($0, radix: 16).leftPadded(2) }.joined()
            return APIKey(id: id, secret: try Digest.randomBytes(32))
        } catch {
            throw LedgerError(.storage, "cannot make an API key: \(error.reason)")
        }
    }

    init(id: String, secret: [UInt8]) {
        self.id = id
        self.secret = secret
    }

    /// Parses a key as given (surrounding whitespace ignored); nil when it is not one.
    public init?(text: String) {
        let t = text.trimmingWhitespace
        let parts = t.split(separator: "_", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "rtk", parts[1].utf8.count == 12,
              parts[1].utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }),
              let secret = Self.fromBase64url(String(parts[2])), secret.count == 32 else { return nil }
        self.id = String(parts[1])
        self.secret = secret
    }
}

extension APIKey {
    static func base64url(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// Canonical base64url only (no padding, no other alphabet): what ``base64url(_:)`` writes.
    static func fromBase64url(_ text: String) -> [UInt8]? {
        guard text.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x2D || $0 == 0x5F })
        else { return nil }
        var padded = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while padded.utf8.count % 4 != 0 { padded += "=" }
        guard let data = Data(base64Encoded: padded) else { return nil }
        let bytes = Array(data)
        return base64url(bytes) == text ? bytes : nil
    }
}

extension String {
    func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }

}
