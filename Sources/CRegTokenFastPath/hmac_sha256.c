// HMAC-SHA256 from precomputed pad and prefix states; see include/hmac_sha256.h for why C.
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include "hmac_sha256.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <string.h>

typedef struct {
    SHA256_CTX inner;
    SHA256_CTX outer;
} pads_t;

_Static_assert(sizeof(pads_t) <= sizeof(CRegTokenFastPath_HMACSHA256Pads), "pad states do not fit");

typedef struct {
    SHA256_CTX inner;                      // the inner pad state after the 64 prefix bytes
    unsigned char prefix[SHA256_CBLOCK];   // the prefix (public: the start of every token of the key)
} prefix_t;

_Static_assert(sizeof(prefix_t) <= sizeof(CRegTokenFastPath_HMACSHA256Prefix), "prefix state does not fit");

int CRegTokenFastPath_hmac_sha256_init(CRegTokenFastPath_HMACSHA256Pads *blob, const void *key, size_t key_len) {
    pads_t *pads = (pads_t *)blob->bytes;
    unsigned char block[SHA256_CBLOCK];
    unsigned char pad[SHA256_CBLOCK];
    memset(block, 0, sizeof(block));
    int ok = 1;
    if (key_len > SHA256_CBLOCK) {
        SHA256_CTX c;
        ok = SHA256_Init(&c) && SHA256_Update(&c, key, key_len) && SHA256_Final(block, &c);
        OPENSSL_cleanse(&c, sizeof(c));
    } else if (key_len > 0) {
        memcpy(block, key, key_len);
    }
    for (size_t i = 0; i < SHA256_CBLOCK; i++) pad[i] = block[i] ^ 0x36;
    ok = ok && SHA256_Init(&pads->inner) && SHA256_Update(&pads->inner, pad, SHA256_CBLOCK);
    for (size_t i = 0; i < SHA256_CBLOCK; i++) pad[i] = block[i] ^ 0x5c;
    ok = ok && SHA256_Init(&pads->outer) && SHA256_Update(&pads->outer, pad, SHA256_CBLOCK);
    OPENSSL_cleanse(block, sizeof(block));
    OPENSSL_cleanse(pad, sizeof(pad));
    return ok ? 1 : 0;
}

void CRegTokenFastPath_hmac_sha256_clear(CRegTokenFastPath_HMACSHA256Pads *pads) {
    OPENSSL_cleanse(pads->bytes, sizeof(pads->bytes));
}

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
// the key API and the verifier all come here.
//
// Finished by hand around SHA256_Update (whole blocks straight from the message, the padding
// and the outer block built here, no SHA256_Final, an inline wipe instead of OPENSSL_cleanse):
// a measured exception of its own. The standard finish (a state copy, SHA256_Update,
// SHA256_Final, OPENSSL_cleanse) cost 6 to 7 % of an HS256 verification (BENCHMARKS.md, "C only
// where it pays", where a copy of it keeps its row); FastPathTests compare this MAC with
// OpenSSL's one-shot HMAC for every message length from 0 to 320 bytes, with and without the
// prefix state.
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
    // result (CRYPTO_memcmp goes byte by byte through a volatile pointer).
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

void CRegTokenFastPath_sha256(const void *msg, size_t msg_len, uint8_t *out) {
    SHA256_CTX c;
    SHA256_Init(&c);
    SHA256_Update(&c, msg, msg_len);
    SHA256_Final(out, &c);
}
