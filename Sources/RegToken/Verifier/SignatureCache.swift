internal import CRegTokenFastPath

/// The ES256 verified-signature cache (in C, see `CRegTokenFastPath.h`): bounded, safe under
/// concurrency, keyed on the exact token bytes and the key that verified them.
final class SignatureCache: @unchecked Sendable {
    /// Created once, freed in deinit; the C side is thread-safe.
    private let cache: OpaquePointer?

    init(capacity: Int, maxTokenBytes: Int) {
        cache = CRegTokenFastPath_cache_create(capacity, maxTokenBytes)
    }

    deinit { CRegTokenFastPath_cache_destroy(cache) }

    @inline(__always)
    func contains(_ token: UnsafeRawBufferPointer, keyUID: UInt64) -> Bool {
        CRegTokenFastPath_cache_contains(cache, token.baseAddress, token.count, keyUID) == 1
    }

    @inline(__always)
    func insert(_ token: UnsafeRawBufferPointer, keyUID: UInt64) {
        CRegTokenFastPath_cache_insert(cache, token.baseAddress, token.count, keyUID)
    }
}
