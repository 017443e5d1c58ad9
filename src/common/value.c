/* STUB: generated placeholder, every function returns MPROC_ENOSYS. */
#include "internal.h"

#include <stddef.h>

mproc_value * mproc_none(void)
{
    return NULL;
}

mproc_value * mproc_bool(bool b)
{
    (void)b;
    return NULL;
}

mproc_value * mproc_int(int64_t i)
{
    (void)i;
    return NULL;
}

mproc_value * mproc_float(double d)
{
    (void)d;
    return NULL;
}

mproc_value * mproc_str(const char *s)
{
    (void)s;
    return NULL;
}

mproc_value * mproc_strn(const char *s, size_t n)
{
    (void)s;
    (void)n;
    return NULL;
}

mproc_value * mproc_bytes(const void *p, size_t n)
{
    (void)p;
    (void)n;
    return NULL;
}

mproc_value * mproc_list_new(void)
{
    return NULL;
}

mproc_value * mproc_list_from(mproc_value *const *items, size_t n)
{
    (void)items;
    (void)n;
    return NULL;
}

int mproc_list_append(mproc_value *list, mproc_value *item)
{
    (void)list;
    (void)item;
    return MPROC_ENOSYS;
}

mproc_value * mproc_value_conn(mproc_conn *c)
{
    (void)c;
    return NULL;
}

mproc_value * mproc_value_queue(mproc_queue *q)
{
    (void)q;
    return NULL;
}

mproc_value * mproc_value_lock(mproc_lock *l)
{
    (void)l;
    return NULL;
}

mproc_value * mproc_value_rlock(mproc_rlock *l)
{
    (void)l;
    return NULL;
}

mproc_value * mproc_value_sem(mproc_sem *s)
{
    (void)s;
    return NULL;
}

mproc_value * mproc_value_event(mproc_event *e)
{
    (void)e;
    return NULL;
}

mproc_value * mproc_value_cond(mproc_cond *c)
{
    (void)c;
    return NULL;
}

mproc_value * mproc_value_barrier(mproc_barrier *b)
{
    (void)b;
    return NULL;
}

mproc_value * mproc_value_shm(mproc_shm *m)
{
    (void)m;
    return NULL;
}

void mproc_value_free(mproc_value *v)
{
    (void)v;
}

mproc_value * mproc_value_copy(const mproc_value *v)
{
    (void)v;
    return NULL;
}

bool mproc_value_equal(const mproc_value *a, const mproc_value *b)
{
    (void)a;
    (void)b;
    return false;
}

int mproc_value_type(const mproc_value *v)
{
    (void)v;
    return MPROC_ENOSYS;
}

int mproc_value_get_bool(const mproc_value *v, bool *out)
{
    (void)v;
    (void)out;
    return MPROC_ENOSYS;
}

int mproc_value_get_int(const mproc_value *v, int64_t *out)
{
    (void)v;
    (void)out;
    return MPROC_ENOSYS;
}

int mproc_value_get_float(const mproc_value *v, double *out)
{
    (void)v;
    (void)out;
    return MPROC_ENOSYS;
}

int mproc_value_get_str(const mproc_value *v, const char **s, size_t *len)
{
    (void)v;
    (void)s;
    (void)len;
    return MPROC_ENOSYS;
}

int mproc_value_get_bytes(const mproc_value *v, const void **p, size_t *len)
{
    (void)v;
    (void)p;
    (void)len;
    return MPROC_ENOSYS;
}

int64_t mproc_list_size(const mproc_value *list)
{
    (void)list;
    return MPROC_ENOSYS;
}

mproc_value * mproc_list_get(const mproc_value *list, size_t i)
{
    (void)list;
    (void)i;
    return NULL;
}

int mproc_value_get_conn(const mproc_value *v, mproc_conn **out)
{
    (void)v;
    (void)out;
    return MPROC_ENOSYS;
}

int mproc_value_get_queue(const mproc_value *v, mproc_queue **out)
{
    (void)v;
    (void)out;
    return MPROC_ENOSYS;
}

int mproc_value_get_lock(const mproc_value *v, mproc_lock **out)
{
    (void)v;
    (void)out;
    return MPROC_ENOSYS;
}

int mproc_value_get_rlock(const mproc_value *v, mproc_rlock **out)
{
    (void)v;
    (void)out;
    return MPROC_ENOSYS;
}

int mproc_value_get_sem(const mproc_value *v, mproc_sem **out)
{
    (void)v;
    (void)out;
    return MPROC_ENOSYS;
}

int mproc_value_get_event(const mproc_value *v, mproc_event **out)
{
    (void)v;
    (void)out;
    return MPROC_ENOSYS;
}

int mproc_value_get_cond(const mproc_value *v, mproc_cond **out)
{
    (void)v;
    (void)out;
    return MPROC_ENOSYS;
}

int mproc_value_get_barrier(const mproc_value *v, mproc_barrier **out)
{
    (void)v;
    (void)out;
    return MPROC_ENOSYS;
}

int mproc_value_get_shm(const mproc_value *v, mproc_shm **out)
{
    (void)v;
    (void)out;
    return MPROC_ENOSYS;
}

int64_t mproc_value_repr(const mproc_value *v, char *buf, size_t cap)
{
    (void)v;
    (void)buf;
    (void)cap;
    return MPROC_ENOSYS;
}

void mproc_free(void *p)
{
    (void)p;
}
