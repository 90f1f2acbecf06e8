internal import CRegTokenOpenSSL

/// Small cryptographic helpers for regtoken's other modules (API keys, document ETags), through
/// OpenSSL's libcrypto like the rest of regtoken's cryptography.
package enum Digest {
    /// SHA-256 of `bytes`.
    package static func sha256(_ bytes: some Collection<UInt8>) -> [UInt8] {
        let input = Array(bytes) + [0]  // one byte more, so the pointer is never nil
        var out = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        let ok = input.withUnsafeBufferPointer { p in
            EVP_Digest(p.baseAddress, p.count - 1, &out, &length, EVP_sha256(), nil)
        }
        precondition(ok == 1 && length == 32, "EVP_Digest(SHA-256) failed")
        return out
    }

    /// Whether two byte strings are equal, in time that depends only on their lengths (for MACs
    /// and key hashes; `CRYPTO_memcmp`).
    package static func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        if a.isEmpty { return true }
        return a.withUnsafeBytes { pa in b.withUnsafeBytes { pb in CRYPTO_memcmp(pa.baseAddress, pb.baseAddress, pa.count) == 0 } }
    }

    /// `count` random bytes from OpenSSL's CSPRNG.
    package static func randomBytes(_ count: Int) throws(KeyError) -> [UInt8] {
        try OpenSSL.randomBytes(count)
    }
}
