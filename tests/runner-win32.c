/* The Win32 part of the runner: run a test in a child process, inside a job
 * object that kills whatever the test started, with a timeout. Independent
 * of mproc, so that the harness does not rely on the code under test. */
#include "harness.h"

#include <windows.h>

#include <fcntl.h>
#include <io.h>

static void append_arg(wchar_t *cmd, size_t cap, const wchar_t *arg)
{
    /* Test names and methods hold no quotes or spaces; quote anyway for the
     * executable's path. */
    wcsncat(cmd, L" \"", cap - wcslen(cmd) - 1);
    wcsncat(cmd, arg, cap - wcslen(cmd) - 1);
    wcsncat(cmd, L"\"", cap - wcslen(cmd) - 1);
}

int th_platform_run(const char *const *args, int timeout_ms, bool *timed_out,
                    bool *crashed, int *status)
{
    return th_platform_run_exe(NULL, args, timeout_ms, timed_out, crashed,
                               status);
}

int th_platform_run_exe(const char *name, const char *const *args,
                        int timeout_ms, bool *timed_out, bool *crashed,
                        int *status)
{
    wchar_t exe[MAX_PATH * 2];
    wchar_t cmd[4096];
    wchar_t warg[512];
    STARTUPINFOW si;
    PROCESS_INFORMATION pi;
    JOBOBJECT_EXTENDED_LIMIT_INFORMATION lim;
    HANDLE job;
    DWORD code = 0, w;
    size_t i;

    if (GetModuleFileNameW(NULL, exe, MAX_PATH * 2) == 0)
        return -1;
    if (name != NULL) {
        wchar_t *slash = wcsrchr(exe, L'\\');
        size_t dir = slash ? (size_t)(slash - exe) + 1 : 0;
        if (MultiByteToWideChar(CP_UTF8, 0, name, -1, exe + dir,
                                (int)(MAX_PATH * 2 - dir)) == 0)
            return -1;
    }
    cmd[0] = L'\0';
    wcsncat(cmd, L"\"", 4095);
    wcsncat(cmd, exe, 4095 - wcslen(cmd));
    wcsncat(cmd, L"\"", 4095 - wcslen(cmd));
    for (i = 0; args[i] != NULL; i++) {
        if (MultiByteToWideChar(CP_UTF8, 0, args[i], -1, warg, 512) == 0)
            return -1;
        append_arg(cmd, 4096, warg);
    }

    job = CreateJobObjectW(NULL, NULL);
    if (job == NULL)
        return -1;
    memset(&lim, 0, sizeof lim);
    lim.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
    SetInformationJobObject(job, JobObjectExtendedLimitInformation, &lim,
                            sizeof lim);

    memset(&si, 0, sizeof si);
    si.cb = sizeof si;
    if (!CreateProcessW(exe, cmd, NULL, NULL, FALSE, CREATE_SUSPENDED, NULL,
                        NULL, &si, &pi)) {
        CloseHandle(job);
        return -1;
    }
    AssignProcessToJobObject(job, pi.hProcess);
    ResumeThread(pi.hThread);
    CloseHandle(pi.hThread);

    *timed_out = false;
    w = WaitForSingleObject(pi.hProcess,
                            timeout_ms < 0 ? INFINITE : (DWORD)timeout_ms);
    if (w == WAIT_TIMEOUT) {
        *timed_out = true;
        TerminateProcess(pi.hProcess, 1);
        WaitForSingleObject(pi.hProcess, INFINITE);
    }
    GetExitCodeProcess(pi.hProcess, &code);
    CloseHandle(pi.hProcess);
    /* Closing the job kills whatever the test left behind. */
    CloseHandle(job);
    /* An NTSTATUS error (0xC...) is a crash; abort() exits with 3. */
    *crashed =
        !*timed_out && ((code & 0xC0000000u) == 0xC0000000u || code == 3);
    *status = (int)code;
    return 0;
}

int64_t th_platform_now_ms(void)
{
    /* Not GetTickCount64: it moves in 10-16 ms steps on Windows, so a
     * 100 ms wait could measure as 94 ms and fail a lower bound. */
    LARGE_INTEGER f, c;
    if (!QueryPerformanceFrequency(&f) || f.QuadPart <= 0)
        return (int64_t)GetTickCount64();
    QueryPerformanceCounter(&c);
    return (int64_t)(c.QuadPart / f.QuadPart * 1000 +
                     c.QuadPart % f.QuadPart * 1000 / f.QuadPart);
}

int64_t th_platform_now_ns(void)
{
    LARGE_INTEGER f, c;
    if (!QueryPerformanceFrequency(&f) || f.QuadPart <= 0)
        return (int64_t)GetTickCount64() * 1000000;
    QueryPerformanceCounter(&c);
    return (int64_t)(c.QuadPart / f.QuadPart * 1000000000 +
                     c.QuadPart % f.QuadPart * 1000000000 / f.QuadPart);
}

void th_platform_sleep_ms(int ms)
{
    Sleep((DWORD)ms);
}

int th_platform_open_handles(void)
{
    DWORD n = 0;
    if (!GetProcessHandleCount(GetCurrentProcess(), &n))
        return -1;
    return (int)n;
}

const char *th_platform_name(void)
{
    return "win32";
}

int th_platform_setenv(const char *name, const char *value)
{
    /* The C runtime's copy (getenv) and the process's block (what
     * CreateProcess hands to children). */
    if (_putenv_s(name, value != NULL ? value : "") != 0)
        return -1;
    return SetEnvironmentVariableA(name, value) ? 0 : -1;
}

static int saved_std[3] = {-1, -1, -1};

int th_platform_std_close(void)
{
    int fd;
    /* All copies first: a copy takes the lowest free number, which a
     * closed standard one would be. */
    for (fd = 0; fd < 3; fd++)
        saved_std[fd] = _dup(fd);
    /* The runtime clears the standard handle with the descriptor. */
    for (fd = 0; fd < 3; fd++)
        (void)_close(fd);
    return 0;
}

void th_platform_std_restore(void)
{
    int fd;
    for (fd = 0; fd < 3; fd++) {
        if (saved_std[fd] < 0)
            continue;
        (void)_dup2(saved_std[fd], fd);
        (void)_close(saved_std[fd]);
        saved_std[fd] = -1;
    }
}

int th_platform_std_open(void)
{

    static const DWORD which[3] = {STD_INPUT_HANDLE, STD_OUTPUT_HANDLE,
                                   STD_ERROR_HANDLE};
    DWORD flags;
    int i, n = 0;
    for (i = 0; i < 3; i++) {
        HANDLE h = GetStdHandle(which[i]);
        if (h != NULL && h != INVALID_HANDLE_VALUE &&
            GetHandleInformation(h, &flags))
            n++;
    }
    return n;
}

bool th_platform_is_wine(void)
{
    HMODULE nt = GetModuleHandleW(L"ntdll.dll");
    return nt != NULL && GetProcAddress(nt, "wine_get_version") != NULL;
}

bool th_platform_is_root(void)
{
    return false; /* no tests need an administrator */
}

int th_platform_pin_to_one_cpu(void)
{
    DWORD_PTR mine = 0, sys = 0, one;
    if (!GetProcessAffinityMask(GetCurrentProcess(), &mine, &sys) || !mine)
        return -1;
    one = mine & (~mine + 1); /* the lowest CPU this process may use */
    return SetProcessAffinityMask(GetCurrentProcess(), one) ? 0 : -1;
}

int64_t th_platform_now_us(void)
{
    LARGE_INTEGER f, c;
    if (!QueryPerformanceFrequency(&f) || f.QuadPart <= 0)
        return (int64_t)GetTickCount64() * 1000;
    QueryPerformanceCounter(&c);
    return (int64_t)(c.QuadPart / f.QuadPart * 1000000 +
                     c.QuadPart % f.QuadPart * 1000000 / f.QuadPart);
}

int th_platform_pid_namespace(int (*fn)(void *), void *arg, const char **why)
{
    (void)fn;
    (void)arg;
    *why = "Windows cannot choose process ids (no pid namespaces)";
    return -1;
}

int th_platform_next_pid(int64_t pid)
{
    (void)pid;
    return -1;
}
