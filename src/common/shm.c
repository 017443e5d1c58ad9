/*
 * Shared memory objects: an anonymous segment of the backend (no name
 * anywhere, gone with the last process that maps it), mapped in every
 * process it is passed to.
 *
 * The export is the segment handle plus its size; the child maps the same
 * pages, so a write in one process is seen by all.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

struct mproc_shm {
    void *p;
    size_t size;
    mproc__handle h;
};

#define SHM_BLOB_MAGIC 0x6d70736du /* "mpsm" */

int mproc_shm_create(mproc_shm **out, size_t size)
{
    mproc_shm *m;
    int rc;
    if (out == NULL)
        return MPROC_EINVAL;
    *out = NULL;
    if (size == 0)
        return MPROC_EINVAL;
        /* The size travels to children as 64 bits and must fit an off_t (a
         * 32-bit size_t always does). */
#if SIZE_MAX > INT64_MAX
    if (size > (size_t)INT64_MAX)
        return MPROC_ENOMEM;
#endif
    m = (mproc_shm *)calloc(1, sizeof *m);
    if (m == NULL)
        return MPROC_ENOMEM;
    rc = mproc__os_shm_create(size, &m->h, &m->p);
    if (rc < 0) {
        free(m);
        return rc;
    }
    m->size = size;
    *out = m;
    return 0;
}

void *mproc_shm_ptr(const mproc_shm *m)
{
    return m == NULL ? NULL : m->p;
}

size_t mproc_shm_size(const mproc_shm *m)
{
    return m == NULL ? 0 : m->size;
}

mproc_shm *mproc_shm_destroy(mproc_shm *m)
{
    if (m != NULL) {
        mproc__os_shm_unmap(m->p, m->size);
        mproc__os_handle_close(m->h);
        free(m);
    }
    return NULL;
}

int mproc__shm_export(mproc_shm *m, mproc__export *ex)
{
    uint32_t magic = SHM_BLOB_MAGIC;
    uint64_t size;
    if (m == NULL || ex == NULL)
        return MPROC_EINVAL;
    size = (uint64_t)m->size;
    ex->h[0] = m->h;
    ex->nh = 1;
    memcpy(ex->blob, &magic, 4);
    memcpy(ex->blob + 4, &size, 8);
    ex->nblob = 12;
    return 0;
}

int mproc__shm_import(const mproc__export *ex, mproc_shm **out)
{
    mproc_shm *m;
    uint32_t magic;
    uint64_t size;
    int rc;
    if (ex == NULL || out == NULL)
        return MPROC_EINVAL;
    if (ex->nh != 1 || ex->nblob != 12)
        return MPROC_EBADMSG;
    memcpy(&magic, ex->blob, 4);
    memcpy(&size, ex->blob + 4, 8);
    if (magic != SHM_BLOB_MAGIC || size == 0 || size > (uint64_t)SIZE_MAX)
        return MPROC_EBADMSG;
    m = (mproc_shm *)calloc(1, sizeof *m);
    if (m == NULL)
        return MPROC_ENOMEM;
    /* The backend refuses a mapping longer than the segment (which would
     * fault on first touch): a lying size is a bad message. */
    rc = mproc__os_shm_map(ex->h[0], (size_t)size, &m->p);
    if (rc < 0) {
        free(m);
        return rc == MPROC_EINVAL ? MPROC_EBADMSG : rc;
    }
    m->h = ex->h[0];
    m->size = (size_t)size;
    *out = m;
    return 0;
}
