// The verification fast path's measured exceptions, in C: each one stays only because a
// benchmark row shows what it buys on its own path (BENCHMARKS.md, "C only where it pays":
// with and without, one run). One header and one .c file per concern:
//
// - hmac_sha256.h: HMAC-SHA256 from precomputed pad states and a per-key prefix state, through
//   OpenSSL's low-level SHA-256 API (deprecated in 3.0; EVP takes about twice as long), finished
//   by hand.
// - es256.h: ES256 verification through per-thread EVP_PKEY_CTX (no fetch and no context per
//   call), and raw r||s to DER.
// - base64url.h: strict base64url decoding (four tables; 32 characters at a time with AVX2).
// - signature_cache.h: the ES256 verified-signature cache (direct-mapped, sequence counters).
//
// Types here are opaque byte blobs and keys travel as `void *`, so these headers need no
// OpenSSL header: the Swift side sees the OpenSSL types through CRegTokenOpenSSL only. Every
// symbol is prefixed CRegTokenFastPath_ (C names share one namespace across the build graph).
#ifndef C_REGTOKEN_FAST_PATH_H
#define C_REGTOKEN_FAST_PATH_H

#include "hmac_sha256.h"
#include "es256.h"
#include "base64url.h"
#include "signature_cache.h"

#endif
