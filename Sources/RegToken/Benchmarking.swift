internal import CRegTokenFastPath

/// The C exceptions called on their own, for the Benchmarks package's with/without rows
/// (BENCHMARKS.md, "C only where it pays"): each row sets one beside a plain Swift or
/// standard-primitive alternative in the same run. Not API (`@_spi(Benchmarks)`); nothing in
/// regtoken calls these.
@_spi(Benchmarks) public enum FastPathProbe {
    /// regtoken's strict base64url decoder (base64url.c) on `text` into `out`: the decoded
    /// length, or -1 when `text` is not canonical base64url or `out` is too small.
    public static func base64urlDecode(_ text: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer) -> Int {
        guard let input = text.baseAddress, let output = out.baseAddress else { return text.isEmpty ? 0 : -1 }
        return CRegTokenFastPath_base64url_decode(input.assumingMemoryBound(to: UInt8.self), text.count,
                                                  output.assumingMemoryBound(to: UInt8.self), out.count)
    }

    /// regtoken's ES256 verified-signature cache (signature_cache.c), as the verifier uses it.
    public final class Cache: @unchecked Sendable {
        let cache: SignatureCache

        /// A cache of at least `capacity` slots (rounded up to a power of two), each holding one
        /// token of at most `maxTokenBytes` bytes.
        public init(capacity: Int, maxTokenBytes: Int) {
            cache = SignatureCache(capacity: capacity, maxTokenBytes: maxTokenBytes)
        }

        /// True when `token` was inserted for the key `keyUID` and is still in its slot.
        public func contains(_ token: UnsafeRawBufferPointer, keyUID: UInt64) -> Bool {
            cache.contains(token, keyUID: keyUID)
        }

        /// Records `token` as verified with the key `keyUID`, replacing what its slot held; a token
        /// longer than the slots, or a slot another thread is writing, is skipped.
        public func insert(_ token: UnsafeRawBufferPointer, keyUID: UInt64) {
            cache.insert(token, keyUID: keyUID)
        }
    }

    /// regtoken's snapshot cell (`SnapshotCell`, package-internal) holding one integer, read as
    /// the verifier reads its state. Each read is one call into this module more than an inline read.
    public final class SnapshotReads: Sendable {
        final class Box: Sendable {
            let value: Int
            init(_ value: Int) { self.value = value }
        }

        let cell: SnapshotCell<Box>

        /// A cell holding `value`.
        public init(_ value: Int) {
            cell = SnapshotCell(Box(value))
        }

        /// One read of the cell: the integer it holds.
        public func read() -> Int {
            cell.read { $0.value }
        }
    }
}
