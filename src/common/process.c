/*
 * Processes: the object and its lifecycle, the registry of children, names,
 * introspection, program exit, and the spawn bootstrap protocol. Everything
 * here is shared by both backends; the OS work is behind backend.h.
 *
 * Map of this file: globals and the lock; objects; settings; start (fork
 * path, spawn path with the parent side of the bootstrap); the child side
 * (after fork, and mproc_init in a spawned child, the bootstrap guard);
 * join, is_alive, signals, close; the exit hook; introspection.
 *
 * References. A process object is counted: the caller's reference from
 * create, one per reference handed out by active_children, and the
 * registry's while the child has been started and not yet reaped. So
 * destroying the object of a running child detaches it: the registry keeps
 * what is needed to list it and reap it (active_children, program exit).
 *
 * The bootstrap (spawn). The parent starts this program's executable with
 * the arguments "--mproc-spawn <handle>", where the handle is one end of a
 * duplex byte channel; it writes one frame (u32 length, then the payload
 * below) and waits for a 4-byte reply: 0, or the negative MPROC_E* code the
 * child met (MPROC_ERESOLVE when the target cannot be found). Only after a
 * 0 reply does the child run the target, so an unresolvable target is an
 * error of start in the parent, and the parent reaps the child. Payload,
 * little-endian:
 *
 *   u32 magic "MPB1"; u32 flags (1 daemon, 2 run form); u32 start method;
 *   i64 parent pid; u64 target offset; str module; str name; str identity;
 *   str parent name; u32 args length + encoded args (0: an empty list; the
 *   state of the run form, where 0 means NULL)
 *
 * where str is u32 length + bytes (at most MPROC__BOOT_STR_MAX, no NUL).
 * Handles inside the arguments are inherited by the child under the same
 * values (backend.h).
 *
 * Trust (docs/security.md). The frame makes the child call a function, so
 * the child believes only its real parent, as Python's spawn child does.
 * Before it reads a byte it checks that the channel's other end belongs to
 * the process that started it, running as its user
 * (mproc__os_boot_channel); a channel that fails is neither read nor
 * written, and the child exits with BOOT_EXIT_REFUSED. A secure-exec
 * program (setuid, setgid, file capabilities; Windows: elevated above its
 * parent) refuses too, telling the parent MPROC_EPERM. The frame is parsed
 * by a pure function (mproc__boot_parse, fuzzed), and the target is
 * resolved only in a module the child has already mapped, at a verified
 * function entry (mproc__os_resolve). A parent that sees the channel close
 * without a reply and the child exit with BOOT_EXIT_REFUSED reports
 * MPROC_EPERM.
 *
 * The bootstrap guard. A spawned child runs main() again, and a main that
 * starts a process before mproc_init (Python's missing `if __name__ ==
 * '__main__':`) would spawn a grandchild doing the same, until the
 * process limit. So the parent also gives the child the environment entry
 * MPROC_BOOTSTRAP=<handle>: a process that has it and has not finished its
 * bootstrap refuses every start with MPROC_EBOOTSTRAP, and its first
 * refusal replies MPROC_EBOOTSTRAP to the parent on that handle and closes
 * it. The parent's start then fails with that code and ends the child,
 * which never runs its target. mproc_init removes the entry, so that the
 * child's own children (and programs it runs) do not inherit it.
 */
#include "internal.h"

#include "atomics.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if !defined(_WIN32)
/* What the C library offers (cmake/MprocPlatform.cmake): its stdio buffer
 * queries. */
#include "mproc_features.h"
#if defined(MPROC_FORCE_FALLBACKS)
#undef MPROC_SYS_FPENDING
#undef MPROC_SYS_FPURGE_GNU
#undef MPROC_SYS_FPURGE
#endif
#if defined(MPROC_SYS_FPENDING) || defined(MPROC_SYS_FPURGE_GNU)
#include <stdio_ext.h>
#endif
#endif

enum { PS_CREATED, PS_STARTING, PS_STARTED, PS_EXITED, PS_CLOSED };
/* A child of this process; this process itself; its parent. */
enum { PK_CHILD, PK_SELF, PK_PARENT };

struct mproc_process {
    atomic_int refs;
    int kind;
    int state; /* PS_*, under g_lock */
    mproc_target target;
    mproc_run run;
    mproc_value *args; /* the target's list, or the run form's state */
    char *name;
    char *ident;      /* "1", "1:2": the counters from the main process */
    bool static_strs; /* name and ident are not ours to free */
    bool daemon;
    bool inherit_stdin;
    mproc_start_method method;  /* the setting; DEFAULT: the program's */
    mproc_start_method started; /* how it was started (DEFAULT: not yet) */
    int64_t owner;              /* pid of the process that started it */
    mproc__child child;
    mproc_process *next, *prev; /* registry links, under g_lock */
    bool in_registry;
};

#define BOOT_ARG "--mproc-spawn"
#define BOOT_ENV "MPROC_BOOTSTRAP"
/* A spawned child's exit code when its bootstrap failed (the parent got
 * the reason in the reply), and when it refused its channel or to run at
 * all (docs/security.md). */
#define BOOT_EXIT_FAILED 70
#define BOOT_EXIT_REFUSED 71

/* ---------------------------------------------------------------------------
 * Globals and the lock
 *
 * One spin lock guards the registry and every object's state: the critical
 * sections are a few loads and stores, and C11 atomics are all the common
 * code can rely on on every platform. Nothing blocks while holding it.
 */

static atomic_flag g_lock = ATOMIC_FLAG_INIT;
static mproc_process *g_children; /* oldest first */
static mproc_process *g_children_tail;
static unsigned long g_counter;
static atomic_int g_method = MPROC_START_DEFAULT;
static bool g_exit_hook;
static bool g_forked; /* this process is a fork child */
static const char *g_argv0;
static char *g_executable;
static char *g_spawn_path; /* what spawn starts (mproc_init); NULL: default */

/* Where this process stands in the spawn bootstrap (the guard, above). */
enum {
    BS_UNKNOWN, /* mproc_init has not run: the environment tells */
    BS_PENDING, /* a spawned child reading its bootstrap */
    BS_DONE,    /* not a spawned child, or its target runs */
    BS_REFUSED  /* it tried to start a process first: it must end */
};
static atomic_int g_boot = BS_UNKNOWN;

static mproc_process g_main = {
    .kind = PK_SELF,
    .state = PS_STARTED,
    .name = (char *)"MainProcess",
    .ident = (char *)"",
    .static_strs = true,
    .child = {.handle = MPROC__BADHANDLE,
              .lifeline = MPROC__BADHANDLE,
              .intr = MPROC__BADHANDLE},
};
static mproc_process g_parent_obj = {
    .kind = PK_PARENT,
    .state = PS_STARTED,
    .static_strs = true,
    .child = {.handle = MPROC__BADHANDLE,
              .lifeline = MPROC__BADHANDLE,
              .intr = MPROC__BADHANDLE},
};
static mproc_process *g_current = &g_main;
static mproc_process *g_parent;

/* An empty list for targets given no arguments. */
static const mproc_value g_empty_list = {.type = MPROC_TYPE_LIST};

static void lock(void)
{
    while (atomic_flag_test_and_set_explicit(&g_lock, memory_order_acquire))
        mproc__os_sleep_ms(0);
}

static void unlock(void)
{
    atomic_flag_clear_explicit(&g_lock, memory_order_release);
}

static void exit_hook(void);
static int check_bootstrap(void);

/* Flushes stdout and stderr. Where the C library can tell that nothing is
 * buffered, the stream is left alone: around a fork every page written is
 * a copy-on-write fault, and fflush writes the FILE's lock even with
 * nothing to do. */
static void flush_std(void)
{
#if defined(MPROC_SYS_FPENDING)
    if (__fpending(stdout) > 0)
        fflush(stdout);
    if (__fpending(stderr) > 0)
        fflush(stderr);
#else
    fflush(stdout);
    fflush(stderr);
#endif
}

/* ---------------------------------------------------------------------------
 * Objects
 */

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

/* p was started by another process (a fork child inherited the object):
 * its pid and handles are not this process's to wait for, signal or
 * close (a fork child closed those descriptors, and their numbers may
 * have been reused since). */
static bool foreign(const mproc_process *p)
{
    return p->kind == PK_CHILD && p->started != MPROC_START_DEFAULT &&
           p->owner != mproc__os_getpid();
}

static void proc_free(mproc_process *p)
{
    if (!foreign(p))
        mproc__os_child_release(&p->child);
    if (p->args != NULL)
        mproc_value_free(p->args);
    if (!p->static_strs) {
        free(p->name);
        free(p->ident);
    }
    free(p);
}

static void proc_unref(mproc_process *p)
{
    if (atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) == 1)
        proc_free(p);
}

static void registry_unlink_locked(mproc_process *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        g_children = p->next;
    if (p->next)
        p->next->prev = p->prev;
    else
        g_children_tail = p->prev;
    p->next = p->prev = NULL;
    p->in_registry = false;
}

/* The child has been reaped: the object reads as exited and leaves the
 * registry (dropping the registry's reference). */
static void mark_exited(mproc_process *p)
{
    bool drop = false;
    lock();
    if (p->state == PS_STARTED)
        p->state = PS_EXITED;
    if (p->in_registry) {
        registry_unlink_locked(p);
        drop = true;
    }
    unlock();
    if (drop)
        proc_unref(p);
}

/* Reaps p if it has ended: 0 (p now reads as exited), MPROC_ETIMEDOUT while
 * it runs, or the backend's error. */
static int reap_now(mproc_process *p)
{
    int rc = mproc__os_wait(&p->child, 0);
    if (rc == 0)
        mark_exited(p);
    return rc;
}

static int proc_new(mproc_process **out, mproc_target target, mproc_run run,
                    mproc_value *args)
{
    mproc_process *p;
    unsigned long n;
    const char *parent_ident;
    size_t cap;

    p = calloc(1, sizeof *p);
    if (p == NULL) {
        mproc_value_free(args);
        return MPROC_ENOMEM;
    }
    atomic_init(&p->refs, 1);
    p->kind = PK_CHILD;
    p->state = PS_CREATED;
    p->target = target;
    p->run = run;
    p->args = args;
    p->method = MPROC_START_DEFAULT;
    p->child.handle = MPROC__BADHANDLE;
    p->child.lifeline = MPROC__BADHANDLE;
    p->child.intr = MPROC__BADHANDLE;

    lock();
    n = ++g_counter;
    parent_ident = g_current->ident;
    /* Python's rule: the daemon flag defaults to the creator's. */
    p->daemon = g_current->daemon;
    unlock();
    /* Python's naming: the identity is the parent's identity plus this
     * process's number among its siblings. */
    cap = strlen(parent_ident) + 24;
    p->ident = malloc(cap);
    p->name = malloc(cap + 8);
    if (p->ident == NULL || p->name == NULL) {
        proc_free(p);
        return MPROC_ENOMEM;
    }
    if (parent_ident[0] != '\0')
        snprintf(p->ident, cap, "%s:%lu", parent_ident, n);
    else
        snprintf(p->ident, cap, "%lu", n);
    snprintf(p->name, cap + 8, "Process-%s", p->ident);
    *out = p;
    return 0;
}

int mproc_process_create(mproc_process **out, mproc_target target,
                         mproc_value *args)
{
    if (out == NULL || target == NULL ||
        (args != NULL && args->type != MPROC_TYPE_LIST)) {
        mproc_value_free(args);
        if (out != NULL)
            *out = NULL;
        return MPROC_EINVAL;
    }
    return proc_new(out, target, NULL, args);
}

int mproc_process_create_run(mproc_process **out, mproc_run run,
                             mproc_value *state)
{
    if (out == NULL || run == NULL) {
        mproc_value_free(state);
        if (out != NULL)
            *out = NULL;
        return MPROC_EINVAL;
    }
    return proc_new(out, NULL, run, state);
}

mproc_process *mproc_process_destroy(mproc_process *p)
{
    int state;
    if (p == NULL || p->kind != PK_CHILD)
        return NULL; /* the current and parent objects are borrowed */
    lock();
    state = p->state;
    unlock();
    /* A child that has already ended is reaped now rather than left a
     * zombie until active_children() or exit. */
    if (state == PS_STARTED && !foreign(p))
        (void)reap_now(p);
    /* mark_exited drops only the registry's reference; the caller's is
     * this one. */
    proc_unref(p); /* NOLINT(clang-analyzer-unix.Malloc) */
    return NULL;
}

/* ---------------------------------------------------------------------------
 * Settings
 */

/* The object's state, or MPROC_ECLOSED. */
static int state_of(mproc_process *p)
{
    int s;
    lock();
    s = p->state;
    unlock();
    return s;
}

/* The state of the child object p, or the error a call on it returns: p
 * NULL (MPROC_EINVAL), not a child (MPROC_ESTATE), closed (MPROC_ECLOSED),
 * started by another process (MPROC_ENOTCHILD: a fork child's copy). */
static int child_state(mproc_process *p)
{
    int64_t owner;
    bool started;
    int s;
    if (p == NULL)
        return MPROC_EINVAL;
    if (p->kind != PK_CHILD)
        return MPROC_ESTATE;
    lock();
    s = p->state;
    started = p->started != MPROC_START_DEFAULT;
    owner = p->owner;
    unlock();
    if (s == PS_CLOSED)
        return MPROC_ECLOSED;
    /* The pid (a system call) only for an object that was started. */
    return started && owner != mproc__os_getpid() ? MPROC_ENOTCHILD : s;
}

static int check_settable(mproc_process *p)
{
    int s = child_state(p);
    if (s < 0)
        return s;
    return s == PS_CREATED ? 0 : MPROC_ESTATE;
}

int mproc_process_set_name(mproc_process *p, const char *name)
{
    char *copy;
    int rc = check_settable(p);
    if (rc != 0)
        return rc;
    if (name == NULL)
        return MPROC_EINVAL;
    copy = dup_str(name);
    if (copy == NULL)
        return MPROC_ENOMEM;
    free(p->name);
    p->name = copy;
    return 0;
}

int mproc_process_set_daemon(mproc_process *p, bool daemon)
{
    int rc = check_settable(p);
    if (rc != 0)
        return rc;
    p->daemon = daemon;
    return 0;
}

int mproc_process_set_inherit_stdin(mproc_process *p, bool inherit)
{
    int rc = check_settable(p);
    if (rc != 0)
        return rc;
    p->inherit_stdin = inherit;
    return 0;
}

/* 0 when children can be started with `m` here. */
static int check_method(mproc_start_method m)
{
    if (m != MPROC_START_DEFAULT && m != MPROC_START_FORK &&
        m != MPROC_START_SPAWN)
        return MPROC_EINVAL;
#if defined(_WIN32)
    if (m == MPROC_START_FORK)
        return MPROC_ENOSYS;
#endif
    return 0;
}

int mproc_process_set_start_method(mproc_process *p, mproc_start_method method)
{
    int rc = check_settable(p);
    if (rc != 0)
        return rc;
    rc = check_method(method);
    if (rc != 0)
        return rc;
    p->method = method;
    return 0;
}

int mproc_set_start_method(mproc_start_method method)
{
    int rc = check_method(method);
    if (rc != 0)
        return rc;
    atomic_store(&g_method, (int)method);
    return 0;
}

/* The method MPROC_START_METHOD names ("fork" or "spawn"; unset or empty:
 * the platform's default) in *m: 0, or MPROC_EINVAL for another value and
 * MPROC_ENOSYS for fork where there is none, with *m the platform's
 * default. */
static int method_from_env(mproc_start_method *m)
{
    const char *s = getenv("MPROC_START_METHOD");
#if !defined(_WIN32)
    *m = MPROC_START_FORK;
#else
    *m = MPROC_START_SPAWN;
#endif
    if (s == NULL || s[0] == '\0')
        return 0;
    if (strcmp(s, "spawn") == 0) {
        *m = MPROC_START_SPAWN;
        return 0;
    }
    if (strcmp(s, "fork") == 0) {
        int rc = check_method(MPROC_START_FORK);
        if (rc == 0)
            *m = MPROC_START_FORK;
        return rc;
    }
    return MPROC_EINVAL;
}

/* The program-wide method in *m: 0, or the environment's error (then *m is
 * the platform's default, and nothing is remembered, so that every start
 * reports it). */
static int program_method(mproc_start_method *m)
{
    int v = atomic_load(&g_method);
    int rc;
    if (v != MPROC_START_DEFAULT) {
        *m = (mproc_start_method)v;
        return 0;
    }
    rc = method_from_env(m);
    if (rc == 0) {
        int expected = MPROC_START_DEFAULT;
        /* A concurrent mproc_set_start_method wins. */
        if (!atomic_compare_exchange_strong(&g_method, &expected, (int)*m))
            *m = (mproc_start_method)expected;
    }
    return rc;
}

mproc_start_method mproc_get_start_method(void)
{
    mproc_start_method m;
    (void)program_method(&m);
    return m;
}

int mproc_process_start_method(const mproc_process *p)
{
    mproc_start_method m;
    int s;
    if (p == NULL)
        return MPROC_EINVAL;
    if (p->kind != PK_CHILD)
        return (int)p->started; /* DEFAULT for the main process, parent */
    lock();
    s = p->state;
    m = p->started;
    unlock();
    if (s == PS_CLOSED)
        return MPROC_ECLOSED;
    if (m != MPROC_START_DEFAULT)
        return (int)m;
    if (p->method != MPROC_START_DEFAULT)
        return (int)p->method;
    (void)program_method(&m);
    return (int)m;
}

int mproc_set_executable(const char *path)
{
    char *copy = NULL, *old;
    if (path != NULL) {
        copy = dup_str(path);
        if (copy == NULL)
            return MPROC_ENOMEM;
    }
    lock();
    old = g_executable;
    g_executable = copy;
    unlock();
    free(old);
    return 0;
}

/* ---------------------------------------------------------------------------
 * Start
 */

/* Collects the OS handles of every handle value in v. */
static int collect_handles(const mproc_value *v, mproc__handle_list *out)
{
    size_t i;
    int rc;
    if (v == NULL)
        return 0;
    if (v->type == MPROC_TYPE_LIST) {
        for (i = 0; i < v->u.list.n; i++) {
            rc = collect_handles(v->u.list.items[i], out);
            if (rc < 0)
                return rc;
        }
        return 0;
    }
    if (mproc__type_is_handle(v->type)) {
        mproc__export ex;
        uint32_t k;
        rc = mproc__object_export(v->type, v->u.h.obj, &ex);
        if (rc < 0)
            return rc;
        for (k = 0; k < ex.nh; k++) {
            rc = mproc__handle_list_add(out, ex.h[k]);
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

static int run_target(mproc_process *self)
{
    int code;
    /* From here on this process may start children of its own. */
    atomic_store(&g_boot, BS_DONE);
    if (self->run != NULL)
        code = self->run(self);
    else
        code = self->target(self->args ? self->args : &g_empty_list);
    return code;
}

/* The end of every child: like Python's, it terminates its own daemon
 * children and joins the others, flushes stdio, and ends without running
 * atexit handlers (a fork child inherited its parent's). A fork child
 * flushes only stdout and stderr, as Python does: other streams may hold
 * the parent's unwritten output, which is the parent's to write. */
static void child_finish(int code)
{
    exit_hook();
    if (g_forked) {
        flush_std();
    } else {
        fflush(NULL);
    }
    mproc__os_exit(code & 0xff);
}

/* Whether stdin's stdio buffer holds anything to forget (input read
 * ahead, pushed back, the end-of-file or error mark, or it was read as
 * wide characters: their buffer is another one), read from the FILE's
 * public fields where glibc has them: nothing, in the common case,
 * and then the child writes neither the FILE nor its lock (each page
 * written after fork is a copy-on-write fault) nor runs two functions of
 * the C library's it would be the first to call. Elsewhere: true. */
static bool stdin_holds(void)
{
#if defined(__GLIBC__) && !defined(__UCLIBC__) && defined(_IO_EOF_SEEN) &&     \
    defined(_IO_ERR_SEEN)
    const FILE *f = stdin;
    return f->_IO_read_ptr != f->_IO_read_end || f->_IO_save_base != NULL ||
           f->_mode > 0 || (f->_flags & (_IO_EOF_SEEN | _IO_ERR_SEEN)) != 0;
#else
    return true;
#endif
}

/* Forgets what the stdio buffer of stdin holds: a fork child given the
 * null device must not read the parent's buffered terminal input either. */
static void stdin_forget(bool null0)
{
    if (!stdin_holds())
        return;
#if defined(MPROC_SYS_FPURGE_GNU)
    (void)null0;
    __fpurge(stdin);
#elif defined(MPROC_SYS_FPURGE)
    (void)null0;
    (void)fpurge(stdin);
#elif !defined(_WIN32)
    /* No purge call: read the buffer empty. Only over the null device,
     * where the read that follows the buffer's last byte is end-of-file
     * at once (over the parent's own stdin it could block, or take input
     * that is the parent's); unlocked, as another thread of the parent
     * may have held stdin's lock at fork. */
    if (null0) {
        while (getc_unlocked(stdin) != EOF) {
        }
    }
#else
    (void)null0;
#endif
    clearerr(stdin);
}

/* The child's world after fork: no children of its own yet, the counter
 * restarts, and it is its own current process. */
static void child_after_fork(mproc_process *p, int64_t parent_pid)
{
    mproc_process *prev = g_current;
    /* Another thread may have held the lock at fork; it does not exist
     * here. */
    atomic_flag_clear(&g_lock);
    g_children = g_children_tail = NULL;
    g_counter = 0;
    g_exit_hook = false;
    g_forked = true;
    g_parent_obj.name = prev->name;
    g_parent_obj.ident = prev->ident;
    g_parent_obj.child.pid = parent_pid;
    g_parent_obj.daemon = prev->daemon;
    g_parent = &g_parent_obj;
    p->kind = PK_SELF;
    p->state = PS_STARTED;
    p->in_registry = false;
    p->next = p->prev = NULL;
    p->child.pid = mproc__os_getpid();
    p->child.handle = MPROC__BADHANDLE;
    p->child.lifeline = MPROC__BADHANDLE;
    p->child.intr = MPROC__BADHANDLE;
    p->owner = 0;
    g_current = p;
    if (!p->inherit_stdin)
        stdin_forget(p->child.stdin_null);
    child_finish(run_target(p));
}

static int start_fork(mproc_process *p)
{
    mproc__handle_list keep = {0};
    int64_t parent_pid = p->owner; /* this process: mproc_process_start */
    int rc;

    rc = collect_handles(p->args, &keep);
    if (rc < 0) {
        mproc__handle_list_free(&keep);
        return rc;
    }
    /* Output buffered before the fork must not be written twice. Only
     * the standard streams: the child flushes no other (child_finish). */
    flush_std();
    rc = mproc__os_fork(&p->child, keep.h, keep.n, p->daemon, p->inherit_stdin);
    if (rc == 0 && p->child.pid == 0) {
        /* free(NULL) in every child would fault in free's code: only a
         * list that holds something is freed (its target may end the
         * process by exit() from another thread, for leak checkers). */
        if (keep.h != NULL)
            mproc__handle_list_free(&keep);
        child_after_fork(p, parent_pid); /* never returns */
    }
    mproc__handle_list_free(&keep);
    return rc < 0 ? rc : 0;
}

static int put_u32(mproc__buf *b, uint32_t v)
{
    uint8_t x[4];
    x[0] = (uint8_t)v;
    x[1] = (uint8_t)(v >> 8);
    x[2] = (uint8_t)(v >> 16);
    x[3] = (uint8_t)(v >> 24);
    return mproc__buf_append(b, x, 4);
}

static int put_u64(mproc__buf *b, uint64_t v)
{
    int rc = put_u32(b, (uint32_t)v);
    return rc < 0 ? rc : put_u32(b, (uint32_t)(v >> 32));
}

static int put_str(mproc__buf *b, const mproc__boot_str *s)
{
    int rc = put_u32(b, s->n);
    return rc < 0 ? rc : mproc__buf_append(b, s->p, s->n);
}

static bool str_ok(const mproc__boot_str *s)
{
    return s->n <= MPROC__BOOT_STR_MAX &&
           (s->n == 0 || (s->p != NULL && memchr(s->p, 0, s->n) == NULL));
}

int mproc__boot_encode_head(const mproc__boot_frame *f, mproc__buf *b)
{
    int rc;
    if (f == NULL || b == NULL ||
        (f->flags & ~(MPROC__BOOT_FLAG_DAEMON | MPROC__BOOT_FLAG_RUN)) != 0 ||
        (f->method != MPROC_START_FORK && f->method != MPROC_START_SPAWN) ||
        f->ppid <= 0 || !str_ok(&f->module) || !str_ok(&f->name) ||
        !str_ok(&f->ident) || !str_ok(&f->pname))
        return MPROC_EINVAL;
    rc = put_u32(b, MPROC__BOOT_MAGIC);
    if (rc == 0)
        rc = put_u32(b, f->flags);
    if (rc == 0)
        rc = put_u32(b, f->method);
    if (rc == 0)
        rc = put_u64(b, (uint64_t)f->ppid);
    if (rc == 0)
        rc = put_u64(b, f->offset);
    if (rc == 0)
        rc = put_str(b, &f->module);
    if (rc == 0)
        rc = put_str(b, &f->name);
    if (rc == 0)
        rc = put_str(b, &f->ident);
    if (rc == 0)
        rc = put_str(b, &f->pname);
    if (rc == 0)
        rc = put_u32(b, f->args_len);
    return rc;
}

static mproc__boot_str view(const char *s)
{
    mproc__boot_str v;
    size_t n = strlen(s);
    v.p = s;
    /* Longer than any frame may hold: the encoder refuses it. */
    v.n = n > MPROC__BOOT_STR_MAX ? MPROC__BOOT_STR_MAX + 1 : (uint32_t)n;
    return v;
}

/* Callers pass 4 readable bytes (the analyzer loses track through the
 * reference counts of mproc_init's path). */
static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | /* NOLINT(clang-analyzer-core.NullDereference) */
           (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int write_all(mproc__handle h, const void *p, size_t n)
{
    return mproc__os_chan_write(h, p, n);
}

static int read_all(mproc__handle h, void *p, size_t n)
{
    uint8_t *q = p;
    while (n > 0) {
        int64_t r = mproc__os_chan_read(h, q, n);
        if (r < 0)
            return (int)r;
        if (r == 0)
            return MPROC_EEOF;
        q += r;
        n -= (size_t)r;
    }
    return 0;
}

/* The bootstrap frame for p (see the top of this file). */
static int build_boot(mproc_process *p, mproc__buf *b,
                      mproc__handle_list *handles)
{
    mproc__boot_frame f;
    const void *fnaddr;
    char *module = NULL;
    size_t at_len, start;
    int rc;

    memset(&f, 0, sizeof f);
    /* Function pointers become addresses through memcpy: ISO C has no
     * conversion between them and object pointers. */
    if (p->run != NULL) {
        memcpy(&fnaddr, &p->run, sizeof fnaddr);
        f.flags |= MPROC__BOOT_FLAG_RUN;
    } else {
        memcpy(&fnaddr, &p->target, sizeof fnaddr);
    }
    if (p->daemon)
        f.flags |= MPROC__BOOT_FLAG_DAEMON;
    rc = mproc__os_locate(fnaddr, &module, &f.offset);
    if (rc < 0)
        return rc;
    f.method = (uint32_t)mproc_get_start_method();
    f.ppid = mproc__os_getpid();
    f.module = view(module);
    f.name = view(p->name);
    f.ident = view(p->ident);
    f.pname = view(g_current->name);
    rc = put_u32(b, 0); /* frame length, filled in below */
    if (rc == 0)
        rc = mproc__boot_encode_head(&f, b);
    free(module);
    if (rc < 0)
        return rc;
    at_len = b->n - 4; /* the args length word, filled in below */
    start = b->n;
    /* No arguments (the common case) need no codec at all. */
    if (p->args != NULL &&
        !(p->args->type == MPROC_TYPE_LIST && p->args->u.list.n == 0)) {
        rc = mproc__encode(p->args, b, handles);
        if (rc < 0)
            return rc;
    }
    if (b->n - 4 > MPROC__BOOT_MAX)
        return MPROC_EMSGSIZE;
    {
        uint32_t alen = (uint32_t)(b->n - start);
        uint32_t flen = (uint32_t)(b->n - 4);
        uint8_t x[4];
        x[0] = (uint8_t)alen;
        x[1] = (uint8_t)(alen >> 8);
        x[2] = (uint8_t)(alen >> 16);
        x[3] = (uint8_t)(alen >> 24);
        memcpy(b->p + at_len, x, 4);
        x[0] = (uint8_t)flen;
        x[1] = (uint8_t)(flen >> 8);
        x[2] = (uint8_t)(flen >> 16);
        x[3] = (uint8_t)(flen >> 24);
        memcpy(b->p, x, 4);
    }
    return 0;
}

/* After a failed bootstrap: the child must not outlive it as a zombie. */
static void discard_child(mproc__child *c)
{
    if (mproc__os_wait(c, 0) != 0) {
        (void)mproc__os_signal(c, MPROC__SIGKILL);
        (void)mproc__os_wait(c, MPROC_FOREVER);
    }
    mproc__os_child_release(c);
    c->handle = MPROC__BADHANDLE;
    c->lifeline = MPROC__BADHANDLE;
    c->intr = MPROC__BADHANDLE;
}

/* The channel closed without a reply. A child that refused the bootstrap
 * says nothing on a channel (it may not trust it) and exits with
 * BOOT_EXIT_REFUSED at once: that is MPROC_EPERM. Anything else that ends
 * before replying (not an mproc program, a crash in start-up) is
 * MPROC_ECHILD; a program that closed the channel and still runs is not
 * waited for long. */
static int silent_end(mproc__child *c)
{
    if (mproc__os_wait(c, 2000) == 0 && c->exitcode == BOOT_EXIT_REFUSED)
        return MPROC_EPERM;
    return MPROC_ECHILD;
}

static int start_spawn(mproc_process *p)
{
    mproc__buf b = {0};
    mproc__handle_list handles = {0};
    mproc__handle ch[2] = {MPROC__BADHANDLE, MPROC__BADHANDLE};
    mproc__spawn_req req;
    const char *argv[4];
    char hbuf[32];
    char envbuf[sizeof BOOT_ENV + 32];
    char *exe = NULL;
    uint8_t reply[4];
    int rc, wrc, status;

    rc = build_boot(p, &b, &handles);
    if (rc == 0)
        rc = mproc__os_chan_pair(ch, true);
    if (rc == 0)
        rc = mproc__handle_list_add(&handles, ch[1]);
    if (rc < 0)
        goto out;
    lock();
    if (g_executable != NULL)
        exe = dup_str(g_executable);
    else if (g_spawn_path != NULL)
        exe = dup_str(g_spawn_path);
    unlock();
    snprintf(hbuf, sizeof hbuf, "%lld", (long long)ch[1]);
    /* The guard's entry (top of this file): the child knows it is one
     * before its main reaches mproc_init. */
    snprintf(envbuf, sizeof envbuf, "%s=%lld", BOOT_ENV, (long long)ch[1]);
    argv[0] = exe ? exe : (g_argv0 ? g_argv0 : "mproc-child");
    argv[1] = BOOT_ARG;
    argv[2] = hbuf;
    argv[3] = NULL;
    memset(&req, 0, sizeof req);
    req.exe = exe;
    req.argv = argv;
    req.inherit = handles.h;
    req.n_inherit = handles.n;
    req.daemon = p->daemon;
    req.inherit_stdin = p->inherit_stdin;
    req.env = envbuf;
    fflush(stdout);
    fflush(stderr);
    rc = mproc__os_spawn(&req, &p->child);
    mproc__os_handle_close(ch[1]);
    ch[1] = MPROC__BADHANDLE;
    if (rc < 0)
        goto out;
    /* A child that dies before it replies (not an mproc program, a crash
     * in start-up) reads as EOF or a broken pipe here. One that refused
     * its bootstrap (its main started a process first) replied without
     * reading the frame and closed its end: the write may then fail, but
     * the reply is there to read. */
    wrc = write_all(ch[0], b.p, b.n);
    rc = wrc == 0 || wrc == MPROC_EPIPE ? read_all(ch[0], reply, 4)
                                        : MPROC_ECHILD;
    if (rc == 0) {
        status = (int)(int32_t)get_u32(reply);
        rc = status <= 0 ? status : MPROC_ECHILD;
        if (rc == 0 && wrc != 0)
            rc = MPROC_ECHILD; /* a 0 without the frame: not ours */
    } else {
        rc = silent_end(&p->child);
    }
    if (rc < 0)
        discard_child(&p->child);
out:
    mproc__os_handle_close(ch[0]);
    mproc__os_handle_close(ch[1]);
    mproc__buf_free(&b);
    mproc__handle_list_free(&handles);
    free(exe);
    return rc;
}

int mproc_process_start(mproc_process *p)
{
    mproc_start_method m = p != NULL ? p->method : MPROC_START_DEFAULT;
    bool hook = false;
    int rc;

    if (p == NULL)
        return MPROC_EINVAL;
    if (p->kind != PK_CHILD)
        return MPROC_ESTATE;
    /* Before anything else: a spawned child that has not finished its
     * bootstrap starts nothing (the guard, top of this file). */
    rc = check_bootstrap();
    if (rc < 0)
        return rc;
    rc = m != MPROC_START_DEFAULT ? 0 : program_method(&m);
    lock();
    if (p->state != PS_CREATED) {
        rc = p->state == PS_CLOSED ? MPROC_ECLOSED : MPROC_ESTATE;
        unlock();
        return rc;
    }
    if (g_current->daemon) {
        unlock();
        return MPROC_EDAEMON;
    }
    if (rc < 0) {
        unlock();
        return rc; /* MPROC_START_METHOD names no method */
    }
    p->state = PS_STARTING;
    p->started = m; /* the fork child's copy of p reads it too */
    p->owner = mproc__os_getpid();
    /* Where the library's own atexit handler is safe, the first start
     * installs it (mproc_init may not have run: fork needs no init). */
    if (!g_exit_hook && g_current == &g_main && MPROC__OS_LIBRARY_ATEXIT) {
        g_exit_hook = true;
        hook = true;
    }
    unlock();
    if (hook)
        (void)atexit(exit_hook);

    rc = m == MPROC_START_FORK ? start_fork(p) : start_spawn(p);

    lock();
    if (rc < 0) {
        p->state = PS_CREATED;
        p->started = MPROC_START_DEFAULT;
    } else {
        p->state = PS_STARTED;
        atomic_fetch_add(&p->refs, 1);
        p->in_registry = true;
        p->next = NULL;
        p->prev = g_children_tail;
        if (g_children_tail)
            g_children_tail->next = p;
        else
            g_children = p;
        g_children_tail = p;
    }
    unlock();
    return rc;
}

/* ---------------------------------------------------------------------------
 * The child's side of spawn
 */

typedef struct boot_reader {
    const uint8_t *p;
    size_t n;
    bool bad;
} boot_reader;

static uint32_t rd_u32(boot_reader *r)
{
    uint32_t v;
    if (r->bad || r->n < 4) {
        r->bad = true;
        return 0;
    }
    v = get_u32(r->p);
    r->p += 4;
    r->n -= 4;
    return v;
}

static uint64_t rd_u64(boot_reader *r)
{
    uint64_t lo = rd_u32(r);
    uint64_t hi = rd_u32(r);
    return lo | hi << 32;
}

/* A view of the next string: bounded, inside the frame, without NUL. */
static mproc__boot_str rd_str(boot_reader *r)
{
    mproc__boot_str s = {NULL, 0};
    uint32_t n = rd_u32(r);
    if (r->bad || n > MPROC__BOOT_STR_MAX || r->n < n ||
        (n > 0 && memchr(r->p, 0, n) != NULL)) {
        r->bad = true;
        return s;
    }
    s.p = (const char *)r->p;
    s.n = n;
    r->p += n;
    r->n -= n;
    return s;
}

int mproc__boot_parse(const uint8_t *p, size_t n, mproc__boot_frame *f)
{
    boot_reader r;
    uint32_t magic;

    if (f == NULL)
        return MPROC_EINVAL;
    memset(f, 0, sizeof *f);
    if (p == NULL || n > MPROC__BOOT_MAX)
        return MPROC_EBADMSG;
    r.p = p;
    r.n = n;
    r.bad = false;
    magic = rd_u32(&r);
    f->flags = rd_u32(&r);
    f->method = rd_u32(&r);
    f->ppid = (int64_t)rd_u64(&r);
    f->offset = rd_u64(&r);
    f->module = rd_str(&r);
    f->name = rd_str(&r);
    f->ident = rd_str(&r);
    f->pname = rd_str(&r);
    f->args_len = rd_u32(&r);
    f->args = r.p;
    /* The arguments are the rest of the frame, exactly. */
    if (r.bad || magic != MPROC__BOOT_MAGIC || r.n != f->args_len ||
        (f->flags & ~(MPROC__BOOT_FLAG_DAEMON | MPROC__BOOT_FLAG_RUN)) != 0 ||
        (f->method != MPROC_START_FORK && f->method != MPROC_START_SPAWN) ||
        f->ppid <= 0) {
        memset(f, 0, sizeof *f);
        return MPROC_EBADMSG;
    }
    return 0;
}

static char *dup_view(const mproc__boot_str *s)
{
    char *d = malloc((size_t)s->n + 1);
    if (d != NULL) {
        if (s->n > 0)
            memcpy(d, s->p, s->n);
        d[s->n] = '\0';
    }
    return d;
}

static void reply(mproc__handle h, int status)
{
    uint8_t x[4];
    uint32_t v = (uint32_t)status;
    x[0] = (uint8_t)v;
    x[1] = (uint8_t)(v >> 8);
    x[2] = (uint8_t)(v >> 16);
    x[3] = (uint8_t)(v >> 24);
    (void)write_all(h, x, 4);
}

/* The handle argument: a decimal number, nothing else. */
static int parse_handle(const char *s, mproc__handle *h)
{
    char *end = NULL;
    long long v;
    if (s == NULL || *s < '0' || *s > '9')
        return MPROC_EINVAL;
    v = strtoll(s, &end, 10);
    if (end == s || *end != '\0' || v < 0 || v > INTPTR_MAX)
        return MPROC_EINVAL;
    *h = (mproc__handle)v;
    return 0;
}

/* The bootstrap guard (top of this file): 0 when this process may start
 * children, else MPROC_EBOOTSTRAP. The first refusal in a spawned child
 * that has not reached mproc_init tells the parent on the handle its
 * environment names, so that the parent's start fails with this code and
 * ends the child. */
static int check_bootstrap(void)
{
    int b = atomic_load(&g_boot);
    const char *env;
    mproc__handle h;
    int64_t parent = 0;

    if (b == BS_DONE)
        return 0;
    if (b != BS_UNKNOWN)
        return MPROC_EBOOTSTRAP;
    env = getenv(BOOT_ENV);
    if (env == NULL) {
        /* Not a spawned child (mproc_init may never run: fork needs
         * none); later starts skip the lookup. */
        (void)atomic_compare_exchange_strong(&g_boot, &b, BS_DONE);
        return atomic_load(&g_boot) == BS_DONE ? 0 : MPROC_EBOOTSTRAP;
    }
    if (!atomic_compare_exchange_strong(&g_boot, &b, BS_REFUSED))
        return atomic_load(&g_boot) == BS_DONE ? 0 : MPROC_EBOOTSTRAP;
    /* Written only to a channel the real parent made (as the bootstrap
     * itself: docs/security.md), so the entry cannot aim the reply at any
     * other descriptor of this program. */
    if (parse_handle(env, &h) == 0 && mproc__os_boot_channel(h, &parent) == 0) {
        reply(h, MPROC_EBOOTSTRAP);
        mproc__os_handle_close(h);
    }
    return MPROC_EBOOTSTRAP;
}

/* Ends a bootstrap that failed with rc, telling the parent. */
static void boot_fail(mproc__handle h, int rc)
{
    reply(h, rc < 0 ? rc : MPROC_EBADMSG);
    mproc__os_exit(BOOT_EXIT_FAILED);
}

/* Checks the channel and the program, reads the bootstrap, resolves the
 * target, replies, runs it, exits (the order is docs/security.md's). */
static void child_main_spawn(const char *harg)
{
    static mproc_process self;
    mproc__handle h = MPROC__BADHANDLE;
    mproc__boot_frame f;
    uint8_t lenb[4];
    uint8_t *frame = NULL;
    uint32_t len;
    int64_t ppid = 0;
    char *module = NULL, *name = NULL, *ident = NULL, *pname = NULL;
    void *fn = NULL;
    mproc_value *args = NULL;
    int rc;

    memset(&f, 0, sizeof f);
    /* Nothing is read from or written to a channel that is not the
     * parent's: its other end could be anyone's. */
    if (parse_handle(harg, &h) != 0 || mproc__os_boot_channel(h, &ppid) != 0)
        mproc__os_exit(BOOT_EXIT_REFUSED);
    /* A program that runs with more privilege than its invoker would run a
     * function the invoker chose: refused, and the parent is told. */
    if (mproc__os_secure_exec() != 0) {
        reply(h, MPROC_EPERM);
        mproc__os_exit(BOOT_EXIT_REFUSED);
    }
    /* Before the parent learns that the child runs: an interrupt from
     * then on is seen (Windows; POSIX needs nothing). A child that cannot
     * listen runs all the same, as one that ignores SIGINT. */
    (void)mproc__os_interrupt_listen();
    /* A channel that ends early: the parent is gone or gave up. */
    if (read_all(h, lenb, 4) != 0)
        mproc__os_exit(BOOT_EXIT_FAILED);
    len = get_u32(lenb);
    rc = (uint64_t)len > MPROC__BOOT_MAX ? MPROC_EBADMSG : 0;
    if (rc == 0 && (frame = malloc(len ? len : 1)) == NULL)
        rc = MPROC_ENOMEM;
    if (rc == 0 && read_all(h, frame, len) != 0)
        mproc__os_exit(BOOT_EXIT_FAILED);
    if (rc == 0)
        rc = mproc__boot_parse(frame, len, &f);
    /* The frame speaks for the parent the channel belongs to. */
    if (rc == 0 && f.ppid != ppid)
        rc = MPROC_EBADMSG;
    if (rc == 0) {
        module = dup_view(&f.module);
        name = dup_view(&f.name);
        ident = dup_view(&f.ident);
        pname = dup_view(&f.pname);
        if (module == NULL || name == NULL || ident == NULL || pname == NULL)
            rc = MPROC_ENOMEM;
    }
    if (rc == 0)
        rc = mproc__os_resolve(module, f.offset, &fn);
    if (rc == 0 && f.args_len > 0)
        rc = mproc__decode(f.args, f.args_len, true, &args);
    if (rc != 0)
        boot_fail(h, rc);
    free(module);

    atomic_store(&g_method, (int)f.method); /* one of the two (parsed) */
    g_parent_obj.name = pname;
    g_parent_obj.ident = (char *)"";
    g_parent_obj.child.pid = ppid;
    g_parent = &g_parent_obj;

    atomic_init(&self.refs, 1);
    self.kind = PK_SELF;
    self.state = PS_STARTED;
    self.name = name;
    self.ident = ident;
    self.static_strs = true;
    self.daemon = (f.flags & MPROC__BOOT_FLAG_DAEMON) != 0;
    self.started = MPROC_START_SPAWN;
    self.args = args;
    if (f.flags & MPROC__BOOT_FLAG_RUN)
        memcpy(&self.run, &fn, sizeof fn);
    else
        memcpy(&self.target, &fn, sizeof fn);
    self.child.pid = mproc__os_getpid();
    self.child.handle = MPROC__BADHANDLE;
    self.child.lifeline = MPROC__BADHANDLE;
    self.child.intr = MPROC__BADHANDLE;
    free(frame); /* args, name and the others are copies */
    lock();
    g_current = &self;
    unlock();

    reply(h, 0);
    mproc__os_handle_close(h);
    child_finish(run_target(&self));
}

/* Installs the exit hook from mproc_init: through `reg`, the atexit of the
 * program's own module, where the library's own would not do (backend.h,
 * MPROC__OS_LIBRARY_ATEXIT), else as the first start would. */
static void install_exit_hook(int (*reg)(void (*)(void)))
{
    bool hook = false;
    /* Safe: the first start installs it (fork needs no mproc_init).
     * Without `reg` there is no safe way: children are not joined. */
    if (MPROC__OS_LIBRARY_ATEXIT || reg == NULL)
        return;
    lock();
    if (!g_exit_hook && g_current == &g_main) {
        g_exit_hook = true;
        hook = true;
    }
    unlock();
    if (hook)
        (void)reg(exit_hook);
}

int mproc_init_ex(int argc, char **argv, int (*register_atexit)(void (*)(void)))
{
    bool spawned = argc >= 3 && argv != NULL && argv[1] != NULL &&
                   strcmp(argv[1], BOOT_ARG) == 0 && argv[2] != NULL;
    int b = BS_UNKNOWN;
    mproc_start_method m;
    char *path = NULL, *old;
    int rc;

    /* The guard's entry is for this process only. */
    mproc__os_unsetenv(BOOT_ENV);
    if (!atomic_compare_exchange_strong(&g_boot, &b,
                                        spawned ? BS_PENDING : BS_DONE) &&
        b == BS_REFUSED) {
        /* This program started a process before mproc_init: the parent
         * has been told, and the target must not run. */
        if (spawned) {
            fflush(NULL);
            mproc__os_exit(70);
        }
        return MPROC_EBOOTSTRAP;
    }
    if (argc >= 1 && argv != NULL)
        g_argv0 = argv[0];
    /* What spawn will start: the file this program was run from. A spawned
     * child needs it too, before its target: for its own children, and
     * where argv[0] is the only name of the program's file (no /proc), to
     * find its target's module. */
    (void)mproc__os_spawn_path(g_argv0, &path);
    lock();
    old = g_spawn_path;
    g_spawn_path = path;
    unlock();
    free(old);
    if (spawned)
        child_main_spawn(argv[2]); /* never returns */
    install_exit_hook(register_atexit);
    /* An unknown MPROC_START_METHOD is an error even where the program
     * chose a method itself. */
    rc = method_from_env(&m);
    if (rc == 0)
        (void)program_method(&m);
    return rc;
}

/* The exported function behind the mproc_init macro, for callers that do
 * not see the header (bindings, dlsym). */
int(mproc_init)(int argc, char **argv)
{
    return mproc_init_ex(argc, argv, NULL);
}

void mproc_exit(int code)
{
    if (g_current == &g_main) {
        /* The main program exits as exit() does: atexit handlers (the exit
         * hook among them) run. */
        fflush(NULL);
        exit(code & 0xff);
    }
    child_finish(code);
}

/* ---------------------------------------------------------------------------
 * Join, is_alive, signals, close
 */

static int parent_join(int timeout_ms)
{
    int64_t deadline = mproc__deadline(timeout_ms);
    for (;;) {
        int left;
        if (!mproc__os_parent_alive(g_parent_obj.child.pid))
            return 0;
        left = mproc__remaining(deadline);
        if (left == 0)
            return MPROC_ETIMEDOUT;
        mproc__os_sleep_ms(left < 0 || left > 10 ? 10 : left);
    }
}

int mproc_process_join(mproc_process *p, int timeout_ms)
{
    int s, rc;
    if (p == NULL)
        return MPROC_EINVAL;
    MPROC__CHECK_TIMEOUT(timeout_ms);
    if (p->kind == PK_PARENT)
        return parent_join(timeout_ms);
    if (p->kind == PK_SELF)
        return MPROC_ESTATE; /* a process cannot join itself */
    s = child_state(p);
    if (s < 0)
        return s;
    if (s == PS_EXITED)
        return 0;
    if (s != PS_STARTED)
        return MPROC_ESTATE;
    rc = mproc__os_wait(&p->child, timeout_ms);
    if (rc < 0)
        return rc;
    mark_exited(p);
    return 0;
}

int mproc_process_is_alive(mproc_process *p)
{
    int s, rc;
    if (p == NULL)
        return MPROC_EINVAL;
    if (p->kind == PK_PARENT)
        return mproc__os_parent_alive(p->child.pid);
    if (p->kind == PK_SELF)
        return 1;
    s = child_state(p);
    if (s < 0)
        return s;
    if (s != PS_STARTED)
        return 0;
    rc = reap_now(p);
    if (rc == MPROC_ETIMEDOUT)
        return 1;
    return rc < 0 ? rc : 0;
}

static int send_signal(mproc_process *p, int sig)
{
    int s = child_state(p);
    if (s < 0)
        return s;
    if (s == PS_EXITED)
        return 0;
    if (s != PS_STARTED)
        return MPROC_ESTATE;
    return mproc__os_signal(&p->child, sig);
}

int mproc_process_terminate(mproc_process *p)
{
    return send_signal(p, MPROC__SIGTERM);
}

int mproc_process_kill(mproc_process *p)
{
    return send_signal(p, MPROC__SIGKILL);
}

int mproc_process_interrupt(mproc_process *p)
{
    return send_signal(p, MPROC__SIGINT);
}

int mproc_process_close(mproc_process *p)
{
    int s = child_state(p), rc;
    if (s < 0)
        return s;
    if (s == PS_STARTING)
        return MPROC_ESTATE;
    if (s == PS_STARTED) {
        rc = reap_now(p);
        if (rc == MPROC_ETIMEDOUT)
            return MPROC_ESTATE; /* still running */
        if (rc < 0)
            return rc;
    }
    lock();
    /* The caller's reference keeps p; mark_exited released the
     * registry's. */
    p->state = PS_CLOSED; /* NOLINT(clang-analyzer-unix.Malloc) */
    unlock();
    mproc__os_child_release(&p->child);
    return 0;
}

int64_t mproc_process_pid(const mproc_process *p)
{
    int s;
    if (p == NULL)
        return MPROC_EINVAL;
    if (p->kind == PK_SELF)
        return mproc__os_getpid();
    if (p->kind == PK_PARENT)
        return p->child.pid;
    s = state_of((mproc_process *)(uintptr_t)p);
    if (s == PS_CLOSED)
        return MPROC_ECLOSED;
    if (s == PS_CREATED || s == PS_STARTING)
        return MPROC_ESTATE;
    return p->child.pid;
}

int mproc_process_exitcode(mproc_process *p, int *code)
{
    int s, rc;
    if (p == NULL || code == NULL)
        return MPROC_EINVAL;
    if (p->kind != PK_CHILD)
        return MPROC_ENOTEXITED;
    s = child_state(p);
    if (s < 0)
        return s;
    if (s == PS_CREATED || s == PS_STARTING)
        return MPROC_ENOTEXITED;
    if (s == PS_STARTED) {
        rc = reap_now(p);
        if (rc == MPROC_ETIMEDOUT)
            return MPROC_ENOTEXITED;
        if (rc < 0)
            return rc;
    }
    /* The caller's reference keeps p; mark_exited released the
     * registry's. */
    *code = p->child.exitcode; /* NOLINT(clang-analyzer-unix.Malloc) */
    return 0;
}

const char *mproc_process_name(const mproc_process *p)
{
    return p == NULL ? NULL : p->name;
}

int mproc_process_daemon(const mproc_process *p)
{
    if (p == NULL)
        return MPROC_EINVAL;
    if (p->kind == PK_CHILD &&
        state_of((mproc_process *)(uintptr_t)p) == PS_CLOSED)
        return MPROC_ECLOSED;
    return p->daemon ? 1 : 0;
}

mproc_value *mproc_process_state(const mproc_process *p)
{
    if (p == NULL || p->run == NULL)
        return NULL;
    return p->args;
}

int mproc__process_wait_handle(mproc_process *p, mproc__handle *h,
                               bool *ready_now)
{
    int s;
    if (p == NULL || h == NULL || ready_now == NULL)
        return MPROC_EINVAL;
    *h = MPROC__BADHANDLE;
    *ready_now = false;
    s = child_state(p);
    if (s < 0)
        return s;
    if (s == PS_EXITED) {
        *ready_now = true;
        return 0;
    }
    if (s != PS_STARTED)
        return MPROC_ESTATE;
    if (reap_now(p) == 0) {
        *ready_now = true;
        return 0;
    }
    *h = p->child.handle;
    return 0;
}

/* ---------------------------------------------------------------------------
 * The exit hook (Python's _exit_function): daemon children are terminated,
 * the others joined.
 */

/* New references to the registered children; *n of them. */
static mproc_process **snapshot(size_t *n)
{
    mproc_process **v, *p;
    size_t cnt = 0, i = 0;
    lock();
    for (p = g_children; p; p = p->next)
        cnt++;
    v = cnt ? malloc(cnt * sizeof(mproc_process *)) : NULL;
    if (v != NULL)
        for (p = g_children; p; p = p->next) {
            atomic_fetch_add(&p->refs, 1);
            v[i++] = p;
        }
    unlock();
    *n = v ? i : 0;
    return v;
}

static void exit_hook(void)
{
    size_t n, i;
    mproc_process **v = snapshot(&n);
    for (i = 0; i < n; i++)
        if (v[i]->daemon)
            (void)mproc__os_signal(&v[i]->child, MPROC__SIGTERM);
    for (i = 0; i < n; i++) {
        if (mproc__os_wait(&v[i]->child, MPROC_FOREVER) == 0)
            mark_exited(v[i]);
        proc_unref(v[i]);
    }
    /* Most children end with none of their own: free(NULL) would still
     * run (and fault in) free's code at every child's end. */
    if (v != NULL)
        free(v);
}

/* ---------------------------------------------------------------------------
 * Introspection
 */

mproc_process *mproc_current_process(void)
{
    mproc_process *p;
    lock();
    p = g_current;
    unlock();
    return p;
}

mproc_process *mproc_parent_process(void)
{
    return g_parent;
}

int mproc_active_children(mproc_process **out, size_t cap)
{
    mproc_process *p, *next, *reaped = NULL;
    int count = 0;

    if (out == NULL && cap > 0)
        return MPROC_EINVAL;
    lock();
    for (p = g_children; p; p = next) {
        next = p->next;
        /* Non-blocking; the backend's own lock nests inside ours. */
        if (mproc__os_wait(&p->child, 0) == 0) {
            if (p->state == PS_STARTED)
                p->state = PS_EXITED;
            registry_unlink_locked(p);
            p->next = reaped; /* reuse the link for the release list */
            reaped = p;
            continue;
        }
        if ((size_t)count < cap) {
            atomic_fetch_add(&p->refs, 1);
            out[count] = p;
        }
        if (count < INT32_MAX)
            count++;
    }
    unlock();
    while (reaped) {
        next = reaped->next;
        reaped->next = NULL;
        proc_unref(reaped);
        reaped = next;
    }
    return count;
}

int mproc_cpu_count(void)
{
    return mproc__os_cpu_count();
}

int mproc_cpu_count_usable(void)
{
    return mproc__os_cpu_count_usable();
}
