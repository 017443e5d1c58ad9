/*
 * Tests of the spawn bootstrap's trust boundary: rows S01-S04 of
 * CONFORMANCE.md (docs/security.md is the design).
 *
 * A spawned child obeys a frame that makes it call a function, so these
 * tests play the attacker: they write frames by hand, as anyone could from
 * the layout at the top of src/common/process.c, and feed them to
 * `mproc-tests --mproc-spawn <handle>` the way an attacker would (on
 * standard input, through a grandparent's descriptor, through another
 * process's socket). The target they name returns S_RAN: a child that
 * exits with it obeyed the frame. A refusing child exits with
 * S_REFUSED and never writes to a channel it does not trust.
 *
 * Map: frames by hand; starting bootstrap children; S02 (the channel);
 * S03 (modules, function entries, malformed frames); S01 (secure-exec
 * programs); S04 (other users).
 */
#include "harness.h"

#include "../src/common/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(_WIN32)
#include <aclapi.h>
#include <windows.h>
#else
#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#endif

/* Defined in p18lib.c, a shared library linked into the runner. */
int p18_lib_target(const mproc_value *args);

/* The child's exit codes (docs/security.md). */
#define S_FAILED 70
#define S_REFUSED 71
/* What a child that obeyed the frame returns. */
#define S_RAN 42

static int s_target_ran(const mproc_value *args)
{
    (void)args;
    return S_RAN;
}

/* ---------------------------------------------------------------------------
 * Frames by hand
 */

typedef struct frame {
    uint8_t b[8192];
    size_t n;
} frame;

static void put32(frame *f, uint32_t v)
{
    int i;
    ASSERT(f->n + 4 <= sizeof f->b);
    for (i = 0; i < 4; i++)
        f->b[f->n++] = (uint8_t)(v >> (8 * i));
}

static void put64(frame *f, uint64_t v)
{
    put32(f, (uint32_t)v);
    put32(f, (uint32_t)(v >> 32));
}

static void put_bytes(frame *f, const char *s, size_t n)
{
    put32(f, (uint32_t)n);
    ASSERT(f->n + n <= sizeof f->b);
    memcpy(f->b + f->n, s, n);
    f->n += n;
}

/* What a frame says besides its target. */
typedef struct frame_spec {
    uint32_t flags;
    uint32_t method;
    int64_t ppid;
    const char *module; /* NULL: the target's own */
    size_t module_len;
} frame_spec;

/* A whole frame (length word first) that asks for t() with no arguments. */
static void craft(frame *f, mproc_target t, const frame_spec *spec)
{
    const void *addr;
    char *module = NULL;
    uint64_t offset = 0;

    memcpy(&addr, &t, sizeof addr);
    ASSERT_OK(mproc__os_locate(addr, &module, &offset));
    f->n = 0;
    put32(f, 0);
    put32(f, 0x3142504du); /* "MPB1" */
    put32(f, spec->flags);
    put32(f, spec->method);
    put64(f, (uint64_t)spec->ppid);
    put64(f, offset);
    if (spec->module != NULL)
        put_bytes(f, spec->module, spec->module_len);
    else
        put_bytes(f, module, strlen(module));
    put_bytes(f, "Process-S", 9);
    put_bytes(f, "9", 1);
    put_bytes(f, "Attacker", 8);
    put32(f, 0); /* no arguments */
    free(module);
    f->b[0] = (uint8_t)(f->n - 4);
    f->b[1] = (uint8_t)((f->n - 4) >> 8);
}

static void craft_for(frame *f, mproc_target t, int64_t ppid)
{
    frame_spec spec = {0, MPROC_START_SPAWN, 0, NULL, 0};
    spec.ppid = ppid;
    craft(f, t, &spec);
}

/* ---------------------------------------------------------------------------
 * Starting bootstrap children
 */

/* This program with `args` after argv[0], inheriting `inherit`. */
static void spawn_runner(const char *const *args, const mproc__handle *inherit,
                         size_t n, mproc__child *c)
{
    const char *argv[8];
    char *exe = NULL;
    mproc__spawn_req req;
    size_t i;

    ASSERT_OK(mproc__os_self_exe(&exe));
    argv[0] = exe;
    for (i = 0; i < 6 && args[i] != NULL; i++)
        argv[i + 1] = args[i];
    argv[i + 1] = NULL;
    memset(&req, 0, sizeof req);
    req.argv = argv;
    req.inherit = inherit;
    req.n_inherit = n;
    memset(c, 0, sizeof *c);
    c->handle = MPROC__BADHANDLE;
    c->lifeline = MPROC__BADHANDLE;
    c->intr = MPROC__BADHANDLE;
    ASSERT_OK(mproc__os_spawn(&req, c));
    free(exe);
}

/* `mproc-tests --mproc-spawn h`, inheriting h when `pass`. */
static void spawn_boot(mproc__handle h, bool pass, mproc__child *c)
{
    char num[32];
    const char *args[3];
    snprintf(num, sizeof num, "%lld", (long long)h);
    args[0] = "--mproc-spawn";
    args[1] = num;
    args[2] = NULL;
    spawn_runner(args, pass ? &h : NULL, pass ? 1 : 0, c);
}

static int wait_code(mproc__child *c)
{
    int code;
    ASSERT_OK(mproc__os_wait(c, th_ms(20000)));
    code = c->exitcode;
    mproc__os_child_release(c);
    return code;
}

/* Bytes read from h until end-of-file (at most 64 are kept). */
static size_t read_to_eof(mproc__handle h, uint8_t *got)
{
    uint8_t buf[64];
    size_t n = 0;
    for (;;) {
        int64_t r = mproc__os_chan_read(h, buf, sizeof buf);
        if (r <= 0)
            return n;
        if (got != NULL && n + (size_t)r <= sizeof buf)
            memcpy(got + n, buf, (size_t)r);
        n += (size_t)r;
    }
}

static int64_t arg_int(int i)
{
    ASSERT(th_argc > i);
    return strtoll(th_argv[i], NULL, 10);
}

/* ---------------------------------------------------------------------------
 * S02: a frame that did not come from the real parent is refused
 */

/* The control: the same kind of frame on the channel the parent made for
 * its child is obeyed, so the refusals below are the channel's doing. */
TEST(S02_parent_channel_accepted)
{
    mproc__handle ch[2];
    mproc__child c;
    frame f;
    uint8_t got[64];

    ASSERT_OK(mproc__os_chan_pair(ch, true));
    spawn_boot(ch[1], true, &c);
    mproc__os_handle_close(ch[1]);
    craft_for(&f, s_target_ran, mproc__os_getpid());
    ASSERT_OK(mproc__os_chan_write(ch[0], f.b, f.n));
    ASSERT_EQ(read_to_eof(ch[0], got), 4);
    ASSERT_EQ(got[0] | got[1] | got[2] | got[3], 0); /* the 0 reply */
    ASSERT_EQ(wait_code(&c), S_RAN);
    mproc__os_handle_close(ch[0]);
    return 0;
}

#if defined(_WIN32)
/* Standard input becomes a pipe holding `n` bytes; its handle value. */
static mproc__handle stdin_holding(const void *p, size_t n)
{
    HANDLE r, w;
    DWORD done = 0;
    SECURITY_ATTRIBUTES sa = {sizeof sa, NULL, FALSE};
    ASSERT(CreatePipe(&r, &w, &sa, 65536));
    ASSERT(WriteFile(w, p, (DWORD)n, &done, NULL) && done == n);
    CloseHandle(w);
    ASSERT(SetStdHandle(STD_INPUT_HANDLE, r));
    return (mproc__handle)(intptr_t)r;
}
#else
static mproc__handle stdin_holding(const void *p, size_t n)
{
    int fd[2];
    ASSERT_EQ(pipe(fd), 0);
    ASSERT_EQ(write(fd[1], p, n), (ssize_t)n);
    close(fd[1]);
    ASSERT_EQ(dup2(fd[0], 0), 0);
    close(fd[0]);
    return 0;
}
#endif

/* `echo FRAME | prog --mproc-spawn 0`: the frame is well formed and even
 * names this process, the child's real parent, but standard input is no
 * channel a parent made for its child. */
TEST(S02_frame_on_stdin_refused)
{
    mproc__child c;
    frame f;
    mproc__handle in;

    craft_for(&f, s_target_ran, mproc__os_getpid());
    in = stdin_holding(f.b, f.n);
    spawn_boot(in, false, &c);
    ASSERT_EQ(wait_code(&c), S_REFUSED);
    return 0;
}

/* The middle generation: spawns `--mproc-spawn H` passing on the handle H
 * it inherited from the test, and exits with that child's code. */
TEST(_S02_middle)
{
    mproc__child c;
    spawn_boot((mproc__handle)arg_int(4), true, &c);
    return wait_code(&c);
}

/* A channel end that the grandparent made and the parent passed on: its
 * peer is not the child's parent. Nothing comes back on it either. */
TEST(S02_grandparent_channel_refused)
{
    mproc__handle ch[2];
    mproc__child m;
    char num[32];
    const char *args[5];
    frame f;

    ASSERT_OK(mproc__os_chan_pair(ch, true));
    snprintf(num, sizeof num, "%lld", (long long)ch[1]);
    args[0] = "--run";
    args[1] = "_S02_middle";
    args[2] = "default";
    args[3] = num;
    args[4] = NULL;
    spawn_runner(args, &ch[1], 1, &m);
    mproc__os_handle_close(ch[1]);
    /* The frame even names the middle process as the parent. */
    craft_for(&f, s_target_ran, m.pid);
    {
        /* The grandchild may have refused the channel and closed it (and
         * the middle one ended) before the frame is written: EPIPE then. */
        int wr = mproc__os_chan_write(ch[0], f.b, f.n);
        if (wr != MPROC_EPIPE)
            ASSERT_OK(wr);
    }
    ASSERT_EQ(read_to_eof(ch[0], NULL), 0);
    ASSERT_EQ(wait_code(&m), S_REFUSED);
    mproc__os_handle_close(ch[0]);
    return 0;
}

#if defined(_WIN32)
/* Puts a duplicate of h into process `pid` and sends its value on link. */
static void give_handle(mproc__handle link, mproc__handle h, int64_t pid)
{
    HANDLE proc = OpenProcess(PROCESS_DUP_HANDLE, FALSE, (DWORD)pid);
    HANDLE dup = NULL;
    int64_t v;
    ASSERT_NOT_NULL(proc);
    ASSERT(DuplicateHandle(GetCurrentProcess(), (HANDLE)(intptr_t)h, proc, &dup,
                           0, FALSE, DUPLICATE_SAME_ACCESS));
    CloseHandle(proc);
    v = (int64_t)(intptr_t)dup;
    ASSERT_OK(mproc__os_chan_write(link, &v, sizeof v));
}

static mproc__handle take_handle(mproc__handle link)
{
    int64_t v = 0;
    ASSERT_EQ(mproc__os_chan_read(link, &v, sizeof v), (int64_t)sizeof v);
    return (mproc__handle)v;
}
#else
/* Sends descriptor h over the socket link (SCM_RIGHTS). */
static void give_handle(mproc__handle link, mproc__handle h, int64_t pid)
{
    struct msghdr m;
    struct iovec iov;
    char byte = 'h';
    union {
        struct cmsghdr c;
        char space[CMSG_SPACE(sizeof(int))];
    } u;
    int fd = (int)h;
    (void)pid;
    memset(&m, 0, sizeof m);
    memset(&u, 0, sizeof u);
    iov.iov_base = &byte;
    iov.iov_len = 1;
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = u.space;
    m.msg_controllen = sizeof u.space;
    CMSG_FIRSTHDR(&m)->cmsg_level = SOL_SOCKET;
    CMSG_FIRSTHDR(&m)->cmsg_type = SCM_RIGHTS;
    CMSG_FIRSTHDR(&m)->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(CMSG_FIRSTHDR(&m)), &fd, sizeof fd);
    ASSERT_EQ(sendmsg((int)link, &m, 0), 1);
}

static mproc__handle take_handle(mproc__handle link)
{
    struct msghdr m;
    struct iovec iov;
    struct cmsghdr *c;
    char byte;
    union {
        struct cmsghdr c;
        char space[CMSG_SPACE(sizeof(int))];
    } u;
    int fd = -1;
    memset(&m, 0, sizeof m);
    iov.iov_base = &byte;
    iov.iov_len = 1;
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = u.space;
    m.msg_controllen = sizeof u.space;
    ASSERT_EQ(recvmsg((int)link, &m, 0), 1);
    c = CMSG_FIRSTHDR(&m);
    ASSERT(c != NULL && c->cmsg_type == SCM_RIGHTS);
    memcpy(&fd, CMSG_DATA(c), sizeof fd);
    ASSERT_EQ(fcntl(fd, F_SETFD, FD_CLOEXEC), 0);
    return fd;
}
#endif

/* Another process (the attacker): makes a channel, gives one end to the
 * test (pid argv[5]) over the link (argv[4]), writes a frame naming the
 * test as the parent on its own end, and exits with 3 if any reply came. */
TEST(_S02_maker)
{
    mproc__handle link = (mproc__handle)arg_int(4), ch[2];
    int64_t test_pid = arg_int(5);
    frame f;
    int rc;

    ASSERT_OK(mproc__os_chan_pair(ch, true));
    give_handle(link, ch[1], test_pid);
    mproc__os_handle_close(ch[1]);
    craft_for(&f, s_target_ran, test_pid);
    /* The child may have refused the channel (by its peer) and exited
     * before the frame is written: then the write finds no reader. */
    rc = mproc__os_chan_write(ch[0], f.b, f.n);
    if (rc != 0)
        ASSERT_ERR(rc, MPROC_EPIPE);
    /* The test closes the link once its child has ended. */
    return read_to_eof(ch[0], NULL) == 0 ? 0 : 3;
}

/* The test is the child's real parent, but the channel it hands over was
 * made by another process: refused. */
TEST(S02_other_process_channel_refused)
{
    mproc__handle link[2], got;
    mproc__child maker, c;
    char num[32], pid[32];
    const char *args[6];

    ASSERT_OK(mproc__os_chan_pair(link, true));
    snprintf(num, sizeof num, "%lld", (long long)link[1]);
    snprintf(pid, sizeof pid, "%lld", (long long)mproc__os_getpid());
    args[0] = "--run";
    args[1] = "_S02_maker";
    args[2] = "default";
    args[3] = num;
    args[4] = pid;
    args[5] = NULL;
    spawn_runner(args, &link[1], 1, &maker);
    mproc__os_handle_close(link[1]);
    got = take_handle(link[0]);
    spawn_boot(got, true, &c);
    mproc__os_handle_close(got);
    ASSERT_EQ(wait_code(&c), S_REFUSED);
    mproc__os_handle_close(link[0]);
    ASSERT_EQ(wait_code(&maker), 0);
    return 0;
}

/* ---------------------------------------------------------------------------
 * S03: only a module already mapped, only a verifiable function entry
 */

static mproc_process *spawn_proc(mproc_target t, mproc_value *args)
{
    mproc_process *p = NULL;
    ASSERT_OK(mproc_process_create(&p, t, args));
    ASSERT_OK(mproc_process_set_start_method(p, MPROC_START_SPAWN));
    return p;
}

static int run_spawn(mproc_target t, mproc_value *args)
{
    mproc_process *p = spawn_proc(t, args);
    int code = -1000;
    ASSERT_OK(mproc_process_start(p));
    ASSERT_OK(mproc_process_join(p, th_ms(20000)));
    ASSERT_OK(mproc_process_exitcode(p, &code));
    mproc_process_destroy(p);
    return code;
}

/* Start must fail with `want`, leaving no child behind. */
static void start_fails(mproc_target t, int want)
{
    mproc_process *p = spawn_proc(t, NULL);
    ASSERT_ERR(mproc_process_start(p), want);
    ASSERT_EQ(mproc_process_is_alive(p), 0);
    ASSERT_EQ(mproc_active_children(NULL, 0), 0);
    mproc_process_destroy(p);
}

#if defined(_WIN32)
static mproc_target load_s03(void)
{
    HMODULE m = LoadLibraryA(MPROC_S03LIB);
    FARPROC f;
    mproc_target t;
    ASSERT_NOT_NULL(m);
    f = GetProcAddress(m, "s03_lib_target");
    ASSERT_NOT_NULL(f);
    memcpy(&t, &f, sizeof t);
    return t;
}

static void set_env(const char *name, const char *value)
{
    ASSERT_EQ(_putenv_s(name, value), 0);
}
#else
static mproc_target load_s03(void)
{
    void *lib = dlopen(MPROC_S03LIB, RTLD_NOW | RTLD_LOCAL);
    void *f;
    mproc_target t;
    ASSERT_NOT_NULL(lib);
    f = dlsym(lib, "s03_lib_target");
    ASSERT_NOT_NULL(f);
    memcpy(&t, &f, sizeof t);
    return t;
}

static void set_env(const char *name, const char *value)
{
    ASSERT_EQ(setenv(name, value, 1), 0);
}
#endif

/* A library this program loaded at run time is not mapped in a fresh
 * child: start is MPROC_ERESOLVE, and the child never loaded it (its
 * constructor would have left the mark and ended the child with 55). */
TEST(S03_no_load_of_unmapped_module)
{
    char mark[64];
    mproc_target t = load_s03();
    FILE *f;

    snprintf(mark, sizeof mark, "mproc-s03-mark-%lld",
             (long long)mproc__os_getpid());
    remove(mark);
    set_env("MPROC_S03_MARK", mark);
    start_fails(t, MPROC_ERESOLVE);
    set_env("MPROC_S03_MARK", "");
    f = fopen(mark, "r");
    if (f != NULL) {
        fclose(f);
        remove(mark);
    }
    ASSERT_NULL(f);
    return 0;
}

static mproc_target shifted(mproc_target t, uintptr_t by)
{
    uintptr_t a;
    memcpy(&a, &t, sizeof a);
    a += by;
    memcpy(&t, &a, sizeof t);
    return t;
}

/* The first byte of t's module (its ELF or PE header). */
static mproc_target module_start(mproc_target t)
{
    const void *addr;
    char *module = NULL;
    uint64_t offset = 0;
    uintptr_t a;
    memcpy(&addr, &t, sizeof addr);
    ASSERT_OK(mproc__os_locate(addr, &module, &offset));
    free(module);
    memcpy(&a, &t, sizeof a);
    a -= (uintptr_t)offset;
    memcpy(&t, &a, sizeof t);
    return t;
}

static const char s_rodata[] = "read-only data, not code";

/* Addresses inside mapped modules that are not where a function begins
 * are refused by the child (MPROC_ERESOLVE), not jumped to. */
TEST(S03_target_not_function_entry)
{
    mproc_target rodata;
    const char *text = s_rodata;
    memcpy(&rodata, &text, sizeof rodata);

    start_fails(shifted(s_target_ran, 1), MPROC_ERESOLVE);
    start_fails(shifted(p18_lib_target, 1), MPROC_ERESOLVE);
    start_fails(module_start(s_target_ran), MPROC_ERESOLVE);
    start_fails(rodata, MPROC_ERESOLVE);
    /* The entries themselves run: a static function and a library's. */
    ASSERT_EQ(run_spawn(s_target_ran, NULL), S_RAN);
    ASSERT_EQ(run_spawn(p18_lib_target, MPROC_LIST(mproc_int(5))), 23);
    return 0;
}

/* Sends f to a child on the channel its parent (this test) made: the
 * child must reply `want` and exit with `code`. */
static void frame_reply(const frame *f, int want, int code)
{
    mproc__handle ch[2];
    mproc__child c;
    uint8_t got[64];
    uint32_t v;

    ASSERT_OK(mproc__os_chan_pair(ch, true));
    spawn_boot(ch[1], true, &c);
    mproc__os_handle_close(ch[1]);
    ASSERT_OK(mproc__os_chan_write(ch[0], f->b, f->n));
    ASSERT_EQ(read_to_eof(ch[0], got), 4);
    v = (uint32_t)got[0] | (uint32_t)got[1] << 8 | (uint32_t)got[2] << 16 |
        (uint32_t)got[3] << 24;
    ASSERT_ERR((int32_t)v, want);
    ASSERT_EQ(wait_code(&c), code);
    mproc__os_handle_close(ch[0]);
}

/* Frames from the real parent that are not well formed are refused with
 * MPROC_EBADMSG (and the child exits with S_FAILED): unknown flags, an
 * unknown start method, a module string with a NUL inside, a frame that
 * names another parent than the channel's. */
TEST(S03_malformed_frame_refused)
{
    frame f;
    char *module = NULL;
    char padded[4200];
    uint64_t offset;
    size_t n;
    const void *addr;
    mproc_target t = s_target_ran;
    frame_spec spec = {0, MPROC_START_SPAWN, 0, NULL, 0};

    spec.ppid = mproc__os_getpid();
    spec.flags = 0x80;
    craft(&f, s_target_ran, &spec);
    frame_reply(&f, MPROC_EBADMSG, S_FAILED);
    spec.flags = 0;
    spec.method = 9;
    craft(&f, s_target_ran, &spec);
    frame_reply(&f, MPROC_EBADMSG, S_FAILED);
    spec.method = MPROC_START_SPAWN;
    memcpy(&addr, &t, sizeof addr);
    ASSERT_OK(mproc__os_locate(addr, &module, &offset));
    n = strlen(module);
    ASSERT(n + 5 < sizeof padded);
    memcpy(padded, module, n);
    /* A NUL inside the string, on purpose: no terminator is wanted. */
    // NOLINTNEXTLINE(bugprone-not-null-terminated-result)
    memcpy(padded + n, "\0junk", 5);
    free(module);
    spec.module = padded;
    spec.module_len = n + 5;
    craft(&f, s_target_ran, &spec);
    frame_reply(&f, MPROC_EBADMSG, S_FAILED);
    spec.module = NULL;
    spec.ppid = mproc__os_getpid() + 1;
    craft(&f, s_target_ran, &spec);
    frame_reply(&f, MPROC_EBADMSG, S_FAILED);
    /* And a good one still runs. */
    spec.ppid = mproc__os_getpid();
    craft(&f, s_target_ran, &spec);
    frame_reply(&f, 0, S_RAN);
    return 0;
}

/* The parser itself (the fuzz target tests/fuzz/fuzz_boot.c drives it
 * with random input): every prefix of a good payload, every string too
 * long or holding a NUL, every bad field and a wrong args length. */
TEST(S03_boot_parse_rejects_malformed)
{
    frame f;
    mproc__boot_frame bf;
    mproc__buf b = {0};
    size_t cut;
    uint8_t *pl;
    size_t n;
    static uint8_t big[MPROC__BOOT_STR_MAX + 64];

    craft_for(&f, s_target_ran, 1234);
    pl = f.b + 4;
    n = f.n - 4;
    ASSERT_OK(mproc__boot_parse(pl, n, &bf));
    ASSERT_EQ(bf.ppid, 1234);
    ASSERT_EQ(bf.method, MPROC_START_SPAWN);
    ASSERT_EQ(bf.name.n, 9);
    ASSERT_MEM_EQ(bf.name.p, "Process-S", 9);
    ASSERT_EQ(bf.args_len, 0);
    /* The encoder writes back the very same bytes. */
    ASSERT_OK(mproc__boot_encode_head(&bf, &b));
    ASSERT_EQ(b.n, n);
    ASSERT_MEM_EQ(b.p, pl, n);
    mproc__buf_free(&b);
    for (cut = 0; cut < n; cut++)
        ASSERT_ERR(mproc__boot_parse(pl, cut, &bf), MPROC_EBADMSG);
    /* One byte too many: the arguments are the rest, exactly. */
    f.b[f.n] = 0;
    ASSERT_ERR(mproc__boot_parse(pl, n + 1, &bf), MPROC_EBADMSG);
    ASSERT_ERR(mproc__boot_parse(NULL, 0, &bf), MPROC_EBADMSG);
    ASSERT_ERR(mproc__boot_parse(pl, n, NULL), MPROC_EINVAL);
    pl[0] ^= 1; /* magic */
    ASSERT_ERR(mproc__boot_parse(pl, n, &bf), MPROC_EBADMSG);
    pl[0] ^= 1;
    pl[12] = 0; /* ppid 0 (its low bytes were 1234) */
    pl[13] = 0;
    ASSERT_ERR(mproc__boot_parse(pl, n, &bf), MPROC_EBADMSG);
    /* A string over the limit, however much data follows. */
    memset(big, 'a', sizeof big);
    memcpy(big, pl, 28);
    big[28] = (uint8_t)((MPROC__BOOT_STR_MAX + 1) & 0xff);
    big[29] = (uint8_t)((MPROC__BOOT_STR_MAX + 1) >> 8);
    big[30] = 0;
    big[31] = 0;
    ASSERT_ERR(mproc__boot_parse(big, sizeof big, &bf), MPROC_EBADMSG);
    /* The encoder refuses what the parser would. */
    memset(&bf, 0, sizeof bf);
    bf.method = MPROC_START_SPAWN;
    bf.ppid = 1;
    bf.module.p = "a\0b";
    bf.module.n = 3;
    ASSERT_ERR(mproc__boot_encode_head(&bf, &b), MPROC_EINVAL);
    bf.module.n = 0;
    bf.flags = 4;
    ASSERT_ERR(mproc__boot_encode_head(&bf, &b), MPROC_EINVAL);
    mproc__buf_free(&b);
    return 0;
}

/* ---------------------------------------------------------------------------
 * S01: no bootstrap in a secure-exec program
 */

#if !defined(_WIN32)
/* A setgid copy of this program: run by root (this test), the kernel
 * marks it secure-exec (AT_SECURE), as any set-id program. */
static void make_setgid_copy(char *out, size_t cap)
{
    char *exe = NULL;
    char buf[65536];
    ssize_t r;
    int in, to;

    ASSERT_OK(mproc__os_self_exe(&exe));
    snprintf(out, cap, "%s-setgid%lld", exe, (long long)getpid());
    in = open(exe, O_RDONLY | O_CLOEXEC);
    to = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0700);
    free(exe);
    ASSERT(in >= 0 && to >= 0);
    while ((r = read(in, buf, sizeof buf)) > 0)
        ASSERT_EQ(write(to, buf, (size_t)r), r);
    ASSERT_EQ(r, 0);
    close(in);
    ASSERT_EQ(close(to), 0);
    ASSERT_EQ(chown(out, 0, 65534), 0);
    ASSERT_EQ(chmod(out, 02755), 0);
}
#endif

/* The copy would run the library's target (the library is the same file
 * in both programs); it must refuse, and start says MPROC_EPERM. */
TEST(S01_secure_exec_program_refused)
{
#if !defined(_WIN32)
    char copy[4096];
    mproc_process *p = spawn_proc(p18_lib_target, MPROC_LIST(mproc_int(5)));
    int rc;

    make_setgid_copy(copy, sizeof copy);
    ASSERT_OK(mproc_set_executable(copy));
    rc = mproc_process_start(p);
    ASSERT_OK(mproc_set_executable(NULL));
    remove(copy);
    ASSERT_ERR(rc, MPROC_EPERM);
    ASSERT_EQ(mproc_process_is_alive(p), 0);
    ASSERT_EQ(mproc_active_children(NULL, 0), 0);
    /* The program itself still runs it. */
    ASSERT_EQ(run_spawn(p18_lib_target, MPROC_LIST(mproc_int(5))), 23);
    mproc_process_destroy(p);
#endif
    return 0;
}

/* ---------------------------------------------------------------------------
 * S04: no other user can open any object of a program
 */

/* A child that holds the objects it is given until its pipe end closes. */
static int s_hold(const mproc_value *args)
{
    mproc_conn *c = NULL;
    mproc_value *v = NULL;
    if (mproc_value_get_conn(mproc_list_get(args, 0), &c) != 0)
        return 2;
    if (mproc_conn_send_bytes(c, "r", 1) != 0)
        return 3;
    (void)mproc_conn_recv(c, &v, th_ms(30000));
    mproc_value_free(v);
    return 0;
}

#if !defined(_WIN32)
/* The descriptors above 2 of process `pid`, into fds (at most cap). */
static size_t fds_of(int64_t pid, int *fds, size_t cap)
{
    char path[64];
    DIR *d;
    struct dirent *e;
    size_t n = 0;
    snprintf(path, sizeof path, "/proc/%lld/fd", (long long)pid);
    d = opendir(path);
    ASSERT_NOT_NULL(d);
    while ((e = readdir(d)) != NULL && n < cap) {
        int fd = (int)strtol(e->d_name, NULL, 10);
        if (fd > 2 && fd != dirfd(d))
            fds[n++] = fd;
    }
    closedir(d);
    return n;
}

/* In a forked probe running as `uid`: how many of the descriptors of the
 * two processes could be opened through /proc, plus 1 if a /proc/PID/fd
 * folder could be listed, plus the mproc names in /dev/shm it could open. */
static int probe_as(unsigned uid, const int64_t *pid, int *const *fds,
                    const size_t *n)
{
    pid_t p = fork();
    int status = 0;
    ASSERT(p >= 0);
    if (p == 0) {
        int opened = 0, k;
        size_t i;
        char path[300];
        DIR *d;
        if (uid != 0 &&
            (setgroups(0, NULL) != 0 || setgid(uid) != 0 || setuid(uid) != 0))
            _exit(200);
        for (k = 0; k < 2; k++) {
            snprintf(path, sizeof path, "/proc/%lld/fd", (long long)pid[k]);
            d = opendir(path);
            if (d != NULL) {
                closedir(d);
                opened += uid != 0; /* root may list; another user may not */
            }
            for (i = 0; i < n[k]; i++) {
                int fd, modes[2] = {O_RDONLY, O_RDWR}, m;
                snprintf(path, sizeof path, "/proc/%lld/fd/%d",
                         (long long)pid[k], fds[k][i]);
                for (m = 0; m < 2; m++) {
                    fd = open(path, modes[m] | O_NONBLOCK | O_NOCTTY);
                    if (fd >= 0) {
                        opened++;
                        close(fd);
                    }
                }
            }
        }
        /* shm_open names (only where memfd is missing; none on Linux). */
        d = opendir("/dev/shm");
        if (d != NULL) {
            struct dirent *e;
            while ((e = readdir(d)) != NULL) {
                int fd;
                if (strncmp(e->d_name, "mproc-", 6) != 0)
                    continue;
                snprintf(path, sizeof path, "/dev/shm/%s", e->d_name);
                fd = open(path, O_RDONLY | O_NONBLOCK);
                if (fd >= 0) {
                    opened++;
                    close(fd);
                }
            }
            closedir(d);
        }
        _exit(opened > 199 ? 199 : opened);
    }
    ASSERT_EQ(waitpid(p, &status, 0), p);
    ASSERT(WIFEXITED(status));
    return WEXITSTATUS(status);
}
#endif

/* One object of every kind, some of them held by a spawned child too;
 * then a probe running as another user tries to open each. */
TEST(S04_other_user_cannot_open_objects)
{
    mproc_conn *a, *b, *r, *w;
    mproc_queue *q;
    mproc_lock *l;
    mproc_rlock *rl;
    mproc_sem *s;
    mproc_event *e;
    mproc_cond *c;
    mproc_barrier *ba;
    mproc_shm *m;
    mproc_process *p;
    char byte;
    size_t got;

    ASSERT_OK(mproc_pipe(&a, &b, true));
    ASSERT_OK(mproc_pipe(&r, &w, false));
    ASSERT_OK(mproc_queue_create(&q, 0));
    {
        mproc_value *one = mproc_int(1);
        ASSERT_OK(mproc_queue_put(q, one, 0));
        mproc_value_free(one);
    }
    ASSERT_OK(mproc_lock_create(&l));
    ASSERT_OK(mproc_rlock_create(&rl));
    ASSERT_OK(mproc_sem_create(&s, 1, 0));
    ASSERT_OK(mproc_event_create(&e));
    ASSERT_OK(mproc_cond_create(&c));
    ASSERT_OK(mproc_barrier_create(&ba, 2));
    ASSERT_OK(mproc_shm_create(&m, 4096));
    p = spawn_proc(s_hold, MPROC_LIST(mproc_value_conn(b), mproc_value_queue(q),
                                      mproc_value_lock(l), mproc_value_shm(m),
                                      mproc_value_conn(w)));
    ASSERT_OK(mproc_process_start(p));
    ASSERT_OK(mproc_conn_recv_bytes(a, &byte, 1, &got, th_ms(20000)));
#if !defined(_WIN32)
    {
        static int mine[512], its[512];
        int *fds[2];
        int64_t pids[2];
        size_t n[2];
        pids[0] = mproc__os_getpid();
        pids[1] = mproc_process_pid(p);
        fds[0] = mine;
        fds[1] = its;
        n[0] = fds_of(pids[0], mine, 512);
        n[1] = fds_of(pids[1], its, 512);
        ASSERT_GT(n[0], 10);
        ASSERT_GT(n[1], 3);
        /* The probe works: as the owner it opens the shared memory. */
        ASSERT_GT(probe_as(0, pids, fds, n), 0);
        ASSERT_EQ(probe_as(65534, pids, fds, n), 0);
    }
#else
    {
        mproc__handle h[2];
        ASSERT_OK(mproc__os_chan_pair(h, true));
        th_dacl_is_owner_only((intptr_t)h[0]);
        th_dacl_is_owner_only((intptr_t)h[1]);
        mproc__os_handle_close(h[0]);
        mproc__os_handle_close(h[1]);
        ASSERT_OK(mproc__os_chan_pair(h, false));
        th_dacl_is_owner_only((intptr_t)h[0]);
        th_dacl_is_owner_only((intptr_t)h[1]);
        mproc__os_handle_close(h[0]);
        mproc__os_handle_close(h[1]);
    }
#endif
    ASSERT_OK(mproc_conn_send_bytes(a, "x", 1));
    ASSERT_OK(mproc_process_join(p, th_ms(20000)));
    mproc_process_destroy(p);
    mproc_conn_destroy(a);
    mproc_conn_destroy(b);
    mproc_conn_destroy(r);
    mproc_conn_destroy(w);
    mproc_queue_destroy(q);
    mproc_lock_destroy(l);
    mproc_rlock_destroy(rl);
    mproc_sem_destroy(s);
    mproc_event_destroy(e);
    mproc_cond_destroy(c);
    mproc_barrier_destroy(ba);
    mproc_shm_destroy(m);
    return 0;
}
