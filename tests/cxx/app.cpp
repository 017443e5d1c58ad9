// K06/K07: a C++ program against include/mproc.h and mproc_transport.h. It
// compiles with -pedantic-errors in C++11, 17 and 20 (K06,
// tests/cxx/syntax.cmake), and run (K07) it starts a child with MPROC_LIST
// arguments, which the child checks, under the start method of
// MPROC_START_METHOD.
#include <mproc.h>
#include <mproc_transport.h>

#include <cstdio>
#include <cstring>

namespace
{

int worker(const mproc_value *args)
{
    int64_t n = 0;
    const char *s = nullptr;
    size_t len = 0;
    if (mproc_value_get_int(mproc_list_get(args, 0), &n) != 0 || n != 42)
        return 10;
    if (mproc_value_get_str(mproc_list_get(args, 1), &s, &len) != 0 ||
        len != 5 || std::memcmp(s, "hello", 5) != 0)
        return 11;
    return 7;
}

} // namespace

int main(int argc, char **argv)
{
    mproc_process *p = nullptr;
    int code = -1;
    int rc = mproc_init(argc, argv);
    if (rc != 0) {
        std::printf("cxx: mproc_init: %s\n", mproc_strerror(rc));
        return 1;
    }
    rc = mproc_process_create(&p, worker,
                              MPROC_LIST(mproc_int(42), mproc_str("hello")));
    if (rc == 0)
        rc = mproc_process_start(p);
    if (rc == 0)
        rc = mproc_process_join(p, MPROC_FOREVER);
    if (rc == 0)
        rc = mproc_process_exitcode(p, &code);
    p = mproc_process_destroy(p);
    if (rc != 0 || code != 7) {
        std::printf("cxx: failed: %s, exit code %d\n", mproc_strerror(rc),
                    code);
        return 1;
    }
    std::printf("cxx: ok\n");
    return 0;
}
