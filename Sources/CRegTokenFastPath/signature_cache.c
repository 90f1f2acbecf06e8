// The ES256 verified-signature cache; see include/signature_cache.h for why C.
#include "signature_cache.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

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
    // The slots hold bearer tokens that verified: wiped before the memory goes back.
    OPENSSL_cleanse(c->slots, (c->mask + 1) * c->slot_size);
    free(c->slots);
    OPENSSL_cleanse(c, sizeof(*c));
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

