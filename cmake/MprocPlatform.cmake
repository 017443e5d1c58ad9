# What the POSIX system offers, detected by compiling against its headers
# (check_symbol_exists and friends), never guessed from its name. The
# results go into <build>/mproc_features.h as MPROC_SYS_<X>; the backend's
# one place of choice, src/posix/platform.h, turns each into
# MPROC_HAVE_<X> unless the build switched it off (MPROC_NO_<X>,
# MPROC_FORCE_FALLBACKS). docs/platforms.md lists every feature with its
# fallback.
#
# Only a few choices cannot be detected by compiling and stay in
# platform.h with the reason: macOS declares sem_init but fails it at run
# time, and /proc is a file system, not a header.
include(CheckSymbolExists)
include(CheckFunctionExists)
include(CheckIncludeFile)
include(CheckCSourceCompiles)
include(CheckStructHasMember)

function(mproc_detect_posix_features out_header)
  set(CMAKE_REQUIRED_DEFINITIONS -D_GNU_SOURCE)
  set(CMAKE_REQUIRED_QUIET ON)
  set(CMAKE_REQUIRED_LIBRARIES Threads::Threads ${CMAKE_DL_LIBS})
  set(_lines "")

  # NAME:symbol:header,header
  set(_checks
    "FUTEX:SYS_futex:sys/syscall.h"
    "UMTX:UMTX_OP_WAIT_UINT:sys/types.h,sys/umtx.h"
    "OS_SYNC_WAIT:OS_SYNC_WAIT_ON_ADDRESS_SHARED:os/os_sync_wait_on_address.h"
    "OPENBSD_FUTEX:FUTEX_WAIT:sys/time.h,sys/futex.h"
    "MEMFD:memfd_create:sys/mman.h"
    "SHM_ANON:SHM_ANON:sys/mman.h"
    "PIDFD:SYS_pidfd_open:sys/syscall.h"
    "SYS_CLOSE_RANGE:SYS_close_range:sys/syscall.h"
    "CLOSE_RANGE:close_range:unistd.h"
    "CLOSEFROM:closefrom:unistd.h,stdlib.h"
    "SPAWN_CLOSEFROM:posix_spawn_file_actions_addclosefrom_np:spawn.h"
    "SPAWN_CLOEXEC_DEFAULT:POSIX_SPAWN_CLOEXEC_DEFAULT:spawn.h"
    "SETSIG:F_SETSIG:fcntl.h"
    "PR_PDEATHSIG:PR_SET_PDEATHSIG:sys/prctl.h"
    "PROCCTL_PDEATHSIG:PROC_PDEATHSIG_CTL:sys/types.h,sys/procctl.h"
    "SCHED_AFFINITY:CPU_COUNT_S:sched.h"
    "CPUSET_AFFINITY:cpuset_getaffinity:sys/param.h,sys/cpuset.h"
    "SYSCTLBYNAME:sysctlbyname:sys/types.h,sys/sysctl.h"
    "KERN_PROC_PATHNAME:KERN_PROC_PATHNAME:sys/types.h,sys/sysctl.h"
    "NSGETEXECUTABLEPATH:_NSGetExecutablePath:mach-o/dyld.h"
    "DLADDR1:dladdr1:dlfcn.h"
    "DL_ITERATE_PHDR:dl_iterate_phdr:link.h"
    "GETAUXVAL:getauxval:sys/auxv.h"
    "ISSETUGID:issetugid:unistd.h"
    "PIPE2:pipe2:unistd.h,fcntl.h"
    "SOCK_CLOEXEC:SOCK_CLOEXEC:sys/socket.h"
    "SEQPACKET:SOCK_SEQPACKET:sys/socket.h"
    "MSG_NOSIGNAL:MSG_NOSIGNAL:sys/socket.h"
    "SO_NOSIGPIPE:SO_NOSIGPIPE:sys/socket.h"
    "SO_PEERCRED:SO_PEERCRED:sys/socket.h"
    "LOCAL_PEERPID:LOCAL_PEERPID:sys/socket.h,sys/un.h"
    "LOCAL_PEERCRED:LOCAL_PEERCRED:sys/socket.h,sys/un.h,sys/ucred.h"
    "ARC4RANDOM:arc4random_buf:stdlib.h"
    "FPENDING:__fpending:stdio.h,stdio_ext.h"
    "FPURGE_GNU:__fpurge:stdio.h,stdio_ext.h"
    "FPURGE:fpurge:stdio.h"
    "GETTID:SYS_gettid:sys/syscall.h"
    "THREADID_NP:pthread_threadid_np:pthread.h"
    "GETTHREADID_NP:pthread_getthreadid_np:pthread.h,pthread_np.h"
    "TIMEDLOCK:pthread_mutex_timedlock:pthread.h"
    "SEM_TIMEDWAIT:sem_timedwait:semaphore.h"
    "CLOCKWAIT:pthread_mutex_clocklock:pthread.h"
    "SEM_CLOCKWAIT:sem_clockwait:semaphore.h"
  )
  foreach(_c ${_checks})
    string(REPLACE ":" ";" _c "${_c}")
    list(GET _c 0 _name)
    list(GET _c 1 _sym)
    list(GET _c 2 _hdrs)
    string(REPLACE "," ";" _hdrs "${_hdrs}")
    # Each header on its own first: check_symbol_exists fails as a whole
    # when one of them is missing.
    set(_ok ON)
    foreach(_h ${_hdrs})
      string(MAKE_C_IDENTIFIER "MPROC_INC_${_h}" _hv)
      check_include_file(${_h} ${_hv})
      if(NOT ${_hv})
        set(_ok OFF)
      endif()
    endforeach()
    if(_ok)
      check_symbol_exists(${_sym} "${_hdrs}" MPROC_SYS_${_name})
    endif()
    if(_ok AND MPROC_SYS_${_name})
      string(APPEND _lines "#define MPROC_SYS_${_name} 1\n")
    else()
      string(APPEND _lines "/* #undef MPROC_SYS_${_name} */\n")
    endif()
  endforeach()

  # An enumerator, not a macro: compile a use of it.
  check_c_source_compiles("
#include <pthread.h>
int main(void) {
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    return pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST) +
           pthread_mutex_consistent((pthread_mutex_t *)0);
}" MPROC_SYS_ROBUST_MUTEX)
  # macOS has os_sync_wait_on_address only from 14.4; __ulock_wait (no
  # header, a documented system call of its libc since 10.12) before.
  if(APPLE)
    check_function_exists(__ulock_wait MPROC_SYS_ULOCK)
  endif()
  check_struct_has_member("struct stat" st_mtim sys/stat.h MPROC_SYS_ST_MTIM)
  check_struct_has_member("struct stat" st_mtimespec sys/stat.h
                          MPROC_SYS_ST_MTIMESPEC)
  foreach(_name ROBUST_MUTEX ULOCK ST_MTIM ST_MTIMESPEC)
    if(MPROC_SYS_${_name})
      string(APPEND _lines "#define MPROC_SYS_${_name} 1\n")
    else()
      string(APPEND _lines "/* #undef MPROC_SYS_${_name} */\n")
    endif()
  endforeach()
  # /proc/self/exe, /proc/PID/stat, /proc/self/fd, /proc/self/cgroup and
  # /sys/devices/system/cpu/online: Linux's file systems, which a compiler
  # cannot see.
  if(CMAKE_SYSTEM_NAME MATCHES "^(Linux|Android)$")
    string(APPEND _lines "#define MPROC_SYS_PROCFS 1\n")
  else()
    string(APPEND _lines "/* #undef MPROC_SYS_PROCFS */\n")
  endif()

  file(CONFIGURE OUTPUT ${out_header} CONTENT
"/* Generated by cmake/MprocPlatform.cmake: what this system's headers
 * offer. src/posix/platform.h makes the choices. */
#ifndef MPROC_FEATURES_H
#define MPROC_FEATURES_H
#define MPROC_FEATURES_DETECTED 1
${_lines}#endif
")
endfunction()
