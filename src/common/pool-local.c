/*
 * The pool's local transport (include/mproc_transport.h): each worker is an
 * mproc child process (fork or spawn, daemonic as in Python, so it dies
 * with the pool's process) with a duplex pipe to the engine; one shared
 * block holds a slot per worker where the worker writes which task it
 * starts (before it starts it); a one-way channel lets any thread wake the
 * driver out of its wait.
 *
 * Death is learned from end-of-file on the worker's pipe: only the worker
 * holds the other end (the parent closes its copy after start, and fork and
 * spawn children inherit nothing else), so the end of the worker closes it,
 * whatever killed it. The exit code then comes from reaping the process.
 *
 * A slot is one 64-bit word, (seq << 24) | item, written with a release
 * store; the engine bounds-checks what it reads (a worker may scribble on
 * the whole block).
 *
 * Map: the transport's state; the worker's side; the engine's side.
 */
#include "pool.h"

#include "atomics.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct lworker {
    mproc_process *proc;
    mproc_conn *conn;
    uint8_t *buf;
    size_t cap;
} lworker;

typedef struct local {
    int n;
    lworker *w;
    mproc_shm *shm;
    _Atomic uint64_t *slots;
    mproc_start_method method;
    uint8_t *init_desc;
    size_t init_len;
    mproc_value *initarg;
    uint64_t maxtasks;
    mproc__handle wake[2];
    atomic_int wake_pending;
    mproc__handle *hs;
    bool *isp, *rdy;
} local;

static atomic_ulong g_worker_no;

/* ---------------------------------------------------------------------------
 * Function descriptions: 'P' + the address (fork: the same program), or
 * 'M' + u64 offset + module path (spawn: found and checked as process
 * targets are).
 */

static void put64(uint8_t *p, uint64_t v)
{
    int i;
    for (i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    int i;
    for (i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static int describe_addr(mproc_start_method m, const void *addr, void *buf,
                         size_t cap, size_t *len)
{
    uint8_t *b = buf;
    char *module = NULL;
    uint64_t offset = 0;
    size_t n;
    int rc;
    if (m == MPROC_START_FORK) {
        if (cap < 9)
            return MPROC_ETOOSMALL;
        b[0] = 'P';
        put64(b + 1, (uint64_t)(uintptr_t)addr);
        *len = 9;
        return 0;
    }
    rc = mproc__os_locate(addr, &module, &offset);
    if (rc < 0)
        return rc;
    n = strlen(module);
    if (cap < 9 + n) {
        free(module);
        return MPROC_ETOOSMALL;
    }
    b[0] = 'M';
    put64(b + 1, offset);
    memcpy(b + 9, module, n);
    free(module);
    *len = 9 + n;
    return 0;
}

static int resolve_addr(bool forked, const void *desc, size_t len, void **fn)
{
    const uint8_t *d = desc;
    char *module;
    int rc;
    *fn = NULL;
    if (len < 9)
        return MPROC_ERESOLVE;
    if (d[0] == 'P') {
        if (!forked || len != 9)
            return MPROC_ERESOLVE;
        *fn = (void *)(uintptr_t)get64(d + 1);
        return *fn != NULL ? 0 : MPROC_ERESOLVE;
    }
    if (d[0] != 'M' || len > MPROC__POOL_DESC_MAX)
        return MPROC_ERESOLVE;
    module = malloc(len - 9 + 1);
    if (module == NULL)
        return MPROC_ENOMEM;
    memcpy(module, d + 9, len - 9);
    module[len - 9] = '\0';
    rc = mproc__os_resolve(module, get64(d + 1), fn);
    free(module);
    return rc < 0 ? MPROC_ERESOLVE : 0;
}

/* ---------------------------------------------------------------------------
 * The worker's side
 */

typedef struct wctx {
    mproc_conn *conn;
    uint8_t *buf;
    size_t cap;
    _Atomic uint64_t *slot;
    bool forked;
} wctx;

static int w_recv(void *ctx, const void **msg, size_t *len)
{
    wctx *c = ctx;
    for (;;) {
        int rc =
            mproc_conn_recv_bytes(c->conn, c->buf, c->cap, len, MPROC_FOREVER);
        if (rc == MPROC_ETOOSMALL) {
            uint8_t *nb = realloc(c->buf, *len);
            if (nb == NULL)
                return MPROC_ENOMEM;
            c->buf = nb;
            c->cap = *len;
            continue;
        }
        if (rc < 0)
            return rc;
        *msg = c->buf;
        return 0;
    }
}

static int w_send(void *ctx, const void *msg, size_t len)
{
    wctx *c = ctx;
    return mproc_conn_send_bytes(c->conn, msg, len);
}

static void w_started(void *ctx, uint64_t seq, uint32_t item)
{
    wctx *c = ctx;
    if (c->slot != NULL)
        atomic_store_explicit(c->slot, seq << 24 | (item & 0xffffffu),
                              memory_order_release);
}

static int w_resolve(void *ctx, const void *desc, size_t len, mproc_task_fn *fn)
{
    wctx *c = ctx;
    void *addr;
    int rc = resolve_addr(c->forked, desc, len, &addr);
    if (rc == 0)
        memcpy(fn, &addr, sizeof addr);
    return rc;
}

static int init_unresolved(const mproc_value *arg)
{
    (void)arg;
    (void)mproc_task_set_message(
        "the pool's initializer cannot be found in the worker");
    return MPROC_ERESOLVE;
}

/* The target of every local worker: args [conn, shm, slot, maxtasks,
 * initializer description or none, initarg or none, forked]. */
static int local_worker(const mproc_value *args)
{
    mproc_pool_worker_io io;
    wctx c;
    mproc_shm *shm = NULL;
    const mproc_value *desc, *initarg;
    int64_t slot = -1, maxtasks = 0;
    bool forked = false;
    int rc;

    memset(&c, 0, sizeof c);
    memset(&io, 0, sizeof io);
    if (mproc_value_get_conn(mproc_list_get(args, 0), &c.conn) != 0 ||
        mproc_value_get_shm(mproc_list_get(args, 1), &shm) != 0 ||
        mproc_value_get_int(mproc_list_get(args, 2), &slot) != 0 ||
        mproc_value_get_int(mproc_list_get(args, 3), &maxtasks) != 0 ||
        mproc_value_get_bool(mproc_list_get(args, 6), &forked) != 0)
        return 70;
    if (slot >= 0 && (uint64_t)slot < mproc_shm_size(shm) / 8)
        c.slot = (_Atomic uint64_t *)mproc_shm_ptr(shm) + slot;
    c.forked = forked;
    desc = mproc_list_get(args, 4);
    initarg = mproc_list_get(args, 5);
    if (desc != NULL && desc->type == MPROC_TYPE_BYTES) {
        const void *d;
        size_t n;
        void *addr = NULL;
        (void)mproc_value_get_bytes(desc, &d, &n);
        if (resolve_addr(forked, d, n, &addr) == 0)
            memcpy(&io.initializer, &addr, sizeof addr);
        else
            io.initializer = init_unresolved;
    }
    io.ctx = &c;
    io.recv = w_recv;
    io.send = w_send;
    io.started = w_started;
    io.resolve = w_resolve;
    io.initarg = initarg;
    io.maxtasks = maxtasks > 0 ? (uint64_t)maxtasks : 0;
    rc = mproc_pool_worker_serve(&io);
    free(c.buf);
    return rc == 0 ? 0 : (rc == 1 ? 1 : 2);
}

/* ---------------------------------------------------------------------------
 * The engine's side
 */

static int l_start(void *ctx, int wi)
{
    local *l = ctx;
    lworker *w = &l->w[wi];
    mproc_conn *a = NULL, *b = NULL;
    mproc_process *proc = NULL;
    mproc_value *args;
    char name[48];
    int rc;

    atomic_store(&l->slots[wi], 0);
    rc = mproc_pipe(&a, &b, true);
    if (rc < 0)
        return rc;
    args = MPROC_LIST(
        mproc_value_conn(b), mproc_value_shm(l->shm), mproc_int(wi),
        mproc_int((int64_t)l->maxtasks),
        l->init_desc != NULL ? mproc_bytes(l->init_desc, l->init_len)
                             : mproc_none(),
        l->initarg != NULL ? mproc_value_copy(l->initarg) : mproc_none(),
        mproc_bool(l->method == MPROC_START_FORK));
    rc = mproc_process_create(&proc, local_worker, args);
    snprintf(name, sizeof name, "PoolWorker-%lu",
             (unsigned long)atomic_fetch_add(&g_worker_no, 1) + 1);
    if (rc == 0)
        rc = mproc_process_set_name(proc, name);
    if (rc == 0)
        rc = mproc_process_set_daemon(proc, true);
    if (rc == 0)
        rc = mproc_process_set_start_method(proc, l->method);
    if (rc == 0)
        rc = mproc_process_start(proc);
    /* Only the worker holds its end now: its end-of-file is its death. */
    (void)mproc_conn_destroy(b);
    if (rc < 0) {
        (void)mproc_process_destroy(proc);
        (void)mproc_conn_destroy(a);
        return rc;
    }
    w->proc = proc;
    w->conn = a;
    return 0;
}

static int l_send(void *ctx, int wi, const void *msg, size_t len)
{
    local *l = ctx;
    if (l->w[wi].conn == NULL)
        return MPROC_ECLOSED;
    return mproc_conn_send_bytes(l->w[wi].conn, msg, len);
}

static int l_wait(void *ctx, const bool *live, bool *ready, int n,
                  int timeout_ms)
{
    local *l = ctx;
    int i, count = 0, rc;
    for (i = 0; i < n; i++) {
        bool now = false;
        l->hs[i] = MPROC__BADHANDLE;
        l->isp[i] = false;
        ready[i] = false;
        if (!live[i] || l->w[i].conn == NULL)
            continue;
        /* An error makes it ready too: its recv tells what is wrong. */
        if (mproc__conn_wait_handle(l->w[i].conn, &l->hs[i], &now) < 0 || now) {
            ready[i] = true;
            count++;
        }
    }
    if (count > 0)
        return count;
    l->hs[n] = l->wake[0];
    l->isp[n] = false;
    rc = mproc__os_wait_many(l->hs, l->isp, (size_t)n + 1, timeout_ms, l->rdy);
    if (rc < 0)
        return rc;
    for (i = 0; i < n; i++)
        if (live[i] && l->rdy[i]) {
            ready[i] = true;
            count++;
        }
    if (l->rdy[n]) {
        uint8_t x;
        /* Cleared before the read: a wake after it writes a new byte. */
        atomic_store(&l->wake_pending, 0);
        (void)mproc__os_chan_read(l->wake[0], &x, 1);
    }
    return count;
}

static int l_recv(void *ctx, int wi, const void **msg, size_t *len)
{
    local *l = ctx;
    lworker *w = &l->w[wi];
    if (w->conn == NULL)
        return MPROC_EEOF;
    for (;;) {
        int rc = mproc_conn_recv_bytes(w->conn, w->buf, w->cap, len, 0);
        if (rc == MPROC_ETOOSMALL) {
            uint8_t *nb = realloc(w->buf, *len);
            if (nb == NULL)
                return MPROC_ENOMEM;
            w->buf = nb;
            w->cap = *len;
            continue;
        }
        if (rc == MPROC_ETIMEDOUT)
            return 0;
        if (rc < 0)
            return rc;
        *msg = w->buf;
        return 1;
    }
}

static int l_started(void *ctx, int wi, uint64_t *seq, uint32_t *item)
{
    local *l = ctx;
    uint64_t v = atomic_load_explicit(&l->slots[wi], memory_order_acquire);
    *seq = v >> 24;
    *item = (uint32_t)(v & 0xffffffu);
    return 0;
}

static int l_stop(void *ctx, int wi, int how)
{
    local *l = ctx;
    lworker *w = &l->w[wi];
    if (w->proc == NULL)
        return 0;
    if (how == 2)
        return mproc_process_kill(w->proc);
    return mproc_process_terminate(w->proc);
}

static int l_reap(void *ctx, int wi, int timeout_ms, int64_t *pid,
                  int *exitcode)
{
    local *l = ctx;
    lworker *w = &l->w[wi];
    int rc;
    if (w->proc == NULL)
        return 0;
    rc = mproc_process_join(w->proc, timeout_ms);
    if (rc < 0)
        return rc;
    *pid = mproc_process_pid(w->proc);
    if (mproc_process_exitcode(w->proc, exitcode) < 0)
        *exitcode = 0;
    w->proc = mproc_process_destroy(w->proc);
    w->conn = mproc_conn_destroy(w->conn);
    return 0;
}

static int64_t l_pid(void *ctx, int wi)
{
    local *l = ctx;
    if (l->w[wi].proc == NULL)
        return 0;
    return mproc_process_pid(l->w[wi].proc);
}

static void l_wake(void *ctx)
{
    local *l = ctx;
    if (atomic_exchange(&l->wake_pending, 1) == 0)
        (void)mproc__os_chan_write(l->wake[1], "w", 1);
}

static int l_describe(void *ctx, mproc_task_fn fn, void *buf, size_t cap,
                      size_t *len)
{
    local *l = ctx;
    const void *addr;
    memcpy(&addr, &fn, sizeof addr);
    return describe_addr(l->method, addr, buf, cap, len);
}

static void l_destroy(void *ctx)
{
    local *l = ctx;
    int i;
    for (i = 0; l->w != NULL && i < l->n; i++) {
        lworker *w = &l->w[i];
        if (w->proc != NULL) {
            (void)mproc_process_kill(w->proc);
            (void)mproc_process_join(w->proc, MPROC_FOREVER);
            w->proc = mproc_process_destroy(w->proc);
        }
        w->conn = mproc_conn_destroy(w->conn);
        free(w->buf);
    }
    free(l->w);
    mproc_shm_destroy(l->shm);
    mproc__os_handle_close(l->wake[0]);
    mproc__os_handle_close(l->wake[1]);
    free(l->init_desc);
    mproc_value_free(l->initarg);
    free(l->hs);
    free(l->isp);
    free(l->rdy);
    free(l);
}

int mproc__pool_local_transport(const mproc_pool_options *opt, int workers,
                                mproc_pool_transport *t)
{
    local *l;
    int rc;
    mproc_start_method m = opt->method != MPROC_START_DEFAULT
                               ? opt->method
                               : mproc_get_start_method();
#if defined(_WIN32)
    if (m == MPROC_START_FORK)
        return MPROC_ENOSYS;
#endif
    l = calloc(1, sizeof *l);
    if (l == NULL)
        return MPROC_ENOMEM;
    l->n = workers;
    l->method = m;
    l->maxtasks = opt->maxtasksperchild;
    l->wake[0] = l->wake[1] = MPROC__BADHANDLE;
    atomic_init(&l->wake_pending, 0);
    l->w = calloc((size_t)workers, sizeof *l->w);
    l->hs = calloc((size_t)workers + 1, sizeof *l->hs);
    l->isp = calloc((size_t)workers + 1, sizeof *l->isp);
    l->rdy = calloc((size_t)workers + 1, sizeof *l->rdy);
    rc = l->w && l->hs && l->isp && l->rdy ? 0 : MPROC_ENOMEM;
    if (rc == 0)
        rc = mproc_shm_create(&l->shm, (size_t)workers * 8);
    if (rc == 0) {
        l->slots = mproc_shm_ptr(l->shm);
        rc = mproc__os_chan_pair(l->wake, false);
    }
    if (rc == 0 && opt->initializer != NULL) {
        const void *addr;
        l->init_desc = malloc(MPROC__POOL_DESC_MAX);
        if (l->init_desc == NULL) {
            rc = MPROC_ENOMEM;
        } else {
            memcpy(&addr, &opt->initializer, sizeof addr);
            rc = describe_addr(m, addr, l->init_desc, MPROC__POOL_DESC_MAX,
                               &l->init_len);
        }
    }
    if (rc == 0 && opt->initarg != NULL) {
        l->initarg = mproc_value_copy(opt->initarg);
        if (l->initarg == NULL)
            rc = MPROC_ENOMEM;
    }
    if (rc < 0) {
        l_destroy(l);
        return rc;
    }
    memset(t, 0, sizeof *t);
    t->ctx = l;
    t->start = l_start;
    t->send = l_send;
    t->wait = l_wait;
    t->recv = l_recv;
    t->started = l_started;
    t->stop = l_stop;
    t->reap = l_reap;
    t->pid = l_pid;
    t->wake = l_wake;
    t->describe = l_describe;
    t->destroy = l_destroy;
    return 0;
}
