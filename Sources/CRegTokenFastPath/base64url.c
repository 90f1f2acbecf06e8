// Strict base64url decoding; see include/base64url.h for why C.
#include "base64url.h"

#include <stdatomic.h>
#include <string.h>

// Strict base64url decoding with four lookup tables, one per position in a 4-character group:
// each maps a character to its 6 bits already shifted into place in the 3 output bytes (byte k of
// the output is bits 8k..8k+7 of a uint32), so a group decodes to the OR of four loads, stored with one 4-byte store. A
// character outside the alphabet maps to B64_BAD, whose bit 24 no valid group sets; the bits of all
// groups are ORed together and checked once at the end. The tables are built by the preprocessor
// from B64_VALUE, so the alphabet is written once.
#define B64_VALUE(c) ((c) >= 'A' && (c) <= 'Z' ? (c) - 'A' : (c) >= 'a' && (c) <= 'z' ? (c) - 'a' + 26 \
                      : (c) >= '0' && (c) <= '9' ? (c) - '0' + 52 : (c) == '-' ? 62 : (c) == '_' ? 63 : -1)
#define B64_BAD 0x01FFFFFFu
#define B64_D0(c) (B64_VALUE(c) < 0 ? B64_BAD : (uint32_t)B64_VALUE(c) << 2)
#define B64_D1(c) (B64_VALUE(c) < 0 ? B64_BAD : ((uint32_t)B64_VALUE(c) >> 4) | (((uint32_t)B64_VALUE(c) & 0x0f) << 12))
#define B64_D2(c) (B64_VALUE(c) < 0 ? B64_BAD : (((uint32_t)B64_VALUE(c) >> 2) << 8) | (((uint32_t)B64_VALUE(c) & 0x03) << 22))
#define B64_D3(c) (B64_VALUE(c) < 0 ? B64_BAD : (uint32_t)B64_VALUE(c) << 16)
#define B64_R4(M, i) M(i), M(i + 1), M(i + 2), M(i + 3)
#define B64_R16(M, i) B64_R4(M, i), B64_R4(M, i + 4), B64_R4(M, i + 8), B64_R4(M, i + 12)
#define B64_R64(M, i) B64_R16(M, i), B64_R16(M, i + 16), B64_R16(M, i + 32), B64_R16(M, i + 48)
#define B64_R256(M) B64_R64(M, 0), B64_R64(M, 64), B64_R64(M, 128), B64_R64(M, 192)
static const uint32_t b64url_d0[256] = { B64_R256(B64_D0) };
static const uint32_t b64url_d1[256] = { B64_R256(B64_D1) };
static const uint32_t b64url_d2[256] = { B64_R256(B64_D2) };
static const uint32_t b64url_d3[256] = { B64_R256(B64_D3) };

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>

// 32 characters at a time with AVX2 (W. Muła and D. Lemire, "Faster Base64 Encoding and Decoding
// using AVX2 Instructions", 2018), for the base64url alphabet. Validation: a character is valid
// iff lo_invalid[low nibble] & hi_class[high nibble] == 0, where hi_class gives each high nibble
// 0-7 its own bit (8-15 share bit 0, whose nibble 0 is invalid with every low nibble) and
// lo_invalid[l] has bit h when (h, l) is not in the alphabet. Translation: the 6-bit value is the
// character plus an offset chosen by its high nibble ('_' is the one character sharing a high
// nibble with letters of another offset). Returns how many characters it decoded (a multiple of
// 32, writing 24 bytes for each and never past `need`), or -1 on an invalid character.
__attribute__((target("avx2")))
static long b64url_decode_avx2(const uint8_t *in, size_t full, uint8_t *out, size_t need) {
    // Indexed by the low nibble (one row per 128-bit lane).
    const __m256i lo_invalid = _mm256_setr_epi8(
        0x57, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x0f, (char)0xaf, (char)0xaf, (char)0xab, (char)0xaf, (char)0x8f,
        0x57, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x0f, (char)0xaf, (char)0xaf, (char)0xab, (char)0xaf, (char)0x8f);
    const __m256i hi_class = _mm256_setr_epi8(
        0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, (char)0x80, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01,
        0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, (char)0x80, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01);
    // '-' +17 (0x2d -> 62), digits +4, 'A'-'Z' -65, 'a'-'z' -71 (high nibbles 2, 3, 4-5, 6-7).
    const __m256i offsets = _mm256_setr_epi8(
        0, 0, 17, 4, -65, -65, -71, -71, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 17, 4, -65, -65, -71, -71, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m256i nibble = _mm256_set1_epi8(0x0f);
    const __m256i underscore = _mm256_set1_epi8('_');
    const __m256i underscore_fix = _mm256_set1_epi8(33);   // '_' (0x5f) is 63: -32, not -65
    const __m256i pack_pairs = _mm256_set1_epi32(0x01400140);
    const __m256i pack_quads = _mm256_set1_epi32(0x00011000);
    const __m256i order = _mm256_setr_epi8(2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1,
                                           2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1);
    const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 4, 5, 6, 3, 7);
    size_t i = 0, o = 0;
    __m256i invalid = _mm256_setzero_si256();
    for (; i + 32 <= full && o + 32 <= need; i += 32, o += 24) {
        __m256i c = _mm256_loadu_si256((const __m256i *)(in + i));
        __m256i hi = _mm256_and_si256(_mm256_srli_epi32(c, 4), nibble);
        __m256i lo = _mm256_and_si256(c, nibble);
        invalid = _mm256_or_si256(invalid, _mm256_and_si256(_mm256_shuffle_epi8(lo_invalid, lo), _mm256_shuffle_epi8(hi_class, hi)));
        __m256i offset = _mm256_shuffle_epi8(offsets, hi);
        offset = _mm256_add_epi8(offset, _mm256_and_si256(_mm256_cmpeq_epi8(c, underscore), underscore_fix));
        __m256i v = _mm256_add_epi8(c, offset);
        __m256i merged = _mm256_madd_epi16(_mm256_maddubs_epi16(v, pack_pairs), pack_quads);
        __m256i bytes = _mm256_permutevar8x32_epi32(_mm256_shuffle_epi8(merged, order), lanes);
        _mm256_storeu_si256((__m256i *)(out + o), bytes);
    }
    if (!_mm256_testz_si256(invalid, invalid)) return -1;
    return (long)i;
}

// 1 when the CPU and the OS support AVX2 (cpuid leaf 7, and YMM state enabled in XCR0).
static int cpu_has_avx2(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_OSXSAVE) || !(c & bit_AVX)) return 0;
    unsigned lo, hi;
    __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & 6) != 6) return 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    return (b & bit_AVX2) != 0;
}

static _Atomic int avx2_state = -1;   // -1: not checked yet

static inline int use_avx2(void) {
    int s = atomic_load_explicit(&avx2_state, memory_order_relaxed);
    if (s < 0) {
        s = cpu_has_avx2();
        atomic_store_explicit(&avx2_state, s, memory_order_relaxed);
    }
    return s;
}
#endif

int CRegTokenFastPath_base64url_vectorised(void) {
#if defined(__x86_64__)
    return use_avx2();
#else
    return 0;
#endif
}

long CRegTokenFastPath_base64url_decode(const uint8_t *in, size_t len, uint8_t *out, size_t out_cap) {
    size_t rem = len % 4;
    if (rem == 1) return -1;
    size_t need = (len / 4) * 3 + (rem == 0 ? 0 : rem - 1);
    if (need > out_cap) return -1;
    size_t full = len - rem;
    size_t o = 0;
    uint32_t bad = 0;
    size_t i = 0;
#if defined(__x86_64__)
    if (full >= 64 && use_avx2()) {
        long done = b64url_decode_avx2(in, full, out, need);
        if (done < 0) return -1;
        i = (size_t)done;
        o = i / 4 * 3;
    }
#endif
    // Every group but the last full one stores 4 bytes (the 4th is overwritten by the next group),
    // so nothing is written past `need`.
    for (; i + 4 < full; i += 4) {
        uint32_t x = b64url_d0[in[i]] | b64url_d1[in[i + 1]] | b64url_d2[in[i + 2]] | b64url_d3[in[i + 3]];
        bad |= x;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        memcpy(out + o, &x, 4);
#else
        out[o] = (uint8_t)x;
        out[o + 1] = (uint8_t)(x >> 8);
        out[o + 2] = (uint8_t)(x >> 16);
#endif
        o += 3;
    }
    if (i < full) {
        uint32_t x = b64url_d0[in[i]] | b64url_d1[in[i + 1]] | b64url_d2[in[i + 2]] | b64url_d3[in[i + 3]];
        bad |= x;
        out[o] = (uint8_t)x;
        out[o + 1] = (uint8_t)(x >> 8);
        out[o + 2] = (uint8_t)(x >> 16);
        o += 3;
    }
    if (rem == 2) {
        uint32_t x = b64url_d0[in[full]] | b64url_d1[in[full + 1]];
        bad |= x;
        if (x & 0xff00) return -1;               // unused low 4 bits of the 2nd character must be zero
        out[o++] = (uint8_t)x;
    } else if (rem == 3) {
        uint32_t x = b64url_d0[in[full]] | b64url_d1[in[full + 1]] | b64url_d2[in[full + 2]];
        bad |= x;
        if (x & 0xff0000) return -1;             // unused low 2 bits of the 3rd character must be zero
        out[o++] = (uint8_t)x;
        out[o++] = (uint8_t)(x >> 8);
    }
    if (bad & 0x01000000u) return -1;
    return (long)o;
}

