/// JWS compact serialization (RFC 7515) with one given key, for documents other than tokens
/// (the revocation list) and for checking published examples. Tokens go through
/// ``TokenIssuer`` and ``TokenVerifier``.
package enum JWS {
    /// A JWS that verified.
    package struct Verified: Sendable {
        package let algorithm: Algorithm
        package let keyID: String?
        package let type: String?
        package let payload: [UInt8]
    }

    /// Signs `payload` with `key`: protected header `{"alg":…,"kid":…,"typ":…}`.
    package static func sign(payload: [UInt8], key: SigningKey, type: String) throws(KeyError) -> String {
        let signingInput = Base64URL.encode(protectedHeader(algorithm: key.algorithm, keyID: key.id, type: type)) + "." + Base64URL.encode(payload)
        let signature = try key.signature(for: Array(signingInput.utf8))
        return signingInput + "." + Base64URL.encode(signature)
    }

    /// Signs `payload` with `key` under the protected header `header` (JSON, written by the caller:
    /// a registry's token header names its key its own way).
    package static func sign(header: [UInt8], payload: [UInt8], key: SigningKey) throws(KeyError) -> String {
        let signingInput = Base64URL.encode(header) + "." + Base64URL.encode(payload)
        let signature = try key.signature(for: Array(signingInput.utf8))
        return signingInput + "." + Base64URL.encode(signature)
    }

    /// The protected header ``sign(payload:key:type:)`` writes: `{"alg":…,"kid":…,"typ":…}`.
    static func protectedHeader(algorithm: Algorithm, keyID: String, type: String) -> [UInt8] {
        var w = JSONWriter()
        w.raw("{\"alg\":")
        w.string(algorithm.rawValue)
        w.raw(",\"kid\":")
        w.string(keyID)
        w.raw(",\"typ\":")
        w.string(type)
        w.raw("}")
        return w.bytes
    }

    /// Verifies a compact JWS with exactly `key`. The header may carry only `alg`, `kid` and
    /// `typ`; its `alg` must be the key's algorithm; a `kid`, when present, must be the key's id.
    package static func verify(_ compact: [UInt8], key: SigningKey) throws(TokenError) -> Verified {
        try verify(compact) { _ throws(TokenError) in key }
    }

    /// Verifies a compact JWS whose `kid` names a key of `keys`.
    package static func verify(_ compact: [UInt8], keys: KeyRing) throws(TokenError) -> Verified {
        try verify(compact) { (header) throws(TokenError) -> SigningKey in
            guard header.hasKeyID else { throw TokenError(.unknownKey, "header has no kid") }
            guard let key = keys.key(id: header.keyID.string) else { throw TokenError(.unknownKey, "no key with this kid") }
            return key
        }
    }

    /// Splits and decodes once, then checks the signature with the key `select` picks from the header.
    private static func verify(_ compact: [UInt8], select: (JWSHeader) throws(TokenError) -> SigningKey) throws(TokenError) -> Verified {
        let result: Result<Verified, TokenError> = compact.withUnsafeBytes { token in
            Result { () throws(TokenError) -> Verified in
                let (header, payload, signature, signingInput) = try split(token)
                guard case .supported(let alg) = header.algorithm else { throw TokenError(.unsupportedAlgorithm, "header alg is not HS256 or ES256") }
                let key = try select(header)
                guard alg == key.algorithm else { throw TokenError(.algorithmMismatch, "header alg is not the algorithm of the key") }
                if header.hasKeyID && !header.keyID.equals(key.id) { throw TokenError(.unknownKey, "header kid is not the key's id") }
                let ok = signature.withUnsafeBytes { s in key.isValidSignature(s, for: signingInput) }
                guard ok else { throw TokenError(.badSignature, "signature does not verify") }
                return Verified(algorithm: alg, keyID: header.hasKeyID ? header.keyID.string : nil,
                                type: header.hasType ? header.type.string : nil, payload: payload)
            }
        }
        return try result.get()
    }

    /// The decoded payload of a compact JWS, checking neither header nor signature: for display
    /// after verification, or to read a hint (a list's version) that decides nothing.
    /// - Warning: nothing in it is authenticated.
    package static func unverifiedPayload(_ compact: [UInt8]) -> [UInt8]? {
        let parts = compact.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard parts.count == 3 else { return nil }
        return Base64URL.decode(String(decoding: parts[1], as: UTF8.self))
    }

    /// Header, decoded payload, decoded signature, and the signing input.
    static func split(_ token: UnsafeRawBufferPointer) throws(TokenError) -> (JWSHeader, [UInt8], [UInt8], UnsafeRawBufferPointer) {
        let segments = try CompactSegments(token)
        func decode(_ range: Range<Int>, _ what: StaticString) throws(TokenError) -> [UInt8] {
            let text = UnsafeRawBufferPointer(rebasing: token[range])
            guard let n = Base64URL.decodedLength(text.count) else { throw .malformed(what) }
            var out = [UInt8](repeating: 0, count: max(n, 1))
            let got: Result<Int, TokenError> = out.withUnsafeMutableBytes { buffer in
                Result { () throws(TokenError) -> Int in try Base64URL.decode(text, into: buffer, what) }
            }
            return Array(out.prefix(try got.get()))
        }
        var headerJSON = try decode(0..<segments.firstDot, "header is not canonical base64url")
        let header = try headerJSON.withUnsafeMutableBufferPointer { (b: inout UnsafeMutableBufferPointer<UInt8>) throws(TokenError) -> JWSHeader in try JWSHeader.parse(b) }
        let payload = try decode((segments.firstDot + 1)..<segments.secondDot, "payload is not canonical base64url")
        let signature = try decode((segments.secondDot + 1)..<token.count, "signature is not canonical base64url")
        return (header, payload, signature, UnsafeRawBufferPointer(rebasing: token[0..<segments.secondDot]))
    }
}
