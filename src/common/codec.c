/*
 * The wire encoding of values (docs/wire-format.md is the specification;
 * keep the two in step), plus the growable byte buffer and handle list the
 * encoder writes into.
 *
 * Map: buffers; little-endian helpers; size pass; encoder; decoder; public
 * encode/decode.
 *
 * The codec is on the hot path of Pipe and Queue. The encoder walks the
 * value twice: once to size it (and to find every argument error before a
 * byte is written), once to write straight into a buffer reserved in one
 * step. The decoder allocates only the values it returns. It treats input
 * as hostile: every read is bounds-checked, and the number of values that
 * open lists still promise can never exceed the bytes left (each value takes
 * at least one byte), so a forged count cannot make it allocate more than a
 * small multiple of the input's size.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#define WIRE_MAGIC 0xD7
#define WIRE_VERSION 0x01
#define WIRE_HEADER 2

/* Tags. They equal the mproc_type values today, but they are the wire's own
 * numbers: never renumber them. */
enum {
    TAG_NONE = 0x00,
    TAG_BOOL = 0x01,
    TAG_INT = 0x02,
    TAG_FLOAT = 0x03,
    TAG_STRING = 0x04,
    TAG_BYTES = 0x05,
    TAG_LIST = 0x06,
    TAG_HANDLE_FIRST = 0x10, /* MPROC_TYPE_CONN .. */
    TAG_HANDLE_LAST = 0x18   /* .. MPROC_TYPE_SHM */
};

/* Tag + nh (u8) + nblob (u16 LE), then nh int64 handles and the blob. */
#define HANDLE_FIXED 4
#define HANDLE_MAX_SIZE                                                        \
    (HANDLE_FIXED + 8 * MPROC__EXPORT_MAX_HANDLES + MPROC__EXPORT_MAX_BLOB)

/* ---------------------------------------------------------------------------
 * Buffers
 */

int mproc__buf_reserve(mproc__buf *b, size_t extra)
{
    size_t need, cap;
    uint8_t *p;
    if (b == NULL)
        return MPROC_EINVAL;
    if (extra > SIZE_MAX - b->n)
        return MPROC_ENOMEM;
    need = b->n + extra;
    if (need <= b->cap)
        return 0;
    cap = b->cap > SIZE_MAX / 2 ? SIZE_MAX : b->cap * 2;
    if (cap < need)
        cap = need;
    p = realloc(b->p, cap);
    if (p == NULL)
        return MPROC_ENOMEM;
    b->p = p;
    b->cap = cap;
    return 0;
}

int mproc__buf_append(mproc__buf *b, const void *p, size_t n)
{
    int rc;
    if (b == NULL || (p == NULL && n > 0))
        return MPROC_EINVAL;
    rc = mproc__buf_reserve(b, n);
    if (rc < 0)
        return rc;
    if (n > 0)
        memcpy(b->p + b->n, p, n);
    b->n += n;
    return 0;
}

void mproc__buf_free(mproc__buf *b)
{
    if (b == NULL)
        return;
    free(b->p);
    b->p = NULL;
    b->n = 0;
    b->cap = 0;
}

int mproc__handle_list_add(mproc__handle_list *l, mproc__handle h)
{
    if (l == NULL)
        return MPROC_EINVAL;
    if (l->n == l->cap) {
        size_t cap = l->cap < 8 ? 8 : l->cap * 2;
        mproc__handle *p;
        if (cap > SIZE_MAX / sizeof *p)
            return MPROC_ENOMEM;
        p = realloc(l->h, cap * sizeof *p);
        if (p == NULL)
            return MPROC_ENOMEM;
        l->h = p;
        l->cap = cap;
    }
    l->h[l->n++] = h;
    return 0;
}

void mproc__handle_list_free(mproc__handle_list *l)
{
    if (l == NULL)
        return;
    free(l->h);
    l->h = NULL;
    l->n = 0;
    l->cap = 0;
}

/* ---------------------------------------------------------------------------
 * Little-endian, whatever the host: shifts, which compilers turn into plain
 * loads and stores on little-endian machines.
 */

static void put_u16(uint8_t *w, uint16_t x)
{
    w[0] = (uint8_t)x;
    w[1] = (uint8_t)(x >> 8);
}

static void put_u32(uint8_t *w, uint32_t x)
{
    w[0] = (uint8_t)x;
    w[1] = (uint8_t)(x >> 8);
    w[2] = (uint8_t)(x >> 16);
    w[3] = (uint8_t)(x >> 24);
}

static void put_u64(uint8_t *w, uint64_t x)
{
    put_u32(w, (uint32_t)x);
    put_u32(w + 4, (uint32_t)(x >> 32));
}

static uint16_t get_u16(const uint8_t *r)
{
    return (uint16_t)(r[0] | (r[1] << 8));
}

static uint32_t get_u32(const uint8_t *r)
{
    return (uint32_t)r[0] | ((uint32_t)r[1] << 8) | ((uint32_t)r[2] << 16) |
           ((uint32_t)r[3] << 24);
}

static uint64_t get_u64(const uint8_t *r)
{
    return (uint64_t)get_u32(r) | ((uint64_t)get_u32(r + 4) << 32);
}

/* ---------------------------------------------------------------------------
 * Size pass
 */

/* Adds the size of v to *size. `depth` counts the lists around v. */
static int size_of(const mproc_value *v, int depth, bool allow_handles,
                   size_t *size)
{
    size_t add, i;
    int rc;
    switch (v->type) {
    case MPROC_TYPE_NONE:
        add = 1;
        break;
    case MPROC_TYPE_BOOL:
        add = 2;
        break;
    case MPROC_TYPE_INT:
    case MPROC_TYPE_FLOAT:
        add = 9;
        break;
    case MPROC_TYPE_STRING:
    case MPROC_TYPE_BYTES:
        if (v->u.s.n > MPROC_MESSAGE_MAX)
            return MPROC_EMSGSIZE;
        add = 5 + v->u.s.n;
        break;
    case MPROC_TYPE_LIST:
        if (depth >= MPROC_VALUE_MAX_DEPTH)
            return MPROC_EINVAL;
        *size += 5;
        for (i = 0; i < v->u.list.n; i++) {
            rc = size_of(v->u.list.items[i], depth + 1, allow_handles, size);
            if (rc < 0)
                return rc;
        }
        add = 0;
        break;
    default:
        if (!mproc__type_is_handle(v->type) || !allow_handles)
            return MPROC_EINVAL;
        add = HANDLE_MAX_SIZE;
        break;
    }
    /* *size stays at most MPROC_MESSAGE_MAX + a few bytes, so neither sum
     * can wrap, even with a 32-bit size_t. */
    *size += add;
    if (*size > MPROC_MESSAGE_MAX)
        return MPROC_EMSGSIZE;
    return 0;
}

int mproc__encoded_size(const mproc_value *v, bool allow_handles, size_t *size)
{
    size_t n = WIRE_HEADER;
    int rc;
    if (v == NULL || size == NULL)
        return MPROC_EINVAL;
    rc = size_of(v, 0, allow_handles, &n);
    if (rc < 0)
        return rc;
    *size = n;
    return 0;
}

/* ---------------------------------------------------------------------------
 * Encoder: the size pass has checked types, depth and size and reserved the
 * room, so writes need no checks; only an export can still fail.
 */

typedef struct enc {
    uint8_t *w;
    mproc__handle_list *handles;
    bool index; /* write a handle's index in `handles`, not its value */
} enc;

static int write_handle(enc *e, const mproc_value *v)
{
    mproc__export ex;
    uint32_t i;
    int rc = mproc__object_export(v->type, v->u.h.obj, &ex);
    if (rc < 0)
        return rc;
    if (ex.nh > MPROC__EXPORT_MAX_HANDLES || ex.nblob > MPROC__EXPORT_MAX_BLOB)
        return MPROC_EINVAL;
    e->w[0] = (uint8_t)v->type;
    e->w[1] = (uint8_t)ex.nh;
    put_u16(e->w + 2, (uint16_t)ex.nblob);
    e->w += HANDLE_FIXED;
    for (i = 0; i < ex.nh; i++) {
        put_u64(e->w, e->index ? (uint64_t)e->handles->n
                               : (uint64_t)(int64_t)ex.h[i]);
        e->w += 8;
        rc = mproc__handle_list_add(e->handles, ex.h[i]);
        if (rc < 0)
            return rc;
    }
    if (ex.nblob > 0)
        memcpy(e->w, ex.blob, ex.nblob);
    e->w += ex.nblob;
    return 0;
}

static int write_value(enc *e, const mproc_value *v)
{
    uint64_t bits;
    size_t i;
    int rc;
    switch (v->type) {
    case MPROC_TYPE_NONE:
        *e->w++ = TAG_NONE;
        return 0;
    case MPROC_TYPE_BOOL:
        e->w[0] = TAG_BOOL;
        e->w[1] = v->u.b ? 1 : 0;
        e->w += 2;
        return 0;
    case MPROC_TYPE_INT:
        e->w[0] = TAG_INT;
        put_u64(e->w + 1, (uint64_t)v->u.i);
        e->w += 9;
        return 0;
    case MPROC_TYPE_FLOAT:
        /* The bit pattern: -0.0 and NaN payloads survive. */
        memcpy(&bits, &v->u.f, sizeof bits);
        e->w[0] = TAG_FLOAT;
        put_u64(e->w + 1, bits);
        e->w += 9;
        return 0;
    case MPROC_TYPE_STRING:
    case MPROC_TYPE_BYTES:
        e->w[0] = v->type == MPROC_TYPE_STRING ? TAG_STRING : TAG_BYTES;
        put_u32(e->w + 1, (uint32_t)v->u.s.n);
        if (v->u.s.n > 0)
            memcpy(e->w + 5, v->u.s.p, v->u.s.n);
        e->w += 5 + v->u.s.n;
        return 0;
    case MPROC_TYPE_LIST:
        e->w[0] = TAG_LIST;
        put_u32(e->w + 1, (uint32_t)v->u.list.n);
        e->w += 5;
        for (i = 0; i < v->u.list.n; i++) {
            rc = write_value(e, v->u.list.items[i]);
            if (rc < 0)
                return rc;
        }
        return 0;
    default:
        return write_handle(e, v);
    }
}

static int encode(const mproc_value *v, mproc__buf *out,
                  mproc__handle_list *handles, bool index)
{
    size_t size, n0, nh0;
    enc e;
    int rc;
    if (v == NULL || out == NULL)
        return MPROC_EINVAL;
    rc = mproc__encoded_size(v, handles != NULL, &size);
    if (rc < 0)
        return rc;
    rc = mproc__buf_reserve(out, size);
    if (rc < 0)
        return rc;
    if (out->p == NULL) /* reserve gave room, or failed above */
        return MPROC_ENOMEM;
    n0 = out->n;
    nh0 = handles != NULL ? handles->n : 0;
    e.w = out->p + out->n;
    e.handles = handles;
    e.index = index;
    e.w[0] = WIRE_MAGIC;
    e.w[1] = WIRE_VERSION;
    e.w += WIRE_HEADER;
    rc = write_value(&e, v);
    if (rc < 0) {
        /* Leave buffer and handle list as they were. */
        out->n = n0;
        if (handles != NULL)
            handles->n = nh0;
        return rc;
    }
    out->n = (size_t)(e.w - out->p);
    return 0;
}

int mproc__encode(const mproc_value *v, mproc__buf *out,
                  mproc__handle_list *handles)
{
    return encode(v, out, handles, false);
}

int mproc__encode_table(const mproc_value *v, mproc__buf *out,
                        mproc__handle_list *handles)
{
    if (handles == NULL)
        return MPROC_EINVAL;
    return encode(v, out, handles, true);
}

/* ---------------------------------------------------------------------------
 * Decoder
 */

typedef struct dec {
    const uint8_t *r;
    const uint8_t *end;
    /* Values promised (by the header and by list counts) but not yet
     * started. Each needs at least one byte: pending <= bytes left. */
    size_t pending;
    bool allow_handles;
    /* mproc__decode_table: handle fields are indices into table, each
     * taken once (taken[i] set once an import owns table[i]). */
    const mproc__handle *table;
    bool *taken;
    size_t ntable;
} dec;

static size_t left(const dec *d)
{
    return (size_t)(d->end - d->r);
}

static int read_handle(dec *d, int type, mproc_value **out)
{
    mproc__export ex;
    mproc_value *v;
    void *obj = NULL;
    uint32_t i;
    size_t idx[MPROC__EXPORT_MAX_HANDLES];
    int rc;
    if (!d->allow_handles || left(d) < HANDLE_FIXED - 1)
        return MPROC_EBADMSG;
    ex.nh = d->r[0];
    ex.nblob = get_u16(d->r + 1);
    d->r += HANDLE_FIXED - 1;
    if (ex.nh > MPROC__EXPORT_MAX_HANDLES ||
        ex.nblob > MPROC__EXPORT_MAX_BLOB ||
        left(d) < 8 * (size_t)ex.nh + ex.nblob)
        return MPROC_EBADMSG;
    for (i = 0; i < ex.nh; i++) {
        int64_t h = (int64_t)get_u64(d->r);
#if INTPTR_MAX < INT64_MAX
        /* A 32-bit host cannot hold a wider handle. */
        if (h < (int64_t)INTPTR_MIN || h > (int64_t)INTPTR_MAX)
            return MPROC_EBADMSG;
#endif
        if (d->table != NULL) {
            /* Data without the handle it names: an index past the table,
             * or one taken already. */
            uint32_t k;
            if (h < 0 || (uint64_t)h >= d->ntable || d->taken[h])
                return MPROC_EBADMSG;
            for (k = 0; k < i; k++)
                if (idx[k] == (size_t)h)
                    return MPROC_EBADMSG;
            idx[i] = (size_t)h;
            h = (int64_t)d->table[h];
        }
        ex.h[i] = (mproc__handle)h;
        d->r += 8;
    }
    memcpy(ex.blob, d->r, ex.nblob);
    d->r += ex.nblob;
    if (d->pending > left(d))
        return MPROC_EBADMSG;
    rc = mproc__object_import(type, &ex, &obj);
    if (rc < 0)
        return rc;
    if (d->table != NULL)
        for (i = 0; i < ex.nh; i++)
            d->taken[idx[i]] = true; /* the object owns them now */
    v = mproc__value_new_handle(type, obj, true);
    if (v == NULL) {
        mproc__object_destroy(type, obj);
        return MPROC_ENOMEM;
    }
    *out = v;
    return 0;
}

static int read_value(dec *d, int depth, mproc_value **out)
{
    mproc_value *v;
    uint64_t bits;
    uint32_t len, i;
    uint8_t tag;
    int rc;
    if (left(d) < 1)
        return MPROC_EBADMSG;
    d->pending--;
    tag = *d->r++;
    switch (tag) {
    case TAG_NONE:
        v = mproc_none();
        break;
    case TAG_BOOL:
        if (left(d) < 1 || d->r[0] > 1)
            return MPROC_EBADMSG;
        v = mproc_bool(d->r[0] == 1);
        d->r += 1;
        break;
    case TAG_INT:
        if (left(d) < 8)
            return MPROC_EBADMSG;
        v = mproc_int((int64_t)get_u64(d->r));
        d->r += 8;
        break;
    case TAG_FLOAT: {
        if (left(d) < 8)
            return MPROC_EBADMSG;
        bits = get_u64(d->r);
        v = mproc__float_bits(bits); /* NaN payloads bit for bit */
        d->r += 8;
        break;
    }
    case TAG_STRING:
    case TAG_BYTES:
        if (left(d) < 4)
            return MPROC_EBADMSG;
        len = get_u32(d->r);
        d->r += 4;
        if (len > left(d) || left(d) - len < d->pending)
            return MPROC_EBADMSG;
        v = mproc__value_new_blob(tag == TAG_STRING ? MPROC_TYPE_STRING
                                                    : MPROC_TYPE_BYTES,
                                  d->r, len);
        d->r += len;
        break;
    case TAG_LIST:
        if (depth >= MPROC_VALUE_MAX_DEPTH || left(d) < 4)
            return MPROC_EBADMSG;
        len = get_u32(d->r);
        d->r += 4;
        if (len > left(d) || left(d) - len < d->pending)
            return MPROC_EBADMSG;
        d->pending += len;
        v = mproc__value_new_list(len);
        if (v == NULL)
            return MPROC_ENOMEM;
        for (i = 0; i < len; i++) {
            mproc_value *item = NULL;
            rc = read_value(d, depth + 1, &item);
            if (rc < 0) {
                mproc_value_free(v);
                return rc;
            }
            (void)mproc__list_push(v, item); /* room for len: cannot fail */
        }
        *out = v;
        return 0;
    default:
        if (tag < TAG_HANDLE_FIRST || tag > TAG_HANDLE_LAST)
            return MPROC_EBADMSG;
        return read_handle(d, tag, out);
    }
    if (v == NULL)
        return MPROC_ENOMEM;
    *out = v;
    return 0;
}

static int decode(const uint8_t *p, size_t n, bool allow_handles,
                  const mproc__handle *table, bool *taken, size_t ntable,
                  mproc_value **out)
{
    mproc_value *v = NULL;
    dec d;
    int rc;
    if (out == NULL || (p == NULL && n > 0))
        return MPROC_EINVAL;
    *out = NULL;
    if (n > MPROC_MESSAGE_MAX)
        return MPROC_EMSGSIZE;
    if (n < WIRE_HEADER + 1 || p[0] != WIRE_MAGIC || p[1] != WIRE_VERSION)
        return MPROC_EBADMSG;
    d.r = p + WIRE_HEADER;
    d.end = p + n;
    d.pending = 1;
    d.allow_handles = allow_handles;
    d.table = table;
    d.taken = taken;
    d.ntable = ntable;
    rc = read_value(&d, 0, &v);
    if (rc == 0 && d.r != d.end) {
        mproc_value_free(v);
        rc = MPROC_EBADMSG; /* trailing bytes */
    }
    if (rc == 0)
        *out = v;
    return rc;
}

int mproc__decode(const uint8_t *p, size_t n, bool allow_handles,
                  mproc_value **out)
{
    return decode(p, n, allow_handles, NULL, NULL, 0, out);
}

int mproc__decode_table(const uint8_t *p, size_t n, const mproc__handle *table,
                        bool *taken, size_t ntable, mproc_value **out)
{
    if (table == NULL || taken == NULL || ntable == 0)
        return MPROC_EINVAL;
    return decode(p, n, true, table, taken, ntable, out);
}

/* ---------------------------------------------------------------------------
 * Public
 */

int mproc_value_encode(const mproc_value *v, void **buf, size_t *len)
{
    mproc__buf b = {NULL, 0, 0};
    int rc;
    if (v == NULL || buf == NULL || len == NULL)
        return MPROC_EINVAL;
    rc = mproc__encode(v, &b, NULL);
    if (rc < 0) {
        mproc__buf_free(&b);
        return rc;
    }
    *buf = b.p;
    *len = b.n;
    return 0;
}

int mproc_value_decode(const void *buf, size_t len, mproc_value **out)
{
    if (out != NULL)
        *out = NULL;
    if (buf == NULL || out == NULL)
        return MPROC_EINVAL;
    return mproc__decode(buf, len, false, out);
}
