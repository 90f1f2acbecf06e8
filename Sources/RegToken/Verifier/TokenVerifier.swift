internal import CRegTokenFastPath

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Verifies regtoken tokens: one call with the token bytes, the time, and what is asked, and
/// either the verified claims or a ``TokenError`` whose code says exactly why not.
///
/// Checks run cheapest first, so a flood of junk stays cheap: size limit → three segments and
/// strict base64url → header (`alg`, `kid`, `typ` only) → key by `kid` → the key's algorithm must
/// be the header's → strict claims → time (`exp`, `iat`, `nbf`, with leeway) → region, scope,
/// namespace → revocation → signature (HMAC compared in constant time; ECDSA P-256 over raw
/// `r || s`).
///
/// Verification does no I/O, takes no lock and, for tokens whose claims decode to at most
/// 1 KiB (every token regtoken issues with up to a dozen namespaces), allocates nothing: the
/// keys and the revocation set are an immutable snapshot that ``replaceKeys(_:)`` and
/// ``install(_:)`` swap atomically while other threads verify.
public final class TokenVerifier: Sendable {
    /// The time and size rules.
    public let configuration: VerifierConfiguration
    let cell: SnapshotCell<VerifierState>
    let cache: SignatureCache?

    /// Claims up to this size decode into a stack buffer; larger ones (up to the token size limit)
    /// take one heap allocation.
    static let stackClaimsBytes = 1024

    /// A verifier with these keys and no revocation list yet (version 0, nothing revoked).
    /// - Parameters:
    ///   - keys: the keys tokens are verified with: ES256 public keys, or HS256 secrets (which
    ///     can also sign; see ``KeyRing/publicOnly()``).
    ///   - configuration: the time and size rules; the defaults of ``VerifierConfiguration`` if omitted.
    public init(keys: KeyRing, configuration: VerifierConfiguration = .init()) {
        self.configuration = configuration
        cache = configuration.signatureCacheCapacity > 0
            ? SignatureCache(capacity: configuration.signatureCacheCapacity, maxTokenBytes: configuration.cacheableTokenBytes) : nil
        cell = SnapshotCell(VerifierState(keyRing: keys, revoked: RevocationTable([]), revocationVersion: 0, revocationIssuedAt: nil))
    }

    // MARK: - Snapshots

    /// The key ring in force.
    public var keyRing: KeyRing { cell.load().keyRing }

    /// The version of the revocation list in force (0 before any).
    public var revocationVersion: UInt64 { cell.load().revocationVersion }

    /// When the revocation list in force was made (seconds since 1970), or `nil` before any.
    public var revocationIssuedAt: Int64? { cell.load().revocationIssuedAt }

    /// The number of revoked ids in force.
    public var revokedCount: Int { cell.load().revoked.count }

    /// Swaps in a new key ring; verifications in flight finish with the old one.
    public func replaceKeys(_ keys: KeyRing) {
        cell.update { old in (old.replacingKeys(keys), ()) }
    }

    /// Swaps in a revocation list that is newer than the one in force. The same version with the
    /// same ids is accepted as a no-op (returns false).
    /// - Returns: true when the list in force changed.
    /// - Throws: ``RevocationError/ErrorCode/staleVersion`` for an older version, or the same version
    ///   with other content; the list in force stays.
    @discardableResult
    public func install(_ list: RevocationList) throws(RevocationError) -> Bool {
        try cell.update { (old) throws(RevocationError) -> (VerifierState, Bool) in
            if list.version < old.revocationVersion {
                throw RevocationError(.staleVersion, "revocation list version \(list.version) is older than version \(old.revocationVersion) in force")
            }
            if list.version == old.revocationVersion && old.revocationIssuedAt != nil {
                let same = list.entries.count == old.revoked.count && list.entries.allSatisfy { old.revoked.contains($0.id) }
                guard same else {
                    throw RevocationError(.staleVersion, "revocation list version \(list.version) is already in force with other content")
                }
                return (old, false)
            }
            return (old.replacingRevocations(list), true)
        }
    }

    /// Verifies a signed revocation list with the keys in force and installs it.
    /// - Returns: the list, and whether it changed what is in force.
    @discardableResult
    public func loadRevocations(signed bytes: [UInt8]) throws(RevocationError) -> (list: RevocationList, changed: Bool) {
        let list = try RevocationList(signed: bytes, keys: keyRing)
        return (list, try install(list))
    }

    // MARK: - Verification

    /// Verifies `token` at `now` (seconds since 1970) for `request`.
    @inlinable @inline(__always)
    public func verify(_ token: String, at now: Int64, for request: AccessRequest) throws(TokenError) -> VerifiedToken {
        var token = token
        var verified = VerifiedToken()
        let result: Result<Void, TokenError> = token.withUTF8 { utf8 in
            Result { () throws(TokenError) in try verify(bytes: UnsafeRawBufferPointer(utf8), at: now, for: request, into: &verified) }
        }
        try result.get()
        return verified
    }

    /// Verifies the token in `bytes` at `now` (seconds since 1970) for `request`.
    @inlinable @inline(__always)
    public func verify(bytes token: UnsafeRawBufferPointer, at now: Int64, for request: AccessRequest) throws(TokenError) -> VerifiedToken {
        var verified = VerifiedToken()
        try verify(bytes: token, at: now, for: request, into: &verified)
        return verified
    }

    /// Verifies the token in `bytes` at `now` (seconds since 1970) for `request`, writing the
    /// verified claims into `verified` (left as it was when the token does not verify).
    ///
    /// The form behind both value-returning `verify` methods (which are inlinable, so that
    /// `verified` is the caller's own storage). Why an inout and not a return value: the result
    /// (some 240 bytes of inline strings) would travel out through the closures of the snapshot
    /// read and the stack buffers, each of which wraps it in a `Result`; those copies cost more
    /// than parsing the header. A server that verifies on every request can keep one
    /// ``VerifiedToken`` per connection and pass it here.
    public func verify(bytes token: UnsafeRawBufferPointer, at now: Int64, for request: AccessRequest,
                 into verified: inout VerifiedToken) throws(TokenError) {
        guard token.count <= configuration.maximumTokenBytes else { throw .malformed("token is larger than the size limit") }
        try cell.read { (state) throws(TokenError) in
            try verify(token, now: now, request: request, state: state, into: &verified)
        }
    }

    private func verify(_ token: UnsafeRawBufferPointer, now: Int64, request: AccessRequest, state: VerifierState,
                        into verified: inout VerifiedToken) throws(TokenError) {
        let segments = try CompactSegments(token)
        let headerText = UnsafeRawBufferPointer(rebasing: token[0..<segments.firstDot])
        let claimsText = UnsafeRawBufferPointer(rebasing: token[(segments.firstDot + 1)..<segments.secondDot])
        let signatureText = UnsafeRawBufferPointer(rebasing: token[(segments.secondDot + 1)...])

        // Header and key: the key fixes the algorithm. A header segment that is byte for byte the
        // one the issuer writes for a key names that key (see FastKey.issuedHeader); any other
        // goes through the strict parser.
        var keyIndex = state.keyIndex(issuedHeader: headerText)
        // The token's first bytes known to equal the key's HMAC prefix (which begins with the
        // issued header): the HMAC compares only the rest.
        let prefixKnown = keyIndex >= 0 ? headerText.count : 0
        if keyIndex < 0 { keyIndex = try parsedHeaderKey(headerText, state: state) }
        // By address: the key's id is a 64-byte inline string, copied only into the result.
        let key = UnsafePointer(state.keys.baseAddress.unsafelyUnwrapped + keyIndex)
        let algorithm = key.pointee.algorithm
        let signatureLength = algorithm == .hs256 ? 32 : 64
        guard Base64URL.decodedLength(signatureText.count) == signatureLength else {
            guard Base64URL.isAlphabet(signatureText) else { throw .malformed("signature is not canonical base64url") }
            throw TokenError(.badSignature, "signature has the wrong length")
        }

        // Claims, checked strictly in the buffer they are decoded into: the rest of the
        // verification reads them there.
        try withDecoded(claimsText) { (json) throws(TokenError) in
            try verify(claims: json, token: token, signingInputCount: segments.secondDot, prefixKnown: prefixKnown, signatureText: signatureText,
                       key: key, now: now, request: request, state: state, into: &verified)
        }
    }

    /// Decodes and parses a header that is not one the issuer writes; returns the index of the
    /// key its `kid` names, after checking `alg` and `typ`.
    private func parsedHeaderKey(_ headerText: UnsafeRawBufferPointer, state: VerifierState) throws(TokenError) -> Int {
        guard headerText.count <= 340 else { throw .malformed("header is too long") }
        let header: JWSHeader = try withStackBuffer(256) { (buffer) throws(TokenError) -> JWSHeader in
            let n = try Base64URL.decode(headerText, into: buffer, "header is not canonical base64url")
            return try JWSHeader.parse(UnsafeMutableBufferPointer(rebasing: buffer.bindMemory(to: UInt8.self)[0..<n]))
        }
        guard case .supported(let algorithm) = header.algorithm else { throw TokenError(.unsupportedAlgorithm, "header alg is not HS256 or ES256") }
        if header.hasType && !header.type.equals("JWT") { throw .malformed("header typ is not JWT") }
        guard header.hasKeyID else { throw TokenError(.unknownKey, "header has no kid") }
        var keyIndex = -1
        for i in 0..<state.keyCount where state.keys[i].keyID == header.keyID {
            keyIndex = i
            break
        }
        guard keyIndex >= 0 else { throw TokenError(.unknownKey, "no key with this kid") }
        guard state.keys[keyIndex].algorithm == algorithm else { throw TokenError(.algorithmMismatch, "header alg is not the algorithm of the key") }
        return keyIndex
    }

    /// The checks from the claims on, with the claims JSON decoded in `json`.
    @inline(__always)
    private func verify(claims json: UnsafeMutableBufferPointer<UInt8>, token: UnsafeRawBufferPointer, signingInputCount: Int,
                        prefixKnown: Int, signatureText: UnsafeRawBufferPointer, key: UnsafePointer<FastKey>, now: Int64, request: AccessRequest,
                        state: VerifierState, into verified: inout VerifiedToken) throws(TokenError) {
        let algorithm = key.pointee.algorithm
        // The requested namespace, repository and address are matched while parsing.
        var matched = ListMatches()
        let claims = try Self.parse(json, wanting: request.namespace, repository: request.repository, address: request.clientAddress, matched: &matched)

        // Time.
        let leeway = configuration.leeway
        // The leeway past expiry is never more than a tenth of the token's lifetime: a 5 s token
        // is not accepted for 65 s. A token living ten leeways or more (the usual day-long one)
        // gets the whole leeway without a division.
        if let exp = claims.expiresAt {
            let lifetime = exp &- claims.issuedAt
            let past = lifetime >= 10 &* leeway ? leeway : max(0, lifetime / 10)
            if now >= exp &+ past { throw TokenError(.expired, "token expired") }
        }
        if let nbf = claims.notBefore, nbf &- leeway > now { throw TokenError(.notYetValid, "token is not valid yet (nbf)") }
        if claims.issuedAt &- leeway > now { throw TokenError(.notYetValid, "token was issued in the future (iat)") }

        // What is asked.
        guard Self.equal(claims.region, request.region) else { throw TokenError(.wrongRegion, "token is for another region") }
        guard claims.scope.allows(request.access) else { throw TokenError(.insufficientScope, "token is pull-only") }
        if request.namespace != nil && claims.namespaceRestricted && !matched.namespace {
            throw TokenError(.namespaceNotAllowed, "token is not valid for this namespace")
        }
        if claims.repositoryRestricted && request.repository != nil && !matched.ruleActions.contains(RepositoryRule.Actions(request.access)) {
            throw TokenError(.repositoryNotAllowed, "no repository rule of the token allows this action on this repository")
        }
        if claims.addressRestricted && !matched.address {
            throw TokenError(.addressNotAllowed, "token is not valid from this address")
        }
        if let owner = request.namespaceOwner, !Self.equal(claims.account, owner) {
            throw TokenError(.namespaceNotAllowed, "namespace belongs to another account")
        }

        // Revocation.
        if state.revoked.contains(claims.id) { throw TokenError(.revoked, "token was revoked") }

        // Signature, over the signing input exactly as it stands in the token.
        let signingInput = UnsafeRawBufferPointer(rebasing: token[0..<signingInputCount])
        // ES256: these exact bytes verified before with this very key: no curve arithmetic.
        let cached = algorithm == .es256 && (cache?.contains(token, keyUID: key.pointee.p256UID) ?? false)
        let valid: Bool = cached ? true : try withStackBuffer(64) { (buffer) throws(TokenError) -> Bool in
            // Its decoded length was checked against the key's algorithm before the claims.
            _ = try Base64URL.decode(signatureText, into: buffer, "signature is not canonical base64url")
            let sig = UnsafeRawPointer(buffer.baseAddress.unsafelyUnwrapped)
            switch algorithm {
            case .hs256:
                guard let pads = key.pointee.hmacPads else { return false }
                return CRegTokenFastPath_hmac_sha256_verify32(pads, key.pointee.hmacPrefix, prefixKnown, signingInput.baseAddress,
                                                              signingInput.count, sig) == 1
            case .es256:
                guard let pkey = key.pointee.p256 else { return false }
                return CRegTokenFastPath_es256_verify(UnsafeMutableRawPointer(pkey), key.pointee.p256UID, signingInput.baseAddress,
                                                      signingInput.count, sig.assumingMemoryBound(to: UInt8.self)) == 1
            }
        }
        guard valid else { throw TokenError(.badSignature, "signature does not verify") }
        if algorithm == .es256 && !cached { cache?.insert(token, keyUID: key.pointee.p256UID) }

        // Written into the caller's value field by field: the account and region are emptied and
        // appended in place, their bytes only. The parser checked that both fit a short string.
        verified.id = claims.id
        verified.account.removeAll()
        verified.account.append(claims.account)
        verified.region.removeAll()
        verified.region.append(claims.region)
        verified.scope = claims.scope
        verified.issuedAt = claims.issuedAt
        verified.expiresAt = claims.expiresAt
        verified.keyID = key.pointee.keyID
        verified.algorithm = algorithm
        verified.isNamespaceRestricted = claims.namespaceRestricted
        verified.isRepositoryRestricted = claims.repositoryRestricted
        verified.isAddressRestricted = claims.addressRestricted
    }

    /// What the list claims said of the request, gathered while parsing.
    struct ListMatches {
        var namespace = false
        var ruleActions: RepositoryRule.Actions = []
        var address = false
    }

    /// Parses the claims in `json`, noting in `matched` whether they list the namespace `wanted`,
    /// which actions their rules matching `repository` allow, and whether a range holds `address`.
    ///
    /// A function of its own so that the closure captures only these optional values, passed in
    /// borrowed, and not the request: capturing the request copied the whole of it (its strings,
    /// a retain and a release each) through its value witness on every verification, and a local
    /// copy of an optional string cost a retain and a dozen outlined copies and destroys on every
    /// path out. Tokens in the issuer's layout without list claims never call the closure.
    @inline(__always)
    private static func parse(_ json: UnsafeMutableBufferPointer<UInt8>, wanting wanted: String?, repository: String?,
                              address: IPAddress?, matched: inout ListMatches) throws(TokenError) -> ParsedClaims {
        try ClaimsParser.parse(json) { item in
            switch item {
            case .namespace(let ns):
                if !matched.namespace, let wanted, equal(ns, wanted) { matched.namespace = true }
            case .rule(let pattern, let actions):
                if let repository, !matched.ruleActions.isSuperset(of: actions),
                   repository.utf8.span.withUnsafeBufferPointer({ RepositoryRule.matches(pattern: pattern, name: $0) }) {
                    matched.ruleActions.formUnion(actions)
                }
            case .range(let range):
                if !matched.address, let address, range.contains(address) { matched.address = true }
            }
        }
    }

    /// True when `bytes` equal the UTF-8 of `string`, without allocating or copying the string.
    ///
    /// Through the view's `span` (the string's contiguous UTF-8, in place) and one `memcmp`. An
    /// element loop over the `UTF8View` cost some 34 instructions a byte (index validation and
    /// the small/large string cases each step); `withContiguousStorageIfAvailable` went through
    /// generic value witnesses for its optional result, and `withUTF8` needs a copy of the string
    /// (a retain of a request string that other threads may share).
    @inline(__always)
    private static func equal(_ bytes: UnsafeBufferPointer<UInt8>, _ string: String) -> Bool {
        let span = string.utf8.span
        guard span.count == bytes.count else { return false }
        guard let base = bytes.baseAddress, span.count > 0 else { return true }
        return span.withUnsafeBufferPointer { memcmp($0.baseAddress.unsafelyUnwrapped, base, $0.count) == 0 }
    }

    /// Decodes base64url `text` into a stack buffer when small, else a heap buffer, for `body`.
    @inline(__always)
    private func withDecoded<R>(_ text: UnsafeRawBufferPointer, _ body: (UnsafeMutableBufferPointer<UInt8>) throws(TokenError) -> R) throws(TokenError) -> R {
        guard let length = Base64URL.decodedLength(text.count) else { throw .malformed("claims are not canonical base64url") }
        if length <= Self.stackClaimsBytes {
            return try withStackBuffer(1024) { (buffer) throws(TokenError) -> R in
                let n = try Base64URL.decode(text, into: buffer, "claims are not canonical base64url")
                return try body(UnsafeMutableBufferPointer(rebasing: buffer.bindMemory(to: UInt8.self)[0..<n]))
            }
        }
        var heap = [UInt8](repeating: 0, count: length)
        let result: Result<R, TokenError> = heap.withUnsafeMutableBytes { buffer in
            Result { () throws(TokenError) -> R in
                let n = try Base64URL.decode(text, into: buffer, "claims are not canonical base64url")
                return try body(UnsafeMutableBufferPointer(rebasing: buffer.bindMemory(to: UInt8.self)[0..<n]))
            }
        }
        return try result.get()
    }
}

/// A stack buffer of `capacity` bytes (at most 1 KiB, which the standard library always places
/// on the stack) for the duration of `body`.
@inline(__always)
func withStackBuffer<R, E: Error>(_ capacity: Int, _ body: (UnsafeMutableRawBufferPointer) throws(E) -> R) throws(E) -> R {
    try withUnsafeTemporaryAllocation(byteCount: capacity, alignment: 16) { (buffer) throws(E) -> R in try body(buffer) }
}
