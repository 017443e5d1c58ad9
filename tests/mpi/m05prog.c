/* M05: a rank whose binary differs is refused with MPROC_ERESOLVE naming
 * the rank. This program is built four ways (tests/mpi/CMakeLists.txt):
 * with the linker's build-id, with another build-id, and twice without
 * one (then the file's hash names it), the second time with other
 * contents. Launched MPMD, the last rank from another build:
 *
 *   mproc-m05 differ | same      exit 0 when create did what it should
 */
#include <mproc_mpi.h>

#include <stdio.h>
#include <string.h>

#ifndef M05_VARIANT
#define M05_VARIANT 1
#endif

#define M05_STR2(x) #x
#define M05_STR(x) M05_STR2(x)
static const char variant[] = "m05 variant " M05_STR(M05_VARIANT);

static int square(const mproc_value *arg, mproc_value **result)
{
    int64_t x = 0;
    if (mproc_value_get_int(arg, &x) != 0)
        return 1;
    *result = mproc_int(x * x);
    return 0;
}

int main(int argc, char **argv)
{
    mproc_pool_options o;
    mproc_task_status st;
    mproc_pool *p = NULL;
    int rank = -1, size = 0, rc;
    bool differ;
    if (mproc_init(argc, argv) < 0 || argc < 2)
        return 2;
    differ = strcmp(argv[1], "differ") == 0;
    memset(&o, 0, sizeof o);
    memset(&st, 0, sizeof st);
    o.init_status = &st;
    rc = mproc_mpi_pool_create(&p, &o, NULL);
    (void)mproc_mpi_world(&rank, &size);
    if (differ) {
        /* Every rank is told, and rank 0 knows which one differs. */
        if (rc != MPROC_ERESOLVE || p != NULL) {
            fprintf(stderr, "rank %d (%s): create gave %d, not ERESOLVE\n",
                    rank, variant, rc);
            return 1;
        }
        if (rank == 0) {
            char want[32];
            snprintf(want, sizeof want, "rank %d ", size - 1);
            printf("rank 0: %s (index %lld)\n", st.message,
                   (long long)st.index);
            if (st.code != MPROC_ERESOLVE || st.index != size - 1 ||
                strstr(st.message, want) == NULL)
                return 1;
            /* And so is the next create, at once. */
            if (mproc_mpi_pool_create(&p, NULL, NULL) != MPROC_ERESOLVE)
                return 1;
        }
        return 0;
    }
    /* The same binary everywhere: a working pool. */
    if (rc != 0 || rank != 0 || p == NULL) {
        fprintf(stderr, "rank %d: create gave %d\n", rank, rc);
        return 1;
    }
    {
        mproc_value *in = MPROC_LIST(mproc_int(1), mproc_int(2), mproc_int(3));
        mproc_value *out = NULL;
        int64_t v = 0;
        rc = mproc_pool_map(p, square, in, 1, &out, NULL);
        if (rc == 0)
            (void)mproc_value_get_int(mproc_list_get(out, 2), &v);
        mproc_value_free(in);
        mproc_value_free(out);
        mproc_pool_close(p);
        mproc_pool_join(p, MPROC_FOREVER);
        mproc_pool_destroy(p);
        printf("rank 0: %s, the same binary on %d ranks: 3*3 = %lld\n", variant,
               size, (long long)v);
        return rc == 0 && v == 9 ? 0 : 1;
    }
}
