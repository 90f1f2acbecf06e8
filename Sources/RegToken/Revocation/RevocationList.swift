internal import FoundationEssentials

/// The signed, versioned list of revoked token ids that verifiers load and reload.
///
/// On disk it is one JWS compact serialization (header `typ` `regtoken-revocations+jwt`, signed
/// with the issuer's active key) followed by a newline; its payload is
/// `{"version":N,"iat":T,"revoked":[["<uuid>",<exp>|null],...]}` with entries sorted by id.
/// An entry is dropped when the list is written once its token expired more than
/// ``retentionAfterExpiry`` seconds ago: by then every verifier refuses the token as expired,
/// whatever its clock leeway (at most ``VerifierConfiguration/maximumLeeway``).
public struct RevocationList: Sendable, Hashable {
    /// One revoked token.
    public struct Entry: Sendable, Hashable {
        /// The revoked token's identifier (`jti`).
        public var id: UUIDBytes
        /// The token's expiry, or `nil` for a non-expiring token (kept until its key is retired).
        public var expiresAt: Int64?

        /// An entry for the token `id`.
        /// - Parameters:
        ///   - id: the token's identifier (`jti`).
        ///   - expiresAt: the token's expiry, seconds since 1970, or `nil` for a non-expiring token.
        public init(id: UUIDBytes, expiresAt: Int64?) {
            self.id = id
            self.expiresAt = expiresAt
        }
    }

    /// The `typ` of a revocation list's JWS header; tokens (`typ` JWT) can never pass for one.
    public static let jwsType = "regtoken-revocations+jwt"
    /// How long after its token's expiry an entry is kept: an hour, well beyond any leeway.
    public static let retentionAfterExpiry: Int64 = 3600
    /// The largest revocation list file accepted (64 MiB, about a million entries).
    public static let maximumBytes = 64 << 20
    /// The largest list version: 2^53 − 1, the largest integer every JSON reader holds exactly
    /// (a list with a larger version is malformed; an issuer there cannot publish another).
    public static let maximumVersion: UInt64 = (1 << 53) - 1

    /// Increases by one with every change; a verifier refuses a list older than its own.
    public let version: UInt64
    /// When this version was made (seconds since 1970).
    public let issuedAt: Int64
    /// The revoked tokens, sorted by id, one per id.
    public private(set) var entries: [Entry]

    /// A list of `entries` sorted by id, one per id: the nil UUID is dropped, and of two entries
    /// for one id the later expiry is kept (no expiry being the latest).
    /// - Parameters:
    ///   - version: the list's version (not checked against ``maximumVersion`` here).
    ///   - issuedAt: when this version was made, seconds since 1970.
    ///   - entries: the revoked tokens, in any order.
    public init(version: UInt64, issuedAt: Int64, entries: [Entry]) {
        self.version = version
        self.issuedAt = issuedAt
        var byID: [UUIDBytes: Int64?] = [:]
        for e in entries where !e.id.isNil {
            if let existing = byID[e.id] {
                // Keep the later expiry (none is latest).
                if let a = existing, let b = e.expiresAt { byID[e.id] = max(a, b) } else { byID[e.id] = .some(nil) }
            } else {
                byID[e.id] = .some(e.expiresAt)
            }
        }
        self.entries = byID.map { Entry(id: $0.key, expiresAt: $0.value) }.sorted { $0.id < $1.id }
    }

    /// An empty list, version 0.
    public static var empty: RevocationList { RevocationList(version: 0, issuedAt: 0, entries: []) }

    /// True when `id` is on the list.
    public func contains(_ id: UUIDBytes) -> Bool {
        var lo = 0
        var hi = entries.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if entries[mid].id == id { return true }
            if entries[mid].id < id { lo = mid + 1 } else { hi = mid }
        }
        return false
    }

    /// The next version: `self` plus `added`, without entries past retention, made at `now`.
    /// - Throws: ``RevocationError`` with code ``RevocationError/ErrorCode/malformed`` when the
    ///   version is already ``maximumVersion``.
    public func next(adding added: [Entry], now: Int64) throws(RevocationError) -> RevocationList {
        guard version < Self.maximumVersion else {
            throw RevocationError(.malformed, "revocation list version \(version) is the largest possible; no later list can be made")
        }
        let kept = (entries + added).filter { e in
            guard let exp = e.expiresAt else { return true }
            return exp &+ Self.retentionAfterExpiry > now
        }
        return RevocationList(version: version + 1, issuedAt: now, entries: kept)
    }

    /// True when some entry is past retention at `now` (the list would shrink if rewritten).
    public func hasExpiredEntries(at now: Int64) -> Bool {
        entries.contains { e in e.expiresAt.map { $0 &+ Self.retentionAfterExpiry <= now } ?? false }
    }

    // MARK: - Signed form

    var payloadJSON: [UInt8] {
        var w = JSONWriter()
        w.raw("{\"version\":\(version),\"iat\":\(issuedAt),\"revoked\":[")
        for (i, e) in entries.enumerated() {
            if i > 0 { w.raw(",") }
            w.raw("[")
            w.string(e.id.description)
            w.raw(",")
            w.raw(e.expiresAt.map(String.init) ?? "null")
            w.raw("]")
        }
        w.raw("]}")
        return w.bytes
    }

    /// The signed document: a JWS compact serialization and a newline.
    public func signed(with key: SigningKey) throws(KeyError) -> [UInt8] {
        Array(try JWS.sign(payload: payloadJSON, key: key, type: Self.jwsType).utf8) + [0x0A]
    }

    /// Verifies and parses a signed list with `keys` (the key named by its `kid`).
    public init(signed bytes: [UInt8], keys: KeyRing) throws(RevocationError) {
        guard bytes.count <= Self.maximumBytes else {
            throw RevocationError(.malformed, "revocation list is larger than \(Self.maximumBytes) bytes")
        }
        var compact = bytes[...]
        while let last = compact.last, last == 0x0A || last == 0x0D { compact.removeLast() }
        let verified: JWS.Verified
        do {
            verified = try JWS.verify(Array(compact), keys: keys)
        } catch {
            switch error.code {
            case .badSignature, .unknownKey, .algorithmMismatch:
                throw RevocationError(.badSignature, "revocation list signature does not verify (\(error.code): \(error.reason))")
            default:
                throw RevocationError(.malformed, "revocation list is not a signed list (\(error.code): \(error.reason))")
            }
        }
        guard verified.type == Self.jwsType else {
            throw RevocationError(.malformed, "not a revocation list (header typ is not \(Self.jwsType))")
        }
        let payload: Payload
        do {
            payload = try JSONDecoder().decode(Payload.self, from: Data(verified.payload))
        } catch {
            throw RevocationError(.malformed, "revocation list content is malformed: \(KeyRing.describe(error))")
        }
        guard payload.version <= Self.maximumVersion else {
            throw RevocationError(.malformed, "revocation list version \(payload.version) is beyond the largest possible (2^53 - 1)")
        }
        var entries: [Entry] = []
        entries.reserveCapacity(payload.revoked.count)
        var seen = Set<UUIDBytes>()
        for raw in payload.revoked {
            guard let id = UUIDBytes(raw.id), !id.isNil else {
                throw RevocationError(.malformed, "revocation list has an entry that is not a token id")
            }
            guard seen.insert(id).inserted else {
                throw RevocationError(.malformed, "revocation list lists token \(id) twice")
            }
            entries.append(Entry(id: id, expiresAt: raw.expiresAt))
        }
        self.init(version: payload.version, issuedAt: payload.iat, entries: entries)
    }

    /// Reads and verifies the list at `path`.
    public static func load(path: String, keys: KeyRing) throws(RevocationError) -> RevocationList {
        let bytes: [UInt8]
        do { bytes = try AtomicFile.read(path, limit: maximumBytes) } catch {
            throw RevocationError(.io, "cannot read revocation list: \(error)")
        }
        return try RevocationList(signed: bytes, keys: keys)
    }

    /// Signs and writes the list to `path` atomically (temporary file, fsync, rename), 0644.
    public func write(to path: String, signedWith key: SigningKey) throws(RevocationError) {
        let bytes: [UInt8]
        do { bytes = try signed(with: key) } catch {
            throw RevocationError(.io, "cannot sign revocation list: \(error.reason)")
        }
        do { try AtomicFile.write(bytes, to: path, mode: 0o644) } catch {
            throw RevocationError(.io, "cannot write revocation list: \(error)")
        }
    }

    struct Payload: Decodable {
        var version: UInt64
        var iat: Int64
        var revoked: [RawEntry]
    }

    struct RawEntry: Decodable {
        var id: String
        var expiresAt: Int64?

        init(from decoder: any Decoder) throws {
            var c = try decoder.unkeyedContainer()
            id = try c.decode(String.self)
            expiresAt = try c.decodeNil() ? nil : try c.decode(Int64.self)
            guard c.isAtEnd else {
                throw DecodingError.dataCorruptedError(in: c, debugDescription: "an entry is [id, expiry] with nothing more")
            }
        }
    }
}
