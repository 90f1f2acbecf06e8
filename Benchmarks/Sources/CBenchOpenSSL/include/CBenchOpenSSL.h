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
#endif
