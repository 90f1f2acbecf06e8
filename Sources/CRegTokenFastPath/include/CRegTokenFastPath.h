// The verification fast path's two measured exceptions, in C (see PERF-NOTES in the README):
//
// 1. HMAC-SHA256 with the inner and outer pad states precomputed once per key, finished per call
//    by copying a SHA256_CTX. This uses OpenSSL's low-level SHA-256 API, deprecated in 3.0 but the
//    fastest way by far (about 310 ns against 460 ns for EVP on a ~245-byte signing input), and it
//    takes no lock, so it scales across threads. It is compiled here, alone, with
//    OPENSSL_SUPPRESS_DEPRECATED; everything else pins the 3.0 API.
// 2. ES256 verification through an EVP_PKEY_CTX kept per thread and per key, so verifying does not
//    fetch algorithms or create contexts (each of which takes read locks in the provider store).
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
/// time (CRYPTO_memcmp); 0 otherwise.
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
/// prefix state: one SHA-256 block fewer, the same MAC.
int CRegTokenFastPath_hmac_sha256_verify32(const CRegTokenFastPath_HMACSHA256Pads *pads,
                                           const CRegTokenFastPath_HMACSHA256Prefix *prefix,
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

#ifdef __cplusplus
}
#endif
#endif
