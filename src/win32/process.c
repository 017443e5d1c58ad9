/*
 * Win32 backend: processes.
 *
 * Map: the executable's path; the environment; command-line quoting; the
 * daemon job; spawn; wait, signal, release; interrupts (the child's side);
 * pids and the parent; CPU
 * counts; locating a function as (module, offset) and resolving it in the
 * child; the bootstrap's checks; exit.
 *
 * Exit codes: TerminateProcess gives the child MPROC__WIN_EXIT_SIGTERM or
 * MPROC__WIN_EXIT_SIGKILL (win32.h), which mproc__os_wait reads back as -15
 * and -9. Every other code is returned as the process left it, cast to int:
 * a crash is its NTSTATUS (0xC0000005, an access violation, reads as
 * -1073741819), abort() is 3 (docs/platforms.md).
 */
#include "win32.h"

#include <tlhelp32.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The environment entry that names a spawned child's interrupt event. */
#define INTR_ENV "MPROC_INTERRUPT"

/* ---------------------------------------------------------------------------
 * The executable's path
 */

/* A malloc'ed path of module m (NULL: this program), or NULL. */
static wchar_t *module_path(HMODULE m)
{
    DWORD cap = MAX_PATH;
    DWORD n;
    wchar_t *buf;
    wchar_t *grown;

    buf = malloc(cap * sizeof *buf);
    if (buf == NULL)
        return NULL;
    for (;;) {
        n = GetModuleFileNameW(m, buf, cap);
        if (n == 0) {
            free(buf);
            return NULL;
        }
        /* A truncated path fills the buffer exactly. */
        if (n < cap)
            return buf;
        if (cap >= 32768) {
            free(buf);
            return NULL;
        }
        cap *= 2;
        grown = realloc(buf, cap * sizeof *buf);
        if (grown == NULL) {
            free(buf);
            return NULL;
        }
        buf = grown;
    }
}

int mproc__os_self_exe(char **path)
{
    wchar_t *w = module_path(NULL);
    int err = MPROC_ENOMEM;

    if (w == NULL)
        return mproc__win_last_error();
    *path = mproc__win_utf8(w, &err);
    free(w);
    return *path == NULL ? err : 0;
}

int mproc__os_spawn_path(const char *argv0, char **path)
{
    /* GetModuleFileNameW names the program's own file, under any loader:
     * nothing to resolve. */
    (void)argv0;
    *path = NULL;
    return 0;
}

static bool same_path(const wchar_t *a, const wchar_t *b)
{
    /* NTFS names compare without case for the loader too. */
    return CompareStringOrdinal(a, -1, b, -1, TRUE) == CSTR_EQUAL;
}

/* ---------------------------------------------------------------------------
 * The environment
 */

void mproc__os_unsetenv(const char *name)
{
    wchar_t *w;
    int err = 0;
    /* The C runtime keeps its own copy (getenv), built at start-up; the
     * process's block is what children inherit. An empty value removes
     * the entry from the runtime's copy. */
    (void)_putenv_s(name, "");
    w = mproc__win_wide(name, &err);
    if (w != NULL) {
        (void)SetEnvironmentVariableW(w, NULL);
        free(w);
    }
}

/* The length of the name of entry e ("NAME=value"); entries Windows keeps
 * for drive letters start with '=' ("=C:=C:\\dir"), which is part of the
 * name. */
static size_t env_name_len(const wchar_t *e)
{
    const wchar_t *eq = wcschr(e[0] == L'=' ? e + 1 : e, L'=');
    return eq ? (size_t)(eq - e) : wcslen(e);
}

/* Whether entry e has the name of one of the n entries of add. */
static bool env_replaced(const wchar_t *e, wchar_t *const *add, size_t n)
{
    size_t namelen = env_name_len(e), i;
    for (i = 0; i < n; i++)
        if (env_name_len(add[i]) == namelen &&
            CompareStringOrdinal(e, (int)namelen, add[i], (int)namelen, TRUE) ==
                CSTR_EQUAL)
            return true;
    return false;
}

/* A malloc'ed environment block for CreateProcessW: this process's, with
 * the n entries of `add` ("NAME=value", UTF-8; NULL ones are skipped) in
 * place of any entry of their names (names compare without case, as
 * Windows does). NULL with *err set on failure. */
static wchar_t *env_block_with(const char *const *add, size_t n, int *err)
{
    wchar_t *wadd[2] = {NULL, NULL};
    wchar_t *mine, *block = NULL, *out;
    const wchar_t *e;
    size_t total = 0, nw = 0, i;

    for (i = 0; i < n && nw < 2; i++) {
        if (add[i] == NULL)
            continue;
        wadd[nw] = mproc__win_wide(add[i], err);
        if (wadd[nw] == NULL)
            goto out;
        total += wcslen(wadd[nw]) + 1;
        nw++;
    }
    mine = GetEnvironmentStringsW();
    if (mine == NULL) {
        *err = mproc__win_last_error();
        goto out;
    }
    for (e = mine; *e; e += wcslen(e) + 1)
        total += wcslen(e) + 1;
    block = malloc((total + 2) * sizeof *block);
    if (block == NULL) {
        *err = MPROC_ENOMEM;
        FreeEnvironmentStringsW(mine);
        goto out;
    }
    out = block;
    for (e = mine; *e; e += wcslen(e) + 1) {
        size_t len = wcslen(e) + 1;
        if (env_replaced(e, wadd, nw))
            continue;
        memcpy(out, e, len * sizeof *out);
        out += len;
    }
    for (i = 0; i < nw; i++) {
        size_t len = wcslen(wadd[i]) + 1;
        memcpy(out, wadd[i], len * sizeof *out);
        out += len;
    }
    *out = L'\0';
    FreeEnvironmentStringsW(mine);
out:
    free(wadd[0]);
    free(wadd[1]);
    return block;
}

/* ---------------------------------------------------------------------------
 * Command-line quoting: argv -> one string that CommandLineToArgvW and the
 * C runtime split back into the same argv.
 */

typedef struct wbuf {
    wchar_t *p;
    size_t n;
    size_t cap;
} wbuf;

static int wbuf_put(wbuf *b, wchar_t c, size_t count)
{
    wchar_t *grown;
    size_t cap;

    if (b->p == NULL || b->n + count + 1 > b->cap) {
        cap = b->cap ? b->cap : 256;
        while (b->n + count + 1 > cap)
            cap *= 2;
        grown = realloc(b->p, cap * sizeof *grown);
        if (grown == NULL)
            return MPROC_ENOMEM;
        b->p = grown;
        b->cap = cap;
    }
    while (count-- > 0)
        b->p[b->n++] = c;
    b->p[b->n] = L'\0';
    return 0;
}

static int quote_arg(wbuf *b, const wchar_t *a, bool first)
{
    size_t slashes = 0;
    int rc;

    if (b->n > 0 && (rc = wbuf_put(b, L' ', 1)) != 0)
        return rc;
    if (first) {
        /* argv[0] is split differently (up to the next quote, backslashes
         * are literal), so it may hold no quote at all. */
        if (wcschr(a, L'"') != NULL)
            return MPROC_EINVAL;
        if ((rc = wbuf_put(b, L'"', 1)) != 0)
            return rc;
        for (; *a; a++)
            if ((rc = wbuf_put(b, *a, 1)) != 0)
                return rc;
        return wbuf_put(b, L'"', 1);
    }
    if (*a != L'\0' && wcspbrk(a, L" \t\n\v\"") == NULL) {
        for (; *a; a++)
            if ((rc = wbuf_put(b, *a, 1)) != 0)
                return rc;
        return 0;
    }
    /* Backslashes are literal unless they precede a quote: then each one
     * is doubled and the quote escaped. The closing quote counts too. */
    if ((rc = wbuf_put(b, L'"', 1)) != 0)
        return rc;
    for (; *a; a++) {
        if (*a == L'\\') {
            slashes++;
            continue;
        }
        if (*a == L'"') {
            rc = wbuf_put(b, L'\\', slashes * 2 + 1);
        } else {
            rc = wbuf_put(b, L'\\', slashes);
        }
        if (rc == 0)
            rc = wbuf_put(b, *a, 1);
        if (rc != 0)
            return rc;
        slashes = 0;
    }
    if ((rc = wbuf_put(b, L'\\', slashes * 2)) != 0)
        return rc;
    return wbuf_put(b, L'"', 1);
}

static wchar_t *acp_wide(const char *s, int *err)
{
    int n = MultiByteToWideChar(CP_ACP, 0, s, -1, NULL, 0);
    wchar_t *w;

    if (n <= 0) {
        *err = MPROC_EINVAL;
        return NULL;
    }
    w = malloc((size_t)n * sizeof *w);
    if (w == NULL) {
        *err = MPROC_ENOMEM;
        return NULL;
    }
    if (MultiByteToWideChar(CP_ACP, 0, s, -1, w, n) != n) {
        free(w);
        *err = MPROC_EINVAL;
        return NULL;
    }
    return w;
}

static int build_cmdline(const char *const *argv, wchar_t **out)
{
    wbuf b = {NULL, 0, 0};
    wchar_t *w;
    int rc = 0;
    size_t i;

    for (i = 0; argv[i] != NULL; i++) {
        w = mproc__win_wide(argv[i], &rc);
        /* argv[0] may come from main()'s argv, which the C runtime gives
         * in the ANSI code page, not UTF-8. */
        if (w == NULL && i == 0 && rc == MPROC_EINVAL)
            w = acp_wide(argv[0], &rc);
        if (w == NULL)
            break;
        rc = quote_arg(&b, w, i == 0);
        free(w);
        if (rc != 0)
            break;
    }
    /* CreateProcessW's limit, terminator included. */
    if (rc == 0 && b.n >= 32767)
        rc = MPROC_EINVAL;
    if (rc == 0 && b.p == NULL)
        rc = wbuf_put(&b, L'\0', 0);
    if (rc != 0) {
        free(b.p);
        return rc;
    }
    *out = b.p;
    return 0;
}

/* ---------------------------------------------------------------------------
 * The daemon job: one job object per parent, created on the first daemon
 * child, never closed. The system closes it when this process ends, however
 * it ends, and JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE then kills every daemon
 * child (and anything they started, which inherits the job).
 */

static INIT_ONCE job_once = INIT_ONCE_STATIC_INIT;
static HANDLE daemon_job;
static DWORD daemon_job_error;

static BOOL CALLBACK job_init(INIT_ONCE *once, void *param, void **ctx)
{
    JOBOBJECT_EXTENDED_LIMIT_INFORMATION lim;
    HANDLE job;

    (void)once;
    (void)param;
    (void)ctx;
    job = CreateJobObjectW(NULL, NULL);
    if (job == NULL) {
        daemon_job_error = GetLastError();
        return TRUE;
    }
    memset(&lim, 0, sizeof lim);
    lim.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
    if (!SetInformationJobObject(job, JobObjectExtendedLimitInformation, &lim,
                                 sizeof lim)) {
        daemon_job_error = GetLastError();
        CloseHandle(job);
        return TRUE;
    }
    daemon_job = job;
    return TRUE;
}

/* ---------------------------------------------------------------------------
 * Spawn
 */

/* Spawns are serialised: the handles to pass are made inheritable just for
 * the CreateProcessW call (PROC_THREAD_ATTRIBUTE_HANDLE_LIST only accepts
 * inheritable handles), and two spawns passing the same handle must not
 * undo each other's flag in between. */
static SRWLOCK spawn_lock = SRWLOCK_INIT;

static bool valid_handle(HANDLE h)
{
    return h != NULL && h != INVALID_HANDLE_VALUE;
}

static void inherit_add(HANDLE *list, size_t *n, HANDLE h)
{
    size_t i;
    DWORD flags;

    /* A standard handle may be stale (closed by the program): passing it
     * would fail the whole spawn, so only live handles are listed. */
    if (!valid_handle(h) || !GetHandleInformation(h, &flags))
        return;
    for (i = 0; i < *n; i++)
        if (list[i] == h)
            return; /* the list may name a handle once only */
    list[(*n)++] = h;
}

/* Sets HANDLE_FLAG_INHERIT on each handle, remembering the old flags. On
 * failure the handles already changed are restored. */
static int inherit_on(HANDLE *list, DWORD *old, size_t n)
{
    size_t i;
    DWORD err;

    for (i = 0; i < n; i++) {
        if (!GetHandleInformation(list[i], &old[i]) ||
            !SetHandleInformation(list[i], HANDLE_FLAG_INHERIT,
                                  HANDLE_FLAG_INHERIT)) {
            err = GetLastError();
            while (i-- > 0)
                SetHandleInformation(list[i], HANDLE_FLAG_INHERIT,
                                     old[i] & HANDLE_FLAG_INHERIT);
            return mproc__os_error((long)err);
        }
    }
    return 0;
}

static void inherit_off(HANDLE *list, const DWORD *old, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        SetHandleInformation(list[i], HANDLE_FLAG_INHERIT,
                             old[i] & HANDLE_FLAG_INHERIT);
}

static int create_error(DWORD err)
{
    /* Resource shortages keep their meaning; anything else means this
     * executable cannot be started. */
    switch (err) {
    case ERROR_INTERNAL_ERROR:
        return MPROC_EAGAIN;
    case ERROR_NOT_ENOUGH_MEMORY:
    case ERROR_OUTOFMEMORY:
    case ERROR_COMMITMENT_LIMIT:
    case ERROR_NOT_ENOUGH_QUOTA:
    case ERROR_NO_SYSTEM_RESOURCES:
    case ERROR_TOO_MANY_OPEN_FILES:
    case ERROR_INVALID_HANDLE:
        return mproc__os_error((long)err);
    default:
        return MPROC_EEXEC;
    }
}

/* A standard handle of this process, to hand to a child as its own, or
 * NULL. A program that closed its standard handle without SetStdHandle
 * leaves a stale value, which Windows may since have given to one of our
 * objects: a handle of the child's list, or one that is no stream at all
 * (a mutex, an event, a section), is never passed as a standard stream. */
static HANDLE std_handle(DWORD which, const mproc__spawn_req *req)
{
    HANDLE h = GetStdHandle(which);
    size_t i;

    if (!valid_handle(h))
        return NULL;
    for (i = 0; i < req->n_inherit; i++)
        if (mproc__win_h(req->inherit[i]) == h)
            return NULL;
    SetLastError(NO_ERROR);
    if (GetFileType(h) == FILE_TYPE_UNKNOWN && GetLastError() != NO_ERROR)
        return NULL;
    return h;
}

int mproc__os_spawn(const mproc__spawn_req *req, mproc__child *out)
{
    STARTUPINFOEXW si;
    PROCESS_INFORMATION pi;
    HANDLE std_in, std_out, std_err, nul = INVALID_HANDLE_VALUE;
    wchar_t *exe = NULL;
    wchar_t *env = NULL;
    wchar_t *cmd = NULL;
    HANDLE intr = NULL;
    char intr_env[sizeof INTR_ENV + 32];
    const char *envs[2];
    HANDLE *list = NULL;
    DWORD *old = NULL;
    size_t n = 0;
    size_t i;
    SIZE_T attr_size = 0;
    LPPROC_THREAD_ATTRIBUTE_LIST attr = NULL;
    DWORD nattr;
    bool job_attr = false;
    int attempt;
    DWORD flags = EXTENDED_STARTUPINFO_PRESENT | CREATE_UNICODE_ENVIRONMENT;
    DWORD err = 0;
    BOOL ok;
    int rc = 0;

    if (req == NULL || out == NULL || req->argv == NULL ||
        req->argv[0] == NULL || (req->n_inherit > 0 && req->inherit == NULL))
        return MPROC_EINVAL;

    if (req->daemon) {
        InitOnceExecuteOnce(&job_once, job_init, NULL, NULL);
        if (daemon_job == NULL)
            return mproc__os_error((long)daemon_job_error);
    }

    if (req->exe != NULL)
        exe = mproc__win_wide(req->exe, &rc);
    else if ((exe = module_path(NULL)) == NULL)
        rc = mproc__win_last_error();
    if (exe == NULL)
        return rc;
    rc = build_cmdline(req->argv, &cmd);
    if (rc != 0)
        goto out;
    /* The child's interrupt (mproc__os_interrupt_listen): an event it
     * inherits, named to it by the environment. */
    intr = CreateEventW(NULL, FALSE, FALSE, NULL);
    if (intr == NULL) {
        rc = mproc__win_last_error();
        goto out;
    }
    snprintf(intr_env, sizeof intr_env, INTR_ENV "=%lld",
             (long long)mproc__win_mh(intr));
    envs[0] = req->env;
    envs[1] = intr_env;
    if ((env = env_block_with(envs, 2, &rc)) == NULL)
        goto out;
    std_in = std_handle(STD_INPUT_HANDLE, req);
    std_out = std_handle(STD_OUTPUT_HANDLE, req);
    std_err = std_handle(STD_ERROR_HANDLE, req);
    if (!req->inherit_stdin) {
        /* Like Python's children: the null device, so that the child does
         * not compete with its parent for the console. Without one (it
         * cannot fail on Windows) the child keeps this stdin. */
        nul = CreateFileW(L"NUL", GENERIC_READ,
                          FILE_SHARE_READ | FILE_SHARE_WRITE, NULL,
                          OPEN_EXISTING, 0, NULL);
        if (valid_handle(nul))
            std_in = nul;
    }

    list = malloc((req->n_inherit + 4) * sizeof *list);
    old = malloc((req->n_inherit + 4) * sizeof *old);
    if (list == NULL || old == NULL) {
        rc = MPROC_ENOMEM;
        goto out;
    }
    for (i = 0; i < req->n_inherit; i++) {
        DWORD hflags;
        /* A handle the caller asked for must exist: no silent drop. */
        if (!GetHandleInformation(mproc__win_h(req->inherit[i]), &hflags)) {
            rc = MPROC_EINVAL;
            goto out;
        }
        inherit_add(list, &n, mproc__win_h(req->inherit[i]));
    }
    /* The standard handles are passed explicitly: Windows gives a child
     * that inherits through a handle list no others (Wine does anyway). */
    inherit_add(list, &n, std_in);
    inherit_add(list, &n, std_out);
    inherit_add(list, &n, std_err);
    inherit_add(list, &n, intr);

    memset(&si, 0, sizeof si);
    si.StartupInfo.cb = sizeof si;
    si.StartupInfo.dwFlags = STARTF_USESTDHANDLES;
    si.StartupInfo.hStdInput = std_in;
    si.StartupInfo.hStdOutput = std_out;
    si.StartupInfo.hStdError = std_err;
    nattr = (n > 0 ? 1u : 0u) + (req->daemon ? 1u : 0u);
    if (nattr > 0) {
        InitializeProcThreadAttributeList(NULL, nattr, 0, &attr_size);
        attr = malloc(attr_size);
        if (attr == NULL) {
            rc = MPROC_ENOMEM;
            goto out;
        }
        if (!InitializeProcThreadAttributeList(attr, nattr, 0, &attr_size)) {
            rc = mproc__win_last_error();
            free(attr);
            attr = NULL;
            goto out;
        }
        if (n > 0 && !UpdateProcThreadAttribute(
                         attr, 0, PROC_THREAD_ATTRIBUTE_HANDLE_LIST, list,
                         n * sizeof *list, NULL, NULL)) {
            rc = mproc__win_last_error();
            goto out;
        }
        /* A daemon child is born in the job (Windows 10 and later), so
         * that no moment exists in which this process could die and leave
         * it outside. Older systems: started suspended and put in the job
         * before it runs. */
        if (req->daemon) {
            if (UpdateProcThreadAttribute(
                    attr, 0, PROC_THREAD_ATTRIBUTE_JOB_LIST, &daemon_job,
                    sizeof daemon_job, NULL, NULL))
                job_attr = true;
            else
                flags |= CREATE_SUSPENDED;
        }
        si.lpAttributeList = attr;
    }

    for (attempt = 0;; attempt++) {
        AcquireSRWLockExclusive(&spawn_lock);
        rc = inherit_on(list, old, n);
        if (rc == 0) {
            ok = CreateProcessW(exe, cmd, NULL, NULL, n > 0 ? TRUE : FALSE,
                                flags, env, NULL, &si.StartupInfo, &pi);
            if (!ok)
                err = GetLastError();
            inherit_off(list, old, n);
            if (!ok)
                rc = create_error(err);
        }
        ReleaseSRWLockExclusive(&spawn_lock);
        /* Wine under load sometimes fails a process creation with
         * ERROR_INTERNAL_ERROR; nothing was created, so try again. */
        if (rc != MPROC_EAGAIN || err != ERROR_INTERNAL_ERROR || attempt >= 4)
            break;
        Sleep((DWORD)10 << attempt);
    }
    if (rc != 0)
        goto out;

    if (req->daemon && !job_attr) {
        if (!AssignProcessToJobObject(daemon_job, pi.hProcess)) {
            rc = mproc__win_last_error();
            TerminateProcess(pi.hProcess, MPROC__WIN_EXIT_SIGKILL);
            WaitForSingleObject(pi.hProcess, INFINITE);
            CloseHandle(pi.hThread);
            CloseHandle(pi.hProcess);
            goto out;
        }
        ResumeThread(pi.hThread);
    }
    CloseHandle(pi.hThread);
    out->pid = (int64_t)pi.dwProcessId;
    out->handle = mproc__win_mh(pi.hProcess);
    out->intr = mproc__win_mh(intr);
    intr = NULL;
    out->reaped = false;
    out->exitcode = 0;

out:
    if (attr != NULL) {
        DeleteProcThreadAttributeList(attr);
        free(attr);
    }
    if (valid_handle(nul))
        CloseHandle(nul);
    if (intr != NULL)
        CloseHandle(intr);
    free(old);
    free(list);
    free(cmd);
    free(env);
    free(exe);
    return rc;
}

int mproc__os_fork(mproc__child *out, const mproc__handle *keep, size_t nkeep,
                   bool daemon, bool inherit_stdin)
{
    (void)out;
    (void)keep;
    (void)nkeep;
    (void)daemon;
    (void)inherit_stdin;
    return MPROC_ENOSYS;
}

/* ---------------------------------------------------------------------------
 * Wait, signal, release
 */

static int exit_code(DWORD code)
{
    if (code == MPROC__WIN_EXIT_SIGTERM)
        return -MPROC__SIGTERM;
    if (code == MPROC__WIN_EXIT_SIGKILL)
        return -MPROC__SIGKILL;
    if (code == MPROC__WIN_EXIT_SIGINT)
        return -MPROC__SIGINT;
    return (int)code;
}

int mproc__os_wait(mproc__child *c, int timeout_ms)
{
    DWORD code = 0;

    if (c == NULL)
        return MPROC_EINVAL;
    if (c->reaped)
        return 0;
    switch (mproc__win_wait(mproc__win_h(c->handle), timeout_ms)) {
    case WAIT_OBJECT_0:
        break;
    case WAIT_TIMEOUT:
        return MPROC_ETIMEDOUT;
    default:
        return mproc__win_last_error();
    }
    if (!GetExitCodeProcess(mproc__win_h(c->handle), &code))
        return mproc__win_last_error();
    c->exitcode = exit_code(code);
    c->reaped = true;
    return 0;
}

int mproc__os_signal(mproc__child *c, int sig)
{
    UINT code;
    DWORD err;

    if (c == NULL)
        return MPROC_EINVAL;
    if (sig == MPROC__SIGINT) {
        if (c->reaped)
            return 0;
        /* Auto-reset: each interrupt wakes the child's wait once. */
        if (c->intr == MPROC__BADHANDLE || c->intr == 0)
            return MPROC_ENOSYS;
        return SetEvent(mproc__win_h(c->intr)) ? 0 : mproc__win_last_error();
    }
    if (sig == MPROC__SIGTERM)
        code = MPROC__WIN_EXIT_SIGTERM;
    else if (sig == MPROC__SIGKILL)
        code = MPROC__WIN_EXIT_SIGKILL;
    else
        return MPROC_EINVAL;
    if (c->reaped)
        return 0;
    if (TerminateProcess(mproc__win_h(c->handle), code))
        return 0;
    err = GetLastError();
    /* Windows refuses to terminate a process that has already exited
     * (ERROR_ACCESS_DENIED); that is success here. */
    if (WaitForSingleObject(mproc__win_h(c->handle), 0) == WAIT_OBJECT_0)
        return 0;
    return mproc__os_error((long)err);
}

void mproc__os_child_release(mproc__child *c)
{
    if (c == NULL)
        return;
    mproc__os_handle_close(c->handle);
    c->handle = MPROC__BADHANDLE;
    mproc__os_handle_close(c->intr);
    c->intr = MPROC__BADHANDLE;
}

/* ---------------------------------------------------------------------------
 * Interrupts: the child's side (backend.h, mproc__os_interrupt_listen)
 */

static HANDLE intr_event;
static HANDLE intr_wait;

/* In a thread-pool thread, once per interrupt. The C runtime's
 * disposition of SIGINT can only be read by setting it: SIG_DFL goes in,
 * and what was there decides, as it would for a Ctrl+C. */
static void CALLBACK on_interrupt(void *ctx, BOOLEAN timed_out)
{
    void (*prev)(int);

    (void)ctx;
    (void)timed_out;
    prev = signal(SIGINT, SIG_DFL);
    if (prev == SIG_IGN) {
        (void)signal(SIGINT, SIG_IGN);
    } else if (prev == SIG_DFL || prev == SIG_ERR) {
        /* A signal's death: no atexit handler, no flush. */
        TerminateProcess(GetCurrentProcess(), MPROC__WIN_EXIT_SIGINT);
    } else {
        prev(SIGINT);
    }
}

int mproc__os_interrupt_listen(void)
{
    const char *v = getenv(INTR_ENV);
    char *end = NULL;
    long long h;
    bool ok;

    if (v == NULL || *v < '0' || *v > '9')
        return MPROC_ENOENT;
    h = strtoll(v, &end, 10);
    ok = end != v && *end == '\0' && h > 0 && intr_wait == NULL;
    mproc__os_unsetenv(INTR_ENV); /* for this process only */
    if (!ok)
        return MPROC_EINVAL;
    intr_event = mproc__win_h((mproc__handle)h);
    if (!RegisterWaitForSingleObject(&intr_wait, intr_event, on_interrupt, NULL,
                                     INFINITE, WT_EXECUTEDEFAULT)) {
        intr_wait = NULL;
        return mproc__win_last_error();
    }
    return 0;
}

/* ---------------------------------------------------------------------------
 * Pids and the parent
 */

int64_t mproc__os_getpid(void)
{
    return (int64_t)GetCurrentProcessId();
}

/* PROCESS_BASIC_INFORMATION, as ntdll fills it. */
typedef struct basic_info {
    LONG exit_status;
    void *peb;
    ULONG_PTR affinity;
    LONG base_priority;
    ULONG_PTR pid;
    ULONG_PTR parent_pid;
} basic_info;

static int64_t ppid_snapshot(void)
{
    PROCESSENTRY32W pe;
    HANDLE snap;
    DWORD self = GetCurrentProcessId();
    int64_t ppid = 0;

    snap = CreateToolhelp32Snapshot(TH32CS_SNAPPROCESS, 0);
    if (snap == INVALID_HANDLE_VALUE)
        return 0;
    pe.dwSize = sizeof pe;
    if (Process32FirstW(snap, &pe)) {
        do {
            if (pe.th32ProcessID == self) {
                ppid = (int64_t)pe.th32ParentProcessID;
                break;
            }
        } while (Process32NextW(snap, &pe));
    }
    CloseHandle(snap);
    return ppid;
}

int64_t mproc__os_getppid(void)
{
    mproc__nt_query_info_fn query = mproc__win_nt_query_process();
    basic_info bi;
    ULONG len = 0;

    /* Windows keeps the pid of the creating process even after that
     * process has ended; parent_alive tells whether it still runs. */
    memset(&bi, 0, sizeof bi);
    if (query != NULL &&
        query(GetCurrentProcess(), 0 /* ProcessBasicInformation */, &bi,
              (ULONG)sizeof bi, &len) >= 0)
        return (int64_t)bi.parent_pid;
    return ppid_snapshot();
}

static uint64_t filetime_u64(FILETIME ft)
{
    return ((uint64_t)ft.dwHighDateTime << 32) | ft.dwLowDateTime;
}

/* The parent's handle, opened on the first question and kept: while it is
 * open, the pid cannot be reused by another process. */
static SRWLOCK parent_lock = SRWLOCK_INIT;
static int64_t parent_pid;
static HANDLE parent_handle;
static int parent_state; /* 0: not asked; 1: handle; 2: gone; 3: unknown */

static void parent_open(int64_t pid)
{
    FILETIME c_parent, c_self, x1, x2, x3;
    HANDLE h;
    DWORD err;

    h = OpenProcess(SYNCHRONIZE | PROCESS_QUERY_LIMITED_INFORMATION, FALSE,
                    (DWORD)pid);
    if (h == NULL)
        h = OpenProcess(SYNCHRONIZE, FALSE, (DWORD)pid);
    if (h == NULL) {
        err = GetLastError();
        /* No such pid: gone. Any other refusal means a process with that
         * pid exists that we may not watch. */
        parent_state = err == ERROR_INVALID_PARAMETER ? 2 : 3;
        return;
    }
    /* A process created after this one cannot be its parent: the parent
     * died before the first question and its pid was reused. */
    if (GetProcessTimes(h, &c_parent, &x1, &x2, &x3) &&
        GetProcessTimes(GetCurrentProcess(), &c_self, &x1, &x2, &x3) &&
        filetime_u64(c_parent) > filetime_u64(c_self)) {
        CloseHandle(h);
        parent_state = 2;
        return;
    }
    parent_handle = h;
    parent_state = 1;
}

int mproc__os_parent_alive(int64_t pid)
{
    int alive;

    if (pid <= 0 || pid > 0xFFFFFFFF)
        return 0;
    AcquireSRWLockExclusive(&parent_lock);
    if (parent_state == 0 || parent_pid != pid) {
        if (parent_handle != NULL)
            CloseHandle(parent_handle);
        parent_handle = NULL;
        parent_pid = pid;
        parent_open(pid);
    }
    if (parent_state == 1)
        alive = WaitForSingleObject(parent_handle, 0) == WAIT_TIMEOUT;
    else
        alive = parent_state == 3;
    ReleaseSRWLockExclusive(&parent_lock);
    return alive;
}

/* ---------------------------------------------------------------------------
 * CPU counts
 */

int mproc__os_cpu_count(void)
{
    /* Every processor group: GetSystemInfo stops at the caller's group of
     * at most 64. */
    DWORD n = GetActiveProcessorCount(ALL_PROCESSOR_GROUPS);
    return n > 0 ? (int)n : 1;
}

int mproc__os_cpu_count_usable(void)
{
    DWORD_PTR mine = 0;
    DWORD_PTR system = 0;
    int n;

    if (!GetProcessAffinityMask(GetCurrentProcess(), &mine, &system))
        return mproc__os_cpu_count();
    /* With several processor groups the mask covers one group only; an
     * unrestricted process may use them all. */
    if (GetActiveProcessorGroupCount() > 1 && mine == system)
        return mproc__os_cpu_count();
    for (n = 0; mine != 0; mine &= mine - 1)
        n++;
    return n > 0 ? n : 1;
}

/* ---------------------------------------------------------------------------
 * Locating a function as (module path, offset from the module's base) and
 * finding it again in a child. The offset survives address-space
 * randomisation and a DLL loaded at another base.
 */

static HMODULE module_of(const void *addr)
{
    HMODULE m = NULL;
    if (!GetModuleHandleExW(GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS |
                                GET_MODULE_HANDLE_EX_FLAG_UNCHANGED_REFCOUNT,
                            (LPCWSTR)addr, &m))
        return NULL;
    return m;
}

static const IMAGE_NT_HEADERS *nt_headers(const unsigned char *b);

/* A program's pointer to a function of a DLL that it imports without
 * dllimport is the address of an import thunk of its own, `jmp
 * [rip+disp32]` through its import address table: the function is where
 * that slot points. The child checks that a target is a function entry,
 * which a thunk is not, so the parent names the function itself. */
static const void *through_thunk(const void *fn, HMODULE m)
{
#if defined(_M_X64) || defined(__x86_64__)
    const unsigned char *p = fn;
    const IMAGE_NT_HEADERS *nt = nt_headers((const unsigned char *)m);
    uintptr_t slot, lo = (uintptr_t)m, size;
    int32_t disp;
    const void *to;

    if (nt == NULL || p[0] != 0xFF || p[1] != 0x25)
        return fn;
    size = nt->OptionalHeader.SizeOfImage;
    if ((uintptr_t)p - lo > size - 6)
        return fn;
    memcpy(&disp, p + 2, sizeof disp);
    slot = (uintptr_t)p + 6 + (uintptr_t)(intptr_t)disp;
    if (slot < lo || slot - lo > size - sizeof to)
        return fn;
    memcpy(&to, (const void *)slot, sizeof to);
    if (to == NULL || module_of(to) == NULL || module_of(to) == m)
        return fn;
    return to;
#else
    (void)m;
    return fn;
#endif
}

int mproc__os_locate(const void *fn, char **module, uint64_t *offset)
{
    HMODULE m = NULL;
    wchar_t *w;
    int err = MPROC_ENOMEM;

    if (fn == NULL || module == NULL || offset == NULL)
        return MPROC_EINVAL;
    if ((m = module_of(fn)) == NULL)
        return MPROC_ERESOLVE;
    fn = through_thunk(fn, m);
    if ((m = module_of(fn)) == NULL)
        return MPROC_ERESOLVE;
    w = module_path(m);
    if (w == NULL)
        return MPROC_ERESOLVE;
    *module = mproc__win_utf8(w, &err);
    free(w);
    if (*module == NULL)
        return err;
    *offset = (uint64_t)((uintptr_t)fn - (uintptr_t)m);
    return 0;
}

static const IMAGE_NT_HEADERS *nt_headers(const unsigned char *b)
{
    const IMAGE_DOS_HEADER *dos = (const IMAGE_DOS_HEADER *)b;
    const IMAGE_NT_HEADERS *nt;

    if (dos->e_magic != IMAGE_DOS_SIGNATURE || dos->e_lfanew <= 0)
        return NULL;
    nt = (const IMAGE_NT_HEADERS *)(b + dos->e_lfanew);
    return nt->Signature == IMAGE_NT_SIGNATURE ? nt : NULL;
}

/* The image's directory entry `i`, when it lies inside the image. */
static const IMAGE_DATA_DIRECTORY *image_dir(const IMAGE_NT_HEADERS *nt, WORD i)
{
    const IMAGE_DATA_DIRECTORY *d;
    if (i >= nt->OptionalHeader.NumberOfRvaAndSizes)
        return NULL;
    d = &nt->OptionalHeader.DataDirectory[i];
    if (d->VirtualAddress == 0 ||
        d->VirtualAddress >= nt->OptionalHeader.SizeOfImage ||
        d->Size > nt->OptionalHeader.SizeOfImage - d->VirtualAddress)
        return NULL;
    return d;
}

/* True when `offset` lies in an executable section of the image at `base`:
 * a wrong offset is an error in the child, never a jump into data. */
static bool offset_is_code(HMODULE base, uint64_t offset)
{
    const IMAGE_NT_HEADERS *nt = nt_headers((const unsigned char *)base);
    const IMAGE_SECTION_HEADER *sec;
    const unsigned char *opt;
    uint64_t start, size;
    WORD i;

    if (nt == NULL || offset >= nt->OptionalHeader.SizeOfImage)
        return false;
    /* IMAGE_FIRST_SECTION, without its cast that drops const. */
    opt = (const unsigned char *)&nt->OptionalHeader;
    sec = (const IMAGE_SECTION_HEADER *)(opt +
                                         nt->FileHeader.SizeOfOptionalHeader);
    for (i = 0; i < nt->FileHeader.NumberOfSections; i++, sec++) {
        start = sec->VirtualAddress;
        size =
            sec->Misc.VirtualSize ? sec->Misc.VirtualSize : sec->SizeOfRawData;
        if (offset >= start && offset < start + size)
            return (sec->Characteristics & IMAGE_SCN_MEM_EXECUTE) != 0;
    }
    return false;
}

/* An export of the image at m is at `offset` (a forwarder is a string, not
 * code, and is no match). */
static bool offset_is_export(HMODULE m, uint64_t offset)
{
    const unsigned char *b = (const unsigned char *)m;
    const IMAGE_NT_HEADERS *nt = nt_headers(b);
    const IMAGE_DATA_DIRECTORY *d;
    const IMAGE_EXPORT_DIRECTORY *ex;
    const DWORD *fns;
    DWORD i;

    if (nt == NULL ||
        (d = image_dir(nt, IMAGE_DIRECTORY_ENTRY_EXPORT)) == NULL ||
        d->Size < sizeof *ex)
        return false;
    ex = (const IMAGE_EXPORT_DIRECTORY *)(const void *)(b + d->VirtualAddress);
    if (ex->AddressOfFunctions >= nt->OptionalHeader.SizeOfImage ||
        ex->NumberOfFunctions >
            (nt->OptionalHeader.SizeOfImage - ex->AddressOfFunctions) /
                sizeof(DWORD))
        return false;
    fns = (const DWORD *)(const void *)(b + ex->AddressOfFunctions);
    for (i = 0; i < ex->NumberOfFunctions; i++)
        if (fns[i] == offset && (fns[i] < d->VirtualAddress ||
                                 fns[i] - d->VirtualAddress >= d->Size))
            return true;
    return false;
}

#if !defined(UNW_FLAG_CHAININFO)
#define UNW_FLAG_CHAININFO 0x4
#endif

/* True when a function of the image at m begins at `offset`: the start of
 * a primary entry of its exception directory (x64 and ARM64 compilers give
 * one to every function that is not a trivial leaf; a chained entry
 * describes a fragment split off another function and is no entry), or an
 * export. 32-bit x86 has no such table: exports only. */
static bool offset_is_entry(HMODULE m, uint64_t offset)
{
#if defined(_M_X64) || defined(__x86_64__)
    DWORD64 image = 0;
    DWORD64 pc = (DWORD64)(uintptr_t)m + offset;
    PRUNTIME_FUNCTION rf = RtlLookupFunctionEntry(pc, &image, NULL);
    const IMAGE_NT_HEADERS *nt = nt_headers((const unsigned char *)m);

    /* An odd UnwindData points at another entry (a chained fragment). */
    if (rf != NULL && nt != NULL && image == (DWORD64)(uintptr_t)m &&
        rf->BeginAddress == offset && (rf->UnwindData & 1u) == 0 &&
        rf->UnwindData < nt->OptionalHeader.SizeOfImage) {
        const unsigned char *ui = (const unsigned char *)m + rf->UnwindData;
        if (((ui[0] >> 3) & UNW_FLAG_CHAININFO) == 0)
            return true;
    }
#elif defined(_M_ARM64) || defined(__aarch64__)
    DWORD64 image = 0;
    DWORD64 pc = (DWORD64)(uintptr_t)m + offset;
    PRUNTIME_FUNCTION rf = RtlLookupFunctionEntry(pc, &image, NULL);
    if (rf != NULL && image == (DWORD64)(uintptr_t)m &&
        rf->BeginAddress == offset)
        return true;
#endif
    return offset_is_export(m, offset);
}

/* The image of a loaded module is a DLL (not a program). */
static bool image_is_dll(HMODULE m)
{
    const IMAGE_NT_HEADERS *nt = nt_headers((const unsigned char *)m);
    return nt != NULL && (nt->FileHeader.Characteristics & IMAGE_FILE_DLL);
}

int mproc__os_resolve(const char *module, uint64_t offset, void **fn)
{
    wchar_t *want;
    wchar_t *self = NULL;
    wchar_t *got = NULL;
    HMODULE m = NULL;
    int rc = MPROC_ERESOLVE;
    int err = 0;

    if (module == NULL || fn == NULL)
        return MPROC_EINVAL;
    want = mproc__win_wide(module, &err);
    if (want == NULL)
        return MPROC_ERESOLVE;
    self = module_path(NULL);
    /* Only a module this process has loaded already: loading one would
     * run its DllMain before any check (docs/security.md). */
    if (self != NULL && same_path(self, want)) {
        m = GetModuleHandleW(NULL);
    } else if (!GetModuleHandleExW(GET_MODULE_HANDLE_EX_FLAG_UNCHANGED_REFCOUNT,
                                   want, &m) ||
               !image_is_dll(m)) {
        /* Not loaded, or another program's executable. */
        goto out;
    }
    if (m == NULL)
        goto out;
    /* The module found must be that very file, not one of the same name
     * found elsewhere on the search path. */
    got = module_path(m);
    if (got == NULL || !same_path(got, want))
        goto out;
    if (!offset_is_code(m, offset) || !offset_is_entry(m, offset))
        goto out;
    *fn = (void *)((unsigned char *)m + offset);
    rc = 0;
out:
    free(got);
    free(self);
    free(want);
    return rc;
}

/* ---------------------------------------------------------------------------
 * The bootstrap's checks (docs/security.md)
 *
 * The bootstrap channel is a named pipe whose both ends the parent made
 * (mproc__os_chan_pair): it keeps the server end and the child inherits
 * the client end. The system records the server's process, so "the
 * server is my parent, running as my user" proves that the frame comes
 * from the process that started this one, not from a grandparent's
 * inherited handle, an anonymous pipe on standard input (whose read end is
 * a server end) or another process's pipe.
 *
 * Windows has no set-id programs: a file gives no privilege to whoever
 * runs it. The nearest case is a child more privileged than its parent
 * (elevated through UAC, which passes no handles, so the channel check
 * refuses it already); the child also compares integrity levels and
 * refuses one above its parent's.
 */

typedef struct token_facts {
    union {
        TOKEN_USER user;
        unsigned char space[sizeof(TOKEN_USER) + SECURITY_MAX_SID_SIZE];
    } u;
    DWORD integrity; /* the mandatory label's RID */
} token_facts;

static bool token_facts_of(HANDLE process, token_facts *t)
{
    union {
        TOKEN_MANDATORY_LABEL label;
        unsigned char
            space[sizeof(TOKEN_MANDATORY_LABEL) + SECURITY_MAX_SID_SIZE];
    } il;
    HANDLE token;
    DWORD len = 0;
    bool ok;
    PUCHAR count;

    if (!OpenProcessToken(process, TOKEN_QUERY, &token))
        return false;
    ok =
        GetTokenInformation(token, TokenUser, &t->u, sizeof t->u, &len) &&
        GetTokenInformation(token, TokenIntegrityLevel, &il, sizeof il, &len) &&
        IsValidSid(il.label.Label.Sid);
    CloseHandle(token);
    if (!ok)
        return false;
    count = GetSidSubAuthorityCount(il.label.Label.Sid);
    if (count == NULL || *count == 0)
        return false;
    t->integrity = *GetSidSubAuthority(il.label.Label.Sid, *count - 1u);
    return true;
}

/* The facts of this process and of its parent. */
static bool facts_self_and_parent(token_facts *self, token_facts *parent)
{
    int64_t ppid = mproc__os_getppid();
    HANDLE h;
    bool ok;

    if (ppid <= 0 || ppid > 0xFFFFFFFF ||
        !token_facts_of(GetCurrentProcess(), self))
        return false;
    h = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, (DWORD)ppid);
    if (h == NULL)
        return false;
    ok = token_facts_of(h, parent);
    CloseHandle(h);
    return ok;
}

int mproc__os_secure_exec(void)
{
    token_facts self, parent;
    if (!facts_self_and_parent(&self, &parent))
        return 1; /* cannot be compared: refused */
    return self.integrity > parent.integrity ? 1 : 0;
}

int mproc__os_boot_channel(mproc__handle h, int64_t *parent)
{
    HANDLE ph = mproc__win_h(h);
    int64_t ppid = mproc__os_getppid();
    token_facts self, other;
    DWORD flags = 0;
    ULONG server = 0;

    if (parent == NULL || h == MPROC__BADHANDLE || h == 0 || ppid <= 0)
        return MPROC_EPERM;
    /* The child's end is a client end; the pipe's server is the parent. */
    if (GetFileType(ph) != FILE_TYPE_PIPE ||
        !GetNamedPipeInfo(ph, &flags, NULL, NULL, NULL) ||
        (flags & PIPE_SERVER_END) != 0 ||
        !GetNamedPipeServerProcessId(ph, &server) || (int64_t)server != ppid)
        return MPROC_EPERM;
    if (!facts_self_and_parent(&self, &other) ||
        !EqualSid(self.u.user.User.Sid, other.u.user.User.Sid))
        return MPROC_EPERM;
    *parent = ppid;
    return 0;
}

/* ---------------------------------------------------------------------------
 * Exit
 */

void mproc__os_exit(int code)
{
    /* Like _exit: no atexit handlers and no DLL detach code, which could
     * deadlock on a lock another thread held when it was stopped. */
    TerminateProcess(GetCurrentProcess(), (UINT)code);
    ExitProcess((UINT)code);
}
