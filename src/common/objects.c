/* Dispatch of the objects that travel to children, and the deadline helpers
 * every blocking call uses. */
#include "internal.h"

#include <stddef.h>

int mproc__object_export(int type, void *obj, mproc__export *ex)
{
    if (obj == NULL || ex == NULL)
        return MPROC_EINVAL;
    ex->nh = 0;
    ex->nblob = 0;
    switch (type) {
    case MPROC_TYPE_CONN:
        return mproc__conn_export((mproc_conn *)obj, ex);
    case MPROC_TYPE_QUEUE:
        return mproc__queue_export((mproc_queue *)obj, ex);
    case MPROC_TYPE_LOCK:
        return mproc__lock_export((mproc_lock *)obj, ex);
    case MPROC_TYPE_RLOCK:
        return mproc__rlock_export((mproc_rlock *)obj, ex);
    case MPROC_TYPE_SEM:
        return mproc__sem_export((mproc_sem *)obj, ex);
    case MPROC_TYPE_EVENT:
        return mproc__event_export((mproc_event *)obj, ex);
    case MPROC_TYPE_COND:
        return mproc__cond_export((mproc_cond *)obj, ex);
    case MPROC_TYPE_BARRIER:
        return mproc__barrier_export((mproc_barrier *)obj, ex);
    case MPROC_TYPE_SHM:
        return mproc__shm_export((mproc_shm *)obj, ex);
    default:
        return MPROC_EINVAL;
    }
}

int mproc__object_import(int type, const mproc__export *ex, void **obj)
{
    if (ex == NULL || obj == NULL)
        return MPROC_EINVAL;
    switch (type) {
    case MPROC_TYPE_CONN:
        return mproc__conn_import(ex, (mproc_conn **)obj);
    case MPROC_TYPE_QUEUE:
        return mproc__queue_import(ex, (mproc_queue **)obj);
    case MPROC_TYPE_LOCK:
        return mproc__lock_import(ex, (mproc_lock **)obj);
    case MPROC_TYPE_RLOCK:
        return mproc__rlock_import(ex, (mproc_rlock **)obj);
    case MPROC_TYPE_SEM:
        return mproc__sem_import(ex, (mproc_sem **)obj);
    case MPROC_TYPE_EVENT:
        return mproc__event_import(ex, (mproc_event **)obj);
    case MPROC_TYPE_COND:
        return mproc__cond_import(ex, (mproc_cond **)obj);
    case MPROC_TYPE_BARRIER:
        return mproc__barrier_import(ex, (mproc_barrier **)obj);
    case MPROC_TYPE_SHM:
        return mproc__shm_import(ex, (mproc_shm **)obj);
    default:
        return MPROC_EBADMSG;
    }
}

void mproc__object_destroy(int type, void *obj)
{
    switch (type) {
    case MPROC_TYPE_CONN:
        (void)mproc_conn_destroy((mproc_conn *)obj);
        break;
    case MPROC_TYPE_QUEUE:
        (void)mproc_queue_destroy((mproc_queue *)obj);
        break;
    case MPROC_TYPE_LOCK:
        (void)mproc_lock_destroy((mproc_lock *)obj);
        break;
    case MPROC_TYPE_RLOCK:
        (void)mproc_rlock_destroy((mproc_rlock *)obj);
        break;
    case MPROC_TYPE_SEM:
        (void)mproc_sem_destroy((mproc_sem *)obj);
        break;
    case MPROC_TYPE_EVENT:
        (void)mproc_event_destroy((mproc_event *)obj);
        break;
    case MPROC_TYPE_COND:
        (void)mproc_cond_destroy((mproc_cond *)obj);
        break;
    case MPROC_TYPE_BARRIER:
        (void)mproc_barrier_destroy((mproc_barrier *)obj);
        break;
    case MPROC_TYPE_SHM:
        (void)mproc_shm_destroy((mproc_shm *)obj);
        break;
    default:
        break;
    }
}

int64_t mproc__deadline(int timeout_ms)
{
    return mproc__deadline_ns(timeout_ms);
}

int mproc__remaining(int64_t deadline)
{
    return mproc__left_ms(deadline);
}
