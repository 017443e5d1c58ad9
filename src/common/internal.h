/*
 * Internal declarations shared by the modules of src/common. Nothing here is
 * seen by a backend except through backend.h.
 *
 * Map: checks and helpers; the value tree; byte buffers and the codec;
 * objects that travel to children (export/import); the spawn bootstrap
 * frame; per-module hooks; the process lock; test hooks.
 */
#ifndef MPROC_INTERNAL_H
#define MPROC_INTERNAL_H

#include "backend.h"
#include "mproc.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Timeouts: MPROC_FOREVER, 0 or positive; anything else is MPROC_EINVAL. */
#define MPROC__CHECK_TIMEOUT(t)                                                \
    do {                                                                       \
        if ((t) < MPROC_FOREVER)                                               \
            return MPROC_EINVAL;                                               \
    } while (0)

/* Milliseconds left until `deadline` (from mproc__deadline, nanoseconds on
 * mproc__os_now_ns), as a timeout rounded up: MPROC_FOREVER stays so, 0
 * only once the deadline has passed, so that a caller that stops at 0 never
 * stops early (backend.h, mproc__left_ms). */
int64_t mproc__deadline(int timeout_ms);
int mproc__remaining(int64_t deadline);

/* ---------------------------------------------------------------------------
 * The value tree
 */

/* Nesting is bounded when a tree is built, not when it is walked: every
 * value knows the list that holds it (`parent`, NULL at the top) and every
 * list how many lists deep it goes (`height`, itself included: an empty
 * list is 1), so that mproc_list_append can refuse, in a few steps, an item
 * that would take the tree past MPROC_VALUE_MAX_DEPTH. Every walk (free,
 * copy, equal, repr, encode) therefore recurses at most that deep. */
struct mproc_value {
    int type;        /* mproc_type */
    uint32_t height; /* lists: 1 + the greatest height of an item; else 0 */
    struct mproc_value *parent;
    union {
        bool b;
        int64_t i;
        double f;
        struct {
            char *p; /* NUL-terminated after n bytes (strings and bytes) */
            size_t n;
        } s;
        struct {
            mproc_value **items;
            size_t n;
            size_t cap;
        } list;
        struct {
            void *obj;  /* the mproc object */
            bool owned; /* imported in a child: destroyed with the value */
        } h;
    } u;
};

static inline bool mproc__type_is_handle(int type)
{
    return type >= MPROC_TYPE_CONN && type <= MPROC_TYPE_SHM;
}

/* Building blocks of value.c for the decoder (and anyone who builds values
 * in bulk). A string or bytes value holds its n bytes (+ NUL) in the same
 * block as the struct; a list made by mproc__value_new_list(cap) holds room
 * for cap item pointers there too (it moves them out when it grows). Both
 * return NULL when out of memory. mproc__list_push appends without the
 * checks of mproc_list_append and does not free the item on failure
 * (MPROC_ENOMEM); it keeps `parent` and `height` (cheap while a tree is
 * built from the bottom up), and the caller keeps the depth limit. */
mproc_value *mproc__value_new_blob(int type, const void *p, size_t n);
/* A float value of these IEEE 754 bits, kept bit for bit (a signalling
 * NaN stays one: no floating-point register on the way). */
mproc_value *mproc__float_bits(uint64_t bits);
mproc_value *mproc__value_new_list(size_t cap);
/* A handle value; `owned`: mproc_value_free destroys the object (imported in
 * a child). NULL for a NULL object or a type that is not a handle. */
mproc_value *mproc__value_new_handle(int type, void *obj, bool owned);
int mproc__list_push(mproc_value *list, mproc_value *item);

/* ---------------------------------------------------------------------------
 * Byte buffers and the codec (codec.c, docs/wire-format.md)
 */

typedef struct mproc__buf {
    uint8_t *p;
    size_t n;
    size_t cap;
} mproc__buf;

int mproc__buf_reserve(mproc__buf *b, size_t extra);
int mproc__buf_append(mproc__buf *b, const void *p, size_t n);
void mproc__buf_free(mproc__buf *b);

typedef struct mproc__handle_list {
    mproc__handle *h;
    size_t n;
    size_t cap;
} mproc__handle_list;

int mproc__handle_list_add(mproc__handle_list *l, mproc__handle h);
void mproc__handle_list_free(mproc__handle_list *l);

/* Appends the encoding of v to out. Handle values are exported (their OS
 * handles are added to `handles`, for the child's inherit list); with
 * handles == NULL a handle value is MPROC_EINVAL. MPROC_EMSGSIZE past
 * MPROC_MESSAGE_MAX, MPROC_EINVAL past MPROC_VALUE_MAX_DEPTH. */
int mproc__encode(const mproc_value *v, mproc__buf *out,
                  mproc__handle_list *handles);
/* Decodes exactly n bytes. Handle values are imported (allow_handles) or
 * MPROC_EBADMSG. Hostile input gives MPROC_EBADMSG, never an over-read. */
int mproc__decode(const uint8_t *p, size_t n, bool allow_handles,
                  mproc_value **out);
/* For values sent to a running process (mproc_conn_send, C16): each
 * handle field is written as its index in `handles` (from its count on
 * entry), which the receiver turns back into a handle of its own; and the
 * decoder that does so, taking handle i from table[i] (each once; an index
 * past the table or taken twice is MPROC_EBADMSG, "data without its
 * handle"). taken[i] turns true once an imported object owns table[i]:
 * the caller closes the others, on success or failure. */
int mproc__encode_table(const mproc_value *v, mproc__buf *out,
                        mproc__handle_list *handles);
int mproc__decode_table(const uint8_t *p, size_t n, const mproc__handle *table,
                        bool *taken, size_t ntable, mproc_value **out);
/* The size mproc__encode would append for v, with the same checks
 * (MPROC_EINVAL for a handle when !allow_handles or for depth, MPROC_EMSGSIZE
 * past MPROC_MESSAGE_MAX): exact for values without handles, an upper bound
 * with them (an export's size is known only once exported). mproc__encode
 * uses it to reserve the buffer once; a caller may use it to size a frame. */
int mproc__encoded_size(const mproc_value *v, bool allow_handles, size_t *size);

/* ---------------------------------------------------------------------------
 * Objects that travel to children as process arguments.
 *
 * An object exports its OS handles plus a few bytes of state; in the child
 * the same kind imports them into a working object of its own. Handles keep
 * their values in the child (inherited fds and HANDLEs do on both
 * platforms), so the export is valid there as it is.
 */

#define MPROC__EXPORT_MAX_HANDLES 8
/* A barrier's action names its module (a path) in the blob. */
#define MPROC__EXPORT_MAX_BLOB 4352

typedef struct mproc__export {
    mproc__handle h[MPROC__EXPORT_MAX_HANDLES];
    uint32_t nh;
    uint8_t blob[MPROC__EXPORT_MAX_BLOB];
    uint32_t nblob;
} mproc__export;

/* Dispatch on `type` (an MPROC_TYPE_* handle type) to the module's own
 * functions below. */
int mproc__object_export(int type, void *obj, mproc__export *ex);
int mproc__object_import(int type, const mproc__export *ex, void **obj);
void mproc__object_destroy(int type, void *obj);

/* Each module provides these for its kinds (conn.c, queue.c, sync.c,
 * shm.c). */
int mproc__conn_export(mproc_conn *c, mproc__export *ex);
int mproc__conn_import(const mproc__export *ex, mproc_conn **out);
int mproc__queue_export(mproc_queue *q, mproc__export *ex);
int mproc__queue_import(const mproc__export *ex, mproc_queue **out);
int mproc__lock_export(mproc_lock *l, mproc__export *ex);
int mproc__lock_import(const mproc__export *ex, mproc_lock **out);
int mproc__rlock_export(mproc_rlock *l, mproc__export *ex);
int mproc__rlock_import(const mproc__export *ex, mproc_rlock **out);
int mproc__sem_export(mproc_sem *s, mproc__export *ex);
int mproc__sem_import(const mproc__export *ex, mproc_sem **out);
int mproc__event_export(mproc_event *e, mproc__export *ex);
int mproc__event_import(const mproc__export *ex, mproc_event **out);
int mproc__cond_export(mproc_cond *c, mproc__export *ex);
int mproc__cond_import(const mproc__export *ex, mproc_cond **out);
int mproc__barrier_export(mproc_barrier *b, mproc__export *ex);
int mproc__barrier_import(const mproc__export *ex, mproc_barrier **out);
int mproc__shm_export(mproc_shm *m, mproc__export *ex);
int mproc__shm_import(const mproc__export *ex, mproc_shm **out);

/* ---------------------------------------------------------------------------
 * The spawn bootstrap frame (process.c, which documents the layout; the
 * trust boundary is in docs/security.md)
 *
 * The parser is a pure function over a byte buffer: it reads nothing else,
 * calls nothing that could run code, and gives MPROC_EBADMSG for every
 * input that is not exactly one well-formed frame (tests/fuzz/fuzz_boot.c).
 */

#define MPROC__BOOT_MAGIC 0x3142504du /* "MPB1" */
#define MPROC__BOOT_FLAG_DAEMON 1u
#define MPROC__BOOT_FLAG_RUN 2u
/* The longest string of a frame (module, name, identity, parent name). */
#define MPROC__BOOT_STR_MAX 16384u
/* The longest payload: arguments plus the fixed part and four strings. */
#define MPROC__BOOT_MAX ((uint64_t)MPROC_MESSAGE_MAX + 65536u + 40u)

/* A string of the frame: n bytes at p, no NUL among them (not
 * NUL-terminated: p points into the frame). */
typedef struct mproc__boot_str {
    const char *p;
    uint32_t n;
} mproc__boot_str;

typedef struct mproc__boot_frame {
    uint32_t flags;  /* MPROC__BOOT_FLAG_*, no other bit */
    uint32_t method; /* MPROC_START_FORK or MPROC_START_SPAWN */
    int64_t ppid;    /* > 0 */
    uint64_t offset; /* the target, for mproc__os_resolve */
    mproc__boot_str module, name, ident, pname;
    const uint8_t *args; /* encoded arguments (0 bytes: none) */
    uint32_t args_len;
} mproc__boot_frame;

/* Parses the payload p[0..n) (the bytes after the frame's length word):
 * 0 with *f pointing into p, or MPROC_EBADMSG (*f zeroed). */
int mproc__boot_parse(const uint8_t *p, size_t n, mproc__boot_frame *f);
/* Appends the payload of f up to and including its args length word (the
 * caller appends the f->args_len bytes of arguments): the inverse of
 * mproc__boot_parse. MPROC_EINVAL for a field the parser would refuse. */
int mproc__boot_encode_head(const mproc__boot_frame *f, mproc__buf *b);

/* ---------------------------------------------------------------------------
 * Hooks between modules
 */

/* wait.c asks each kind for the handle that becomes ready. */
int mproc__conn_wait_handle(mproc_conn *c, mproc__handle *h, bool *ready_now);
int mproc__queue_wait_handle(mproc_queue *q, mproc__handle *h, bool *ready_now);
int mproc__process_wait_handle(mproc_process *p, mproc__handle *h,
                               bool *ready_now);
/* queue.c: every successful mproc__queue_wait_handle is paired with one
 * call of this once the wait is over (it unregisters the waiter and drains
 * the queue's doorbell); returns 1 when the queue has an item, else 0. */
int mproc__queue_wait_end(mproc_queue *q);

/* ---------------------------------------------------------------------------
 * The process lock (plock.c): a lock between processes whose owner is a
 * process identity (backend.h: pid and start time), built on a wait word.
 * Uncontended, lock and unlock stay in user space on every platform; the
 * queue's side locks use it where the backend's mutex is a kernel object
 * (MPROC__OS_MUTEX_KERNEL). Only for a lock held inside the library with
 * no cancellation point under it, so that no thread ends holding it but
 * with its process: a thread's end is not seen, a process's is.
 *
 * MPROC__PLOCK_SIZE bytes of shared memory, 8-byte aligned, plus one
 * handle (the wait word's: POSIX none, MPROC__BADHANDLE; Windows a
 * semaphore, exported with the object that holds the lock). init, open and
 * destroy as for the backend's mutex. lock: 0, MPROC_EOWNERDEAD (acquired
 * from an owner that has ended: within a slice of 20 ms for a blocked
 * locker, at once at timeout 0), MPROC_EBUSY (timeout 0), MPROC_ETIMEDOUT;
 * a lock held by this very process (another thread) is waited for like
 * any other and never taken over. trylock: 0 or MPROC_EBUSY, never asking
 * the OS about the owner (for spinning). unlock: 0, or MPROC_ENOTOWNER when
 * this process does not hold it (threads are not told apart: the thread
 * that locked unlocks). None is a cancellation point.
 */
#define MPROC__PLOCK_SIZE 32

int mproc__plock_init(void *mem, mproc__handle *h);
int mproc__plock_open(void *mem, mproc__handle h);
int mproc__plock_trylock(void *mem);
int mproc__plock_lock(void *mem, mproc__handle h, int timeout_ms);
int mproc__plock_unlock(void *mem, mproc__handle h);
void mproc__plock_destroy(void *mem, mproc__handle h);

/* ---------------------------------------------------------------------------
 * Test hooks (queue.c). Only the tests call these (the runner links the
 * static library); they let a test play a faulty or hostile peer that
 * writes into a queue's shared segment, or drive counters that would take
 * billions of operations to get to.
 */

enum {
    MPROC__QT_TAIL,       /* a position: (items << 32) | bytes */
    MPROC__QT_HEAD,       /* the same for the head */
    MPROC__QT_RING_CAP,   /* the ring size the segment claims */
    MPROC__QT_BELL_ARMED, /* the doorbell's "rung" mark */
    MPROC__QT_OPS,        /* moves per side; set adds the value to both */
    MPROC__QT_OPEN_CHAIN  /* the id of the chain a producer streams */
};
uint64_t mproc__queue_test_get(mproc_queue *q, int field);
void mproc__queue_test_set(mproc_queue *q, int field, uint64_t value);
/* Writes n bytes into the ring at byte position pos (modulo the ring). */
void mproc__queue_test_ring(mproc_queue *q, uint64_t pos, const void *p,
                            size_t n);
/* The whole segment (*size bytes), and where in it the two side locks lie
 * (a peer that scribbles on the backend's mutex breaks the C library's
 * mutex, which is beyond what the queue can check; on the process lock it
 * can hold the lock, as any peer can). */
uint8_t *mproc__queue_test_block(mproc_queue *q, size_t *size,
                                 size_t lock_off[2], size_t *lock_len);

#endif /* MPROC_INTERNAL_H */
