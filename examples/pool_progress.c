/*
 * A progress bar while a pool maps 100,000 items: the pool's progress
 * callback runs in this process (in the thread that waits in map) every
 * 1,000 finished tasks or 100 ms, and draws a \r-updated bar on stderr, only
 * when stderr is a terminal. The result goes to stdout either way.
 */
#if !defined(_WIN32)
#define _POSIX_C_SOURCE 200809L /* fileno, isatty */
#endif
#include <mproc.h>

#include <stdio.h>
#if defined(_WIN32)
#include <io.h>
#define isatty _isatty
#define fileno _fileno
#else
#include <unistd.h>
#endif

#define ITEMS 100000

static int work(const mproc_value *arg, mproc_value **result)
{
    int64_t x = 0;
    uint64_t h;
    int i;
    mproc_value_get_int(arg, &x);
    /* A little work per item: a few hundred multiply-adds (unsigned: they
     * wrap). */
    h = (uint64_t)x;
    for (i = 0; i < 300; i++)
        h = (h * 6364136223846793005ULL + 1442695040888963407ULL) & 0xffffff;
    *result = mproc_int((int64_t)(h % 1000));
    return 0;
}

static void bar(const mproc_pool_stats *s, void *arg)
{
    uint64_t fin = s->done + s->failed;
    uint64_t total = *(const uint64_t *)arg;
    int width = 40, filled, i;
    if (total == 0)
        return;
    filled = (int)(fin * (uint64_t)width / total);
    fputc('\r', stderr);
    fputc('[', stderr);
    for (i = 0; i < width; i++)
        fputc(i < filled ? '#' : '.', stderr);
    fprintf(stderr, "] %3d%%  %llu/%llu  (%llu running)",
            (int)(fin * 100 / total), (unsigned long long)fin,
            (unsigned long long)total, (unsigned long long)s->running);
    fflush(stderr);
}

int main(int argc, char **argv)
{
    mproc_pool *pool = NULL;
    mproc_value *items, *out = NULL;
    uint64_t total = ITEMS;
    int64_t sum = 0;
    int rc, i;
    int tty;

    rc = mproc_init(argc, argv);
    if (rc < 0)
        return 1;
    tty = isatty(fileno(stderr));
    items = mproc_list_new();
    for (i = 0; i < ITEMS; i++)
        mproc_list_append(items, mproc_int(i));

    rc = mproc_pool_create(&pool, NULL);
    if (rc == 0 && tty)
        rc = mproc_pool_set_progress(pool, bar, &total, 1000, 100);
    if (rc == 0)
        /* Chunks of 250: a bar that moves smoothly (the automatic size,
         * 100000 / (4 x workers), would move it in eighths). */
        rc = mproc_pool_map(pool, work, items, 250, &out, NULL);
    if (rc != 0) {
        fprintf(stderr, "map: %s\n", rc < 0 ? mproc_strerror(rc) : "failed");
        return 1;
    }
    if (tty)
        fputc('\n', stderr);
    for (i = 0; i < ITEMS; i++) {
        int64_t v = 0;
        mproc_value_get_int(mproc_list_get(out, (size_t)i), &v);
        sum += v;
    }
    mproc_value_free(out);
    mproc_value_free(items);
    mproc_pool_close(pool);
    mproc_pool_join(pool, MPROC_FOREVER);
    pool = mproc_pool_destroy(pool);
    printf("mapped %d items on %d CPUs: sum of results %lld\n", ITEMS,
           mproc_cpu_count_usable(), (long long)sum);
    return 0;
}
