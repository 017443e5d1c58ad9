/*
 * Win32 backend: error translation (the one switch), handle closing, and the
 * small helpers the other files of the backend share (win32.h): UTF-8 <->
 * UTF-16, random bytes, ntdll entry points.
 */
#include "win32.h"

#include <ntsecapi.h> /* RtlGenRandom (SystemFunction036, advapi32) */

#include <stdlib.h>

int mproc__os_error(long native)
{
    /* Context-dependent meanings are decided by the callers before they get
     * here: a broken pipe on read is end-of-file (chan.c), a failed
     * CreateProcessW is MPROC_EEXEC (process.c). */
    switch ((DWORD)native) {
    case ERROR_INVALID_PARAMETER:
    case ERROR_INVALID_HANDLE:
    case ERROR_INVALID_FUNCTION:
    case ERROR_INVALID_FLAGS:
    case ERROR_INVALID_ADDRESS:
    case ERROR_INVALID_USER_BUFFER:
    case ERROR_NO_UNICODE_TRANSLATION:
    case ERROR_BAD_PIPE:
    case ERROR_INVALID_NAME:
        return MPROC_EINVAL;
    case ERROR_NOT_ENOUGH_MEMORY:
    case ERROR_OUTOFMEMORY:
    case ERROR_COMMITMENT_LIMIT:
        return MPROC_ENOMEM;
    case ERROR_TOO_MANY_OPEN_FILES:
    case ERROR_NO_SYSTEM_RESOURCES:
        return MPROC_EMFILE;
    case ERROR_NOT_ENOUGH_QUOTA:
    case ERROR_MAX_THRDS_REACHED:
    case ERROR_NO_PROC_SLOTS:
        return MPROC_EAGAIN;
    case ERROR_BROKEN_PIPE:
    case ERROR_NO_DATA:
    case ERROR_PIPE_NOT_CONNECTED:
        return MPROC_EPIPE;
    case ERROR_HANDLE_EOF:
        return MPROC_EEOF;
    case ERROR_TIMEOUT:
    case ERROR_SEM_TIMEOUT:
    case WAIT_TIMEOUT:
        return MPROC_ETIMEDOUT;
    case ERROR_PIPE_BUSY:
    case ERROR_BUSY:
    case ERROR_LOCK_VIOLATION:
    case ERROR_SHARING_VIOLATION:
        return MPROC_EBUSY;
    case ERROR_ACCESS_DENIED:
    case ERROR_PRIVILEGE_NOT_HELD:
        return MPROC_EPERM;
    case ERROR_FILE_NOT_FOUND:
    case ERROR_PATH_NOT_FOUND:
    case ERROR_MOD_NOT_FOUND:
    case ERROR_PROC_NOT_FOUND:
        return MPROC_ENOENT;
    case ERROR_ALREADY_EXISTS:
    case ERROR_FILE_EXISTS:
        return MPROC_EEXIST;
    case ERROR_BAD_EXE_FORMAT:
    case ERROR_EXE_MACHINE_TYPE_MISMATCH:
        return MPROC_EEXEC;
    case ERROR_TOO_MANY_POSTS:
    case ERROR_ARITHMETIC_OVERFLOW:
        return MPROC_ERANGE;
    case ERROR_NOT_OWNER:
        return MPROC_ENOTOWNER;
    case ERROR_ABANDONED_WAIT_0:
        return MPROC_EOWNERDEAD;
    case ERROR_NOT_SUPPORTED:
    case ERROR_CALL_NOT_IMPLEMENTED:
        return MPROC_ENOSYS;
    case ERROR_IO_DEVICE:
    case ERROR_CRC:
    case ERROR_GEN_FAILURE:
    case ERROR_DISK_FULL:
        return MPROC_EIO;
    default:
        return MPROC_EUNKNOWN;
    }
}

int mproc__win_last_error(void)
{
    return mproc__os_error((long)GetLastError());
}

int mproc__os_handle_check(mproc__handle h)
{
    DWORD flags;
    /* (HANDLE)-1 is also the current process's pseudo handle, which a
     * process has no reason to wait on. */
    if (h == 0 || h == MPROC__BADHANDLE)
        return MPROC_EINVAL;
    return GetHandleInformation(mproc__win_h(h), &flags) ? 0 : MPROC_EINVAL;
}

void mproc__os_handle_close(mproc__handle h)
{
    /* NULL is what failed Win32 creators return; never a handle we own. */
    if (h == MPROC__BADHANDLE || h == 0)
        return;
    CloseHandle(mproc__win_h(h));
}

wchar_t *mproc__win_wide(const char *s, int *err)
{
    int n;
    wchar_t *w;

    n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, -1, NULL, 0);
    if (n <= 0) {
        *err = MPROC_EINVAL;
        return NULL;
    }
    w = malloc((size_t)n * sizeof *w);
    if (w == NULL) {
        *err = MPROC_ENOMEM;
        return NULL;
    }
    if (MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, -1, w, n) != n) {
        free(w);
        *err = MPROC_EINVAL;
        return NULL;
    }
    return w;
}

char *mproc__win_utf8(const wchar_t *s, int *err)
{
    int n;
    char *u;

    n = WideCharToMultiByte(CP_UTF8, WC_ERR_INVALID_CHARS, s, -1, NULL, 0, NULL,
                            NULL);
    if (n <= 0) {
        *err = MPROC_EINVAL;
        return NULL;
    }
    u = malloc((size_t)n);
    if (u == NULL) {
        *err = MPROC_ENOMEM;
        return NULL;
    }
    if (WideCharToMultiByte(CP_UTF8, WC_ERR_INVALID_CHARS, s, -1, u, n, NULL,
                            NULL) != n) {
        free(u);
        *err = MPROC_EINVAL;
        return NULL;
    }
    return u;
}

int mproc__win_random(void *buf, size_t n)
{
    if (n > 0xFFFFFFFFu)
        return MPROC_EINVAL;
    if (!RtlGenRandom(buf, (ULONG)n))
        return MPROC_EUNKNOWN;
    return 0;
}

/* ---------------------------------------------------------------------------
 * Owner-only access: a DACL with one entry, the user of this process's
 * token. Made once.
 */

static INIT_ONCE sd_once = INIT_ONCE_STATIC_INIT;
static SECURITY_ATTRIBUTES *owner_sa;
static DWORD owner_sa_error;
static BOOL CALLBACK sd_init(INIT_ONCE *once, void *param, void **ctx)
{
    static SECURITY_ATTRIBUTES sa;
    static SECURITY_DESCRIPTOR sd;
    static union {
        TOKEN_USER user;
        unsigned char space[sizeof(TOKEN_USER) + SECURITY_MAX_SID_SIZE];
    } owner_tu;
    static union {
        ACL acl;
        unsigned char space[sizeof(ACL) + sizeof(ACCESS_ALLOWED_ACE) +
                            SECURITY_MAX_SID_SIZE];
    } acl;
    HANDLE token;
    DWORD len = 0;
    BOOL ok;

    (void)once;
    (void)param;
    (void)ctx;
    if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &token)) {
        owner_sa_error = GetLastError();
        return TRUE;
    }
    ok =
        GetTokenInformation(token, TokenUser, &owner_tu, sizeof owner_tu, &len);
    CloseHandle(token);
    if (!ok || !InitializeAcl(&acl.acl, sizeof acl, ACL_REVISION) ||
        !AddAccessAllowedAce(&acl.acl, ACL_REVISION, GENERIC_ALL,
                             owner_tu.user.User.Sid) ||
        !InitializeSecurityDescriptor(&sd, SECURITY_DESCRIPTOR_REVISION) ||
        !SetSecurityDescriptorDacl(&sd, TRUE, &acl.acl, FALSE)) {
        owner_sa_error = GetLastError();
        return TRUE;
    }
    sa.nLength = sizeof sa;
    sa.lpSecurityDescriptor = &sd;
    sa.bInheritHandle = FALSE;
    owner_sa = &sa;
    return TRUE;
}

int mproc__win_owner_sa(SECURITY_ATTRIBUTES **sa)
{
    InitOnceExecuteOnce(&sd_once, sd_init, NULL, NULL);
    *sa = owner_sa;
    if (owner_sa == NULL)
        return owner_sa_error != 0 ? mproc__os_error((long)owner_sa_error)
                                   : MPROC_EUNKNOWN;
    return 0;
}

/* ---------------------------------------------------------------------------
 * ntdll: NtQueryInformationProcess (the parent's pid) and NtQuerySemaphore
 * (a semaphore's count) have no kernel32 equivalent. They are looked up at
 * run time so that the library links against kernel32 and advapi32 only.
 */

static INIT_ONCE nt_once = INIT_ONCE_STATIC_INIT;
static mproc__nt_query_info_fn nt_query_process;
static mproc__nt_query_info_fn nt_query_semaphore;

static mproc__nt_query_info_fn nt_lookup(HMODULE nt, const char *name)
{
    /* Through a generic function pointer type: FARPROC and the real
     * prototype are incompatible types for -Wcast-function-type. */
    void (*generic)(void) = (void (*)(void))GetProcAddress(nt, name);
    return (mproc__nt_query_info_fn)generic;
}

static BOOL CALLBACK nt_init(INIT_ONCE *once, void *param, void **ctx)
{
    HMODULE nt = GetModuleHandleW(L"ntdll.dll");
    (void)once;
    (void)param;
    (void)ctx;
    if (nt != NULL) {
        nt_query_process = nt_lookup(nt, "NtQueryInformationProcess");
        nt_query_semaphore = nt_lookup(nt, "NtQuerySemaphore");
    }
    return TRUE;
}

mproc__nt_query_info_fn mproc__win_nt_query_process(void)
{
    InitOnceExecuteOnce(&nt_once, nt_init, NULL, NULL);
    return nt_query_process;
}

mproc__nt_query_info_fn mproc__win_nt_query_semaphore(void)
{
    InitOnceExecuteOnce(&nt_once, nt_init, NULL, NULL);
    return nt_query_semaphore;
}
