internal import CRegTokenFastPath

/// One key of the verifier's fast table: plain values and raw pointers only, so scanning it
/// touches no reference count. The objects the pointers point into are owned by the
/// ``VerifierState`` holding the table (through its ``KeyRing``).
struct FastKey {
    var keyID: ShortString
    var algorithm: Algorithm
    var hmacPads: UnsafePointer<CRegTokenFastPath_HMACSHA256Pads>?
    var p256: OpaquePointer?
    var p256UID: UInt64
}

/// An immutable snapshot of everything verification reads: keys and revoked ids.
final class VerifierState: @unchecked Sendable {
    let keyRing: KeyRing
    let keys: UnsafeMutableBufferPointer<FastKey>
    let revoked: RevocationTable
    let revocationVersion: UInt64
    let revocationIssuedAt: Int64?

    init(keyRing: KeyRing, revoked: RevocationTable, revocationVersion: UInt64, revocationIssuedAt: Int64?) {
        self.keyRing = keyRing
        self.revoked = revoked
        self.revocationVersion = revocationVersion
        self.revocationIssuedAt = revocationIssuedAt
        keys = .allocate(capacity: max(keyRing.keys.count, 1))
        for (i, key) in keyRing.keys.enumerated() {
            // Key ids are validated to fit a short string when the key is made.
            let kid = ShortString(key.id) ?? ShortString()
            switch key.material {
            case .hmac(let secret):
                (keys.baseAddress! + i).initialize(to: FastKey(keyID: kid, algorithm: .hs256, hmacPads: UnsafePointer(secret.pads), p256: nil, p256UID: 0))
            case .p256(let p):
                (keys.baseAddress! + i).initialize(to: FastKey(keyID: kid, algorithm: .es256, hmacPads: nil, p256: p.pkey, p256UID: p.uid))
            }
        }
        keyCount = keyRing.keys.count
    }

    let keyCount: Int

    deinit { keys.deallocate() }

    func replacingKeys(_ ring: KeyRing) -> VerifierState {
        VerifierState(keyRing: ring, revoked: revoked, revocationVersion: revocationVersion, revocationIssuedAt: revocationIssuedAt)
    }

    func replacingRevocations(_ list: RevocationList) -> VerifierState {
        VerifierState(keyRing: keyRing, revoked: RevocationTable(list.entries.map(\.id)),
                      revocationVersion: list.version, revocationIssuedAt: list.issuedAt)
    }
}
