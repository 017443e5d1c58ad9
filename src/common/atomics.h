/*
 * The one way into atomics for src/common and the backends: C11
 * <stdatomic.h> on every compiler.
 *
 * - gcc, clang (also clang-cl and clang in MSVC mode): their own
 *   <stdatomic.h>.
 * - MSVC: C11 atomics since Visual Studio 2022 17.5 with
 *   /experimental:c11atomics (and /std:c11), which the CMake build passes
 *   (cmake/MprocWarnings.cmake). Without them MSVC defines
 *   __STDC_NO_ATOMICS__ and the build stops here with that advice,
 *   instead of failing on the first _Atomic.
 *
 * Atomics live in shared memory between processes, where a compiler's
 * lock-based emulation would not work across processes: the int and
 * long long atomics must be lock-free, checked below.
 */
#ifndef MPROC_ATOMICS_H
#define MPROC_ATOMICS_H

#if defined(__STDC_NO_ATOMICS__)
#if defined(_MSC_VER) && !defined(__clang__)
#error                                                                         \
    "mproc needs C11 atomics: Visual Studio 2022 17.5 or later with /std:c11 /experimental:c11atomics"
#else
#error "mproc needs C11 atomics (<stdatomic.h>)"
#endif
#endif

#include <stdatomic.h>

#if defined(ATOMIC_INT_LOCK_FREE) && ATOMIC_INT_LOCK_FREE != 2
#error "mproc needs lock-free 32-bit atomics"
#endif
#if defined(ATOMIC_LLONG_LOCK_FREE) && ATOMIC_LLONG_LOCK_FREE != 2
#error "mproc needs lock-free 64-bit atomics"
#endif

#endif /* MPROC_ATOMICS_H */
