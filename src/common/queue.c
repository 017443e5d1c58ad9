/*
 * Queue: a multi-producer, multi-consumer queue of messages in shared
 * memory, with no feeder thread.
 *
 * Layout. One shared segment holds a header and a byte ring. Items are
 * records in the ring: an 8-byte header (payload length, flags) and the
 * payload, padded to 8 bytes. The ring's two positions are single 64-bit
 * words, (item count << 32) | byte count, both free-running modulo 2^32:
 * `tail`, advanced by producers, and `head`, advanced by consumers. A record
 * exists for consumers exactly when one store of `tail` published it, and
 * is gone exactly when one store of `head` retired it; this is what makes
 * the queue survive processes that die at any instruction:
 *
 * - A producer writes the record, then stores `tail`: an item is in shared
 *   memory when put returns and survives the producer (Q07); a producer
 *   killed before the store never returned from put.
 * - A consumer copies the record out, then stores `head`: a consumer killed
 *   before the store leaves the item in the queue for the others (Q12). It
 *   never holds a half-taken item across a blocking wait (items that fit a
 *   record; see large items below).
 *
 * Item counts. The item half of a position counts whole items: `tail`'s
 * grows when an item's last record is published, `head`'s when it is
 * retired. So qsize, maxsize and join count only what a consumer can
 * receive; a chain whose producer died never counted (Q18).
 *
 * Locks and owners. Producers serialise on one lock, consumers on another
 * (the classic two-lock queue: a producer and a consumer never contend).
 * Ownership is what the OS says, never a guess from a pid: a live process
 * whose main thread has exited keeps its lock, a dead one loses it even if
 * its pid was given to another process (Q14). A lock is one of two kinds,
 * both in user space when uncontended (one compare-and-swap to lock, one
 * exchange to unlock), chosen by the backend's MPROC__OS_MUTEX_KERNEL:
 *
 * - the backend's owned mutex (backend.h) where it is not a kernel object:
 *   on Linux a robust process-shared pthread mutex, whose owner's death
 *   (thread or process) the kernel reports through the robust-futex list;
 *   elsewhere on POSIX the word mutex (a process identity and a thread);
 * - the process lock (plock.c) where it is (Windows, whose mutex handle
 *   costs two kernel transitions per put or get, two wineserver round
 *   trips under Wine): its owner is a process identity (pid and start
 *   time), and a waiter that saw it unchanged for a slice of 20 ms asks the
 *   OS whether that process still runs. A process may own a side lock
 *   because no thread ends holding one but with its process: a side lock
 *   is held only inside put, get and join, never while user code runs,
 *   with no cancellation point under it (below), and Windows has no other
 *   way to end a thread inside the library (TerminateThread is documented
 *   as unsafe for any code).
 *
 * The next owner after a death gets MPROC_EOWNERDEAD (the backend's mutex
 * at once, the process lock within a slice) and repairs (`repair`): the
 * dead producer's chain is closed, and a flag it left saying it waits is
 * cleared; positions need nothing, being changed only by single stores.
 * Thread cancellation never stops a holder: nothing under a lock is a
 * cancellation point (slow paths run with cancellation blocked), and put
 * and get offer cancellation only where they hold no lock: on entry and
 * while they sleep.
 *
 * Trust. The segment is writable by every process that has the queue, so
 * nothing read from it is trusted for a size, an index or a loop bound:
 * the ring's size is a constant of this file (the segment's copy is only
 * checked at import), every position pair is checked (record-aligned, tail
 * ahead of head by at most the ring) and every record header (flags, length
 * within what is published and within a record, a chain's total and each
 * chunk against it) before use; a violation is MPROC_ECORRUPT, returned
 * within the caller's timeout (Q15). What stays beyond reach: a peer can
 * hold a lock for ever (calls time out), or scribble on the OS's mutex
 * memory itself, whose integrity the C library assumes (the process lock
 * reads any word as free or as an owner it can ask the OS about).
 *
 * Caches. Each handle remembers, per side, what it last saw of the other
 * side's position, so that an operation need not read the other side's
 * cache line. The memory is trusted only while nobody else on its side has
 * moved since. "Nobody moved" is asked of a 64-bit count of moves per side
 * (`ops`, bumped before each position store), not of the position itself:
 * a position wraps to the same bits after 2^32 items of one size, and a
 * stale memory then reads as a phantom item or as room that is not there
 * (Q16). 64-bit counts were chosen over 64-bit positions because a position
 * must stay one word that one store publishes (above); the count is
 * written only by the lock holder on its own line, so it costs one store.
 *
 * Waiting. Consumers wait on the word `items` and producers on `space`;
 * each side, after its store, wakes the other only when the word's sleeper
 * bit says someone may sleep (see qline), so a steady stream costs no
 * system call. Before sleeping a side spins briefly, then yields, which
 * keeps a busy pair out of the kernel. Sleeps are cut in slices of
 * WAIT_SLICE_MS so that a wake-up lost to a dying process costs latency,
 * never liveness.
 *
 * Large items. A record's payload is at most a quarter of the ring; a
 * larger item travels as a chain of chunk records (FIRST ... LAST), the
 * first carrying the total length and the chain's id. The producer holds
 * the producer lock for the whole chain and the consumer the consumer lock,
 * each streaming as the other frees or fills the ring, so there is no size
 * cap beyond MPROC_MESSAGE_MAX and memory stays bounded by the ring. The
 * price: a process killed in the middle of such a transfer loses that one
 * item. The queue recovers: the producer side names its open chain
 * (`open_chain`); a consumer that runs dry in a chain that is no longer
 * open, or whose producer the OS reports dead, drops it, and a consumer
 * drops chunks of a chain it did not start (its consumer died). A transfer
 * that has begun completes regardless of the call's timeout.
 *
 * Bounds. maxsize bounds the number of items; the ring (RING_CAP bytes)
 * bounds the bytes in flight: a put also waits (and the non-blocking put is
 * MPROC_EFULL) when the ring has no room, even below maxsize. Timeout 0
 * does not wait for room or items, but does wait for a lock whose holder
 * is copying (bounded), not for one whose holder itself waits (`stalled`),
 * and at most NB_LOCK_MS (Q13).
 *
 * mproc_wait: a queue has a doorbell, a one-way byte channel. While some
 * process waits on the queue in mproc_wait (bell_waiters > 0), a producer
 * rings it (one byte, when it is not armed already) after publishing. The
 * bell stays readable while the queue holds records, so every waiter sees
 * it; a waiter that finds the queue empty takes every byte out and rings
 * again if a put came meanwhile; a waiter that registers and finds the
 * bell armed with nothing in the channel disarms it. So no ring is
 * swallowed and no stale "armed" outlives one registration (Q17).
 *
 * Shutdown (Python 3.13). `shut` in the segment only grows: SHUT_DRAIN
 * refuses new items (checked on entry, and under the producer lock before
 * a new item goes in) and makes a get on an empty queue fail instead of
 * waiting; SHUT_NOW also drops every item (the shutting process drains
 * under the consumer lock, and so does any get after it, for a put that
 * raced), stops a chain being streamed, and counts each dropped item as
 * done, so that a join waits only for the items already taken. Every
 * sleeper is woken to re-check.
 *
 * Map: constants; shared layout; waiting; cancellation; locks and repair;
 * ring helpers and checks; create/destroy; put; get; sizes, close,
 * shutdown, joinable; export/import and the wait hooks; test hooks.
 */
#include "internal.h"

#include "atomics.h"
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

/* 4 MiB: about 58,000 items of 64 bytes in flight. Measured on 2 CPUs, 1:1
 * and 2:2 throughput is the same as with 1 MiB or better, and worse with
 * 16 MiB (the ring no longer stays in cache); the pages a busy queue has
 * cycled through stay resident, so this is also its memory cost. */
#define RING_CAP ((uint32_t)1 << 22)
#define REC_HDR 8u
/* Largest payload of one record: a quarter of the ring. */
#define MAX_PAYLOAD (RING_CAP / 4 - REC_HDR)
/* A chain's first chunk starts with its total length and its id. */
#define CHAIN_HDR 16u
#define F_FIRST 1u
#define F_LAST 2u
#define QMAGIC 0x7551706du /* "mpQu" */
#define QVERSION 4u
/* Waiting first spins (the other side is usually running on another core
 * and answers within a microsecond), then yields the processor (with more
 * processes than cores the lock holder or the peer may be waiting for our
 * core: measured 2:2 on 2 cores, yielding made it 5x faster), then sleeps
 * on a wait word. */
#define SPIN 100
#define YIELDS 10
/* A contended queue lock is different: its holder is another process of
 * the same side, and two of them running at once make every operation
 * move the lock, the position and the ring's lines between cores. So a
 * taker spins briefly (a holder running elsewhere is done within
 * nanoseconds), then naps 1 ms without registering as a waiter (the
 * holder's unlock stays free of system calls): the holder keeps its lines
 * to itself, and with more processes than cores the napper's core goes to a
 * process of the other side. Measured 2:2 on 2 cores: 0.76x of the 1:1
 * rate with spin-then-yield, 0.86x with spin-then-nap; 1:1 never contends.
 * After LOCK_NAPS naps it blocks on the lock in slices of LOCK_CHECK_MS
 * (between slices it may be cancelled, and a non-blocking call checks
 * whether the holder has begun to wait). */
#define LOCK_SPIN 10
#define LOCK_NAPS 5
#define LOCK_CHECK_MS 20
#define WAIT_SLICE_MS 100
/* The longest a non-blocking call waits for a lock whose holder is copying:
 * a copy under the lock is one record (at most 1 MiB, well under a
 * millisecond), so a holder busy this long is stopped or starved, and the
 * caller asked not to be blocked. */
#define NB_LOCK_MS 1000
/* Internal result of the chain helpers: the chain is lost (its producer
 * died or gave up); the consumer goes on with the next item. */
#define LOST 1
/* Shutdown states (Python 3.13's Queue.shutdown): no new items; with
 * SHUT_NOW the items are dropped too and gets fail at once. */
#define SHUT_DRAIN 1u
#define SHUT_NOW 2u

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define cpu_relax() __builtin_ia32_pause()
#elif defined(__GNUC__) && defined(__aarch64__)
#define cpu_relax() __asm__ __volatile__("yield")
#elif defined(_MSC_VER) && (defined(_M_X64) || defined(_M_IX86))
#include <intrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void)0)
#endif

static void pause_or_yield(int i)
{
    if (i < SPIN)
        cpu_relax();
    else
        mproc__os_yield();
}

/* ---------------------------------------------------------------------------
 * Shared layout
 */

enum { W_ITEMS, W_SPACE, W_JOIN, NWORDS };
enum { PROD, CONS, NSIDES };

typedef struct qword {
    alignas(16) _Atomic uint32_t v;
    uint32_t backend[3];
} qword;

/* A wait word alone on a cache line: the `items` and `space` words are read
 * on every operation of the other side but written only around sleeps.
 *
 * The top bit of a word (SLEEPERS) says someone may sleep on it; the rest is
 * a sequence number. A sleeper sets the bit, re-checks its condition and
 * sleeps; a waker that changed the state and finds the bit clears it
 * (bumping the sequence) and wakes. No count of sleepers is kept, because a
 * sleeper killed in its sleep could never take itself off it: a stale bit
 * costs one wake-up and is gone, a stale count would cost a system call on
 * every operation from then on. */
typedef struct qline {
    alignas(64) qword w;
} qline;

#define SLEEPERS 0x80000000u

/* The side locks' kind (see the top): the backend's mutex where it stays
 * in user space when uncontended, else the process lock. A build may force
 * either with -DMPROC_QUEUE_PLOCK=1 or =0 (the tests run the queue on the
 * process lock on POSIX that way). */
#if !defined(MPROC_QUEUE_PLOCK)
#define MPROC_QUEUE_PLOCK MPROC__OS_MUTEX_KERNEL
#endif
#if MPROC_QUEUE_PLOCK
#define LOCK_SIZE MPROC__PLOCK_SIZE
#else
#define LOCK_SIZE MPROC__OS_MUTEX_SIZE
#endif

/* One side's lock and what its holder keeps for the next holder, on lines
 * of their own: touched by that side only (and by a consumer that checks
 * on a chain's producer). */
typedef struct qside {
    alignas(64) unsigned char lock[LOCK_SIZE];
    /* Moves of this side's position, bumped before each store of it. */
    _Atomic uint64_t ops;
    /* 1 while the holder waits for the other side with the lock kept. */
    _Atomic uint32_t stalled;
    uint32_t pad;
    /* Producer side: the id of the chain being streamed (0: none), and the
     * last id given out (under the lock). */
    _Atomic uint64_t open_chain;
    uint64_t chain_seq;
} qside;

typedef struct qshared {
    uint32_t magic;
    uint32_t version;
    uint32_t ring_cap; /* checked at import, never used */
    uint32_t joinable;
    uint64_t maxsize;
    alignas(64) qline l[NWORDS];
    qside side[NSIDES];
    alignas(64) _Atomic uint32_t bell_waiters;
    _Atomic uint32_t bell_armed;
    /* The two positions on their own cache lines: producers write one,
     * consumers the other. */
    alignas(64) _Atomic uint64_t tail;
    alignas(64) _Atomic uint64_t head;
    /* task_done calls, plus items lost with a consumer or dropped by an
     * immediate shutdown, mod 2^32. */
    alignas(64) _Atomic uint32_t done;
    /* Shutdown (Q20): 0 open, SHUT_DRAIN, SHUT_NOW; it only grows. */
    _Atomic uint32_t shut;
    alignas(64) uint8_t data[];
} qshared;

_Static_assert(sizeof(qword) == MPROC__OS_WORD_SIZE, "wait word size");
_Static_assert((RING_CAP & (RING_CAP - 1)) == 0, "ring size a power of 2");

struct mproc_queue {
    qshared *s;
    size_t map_size;
    /* Process-private copies of what the segment said at creation. */
    uint64_t maxsize;
    bool joinable;
    mproc__handle shm;
    mproc__handle bell[2]; /* [0] read, [1] write */
    mproc__handle wh[NWORDS];
    mproc__handle mh[NSIDES]; /* the side locks' handles */
    _Atomic bool closed;      /* close() here: no more puts from this process */
    /* The caches (see the top), each only touched under its side's lock:
     * what this handle last saw of the other side's position, its own
     * side's position after its last move, and the side's `ops` then. */
    uint64_t seen_head, last_tail, p_ops; /* producer side */
    uint64_t seen_tail, last_head, c_ops; /* consumer side */
};

#define ITEMS(pos) ((uint32_t)((pos) >> 32))
#define BYTES(pos) ((uint32_t)(pos))
#define POS(items, bytes) (((uint64_t)(items) << 32) | (uint64_t)(bytes))

static uint32_t rec_size(uint32_t payload)
{
    return (REC_HDR + payload + 7u) & ~7u;
}

/* One call's terms: when it gives up, whether it is non-blocking, and what
 * a cancellation must free (put's encoded item). */
typedef struct qcall {
    int64_t deadline;
    bool nonblock;
    void *owned;
} qcall;

/* ---------------------------------------------------------------------------
 * Waiting
 */

/* Marks word w as slept on; returns the value to sleep on. */
static uint32_t prepare_sleep(mproc_queue *q, int w)
{
    _Atomic uint32_t *p = &q->s->l[w].w.v;
    uint32_t v = atomic_load(p);
    while (!(v & SLEEPERS) &&
           !atomic_compare_exchange_weak(p, &v, v | SLEEPERS))
        ;
    return v | SLEEPERS;
}

/* After a state change (made with a sequentially consistent store, so that
 * it is ordered before this load): wakes every sleeper of word w, if the
 * word says there may be one. All of them: consumers of items and
 * producers waiting for different amounts of room each re-check. */
static void wake_all(mproc_queue *q, int w)
{
    _Atomic uint32_t *p = &q->s->l[w].w.v;
    uint32_t v = atomic_load(p);
    if ((v & SLEEPERS) &&
        atomic_compare_exchange_strong(p, &v, (v + 1) & ~SLEEPERS))
        (void)mproc__os_word_wake((void *)&q->s->l[w].w, q->wh[w], UINT32_MAX);
}

/* Sleeps on word `w` while it holds `seq`, at most one slice of the time
 * left; 0 to re-check, MPROC_ETIMEDOUT when the deadline has passed. Not a
 * cancellation point (cancellation is blocked around the wait: where the
 * backend's wait sleeps with nanosleep, it would be one). */
static int sleep_on(mproc_queue *q, int w, uint32_t seq, int64_t deadline)
{
    int left = mproc__remaining(deadline);
    int rc, prev;
    if (left == 0)
        return MPROC_ETIMEDOUT;
    if (left < 0 || left > WAIT_SLICE_MS)
        left = WAIT_SLICE_MS;
    prev = mproc__os_cancel_block();
    rc = mproc__os_word_wait((void *)&q->s->l[w].w, seq, q->wh[w], left);
    mproc__os_cancel_unblock(prev);
    return rc == MPROC_ETIMEDOUT ? 0 : rc;
}

/* ---------------------------------------------------------------------------
 * Cancellation
 */

static void free_owned(void *p)
{
    free(p);
}

/* A cancellation point, for where the call holds no lock. */
static void offer_cancel(const qcall *c)
{
    mproc__os_cancel_point(c->owned != NULL ? free_owned : NULL, c->owned);
}

/* The same inside a region where cancellation is blocked (`prev`: the
 * caller's own state). */
static void offer_cancel_blocked(const qcall *c, int prev)
{
    mproc__os_cancel_unblock(prev);
    offer_cancel(c);
    (void)mproc__os_cancel_block();
}

/* ---------------------------------------------------------------------------
 * Locks and repair
 */

/* The side lock's primitives, of the kind chosen above. */

static int lock_init(void *m, mproc__handle *h)
{
#if MPROC_QUEUE_PLOCK
    return mproc__plock_init(m, h);
#else
    return mproc__os_mutex_init(m, h);
#endif
}

static int lock_open(void *m, mproc__handle h)
{
#if MPROC_QUEUE_PLOCK
    return mproc__plock_open(m, h);
#else
    return mproc__os_mutex_open(m, h);
#endif
}

static void lock_destroy(void *m, mproc__handle h)
{
#if MPROC_QUEUE_PLOCK
    mproc__plock_destroy(m, h);
#else
    mproc__os_mutex_destroy(m, h);
#endif
}

/* 0, MPROC_EOWNERDEAD (acquired), MPROC_EBUSY (timeout 0), ETIMEDOUT.
 * At timeout 0 a dead owner is seen at once. */
static int lock_timed(mproc_queue *q, int side, int timeout_ms)
{
    void *m = q->s->side[side].lock;
#if MPROC_QUEUE_PLOCK
    return mproc__plock_lock(m, q->mh[side], timeout_ms);
#else
    return mproc__os_mutex_lock(m, q->mh[side], timeout_ms);
#endif
}

/* One attempt, for spinning: 0, MPROC_EBUSY, or (the backend's mutex,
 * which tells at no extra cost) MPROC_EOWNERDEAD. The process lock does
 * not ask the OS about its owner here; lock_timed does. */
static int trylock(mproc_queue *q, int side)
{
#if MPROC_QUEUE_PLOCK
    return mproc__plock_trylock(q->s->side[side].lock);
#else
    return lock_timed(q, side, 0);
#endif
}

static void side_unlock(mproc_queue *q, int side)
{
    void *m = q->s->side[side].lock;
#if MPROC_QUEUE_PLOCK
    (void)mproc__plock_unlock(m, q->mh[side]);
#else
    (void)mproc__os_mutex_unlock(m, q->mh[side]);
#endif
}

/* Called holding a side's lock whose previous holder died holding it. Its
 * position stores were whole (single stores, `ops` bumped before each), so
 * only what it announced to others needs undoing: that it waits, and (a
 * producer) that it streams a chain, whose consumers then drop it. */
static void repair(mproc_queue *q, int side)
{
    qside *sd = &q->s->side[side];
    atomic_store(&sd->stalled, 0);
    if (side == PROD)
        atomic_store(&sd->open_chain, 0);
}

/* The contended path of side_lock: spin, nap, then block in slices. Runs
 * with cancellation blocked (a nap is a nanosleep) and offers it between
 * naps and slices. */
static int lock_slow(mproc_queue *q, int side, const qcall *c)
{
    qside *sd = &q->s->side[side];
    int64_t end = c->nonblock ? mproc__deadline(NB_LOCK_MS) : c->deadline;
    int prev = mproc__os_cancel_block();
    int rc = MPROC_EBUSY;
    int i;
    for (i = 0; i < LOCK_SPIN + LOCK_NAPS; i++) {
        if (i < LOCK_SPIN) {
            cpu_relax();
        } else if (c->nonblock && atomic_load(&sd->stalled)) {
            rc = MPROC_ETIMEDOUT;
            goto out;
        } else if (mproc__remaining(end) == 0) {
            mproc__os_yield(); /* no time to nap: a last few tries */
        } else {
            mproc__os_sleep_ms(1);
            offer_cancel_blocked(c, prev);
        }
        rc = trylock(q, side);
        if (rc != MPROC_EBUSY)
            goto out;
    }
    for (;;) {
        int left = mproc__remaining(end);
        if (left == 0 || (c->nonblock && atomic_load(&sd->stalled))) {
            rc = MPROC_ETIMEDOUT;
            break;
        }
        if (left < 0 || left > LOCK_CHECK_MS)
            left = LOCK_CHECK_MS;
        rc = lock_timed(q, side, left);
        if (rc != MPROC_ETIMEDOUT)
            break;
        offer_cancel_blocked(c, prev);
    }
out:
    mproc__os_cancel_unblock(prev);
    return rc;
}

/* Takes a side's lock, repairing after a dead holder: 0, MPROC_ETIMEDOUT,
 * or a backend error. */
static int side_lock(mproc_queue *q, int side, const qcall *c)
{
    int rc = trylock(q, side);
    if (rc == MPROC_EBUSY)
        rc = lock_slow(q, side, c);
    if (rc == MPROC_EOWNERDEAD) {
        repair(q, side);
        rc = 0;
    }
    return rc;
}

/* The sleep of wait_room and wait_record: sleeps on word `w` while it holds
 * `seq`, with the side's lock dropped meanwhile unless `keep_lock` (then
 * without a deadline). Where the lock is dropped the call may be
 * cancelled. *locked turns false, and its error is returned, when the lock
 * could not be taken back; else sleep_on's result. */
static int sleep_unlocked(mproc_queue *q, int w, int side, uint32_t seq,
                          bool keep_lock, const qcall *c, bool *locked)
{
    int rc, lrc;
    if (keep_lock)
        return sleep_on(q, w, seq, -1);
    side_unlock(q, side);
    offer_cancel(c);
    rc = sleep_on(q, w, seq, c->deadline);
    offer_cancel(c);
    lrc = side_lock(q, side, c);
    if (lrc < 0) {
        *locked = false;
        return lrc;
    }
    return rc;
}

/* ---------------------------------------------------------------------------
 * Ring helpers and checks. Every offset is masked with the private
 * RING_CAP and every length is at most a record, so no access leaves the
 * ring whatever the segment says.
 */

static void ring_write(qshared *s, uint32_t pos, const void *src, size_t n)
{
    uint32_t off = pos & (RING_CAP - 1);
    size_t first = RING_CAP - off;
    if (first > n)
        first = n;
    memcpy(s->data + off, src, first);
    if (n > first)
        memcpy(s->data, (const uint8_t *)src + first, n - first);
}

static void ring_read(const qshared *s, uint32_t pos, void *dst, size_t n)
{
    uint32_t off = pos & (RING_CAP - 1);
    size_t first = RING_CAP - off;
    if (first > n)
        first = n;
    memcpy(dst, s->data + off, first);
    if (n > first)
        memcpy((uint8_t *)dst + first, s->data, n - first);
}

static void put_hdr(qshared *s, uint32_t pos, uint32_t len, uint32_t flags)
{
    uint32_t h[2];
    h[0] = len;
    h[1] = flags;
    ring_write(s, pos, h, sizeof h);
}

/* A (tail, head) pair as it must be: both record-aligned, tail ahead of
 * head by at most the ring, and no more whole items between them than
 * records fit (each counted item still has its last record there). */
static bool span_ok(uint64_t t, uint64_t h)
{
    uint32_t used = BYTES(t) - BYTES(h);
    return ((BYTES(t) | BYTES(h)) & 7u) == 0 && used <= RING_CAP &&
           ITEMS(t) - ITEMS(h) <= used / REC_HDR;
}

/* Reads and checks the header of the record at h, with the tail t (a
 * checked span): its flags, and a length that fits a record and what is
 * published. */
static int read_hdr(const qshared *s, uint64_t h, uint64_t t, uint32_t *len,
                    uint32_t *flags)
{
    uint32_t hd[2];
    ring_read(s, BYTES(h), hd, sizeof hd);
    if ((hd[1] & ~(F_FIRST | F_LAST)) != 0 || hd[0] > MAX_PAYLOAD ||
        rec_size(hd[0]) > BYTES(t) - BYTES(h))
        return MPROC_ECORRUPT;
    *len = hd[0];
    *flags = hd[1];
    return 0;
}

static bool records_now(const qshared *s)
{
    uint64_t h = atomic_load(&s->head);
    return BYTES(atomic_load(&s->tail)) != BYTES(h);
}

/* Rings the doorbell: one byte, never blocking (a full bell is rung
 * already), with cancellation blocked (a send is a cancellation point, and
 * a producer rings holding its lock). */
static void bell_ring(mproc_queue *q)
{
    static const uint8_t one = 1;
    int prev = mproc__os_cancel_block();
    (void)mproc__os_chan_write_nowait(q->bell[1], &one, 1);
    mproc__os_cancel_unblock(prev);
}

/* Publishes one record at the tail (completing `items` items) and wakes
 * consumers. */
static void publish(mproc_queue *q, uint64_t t, uint32_t rsize, uint32_t items)
{
    qshared *s = q->s;
    _Atomic uint64_t *ops = &s->side[PROD].ops;
    q->p_ops = atomic_load_explicit(ops, memory_order_relaxed) + 1;
    atomic_store_explicit(ops, q->p_ops, memory_order_relaxed);
    q->last_tail = POS(ITEMS(t) + items, BYTES(t) + rsize);
    atomic_store(&s->tail, q->last_tail);
    wake_all(q, W_ITEMS);
    if (atomic_load(&s->bell_waiters) > 0 && atomic_load(&s->bell_armed) == 0 &&
        atomic_exchange(&s->bell_armed, 1) == 0)
        bell_ring(q);
}

/* Retires one record at the head (completing `items` items) and wakes
 * producers. */
static void retire(mproc_queue *q, uint64_t h, uint32_t rsize, uint32_t items)
{
    qshared *s = q->s;
    _Atomic uint64_t *ops = &s->side[CONS].ops;
    q->c_ops = atomic_load_explicit(ops, memory_order_relaxed) + 1;
    atomic_store_explicit(ops, q->c_ops, memory_order_relaxed);
    q->last_head = POS(ITEMS(h) + items, BYTES(h) + rsize);
    atomic_store(&s->head, q->last_head);
    wake_all(q, W_SPACE);
}

/* After corruption was seen: trust nothing this side remembers (a peer may
 * have moved a position backwards, which no cache allows for), so that the
 * handle works again once the segment is sane. Under that side's lock. */
static void forget_caches(mproc_queue *q, int side)
{
    if (side == PROD) {
        q->p_ops = UINT64_MAX;
        q->last_tail = UINT64_MAX;
    } else {
        q->c_ops = UINT64_MAX;
        q->last_head = UINT64_MAX;
    }
}

static uint32_t unfinished(const qshared *s, uint32_t done)
{
    return ITEMS(atomic_load(&s->tail)) - done;
}

/* A whole item that no consumer can receive any more (the rest of it was
 * dropped after its consumer died): joinable queues count it as done. */
static void item_lost(mproc_queue *q)
{
    uint32_t d;
    if (!q->joinable)
        return;
    d = atomic_fetch_add(&q->s->done, 1) + 1;
    if (unfinished(q->s, d) == 0)
        wake_all(q, W_JOIN);
}

/* ---------------------------------------------------------------------------
 * Create / destroy
 */

static void queue_free(mproc_queue *q)
{
    int i;
    if (q->s != NULL) {
        for (i = 0; i < NSIDES; i++)
            if (q->mh[i] != MPROC__BADHANDLE)
                lock_destroy(q->s->side[i].lock, q->mh[i]);
        mproc__os_shm_unmap(q->s, q->map_size);
    }
    mproc__os_handle_close(q->shm);
    mproc__os_handle_close(q->bell[0]);
    mproc__os_handle_close(q->bell[1]);
    for (i = 0; i < NWORDS; i++)
        if (q->wh[i] != MPROC__BADHANDLE)
            mproc__os_handle_close(q->wh[i]);
    free(q);
}

static mproc_queue *queue_alloc(void)
{
    mproc_queue *q = calloc(1, sizeof *q);
    int i;
    if (q == NULL)
        return NULL;
    q->shm = q->bell[0] = q->bell[1] = MPROC__BADHANDLE;
    for (i = 0; i < NWORDS; i++)
        q->wh[i] = MPROC__BADHANDLE;
    for (i = 0; i < NSIDES; i++)
        q->mh[i] = MPROC__BADHANDLE;
    return q;
}

static int queue_new(mproc_queue **out, size_t maxsize, bool joinable)
{
    mproc_queue *q;
    void *addr = NULL;
    int rc, i;
    if (out == NULL)
        return MPROC_EINVAL;
    *out = NULL;
    q = queue_alloc();
    if (q == NULL)
        return MPROC_ENOMEM;
    q->map_size = sizeof(qshared) + RING_CAP;
    rc = mproc__os_shm_create(q->map_size, &q->shm, &addr);
    if (rc < 0)
        goto fail;
    q->s = addr;
    q->s->magic = QMAGIC;
    q->s->version = QVERSION;
    q->s->ring_cap = RING_CAP;
    q->s->joinable = joinable;
    q->s->maxsize = maxsize;
    q->maxsize = maxsize;
    q->joinable = joinable;
    for (i = 0; i < NWORDS; i++) {
        rc = mproc__os_word_init(&q->s->l[i].w, &q->wh[i]);
        if (rc < 0)
            goto fail;
    }
    for (i = 0; i < NSIDES; i++) {
        rc = lock_init(q->s->side[i].lock, &q->mh[i]);
        if (rc < 0)
            goto fail;
    }
    rc = mproc__os_chan_pair(q->bell, false);
    if (rc < 0)
        goto fail;
    *out = q;
    return 0;
fail:
    queue_free(q);
    return rc;
}

int mproc_queue_create(mproc_queue **q, size_t maxsize)
{
    return queue_new(q, maxsize, false);
}

int mproc_queue_create_joinable(mproc_queue **q, size_t maxsize)
{
    return queue_new(q, maxsize, true);
}

mproc_queue *mproc_queue_destroy(mproc_queue *q)
{
    if (q != NULL)
        queue_free(q);
    return NULL;
}

/* ---------------------------------------------------------------------------
 * Put
 */

/* 1 when `rsize` bytes are free at tail t (and, for a new item, the count
 * is below maxsize), 0 when not, MPROC_ECORRUPT for a pair that cannot
 * be. */
static int room_for(const mproc_queue *q, uint64_t t, uint64_t h,
                    uint32_t rsize, bool new_item)
{
    if (!span_ok(t, h))
        return MPROC_ECORRUPT;
    if (RING_CAP - (BYTES(t) - BYTES(h)) < rsize)
        return 0;
    if (new_item && q->maxsize > 0 && ITEMS(t) - ITEMS(h) >= q->maxsize)
        return 0;
    return 1;
}

/* Waits, with the producer lock held on entry and on return, until `rsize`
 * bytes are free and (for a new item) the item count is below maxsize.
 * Returns the tail. The lock is dropped while sleeping unless `keep_lock`
 * (the middle of a chain, which must stay contiguous; then the holder says
 * it is stalled while it waits). *locked turns false when the lock could
 * not be taken back after a sleep. */
static int wait_room(mproc_queue *q, uint32_t rsize, bool new_item,
                     bool keep_lock, const qcall *c, uint64_t *tail,
                     bool *locked)
{
    qshared *s = q->s;
    _Atomic uint32_t *stalled = &s->side[PROD].stalled;
    bool said_stalled = false;
    int spins = 0;
    int rc;
    for (;;) {
        uint64_t t = atomic_load_explicit(&s->tail, memory_order_relaxed);
        uint64_t h = q->seen_head;
        bool fresh = false;
        uint32_t seq, shut = atomic_load(&s->shut);
        /* Checked under the producer lock, so no item goes in after an
         * immediate shutdown has drained; a chain already begun goes on
         * after a shutdown that keeps the items, and stops at one that
         * drops them (its consumer drops what came of it). */
        if (shut == SHUT_NOW || (shut != 0 && new_item)) {
            rc = MPROC_ESHUTDOWN;
            break;
        }
        if (atomic_load_explicit(&s->side[PROD].ops, memory_order_relaxed) !=
                q->p_ops ||
            t != q->last_tail) {
            h = atomic_load_explicit(&s->head, memory_order_acquire);
            fresh = true;
        }
        rc = room_for(q, t, h, rsize, new_item);
        if (rc == 0 && !fresh) {
            h = atomic_load_explicit(&s->head, memory_order_acquire);
            rc = room_for(q, t, h, rsize, new_item);
        }
        if (rc < 0)
            break;
        q->seen_head = h;
        if (rc == 1) {
            *tail = t;
            rc = 0;
            break;
        }
        if (!keep_lock && c->deadline >= 0 && spins % 16 == 0 &&
            mproc__remaining(c->deadline) == 0) {
            rc = MPROC_ETIMEDOUT;
            break;
        }
        if (keep_lock && !said_stalled) {
            atomic_store(stalled, 1);
            said_stalled = true;
        }
        if (spins < SPIN + YIELDS) {
            pause_or_yield(spins++);
            continue;
        }
        seq = prepare_sleep(q, W_SPACE);
        if (atomic_load(&s->head) != h)
            continue;
        rc = sleep_unlocked(q, W_SPACE, PROD, seq, keep_lock, c, locked);
        if (rc < 0)
            break;
        spins = SPIN / 2;
    }
    if (said_stalled)
        atomic_store(stalled, 0);
    return rc;
}

/* The bytes a chain of `len` takes in the ring. */
static uint64_t chain_bytes(size_t len)
{
    size_t rest = len - (MAX_PAYLOAD - CHAIN_HDR);
    return (uint64_t)rec_size(MAX_PAYLOAD) +
           (uint64_t)(rest / MAX_PAYLOAD) * rec_size(MAX_PAYLOAD) +
           (rest % MAX_PAYLOAD ? rec_size((uint32_t)(rest % MAX_PAYLOAD)) : 0);
}

/* Streams an item larger than a record as a chain, holding the producer
 * lock throughout: the first chunk carries the total and the chain's id,
 * and the side names the chain open until the last chunk is in. */
static int put_chain(mproc_queue *q, const uint8_t *p, size_t len,
                     const qcall *c, bool *locked)
{
    qshared *s = q->s;
    qside *ps = &s->side[PROD];
    uint64_t total = len, id, t;
    uint32_t first_need = rec_size(MAX_PAYLOAD);
    size_t off = MAX_PAYLOAD - CHAIN_HDR;
    int rc;
    if (c->nonblock) {
        /* Non-blocking: the whole chain must fit now, else streaming it
         * could block after its first chunk. */
        uint64_t whole = chain_bytes(len);
        if (whole > RING_CAP)
            return MPROC_ETIMEDOUT; /* never fits at once: "full" */
        first_need = (uint32_t)whole;
    }
    rc = wait_room(q, first_need, true, false, c, &t, locked);
    if (rc < 0)
        return rc;
    id = ps->chain_seq + 1;
    if (id == 0)
        id = 1;
    ps->chain_seq = id;
    atomic_store(&ps->open_chain, id);
    put_hdr(s, BYTES(t), MAX_PAYLOAD, F_FIRST);
    ring_write(s, BYTES(t) + REC_HDR, &total, 8);
    ring_write(s, BYTES(t) + REC_HDR + 8, &id, 8);
    ring_write(s, BYTES(t) + REC_HDR + CHAIN_HDR, p, off);
    publish(q, t, rec_size(MAX_PAYLOAD), 0);
    while (off < len) {
        size_t left = len - off;
        uint32_t n = left > MAX_PAYLOAD ? MAX_PAYLOAD : (uint32_t)left;
        bool last = off + n == len;
        rc = wait_room(q, rec_size(n), false, true, c, &t, locked);
        if (rc < 0)
            break;
        put_hdr(s, BYTES(t), n, last ? F_LAST : 0);
        ring_write(s, BYTES(t) + REC_HDR, p + off, n);
        publish(q, t, rec_size(n), last ? 1u : 0u);
        off += n;
    }
    /* Complete, or given up (its consumer then drops it). */
    atomic_store(&ps->open_chain, 0);
    return rc;
}

static int put_raw(mproc_queue *q, const void *buf, size_t len, int timeout_ms,
                   void *owned)
{
    qshared *s = q->s;
    qcall c;
    uint64_t t;
    bool locked = true;
    int rc;
    c.deadline = mproc__deadline(timeout_ms);
    c.nonblock = timeout_ms == 0;
    c.owned = owned;
    rc = side_lock(q, PROD, &c);
    if (rc < 0)
        return rc == MPROC_ETIMEDOUT && c.nonblock ? MPROC_EFULL : rc;
    if (len <= MAX_PAYLOAD) {
        uint32_t n = (uint32_t)len;
        uint32_t rsize = rec_size(n);
        rc = wait_room(q, rsize, true, false, &c, &t, &locked);
        if (rc == 0) {
            put_hdr(s, BYTES(t), n, F_FIRST | F_LAST);
            if (n > 0)
                ring_write(s, BYTES(t) + REC_HDR, buf, n);
            publish(q, t, rsize, 1);
        }
    } else {
        rc = put_chain(q, buf, len, &c, &locked);
    }
    if (rc == MPROC_ECORRUPT && locked)
        forget_caches(q, PROD);
    if (locked)
        side_unlock(q, PROD);
    return rc == MPROC_ETIMEDOUT && c.nonblock ? MPROC_EFULL : rc;
}

int mproc_queue_put_bytes(mproc_queue *q, const void *buf, size_t len,
                          int timeout_ms)
{
    if (q == NULL || (buf == NULL && len > 0))
        return MPROC_EINVAL;
    MPROC__CHECK_TIMEOUT(timeout_ms);
    if (q->closed)
        return MPROC_ECLOSED;
    if (atomic_load(&q->s->shut) != 0)
        return MPROC_ESHUTDOWN;
    if (len > MPROC_MESSAGE_MAX)
        return MPROC_EMSGSIZE;
    mproc__os_cancel_point(NULL, NULL);
    return put_raw(q, buf, len, timeout_ms, NULL);
}

int mproc_queue_put(mproc_queue *q, const mproc_value *v, int timeout_ms)
{
    mproc__buf b = {NULL, 0, 0};
    int rc;
    if (q == NULL || v == NULL)
        return MPROC_EINVAL;
    MPROC__CHECK_TIMEOUT(timeout_ms);
    if (q->closed)
        return MPROC_ECLOSED;
    if (atomic_load(&q->s->shut) != 0)
        return MPROC_ESHUTDOWN;
    mproc__os_cancel_point(NULL, NULL);
    rc = mproc__encode(v, &b, NULL);
    if (rc == 0)
        rc = put_raw(q, b.p, b.n, timeout_ms, b.p);
    mproc__buf_free(&b);
    return rc;
}

/* ---------------------------------------------------------------------------
 * Get
 */

/* Whether the chain `chain` may still grow: 1 while it is open and its
 * producer holds the producer lock, 0 when it is closed or its producer
 * is gone (the OS says so: the lock was free, or free after a death, which
 * this repairs), or a negative code. Called by a consumer that has run dry
 * in the middle of the chain. */
static int chain_alive(mproc_queue *q, uint64_t chain)
{
    qside *ps = &q->s->side[PROD];
    int rc;
    if (atomic_load(&ps->open_chain) != chain)
        return 0;
    rc = lock_timed(q, PROD, 0);
    if (rc == MPROC_EBUSY)
        return 1;
    if (rc == MPROC_EOWNERDEAD)
        repair(q, PROD);
    else if (rc < 0)
        return rc;
    /* Nobody streams: an open chain now was left behind. */
    if (atomic_load(&ps->open_chain) == chain)
        atomic_store(&ps->open_chain, 0);
    side_unlock(q, PROD);
    return 0;
}

/* Waits, with the consumer lock held on entry and on return, for a record
 * at the head; returns the head and the (checked) tail. keep_lock: the
 * middle of chain `chain` (the lock stays held, the deadline is ignored,
 * and LOST reports that the chain can no longer grow). *locked turns false
 * when the lock could not be taken back after a sleep. */
static int wait_record(mproc_queue *q, bool keep_lock, uint64_t chain,
                       const qcall *c, uint64_t *head, uint64_t *tail,
                       bool *locked)
{
    qshared *s = q->s;
    _Atomic uint32_t *stalled = &s->side[CONS].stalled;
    bool said_stalled = false;
    int spins = 0;
    int rc;
    for (;;) {
        uint64_t h = atomic_load_explicit(&s->head, memory_order_relaxed);
        uint64_t t = q->seen_tail;
        uint32_t seq, shut;
        if (atomic_load_explicit(&s->side[CONS].ops, memory_order_relaxed) !=
                q->c_ops ||
            h != q->last_head || BYTES(t) == BYTES(h) ||
            BYTES(t) - BYTES(h) > RING_CAP) {
            t = atomic_load_explicit(&s->tail, memory_order_acquire);
            q->seen_tail = t;
        }
        if (!span_ok(t, h)) {
            rc = MPROC_ECORRUPT;
            break;
        }
        shut = atomic_load(&s->shut);
        if (shut == SHUT_NOW) {
            rc = keep_lock ? LOST : MPROC_ESHUTDOWN;
            break;
        }
        if (BYTES(t) != BYTES(h)) {
            *head = h;
            *tail = t;
            rc = 0;
            break;
        }
        /* Shut down and empty: nothing will come (a chain in progress
         * still completes). */
        if (shut != 0 && !keep_lock) {
            rc = MPROC_ESHUTDOWN;
            break;
        }
        if (keep_lock) {
            if (spins >= SPIN + YIELDS) {
                rc = chain_alive(q, chain);
                if (rc < 0)
                    break;
                if (rc == 0) {
                    /* Its last chunk may have come before it closed. */
                    if (BYTES(atomic_load(&s->tail)) != BYTES(h))
                        continue;
                    rc = LOST;
                    break;
                }
                if (!said_stalled) {
                    atomic_store(stalled, 1);
                    said_stalled = true;
                }
            }
        } else if (c->deadline >= 0 && spins % 16 == 0 &&
                   mproc__remaining(c->deadline) == 0) {
            rc = MPROC_ETIMEDOUT;
            break;
        }
        if (spins < SPIN + YIELDS) {
            pause_or_yield(spins++);
            continue;
        }
        seq = prepare_sleep(q, W_ITEMS);
        if (BYTES(atomic_load(&s->tail)) != BYTES(h))
            continue;
        rc = sleep_unlocked(q, W_ITEMS, CONS, seq, keep_lock, c, locked);
        if (rc < 0)
            break;
        spins = keep_lock ? SPIN + YIELDS : SPIN / 2;
    }
    if (said_stalled)
        atomic_store(stalled, 0);
    return rc;
}

/* Receives a chain whose first chunk (length len) is at h: a malloc'ed copy
 * of the whole item, LOST when the chain died, or a negative code. */
static int get_chain(mproc_queue *q, uint64_t h, uint32_t len, const qcall *c,
                     uint8_t **out, size_t *outlen, bool *locked)
{
    qshared *s = q->s;
    uint64_t total, chain, t;
    uint32_t flags;
    uint8_t *buf;
    size_t got;
    int rc;
    if (len < CHAIN_HDR)
        return MPROC_ECORRUPT;
    ring_read(s, BYTES(h) + REC_HDR, &total, 8);
    ring_read(s, BYTES(h) + REC_HDR + 8, &chain, 8);
    got = len - CHAIN_HDR;
    if (total > MPROC_MESSAGE_MAX || total <= got)
        return MPROC_ECORRUPT;
    buf = malloc((size_t)total);
    if (buf == NULL)
        return MPROC_ENOMEM; /* nothing taken: the item stays */
    ring_read(s, BYTES(h) + REC_HDR + CHAIN_HDR, buf, got);
    retire(q, h, rec_size(len), 0);
    while (got < total) {
        rc = wait_record(q, true, chain, c, &h, &t, locked);
        if (rc == 0)
            rc = read_hdr(s, h, t, &len, &flags);
        if (rc == 0 && (flags & F_FIRST))
            rc = LOST; /* superseded: its producer died, another began */
        if (rc == 0 && (len == 0 || len > total - got ||
                        ((flags & F_LAST) != 0) != (got + len == total)))
            rc = MPROC_ECORRUPT;
        if (rc != 0) {
            free(buf);
            return rc;
        }
        ring_read(s, BYTES(h) + REC_HDR, buf + got, len);
        retire(q, h, rec_size(len), (flags & F_LAST) ? 1u : 0u);
        got += len;
    }
    *out = buf;
    *outlen = (size_t)total;
    return 0;
}

/* Drops the chunk at h of a chain whose consumer died (not a first chunk);
 * its last chunk ends an item nobody can receive now. */
static void drop_orphan(mproc_queue *q, uint64_t h, uint32_t len,
                        uint32_t flags)
{
    bool last = (flags & F_LAST) != 0;
    retire(q, h, rec_size(len), last ? 1u : 0u);
    if (last)
        item_lost(q);
}

/* An immediate shutdown's drop of every record (under the consumer lock):
 * each whole item dropped counts as done for join, as Python's
 * shutdown(immediate=True) lowers the unfinished tasks. The loop's bound
 * is the ring's record count, never the segment's word. */
static void drain(mproc_queue *q)
{
    qshared *s = q->s;
    uint32_t i;
    for (i = 0; i < RING_CAP / REC_HDR; i++) {
        uint64_t h = atomic_load(&s->head);
        uint64_t t = atomic_load(&s->tail);
        uint32_t len, flags;
        if (!span_ok(t, h) || BYTES(t) == BYTES(h) ||
            read_hdr(s, h, t, &len, &flags) < 0)
            break;
        q->seen_tail = t;
        retire(q, h, rec_size(len), (flags & F_LAST) ? 1u : 0u);
        if (flags & F_LAST)
            item_lost(q);
    }
}

/* Takes one item: a malloc'ed copy of its bytes. */
static int get_raw(mproc_queue *q, uint8_t **out, size_t *outlen,
                   int timeout_ms)
{
    qshared *s = q->s;
    qcall c;
    uint64_t h, t, dropped = 0;
    bool locked = true;
    int rc;
    c.deadline = mproc__deadline(timeout_ms);
    c.nonblock = timeout_ms == 0;
    c.owned = NULL;
    rc = side_lock(q, CONS, &c);
    if (rc < 0)
        return rc == MPROC_ETIMEDOUT && c.nonblock ? MPROC_EEMPTY : rc;
    if (atomic_load(&s->shut) == SHUT_NOW) {
        /* Whatever came in while the shutdown drained, or after. */
        drain(q);
        side_unlock(q, CONS);
        return MPROC_ESHUTDOWN;
    }
    for (;;) {
        uint32_t len, flags;
        rc = wait_record(q, false, 0, &c, &h, &t, &locked);
        if (rc == 0)
            rc = read_hdr(s, h, t, &len, &flags);
        if (rc != 0) /* never LOST outside a chain */
            break;
        if (!(flags & F_FIRST)) {
            drop_orphan(q, h, len, flags);
            /* Orphans keep coming while their producer streams: check the
             * time once per ring's worth. */
            dropped += rec_size(len);
            if (dropped >= RING_CAP) {
                dropped = 0;
                if (c.deadline >= 0 && mproc__remaining(c.deadline) == 0) {
                    rc = MPROC_ETIMEDOUT;
                    break;
                }
            }
            continue;
        }
        if (flags & F_LAST) {
            uint8_t *buf = malloc(len > 0 ? len : 1);
            if (buf == NULL) {
                rc = MPROC_ENOMEM;
                break;
            }
            ring_read(s, BYTES(h) + REC_HDR, buf, len);
            /* Copied out before the head moves: dying here loses nothing. */
            retire(q, h, rec_size(len), 1);
            *out = buf;
            *outlen = len;
            break;
        }
        rc = get_chain(q, h, len, &c, out, outlen, &locked);
        if (rc != LOST)
            break;
        /* Lost chains are rare (a producer's death), unless a peer forges
         * them: check the time after each. */
        if (c.deadline >= 0 && mproc__remaining(c.deadline) == 0) {
            rc = MPROC_ETIMEDOUT;
            break;
        }
    }
    if (rc == MPROC_ECORRUPT && locked)
        forget_caches(q, CONS);
    if (locked)
        side_unlock(q, CONS);
    return rc == MPROC_ETIMEDOUT && c.nonblock ? MPROC_EEMPTY : rc;
}

int mproc_queue_get_bytes(mproc_queue *q, void **buf, size_t *len,
                          int timeout_ms)
{
    uint8_t *p = NULL;
    size_t n = 0;
    int rc;
    if (q == NULL || buf == NULL || len == NULL)
        return MPROC_EINVAL;
    MPROC__CHECK_TIMEOUT(timeout_ms);
    *buf = NULL;
    *len = 0;
    mproc__os_cancel_point(NULL, NULL);
    rc = get_raw(q, &p, &n, timeout_ms);
    if (rc < 0)
        return rc;
    *buf = p;
    *len = n;
    return 0;
}

int mproc_queue_get(mproc_queue *q, mproc_value **out, int timeout_ms)
{
    uint8_t *p = NULL;
    size_t n = 0;
    int rc;
    if (q == NULL || out == NULL)
        return MPROC_EINVAL;
    MPROC__CHECK_TIMEOUT(timeout_ms);
    *out = NULL;
    mproc__os_cancel_point(NULL, NULL);
    rc = get_raw(q, &p, &n, timeout_ms);
    if (rc < 0)
        return rc;
    rc = mproc__decode(p, n, false, out);
    free(p);
    if (rc < 0) {
        *out = NULL;
        return rc == MPROC_ENOMEM ? rc : MPROC_EBADMSG;
    }
    return 0;
}

/* ---------------------------------------------------------------------------
 * Sizes, close, joinable
 */

/* Whole items in the queue: tail first, then head, so that the count can
 * only be too low (by items got in between), never above what the ring can
 * hold unless the segment is corrupt. */
static int64_t items_now(const qshared *s)
{
    uint64_t t = atomic_load(&s->tail);
    uint64_t h = atomic_load(&s->head);
    uint32_t n = ITEMS(t) - ITEMS(h);
    if (n > UINT32_MAX / 2)
        return 0; /* the head passed the tail we read */
    if (n > RING_CAP / REC_HDR)
        return MPROC_ECORRUPT;
    return (int64_t)n;
}

int64_t mproc_queue_qsize(mproc_queue *q)
{
    if (q == NULL)
        return MPROC_EINVAL;
    return items_now(q->s);
}

int mproc_queue_empty(mproc_queue *q)
{
    int64_t n;
    if (q == NULL)
        return MPROC_EINVAL;
    n = items_now(q->s);
    return n < 0 ? (int)n : n == 0;
}

int mproc_queue_full(mproc_queue *q)
{
    int64_t n;
    if (q == NULL)
        return MPROC_EINVAL;
    n = items_now(q->s);
    if (n < 0)
        return (int)n;
    return q->maxsize > 0 && (uint64_t)n >= q->maxsize;
}

int mproc_queue_close(mproc_queue *q)
{
    if (q == NULL)
        return MPROC_EINVAL;
    if (atomic_exchange(&q->closed, true))
        return MPROC_ECLOSED;
    return 0;
}

int mproc_queue_shutdown(mproc_queue *q, bool immediate)
{
    qshared *s;
    uint32_t want = immediate ? SHUT_NOW : SHUT_DRAIN, old;
    if (q == NULL)
        return MPROC_EINVAL;
    s = q->s;
    old = atomic_load(&s->shut);
    while (old < want && !atomic_compare_exchange_weak(&s->shut, &old, want))
        ;
    /* Every sleeper re-checks: puts fail, gets drain or fail, joins count
     * again; waiters in mproc_wait are rung. */
    wake_all(q, W_ITEMS);
    wake_all(q, W_SPACE);
    if (atomic_load(&s->bell_waiters) > 0 &&
        atomic_exchange(&s->bell_armed, 1) == 0)
        bell_ring(q);
    if (want == SHUT_NOW) {
        qcall c;
        int rc;
        c.deadline = -1;
        c.nonblock = false;
        c.owned = NULL;
        /* A consumer in the middle of a chain holds the lock until the
         * chain ends, which the shutdown makes it do (LOST). */
        rc = side_lock(q, CONS, &c);
        if (rc < 0)
            return rc;
        drain(q);
        side_unlock(q, CONS);
    }
    wake_all(q, W_JOIN);
    return 0;
}

int mproc_queue_task_done(mproc_queue *q)
{
    qshared *s;
    uint32_t d;
    if (q == NULL)
        return MPROC_EINVAL;
    s = q->s;
    if (!q->joinable)
        return MPROC_ESTATE;
    d = atomic_load(&s->done);
    for (;;) {
        uint32_t u = unfinished(s, d);
        if (u == 0)
            return MPROC_ERANGE;
        if (atomic_compare_exchange_weak(&s->done, &d, d + 1)) {
            if (u == 1)
                wake_all(q, W_JOIN);
            return 0;
        }
    }
}

/* join's part in "count what consumers can receive": the rest of an item
 * whose consumer died mid-chain sits at the head until a get drops it; with
 * no get coming, join drops it (when no consumer is busy). */
static void drop_orphans(mproc_queue *q)
{
    qshared *s = q->s;
    uint32_t i;
    int rc = lock_timed(q, CONS, 0);
    if (rc == MPROC_EOWNERDEAD)
        repair(q, CONS);
    else if (rc < 0)
        return;
    for (i = 0; i < RING_CAP / REC_HDR; i++) {
        uint64_t h = atomic_load(&s->head);
        uint64_t t = atomic_load(&s->tail);
        uint32_t len, flags;
        if (!span_ok(t, h) || BYTES(t) == BYTES(h) ||
            read_hdr(s, h, t, &len, &flags) < 0 || (flags & F_FIRST))
            break;
        q->seen_tail = t;
        drop_orphan(q, h, len, flags);
    }
    side_unlock(q, CONS);
}

int mproc_queue_join(mproc_queue *q, int timeout_ms)
{
    qshared *s;
    int64_t deadline;
    if (q == NULL)
        return MPROC_EINVAL;
    MPROC__CHECK_TIMEOUT(timeout_ms);
    s = q->s;
    if (!q->joinable)
        return MPROC_ESTATE;
    deadline = mproc__deadline(timeout_ms);
    for (;;) {
        uint32_t seq;
        int rc;
        mproc__os_cancel_point(NULL, NULL);
        if (unfinished(s, atomic_load(&s->done)) == 0)
            return 0;
        seq = prepare_sleep(q, W_JOIN);
        if (unfinished(s, atomic_load(&s->done)) == 0)
            return 0;
        drop_orphans(q);
        rc = sleep_on(q, W_JOIN, seq, deadline);
        if (rc < 0)
            return rc;
    }
}

/* ---------------------------------------------------------------------------
 * Export / import and the wait hooks
 *
 * Handles: the segment, the doorbell's two ends, then the wait words' and
 * the side locks' handles that exist (bit masks in the blob say which).
 * Blob: mapping size (8 bytes LE), word mask (1 byte), lock mask (1 byte).
 */

int mproc__queue_export(mproc_queue *q, mproc__export *ex)
{
    uint64_t size;
    uint8_t wmask = 0, mmask = 0;
    int i;
    if (q == NULL || ex == NULL)
        return MPROC_EINVAL;
    ex->h[0] = q->shm;
    ex->h[1] = q->bell[0];
    ex->h[2] = q->bell[1];
    ex->nh = 3;
    for (i = 0; i < NWORDS + NSIDES; i++) {
        mproc__handle h = i < NWORDS ? q->wh[i] : q->mh[i - NWORDS];
        if (h == MPROC__BADHANDLE)
            continue;
        if (ex->nh >= MPROC__EXPORT_MAX_HANDLES)
            return MPROC_EINVAL;
        ex->h[ex->nh++] = h;
        if (i < NWORDS)
            wmask = (uint8_t)(wmask | (1u << i));
        else
            mmask = (uint8_t)(mmask | (1u << (i - NWORDS)));
    }
    size = q->map_size;
    for (i = 0; i < 8; i++)
        ex->blob[i] = (uint8_t)(size >> (8 * i));
    ex->blob[8] = wmask;
    ex->blob[9] = mmask;
    ex->nblob = 10;
    return 0;
}

int mproc__queue_import(const mproc__export *ex, mproc_queue **out)
{
    mproc_queue *q;
    uint64_t size = 0;
    uint32_t k = 3;
    void *addr = NULL;
    int rc, i;
    if (ex == NULL || out == NULL)
        return MPROC_EINVAL;
    if (ex->nblob != 10 || ex->nh < 3 || ex->nh > MPROC__EXPORT_MAX_HANDLES)
        return MPROC_EBADMSG;
    for (i = 0; i < 8; i++)
        size |= (uint64_t)ex->blob[i] << (8 * i);
    if (size != sizeof(qshared) + RING_CAP)
        return MPROC_EBADMSG;
    q = queue_alloc();
    if (q == NULL)
        return MPROC_ENOMEM;
    q->map_size = (size_t)size;
    rc = mproc__os_shm_map(ex->h[0], q->map_size, &addr);
    if (rc < 0) {
        free(q);
        return rc;
    }
    q->s = addr;
    q->shm = ex->h[0];
    q->bell[0] = ex->h[1];
    q->bell[1] = ex->h[2];
    for (i = 0; i < NWORDS + NSIDES; i++) {
        bool has = i < NWORDS ? (ex->blob[8] >> i) & 1u
                              : (ex->blob[9] >> (i - NWORDS)) & 1u;
        if (!has)
            continue;
        if (k >= ex->nh) {
            rc = MPROC_EBADMSG;
            goto fail;
        }
        if (i < NWORDS)
            q->wh[i] = ex->h[k++];
        else
            q->mh[i - NWORDS] = ex->h[k++];
    }
    if (q->s->magic != QMAGIC || q->s->version != QVERSION ||
        q->s->ring_cap != RING_CAP || q->s->joinable > 1) {
        rc = MPROC_EBADMSG;
        goto fail;
    }
    q->maxsize = q->s->maxsize;
    q->joinable = q->s->joinable != 0;
    for (i = 0; i < NWORDS; i++) {
        rc = mproc__os_word_open(&q->s->l[i].w, q->wh[i]);
        if (rc < 0)
            goto fail;
    }
    for (i = 0; i < NSIDES; i++) {
        rc = lock_open(q->s->side[i].lock, q->mh[i]);
        if (rc < 0)
            goto fail;
    }
    *out = q;
    return 0;
fail:
    /* The handles belong to the caller's export until import succeeds. */
    mproc__os_shm_unmap(q->s, q->map_size);
    free(q);
    return rc;
}

int mproc__queue_wait_handle(mproc_queue *q, mproc__handle *h, bool *ready_now)
{
    qshared *s;
    if (q == NULL || h == NULL || ready_now == NULL)
        return MPROC_EINVAL;
    s = q->s;
    atomic_fetch_add(&s->bell_waiters, 1);
    /* A bell marked rung with nothing in the channel (its ringer died
     * between the two, or a peer wrote the mark) would keep every producer
     * from ringing: disarm it. A byte still on its way makes one wake-up
     * spurious, no more. */
    if (atomic_load(&s->bell_armed) != 0 &&
        mproc__os_chan_poll(q->bell[0], 0) == 0)
        atomic_store(&s->bell_armed, 0);
    *h = q->bell[0];
    /* Shut down: a get would not wait (it drains or fails at once). */
    *ready_now = records_now(s) || atomic_load(&s->shut) != 0;
    return 0;
}

int mproc__queue_wait_end(mproc_queue *q)
{
    qshared *s;
    uint32_t w;
    uint8_t junk[64];
    int i;
    if (q == NULL)
        return MPROC_EINVAL;
    s = q->s;
    w = atomic_load(&s->bell_waiters);
    while (w > 0 && !atomic_compare_exchange_weak(&s->bell_waiters, &w, w - 1))
        ;
    /* Items there, or shut down: the bell stays readable for the other
     * waiters. */
    if (records_now(s) || atomic_load(&s->shut) != 0)
        return 1;
    if (atomic_load(&s->bell_armed) == 0 &&
        mproc__os_chan_poll(q->bell[0], 0) != 1)
        return 0;
    /* Empty: take every byte out, so that the channel is readable again
     * only after the next ring. */
    atomic_store(&s->bell_armed, 0);
    for (i = 0; i < 16; i++)
        if (mproc__os_chan_read_nowait(q->bell[0], junk, sizeof junk) <= 0)
            break;
    /* A put between the check and the drain may have lost its ring to the
     * drain: ring again for whoever else waits. */
    if (!records_now(s))
        return 0;
    if (atomic_load(&s->bell_waiters) > 0) {
        atomic_store(&s->bell_armed, 1);
        bell_ring(q);
    }
    return 1;
}

/* ---------------------------------------------------------------------------
 * Test hooks (internal.h): a peer's view of the segment, for tests that
 * play a faulty or hostile peer or drive the counters.
 */

uint64_t mproc__queue_test_get(mproc_queue *q, int field)
{
    qshared *s = q->s;
    switch (field) {
    case MPROC__QT_TAIL:
        return atomic_load(&s->tail);
    case MPROC__QT_HEAD:
        return atomic_load(&s->head);
    case MPROC__QT_RING_CAP:
        return s->ring_cap;
    case MPROC__QT_BELL_ARMED:
        return atomic_load(&s->bell_armed);
    case MPROC__QT_OPS:
        return atomic_load(&s->side[PROD].ops);
    case MPROC__QT_OPEN_CHAIN:
        return atomic_load(&s->side[PROD].open_chain);
    default:
        return 0;
    }
}

void mproc__queue_test_set(mproc_queue *q, int field, uint64_t value)
{
    qshared *s = q->s;
    switch (field) {
    case MPROC__QT_TAIL:
        atomic_store(&s->tail, value);
        break;
    case MPROC__QT_HEAD:
        atomic_store(&s->head, value);
        break;
    case MPROC__QT_RING_CAP:
        s->ring_cap = (uint32_t)value;
        break;
    case MPROC__QT_BELL_ARMED:
        atomic_store(&s->bell_armed, (uint32_t)value);
        break;
    case MPROC__QT_OPS:
        atomic_fetch_add(&s->side[PROD].ops, value);
        atomic_fetch_add(&s->side[CONS].ops, value);
        break;
    case MPROC__QT_OPEN_CHAIN:
        atomic_store(&s->side[PROD].open_chain, value);
        break;
    default:
        break;
    }
}

void mproc__queue_test_ring(mproc_queue *q, uint64_t pos, const void *p,
                            size_t n)
{
    if (n <= RING_CAP)
        ring_write(q->s, (uint32_t)pos, p, n);
}

uint8_t *mproc__queue_test_block(mproc_queue *q, size_t *size,
                                 size_t lock_off[2], size_t *lock_len)
{
    *size = q->map_size;
    lock_off[0] = offsetof(qshared, side) + offsetof(qside, lock);
    lock_off[1] = lock_off[0] + sizeof(qside);
    *lock_len = LOCK_SIZE;
    return (uint8_t *)q->s;
}
