// A bounded cache of tokens whose ES256 signature verified, keyed on the exact token bytes and
// the key's uid. Direct-mapped slots guarded by sequence counters: lookups write nothing (no
// lock, no shared cache line written), inserts claim a slot with one compare-and-swap and give
// up rather than wait. A hit requires the full bytes to be equal, so a hash collision is only
// ever a miss, and a token that differs by one byte is verified afresh.
//
// Why C: a seqlock reads slot bytes that a writer may be changing (the sequence check discards
// such a read), which is a data race in Swift's model; and a lookup hashes and compares the
// token in place without allocating (see BENCHMARKS.md for the row against a Mutex-guarded
// Swift dictionary).
#ifndef C_REGTOKEN_FAST_PATH_SIGNATURE_CACHE_H
#define C_REGTOKEN_FAST_PATH_SIGNATURE_CACHE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct CRegTokenFastPath_SignatureCache CRegTokenFastPath_SignatureCache;

/// A cache of `capacity` slots (rounded up to a power of two) for tokens of at most `max_token_bytes`.
CRegTokenFastPath_SignatureCache *CRegTokenFastPath_cache_create(size_t capacity, size_t max_token_bytes);
void CRegTokenFastPath_cache_destroy(CRegTokenFastPath_SignatureCache *cache);
/// 1 when these exact bytes verified with the key `key_uid` before.
int CRegTokenFastPath_cache_contains(const CRegTokenFastPath_SignatureCache *cache, const void *token, size_t len, uint64_t key_uid);
/// Remembers that these bytes verified with `key_uid` (replacing whatever held the slot).
void CRegTokenFastPath_cache_insert(CRegTokenFastPath_SignatureCache *cache, const void *token, size_t len, uint64_t key_uid);

#ifdef __cplusplus
}
#endif
#endif
