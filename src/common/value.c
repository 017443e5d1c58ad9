/*
 * Typed values: constructors, lists, accessors, copy, equality, repr.
 *
 * Map: allocation (strings, bytes and decoded lists keep their payload in
 * the same block as the value, one malloc instead of two); constructors;
 * lists; handle values; free, copy, equal; accessors; repr.
 *
 * Depth: a tree is never nested deeper than MPROC_VALUE_MAX_DEPTH lists,
 * which is what the wire format allows, so every value can be sent. The
 * limit is kept where trees are built (mproc_list_append, mproc_list_from,
 * the decoder, copy), with the parent pointer and height of every value
 * (internal.h): an append into a list that is itself deep inside a tree
 * sees the whole tree, in at most MPROC_VALUE_MAX_DEPTH steps. Walks are
 * then recursive and bounded by it (a million-deep chain, built one append
 * at a time, used to overflow the stack in free); copy, equality and repr
 * keep a guard besides, for a tree broken by a caller's misuse.
 */
#include "internal.h"

#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The walks' guard: deeper than any tree the API builds. */
#define WALK_MAX (MPROC_VALUE_MAX_DEPTH + 1)

/* ---------------------------------------------------------------------------
 * Allocation
 */

static mproc_value *value_new(int type)
{
    mproc_value *v = malloc(sizeof *v);
    if (v == NULL)
        return NULL;
    memset(v, 0, sizeof *v);
    v->type = type;
    return v;
}

/* Inline payloads live right after the struct. */
static void *value_tail(mproc_value *v)
{
    return (void *)(v + 1);
}

mproc_value *mproc__value_new_blob(int type, const void *p, size_t n)
{
    mproc_value *v;
    if (n > SIZE_MAX - sizeof *v - 1)
        return NULL;
    v = malloc(sizeof *v + n + 1);
    if (v == NULL)
        return NULL;
    memset(v, 0, sizeof *v);
    v->type = type;
    v->u.s.p = value_tail(v);
    v->u.s.n = n;
    if (n > 0)
        memcpy(v->u.s.p, p, n);
    v->u.s.p[n] = '\0';
    return v;
}

mproc_value *mproc__value_new_list(size_t cap)
{
    mproc_value *v;
    if (cap > (SIZE_MAX - sizeof *v) / sizeof(mproc_value *))
        return NULL;
    v = malloc(sizeof *v + cap * sizeof(mproc_value *));
    if (v == NULL)
        return NULL;
    memset(v, 0, sizeof *v);
    v->type = MPROC_TYPE_LIST;
    v->height = 1;
    v->u.list.items = cap > 0 ? value_tail(v) : NULL;
    v->u.list.cap = cap;
    return v;
}

/* Classification by hand: mingw-w64's isnan/signbit macros convert their
 * argument to float on the way, which -Wfloat-conversion rejects. */
static bool is_nan(double d)
{
    return d != d;
}

static bool is_inf(double d)
{
    return d > DBL_MAX || d < -DBL_MAX;
}

static bool sign_bit(double d)
{
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    return (bits >> 63) != 0;
}

static bool list_items_inline(const mproc_value *v)
{
    return (const void *)v->u.list.items == (const void *)(v + 1);
}

/* ---------------------------------------------------------------------------
 * Constructors
 */

mproc_value *mproc_none(void)
{
    return value_new(MPROC_TYPE_NONE);
}

mproc_value *mproc_bool(bool b)
{
    mproc_value *v = value_new(MPROC_TYPE_BOOL);
    if (v != NULL)
        v->u.b = b;
    return v;
}

mproc_value *mproc_int(int64_t i)
{
    mproc_value *v = value_new(MPROC_TYPE_INT);
    if (v != NULL)
        v->u.i = i;
    return v;
}

/* Floats are moved as bits, never through a floating-point register:
 * the x87 FPU (32-bit x86) turns a signalling NaN into a quiet one when it
 * loads it, and a decoded value must encode back to the same bytes. */
mproc_value *mproc__float_bits(uint64_t bits)
{
    mproc_value *v = value_new(MPROC_TYPE_FLOAT);
    if (v != NULL)
        memcpy(&v->u.f, &bits, sizeof bits);
    return v;
}

mproc_value *mproc_float(double d)
{
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    return mproc__float_bits(bits);
}

mproc_value *mproc_str(const char *s)
{
    if (s == NULL)
        return NULL;
    return mproc__value_new_blob(MPROC_TYPE_STRING, s, strlen(s));
}

mproc_value *mproc_strn(const char *s, size_t n)
{
    if (s == NULL && n > 0)
        return NULL;
    return mproc__value_new_blob(MPROC_TYPE_STRING, s, n);
}

mproc_value *mproc_bytes(const void *p, size_t n)
{
    if (p == NULL && n > 0)
        return NULL;
    return mproc__value_new_blob(MPROC_TYPE_BYTES, p, n);
}

/* ---------------------------------------------------------------------------
 * Lists
 */

mproc_value *mproc_list_new(void)
{
    return mproc__value_new_list(0);
}

mproc_value *mproc_list_from(mproc_value *const *items, size_t n)
{
    mproc_value *l;
    size_t i;
    bool ok = (items != NULL || n == 0);
    for (i = 0; ok && i < n; i++)
        ok = items[i] != NULL &&
             items[i]->height < (uint32_t)MPROC_VALUE_MAX_DEPTH;
    l = ok ? mproc__value_new_list(n) : NULL;
    if (l == NULL) {
        /* The contract: the items are ours either way. */
        for (i = 0; items != NULL && i < n; i++)
            mproc_value_free(items[i]);
        return NULL;
    }
    for (i = 0; i < n; i++)
        (void)mproc__list_push(l, items[i]); /* room for n: cannot fail */
    return l;
}

/* How many lists deep `list` sits in its tree, itself included (a list at
 * the top: 1), and whether `item` is `list` or one of the lists around it
 * (appending it would make a cycle). The walk is bounded by the depth
 * limit, which every tree keeps. */
static uint32_t depth_in_tree(const mproc_value *list, const mproc_value *item,
                              bool *cycle)
{
    uint32_t d = 0;
    const mproc_value *a;
    for (a = list; a != NULL && d <= (uint32_t)MPROC_VALUE_MAX_DEPTH;
         a = a->parent) {
        if (a == item)
            *cycle = true;
        d++;
    }
    return d;
}

/* Records that `item` is now held by `list`, and the heights that grow
 * with it (no further than a height that does not change). */
static void adopt(mproc_value *list, mproc_value *item)
{
    uint32_t h = item->height + 1;
    mproc_value *a;
    item->parent = list;
    for (a = list; a != NULL && a->height < h; a = a->parent, h++)
        a->height = h;
}

int mproc__list_push(mproc_value *list, mproc_value *item)
{
    size_t n = list->u.list.n;
    if (n == list->u.list.cap) {
        mproc_value **items;
        size_t cap = list->u.list.cap < 4 ? 4 : list->u.list.cap;
        /* NOLINTBEGIN(bugprone-sizeof-expression): arrays of pointers */
        if (cap > SIZE_MAX / 2 / sizeof *items)
            return MPROC_ENOMEM;
        cap *= 2;
        if (list_items_inline(list)) {
            /* The inline block cannot grow: move the items out. */
            items = malloc(cap * sizeof *items);
            if (items != NULL && n > 0)
                memcpy(items, list->u.list.items, n * sizeof *items);
        } else {
            items = realloc(list->u.list.items, cap * sizeof *items);
        }
        /* NOLINTEND(bugprone-sizeof-expression) */
        if (items == NULL)
            return MPROC_ENOMEM;
        list->u.list.items = items;
        list->u.list.cap = cap;
    }
    list->u.list.items[n] = item;
    list->u.list.n = n + 1;
    adopt(list, item);
    return 0;
}

int mproc_list_append(mproc_value *list, mproc_value *item)
{
    bool cycle = false;
    uint32_t depth;
    int rc;
    if (item == NULL)
        return MPROC_EINVAL;
    if (list == NULL) {
        mproc_value_free(item);
        return MPROC_EINVAL;
    }
    /* A list inside itself would make every walk endless, and freeing the
     * item would free the list the caller still holds; an item inside
     * another list belongs to that list: refuse both, free nothing. */
    depth = depth_in_tree(list, item, &cycle);
    if (cycle || item->parent != NULL)
        return MPROC_EINVAL;
    /* The whole tree stays within the limit: the lists around `list`, and
     * those the item brings. */
    if (list->type != MPROC_TYPE_LIST ||
        depth + item->height > (uint32_t)MPROC_VALUE_MAX_DEPTH) {
        mproc_value_free(item);
        return MPROC_EINVAL;
    }
    rc = mproc__list_push(list, item);
    if (rc < 0)
        mproc_value_free(item);
    return rc;
}

int64_t mproc_list_size(const mproc_value *list)
{
    if (list == NULL || list->type != MPROC_TYPE_LIST)
        return MPROC_EINVAL;
    return (int64_t)list->u.list.n;
}

mproc_value *mproc_list_get(const mproc_value *list, size_t i)
{
    if (list == NULL || list->type != MPROC_TYPE_LIST || i >= list->u.list.n)
        return NULL;
    return list->u.list.items[i];
}

/* ---------------------------------------------------------------------------
 * Handle values
 */

mproc_value *mproc__value_new_handle(int type, void *obj, bool owned)
{
    mproc_value *v;
    if (obj == NULL || !mproc__type_is_handle(type))
        return NULL;
    v = value_new(type);
    if (v != NULL) {
        v->u.h.obj = obj;
        v->u.h.owned = owned;
    }
    return v;
}

static mproc_value *handle_new(int type, void *obj)
{
    return mproc__value_new_handle(type, obj, false);
}

mproc_value *mproc_value_conn(mproc_conn *c)
{
    return handle_new(MPROC_TYPE_CONN, c);
}

mproc_value *mproc_value_queue(mproc_queue *q)
{
    return handle_new(MPROC_TYPE_QUEUE, q);
}

mproc_value *mproc_value_lock(mproc_lock *l)
{
    return handle_new(MPROC_TYPE_LOCK, l);
}

mproc_value *mproc_value_rlock(mproc_rlock *l)
{
    return handle_new(MPROC_TYPE_RLOCK, l);
}

mproc_value *mproc_value_sem(mproc_sem *s)
{
    return handle_new(MPROC_TYPE_SEM, s);
}

mproc_value *mproc_value_event(mproc_event *e)
{
    return handle_new(MPROC_TYPE_EVENT, e);
}

mproc_value *mproc_value_cond(mproc_cond *c)
{
    return handle_new(MPROC_TYPE_COND, c);
}

mproc_value *mproc_value_barrier(mproc_barrier *b)
{
    return handle_new(MPROC_TYPE_BARRIER, b);
}

mproc_value *mproc_value_shm(mproc_shm *m)
{
    return handle_new(MPROC_TYPE_SHM, m);
}

/* ---------------------------------------------------------------------------
 * Free, copy, equal
 */

void mproc_value_free(mproc_value *v)
{
    size_t i;
    if (v == NULL)
        return;
    if (v->type == MPROC_TYPE_LIST) {
        for (i = 0; i < v->u.list.n; i++)
            mproc_value_free(v->u.list.items[i]);
        if (!list_items_inline(v))
            free(v->u.list.items);
    } else if (mproc__type_is_handle(v->type) && v->u.h.owned) {
        mproc__object_destroy(v->type, v->u.h.obj);
    }
    /* Strings and bytes are inline: one block. */
    free(v);
}

static mproc_value *value_copy(const mproc_value *v, int depth)
{
    mproc_value *c;
    size_t i;
    switch (v->type) {
    case MPROC_TYPE_STRING:
    case MPROC_TYPE_BYTES:
        return mproc__value_new_blob(v->type, v->u.s.p, v->u.s.n);
    case MPROC_TYPE_LIST:
        if (depth >= WALK_MAX)
            return NULL;
        c = mproc__value_new_list(v->u.list.n);
        if (c == NULL)
            return NULL;
        for (i = 0; i < v->u.list.n; i++) {
            mproc_value *item = value_copy(v->u.list.items[i], depth + 1);
            if (item == NULL) {
                mproc_value_free(c);
                return NULL;
            }
            /* Room for n was made: cannot fail, but is checked anyway. */
            if (mproc__list_push(c, item) < 0) {
                mproc_value_free(item);
                mproc_value_free(c);
                return NULL;
            }
        }
        return c;
    default:
        c = value_new(v->type);
        if (c == NULL)
            return NULL;
        c->u = v->u;
        /* A copy of a handle borrows the object, even from an owner. */
        if (mproc__type_is_handle(v->type))
            c->u.h.owned = false;
        return c;
    }
}

mproc_value *mproc_value_copy(const mproc_value *v)
{
    if (v == NULL)
        return NULL;
    return value_copy(v, 0);
}

static bool value_equal(const mproc_value *a, const mproc_value *b, int depth)
{
    size_t i;
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case MPROC_TYPE_NONE:
        return true;
    case MPROC_TYPE_BOOL:
        return a->u.b == b->u.b;
    case MPROC_TYPE_INT:
        return a->u.i == b->u.i;
    case MPROC_TYPE_FLOAT:
        /* By value (0.0 == -0.0), except that NaN equals NaN: a decoded
         * copy of a value must equal the value. */
        return a->u.f == b->u.f || (is_nan(a->u.f) && is_nan(b->u.f));
    case MPROC_TYPE_STRING:
    case MPROC_TYPE_BYTES:
        return a->u.s.n == b->u.s.n &&
               (a->u.s.n == 0 || memcmp(a->u.s.p, b->u.s.p, a->u.s.n) == 0);
    case MPROC_TYPE_LIST:
        if (a->u.list.n != b->u.list.n || depth >= WALK_MAX)
            return false;
        for (i = 0; i < a->u.list.n; i++)
            if (!value_equal(a->u.list.items[i], b->u.list.items[i], depth + 1))
                return false;
        return true;
    default:
        return a->u.h.obj == b->u.h.obj;
    }
}

bool mproc_value_equal(const mproc_value *a, const mproc_value *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return value_equal(a, b, 0);
}

/* ---------------------------------------------------------------------------
 * Accessors
 */

int mproc_value_type(const mproc_value *v)
{
    if (v == NULL)
        return MPROC_EINVAL;
    return v->type;
}

int mproc_value_get_bool(const mproc_value *v, bool *out)
{
    if (v == NULL || out == NULL || v->type != MPROC_TYPE_BOOL)
        return MPROC_EINVAL;
    *out = v->u.b;
    return 0;
}

int mproc_value_get_int(const mproc_value *v, int64_t *out)
{
    if (v == NULL || out == NULL || v->type != MPROC_TYPE_INT)
        return MPROC_EINVAL;
    *out = v->u.i;
    return 0;
}

int mproc_value_get_float(const mproc_value *v, double *out)
{
    if (v == NULL || out == NULL || v->type != MPROC_TYPE_FLOAT)
        return MPROC_EINVAL;
    memcpy(out, &v->u.f, sizeof *out); /* bits, as mproc__float_bits */
    return 0;
}

int mproc_value_get_str(const mproc_value *v, const char **s, size_t *len)
{
    if (v == NULL || s == NULL || v->type != MPROC_TYPE_STRING)
        return MPROC_EINVAL;
    *s = v->u.s.p;
    if (len != NULL)
        *len = v->u.s.n;
    return 0;
}

int mproc_value_get_bytes(const mproc_value *v, const void **p, size_t *len)
{
    if (v == NULL || p == NULL || len == NULL || v->type != MPROC_TYPE_BYTES)
        return MPROC_EINVAL;
    *p = v->u.s.p;
    *len = v->u.s.n;
    return 0;
}

static int handle_get(const mproc_value *v, int type, void **out)
{
    if (v == NULL || out == NULL || v->type != type)
        return MPROC_EINVAL;
    *out = v->u.h.obj;
    return 0;
}

/* The typed getters go through a void * so that no object pointer is
 * converted to another kind's pointer type. */
#define HANDLE_GETTER(kind, ctype, type)                                       \
    int mproc_value_get_##kind(const mproc_value *v, ctype **out)              \
    {                                                                          \
        void *obj = NULL;                                                      \
        int rc = handle_get(v, type, out == NULL ? NULL : &obj);               \
        if (rc == 0)                                                           \
            *out = (ctype *)obj;                                               \
        return rc;                                                             \
    }

HANDLE_GETTER(conn, mproc_conn, MPROC_TYPE_CONN)
HANDLE_GETTER(queue, mproc_queue, MPROC_TYPE_QUEUE)
HANDLE_GETTER(lock, mproc_lock, MPROC_TYPE_LOCK)
HANDLE_GETTER(rlock, mproc_rlock, MPROC_TYPE_RLOCK)
HANDLE_GETTER(sem, mproc_sem, MPROC_TYPE_SEM)
HANDLE_GETTER(event, mproc_event, MPROC_TYPE_EVENT)
HANDLE_GETTER(cond, mproc_cond, MPROC_TYPE_COND)
HANDLE_GETTER(barrier, mproc_barrier, MPROC_TYPE_BARRIER)
HANDLE_GETTER(shm, mproc_shm, MPROC_TYPE_SHM)

/* ---------------------------------------------------------------------------
 * repr: Python's text for the same value.
 */

typedef struct text {
    char *buf;
    size_t cap;
    size_t len; /* what the full text needs, even past cap */
} text;

static void put(text *t, const char *s, size_t n)
{
    if (t->len < t->cap) {
        size_t room = t->cap - t->len;
        memcpy(t->buf + t->len, s, n < room ? n : room);
    }
    t->len += n;
}

static void puts_(text *t, const char *s)
{
    put(t, s, strlen(s));
}

static void putc_(text *t, char c)
{
    put(t, &c, 1);
}

static void put_hex_escape(text *t, unsigned byte)
{
    static const char hex[] = "0123456789abcdef";
    char e[4];
    e[0] = '\\';
    e[1] = 'x';
    e[2] = hex[(byte >> 4) & 0xf];
    e[3] = hex[byte & 0xf];
    put(t, e, 4);
}

static void put_int(text *t, int64_t i)
{
    char d[24];
    size_t k = sizeof d;
    /* Through unsigned, so that INT64_MIN has a magnitude. */
    uint64_t u = i < 0 ? (uint64_t)0 - (uint64_t)i : (uint64_t)i;
    do {
        d[--k] = (char)('0' + (int)(u % 10));
        u /= 10;
    } while (u > 0);
    if (i < 0)
        d[--k] = '-';
    put(t, d + k, sizeof d - k);
}

/* Python's repr(float): the shortest digits that read back as the same
 * double, fixed notation for decimal exponents -4..15, else d.ddde+XX. The
 * digits come from printf's %.*e at increasing precision; they are read
 * back skipping any non-digit, so a locale's decimal comma does no harm. */
static void put_float(text *t, double d)
{
    char tmp[40], digits[24] = {0};
    int prec, exp = 0, nd = 0, i;
    const char *q;
    if (is_nan(d)) {
        puts_(t, "nan");
        return;
    }
    if (is_inf(d)) {
        puts_(t, d < 0 ? "-inf" : "inf");
        return;
    }
    if (d == 0) {
        puts_(t, sign_bit(d) ? "-0.0" : "0.0");
        return;
    }
    /* Compared as bits: with x87 excess precision (32-bit x86) a compare
     * of doubles may see values that are not doubles at all. */
    for (prec = 1; prec <= 17; prec++) {
        double back;
        uint64_t a, b;
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, d);
        back = strtod(tmp, NULL);
        memcpy(&a, &back, sizeof a);
        memcpy(&b, &d, sizeof b);
        if (a == b)
            break;
    }
    for (q = tmp; *q != '\0' && *q != 'e' && *q != 'E'; q++)
        if (*q >= '0' && *q <= '9' && nd < (int)sizeof digits)
            digits[nd++] = *q;
    if (*q != '\0')
        exp = (int)strtol(q + 1, NULL, 10);
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    if (d < 0)
        putc_(t, '-');
    if (exp >= -4 && exp < 16) {
        if (exp < 0) {
            puts_(t, "0.");
            for (i = 0; i < -exp - 1; i++)
                putc_(t, '0');
            put(t, digits, (size_t)nd);
        } else {
            for (i = 0; i <= exp; i++)
                putc_(t, i < nd ? digits[i] : '0');
            putc_(t, '.');
            if (nd > exp + 1)
                put(t, digits + exp + 1, (size_t)(nd - exp - 1));
            else
                putc_(t, '0');
        }
    } else {
        putc_(t, digits[0]);
        if (nd > 1) {
            putc_(t, '.');
            put(t, digits + 1, (size_t)(nd - 1));
        }
        putc_(t, 'e');
        putc_(t, exp < 0 ? '-' : '+');
        if (exp < 0)
            exp = -exp;
        if (exp < 10)
            putc_(t, '0');
        put_int(t, exp);
    }
}

/* Length of the valid UTF-8 sequence at s (at most n bytes) and its code
 * point, or 0 when the bytes are not valid UTF-8. */
static size_t utf8_seq(const unsigned char *s, size_t n, uint32_t *cp)
{
    uint32_t c = s[0], min;
    size_t len, k;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if ((c & 0xe0) == 0xc0) {
        len = 2, c &= 0x1f, min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
        len = 3, c &= 0x0f, min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
        len = 4, c &= 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (k = 1; k < len; k++) {
        if ((s[k] & 0xc0) != 0x80)
            return 0;
        c = (c << 6) | (s[k] & 0x3fu);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        return 0;
    *cp = c;
    return len;
}

/* Python's quoting: single quotes unless the text holds a single quote and
 * no double quote. */
static void put_quoted(text *t, const mproc_value *v, bool is_bytes)
{
    const unsigned char *s = (const unsigned char *)v->u.s.p;
    size_t n = v->u.s.n, i = 0;
    char quote = '\'';
    if (memchr(s, '\'', n) != NULL && memchr(s, '"', n) == NULL)
        quote = '"';
    if (is_bytes)
        putc_(t, 'b');
    putc_(t, quote);
    while (i < n) {
        unsigned char c = s[i];
        uint32_t cp;
        size_t len;
        if (c == '\\' || c == (unsigned char)quote) {
            putc_(t, '\\');
            putc_(t, (char)c);
        } else if (c == '\n') {
            puts_(t, "\\n");
        } else if (c == '\r') {
            puts_(t, "\\r");
        } else if (c == '\t') {
            puts_(t, "\\t");
            /* Three branches escape one byte as hex, for different reasons
             * (a control, any byte of bytes, a byte that is not UTF-8). */
        } else if (c < 0x20 || c == 0x7f) { // NOLINT(bugprone-branch-clone)
            put_hex_escape(t, c);
        } else if (c < 0x80) {
            putc_(t, (char)c);
        } else if (is_bytes) {
            put_hex_escape(t, c);
        } else if ((len = utf8_seq(s + i, n - i, &cp)) == 0) {
            /* Not UTF-8: show the byte, as bytes would. */
            put_hex_escape(t, c);
        } else if (cp < 0xa0) {
            /* C1 controls, escaped by Python too. */
            put_hex_escape(t, cp);
            i += len;
            continue;
        } else {
            put(t, (const char *)s + i, len);
            i += len;
            continue;
        }
        i++;
    }
    putc_(t, quote);
}

static const char *handle_name(int type)
{
    switch (type) {
    case MPROC_TYPE_CONN:
        return "<Connection>";
    case MPROC_TYPE_QUEUE:
        return "<Queue>";
    case MPROC_TYPE_LOCK:
        return "<Lock>";
    case MPROC_TYPE_RLOCK:
        return "<RLock>";
    case MPROC_TYPE_SEM:
        return "<Semaphore>";
    case MPROC_TYPE_EVENT:
        return "<Event>";
    case MPROC_TYPE_COND:
        return "<Condition>";
    case MPROC_TYPE_BARRIER:
        return "<Barrier>";
    case MPROC_TYPE_SHM:
        return "<SharedMemory>";
    default:
        return "<?>";
    }
}

static int repr(text *t, const mproc_value *v, int depth)
{
    size_t i;
    switch (v->type) {
    case MPROC_TYPE_NONE:
        puts_(t, "None");
        return 0;
    case MPROC_TYPE_BOOL:
        puts_(t, v->u.b ? "True" : "False");
        return 0;
    case MPROC_TYPE_INT:
        put_int(t, v->u.i);
        return 0;
    case MPROC_TYPE_FLOAT:
        put_float(t, v->u.f);
        return 0;
    case MPROC_TYPE_STRING:
    case MPROC_TYPE_BYTES:
        put_quoted(t, v, v->type == MPROC_TYPE_BYTES);
        return 0;
    case MPROC_TYPE_LIST:
        if (depth >= WALK_MAX)
            return MPROC_EINVAL;
        putc_(t, '[');
        for (i = 0; i < v->u.list.n; i++) {
            if (i > 0)
                puts_(t, ", ");
            if (repr(t, v->u.list.items[i], depth + 1) < 0)
                return MPROC_EINVAL;
        }
        putc_(t, ']');
        return 0;
    default:
        puts_(t, handle_name(v->type));
        return 0;
    }
}

int64_t mproc_value_repr(const mproc_value *v, char *buf, size_t cap)
{
    text t;
    int rc;
    if (v == NULL || (buf == NULL && cap > 0))
        return MPROC_EINVAL;
    /* Leave room for the NUL: the text proper gets cap - 1 bytes. */
    t.buf = buf;
    t.cap = cap > 0 ? cap - 1 : 0;
    t.len = 0;
    rc = repr(&t, v, 0);
    if (cap > 0)
        buf[t.len < t.cap ? t.len : t.cap] = '\0';
    if (rc < 0)
        return rc;
#if SIZE_MAX > INT64_MAX
    if (t.len > (size_t)INT64_MAX)
        return MPROC_ERANGE;
#endif
    return (int64_t)t.len;
}

void mproc_free(void *p)
{
    free(p);
}
