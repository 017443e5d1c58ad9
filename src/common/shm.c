/*
 * Shared memory objects: an anonymous segment of the backend (no name
 * anywhere, gone with the last process that maps it), or a named one
 * (create, attach, unlink), mapped in every process it is passed to.
 *
 * The export is the segment handle plus its size (and, for a named block,
 * its mapping length and name); the child maps the same pages, so a write
 * in one process is seen by all.
 *
 * Map: the object; anonymous blocks; names; named blocks; export/import.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

struct mproc_shm {
    void *p;
    size_t size; /* what the caller asked for */
    size_t map;  /* the mapping's length: size, or a named segment's */
    mproc__handle h;
    bool named;
    char name[MPROC_SHM_NAME_MAX + 1];
};

#define SHM_BLOB_MAGIC 0x6d70736du /* "mpsm" */
#define SHM_BLOB_NAMED 0x6e70736du /* "mpsn" */

/* ---------------------------------------------------------------------------
 * Anonymous blocks
 */

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
    m->map = size;
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
        mproc__os_shm_unmap(m->p, m->map);
        mproc__os_handle_close(m->h);
        free(m);
    }
    return NULL;
}

/* ---------------------------------------------------------------------------
 * Names
 */

/* The portable name set: what shm_open, macOS's 31-character limit and
 * Windows' object namespace (no backslash) all take alike. */
static bool name_ok(const char *name)
{
    size_t n;
    /* "mproc..." is the library's own: on POSIX systems without anonymous
     * segments, names of that form whose creator has ended are swept
     * (src/posix/shm.c), and a user's block must never be one of them. */
    if (name == NULL || name[0] == '.' || strncmp(name, "mproc", 5) == 0)
        return false;
    for (n = 0; name[n] != '\0'; n++) {
        char c = name[n];
        if (n >= MPROC_SHM_NAME_MAX)
            return false;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return false;
    }
    return n > 0;
}

/* "mp-" and 24 characters of base 32 from 15 random bytes (120 bits). */
#define GEN_PREFIX "mp-"
#define GEN_CHARS 24

static int gen_name(char *out)
{
    static const char digits[] = "abcdefghijklmnopqrstuvwxyz234567";
    unsigned char r[15];
    size_t i, bit;
    int rc = mproc__os_random(r, sizeof r);
    if (rc < 0)
        return rc;
    memcpy(out, GEN_PREFIX, sizeof GEN_PREFIX - 1);
    for (i = 0, bit = 0; i < GEN_CHARS; i++, bit += 5) {
        unsigned v = (unsigned)r[bit / 8] << 8;
        if (bit / 8 + 1 < sizeof r)
            v |= r[bit / 8 + 1];
        out[sizeof GEN_PREFIX - 1 + i] = digits[(v >> (11 - bit % 8)) & 31];
    }
    out[sizeof GEN_PREFIX - 1 + GEN_CHARS] = '\0';
    return 0;
}

/* ---------------------------------------------------------------------------
 * Named blocks
 */

static mproc_shm *named_new(const char *name)
{
    mproc_shm *m = (mproc_shm *)calloc(1, sizeof *m);
    if (m != NULL) {
        m->named = true;
        m->h = MPROC__BADHANDLE;
        memcpy(m->name, name, strlen(name) + 1);
    }
    return m;
}

int mproc_shm_create_named(mproc_shm **out, const char *name, size_t size)
{
    char gen[MPROC_SHM_NAME_MAX + 1];
    mproc_shm *m;
    int rc, attempt;
    if (out == NULL)
        return MPROC_EINVAL;
    *out = NULL;
    if (size == 0 || (name != NULL && !name_ok(name)))
        return MPROC_EINVAL;
#if SIZE_MAX > INT64_MAX
    if ((uint64_t)size > (uint64_t)INT64_MAX)
        return MPROC_ENOMEM;
#endif
    if (mproc__shm_map_len(size, mproc__os_page_size()) == 0)
        return MPROC_ENOMEM;
    /* A generated name that exists already was someone else's guess or
     * ours by chance: another draw. */
    for (attempt = 0;; attempt++) {
        if (name == NULL) {
            rc = gen_name(gen);
            if (rc < 0)
                return rc;
        }
        m = named_new(name != NULL ? name : gen);
        if (m == NULL)
            return MPROC_ENOMEM;
        rc = mproc__os_shm_create_named(m->name, size, &m->h, &m->p, &m->map);
        if (rc == 0)
            break;
        free(m);
        if (rc != MPROC_EEXIST || name != NULL || attempt >= 8)
            return rc;
    }
    m->size = size;
    *out = m;
    return 0;
}

int mproc_shm_attach(mproc_shm **out, const char *name)
{
    mproc_shm *m;
    int rc;
    if (out == NULL)
        return MPROC_EINVAL;
    *out = NULL;
    if (!name_ok(name))
        return MPROC_EINVAL;
    m = named_new(name);
    if (m == NULL)
        return MPROC_ENOMEM;
    rc = mproc__os_shm_attach_named(name, &m->h, &m->p, &m->size, &m->map);
    if (rc < 0) {
        free(m);
        return rc;
    }
    *out = m;
    return 0;
}

int mproc_shm_unlink(mproc_shm *m)
{
    if (m == NULL)
        return MPROC_EINVAL;
    if (!m->named)
        return MPROC_ESTATE;
    return mproc__os_shm_unlink_named(m->name, m->h, m->p, m->map);
}

const char *mproc_shm_name(const mproc_shm *m)
{
    return m != NULL && m->named ? m->name : NULL;
}

/* ---------------------------------------------------------------------------
 * Export and import
 *
 * Blob: u32 magic, u64 size; a named block adds u64 mapping length, u8
 * name length and the name.
 */

int mproc__shm_export(mproc_shm *m, mproc__export *ex)
{
    uint32_t magic;
    uint64_t size, map;
    size_t n;
    if (m == NULL || ex == NULL)
        return MPROC_EINVAL;
    magic = m->named ? SHM_BLOB_NAMED : SHM_BLOB_MAGIC;
    size = (uint64_t)m->size;
    ex->h[0] = m->h;
    ex->nh = 1;
    memcpy(ex->blob, &magic, 4);
    memcpy(ex->blob + 4, &size, 8);
    ex->nblob = 12;
    if (m->named) {
        map = (uint64_t)m->map;
        n = strlen(m->name);
        memcpy(ex->blob + 12, &map, 8);
        ex->blob[20] = (uint8_t)n;
        memcpy(ex->blob + 21, m->name, n);
        ex->nblob = 21 + (uint32_t)n;
    }
    return 0;
}

int mproc__shm_import(const mproc__export *ex, mproc_shm **out)
{
    mproc_shm *m;
    uint32_t magic;
    uint64_t size, map;
    char name[MPROC_SHM_NAME_MAX + 1];
    bool named;
    int rc;
    if (ex == NULL || out == NULL)
        return MPROC_EINVAL;
    if (ex->nh != 1 || ex->nblob < 12)
        return MPROC_EBADMSG;
    memcpy(&magic, ex->blob, 4);
    memcpy(&size, ex->blob + 4, 8);
    named = magic == SHM_BLOB_NAMED;
    map = size;
    if ((magic != SHM_BLOB_MAGIC && !named) || size == 0 ||
        size > (uint64_t)SIZE_MAX || (!named && ex->nblob != 12))
        return MPROC_EBADMSG;
    if (named) {
        size_t n;
        if (ex->nblob < 21)
            return MPROC_EBADMSG;
        memcpy(&map, ex->blob + 12, 8);
        n = ex->blob[20];
        if (n > MPROC_SHM_NAME_MAX || ex->nblob != 21 + n)
            return MPROC_EBADMSG;
        memcpy(name, ex->blob + 21, n);
        name[n] = '\0';
        /* The length must be the one a segment of that size has. */
        if (!name_ok(name) || map > (uint64_t)SIZE_MAX ||
            mproc__shm_map_len((size_t)size, mproc__os_page_size()) !=
                (size_t)map)
            return MPROC_EBADMSG;
        m = named_new(name);
    } else {
        m = (mproc_shm *)calloc(1, sizeof *m);
    }
    if (m == NULL)
        return MPROC_ENOMEM;
    /* The backend refuses a mapping longer than the segment (which would
     * fault on first touch): a lying size is a bad message. */
    rc = mproc__os_shm_map(ex->h[0], (size_t)map, &m->p);
    if (rc < 0) {
        free(m);
        return rc == MPROC_EINVAL ? MPROC_EBADMSG : rc;
    }
    m->h = ex->h[0];
    m->size = (size_t)size;
    m->map = (size_t)map;
    *out = m;
    return 0;
}
