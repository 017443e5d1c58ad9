/*
 * Win32 backend: byte channels over named pipes.
 *
 * Why named pipes: anonymous pipes (CreatePipe) cannot do overlapped I/O, so
 * a read could not be given up after a timeout, and polling them needs a
 * thread per wait. A named pipe with one instance, connected at once to a
 * client opened by this process, is a private pipe with overlapped I/O.
 *
 * Names are \\.\pipe\mproc-<pid>-<counter>-<128 random bits>. Pipe names
 * can be listed by anyone, so the name is not what keeps others out: the
 * pipe has one instance, which our own client takes at once; if anyone else
 * got there first our CreateFileW fails and the pipe is thrown away.
 * FILE_FLAG_FIRST_PIPE_INSTANCE and PIPE_REJECT_REMOTE_CLIENTS are set for
 * Windows (Wine accepts and ignores both, WINE-NOTES).
 *
 * Two kinds: chan_pair makes byte-mode pipes (the bootstrap channel, the
 * queue's doorbell), rec_pair message-mode ones (PIPE_TYPE_MESSAGE, both
 * ends reading in PIPE_READMODE_MESSAGE), the Pipe's record channels: one
 * WriteFile is one message, one ReadFile takes at most one. A read whose
 * buffer is shorter than the message fails with ERROR_MORE_DATA, leaving
 * the rest in the pipe; the reads here then discard the rest (what a
 * SOCK_SEQPACKET recv does with a record longer than its buffers), so that
 * every read starts at a message's beginning. A scatter read or gather
 * write of up to a record's size goes through one buffer, so that it is
 * one ReadFile or WriteFile: one message, taken whole or not at all.
 *
 * Readiness: a zero-byte overlapped ReadFile completes when data arrives or
 * the peer closes, without consuming anything (message mode: it fails with
 * ERROR_MORE_DATA; a zero-length message, which no mproc writer sends, it
 * consumes). chan_poll and wait_many wait on it and cancel it (CancelIoEx)
 * on timeout; PeekNamedPipe gives the answer without waiting. Both hold
 * under Wine 8 as on Windows.
 *
 * Map: per-thread I/O event; one overlapped operation; pair (byte and
 * message mode); read, scatter read and peek; write; gather write;
 * readiness (peek, zero-byte read); poll; wait_many.
 */
#include "win32.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What a writer may queue before a reader takes it: like a POSIX socket
 * pair's (about 200 KiB on Linux), so that a process may send itself a few
 * messages before reading them on both backends. */
#define PIPE_BUFFER ((size_t)256 * 1024)
/* The largest single ReadFile / WriteFile (a DWORD count). */
#define IO_CHUNK ((size_t)1 << 30)
/* The largest record of a record channel (backend.h: 64 KiB + 1 bytes):
 * a scatter read or gather write up to this size goes through one buffer
 * (one message). */
#define REC_MAX ((size_t)64 * 1024 + 1)

/* ---------------------------------------------------------------------------
 * A manual-reset event per thread for blocking overlapped I/O, made on first
 * use and closed when the thread ends (fiber-local storage has a destructor;
 * thread-local storage has none).
 */

static INIT_ONCE fls_once = INIT_ONCE_STATIC_INIT;
static DWORD fls_index = FLS_OUT_OF_INDEXES;

static void WINAPI event_free(void *ev)
{
    if (ev != NULL)
        CloseHandle(ev);
}

static BOOL CALLBACK fls_init(INIT_ONCE *once, void *param, void **ctx)
{
    (void)once;
    (void)param;
    (void)ctx;
    fls_index = FlsAlloc(event_free);
    return TRUE;
}

#if !defined(MPROC_STATIC)
/* The DLL build: a FreeLibrary of this DLL (not the process's end) frees
 * the slot, which runs its destructor for every thread now, while the code
 * is still there, instead of at each thread's end after the unload. */
BOOL WINAPI DllMain(HINSTANCE inst, DWORD reason, void *reserved);
BOOL WINAPI DllMain(HINSTANCE inst, DWORD reason, void *reserved)
{
    (void)inst;
    if (reason == DLL_PROCESS_DETACH && reserved == NULL &&
        fls_index != FLS_OUT_OF_INDEXES)
        FlsFree(fls_index);
    return TRUE;
}
#endif

/* The calling thread's event, or NULL (then the caller makes its own). */
static HANDLE thread_event(void)
{
    HANDLE ev;

    InitOnceExecuteOnce(&fls_once, fls_init, NULL, NULL);
    if (fls_index == FLS_OUT_OF_INDEXES)
        return NULL;
    ev = FlsGetValue(fls_index);
    if (ev == NULL) {
        ev = CreateEventW(NULL, TRUE, FALSE, NULL);
        if (ev != NULL && !FlsSetValue(fls_index, ev)) {
            CloseHandle(ev);
            ev = NULL;
        }
    }
    return ev;
}

/* ---------------------------------------------------------------------------
 * One overlapped ReadFile / WriteFile, waited for in full. Returns TRUE with
 * the count, or FALSE with GetLastError() set.
 */

static BOOL io_wait(HANDLE h, bool write, void *buf, DWORD n, DWORD *done)
{
    OVERLAPPED ov;
    HANDLE own = NULL;
    BOOL ok;
    DWORD err;

    memset(&ov, 0, sizeof ov);
    ov.hEvent = thread_event();
    if (ov.hEvent == NULL) {
        own = CreateEventW(NULL, TRUE, FALSE, NULL);
        if (own == NULL)
            return FALSE;
        ov.hEvent = own;
    }
    if (write)
        ok = WriteFile(h, buf, n, NULL, &ov);
    else
        ok = ReadFile(h, buf, n, NULL, &ov);
    /* ERROR_MORE_DATA (message mode): done, with a count. */
    if (ok || GetLastError() == ERROR_IO_PENDING ||
        GetLastError() == ERROR_MORE_DATA)
        ok = GetOverlappedResult(h, &ov, done, TRUE);
    if (own != NULL) {
        err = GetLastError();
        CloseHandle(own);
        SetLastError(err);
    }
    return ok;
}

/* ---------------------------------------------------------------------------
 * Pair
 */

static volatile LONG pipe_counter;

static int make_name(wchar_t *name, size_t cap)
{
    uint64_t r[2];
    int rc = mproc__win_random(r, sizeof r);

    if (rc != 0)
        return rc;
    swprintf(name, cap, L"\\\\.\\pipe\\mproc-%lu-%ld-%016llx%016llx",
             (unsigned long)GetCurrentProcessId(),
             (long)InterlockedIncrement(&pipe_counter),
             (unsigned long long)r[0], (unsigned long long)r[1]);
    return 0;
}

/* One attempt: 0, a negative code, or 1 to try another name. msg: a
 * message-mode pipe, both ends reading messages. */
static int pair_once(mproc__handle h[2], bool duplex, bool msg)
{
    wchar_t name[96];
    SECURITY_ATTRIBUTES *pipe_sa;
    HANDLE server, client;
    OVERLAPPED ov;
    DWORD open_mode, access, err, dummy, mode;
    BOOL ok;
    int rc;

    if ((rc = make_name(name, sizeof name / sizeof name[0])) != 0)
        return rc;
    /* Without it no pipe is made: the default DACL of a named pipe lets
     * everyone read (docs/security.md). */
    if ((rc = mproc__win_owner_sa(&pipe_sa)) != 0)
        return rc;
    open_mode = (duplex ? PIPE_ACCESS_DUPLEX : PIPE_ACCESS_INBOUND) |
                FILE_FLAG_OVERLAPPED | FILE_FLAG_FIRST_PIPE_INSTANCE;
    mode = msg ? PIPE_TYPE_MESSAGE | PIPE_READMODE_MESSAGE
               : PIPE_TYPE_BYTE | PIPE_READMODE_BYTE;
    server = CreateNamedPipeW(
        name, open_mode, mode | PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS, 1,
        (DWORD)PIPE_BUFFER, (DWORD)PIPE_BUFFER, 0, pipe_sa);
    if (server == INVALID_HANDLE_VALUE) {
        err = GetLastError();
        /* The name exists already (Windows: access denied with
         * FILE_FLAG_FIRST_PIPE_INSTANCE): another name. */
        if (err == ERROR_ACCESS_DENIED || err == ERROR_PIPE_BUSY)
            return 1;
        return mproc__os_error((long)err);
    }
    /* The write end of a one-way pair may query the pipe (attributes) but
     * not read it. */
    access = duplex ? GENERIC_READ | GENERIC_WRITE
                    : GENERIC_WRITE | FILE_READ_ATTRIBUTES;
    client = CreateFileW(name, access, 0, NULL, OPEN_EXISTING,
                         FILE_FLAG_OVERLAPPED | SECURITY_SQOS_PRESENT |
                             SECURITY_IDENTIFICATION,
                         NULL);
    if (client == INVALID_HANDLE_VALUE) {
        err = GetLastError();
        CloseHandle(server);
        /* Someone else took the only instance: not our pipe any more. */
        if (err == ERROR_PIPE_BUSY)
            return 1;
        return mproc__os_error((long)err);
    }
    /* A client opens in byte read mode; a record channel's reads take
     * messages at both ends (the write end's too, so that chan_records
     * tells the kind from any end; GENERIC_WRITE may set it). */
    mode = PIPE_READMODE_MESSAGE;
    if (msg && !SetNamedPipeHandleState(client, &mode, NULL, NULL)) {
        err = GetLastError();
        CloseHandle(client);
        CloseHandle(server);
        return mproc__os_error((long)err);
    }
    /* The client is connected already; ConnectNamedPipe says so. */
    memset(&ov, 0, sizeof ov);
    ov.hEvent = thread_event();
    ok = ConnectNamedPipe(server, &ov);
    err = ok ? ERROR_SUCCESS : GetLastError();
    if (err == ERROR_IO_PENDING) {
        /* Not expected (the client is there); wait it out, on the pipe
         * handle itself when there is no event, since the OVERLAPPED
         * lives on this stack. */
        if (!GetOverlappedResult(server, &ov, &dummy, TRUE))
            err = GetLastError();
        else
            err = ERROR_SUCCESS;
    }
    if (err != ERROR_SUCCESS && err != ERROR_PIPE_CONNECTED) {
        CloseHandle(client);
        CloseHandle(server);
        return mproc__os_error((long)err);
    }
    h[0] = mproc__win_mh(server);
    h[1] = mproc__win_mh(client);
    return 0;
}

static int make_pair(mproc__handle h[2], bool duplex, bool msg)
{
    int rc = 1;
    int tries;

    if (h == NULL)
        return MPROC_EINVAL;
    for (tries = 0; tries < 8 && rc == 1; tries++)
        rc = pair_once(h, duplex, msg);
    return rc == 1 ? MPROC_EBUSY : rc;
}

int mproc__os_chan_pair(mproc__handle h[2], bool duplex)
{
    return make_pair(h, duplex, false);
}

/* Record channels: message-mode pipes (see the top of this file). */
int mproc__os_rec_pair(mproc__handle h[2], bool duplex)
{
    return make_pair(h, duplex, true);
}

/* A record channel when this handle reads messages (which needs a
 * message-mode pipe): a message-mode pipe read in byte mode (a client
 * end opened without SetNamedPipeHandleState) reads across messages, a
 * byte stream. */
int mproc__os_chan_records(mproc__handle h)
{
    DWORD state = 0;

    if (h == MPROC__BADHANDLE || h == 0)
        return MPROC_EINVAL;
    if (!GetNamedPipeHandleState(mproc__win_h(h), &state, NULL, NULL, NULL,
                                 NULL, 0))
        return mproc__win_last_error();
    return (state & PIPE_READMODE_MESSAGE) != 0;
}

/* ---------------------------------------------------------------------------
 * Read and write
 */

static bool is_eof_error(DWORD err)
{
    return err == ERROR_BROKEN_PIPE || err == ERROR_PIPE_NOT_CONNECTED ||
           err == ERROR_NO_DATA || err == ERROR_HANDLE_EOF;
}

/* IO_STATUS_BLOCK and NtQueryInformationFile, as ntdll has them. */
typedef struct io_status {
    union {
        LONG status;
        void *pointer;
    } u;
    ULONG_PTR information;
} io_status;
typedef LONG(NTAPI *query_file_fn)(HANDLE, io_status *, void *, ULONG, int);

/* 1 when h was opened for synchronous I/O (its reads would ignore our
 * OVERLAPPED and block past a timeout), 0 when not, -1 when ntdll cannot
 * say. */
static int synchronous_io(HANDLE h)
{
    static query_file_fn query;
    static volatile LONG looked;
    io_status io;
    ULONG mode = 0;
    if (InterlockedCompareExchange(&looked, 1, 0) == 0) {
        HMODULE nt = GetModuleHandleW(L"ntdll.dll");
        if (nt != NULL)
            query = (query_file_fn)(void (*)(void))GetProcAddress(
                nt, "NtQueryInformationFile");
        InterlockedExchange(&looked, 2);
    }
    while (InterlockedCompareExchange(&looked, 2, 2) != 2)
        SwitchToThread();
    if (query == NULL)
        return -1;
    memset(&io, 0, sizeof io);
    if (query(h, &io, &mode, sizeof mode, 16 /* FileModeInformation */) < 0)
        return -1;
    /* FILE_SYNCHRONOUS_IO_ALERT, FILE_SYNCHRONOUS_IO_NONALERT */
    return (mode & 0x30u) != 0;
}

/* ---------------------------------------------------------------------------
 * Handles to a running process: the receiver pulls (backend.h)
 */

/* 1 when process `pid` runs as this process's user, 0 when it runs as
 * another, -1 when it cannot be told (gone, or no token to read). */
static int same_user(DWORD pid)
{
    union tu {
        TOKEN_USER user;
        unsigned char space[sizeof(TOKEN_USER) + SECURITY_MAX_SID_SIZE];
    } mine, its;
    HANDLE p, t;
    DWORD len = 0;
    BOOL ok;
    if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &t))
        return -1;
    ok = GetTokenInformation(t, TokenUser, &mine, sizeof mine, &len);
    CloseHandle(t);
    if (!ok)
        return -1;
    p = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, pid);
    if (p == NULL)
        return GetLastError() == ERROR_ACCESS_DENIED ? 0 : -1;
    ok = OpenProcessToken(p, TOKEN_QUERY, &t);
    CloseHandle(p);
    if (!ok)
        return GetLastError() == ERROR_ACCESS_DENIED ? 0 : -1;
    ok = GetTokenInformation(t, TokenUser, &its, sizeof its, &len);
    CloseHandle(t);
    if (!ok)
        return -1;
    return EqualSid(mine.user.User.Sid, its.user.User.Sid) ? 1 : 0;
}

int mproc__os_pass_prepare(mproc__handle chan, const mproc__handle *hs,
                           size_t n, int64_t *sender, int64_t *values)
{
    HANDLE me = GetCurrentProcess();
    DWORD flags = 0;
    ULONG peer = 0;
    size_t i;
    if (chan == MPROC__BADHANDLE || chan == 0 || (hs == NULL && n > 0) ||
        sender == NULL || (values == NULL && n > 0) || n > MPROC__PASS_MAX)
        return MPROC_EINVAL;
    /* The process that opened the other end: ours for a pair this program
     * made (its ends may have moved since), another program's for an
     * adopted pipe. */
    if (GetNamedPipeInfo(mproc__win_h(chan), &flags, NULL, NULL, NULL)) {
        BOOL got = (flags & PIPE_SERVER_END)
                       ? GetNamedPipeClientProcessId(mproc__win_h(chan), &peer)
                       : GetNamedPipeServerProcessId(mproc__win_h(chan), &peer);
        if (got && peer != GetCurrentProcessId() && same_user(peer) == 0)
            return MPROC_EPERM;
    }
    for (i = 0; i < n; i++) {
        HANDLE d = NULL;
        if (!DuplicateHandle(me, mproc__win_h(hs[i]), me, &d, 0, FALSE,
                             DUPLICATE_SAME_ACCESS)) {
            int rc = mproc__win_last_error();
            mproc__os_pass_abort(values, i);
            return rc;
        }
        values[i] = (int64_t)(intptr_t)d;
    }
    *sender = (int64_t)GetCurrentProcessId();
    return 0;
}

void mproc__os_pass_abort(const int64_t *values, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        CloseHandle((HANDLE)(intptr_t)values[i]);
}

int mproc__os_chan_write_pass(mproc__handle chan, const void *buf, size_t len,
                              const mproc__handle *hs, size_t n)
{
    (void)hs;
    (void)n; /* the values are in the frame */
    return mproc__os_chan_write(chan, buf, len);
}

int64_t mproc__os_chan_read_fds(mproc__handle chan, void *a, size_t na, void *b,
                                size_t nb, mproc__handle *fds, size_t cap,
                                size_t *nfds)
{
    (void)fds;
    (void)cap;
    if (nfds == NULL)
        return MPROC_EINVAL;
    *nfds = 0;
    if (na == 0)
        return mproc__os_chan_read(chan, b, nb);
    if (nb == 0)
        return mproc__os_chan_read(chan, a, na);
    return mproc__os_chan_readv(chan, a, na, b, nb);
}

int mproc__os_pass_take(int64_t sender, const int64_t *values, size_t n,
                        const mproc__handle *rx, size_t nrx, mproc__handle *out)
{
    HANDLE src;
    size_t i;
    int rc = 0;
    (void)rx;
    if (n == 0 || n > MPROC__PASS_MAX || out == NULL || values == NULL ||
        nrx != 0)
        return MPROC_EINVAL;
    if (sender <= 0 || sender > (int64_t)0xFFFFFFFF)
        return MPROC_EBADMSG;
    src = OpenProcess(PROCESS_DUP_HANDLE, FALSE, (DWORD)sender);
    if (src == NULL)
        return GetLastError() == ERROR_ACCESS_DENIED ? MPROC_EPERM
                                                     : MPROC_EBADMSG;
    for (i = 0; i < n; i++) {
        HANDLE d = NULL;
        if (!DuplicateHandle(src, (HANDLE)(intptr_t)values[i],
                             GetCurrentProcess(), &d, 0, FALSE,
                             DUPLICATE_SAME_ACCESS | DUPLICATE_CLOSE_SOURCE)) {
            rc = MPROC_EBADMSG; /* not there (any more) */
            break;
        }
        out[i] = mproc__win_mh(d);
    }
    if (rc < 0)
        while (i-- > 0)
            CloseHandle(mproc__win_h(out[i]));
    CloseHandle(src);
    return rc;
}

int mproc__os_chan_adopt(mproc__handle handle, mproc__handle *h)
{
    HANDLE p = mproc__win_h(handle);
    DWORD flags;
    if (h == NULL || handle == MPROC__BADHANDLE || handle == 0 ||
        !GetHandleInformation(p, &flags))
        return MPROC_EINVAL;
    /* A named pipe (an anonymous pipe is one too, but synchronous), and
     * one the overlapped calls of this file can drive. */
    if (GetFileType(p) != FILE_TYPE_PIPE ||
        !GetNamedPipeInfo(p, NULL, NULL, NULL, NULL) || synchronous_io(p) == 1)
        return MPROC_EINVAL;
    if (!SetHandleInformation(p, HANDLE_FLAG_INHERIT, 0))
        return mproc__win_last_error();
    *h = handle;
    return 0;
}

/* Discards the rest of a message that a read took the first part of
 * (ERROR_MORE_DATA), as far as it is in the pipe now: a record longer than
 * the reader's buffers loses its rest, as on a SOCK_SEQPACKET socket. Only
 * a peer that does not speak the framing sends one (the Pipe's records fit
 * its buffers), and the Pipe closes the end on it (MPROC_EFRAMING), so a
 * rest still being written (a message larger than the pipe holds) is not
 * waited for. */
static void drop_rest(HANDLE h)
{
    unsigned char junk[4096];
    DWORD avail, got;

    for (;;) {
        avail = 0;
        if (!PeekNamedPipe(h, NULL, 0, NULL, &avail, NULL) || avail == 0)
            return;
        got = 0;
        if (io_wait(h, false, junk, avail < sizeof junk ? avail : sizeof junk,
                    &got))
            return; /* the end of the message */
        if (GetLastError() != ERROR_MORE_DATA)
            return;
    }
}

/* One ReadFile of up to n bytes (at most one message in message mode):
 * the count, 0 at end-of-file, or a negative code. The rest of a longer
 * message is dropped, or with `more` left for the next read (*more set). */
static int64_t read_once(HANDLE h, void *buf, size_t n, bool *more)
{
    DWORD got, err;

    for (;;) {
        got = 0;
        if (io_wait(h, false, buf, (DWORD)n, &got)) {
            /* Zero bytes without an error: a zero-length write (byte
             * mode) or message, which our writers never make, and which
             * the readiness wait would consume unseen (the top of this
             * file); skip it rather than report a false end-of-file. */
            if (got > 0)
                return (int64_t)got;
            continue;
        }
        err = GetLastError();
        if (err == ERROR_MORE_DATA) {
            if (more != NULL)
                *more = true;
            else
                drop_rest(h);
            return (int64_t)got;
        }
        /* Context override: a broken pipe on read is end-of-file. */
        if (is_eof_error(err))
            return 0;
        return mproc__os_error((long)err);
    }
}

int64_t mproc__os_chan_read(mproc__handle h, void *buf, size_t n)
{
    if (h == MPROC__BADHANDLE || h == 0 || buf == NULL || n == 0)
        return MPROC_EINVAL;
    /* A read from a byte-mode pipe completes when its buffer is full or the
     * writer's whole WriteFile is done: asked for the rest of a large
     * message, it would wait for all of it, past the receive's timeout.
     * A pipe's worth at a time returns as soon as that much came. (A
     * record is smaller.) */
    if (n > PIPE_BUFFER)
        n = PIPE_BUFFER;
    return read_once(mproc__win_h(h), buf, n, NULL);
}

/* A pipe has no scatter read. Up to a record's size: one ReadFile into one
 * buffer, then copied apart, so that a message is taken whole by one call
 * (two reads would leave the rest of a record behind for whoever reads
 * next if this process were killed between them). Larger (byte mode, a
 * large frame): two reads, the second taking only what is there already,
 * so that the call blocks no longer than one read would. */
int64_t mproc__os_chan_readv(mproc__handle h, void *a, size_t na, void *b,
                             size_t nb)
{
    int64_t r, r2;
    DWORD avail = 0, state = 0;
    bool more = false;

    if ((a == NULL && na > 0) || (b == NULL && nb > 0) || na + nb == 0)
        return MPROC_EINVAL;
    if (na == 0)
        return mproc__os_chan_read(h, b, nb);
    if (nb == 0)
        return mproc__os_chan_read(h, a, na);
    if (h == MPROC__BADHANDLE || h == 0)
        return MPROC_EINVAL;
    if (na + nb <= REC_MAX && nb > 64) {
        unsigned char *t = malloc(na + nb);
        if (t == NULL)
            return MPROC_ENOMEM;
        r = read_once(mproc__win_h(h), t, na + nb, NULL);
        if (r > 0) {
            size_t k = (size_t)r < na ? (size_t)r : na;
            memcpy(a, t, k);
            if ((size_t)r > na)
                memcpy(b, t + na, (size_t)r - na);
        }
        free(t);
        return r;
    }
    /* A short tail (the one byte that tells a longer record): a read into
     * a that fills it is a message of that size, so a second read happens
     * only for a longer one, which is no record of ours. */
    r = read_once(mproc__win_h(h), a, na > PIPE_BUFFER ? PIPE_BUFFER : na,
                  &more);
    if (more) {
        r2 = read_once(mproc__win_h(h), b, nb, NULL);
        return r2 > 0 ? r + r2 : r;
    }
    if (r <= 0 || (size_t)r < na || nb <= 64)
        return r;
    /* Larger than a record: a byte stream's large frame (a message-mode
     * read that filled a ended its message). */
    if (!GetNamedPipeHandleState(mproc__win_h(h), &state, NULL, NULL, NULL,
                                 NULL, 0) ||
        (state & PIPE_READMODE_MESSAGE) != 0)
        return r;
    if (!PeekNamedPipe(mproc__win_h(h), NULL, 0, NULL, &avail, NULL) ||
        avail == 0)
        return r; /* the rest, or end-of-file, for the next read */
    r2 = mproc__os_chan_read(h, b, avail < nb ? avail : nb);
    if (r2 <= 0)
        return r; /* reported by the next read */
    return r + r2;
}

int64_t mproc__os_chan_peek(mproc__handle h, void *buf, size_t n,
                            int timeout_ms)
{
    int64_t deadline = mproc__deadline_ns(timeout_ms);
    DWORD got, err;
    int rc, left = timeout_ms;

    if (h == MPROC__BADHANDLE || h == 0 || buf == NULL || n == 0)
        return MPROC_EINVAL;
    if (n > IO_CHUNK)
        n = IO_CHUNK;
    for (;;) {
        got = 0;
        if (!PeekNamedPipe(mproc__win_h(h), buf, (DWORD)n, &got, NULL, NULL)) {
            err = GetLastError();
            /* Data written before the peer closed is still peeked; this
             * error comes once nothing is left. */
            if (is_eof_error(err))
                return MPROC_EEOF;
            return mproc__os_error((long)err);
        }
        if (got > 0)
            return (int64_t)got;
        if (left == 0)
            return 0;
        /* Empty: wait until data or end-of-file arrives, then peek it. */
        rc = mproc__os_chan_poll(h, left);
        if (rc <= 0)
            return rc;
        left = mproc__left_ms(deadline);
    }
}

int mproc__os_chan_write(mproc__handle h, const void *buf, size_t n)
{
    const unsigned char *p = buf;
    DWORD done = 0;
    DWORD err;
    size_t chunk;

    if (h == MPROC__BADHANDLE || h == 0 || (buf == NULL && n > 0))
        return MPROC_EINVAL;
    while (n > 0) {
        chunk = n > IO_CHUNK ? IO_CHUNK : n;
        /* WriteFile takes a non-const buffer it does not write to. */
        if (!io_wait(mproc__win_h(h), true, (void *)(uintptr_t)p, (DWORD)chunk,
                     &done)) {
            err = GetLastError();
            /* Context override: on write, the reader having gone is
             * EPIPE (ERROR_NO_DATA: the pipe is being closed). */
            if (is_eof_error(err))
                return MPROC_EPIPE;
            return mproc__os_error((long)err);
        }
        p += done;
        n -= done;
    }
    return 0;
}

/* A pipe has no gather write (WriteFileGather needs page-sized,
 * page-aligned buffers on a file). Up to a record's size: copied into one
 * buffer, one WriteFile, so that a record channel's record is one message.
 * Larger (byte mode, a large frame): two writes; an end has one user at a
 * time, so no other writer of ours comes between them, and a copy into one
 * buffer would cost more than the second call. */
int mproc__os_chan_writev(mproc__handle h, const void *a, size_t na,
                          const void *b, size_t nb)
{
    unsigned char *t;
    int rc;

    if ((a == NULL && na > 0) || (b == NULL && nb > 0))
        return MPROC_EINVAL;
    if (na > 0 && nb > 0 && na + nb <= REC_MAX) {
        t = malloc(na + nb);
        if (t == NULL)
            return MPROC_ENOMEM;
        memcpy(t, a, na);
        memcpy(t + na, b, nb);
        rc = mproc__os_chan_write(h, t, na + nb);
        free(t);
        return rc;
    }
    rc = mproc__os_chan_write(h, a, na);
    if (rc == 0)
        rc = mproc__os_chan_write(h, b, nb);
    return rc;
}

/* ---------------------------------------------------------------------------
 * Readiness
 */

/* 1 when a read would not block (data, or end-of-file), 0 if not, or a
 * negative code. */
static int peek(HANDLE h)
{
    DWORD avail = 0;
    DWORD err;

    if (PeekNamedPipe(h, NULL, 0, NULL, &avail, NULL))
        return avail > 0;
    err = GetLastError();
    if (is_eof_error(err))
        return 1;
    return mproc__os_error((long)err);
}

/* A pending zero-byte read on h, completed when h becomes readable. */
typedef struct zero_read {
    OVERLAPPED ov;
    HANDLE h;
    bool pending;
} zero_read;

static char zero_buf[1];

/* Starts the read: 0 (pending), 1 (readable already), or a negative
 * code. */
static int zero_start(zero_read *z, HANDLE h, HANDLE ev)
{
    DWORD err;

    memset(&z->ov, 0, sizeof z->ov);
    z->ov.hEvent = ev;
    z->h = h;
    z->pending = false;
    if (ReadFile(h, zero_buf, 0, NULL, &z->ov))
        return 1;
    err = GetLastError();
    if (err == ERROR_IO_PENDING) {
        z->pending = true;
        return 0;
    }
    if (is_eof_error(err) || err == ERROR_MORE_DATA)
        return 1;
    return mproc__os_error((long)err);
}

/* Cancels the read if it is still pending and waits until the system is
 * done with the OVERLAPPED (it lives on the caller's stack). */
static void zero_finish(zero_read *z)
{
    DWORD got;

    if (!z->pending)
        return;
    CancelIoEx(z->h, &z->ov);
    GetOverlappedResult(z->h, &z->ov, &got, TRUE);
    z->pending = false;
}

/* The time left until a deadline of mproc__deadline_ns, rounded up. */
static DWORD remaining(int64_t deadline)
{
    int left = mproc__left_ms(deadline);
    return left < 0 ? INFINITE : (DWORD)left;
}

int mproc__os_chan_poll(mproc__handle h, int timeout_ms)
{
    zero_read z;
    int64_t deadline;
    HANDLE ev, own = NULL;
    DWORD wait, got, err;
    int rc;

    if (h == MPROC__BADHANDLE || h == 0)
        return MPROC_EINVAL;
    rc = peek(mproc__win_h(h));
    if (rc != 0 || timeout_ms == 0)
        return rc;
    /* The thread's I/O event is free: no read or write of this thread is
     * in progress while it polls. */
    ev = thread_event();
    if (ev == NULL) {
        own = ev = CreateEventW(NULL, TRUE, FALSE, NULL);
        if (ev == NULL)
            return mproc__win_last_error();
    }
    deadline = mproc__deadline_ns(timeout_ms);
    for (;;) {
        rc = zero_start(&z, mproc__win_h(h), ev);
        if (rc == 0) {
            wait = WaitForSingleObject(ev, remaining(deadline));
            if (wait == WAIT_OBJECT_0) {
                /* Completed: data (message mode: ERROR_MORE_DATA) or
                 * end-of-file arrived. Success is data in byte mode, and
                 * in message mode a zero-length message the read took:
                 * the peek below tells. */
                z.pending = false;
                err = GetOverlappedResult(z.h, &z.ov, &got, FALSE)
                          ? ERROR_SUCCESS
                          : GetLastError();
                if (err == ERROR_MORE_DATA || is_eof_error(err))
                    rc = 1;
                else if (err != ERROR_SUCCESS && err != ERROR_OPERATION_ABORTED)
                    rc = mproc__os_error((long)err);
                if (rc != 0)
                    break;
            } else {
                zero_finish(&z);
                if (wait == WAIT_FAILED) {
                    rc = mproc__win_last_error();
                    break;
                }
            }
        } else if (rc < 0) {
            break;
        }
        /* Readable now, unless another reader took the data first. */
        rc = peek(mproc__win_h(h));
        if (rc != 0 || remaining(deadline) == 0)
            break;
        /* A read that completes at once on an empty pipe would spin. */
        Sleep(1);
    }
    if (own != NULL)
        CloseHandle(own);
    return rc;
}

/* Whether handle i is ready now: 1, 0 or a negative code. */
static int ready_now(HANDLE h, bool is_process)
{
    DWORD w;

    if (is_process) {
        w = WaitForSingleObject(h, 0);
        if (w == WAIT_FAILED)
            return mproc__win_last_error();
        return w == WAIT_OBJECT_0;
    }
    return peek(h);
}

static int scan(const mproc__handle *h, const bool *is_process, size_t n,
                bool *ready)
{
    int count = 0;
    int rc;
    size_t i;

    for (i = 0; i < n; i++) {
        ready[i] = false;
        /* A handle the caller cannot wait on is skipped, as on POSIX. */
        if (h[i] == MPROC__BADHANDLE || h[i] == 0)
            continue;
        rc = ready_now(mproc__win_h(h[i]), is_process != NULL && is_process[i]);
        if (rc < 0)
            return rc;
        ready[i] = rc > 0;
        count += rc;
    }
    return count;
}

/* More handles than one WaitForMultipleObjects takes: poll with a backoff
 * of up to 10 ms. */
static int wait_many_slow(const mproc__handle *h, const bool *is_process,
                          size_t n, int64_t deadline, bool *ready)
{
    DWORD nap = 1;
    DWORD left;
    int rc;

    for (;;) {
        rc = scan(h, is_process, n, ready);
        if (rc != 0)
            return rc;
        left = remaining(deadline);
        if (left == 0)
            return 0;
        Sleep(nap < left ? nap : left);
        if (nap < 10)
            nap++;
    }
}

int mproc__os_wait_many(const mproc__handle *h, const bool *is_process,
                        size_t n, int timeout_ms, bool *ready)
{
    HANDLE objs[MAXIMUM_WAIT_OBJECTS];
    HANDLE evs[MAXIMUM_WAIT_OBJECTS];
    zero_read z[MAXIMUM_WAIT_OBJECTS];
    size_t nobj, nev, i;
    int64_t deadline;
    DWORD wait;
    int rc;

    if ((h == NULL || ready == NULL) && n > 0)
        return MPROC_EINVAL;
    rc = scan(h, is_process, n, ready);
    if (rc != 0 || timeout_ms == 0)
        return rc;
    deadline = mproc__deadline_ns(timeout_ms);
    if (n > MAXIMUM_WAIT_OBJECTS)
        return wait_many_slow(h, is_process, n, deadline, ready);

    for (;;) {
        nobj = nev = 0;
        rc = 0;
        for (i = 0; i < n && rc == 0; i++) {
            if (h[i] == MPROC__BADHANDLE || h[i] == 0)
                continue;
            if (is_process != NULL && is_process[i]) {
                objs[nobj++] = mproc__win_h(h[i]);
                continue;
            }
            evs[nev] = CreateEventW(NULL, TRUE, FALSE, NULL);
            if (evs[nev] == NULL) {
                rc = mproc__win_last_error();
                break;
            }
            rc = zero_start(&z[nev], mproc__win_h(h[i]), evs[nev]);
            objs[nobj++] = evs[nev];
            nev++;
        }
        /* rc: 1 when a channel is readable already, < 0 on error. */
        if (rc == 0 && nobj > 0) {
            wait = WaitForMultipleObjects((DWORD)nobj, objs, FALSE,
                                          remaining(deadline));
            if (wait == WAIT_FAILED)
                rc = mproc__win_last_error();
        } else if (rc == 0) {
            /* Nothing to wait on: sleep out the timeout. */
            if (deadline < 0)
                rc = MPROC_EINVAL;
            else
                Sleep(remaining(deadline));
        }
        for (i = 0; i < nev; i++) {
            zero_finish(&z[i]);
            CloseHandle(evs[i]);
        }
        if (rc < 0)
            return rc;
        rc = scan(h, is_process, n, ready);
        if (rc != 0 || remaining(deadline) == 0)
            return rc;
    }
}

/* ---------------------------------------------------------------------------
 * Non-blocking read and write (backend.h): an overlapped operation that is
 * cancelled at once if it cannot complete now. A cancelled ReadFile on a
 * pipe loses no data (WINE-NOTES), and what a cancelled operation did
 * transfer is in its count.
 */

static int64_t io_nowait(HANDLE h, bool write, void *buf, DWORD n)
{
    OVERLAPPED ov;
    HANDLE own = NULL;
    DWORD got = 0;
    DWORD err = ERROR_SUCCESS;
    BOOL ok;

    memset(&ov, 0, sizeof ov);
    ov.hEvent = thread_event();
    if (ov.hEvent == NULL) {
        own = CreateEventW(NULL, TRUE, FALSE, NULL);
        if (own == NULL)
            return mproc__win_last_error();
        ov.hEvent = own;
    }
    ok = write ? WriteFile(h, buf, n, NULL, &ov)
               : ReadFile(h, buf, n, NULL, &ov);
    if (!ok && GetLastError() == ERROR_IO_PENDING) {
        CancelIoEx(h, &ov);
        ok = TRUE;
    } else if (!ok) {
        err = GetLastError();
    }
    if (ok && !GetOverlappedResult(h, &ov, &got, TRUE)) {
        err = GetLastError();
        if (err == ERROR_OPERATION_ABORTED)
            err = ERROR_SUCCESS;
    }
    if (own != NULL)
        CloseHandle(own);
    if (err == ERROR_SUCCESS)
        return (int64_t)got;
    if (is_eof_error(err))
        return write ? MPROC_EPIPE : 0;
    return mproc__os_error((long)err);
}

int64_t mproc__os_chan_read_nowait(mproc__handle h, void *buf, size_t n)
{
    DWORD avail = 0;

    if (h == MPROC__BADHANDLE || h == 0 || buf == NULL || n == 0)
        return MPROC_EINVAL;
    if (!PeekNamedPipe(mproc__win_h(h), NULL, 0, NULL, &avail, NULL)) {
        DWORD err = GetLastError();
        return is_eof_error(err) ? 0 : mproc__os_error((long)err);
    }
    if (avail == 0)
        return 0;
    if (n > avail)
        n = avail;
    return io_nowait(mproc__win_h(h), false, buf, (DWORD)n);
}

int64_t mproc__os_chan_write_nowait(mproc__handle h, const void *buf, size_t n)
{
    if (h == MPROC__BADHANDLE || h == 0 || (buf == NULL && n > 0))
        return MPROC_EINVAL;
    if (n == 0)
        return 0;
    if (n > IO_CHUNK)
        n = IO_CHUNK;
    /* WriteFile takes a non-const buffer it does not write to. */
    return io_nowait(mproc__win_h(h), true, (void *)(uintptr_t)buf, (DWORD)n);
}
