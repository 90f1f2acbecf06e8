internal import CRegTokenOpenSSL
internal import CRegTokenFastPath

/// Helpers around libcrypto. Every call's return value is checked; on failure the per-thread
/// error queue is read into the error and cleared.
enum OpenSSL {
    /// The first queued OpenSSL error as text, and the queue cleared.
    static func drainError() -> String {
        let code = ERR_get_error()
        ERR_clear_error()
        guard code != 0 else { return "no OpenSSL error queued" }
        var buffer = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(code, &buffer, buffer.count)
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func randomBytes(_ count: Int) throws(KeyError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        let rc = out.withUnsafeMutableBytes { RAND_bytes($0.baseAddress!.assumingMemoryBound(to: UInt8.self), Int32($0.count)) }
        guard rc == 1 else { throw KeyError(.crypto, "could not get random bytes: \(drainError())") }
        return out
    }

    /// Reads a memory BIO's contents.
    static func contents(of bio: OpaquePointer) -> [UInt8] {
        var data: UnsafeMutablePointer<CChar>? = nil
        let n = CRegTokenOpenSSL_BIO_get_mem_data(bio, &data)
        guard n > 0, let data else { return [] }
        return Array(UnsafeRawBufferPointer(start: data, count: n))
    }

    /// A read-only memory BIO over `bytes` for the duration of `body`.
    static func withBIO<R>(_ bytes: [UInt8], _ body: (OpaquePointer) throws(KeyError) -> R) throws(KeyError) -> R {
        let result: Result<R, KeyError> = bytes.withUnsafeBytes { raw in
            guard let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count)) else {
                return .failure(KeyError(.crypto, "could not allocate a BIO: \(drainError())"))
            }
            defer { BIO_free(bio) }
            return Result { () throws(KeyError) -> R in try body(bio) }
        }
        return try result.get()
    }

    /// A fresh writable memory BIO for the duration of `body`; returns what was written.
    static func writingBIO(_ body: (OpaquePointer) -> Int32) throws(KeyError) -> [UInt8] {
        guard let bio = BIO_new(BIO_s_mem()) else {
            throw KeyError(.crypto, "could not allocate a BIO: \(drainError())")
        }
        defer { BIO_free(bio) }
        guard body(bio) == 1 else { throw KeyError(.crypto, "could not encode the key: \(drainError())") }
        return contents(of: bio)
    }
}

/// An owned P-256 `EVP_PKEY`. Immutable after init, so it can be shared across threads
/// (OpenSSL allows concurrent use of a key through separate contexts).
final class P256Key: @unchecked Sendable {
    let pkey: OpaquePointer
    /// Process-unique, never reused: names this key in the per-thread verification contexts and
    /// the ES256 verified-signature cache.
    let uid: UInt64
    let hasPrivateKey: Bool

    /// Takes ownership of `pkey`, which must be a P-256 key.
    init(taking pkey: OpaquePointer) throws(KeyError) {
        guard CRegTokenOpenSSL_is_p256(pkey) == 1 else {
            EVP_PKEY_free(pkey)
            throw KeyError(.invalidKey, "not a P-256 (prime256v1) EC key: ES256 needs P-256")
        }
        let hasPrivateKey = CRegTokenOpenSSL_has_private(pkey) == 1
        guard CRegTokenOpenSSL_check_key(pkey, hasPrivateKey ? 1 : 0) == 1 else {
            EVP_PKEY_free(pkey)
            ERR_clear_error()
            throw KeyError(.invalidKey, hasPrivateKey
                ? "the key's public point does not match its private scalar: the key file is damaged"
                : "the public point is not on the P-256 curve")
        }
        self.pkey = pkey
        self.uid = CRegTokenFastPath_next_key_uid()
        self.hasPrivateKey = hasPrivateKey
        ERR_clear_error()
        // A degenerate key: the private scalar 1 or n − 1 (the public point is ±G, whose x is
        // the generator's). Anyone can sign with it.
        if let point = try? publicPoint(), Array(point[1..<33]) == Self.generatorX {
            throw KeyError(.invalidKey, "degenerate P-256 key (its private scalar is 1 or n - 1): make a new key with regtoken keys generate")
        }
    }

    /// The x coordinate of P-256's generator G.
    static let generatorX: [UInt8] = [
        0x6B, 0x17, 0xD1, 0xF2, 0xE1, 0x2C, 0x42, 0x47, 0xF8, 0xBC, 0xE6, 0xE5, 0x63, 0xA4, 0x40, 0xF2,
        0x77, 0x03, 0x7D, 0x81, 0x2D, 0xEB, 0x33, 0xA0, 0xF4, 0xA1, 0x39, 0x45, 0xD8, 0x98, 0xC2, 0x96,
    ]

    deinit { EVP_PKEY_free(pkey) }

    static func generate() throws(KeyError) -> P256Key {
        guard let pkey = CRegTokenOpenSSL_generate_p256() else {
            throw KeyError(.crypto, "could not generate a P-256 key: \(OpenSSL.drainError())")
        }
        return try P256Key(taking: pkey)
    }

    /// A private key in PEM: PKCS#8 (`PRIVATE KEY`) or SEC1 (`EC PRIVATE KEY`, as
    /// `openssl ecparam -genkey` writes); or a public key (`PUBLIC KEY`, SubjectPublicKeyInfo).
    /// Encrypted keys are refused rather than prompting for a passphrase.
    static func fromPEM(_ pem: [UInt8]) throws(KeyError) -> P256Key {
        let text = String(decoding: pem, as: UTF8.self)
        let isPublic = text.contains("-----BEGIN PUBLIC KEY-----")
        let isPrivate = text.contains("-----BEGIN PRIVATE KEY-----") || text.contains("-----BEGIN EC PRIVATE KEY-----")
        if text.contains("ENCRYPTED") {
            throw KeyError(.unreadable, "encrypted PEM keys are not supported; decrypt it with `openssl pkey`")
        }
        guard isPublic || isPrivate else {
            throw KeyError(.unreadable, "not a PEM key (expected PRIVATE KEY, EC PRIVATE KEY or PUBLIC KEY)")
        }
        let pkey: OpaquePointer = try OpenSSL.withBIO(pem) { (bio) throws(KeyError) -> OpaquePointer in
            let key = isPrivate ? CRegTokenOpenSSL_PEM_read_private_key(bio) : CRegTokenOpenSSL_PEM_read_public_key(bio)
            guard let key else { throw KeyError(.unreadable, "could not parse the PEM key: \(OpenSSL.drainError())") }
            return key
        }
        return try P256Key(taking: pkey)
    }

    /// The uncompressed public point (65 bytes: 0x04 || X || Y).
    static let spkiPrefix: [UInt8] = [
        0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
        0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
    ]

    /// A public key from its uncompressed point; a point not on the curve is refused.
    static func fromPublicPoint(_ point: [UInt8]) throws(KeyError) -> P256Key {
        guard point.count == 65, point[0] == 0x04 else {
            throw KeyError(.invalidKey, "a P-256 public key is 65 bytes starting 0x04 (uncompressed)")
        }
        let der = spkiPrefix + point
        let pkey: OpaquePointer? = der.withUnsafeBufferPointer { buffer in
            var p: UnsafePointer<UInt8>? = buffer.baseAddress
            return d2i_PUBKEY(nil, &p, buffer.count)
        }
        guard let pkey else {
            throw KeyError(.invalidKey, "not a valid P-256 public key: \(OpenSSL.drainError())")
        }
        return try P256Key(taking: pkey)
    }

    /// The uncompressed public point, 0x04 || X || Y.
    func publicPoint() throws(KeyError) -> [UInt8] {
        var out: UnsafeMutablePointer<UInt8>? = nil
        let n = i2d_PUBKEY(pkey, &out)
        guard n == 91, let out else {
            if let out { CRYPTO_free(out, #fileID, #line) }
            throw KeyError(.crypto, "could not encode the public key: \(OpenSSL.drainError())")
        }
        defer { CRYPTO_free(out, #fileID, #line) }
        let der = Array(UnsafeBufferPointer(start: out, count: Int(n)))
        guard Array(der.prefix(26)) == Self.spkiPrefix else {
            throw KeyError(.crypto, "unexpected public key encoding")
        }
        return Array(der.suffix(65))
    }

    /// A public-only copy (for verifiers that must not be able to sign).
    func publicOnly() throws(KeyError) -> P256Key {
        try P256Key.fromPublicPoint(publicPoint())
    }

    func privatePEM() throws(KeyError) -> [UInt8] {
        guard hasPrivateKey else { throw KeyError(.cannotSign, "a public key has no private PEM") }
        return try OpenSSL.writingBIO { bio in
            PEM_write_bio_PKCS8PrivateKey(bio, pkey, nil, nil, 0, nil, nil)
        }
    }

    func publicPEM() throws(KeyError) -> [UInt8] {
        try OpenSSL.writingBIO { bio in PEM_write_bio_PUBKEY(bio, pkey) }
    }

    /// The DER SubjectPublicKeyInfo of the public key.
    func publicKeyDER() throws(KeyError) -> [UInt8] {
        Self.spkiPrefix + (try publicPoint())
    }

    /// A self-signed X.509 v3 certificate (PEM) of this key, named `commonName`, valid from an hour
    /// ago for `days` days, signed ECDSA with SHA-256: what a registry's `rootcertbundle` holds.
    func selfSignedCertificatePEM(commonName: String, days: Int, serial: UInt64) throws(KeyError) -> [UInt8] {
        guard hasPrivateKey else { throw KeyError(.cannotSign, "a public key cannot sign its certificate") }
        guard let x509 = X509_new() else { throw KeyError(.crypto, "could not allocate a certificate: \(OpenSSL.drainError())") }
        defer { X509_free(x509) }
        guard let serialNumber = ASN1_INTEGER_new() else { throw KeyError(.crypto, "could not allocate a serial number") }
        defer { ASN1_INTEGER_free(serialNumber) }
        let ok = X509_set_version(x509, 2) == 1
            && ASN1_INTEGER_set_uint64(serialNumber, serial & 0x7FFF_FFFF_FFFF_FFFF) == 1
            && X509_set_serialNumber(x509, serialNumber) == 1
            && X509_gmtime_adj(X509_getm_notBefore(x509), -3600) != nil
            && X509_gmtime_adj(X509_getm_notAfter(x509), days * 86_400) != nil
            && X509_set_pubkey(x509, pkey) == 1
        guard ok, let name = X509_get_subject_name(x509) else { throw KeyError(.crypto, "could not fill the certificate: \(OpenSSL.drainError())") }
        let named = commonName.withCString { cn in
            X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, UnsafeRawPointer(cn).assumingMemoryBound(to: UInt8.self), -1, -1, 0) == 1
        }
        guard named, X509_set_issuer_name(x509, name) == 1, X509_sign(x509, pkey, EVP_sha256()) > 0 else {
            throw KeyError(.crypto, "could not sign the certificate: \(OpenSSL.drainError())")
        }
        return try OpenSSL.writingBIO { bio in PEM_write_bio_X509(bio, x509) }
    }

    /// An ES256 signature (raw r || s, 64 bytes) of `message`.
    func sign(_ message: UnsafeRawBufferPointer) throws(KeyError) -> [UInt8] {
        guard hasPrivateKey else { throw KeyError(.cannotSign, "a public key cannot sign") }
        guard let ctx = EVP_MD_CTX_new() else { throw KeyError(.crypto, "could not allocate a context: \(OpenSSL.drainError())") }
        defer { EVP_MD_CTX_free(ctx) }
        guard EVP_DigestSignInit_ex(ctx, nil, "SHA256", nil, nil, pkey, nil) == 1 else {
            throw KeyError(.crypto, "could not start signing: \(OpenSSL.drainError())")
        }
        var der = [UInt8](repeating: 0, count: 80)
        var derLength = der.count
        let rc = der.withUnsafeMutableBufferPointer { d in
            EVP_DigestSign(ctx, d.baseAddress, &derLength, message.baseAddress?.assumingMemoryBound(to: UInt8.self), message.count)
        }
        guard rc == 1 else { throw KeyError(.crypto, "could not sign: \(OpenSSL.drainError())") }
        // DER ECDSA-Sig-Value to raw r || s, each left-padded to 32 bytes.
        let sig: OpaquePointer? = der.withUnsafeBufferPointer { d in
            var p: UnsafePointer<UInt8>? = d.baseAddress
            return d2i_ECDSA_SIG(nil, &p, derLength)
        }
        guard let sig else { throw KeyError(.crypto, "could not decode the signature: \(OpenSSL.drainError())") }
        defer { ECDSA_SIG_free(sig) }
        var raw = [UInt8](repeating: 0, count: 64)
        let ok = raw.withUnsafeMutableBufferPointer { r -> Bool in
            guard let rBN = ECDSA_SIG_get0_r(sig), let sBN = ECDSA_SIG_get0_s(sig) else { return false }
            return BN_bn2binpad(rBN, r.baseAddress, 32) == 32 && BN_bn2binpad(sBN, r.baseAddress! + 32, 32) == 32
        }
        guard ok else { throw KeyError(.crypto, "could not encode the signature: \(OpenSSL.drainError())") }
        return raw
    }

    /// ES256 verification of raw `r || s` over `message`, through the per-thread context cache.
    func isValidSignature(_ signature: UnsafeRawBufferPointer, for message: UnsafeRawBufferPointer) -> Bool {
        guard signature.count == 64, let sig = signature.baseAddress else { return false }
        return CRegTokenFastPath_es256_verify(
            UnsafeMutableRawPointer(pkey), uid,
            message.baseAddress, message.count,
            sig.assumingMemoryBound(to: UInt8.self)) == 1
    }
}

/// An HMAC-SHA256 secret with its pad states precomputed, in memory that is wiped on release:
/// the secret's bytes live in a buffer of their own (an array's storage could be copied, kept or
/// freed without being wiped), and deinit wipes them and the pad states with `OPENSSL_cleanse`
/// before the memory goes back (tested by watching `free`). The prefix states derived from the
/// pads are wiped by their owner, ``VerifierState``.
final class HMACSecret: @unchecked Sendable {
    /// Immutable after init.
    let pads: UnsafeMutablePointer<CRegTokenFastPath_HMACSHA256Pads>
    /// The secret. Immutable after init.
    let secret: UnsafeMutableRawBufferPointer

    /// A copy of the secret (for writing a key file): the caller owns that copy.
    var bytes: [UInt8] { Array(secret) }

    init(_ secret: [UInt8]) throws(KeyError) {
        pads = .allocate(capacity: 1)
        self.secret = .allocate(byteCount: secret.count, alignment: 16)
        self.secret.copyBytes(from: secret)
        let ok = secret.withUnsafeBytes { CRegTokenFastPath_hmac_sha256_init(pads, $0.baseAddress, $0.count) }
        guard ok == 1 else {
            let reason = OpenSSL.drainError()
            Self.wipe(pads: pads, secret: self.secret)
            throw KeyError(.crypto, "could not prepare the HMAC key: \(reason)")
        }
    }

    deinit { Self.wipe(pads: pads, secret: secret) }

    /// Wipes and frees what an HMACSecret owns.
    private static func wipe(pads: UnsafeMutablePointer<CRegTokenFastPath_HMACSHA256Pads>, secret: UnsafeMutableRawBufferPointer) {
        CRegTokenFastPath_hmac_sha256_clear(pads)
        pads.deallocate()
        OPENSSL_cleanse(secret.baseAddress, secret.count)
        secret.deallocate()
    }

    func mac(_ message: UnsafeRawBufferPointer) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        out.withUnsafeMutableBufferPointer { CRegTokenFastPath_hmac_sha256(pads, message.baseAddress, message.count, $0.baseAddress) }
        return out
    }

    /// Constant-time comparison of the first `tag.count` (1...32) bytes of the MAC.
    func isValidTag(_ tag: UnsafeRawBufferPointer, for message: UnsafeRawBufferPointer) -> Bool {
        guard tag.count >= 1, tag.count <= 32 else { return false }
        return CRegTokenFastPath_hmac_sha256_verify(pads, message.baseAddress, message.count, tag.baseAddress, tag.count) == 1
    }
}
