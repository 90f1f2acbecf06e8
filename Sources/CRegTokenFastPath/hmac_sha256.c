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

// HMAC-SHA256 of `msg` into `mac`, from the pad states, or from the prefix state when `msg` starts
// with the prefix (of which the caller vouches for the first `known` bytes). The one HMAC of the
// package: signing, the key API and the verifier all come here. Finished the standard way: a
// copy of the state, SHA256_Update, SHA256_Final, then the outer hash likewise. What is left of
// the key in `t` (the hash state, the inner digest) is wiped by the caller, with the MAC, in one
// OPENSSL_cleanse (SHA256_Final wipes its own block buffer).
typedef struct {
    SHA256_CTX c;
    unsigned char inner[SHA256_DIGEST_LENGTH];
    unsigned char mac[SHA256_DIGEST_LENGTH];
} hmac_scratch_t;

static inline __attribute__((always_inline)) void hmac(const pads_t *pads, const prefix_t *prefix, size_t known,
                                                       const unsigned char *m, size_t n, hmac_scratch_t *t) {
    // The prefix and the message are public: comparing them with an early exit leaks nothing.
    int resume = prefix != NULL && n >= SHA256_CBLOCK;
    for (size_t i = known; resume && i < SHA256_CBLOCK; i++) resume = m[i] == prefix->prefix[i];
    if (resume) {
        t->c = prefix->inner;
        m += SHA256_CBLOCK;
        n -= SHA256_CBLOCK;
    } else {
        t->c = pads->inner;
    }
    SHA256_Update(&t->c, m, n);
    SHA256_Final(t->inner, &t->c);
    t->c = pads->outer;
    SHA256_Update(&t->c, t->inner, sizeof(t->inner));
    SHA256_Final(t->mac, &t->c);
}

void CRegTokenFastPath_hmac_sha256(const CRegTokenFastPath_HMACSHA256Pads *blob,
                                   const void *msg, size_t msg_len, uint8_t *out) {
    hmac_scratch_t t;
    hmac((const pads_t *)blob->bytes, NULL, 0, (const unsigned char *)msg, msg_len, &t);
    memcpy(out, t.mac, sizeof(t.mac));
    OPENSSL_cleanse(&t, sizeof(t));
}

static inline uint64_t load64(const unsigned char *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

int CRegTokenFastPath_hmac_sha256_verify32(const CRegTokenFastPath_HMACSHA256Pads *pads_blob,
                                           const CRegTokenFastPath_HMACSHA256Prefix *prefix_blob, size_t known,
                                           const void *msg, size_t msg_len, const void *tag32) {
    hmac_scratch_t t;
    hmac((const pads_t *)pads_blob->bytes, prefix_blob ? (const prefix_t *)prefix_blob->bytes : NULL, known,
         (const unsigned char *)msg, msg_len, &t);
    // Constant time: the four 8-byte words XORed and ORed, no branch on their contents, one test
    // of the result (CRYPTO_memcmp goes byte by byte through a volatile pointer).
    const unsigned char *tag = (const unsigned char *)tag32;
    uint64_t diff = 0;
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i += 8) diff |= load64(t.mac + i) ^ load64(tag + i);
    OPENSSL_cleanse(&t, sizeof(t));
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
    OPENSSL_cleanse(mac, sizeof(mac));
    return ok;
}

void CRegTokenFastPath_sha256(const void *msg, size_t msg_len, uint8_t *out) {
    SHA256_CTX c;
    SHA256_Init(&c);
    SHA256_Update(&c, msg, msg_len);
    SHA256_Final(out, &c);
}
