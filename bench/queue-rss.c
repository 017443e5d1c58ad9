/*
 * mproc-queue-rss: memory of a queue under a long stream (the Queue issue's
 * "10 million items through one queue leave the RSS of every process flat").
 *
 *   mproc-queue-rss [ITEMS] [PRODUCERS]     default 10000000 items, 1 producer
 *
 * PRODUCERS children put 64-byte items; the parent gets them all. Every tenth
 * of the stream the parent samples VmRSS of itself and of every producer
 * (from /proc/PID/status) and prints one line. At the end it prints the growth
 * of each process between the first sample (after a warm-up tenth) and the
 * last, and exits 1 if any process grew by more than 1 MiB. Linux only, like
 * the other benchmarks.
 */
#include "mproc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#define ITEM 64
#define MAX_PRODUCERS 8
#define SAMPLES 10

static long rss_kib(long pid)
{
    char path[64], line[256];
    FILE *f;
    long kib = -1;
    snprintf(path, sizeof path, "/proc/%ld/status", pid);
    f = fopen(path, "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof line, f) != NULL)
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kib = strtol(line + 6, NULL, 10);
            break;
        }
    fclose(f);
    return kib;
}

static int producer(const mproc_value *args)
{
    mproc_queue *q = NULL;
    int64_t n = 0;
    unsigned char item[ITEM];
    int64_t i;
    if (mproc_value_get_queue(mproc_list_get(args, 0), &q) != 0 ||
        mproc_value_get_int(mproc_list_get(args, 1), &n) != 0)
        return 2;
    memset(item, 'x', sizeof item);
    for (i = 0; i < n; i++) {
        memcpy(item, &i, sizeof i);
        if (mproc_queue_put_bytes(q, item, sizeof item, MPROC_FOREVER) != 0)
            return 3;
    }
    return 0;
}

int main(int argc, char **argv)
{
    mproc_queue *q = NULL;
    mproc_process *p[MAX_PRODUCERS];
    long pids[MAX_PRODUCERS + 1];
    long first[MAX_PRODUCERS + 1], last[MAX_PRODUCERS + 1];
    int64_t items, per, got = 0, step;
    int np, i, rc, bad = 0, sample = 0;

    rc = mproc_init(argc, argv);
    if (rc != 0) {
        fprintf(stderr, "mproc_init: %s\n", mproc_strerror(rc));
        return 2;
    }
    items = argc > 1 ? strtoll(argv[1], NULL, 10) : 10000000;
    np = argc > 2 ? atoi(argv[2]) : 1;
    if (items < SAMPLES || np < 1 || np > MAX_PRODUCERS) {
        fprintf(stderr, "usage: %s [ITEMS >= %d] [PRODUCERS 1..%d]\n", argv[0],
                SAMPLES, MAX_PRODUCERS);
        return 2;
    }
    per = items / np;
    items = per * np;
    step = items / SAMPLES;
    rc = mproc_queue_create(&q, 0);
    if (rc != 0) {
        fprintf(stderr, "mproc_queue_create: %s\n", mproc_strerror(rc));
        return 2;
    }
    pids[0] = (long)getpid();
    for (i = 0; i < np; i++) {
        rc = mproc_process_create(
            &p[i], producer, MPROC_LIST(mproc_value_queue(q), mproc_int(per)));
        if (rc == 0)
            rc = mproc_process_start(p[i]);
        if (rc != 0) {
            fprintf(stderr, "start: %s\n", mproc_strerror(rc));
            return 2;
        }
        pids[i + 1] = (long)mproc_process_pid(p[i]);
    }
    printf("%12s %14s", "items got", "consumer KiB");
    for (i = 1; i <= np; i++)
        printf("   producer %2d", i);
    printf("\n");
    while (got < items) {
        void *b = NULL;
        size_t len = 0;
        rc = mproc_queue_get_bytes(q, &b, &len, MPROC_FOREVER);
        if (rc != 0) {
            fprintf(stderr, "get: %s\n", mproc_strerror(rc));
            return 2;
        }
        mproc_free(b);
        got++;
        if (got % step == 0) {
            printf("%12lld", (long long)got);
            for (i = 0; i <= np; i++) {
                long kib = rss_kib(pids[i]);
                printf(" %14ld", kib);
                if (sample == 1)
                    first[i] = kib; /* after a warm-up tenth */
                if (kib > 0)
                    last[i] = kib;
            }
            printf("\n");
            sample++;
        }
    }
    for (i = 0; i < np; i++) {
        int code = -1;
        mproc_process_join(p[i], MPROC_FOREVER);
        mproc_process_exitcode(p[i], &code);
        if (code != 0)
            bad = 1;
        mproc_process_destroy(p[i]);
    }
    for (i = 0; i <= np; i++) {
        long grew = last[i] - first[i];
        printf("%s %d: RSS %ld KiB -> %ld KiB (%+ld KiB)\n",
               i == 0 ? "consumer" : "producer", i, first[i], last[i], grew);
        if (grew > 1024)
            bad = 1;
    }
    mproc_queue_destroy(q);
    printf("%s\n", bad ? "RSS NOT FLAT" : "RSS flat (growth <= 1 MiB)");
    return bad;
}
