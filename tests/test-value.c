/* Tests of the value area (rows V01 and V02 of CONFORMANCE.md): typed values,
 * their repr, and the wire encoding (docs/wire-format.md); L15 (nesting)
 * and L16 (the shared memory size code). */
#include "harness.h"

#include <float.h>
#include <math.h>

/* --- helpers ------------------------------------------------------------ */

/* Encodes v, decodes the result, and checks that the copy equals v and
 * encodes to the very same bytes (the encoding is canonical). Frees v. */
static void roundtrip(mproc_value *v)
{
    void *buf = NULL, *buf2 = NULL;
    size_t len = 0, len2 = 0;
    mproc_value *back = NULL;
    ASSERT_NOT_NULL(v);
    ASSERT_OK(mproc_value_encode(v, &buf, &len));
    ASSERT_OK(mproc_value_decode(buf, len, &back));
    ASSERT_NOT_NULL(back);
    ASSERT(mproc_value_equal(v, back));
    ASSERT_EQ(mproc_value_type(back), mproc_value_type(v));
    ASSERT_OK(mproc_value_encode(back, &buf2, &len2));
    ASSERT_EQ(len2, len);
    ASSERT(memcmp(buf, buf2, len) == 0);
    mproc_free(buf);
    mproc_free(buf2);
    mproc_value_free(back);
    mproc_value_free(v);
}

/* Decodes v's encoding and returns the copy (caller frees both). */
static mproc_value *through_wire(const mproc_value *v)
{
    void *buf = NULL;
    size_t len = 0;
    mproc_value *back = NULL;
    ASSERT_OK(mproc_value_encode(v, &buf, &len));
    ASSERT_OK(mproc_value_decode(buf, len, &back));
    mproc_free(buf);
    return back;
}

/* `depth` lists, one inside the other; the innermost holds `inner` (or is
 * empty when inner is NULL). */
static mproc_value *nest(int depth, mproc_value *inner)
{
    mproc_value *v = mproc_list_new();
    int i;
    ASSERT_NOT_NULL(v);
    if (inner != NULL)
        ASSERT_OK(mproc_list_append(v, inner));
    for (i = 1; i < depth; i++) {
        mproc_value *outer = mproc_list_new();
        ASSERT_NOT_NULL(outer);
        ASSERT_OK(mproc_list_append(outer, v));
        v = outer;
    }
    return v;
}

static void assert_repr(const mproc_value *v, const char *want)
{
    char buf[256];
    int64_t n = mproc_value_repr(v, buf, sizeof buf);
    ASSERT_OK(n);
    ASSERT_STR_EQ(buf, want);
    ASSERT_EQ(n, (int64_t)strlen(want));
}

/* Takes ownership of v. */
static void assert_repr_free(mproc_value *v, const char *want)
{
    ASSERT_NOT_NULL(v);
    assert_repr(v, want);
    mproc_value_free(v);
}

static void assert_decode_err(const void *p, size_t n, int err)
{
    static int sentinel;
    mproc_value *v = (mproc_value *)(void *)&sentinel; /* must be cleared */
    ASSERT_ERR(mproc_value_decode(p, n, &v), err);
    ASSERT_NULL(v);
}

/* A deterministic generator: the same inputs on every platform and run. */
typedef struct rng {
    uint64_t s;
} rng;

static uint64_t rng_next(rng *r)
{
    /* xorshift64* */
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 0x2545F4914F6CDD1DULL;
}

static uint32_t rng_below(rng *r, uint32_t n)
{
    if (n == 0)
        return 0;
    return (uint32_t)((rng_next(r) >> 32) % n);
}

static mproc_value *random_value(rng *r, int depth)
{
    uint32_t kind = rng_below(r, depth < 6 ? 8 : 6);
    switch (kind) {
    case 0:
        return mproc_none();
    case 1:
        return mproc_bool(rng_below(r, 2) == 1);
    case 2: {
        static const int64_t ints[] = {0,         1,   -1,  42,   INT64_MIN,
                                       INT64_MAX, 255, 256, -256, 1 << 30};
        if (rng_below(r, 2) == 0)
            return mproc_int(ints[rng_below(r, 10)]);
        return mproc_int((int64_t)rng_next(r));
    }
    case 3: {
        uint64_t bits = rng_next(r);
        double d;
        static const double floats[] = {0.0, -0.0, 1.5, -2.25, 1e300, 5e-324};
        if (rng_below(r, 2) == 0)
            return mproc_float(floats[rng_below(r, 6)]);
        memcpy(&d, &bits, sizeof d); /* any bit pattern, NaNs included */
        return mproc_float(d);
    }
    case 4:
    case 5: {
        char s[40];
        size_t n = rng_below(r, sizeof s), i;
        for (i = 0; i < n; i++)
            s[i] = (char)rng_below(r, 256);
        return kind == 4 ? mproc_strn(s, n) : mproc_bytes(s, n);
    }
    default: {
        mproc_value *l = mproc_list_new();
        uint32_t n = rng_below(r, 6), i;
        ASSERT_NOT_NULL(l);
        for (i = 0; i < n; i++)
            ASSERT_OK(mproc_list_append(l, random_value(r, depth + 1)));
        return l;
    }
    }
}

/* The decoder's promise on any input: a value that encodes back to the
 * same bytes, or MPROC_EBADMSG and no value. Returns whether it decoded. */
static bool check_decode(const uint8_t *p, size_t n)
{
    mproc_value *v = NULL;
    int rc = mproc_value_decode(p, n, &v);
    if (rc == 0) {
        void *buf = NULL;
        size_t len = 0;
        ASSERT_NOT_NULL(v);
        ASSERT_OK(mproc_value_encode(v, &buf, &len));
        ASSERT_EQ(len, n);
        ASSERT(memcmp(buf, p, n) == 0);
        mproc_free(buf);
        mproc_value_free(v);
        return true;
    }
    ASSERT_ERR(rc, MPROC_EBADMSG);
    ASSERT_NULL(v);
    return false;
}

static void put_le32(uint8_t *p, uint32_t x)
{
    p[0] = (uint8_t)x;
    p[1] = (uint8_t)(x >> 8);
    p[2] = (uint8_t)(x >> 16);
    p[3] = (uint8_t)(x >> 24);
}

/* --- V01: every type round-trips ---------------------------------------- */

TEST(V01_roundtrip_scalars)
{
    static const int64_t ints[] = {
        0, 1, -1, 42, INT64_MIN, INT64_MAX, INT64_MIN + 1, INT64_MAX - 1};
    static const double floats[] = {0.0,     1.5,    -2.25, DBL_MIN,
                                    DBL_MAX, 5e-324, 1e300, -1e-300};
    static const char nul_str[] = "a\0b\0";
    uint8_t all[256];
    mproc_value *v;
    size_t i, len;
    double d;
    const char *s;
    const void *p;

    roundtrip(mproc_none());
    roundtrip(mproc_bool(true));
    roundtrip(mproc_bool(false));
    for (i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        int64_t got;
        roundtrip(mproc_int(ints[i]));
        v = mproc_int(ints[i]);
        mproc_value *back = through_wire(v);
        ASSERT_OK(mproc_value_get_int(back, &got));
        ASSERT_EQ(got, ints[i]);
        mproc_value_free(back);
        mproc_value_free(v);
    }
    for (i = 0; i < sizeof floats / sizeof floats[0]; i++)
        roundtrip(mproc_float(floats[i]));
    roundtrip(mproc_float(INFINITY));
    roundtrip(mproc_float(-INFINITY));
    roundtrip(mproc_float(NAN));

    /* -0.0 keeps its sign, NaN stays NaN. */
    v = mproc_float(-0.0);
    mproc_value *back = through_wire(v);
    ASSERT_OK(mproc_value_get_float(back, &d));
    ASSERT(d == 0.0 && 1.0 / d < 0); /* -0.0 */
    mproc_value_free(back);
    mproc_value_free(v);
    v = mproc_float(NAN);
    back = through_wire(v);
    ASSERT_OK(mproc_value_get_float(back, &d));
    ASSERT(d != d); /* NaN */
    mproc_value_free(back);
    mproc_value_free(v);

    /* Strings: empty, with NUL bytes inside, non-ASCII. */
    roundtrip(mproc_str(""));
    roundtrip(mproc_strn(NULL, 0));
    roundtrip(mproc_str("hello"));
    roundtrip(mproc_str("h\xc3\xa9llo \xe2\x82\xac"));
    v = mproc_strn(nul_str, 4);
    back = through_wire(v);
    ASSERT_OK(mproc_value_get_str(back, &s, &len));
    ASSERT_EQ(len, 4);
    ASSERT(memcmp(s, nul_str, 5) == 0); /* NUL-terminated after len bytes */
    mproc_value_free(back);
    roundtrip(v);

    /* Bytes: empty, every byte value. */
    roundtrip(mproc_bytes("", 0));
    roundtrip(mproc_bytes(NULL, 0));
    for (i = 0; i < 256; i++)
        all[i] = (uint8_t)i;
    v = mproc_bytes(all, sizeof all);
    back = through_wire(v);
    ASSERT_OK(mproc_value_get_bytes(back, &p, &len));
    ASSERT_EQ(len, 256);
    ASSERT(memcmp(p, all, 256) == 0);
    ASSERT_EQ(((const char *)p)[256], 0);
    mproc_value_free(back);
    roundtrip(v);
    return 0;
}

TEST(V01_roundtrip_seed_list)
{
    /* The seed's [42, None, 'hello', True], byte for byte as
     * docs/wire-format.md shows it. */
    /* clang-format off */
    static const uint8_t want[] = {
        0xD7, 0x01,                               /* magic, version */
        0x06, 0x04, 0x00, 0x00, 0x00,             /* list of 4 */
        0x02, 0x2A, 0, 0, 0, 0, 0, 0, 0,          /* 42 */
        0x00,                                     /* None */
        0x04, 0x05, 0, 0, 0, 'h', 'e', 'l', 'l', 'o', /* 'hello' */
        0x01, 0x01                                /* True */
    };
    /* clang-format on */
    mproc_value *v = MPROC_LIST(mproc_int(42), mproc_none(), mproc_str("hello"),
                                mproc_bool(true));
    mproc_value *back = NULL;
    void *buf = NULL;
    size_t len = 0;
    int64_t i;
    bool b;
    const char *s;

    ASSERT_NOT_NULL(v);
    ASSERT_OK(mproc_value_encode(v, &buf, &len));
    ASSERT_EQ(len, sizeof want);
    ASSERT(memcmp(buf, want, sizeof want) == 0);
    ASSERT_OK(mproc_value_decode(buf, len, &back));
    mproc_free(buf);
    ASSERT(mproc_value_equal(v, back));
    ASSERT_EQ(mproc_list_size(back), 4);
    ASSERT_OK(mproc_value_get_int(mproc_list_get(back, 0), &i));
    ASSERT_EQ(i, 42);
    ASSERT_EQ(mproc_value_type(mproc_list_get(back, 1)), MPROC_TYPE_NONE);
    ASSERT_OK(mproc_value_get_str(mproc_list_get(back, 2), &s, NULL));
    ASSERT_STR_EQ(s, "hello");
    ASSERT_OK(mproc_value_get_bool(mproc_list_get(back, 3), &b));
    ASSERT(b);
    assert_repr(back, "[42, None, 'hello', True]");
    mproc_value_free(back);
    roundtrip(v);
    return 0;
}

TEST(V01_roundtrip_nested_and_large)
{
    mproc_value *v, *l;
    char *big;
    size_t i;

    roundtrip(mproc_list_new());
    roundtrip(MPROC_LIST(mproc_list_new(), mproc_list_new()));
    roundtrip(MPROC_LIST(
        MPROC_LIST(mproc_int(1),
                   MPROC_LIST(mproc_float(2.5), mproc_list_new())),
        mproc_list_new(), mproc_str("x"),
        MPROC_LIST(mproc_bytes("\0", 1), mproc_none(), mproc_bool(false))));

    /* 100,000 items in one list, built by append. */
    l = mproc_list_new();
    ASSERT_NOT_NULL(l);
    for (i = 0; i < 100000; i++)
        ASSERT_OK(mproc_list_append(l, mproc_int((int64_t)i * 7 - 3)));
    ASSERT_EQ(mproc_list_size(l), 100000);
    roundtrip(l);

    /* A 4 MiB string and 1 MiB of bytes. */
    big = malloc((size_t)4 << 20);
    ASSERT_NOT_NULL(big);
    for (i = 0; i < ((size_t)4 << 20); i++)
        big[i] = (char)('a' + (char)(i % 26));
    v = MPROC_LIST(mproc_strn(big, (size_t)4 << 20),
                   mproc_bytes(big, (size_t)1 << 20));
    free(big);
    roundtrip(v);
    return 0;
}

TEST(V01_roundtrip_random)
{
    rng r = {0x9E3779B97F4A7C15ULL};
    int i;
    for (i = 0; i < 3000; i++)
        roundtrip(random_value(&r, 0));
    return 0;
}

/* --- V01: limits --------------------------------------------------------- */

TEST(V01_depth_limit)
{
    /* MPROC_VALUE_MAX_DEPTH lists nested: fine both ways; one more: refused
     * both ways. */
    enum { D = MPROC_VALUE_MAX_DEPTH };
    uint8_t wire[2 + 5 * (D + 1)];
    mproc_value *v, *back = NULL;
    void *buf = NULL;
    size_t len = 0;
    int i;

    v = nest(D, NULL);
    ASSERT_OK(mproc_value_encode(v, &buf, &len));
    ASSERT_EQ(len, 2 + 5 * D);
    mproc_free(buf);
    roundtrip(v);
    roundtrip(nest(D, mproc_int(7))); /* a scalar at the bottom is no list */
    roundtrip(nest(D, mproc_str("deep")));

    /* One list more cannot even be built (L15): not around the outside,
     * not in a later item, not inside at the bottom. */
    v = mproc_list_new();
    ASSERT_ERR(mproc_list_append(v, nest(D, NULL)), MPROC_EINVAL);
    ASSERT_ERR(mproc_list_append(v, MPROC_LIST(mproc_int(1), nest(D, NULL))),
               MPROC_EINVAL);
    ASSERT_NULL(mproc_list_from((mproc_value *const[]){nest(D, NULL)}, 1));
    ASSERT_OK(mproc_list_append(v, nest(D - 1, NULL)));
    roundtrip(v);
    v = nest(D, NULL);
    {
        mproc_value *bottom = v;
        while (mproc_list_size(bottom) > 0)
            bottom = mproc_list_get(bottom, 0);
        ASSERT_ERR(mproc_list_append(bottom, mproc_list_new()), MPROC_EINVAL);
        ASSERT_OK(mproc_list_append(bottom, mproc_int(3)));
    }
    roundtrip(v);

    /* The same nesting written by hand. */
    wire[0] = 0xD7;
    wire[1] = 0x01;
    for (i = 0; i <= D; i++) {
        wire[2 + (ptrdiff_t)5 * i] = 0x06;
        put_le32(wire + 3 + (ptrdiff_t)5 * i, 1);
    }
    put_le32(wire + 3 + (ptrdiff_t)5 * (D - 1),
             0); /* D lists, the last empty */
    ASSERT_OK(mproc_value_decode(wire, 2 + 5 * D, &back));
    ASSERT(mproc_value_equal(back, v = nest(D, NULL)));
    mproc_value_free(v);
    mproc_value_free(back);
    put_le32(wire + 3 + (ptrdiff_t)5 * (D - 1), 1);
    put_le32(wire + 3 + (ptrdiff_t)5 * D, 0); /* D + 1 lists */
    assert_decode_err(wire, sizeof wire, MPROC_EBADMSG);
    return 0;
}

TEST(V01_size_limit)
{
    /* [b'...'] encodes to header 2 + list 5 + bytes 5 + payload; with one
     * more None it is one byte longer. Exactly MPROC_MESSAGE_MAX is
     * encoded, one byte more is refused (before anything is allocated for
     * the output). The payload comes from calloc, whose untouched pages
     * cost little to read. */
    size_t n = MPROC_MESSAGE_MAX - 12;
    char *big = calloc(1, n);
    mproc_value *v;
    void *buf = NULL;
    size_t len = 0;
    ASSERT_NOT_NULL(big);
    v = MPROC_LIST(mproc_bytes(big, n));
    free(big);
    ASSERT_NOT_NULL(v);
    ASSERT_OK(mproc_value_encode(v, &buf, &len));
    ASSERT_EQ(len, MPROC_MESSAGE_MAX);
    mproc_free(buf);
    buf = NULL;
    ASSERT_OK(mproc_list_append(v, mproc_none()));
    ASSERT_ERR(mproc_value_encode(v, &buf, &len), MPROC_EMSGSIZE);
    ASSERT_NULL(buf);
    mproc_value_free(v);
    return 0;
}

TEST(V01_decode_strict)
{
    static const uint8_t ok_none[] = {0xD7, 0x01, 0x00};
    static const uint8_t bad_magic[] = {0xD6, 0x01, 0x00};
    static const uint8_t bad_version[] = {0xD7, 0x02, 0x00};
    static const uint8_t trailing[] = {0xD7, 0x01, 0x00, 0x00};
    static const uint8_t bad_tag[] = {0xD7, 0x01, 0x07};
    static const uint8_t bad_tag2[] = {0xD7, 0x01, 0xFF};
    static const uint8_t bool2[] = {0xD7, 0x01, 0x01, 0x02};
    static const uint8_t bool_ff[] = {0xD7, 0x01, 0x01, 0xFF};
    static const uint8_t short_int[] = {0xD7, 0x01, 0x02, 1, 2, 3};
    static const uint8_t str_long[] = {0xD7, 0x01, 0x04, 6, 0, 0, 0, 'h', 'i'};
    static const uint8_t str_huge[] = {0xD7, 0x01, 0x04, 0xFF,
                                       0xFF, 0xFF, 0xFF, 'h'};
    static const uint8_t bytes_huge[] = {0xD7, 0x01, 0x05, 0xFF,
                                         0xFF, 0xFF, 0x7F};
    static const uint8_t list_huge[] = {0xD7, 0x01, 0x06, 0xFF,
                                        0xFF, 0xFF, 0xFF, 0x00};
    static const uint8_t list_short[] = {0xD7, 0x01, 0x06, 3,   0,
                                         0,    0,    0x00, 0x00};
    static const uint8_t list_long[] = {0xD7, 0x01, 0x06, 1,   0,
                                        0,    0,    0x00, 0x00};
    /* Nested counts that each fit the bytes left, but not together. */
    static const uint8_t list_nested[] = {0xD7, 0x01, 0x06, 2, 0, 0,    0,
                                          0x06, 2,    0,    0, 0, 0x00, 0x00};
    static const uint8_t handle[] = {0xD7, 0x01, 0x11, 0x00, 0x00, 0x00};
    static const uint8_t handle_conn[] = {
        0xD7, 0x01, 0x10, 0x01, 0x00, 0x00, 3, 0, 0, 0, 0, 0, 0, 0};
    static const uint8_t handle_shm[] = {0xD7, 0x01, 0x18, 0x00, 0x00, 0x00};
    static const uint8_t between[] = {0xD7, 0x01, 0x0F};
    static const uint8_t after[] = {0xD7, 0x01, 0x19};
    mproc_value *v = NULL;
    size_t i;

    ASSERT_OK(mproc_value_decode(ok_none, sizeof ok_none, &v));
    ASSERT_EQ(mproc_value_type(v), MPROC_TYPE_NONE);
    mproc_value_free(v);

    assert_decode_err(ok_none, 0, MPROC_EBADMSG);
    assert_decode_err(ok_none, 1, MPROC_EBADMSG);
    assert_decode_err(ok_none, 2, MPROC_EBADMSG);
    assert_decode_err(bad_magic, sizeof bad_magic, MPROC_EBADMSG);
    assert_decode_err(bad_version, sizeof bad_version, MPROC_EBADMSG);
    assert_decode_err(trailing, sizeof trailing, MPROC_EBADMSG);
    assert_decode_err(bad_tag, sizeof bad_tag, MPROC_EBADMSG);
    assert_decode_err(bad_tag2, sizeof bad_tag2, MPROC_EBADMSG);
    assert_decode_err(bool2, sizeof bool2, MPROC_EBADMSG);
    assert_decode_err(bool_ff, sizeof bool_ff, MPROC_EBADMSG);
    assert_decode_err(short_int, sizeof short_int, MPROC_EBADMSG);
    assert_decode_err(str_long, sizeof str_long, MPROC_EBADMSG);
    assert_decode_err(str_huge, sizeof str_huge, MPROC_EBADMSG);
    assert_decode_err(bytes_huge, sizeof bytes_huge, MPROC_EBADMSG);
    assert_decode_err(list_huge, sizeof list_huge, MPROC_EBADMSG);
    assert_decode_err(list_short, sizeof list_short, MPROC_EBADMSG);
    assert_decode_err(list_long, sizeof list_long, MPROC_EBADMSG);
    assert_decode_err(list_nested, sizeof list_nested, MPROC_EBADMSG);
    /* Handles travel only as process arguments, never through the public
     * decoder. */
    assert_decode_err(handle, sizeof handle, MPROC_EBADMSG);
    assert_decode_err(handle_conn, sizeof handle_conn, MPROC_EBADMSG);
    assert_decode_err(handle_shm, sizeof handle_shm, MPROC_EBADMSG);
    assert_decode_err(between, sizeof between, MPROC_EBADMSG);
    assert_decode_err(after, sizeof after, MPROC_EBADMSG);
    /* Every proper prefix of a valid message is refused. */
    for (i = 0; i < sizeof list_nested - 2; i++)
        assert_decode_err(list_nested, i, MPROC_EBADMSG);
    return 0;
}

/* --- V01: building, accessors, copy, equality --------------------------- */

TEST(V01_list_building)
{
    mproc_value *l, *inner, *items[3];
    int64_t x;

    /* MPROC_LIST with a failed constructor: NULL, the other items freed
     * (the sanitizer build proves they are). */
    l = MPROC_LIST(mproc_int(1), NULL, mproc_str("leak?"));
    ASSERT_NULL(l);
    l = mproc_list_from(NULL, 0);
    ASSERT_NOT_NULL(l);
    ASSERT_EQ(mproc_list_size(l), 0);
    mproc_value_free(l);
    ASSERT_NULL(mproc_list_from(NULL, 2));

    items[0] = mproc_int(10);
    items[1] = mproc_int(20);
    items[2] = mproc_int(30);
    l = mproc_list_from(items, 3);
    ASSERT_NOT_NULL(l);
    ASSERT_EQ(mproc_list_size(l), 3);
    ASSERT(mproc_list_get(l, 1) == items[1]); /* taken over, not copied */
    ASSERT_NULL(mproc_list_get(l, 3));
    ASSERT_NULL(mproc_list_get(l, (size_t)-1));
    /* A list made in one block grows by moving its items out. */
    ASSERT_OK(mproc_list_append(l, mproc_int(40)));
    ASSERT_OK(mproc_list_append(l, mproc_int(50)));
    ASSERT_EQ(mproc_list_size(l), 5);
    ASSERT_OK(mproc_value_get_int(mproc_list_get(l, 4), &x));
    ASSERT_EQ(x, 50);
    ASSERT_OK(mproc_value_get_int(mproc_list_get(l, 0), &x));
    ASSERT_EQ(x, 10);

    /* A decoded list grows too. */
    inner = through_wire(l);
    ASSERT_OK(mproc_list_append(inner, mproc_str("more")));
    ASSERT_EQ(mproc_list_size(inner), 6);
    assert_repr(inner, "[10, 20, 30, 40, 50, 'more']");

    /* Append errors: the item is freed, except when that would free the
     * list (a cycle), which is refused with nothing freed. */
    ASSERT_ERR(mproc_list_append(NULL, mproc_int(1)), MPROC_EINVAL);
    ASSERT_ERR(mproc_list_append(l, NULL), MPROC_EINVAL);
    x = 0;
    {
        mproc_value *notlist = mproc_int(5);
        ASSERT_ERR(mproc_list_append(notlist, mproc_int(1)), MPROC_EINVAL);
        mproc_value_free(notlist);
    }
    ASSERT_ERR(mproc_list_append(l, l), MPROC_EINVAL);
    ASSERT_OK(mproc_list_append(l, inner));
    ASSERT_ERR(mproc_list_append(inner, l), MPROC_EINVAL);
    ASSERT_ERR(mproc_list_append(mproc_list_get(inner, 5), l), MPROC_EINVAL);
    {
        mproc_value *inner2 = mproc_list_new();
        ASSERT_OK(mproc_list_append(inner, inner2));
        ASSERT_ERR(mproc_list_append(inner2, l), MPROC_EINVAL);
        ASSERT_ERR(mproc_list_append(inner2, inner), MPROC_EINVAL);
    }
    ASSERT_EQ(mproc_list_size(l), 6);
    ASSERT_EQ(mproc_list_size(inner), 7);
    assert_repr(l, "[10, 20, 30, 40, 50, [10, 20, 30, 40, 50, 'more', []]]");
    roundtrip(l);
    return 0;
}

TEST(V01_accessors)
{
    mproc_value *vs[7];
    bool b;
    int64_t i;
    double d;
    const char *s;
    const void *p;
    size_t len, k;

    vs[0] = mproc_none();
    vs[1] = mproc_bool(true);
    vs[2] = mproc_int(-5);
    vs[3] = mproc_float(0.5);
    vs[4] = mproc_str("abc");
    vs[5] = mproc_bytes("xy", 2);
    vs[6] = mproc_list_new();
    for (k = 0; k < 7; k++) {
        ASSERT_NOT_NULL(vs[k]);
        ASSERT_EQ(mproc_value_type(vs[k]), (int)k);
        /* Each getter works on its own type only. */
        ASSERT_EQ(mproc_value_get_bool(vs[k], &b), k == 1 ? 0 : MPROC_EINVAL);
        ASSERT_EQ(mproc_value_get_int(vs[k], &i), k == 2 ? 0 : MPROC_EINVAL);
        ASSERT_EQ(mproc_value_get_float(vs[k], &d), k == 3 ? 0 : MPROC_EINVAL);
        ASSERT_EQ(mproc_value_get_str(vs[k], &s, &len),
                  k == 4 ? 0 : MPROC_EINVAL);
        ASSERT_EQ(mproc_value_get_bytes(vs[k], &p, &len),
                  k == 5 ? 0 : MPROC_EINVAL);
        ASSERT_EQ(mproc_list_size(vs[k]), k == 6 ? 0 : MPROC_EINVAL);
        ASSERT_NULL(mproc_list_get(vs[k], 0));
    }
    ASSERT_OK(mproc_value_get_bool(vs[1], &b));
    ASSERT(b);
    ASSERT_OK(mproc_value_get_int(vs[2], &i));
    ASSERT_EQ(i, -5);
    ASSERT_OK(mproc_value_get_float(vs[3], &d));
    ASSERT(d == 0.5);
    ASSERT_OK(mproc_value_get_str(vs[4], &s, &len));
    ASSERT_EQ(len, 3);
    ASSERT_STR_EQ(s, "abc");
    ASSERT_OK(mproc_value_get_str(vs[4], &s, NULL)); /* len is optional */
    ASSERT_OK(mproc_value_get_bytes(vs[5], &p, &len));
    ASSERT_EQ(len, 2);
    ASSERT(memcmp(p, "xy", 3) == 0);
    for (k = 0; k < 7; k++)
        mproc_value_free(vs[k]);
    return 0;
}

TEST(V01_copy_equal)
{
    mproc_value *a =
        MPROC_LIST(mproc_int(1), mproc_str("s"),
                   MPROC_LIST(mproc_float(NAN), mproc_bytes("", 0)),
                   mproc_none(), mproc_bool(false));
    mproc_value *c = mproc_value_copy(a), *x, *y;
    ASSERT_NOT_NULL(a);
    ASSERT_NOT_NULL(c);
    ASSERT(c != a);
    ASSERT(mproc_list_get(c, 0) != mproc_list_get(a, 0)); /* deep */
    ASSERT(mproc_value_equal(a, c));
    ASSERT(mproc_value_equal(a, a));
    ASSERT_OK(mproc_list_append(mproc_list_get(c, 2), mproc_none()));
    ASSERT(!mproc_value_equal(a, c));
    mproc_value_free(c);
    mproc_value_free(a);

    ASSERT(mproc_value_equal(NULL, NULL));
    x = mproc_int(1);
    ASSERT(!mproc_value_equal(x, NULL));
    ASSERT(!mproc_value_equal(NULL, x));
    y = mproc_bool(true); /* unlike Python, True is not 1 */
    ASSERT(!mproc_value_equal(x, y));
    mproc_value_free(y);
    y = mproc_float(1.0);
    ASSERT(!mproc_value_equal(x, y));
    mproc_value_free(y);
    y = mproc_int(2);
    ASSERT(!mproc_value_equal(x, y));
    mproc_value_free(y);
    mproc_value_free(x);

    x = mproc_float(0.0);
    y = mproc_float(-0.0);
    ASSERT(mproc_value_equal(x, y)); /* by value */
    mproc_value_free(x);
    mproc_value_free(y);
    x = mproc_str("ab");
    y = mproc_bytes("ab", 2);
    ASSERT(!mproc_value_equal(x, y));
    mproc_value_free(y);
    y = mproc_strn("ab\0", 3);
    ASSERT(!mproc_value_equal(x, y));
    mproc_value_free(y);
    y = mproc_str("ac");
    ASSERT(!mproc_value_equal(x, y));
    mproc_value_free(y);
    mproc_value_free(x);

    x = mproc_value_copy(NULL);
    ASSERT_NULL(x);
    x = nest(MPROC_VALUE_MAX_DEPTH, mproc_str("bottom"));
    y = mproc_value_copy(x);
    ASSERT(mproc_value_equal(x, y));
    mproc_value_free(x);
    mproc_value_free(y);
    return 0;
}

TEST(V01_handle_values)
{
    /* Handle values borrow their object and never touch it: stand-ins do
     * here. */
    static int objs[9];
    mproc_value *v[9], *c, *l;
    void *buf = NULL;
    size_t len = 0;
    mproc_queue *q = NULL;
    mproc_lock *lk = NULL;
    static const char *const names[9] = {
        "<Connection>", "<Queue>",     "<Lock>",
        "<RLock>",      "<Semaphore>", "<Event>",
        "<Condition>",  "<Barrier>",   "<SharedMemory>"};
    int k;

    v[0] = mproc_value_conn((mproc_conn *)(void *)&objs[0]);
    v[1] = mproc_value_queue((mproc_queue *)(void *)&objs[1]);
    v[2] = mproc_value_lock((mproc_lock *)(void *)&objs[2]);
    v[3] = mproc_value_rlock((mproc_rlock *)(void *)&objs[3]);
    v[4] = mproc_value_sem((mproc_sem *)(void *)&objs[4]);
    v[5] = mproc_value_event((mproc_event *)(void *)&objs[5]);
    v[6] = mproc_value_cond((mproc_cond *)(void *)&objs[6]);
    v[7] = mproc_value_barrier((mproc_barrier *)(void *)&objs[7]);
    v[8] = mproc_value_shm((mproc_shm *)(void *)&objs[8]);
    for (k = 0; k < 9; k++) {
        ASSERT_NOT_NULL(v[k]);
        ASSERT_EQ(mproc_value_type(v[k]), MPROC_TYPE_CONN + k);
        assert_repr(v[k], names[k]);
        c = mproc_value_copy(v[k]);
        ASSERT(mproc_value_equal(v[k], c));
        mproc_value_free(c);
        /* The public encoding carries no handles. */
        ASSERT_ERR(mproc_value_encode(v[k], &buf, &len), MPROC_EINVAL);
        ASSERT_NULL(buf);
    }
    ASSERT(!mproc_value_equal(v[1], v[2]));

    ASSERT_OK(mproc_value_get_queue(v[1], &q));
    ASSERT(q == (mproc_queue *)(void *)&objs[1]);
    ASSERT_ERR(mproc_value_get_queue(v[2], &q), MPROC_EINVAL);
    ASSERT_ERR(mproc_value_get_lock(v[1], &lk), MPROC_EINVAL);
    ASSERT_OK(mproc_value_get_lock(v[2], &lk));
    {
        mproc_conn *co;
        mproc_rlock *rl;
        mproc_sem *se;
        mproc_event *ev;
        mproc_cond *cd;
        mproc_barrier *ba;
        mproc_shm *sh;
        ASSERT_OK(mproc_value_get_conn(v[0], &co));
        ASSERT(co == (mproc_conn *)(void *)&objs[0]);
        ASSERT_OK(mproc_value_get_rlock(v[3], &rl));
        ASSERT_OK(mproc_value_get_sem(v[4], &se));
        ASSERT_OK(mproc_value_get_event(v[5], &ev));
        ASSERT_OK(mproc_value_get_cond(v[6], &cd));
        ASSERT_OK(mproc_value_get_barrier(v[7], &ba));
        ASSERT_OK(mproc_value_get_shm(v[8], &sh));
        ASSERT(sh == (mproc_shm *)(void *)&objs[8]);
        ASSERT_ERR(mproc_value_get_conn(v[8], &co), MPROC_EINVAL);
        ASSERT_ERR(mproc_value_get_shm(v[0], &sh), MPROC_EINVAL);
    }

    /* A handle anywhere in a list makes the public encode refuse. */
    l = MPROC_LIST(mproc_int(1), MPROC_LIST(v[1]));
    ASSERT_NOT_NULL(l);
    assert_repr(l, "[1, [<Queue>]]");
    ASSERT_ERR(mproc_value_encode(l, &buf, &len), MPROC_EINVAL);
    mproc_value_free(l); /* frees v[1], not the object */
    for (k = 0; k < 9; k++)
        if (k != 1)
            mproc_value_free(v[k]);
    return 0;
}

/* --- V01: repr ----------------------------------------------------------- */

TEST(V01_repr)
{
    char buf[64];
    mproc_value *v;

    assert_repr_free(mproc_none(), "None");
    assert_repr_free(mproc_bool(true), "True");
    assert_repr_free(mproc_bool(false), "False");
    assert_repr_free(mproc_int(0), "0");
    assert_repr_free(mproc_int(-42), "-42");
    assert_repr_free(mproc_int(INT64_MIN), "-9223372036854775808");
    assert_repr_free(mproc_int(INT64_MAX), "9223372036854775807");

    /* Floats as Python's repr prints them. */
    assert_repr_free(mproc_float(0.0), "0.0");
    assert_repr_free(mproc_float(-0.0), "-0.0");
    assert_repr_free(mproc_float(1.0), "1.0");
    assert_repr_free(mproc_float(100.0), "100.0");
    assert_repr_free(mproc_float(1.5), "1.5");
    assert_repr_free(mproc_float(-2.75), "-2.75");
    assert_repr_free(mproc_float(0.1), "0.1");
    /* The doubles nearest 0.1 + 0.2, 1/3, 2/3, written out: computed here,
     * x87 excess precision (32-bit x86) would round them twice. */
    assert_repr_free(mproc_float(0.3000000000000000444), "0.30000000000000004");
    assert_repr_free(mproc_float(0.33333333333333331483), "0.3333333333333333");
    assert_repr_free(mproc_float(0.66666666666666662966), "0.6666666666666666");
    assert_repr_free(mproc_float(12345.678), "12345.678");
    assert_repr_free(mproc_float(1e15), "1000000000000000.0");
    assert_repr_free(mproc_float(1e16), "1e+16");
    assert_repr_free(mproc_float(1.5e16), "1.5e+16");
    assert_repr_free(mproc_float(123456789012345680.0),
                     "1.2345678901234568e+17");
    assert_repr_free(mproc_float(0.0001), "0.0001");
    assert_repr_free(mproc_float(0.00001), "1e-05");
    assert_repr_free(mproc_float(1.5e-7), "1.5e-07");
    assert_repr_free(mproc_float(1e300), "1e+300");
    assert_repr_free(mproc_float(-1e-300), "-1e-300");
    assert_repr_free(mproc_float(5e-324), "5e-324");
    assert_repr_free(mproc_float(DBL_MAX), "1.7976931348623157e+308");
    assert_repr_free(mproc_float(DBL_MIN), "2.2250738585072014e-308");
    assert_repr_free(mproc_float(INFINITY), "inf");
    assert_repr_free(mproc_float(-INFINITY), "-inf");
    assert_repr_free(mproc_float(NAN), "nan");

    /* Strings: Python's quoting and escapes. */
    assert_repr_free(mproc_str(""), "''");
    assert_repr_free(mproc_str("hello"), "'hello'");
    assert_repr_free(mproc_str("it's"), "\"it's\"");
    assert_repr_free(mproc_str("say \"hi\""), "'say \"hi\"'");
    assert_repr_free(mproc_str("a'b\"c"), "'a\\'b\"c'");
    assert_repr_free(mproc_str("back\\slash"), "'back\\\\slash'");
    assert_repr_free(mproc_str("t\tn\nr\r"), "'t\\tn\\nr\\r'");
    assert_repr_free(mproc_strn("a\0b", 3), "'a\\x00b'");
    assert_repr_free(mproc_str("\x01\x1f\x7f"), "'\\x01\\x1f\\x7f'");
    assert_repr_free(mproc_str("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80"),
                     "'h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80'");
    assert_repr_free(mproc_str("\xc2\x85"), "'\\x85'"); /* C1 control */
    assert_repr_free(mproc_str("bad\xff\xc3"), "'bad\\xff\\xc3'");

    /* Bytes. */
    assert_repr_free(mproc_bytes("", 0), "b''");
    assert_repr_free(mproc_bytes("abc", 3), "b'abc'");
    assert_repr_free(mproc_bytes("\0\xff\n\\'", 5), "b\"\\x00\\xff\\n\\\\'\"");
    assert_repr_free(mproc_bytes("\xc3\xa9", 2), "b'\\xc3\\xa9'");

    /* Lists. */
    assert_repr_free(mproc_list_new(), "[]");
    assert_repr_free(MPROC_LIST(mproc_list_new()), "[[]]");
    assert_repr_free(
        MPROC_LIST(MPROC_LIST(mproc_int(1),
                              MPROC_LIST(mproc_float(2.5), mproc_list_new())),
                   mproc_str("x"), mproc_bytes("y", 1)),
        "[[1, [2.5, []]], 'x', b'y']");

    /* Truncation: NUL-terminated within cap, the full length returned. */
    v = MPROC_LIST(mproc_int(42), mproc_none(), mproc_str("hello"),
                   mproc_bool(true));
    ASSERT_EQ(mproc_value_repr(v, NULL, 0), 25);
    memset(buf, 'Z', sizeof buf);
    ASSERT_EQ(mproc_value_repr(v, buf, 1), 25);
    ASSERT_EQ(buf[0], '\0');
    ASSERT_EQ(buf[1], 'Z');
    ASSERT_EQ(mproc_value_repr(v, buf, 5), 25);
    ASSERT_STR_EQ(buf, "[42,");
    ASSERT_EQ(buf[5], 'Z');
    ASSERT_EQ(mproc_value_repr(v, buf, 25), 25);
    ASSERT_STR_EQ(buf, "[42, None, 'hello', True");
    ASSERT_EQ(mproc_value_repr(v, buf, 26), 25);
    ASSERT_STR_EQ(buf, "[42, None, 'hello', True]");
    mproc_value_free(v);
    return 0;
}

/* --- V01: bad arguments --------------------------------------------------- */

TEST(V01_bad_arguments)
{
    mproc_value *v = mproc_int(1), *out = NULL;
    bool b;
    int64_t i;
    double d;
    const char *s;
    const void *p;
    size_t len;
    void *buf = NULL;
    char text[8];

    ASSERT_NULL(mproc_str(NULL));
    ASSERT_NULL(mproc_strn(NULL, 1));
    ASSERT_NULL(mproc_bytes(NULL, 1));
    ASSERT_NULL(mproc_list_from(NULL, 1));
    ASSERT_NULL(mproc_value_conn(NULL));
    ASSERT_NULL(mproc_value_queue(NULL));
    ASSERT_NULL(mproc_value_lock(NULL));
    ASSERT_NULL(mproc_value_rlock(NULL));
    ASSERT_NULL(mproc_value_sem(NULL));
    ASSERT_NULL(mproc_value_event(NULL));
    ASSERT_NULL(mproc_value_cond(NULL));
    ASSERT_NULL(mproc_value_barrier(NULL));
    ASSERT_NULL(mproc_value_shm(NULL));
    ASSERT_ERR(mproc_list_append(NULL, NULL), MPROC_EINVAL);
    mproc_value_free(NULL);
    mproc_free(NULL);
    ASSERT_NULL(mproc_value_copy(NULL));

    ASSERT_ERR(mproc_value_type(NULL), MPROC_EINVAL);
    ASSERT_ERR(mproc_value_get_bool(NULL, &b), MPROC_EINVAL);
    ASSERT_ERR(mproc_value_get_int(NULL, &i), MPROC_EINVAL);
    ASSERT_ERR(mproc_value_get_int(v, NULL), MPROC_EINVAL);
    ASSERT_ERR(mproc_value_get_float(NULL, &d), MPROC_EINVAL);
    ASSERT_ERR(mproc_value_get_str(NULL, &s, &len), MPROC_EINVAL);
    ASSERT_ERR(mproc_value_get_bytes(NULL, &p, &len), MPROC_EINVAL);
    ASSERT_ERR(mproc_list_size(NULL), MPROC_EINVAL);
    ASSERT_NULL(mproc_list_get(NULL, 0));
    ASSERT_ERR(mproc_value_get_conn(NULL, NULL), MPROC_EINVAL);
    ASSERT_ERR(mproc_value_get_queue(NULL, NULL), MPROC_EINVAL);
    ASSERT_ERR(mproc_value_get_lock(NULL, NULL), MPROC_EINVAL);
    ASSERT_ERR(mproc_value_get_rlock(NULL, NULL), MPROC_EINVAL);
    ASSERT_ERR(mproc_value_get_sem(NULL, NULL), MPROC_EINVAL);
    ASSERT_ERR(mproc_value_get_event(NULL, NULL), MPROC_EINVAL);
    ASSERT_ERR(mproc_value_get_cond(NULL, NULL), MPROC_EINVAL);
    ASSERT_ERR(mproc_value_get_barrier(NULL, NULL), MPROC_EINVAL);
    ASSERT_ERR(mproc_value_get_shm(NULL, NULL), MPROC_EINVAL);

    {
        mproc_value *bl = mproc_bool(true), *fl = mproc_float(1),
                    *st = mproc_str("x"), *by = mproc_bytes("x", 1),
                    *qv = mproc_value_queue((mproc_queue *)(void *)&b);
        ASSERT_ERR(mproc_value_get_bool(bl, NULL), MPROC_EINVAL);
        ASSERT_ERR(mproc_value_get_float(fl, NULL), MPROC_EINVAL);
        ASSERT_ERR(mproc_value_get_str(st, NULL, &len), MPROC_EINVAL);
        ASSERT_ERR(mproc_value_get_bytes(by, NULL, &len), MPROC_EINVAL);
        ASSERT_ERR(mproc_value_get_bytes(by, &p, NULL), MPROC_EINVAL);
        ASSERT_ERR(mproc_value_get_queue(qv, NULL), MPROC_EINVAL);
        mproc_value_free(bl);
        mproc_value_free(fl);
        mproc_value_free(st);
        mproc_value_free(by);
        mproc_value_free(qv);
    }

    ASSERT_ERR(mproc_value_repr(NULL, text, sizeof text), MPROC_EINVAL);
    ASSERT_ERR(mproc_value_repr(v, NULL, 4), MPROC_EINVAL);

    ASSERT_ERR(mproc_value_encode(NULL, &buf, &len), MPROC_EINVAL);
    ASSERT_ERR(mproc_value_encode(v, NULL, &len), MPROC_EINVAL);
    ASSERT_ERR(mproc_value_encode(v, &buf, NULL), MPROC_EINVAL);
    ASSERT_ERR(mproc_value_decode(NULL, 3, &out), MPROC_EINVAL);
    ASSERT_ERR(mproc_value_decode(NULL, 0, &out), MPROC_EINVAL);
    ASSERT_ERR(mproc_value_decode("\xD7\x01\x00", 3, NULL), MPROC_EINVAL);
    ASSERT_NULL(out);
    mproc_value_free(v);
    return 0;
}

/* --- V02: the decoder on hostile bytes ----------------------------------- */

/* A fixed number of iterations (no clock): the same work on every host. */
TEST(V02_decoder_fuzz_random)
{
    rng r = {0xD1B54A32D192ED03ULL};
    uint8_t buf[96];
    long i, decoded = 0;
    size_t n, k;
    for (i = 0; i < 2000000; i++) {
        n = rng_below(&r, sizeof buf + 1);
        for (k = 0; k < n; k++)
            buf[k] = (uint8_t)rng_next(&r);
        /* Mostly a valid header, so the bytes reach the value decoder;
         * mostly small tags and counts, so they get somewhere. */
        if (n >= 2 && rng_below(&r, 8) != 0) {
            buf[0] = 0xD7;
            buf[1] = 0x01;
            for (k = 2; k < n; k++)
                if (rng_below(&r, 4) != 0)
                    buf[k] = (uint8_t)(buf[k] % 8);
        }
        if (check_decode(buf, n))
            decoded++;
    }
    /* The generator must reach the success path too, or it proves
     * little. */
    ASSERT_GT(decoded, 1000);
    return 0;
}

static void mutate_all(const uint8_t *msg, size_t n, rng *r)
{
    static const uint32_t counts[] = {
        0xFFFFFFFFu, 0x7FFFFFFFu, 0x80000000u, 0x40000000u,
        0x00010000u, 1000,        2,           0};
    uint8_t *m = malloc(n + 8);
    size_t i, k, bit;
    ASSERT_NOT_NULL(m);
    /* Every truncation. */
    for (i = 0; i < n; i++)
        ASSERT(!check_decode(msg, i) || i == 0);
    /* Every single bit flip. */
    for (bit = 0; bit < n * 8; bit++) {
        memcpy(m, msg, n);
        m[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        (void)check_decode(m, n);
    }
    /* A huge or odd length/count at every offset. */
    for (i = 0; i + 4 <= n; i++)
        for (k = 0; k < sizeof counts / sizeof counts[0]; k++) {
            memcpy(m, msg, n);
            put_le32(m + i, counts[k]);
            (void)check_decode(m, n);
        }
    /* One byte inserted or deleted anywhere. */
    for (i = 0; i < n; i++) {
        memcpy(m, msg, i);
        m[i] = (uint8_t)rng_next(r);
        memcpy(m + i + 1, msg + i, n - i);
        (void)check_decode(m, n + 1);
        memcpy(m, msg, i);
        memcpy(m + i, msg + i + 1, n - i - 1);
        (void)check_decode(m, n - 1);
    }
    /* Random multi-byte mutations. */
    for (i = 0; i < 200; i++) {
        memcpy(m, msg, n);
        for (k = 0; k < 1 + rng_below(r, 4); k++)
            m[rng_below(r, (uint32_t)n)] = (uint8_t)rng_next(r);
        (void)check_decode(m, n);
    }
    free(m);
}

TEST(V02_decoder_fuzz_mutation)
{
    rng r = {0x243F6A8885A308D3ULL};
    mproc_value *v;
    void *buf;
    size_t len;
    int i;
    for (i = 0; i < 2000; i++) {
        if (i == 0)
            v = MPROC_LIST(mproc_int(42), mproc_none(), mproc_str("hello"),
                           mproc_bool(true));
        else if (i == 1)
            v = nest(MPROC_VALUE_MAX_DEPTH, mproc_int(1));
        else
            v = random_value(&r, 0);
        ASSERT_NOT_NULL(v);
        ASSERT_OK(mproc_value_encode(v, &buf, &len));
        mproc_value_free(v);
        if (len <= 600) /* keep the fixed budget to a few seconds */
            mutate_all(buf, len, &r);
        mproc_free(buf);
    }
    return 0;
}

/* --- L15 ---------------------------------------------------------------- */

/* A million lists one inside the other, built the one way the old guards
 * did not see: always appending into the innermost list (each item is an
 * empty list, so its own depth says nothing). Every walk over the tree
 * used to recurse once per list, and free overflowed the stack. Now the
 * tree stops at MPROC_VALUE_MAX_DEPTH (each further append is refused and
 * frees its item), and every walk works on what was built. */
static mproc_value *l15_chain(int n, int64_t *ok, int64_t *refused)
{
    mproc_value *root = mproc_list_new(), *inner = root;
    int i;
    ASSERT_NOT_NULL(root);
    *ok = *refused = 0;
    for (i = 1; i < n; i++) {
        mproc_value *next = mproc_list_new();
        ASSERT_NOT_NULL(next);
        if (mproc_list_append(inner, next) == 0) {
            inner = next;
            (*ok)++;
        } else {
            (*refused)++;
        }
    }
    return root;
}

TEST(L15_deep_nesting_is_refused)
{
    enum { N = 1000000, D = MPROC_VALUE_MAX_DEPTH };
    mproc_value *root, *c, *l;
    mproc_value *back = NULL;
    int64_t ok = 0, refused = 0, n;
    void *buf = NULL;
    size_t len = 0;
    /* Free first, alone: this is what ran off the stack. */
    mproc_value_free(l15_chain(N, &ok, &refused));
    root = l15_chain(N, &ok, &refused);
    /* free, copy, equal, repr, encode (both passes) and decode, on the
     * deepest tree there can be. */
    n = mproc_value_repr(root, NULL, 0);
    ASSERT_EQ(n, 2 * D);
    c = mproc_value_copy(root);
    ASSERT_NOT_NULL(c);
    ASSERT(mproc_value_equal(root, c));
    ASSERT_OK(mproc_value_encode(c, &buf, &len));
    ASSERT_EQ(len, 2 + 5 * (size_t)D);
    ASSERT_OK(mproc_value_decode(buf, len, &back));
    ASSERT(mproc_value_equal(back, root));
    mproc_free(buf);
    mproc_value_free(back);
    mproc_value_free(c);
    ASSERT_EQ(ok, D - 1);
    ASSERT_EQ(refused, N - D);
    /* The other way up: wrapping the tree in one list more. */
    l = mproc_list_new();
    ASSERT_NOT_NULL(l);
    c = mproc_value_copy(root);
    ASSERT_ERR(mproc_list_append(l, c), MPROC_EINVAL); /* c freed */
    c = mproc_value_copy(root);
    ASSERT_NULL(mproc_list_from(&c, 1)); /* c freed */
    /* A refused append leaves the tree as it was. */
    ASSERT_EQ(mproc_value_repr(root, NULL, 0), 2 * D);
    mproc_value_free(l);
    mproc_value_free(root);
    return 0;
}

/* --- L16 ---------------------------------------------------------------- */

/* A shared memory block of a size no system can give is MPROC_ENOMEM on
 * every platform (Windows used to say MPROC_EINVAL), sizes past what a
 * size_t mapping or an off_t can hold included; a size that fits still
 * works afterwards. */
TEST(L16_shm_impossible_size_is_enomem)
{
    size_t sizes[10];
    size_t n = 0, i;
    mproc_shm *m = NULL;
    sizes[n++] = SIZE_MAX;
    sizes[n++] = SIZE_MAX - 4095;
    sizes[n++] = SIZE_MAX / 2 + 1;
#if SIZE_MAX > 0xFFFFFFFFu
    /* 2 GiB - 1 is no impossible size on 32-bit systems, 2^63 - 1 is. */
    sizes[n++] = SIZE_MAX / 2;
    /* Past any address space (x86-64 user space is 2^47) or commit limit. */
    sizes[n++] = (size_t)1 << 62;
    sizes[n++] = (size_t)1 << 56;
    sizes[n++] = (size_t)1 << 48;
#else
    sizes[n++] = (size_t)0xF0000000u;
#endif
    for (i = 0; i < n; i++) {
        m = NULL;
        if (mproc_shm_create(&m, sizes[i]) != MPROC_ENOMEM)
            th_fail(__FILE__, __LINE__, "size %zu: %s", sizes[i],
                    m != NULL ? "created"
                              : mproc_err_name(mproc_shm_create(&m, sizes[i])));
        ASSERT_NULL(m);
    }
    ASSERT_ERR(mproc_shm_create(&m, 0), MPROC_EINVAL);
    ASSERT_OK(mproc_shm_create(&m, 4096));
    ASSERT_EQ(mproc_shm_size(m), 4096);
    mproc_shm_destroy(m);
    return 0;
}
