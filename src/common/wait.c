/*
 * mproc_wait: waiting on pipe ends, queues and processes at once (Python's
 * multiprocessing.connection.wait).
 *
 * Each kind gives a handle the backend can wait on (a pipe end's channel, a
 * queue's doorbell, a process's handle or pidfd) and whether it is ready
 * already (a message whose start a peek has seen, an item in the queue, an
 * exit already seen). The backend waits on all of them; readiness is then
 * re-checked per kind. Queues and processes without a waitable handle are
 * re-checked every SLICE_MS as a safety net: a queue's doorbell is only rung
 * while someone waits, and a ring can be missed by a waiter registering at that
 * instant.
 * A handle of the program's own (MPROC_WAIT_HANDLE) goes to the backend as
 * it is.
 */
#include "internal.h"

#include <stdlib.h>

#define SLICE_MS 50

int mproc_wait(mproc_wait_item *items, size_t n, int timeout_ms)
{
    mproc__handle hs[16];
    bool isp[16] = {false}, rdy[16] = {false}, now[16] = {false};
    mproc__handle *h = hs;
    bool *is_process = isp, *ready = rdy, *ready_now = now;
    int64_t deadline;
    size_t i;
    int rc = 0;
    if (items == NULL || n == 0 || n > (size_t)INT32_MAX)
        return MPROC_EINVAL;
    MPROC__CHECK_TIMEOUT(timeout_ms);
    for (i = 0; i < n; i++) {
        switch (items[i].kind) {
        case MPROC_WAIT_CONN:
            if (items[i].conn == NULL)
                return MPROC_EINVAL;
            break;
        case MPROC_WAIT_QUEUE:
            if (items[i].queue == NULL)
                return MPROC_EINVAL;
            break;
        case MPROC_WAIT_PROCESS:
            if (items[i].process == NULL)
                return MPROC_EINVAL;
            break;
        case MPROC_WAIT_HANDLE:
            /* A closed number would read as ready (poll's POLLNVAL) or
             * fail the whole wait: refused here, before waiting. */
            if (items[i].handle == (intptr_t)MPROC__BADHANDLE ||
                mproc__os_handle_check((mproc__handle)items[i].handle) != 0)
                return MPROC_EINVAL;
            break;
        default:
            return MPROC_EINVAL;
        }
        items[i].ready = false;
    }
    if (n > sizeof hs / sizeof hs[0]) {
        h = malloc(n * sizeof *h);
        is_process = calloc(n, sizeof *is_process);
        ready = calloc(n, sizeof *ready);
        ready_now = calloc(n, sizeof *ready_now);
        if (h == NULL || is_process == NULL || ready == NULL ||
            ready_now == NULL) {
            rc = MPROC_ENOMEM;
            goto out;
        }
    }
    deadline = mproc__deadline(timeout_ms);
    for (;;) {
        bool any_now = false;
        bool need_slice = false;
        size_t registered = 0; /* queues registered so far */
        int left, count = 0;
        /* A round whose handles were ready (rc: their count) but whose
         * objects were not (another consumer took the item) goes round
         * again from scratch. */
        rc = 0;
        for (i = 0; i < n && rc == 0; i++) {
            mproc_wait_item *it = &items[i];
            h[i] = MPROC__BADHANDLE;
            ready_now[i] = false;
            ready[i] = false;
            is_process[i] = it->kind == MPROC_WAIT_PROCESS;
            if (it->kind == MPROC_WAIT_HANDLE) {
                h[i] = (mproc__handle)it->handle;
                is_process[i] = MPROC__OS_RAW_IS_OBJECT != 0;
            } else if (it->kind == MPROC_WAIT_CONN) {
                rc = mproc__conn_wait_handle(it->conn, &h[i], &ready_now[i]);
            } else if (it->kind == MPROC_WAIT_QUEUE) {
                rc = mproc__queue_wait_handle(it->queue, &h[i], &ready_now[i]);
                if (rc == 0)
                    registered = i + 1;
                need_slice = true;
            } else {
                rc = mproc__process_wait_handle(it->process, &h[i],
                                                &ready_now[i]);
                if (h[i] == MPROC__BADHANDLE)
                    need_slice = true;
            }
            any_now = any_now || ready_now[i];
        }
        if (rc == 0) {
            left = any_now ? 0 : mproc__remaining(deadline);
            if (need_slice && (left < 0 || left > SLICE_MS))
                left = SLICE_MS;
            rc = mproc__os_wait_many(h, is_process, n, left, ready);
        }
        /* Every registered queue is unregistered, error or not. */
        for (i = 0; i < registered; i++) {
            if (items[i].kind == MPROC_WAIT_QUEUE) {
                int q = mproc__queue_wait_end(items[i].queue);
                if (rc >= 0)
                    ready[i] = q == 1;
            }
        }
        if (rc < 0)
            goto out;
        for (i = 0; i < n; i++) {
            items[i].ready = ready_now[i] || ready[i];
            count += items[i].ready;
        }
        if (count > 0 || mproc__remaining(deadline) == 0) {
            rc = count;
            goto out;
        }
    }
out:
    if (h != hs) {
        free(h);
        free(is_process);
        free(ready);
        free(ready_now);
    }
    return rc;
}
