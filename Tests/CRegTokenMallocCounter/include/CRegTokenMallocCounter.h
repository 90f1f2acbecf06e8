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

#endif
