// HMAC-SHA256 with the inner and outer pad states precomputed once per key, and the inner state
// advanced over the 64 bytes every issued token of the key starts with (the prefix state).
//
// Why C: the pad states are SHA256_CTX values of OpenSSL's low-level SHA-256 API, deprecated in
// 3.0 and compiled out of CRegTokenOpenSSL (OPENSSL_NO_DEPRECATED); this file alone compiles it
// with OPENSSL_SUPPRESS_DEPRECATED. Resuming from a precomputed state per MAC is far cheaper than
// EVP's contexts (EVP_MAC or EVP_MD_CTX_copy_ex), takes no lock and allocates nothing; the prefix
// state saves one SHA-256 block of every issued token; the MAC is finished by hand around
// SHA256_Update. Each of the three has its row with and without it in BENCHMARKS.md ("C only
// where it pays"). Pad and prefix states are wiped with OPENSSL_cleanse by the clear functions,
// temporaries inline.
#ifndef C_REGTOKEN_FAST_PATH_HMAC_SHA256_H
#define C_REGTOKEN_FAST_PATH_HMAC_SHA256_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Two SHA256_CTX (inner and outer pad states); hmac_sha256.c checks that they fit. As secret
/// as the key: wipe with hmac_sha256_clear before the memory is released.
typedef struct {
    _Alignas(16) unsigned char bytes[256];
} CRegTokenFastPath_HMACSHA256Pads;

/// Precomputes the pad states of `key` (hashed first when longer than 64 bytes). Returns 1 on
/// success; on failure the caller still clears `pads`.
int CRegTokenFastPath_hmac_sha256_init(CRegTokenFastPath_HMACSHA256Pads *pads, const void *key, size_t key_len);

/// Wipes the pad states (OPENSSL_cleanse).
void CRegTokenFastPath_hmac_sha256_clear(CRegTokenFastPath_HMACSHA256Pads *pads);

/// HMAC-SHA256 of `msg` into `out` (32 bytes).
void CRegTokenFastPath_hmac_sha256(const CRegTokenFastPath_HMACSHA256Pads *pads,
                                   const void *msg, size_t msg_len, uint8_t *out);

/// 1 when the first `tag_len` bytes (1...32) of HMAC-SHA256(msg) equal `tag`, compared in constant
/// time (a whole tag as hmac_sha256_verify32 does, a shorter one with CRYPTO_memcmp); 0 otherwise.
int CRegTokenFastPath_hmac_sha256_verify(const CRegTokenFastPath_HMACSHA256Pads *pads,
                                         const void *msg, size_t msg_len,
                                         const void *tag, size_t tag_len);

/// The inner pad state of a key advanced over 64 bytes that start every token of the key (its
/// issued header, the dot and the start of the claims), with those bytes. As secret as the key:
/// wipe with hmac_sha256_prefix_clear before the memory is released.
typedef struct {
    _Alignas(16) unsigned char bytes[192];
} CRegTokenFastPath_HMACSHA256Prefix;

/// Fills `prefix` from the key's pad states and the 64 bytes at `prefix64`. Returns 1 on success.
int CRegTokenFastPath_hmac_sha256_prefix_init(CRegTokenFastPath_HMACSHA256Prefix *prefix,
                                              const CRegTokenFastPath_HMACSHA256Pads *pads,
                                              const void *prefix64);

/// Wipes a prefix state (OPENSSL_cleanse).
void CRegTokenFastPath_hmac_sha256_prefix_clear(CRegTokenFastPath_HMACSHA256Prefix *prefix);

/// 1 when HMAC-SHA256(msg) equals the 32 bytes at `tag32` (compared in constant time), 0 otherwise.
/// When `prefix` is not NULL and `msg` starts with its 64 bytes, the inner hash resumes from the
/// prefix state: one SHA-256 block fewer, the same MAC. The caller may vouch that the first
/// `known` bytes of `msg` equal the prefix's (the verifier compared the header already); the
/// rest is compared here.
int CRegTokenFastPath_hmac_sha256_verify32(const CRegTokenFastPath_HMACSHA256Pads *pads,
                                           const CRegTokenFastPath_HMACSHA256Prefix *prefix, size_t known,
                                           const void *msg, size_t msg_len, const void *tag32);

/// SHA-256 of msg into out (32 bytes), through the same low-level API: no provider fetch, no
/// context, no allocation (for es256.c).
void CRegTokenFastPath_sha256(const void *msg, size_t msg_len, uint8_t *out);

#ifdef __cplusplus
}
#endif
#endif
