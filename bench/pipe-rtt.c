/*
 * mproc-pipe-rtt: the Pipe's round trip on any platform (the table's pipe
 * cases run on Linux only; this one also runs under Windows and Wine).
 *
 *   mproc-pipe-rtt [ROUNDS] [SCALE]
 *                  default 5 rounds, scale 1
 *
 * A spawned child echoes every message it receives (recv_bytes_alloc, then
 * send_bytes) through one duplex mproc_pipe. For each size (8 B, 1 KiB,
 * 64 KiB, 1 MiB) the parent sends a message and waits for its echo
 * (recv_bytes into a buffer of the size), 2000, 2000, 500 and 50 times
 * (times SCALE) a round after a few untimed ones; one line per round, then
 * the median round of each size, in microseconds per round trip.
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

#define MAX_ROUNDS 31
#define WARM 10

static const size_t sizes[] = {8, 1024, 64 * 1024, 1024 * 1024};
static const long counts[] = {2000, 2000, 500, 50};

#include "now.h"

/* Echoes messages until end-of-file. */
static int echo(const mproc_value *args)
{
    mproc_conn *c = NULL;
    if (mproc_value_get_conn(mproc_list_get(args, 0), &c) != 0)
        return 2;
    for (;;) {
        void *b = NULL;
        size_t len = 0;
        int rc = mproc_conn_recv_bytes_alloc(c, &b, &len, MPROC_FOREVER);
        if (rc == MPROC_EEOF)
            return 0;
        if (rc != 0)
            return 3;
        rc = mproc_conn_send_bytes(c, b, len);
        mproc_free(b);
        if (rc != 0)
            return 4;
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* n round trips of `size` bytes: microseconds each, or -1. */
static double round_trips(mproc_conn *c, unsigned char *msg,
                          unsigned char *back, size_t size, long n)
{
    double t0 = 0;
    long i;
    for (i = 0; i < WARM + n; i++) {
        size_t len = 0;
        if (i == WARM)
            t0 = now_s();
        if (mproc_conn_send_bytes(c, msg, size) != 0 ||
            mproc_conn_recv_bytes(c, back, size, &len, MPROC_FOREVER) != 0 ||
            len != size)
            return -1;
    }
    return (now_s() - t0) / (double)n * 1e6;
}

int main(int argc, char **argv)
{
    mproc_conn *mine = NULL, *theirs = NULL;
    mproc_process *p = NULL;
    double us[sizeof sizes / sizeof sizes[0]][MAX_ROUNDS];
    unsigned char *msg, *back;
    int rounds, scale, r, code = -1, bad = 0;
    size_t s;
    int rc = mproc_init(argc, argv);
    if (rc != 0) {
        fprintf(stderr, "mproc_init: %s\n", mproc_strerror(rc));
        return 2;
    }
    rounds = argc > 1 ? atoi(argv[1]) : 5;
    scale = argc > 2 ? atoi(argv[2]) : 1;
    if (rounds < 1 || rounds > MAX_ROUNDS || scale < 1) {
        fprintf(stderr, "usage: mproc-pipe-rtt [ROUNDS 1..%d] [SCALE]\n",
                MAX_ROUNDS);
        return 2;
    }
    msg = malloc(sizes[3]);
    back = malloc(sizes[3]);
    if (msg == NULL || back == NULL)
        return 2;
    memset(msg, 'x', sizes[3]);
    if (mproc_pipe(&mine, &theirs, true) != 0 ||
        mproc_process_create(&p, echo, MPROC_LIST(mproc_value_conn(theirs))) !=
            0 ||
        mproc_process_set_start_method(p, MPROC_START_SPAWN) != 0 ||
        mproc_process_start(p) != 0) {
        fprintf(stderr, "could not start the echo child\n");
        return 2;
    }
    /* The child has its own copy now; ours would keep the pipe open. */
    mproc_conn_destroy(theirs);
    for (r = 0; r < rounds && !bad; r++) {
        printf("round %d:", r + 1);
        for (s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            us[s][r] =
                round_trips(mine, msg, back, sizes[s], counts[s] * (long)scale);
            if (us[s][r] < 0)
                bad = 1;
            printf(" %zu B %.1f us", sizes[s], us[s][r]);
        }
        printf("\n");
    }
    mproc_conn_destroy(mine);
    if (mproc_process_join(p, MPROC_FOREVER) != 0 ||
        mproc_process_exitcode(p, &code) != 0 || code != 0)
        bad = 1;
    mproc_process_destroy(p);
    if (bad) {
        fprintf(stderr, "a round trip failed (child exit code %d)\n", code);
        return 1;
    }
    printf("median of %d rounds (us per round trip):", rounds);
    for (s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        qsort(us[s], (size_t)rounds, sizeof us[s][0], cmp_double);
        printf(" %zu B %.1f", sizes[s], us[s][rounds / 2]);
    }
    printf("\n");
    free(msg);
    free(back);
    return 0;
}
