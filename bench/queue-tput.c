/*
 * mproc-queue-tput: the queue's put/get rate on any platform (the table's
 * queue cases run on Linux only; this one also runs under Windows and Wine,
 * where the side locks' cost shows most).
 *
 *   mproc-queue-tput [ITEMS] [PRODUCERS] [CONSUMERS] [ROUNDS]
 *                    default 200000 items, 1 producer, 1 consumer, 3 rounds
 *
 * Two cases, each ROUNDS times, 64-byte items, one line per round:
 *
 *   local   one thread puts and gets in turn (no contention: what an
 *           uncontended lock and unlock cost per operation)
 *   procs   PRODUCERS spawned children put ITEMS in all, CONSUMERS spawned
 *           children get them; timed from the first start to the last join
 *
 * Then the best round of each, in items per second.
 */
#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* clock_gettime under -std=c11 */
#endif
#include "mproc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(_WIN32)
#include <windows.h>
#else
#include <time.h>
#endif

#define ITEM 64
#define MAX_PROCS 8

#include "now.h"

static int producer(const mproc_value *args)
{
    mproc_queue *q = NULL;
    int64_t n = 0, i;
    unsigned char item[ITEM];
    if (mproc_value_get_queue(mproc_list_get(args, 0), &q) != 0 ||
        mproc_value_get_int(mproc_list_get(args, 1), &n) != 0)
        return 2;
    memset(item, 'x', sizeof item);
    for (i = 0; i < n; i++)
        if (mproc_queue_put_bytes(q, item, sizeof item, MPROC_FOREVER) != 0)
            return 3;
    return 0;
}

static int consumer(const mproc_value *args)
{
    mproc_queue *q = NULL;
    int64_t n = 0, i;
    if (mproc_value_get_queue(mproc_list_get(args, 0), &q) != 0 ||
        mproc_value_get_int(mproc_list_get(args, 1), &n) != 0)
        return 2;
    for (i = 0; i < n; i++) {
        void *b = NULL;
        size_t len = 0;
        if (mproc_queue_get_bytes(q, &b, &len, MPROC_FOREVER) != 0 ||
            len != ITEM)
            return 3;
        mproc_free(b);
    }
    return 0;
}

static double run_local(int64_t n)
{
    mproc_queue *q = NULL;
    unsigned char item[ITEM];
    double t0, t;
    int64_t i;
    memset(item, 'y', sizeof item);
    if (mproc_queue_create(&q, 0) != 0)
        return -1;
    t0 = now_s();
    for (i = 0; i < n; i++) {
        void *b = NULL;
        size_t len = 0;
        if (mproc_queue_put_bytes(q, item, sizeof item, MPROC_FOREVER) != 0 ||
            mproc_queue_get_bytes(q, &b, &len, MPROC_FOREVER) != 0) {
            mproc_queue_destroy(q);
            return -1;
        }
        mproc_free(b);
    }
    t = now_s() - t0;
    mproc_queue_destroy(q);
    return (double)n / t;
}

static double run_procs(int64_t n, int np, int nc)
{
    mproc_queue *q = NULL;
    mproc_process *p[2 * MAX_PROCS];
    double t0, t;
    int i, bad = 0;
    if (mproc_queue_create(&q, 0) != 0)
        return -1;
    for (i = 0; i < np + nc; i++) {
        bool prod = i < np;
        int64_t share = n / (prod ? np : nc);
        if (mproc_process_create(
                &p[i], prod ? producer : consumer,
                MPROC_LIST(mproc_value_queue(q), mproc_int(share))) != 0 ||
            mproc_process_set_start_method(p[i], MPROC_START_SPAWN) != 0)
            return -1;
    }
    t0 = now_s();
    for (i = 0; i < np + nc; i++)
        if (mproc_process_start(p[i]) != 0)
            return -1;
    for (i = 0; i < np + nc; i++) {
        int code = -1;
        if (mproc_process_join(p[i], MPROC_FOREVER) != 0 ||
            mproc_process_exitcode(p[i], &code) != 0 || code != 0)
            bad = 1;
        mproc_process_destroy(p[i]);
    }
    t = now_s() - t0;
    mproc_queue_destroy(q);
    return bad ? -1 : (double)n / t;
}

int main(int argc, char **argv)
{
    int64_t items;
    int np, nc, rounds, r;
    double best_local = 0, best_procs = 0;
    int rc = mproc_init(argc, argv);
    if (rc != 0) {
        fprintf(stderr, "mproc_init: %s\n", mproc_strerror(rc));
        return 2;
    }
    items = argc > 1 ? strtoll(argv[1], NULL, 10) : 200000;
    np = argc > 2 ? atoi(argv[2]) : 1;
    nc = argc > 3 ? atoi(argv[3]) : 1;
    rounds = argc > 4 ? atoi(argv[4]) : 3;
    if (items < 1 || np < 1 || np > MAX_PROCS || nc < 1 || nc > MAX_PROCS ||
        rounds < 1) {
        fprintf(stderr,
                "usage: %s [ITEMS] [PRODUCERS 1..%d] [CONSUMERS 1..%d] "
                "[ROUNDS]\n",
                argv[0], MAX_PROCS, MAX_PROCS);
        return 2;
    }
    for (r = 0; r < rounds; r++) {
        double l = run_local(items);
        double p = run_procs(items, np, nc);
        if (l < 0 || p < 0) {
            fprintf(stderr, "round %d failed\n", r + 1);
            return 1;
        }
        printf("round %d: local %.0f items/s, procs %dp%dc %.0f items/s\n",
               r + 1, l, np, nc, p);
        fflush(stdout);
        if (l > best_local)
            best_local = l;
        if (p > best_procs)
            best_procs = p;
    }
    printf("best: local %.0f items/s, procs %dp%dc %.0f items/s\n", best_local,
           np, nc, best_procs);
    return 0;
}
