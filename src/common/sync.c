/*
 * Lock, RLock, Semaphore, Event, Condition and Barrier.
 *
 * Every object is one shared memory segment (struct shared below) holding
 * the backend's mutex, semaphore and condition variable blocks and the
 * object's own counters, plus the backend handles (none on POSIX; mutex and
 * semaphore handles on Windows). The segment and the handles are what an
 * object exports to a child; the child maps the same segment, so every
 * process works on the same state.
 *
 * What is built here, once for both backends:
 * - RLock and the Condition's lock: a backend mutex plus an owner token
 *   (see owner_token) and a recursion count in the segment. Only the owner
 *   writes them; others read the owner to learn that they are not it.
 * - Condition, Event and Barrier: the backend condition variable under the
 *   object's mutex, with predicates re-checked in a loop (spurious wake-ups
 *   are allowed by the contract). Event and Barrier follow Python's
 *   threading.Event / threading.Barrier state machines.
 * - Barrier parties: each waiting party holds a slot with its process
 *   identity (backend.h), so that the death of a party is learned from the
 *   OS and breaks the barrier for the others (see "Barrier").
 *
 * A Lock is the backend mutex alone: acquire and release add a NULL and
 * timeout check and one call to the primitive, nothing more (measured on
 * Linux: within 0.5 ns of a raw robust process-shared pthread mutex).
 *
 * Map: test hooks; the shared block and segments; export/import; Lock;
 * RLock; Semaphore; Condition; Event; Barrier.
 */
#include "internal.h"

#include "atomics.h"
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

/* The backends' test hook (backend.h): NULL unless a test sets it. */
mproc__hook_fn mproc__test_hook;

/* ---------------------------------------------------------------------------
 * The shared block
 */

#define SYNC_MAGIC 0x6d707379u /* "mpsy" */
#define SYNC_VERSION 2u

enum sync_kind {
    KIND_LOCK = MPROC_TYPE_LOCK,
    KIND_RLOCK = MPROC_TYPE_RLOCK,
    KIND_SEM = MPROC_TYPE_SEM,
    KIND_EVENT = MPROC_TYPE_EVENT,
    KIND_COND = MPROC_TYPE_COND,
    KIND_BARRIER = MPROC_TYPE_BARRIER
};

/* Which backend objects a kind uses. */
#define USE_MUTEX 1u
#define USE_SEM 2u
#define USE_COND 4u

/* Barrier states, as in Python's threading.Barrier. */
#define BARRIER_FILLING 0
#define BARRIER_DRAINING 1
#define BARRIER_RESETTING (-1)
#define BARRIER_BROKEN (-2)

typedef struct shared {
    uint32_t magic;
    uint32_t version;
    uint32_t kind;
    uint32_t pad0;
    /* RLock and Condition: the owning thread (owner_token) and its
     * recursion count. Written by the owner only, read by anyone. */
    _Atomic int64_t owner;
    uint32_t count;
    /* Condition: threads inside mproc__os_cond_wait (caps notify(n)). */
    uint32_t nwait;
    /* Event: the flag and the number of sets; Barrier: the state machine. */
    _Atomic int32_t flag;
    int32_t state;
    uint64_t gen;
    uint32_t parties;
    uint32_t inside; /* barrier: parties that have entered this cycle */
    alignas(64) unsigned char mutex[MPROC__OS_MUTEX_SIZE];
    alignas(64) unsigned char sem[MPROC__OS_SEM_SIZE];
    alignas(64) unsigned char cond[MPROC__OS_COND_SIZE];
    /* Barrier: `parties` slots follow (barrier_slot), see "Barrier". */
} shared;

/* A barrier party that has entered the current cycle: its process
 * identity. Written and read under the object's mutex; pid 0 is free. */
typedef struct barrier_slot {
    int64_t pid;
    uint64_t start;
} barrier_slot;

_Static_assert(sizeof(shared) % alignof(barrier_slot) == 0, "slot alignment");

/* What every object holds in its own process. */
typedef struct sobj {
    shared *sh;
    mproc__handle seg;
    mproc__handle mh;
    mproc__handle sh_sem;
    mproc__handle ch[MPROC__OS_COND_HANDLES];
    uint32_t kind;
    unsigned made; /* USE_* bits of the backend objects set up here */
    /* Barrier: its slot count (the parties), known privately from create
     * or the export, never read back from the segment. 0 otherwise. */
    uint32_t nslots;
    size_t size; /* of the mapping */
} sobj;

static size_t sobj_size(uint32_t nslots)
{
    return sizeof(shared) + (size_t)nslots * sizeof(barrier_slot);
}

static unsigned kind_uses(uint32_t kind)
{
    switch (kind) {
    case KIND_LOCK:
    case KIND_RLOCK:
        return USE_MUTEX;
    case KIND_SEM:
        return USE_SEM;
    case KIND_EVENT:
    case KIND_COND:
    case KIND_BARRIER:
        return USE_MUTEX | USE_COND;
    default:
        return 0;
    }
}

static void sobj_init_handles(sobj *o)
{
    o->sh = NULL;
    o->made = 0;
    o->nslots = 0;
    o->size = 0;
    o->seg = MPROC__BADHANDLE;
    o->mh = MPROC__BADHANDLE;
    o->sh_sem = MPROC__BADHANDLE;
    for (int i = 0; i < MPROC__OS_COND_HANDLES; i++)
        o->ch[i] = MPROC__BADHANDLE;
}

static void sobj_fini(sobj *o)
{
    if (o->sh != NULL) {
        if (o->made & USE_COND)
            mproc__os_cond_destroy(o->sh->cond, o->ch);
        if (o->made & USE_SEM)
            mproc__os_sem_destroy(o->sh->sem, o->sh_sem);
        if (o->made & USE_MUTEX)
            mproc__os_mutex_destroy(o->sh->mutex, o->mh);
        mproc__os_shm_unmap(o->sh, o->size);
    }
    mproc__os_handle_close(o->seg);
    sobj_init_handles(o);
}

/* A fresh segment with the backend objects of `kind` initialised (and
 * nslots barrier slots after the block). */
static int sobj_create(sobj *o, uint32_t kind, unsigned initial, unsigned max,
                       uint32_t nslots)
{
    unsigned uses = kind_uses(kind);
    void *p = NULL;
    int rc;
    sobj_init_handles(o);
    o->kind = kind;
    o->nslots = nslots;
    o->size = sobj_size(nslots);
    rc = mproc__os_shm_create(o->size, &o->seg, &p);
    if (rc < 0)
        return rc;
    o->sh = (shared *)p;
    o->sh->magic = SYNC_MAGIC;
    o->sh->version = SYNC_VERSION;
    o->sh->kind = kind;
    o->sh->parties = nslots;
    if (uses & USE_MUTEX) {
        rc = mproc__os_mutex_init(o->sh->mutex, &o->mh);
        if (rc < 0)
            goto fail;
        o->made |= USE_MUTEX;
    }
    if (uses & USE_SEM) {
        rc = mproc__os_sem_init(o->sh->sem, &o->sh_sem, initial, max);
        if (rc < 0)
            goto fail;
        o->made |= USE_SEM;
    }
    if (uses & USE_COND) {
        rc = mproc__os_cond_init(o->sh->cond, o->ch);
        if (rc < 0)
            goto fail;
        o->made |= USE_COND;
    }
    return 0;
fail:
    sobj_fini(o);
    return rc;
}

/* ---------------------------------------------------------------------------
 * Export and import
 *
 * The export lists the segment handle first, then the valid backend
 * handles; the blob says where each backend handle is (or 0xff for none),
 * so that no MPROC__BADHANDLE ever reaches an inherit list, and ends with
 * the barrier's slot count: the importer maps that many slots, a size it
 * learns from its trusted parent rather than from the segment.
 */

#define SLOT_NONE 0xffu
#define BLOB_HANDLES (2 + MPROC__OS_COND_HANDLES)
#define BLOB_SIZE (4 + 4 + BLOB_HANDLES + 4)

static int sobj_export(const sobj *o, mproc__export *ex)
{
    mproc__handle hs[2 + MPROC__OS_COND_HANDLES];
    uint8_t *b = ex->blob;
    uint32_t v;
    if (o->sh == NULL)
        return MPROC_ECLOSED;
    hs[0] = o->mh;
    hs[1] = o->sh_sem;
    for (int i = 0; i < MPROC__OS_COND_HANDLES; i++)
        hs[2 + i] = o->ch[i];
    ex->nh = 0;
    ex->h[ex->nh++] = o->seg;
    v = SYNC_MAGIC;
    memcpy(b, &v, 4);
    memcpy(b + 4, &o->kind, 4);
    for (int i = 0; i < 2 + MPROC__OS_COND_HANDLES; i++) {
        if (hs[i] == MPROC__BADHANDLE) {
            b[8 + i] = SLOT_NONE;
        } else {
            if (ex->nh >= MPROC__EXPORT_MAX_HANDLES)
                return MPROC_EINVAL;
            b[8 + i] = (uint8_t)ex->nh;
            ex->h[ex->nh++] = hs[i];
        }
    }
    memcpy(b + 8 + BLOB_HANDLES, &o->nslots, 4);
    ex->nblob = BLOB_SIZE;
    return 0;
}

static int sobj_import(sobj *o, uint32_t kind, const mproc__export *ex)
{
    mproc__handle hs[2 + MPROC__OS_COND_HANDLES];
    const uint8_t *b = ex->blob;
    unsigned uses = kind_uses(kind);
    uint32_t magic, k, nslots;
    void *p = NULL;
    int rc;
    sobj_init_handles(o);
    o->kind = kind;
    if (ex->nblob != BLOB_SIZE || ex->nh < 1 ||
        ex->nh > MPROC__EXPORT_MAX_HANDLES)
        return MPROC_EBADMSG;
    memcpy(&magic, b, 4);
    memcpy(&k, b + 4, 4);
    memcpy(&nslots, b + 8 + BLOB_HANDLES, 4);
    if (magic != SYNC_MAGIC || k != kind)
        return MPROC_EBADMSG;
    if (kind == KIND_BARRIER ? nslots == 0 || nslots > MPROC_BARRIER_MAX_PARTIES
                             : nslots != 0)
        return MPROC_EBADMSG;
    for (int i = 0; i < 2 + MPROC__OS_COND_HANDLES; i++) {
        uint8_t slot = b[8 + i];
        if (slot == SLOT_NONE)
            hs[i] = MPROC__BADHANDLE;
        else if (slot == 0 || slot >= ex->nh)
            return MPROC_EBADMSG;
        else
            hs[i] = ex->h[slot];
    }
    o->nslots = nslots;
    o->size = sobj_size(nslots);
    rc = mproc__os_shm_map(ex->h[0], o->size, &p);
    if (rc < 0)
        return rc == MPROC_EINVAL ? MPROC_EBADMSG : rc;
    o->sh = (shared *)p;
    if (o->sh->magic != SYNC_MAGIC || o->sh->version != SYNC_VERSION ||
        o->sh->kind != kind || o->sh->parties != nslots) {
        mproc__os_shm_unmap(p, o->size);
        o->sh = NULL;
        return MPROC_EBADMSG;
    }
    o->seg = ex->h[0];
    o->mh = hs[0];
    o->sh_sem = hs[1];
    for (int i = 0; i < MPROC__OS_COND_HANDLES; i++)
        o->ch[i] = hs[2 + i];
    /* On failure the handles stay the caller's (the codec's), as on every
     * other failure path of an import: only the mapping is undone. */
    rc = 0;
    if ((uses & USE_MUTEX) && rc == 0)
        rc = mproc__os_mutex_open(o->sh->mutex, o->mh);
    if ((uses & USE_SEM) && rc == 0)
        rc = mproc__os_sem_open(o->sh->sem, o->sh_sem);
    if ((uses & USE_COND) && rc == 0)
        rc = mproc__os_cond_open(o->sh->cond, o->ch);
    if (rc < 0) {
        mproc__os_shm_unmap(o->sh, o->size);
        sobj_init_handles(o);
        return rc;
    }
    o->made = uses;
    return 0;
}

/* The object's internal mutex for Event, Barrier and Condition state. An
 * owner that died inside one of our own short critical sections left at
 * worst a counter off by one; the state stays usable, so EOWNERDEAD counts
 * as acquired here. */
static int guard_lock(sobj *o)
{
    int rc = mproc__os_mutex_lock(o->sh->mutex, o->mh, MPROC_FOREVER);
    return MPROC_ACQUIRED(rc) ? 0 : rc;
}

static void guard_unlock(sobj *o)
{
    (void)mproc__os_mutex_unlock(o->sh->mutex, o->mh);
}

/* Waits on the object's condition variable until the deadline: 0 (woken,
 * maybe spuriously) or MPROC_ETIMEDOUT. */
static int guard_wait(sobj *o, int64_t deadline)
{
    int t = mproc__remaining(deadline);
    int rc;
    if (t == 0)
        return MPROC_ETIMEDOUT;
    rc = mproc__os_cond_wait(o->sh->cond, o->ch, o->sh->mutex, o->mh, t);
    return rc == MPROC_EOWNERDEAD ? 0 : rc;
}

/* ---------------------------------------------------------------------------
 * Lock
 */

struct mproc_lock {
    /* The two things the hot path needs, first. */
    void *mutex;
    mproc__handle mh;
    sobj o;
};

static int lock_wrap(mproc_lock *l)
{
    l->mutex = l->o.sh->mutex;
    l->mh = l->o.mh;
    return 0;
}

int mproc_lock_create(mproc_lock **out)
{
    mproc_lock *l;
    int rc;
    if (out == NULL)
        return MPROC_EINVAL;
    *out = NULL;
    l = (mproc_lock *)calloc(1, sizeof *l);
    if (l == NULL)
        return MPROC_ENOMEM;
    rc = sobj_create(&l->o, KIND_LOCK, 0, 0, 0);
    if (rc < 0) {
        free(l);
        return rc;
    }
    lock_wrap(l);
    *out = l;
    return 0;
}

int mproc_lock_acquire(mproc_lock *l, int timeout_ms)
{
    if (l == NULL || timeout_ms < MPROC_FOREVER)
        return MPROC_EINVAL;
    return mproc__os_mutex_lock(l->mutex, l->mh, timeout_ms);
}

int mproc_lock_release(mproc_lock *l)
{
    if (l == NULL)
        return MPROC_EINVAL;
    return mproc__os_mutex_unlock(l->mutex, l->mh);
}

mproc_lock *mproc_lock_destroy(mproc_lock *l)
{
    if (l != NULL) {
        sobj_fini(&l->o);
        free(l);
    }
    return NULL;
}

/* Who holds the object's mutex (mproc_owner), its process in *pid. An
 * owner between taking the mutex and recording itself (Windows' hint, the
 * word mutex's thread) is given a few turns to finish. */
static int mutex_owner(sobj *o, int64_t *pid)
{
    int64_t p = 0, t = 0;
    int rc, tries;
    if (pid != NULL)
        *pid = 0;
    for (tries = 0;; tries++) {
        rc = mproc__os_mutex_peek(o->sh->mutex, o->mh, &p, &t);
        if (rc <= 0)
            return rc < 0 ? rc : MPROC_OWNER_NONE;
        if ((p != 0 && t != 0) || tries >= 100)
            break;
        mproc__os_yield();
    }
    if (t != 0 && t == mproc__os_thread_id()) {
        p = mproc__os_getpid();
        rc = MPROC_OWNER_CALLER;
    } else {
        rc = p == mproc__os_getpid() ? MPROC_OWNER_THREAD : MPROC_OWNER_PROCESS;
    }
    if (pid != NULL)
        *pid = p;
    return rc;
}

static int mutex_locked(sobj *o)
{
    int64_t p, t;
    int rc = mproc__os_mutex_peek(o->sh->mutex, o->mh, &p, &t);
    return rc < 0 ? rc : rc > 0;
}

int mproc_lock_locked(mproc_lock *l)
{
    if (l == NULL)
        return MPROC_EINVAL;
    return mutex_locked(&l->o);
}

int mproc_lock_owner(mproc_lock *l, int64_t *pid)
{
    if (l == NULL)
        return MPROC_EINVAL;
    return mutex_owner(&l->o, pid);
}

int mproc__lock_export(mproc_lock *l, mproc__export *ex)
{
    if (l == NULL || ex == NULL)
        return MPROC_EINVAL;
    return sobj_export(&l->o, ex);
}

int mproc__lock_import(const mproc__export *ex, mproc_lock **out)
{
    mproc_lock *l;
    int rc;
    if (ex == NULL || out == NULL)
        return MPROC_EINVAL;
    l = (mproc_lock *)calloc(1, sizeof *l);
    if (l == NULL)
        return MPROC_ENOMEM;
    rc = sobj_import(&l->o, KIND_LOCK, ex);
    if (rc < 0) {
        free(l);
        return rc;
    }
    lock_wrap(l);
    *out = l;
    return 0;
}

/* ---------------------------------------------------------------------------
 * Recursive ownership (RLock and the Condition's lock)
 *
 * The owner is recorded as a token of the calling thread rather than its
 * thread id: a thread that dies holding the lock leaves its id in the
 * block, and thread ids are recycled (quickly on Windows, after a pid
 * wrap-around on Linux); a new thread with the same id must not take the
 * stale record for its own and "re-acquire" without the mutex. The token is
 * made when a thread first asks, and again whenever its thread id changes
 * (the child of a fork keeps the parent thread's thread-local storage, and
 * gets a new thread id), from the process identity (pid and start time:
 * unique on the machine for ever), the thread id (unique in the process
 * while the thread lives) and a per-process counter (unique in the
 * process), each folded in through a full mix. A plain xor of shifted
 * inputs let two of them cancel: with a thread id of pid << 32 | n, the pid
 * dropped out, and a fork child's thread could get its parent thread's
 * token.
 */

static _Thread_local int64_t token_tid;
static _Thread_local int64_t token_value;
static _Atomic uint64_t token_counter;

static uint64_t mix64(uint64_t x)
{
    /* splitmix64's finaliser: a bijection that moves every bit. */
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static int64_t owner_token(void)
{
    int64_t tid = mproc__os_thread_id();
    /* A fork child's thread has a new thread id (the backend refetches it
     * there), so the id alone tells when to remake the token. */
    if (tid != token_tid || token_value == 0) {
        mproc__proc_id self = mproc__os_proc_self();
        uint64_t x = 0x6d70726f63746f6bULL; /* "mproctok" */
        x = mix64(x ^ (uint64_t)self.pid);
        x = mix64(x ^ self.start);
        x = mix64(x ^ (uint64_t)tid);
        x = mix64(x ^ atomic_fetch_add_explicit(&token_counter, 1,
                                                memory_order_relaxed));
        token_tid = tid;
        token_value = (int64_t)(x | 1); /* never 0, the "free" value */
    }
    return token_value;
}

static int rec_acquire(sobj *o, int timeout_ms)
{
    shared *sh = o->sh;
    int64_t self = owner_token();
    int rc;
    if (atomic_load_explicit(&sh->owner, memory_order_relaxed) == self) {
        if (sh->count == UINT32_MAX)
            return MPROC_ERANGE;
        sh->count++;
        return 0;
    }
    rc = mproc__os_mutex_lock(sh->mutex, o->mh, timeout_ms);
    if (!MPROC_ACQUIRED(rc))
        return rc;
    atomic_store_explicit(&sh->owner, self, memory_order_relaxed);
    sh->count = 1;
    return rc;
}

static bool rec_owned(const sobj *o)
{
    return atomic_load_explicit(&o->sh->owner, memory_order_relaxed) ==
           owner_token();
}

static int rec_release(sobj *o)
{
    shared *sh = o->sh;
    if (!rec_owned(o) || sh->count == 0)
        return MPROC_ENOTOWNER;
    if (--sh->count > 0)
        return 0;
    atomic_store_explicit(&sh->owner, 0, memory_order_relaxed);
    return mproc__os_mutex_unlock(sh->mutex, o->mh);
}

/* ---------------------------------------------------------------------------
 * RLock
 */

struct mproc_rlock {
    sobj o;
};

#define DEFINE_EXPORT(name, type, kind)                                        \
    int mproc__##name##_export(type *x, mproc__export *ex)                     \
    {                                                                          \
        if (x == NULL || ex == NULL)                                           \
            return MPROC_EINVAL;                                               \
        return sobj_export(&x->o, ex);                                         \
    }                                                                          \
    int mproc__##name##_import(const mproc__export *ex, type **out)            \
    {                                                                          \
        type *x;                                                               \
        int rc;                                                                \
        if (ex == NULL || out == NULL)                                         \
            return MPROC_EINVAL;                                               \
        x = (type *)calloc(1, sizeof *x);                                      \
        if (x == NULL)                                                         \
            return MPROC_ENOMEM;                                               \
        rc = sobj_import(&x->o, kind, ex);                                     \
        if (rc < 0) {                                                          \
            free(x);                                                           \
            return rc;                                                         \
        }                                                                      \
        *out = x;                                                              \
        return 0;                                                              \
    }

#define DEFINE_CREATE_DESTROY(name, type, kind)                                \
    static int name##_new(type **out, unsigned initial, unsigned max)          \
    {                                                                          \
        type *x;                                                               \
        int rc;                                                                \
        *out = NULL;                                                           \
        x = (type *)calloc(1, sizeof *x);                                      \
        if (x == NULL)                                                         \
            return MPROC_ENOMEM;                                               \
        rc = sobj_create(&x->o, kind, initial, max, 0);                        \
        if (rc < 0) {                                                          \
            free(x);                                                           \
            return rc;                                                         \
        }                                                                      \
        *out = x;                                                              \
        return 0;                                                              \
    }                                                                          \
    type *mproc_##name##_destroy(type *x)                                      \
    {                                                                          \
        if (x != NULL) {                                                       \
            sobj_fini(&x->o);                                                  \
            free(x);                                                           \
        }                                                                      \
        return NULL;                                                           \
    }

/* Create, acquire and release of the two recursive kinds: the RLock, and
 * the Condition, whose lock is an RLock as in Python. */
#define DEFINE_RECURSIVE(name, type)                                           \
    int mproc_##name##_create(type **x)                                        \
    {                                                                          \
        if (x == NULL)                                                         \
            return MPROC_EINVAL;                                               \
        return name##_new(x, 0, 0);                                            \
    }                                                                          \
    int mproc_##name##_acquire(type *x, int timeout_ms)                        \
    {                                                                          \
        if (x == NULL || timeout_ms < MPROC_FOREVER)                           \
            return MPROC_EINVAL;                                               \
        return rec_acquire(&x->o, timeout_ms);                                 \
    }                                                                          \
    int mproc_##name##_release(type *x)                                        \
    {                                                                          \
        if (x == NULL)                                                         \
            return MPROC_EINVAL;                                               \
        return rec_release(&x->o);                                             \
    }

DEFINE_EXPORT(rlock, mproc_rlock, KIND_RLOCK)
DEFINE_CREATE_DESTROY(rlock, mproc_rlock, KIND_RLOCK)
DEFINE_RECURSIVE(rlock, mproc_rlock)

int mproc_rlock_locked(mproc_rlock *l)
{
    if (l == NULL)
        return MPROC_EINVAL;
    return mutex_locked(&l->o);
}

int mproc_rlock_owner(mproc_rlock *l, int64_t *pid)
{
    if (l == NULL)
        return MPROC_EINVAL;
    return mutex_owner(&l->o, pid);
}

int64_t mproc_rlock_count(mproc_rlock *l)
{
    int held;
    if (l == NULL)
        return MPROC_EINVAL;
    /* The owner's own count is exact; anyone else's read is a snapshot of
     * a number only the owner writes. A free lock is 0 whatever a dead
     * owner left there. */
    if (rec_owned(&l->o))
        return (int64_t)l->o.sh->count;
    held = mutex_locked(&l->o);
    if (held <= 0)
        return held;
    return (int64_t)l->o.sh->count;
}

/* ---------------------------------------------------------------------------
 * Semaphore
 */

struct mproc_sem {
    sobj o;
};

DEFINE_EXPORT(sem, mproc_sem, KIND_SEM)
DEFINE_CREATE_DESTROY(sem, mproc_sem, KIND_SEM)

int mproc_sem_create(mproc_sem **s, unsigned initial, unsigned max)
{
    if (s == NULL)
        return MPROC_EINVAL;
    *s = NULL;
    /* A BoundedSemaphore starting above its bound could never be
     * released; the count must also fit every platform's semaphore. */
    if ((max > 0 && initial > max) || initial > INT32_MAX || max > INT32_MAX)
        return MPROC_EINVAL;
    return sem_new(s, initial, max);
}

int mproc_sem_acquire(mproc_sem *s, int timeout_ms)
{
    if (s == NULL || timeout_ms < MPROC_FOREVER)
        return MPROC_EINVAL;
    return mproc__os_sem_wait(s->o.sh->sem, s->o.sh_sem, timeout_ms);
}

int mproc_sem_release(mproc_sem *s)
{
    if (s == NULL)
        return MPROC_EINVAL;
    return mproc__os_sem_post(s->o.sh->sem, s->o.sh_sem, 1);
}

int64_t mproc_sem_value(mproc_sem *s)
{
    if (s == NULL)
        return MPROC_EINVAL;
    return mproc__os_sem_value(s->o.sh->sem, s->o.sh_sem);
}

/* ---------------------------------------------------------------------------
 * Condition
 */

struct mproc_cond {
    sobj o;
};

DEFINE_EXPORT(cond, mproc_cond, KIND_COND)
DEFINE_CREATE_DESTROY(cond, mproc_cond, KIND_COND)
DEFINE_RECURSIVE(cond, mproc_cond)

int mproc_cond_wait(mproc_cond *c, int timeout_ms)
{
    shared *sh;
    uint32_t saved;
    int64_t self;
    int rc;
    if (c == NULL || timeout_ms < MPROC_FOREVER)
        return MPROC_EINVAL;
    sh = c->o.sh;
    self = owner_token();
    if (atomic_load_explicit(&sh->owner, memory_order_relaxed) != self ||
        sh->count == 0)
        return MPROC_ENOTOWNER;
    if (timeout_ms == 0)
        return MPROC_ETIMEDOUT;
    /* However deep the caller's recursion, the wait releases the lock
     * completely (Python's Condition does the same) and restores it. */
    saved = sh->count;
    sh->count = 0;
    atomic_store_explicit(&sh->owner, 0, memory_order_relaxed);
    sh->nwait++;
    rc = mproc__os_cond_wait(sh->cond, c->o.ch, sh->mutex, c->o.mh, timeout_ms);
    sh->nwait--;
    atomic_store_explicit(&sh->owner, self, memory_order_relaxed);
    sh->count = saved;
    return rc;
}

int mproc_cond_wait_for(mproc_cond *c, mproc_predicate pred, void *ctx,
                        int timeout_ms)
{
    int64_t deadline;
    int rc, left;
    if (c == NULL || pred == NULL || timeout_ms < MPROC_FOREVER)
        return MPROC_EINVAL;
    if (!rec_owned(&c->o) || c->o.sh->count == 0)
        return MPROC_ENOTOWNER;
    /* One deadline for the whole call (Python's wait_for): a wake-up that
     * finds the predicate false waits only for what is left. */
    deadline = mproc__deadline(timeout_ms);
    for (;;) {
        if (pred(ctx))
            return 1;
        left = mproc__remaining(deadline);
        if (left == 0)
            return 0;
        rc = mproc_cond_wait(c, left);
        if (rc == MPROC_ETIMEDOUT)
            return pred(ctx) ? 1 : 0;
        if (rc < 0)
            return rc;
    }
}

int mproc_cond_notify(mproc_cond *c, unsigned n)
{
    shared *sh;
    if (c == NULL)
        return MPROC_EINVAL;
    sh = c->o.sh;
    if (!rec_owned(&c->o) || sh->count == 0)
        return MPROC_ENOTOWNER;
    if (n == 0 || sh->nwait == 0)
        return 0;
    /* Signalling more often than there are waiters would only loop. */
    if (n >= sh->nwait)
        return mproc__os_cond_broadcast(sh->cond, c->o.ch);
    return mproc__os_cond_signal(sh->cond, c->o.ch, n);
}

int mproc_cond_notify_all(mproc_cond *c)
{
    shared *sh;
    if (c == NULL)
        return MPROC_EINVAL;
    sh = c->o.sh;
    if (!rec_owned(&c->o) || sh->count == 0)
        return MPROC_ENOTOWNER;
    if (sh->nwait == 0)
        return 0;
    return mproc__os_cond_broadcast(sh->cond, c->o.ch);
}

/* ---------------------------------------------------------------------------
 * Event
 */

struct mproc_event {
    sobj o;
};

DEFINE_EXPORT(event, mproc_event, KIND_EVENT)
DEFINE_CREATE_DESTROY(event, mproc_event, KIND_EVENT)

int mproc_event_create(mproc_event **e)
{
    if (e == NULL)
        return MPROC_EINVAL;
    return event_new(e, 0, 0);
}

int mproc_event_set(mproc_event *e)
{
    shared *sh;
    int rc;
    if (e == NULL)
        return MPROC_EINVAL;
    sh = e->o.sh;
    rc = guard_lock(&e->o);
    if (rc < 0)
        return rc;
    if (atomic_load_explicit(&sh->flag, memory_order_relaxed) == 0) {
        atomic_store_explicit(&sh->flag, 1, memory_order_release);
        /* The generation tells a waiter that a set happened while it
         * slept, even if a clear came before it woke up. */
        sh->gen++;
        rc = mproc__os_cond_broadcast(sh->cond, e->o.ch);
    }
    guard_unlock(&e->o);
    return rc;
}

int mproc_event_clear(mproc_event *e)
{
    int rc;
    if (e == NULL)
        return MPROC_EINVAL;
    rc = guard_lock(&e->o);
    if (rc < 0)
        return rc;
    atomic_store_explicit(&e->o.sh->flag, 0, memory_order_release);
    guard_unlock(&e->o);
    return 0;
}

int mproc_event_is_set(mproc_event *e)
{
    if (e == NULL)
        return MPROC_EINVAL;
    return atomic_load_explicit(&e->o.sh->flag, memory_order_acquire) != 0;
}

int mproc_event_wait(mproc_event *e, int timeout_ms)
{
    shared *sh;
    int64_t deadline;
    uint64_t gen;
    int rc;
    if (e == NULL || timeout_ms < MPROC_FOREVER)
        return MPROC_EINVAL;
    sh = e->o.sh;
    if (atomic_load_explicit(&sh->flag, memory_order_acquire) != 0)
        return 0;
    deadline = mproc__deadline(timeout_ms);
    rc = guard_lock(&e->o);
    if (rc < 0)
        return rc;
    gen = sh->gen;
    for (;;) {
        if (atomic_load_explicit(&sh->flag, memory_order_relaxed) != 0 ||
            sh->gen != gen) {
            rc = 0;
            break;
        }
        rc = guard_wait(&e->o, deadline);
        if (rc < 0 && rc != MPROC_ETIMEDOUT)
            break;
        if (rc == MPROC_ETIMEDOUT) {
            rc = atomic_load_explicit(&sh->flag, memory_order_relaxed) != 0 ||
                         sh->gen != gen
                     ? 0
                     : MPROC_ETIMEDOUT;
            break;
        }
    }
    guard_unlock(&e->o);
    return rc;
}

/* ---------------------------------------------------------------------------
 * Barrier (the state machine of Python's threading.Barrier)
 *
 * Every party that enters a cycle takes the slot of its index (its arrival
 * order) and writes its process identity there; it clears the slot when it
 * leaves, so `inside` is always the number of slots in use, and during
 * FILLING slots 0 .. inside-1 are the waiting parties.
 *
 * A party's death is learned from the OS, never guessed: a waiting party
 * sleeps in slices of BARRIER_CHECK_MS (also when it waits without a
 * timeout), and after each slice asks whether the party before it (party 0:
 * the last one in) still runs (mproc__os_proc_alive). Every waiting party is
 * watched by exactly one other, so one identity check per waiter per slice
 * finds any death within a slice; the finder frees the dead party's slot
 * and breaks the barrier for the others. The fast path of a healthy barrier
 * pays two stores into its slot under the lock it takes anyway; only a
 * sleeper pays one check per slice. A dead party counted in a draining or
 * resetting barrier (killed after the cycle completed, before it left) is
 * found by whoever waits for the next cycle, after a slice, and by reset;
 * a party that died holding the object's mutex (MPROC_EOWNERDEAD) is found
 * by a full recount. So reset always leaves a usable barrier.
 *
 * Indices and loop bounds come from the private slot count (o->nslots),
 * never from the segment: a corrupt `inside` is MPROC_ECORRUPT.
 */

#define BARRIER_CHECK_MS 25

struct mproc_barrier {
    sobj o;
    /* Private to each process: from create, or from the export (the
     * parent's word, never the segment's). */
    mproc_barrier_action action;
    int timeout; /* for MPROC_BARRIER_DEFAULT */
};

/* The export: the object's blob, then i32 default timeout, u64 action
 * offset, u16 module length and the module (length 0: no action). The
 * importer finds the action as a spawned child finds its target: only in
 * a module already mapped, only at a verified function entry. */
int mproc__barrier_export(mproc_barrier *b, mproc__export *ex)
{
    char *module = NULL;
    uint64_t offset = 0;
    size_t n = 0;
    uint16_t n16;
    int32_t t;
    int rc;
    if (b == NULL || ex == NULL)
        return MPROC_EINVAL;
    rc = sobj_export(&b->o, ex);
    if (rc < 0)
        return rc;
    if (b->action != NULL) {
        const void *fn;
        memcpy(&fn, &b->action, sizeof fn);
        rc = mproc__os_locate(fn, &module, &offset);
        if (rc < 0)
            return rc;
        n = strlen(module);
        if (ex->nblob + 14 + n > MPROC__EXPORT_MAX_BLOB) {
            free(module);
            return MPROC_EMSGSIZE; /* a path longer than any export holds */
        }
    }
    t = (int32_t)b->timeout;
    n16 = (uint16_t)n;
    memcpy(ex->blob + ex->nblob, &t, 4);
    memcpy(ex->blob + ex->nblob + 4, &offset, 8);
    memcpy(ex->blob + ex->nblob + 12, &n16, 2);
    if (n > 0)
        memcpy(ex->blob + ex->nblob + 14, module, n);
    ex->nblob += 14 + (uint32_t)n;
    free(module);
    return 0;
}

int mproc__barrier_import(const mproc__export *ex, mproc_barrier **out)
{
    mproc__export base;
    mproc_barrier *b;
    uint64_t offset;
    uint16_t n;
    int32_t t;
    void *fn = NULL;
    int rc;
    if (ex == NULL || out == NULL)
        return MPROC_EINVAL;
    if (ex->nblob < BLOB_SIZE + 14)
        return MPROC_EBADMSG;
    memcpy(&t, ex->blob + BLOB_SIZE, 4);
    memcpy(&offset, ex->blob + BLOB_SIZE + 4, 8);
    memcpy(&n, ex->blob + BLOB_SIZE + 12, 2);
    if (ex->nblob != BLOB_SIZE + 14 + (uint32_t)n || t < MPROC_FOREVER)
        return MPROC_EBADMSG;
    if (n > 0) {
        char *module = malloc((size_t)n + 1);
        if (module == NULL)
            return MPROC_ENOMEM;
        memcpy(module, ex->blob + BLOB_SIZE + 14, n);
        module[n] = '\0';
        rc = strlen(module) == n ? mproc__os_resolve(module, offset, &fn)
                                 : MPROC_EBADMSG;
        free(module);
        if (rc < 0)
            return rc;
    }
    b = (mproc_barrier *)calloc(1, sizeof *b);
    if (b == NULL)
        return MPROC_ENOMEM;
    base = *ex;
    base.nblob = BLOB_SIZE;
    rc = sobj_import(&b->o, KIND_BARRIER, &base);
    if (rc < 0) {
        free(b);
        return rc;
    }
    memcpy(&b->action, &fn, sizeof fn);
    b->timeout = (int)t;
    *out = b;
    return 0;
}

mproc_barrier *mproc_barrier_destroy(mproc_barrier *b)
{
    if (b != NULL) {
        sobj_fini(&b->o);
        free(b);
    }
    return NULL;
}

int mproc_barrier_create(mproc_barrier **b, unsigned parties)
{
    return mproc_barrier_create_ex(b, parties, NULL, MPROC_FOREVER);
}

int mproc_barrier_create_ex(mproc_barrier **b, unsigned parties,
                            mproc_barrier_action action, int timeout_ms)
{
    mproc_barrier *x;
    int rc;
    if (b == NULL)
        return MPROC_EINVAL;
    *b = NULL;
    if (parties == 0 || parties > MPROC_BARRIER_MAX_PARTIES ||
        timeout_ms < MPROC_FOREVER)
        return MPROC_EINVAL;
    x = (mproc_barrier *)calloc(1, sizeof *x);
    if (x == NULL)
        return MPROC_ENOMEM;
    rc = sobj_create(&x->o, KIND_BARRIER, 0, 0, (uint32_t)parties);
    if (rc < 0) {
        free(x);
        return rc;
    }
    x->o.sh->state = BARRIER_FILLING;
    x->action = action;
    x->timeout = timeout_ms;
    *b = x;
    return 0;
}

static barrier_slot *barrier_slots(sobj *o)
{
    return (barrier_slot *)(void *)((unsigned char *)o->sh + sizeof(shared));
}

/* The last one out of a draining or resetting barrier refills it. */
static void barrier_exit(sobj *o)
{
    shared *sh = o->sh;
    if (sh->inside == 0 &&
        (sh->state == BARRIER_RESETTING || sh->state == BARRIER_DRAINING)) {
        sh->state = BARRIER_FILLING;
        (void)mproc__os_cond_broadcast(sh->cond, o->ch);
    }
}

static void barrier_break(sobj *o)
{
    o->sh->state = BARRIER_BROKEN;
    (void)mproc__os_cond_broadcast(o->sh->cond, o->ch);
}

/* Frees slot i of a party that has ended: its count goes with it. */
static void barrier_drop(sobj *o, uint32_t i)
{
    barrier_slots(o)[i].pid = 0;
    if (o->sh->inside > 0)
        o->sh->inside--;
}

static bool slot_alive(const barrier_slot *s)
{
    mproc__proc_id id;
    id.pid = s->pid;
    id.start = s->start;
    return mproc__os_proc_alive(&id) != 0;
}

/* Frees the slots of parties that have ended. recount: `inside` may be
 * wrong (a party died holding the mutex), so it is set from the slots.
 * Losing a party while the barrier fills breaks it; an empty draining or
 * resetting barrier is refilled. */
static void barrier_reap(sobj *o, bool recount)
{
    shared *sh = o->sh;
    barrier_slot *sl = barrier_slots(o);
    uint32_t used = 0, dropped = 0;
    for (uint32_t i = 0; i < o->nslots; i++) {
        if (sl[i].pid == 0)
            continue;
        if (!slot_alive(&sl[i])) {
            sl[i].pid = 0;
            dropped++;
        } else {
            used++;
        }
        /* Without a recount, once every counted party has been seen the
         * rest are free (and maybe never touched: leave them so). */
        if (!recount && used + dropped >= sh->inside)
            break;
    }
    if (recount) {
        if (sh->inside != used)
            dropped++;
        sh->inside = used;
    } else {
        sh->inside = sh->inside > dropped ? sh->inside - dropped : 0;
    }
    if (dropped > 0 && sh->state == BARRIER_FILLING)
        barrier_break(o);
    barrier_exit(o);
}

/* The object's mutex, with the barrier repaired when its previous owner
 * died inside one of our critical sections. */
static int barrier_lock(sobj *o)
{
    int rc = mproc__os_mutex_lock(o->sh->mutex, o->mh, MPROC_FOREVER);
    if (rc == MPROC_EOWNERDEAD) {
        barrier_reap(o, true);
        rc = 0;
    }
    return rc;
}

/* Sleeps on the condition until the deadline, at most one slice: 0 woken
 * (maybe spuriously), 1 a slice passed (not the deadline), MPROC_ETIMEDOUT,
 * or another error. */
static int barrier_nap(sobj *o, int64_t deadline)
{
    int t = mproc__remaining(deadline);
    bool sliced = false;
    int rc;
    if (t == 0)
        return MPROC_ETIMEDOUT;
    if (t < 0 || t > BARRIER_CHECK_MS) {
        t = BARRIER_CHECK_MS;
        sliced = true;
    }
    rc = mproc__os_cond_wait(o->sh->cond, o->ch, o->sh->mutex, o->mh, t);
    if (rc == MPROC_EOWNERDEAD) {
        barrier_reap(o, true);
        return 0;
    }
    if (rc == MPROC_ETIMEDOUT)
        return sliced ? 1 : MPROC_ETIMEDOUT;
    return rc;
}

/* A waiter of a filling barrier at slot `index` checks the party it
 * watches: the one before it, or for index 0 the last one in. */
static void barrier_watch(sobj *o, uint32_t index)
{
    shared *sh = o->sh;
    uint32_t w;
    if (sh->inside < 2 || sh->inside > o->nslots)
        return;
    w = index > 0 ? index - 1 : sh->inside - 1;
    if (w == index || barrier_slots(o)[w].pid == 0)
        return;
    if (!slot_alive(&barrier_slots(o)[w])) {
        barrier_drop(o, w);
        barrier_break(o);
    }
}

int mproc_barrier_wait(mproc_barrier *b, int timeout_ms)
{
    mproc__proc_id self;
    barrier_slot *mine;
    shared *sh;
    int64_t deadline;
    uint32_t index;
    int rc;
    if (b == NULL || timeout_ms < MPROC_BARRIER_DEFAULT)
        return MPROC_EINVAL;
    if (timeout_ms == MPROC_BARRIER_DEFAULT)
        timeout_ms = b->timeout;
    sh = b->o.sh;
    self = mproc__os_proc_self();
    deadline = mproc__deadline(timeout_ms);
    rc = barrier_lock(&b->o);
    if (rc < 0)
        return rc;
    /* Wait for the previous cycle to drain (or a reset to finish). The
     * timeout counts from the call, so it bounds this wait too; running
     * out here breaks nothing, since we never joined. A party that died
     * before it could leave is found after a slice. */
    while (sh->state == BARRIER_DRAINING || sh->state == BARRIER_RESETTING) {
        rc = barrier_nap(&b->o, deadline);
        if (rc == 1) {
            barrier_reap(&b->o, false);
        } else if (rc < 0) {
            guard_unlock(&b->o);
            return rc;
        }
    }
    if (sh->state == BARRIER_BROKEN) {
        guard_unlock(&b->o);
        return MPROC_EBROKEN;
    }
    index = sh->inside;
    if (index >= b->o.nslots || sh->state != BARRIER_FILLING) {
        guard_unlock(&b->o);
        return MPROC_ECORRUPT;
    }
    mine = &barrier_slots(&b->o)[index];
    mine->pid = self.pid;
    mine->start = self.start;
    sh->inside = index + 1;
    if (index + 1 == b->o.nslots) {
        /* The last one in runs the action before anyone leaves (Python
         * runs it under the barrier's lock too); its failure breaks the
         * cycle for all. */
        if (b->action != NULL && b->action() != 0) {
            barrier_break(&b->o);
            rc = MPROC_EBROKEN;
        } else {
            sh->state = BARRIER_DRAINING;
            (void)mproc__os_cond_broadcast(sh->cond, b->o.ch);
            rc = (int)index;
        }
    } else {
        rc = 0;
        while (sh->state == BARRIER_FILLING) {
            rc = barrier_nap(&b->o, deadline);
            if (rc == 1)
                barrier_watch(&b->o, index);
            else if (rc < 0)
                break;
        }
        if (rc < 0 && sh->state == BARRIER_FILLING) {
            /* Our timeout (or an error) breaks the barrier for all. */
            barrier_break(&b->o);
            rc = MPROC_EBROKEN;
        } else if (sh->state < 0) {
            rc = MPROC_EBROKEN;
        } else {
            rc = (int)index;
        }
    }
    /* Leave: our slot (unless a corrupt peer took it) and our count. */
    if (mine->pid == self.pid && mine->start == self.start)
        barrier_drop(&b->o, index);
    barrier_exit(&b->o);
    guard_unlock(&b->o);
    return rc;
}

int mproc_barrier_abort(mproc_barrier *b)
{
    int rc;
    if (b == NULL)
        return MPROC_EINVAL;
    rc = barrier_lock(&b->o);
    if (rc < 0)
        return rc;
    barrier_break(&b->o);
    guard_unlock(&b->o);
    return 0;
}

int mproc_barrier_reset(mproc_barrier *b)
{
    shared *sh;
    int rc;
    if (b == NULL)
        return MPROC_EINVAL;
    sh = b->o.sh;
    rc = barrier_lock(&b->o);
    if (rc < 0)
        return rc;
    /* Parties that died inside are no longer waited for. */
    if (sh->inside > 0)
        barrier_reap(&b->o, false);
    if (sh->inside > 0) {
        /* Waiters still inside leave with MPROC_EBROKEN; the last one out
         * refills the barrier. */
        if (sh->state == BARRIER_FILLING || sh->state == BARRIER_BROKEN)
            sh->state = BARRIER_RESETTING;
    } else {
        sh->state = BARRIER_FILLING;
    }
    (void)mproc__os_cond_broadcast(sh->cond, b->o.ch);
    guard_unlock(&b->o);
    return 0;
}

int mproc_barrier_parties(mproc_barrier *b)
{
    if (b == NULL)
        return MPROC_EINVAL;
    return (int)b->o.nslots;
}

int mproc_barrier_n_waiting(mproc_barrier *b)
{
    int rc;
    if (b == NULL)
        return MPROC_EINVAL;
    rc = barrier_lock(&b->o);
    if (rc < 0)
        return rc;
    rc = b->o.sh->state == BARRIER_FILLING ? (int)b->o.sh->inside : 0;
    guard_unlock(&b->o);
    return rc;
}

int mproc_barrier_broken(mproc_barrier *b)
{
    int rc;
    if (b == NULL)
        return MPROC_EINVAL;
    rc = barrier_lock(&b->o);
    if (rc < 0)
        return rc;
    rc = b->o.sh->state == BARRIER_BROKEN;
    guard_unlock(&b->o);
    return rc;
}
