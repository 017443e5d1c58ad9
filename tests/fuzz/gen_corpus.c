/*
 * Writes the seed corpus of fuzz_decode into the directory given as argv[1]:
 * one file per sample value, each a valid message (docs/wire-format.md).
 * Generated at build time so that no binary files live in git.
 */
#include "mproc.h"

#include <stdio.h>
#include <string.h>

static int write_sample(const char *dir, int n, mproc_value *v)
{
    char path[4096];
    void *buf = NULL;
    size_t len = 0;
    FILE *f;
    int ok;
    if (v == NULL || mproc_value_encode(v, &buf, &len) != 0) {
        mproc_value_free(v);
        return -1;
    }
    mproc_value_free(v);
    snprintf(path, sizeof path, "%s/seed-%02d", dir, n);
    f = fopen(path, "wb");
    ok = f != NULL && fwrite(buf, 1, len, f) == len;
    if (f != NULL && fclose(f) != 0)
        ok = 0;
    mproc_free(buf);
    return ok ? 0 : -1;
}

int main(int argc, char **argv)
{
    mproc_value *deep;
    int n = 0, i, rc = 0;
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    deep = mproc_list_new();
    for (i = 1; i < MPROC_VALUE_MAX_DEPTH && deep != NULL; i++)
        deep = MPROC_LIST(deep);
    rc |= write_sample(argv[1], n++,
                       MPROC_LIST(mproc_int(42), mproc_none(),
                                  mproc_str("hello"), mproc_bool(true)));
    rc |= write_sample(argv[1], n++, mproc_none());
    rc |= write_sample(argv[1], n++, mproc_bool(false));
    rc |= write_sample(argv[1], n++, mproc_int(INT64_MIN));
    rc |= write_sample(argv[1], n++, mproc_float(-0.0));
    rc |= write_sample(argv[1], n++, mproc_strn("a\0b", 3));
    rc |= write_sample(argv[1], n++, mproc_bytes("\xff\x00", 2));
    rc |= write_sample(argv[1], n++, mproc_list_new());
    rc |= write_sample(
        argv[1], n++,
        MPROC_LIST(MPROC_LIST(mproc_int(1), MPROC_LIST(mproc_float(2.5))),
                   mproc_str(""), mproc_bytes("", 0),
                   MPROC_LIST(mproc_none(), mproc_bool(true))));
    rc |= write_sample(argv[1], n++, deep);
    if (rc != 0) {
        fprintf(stderr, "gen_corpus: cannot write the corpus in %s\n", argv[1]);
        return 1;
    }
    return 0;
}
