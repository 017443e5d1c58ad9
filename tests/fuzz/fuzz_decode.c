/*
 * libFuzzer target for the value decoder (row V02 of CONFORMANCE.md).
 *
 * Whatever the input, mproc_value_decode must return MPROC_EBADMSG or a
 * value; a value must re-encode to exactly the input (the encoding is
 * canonical, docs/wire-format.md), equal its own copy and have a repr. Any
 * other outcome aborts, which libFuzzer reports as a crash with the input.
 */
#include "mproc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t empty[1];
    mproc_value *v = NULL, *c;
    void *buf = NULL;
    size_t len = 0;
    char text[64];
    int rc;

    if (data == NULL)
        data = empty; /* the decoder refuses NULL itself (MPROC_EINVAL) */
    rc = mproc_value_decode(data, size, &v);
    if (rc != 0) {
        if (rc != MPROC_EBADMSG || v != NULL)
            abort();
        return 0;
    }
    if (v == NULL)
        abort();
    if (mproc_value_encode(v, &buf, &len) != 0 || len != size ||
        memcmp(buf, data, size) != 0)
        abort();
    mproc_free(buf);
    c = mproc_value_copy(v);
    if (c == NULL || !mproc_value_equal(v, c))
        abort();
    if (mproc_value_repr(c, text, sizeof text) < 0)
        abort();
    mproc_value_free(c);
    mproc_value_free(v);
    return 0;
}
