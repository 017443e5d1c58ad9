/*
 * Pool: the engine (tasks, chunks, which worker holds which task, results,
 * futures, iterators, failure semantics, stats, callbacks) and the worker
 * loop. How messages reach workers is a transport's business
 * (include/mproc_transport.h); the core's own is pool-local.c.
 *
 * No thread of our own. Every pool call that waits drives the engine under
 * the pool's mutex: one thread at a time holds the driver role, dispatches
 * chunks, waits on the transport (mutex released), reads results, handles
 * deaths (a replacement worker is started here, so by a caller's thread,
 * never by a helper thread: fork from a thread of ours is what deadlocks
 * Python's pools), then runs the callbacks (mutex released, role kept, so
 * callbacks never overlap). Threads that are not driving wait on the pool's
 * condition for their results or for the role. Only the driver calls the
 * transport (except `wake` and `started`), so a submission from another
 * thread queues its chunk and wakes the driver.
 *
 * Messages (little-endian), engine to worker:
 *   'D' u8 0 u16 0 u32 fn_id, description     a function (before first use)
 *   'T' u8 flags u16 0 u32 fn_id u64 seq u32 n u32 0 i64 index,
 *                                   encoded list of n items (index: the
 *                                   first item's position in its call's
 *                                   input, for the io's `running`)
 *   'S' u8 0 u16 0                             finish and exit
 * worker to engine:
 *   'H' u8 0 u16 0 i32 code u32 len, message   hello, after the initializer
 *   'R' u8 0 u16 0 u32 n u64 seq, n x (i32 code u32 len bytes)
 * where bytes are an encoded result value (code 0) or a message. A worker
 * runs its chunks in order and tells the transport (`started`) which item
 * of which chunk it starts, before it starts it: when it dies, the engine
 * fails exactly what it had started and gives the rest to other workers.
 * Everything a worker sends is checked (lengths, sequence, counts): a
 * malformed message ends that worker as if it had died.
 *
 * Map: limits and messages; the lock; objects; the worker loop; chunks and
 * jobs; delivery; dispatch; results; deaths; driving; create and lifecycle;
 * map and apply; futures; iterators; stats and progress.
 */
#include "pool.h"

#include "atomics.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Chunks in flight per worker, and the bytes of them that the worker may
 * not have read yet (those after the chunk it has started: it reads a
 * chunk whole before it starts it). A send to a busy worker must never
 * block: the worker may be blocked sending a result that the engine, stuck
 * in that send, would never read. So a chunk goes to a busy worker only if
 * it fits in the channel with what the worker has not read (the channel
 * holds 200 KiB or more on every backend), and a larger one only to a
 * worker with nothing in flight, which is reading. A transport may ask for
 * fewer chunks per worker (its `depth`: mproc_mpi holds one or two per
 * rank). */
#define DEPTH 4
#define SLOW_MS 2.0
#define PIPE_BUDGET ((size_t)128 * 1024)
/* The automatic chunk size stops at this many encoded bytes, so that
 * chunks can be sent ahead (see above). */
#define AUTO_CHUNK_BYTES ((size_t)32 * 1024)
/* The longest message a worker may send with a failure or a hello. */
#define MSG_TEXT_MAX 4096
/* How long a dead worker may take to be reaped before it is killed. */
#define REAP_MS 2000
/* Function table bound per pool. */
#define MAX_FNS 65536
#define SEQ_BITS 40

enum { M_DEF = 'D', M_TASK = 'T', M_STOP = 'S', M_HELLO = 'H', M_RESULT = 'R' };
#define TASK_HDR 32
#define RESULT_HDR 16
#define F_STAR 1u

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

/* The message of a status, printf-style. */
#define set_msg(st, ...)                                                       \
    snprintf((st)->message, sizeof(st)->message, __VA_ARGS__)

static void set_text(mproc_task_status *st, const void *p, size_t n)
{
    if (n >= sizeof st->message)
        n = sizeof st->message - 1;
    if (n > 0)
        memcpy(st->message, p, n);
    st->message[n] = '\0';
}

/* ---------------------------------------------------------------------------
 * Objects
 */

enum { P_RUN, P_CLOSED, P_TERMINATED, P_JOINED, P_DESTROYED };
enum { W_OFF, W_STARTING, W_READY, W_STOPPING, W_ENDED };
enum { J_MAP, J_IMAP, J_FUTURE };

typedef struct chunk {
    struct chunk *next;
    struct job *job;
    int64_t first; /* index of its first item in the job */
    uint32_t n;
    uint64_t seq; /* set when dispatched */
    int64_t t0;   /* when it was sent (ms) */
    mproc__buf msg;
} chunk;

typedef struct worker {
    int state;
    chunk *head, *tail; /* in flight, oldest first */
    uint32_t inflight;
    size_t inflight_bytes;
    uint64_t next_seq;
    uint64_t assigned; /* chunks given (maxtasksperchild) */
    uint32_t fns_known;
    int64_t last_ms; /* when its last result came */
    int64_t pid;
    bool no_restart; /* its initializer failed: never started again */
} worker;

typedef struct outcome {
    mproc_value *v;
    mproc_task_status *st; /* NULL: success */
    bool done;
} outcome;

typedef struct fnent {
    mproc_task_fn fn;
    uint8_t *desc;
    size_t len;
} fnent;

typedef struct job {
    int kind;
    int refs; /* under the pool's mutex */
    mproc_pool *pool;
    uint32_t fn_id;
    uint8_t flags;
    size_t chunksize;
    /* source: a list (borrowed or owned), or a generator */
    const mproc_value *list;
    mproc_value *owned;
    size_t total; /* list: its length; generator: produced so far */
    size_t next;  /* list: the next item to put in a chunk */
    mproc_pool_gen gen;
    void *gen_arg;
    bool gen_end;
    int gen_err;
    chunk *ready, *ready_tail; /* produced chunks waiting for a worker */
    struct job *qnext;
    bool queued;
    size_t finished;
    bool dropped; /* iterator destroyed: outcomes are discarded */
    /* outcomes: map and list iterators: one per item; generator
     * iterators: a ring of `cap` (produced - delivered <= cap) */
    outcome *outs;
    size_t cap;
    size_t delivered; /* ordered: next index; unordered: count taken */
    size_t *fifo;     /* unordered: indices (mod cap) in finishing order */
    size_t fifo_head, fifo_n;
    bool unordered;
    /* map: the result list, filled in place (n set at the end), and the
     * failures */
    mproc_value *res;
    size_t nbad; /* its items without a value (failed) */
    mproc_task_status *fails;
    size_t nfails, capfails;
    /* future */
    bool started_cancel;
    bool cancelled;
    mproc_future_cb cb;
    void *cb_arg;
    struct job *cbnext;
    bool cb_queued;
} job;

struct mproc_future {
    job j;
};

struct mproc_imap {
    job j;
};

struct mproc_pool {
    /* The pool's mutex and condition, on two wait words (backend.h): an
     * uncontended lock is one atomic operation, no system call, on every
     * platform (a Windows mutex handle would cost a kernel call each). */
    _Alignas(8) unsigned char mu[MPROC__OS_WORD_SIZE];
    _Alignas(8) unsigned char cv[MPROC__OS_WORD_SIZE];
    mproc__handle mu_h, cv_h;
    atomic_int refs; /* the caller's, one per future and iterator */
    int state;
    int policy;
    uint64_t maxtasks;
    mproc_pool_transport t;
    bool t_live;
    uint32_t depth; /* chunks a worker may hold: DEPTH or the transport's */
    int n;
    worker *w;
    bool *live, *ready;
    unsigned rr;
    /* How long a chunk takes in a worker (ms, moving average; < 0 before
     * the first result): fast chunks are sent DEPTH ahead, slow ones one
     * at a time, so that a long task does not hold others in its
     * worker's line while another worker is idle (and they stay
     * cancellable). */
    double svc_ms;
    fnent *fns;
    size_t nfns, capfns;
    job *q, *q_tail;     /* jobs with work to hand out */
    chunk *rq, *rq_tail; /* chunks given back by dead workers */
    int64_t driver;      /* thread id of the driver, 0: none */
    bool excl;           /* an exclusive operation waits for the role */
    int waiters;
    job *cbs, *cbs_tail; /* futures whose callback is due */
    /* counters (tasks) */
    uint64_t submitted, done, failed, cancelled, replaced;
    int broken; /* no worker can run tasks: the code they fail with */
    mproc_task_status broken_st;
    /* progress */
    mproc_pool_progress_fn prog;
    void *prog_arg;
    uint64_t prog_every;
    int prog_ms;
    uint64_t prog_last;
    int64_t prog_last_ms;
    bool prog_due;
    /* create */
    mproc_task_status init_st;
    bool init_failed;
};

/* The pool whose callback this thread runs (blocking calls refuse). */
static _Thread_local mproc_pool *tl_in_cb;

/* The mutex word: 0 free, 1 held, 2 held with (possible) sleepers
 * (Drepper's "Futexes are tricky", mutex 2). */
static _Atomic uint32_t *word_of(unsigned char *w)
{
    return (_Atomic uint32_t *)(void *)w;
}

static void lock(mproc_pool *p)
{
    _Atomic uint32_t *w = word_of(p->mu);
    uint32_t expect = 0;
    if (atomic_compare_exchange_strong_explicit(
            w, &expect, 1, memory_order_acquire, memory_order_relaxed))
        return;
    while (atomic_exchange_explicit(w, 2, memory_order_acquire) != 0)
        (void)mproc__os_word_wait(p->mu, 2, p->mu_h, MPROC_FOREVER);
}

static void unlock(mproc_pool *p)
{
    if (atomic_exchange_explicit(word_of(p->mu), 0, memory_order_release) == 2)
        (void)mproc__os_word_wake(p->mu, p->mu_h, 1);
}

/* The condition: a sequence number that broadcast moves; a waiter that
 * read it before unlocking cannot miss a broadcast (its wait returns at
 * once when the number has moved). Wake-ups may be spurious: callers
 * loop. */
static void cond_wait(mproc_pool *p, int ms)
{
    uint32_t seq = atomic_load_explicit(word_of(p->cv), memory_order_relaxed);
    p->waiters++;
    unlock(p);
    if (ms != 0)
        (void)mproc__os_word_wait(p->cv, seq, p->cv_h, ms);
    lock(p);
    p->waiters--;
}

static void broadcast(mproc_pool *p)
{
    if (p->waiters > 0) {
        atomic_fetch_add_explicit(word_of(p->cv), 1, memory_order_relaxed);
        (void)mproc__os_word_wake(p->cv, p->cv_h, UINT32_MAX);
    }
}

/* ---------------------------------------------------------------------------
 * The worker loop (runs in the worker)
 */

static _Thread_local bool tl_in_task;
static _Thread_local char tl_msg[MPROC_TASK_MESSAGE_MAX];

int mproc_task_set_message(const char *message)
{
    size_t n;
    if (message == NULL)
        return MPROC_EINVAL;
    if (!tl_in_task)
        return MPROC_ESTATE;
    n = strlen(message);
    if (n >= sizeof tl_msg)
        n = sizeof tl_msg - 1;
    memcpy(tl_msg, message, n);
    tl_msg[n] = '\0';
    return 0;
}

typedef struct wfn {
    mproc_task_fn fn;
    int rc;
} wfn;

static int send_hello(const mproc_pool_worker_io *io, int code)
{
    uint8_t m[12 + sizeof tl_msg];
    size_t n = code != 0 ? strlen(tl_msg) : 0;
    m[0] = M_HELLO;
    m[1] = m[2] = m[3] = 0;
    put32(m + 4, (uint32_t)code);
    put32(m + 8, (uint32_t)n);
    memcpy(m + 12, tl_msg, n);
    return io->send(io->ctx, m, 12 + n);
}

/* Appends one item's outcome to a result message. */
static int add_outcome(mproc__buf *b, int code, const mproc_value *res)
{
    static const mproc_value none = {.type = MPROC_TYPE_NONE};
    uint8_t h[8];
    size_t at = b->n, size;
    int rc;
    if (code == 0) {
        put32(h, 0);
        rc = mproc__buf_append(b, h, 8);
        if (rc == 0)
            rc = mproc__encode(res != NULL ? res : &none, b, NULL);
        if (rc == 0 && b->n > MPROC_MESSAGE_MAX)
            rc = MPROC_EMSGSIZE; /* the whole message would be too large */
        if (rc == 0) {
            put32(b->p + at + 4, (uint32_t)(b->n - at - 8));
            return 0;
        }
        if (rc == MPROC_ENOMEM)
            return rc;
        b->n = at;
        code = rc;
        snprintf(tl_msg, sizeof tl_msg, "the task's result cannot be sent: %s",
                 mproc_strerror(rc));
    }
    size = strlen(tl_msg);
    put32(h, (uint32_t)code);
    put32(h + 4, (uint32_t)size);
    rc = mproc__buf_append(b, h, 8);
    return rc < 0 ? rc : mproc__buf_append(b, tl_msg, size);
}

/* A none for results the function left NULL, never freed. */
static mproc_value g_none = {.type = MPROC_TYPE_NONE};

/* Frees a result list whose items may be g_none. */
static void free_results(mproc_value *rl)
{
    size_t k;
    if (rl == NULL)
        return;
    for (k = 0; k < rl->u.list.n; k++)
        if (rl->u.list.items[k] != &g_none)
            mproc_value_free(rl->u.list.items[k]);
    rl->u.list.n = 0;
    mproc_value_free(rl);
}

/* Runs one item: its code, *res its result (a new value or NULL). */
static int run_item(const mproc_value *arg, int drc, uint32_t fn_id,
                    const wfn *fns, size_t nfns, bool star, mproc_value **res)
{
    int code;
    *res = NULL;
    tl_msg[0] = '\0';
    if (drc != 0) {
        code = drc;
        snprintf(tl_msg, sizeof tl_msg, "the task could not be decoded");
    } else if (fn_id >= nfns || fns[fn_id].fn == NULL) {
        code = fn_id < nfns ? fns[fn_id].rc : MPROC_ERESOLVE;
        snprintf(tl_msg, sizeof tl_msg,
                 "the task function cannot be found in the worker");
    } else if (star && arg->type != MPROC_TYPE_LIST) {
        code = MPROC_EINVAL;
        snprintf(tl_msg, sizeof tl_msg,
                 "a starmap item is not an argument list");
    } else {
        tl_in_task = true;
        code = fns[fn_id].fn(arg, res);
        tl_in_task = false;
        if (code != 0) {
            mproc_value_free(*res);
            *res = NULL;
            if (tl_msg[0] == '\0')
                snprintf(tl_msg, sizeof tl_msg, "the task function returned %d",
                         code);
        }
    }
    return code;
}

/* Runs a chunk and sends its results. While every item succeeds they are
 * kept and sent as one encoded list (flag 1: one decode on the engine's
 * side); from the first failure on, item by item with codes. */
static int run_chunk(const mproc_pool_worker_io *io, const uint8_t *m,
                     size_t len, wfn *fns, size_t nfns, mproc__buf *out)
{
    uint32_t fn_id, n, i, k;
    uint64_t seq;
    int64_t first;
    mproc_value *items = NULL, *rl = NULL;
    int drc, rc;
    bool star;
    if (len < TASK_HDR)
        return MPROC_EBADMSG;
    star = (m[1] & F_STAR) != 0;
    fn_id = get32(m + 4);
    seq = get64(m + 8);
    n = get32(m + 16);
    first = (int64_t)get64(m + 24);
    drc = mproc__decode(m + TASK_HDR, len - TASK_HDR, false, &items);
    if (drc == 0 && (items->type != MPROC_TYPE_LIST || items->u.list.n != n))
        drc = MPROC_EBADMSG;
    if (drc == MPROC_ENOMEM) {
        mproc_value_free(items);
        return drc;
    }
    out->n = 0;
    rc = mproc__buf_reserve(out, RESULT_HDR);
    if (rc < 0)
        goto out;
    out->p[0] = M_RESULT;
    out->p[1] = out->p[2] = out->p[3] = 0;
    put32(out->p + 4, n);
    put64(out->p + 8, seq);
    out->n = RESULT_HDR;
    if (drc == 0)
        rl = mproc__value_new_list(n);
    for (i = 0; i < n && rc == 0; i++) {
        mproc_value *res;
        int code;
        if (io->started != NULL)
            io->started(io->ctx, seq, i);
        if (io->running != NULL)
            io->running(io->ctx, first + (int64_t)i);
        code = run_item(drc == 0 ? items->u.list.items[i] : NULL, drc, fn_id,
                        fns, nfns, star, &res);
        if (rl != NULL && code == 0) {
            rl->u.list.items[rl->u.list.n++] = res != NULL ? res : &g_none;
            continue;
        }
        if (rl != NULL) {
            /* The first failure: what succeeded before goes item by item. */
            for (k = 0; k < rl->u.list.n && rc == 0; k++)
                rc = add_outcome(out, 0, rl->u.list.items[k]);
            free_results(rl);
            rl = NULL;
        }
        if (rc == 0)
            rc = add_outcome(out, code, res);
        mproc_value_free(res);
    }
    if (rc == 0 && rl != NULL) {
        out->p[1] = 1;
        rc = mproc__encode(rl, out, NULL);
        if (rc == 0 && out->n > MPROC_MESSAGE_MAX)
            rc = MPROC_EMSGSIZE;
        if (rc < 0 && rc != MPROC_ENOMEM) {
            /* A result that cannot be encoded: each says for itself. */
            out->p[1] = 0;
            out->n = RESULT_HDR;
            rc = 0;
            for (k = 0; k < rl->u.list.n && rc == 0; k++)
                rc = add_outcome(out, 0, rl->u.list.items[k]);
        }
    }
    free_results(rl);
    if (rc == 0)
        rc = io->send(io->ctx, out->p, out->n);
out:
    mproc_value_free(items);
    return rc;
}

int mproc_pool_worker_serve(const mproc_pool_worker_io *io)
{
    static const mproc_value none = {.type = MPROC_TYPE_NONE};
    wfn *fns = NULL;
    size_t nfns = 0;
    mproc__buf out = {0};
    uint64_t tasks = 0;
    int rc = 0;
    if (io == NULL || io->recv == NULL || io->send == NULL ||
        io->resolve == NULL)
        return MPROC_EINVAL;
    tl_msg[0] = '\0';
    if (io->initializer != NULL) {
        tl_in_task = true;
        rc = io->initializer(io->initarg != NULL ? io->initarg : &none);
        tl_in_task = false;
        if (rc != 0 && tl_msg[0] == '\0')
            snprintf(tl_msg, sizeof tl_msg, "the initializer returned %d", rc);
    }
    if (send_hello(io, rc) < 0 || rc != 0)
        return rc != 0 ? 1 : 0;
    for (;;) {
        const uint8_t *m;
        size_t len;
        rc = io->recv(io->ctx, (const void **)&m, &len);
        if (rc == MPROC_EEOF) {
            rc = 0;
            break;
        }
        if (rc < 0)
            break;
        if (len < 4) {
            rc = MPROC_EBADMSG;
            break;
        }
        if (m[0] == M_STOP) {
            rc = 0;
            break;
        }
        if (m[0] == M_DEF) {
            uint32_t id;
            wfn *nf;
            if (len < 8 || (id = get32(m + 4)) != nfns || id >= MAX_FNS) {
                rc = MPROC_EBADMSG;
                break;
            }
            nf = realloc(fns, (nfns + 1) * sizeof *fns);
            if (nf == NULL) {
                rc = MPROC_ENOMEM;
                break;
            }
            fns = nf;
            fns[nfns].fn = NULL;
            fns[nfns].rc = io->resolve(io->ctx, m + 8, len - 8, &fns[nfns].fn);
            if (fns[nfns].rc == 0 && fns[nfns].fn == NULL)
                fns[nfns].rc = MPROC_ERESOLVE;
            nfns++;
            continue;
        }
        if (m[0] != M_TASK) {
            rc = MPROC_EBADMSG;
            break;
        }
        rc = run_chunk(io, m, len, fns, nfns, &out);
        if (rc < 0)
            break;
        if (io->maxtasks > 0 && ++tasks >= io->maxtasks)
            break;
    }
    free(fns);
    mproc__buf_free(&out);
    return rc;
}

/* ---------------------------------------------------------------------------
 * Chunks and jobs
 */

static void chunk_free(chunk *c)
{
    mproc__buf_free(&c->msg);
    free(c);
}

/* A chunk of items [first, first + n) whose encoded list is `list`. */
static int chunk_new(job *j, int64_t first, uint32_t n, const mproc_value *list,
                     chunk **out)
{
    chunk *c = calloc(1, sizeof *c);
    int rc;
    if (c == NULL)
        return MPROC_ENOMEM;
    c->job = j;
    c->first = first;
    c->n = n;
    rc = mproc__buf_reserve(&c->msg, TASK_HDR);
    if (rc == 0) {
        uint8_t *h = c->msg.p;
        memset(h, 0, TASK_HDR);
        h[0] = M_TASK;
        h[1] = j->flags;
        put32(h + 4, j->fn_id);
        put32(h + 16, n);
        put64(h + 24, (uint64_t)first);
        c->msg.n = TASK_HDR;
        rc = mproc__encode(list, &c->msg, NULL);
    }
    if (rc < 0) {
        chunk_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

/* The next chunk of a list source (items borrowed through a view). */
static int list_chunk(job *j, chunk **out)
{
    size_t n = j->total - j->next;
    mproc_value view;
    int rc;
    if (n > j->chunksize)
        n = j->chunksize;
    memset(&view, 0, sizeof view);
    view.type = MPROC_TYPE_LIST;
    view.u.list.items = j->list->u.list.items + j->next;
    view.u.list.n = n;
    view.u.list.cap = n;
    rc = chunk_new(j, (int64_t)j->next, (uint32_t)n, &view, out);
    if (rc == 0)
        j->next += n;
    return rc;
}

static void job_ref(struct job *j);

/* Skips one encoded value of our own making (still bounds-checked). */
static const uint8_t *skip_value(const uint8_t *p, const uint8_t *end,
                                 int depth)
{
    uint32_t n, i;
    if (p >= end || depth > MPROC_VALUE_MAX_DEPTH)
        return NULL;
    switch (*p) {
    case 0x00:
        return p + 1;
    case 0x01:
        return end - p >= 2 ? p + 2 : NULL;
    case 0x02:
    case 0x03:
        return end - p >= 9 ? p + 9 : NULL;
    case 0x04:
    case 0x05:
        if (end - p < 5)
            return NULL;
        n = get32(p + 1);
        return (size_t)(end - p - 5) >= n ? p + 5 + n : NULL;
    case 0x06:
        if (end - p < 5)
            return NULL;
        n = get32(p + 1);
        p += 5;
        for (i = 0; i < n && p != NULL; i++)
            p = skip_value(p, end, depth + 1);
        return p;
    default:
        return NULL;
    }
}

/* Items [from, c->n) of chunk c as a chunk of their own (for another
 * worker), or NULL when none remain or memory runs out. */
static chunk *chunk_rest(chunk *c, uint32_t from)
{
    const uint8_t *p = c->msg.p + TASK_HDR + 2, *end = c->msg.p + c->msg.n;
    const uint8_t *start;
    chunk *r;
    uint32_t i;
    if (from >= c->n || end - p < 5 || p[0] != 0x06)
        return NULL;
    p += 5;
    for (i = 0; i < from && p != NULL; i++)
        p = skip_value(p, end, 1);
    if (p == NULL)
        return NULL;
    start = p;
    r = calloc(1, sizeof *r);
    if (r == NULL ||
        mproc__buf_reserve(&r->msg, TASK_HDR + 7 + (size_t)(end - start)) < 0) {
        free(r);
        return NULL;
    }
    memcpy(r->msg.p, c->msg.p, TASK_HDR + 2);
    put32(r->msg.p + 16, c->n - from);
    r->msg.p[TASK_HDR + 2] = 0x06;
    put32(r->msg.p + TASK_HDR + 3, c->n - from);
    memcpy(r->msg.p + TASK_HDR + 7, start, (size_t)(end - start));
    r->msg.n = TASK_HDR + 7 + (size_t)(end - start);
    r->job = c->job;
    job_ref(r->job);
    r->first = c->first + from;
    put64(r->msg.p + 24, (uint64_t)r->first);
    r->n = c->n - from;
    return r;
}

static void job_ref(struct job *j)
{
    j->refs++;
}

static void job_free(job *j)
{
    size_t i;
    chunk *c;
    if (j->outs != NULL) {
        for (i = 0; i < j->cap; i++) {
            mproc_value_free(j->outs[i].v);
            free(j->outs[i].st);
        }
    }
    if (j->res != NULL) {
        for (i = 0; i < j->total; i++)
            mproc_value_free(j->res->u.list.items[i]);
        j->res->u.list.n = 0;
        mproc_value_free(j->res);
    }
    free(j->outs);
    free(j->fifo);
    free(j->fails);
    while ((c = j->ready) != NULL) {
        j->ready = c->next;
        chunk_free(c);
    }
    mproc_value_free(j->owned);
    free(j);
}

static void pool_unref(mproc_pool *p);

/* Drops a reference; called with the mutex held. Returns true when the
 * job is gone (the pool reference it held is dropped by the caller after
 * unlocking: see job_release). */
static bool job_unref_locked(job *j)
{
    if (--j->refs > 0)
        return false;
    job_free(j);
    return true;
}

/* Drops a reference inside the engine, where the caller's own reference
 * keeps the pool (so this never drops the pool's last one). */
static void job_drop(mproc_pool *p, job *j)
{
    if (job_unref_locked(j))
        atomic_fetch_sub(&p->refs, 1);
}

static void job_release(mproc_pool *p, job *j)
{
    bool gone;
    lock(p);
    gone = job_unref_locked(j);
    unlock(p);
    if (gone)
        pool_unref(p);
}

/* A chunk that has left its job's hands (sent, given back, failed) holds
 * a reference to the job: the caller may destroy its future or iterator
 * meanwhile. */
static void chunk_release(mproc_pool *p, chunk *c)
{
    job *j = c->job;
    chunk_free(c);
    job_drop(p, j);
}

static void enqueue_job(mproc_pool *p, job *j)
{
    if (j->queued)
        return;
    j->queued = true;
    j->qnext = NULL;
    if (p->q_tail != NULL)
        p->q_tail->qnext = j;
    else
        p->q = j;
    p->q_tail = j;
    job_ref(j);
}

/* ---------------------------------------------------------------------------
 * Delivery (mutex held)
 */

static void queue_cb(mproc_pool *p, job *j)
{
    if (j->cb == NULL || j->cb_queued)
        return;
    j->cb_queued = true;
    j->cbnext = NULL;
    job_ref(j);
    if (p->cbs_tail != NULL)
        p->cbs_tail->cbnext = j;
    else
        p->cbs = j;
    p->cbs_tail = j;
}

/* The outcome of item `index` of j: v (taken) or st (copied; NULL:
 * success). */
static void deliver(mproc_pool *p, job *j, int64_t index, mproc_value *v,
                    const mproc_task_status *st)
{
    size_t i = (size_t)index;
    outcome *o;
    if (j->kind == J_FUTURE && j->cancelled) {
        mproc_value_free(v); /* counted when it was cancelled */
        return;
    }
    if (st != NULL)
        p->failed++;
    else
        p->done++;
    j->finished++;
    if (st != NULL && st->code == MPROC_ECLOSED && j->cancelled)
        p->cancelled++;
    if (j->dropped) {
        mproc_value_free(v);
        return;
    }
    if (j->kind == J_MAP) {
        j->res->u.list.items[i] = v;
        if (st != NULL) {
            j->nbad++;
            if (j->nfails == j->capfails) {
                size_t nc = j->capfails ? j->capfails * 2 : 8;
                mproc_task_status *nf = realloc(j->fails, nc * sizeof *nf);
                if (nf == NULL)
                    return; /* the item reads as none; counted failed */
                j->fails = nf;
                j->capfails = nc;
            }
            j->fails[j->nfails] = *st;
            j->fails[j->nfails].index = index;
            j->nfails++;
        }
        return;
    }
    o = &j->outs[i % j->cap];
    o->v = v;
    o->done = true;
    if (st != NULL) {
        o->st = malloc(sizeof *o->st);
        if (o->st != NULL) {
            *o->st = *st;
            o->st->index = index;
        }
    }
    if (j->unordered && j->fifo != NULL)
        j->fifo[(j->fifo_head + j->fifo_n++) % j->cap] = i % j->cap;
    if (j->kind == J_FUTURE)
        queue_cb(p, j);
}

static void fail_items(mproc_pool *p, job *j, int64_t first, uint32_t n,
                       const mproc_task_status *st)
{
    uint32_t i;
    for (i = 0; i < n; i++)
        deliver(p, j, first + (int64_t)i, NULL, st);
}

static void fail_chunk(mproc_pool *p, chunk *c, const mproc_task_status *st)
{
    fail_items(p, c->job, c->first, c->n, st);
}

/* Fails what job j has not yet handed out: its produced chunks and the rest
 * of its list. */
static void fail_unsent(mproc_pool *p, job *j, const mproc_task_status *st)
{
    chunk *c;
    while ((c = j->ready) != NULL) {
        j->ready = c->next;
        fail_chunk(p, c, st);
        chunk_free(c);
    }
    j->ready_tail = NULL;
    if (j->list != NULL && j->next < j->total) {
        size_t from = j->next;
        j->next = j->total;
        fail_items(p, j, (int64_t)from, (uint32_t)(j->total - from), st);
    }
}

/* Fails every task not finished (queued, produced, in flight). */
static void fail_everything(mproc_pool *p, const mproc_task_status *st)
{
    job *j, *jn;
    chunk *c;
    int i;
    while ((c = p->rq) != NULL) {
        p->rq = c->next;
        fail_chunk(p, c, st);
        chunk_release(p, c);
    }
    p->rq_tail = NULL;
    for (i = 0; i < p->n; i++) {
        worker *w = &p->w[i];
        while ((c = w->head) != NULL) {
            w->head = c->next;
            fail_chunk(p, c, st);
            chunk_release(p, c);
        }
        w->tail = NULL;
        w->inflight = 0;
        w->inflight_bytes = 0;
    }
    for (j = p->q; j != NULL; j = jn) {
        jn = j->qnext;
        fail_unsent(p, j, st);
        j->queued = false;
        job_drop(p, j);
    }
    p->q = p->q_tail = NULL;
}

/* ---------------------------------------------------------------------------
 * Dispatch (driver only)
 */

/* The next chunk to hand out, or NULL. */
static chunk *next_chunk(mproc_pool *p, int *err)
{
    chunk *c;
    *err = 0;
    if ((c = p->rq) != NULL) {
        p->rq = c->next;
        if (p->rq == NULL)
            p->rq_tail = NULL;
        c->next = NULL;
        return c;
    }
    while (p->q != NULL) {
        job *j = p->q;
        if (j->ready != NULL) {
            c = j->ready;
            j->ready = c->next;
            if (j->ready == NULL)
                j->ready_tail = NULL;
            c->next = NULL;
            job_ref(j);
            return c;
        }
        if (j->list != NULL && j->next < j->total && !j->dropped) {
            *err = list_chunk(j, &c);
            if (*err < 0)
                return NULL;
            job_ref(j);
            return c;
        }
        p->q = j->qnext;
        if (p->q == NULL)
            p->q_tail = NULL;
        j->queued = false;
        job_drop(p, j);
    }
    return NULL;
}

static void put_back(mproc_pool *p, chunk *c)
{
    c->next = p->rq;
    p->rq = c;
    if (p->rq_tail == NULL)
        p->rq_tail = c;
}

/* The bytes sent to worker wi that it may not have read yet. */
static size_t unread(mproc_pool *p, int wi)
{
    worker *w = &p->w[wi];
    uint64_t seq = 0;
    uint32_t item;
    size_t n = 0;
    chunk *c;
    if (p->t.started(p->t.ctx, wi, &seq, &item) != 0)
        seq = 0;
    for (c = w->head; c != NULL; c = c->next)
        if (c->seq > seq)
            n += c->msg.n;
    return n;
}

static bool has_room(mproc_pool *p, worker *w)
{
    if (w->state != W_READY)
        return false;
    if (p->maxtasks > 0 && w->assigned >= p->maxtasks)
        return false;
    return w->inflight < p->depth;
}

/* How many chunks worker w may hold with c among them: the pool's depth
 * (DEPTH, or the transport's) while chunks are quick; else two of a map or
 * iterator (one runs, the next waits at hand: the engine's round trip is
 * hidden), and a future's only to an idle worker (it stays cancellable, and no
 * long task holds it up). */
static bool may_take(mproc_pool *p, int wi, const chunk *c)
{
    worker *w = &p->w[wi];
    if (w->inflight == 0)
        return true;
    if (unread(p, wi) + c->msg.n > PIPE_BUDGET)
        return false;
    if (p->svc_ms >= 0 && p->svc_ms < SLOW_MS)
        return true;
    return c->job->kind != J_FUTURE && w->inflight < 2;
}

static void worker_lost(mproc_pool *p, int wi);

/* Sends the function table entries worker wi lacks, then the chunk. */
static int send_chunk(mproc_pool *p, int wi, chunk *c)
{
    worker *w = &p->w[wi];
    uint32_t fn_id = get32(c->msg.p + 4);
    int rc = 0;
    while (rc == 0 && w->fns_known <= fn_id) {
        fnent *f = &p->fns[w->fns_known];
        uint8_t *m = malloc(8 + f->len);
        if (m == NULL)
            return MPROC_ENOMEM;
        m[0] = M_DEF;
        m[1] = m[2] = m[3] = 0;
        put32(m + 4, w->fns_known);
        memcpy(m + 8, f->desc, f->len);
        rc = p->t.send(p->t.ctx, wi, m, 8 + f->len);
        free(m);
        if (rc == 0)
            w->fns_known++;
    }
    if (rc == 0) {
        c->seq = w->next_seq++;
        c->t0 = mproc__os_now_ms();
        put64(c->msg.p + 8, c->seq);
        rc = p->t.send(p->t.ctx, wi, c->msg.p, c->msg.n);
    }
    return rc;
}

static void dispatch(mproc_pool *p)
{
    bool progress = true;
    if (p->state >= P_TERMINATED || p->broken)
        return;
    while (progress) {
        int k;
        progress = false;
        for (k = 0; k < p->n; k++) {
            int wi = (int)((p->rr + (unsigned)k) % (unsigned)p->n);
            worker *w = &p->w[wi];
            chunk *c;
            int err, rc;
            if (!has_room(p, w))
                continue;
            c = next_chunk(p, &err);
            if (c == NULL)
                return; /* nothing (or no memory: retried next step) */
            if (!may_take(p, wi, c)) {
                put_back(p, c);
                continue;
            }
            MPROC__HOOK(MPROC__HOOK_POOL_SEND);
            rc = send_chunk(p, wi, c);
            /* In flight even if the send failed: the death that follows
             * gives it back (not started). */
            c->next = NULL;
            if (w->tail != NULL)
                w->tail->next = c;
            else
                w->head = c;
            w->tail = c;
            w->inflight++;
            w->inflight_bytes += c->msg.n;
            w->assigned++;
            progress = true;
            if (rc < 0) {
                worker_lost(p, wi);
                continue;
            }
        }
        p->rr = (p->rr + 1) % (unsigned)p->n;
    }
}

/* ---------------------------------------------------------------------------
 * Results
 */

static int handle_hello(mproc_pool *p, int wi, const uint8_t *m, size_t len)
{
    worker *w = &p->w[wi];
    int code;
    uint32_t n;
    if (len < 12 || w->state != W_STARTING)
        return MPROC_EBADMSG;
    code = (int)(int32_t)get32(m + 4);
    n = get32(m + 8);
    if (n > MSG_TEXT_MAX || n != len - 12)
        return MPROC_EBADMSG;
    if (code == 0) {
        w->state = W_READY;
        return 0;
    }
    /* The worker exits; it is not started again. */
    w->no_restart = true;
    if (!p->init_failed) {
        p->init_failed = true;
        memset(&p->init_st, 0, sizeof p->init_st);
        p->init_st.code = code;
        p->init_st.pid = w->pid;
        p->init_st.index = wi;
        set_text(&p->init_st, m + 12, n);
    }
    w->state = W_STOPPING;
    return 0;
}

/* Takes chunk c off worker w's line after its result. */
static void chunk_done(mproc_pool *p, worker *w, chunk *c)
{
    int64_t now = mproc__os_now_ms();
    double d = (double)(now - (c->t0 > w->last_ms ? c->t0 : w->last_ms));
    w->head = c->next;
    if (w->head == NULL)
        w->tail = NULL;
    w->inflight--;
    w->inflight_bytes -= c->msg.n;
    w->last_ms = now;
    p->svc_ms = p->svc_ms < 0 ? d : 0.7 * p->svc_ms + 0.3 * d;
}

static int handle_result(mproc_pool *p, int wi, const uint8_t *m, size_t len)
{
    worker *w = &p->w[wi];
    chunk *c = w->head;
    const uint8_t *q = m + RESULT_HDR, *end = m + len;
    uint32_t n, i;
    mproc_task_status st;
    if (len < RESULT_HDR || c == NULL)
        return MPROC_EBADMSG;
    n = get32(m + 4);
    if (get64(m + 8) != c->seq || n != c->n || m[1] > 1)
        return MPROC_EBADMSG;
    memset(&st, 0, sizeof st);
    st.pid = w->pid;
    if (m[1] == 1) {
        /* Every item succeeded: one encoded list of the results. */
        mproc_value *rl = NULL;
        int rc = mproc__decode(q, len - RESULT_HDR, false, &rl);
        if (rc == 0 && (rl->type != MPROC_TYPE_LIST || rl->u.list.n != n)) {
            mproc_value_free(rl);
            return MPROC_EBADMSG;
        }
        if (rc == MPROC_EBADMSG)
            return rc;
        chunk_done(p, w, c);
        if (rc < 0) {
            st.code = rc;
            set_msg(&st, "the results from worker %lld could not be read",
                    (long long)w->pid);
            fail_chunk(p, c, &st);
        } else {
            job *j = c->job;
            if (j->kind == J_MAP && !j->dropped) {
                /* The bulk of a map: straight into its result list. */
                memcpy(j->res->u.list.items + c->first, rl->u.list.items,
                       (size_t)n * sizeof(mproc_value *));
                p->done += n;
                j->finished += n;
            } else {
                for (i = 0; i < n; i++)
                    deliver(p, j, c->first + (int64_t)i, rl->u.list.items[i],
                            NULL);
            }
            rl->u.list.n = 0; /* the items were handed over */
            mproc_value_free(rl);
        }
        chunk_release(p, c);
        return 0;
    }
    /* Item by item: check the whole message before anything is
     * delivered. */
    for (i = 0; i < n; i++) {
        uint32_t l;
        if (end - q < 8)
            return MPROC_EBADMSG;
        l = get32(q + 4);
        if ((size_t)(end - q - 8) < l || (get32(q) != 0 && l > MSG_TEXT_MAX))
            return MPROC_EBADMSG;
        q += 8 + l;
    }
    if (q != end)
        return MPROC_EBADMSG;
    chunk_done(p, w, c);
    q = m + RESULT_HDR;
    for (i = 0; i < n; i++) {
        int code = (int)(int32_t)get32(q);
        uint32_t l = get32(q + 4);
        mproc_value *v = NULL;
        q += 8;
        if (code == 0) {
            int rc = mproc__decode(q, l, false, &v);
            if (rc < 0) {
                st.code = rc == MPROC_ENOMEM ? rc : MPROC_EBADMSG;
                set_msg(&st, "the result from worker %lld is malformed",
                        (long long)w->pid);
                deliver(p, c->job, c->first + (int64_t)i, NULL, &st);
            } else {
                deliver(p, c->job, c->first + (int64_t)i, v, NULL);
            }
        } else {
            st.code = code;
            set_text(&st, q, l);
            deliver(p, c->job, c->first + (int64_t)i, NULL, &st);
        }
        q += l;
    }
    chunk_release(p, c);
    return 0;
}

static int handle_msg(mproc_pool *p, int wi, const uint8_t *m, size_t len)
{
    if (len < 4)
        return MPROC_EBADMSG;
    if (m[0] == M_HELLO)
        return handle_hello(p, wi, m, len);
    if (m[0] == M_RESULT && p->w[wi].state >= W_READY)
        return handle_result(p, wi, m, len);
    return MPROC_EBADMSG;
}

/* ---------------------------------------------------------------------------
 * Deaths
 */

static int live_workers(mproc_pool *p)
{
    int i, k = 0;
    for (i = 0; i < p->n; i++)
        if (p->w[i].state == W_STARTING || p->w[i].state == W_READY)
            k++;
    return k;
}

static uint64_t outstanding(mproc_pool *p)
{
    return p->submitted - p->done - p->failed;
}

static int start_worker(mproc_pool *p, int wi)
{
    worker *w = &p->w[wi];
    int rc = p->t.start(p->t.ctx, wi);
    if (rc < 0) {
        w->state = W_OFF;
        return rc;
    }
    w->state = W_STARTING;
    w->next_seq = 1;
    w->assigned = 0;
    w->fns_known = 0;
    w->inflight = 0;
    w->inflight_bytes = 0;
    w->pid = p->t.pid(p->t.ctx, wi);
    return 0;
}

/* No worker is left to run tasks: they fail. */
static void check_broken(mproc_pool *p, int code)
{
    if (live_workers(p) > 0 || p->state >= P_TERMINATED)
        return;
    if (!p->broken) {
        p->broken = code;
        memset(&p->broken_st, 0, sizeof p->broken_st);
        if (p->init_failed) {
            p->broken_st = p->init_st;
            p->broken_st.code = MPROC_ECHILD;
        } else {
            p->broken_st.code = code;
            set_msg(&p->broken_st, "no pool worker could be started (%lld)",
                    (long long)code);
        }
    }
    fail_everything(p, &p->broken_st);
}

/* Worker wi has ended (or must: its channel failed). Reap it, settle its
 * chunks, replace it. */
static void worker_lost(mproc_pool *p, int wi)
{
    worker *w = &p->w[wi];
    int64_t pid = w->pid;
    int code = 0, src, state = w->state;
    uint64_t seq = 0;
    uint32_t item = 0;
    chunk *c;
    mproc_task_status st;
    /* A worker that ran its last task under maxtasksperchild ends by
     * itself: no death. */
    bool retired =
        p->maxtasks > 0 && w->assigned >= p->maxtasks && w->head == NULL;

    if (state == W_OFF || state == W_ENDED)
        return;
    /* What it sent before it went is still in its channel when its death
     * was seen first another way (a send that found it gone): take that
     * in first, so that only what it really held fails. */
    for (;;) {
        const void *m;
        size_t len;
        if (p->t.recv(p->t.ctx, wi, &m, &len) != 1 ||
            handle_msg(p, wi, m, len) < 0)
            break;
    }
    src = p->t.started(p->t.ctx, wi, &seq, &item);
    if (p->t.reap(p->t.ctx, wi, REAP_MS, &pid, &code) == MPROC_ETIMEDOUT) {
        (void)p->t.stop(p->t.ctx, wi, 2);
        (void)p->t.reap(p->t.ctx, wi, MPROC_FOREVER, &pid, &code);
    }
    w->state = W_ENDED;
    if (state == W_STARTING) {
        /* Died before its hello: start-up or the initializer crashed. */
        w->no_restart = true;
        if (!p->init_failed) {
            p->init_failed = true;
            memset(&p->init_st, 0, sizeof p->init_st);
            p->init_st.code = MPROC_EWORKER;
            p->init_st.pid = pid;
            p->init_st.exitcode = code;
            p->init_st.index = wi;
            set_msg(&p->init_st,
                    "pool worker %lld died before it was ready (exit code "
                    "%lld)",
                    (long long)pid, (long long)code);
        }
    }
    memset(&st, 0, sizeof st);
    st.code = MPROC_EWORKER;
    st.pid = pid;
    st.exitcode = code;
    if ((c = w->head) != NULL) {
        chunk *rest = NULL;
        w->head = c->next;
        if (src == 0 && seq == c->seq && item < c->n) {
            mproc_task_status lost = st;
            set_msg(&lost,
                    "pool worker %lld died (exit code %lld) after this task "
                    "ran, before its result was sent",
                    (long long)pid, (long long)code);
            fail_items(p, c->job, c->first, item, &lost);
            set_msg(&st,
                    "pool worker %lld died running this task (exit code "
                    "%lld)",
                    (long long)pid, (long long)code);
            fail_items(p, c->job, c->first + item, 1, &st);
            rest = chunk_rest(c, item + 1);
            if (rest == NULL && item + 1 < c->n)
                fail_items(p, c->job, c->first + item + 1, c->n - item - 1,
                           &st);
            chunk_release(p, c);
        } else if (src == 0 && seq < c->seq) {
            rest = c; /* not started: another worker runs it */
        } else {
            set_msg(&st,
                    "pool worker %lld died (exit code %lld) while it held "
                    "this task",
                    (long long)pid, (long long)code);
            fail_chunk(p, c, &st);
            chunk_release(p, c);
        }
        /* The chunks behind it were not started: back to the front of the
         * line, in order. */
        if (w->head != NULL) {
            w->tail->next = p->rq;
            if (p->rq == NULL)
                p->rq_tail = w->tail;
            p->rq = w->head;
        }
        if (rest != NULL) {
            rest->next = p->rq;
            p->rq = rest;
            if (p->rq_tail == NULL)
                p->rq_tail = rest;
        }
        w->head = w->tail = NULL;
    }
    w->inflight = 0;
    w->inflight_bytes = 0;
    if (p->policy == MPROC_POOL_FAIL_ALL && state == W_READY && !retired &&
        p->state < P_TERMINATED) {
        int i;
        set_msg(&st,
                "pool worker %lld died (exit code %lld): the pool fails "
                "every unfinished task (MPROC_POOL_FAIL_ALL)",
                (long long)pid, (long long)code);
        fail_everything(p, &st);
        for (i = 0; i < p->n; i++)
            if (p->w[i].state == W_STARTING || p->w[i].state == W_READY ||
                p->w[i].state == W_STOPPING)
                (void)p->t.stop(p->t.ctx, i, 1);
        p->state = P_TERMINATED;
        return;
    }
    if (w->no_restart) {
        check_broken(p, MPROC_ECHILD);
        return;
    }
    /* A worker replaces it while there is or may be work. */
    if (p->state == P_RUN || (p->state == P_CLOSED && outstanding(p) > 0)) {
        if (start_worker(p, wi) == 0)
            p->replaced++;
        else
            check_broken(p, MPROC_ECHILD);
    }
}

/* ---------------------------------------------------------------------------
 * Driving
 */

static int64_t self_id(void)
{
    return mproc__os_thread_id();
}

static void snapshot(mproc_pool *p, mproc_pool_stats *s);

/* Progress due? (mutex held) */
static void check_progress(mproc_pool *p)
{
    uint64_t fin;
    if (p->prog == NULL)
        return;
    fin = p->done + p->failed;
    if (fin == p->prog_last)
        return;
    if ((p->prog_every > 0 && fin - p->prog_last >= p->prog_every) ||
        (p->prog_ms > 0 &&
         mproc__os_now_ms() - p->prog_last_ms >= p->prog_ms) ||
        outstanding(p) == 0)
        p->prog_due = true;
}

/* Runs the due callbacks: mutex held on entry and exit, released around
 * each callback; the caller holds the driver role. */
static void run_callbacks(mproc_pool *p)
{
    mproc_pool *outer = tl_in_cb;
    for (;;) {
        job *j = p->cbs;
        if (p->prog_due) {
            mproc_pool_stats s;
            mproc_pool_progress_fn fn = p->prog;
            void *arg = p->prog_arg;
            p->prog_due = false;
            p->prog_last = p->done + p->failed;
            p->prog_last_ms = mproc__os_now_ms();
            snapshot(p, &s);
            if (fn != NULL) {
                unlock(p);
                tl_in_cb = p;
                fn(&s, arg);
                tl_in_cb = outer;
                lock(p);
            }
            continue;
        }
        if (j == NULL)
            break;
        p->cbs = j->cbnext;
        if (p->cbs == NULL)
            p->cbs_tail = NULL;
        unlock(p);
        tl_in_cb = p;
        j->cb((mproc_future *)(void *)j, j->cb_arg);
        tl_in_cb = outer;
        lock(p);
        job_drop(p, j);
    }
}

/* One step of the engine (mutex held, role held): dispatch, wait at most
 * `left` ms, read, settle deaths, dispatch, callbacks. */
static void step(mproc_pool *p, int left)
{
    int i, k;
    if (p->state >= P_JOINED || !p->t_live)
        return;
    dispatch(p);
    for (i = 0; i < p->n; i++) {
        int s = p->w[i].state;
        p->live[i] = s == W_STARTING || s == W_READY || s == W_STOPPING;
        p->ready[i] = false;
    }
    if (p->prog != NULL && p->prog_ms > 0 && outstanding(p) > 0) {
        int64_t due = p->prog_last_ms + p->prog_ms - mproc__os_now_ms();
        int d = due < 0 ? 0 : (due > p->prog_ms ? p->prog_ms : (int)due);
        if (left < 0 || d < left)
            left = d;
    }
    unlock(p);
    k = p->t.wait(p->t.ctx, p->live, p->ready, p->n, left);
    lock(p);
    for (i = 0; i < p->n && k >= 0; i++) {
        if (!p->live[i] || !p->ready[i])
            continue;
        for (;;) {
            const void *m;
            size_t len;
            int rc;
            if (p->w[i].state == W_OFF || p->w[i].state == W_ENDED)
                break;
            rc = p->t.recv(p->t.ctx, i, &m, &len);
            if (rc == 0)
                break;
            if (rc == 1)
                rc = handle_msg(p, i, m, len);
            if (rc < 0) {
                if (rc != MPROC_EEOF)
                    (void)p->t.stop(p->t.ctx, i, 2);
                worker_lost(p, i);
                break;
            }
        }
    }
    dispatch(p);
    check_progress(p);
    broadcast(p);
    run_callbacks(p);
}

/* Waits until pred(arg) holds, driving the pool when no one else does:
 * 0, or MPROC_ETIMEDOUT at the deadline. Mutex held. */
static int drive_until(mproc_pool *p, bool (*pred)(void *), void *arg,
                       int64_t deadline)
{
    int64_t me = self_id();
    for (;;) {
        int left;
        if (pred(arg))
            return 0;
        left = mproc__remaining(deadline);
        if (p->driver == 0 && !p->excl && p->state < P_JOINED && p->t_live) {
            p->driver = me;
            step(p, left);
            p->driver = 0;
            broadcast(p);
            if (pred(arg))
                return 0;
        } else if (p->driver == 0 && (p->state >= P_JOINED || !p->t_live)) {
            /* Nothing can change any more. */
            return pred(arg) ? 0 : MPROC_ETIMEDOUT;
        } else if (left != 0) {
            cond_wait(p, left);
        }
        if (mproc__remaining(deadline) == 0)
            return pred(arg) ? 0 : MPROC_ETIMEDOUT;
    }
}

/* Takes the driver role for an exclusive operation (mutex held). */
static void take_role(mproc_pool *p)
{
    p->excl = true;
    while (p->driver != 0) {
        p->t.wake(p->t.ctx);
        cond_wait(p, 50);
    }
    p->excl = false;
    p->driver = self_id();
}

static void give_role(mproc_pool *p)
{
    p->driver = 0;
    broadcast(p);
}

/* After a submission: hand the work out now if nobody drives, else the
 * driver does it. Mutex held. */
static void kick(mproc_pool *p)
{
    int64_t me = self_id();
    if (p->driver == me) {
        dispatch(p);
    } else if (p->driver == 0 && !p->excl) {
        p->driver = me;
        dispatch(p);
        give_role(p);
    } else {
        p->t.wake(p->t.ctx);
    }
}

/* A call that waits, from one of this pool's callbacks. */
static bool in_callback(mproc_pool *p)
{
    return tl_in_cb == p;
}

/* ---------------------------------------------------------------------------
 * Create and lifecycle
 */

static void pool_free(mproc_pool *p)
{
    size_t i;
    for (i = 0; i < p->nfns; i++)
        free(p->fns[i].desc);
    free(p->fns);
    free(p->w);
    free(p->live);
    free(p->ready);
    mproc__os_word_destroy(p->cv, p->cv_h);
    mproc__os_word_destroy(p->mu, p->mu_h);
    free(p);
}

static void pool_unref(mproc_pool *p)
{
    if (atomic_fetch_sub(&p->refs, 1) == 1)
        pool_free(p);
}

static bool pred_started(void *arg)
{
    mproc_pool *p = arg;
    int i;
    if (p->init_failed)
        return true;
    for (i = 0; i < p->n; i++)
        if (p->w[i].state == W_STARTING)
            return false;
    return true;
}

/* Ends and reaps every worker (mutex and role held). how: stop's. */
static void end_workers(mproc_pool *p, int how)
{
    int i;
    for (i = 0; i < p->n; i++) {
        worker *w = &p->w[i];
        if (w->state == W_STARTING || w->state == W_READY ||
            w->state == W_STOPPING)
            (void)p->t.stop(p->t.ctx, i, how);
    }
    for (i = 0; i < p->n; i++) {
        worker *w = &p->w[i];
        int64_t pid;
        int code;
        if (w->state == W_OFF || w->state == W_ENDED)
            continue;
        if (p->t.reap(p->t.ctx, i, REAP_MS, &pid, &code) == MPROC_ETIMEDOUT) {
            (void)p->t.stop(p->t.ctx, i, 2);
            (void)p->t.reap(p->t.ctx, i, MPROC_FOREVER, &pid, &code);
        }
        w->state = W_ENDED;
    }
}

static void close_transport(mproc_pool *p)
{
    if (p->t_live) {
        p->t_live = false;
        p->t.destroy(p->t.ctx);
    }
}

static int check_options(const mproc_pool_options *o)
{
    size_t size;
    if (o == NULL)
        return 0;
    if (o->workers < 0 || o->workers > MPROC_POOL_MAX_WORKERS)
        return MPROC_EINVAL;
    if (o->on_death != MPROC_POOL_FAIL_TASK &&
        o->on_death != MPROC_POOL_FAIL_ALL)
        return MPROC_EINVAL;
    if (o->method != MPROC_START_DEFAULT && o->method != MPROC_START_FORK &&
        o->method != MPROC_START_SPAWN)
        return MPROC_EINVAL;
    if (o->initarg != NULL && mproc__encoded_size(o->initarg, false, &size) < 0)
        return MPROC_EINVAL;
    return 0;
}

int mproc_pool_create_transport(mproc_pool **out, const mproc_pool_options *opt,
                                const mproc_pool_transport *t)
{
    mproc_pool *p;
    int rc, i, n;
    if (out != NULL)
        *out = NULL;
    if (t == NULL)
        return MPROC_EINVAL;
    rc = check_options(opt);
    if (rc == 0 && out == NULL)
        rc = MPROC_EINVAL;
    if (rc == 0 && (t->start == NULL || t->send == NULL || t->wait == NULL ||
                    t->recv == NULL || t->started == NULL || t->stop == NULL ||
                    t->reap == NULL || t->pid == NULL || t->wake == NULL ||
                    t->describe == NULL || t->depth < 0 || t->depth > DEPTH))
        rc = MPROC_EINVAL;
    n = opt != NULL && opt->workers > 0 ? opt->workers : 1;
    p = rc == 0 ? calloc(1, sizeof *p) : NULL;
    if (rc == 0 && p == NULL)
        rc = MPROC_ENOMEM;
    if (rc < 0) {
        if (t->destroy != NULL)
            t->destroy(t->ctx);
        return rc;
    }
    atomic_init(&p->refs, 1);
    p->svc_ms = -1;
    p->t = *t;
    p->t_live = true;
    p->depth = t->depth > 0 ? (uint32_t)t->depth : DEPTH;
    p->n = n;
    p->policy = opt != NULL ? opt->on_death : 0;
    p->maxtasks = opt != NULL ? opt->maxtasksperchild : 0;
    p->w = calloc((size_t)n, sizeof *p->w);
    p->live = calloc((size_t)n, sizeof *p->live);
    p->ready = calloc((size_t)n, sizeof *p->ready);
    rc = p->w && p->live && p->ready ? 0 : MPROC_ENOMEM;
    if (rc == 0)
        rc = mproc__os_word_init(p->mu, &p->mu_h);
    if (rc == 0) {
        rc = mproc__os_word_init(p->cv, &p->cv_h);
        if (rc < 0)
            mproc__os_word_destroy(p->mu, p->mu_h);
    }
    if (rc < 0) {
        close_transport(p);
        free(p->w);
        free(p->live);
        free(p->ready);
        free(p);
        return rc;
    }
    lock(p);
    p->driver = self_id();
    for (i = 0; i < n && rc == 0; i++)
        rc = start_worker(p, i);
    give_role(p);
    if (rc == 0)
        (void)drive_until(p, pred_started, p, -1);
    if (rc == 0 && p->init_failed) {
        rc = MPROC_ECHILD;
        if (opt != NULL && opt->init_status != NULL)
            *opt->init_status = p->init_st;
    }
    if (rc < 0) {
        take_role(p);
        end_workers(p, 2);
        p->state = P_DESTROYED;
        close_transport(p);
        give_role(p);
        unlock(p);
        pool_unref(p);
        return rc;
    }
    p->prog_last_ms = mproc__os_now_ms();
    unlock(p);
    *out = p;
    return 0;
}

int mproc_pool_create(mproc_pool **out, const mproc_pool_options *opt)
{
    mproc_pool_options o;
    mproc_pool_transport t;
    int rc;
    if (out != NULL)
        *out = NULL;
    rc = check_options(opt);
    if (rc < 0 || out == NULL)
        return rc < 0 ? rc : MPROC_EINVAL;
    if (opt != NULL)
        o = *opt;
    else
        memset(&o, 0, sizeof o);
    if (o.workers == 0) {
        o.workers = mproc_cpu_count_usable();
        if (o.workers < 1)
            o.workers = 1;
        if (o.workers > MPROC_POOL_MAX_WORKERS)
            o.workers = MPROC_POOL_MAX_WORKERS;
    }
    rc = mproc__pool_local_transport(&o, o.workers, &t);
    if (rc < 0)
        return rc;
    return mproc_pool_create_transport(out, &o, &t);
}

int mproc_pool_workers(mproc_pool *pool)
{
    return pool == NULL ? MPROC_EINVAL : pool->n;
}

int mproc_pool_close(mproc_pool *pool)
{
    if (pool == NULL)
        return MPROC_EINVAL;
    lock(pool);
    if (pool->state == P_RUN)
        pool->state = P_CLOSED;
    unlock(pool);
    return 0;
}

static void terminate_locked(mproc_pool *p, int code)
{
    mproc_task_status st;
    memset(&st, 0, sizeof st);
    st.code = code;
    set_msg(&st, "the pool was terminated before the task finished");
    fail_everything(p, &st);
    end_workers(p, 1);
    if (p->state < P_TERMINATED)
        p->state = P_TERMINATED;
}

int mproc_pool_terminate(mproc_pool *pool)
{
    if (pool == NULL)
        return MPROC_EINVAL;
    if (in_callback(pool))
        return MPROC_ESTATE;
    lock(pool);
    if (pool->state < P_DESTROYED) {
        take_role(pool);
        terminate_locked(pool, MPROC_ECLOSED);
        give_role(pool);
    }
    unlock(pool);
    return 0;
}

static bool pred_all_finished(void *arg)
{
    mproc_pool *p = arg;
    return outstanding(p) == 0 || p->state >= P_TERMINATED;
}

int mproc_pool_join(mproc_pool *pool, int timeout_ms)
{
    int64_t deadline;
    int rc, i;
    if (pool == NULL)
        return MPROC_EINVAL;
    MPROC__CHECK_TIMEOUT(timeout_ms);
    if (in_callback(pool))
        return MPROC_ESTATE;
    deadline = mproc__deadline(timeout_ms);
    lock(pool);
    if (pool->state == P_RUN) {
        unlock(pool);
        return MPROC_ESTATE;
    }
    rc = drive_until(pool, pred_all_finished, pool, deadline);
    if (rc == 0 && pool->state < P_JOINED) {
        take_role(pool);
        /* Every task has finished: the workers are told to finish (no
         * replacement starts now) and reaped, within the deadline. */
        if (pool->state == P_CLOSED)
            for (i = 0; i < pool->n; i++) {
                worker *w = &pool->w[i];
                if (w->state == W_STARTING || w->state == W_READY) {
                    static const uint8_t stop[4] = {M_STOP, 0, 0, 0};
                    if (pool->t.send(pool->t.ctx, i, stop, 4) < 0)
                        (void)pool->t.stop(pool->t.ctx, i, 1);
                    w->state = W_STOPPING;
                }
            }
        for (i = 0; i < pool->n && rc == 0; i++) {
            worker *w = &pool->w[i];
            int64_t pid;
            int code;
            if (w->state == W_OFF || w->state == W_ENDED)
                continue;
            unlock(pool);
            rc = pool->t.reap(pool->t.ctx, i, mproc__remaining(deadline), &pid,
                              &code);
            lock(pool);
            if (rc == 0)
                w->state = W_ENDED;
        }
        if (rc == 0) {
            pool->state = P_JOINED;
            close_transport(pool);
        }
        give_role(pool);
    }
    unlock(pool);
    return rc;
}

mproc_pool *mproc_pool_destroy(mproc_pool *pool)
{
    if (pool == NULL)
        return NULL;
    if (in_callback(pool))
        return pool;
    lock(pool);
    take_role(pool);
    if (pool->state < P_JOINED)
        terminate_locked(pool, MPROC_ECLOSED);
    pool->state = P_DESTROYED;
    close_transport(pool);
    /* Callbacks still due run now, once, as promised. */
    run_callbacks(pool);
    while (pool->q != NULL) {
        job *j = pool->q;
        pool->q = j->qnext;
        j->queued = false;
        job_drop(pool, j);
    }
    pool->q_tail = NULL;
    give_role(pool);
    unlock(pool);
    pool_unref(pool);
    return NULL;
}

/* ---------------------------------------------------------------------------
 * Submission
 */

/* The id of fn in the pool's table (mutex held). */
static int fn_id(mproc_pool *p, mproc_task_fn fn, uint32_t *id)
{
    size_t i, len = 0;
    uint8_t *d;
    int rc;
    for (i = 0; i < p->nfns; i++)
        if (p->fns[i].fn == fn) {
            *id = (uint32_t)i;
            return 0;
        }
    if (p->nfns >= MAX_FNS)
        return MPROC_ENOMEM;
    if (p->nfns == p->capfns) {
        size_t nc = p->capfns ? p->capfns * 2 : 8;
        fnent *nf = realloc(p->fns, nc * sizeof *nf);
        if (nf == NULL)
            return MPROC_ENOMEM;
        p->fns = nf;
        p->capfns = nc;
    }
    d = malloc(MPROC__POOL_DESC_MAX);
    if (d == NULL)
        return MPROC_ENOMEM;
    rc = p->t.describe(p->t.ctx, fn, d, MPROC__POOL_DESC_MAX, &len);
    if (rc < 0) {
        free(d);
        return rc;
    }
    p->fns[p->nfns].fn = fn;
    p->fns[p->nfns].desc = d;
    p->fns[p->nfns].len = len;
    *id = (uint32_t)p->nfns++;
    return 0;
}

/* State check for a submission (mutex held). */
static int can_submit(mproc_pool *p)
{
    if (p->state != P_RUN)
        return MPROC_ECLOSED;
    if (p->broken)
        return MPROC_ECHILD;
    return 0;
}

/* Takes the pool's mutex for a submission of job j of function fn: 0 with
 * the mutex held, the function's id in j and the job counted in the
 * pool's references; otherwise the code, the mutex released and j freed. */
static int admit(mproc_pool *p, job *j, mproc_task_fn fn)
{
    int rc;
    lock(p);
    rc = can_submit(p);
    if (rc == 0)
        rc = fn_id(p, fn, &j->fn_id);
    if (rc < 0) {
        unlock(p);
        job_free(j);
        return rc;
    }
    atomic_fetch_add(&p->refs, 1);
    return 0;
}

static job *job_new(mproc_pool *p, int kind, mproc_task_fn fn)
{
    /* A future and an iterator are a job (their only member). */
    job *j = calloc(1, sizeof *j);
    (void)fn;
    if (j == NULL)
        return NULL;
    j->kind = kind;
    j->refs = 1;
    j->pool = p;
    return j;
}

/* ---------------------------------------------------------------------------
 * map and starmap
 */

static bool pred_job_done(void *arg)
{
    job *j = arg;
    return j->finished >= j->total && j->ready == NULL &&
           (j->list == NULL || j->next >= j->total);
}

static size_t auto_chunk(mproc_pool *p, size_t len, size_t bytes)
{
    /* Python: divmod(len, 4 * workers), rounded up; and no more than
     * AUTO_CHUNK_BYTES of encoded input, so that the next chunk can be
     * on its way while a worker runs one. */
    size_t d = 4 * (size_t)p->n;
    size_t c = len / d + (len % d != 0);
    size_t per = len > 0 ? bytes / len + 1 : 1;
    if (c > AUTO_CHUNK_BYTES / per)
        c = AUTO_CHUNK_BYTES / per;
    if (c < 1)
        c = 1;
    if (c > MPROC_POOL_MAX_CHUNK)
        c = MPROC_POOL_MAX_CHUNK;
    return c;
}

static int by_index(const void *a, const void *b)
{
    int64_t x = ((const mproc_task_status *)a)->index;
    int64_t y = ((const mproc_task_status *)b)->index;
    return (x > y) - (x < y);
}

static int map_common(mproc_pool *p, mproc_task_fn fn, const mproc_value *items,
                      size_t chunksize, bool star, mproc_value **results,
                      mproc_task_status **failures)
{
    job *j;
    mproc_value *list;
    size_t n, i, size;
    int rc;
    if (results != NULL)
        *results = NULL;
    if (failures != NULL)
        *failures = NULL;
    if (p == NULL || fn == NULL || items == NULL || results == NULL ||
        items->type != MPROC_TYPE_LIST || chunksize > MPROC_POOL_MAX_CHUNK)
        return MPROC_EINVAL;
    if (in_callback(p))
        return MPROC_ESTATE;
    n = items->u.list.n;
    if (star)
        for (i = 0; i < n; i++)
            if (items->u.list.items[i]->type != MPROC_TYPE_LIST)
                return MPROC_EINVAL;
    if (mproc__encoded_size(items, false, &size) < 0)
        return MPROC_EINVAL;
    j = job_new(p, J_MAP, fn);
    if (j == NULL)
        return MPROC_ENOMEM;
    j->res = mproc__value_new_list(n);
    if (j->res == NULL) {
        job_free(j);
        return MPROC_ENOMEM;
    }
    if (n > 0)
        memset(j->res->u.list.items, 0, n * sizeof(mproc_value *));
    j->list = items;
    j->total = n;
    j->flags = star ? F_STAR : 0;
    rc = admit(p, j, fn);
    if (rc < 0)
        return rc;
    j->chunksize = chunksize ? chunksize : auto_chunk(p, n, size);
    p->submitted += n;
    if (n > 0) {
        enqueue_job(p, j);
        kick(p);
    }
    (void)drive_until(p, pred_job_done, j, -1);
    unlock(p);
    list = j->res;
    for (i = 0; i < n && rc == 0 && j->nbad > 0; i++)
        if (list->u.list.items[i] == NULL &&
            (list->u.list.items[i] = mproc_none()) == NULL)
            rc = MPROC_ENOMEM;
    if (rc < 0) {
        list = NULL; /* job_free frees it */
    } else {
        j->res = NULL;
        list->u.list.n = n;
        rc = (int)(j->nfails > INT32_MAX ? INT32_MAX : j->nfails);
        if (failures != NULL && j->nfails > 0) {
            qsort(j->fails, j->nfails, sizeof *j->fails, by_index);
            *failures = j->fails;
            j->fails = NULL;
        }
    }
    j->list = NULL;
    *results = list;
    job_release(p, j);
    return rc;
}

int mproc_pool_map(mproc_pool *pool, mproc_task_fn fn, const mproc_value *items,
                   size_t chunksize, mproc_value **results,
                   mproc_task_status **failures)
{
    return map_common(pool, fn, items, chunksize, false, results, failures);
}

int mproc_pool_starmap(mproc_pool *pool, mproc_task_fn fn,
                       const mproc_value *items, size_t chunksize,
                       mproc_value **results, mproc_task_status **failures)
{
    return map_common(pool, fn, items, chunksize, true, results, failures);
}

/* ---------------------------------------------------------------------------
 * Futures: apply and apply_async
 */

static bool pred_future(void *arg)
{
    job *j = arg;
    return j->outs[0].done || j->cancelled;
}

static int submit_one(mproc_pool *p, mproc_task_fn fn, const mproc_value *arg,
                      mproc_future_cb cb, void *cb_arg, job **out)
{
    static const mproc_value none = {.type = MPROC_TYPE_NONE};
    const mproc_value *one[1];
    mproc_value view;
    chunk *c = NULL;
    job *j;
    int rc;
    *out = NULL;
    j = job_new(p, J_FUTURE, fn);
    if (j == NULL)
        return MPROC_ENOMEM;
    j->outs = calloc(1, sizeof *j->outs);
    if (j->outs == NULL) {
        job_free(j);
        return MPROC_ENOMEM;
    }
    j->cap = 1;
    j->total = 1;
    j->cb = cb;
    j->cb_arg = cb_arg;
    one[0] = arg != NULL ? arg : &none;
    memset(&view, 0, sizeof view);
    view.type = MPROC_TYPE_LIST;
    view.u.list.items = (mproc_value **)(uintptr_t)one;
    view.u.list.n = 1;
    view.u.list.cap = 1;
    lock(p);
    rc = can_submit(p);
    if (rc == 0)
        rc = fn_id(p, fn, &j->fn_id);
    unlock(p);
    /* Encoded outside the lock; the id is stable once given. */
    if (rc == 0)
        rc = chunk_new(j, 0, 1, &view, &c);
    if (rc < 0) {
        job_free(j);
        return rc;
    }
    lock(p);
    rc = can_submit(p);
    if (rc < 0) {
        unlock(p);
        chunk_free(c);
        job_free(j);
        return rc;
    }
    atomic_fetch_add(&p->refs, 1);
    p->submitted++;
    j->ready = j->ready_tail = c;
    enqueue_job(p, j);
    kick(p);
    unlock(p);
    *out = j;
    return 0;
}

static int outcome_of(job *j, size_t i, mproc_task_status *status)
{
    outcome *o = &j->outs[i];
    if (o->st == NULL && o->done)
        return 0;
    if (status != NULL) {
        if (o->st != NULL) {
            *status = *o->st;
        } else {
            memset(status, 0, sizeof *status);
            status->code = MPROC_ENOMEM;
            status->index = (int64_t)i;
        }
    }
    return MPROC_TASK_FAILED;
}

int mproc_pool_apply(mproc_pool *pool, mproc_task_fn fn, const mproc_value *arg,
                     mproc_value **result, mproc_task_status *status)
{
    job *j;
    int rc;
    if (result != NULL)
        *result = NULL;
    if (pool == NULL || fn == NULL || result == NULL)
        return MPROC_EINVAL;
    if (in_callback(pool))
        return MPROC_ESTATE;
    rc = submit_one(pool, fn, arg, NULL, NULL, &j);
    if (rc < 0)
        return rc;
    lock(pool);
    (void)drive_until(pool, pred_future, j, -1);
    rc = outcome_of(j, 0, status);
    if (rc == 0) {
        *result = j->outs[0].v;
        j->outs[0].v = NULL;
    }
    unlock(pool);
    job_release(pool, j);
    return rc;
}

int mproc_pool_apply_async(mproc_pool *pool, mproc_task_fn fn,
                           const mproc_value *arg, mproc_future_cb cb,
                           void *cb_arg, mproc_future **out)
{
    job *j;
    int rc;
    if (out != NULL)
        *out = NULL;
    if (pool == NULL || fn == NULL || out == NULL)
        return MPROC_EINVAL;
    rc = submit_one(pool, fn, arg, cb, cb_arg, &j);
    if (rc == 0)
        *out = (mproc_future *)(void *)j;
    return rc;
}

/* Waits for j (a future or iterator condition) through its pool. */
static int job_wait(job *j, bool (*pred)(void *), int timeout_ms)
{
    mproc_pool *p = j->pool;
    int rc;
    lock(p);
    if (pred(j)) {
        unlock(p);
        return 0;
    }
    if (in_callback(p) || (timeout_ms == 0 && p->driver != 0)) {
        rc = pred(j) ? 0 : (timeout_ms == 0 ? MPROC_ETIMEDOUT : MPROC_ESTATE);
        unlock(p);
        return rc;
    }
    rc = drive_until(p, pred, j, mproc__deadline(timeout_ms));
    unlock(p);
    return rc;
}

int mproc_future_wait(mproc_future *f, int timeout_ms)
{
    if (f == NULL)
        return MPROC_EINVAL;
    MPROC__CHECK_TIMEOUT(timeout_ms);
    return job_wait(&f->j, pred_future, timeout_ms);
}

int mproc_future_done(mproc_future *f)
{
    int rc;
    if (f == NULL)
        return MPROC_EINVAL;
    rc = job_wait(&f->j, pred_future, 0);
    return rc == 0 ? 1 : 0;
}

int mproc_future_result(mproc_future *f, const mproc_value **result,
                        mproc_task_status *status, int timeout_ms)
{
    int rc;
    if (result != NULL)
        *result = NULL;
    if (f == NULL)
        return MPROC_EINVAL;
    MPROC__CHECK_TIMEOUT(timeout_ms);
    rc = job_wait(&f->j, pred_future, timeout_ms);
    if (rc < 0)
        return rc;
    lock(f->j.pool);
    if (f->j.cancelled)
        rc = MPROC_ESTATE;
    else
        rc = outcome_of(&f->j, 0, status);
    if (rc == 0 && result != NULL)
        *result = f->j.outs[0].v;
    unlock(f->j.pool);
    return rc;
}

/* Removes chunk c of job j from the pool's lines if no worker has it. */
static bool unqueue(mproc_pool *p, job *j)
{
    chunk **pp;
    for (pp = &j->ready; *pp != NULL; pp = &(*pp)->next)
        if ((*pp)->job == j) {
            chunk *c = *pp;
            *pp = c->next;
            if (j->ready == NULL || c == j->ready_tail) {
                chunk *t = j->ready;
                while (t != NULL && t->next != NULL)
                    t = t->next;
                j->ready_tail = t;
            }
            chunk_free(c);
            return true;
        }
    for (pp = &p->rq; *pp != NULL; pp = &(*pp)->next)
        if ((*pp)->job == j) {
            chunk *c = *pp, *t;
            *pp = c->next;
            for (t = p->rq; t != NULL && t->next != NULL; t = t->next)
                ;
            p->rq_tail = t;
            chunk_release(p, c);
            return true;
        }
    return false;
}

int mproc_future_cancel(mproc_future *f)
{
    job *j;
    mproc_pool *p;
    int rc = MPROC_EBUSY;
    if (f == NULL)
        return MPROC_EINVAL;
    j = &f->j;
    p = j->pool;
    lock(p);
    if (j->outs[0].done || j->cancelled) {
        unlock(p);
        return MPROC_ESTATE;
    }
    /* Only a task still in the pool's hands: one sent to a worker may be
     * running, or about to (fast tasks are sent a few ahead). */
    if (unqueue(p, j))
        rc = 0;
    if (rc == 0) {
        mproc_task_status st;
        memset(&st, 0, sizeof st);
        st.code = MPROC_ECLOSED;
        set_msg(&st, "the task was cancelled");
        j->cancelled = true;
        /* Counted now; a result that still comes is dropped. */
        p->failed++;
        p->cancelled++;
        j->finished++;
        queue_cb(p, j);
        /* A driver waiting for this very future must look again. */
        if (p->driver != 0 && p->driver != self_id())
            p->t.wake(p->t.ctx);
        if (p->driver == 0 && !in_callback(p)) {
            p->driver = self_id();
            run_callbacks(p);
            give_role(p);
        }
        broadcast(p);
    }
    unlock(p);
    return rc;
}

mproc_future *mproc_future_destroy(mproc_future *f)
{
    if (f != NULL)
        job_release(f->j.pool, &f->j);
    return NULL;
}

/* ---------------------------------------------------------------------------
 * Iterators
 */

/* A generator iterator has room for a whole chunk (or has nothing out). */
static bool wants_input(const job *j)
{
    size_t out = j->total - j->delivered, room = j->cap - out;
    return j->gen != NULL && !j->gen_end &&
           (room >= j->chunksize || (out == 0 && room > 0));
}

/* Ready to give an outcome, or to be topped up, or finished. */
static bool pred_next(void *arg)
{
    job *j = arg;
    size_t produced = j->total;
    if (j->unordered
            ? j->fifo_n > 0
            : (j->delivered < produced && j->outs[j->delivered % j->cap].done))
        return true;
    if (wants_input(j))
        return true;
    return j->delivered >= produced && (j->gen == NULL || j->gen_end);
}

static int imap_new(mproc_pool *p, mproc_task_fn fn, mproc_value *items,
                    mproc_pool_gen gen, void *gen_arg,
                    const mproc_imap_options *o, mproc_imap **out)
{
    job *j;
    size_t csize, cap, size;
    int rc;
    if (out != NULL)
        *out = NULL;
    if (p == NULL || fn == NULL || out == NULL ||
        (gen == NULL && (items == NULL || items->type != MPROC_TYPE_LIST)) ||
        o->chunksize > MPROC_POOL_MAX_CHUNK) {
        mproc_value_free(items);
        return MPROC_EINVAL;
    }
    if (items != NULL && mproc__encoded_size(items, false, &size) < 0) {
        mproc_value_free(items);
        return MPROC_EINVAL;
    }
    csize = o->chunksize ? o->chunksize : 1;
    if (items != NULL) {
        cap = items->u.list.n;
    } else {
        cap = o->max_in_flight;
        if (cap == 0)
            cap = 4 * (size_t)p->n * csize;
        if (cap < csize)
            cap = csize;
    }
    j = job_new(p, J_IMAP, fn);
    if (j == NULL) {
        mproc_value_free(items);
        return MPROC_ENOMEM;
    }
    j->owned = items;
    j->list = items;
    j->total = items != NULL ? items->u.list.n : 0;
    j->gen = gen;
    j->gen_arg = gen_arg;
    j->chunksize = csize;
    j->unordered = o->unordered;
    j->flags = o->star ? F_STAR : 0;
    j->cap = cap > 0 ? cap : 1;
    j->outs = calloc(j->cap, sizeof *j->outs);
    j->fifo = o->unordered ? calloc(j->cap, sizeof *j->fifo) : NULL;
    if (j->outs == NULL || (o->unordered && j->fifo == NULL)) {
        job_free(j);
        return MPROC_ENOMEM;
    }
    rc = admit(p, j, fn);
    if (rc < 0)
        return rc;
    if (items != NULL && j->total > 0) {
        p->submitted += j->total;
        enqueue_job(p, j);
        kick(p);
    }
    unlock(p);
    *out = (mproc_imap *)(void *)j;
    return 0;
}

int mproc_pool_imap(mproc_pool *pool, mproc_task_fn fn, mproc_value *items,
                    size_t chunksize, mproc_imap **out)
{
    mproc_imap_options o;
    memset(&o, 0, sizeof o);
    o.chunksize = chunksize;
    return imap_new(pool, fn, items, NULL, NULL, &o, out);
}

int mproc_pool_imap_unordered(mproc_pool *pool, mproc_task_fn fn,
                              mproc_value *items, size_t chunksize,
                              mproc_imap **out)
{
    mproc_imap_options o;
    memset(&o, 0, sizeof o);
    o.chunksize = chunksize;
    o.unordered = true;
    return imap_new(pool, fn, items, NULL, NULL, &o, out);
}

int mproc_pool_imap_gen(mproc_pool *pool, mproc_task_fn fn, mproc_pool_gen gen,
                        void *gen_arg, const mproc_imap_options *opt,
                        mproc_imap **out)
{
    mproc_imap_options o;
    if (gen == NULL) {
        if (out != NULL)
            *out = NULL;
        return MPROC_EINVAL;
    }
    if (opt != NULL)
        o = *opt;
    else
        memset(&o, 0, sizeof o);
    return imap_new(pool, fn, NULL, gen, gen_arg, &o, out);
}

/* Produces chunks from the generator until the bound (no lock held: the
 * generator is the caller's code). */
static int top_up(job *j)
{
    mproc_pool *p = j->pool;
    for (;;) {
        mproc_value *list, *item;
        size_t room, n, i;
        chunk *c = NULL;
        int rc = 0;
        lock(p);
        room = j->cap - (j->total - j->delivered);
        if (!wants_input(j) || p->state != P_RUN) {
            if (!j->gen_end && p->state != P_RUN) {
                j->gen_end = true;
                j->gen_err = MPROC_ECLOSED;
            }
            unlock(p);
            return 0;
        }
        unlock(p);
        n = room < j->chunksize ? room : j->chunksize;
        list = mproc__value_new_list(n);
        if (list == NULL)
            return MPROC_ENOMEM;
        for (i = 0; i < n; i++) {
            item = NULL;
            rc = j->gen(j->gen_arg, &item);
            if (rc == 1 && item == NULL)
                rc = MPROC_EINVAL;
            if (rc != 1)
                break;
            if (mproc__list_push(list, item) < 0) {
                mproc_value_free(item);
                rc = MPROC_ENOMEM;
                break;
            }
        }
        if (list->u.list.n > 0) {
            int erc = chunk_new(j, (int64_t)j->total, (uint32_t)list->u.list.n,
                                list, &c);
            if (erc < 0) {
                /* An item with a handle, say: the input ends here. */
                rc = erc;
                c = NULL;
            }
        }
        mproc_value_free(list);
        lock(p);
        if (c != NULL) {
            if (p->state == P_RUN) {
                p->submitted += c->n;
                j->total += c->n;
                c->next = NULL;
                if (j->ready_tail != NULL)
                    j->ready_tail->next = c;
                else
                    j->ready = c;
                j->ready_tail = c;
                enqueue_job(p, j);
                kick(p);
            } else {
                chunk_free(c);
            }
        }
        if (rc != 1) {
            j->gen_end = true;
            j->gen_err = rc == 0 ? 0 : rc;
        }
        unlock(p);
        if (rc != 1)
            return 0;
    }
}

int mproc_imap_next(mproc_imap *it, mproc_value **result,
                    mproc_task_status *status, int timeout_ms)
{
    job *j;
    mproc_pool *p;
    int64_t deadline;
    int rc;
    if (result != NULL)
        *result = NULL;
    if (it == NULL || result == NULL)
        return MPROC_EINVAL;
    MPROC__CHECK_TIMEOUT(timeout_ms);
    j = &it->j;
    p = j->pool;
    deadline = mproc__deadline(timeout_ms);
    for (;;) {
        size_t slot;
        outcome *o;
        lock(p);
        if (j->unordered ? j->fifo_n > 0
                         : (j->delivered < j->total &&
                            j->outs[j->delivered % j->cap].done)) {
            if (j->unordered) {
                slot = j->fifo[j->fifo_head];
                j->fifo_head = (j->fifo_head + 1) % j->cap;
                j->fifo_n--;
            } else {
                slot = j->delivered % j->cap;
            }
            j->delivered++;
            o = &j->outs[slot];
            rc = o->st == NULL ? 0 : MPROC_TASK_FAILED;
            if (rc == 0)
                *result = o->v;
            else if (status != NULL)
                *status = *o->st;
            free(o->st);
            o->st = NULL;
            o->v = NULL;
            o->done = false;
            unlock(p);
            return rc;
        }
        if (j->delivered >= j->total && (j->gen == NULL || j->gen_end)) {
            rc = j->gen_err != 0 ? j->gen_err : MPROC_EEOF;
            unlock(p);
            return rc;
        }
        if (in_callback(p) && timeout_ms != 0) {
            unlock(p);
            return MPROC_ESTATE;
        }
        if (wants_input(j)) {
            unlock(p);
            rc = top_up(j);
            if (rc < 0)
                return rc;
            continue;
        }
        rc = drive_until(p, pred_next, j, deadline);
        unlock(p);
        if (rc < 0)
            return rc;
    }
}

mproc_imap *mproc_imap_destroy(mproc_imap *it)
{
    job *j;
    mproc_pool *p;
    mproc_task_status st;
    if (it == NULL)
        return NULL;
    j = &it->j;
    p = j->pool;
    memset(&st, 0, sizeof st);
    st.code = MPROC_ECLOSED;
    set_msg(&st, "the iterator was destroyed");
    lock(p);
    j->cancelled = true;
    fail_unsent(p, j, &st);
    j->dropped = true;
    unlock(p);
    job_release(p, j);
    return NULL;
}

/* ---------------------------------------------------------------------------
 * Stats and progress
 */

static void snapshot(mproc_pool *p, mproc_pool_stats *s)
{
    uint64_t running = 0;
    int i;
    memset(s, 0, sizeof *s);
    for (i = 0; i < p->n; i++) {
        worker *w = &p->w[i];
        uint64_t seq;
        uint32_t item;
        if (w->head != NULL && p->t_live) {
            int rc = p->t.started(p->t.ctx, i, &seq, &item);
            if (rc == 0 && seq == w->head->seq && item < w->head->n)
                running += (uint64_t)item + 1;
            else if (rc == MPROC_ENOSYS && w->state == W_READY)
                /* A transport that cannot tell (MPI): the oldest chunk a
                 * worker holds is the one it runs. */
                running += w->head->n;
        }
        if (w->state == W_STARTING || w->state == W_READY)
            s->workers_alive++;
    }
    s->submitted = p->submitted;
    s->done = p->done;
    s->failed = p->failed;
    s->cancelled = p->cancelled;
    if (running > outstanding(p))
        running = outstanding(p);
    s->running = running;
    s->queued = outstanding(p) - running;
    s->workers_replaced = p->replaced;
}

int mproc_pool_stats_get(mproc_pool *pool, mproc_pool_stats *out)
{
    if (pool == NULL || out == NULL)
        return MPROC_EINVAL;
    lock(pool);
    snapshot(pool, out);
    unlock(pool);
    return 0;
}

int mproc_pool_set_progress(mproc_pool *pool, mproc_pool_progress_fn fn,
                            void *arg, uint64_t every, int every_ms)
{
    if (pool == NULL || every_ms < 0 ||
        (fn != NULL && every == 0 && every_ms == 0))
        return MPROC_EINVAL;
    lock(pool);
    pool->prog = fn;
    pool->prog_arg = arg;
    pool->prog_every = every;
    pool->prog_ms = every_ms;
    pool->prog_last = pool->done + pool->failed;
    pool->prog_last_ms = mproc__os_now_ms();
    unlock(pool);
    return 0;
}
