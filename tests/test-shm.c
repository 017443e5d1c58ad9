/*
 * Tests of named shared memory: rows N01-N06 of CONFORMANCE.md.
 *
 * Names are made unique per test process (pid plus a tag), or generated,
 * so that runs in parallel never meet; every test unlinks what it made.
 * Children get the name as a string and attach by it, as a program that
 * does not share a parent would.
 *
 * Map: helpers; N01 (create, attach, size, bad input); N02 (missing and
 * unlinked names); N03 (attachers that end); N04 (other users, generated
 * names); N05 (a child by name); N06 (zero-filled).
 */
#include "harness.h"

#include "../src/common/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(_WIN32)
#include <aclapi.h>
#include <windows.h>
#else
#include <fcntl.h>
#include <grp.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#endif

/* ---------------------------------------------------------------------------
 * Helpers
 */

/* A string with its NUL into a block. */
static void put_str(void *dst, const char *s)
{
    memcpy(dst, s, strlen(s) + 1);
}

/* A name no other test process uses: "t<pid>-<tag>". */
static const char *tname(const char *tag)
{
    static char buf[4][MPROC_SHM_NAME_MAX + 1];
    static int next;
    char *b = buf[next++ % 4];
    snprintf(b, MPROC_SHM_NAME_MAX + 1, "t%lld-%s",
             (long long)mproc_process_pid(mproc_current_process()), tag);
    return b;
}

static mproc_shm *create_named(const char *name, size_t size)
{
    mproc_shm *m = NULL;
    ASSERT_OK(mproc_shm_create_named(&m, name, size));
    ASSERT_NOT_NULL(m);
    return m;
}

static mproc_shm *attach(const char *name)
{
    mproc_shm *m = NULL;
    ASSERT_OK(mproc_shm_attach(&m, name));
    ASSERT_NOT_NULL(m);
    return m;
}

static bool all_bytes(const mproc_shm *m, unsigned char v)
{
    const unsigned char *p = mproc_shm_ptr(m);
    size_t i, n = mproc_shm_size(m);
    for (i = 0; i < n; i++)
        if (p[i] != v)
            return false;
    return true;
}

/* ---------------------------------------------------------------------------
 * N01: create exclusive, attach by name, the real size
 */

TEST(N01_create_exclusive_attach_real_size)
{
    const char *name = tname("n01");
    mproc_shm *m, *again = NULL, *a;
    char longest[MPROC_SHM_NAME_MAX + 2];

    /* 100 bytes: not a page; attach must say 100, not 4096. */
    m = create_named(name, 100);
    ASSERT_STR_EQ(mproc_shm_name(m), name);
    ASSERT_EQ(mproc_shm_size(m), 100);
    memset(mproc_shm_ptr(m), 0x5a, 100);

    /* Exclusive: the existing block is untouched, its size too. */
    ASSERT_ERR(mproc_shm_create_named(&again, name, 200), MPROC_EEXIST);
    ASSERT_NULL(again);
    ASSERT_ERR(mproc_shm_create_named(&again, name, 100), MPROC_EEXIST);
    a = attach(name);
    ASSERT_EQ(mproc_shm_size(a), 100);
    ASSERT_STR_EQ(mproc_shm_name(a), name);
    ASSERT(all_bytes(a, 0x5a));
    ASSERT(mproc_shm_ptr(a) != mproc_shm_ptr(m));
    /* One block: a write through either mapping shows in the other. */
    ((volatile unsigned char *)mproc_shm_ptr(a))[99] = 7;
    ASSERT_EQ(((volatile unsigned char *)mproc_shm_ptr(m))[99], 7);
    a = mproc_shm_destroy(a);
    ASSERT_NULL(a);

    /* Sizes that are whole pages, and large ones, are exact too. */
    {
        static const size_t sizes[] = {1, 4096, 65536 + 3, 3u << 20};
        size_t i;
        for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            const char *n2 = tname("n01s");
            mproc_shm *b = create_named(n2, sizes[i]), *c = attach(n2);
            ASSERT_EQ(mproc_shm_size(c), sizes[i]);
            ((unsigned char *)mproc_shm_ptr(b))[sizes[i] - 1] = 9;
            ASSERT_EQ(((unsigned char *)mproc_shm_ptr(c))[sizes[i] - 1], 9);
            ASSERT_OK(mproc_shm_unlink(b));
            mproc_shm_destroy(c);
            mproc_shm_destroy(b);
        }
    }

    /* Bad input. */
    ASSERT_ERR(mproc_shm_create_named(NULL, name, 10), MPROC_EINVAL);
    ASSERT_ERR(mproc_shm_create_named(&again, tname("zero"), 0), MPROC_EINVAL);
    ASSERT_ERR(mproc_shm_create_named(&again, "", 10), MPROC_EINVAL);
    ASSERT_ERR(mproc_shm_create_named(&again, "a/b", 10), MPROC_EINVAL);
    ASSERT_ERR(mproc_shm_create_named(&again, "a\\b", 10), MPROC_EINVAL);
    ASSERT_ERR(mproc_shm_create_named(&again, ".hidden", 10), MPROC_EINVAL);
    ASSERT_ERR(mproc_shm_create_named(&again, "sp ace", 10), MPROC_EINVAL);
    /* The library's own prefix: its leftover-name sweep must never meet a
     * user's block (src/posix/shm.c). */
    ASSERT_ERR(mproc_shm_create_named(&again, "mproc1.2.abc", 10),
               MPROC_EINVAL);
    ASSERT_ERR(mproc_shm_attach(&again, "mproc1.2.abc"), MPROC_EINVAL);
    memset(longest, 'x', sizeof longest);
    longest[MPROC_SHM_NAME_MAX + 1] = '\0'; /* one too long */
    ASSERT_ERR(mproc_shm_create_named(&again, longest, 10), MPROC_EINVAL);
    ASSERT_ERR(mproc_shm_attach(&again, longest), MPROC_EINVAL);
    ASSERT_NULL(again);
    ASSERT_ERR(mproc_shm_create_named(&again, tname("huge"), SIZE_MAX),
               MPROC_ENOMEM);
    ASSERT_ERR(mproc_shm_attach(NULL, name), MPROC_EINVAL);
    ASSERT_ERR(mproc_shm_attach(&again, NULL), MPROC_EINVAL);
    ASSERT_ERR(mproc_shm_unlink(NULL), MPROC_EINVAL);
    ASSERT_NULL(mproc_shm_name(NULL));
    {
        /* An anonymous block has no name to unlink. */
        mproc_shm *anon = NULL;
        ASSERT_OK(mproc_shm_create(&anon, 10));
        ASSERT_NULL(mproc_shm_name(anon));
        ASSERT_ERR(mproc_shm_unlink(anon), MPROC_ESTATE);
        mproc_shm_destroy(anon);
    }
    /* The longest name works. */
    {
        char ok[MPROC_SHM_NAME_MAX + 1];
        mproc_shm *b;
        snprintf(ok, sizeof ok, "%s", tname("n01longest-xxxxxxxxxxxxxxxxxx"));
        ASSERT_EQ(strlen(ok), MPROC_SHM_NAME_MAX);
        b = create_named(ok, 10);
        ASSERT_OK(mproc_shm_unlink(b));
        mproc_shm_destroy(b);
    }

    ASSERT_OK(mproc_shm_unlink(m));
    mproc_shm_destroy(m);
    return 0;
}

/* ---------------------------------------------------------------------------
 * N02: missing and unlinked names
 */

TEST(N02_missing_or_unlinked_is_enoent)
{
    const char *name = tname("n02");
    mproc_shm *m, *a, *b = NULL;

    ASSERT_ERR(mproc_shm_attach(&b, name), MPROC_ENOENT);
    ASSERT_NULL(b);
    m = create_named(name, 64);
    a = attach(name);
    put_str(mproc_shm_ptr(m), "still mapped");
    ASSERT_OK(mproc_shm_unlink(m));
    ASSERT_ERR(mproc_shm_attach(&b, name), MPROC_ENOENT);
    /* Twice, by the same object or by another that has the block. */
    ASSERT_ERR(mproc_shm_unlink(m), MPROC_ENOENT);
    ASSERT_ERR(mproc_shm_unlink(a), MPROC_ENOENT);
    /* The mappings stay. */
    ASSERT_STR_EQ((const char *)mproc_shm_ptr(a), "still mapped");

    /* A new block under the name is not the old one's to unlink. */
    b = create_named(name, 64);
    ASSERT(all_bytes(b, 0));
    ASSERT_ERR(mproc_shm_unlink(m), MPROC_ENOENT);
    ASSERT_ERR(mproc_shm_unlink(a), MPROC_ENOENT);
    mproc_shm_destroy(a);
    a = attach(name);
    ASSERT(all_bytes(a, 0));
    a = mproc_shm_destroy(a);
    /* An attacher may unlink (as in Python). */
    a = attach(name);
    ASSERT_OK(mproc_shm_unlink(a));
    ASSERT_ERR(mproc_shm_unlink(b), MPROC_ENOENT);
    mproc_shm_destroy(a);
    ASSERT_ERR(mproc_shm_attach(&a, name), MPROC_ENOENT);
    ASSERT_NULL(a);
    mproc_shm_destroy(b);
    mproc_shm_destroy(m);
    return 0;
}

/* ---------------------------------------------------------------------------
 * N03: an attacher that exits or is killed never destroys the block
 */

/* Attaches the name (argument 0), checks the creator's byte, writes its
 * own (argument 2) at offset 1, sets the event (argument 1); then returns
 * or, with argument 3 true, waits to be killed. */
static int t_n03_attacher(const mproc_value *args)
{
    const char *name = NULL;
    size_t n = 0;
    mproc_shm *m = NULL;
    mproc_event *ready = NULL;
    bool wait = false;
    volatile unsigned char *p;
    int i;
    CHILD_CHECK(mproc_value_get_str(mproc_list_get(args, 0), &name, &n) == 0,
                2);
    CHILD_CHECK(mproc_value_get_event(mproc_list_get(args, 1), &ready) == 0, 3);
    CHILD_CHECK(mproc_value_get_bool(mproc_list_get(args, 3), &wait) == 0, 4);
    CHILD_CHECK(mproc_shm_attach(&m, name) == 0, 5);
    CHILD_CHECK(mproc_shm_size(m) == 1000, 6);
    p = mproc_shm_ptr(m);
    CHILD_CHECK(p[0] == 0x11, 7);
    p[1] = (unsigned char)th_arg_int(args, 2);
    CHILD_CHECK(mproc_event_set(ready) == 0, 8);
    if (wait)
        for (i = 0; i < 6000; i++)
            th_sleep_ms(10);
    mproc_shm_destroy(m);
    return 0;
}

TEST(N03_attacher_that_ends_keeps_block)
{
    const char *name = tname("n03");
    mproc_shm *m = create_named(name, 1000), *a, *b = NULL;
    int round;

    ((unsigned char *)mproc_shm_ptr(m))[0] = 0x11;
    /* Round 0: the attacher returns; round 1: it is killed attached. */
    for (round = 0; round < 2; round++) {
        mproc_event *ready = NULL;
        mproc_process *p;
        int code = 0;
        ASSERT_OK(mproc_event_create(&ready));
        p = th_start(t_n03_attacher,
                     MPROC_LIST(mproc_str(name), mproc_value_event(ready),
                                mproc_int(40 + round), mproc_bool(round == 1)));
        ASSERT_OK(mproc_event_wait(ready, th_ms(20000)));
        if (round == 1)
            ASSERT_OK(mproc_process_kill(p));
        ASSERT_OK(mproc_process_join(p, th_ms(20000)));
        ASSERT_OK(mproc_process_exitcode(p, &code));
        ASSERT_EQ(code, round == 0 ? 0 : -9);
        mproc_process_destroy(p);
        mproc_event_destroy(ready);
        /* The name and the data are there. */
        a = attach(name);
        ASSERT_EQ(mproc_shm_size(a), 1000);
        ASSERT_EQ(((unsigned char *)mproc_shm_ptr(a))[0], 0x11);
        ASSERT_EQ(((unsigned char *)mproc_shm_ptr(a))[1], 40 + round);
        mproc_shm_destroy(a);
        ASSERT_ERR(mproc_shm_create_named(&b, name, 1000), MPROC_EEXIST);
    }
    ASSERT_OK(mproc_shm_unlink(m));
    mproc_shm_destroy(m);
    return 0;
}

/* ---------------------------------------------------------------------------
 * N04: other users; generated names
 */

#if !defined(_WIN32)
/* In a forked probe as user 65534: what attach of `name` returns, as an
 * exit code (the negated MPROC code), plus 100 if shm_open itself opened
 * the segment. */
static int probe_attach_as_nobody(const char *name)
{
    pid_t p = fork();
    int status = 0;
    ASSERT(p >= 0);
    if (p == 0) {
        mproc_shm *m = NULL;
        char path[MPROC_SHM_NAME_MAX + 2];
        int rc, fd;
        if (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0)
            _exit(200);
        rc = mproc_shm_attach(&m, name);
        snprintf(path, sizeof path, "/%s", name);
        fd = shm_open(path, O_RDONLY, 0);
        _exit(-rc + (fd >= 0 ? 100 : 0));
    }
    ASSERT_EQ(waitpid(p, &status, 0), p);
    ASSERT(WIFEXITED(status));
    return WEXITSTATUS(status);
}
#endif

TEST(N04_other_user_cannot_attach)
{
    const char *name = tname("n04");
    mproc_shm *m;
#if !defined(_WIN32)
    /* Mode 0600 whatever the umask, and attach refuses as another user. */
    {
        char path[MPROC_SHM_NAME_MAX + 2];
        struct stat st;
        int fd;
        mode_t old = umask(0);
        mproc_shm *open_one = NULL;
        const char *wide = tname("n04w");
        m = create_named(name, 100);
        umask(old);
        snprintf(path, sizeof path, "/%s", name);
        fd = shm_open(path, O_RDONLY, 0);
        ASSERT(fd >= 0);
        ASSERT_EQ(fstat(fd, &st), 0);
        ASSERT_EQ(st.st_mode & 0777, 0600);
        close(fd);
        ASSERT_EQ(probe_attach_as_nobody(name), -MPROC_EPERM);
        /* A block others may open (not made by mproc, or chmod'ed) is
         * refused: its data could be anyone's. */
        snprintf(path, sizeof path, "/%s", wide);
        fd = shm_open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
        ASSERT(fd >= 0);
        ASSERT_EQ(fchmod(fd, 0644), 0);
        ASSERT_EQ(ftruncate(fd, 4096), 0);
        ASSERT_ERR(mproc_shm_attach(&open_one, wide), MPROC_EPERM);
        close(fd);
        ASSERT_EQ(shm_unlink(path), 0);
    }
#else
    m = create_named(name, 100);
    {
        mproc__export ex;
        ASSERT_OK(mproc__shm_export(m, &ex));
        th_dacl_is_owner_only((intptr_t)ex.h[0]);
    }
#endif
    ASSERT_OK(mproc_shm_unlink(m));
    mproc_shm_destroy(m);
    return 0;
}

/* Sends the names of `n` generated blocks (argument 1) over the pipe end
 * (argument 0), unlinking each. */
static int t_n04_names(const mproc_value *args)
{
    mproc_conn *c = NULL;
    int64_t i, n = th_arg_int(args, 1);
    CHILD_CHECK(mproc_value_get_conn(mproc_list_get(args, 0), &c) == 0, 2);
    for (i = 0; i < n; i++) {
        mproc_shm *m = NULL;
        const char *name;
        CHILD_CHECK(mproc_shm_create_named(&m, NULL, 16) == 0, 3);
        name = mproc_shm_name(m);
        CHILD_CHECK(mproc_conn_send_bytes(c, name, strlen(name)) == 0, 4);
        CHILD_CHECK(mproc_shm_unlink(m) == 0, 5);
        mproc_shm_destroy(m);
    }
    return 0;
}

static bool gen_format(const char *s)
{
    size_t i;
    if (strlen(s) != 27 || strncmp(s, "mp-", 3) != 0)
        return false;
    for (i = 3; i < 27; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '2' && s[i] <= '7')))
            return false;
    return true;
}

#define N04_NAMES 200

TEST(N04_generated_names_unique_and_unpredictable)
{
    static char names[2 * N04_NAMES][32];
    mproc_conn *a, *b;
    mproc_process *p;
    size_t i, j, k = 0, pos;
    unsigned seen[24][32];

    /* The child draws its names after it was started (under fork, from a
     * copy of this process): a generator seeded before would repeat. */
    ASSERT_OK(mproc_pipe(&a, &b, true));
    p = th_start(t_n04_names,
                 MPROC_LIST(mproc_value_conn(b), mproc_int(N04_NAMES)));
    for (i = 0; i < N04_NAMES; i++) {
        mproc_shm *m = NULL;
        ASSERT_OK(mproc_shm_create_named(&m, NULL, 16));
        ASSERT(gen_format(mproc_shm_name(m)));
        snprintf(names[k++], 32, "%s", mproc_shm_name(m));
        ASSERT_OK(mproc_shm_unlink(m));
        mproc_shm_destroy(m);
    }
    for (i = 0; i < N04_NAMES; i++) {
        size_t len = 0;
        ASSERT_OK(mproc_conn_recv_bytes(a, names[k], 31, &len, th_ms(20000)));
        names[k][len] = '\0';
        ASSERT(gen_format(names[k]));
        k++;
    }
    th_join_ok(p, 20000);
    mproc_conn_destroy(a);
    mproc_conn_destroy(b);
    /* Unique, and no position is fixed: every character position takes
     * many values over 400 names (a counter or a pid would not). */
    memset(seen, 0, sizeof seen);
    for (i = 0; i < k; i++) {
        for (j = i + 1; j < k; j++)
            ASSERT(strcmp(names[i], names[j]) != 0);
        for (pos = 0; pos < 24; pos++) {
            char c = names[i][3 + pos];
            seen[pos][c >= 'a' ? c - 'a' : 26 + c - '2'] = 1;
        }
    }
    for (pos = 0; pos < 24; pos++) {
        unsigned n = 0;
        for (j = 0; j < 32; j++)
            n += seen[pos][j];
        ASSERT_GE(n, 24);
    }
    return 0;
}

/* ---------------------------------------------------------------------------
 * N05: a child attaching by name sees the creator's writes, and back
 */

/* Attaches the name (argument 0), checks the creator's text, writes its
 * reply, and checks the block the parent passed as a handle (argument 1)
 * keeps its name there. */
static int t_n05_child(const mproc_value *args)
{
    const char *name = NULL;
    size_t n = 0;
    mproc_shm *m = NULL, *h = NULL;
    CHILD_CHECK(mproc_value_get_str(mproc_list_get(args, 0), &name, &n) == 0,
                2);
    CHILD_CHECK(mproc_shm_attach(&m, name) == 0, 3);
    CHILD_CHECK(mproc_shm_size(m) == 5000, 4);
    CHILD_CHECK(strcmp((const char *)mproc_shm_ptr(m), "from the creator") == 0,
                5);
    put_str((char *)mproc_shm_ptr(m) + 4000, "from the child");
    mproc_shm_destroy(m);
    CHILD_CHECK(mproc_value_get_shm(mproc_list_get(args, 1), &h) == 0, 6);
    CHILD_CHECK(
        mproc_shm_name(h) != NULL && strcmp(mproc_shm_name(h), name) == 0, 7);
    CHILD_CHECK(mproc_shm_size(h) == 5000, 8);
    CHILD_CHECK(
        strcmp((const char *)mproc_shm_ptr(h) + 4000, "from the child") == 0,
        9);
    return 0;
}

TEST(N05_child_attaches_by_name)
{
    const char *name = tname("n05");
    mproc_shm *m = create_named(name, 5000);
    put_str(mproc_shm_ptr(m), "from the creator");
    th_join_ok(
        th_start(t_n05_child, MPROC_LIST(mproc_str(name), mproc_value_shm(m))),
        20000);
    ASSERT_STR_EQ((const char *)mproc_shm_ptr(m) + 4000, "from the child");
    ASSERT_OK(mproc_shm_unlink(m));
    mproc_shm_destroy(m);
    return 0;
}

/* ---------------------------------------------------------------------------
 * N06: a new block is zero-filled, also after create/write/unlink cycles
 */

TEST(N06_new_block_zero_filled)
{
    const char *name = tname("n06");
    mproc_shm *m, *old;
    int i;

    for (i = 0; i < 40; i++) {
        size_t size = 1 + (size_t)i * 997;
        m = create_named(name, size);
        ASSERT(all_bytes(m, 0));
        memset(mproc_shm_ptr(m), 0xa5, size);
        ASSERT_OK(mproc_shm_unlink(m));
        mproc_shm_destroy(m);
    }
    /* A new block while the unlinked one is still mapped: fresh and
     * zeroed, and the old one keeps its bytes. */
    for (i = 0; i < 3; i++) {
        old = create_named(name, 8192);
        memset(mproc_shm_ptr(old), 0xa5, 8192);
        ASSERT_OK(mproc_shm_unlink(old));
        m = create_named(name, 8192);
        ASSERT(all_bytes(m, 0));
        ASSERT(all_bytes(old, 0xa5));
        ASSERT_OK(mproc_shm_unlink(m));
        mproc_shm_destroy(m);
        mproc_shm_destroy(old);
    }
    return 0;
}
