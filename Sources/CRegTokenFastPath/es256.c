// ES256 verification through per-thread contexts; see include/es256.h for why C.
#include "es256.h"
#include "hmac_sha256.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

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
    unsigned char digest[32];
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

