/*
 * The one place where the POSIX backend chooses its primitives.
 *
 * Each choice is a feature macro, MPROC_HAVE_<X>, set here from what the
 * system is known to offer; the code of the backend tests the feature, never
 * an OS name. Every feature has a fallback that works on any POSIX system,
 * and a build can switch a feature off to run that fallback where the
 * feature exists (that is how the fallbacks are tested on Linux):
 *
 *   -DMPROC_NO_<X>            switches feature X off (CMake: add it to
 *                             CMAKE_C_FLAGS, or MPROC_DISABLE_FEATURES="X;Y")
 *   -DMPROC_FORCE_FALLBACKS   switches off every feature below that has a
 *                             fallback (CMake: -DMPROC_FORCE_FALLBACKS=ON)
 *
 * docs/sync.md lists the synchronisation choices per platform with their
 * fallbacks and says how each is tested.
 *
 * Synchronisation features (src/posix/sync.c, src/posix/word.c):
 *
 *   FUTEX          Linux futex(2) for wait words, shared between processes.
 *                  Fallback: a polled wait (sleeps of growing length, up to
 *                  1 ms, honouring the timeout).
 *   ROBUST_MUTEX   process-shared robust pthread mutexes (EOWNERDEAD).
 *                  Fallback: a mutex of our own on a wait word whose owner
 *                  is the owner's process identity (pid and start time) and
 *                  thread (see sync.c, "Word mutex").
 *   UNNAMED_SEM    process-shared unnamed sem_t (sem_init(pshared=1)).
 *                  Fallback: a counting semaphore on a wait word.
 *   TIMEDLOCK      pthread_mutex_timedlock and sem_timedwait. Fallback:
 *                  timed waits poll the try-variant.
 *   CLOCKWAIT      glibc >= 2.30: pthread_mutex_clocklock, sem_clockwait on
 *                  CLOCK_MONOTONIC. Fallback: CLOCK_REALTIME deadlines.
 *   THREAD_ID      a thread id unique on the machine from the OS (gettid,
 *                  pthread_threadid_np, pthread_getthreadid_np). Fallback:
 *                  a per-process sequence number with the pid beside it.
 *
 * Process identity (word.c, mproc__os_proc_*), chosen by the one mechanism
 * each system documents; it has no fallback to force, since a pid alone is
 * never an identity (DESIGN.md section 7):
 *
 *   MPROC_PROC_LINUX    /proc/PID/stat: start time and state
 *   MPROC_PROC_DARWIN   proc_pidinfo(PROC_PIDTBSDINFO)
 *   MPROC_PROC_FREEBSD  sysctl(KERN_PROC_PID), struct kinfo_proc
 *   MPROC_PROC_OPENBSD  sysctl(KERN_PROC_PID), OpenBSD's struct kinfo_proc
 *   (none)              pid and kill(pid, 0): pid reuse goes undetected
 *                       (documented in docs/sync.md)
 */
#ifndef MPROC_POSIX_PLATFORM_H
#define MPROC_POSIX_PLATFORM_H

#if defined(MPROC_FORCE_FALLBACKS)
#define MPROC_NO_FUTEX 1
#define MPROC_NO_ROBUST_MUTEX 1
#define MPROC_NO_UNNAMED_SEM 1
#define MPROC_NO_TIMEDLOCK 1
#define MPROC_NO_CLOCKWAIT 1
#define MPROC_NO_THREAD_ID 1
#endif

/* The historical switch of the semaphore fallback (docs/sync.md). */
#if defined(MPROC_PORTABLE_SEM) && !defined(MPROC_NO_UNNAMED_SEM)
#define MPROC_NO_UNNAMED_SEM 1
#endif

#if defined(__linux__) && !defined(MPROC_NO_FUTEX)
#define MPROC_HAVE_FUTEX 1
#endif

/* PTHREAD_MUTEX_ROBUST is an enumerator, not a macro, so it cannot be
 * tested for; the systems without it are listed instead. */
#if !defined(__APPLE__) && !defined(__OpenBSD__) &&                            \
    !defined(MPROC_NO_ROBUST_MUTEX)
#define MPROC_HAVE_ROBUST_MUTEX 1
#endif

/* macOS declares sem_init but fails it with ENOSYS. */
#if !defined(__APPLE__) && !defined(MPROC_NO_UNNAMED_SEM)
#define MPROC_HAVE_UNNAMED_SEM 1
#endif

#if !defined(__APPLE__) && !defined(MPROC_NO_TIMEDLOCK)
#define MPROC_HAVE_TIMEDLOCK 1
#endif

#if defined(__GLIBC__) && defined(__GLIBC_PREREQ) &&                           \
    !defined(MPROC_NO_CLOCKWAIT)
#if __GLIBC_PREREQ(2, 30)
#define MPROC_HAVE_CLOCKWAIT 1
#endif
#endif

#if (defined(__linux__) || defined(__APPLE__) || defined(__FreeBSD__)) &&      \
    !defined(MPROC_NO_THREAD_ID)
#define MPROC_HAVE_THREAD_ID 1
#endif

#if defined(__linux__)
#define MPROC_PROC_LINUX 1
#elif defined(__APPLE__)
#define MPROC_PROC_DARWIN 1
#elif defined(__FreeBSD__)
#define MPROC_PROC_FREEBSD 1
#elif defined(__OpenBSD__)
#define MPROC_PROC_OPENBSD 1
#endif

/* ThreadSanitizer (clang 14) does not intercept pthread_mutex_clocklock and
 * ignores EOWNERDEAD from pthread_mutex_timedlock, so it would believe a
 * mutex taken that way unlocked; it also reports an unlock by a non-owner
 * before the robust mutex can refuse it with EPERM. Under TSan only, timed
 * pthread locks poll pthread_mutex_trylock (which it models fully) and the
 * owner is checked before unlocking; the results are the same. */
#if defined(__SANITIZE_THREAD__)
#define MPROC_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define MPROC_TSAN 1
#endif
#endif

#endif /* MPROC_POSIX_PLATFORM_H */
