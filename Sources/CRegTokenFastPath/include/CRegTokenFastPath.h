// The verification fast path's measured exceptions, in C (see BENCHMARKS.md):
//
// 1. HMAC-SHA256 with the inner and outer pad states precomputed once per key (and the inner
//    state advanced over the 64 bytes every issued token starts with), finished per call around
//    SHA256_Update. This uses OpenSSL's low-level SHA-256 API, deprecated in 3.0 but the fastest
//    way by far (about 310 ns against 460 ns for EVP on a ~245-byte signing input), and it takes
//    no lock, so it scales across threads. It is compiled here, alone, with
//    OPENSSL_SUPPRESS_DEPRECATED; everything else pins the 3.0 API.
// 2. ES256 verification through an EVP_PKEY_CTX kept per thread and per key, so verifying does not
//    fetch algorithms or create contexts (each of which takes read locks in the provider store).
// 3. Strict base64url decoding (AVX2 where available) and the ES256 verified-signature cache.
// 4. The snapshot readers' per-thread records (thread-local storage, compiler-only fences and
//    membarrier(2), none of which Swift offers), inlined into Swift through static inline functions.
//
// Types here are opaque byte blobs and keys travel as `void *` so this header needs no OpenSSL
// header: the Swift side sees the OpenSSL types through CRegTokenOpenSSL only.
#ifndef C_REGTOKEN_FAST_PATH_H
#define C_REGTOKEN_FAST_PATH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Two SHA256_CTX (inner and outer pad states); the .c file checks that they fit.
typedef struct {
    _Alignas(16) unsigned char bytes[256];
} CRegTokenFastPath_HMACSHA256Pads;

/// Precomputes the pad states of `key` (hashed first when longer than 64 bytes). Returns 1 on success.
int CRegTokenFastPath_hmac_sha256_init(CRegTokenFastPath_HMACSHA256Pads *pads, const void *key, size_t key_len);

/// HMAC-SHA256 of `msg` into `out` (32 bytes).
void CRegTokenFastPath_hmac_sha256(const CRegTokenFastPath_HMACSHA256Pads *pads,
                                   const void *msg, size_t msg_len, uint8_t *out);

/// 1 when the first `tag_len` bytes (1...32) of HMAC-SHA256(msg) equal `tag`, compared in constant
/// time (a whole tag as hmac_sha256_verify32 does, a shorter one with CRYPTO_memcmp); 0 otherwise.
int CRegTokenFastPath_hmac_sha256_verify(const CRegTokenFastPath_HMACSHA256Pads *pads,
                                         const void *msg, size_t msg_len,
                                         const void *tag, size_t tag_len);

/// The inner pad state of a key advanced over 64 bytes that start every token of the key (its
/// issued header, the dot and the start of the claims), with those bytes; see hmac_sha256_verify32.
typedef struct {
    _Alignas(16) unsigned char bytes[192];
} CRegTokenFastPath_HMACSHA256Prefix;

/// Fills `prefix` from the key's pad states and the 64 bytes at `prefix64`. Returns 1 on success.
int CRegTokenFastPath_hmac_sha256_prefix_init(CRegTokenFastPath_HMACSHA256Prefix *prefix,
                                              const CRegTokenFastPath_HMACSHA256Pads *pads,
                                              const void *prefix64);

/// Wipes a prefix state (as secret as the key).
void CRegTokenFastPath_hmac_sha256_prefix_clear(CRegTokenFastPath_HMACSHA256Prefix *prefix);

/// 1 when HMAC-SHA256(msg) equals the 32 bytes at `tag32` (compared in constant time), 0 otherwise.
/// When `prefix` is not NULL and `msg` starts with its 64 bytes, the inner hash resumes from the
/// prefix state: one SHA-256 block fewer, the same MAC. The caller may vouch that the first
/// `known` bytes of `msg` equal the prefix's (the verifier compared the header already); the
/// rest is compared here.
int CRegTokenFastPath_hmac_sha256_verify32(const CRegTokenFastPath_HMACSHA256Pads *pads,
                                           const CRegTokenFastPath_HMACSHA256Prefix *prefix, size_t known,
                                           const void *msg, size_t msg_len, const void *tag32);

/// Wipes the pad states (they are as secret as the key).
void CRegTokenFastPath_hmac_sha256_clear(CRegTokenFastPath_HMACSHA256Pads *pads);

/// A process-unique id for an ECDSA key, never reused; names the key in the per-thread context cache.
uint64_t CRegTokenFastPath_next_key_uid(void);

/// Verifies an ES256 signature (raw r||s, 64 bytes) over SHA-256(msg) with `pkey` (an EVP_PKEY *
/// holding a P-256 public key). Returns 1 when valid, 0 when not, -1 on an internal error. The
/// per-thread context for `key_uid` is created on first use and holds a reference to the key.
int CRegTokenFastPath_es256_verify(void *pkey, uint64_t key_uid,
                                   const void *msg, size_t msg_len, const uint8_t *sig64);

/// SHA-256 of msg into out (32 bytes), without a provider fetch.
void CRegTokenFastPath_sha256(const void *msg, size_t msg_len, uint8_t *out);

/// Encodes raw r||s (32 bytes each) as a DER ECDSA-Sig-Value into `der` (at least 72 bytes).
/// Returns the DER length.
size_t CRegTokenFastPath_ecdsa_raw_to_der(const uint8_t *sig64, uint8_t *der);

/// Strict base64url (RFC 7515 §2: the RFC 4648 §5 alphabet, no padding, no whitespace, zero unused
/// bits in the last character). Decodes `len` characters into `out` (capacity `out_cap`, at least
/// len * 3 / 4). Returns the decoded length, or -1 when the input is not canonical base64url.
long CRegTokenFastPath_base64url_decode(const uint8_t *in, size_t len, uint8_t *out, size_t out_cap);

/// 1 when base64url_decode takes 32 characters at a time with AVX2 here (x86-64 CPUs with AVX2
/// and an OS that saves its registers); 0 when it uses the table decoder only.
int CRegTokenFastPath_base64url_vectorised(void);

/// A bounded cache of tokens whose ES256 signature verified, keyed on the exact token bytes and
/// the key's uid. Direct-mapped slots guarded by sequence counters: lookups write nothing (no
/// lock, no shared cache line written), inserts claim a slot with one compare-and-swap and give
/// up rather than wait. A hit requires the full bytes to be equal, so a hash collision is only
/// ever a miss, and a token that differs by one byte is verified afresh.
typedef struct CRegTokenFastPath_SignatureCache CRegTokenFastPath_SignatureCache;

/// A cache of `capacity` slots (rounded up to a power of two) for tokens of at most `max_token_bytes`.
CRegTokenFastPath_SignatureCache *CRegTokenFastPath_cache_create(size_t capacity, size_t max_token_bytes);
void CRegTokenFastPath_cache_destroy(CRegTokenFastPath_SignatureCache *cache);
/// 1 when these exact bytes verified with the key `key_uid` before.
int CRegTokenFastPath_cache_contains(const CRegTokenFastPath_SignatureCache *cache, const void *token, size_t len, uint64_t key_uid);
/// Remembers that these bytes verified with `key_uid` (replacing whatever held the slot).
void CRegTokenFastPath_cache_insert(CRegTokenFastPath_SignatureCache *cache, const void *token, size_t len, uint64_t key_uid);

/// Snapshot readers (see SnapshotCell): one record per thread, of the objects it is reading, so
/// that a writer can wait for exactly those readers before it frees an object it replaced.
///
/// A reader publishes the pointer it read in its own record (a plain store) and reads the pointer
/// again; if it did not change, the object is its to use until it clears the record. A writer
/// stores the new pointer, makes every thread of the process execute a full memory barrier
/// (membarrier(2), MEMBARRIER_CMD_PRIVATE_EXPEDITED), and then waits until no record holds the
/// old pointer: either a reader's record was visible to that scan, or the reader's second read
/// came after the barrier and saw the new pointer. So readers need no locked instruction and no
/// fence, only a compiler barrier. Where membarrier is not available (old kernels, some seccomp
/// profiles) readers execute a full fence instead, which is correct without it.
#define CRegTokenFastPath_READER_DEPTH 4

typedef struct CRegTokenFastPath_Reader {
    /// The objects this thread is reading, innermost last (reads nest: a server's snapshot
    /// around the verifier's), and in the last slot an object being retained (see
    /// reader_protect_transient). 0 when free. Written by the owning thread only.
    uintptr_t hazard[CRegTokenFastPath_READER_DEPTH + 1];
    /// How many of the first READER_DEPTH slots are in use. Owning thread only.
    unsigned depth;
    /// 1 while a live thread owns the record; records of exited threads are reused.
    int owned;
    /// Keeps records on cache lines of their own.
    unsigned char padding[128 - (CRegTokenFastPath_READER_DEPTH + 1) * sizeof(uintptr_t) - 2 * sizeof(int)];
} CRegTokenFastPath_Reader;

/// This thread's record, or NULL before its first read.
extern __thread CRegTokenFastPath_Reader *CRegTokenFastPath_tls_reader;
/// 1 when writers use membarrier, so readers need only a compiler barrier. Set once, before the
/// first record is handed out.
extern int CRegTokenFastPath_reader_asymmetric;

/// Gives this thread a record (the slow path of the first read). NULL when out of memory.
CRegTokenFastPath_Reader *CRegTokenFastPath_reader_register(void);

/// After the pointer that held `old` was changed: returns once no reader holds `old`. 1 when it
/// is then safe to free; 0 when that could not be established (the barrier failed three times, or
/// no memory to list the records): the caller must not free it yet, and may try again later.
/// Takes no lock while it waits, so a reader may replace other cells, or wait for a thread that
/// reads for the first time, inside its read.
int CRegTokenFastPath_reader_synchronize(uintptr_t old);

/// Reads `*cell` and protects what it points to in this thread's transient slot, for as long as
/// it takes to retain it; then call reader_clear_transient. 0 when this thread has no record (out
/// of memory). Never blocks.
uintptr_t CRegTokenFastPath_reader_protect_transient(const uintptr_t *cell);

/// Clears this thread's transient slot.
void CRegTokenFastPath_reader_clear_transient(void);

/// This thread's read depth (0 outside reads), for tests.
unsigned CRegTokenFastPath_reader_depth(void);

/// How many reader records exist (live and reusable), for tests.
size_t CRegTokenFastPath_reader_records(void);

/// 1 when readers rely on membarrier, 0 when they fence (decided on the first read), for tests.
int CRegTokenFastPath_reader_uses_membarrier(void);

static inline uintptr_t CRegTokenFastPath_atomic_load(const uintptr_t *cell) {
    return __atomic_load_n(cell, __ATOMIC_SEQ_CST);
}

static inline void CRegTokenFastPath_atomic_store(uintptr_t *cell, uintptr_t value) {
    __atomic_store_n(cell, value, __ATOMIC_SEQ_CST);
}

/// Publishes `p`, just read from `*cell`, in the record slot `slot`, and reads the cell again
/// until what the slot shows is what the cell holds; returns that. The pointer may have changed
/// before the slot showed it: then the writer may not have waited for this reader, so the new
/// one is taken.
static inline uintptr_t CRegTokenFastPath_reader_publish(const uintptr_t *cell, uintptr_t *slot, uintptr_t p) {
    for (;;) {
        __atomic_store_n(slot, p, __ATOMIC_RELAXED);
        if (__builtin_expect(CRegTokenFastPath_reader_asymmetric, 1)) {
            __atomic_signal_fence(__ATOMIC_SEQ_CST);
        } else {
            __atomic_thread_fence(__ATOMIC_SEQ_CST);
        }
        uintptr_t q = __atomic_load_n(cell, __ATOMIC_ACQUIRE);
        if (__builtin_expect(q == p, 1)) return p;
        p = q;
    }
}

/// Called by reader_enter_stepped between reading the pointer and publishing it (tests).
typedef void (*CRegTokenFastPath_ReaderHook)(void *context);

/// reader_enter, with a hook for tests; `hook` is NULL in the real one, so the compiler removes it.
static inline uintptr_t CRegTokenFastPath_reader_enter_hooked(const uintptr_t *cell, uintptr_t **hazard,
                                                              CRegTokenFastPath_ReaderHook hook, void *context) {
    CRegTokenFastPath_Reader *r = CRegTokenFastPath_tls_reader;
    if (__builtin_expect(r == NULL, 0)) {
        r = CRegTokenFastPath_reader_register();
        if (r == NULL) return 0;
    }
    unsigned d = r->depth;
    if (__builtin_expect(d >= CRegTokenFastPath_READER_DEPTH, 0)) return 0;
    uintptr_t *h = &r->hazard[d];
    r->depth = d + 1;
    uintptr_t p = __atomic_load_n(cell, __ATOMIC_ACQUIRE);
    if (hook != NULL) hook(context);
    p = CRegTokenFastPath_reader_publish(cell, h, p);
    *hazard = h;
    return p;
}

/// Reads `*cell` and protects what it points to; `*hazard` receives what to pass to reader_exit.
/// Returns 0 when no record is free (a read nested deeper than READER_DEPTH, or out of memory):
/// the caller must then take a strong reference another way.
static inline uintptr_t CRegTokenFastPath_reader_enter(const uintptr_t *cell, uintptr_t **hazard) {
    return CRegTokenFastPath_reader_enter_hooked(cell, hazard, NULL, NULL);
}

/// reader_enter with `hook(context)` called between reading the pointer and publishing it: lets
/// a test change the pointer in that window, deterministically.
uintptr_t CRegTokenFastPath_reader_enter_stepped(const uintptr_t *cell, uintptr_t **hazard,
                                                 CRegTokenFastPath_ReaderHook hook, void *context);

/// Ends the read that reader_enter began.
static inline void CRegTokenFastPath_reader_exit(uintptr_t *hazard) {
    __atomic_store_n(hazard, 0, __ATOMIC_RELEASE);
    CRegTokenFastPath_tls_reader->depth -= 1;
}

#ifdef __cplusplus
}
#endif
#endif
