// See CRegTokenFastPath.h for why this file exists.
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include "CRegTokenFastPath.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <stdlib.h>
#include <sched.h>
#include <unistd.h>
#include <sys/syscall.h>
#if defined(__linux__)
#include <linux/membarrier.h>
#endif

typedef struct {
    SHA256_CTX inner;
    SHA256_CTX outer;
} pads_t;

_Static_assert(sizeof(pads_t) <= sizeof(CRegTokenFastPath_HMACSHA256Pads), "pad states do not fit");

int CRegTokenFastPath_hmac_sha256_init(CRegTokenFastPath_HMACSHA256Pads *blob, const void *key, size_t key_len) {
    pads_t *pads = (pads_t *)blob->bytes;
    unsigned char block[SHA256_CBLOCK];
    unsigned char pad[SHA256_CBLOCK];
    memset(block, 0, sizeof(block));
    if (key_len > SHA256_CBLOCK) {
        SHA256_CTX c;
        if (!SHA256_Init(&c) || !SHA256_Update(&c, key, key_len) || !SHA256_Final(block, &c)) return 0;
        OPENSSL_cleanse(&c, sizeof(c));
    } else if (key_len > 0) {
        memcpy(block, key, key_len);
    }
    for (size_t i = 0; i < SHA256_CBLOCK; i++) pad[i] = block[i] ^ 0x36;
    int ok = SHA256_Init(&pads->inner) && SHA256_Update(&pads->inner, pad, SHA256_CBLOCK);
    for (size_t i = 0; i < SHA256_CBLOCK; i++) pad[i] = block[i] ^ 0x5c;
    ok = ok && SHA256_Init(&pads->outer) && SHA256_Update(&pads->outer, pad, SHA256_CBLOCK);
    OPENSSL_cleanse(block, sizeof(block));
    OPENSSL_cleanse(pad, sizeof(pad));
    return ok ? 1 : 0;
}

typedef struct {
    SHA256_CTX inner;                      // the inner pad state after the 64 prefix bytes
    unsigned char prefix[SHA256_CBLOCK];   // the prefix (public: the start of every token of the key)
} prefix_t;

_Static_assert(sizeof(prefix_t) <= sizeof(CRegTokenFastPath_HMACSHA256Prefix), "prefix state does not fit");

int CRegTokenFastPath_hmac_sha256_prefix_init(CRegTokenFastPath_HMACSHA256Prefix *blob,
                                              const CRegTokenFastPath_HMACSHA256Pads *pads_blob,
                                              const void *prefix64) {
    prefix_t *p = (prefix_t *)blob->bytes;
    const pads_t *pads = (const pads_t *)pads_blob->bytes;
    p->inner = pads->inner;
    memcpy(p->prefix, prefix64, SHA256_CBLOCK);
    return SHA256_Update(&p->inner, prefix64, SHA256_CBLOCK) ? 1 : 0;
}

void CRegTokenFastPath_hmac_sha256_prefix_clear(CRegTokenFastPath_HMACSHA256Prefix *blob) {
    OPENSSL_cleanse(blob->bytes, sizeof(blob->bytes));
}

// Wipes `n` bytes at `p`: memset, then an empty asm that takes the pointer and clobbers memory, so
// the compiler can neither drop the stores nor move them (what glibc's explicit_bzero does, inline).
static inline void wipe(void *p, size_t n) {
    memset(p, 0, n);
    __asm__ __volatile__("" : : "r"(p) : "memory");
}

static inline void store_be32(unsigned char *p, uint32_t v) {
    v = __builtin_bswap32(v);
    memcpy(p, &v, 4);
}

static inline uint32_t load_be32(const unsigned char *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return __builtin_bswap32(v);
}

// Hashes whole 64-byte blocks into c->h. SHA256_Update on a context with nothing buffered
// (num == 0) and a multiple of 64 bytes runs the block function straight on `blocks`: no copy, and
// nothing is left buffered. The message length is counted by the caller, so Nl/Nh are not used.
static inline void sha256_blocks(SHA256_CTX *c, const void *blocks, size_t len) {
    c->num = 0;
    SHA256_Update(c, blocks, len);
}

// HMAC-SHA256 of `msg` as the eight state words of the outer hash (the MAC is their big-endian
// bytes), from the pad states, or from the prefix state when `msg` starts with the prefix (of
// which the caller vouches for the first `known` bytes). The one HMAC of the package: signing,
// the key API and the verifier's fast path all come here.
static inline __attribute__((always_inline)) void hmac_words(const pads_t *pads, const prefix_t *prefix, size_t known,
                       const unsigned char *m, size_t n, uint32_t mac[8]) {
    uint64_t hashed;   // bytes before m: the pad block, and the prefix when resuming from it
    SHA256_CTX c;
    c.Nl = c.Nh = 0;
    // The prefix and the message are public: comparing them with an early exit leaks nothing.
    int resume = prefix != NULL && n >= SHA256_CBLOCK;
    for (size_t i = known; resume && i < SHA256_CBLOCK; i++) resume = m[i] == prefix->prefix[i];
    if (resume) {
        memcpy(c.h, prefix->inner.h, sizeof(c.h));
        m += SHA256_CBLOCK;
        n -= SHA256_CBLOCK;
        hashed = 2 * SHA256_CBLOCK;
    } else {
        memcpy(c.h, pads->inner.h, sizeof(c.h));
        hashed = SHA256_CBLOCK;
    }
    // Inner hash: the whole blocks where they lie, then the tail padded by hand (FIPS 180-4 5.1.1:
    // 0x80, zeros, the length in bits as 64 big-endian bits), in one block or two.
    size_t whole = n & ~(size_t)(SHA256_CBLOCK - 1);
    if (whole) sha256_blocks(&c, m, whole);
    size_t rest = n - whole;
    unsigned char last[2 * SHA256_CBLOCK];
    size_t last_len = rest < SHA256_CBLOCK - 8 ? SHA256_CBLOCK : 2 * SHA256_CBLOCK;
    memset(last, 0, sizeof(last));
    memcpy(last, m + whole, rest);
    last[rest] = 0x80;
    uint64_t bits = (hashed + n) * 8;
    store_be32(last + last_len - 8, (uint32_t)(bits >> 32));
    store_be32(last + last_len - 4, (uint32_t)bits);
    sha256_blocks(&c, last, last_len);
    // Outer hash: the pad block, then the inner digest (32 bytes) padded to one block.
    unsigned char outer[SHA256_CBLOCK];
    for (int i = 0; i < 8; i++) store_be32(outer + 4 * i, c.h[i]);
    memset(outer + 32, 0, 32);
    outer[32] = 0x80;
    store_be32(outer + 60, (SHA256_CBLOCK + 32) * 8);
    memcpy(c.h, pads->outer.h, sizeof(c.h));
    sha256_blocks(&c, outer, sizeof(outer));
    memcpy(mac, c.h, sizeof(c.h));
    wipe(&c, sizeof(c));
    wipe(outer, sizeof(outer));
}

void CRegTokenFastPath_hmac_sha256(const CRegTokenFastPath_HMACSHA256Pads *blob,
                                   const void *msg, size_t msg_len, uint8_t *out) {
    uint32_t mac[8];
    hmac_words((const pads_t *)blob->bytes, NULL, 0, (const unsigned char *)msg, msg_len, mac);
    for (int i = 0; i < 8; i++) store_be32(out + 4 * i, mac[i]);
    wipe(mac, sizeof(mac));
}

int CRegTokenFastPath_hmac_sha256_verify32(const CRegTokenFastPath_HMACSHA256Pads *pads_blob,
                                           const CRegTokenFastPath_HMACSHA256Prefix *prefix_blob, size_t known,
                                           const void *msg, size_t msg_len, const void *tag32) {
    uint32_t mac[8];
    hmac_words((const pads_t *)pads_blob->bytes, prefix_blob ? (const prefix_t *)prefix_blob->bytes : NULL, known,
               (const unsigned char *)msg, msg_len, mac);
    // Constant time: every word XORed and ORed, no branch on their contents, one test of the
    // result (CRYPTO_memcmp goes byte by byte through a volatile pointer and cost 15 ns here).
    const unsigned char *tag = (const unsigned char *)tag32;
    uint32_t diff = 0;
    for (int i = 0; i < 8; i++) diff |= mac[i] ^ load_be32(tag + 4 * i);
    wipe(mac, sizeof(mac));
    return diff == 0 ? 1 : 0;
}

int CRegTokenFastPath_hmac_sha256_verify(const CRegTokenFastPath_HMACSHA256Pads *pads,
                                         const void *msg, size_t msg_len,
                                         const void *tag, size_t tag_len) {
    if (tag_len == SHA256_DIGEST_LENGTH) return CRegTokenFastPath_hmac_sha256_verify32(pads, NULL, 0, msg, msg_len, tag);
    if (tag_len == 0 || tag_len > SHA256_DIGEST_LENGTH) return 0;
    unsigned char mac[SHA256_DIGEST_LENGTH];
    CRegTokenFastPath_hmac_sha256(pads, msg, msg_len, mac);
    int ok = CRYPTO_memcmp(mac, tag, tag_len) == 0 ? 1 : 0;
    wipe(mac, sizeof(mac));
    return ok;
}

void CRegTokenFastPath_hmac_sha256_clear(CRegTokenFastPath_HMACSHA256Pads *pads) {
    OPENSSL_cleanse(pads->bytes, sizeof(pads->bytes));
}

void CRegTokenFastPath_sha256(const void *msg, size_t msg_len, uint8_t *out) {
    SHA256_CTX c;
    SHA256_Init(&c);
    SHA256_Update(&c, msg, msg_len);
    SHA256_Final(out, &c);
}

static _Atomic uint64_t next_uid = 1;

uint64_t CRegTokenFastPath_next_key_uid(void) {
    return atomic_fetch_add(&next_uid, 1);
}

// Appends one DER INTEGER holding the 32-byte big-endian unsigned value `v`.
static size_t der_integer(const uint8_t *v, uint8_t *out) {
    size_t i = 0;
    while (i < 31 && v[i] == 0) i++;
    size_t len = 32 - i;
    int pad = (v[i] & 0x80) != 0;
    out[0] = 0x02;
    out[1] = (uint8_t)(len + pad);
    size_t o = 2;
    if (pad) out[o++] = 0;
    memcpy(out + o, v + i, len);
    return o + len;
}

size_t CRegTokenFastPath_ecdsa_raw_to_der(const uint8_t *sig64, uint8_t *der) {
    uint8_t body[70];
    size_t n = der_integer(sig64, body);
    n += der_integer(sig64 + 32, body + n);
    der[0] = 0x30;
    der[1] = (uint8_t)n;   // at most 2 * 35 = 70 < 128: short form
    memcpy(der + 2, body, n);
    return n + 2;
}

// Per-thread cache of verification contexts, keyed by the key's process-unique id. A context holds
// a reference to its key, so a key freed by its owner stays valid until its context is evicted.
#define CACHE_SLOTS 8
typedef struct {
    uint64_t uid;
    EVP_PKEY_CTX *ctx;
} slot_t;

typedef struct {
    slot_t slots[CACHE_SLOTS];
    unsigned next;
} thread_cache_t;

static __thread thread_cache_t tls_cache;
static __thread int tls_registered;
static pthread_key_t cache_key;
static pthread_once_t cache_key_once = PTHREAD_ONCE_INIT;

static void cache_destroy(void *p) {
    thread_cache_t *cache = (thread_cache_t *)p;
    for (int i = 0; i < CACHE_SLOTS; i++) {
        EVP_PKEY_CTX_free(cache->slots[i].ctx);
        cache->slots[i].ctx = NULL;
        cache->slots[i].uid = 0;
    }
}

static void cache_key_make(void) {
    (void)pthread_key_create(&cache_key, cache_destroy);
}

static EVP_PKEY_CTX *context_for(EVP_PKEY *pkey, uint64_t uid) {
    thread_cache_t *cache = &tls_cache;
    for (int i = 0; i < CACHE_SLOTS; i++) {
        if (cache->slots[i].uid == uid && cache->slots[i].ctx != NULL) return cache->slots[i].ctx;
    }
    if (!tls_registered) {
        pthread_once(&cache_key_once, cache_key_make);
        if (pthread_setspecific(cache_key, cache) == 0) tls_registered = 1;
    }
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    if (ctx == NULL) return NULL;
    if (EVP_PKEY_verify_init(ctx) <= 0) {
        EVP_PKEY_CTX_free(ctx);
        return NULL;
    }
    slot_t *slot = &cache->slots[cache->next % CACHE_SLOTS];
    cache->next++;
    EVP_PKEY_CTX_free(slot->ctx);
    slot->ctx = ctx;
    slot->uid = uid;
    return ctx;
}

int CRegTokenFastPath_es256_verify(void *key, uint64_t key_uid,
                                   const void *msg, size_t msg_len, const uint8_t *sig64) {
    EVP_PKEY *pkey = (EVP_PKEY *)key;
    unsigned char digest[SHA256_DIGEST_LENGTH];
    uint8_t der[72];
    CRegTokenFastPath_sha256(msg, msg_len, digest);
    size_t der_len = CRegTokenFastPath_ecdsa_raw_to_der(sig64, der);
    EVP_PKEY_CTX *ctx = context_for(pkey, key_uid);
    if (ctx == NULL) {
        ERR_clear_error();
        return -1;
    }
    int rc = EVP_PKEY_verify(ctx, der, der_len, digest, sizeof(digest));
    if (rc != 1) {
        // 0 is "does not verify"; a negative value is a malformed signature (r or s out of range),
        // which is also "does not verify". Either way the per-thread error queue is left empty.
        ERR_clear_error();
        return 0;
    }
    return 1;
}

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

// ---- Verified-signature cache (see the header) ----

#include <stdlib.h>
#include <openssl/rand.h>

struct CRegTokenFastPath_SignatureCache {
    size_t mask;
    size_t slot_size;       // bytes per slot, header included
    size_t max_len;
    uint64_t seed0, seed1;  // random per cache: an attacker cannot aim tokens at one slot
    unsigned char *slots;
};

typedef struct {
    _Atomic uint64_t seq;   // odd while a writer fills the slot
    uint64_t hash;
    uint64_t key_uid;
    uint64_t len;
    unsigned char bytes[];
} cache_slot_t;

static inline uint64_t mix(uint64_t a, uint64_t b) {
    __uint128_t r = (__uint128_t)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

// A fast keyed hash (wyhash-style multiply-mix) over the token bytes.
static uint64_t token_hash(const CRegTokenFastPath_SignatureCache *c, const unsigned char *p, size_t n) {
    uint64_t h = c->seed0 ^ (n * 0x9E3779B97F4A7C15ULL);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        uint64_t a, b;
        memcpy(&a, p + i, 8);
        memcpy(&b, p + i + 8, 8);
        h = mix(a ^ c->seed1 ^ h, b ^ 0xA0761D6478BD642FULL);
    }
    uint64_t a = 0, b = 0;
    size_t rest = n - i;
    if (rest > 8) {
        memcpy(&a, p + i, 8);
        memcpy(&b, p + i + 8, rest - 8);
    } else {
        memcpy(&a, p + i, rest);
    }
    return mix(mix(a ^ c->seed1 ^ h, b ^ 0xE7037ED1A0B428DBULL), c->seed0 ^ 0x8EBC6AF09C88C6E3ULL);
}

static inline cache_slot_t *slot_at(const CRegTokenFastPath_SignatureCache *c, uint64_t h) {
    return (cache_slot_t *)(c->slots + (size_t)(h & c->mask) * c->slot_size);
}

CRegTokenFastPath_SignatureCache *CRegTokenFastPath_cache_create(size_t capacity, size_t max_token_bytes) {
    if (capacity == 0 || max_token_bytes == 0) return NULL;
    size_t n = 1;
    while (n < capacity) n <<= 1;
    CRegTokenFastPath_SignatureCache *c = calloc(1, sizeof(*c));
    if (c == NULL) return NULL;
    c->mask = n - 1;
    c->max_len = max_token_bytes;
    c->slot_size = (sizeof(cache_slot_t) + max_token_bytes + 63) & ~(size_t)63;  // whole cache lines
    c->slots = aligned_alloc(64, n * c->slot_size);
    if (c->slots == NULL || RAND_bytes((unsigned char *)&c->seed0, 8) != 1 || RAND_bytes((unsigned char *)&c->seed1, 8) != 1) {
        free(c->slots);
        free(c);
        ERR_clear_error();
        return NULL;
    }
    memset(c->slots, 0, n * c->slot_size);   // seq 0, len 0: empty
    return c;
}

void CRegTokenFastPath_cache_destroy(CRegTokenFastPath_SignatureCache *c) {
    if (c == NULL) return;
    free(c->slots);
    free(c);
}

int CRegTokenFastPath_cache_contains(const CRegTokenFastPath_SignatureCache *c, const void *token, size_t len, uint64_t key_uid) {
    if (c == NULL || len == 0 || len > c->max_len) return 0;
    uint64_t h = token_hash(c, token, len);
    cache_slot_t *s = slot_at(c, h);
    uint64_t before = atomic_load_explicit(&s->seq, memory_order_acquire);
    if (before & 1) return 0;
    // memcmp's early exit could time how much of a cached token (a secret) a guess shares, but it
    // only runs once the 64-bit hash, keyed with the cache's random key, matched: a guess that is
    // not the cached token gets there with probability 2^-64, and learns nothing before that.
    int equal = s->hash == h && s->key_uid == key_uid && s->len == len && memcmp(s->bytes, token, len) == 0;
    atomic_thread_fence(memory_order_acquire);
    uint64_t after = atomic_load_explicit(&s->seq, memory_order_relaxed);
    return equal && before == after;
}

void CRegTokenFastPath_cache_insert(CRegTokenFastPath_SignatureCache *c, const void *token, size_t len, uint64_t key_uid) {
    if (c == NULL || len == 0 || len > c->max_len) return;
    uint64_t h = token_hash(c, token, len);
    cache_slot_t *s = slot_at(c, h);
    uint64_t seq = atomic_load_explicit(&s->seq, memory_order_relaxed);
    if (seq & 1) return;   // another writer is here: skip, never wait
    if (!atomic_compare_exchange_strong_explicit(&s->seq, &seq, seq + 1, memory_order_acquire, memory_order_relaxed)) return;
    atomic_thread_fence(memory_order_release);
    s->hash = h;
    s->key_uid = key_uid;
    s->len = len;
    memcpy(s->bytes, token, len);
    atomic_store_explicit(&s->seq, seq + 2, memory_order_release);
}

// ---- Snapshot readers (see the header) ----

__thread CRegTokenFastPath_Reader *CRegTokenFastPath_tls_reader;
int CRegTokenFastPath_reader_asymmetric;

static pthread_mutex_t readers_lock = PTHREAD_MUTEX_INITIALIZER;
static CRegTokenFastPath_Reader **readers;   // every record ever made; never freed, reused
static size_t readers_count;
static size_t readers_capacity;
static pthread_key_t reader_key;
static pthread_once_t reader_once = PTHREAD_ONCE_INIT;

_Static_assert(sizeof(CRegTokenFastPath_Reader) == 128, "a reader record is not one 128-byte block");

static void clear_record(CRegTokenFastPath_Reader *r) {
    for (int d = 0; d <= CRegTokenFastPath_READER_DEPTH; d++) __atomic_store_n(&r->hazard[d], 0, __ATOMIC_RELEASE);
    r->depth = 0;
}

static void reader_thread_exit(void *p) {
    CRegTokenFastPath_Reader *r = (CRegTokenFastPath_Reader *)p;
    // A thread can end inside a read (pthread_exit): what it was reading is no longer read.
    clear_record(r);
    // A read after this (another thread-exit destructor) registers afresh.
    CRegTokenFastPath_tls_reader = NULL;
    __atomic_store_n(&r->owned, 0, __ATOMIC_RELEASE);
}

// fork(2): the child has one thread. Records owned by the parent's other threads are freed (their
// reads do not exist in the child), and the lock is not left held by a thread that is gone.
static void reader_prefork(void) { pthread_mutex_lock(&readers_lock); }
static void reader_postfork_parent(void) { pthread_mutex_unlock(&readers_lock); }
static void reader_postfork_child(void) {
    for (size_t i = 0; i < readers_count; i++) {
        CRegTokenFastPath_Reader *r = readers[i];
        if (r == CRegTokenFastPath_tls_reader) continue;
        clear_record(r);
        __atomic_store_n(&r->owned, 0, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&readers_lock);
}

static long membarrier_call(int cmd) {
#if defined(__linux__) && defined(__NR_membarrier)
    return syscall(__NR_membarrier, cmd, 0, 0);
#else
    (void)cmd;
    return -1;
#endif
}

static void reader_init(void) {
    // Without the key, records of exited threads are not reused (a leak of 128 bytes a thread).
    (void)pthread_key_create(&reader_key, reader_thread_exit);
    (void)pthread_atfork(reader_prefork, reader_postfork_parent, reader_postfork_child);
#if defined(__linux__) && defined(__NR_membarrier)
    if (getenv("REGTOKEN_NO_MEMBARRIER") == NULL && membarrier_call(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0) {
        CRegTokenFastPath_reader_asymmetric = 1;
    }
#endif
}

CRegTokenFastPath_Reader *CRegTokenFastPath_reader_register(void) {
    pthread_once(&reader_once, reader_init);
    CRegTokenFastPath_Reader *r = NULL;
    pthread_mutex_lock(&readers_lock);
    for (size_t i = 0; i < readers_count; i++) {
        if (__atomic_load_n(&readers[i]->owned, __ATOMIC_ACQUIRE) == 0) {
            r = readers[i];
            break;
        }
    }
    if (r == NULL) {
        if (readers_count == readers_capacity) {
            size_t capacity = readers_capacity ? readers_capacity * 2 : 64;
            CRegTokenFastPath_Reader **grown = realloc(readers, capacity * sizeof(*grown));
            if (grown == NULL) {
                pthread_mutex_unlock(&readers_lock);
                return NULL;
            }
            readers = grown;
            readers_capacity = capacity;
        }
        r = aligned_alloc(128, sizeof(*r));
        if (r == NULL) {
            pthread_mutex_unlock(&readers_lock);
            return NULL;
        }
        memset(r, 0, sizeof(*r));
        readers[readers_count++] = r;
    }
    r->depth = 0;
    __atomic_store_n(&r->owned, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&readers_lock);
    (void)pthread_setspecific(reader_key, r);
    CRegTokenFastPath_tls_reader = r;
    return r;
}

int CRegTokenFastPath_reader_synchronize(uintptr_t old) {
    pthread_once(&reader_once, reader_init);
    if (CRegTokenFastPath_reader_asymmetric) {
#if defined(__linux__) && defined(__NR_membarrier)
        // Can fail with ENOMEM on some kernels: try again before giving up.
        int ok = 0;
        for (int attempt = 0; attempt < 3 && !ok; attempt++) {
            ok = membarrier_call(MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0;
            if (!ok) usleep(1000);
        }
        if (!ok) return 0;
#else
        return 0;
#endif
    } else {
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
    }
    // The records as they are now, listed under the lock and scanned without it (records are
    // never freed). A record made after this list belongs to a thread whose first read follows
    // the pointer's change (the lock orders them), so it cannot hold `old`; a record reused meanwhile
    // is in the list.
    pthread_mutex_lock(&readers_lock);
    size_t n = readers_count;
    CRegTokenFastPath_Reader **list = malloc((n ? n : 1) * sizeof(*list));
    if (list != NULL) memcpy(list, readers, n * sizeof(*list));
    pthread_mutex_unlock(&readers_lock);
    if (list == NULL) return 0;
    for (size_t i = 0; i < n; i++) {
        CRegTokenFastPath_Reader *r = list[i];
        for (int d = 0; d <= CRegTokenFastPath_READER_DEPTH; d++) {
            unsigned spins = 0;
            while (__atomic_load_n(&r->hazard[d], __ATOMIC_ACQUIRE) == old) {
                if (++spins < 64) sched_yield(); else usleep(50);
            }
        }
    }
    free(list);
    return 1;
}

uintptr_t CRegTokenFastPath_reader_protect_transient(const uintptr_t *cell) {
    CRegTokenFastPath_Reader *r = CRegTokenFastPath_tls_reader;
    if (r == NULL) r = CRegTokenFastPath_reader_register();
    if (r == NULL) return 0;
    return CRegTokenFastPath_reader_publish(cell, &r->hazard[CRegTokenFastPath_READER_DEPTH], __atomic_load_n(cell, __ATOMIC_ACQUIRE));
}

void CRegTokenFastPath_reader_clear_transient(void) {
    CRegTokenFastPath_Reader *r = CRegTokenFastPath_tls_reader;
    if (r != NULL) __atomic_store_n(&r->hazard[CRegTokenFastPath_READER_DEPTH], 0, __ATOMIC_RELEASE);
}

unsigned CRegTokenFastPath_reader_depth(void) {
    CRegTokenFastPath_Reader *r = CRegTokenFastPath_tls_reader;
    return r ? r->depth : 0;
}

size_t CRegTokenFastPath_reader_records(void) {
    pthread_mutex_lock(&readers_lock);
    size_t n = readers_count;
    pthread_mutex_unlock(&readers_lock);
    return n;
}

int CRegTokenFastPath_reader_uses_membarrier(void) {
    pthread_once(&reader_once, reader_init);
    return CRegTokenFastPath_reader_asymmetric;
}

uintptr_t CRegTokenFastPath_reader_enter_stepped(const uintptr_t *cell, uintptr_t **hazard,
                                                 CRegTokenFastPath_ReaderHook hook, void *context) {
    return CRegTokenFastPath_reader_enter_hooked(cell, hazard, hook, context);
}
