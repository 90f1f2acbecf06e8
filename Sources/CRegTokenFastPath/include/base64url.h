// Strict base64url decoding (RFC 7515 §2: the RFC 4648 §5 alphabet, no padding, no whitespace,
// zero unused bits in the last character): four lookup tables, and 32 characters at a time with
// AVX2 where the CPU has it.
//
// Why C: the AVX2 intrinsics, and the table decoder's speed (see BENCHMARKS.md for the rows
// against a plain Swift decoder).
#ifndef C_REGTOKEN_FAST_PATH_BASE64URL_H
#define C_REGTOKEN_FAST_PATH_BASE64URL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Decodes `len` characters into `out` (capacity `out_cap`, at least len * 3 / 4). Returns the
/// decoded length, or -1 when the input is not canonical base64url.
long CRegTokenFastPath_base64url_decode(const uint8_t *in, size_t len, uint8_t *out, size_t out_cap);

/// 1 when base64url_decode takes 32 characters at a time with AVX2 here (x86-64 CPUs with AVX2
/// and an OS that saves its registers); 0 when it uses the table decoder only.
int CRegTokenFastPath_base64url_vectorised(void);

#ifdef __cplusplus
}
#endif
#endif
