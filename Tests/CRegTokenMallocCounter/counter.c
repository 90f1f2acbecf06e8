// See CRegTokenMallocCounter.h. Linked only into the test executable.
#include "CRegTokenMallocCounter.h"

#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stddef.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

static __thread long counted;
static __thread int armed;

void CRegTokenMallocCounter_start(void) { counted = 0; armed = 1; }
long CRegTokenMallocCounter_stop(void) { armed = 0; return counted; }

void *malloc(size_t n) { if (armed) counted++; return __libc_malloc(n); }
void *calloc(size_t a, size_t b) { if (armed) counted++; return __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { if (armed) counted++; return __libc_realloc(p, n); }
// A watched block: when it is freed, whether its bytes were all zero then (-1 until then).
static void *watched;
static size_t watched_len;
static int watched_zero = -1;

void CRegTokenMallocCounter_watchFree(const void *p, size_t n) {
    watched_len = n;
    __atomic_store_n(&watched_zero, -1, __ATOMIC_SEQ_CST);
    __atomic_store_n(&watched, (void *)p, __ATOMIC_SEQ_CST);
}

int CRegTokenMallocCounter_watchedWasZero(void) {
    return __atomic_load_n(&watched_zero, __ATOMIC_SEQ_CST);
}

void free(void *p) {
    if (p != NULL && p == __atomic_load_n(&watched, __ATOMIC_SEQ_CST)) {
        const unsigned char *b = (const unsigned char *)p;
        int zero = 1;
        for (size_t i = 0; i < watched_len; i++) zero &= b[i] == 0;
        __atomic_store_n(&watched, NULL, __ATOMIC_SEQ_CST);
        __atomic_store_n(&watched_zero, zero, __ATOMIC_SEQ_CST);
    }
    __libc_free(p);
}
void *memalign(size_t a, size_t n) { if (armed) counted++; return __libc_memalign(a, n); }
void *aligned_alloc(size_t a, size_t n) { if (armed) counted++; return __libc_memalign(a, n); }
int posix_memalign(void **out, size_t a, size_t n) {
    if (armed) counted++;
    void *p = __libc_memalign(a, n);
    if (p == NULL) return ENOMEM;
    *out = p;
    return 0;
}

static void **will_throw;
static void **will_throw_typed;
static void *saved_will_throw;
static void *saved_will_throw_typed;

int CRegTokenMallocCounter_pauseThrowHooks(void) {
    will_throw = (void **)dlsym(RTLD_DEFAULT, "_swift_willThrow");
    will_throw_typed = (void **)dlsym(RTLD_DEFAULT, "_swift_willThrowTypedImpl");
    if (will_throw == NULL || will_throw_typed == NULL) return 0;
    saved_will_throw = __atomic_exchange_n(will_throw, NULL, __ATOMIC_SEQ_CST);
    saved_will_throw_typed = __atomic_exchange_n(will_throw_typed, NULL, __ATOMIC_SEQ_CST);
    return 1;
}

void CRegTokenMallocCounter_resumeThrowHooks(void) {
    if (will_throw) __atomic_store_n(will_throw, saved_will_throw, __ATOMIC_SEQ_CST);
    if (will_throw_typed) __atomic_store_n(will_throw_typed, saved_will_throw_typed, __ATOMIC_SEQ_CST);
}
