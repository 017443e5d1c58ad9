/*
 * Writes the seed corpus of fuzz_boot into the directory given as argv[1]:
 * well-formed bootstrap payloads (the bytes after the frame's length word)
 * made with the library's own encoder, with and without arguments.
 */
#include "internal.h"

#include <stdio.h>
#include <string.h>

static mproc__boot_str str(const char *s)
{
    mproc__boot_str v;
    v.p = s;
    v.n = (uint32_t)strlen(s);
    return v;
}

static int write_seed(const char *dir, int n, mproc__boot_frame *f,
                      mproc_value *args)
{
    char path[4096];
    mproc__buf b = {0};
    void *enc = NULL;
    size_t len = 0;
    FILE *out;
    int ok;

    if (args != NULL && mproc_value_encode(args, &enc, &len) != 0)
        return -1;
    mproc_value_free(args);
    f->args_len = (uint32_t)len;
    ok = mproc__boot_encode_head(f, &b) == 0 &&
         mproc__buf_append(&b, enc, len) == 0;
    mproc_free(enc);
    snprintf(path, sizeof path, "%s/boot-%02d", dir, n);
    out = ok ? fopen(path, "wb") : NULL;
    ok = out != NULL && fwrite(b.p, 1, b.n, out) == b.n;
    if (out != NULL && fclose(out) != 0)
        ok = 0;
    mproc__buf_free(&b);
    return ok ? 0 : -1;
}

int main(int argc, char **argv)
{
    mproc__boot_frame f;
    int rc = 0;

    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    memset(&f, 0, sizeof f);
    f.method = MPROC_START_SPAWN;
    f.ppid = 4242;
    f.offset = 0x1139;
    f.module = str("2049:1234567:81920:1700000000000000000:");
    f.name = str("Process-1");
    f.ident = str("1");
    f.pname = str("MainProcess");
    rc |= write_seed(argv[1], 0, &f, NULL);
    f.flags = MPROC__BOOT_FLAG_DAEMON;
    rc |= write_seed(argv[1], 1, &f,
                     MPROC_LIST(mproc_int(42), mproc_none(), mproc_str("hello"),
                                mproc_bool(true)));
    f.flags = MPROC__BOOT_FLAG_RUN;
    f.method = MPROC_START_FORK;
    f.module = str("2049:99:4096:1:/usr/lib/libexample.so.1");
    f.ident = str("1:2:3");
    rc |= write_seed(argv[1], 2, &f, mproc_bytes("\x00\x01", 2));
    return rc == 0 ? 0 : 1;
}
