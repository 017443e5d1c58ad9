/*
 * libFuzzer target for the spawn bootstrap's frame parser (rows S02-S03 of
 * CONFORMANCE.md; docs/security.md).
 *
 * A spawned child parses the frame from its parent with mproc__boot_parse
 * before it trusts anything in it. Whatever the input, the parser must
 * return MPROC_EBADMSG with the frame zeroed, or 0 with a frame whose every
 * string lies inside the input and holds no NUL, whose arguments are the
 * rest of the input exactly, and which encodes back to exactly the input
 * (the layout has one encoding). It reads nothing outside the input
 * (AddressSanitizer watches) and runs nothing: the arguments are decoded
 * as the child would, with handles refused since nothing here may open
 * one. Any other outcome aborts, which libFuzzer reports with the input.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_str(const mproc__boot_str *s, const uint8_t *lo,
                      const uint8_t *hi)
{
    const uint8_t *p = (const uint8_t *)s->p;
    if (s->n > MPROC__BOOT_STR_MAX || p < lo || p > hi ||
        (size_t)(hi - p) < s->n || memchr(p, 0, s->n) != NULL)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mproc__boot_frame f;
    mproc__buf b = {0};
    mproc_value *v = NULL;
    int rc;

    rc = mproc__boot_parse(data, size, &f);
    if (rc != 0) {
        if (rc != MPROC_EBADMSG || f.flags != 0 || f.method != 0 ||
            f.ppid != 0 || f.offset != 0 || f.module.p != NULL ||
            f.name.p != NULL || f.ident.p != NULL || f.pname.p != NULL ||
            f.args != NULL || f.args_len != 0)
            abort();
        return 0;
    }
    check_str(&f.module, data, data + size);
    check_str(&f.name, data, data + size);
    check_str(&f.ident, data, data + size);
    check_str(&f.pname, data, data + size);
    if (f.args != data + size - f.args_len || f.ppid <= 0 ||
        (f.method != MPROC_START_FORK && f.method != MPROC_START_SPAWN) ||
        (f.flags & ~(MPROC__BOOT_FLAG_DAEMON | MPROC__BOOT_FLAG_RUN)) != 0)
        abort();
    if (mproc__boot_encode_head(&f, &b) != 0 ||
        mproc__buf_append(&b, f.args, f.args_len) != 0 || b.n != size ||
        memcmp(b.p, data, size) != 0)
        abort();
    mproc__buf_free(&b);
    if (f.args_len > 0) {
        rc = mproc__decode(f.args, f.args_len, false, &v);
        if (rc == 0)
            mproc_value_free(v);
        else if (rc != MPROC_EBADMSG || v != NULL)
            abort();
    }
    return 0;
}
