/// The revoked token ids as an open-addressing hash set of 16-byte ids in one flat buffer:
/// O(1) lookup that touches no reference count and allocates nothing. Immutable after init.
///
/// Load factor at most 1/2 with linear probing; the nil UUID marks an empty slot (the list
/// loader refuses it as an entry). Ids are random, so a multiplicative hash of their bits spreads
/// them; the entries come from the signed list, never from the token being checked.
final class RevocationTable: @unchecked Sendable {
    private let slots: UnsafeMutableBufferPointer<UUIDBytes>
    private let mask: Int
    let count: Int

    init<S: Sequence>(_ ids: S) where S.Element == UUIDBytes {
        let unique = Set(ids.lazy.filter { !$0.isNil })
        var capacity = 16
        while capacity < unique.count * 2 { capacity <<= 1 }
        slots = .allocate(capacity: capacity)
        slots.initialize(repeating: UUIDBytes(high: 0, low: 0))
        mask = capacity - 1
        count = unique.count
        for id in unique {
            var i = Self.hash(id) & mask
            while !slots[i].isNil { i = (i + 1) & mask }
            slots[i] = id
        }
    }

    deinit { slots.deallocate() }

    @inline(__always)
    private static func hash(_ id: UUIDBytes) -> Int {
        Int(truncatingIfNeeded: ((id.high ^ (id.low &* 0x9E37_79B9_7F4A_7C15)) &* 0xBF58_476D_1CE4_E5B9) >> 17)
    }

    @inline(__always)
    func contains(_ id: UUIDBytes) -> Bool {
        var i = Self.hash(id) & mask
        while true {
            let s = slots[i]
            if s.isNil { return false }
            if s == id { return true }
            i = (i + 1) & mask
        }
    }
}
