/* STUB: generated placeholder, every function returns MPROC_ENOSYS. */
#include "internal.h"

#include <stddef.h>

int mproc_lock_create(mproc_lock **l)
{
    (void)l;
    return MPROC_ENOSYS;
}

int mproc_lock_acquire(mproc_lock *l, int timeout_ms)
{
    (void)l;
    (void)timeout_ms;
    return MPROC_ENOSYS;
}

int mproc_lock_release(mproc_lock *l)
{
    (void)l;
    return MPROC_ENOSYS;
}

mproc_lock * mproc_lock_destroy(mproc_lock *l)
{
    (void)l;
    return NULL;
}

int mproc_rlock_create(mproc_rlock **l)
{
    (void)l;
    return MPROC_ENOSYS;
}

int mproc_rlock_acquire(mproc_rlock *l, int timeout_ms)
{
    (void)l;
    (void)timeout_ms;
    return MPROC_ENOSYS;
}

int mproc_rlock_release(mproc_rlock *l)
{
    (void)l;
    return MPROC_ENOSYS;
}

mproc_rlock * mproc_rlock_destroy(mproc_rlock *l)
{
    (void)l;
    return NULL;
}

int mproc_sem_create(mproc_sem **s, unsigned initial, unsigned max)
{
    (void)s;
    (void)initial;
    (void)max;
    return MPROC_ENOSYS;
}

int mproc_sem_acquire(mproc_sem *s, int timeout_ms)
{
    (void)s;
    (void)timeout_ms;
    return MPROC_ENOSYS;
}

int mproc_sem_release(mproc_sem *s)
{
    (void)s;
    return MPROC_ENOSYS;
}

int64_t mproc_sem_value(mproc_sem *s)
{
    (void)s;
    return MPROC_ENOSYS;
}

mproc_sem * mproc_sem_destroy(mproc_sem *s)
{
    (void)s;
    return NULL;
}

int mproc_event_create(mproc_event **e)
{
    (void)e;
    return MPROC_ENOSYS;
}

int mproc_event_set(mproc_event *e)
{
    (void)e;
    return MPROC_ENOSYS;
}

int mproc_event_clear(mproc_event *e)
{
    (void)e;
    return MPROC_ENOSYS;
}

int mproc_event_is_set(mproc_event *e)
{
    (void)e;
    return MPROC_ENOSYS;
}

int mproc_event_wait(mproc_event *e, int timeout_ms)
{
    (void)e;
    (void)timeout_ms;
    return MPROC_ENOSYS;
}

mproc_event * mproc_event_destroy(mproc_event *e)
{
    (void)e;
    return NULL;
}

int mproc_cond_create(mproc_cond **c)
{
    (void)c;
    return MPROC_ENOSYS;
}

int mproc_cond_acquire(mproc_cond *c, int timeout_ms)
{
    (void)c;
    (void)timeout_ms;
    return MPROC_ENOSYS;
}

int mproc_cond_release(mproc_cond *c)
{
    (void)c;
    return MPROC_ENOSYS;
}

int mproc_cond_wait(mproc_cond *c, int timeout_ms)
{
    (void)c;
    (void)timeout_ms;
    return MPROC_ENOSYS;
}

int mproc_cond_notify(mproc_cond *c, unsigned n)
{
    (void)c;
    (void)n;
    return MPROC_ENOSYS;
}

int mproc_cond_notify_all(mproc_cond *c)
{
    (void)c;
    return MPROC_ENOSYS;
}

mproc_cond * mproc_cond_destroy(mproc_cond *c)
{
    (void)c;
    return NULL;
}

int mproc_barrier_create(mproc_barrier **b, unsigned parties)
{
    (void)b;
    (void)parties;
    return MPROC_ENOSYS;
}

int mproc_barrier_wait(mproc_barrier *b, int timeout_ms)
{
    (void)b;
    (void)timeout_ms;
    return MPROC_ENOSYS;
}

int mproc_barrier_abort(mproc_barrier *b)
{
    (void)b;
    return MPROC_ENOSYS;
}

int mproc_barrier_reset(mproc_barrier *b)
{
    (void)b;
    return MPROC_ENOSYS;
}

int mproc_barrier_parties(mproc_barrier *b)
{
    (void)b;
    return MPROC_ENOSYS;
}

int mproc_barrier_n_waiting(mproc_barrier *b)
{
    (void)b;
    return MPROC_ENOSYS;
}

int mproc_barrier_broken(mproc_barrier *b)
{
    (void)b;
    return MPROC_ENOSYS;
}

mproc_barrier * mproc_barrier_destroy(mproc_barrier *b)
{
    (void)b;
    return NULL;
}

int mproc__lock_export(mproc_lock *l, mproc__export *ex)
{
    (void)l;
    (void)ex;
    return MPROC_ENOSYS;
}

int mproc__lock_import(const mproc__export *ex, mproc_lock **out)
{
    (void)ex;
    (void)out;
    return MPROC_ENOSYS;
}

int mproc__rlock_export(mproc_rlock *l, mproc__export *ex)
{
    (void)l;
    (void)ex;
    return MPROC_ENOSYS;
}

int mproc__rlock_import(const mproc__export *ex, mproc_rlock **out)
{
    (void)ex;
    (void)out;
    return MPROC_ENOSYS;
}

int mproc__sem_export(mproc_sem *s, mproc__export *ex)
{
    (void)s;
    (void)ex;
    return MPROC_ENOSYS;
}

int mproc__sem_import(const mproc__export *ex, mproc_sem **out)
{
    (void)ex;
    (void)out;
    return MPROC_ENOSYS;
}

int mproc__event_export(mproc_event *e, mproc__export *ex)
{
    (void)e;
    (void)ex;
    return MPROC_ENOSYS;
}

int mproc__event_import(const mproc__export *ex, mproc_event **out)
{
    (void)ex;
    (void)out;
    return MPROC_ENOSYS;
}

int mproc__cond_export(mproc_cond *c, mproc__export *ex)
{
    (void)c;
    (void)ex;
    return MPROC_ENOSYS;
}

int mproc__cond_import(const mproc__export *ex, mproc_cond **out)
{
    (void)ex;
    (void)out;
    return MPROC_ENOSYS;
}

int mproc__barrier_export(mproc_barrier *b, mproc__export *ex)
{
    (void)b;
    (void)ex;
    return MPROC_ENOSYS;
}

int mproc__barrier_import(const mproc__export *ex, mproc_barrier **out)
{
    (void)ex;
    (void)out;
    return MPROC_ENOSYS;
}
