/*
 * Internal helpers of the Win32 backend, shared by its files. Nothing in
 * src/common sees this header.
 *
 * Map: conversions between mproc__handle and HANDLE; UTF-8 <-> UTF-16;
 * random bytes; owner-only security; ntdll entry points (error.c defines
 * them all).
 */
#ifndef MPROC_WIN32_H
#define MPROC_WIN32_H

#include "../common/backend.h"

#include <windows.h>

#include <stddef.h>
#include <stdint.h>

/* HANDLE values travel as mproc__handle (intptr_t); INVALID_HANDLE_VALUE is
 * MPROC__BADHANDLE. */
static inline HANDLE mproc__win_h(mproc__handle h)
{
    return (HANDLE)h;
}

static inline mproc__handle mproc__win_mh(HANDLE h)
{
    return (mproc__handle)h;
}

/* The last Win32 error as an MPROC_E* code. */
int mproc__win_last_error(void);

/* A malloc'ed UTF-16 copy of a UTF-8 string, or NULL (MPROC_EINVAL for
 * invalid UTF-8, MPROC_ENOMEM) with the code in *err. */
wchar_t *mproc__win_wide(const char *s, int *err);
/* A malloc'ed UTF-8 copy of a UTF-16 string, or NULL as above. */
char *mproc__win_utf8(const wchar_t *s, int *err);

/* Fills buf with n cryptographically random bytes (RtlGenRandom). */
int mproc__win_random(void *buf, size_t n);

/* Security attributes that give this process's user alone access (a DACL
 * of one entry; not inheritable), for every named object: 0, or the error
 * that kept them from being made (then no named object may be made). */
int mproc__win_owner_sa(SECURITY_ATTRIBUTES **sa);

/* WaitForSingleObject with a timeout in the public convention, never
 * returning WAIT_TIMEOUT before timeout_ms have passed on the monotonic
 * clock: Windows rounds waits to the scheduler tick and may wake up to one
 * tick early. */
DWORD mproc__win_wait(HANDLE h, int timeout_ms);

/* ntdll entry points, looked up once (NULL when missing). */
typedef LONG(NTAPI *mproc__nt_query_info_fn)(HANDLE, int, void *, ULONG,
                                             ULONG *);
mproc__nt_query_info_fn mproc__win_nt_query_process(void);
mproc__nt_query_info_fn mproc__win_nt_query_semaphore(void);

/* Exit codes that TerminateProcess gives a child for mproc__os_signal, and
 * that mproc__os_wait reads back as -15 / -9 (docs/platforms.md). "MP" in
 * the high half keeps them out of the NTSTATUS ranges and out of 0..255. */
#define MPROC__WIN_EXIT_SIGTERM 0x4D50000Fu
#define MPROC__WIN_EXIT_SIGKILL 0x4D500009u
/* The code of a child that an interrupt ended (mproc__os_interrupt_listen):
 * reads as -2. */
#define MPROC__WIN_EXIT_SIGINT 0x4D500002u

#endif /* MPROC_WIN32_H */
