/*
 * mproc_mpi: the pool engine of the core (include/mproc_transport.h) over
 * the ranks of an MPI job. Rank 0 runs the engine with the transport
 * below; ranks 1..N-1 run the core's worker loop with an io over MPI.
 * Design and failure semantics: docs/mpi.md.
 *
 * Messages go over a duplicate of MPI_COMM_WORLD (ours alone, so that
 * they never mix with the program's own MPI traffic), as MPI_BYTE, their
 * kind in the tag. Every receive takes any tag from a given source (or
 * any source), so MPI's non-overtaking rule keeps each pair's messages in
 * the order they were sent.
 *
 *   rank 0 -> worker   BEGIN   a pool starts: initializer description and
 *                              encoded initarg; the worker loop starts
 *                      ENG     an engine message (chunk, function, stop)
 *                      LEAVE   leave the worker loop (terminate, destroy)
 *                      GO      run the worker loop again (a replacement)
 *                      END     the pool is over (i32 code: create's)
 *                      QUIT    no pool follows: rank 0 has finished
 *   worker -> rank 0   ENG     an engine message (hello, results)
 *                      BYE     the worker loop returned (i32 its code)
 *
 * Rank 0 never blocks in a send (MPI_Isend of a copy): a worker may be
 * blocked sending a large result that rank 0 would not read while it is
 * itself stuck sending. It receives eagerly (every message that has
 * arrived, into a queue per worker) from MPI_ANY_SOURCE, so the engine
 * refills whichever rank answered. Waiting is polling (MPI has no
 * wait-on-anything with a timeout and a wake from another thread): tight
 * at first, then sched_yield, then naps that grow to a bound, on a
 * condition variable that `wake` signals.
 *
 * MPI is fail-stop: nothing here watches for a dead rank (the launcher
 * ends the job). A worker rank names the rank and task it dies in from
 * its own signal handlers and an atexit hook.
 *
 * Map: the world (joining, identity, finalize); waiting; the master's
 * transport; the worker ranks; crash reports; the public calls.
 */
#include "mpi-internal.h"

#include <mpi.h>

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum {
    TAG_ENG = 1,
    TAG_BEGIN = 2,
    TAG_LEAVE = 3,
    TAG_GO = 4,
    TAG_END = 5,
    TAG_QUIT = 6,
    TAG_BYE = 7
};

enum { MODE_UNKNOWN, MODE_LOCAL, MODE_MPI };

#define IDENT_MAGIC 0x4d504d49u /* "IMPM" */
#define HOST_MAX 64

/* What each rank tells rank 0 at the first create. Fixed layout. */
typedef struct ident_rec {
    uint32_t magic;
    uint32_t version; /* mproc_version() */
    int32_t rank;
    int32_t pid;
    mproc__mpi_id ids[3]; /* the program, libmproc, libmproc_mpi */
    char host[HOST_MAX];
} ident_rec;

typedef struct mtrans mtrans;

static struct {
    pthread_mutex_t mu;
    int mode;
    bool we_init;
    pid_t pid; /* the process that joined: a fork child is not a rank */
    int rank, size;
    bool setup; /* the communicator and the identity check are done */
    MPI_Comm comm;
    int verdict; /* 0, or MPROC_ERESOLVE: a rank's binary differs */
    mproc_task_status bad;
    mtrans *live;        /* rank 0: the transport of the live pool */
    bool end_owed;       /* rank 0: a failed create owes the workers an END */
    bool shut;           /* rank 0: QUIT sent; worker: QUIT received */
    atomic_bool serving; /* worker rank: inside create */
    char host[HOST_MAX];
} g = {.mu = PTHREAD_MUTEX_INITIALIZER, .comm = MPI_COMM_NULL};

static int mpi_err(int rc)
{
    return rc == MPI_SUCCESS ? 0 : MPROC_EIO;
}

/* Launchers that start MPI jobs leave these in every rank's environment:
 * Open MPI's mpirun, MPICH's (and Intel MPI's, MVAPICH's) hydra, and
 * PMIx-based launchers (Open MPI 5, Slurm). Without any of them the
 * program was not started as a job: no MPI_Init, which would start a
 * singleton (slow, and useless: a world of one rank). */
static bool in_job_env(void)
{
    static const char *const vars[] = {
        "OMPI_COMM_WORLD_SIZE", "PMI_SIZE",           "PMI_RANK", "PMIX_RANK",
        "MPI_LOCALNRANKS",      "MV2_COMM_WORLD_SIZE"};
    size_t i;
    for (i = 0; i < sizeof vars / sizeof vars[0]; i++)
        if (getenv(vars[i]) != NULL)
            return true;
    return false;
}

static int on_finalize(MPI_Comm comm, int key, void *val, void *extra);

static void at_exit(void)
{
    int done = 1;
    /* A worker rank that exits inside create (a task called exit) must
     * not finalize: MPI_Finalize would wait for the other ranks forever;
     * unfinalized, its end is abnormal and the launcher ends the job. */
    if (g.pid != getpid() || atomic_load(&g.serving))
        return;
    if (MPI_Finalized(&done) == MPI_SUCCESS && !done)
        (void)MPI_Finalize();
}

/* Joins the job, or learns that there is none (g.mu held). */
static int join(void)
{
    int init = 0, done = 0, prov = 0, kv;
    /* Known; in a fork child of a rank, in_world() says no (g.pid). */
    if (g.mode != MODE_UNKNOWN)
        return 0;
    /* A child of mproc (a pool worker, a process) never joins: it would
     * pose as the rank of its parent. */
    if (mproc_parent_process() != NULL) {
        g.mode = MODE_LOCAL;
        return 0;
    }
    if (MPI_Finalized(&done) != MPI_SUCCESS || done)
        return MPROC_ESTATE;
    if (MPI_Initialized(&init) != MPI_SUCCESS)
        return MPROC_EIO;
    if (!init) {
        if (!in_job_env()) {
            g.mode = MODE_LOCAL;
            return 0;
        }
        if (MPI_Init_thread(NULL, NULL, MPI_THREAD_SERIALIZED, &prov) !=
            MPI_SUCCESS)
            return MPROC_EIO;
        g.we_init = true;
    }
    g.pid = getpid();
    if (g.we_init)
        (void)atexit(at_exit);
    (void)MPI_Comm_rank(MPI_COMM_WORLD, &g.rank);
    (void)MPI_Comm_size(MPI_COMM_WORLD, &g.size);
    /* Called at the start of MPI_Finalize, while MPI still works (MPI
     * 3.1, 8.7.1): rank 0 releases the workers there. */
    if (MPI_Comm_create_keyval(MPI_COMM_NULL_COPY_FN, on_finalize, &kv, NULL) ==
        MPI_SUCCESS)
        (void)MPI_Comm_set_attr(MPI_COMM_SELF, kv, NULL);
    if (gethostname(g.host, sizeof g.host) != 0)
        snprintf(g.host, sizeof g.host, "?");
    g.host[sizeof g.host - 1] = '\0';
    g.mode = MODE_MPI;
    return 0;
}

/* This process is a rank of a job of more than one (g.mu held). */
static bool in_world(void)
{
    return g.mode == MODE_MPI && g.pid == getpid() && g.size > 1;
}

static void identity(ident_rec *r)
{
    mproc__mpi_id id;
    uintptr_t base;
    memset(r, 0, sizeof *r);
    r->magic = IDENT_MAGIC;
    r->version = mproc_version();
    r->rank = g.rank;
    r->pid = (int32_t)getpid();
    if (mproc__mpi_program_id(&id) == 0)
        r->ids[0] = id;
    if (mproc__mpi_module_of((const void *)(uintptr_t)&mproc_pool_worker_serve,
                             &base, &id, NULL, 0) == 0)
        r->ids[1] = id;
    if (mproc__mpi_module_of((const void *)(uintptr_t)&mproc_mpi_pool_create,
                             &base, &id, NULL, 0) == 0)
        r->ids[2] = id;
    memcpy(r->host, g.host, sizeof r->host);
}

static bool same_id(const mproc__mpi_id *a, const mproc__mpi_id *b)
{
    return a->kind != MPROC__MPI_ID_NONE && a->kind == b->kind &&
           a->len == b->len && memcmp(a->id, b->id, a->len) == 0;
}

/* The first create, on every rank: our communicator, and every rank's
 * program and libraries compared with rank 0's. Collective. */
static int setup(void)
{
    static const char *const what[3] = {"program", "mproc library",
                                        "mproc_mpi library"};
    ident_rec mine, *all = NULL;
    int bad = -1, rc, i, k;
    rc = mpi_err(MPI_Comm_dup(MPI_COMM_WORLD, &g.comm));
    if (rc < 0)
        return rc;
    (void)MPI_Comm_set_errhandler(g.comm, MPI_ERRORS_RETURN);
    identity(&mine);
    if (g.rank == 0) {
        all = calloc((size_t)g.size, sizeof *all);
        if (all == NULL)
            return MPROC_ENOMEM; /* the others wait: the job is lost */
    }
    rc = mpi_err(MPI_Gather(&mine, (int)sizeof mine, MPI_BYTE, all,
                            (int)sizeof mine, MPI_BYTE, 0, g.comm));
    if (rc == 0 && g.rank == 0) {
        memset(&g.bad, 0, sizeof g.bad);
        for (i = 1; i < g.size && bad < 0; i++) {
            ident_rec *r = &all[i];
            char a[40], b[40], m[400];
            r->host[HOST_MAX - 1] = '\0';
            if (r->magic != IDENT_MAGIC || r->version != mine.version) {
                bad = i;
                snprintf(m, sizeof m,
                         "rank %d (host %.40s) runs another mproc version "
                         "than rank 0",
                         i, r->magic == IDENT_MAGIC ? r->host : "?");
                memcpy(g.bad.message, m, sizeof g.bad.message - 1);
                break;
            }
            for (k = 0; k < 3; k++)
                if (!same_id(&r->ids[k], &mine.ids[k])) {
                    bad = i;
                    mproc__mpi_id_hex(&r->ids[k], b, sizeof b);
                    mproc__mpi_id_hex(&mine.ids[k], a, sizeof a);
                    snprintf(m, sizeof m,
                             "rank %d (host %.40s): its %s differs from rank "
                             "0's (%s %s, not %s)",
                             i, r->host, what[k],
                             r->ids[k].kind == MPROC__MPI_ID_BUILD ? "build-id"
                                                                   : "hash",
                             b[0] ? b : "none", a[0] ? a : "none");
                    memcpy(g.bad.message, m, sizeof g.bad.message - 1);
                    break;
                }
        }
        if (bad > 0) {
            g.bad.code = MPROC_ERESOLVE;
            g.bad.index = bad;
            g.bad.pid = bad;
        }
    }
    free(all);
    if (rc == 0)
        rc = mpi_err(MPI_Bcast(&bad, 1, MPI_INT, 0, g.comm));
    if (rc < 0)
        return rc;
    g.verdict = bad > 0 ? MPROC_ERESOLVE : 0;
    g.setup = true;
    return 0;
}

/* ---------------------------------------------------------------------------
 * Waiting: a few tight polls, then polls with sched_yield for about
 * 100 microseconds, then naps from 20 us doubling to max_us, each on a
 * condition that a wake cuts short (rank 0: other threads submit).
 */

typedef struct backoff {
    int polls;
    int64_t t0;
    long nap_us;
} backoff;

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

typedef struct waker {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_int woken;
} waker;

static int waker_init(waker *w)
{
    pthread_condattr_t a;
    atomic_init(&w->woken, 0);
    if (pthread_mutex_init(&w->mu, NULL) != 0)
        return MPROC_ENOMEM;
    if (pthread_condattr_init(&a) != 0) {
        pthread_mutex_destroy(&w->mu);
        return MPROC_ENOMEM;
    }
    (void)pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    if (pthread_cond_init(&w->cv, &a) != 0) {
        pthread_condattr_destroy(&a);
        pthread_mutex_destroy(&w->mu);
        return MPROC_ENOMEM;
    }
    pthread_condattr_destroy(&a);
    return 0;
}

static void waker_destroy(waker *w)
{
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
}

/* One step of waiting, at most `left_us` (< 0: no bound). */
static void pause_step(backoff *b, waker *w, long max_us, int64_t left_us)
{
    long us;
    if (b->polls == 0)
        b->t0 = now_us();
    if (b->polls++ < 32)
        return;
    if (now_us() - b->t0 < 100) {
        sched_yield();
        return;
    }
    b->nap_us = b->nap_us == 0 ? 20 : b->nap_us * 2;
    if (b->nap_us > max_us)
        b->nap_us = max_us;
    us = b->nap_us;
    if (left_us >= 0 && us > left_us)
        us = (long)left_us;
    if (us <= 0)
        return;
    if (w == NULL) {
        struct timespec ts = {0, us * 1000};
        nanosleep(&ts, NULL);
        return;
    }
    pthread_mutex_lock(&w->mu);
    if (atomic_load(&w->woken) == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += us * 1000;
        ts.tv_sec += ts.tv_nsec / 1000000000;
        ts.tv_nsec %= 1000000000;
        (void)pthread_cond_timedwait(&w->cv, &w->mu, &ts);
    }
    pthread_mutex_unlock(&w->mu);
}

/* ---------------------------------------------------------------------------
 * The master's transport (rank 0)
 */

typedef struct qmsg {
    struct qmsg *next;
    int tag;
    size_t len;
    uint8_t *p;
} qmsg;

typedef struct pend {
    struct pend *next;
    MPI_Request req;
    uint8_t *p;
} pend;

typedef struct mworker {
    qmsg *head, *tail; /* received, not yet taken */
    qmsg *cur;         /* the message the last recv gave */
    bool begun;        /* BEGIN sent in this pool */
    bool running;      /* in its worker loop (no BYE since BEGIN or GO) */
    bool leave_sent;
    int bye_code;
} mworker;

struct mtrans {
    int n;
    mworker *w;
    pend *pending;
    uint8_t *begin; /* BEGIN's payload */
    size_t begin_len;
    bool in_create;
    waker wk;
};

/* clang-tidy's MPI checker follows a request within one function only:
 * these keep theirs in t->pending, which progress_sends tests and, at the
 * end, waits for. */
// NOLINTBEGIN(clang-analyzer-optin.mpi.MPI-Checker)
static void progress_sends(mtrans *t, bool all)
{
    pend **pp = &t->pending;
    while (*pp != NULL) {
        pend *p = *pp;
        int done = 0;
        if (all)
            (void)MPI_Wait(&p->req, MPI_STATUS_IGNORE), done = 1;
        else
            (void)MPI_Test(&p->req, &done, MPI_STATUS_IGNORE);
        if (done) {
            *pp = p->next;
            free(p->p);
            free(p);
        } else {
            pp = &p->next;
        }
    }
}

/* Sends a copy without waiting (see the top: rank 0 never blocks). */
static int post(mtrans *t, int rank, int tag, const void *msg, size_t len)
{
    pend *p;
    int done = 0;
    if (len > INT_MAX)
        return MPROC_EMSGSIZE;
    p = calloc(1, sizeof *p);
    if (p == NULL)
        return MPROC_ENOMEM;
    p->p = malloc(len > 0 ? len : 1);
    if (p->p == NULL) {
        free(p);
        return MPROC_ENOMEM;
    }
    if (len > 0)
        memcpy(p->p, msg, len);
    if (MPI_Isend(p->p, (int)len, MPI_BYTE, rank, tag, g.comm, &p->req) !=
        MPI_SUCCESS) {
        free(p->p);
        free(p);
        return MPROC_EIO;
    }
    (void)MPI_Test(&p->req, &done, MPI_STATUS_IGNORE);
    if (done) {
        free(p->p);
        free(p);
        return 0;
    }
    p->next = t->pending;
    t->pending = p;
    return 0;
}

// NOLINTEND(clang-analyzer-optin.mpi.MPI-Checker)

static void put_i32(uint8_t *p, int32_t v)
{
    uint32_t u = (uint32_t)v;
    p[0] = (uint8_t)u;
    p[1] = (uint8_t)(u >> 8);
    p[2] = (uint8_t)(u >> 16);
    p[3] = (uint8_t)(u >> 24);
}

static int32_t get_i32(const uint8_t *p)
{
    return (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 |
                     (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
}

/* Takes every message that has arrived into its worker's queue. */
static int drain(mtrans *t)
{
    int k;
    for (k = 0; k < 256; k++) {
        MPI_Status st;
        int flag = 0, count = 0, w;
        qmsg *m;
        if (MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, g.comm, &flag, &st) !=
            MPI_SUCCESS)
            return MPROC_EIO;
        if (!flag)
            break;
        (void)MPI_Get_count(&st, MPI_BYTE, &count);
        m = calloc(1, sizeof *m);
        if (m == NULL ||
            (m->p = malloc(count > 0 ? (size_t)count : 1)) == NULL) {
            free(m);
            return MPROC_ENOMEM;
        }
        m->tag = st.MPI_TAG;
        m->len = (size_t)(count > 0 ? count : 0);
        if (MPI_Recv(m->p, count, MPI_BYTE, st.MPI_SOURCE, st.MPI_TAG, g.comm,
                     MPI_STATUS_IGNORE) != MPI_SUCCESS) {
            free(m->p);
            free(m);
            return MPROC_EIO;
        }
        w = st.MPI_SOURCE - 1;
        if (w < 0 || w >= t->n) { /* not one of this pool's workers */
            free(m->p);
            free(m);
            continue;
        }
        if (t->w[w].tail != NULL)
            t->w[w].tail->next = m;
        else
            t->w[w].head = m;
        t->w[w].tail = m;
    }
    progress_sends(t, false);
    return 0;
}

static void qfree(qmsg *m)
{
    if (m != NULL) {
        free(m->p);
        free(m);
    }
}

static qmsg *qpop(mworker *w)
{
    qmsg *m = w->head;
    if (m != NULL) {
        w->head = m->next;
        if (w->head == NULL)
            w->tail = NULL;
        m->next = NULL;
    }
    return m;
}

static int m_start(void *ctx, int wi)
{
    mtrans *t = ctx;
    mworker *w = &t->w[wi];
    int rc;
    qfree(w->cur);
    w->cur = NULL;
    while (w->head != NULL)
        qfree(qpop(w));
    if (!w->begun)
        rc = post(t, wi + 1, TAG_BEGIN, t->begin, t->begin_len);
    else
        rc = post(t, wi + 1, TAG_GO, NULL, 0);
    if (rc < 0)
        return rc;
    w->begun = true;
    w->running = true;
    w->leave_sent = false;
    return 0;
}

static int m_send(void *ctx, int wi, const void *msg, size_t len)
{
    mtrans *t = ctx;
    if (!t->w[wi].running)
        return MPROC_ECLOSED;
    return post(t, wi + 1, TAG_ENG, msg, len);
}

static int m_wait(void *ctx, const bool *live, bool *ready, int n,
                  int timeout_ms)
{
    mtrans *t = ctx;
    backoff b = {0, 0, 0};
    int64_t end = timeout_ms < 0 ? -1 : now_us() + (int64_t)timeout_ms * 1000;
    for (;;) {
        int i, count = 0, rc = drain(t);
        if (rc < 0)
            return rc;
        for (i = 0; i < n; i++) {
            ready[i] = live[i] && t->w[i].head != NULL;
            count += ready[i];
        }
        if (count > 0)
            return count;
        if (atomic_exchange(&t->wk.woken, 0) != 0)
            return 0;
        if (end >= 0 && now_us() >= end)
            return 0;
        pause_step(&b, &t->wk, 1000, end < 0 ? -1 : end - now_us());
    }
}

static int m_recv(void *ctx, int wi, const void **msg, size_t *len)
{
    mtrans *t = ctx;
    mworker *w = &t->w[wi];
    qmsg *m;
    qfree(w->cur);
    w->cur = NULL;
    if (!w->running)
        return MPROC_EEOF;
    m = qpop(w);
    if (m == NULL)
        return 0;
    if (m->tag == TAG_BYE) {
        w->bye_code = m->len >= 4 ? get_i32(m->p) : MPROC_EBADMSG;
        w->running = false;
        qfree(m);
        return MPROC_EEOF;
    }
    if (m->tag != TAG_ENG) {
        qfree(m);
        return MPROC_EBADMSG;
    }
    w->cur = m;
    *msg = m->p;
    *len = m->len;
    return 1;
}

static int m_started(void *ctx, int wi, uint64_t *seq, uint32_t *item)
{
    (void)ctx, (void)wi, (void)seq, (void)item;
    return MPROC_ENOSYS; /* a rank does not say when it starts a chunk */
}

static int m_stop(void *ctx, int wi, int how)
{
    mtrans *t = ctx;
    mworker *w = &t->w[wi];
    (void)how; /* a rank cannot be killed alone: it leaves after its chunk */
    if (!w->running || w->leave_sent)
        return 0;
    w->leave_sent = true;
    return post(t, wi + 1, TAG_LEAVE, NULL, 0);
}

/* Waits for worker wi's BYE, dropping what it sends before (results
 * nobody waits for any more). */
static int until_bye(mtrans *t, int wi, int timeout_ms)
{
    mworker *w = &t->w[wi];
    backoff b = {0, 0, 0};
    int64_t end = timeout_ms < 0 ? -1 : now_us() + (int64_t)timeout_ms * 1000;
    while (w->running) {
        qmsg *m;
        int rc = drain(t);
        if (rc < 0)
            return rc;
        while (w->running && (m = qpop(w)) != NULL) {
            if (m->tag == TAG_BYE) {
                w->bye_code = m->len >= 4 ? get_i32(m->p) : MPROC_EBADMSG;
                w->running = false;
            }
            qfree(m);
        }
        if (!w->running)
            break;
        if (end >= 0 && now_us() >= end)
            return MPROC_ETIMEDOUT;
        pause_step(&b, NULL, 1000, end < 0 ? -1 : end - now_us());
    }
    return 0;
}

static int m_reap(void *ctx, int wi, int timeout_ms, int64_t *pid,
                  int *exitcode)
{
    mtrans *t = ctx;
    int rc = until_bye(t, wi, timeout_ms);
    if (rc < 0)
        return rc;
    *pid = wi + 1;
    *exitcode = t->w[wi].bye_code;
    return 0;
}

static int64_t m_pid(void *ctx, int wi)
{
    (void)ctx;
    return wi + 1; /* the rank: pids of other machines mean nothing here */
}

static void m_wake(void *ctx)
{
    mtrans *t = ctx;
    pthread_mutex_lock(&t->wk.mu);
    atomic_store(&t->wk.woken, 1);
    pthread_cond_signal(&t->wk.cv);
    pthread_mutex_unlock(&t->wk.mu);
}

static int m_describe(void *ctx, mproc_task_fn fn, void *buf, size_t cap,
                      size_t *len)
{
    const void *addr;
    (void)ctx;
    memcpy(&addr, &fn, sizeof addr);
    return mproc__mpi_describe(addr, buf, cap, len);
}

/* Every rank that was sent something leaves its loop (g.mu not held). */
static void release_all(mtrans *t)
{
    int i;
    for (i = 0; i < t->n; i++) {
        (void)m_stop(t, i, 1);
        (void)until_bye(t, i, MPROC_FOREVER);
    }
}

/* An END or a QUIT to every worker rank, with a code (END's). */
static void post_all(mtrans *t, int tag, int code)
{
    uint8_t c[4];
    int r;
    put_i32(c, code);
    for (r = 1; r < g.size; r++)
        (void)post(t, r, tag, c, 4);
}

/* The same outside a pool: sent and gone before it returns. */
static void tell_all(int tag, int code)
{
    mtrans q;
    memset(&q, 0, sizeof q);
    post_all(&q, tag, code);
    progress_sends(&q, true);
}

static void trans_free(mtrans *t)
{
    int i;
    progress_sends(t, true);
    for (i = 0; i < t->n; i++) {
        qfree(t->w[i].cur);
        while (t->w[i].head != NULL)
            qfree(qpop(&t->w[i]));
    }
    free(t->w);
    free(t->begin);
    waker_destroy(&t->wk);
    free(t);
}

static void m_destroy(void *ctx)
{
    mtrans *t = ctx;
    release_all(t);
    pthread_mutex_lock(&g.mu);
    if (g.live == t)
        g.live = NULL;
    if (t->in_create)
        g.end_owed = true; /* create sends it, with its code */
    else
        post_all(t, TAG_END, 0);
    pthread_mutex_unlock(&g.mu);
    trans_free(t);
}

/* The BEGIN payload: u32 len + initializer description, u32 len +
 * encoded initarg (0: none). */
static int make_begin(mtrans *t, const mproc_pool_options *opt)
{
    uint8_t desc[512];
    size_t dlen = 0, alen = 0;
    void *arg = NULL;
    int rc = 0;
    if (opt != NULL && opt->initializer != NULL) {
        const void *addr;
        memcpy(&addr, &opt->initializer, sizeof addr);
        rc = mproc__mpi_describe(addr, desc, sizeof desc, &dlen);
        if (rc < 0)
            return MPROC_ERESOLVE;
    }
    if (opt != NULL && opt->initarg != NULL) {
        rc = mproc_value_encode(opt->initarg, &arg, &alen);
        if (rc < 0)
            return rc == MPROC_ENOMEM ? rc : MPROC_EINVAL;
    }
    t->begin_len = 8 + dlen + alen;
    t->begin = malloc(t->begin_len);
    if (t->begin == NULL) {
        mproc_free(arg);
        return MPROC_ENOMEM;
    }
    put_i32(t->begin, (int32_t)dlen);
    memcpy(t->begin + 4, desc, dlen);
    put_i32(t->begin + 4 + dlen, (int32_t)alen);
    if (alen > 0)
        memcpy(t->begin + 8 + dlen, arg, alen);
    mproc_free(arg);
    return 0;
}

static int trans_new(const mproc_pool_options *opt, int workers, int depth,
                     mtrans **out, mproc_pool_transport *tp)
{
    mtrans *t = calloc(1, sizeof *t);
    int rc;
    if (t == NULL)
        return MPROC_ENOMEM;
    t->n = workers;
    t->w = calloc((size_t)workers, sizeof *t->w);
    if (t->w == NULL || waker_init(&t->wk) < 0) {
        free(t->w);
        free(t);
        return MPROC_ENOMEM;
    }
    rc = make_begin(t, opt);
    if (rc < 0) {
        trans_free(t);
        return rc;
    }
    memset(tp, 0, sizeof *tp);
    tp->ctx = t;
    tp->start = m_start;
    tp->send = m_send;
    tp->wait = m_wait;
    tp->recv = m_recv;
    tp->started = m_started;
    tp->stop = m_stop;
    tp->reap = m_reap;
    tp->pid = m_pid;
    tp->wake = m_wake;
    tp->describe = m_describe;
    tp->destroy = m_destroy;
    tp->depth = depth;
    *out = t;
    return 0;
}

/* At the start of MPI_Finalize (rank 0: the end of the program, or its own
 * MPI_Finalize): a pool still live is let go, and the workers told that
 * no pool follows. */
static int on_finalize(MPI_Comm comm, int key, void *val, void *extra)
{
    (void)comm, (void)key, (void)val, (void)extra;
    pthread_mutex_lock(&g.mu);
    if (g.setup && g.rank == 0 && g.pid == getpid() && !g.shut) {
        mtrans *t = g.live;
        if (t != NULL) {
            pthread_mutex_unlock(&g.mu);
            release_all(t);
            pthread_mutex_lock(&g.mu);
        }
        tell_all(TAG_QUIT, 0);
        g.shut = true;
    }
    pthread_mutex_unlock(&g.mu);
    return MPI_SUCCESS;
}

/* ---------------------------------------------------------------------------
 * Crash reports (worker ranks): the launcher says which rank died; the
 * rank itself says which task it was running, from its signal handlers
 * (async-signal-safe: write(2) of a line prepared in advance, numbers
 * formatted by hand) and from an atexit hook for a task that calls exit.
 */

static char g_who[160];                 /* "mproc_mpi: rank 2 (pid 77 on vm)" */
static volatile sig_atomic_t g_in_task; /* a task (or the initializer) runs */
static volatile int64_t g_task = -1;    /* its index; -1: the initializer */
static struct sigaction g_old[32];
static const int g_sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};

static size_t put_str(char *b, size_t at, size_t cap, const char *s)
{
    while (*s && at + 1 < cap)
        b[at++] = *s++;
    b[at] = '\0';
    return at;
}

static size_t put_num(char *b, size_t at, size_t cap, int64_t v)
{
    char d[24];
    int n = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    if (v < 0)
        at = put_str(b, at, cap, "-");
    do {
        d[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u > 0);
    while (n > 0 && at + 1 < cap)
        b[at++] = d[--n];
    b[at] = '\0';
    return at;
}

static size_t put_task(char *b, size_t at, size_t cap)
{
    if (!g_in_task)
        return put_str(b, at, cap, " between tasks");
    if (g_task < 0)
        return put_str(b, at, cap, " running the pool's initializer");
    at = put_str(b, at, cap, " running task ");
    return put_num(b, at, cap, g_task);
}

static const char *sig_name(int sig)
{
    switch (sig) {
    case SIGSEGV:
        return "SIGSEGV";
    case SIGBUS:
        return "SIGBUS";
    case SIGFPE:
        return "SIGFPE";
    case SIGILL:
        return "SIGILL";
    case SIGABRT:
        return "SIGABRT";
    default:
        return "a signal";
    }
}

static void on_crash(int sig)
{
    char b[400];
    size_t at = put_str(b, 0, sizeof b, g_who);
    ssize_t wr;
    at = put_str(b, at, sizeof b, " died of ");
    at = put_str(b, at, sizeof b, sig_name(sig));
    at = put_str(b, at, sizeof b, " (signal ");
    at = put_num(b, at, sizeof b, sig);
    at = put_str(b, at, sizeof b, ")");
    at = put_task(b, at, sizeof b);
    at = put_str(b, at, sizeof b,
                 " of rank 0's pool; MPI is fail-stop: the job ends\n");
    wr = write(2, b, at);
    (void)wr;
    /* The handler that was there (MPI's backtrace, or the default) takes
     * it from here: a fault re-raises when this returns. */
    if (sig >= 0 && sig < 32)
        (void)sigaction(sig, &g_old[sig], NULL);
    if (sig == SIGABRT)
        (void)raise(sig);
}

static void on_exit_hook(void)
{
    char b[400];
    size_t at;
    ssize_t wr;
    if (!g_in_task || g.pid != getpid())
        return;
    at = put_str(b, 0, sizeof b, g_who);
    at = put_str(b, at, sizeof b, " called exit");
    at = put_task(b, at, sizeof b);
    at = put_str(b, at, sizeof b,
                 " of rank 0's pool; MPI is fail-stop: the job ends\n");
    wr = write(2, b, at);
    (void)wr;
}

static void install_crash_report(void)
{
    static bool done;
    size_t i;
    if (done)
        return;
    done = true;
    snprintf(g_who, sizeof g_who, "mproc_mpi: rank %d (pid %ld on %s)", g.rank,
             (long)getpid(), g.host);
    for (i = 0; i < sizeof g_sigs / sizeof g_sigs[0]; i++) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_crash;
        sigemptyset(&sa.sa_mask);
        (void)sigaction(g_sigs[i], &sa, &g_old[g_sigs[i]]);
    }
    (void)atexit(on_exit_hook);
}

/* ---------------------------------------------------------------------------
 * The worker ranks
 */

typedef struct wio {
    uint8_t *buf;
    size_t cap;
    /* END or QUIT met inside the worker loop, kept for serve_pool */
    bool has_ctl;
    int ctl_tag, ctl_code;
} wio;

/* END's code (a failed create's), from the message just received. */
static int end_code(const wio *c, size_t len)
{
    return len >= 4 ? (int)get_i32(c->buf) : 0;
}

/* The next message from rank 0 (blocking, by polling). */
static int w_next(wio *c, int *tag, size_t *len)
{
    backoff b = {0, 0, 0};
    for (;;) {
        MPI_Status st;
        int flag = 0, count = 0;
        if (MPI_Iprobe(0, MPI_ANY_TAG, g.comm, &flag, &st) != MPI_SUCCESS)
            return MPROC_EIO;
        if (flag) {
            (void)MPI_Get_count(&st, MPI_BYTE, &count);
            if (count < 0)
                count = 0;
            if ((size_t)count > c->cap) {
                uint8_t *nb = realloc(c->buf, (size_t)count);
                if (nb == NULL)
                    return MPROC_ENOMEM;
                c->buf = nb;
                c->cap = (size_t)count;
            }
            if (MPI_Recv(c->buf, count, MPI_BYTE, 0, st.MPI_TAG, g.comm,
                         MPI_STATUS_IGNORE) != MPI_SUCCESS)
                return MPROC_EIO;
            *tag = st.MPI_TAG;
            *len = (size_t)count;
            return 0;
        }
        pause_step(&b, NULL, 1000, -1);
    }
}

static int w_recv(void *ctx, const void **msg, size_t *len)
{
    wio *c = ctx;
    int tag = 0, rc;
    g_in_task = 0;
    rc = w_next(c, &tag, len);
    if (rc < 0)
        return rc;
    if (tag == TAG_ENG) {
        *msg = c->buf;
        return 0;
    }
    /* LEAVE ends the loop; END or QUIT (the master ended without a LEAVE)
     * too, and the caller sees them. */
    if (tag == TAG_END || tag == TAG_QUIT) {
        c->has_ctl = true;
        c->ctl_tag = tag;
        c->ctl_code = end_code(c, *len);
    }
    return MPROC_EEOF;
}

static int w_send(void *ctx, const void *msg, size_t len)
{
    (void)ctx;
    g_in_task = 0;
    if (len > INT_MAX)
        return MPROC_EMSGSIZE;
    return mpi_err(MPI_Send(msg, (int)len, MPI_BYTE, 0, TAG_ENG, g.comm));
}

static void w_running(void *ctx, int64_t index)
{
    (void)ctx;
    g_task = index;
    g_in_task = 1;
}

static int w_resolve(void *ctx, const void *desc, size_t len, mproc_task_fn *fn)
{
    void *addr = NULL;
    int rc;
    (void)ctx;
    rc = mproc__mpi_resolve(desc, len, &addr);
    if (rc == 0)
        memcpy(fn, &addr, sizeof addr);
    return rc;
}

static mproc_target g_init_fn;

/* The initializer, watched by the crash report. */
static int run_init(const mproc_value *arg)
{
    int rc;
    g_task = -1;
    g_in_task = 1;
    rc = g_init_fn(arg);
    g_in_task = 0;
    return rc;
}

static int init_unresolved(const mproc_value *arg)
{
    (void)arg;
    (void)mproc_task_set_message(
        "the pool's initializer cannot be found on this rank");
    return MPROC_ERESOLVE;
}

static void send_bye(int code)
{
    uint8_t c[4];
    put_i32(c, code);
    (void)MPI_Send(c, 4, MPI_BYTE, 0, TAG_BYE, g.comm);
}

/* Serves one pool from its BEGIN (in c->buf, len bytes) to its END:
 * returns END's code (*quit false), or 0 with *quit for a QUIT. */
static int serve_pool(wio *c, size_t len, bool *quit)
{
    mproc_pool_worker_io io;
    mproc_value *initarg = NULL;
    mproc_target init = NULL;
    uint32_t dlen = 0, alen = 0;
    int rc = 0, tag = 0, code = 0;
    const uint8_t *p = c->buf;
    *quit = false;
    /* Rank 0 is trusted (docs/mpi.md); its message is still checked. */
    if (len < 8 || (dlen = (uint32_t)get_i32(p)) > len - 8 ||
        (alen = (uint32_t)get_i32(p + 4 + dlen)) != len - 8 - dlen)
        rc = MPROC_EBADMSG;
    if (rc == 0 && dlen > 0) {
        void *addr = NULL;
        if (mproc__mpi_resolve(p + 4, dlen, &addr) == 0)
            memcpy(&init, &addr, sizeof addr);
        else
            init = init_unresolved;
    }
    if (rc == 0 && alen > 0 &&
        mproc_value_decode(p + 8 + dlen, alen, &initarg) < 0)
        rc = MPROC_EBADMSG;
    g_init_fn = init;
    memset(&io, 0, sizeof io);
    io.ctx = c;
    io.recv = w_recv;
    io.send = w_send;
    io.resolve = w_resolve;
    io.running = w_running;
    io.initializer = init != NULL ? run_init : NULL;
    io.initarg = initarg;
    for (;;) {
        if (rc == 0)
            rc = mproc_pool_worker_serve(&io);
        g_in_task = 0;
        send_bye(rc);
        rc = 0;
        /* GO (a replacement), or the end of the pool; an ENG or LEAVE sent
         * before rank 0 saw the BYE is stale. */
        do {
            if (c->has_ctl) {
                c->has_ctl = false;
                tag = c->ctl_tag;
                code = c->ctl_code;
            } else {
                size_t n = 0;
                int wr = w_next(c, &tag, &n);
                if (wr < 0) {
                    mproc_value_free(initarg);
                    return wr;
                }
                code = end_code(c, n);
            }
        } while (tag != TAG_GO && tag != TAG_END && tag != TAG_QUIT);
        if (tag != TAG_GO)
            break;
    }
    mproc_value_free(initarg);
    *quit = tag == TAG_QUIT;
    return *quit ? 0 : code;
}

/* A worker rank inside create: serves pools until END (return mode) or
 * QUIT. */
static int worker_main(bool return_mode)
{
    wio c;
    int rc = 0;
    bool quit = false;
    memset(&c, 0, sizeof c);
    install_crash_report();
    for (;;) {
        int tag = 0;
        size_t len = 0;
        rc = w_next(&c, &tag, &len);
        if (rc < 0)
            break;
        if (tag == TAG_BEGIN)
            rc = serve_pool(&c, len, &quit);
        else if (tag == TAG_END)    /* a pool without this rank, or a create */
            rc = end_code(&c, len); /* that failed */
        else if (tag == TAG_QUIT)
            quit = true;
        else
            continue; /* stale */
        /* Serving (the default): pool after pool, a failed create too. */
        if (quit || return_mode)
            break;
    }
    free(c.buf);
    if (quit) {
        pthread_mutex_lock(&g.mu);
        g.shut = true;
        pthread_mutex_unlock(&g.mu);
    }
    if (quit && !return_mode) {
        int done = 1;
        atomic_store(&g.serving, false);
        if (MPI_Finalized(&done) == MPI_SUCCESS && !done)
            (void)MPI_Finalize();
        exit(0);
    }
    if (quit)
        return MPROC_ECLOSED;
    return rc == 0 ? MPROC_MPI_WORKER : rc;
}

/* ---------------------------------------------------------------------------
 * The public calls
 */

static int check_mpi_options(const mproc_mpi_options *m)
{
    if (m == NULL)
        return 0;
    if (m->depth < 0 || m->depth > 2)
        return MPROC_EINVAL;
    if ((m->flags & ~(MPROC_MPI_RETURN | MPROC_MPI_NO_FALLBACK)) != 0)
        return MPROC_EINVAL;
    return 0;
}

/* Rank 0's create (g.mu held; released inside). */
static int master_create(mproc_pool **out, const mproc_pool_options *opt,
                         const mproc_mpi_options *mpi)
{
    mproc_pool_options o;
    mproc_pool_transport tp;
    mtrans *t = NULL;
    int rc = 0, workers;
    if (g.shut) {
        pthread_mutex_unlock(&g.mu);
        return MPROC_ECLOSED;
    }
    if (g.live != NULL) {
        pthread_mutex_unlock(&g.mu);
        return MPROC_EBUSY;
    }
    if (g.verdict < 0) {
        if (opt != NULL && opt->init_status != NULL)
            *opt->init_status = g.bad;
        pthread_mutex_unlock(&g.mu);
        return g.verdict; /* every rank knows: no END */
    }
    memset(&o, 0, sizeof o);
    if (opt != NULL)
        o = *opt;
    workers = o.workers == 0 ? g.size - 1 : o.workers;
    if (out == NULL || o.workers < 0 || o.workers > g.size - 1)
        rc = MPROC_EINVAL;
    else if (o.maxtasksperchild != 0)
        rc = MPROC_ENOSYS;
    if (rc == 0) {
        o.workers = workers;
        rc = trans_new(&o, workers,
                       mpi != NULL && mpi->depth > 0 ? mpi->depth : 1, &t, &tp);
    }
    if (rc < 0) {
        /* Worker ranks under MPROC_MPI_RETURN return this code too. */
        tell_all(TAG_END, rc);
        pthread_mutex_unlock(&g.mu);
        return rc;
    }
    t->in_create = true;
    g.live = t;
    g.end_owed = false;
    pthread_mutex_unlock(&g.mu);
    rc = mproc_pool_create_transport(out, &o, &tp);
    pthread_mutex_lock(&g.mu);
    if (rc < 0) {
        if (g.end_owed) {
            tell_all(TAG_END, rc);
            g.end_owed = false;
        }
    } else {
        t->in_create = false;
    }
    pthread_mutex_unlock(&g.mu);
    return rc;
}

int mproc_mpi_pool_create(mproc_pool **out, const mproc_pool_options *opt,
                          const mproc_mpi_options *mpi)
{
    unsigned flags = mpi != NULL ? mpi->flags : 0;
    int rc;
    if (out != NULL)
        *out = NULL;
    rc = check_mpi_options(mpi);
    if (rc < 0)
        return rc;
    if (atomic_load(&g.serving))
        return MPROC_EPERM; /* from a task on a worker rank */
    pthread_mutex_lock(&g.mu);
    rc = join();
    if (rc < 0) {
        pthread_mutex_unlock(&g.mu);
        return rc;
    }
    if (!in_world()) {
        pthread_mutex_unlock(&g.mu);
        if (flags & MPROC_MPI_NO_FALLBACK)
            return MPROC_ENOSYS;
        return mproc_pool_create(out, opt);
    }
    if (!g.setup) {
        rc = setup();
        if (rc < 0) {
            pthread_mutex_unlock(&g.mu);
            return rc;
        }
    }
    if (g.rank == 0)
        return master_create(out, opt, mpi);
    if (g.verdict < 0 || g.shut) {
        pthread_mutex_unlock(&g.mu);
        return g.verdict < 0 ? g.verdict : MPROC_ECLOSED;
    }
    atomic_store(&g.serving, true);
    pthread_mutex_unlock(&g.mu);
    rc = worker_main((flags & MPROC_MPI_RETURN) != 0);
    atomic_store(&g.serving, false);
    return rc;
}

int mproc_mpi_world(int *rank, int *size)
{
    int rc, r = 0, s = 1;
    pthread_mutex_lock(&g.mu);
    rc = join();
    if (rc == 0 && g.mode == MODE_MPI && g.pid == getpid()) {
        r = g.rank;
        s = g.size;
    } else if (rc == 0) {
        rc = MPROC_ENOSYS;
    }
    pthread_mutex_unlock(&g.mu);
    if (rank != NULL)
        *rank = r;
    if (size != NULL)
        *size = s;
    return rc;
}

// NOLINTBEGIN(clang-analyzer-optin.mpi.MPI-Checker): as progress_sends
int mproc_mpi_shutdown(void)
{
    int rc;
    pthread_mutex_lock(&g.mu);
    rc = join();
    if (rc == 0 && in_world()) {
        if (g.rank != 0) {
            rc = MPROC_EPERM;
        } else if (g.live != NULL) {
            rc = MPROC_EBUSY;
        } else if (!g.shut && (g.setup || (rc = setup()) == 0)) {
            tell_all(TAG_QUIT, 0);
            g.shut = true;
        }
    }
    pthread_mutex_unlock(&g.mu);
    return rc;
}
// NOLINTEND(clang-analyzer-optin.mpi.MPI-Checker)
