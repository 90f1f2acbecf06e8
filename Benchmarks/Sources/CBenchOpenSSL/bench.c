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
