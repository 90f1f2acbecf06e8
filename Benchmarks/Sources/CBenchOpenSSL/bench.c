#define OPENSSL_SUPPRESS_DEPRECATED 1
#include "CBenchOpenSSL.h"
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <string.h>
#include <openssl/core_names.h>

typedef struct { SHA256_CTX inner, outer; } pads_t;

int CBench_hmac_init(CBench_HMACPads *blob, const uint8_t *key, size_t key_len) {
    pads_t *p = (pads_t *)blob->bytes;
    unsigned char block[64] = {0}, pad[64];
    if (key_len > 64) SHA256(key, key_len, block); else memcpy(block, key, key_len);
    for (int i = 0; i < 64; i++) pad[i] = block[i] ^ 0x36;
    SHA256_Init(&p->inner); SHA256_Update(&p->inner, pad, 64);
    for (int i = 0; i < 64; i++) pad[i] = block[i] ^ 0x5c;
    SHA256_Init(&p->outer); SHA256_Update(&p->outer, pad, 64);
    return 1;
}

void CBench_hmac(const CBench_HMACPads *blob, const uint8_t *msg, size_t len, uint8_t *out) {
    const pads_t *p = (const pads_t *)blob->bytes;
    SHA256_CTX c = p->inner;
    unsigned char inner[32];
    SHA256_Update(&c, msg, len);
    SHA256_Final(inner, &c);
    c = p->outer;
    SHA256_Update(&c, inner, 32);
    SHA256_Final(out, &c);
}

void *CBench_p256_context(const uint8_t *point) {
    static const unsigned char prefix[26] = {0x30,0x59,0x30,0x13,0x06,0x07,0x2a,0x86,0x48,0xce,0x3d,0x02,0x01,
                                             0x06,0x08,0x2a,0x86,0x48,0xce,0x3d,0x03,0x01,0x07,0x03,0x42,0x00};
    unsigned char der[91];
    memcpy(der, prefix, 26);
    memcpy(der + 26, point, 65);
    const unsigned char *p = der;
    EVP_PKEY *key = d2i_PUBKEY(NULL, &p, sizeof(der));
    if (key == NULL) return NULL;
    // d2i_PUBKEY gives a legacy-backed key; reading a parameter exports it to the provider once
    // (otherwise each verify exports it again: about 2,000 mallocs and 5x the time per verify).
    char group[64];
    size_t glen = 0;
    EVP_PKEY_get_utf8_string_param(key, "group", group, sizeof(group), &glen);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
    if (ctx == NULL || EVP_PKEY_verify_init(ctx) <= 0) { EVP_PKEY_CTX_free(ctx); EVP_PKEY_free(key); return NULL; }
    return ctx;   // the context holds a reference to the key; the key is freed with it
}

void CBench_p256_free(void *ctx) {
    EVP_PKEY *key = EVP_PKEY_CTX_get0_pkey((EVP_PKEY_CTX *)ctx);
    EVP_PKEY_CTX_free((EVP_PKEY_CTX *)ctx);
    EVP_PKEY_free(key);
}

int CBench_p256_verify(void *ctx, const uint8_t *digest, const uint8_t *der, size_t der_len) {
    return EVP_PKEY_verify((EVP_PKEY_CTX *)ctx, der, der_len, digest, 32) == 1;
}

void CBench_sha256(const uint8_t *msg, size_t len, uint8_t *out) { SHA256(msg, len, out); }

static size_t der_int(const uint8_t *v, uint8_t *out) {
    size_t i = 0;
    while (i < 31 && v[i] == 0) i++;
    size_t len = 32 - i;
    int pad = (v[i] & 0x80) != 0;
    out[0] = 0x02; out[1] = (uint8_t)(len + pad);
    size_t o = 2;
    if (pad) out[o++] = 0;
    memcpy(out + o, v + i, len);
    return o + len;
}

size_t CBench_raw_to_der(const uint8_t *sig, uint8_t *der) {
    uint8_t body[70];
    size_t n = der_int(sig, body);
    n += der_int(sig + 32, body + n);
    der[0] = 0x30; der[1] = (uint8_t)n;
    memcpy(der + 2, body, n);
    return n + 2;
}

// ---- "C only where it pays" (see CBenchOpenSSL.h) ----

#include <openssl/crypto.h>
#include <openssl/params.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <linux/membarrier.h>

int CBench_p256_verify_fresh_context(void *ctx, const uint8_t *digest, const uint8_t *der, size_t der_len) {
    EVP_PKEY *key = EVP_PKEY_CTX_get0_pkey((EVP_PKEY_CTX *)ctx);
    EVP_PKEY_CTX *fresh = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
    if (fresh == NULL) return 0;
    int ok = EVP_PKEY_verify_init(fresh) > 0 && EVP_PKEY_verify(fresh, der, der_len, digest, 32) == 1;
    EVP_PKEY_CTX_free(fresh);
    return ok;
}

typedef struct { SHA256_CTX inner; unsigned char prefix[64]; } prefix_t;
_Static_assert(sizeof(prefix_t) <= sizeof(CBench_HMACPrefix), "prefix does not fit");

int CBench_hmac_prefix_init(CBench_HMACPrefix *blob, const CBench_HMACPads *pads_blob, const uint8_t *prefix64) {
    prefix_t *p = (prefix_t *)blob->bytes;
    const pads_t *pads = (const pads_t *)pads_blob->bytes;
    p->inner = pads->inner;
    memcpy(p->prefix, prefix64, 64);
    return SHA256_Update(&p->inner, prefix64, 64);
}

static inline uint64_t load64(const unsigned char *p) { uint64_t v; memcpy(&v, p, 8); return v; }

// The standard finish (a state copy, SHA256_Update, SHA256_Final, one OPENSSL_cleanse of what is
// left): what regtoken's hmac_sha256.c would be without its hand-finished MAC.
typedef struct { SHA256_CTX c; unsigned char inner[32]; unsigned char mac[32]; } scratch_t;

int CBench_hmac_verify_standard(const CBench_HMACPads *pads_blob, const CBench_HMACPrefix *prefix_blob, size_t known,
                                const uint8_t *m, size_t n, const uint8_t *tag) {
    const pads_t *pads = (const pads_t *)pads_blob->bytes;
    const prefix_t *prefix = prefix_blob ? (const prefix_t *)prefix_blob->bytes : NULL;
    int resume = prefix != NULL && n >= 64;
    for (size_t i = known; resume && i < 64; i++) resume = m[i] == prefix->prefix[i];
    scratch_t t;
    if (resume) { t.c = prefix->inner; m += 64; n -= 64; } else { t.c = pads->inner; }
    SHA256_Update(&t.c, m, n);
    SHA256_Final(t.inner, &t.c);
    t.c = pads->outer;
    SHA256_Update(&t.c, t.inner, 32);
    SHA256_Final(t.mac, &t.c);
    uint64_t diff = 0;
    for (int i = 0; i < 32; i += 8) diff |= load64(t.mac + i) ^ load64(tag + i);
    OPENSSL_cleanse(&t, sizeof(t));
    return diff == 0;
}

// A copy of regtoken's hmac_sha256.c (hmac_words and hmac_sha256_verify32): the MAC finished by hand.
static inline void wipe(void *p, size_t n) {
    memset(p, 0, n);
    __asm__ __volatile__("" : : "r"(p) : "memory");
}
static inline void store_be32(unsigned char *p, uint32_t v) { v = __builtin_bswap32(v); memcpy(p, &v, 4); }
static inline uint32_t load_be32(const unsigned char *p) { uint32_t v; memcpy(&v, p, 4); return __builtin_bswap32(v); }
static inline void sha256_blocks(SHA256_CTX *c, const void *blocks, size_t len) { c->num = 0; SHA256_Update(c, blocks, len); }

int CBench_hmac_verify_by_hand(const CBench_HMACPads *pads_blob, const CBench_HMACPrefix *prefix_blob, size_t known,
                               const uint8_t *m, size_t n, const uint8_t *tag) {
    const pads_t *pads = (const pads_t *)pads_blob->bytes;
    const prefix_t *prefix = prefix_blob ? (const prefix_t *)prefix_blob->bytes : NULL;
    uint32_t mac[8];
    uint64_t hashed;
    SHA256_CTX c;
    c.Nl = c.Nh = 0;
    int resume = prefix != NULL && n >= 64;
    for (size_t i = known; resume && i < 64; i++) resume = m[i] == prefix->prefix[i];
    if (resume) {
        memcpy(c.h, prefix->inner.h, sizeof(c.h));
        m += 64; n -= 64; hashed = 128;
    } else {
        memcpy(c.h, pads->inner.h, sizeof(c.h));
        hashed = 64;
    }
    size_t whole = n & ~(size_t)63;
    if (whole) sha256_blocks(&c, m, whole);
    size_t rest = n - whole;
    unsigned char last[128];
    size_t last_len = rest < 56 ? 64 : 128;
    memset(last, 0, sizeof(last));
    memcpy(last, m + whole, rest);
    last[rest] = 0x80;
    uint64_t bits = (hashed + n) * 8;
    store_be32(last + last_len - 8, (uint32_t)(bits >> 32));
    store_be32(last + last_len - 4, (uint32_t)bits);
    sha256_blocks(&c, last, last_len);
    unsigned char outer[64];
    for (int i = 0; i < 8; i++) store_be32(outer + 4 * i, c.h[i]);
    memset(outer + 32, 0, 32);
    outer[32] = 0x80;
    store_be32(outer + 60, (64 + 32) * 8);
    memcpy(c.h, pads->outer.h, sizeof(c.h));
    sha256_blocks(&c, outer, sizeof(outer));
    memcpy(mac, c.h, sizeof(c.h));
    wipe(&c, sizeof(c));
    wipe(outer, sizeof(outer));
    uint32_t diff = 0;
    for (int i = 0; i < 8; i++) diff |= mac[i] ^ load_be32(tag + 4 * i);
    wipe(mac, sizeof(mac));
    return diff == 0;
}

int CBench_evp_mac_verify(void *ctx, const uint8_t *msg, size_t len, const uint8_t *tag) {
    unsigned char mac[32];
    size_t out = 0;
    if (EVP_MAC_init((EVP_MAC_CTX *)ctx, NULL, 0, NULL) != 1 || EVP_MAC_update((EVP_MAC_CTX *)ctx, msg, len) != 1 ||
        EVP_MAC_final((EVP_MAC_CTX *)ctx, mac, &out, sizeof(mac)) != 1 || out != 32) return 0;
    uint64_t diff = 0;
    for (int i = 0; i < 32; i += 8) diff |= load64(mac + i) ^ load64(tag + i);
    OPENSSL_cleanse(mac, sizeof(mac));
    return diff == 0;
}

void *CBench_evp_mac_new(const uint8_t *key, size_t key_len) {
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (mac == NULL) return NULL;
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac);
    EVP_MAC_free(mac);   // the context keeps its own reference
    if (ctx == NULL) return NULL;
    OSSL_PARAM params[] = { OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0), OSSL_PARAM_construct_end() };
    if (EVP_MAC_init(ctx, key, key_len, params) != 1) { EVP_MAC_CTX_free(ctx); return NULL; }
    return ctx;
}

typedef struct { EVP_MD_CTX *inner, *outer, *work; } md_pads_t;

void *CBench_evp_md_pads_new(const uint8_t *key, size_t key_len) {
    md_pads_t *p = calloc(1, sizeof(*p));
    EVP_MD *md = EVP_MD_fetch(NULL, "SHA256", NULL);
    unsigned char block[64] = {0}, pad[64];
    if (p == NULL || md == NULL || key_len > 64) { free(p); EVP_MD_free(md); return NULL; }
    memcpy(block, key, key_len);
    p->inner = EVP_MD_CTX_new(); p->outer = EVP_MD_CTX_new(); p->work = EVP_MD_CTX_new();
    for (int i = 0; i < 64; i++) pad[i] = block[i] ^ 0x36;
    int ok = EVP_DigestInit_ex(p->inner, md, NULL) && EVP_DigestUpdate(p->inner, pad, 64);
    for (int i = 0; i < 64; i++) pad[i] = block[i] ^ 0x5c;
    ok = ok && EVP_DigestInit_ex(p->outer, md, NULL) && EVP_DigestUpdate(p->outer, pad, 64);
    EVP_MD_free(md);
    return ok ? p : NULL;
}

int CBench_evp_md_pads_verify(void *blob, const uint8_t *msg, size_t len, const uint8_t *tag) {
    md_pads_t *p = (md_pads_t *)blob;
    unsigned char inner[32], mac[32];
    unsigned int n = 0;
    if (!EVP_MD_CTX_copy_ex(p->work, p->inner) || !EVP_DigestUpdate(p->work, msg, len) || !EVP_DigestFinal_ex(p->work, inner, &n) ||
        !EVP_MD_CTX_copy_ex(p->work, p->outer) || !EVP_DigestUpdate(p->work, inner, 32) || !EVP_DigestFinal_ex(p->work, mac, &n)) return 0;
    uint64_t diff = 0;
    for (int i = 0; i < 32; i += 8) diff |= load64(mac + i) ^ load64(tag + i);
    OPENSSL_cleanse(inner, sizeof(inner));
    OPENSSL_cleanse(mac, sizeof(mac));
    return diff == 0;
}

__thread CBench_Reader *CBench_tls_reader;
int CBench_reader_asymmetric;

CBench_Reader *CBench_reader_register(void) {
    // As regtoken did on first use: membarrier registered, so readers need only a compiler fence.
    if (syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0) CBench_reader_asymmetric = 1;
    CBench_Reader *r = aligned_alloc(128, sizeof(*r));
    if (r == NULL) return NULL;
    memset(r, 0, sizeof(*r));
    r->owned = 1;
    CBench_tls_reader = r;
    return r;
}
