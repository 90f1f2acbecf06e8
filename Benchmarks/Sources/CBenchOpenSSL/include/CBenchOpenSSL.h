// OpenSSL's primitives called directly, as yardsticks for regtoken's verifier (PERF-NOTES: HMAC
// with precomputed pad states through the low-level SHA-256 API; P-256 verify through a reused
// EVP_PKEY_CTX on a precomputed digest).
#ifndef C_BENCH_OPENSSL_H
#define C_BENCH_OPENSSL_H
#include <stddef.h>
#include <stdint.h>

typedef struct { _Alignas(16) unsigned char bytes[256]; } CBench_HMACPads;
int CBench_hmac_init(CBench_HMACPads *pads, const uint8_t *key, size_t key_len);
void CBench_hmac(const CBench_HMACPads *pads, const uint8_t *msg, size_t len, uint8_t *out32);

/// A verification context for the uncompressed P-256 point (65 bytes), or NULL.
void *CBench_p256_context(const uint8_t *point65);
void CBench_p256_free(void *ctx);
/// 1 when the DER signature verifies over the 32-byte digest.
int CBench_p256_verify(void *ctx, const uint8_t *digest32, const uint8_t *der, size_t der_len);
void CBench_sha256(const uint8_t *msg, size_t len, uint8_t *out32);
/// raw r||s (64 bytes) to DER; returns its length (der has room for 72).
size_t CBench_raw_to_der(const uint8_t *sig64, uint8_t *der);

// ---- "C only where it pays" (BENCHMARKS.md): each exception's "with" and "without" ----

/// The P-256 verification without regtoken's per-thread contexts: a context made (and freed) per
/// call for the key of `ctx` (from CBench_p256_context).
int CBench_p256_verify_fresh_context(void *ctx, const uint8_t *digest32, const uint8_t *der, size_t der_len);

/// The inner pad state advanced over 64 prefix bytes, with those bytes (as regtoken keeps per key).
typedef struct { _Alignas(16) unsigned char bytes[192]; } CBench_HMACPrefix;
int CBench_hmac_prefix_init(CBench_HMACPrefix *prefix, const CBench_HMACPads *pads, const uint8_t *prefix64);

/// 1 when HMAC-SHA256(msg) equals tag32, finished the standard way (SHA256_Update, SHA256_Final,
/// OPENSSL_cleanse): regtoken's MAC without its hand-finished exception. Resuming from `prefix` when not NULL and the
/// message starts with its bytes (of which the caller vouches for the first `known`, as the
/// verifier does for the header it compared).
int CBench_hmac_verify_standard(const CBench_HMACPads *pads, const CBench_HMACPrefix *prefix, size_t known,
                                const uint8_t *msg, size_t len, const uint8_t *tag32);

/// The same, finished by hand around SHA256_Update (whole blocks from the message, the padding
/// and the outer block built by hand, no SHA256_Final, an inline wipe): a copy of regtoken's
/// hmac_sha256.c.
int CBench_hmac_verify_by_hand(const CBench_HMACPads *pads, const CBench_HMACPrefix *prefix, size_t known,
                               const uint8_t *msg, size_t len, const uint8_t *tag32);

/// HMAC-SHA256 through EVP_MAC with a keyed context reused (EVP_MAC_init with no key per MAC).
void *CBench_evp_mac_new(const uint8_t *key, size_t key_len);
int CBench_evp_mac_verify(void *mac, const uint8_t *msg, size_t len, const uint8_t *tag32);

/// HMAC-SHA256 through EVP_MD_CTX: pad states precomputed as EVP_MD_CTX, EVP_MD_CTX_copy_ex per MAC
/// into a reused context.
void *CBench_evp_md_pads_new(const uint8_t *key, size_t key_len);
int CBench_evp_md_pads_verify(void *pads, const uint8_t *msg, size_t len, const uint8_t *tag32);

// The snapshot readers' hazard records as regtoken had them (reader side only: no writer runs
// in the benchmark), kept here for their row: a per-thread record written with plain stores,
// a compiler-only fence (writers used membarrier(2)), the pointer read again.
typedef struct CBench_Reader {
    uintptr_t hazard[5];
    unsigned depth;
    int owned;
    unsigned char padding[128 - 5 * sizeof(uintptr_t) - 2 * sizeof(int)];
} CBench_Reader;
extern __thread CBench_Reader *CBench_tls_reader;
extern int CBench_reader_asymmetric;
CBench_Reader *CBench_reader_register(void);

static inline uintptr_t CBench_reader_enter(const uintptr_t *cell, uintptr_t **hazard) {
    CBench_Reader *r = CBench_tls_reader;
    if (__builtin_expect(r == NULL, 0)) {
        r = CBench_reader_register();
        if (r == NULL) return 0;
    }
    unsigned d = r->depth;
    if (__builtin_expect(d >= 4, 0)) return 0;
    uintptr_t *h = &r->hazard[d];
    r->depth = d + 1;
    uintptr_t p = __atomic_load_n(cell, __ATOMIC_ACQUIRE);
    for (;;) {
        __atomic_store_n(h, p, __ATOMIC_RELAXED);
        if (__builtin_expect(CBench_reader_asymmetric, 1)) {
            __atomic_signal_fence(__ATOMIC_SEQ_CST);
        } else {
            __atomic_thread_fence(__ATOMIC_SEQ_CST);
        }
        uintptr_t q = __atomic_load_n(cell, __ATOMIC_ACQUIRE);
        if (__builtin_expect(q == p, 1)) break;
        p = q;
    }
    *hazard = h;
    return p;
}

static inline void CBench_reader_exit(uintptr_t *hazard) {
    __atomic_store_n(hazard, 0, __ATOMIC_RELEASE);
    CBench_tls_reader->depth -= 1;
}
#endif
