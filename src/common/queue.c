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
 * Locks. Producers serialise on one lock, consumers on another (the classic
 * two-lock queue: a producer and a consumer never contend). A lock is a wait
 * word holding its owner's tag (pid); a waiter that finds the owner dead
 * (checked every LOCK_CHECK_MS while it waits) takes the lock over. Because
 * the state is only ever changed by the single stores above, a lock taken
 * from a dead owner needs no repair.
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
 * first carrying the total length. The producer holds the producer lock for
 * the whole chain and the consumer the consumer lock, each streaming as the
 * other frees or fills the ring, so there is no size cap beyond
 * MPROC_MESSAGE_MAX and memory stays bounded by the ring. The price: a
 * process killed in the middle of such a transfer loses that one item (the
 * queue recovers: a consumer drops chunks of a chain it did not start, and a
 * chain whose producer died or was superseded). A transfer that has begun
 * completes regardless of the call's timeout.
 *
 * Bounds. maxsize bounds the number of items; the ring (RING_CAP bytes)
 * bounds the bytes in flight: a put also waits (and the non-blocking put is
 * MPROC_EFULL) when the ring has no room, even below maxsize.
 *
 * mproc_wait: a queue has a doorbell, a one-way byte channel. While some
 * process waits on the queue in mproc_wait (bell_waiters > 0), a producer
 * rings it (one byte, only when it is not already armed) after publishing.
 *
 * Map: shared layout; locks; ring helpers; create/destroy; put; get;
 * sizes, close, joinable; export/import and the wait hooks.
 */
#include "internal.h"

#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* 4 MiB: about 58,000 items of 64 bytes in flight. Measured on 2 CPUs, 1:1
 * and 2:2 throughput is the same as with 1 MiB or better, and worse with
 * 16 MiB (the ring no longer stays in cache); the pages a busy queue has
 * cycled through stay resident, so this is also its memory cost. */
#define RING_CAP ((uint32_t)1 << 22)
#define REC_HDR 8u
#define F_FIRST 1u
#define F_LAST 2u
#define QMAGIC 0x7551706du /* "mpQu" */
#define QVERSION 2u
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
 * nanoseconds), then naps 1 ms on the lock word without setting its
 * sleeper bit (the holder's unlock stays free of system calls): the holder
 * keeps its lines to itself, and with more processes than cores the napper's
 * core goes to a process of the other side. Measured 2:2 on 2 cores: 0.76x
 * of the 1:1 rate with spin-then-yield, 0.86x with spin-then-nap; 1:1 never
 * contends. After LOCK_NAPS naps it sleeps with the bit set (on Windows a
 * nap may last a timer tick, ~15 ms: only a contending taker pays it). */
#define LOCK_SPIN 10
#define LOCK_NAPS 5
#define LOCK_CHECK_MS 20
#define WAIT_SLICE_MS 100

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define cpu_relax() __builtin_ia32_pause()
#elif defined(__GNUC__) && defined(__aarch64__)
#define cpu_relax() __asm__ __volatile__("yield")
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

enum { W_PLOCK, W_CLOCK, W_ITEMS, W_SPACE, W_JOIN, NWORDS };

typedef struct qword {
    alignas(16) _Atomic uint32_t v;
    uint32_t backend[3];
} qword;

/* A wait word alone on a cache line: the producer lock is touched by
 * producers only, the consumer lock by consumers only, and the `items` and
 * `space` words are read on every operation of the other side but written
 * only around sleeps.
 *
 * The top bit of a word (SLEEPERS) says someone may sleep on it; the rest is
 * a lock's owner tag or a sequence number. A sleeper sets the bit, re-checks
 * its condition and sleeps; a waker that changed the state and finds the
 * bit clears it (bumping the sequence) and wakes. No count of sleepers is
 * kept, because a sleeper killed in its sleep could never take itself off
 * it: a stale bit costs one wake-up and is gone, a stale count would cost a
 * system call on every operation from then on. */
typedef struct qline {
    alignas(64) qword w;
} qline;

#define SLEEPERS 0x80000000u

typedef struct qshared {
    uint32_t magic;
    uint32_t version;
    uint32_t ring_cap;
    uint32_t joinable;
    uint64_t maxsize;
    alignas(64) qline l[NWORDS];
    alignas(64) _Atomic uint32_t bell_waiters;
    _Atomic uint32_t bell_armed;
    /* The two positions on their own cache lines: producers write one,
     * consumers the other. */
    alignas(64) _Atomic uint64_t tail;
    alignas(64) _Atomic uint64_t head;
    alignas(64) _Atomic uint32_t done; /* task_done calls, mod 2^32 */
    alignas(64) uint8_t data[];
} qshared;

_Static_assert(sizeof(qword) == MPROC__OS_WORD_SIZE, "wait word size");

struct mproc_queue {
    qshared *s;
    size_t map_size;
    mproc__handle shm;
    mproc__handle bell[2]; /* [0] read, [1] write */
    mproc__handle wh[NWORDS];
    _Atomic bool closed; /* close() here: no more puts from this process */
    /* What this process last saw of the other side's position, and its own
     * side's position after its last operation, both only touched under
     * the side's lock. The cached position is trusted only while nobody else
     * on this side moved since (else it could be 2^32 bytes stale and
     * alias); it saves reading the other side's cache line on every call. */
    uint64_t seen_head, last_tail; /* producer side */
    uint64_t seen_tail, last_head; /* consumer side */
};

#define ITEMS(pos) ((uint32_t)((pos) >> 32))
#define BYTES(pos) ((uint32_t)(pos))
#define POS(items, bytes) (((uint64_t)(items) << 32) | (uint64_t)(bytes))

static uint32_t rec_size(uint32_t payload)
{
    return (REC_HDR + payload + 7u) & ~7u;
}

/* Largest payload of one record. */
static uint32_t max_payload(const qshared *s)
{
    return s->ring_cap / 4 - REC_HDR;
}

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
 * left; 0 to re-check, MPROC_ETIMEDOUT when the deadline has passed. */
static int sleep_on(mproc_queue *q, int w, uint32_t seq, int64_t deadline)
{
    int left = mproc__remaining(deadline);
    int rc;
    if (left == 0)
        return MPROC_ETIMEDOUT;
    if (left < 0 || left > WAIT_SLICE_MS)
        left = WAIT_SLICE_MS;
    rc = mproc__os_word_wait((void *)&q->s->l[w].w, seq, q->wh[w], left);
    return rc == MPROC_ETIMEDOUT ? 0 : rc;
}

/* ---------------------------------------------------------------------------
 * Locks: a word holding the owner's tag, taken over from a dead owner.
 */

static int qlock(mproc_queue *q, int w, int64_t deadline)
{
    _Atomic uint32_t *l = &q->s->l[w].w.v;
    uint32_t me = mproc__os_self_tag();
    uint32_t v;
    int i;
    for (i = 0;; i++) {
        v = 0;
        if (atomic_compare_exchange_weak(l, &v, me))
            return 0;
        if (i == LOCK_SPIN + LOCK_NAPS)
            break;
        if (i < LOCK_SPIN || v == 0)
            cpu_relax();
        else if (mproc__remaining(deadline) == 0)
            mproc__os_yield(); /* no time to nap: a last few tries */
        else
            (void)mproc__os_word_wait((void *)&q->s->l[w].w, v, q->wh[w], 1);
    }
    for (;;) {
        int left, slice, rc;
        v = atomic_load(l);
        if (v == 0) {
            /* Taken from the slow path: others may sleep, so keep the
             * bit; the unlock then wakes one of them. */
            if (atomic_compare_exchange_strong(l, &v, me | SLEEPERS))
                return 0;
            continue;
        }
        if (!(v & SLEEPERS)) {
            if (!atomic_compare_exchange_strong(l, &v, v | SLEEPERS))
                continue;
            v |= SLEEPERS;
        }
        left = mproc__remaining(deadline);
        if (left == 0)
            return MPROC_ETIMEDOUT;
        slice = (left < 0 || left > LOCK_CHECK_MS) ? LOCK_CHECK_MS : left;
        rc = mproc__os_word_wait((void *)&q->s->l[w].w, v, q->wh[w], slice);
        if (rc == MPROC_ETIMEDOUT) {
            uint32_t owner = v & ~SLEEPERS;
            if (owner != me && mproc__os_tag_alive(owner) == 0 &&
                atomic_compare_exchange_strong(l, &v, me | SLEEPERS)) {
                /* Nothing to repair: the owner's changes were either
                 * published by one store or never happened. */
                return 0;
            }
        } else if (rc < 0) {
            return rc;
        }
    }
}

static void qunlock(mproc_queue *q, int w)
{
    if (atomic_exchange(&q->s->l[w].w.v, 0) & SLEEPERS)
        (void)mproc__os_word_wake((void *)&q->s->l[w].w, q->wh[w], 1);
}

/* The sleep of wait_room and wait_items: sleeps on word `w` while it holds
 * `seq`, with lock `lw` dropped meanwhile unless `keep_lock` (then without
 * a deadline). *locked turns false, and its error is returned, when the lock
 * could not be taken back; else sleep_on's result. */
static int sleep_unlocked(mproc_queue *q, int w, int lw, uint32_t seq,
                          bool keep_lock, int64_t deadline, bool *locked)
{
    int rc, lrc;
    if (keep_lock)
        return sleep_on(q, w, seq, -1);
    qunlock(q, lw);
    rc = sleep_on(q, w, seq, deadline);
    lrc = qlock(q, lw, deadline);
    if (lrc < 0) {
        *locked = false;
        return lrc;
    }
    return rc;
}

/* The tag of the process holding lock w, or 0. */
static uint32_t lock_owner(const qshared *s, int w)
{
    return atomic_load(&s->l[w].w.v) & ~SLEEPERS;
}

/* ---------------------------------------------------------------------------
 * Ring helpers
 */

static void ring_write(qshared *s, uint32_t pos, const void *src, size_t n)
{
    uint32_t off = pos & (s->ring_cap - 1);
    size_t first = s->ring_cap - off;
    if (first > n)
        first = n;
    memcpy(s->data + off, src, first);
    if (n > first)
        memcpy(s->data, (const uint8_t *)src + first, n - first);
}

static void ring_read(const qshared *s, uint32_t pos, void *dst, size_t n)
{
    uint32_t off = pos & (s->ring_cap - 1);
    size_t first = s->ring_cap - off;
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

static void get_hdr(const qshared *s, uint32_t pos, uint32_t *len,
                    uint32_t *flags)
{
    uint32_t h[2];
    ring_read(s, pos, h, sizeof h);
    *len = h[0];
    *flags = h[1];
}

/* Publishes one record at the tail and wakes a consumer. */
static void publish(mproc_queue *q, uint64_t t, uint32_t rsize, bool first)
{
    qshared *s = q->s;
    q->last_tail = POS(ITEMS(t) + (first ? 1u : 0u), BYTES(t) + rsize);
    atomic_store(&s->tail, q->last_tail);
    wake_all(q, W_ITEMS);
    if (atomic_load(&s->bell_waiters) > 0 && atomic_load(&s->bell_armed) == 0) {
        uint32_t zero = 0;
        if (atomic_compare_exchange_strong(&s->bell_armed, &zero, 1)) {
            static const uint8_t ring = 1;
            (void)mproc__os_chan_write(q->bell[1], &ring, 1);
        }
    }
}

/* Retires bytes (and maybe an item) at the head and wakes producers. */
static void retire(mproc_queue *q, uint64_t h, uint32_t rsize, bool first)
{
    qshared *s = q->s;
    q->last_head = POS(ITEMS(h) + (first ? 1u : 0u), BYTES(h) + rsize);
    atomic_store(&s->head, q->last_head);
    wake_all(q, W_SPACE);
}

/* ---------------------------------------------------------------------------
 * Create / destroy
 */

static void queue_free(mproc_queue *q)
{
    int i;
    if (q->s != NULL)
        mproc__os_shm_unmap(q->s, q->map_size);
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
    for (i = 0; i < NWORDS; i++) {
        rc = mproc__os_word_init(&q->s->l[i].w, &q->wh[i]);
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

/* Waits, with the producer lock held on entry and on return, until `rsize`
 * bytes are free and (for a new item) the item count is below maxsize.
 * Returns the tail. The lock is dropped while sleeping unless `keep_lock`
 * (the middle of a chain, which must stay contiguous). *locked turns false
 * when the lock could not be taken back after a sleep. */
static int wait_room(mproc_queue *q, uint32_t rsize, bool new_item,
                     bool keep_lock, int64_t deadline, uint64_t *tail,
                     bool *locked)
{
    qshared *s = q->s;
    int spins = 0;
    for (;;) {
        uint64_t t = atomic_load_explicit(&s->tail, memory_order_relaxed);
        uint64_t h = q->seen_head;
        uint32_t used = BYTES(t) - BYTES(h);
        uint32_t items = ITEMS(t) - ITEMS(h);
        uint32_t seq;
        int rc;
        if (t != q->last_tail || used > s->ring_cap ||
            s->ring_cap - used < rsize ||
            (new_item && s->maxsize > 0 && items >= s->maxsize)) {
            h = atomic_load_explicit(&s->head, memory_order_acquire);
            q->seen_head = h;
            used = BYTES(t) - BYTES(h);
            items = ITEMS(t) - ITEMS(h);
        }
        if (s->ring_cap - used >= rsize &&
            !(new_item && s->maxsize > 0 && items >= s->maxsize)) {
            *tail = t;
            return 0;
        }
        if (deadline >= 0 && !keep_lock && spins % 16 == 0 &&
            mproc__remaining(deadline) == 0)
            return MPROC_ETIMEDOUT;
        if (spins < SPIN + YIELDS) {
            pause_or_yield(spins++);
            continue;
        }
        seq = prepare_sleep(q, W_SPACE);
        if (atomic_load(&s->head) != h)
            continue;
        rc = sleep_unlocked(q, W_SPACE, W_PLOCK, seq, keep_lock, deadline,
                            locked);
        if (rc < 0)
            return rc;
        spins = SPIN / 2;
    }
}

static int put_raw(mproc_queue *q, const void *buf, size_t len, int timeout_ms)
{
    qshared *s;
    const uint8_t *p = buf;
    int64_t deadline;
    uint64_t t;
    bool locked = true;
    int rc;
    if (q == NULL || (buf == NULL && len > 0))
        return MPROC_EINVAL;
    MPROC__CHECK_TIMEOUT(timeout_ms);
    if (q->closed)
        return MPROC_ECLOSED;
    if (len > MPROC_MESSAGE_MAX)
        return MPROC_EMSGSIZE;
    s = q->s;
    deadline = mproc__deadline(timeout_ms);
    rc = qlock(q, W_PLOCK, deadline);
    if (rc < 0)
        return rc == MPROC_ETIMEDOUT && timeout_ms == 0 ? MPROC_EFULL : rc;
    if (len <= max_payload(s)) {
        uint32_t n = (uint32_t)len;
        uint32_t rsize = rec_size(n);
        rc = wait_room(q, rsize, true, false, deadline, &t, &locked);
        if (rc == 0) {
            put_hdr(s, BYTES(t), n, F_FIRST | F_LAST);
            if (n > 0)
                ring_write(s, BYTES(t) + REC_HDR, p, n);
            publish(q, t, rsize, true);
        }
    } else {
        /* A chain: the first chunk carries the total length. */
        uint64_t total = len;
        size_t off = 0;
        uint32_t chunk = max_payload(s);
        uint32_t n = chunk - 8;
        uint32_t first_need = rec_size(chunk);
        if (timeout_ms == 0) {
            /* Non-blocking: the whole chain must fit now, else streaming
             * it could block after its first chunk. */
            size_t rest = len - n;
            size_t whole =
                (size_t)rec_size(chunk) + rest / chunk * rec_size(chunk) +
                (rest % chunk ? rec_size((uint32_t)(rest % chunk)) : 0);
            first_need = whole <= s->ring_cap ? (uint32_t)whole : 0;
        }
        if (first_need == 0)
            rc = MPROC_ETIMEDOUT; /* never fits at once: "full" */
        else
            rc = wait_room(q, first_need, true, false, deadline, &t, &locked);
        if (rc == 0) {
            put_hdr(s, BYTES(t), chunk, F_FIRST);
            ring_write(s, BYTES(t) + REC_HDR, &total, 8);
            ring_write(s, BYTES(t) + REC_HDR + 8, p, n);
            publish(q, t, rec_size(chunk), true);
            off = n;
        }
        while (rc == 0 && off < len) {
            size_t left = len - off;
            n = left > chunk ? chunk : (uint32_t)left;
            rc = wait_room(q, rec_size(n), false, true, -1, &t, &locked);
            if (rc < 0)
                break;
            put_hdr(s, BYTES(t), n, off + n == len ? F_LAST : 0);
            ring_write(s, BYTES(t) + REC_HDR, p + off, n);
            publish(q, t, rec_size(n), false);
            off += n;
        }
    }
    if (locked)
        qunlock(q, W_PLOCK);
    return rc == MPROC_ETIMEDOUT && timeout_ms == 0 ? MPROC_EFULL : rc;
}

int mproc_queue_put_bytes(mproc_queue *q, const void *buf, size_t len,
                          int timeout_ms)
{
    return put_raw(q, buf, len, timeout_ms);
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
    rc = mproc__encode(v, &b, NULL);
    if (rc == 0)
        rc = put_raw(q, b.p, b.n, timeout_ms);
    mproc__buf_free(&b);
    return rc;
}

/* ---------------------------------------------------------------------------
 * Get
 */

/* Waits, with the consumer lock held on entry and on return, for a record
 * at the head. keep_lock: the middle of a chain (the lock stays held and
 * the deadline is ignored), and MPROC_EBADMSG reports that the chain's
 * producer died (no live process holds the producer lock). *locked turns
 * false when the lock could not be taken back after a sleep. */
static int wait_record(mproc_queue *q, bool keep_lock, int64_t deadline,
                       uint64_t *head, bool *locked)
{
    qshared *s = q->s;
    int spins = 0;
    for (;;) {
        uint64_t h = atomic_load_explicit(&s->head, memory_order_relaxed);
        uint64_t t = q->seen_tail;
        uint32_t seq;
        int rc;
        if (h != q->last_head || BYTES(t) == BYTES(h) ||
            BYTES(t) - BYTES(h) > s->ring_cap) {
            t = atomic_load_explicit(&s->tail, memory_order_acquire);
            q->seen_tail = t;
        }
        if (BYTES(t) != BYTES(h)) {
            *head = h;
            return 0;
        }
        if (keep_lock) {
            /* Nobody is streaming the rest: the chain's producer died. */
            uint32_t owner = lock_owner(s, W_PLOCK);
            if (spins >= SPIN + YIELDS &&
                (owner == 0 || mproc__os_tag_alive(owner) == 0))
                return MPROC_EBADMSG;
        } else if (deadline >= 0 && spins % 16 == 0 &&
                   mproc__remaining(deadline) == 0) {
            return MPROC_ETIMEDOUT;
        }
        if (spins < SPIN + YIELDS) {
            pause_or_yield(spins++);
            continue;
        }
        seq = prepare_sleep(q, W_ITEMS);
        if (BYTES(atomic_load(&s->tail)) != BYTES(h))
            continue;
        rc = sleep_unlocked(q, W_ITEMS, W_CLOCK, seq, keep_lock, deadline,
                            locked);
        if (rc < 0)
            return rc;
        spins = keep_lock ? SPIN + YIELDS : SPIN / 2;
    }
}

/* Takes one item: a malloc'ed copy of its bytes. */
static int get_raw(mproc_queue *q, uint8_t **out, size_t *outlen,
                   int timeout_ms)
{
    qshared *s = q->s;
    int64_t deadline = mproc__deadline(timeout_ms);
    uint8_t *buf = NULL;
    uint64_t h;
    bool locked = true;
    int rc = qlock(q, W_CLOCK, deadline);
    if (rc < 0)
        return rc == MPROC_ETIMEDOUT && timeout_ms == 0 ? MPROC_EEMPTY : rc;
    for (;;) {
        uint32_t len, flags;
        rc = wait_record(q, false, deadline, &h, &locked);
        if (rc < 0)
            break;
        get_hdr(s, BYTES(h), &len, &flags);
        if (!(flags & F_FIRST) || len > max_payload(s)) {
            /* A chunk of a chain whose consumer died: drop it. */
            retire(q, h,
                   len > max_payload(s)
                       ? BYTES(atomic_load(&s->tail)) - BYTES(h)
                       : rec_size(len),
                   false);
            continue;
        }
        if (flags & F_LAST) {
            buf = malloc(len > 0 ? len : 1);
            if (buf == NULL) {
                rc = MPROC_ENOMEM;
                break;
            }
            ring_read(s, BYTES(h) + REC_HDR, buf, len);
            /* Copied out before the head moves: dying here loses nothing. */
            retire(q, h, rec_size(len), true);
            *out = buf;
            *outlen = len;
            break;
        } else {
            /* A chain. */
            uint64_t total;
            size_t got;
            bool lost = false;
            ring_read(s, BYTES(h) + REC_HDR, &total, 8);
            if (len < 8 || total > MPROC_MESSAGE_MAX || total < len - 8) {
                retire(q, h, rec_size(len), true);
                continue;
            }
            buf = malloc(total > 0 ? (size_t)total : 1);
            if (buf == NULL) {
                rc = MPROC_ENOMEM;
                break;
            }
            got = len - 8;
            ring_read(s, BYTES(h) + REC_HDR + 8, buf, got);
            retire(q, h, rec_size(len), true);
            while (got < total) {
                rc = wait_record(q, true, -1, &h, &locked);
                if (rc < 0) {
                    lost = true;
                    break;
                }
                get_hdr(s, BYTES(h), &len, &flags);
                if ((flags & F_FIRST) || len > total - got) {
                    lost = true; /* superseded: the chain's producer died */
                    break;
                }
                ring_read(s, BYTES(h) + REC_HDR, buf + got, len);
                retire(q, h, rec_size(len), false);
                got += len;
            }
            if (lost) {
                free(buf);
                buf = NULL;
                continue;
            }
            *out = buf;
            *outlen = (size_t)total;
            rc = 0;
            break;
        }
    }
    if (locked)
        qunlock(q, W_CLOCK);
    return rc == MPROC_ETIMEDOUT && timeout_ms == 0 ? MPROC_EEMPTY : rc;
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

static uint32_t items_now(const qshared *s)
{
    /* Head first: the count read can only be too high by items put in
     * between, never negative. */
    uint64_t h = atomic_load(&s->head);
    uint64_t t = atomic_load(&s->tail);
    return ITEMS(t) - ITEMS(h);
}

int64_t mproc_queue_qsize(mproc_queue *q)
{
    if (q == NULL)
        return MPROC_EINVAL;
    return (int64_t)items_now(q->s);
}

int mproc_queue_empty(mproc_queue *q)
{
    if (q == NULL)
        return MPROC_EINVAL;
    return items_now(q->s) == 0;
}

int mproc_queue_full(mproc_queue *q)
{
    if (q == NULL)
        return MPROC_EINVAL;
    return q->s->maxsize > 0 && items_now(q->s) >= q->s->maxsize;
}

int mproc_queue_close(mproc_queue *q)
{
    if (q == NULL)
        return MPROC_EINVAL;
    if (atomic_exchange(&q->closed, true))
        return MPROC_ECLOSED;
    return 0;
}

static uint32_t unfinished(const qshared *s, uint32_t done)
{
    return ITEMS(atomic_load(&s->tail)) - done;
}

int mproc_queue_task_done(mproc_queue *q)
{
    qshared *s;
    uint32_t d;
    if (q == NULL)
        return MPROC_EINVAL;
    s = q->s;
    if (!s->joinable)
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

int mproc_queue_join(mproc_queue *q, int timeout_ms)
{
    qshared *s;
    int64_t deadline;
    if (q == NULL)
        return MPROC_EINVAL;
    MPROC__CHECK_TIMEOUT(timeout_ms);
    s = q->s;
    if (!s->joinable)
        return MPROC_ESTATE;
    deadline = mproc__deadline(timeout_ms);
    for (;;) {
        uint32_t seq;
        int rc;
        if (unfinished(s, atomic_load(&s->done)) == 0)
            return 0;
        seq = prepare_sleep(q, W_JOIN);
        if (unfinished(s, atomic_load(&s->done)) == 0)
            return 0;
        rc = sleep_on(q, W_JOIN, seq, deadline);
        if (rc < 0)
            return rc;
    }
}

/* ---------------------------------------------------------------------------
 * Export / import and the wait hooks
 *
 * Handles: the segment, the doorbell's two ends, then the wait words'
 * handles that exist (a bit mask in the blob says which). Blob: mapping
 * size (8 bytes LE), word mask (1 byte).
 */

int mproc__queue_export(mproc_queue *q, mproc__export *ex)
{
    uint64_t size;
    uint8_t mask = 0;
    int i;
    if (q == NULL || ex == NULL)
        return MPROC_EINVAL;
    ex->h[0] = q->shm;
    ex->h[1] = q->bell[0];
    ex->h[2] = q->bell[1];
    ex->nh = 3;
    for (i = 0; i < NWORDS; i++) {
        if (q->wh[i] != MPROC__BADHANDLE) {
            if (ex->nh >= MPROC__EXPORT_MAX_HANDLES)
                return MPROC_EINVAL;
            ex->h[ex->nh++] = q->wh[i];
            mask = (uint8_t)(mask | (1u << i));
        }
    }
    size = q->map_size;
    for (i = 0; i < 8; i++)
        ex->blob[i] = (uint8_t)(size >> (8 * i));
    ex->blob[8] = mask;
    ex->nblob = 9;
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
    if (ex->nblob != 9 || ex->nh < 3 || ex->nh > MPROC__EXPORT_MAX_HANDLES)
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
    for (i = 0; i < NWORDS; i++) {
        if (ex->blob[8] & (1u << i)) {
            if (k >= ex->nh) {
                rc = MPROC_EBADMSG;
                goto fail;
            }
            q->wh[i] = ex->h[k++];
        }
    }
    if (q->s->magic != QMAGIC || q->s->version != QVERSION ||
        q->s->ring_cap != RING_CAP) {
        rc = MPROC_EBADMSG;
        goto fail;
    }
    for (i = 0; i < NWORDS; i++) {
        rc = mproc__os_word_open(&q->s->l[i].w, q->wh[i]);
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
    if (q == NULL || h == NULL || ready_now == NULL)
        return MPROC_EINVAL;
    atomic_fetch_add(&q->s->bell_waiters, 1);
    *h = q->bell[0];
    *ready_now = items_now(q->s) > 0;
    return 0;
}

int mproc__queue_wait_end(mproc_queue *q)
{
    qshared *s;
    if (q == NULL)
        return MPROC_EINVAL;
    s = q->s;
    atomic_fetch_sub(&s->bell_waiters, 1);
    /* Drain the doorbell. Only a reader that saw a byte and disarmed the
     * bell reads, so a read never blocks on a byte that is not there. */
    if (mproc__os_chan_poll(q->bell[0], 0) == 1) {
        uint32_t one = 1;
        if (atomic_compare_exchange_strong(&s->bell_armed, &one, 0)) {
            uint8_t junk[16];
            (void)mproc__os_chan_read(q->bell[0], junk, sizeof junk);
        }
    }
    return items_now(s) > 0;
}
