// ES256 (ECDSA P-256 with SHA-256) verification through an EVP_PKEY_CTX kept per thread and per
// key, so that verifying neither fetches algorithms nor creates contexts (each of which takes
// read locks in OpenSSL's provider store, and costs time: see BENCHMARKS.md for the rows).
//
// Why C: the per-thread context cache needs thread-local storage with a destructor at thread
// exit (__thread and a pthread key), which Swift does not offer cheaply.
#ifndef C_REGTOKEN_FAST_PATH_ES256_H
#define C_REGTOKEN_FAST_PATH_ES256_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// A process-unique id for an ECDSA key, never reused; names the key in the per-thread context cache.
uint64_t CRegTokenFastPath_next_key_uid(void);

/// Verifies an ES256 signature (raw r||s, 64 bytes) over SHA-256(msg) with `pkey` (an EVP_PKEY *
/// holding a P-256 public key). Returns 1 when valid, 0 when not, -1 on an internal error. The
/// per-thread context for `key_uid` is created on first use and holds a reference to the key.
int CRegTokenFastPath_es256_verify(void *pkey, uint64_t key_uid,
                                   const void *msg, size_t msg_len, const uint8_t *sig64);

/// Encodes raw r||s (32 bytes each) as a DER ECDSA-Sig-Value into `der` (at least 72 bytes).
/// Returns the DER length.
size_t CRegTokenFastPath_ecdsa_raw_to_der(const uint8_t *sig64, uint8_t *der);

#ifdef __cplusplus
}
#endif
#endif
