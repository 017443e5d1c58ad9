/*
 * The one place where the POSIX backend chooses its primitives.
 *
 * cmake/MprocPlatform.cmake compiles against the system's headers and
 * writes what it found into mproc_features.h as MPROC_SYS_<X>; this file
 * turns each into a feature macro MPROC_HAVE_<X>, and the code of the
 * backend tests the feature, never an OS name. Every feature with a
 * fallback can be switched off, to run that fallback where the feature
 * exists (that is how the fallbacks are tested on Linux):
 *
 *   -DMPROC_NO_<X>            switches feature X off (CMake:
 *                             MPROC_DISABLE_FEATURES="X;Y")
 *   -DMPROC_FORCE_FALLBACKS   switches off every feature below that has a
 *                             fallback (CMake: -DMPROC_FORCE_FALLBACKS=ON;
 *                             the `portable` preset)
 *   -DMPROC_EMULATE_MACOS     also takes the macOS-specific choices that
 *                             can run elsewhere (CMake: MPROC_EMULATE=macos;
 *                             the `macos-logic` preset): shm names of at
 *                             most 31 characters, a system thread id
 *
 * docs/platforms.md lists every choice per platform with its fallback and
 * what is tested where; docs/sync.md the synchronisation ones in depth.
 *
 * Wait words (word.c). Fallback: a polled wait (naps growing to 1 ms,
 * honouring the timeout).
 *   FUTEX          Linux futex(2), shared (no FUTEX_PRIVATE_FLAG)
 *   UMTX           FreeBSD _umtx_op(UMTX_OP_WAIT_UINT / UMTX_OP_WAKE)
 *   OS_SYNC_WAIT   macOS 14.4 os_sync_wait_on_address, shared flag
 *   ULOCK          macOS 10.12 __ulock_wait, UL_COMPARE_AND_WAIT_SHARED
 *   OPENBSD_FUTEX  OpenBSD futex(2)
 * Synchronisation (sync.c):
 *   ROBUST_MUTEX   robust process-shared pthread mutexes. Fallback: the
 *                  word mutex (owner = process identity + thread id).
 *   UNNAMED_SEM    sem_init(pshared=1). Fallback: a word semaphore.
 *   TIMEDLOCK      pthread_mutex_timedlock, sem_timedwait. Fallback: polls.
 *   CLOCKWAIT      pthread_mutex_clocklock, sem_clockwait on
 *                  CLOCK_MONOTONIC. Fallback: CLOCK_REALTIME deadlines.
 *   THREAD_ID      a thread id unique on the machine (gettid,
 *                  pthread_threadid_np, pthread_getthreadid_np).
 *                  Fallback: the pid beside a per-process sequence number.
 * Shared memory (shm.c). Fallback: shm_open of a random name, unlinked at
 * once, with the names of creators killed in that window cleaned up.
 *   MEMFD          Linux memfd_create
 *   SHM_ANON       FreeBSD shm_open(SHM_ANON)
 * Processes (process.c):
 *   PIDFD          pidfd_open, a join with a timeout sleeps in poll().
 *                  Fallback: waitid(WNOHANG) with growing naps.
 *   CLOSE_RANGE    close_range (system call or libc). CLOSEFROM: closefrom.
 *                  Fallback: /proc/self/fd where it exists (PROC_FD), else
 *                  close() of every number below the descriptor limit.
 *   SPAWN_CLOSEFROM    posix_spawn_file_actions_addclosefrom_np;
 *   SPAWN_CLOEXEC_DEFAULT  macOS POSIX_SPAWN_CLOEXEC_DEFAULT. Either lets
 *                  posix_spawn close what the child must not inherit.
 *                  Fallback: every spawn goes through fork + exec, which
 *                  closes them by hand.
 *   SETSIG         the daemon lifeline armed with F_SETSIG (SIGKILL on the
 *                  pipe's end-of-file). PROCCTL_PDEATHSIG: FreeBSD's
 *                  procctl(PROC_PDEATHSIG_CTL), which fires when the parent
 *                  process ends. PR_PDEATHSIG: Linux's prctl, used only if
 *                  the lifeline cannot be armed (it fires when the parent
 *                  *thread* ends). Fallback: a watcher process on the
 *                  lifeline pipe (macOS, OpenBSD).
 *   SCHED_AFFINITY sched_getaffinity; CPUSET_AFFINITY: FreeBSD
 *                  cpuset_getaffinity. Without either, the online CPU
 *                  count: what a system without affinity (macOS) has.
 *                  MPROC_FORCE_FALLBACKS keeps them: ignoring a mask the
 *                  system enforces would be wrong, not slower.
 *   SYSFS_CPU      /sys/devices/system/cpu/online (musl's sysconf counts
 *                  the affinity mask instead); SYSCTLBYNAME: hw.activecpu
 *                  (macOS), hw.ncpu. Fallback: sysconf(_SC_NPROCESSORS_ONLN).
 *   PROC_EXE       /proc/self/exe; NSGETEXECUTABLEPATH: macOS
 *                  _NSGetExecutablePath + realpath; KERN_PROC_PATHNAME:
 *                  FreeBSD sysctl. Fallback: argv[0] made absolute (PATH
 *                  searched) and resolved with realpath at mproc_init.
 *   DLADDR1        glibc dladdr1 (the link map and symbol of an address).
 *                  Fallback: dladdr + dl_iterate_phdr (the module whose
 *                  segments hold the address), the file's own symbol
 *                  tables for the entry check.
 *   GETAUXVAL      getauxval(AT_SECURE); ISSETUGID: issetugid. Fallback:
 *                  real and effective ids compared.
 *   PIPE2          pipe2(O_CLOEXEC); SOCK_CLOEXEC: socketpair with it.
 *                  Fallback: FD_CLOEXEC set right after creation.
 *   SEQPACKET      AF_UNIX SOCK_SEQPACKET pairs as the Pipe's record
 *                  channels (one system call per small receive; macOS
 *                  declares it without offering it: decided at run time).
 *                  Fallback: byte streams read with a peek first.
 *   FPENDING, FPURGE_GNU, FPURGE: stdio buffer queries of the C library.
 *                  Fallback: fflush, and no purge.
 *
 * Chosen by what each system documents, with no fallback to force (a
 * fallback would be wrong, not slower):
 *   process identity (word.c): MPROC_PROC_LINUX /proc/PID/stat,
 *     MPROC_PROC_DARWIN proc_pidinfo, MPROC_PROC_FREEBSD and
 *     MPROC_PROC_OPENBSD sysctl(KERN_PROC_PID); none: the pid alone
 *     (docs/sync.md);
 *   peer credentials of the bootstrap channel (process.c): SO_PEERCRED,
 *     LOCAL_PEERPID + getpeereid, LOCAL_PEERCRED; none: every channel is
 *     refused, so spawn fails with MPROC_EPERM (docs/security.md);
 *   module lists: DL_ITERATE_PHDR (ELF) or the dyld image list (macOS).
 */
#ifndef MPROC_POSIX_PLATFORM_H
#define MPROC_POSIX_PLATFORM_H

#include "mproc_features.h"
#if !defined(MPROC_FEATURES_DETECTED)
#error                                                                         \
    "mproc_features.h is missing: build with CMake (cmake/MprocPlatform.cmake)"
#endif

#if defined(MPROC_EMULATE_MACOS) && !defined(MPROC_FORCE_FALLBACKS)
#define MPROC_FORCE_FALLBACKS 1
#endif

#if defined(MPROC_FORCE_FALLBACKS)
#define MPROC_NO_FUTEX 1
#define MPROC_NO_UMTX 1
#define MPROC_NO_OS_SYNC_WAIT 1
#define MPROC_NO_ULOCK 1
#define MPROC_NO_OPENBSD_FUTEX 1
#define MPROC_NO_ROBUST_MUTEX 1
#define MPROC_NO_UNNAMED_SEM 1
#define MPROC_NO_TIMEDLOCK 1
#define MPROC_NO_CLOCKWAIT 1
#if !defined(MPROC_EMULATE_MACOS) /* macOS has pthread_threadid_np */
#define MPROC_NO_THREAD_ID 1
#endif
#define MPROC_NO_MEMFD 1
#define MPROC_NO_SHM_ANON 1
#define MPROC_NO_PIDFD 1
#define MPROC_NO_CLOSE_RANGE 1
#define MPROC_NO_CLOSEFROM 1
#define MPROC_NO_PROC_FD 1
#define MPROC_NO_SPAWN_CLOSEFROM 1
#define MPROC_NO_SPAWN_CLOEXEC_DEFAULT 1
#define MPROC_NO_SETSIG 1
#define MPROC_NO_PR_PDEATHSIG 1
#define MPROC_NO_PROCCTL_PDEATHSIG 1
#define MPROC_NO_SYSFS_CPU 1
#define MPROC_NO_SYSCTLBYNAME 1
#define MPROC_NO_PROC_EXE 1
#define MPROC_NO_NSGETEXECUTABLEPATH 1
#define MPROC_NO_KERN_PROC_PATHNAME 1
#define MPROC_NO_DLADDR1 1
#define MPROC_NO_GETAUXVAL 1
#define MPROC_NO_ISSETUGID 1
#define MPROC_NO_PIPE2 1
#define MPROC_NO_SOCK_CLOEXEC 1
#define MPROC_NO_SEQPACKET 1
#define MPROC_NO_FPENDING 1
#define MPROC_NO_FPURGE_GNU 1
#define MPROC_NO_FPURGE 1
#endif

/* The historical switch of the semaphore fallback (docs/sync.md). */
#if defined(MPROC_PORTABLE_SEM) && !defined(MPROC_NO_UNNAMED_SEM)
#define MPROC_NO_UNNAMED_SEM 1
#endif

/* MPROC_HAVE_X: the system has X (MPROC_SYS_X) and the build wants it. */

/* Wait words: the first native one that exists. */
#if defined(MPROC_SYS_FUTEX) && !defined(MPROC_NO_FUTEX)
#define MPROC_HAVE_FUTEX 1
#elif defined(MPROC_SYS_UMTX) && !defined(MPROC_NO_UMTX)
#define MPROC_HAVE_UMTX 1
#elif defined(MPROC_SYS_OPENBSD_FUTEX) && !defined(MPROC_NO_OPENBSD_FUTEX)
#define MPROC_HAVE_OPENBSD_FUTEX 1
#else
/* macOS: os_sync_wait_on_address where the running system has it (a
 * run-time check), __ulock_wait otherwise; both may be missing. */
#if defined(MPROC_SYS_OS_SYNC_WAIT) && !defined(MPROC_NO_OS_SYNC_WAIT)
#define MPROC_HAVE_OS_SYNC_WAIT 1
#endif
#if defined(MPROC_SYS_ULOCK) && !defined(MPROC_NO_ULOCK)
#define MPROC_HAVE_ULOCK 1
#endif
#endif

#if defined(MPROC_SYS_ROBUST_MUTEX) && !defined(MPROC_NO_ROBUST_MUTEX)
#define MPROC_HAVE_ROBUST_MUTEX 1
#endif

/* macOS declares sem_init but fails it with ENOSYS at run time, which no
 * compile check can see: the one choice made by the system's name. */
#if !defined(__APPLE__) && !defined(MPROC_NO_UNNAMED_SEM)
#define MPROC_HAVE_UNNAMED_SEM 1
#endif

#if defined(MPROC_SYS_TIMEDLOCK) && defined(MPROC_SYS_SEM_TIMEDWAIT) &&        \
    !defined(MPROC_NO_TIMEDLOCK)
#define MPROC_HAVE_TIMEDLOCK 1
#endif

#if defined(MPROC_SYS_CLOCKWAIT) && defined(MPROC_SYS_SEM_CLOCKWAIT) &&        \
    !defined(MPROC_NO_CLOCKWAIT)
#define MPROC_HAVE_CLOCKWAIT 1
#endif

#if !defined(MPROC_NO_THREAD_ID)
#if defined(MPROC_SYS_GETTID)
#define MPROC_HAVE_THREAD_ID 1
#define MPROC_THREAD_ID_GETTID 1
#elif defined(MPROC_SYS_THREADID_NP)
#define MPROC_HAVE_THREAD_ID 1
#define MPROC_THREAD_ID_THREADID_NP 1
#elif defined(MPROC_SYS_GETTHREADID_NP)
#define MPROC_HAVE_THREAD_ID 1
#define MPROC_THREAD_ID_GETTHREADID_NP 1
#endif
#endif

/* Shared memory. */
#if defined(MPROC_SYS_MEMFD) && !defined(MPROC_NO_MEMFD)
#define MPROC_HAVE_MEMFD 1
#endif
#if defined(MPROC_SYS_SHM_ANON) && !defined(MPROC_NO_SHM_ANON)
#define MPROC_HAVE_SHM_ANON 1
#endif
/* The longest shm_open name, the leading '/' included. macOS: PSHMNAMLEN,
 * 31 characters. POSIX promises nothing below NAME_MAX. */
#if defined(__APPLE__) || defined(MPROC_EMULATE_MACOS)
#define MPROC_SHM_OSNAME_MAX 31
#else
#define MPROC_SHM_OSNAME_MAX 63
#endif
/* Where the shm_open names can be listed (to clean up after a creator
 * killed between shm_open and shm_unlink). */
#if defined(MPROC_SYS_PROCFS)
#define MPROC_SHM_DIR "/dev/shm"
#endif

/* Processes. */
#if defined(MPROC_SYS_PIDFD) && !defined(MPROC_NO_PIDFD)
#define MPROC_HAVE_PIDFD 1
#endif
#if (defined(MPROC_SYS_SYS_CLOSE_RANGE) || defined(MPROC_SYS_CLOSE_RANGE)) &&  \
    !defined(MPROC_NO_CLOSE_RANGE)
#define MPROC_HAVE_CLOSE_RANGE 1
#endif
#if defined(MPROC_SYS_CLOSEFROM) && !defined(MPROC_NO_CLOSEFROM)
#define MPROC_HAVE_CLOSEFROM 1
#endif
#if defined(MPROC_SYS_PROCFS) && !defined(MPROC_NO_PROC_FD)
#define MPROC_HAVE_PROC_FD 1
#endif
#if defined(MPROC_SYS_SPAWN_CLOSEFROM) && !defined(MPROC_NO_SPAWN_CLOSEFROM)
#define MPROC_HAVE_SPAWN_CLOSEFROM 1
#endif
#if defined(MPROC_SYS_SPAWN_CLOEXEC_DEFAULT) &&                                \
    !defined(MPROC_NO_SPAWN_CLOEXEC_DEFAULT)
#define MPROC_HAVE_SPAWN_CLOEXEC_DEFAULT 1
#endif
#if defined(MPROC_SYS_SETSIG) && !defined(MPROC_NO_SETSIG)
#define MPROC_HAVE_SETSIG 1
#endif
#if defined(MPROC_SYS_PR_PDEATHSIG) && !defined(MPROC_NO_PR_PDEATHSIG)
#define MPROC_HAVE_PR_PDEATHSIG 1
#endif
#if defined(MPROC_SYS_PROCCTL_PDEATHSIG) && !defined(MPROC_NO_PROCCTL_PDEATHSIG)
#define MPROC_HAVE_PROCCTL_PDEATHSIG 1
#endif
#if defined(MPROC_SYS_SCHED_AFFINITY) && !defined(MPROC_NO_SCHED_AFFINITY)
#define MPROC_HAVE_SCHED_AFFINITY 1
#endif
#if defined(MPROC_SYS_CPUSET_AFFINITY) && !defined(MPROC_NO_CPUSET_AFFINITY)
#define MPROC_HAVE_CPUSET_AFFINITY 1
#endif
#if defined(MPROC_SYS_PROCFS) && !defined(MPROC_NO_SYSFS_CPU)
#define MPROC_HAVE_SYSFS_CPU 1
#endif
#if defined(MPROC_SYS_PROCFS)
#define MPROC_HAVE_CGROUP 1 /* nothing to fall back to: no quota known */
#endif
#if defined(MPROC_SYS_SYSCTLBYNAME) && !defined(MPROC_NO_SYSCTLBYNAME)
#define MPROC_HAVE_SYSCTLBYNAME 1
#endif
#if defined(MPROC_SYS_PROCFS) && !defined(MPROC_NO_PROC_EXE)
#define MPROC_HAVE_PROC_EXE 1
#endif
#if defined(MPROC_SYS_NSGETEXECUTABLEPATH) &&                                  \
    !defined(MPROC_NO_NSGETEXECUTABLEPATH)
#define MPROC_HAVE_NSGETEXECUTABLEPATH 1
#endif
#if defined(MPROC_SYS_KERN_PROC_PATHNAME) &&                                   \
    !defined(MPROC_NO_KERN_PROC_PATHNAME)
#define MPROC_HAVE_KERN_PROC_PATHNAME 1
#endif
#if defined(MPROC_SYS_DLADDR1) && !defined(MPROC_NO_DLADDR1)
#define MPROC_HAVE_DLADDR1 1
#endif
#if defined(MPROC_SYS_DL_ITERATE_PHDR)
#define MPROC_HAVE_DL_ITERATE_PHDR 1
#endif
#if defined(MPROC_SYS_GETAUXVAL) && !defined(MPROC_NO_GETAUXVAL)
#define MPROC_HAVE_GETAUXVAL 1
#endif
#if defined(MPROC_SYS_ISSETUGID) && !defined(MPROC_NO_ISSETUGID)
#define MPROC_HAVE_ISSETUGID 1
#endif
#if defined(MPROC_SYS_PIPE2) && !defined(MPROC_NO_PIPE2)
#define MPROC_HAVE_PIPE2 1
#endif
#if defined(MPROC_SYS_SOCK_CLOEXEC) && !defined(MPROC_NO_SOCK_CLOEXEC)
#define MPROC_HAVE_SOCK_CLOEXEC 1
#endif
#if defined(MPROC_SYS_SEQPACKET) && !defined(MPROC_NO_SEQPACKET)
#define MPROC_HAVE_SEQPACKET 1
#endif
#if defined(MPROC_SYS_FPENDING) && !defined(MPROC_NO_FPENDING)
#define MPROC_HAVE_FPENDING 1
#endif
#if defined(MPROC_SYS_FPURGE_GNU) && !defined(MPROC_NO_FPURGE_GNU)
#define MPROC_HAVE_FPURGE_GNU 1
#elif defined(MPROC_SYS_FPURGE) && !defined(MPROC_NO_FPURGE)
#define MPROC_HAVE_FPURGE 1
#endif

/* Process identity: the one mechanism each system documents. */
#if defined(MPROC_SYS_PROCFS)
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
