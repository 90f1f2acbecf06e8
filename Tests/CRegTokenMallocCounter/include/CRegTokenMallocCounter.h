// Test support only: counts heap allocations made by the calling thread, by interposing malloc
// and friends in the test executable (glibc's __libc_* entry points do the real work). Used to
// prove that the verifier's fast path allocates nothing.
#ifndef C_REGTOKEN_MALLOC_COUNTER_H
#define C_REGTOKEN_MALLOC_COUNTER_H

/// Starts counting this thread's allocations from zero.
void CRegTokenMallocCounter_start(void);
/// Stops counting; returns the number of allocations since start.
long CRegTokenMallocCounter_stop(void);

/// Swift Testing hooks every `throw` (swift_willThrow) to capture a backtrace, which allocates.
/// Production code has no such hook; these pause and restore it around a measurement so that
/// only the code under test is counted. Returns 0 if the hooks could not be found.
int CRegTokenMallocCounter_pauseThrowHooks(void);
void CRegTokenMallocCounter_resumeThrowHooks(void);

#include <stddef.h>

/// Watches the block at `p` (its first `n` bytes): when it is freed, records whether those bytes
/// were all zero at that moment (what memory holding a secret must be when it goes back).
void CRegTokenMallocCounter_watchFree(const void *p, size_t n);
/// 1 when the watched block was freed all zero, 0 when it was freed with a non-zero byte, -1 when
/// it has not been freed since the watch began.
int CRegTokenMallocCounter_watchedWasZero(void);

#endif
