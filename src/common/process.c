/* STUB: generated placeholder, every function returns MPROC_ENOSYS. */
#include "internal.h"

#include <stddef.h>

int mproc_init(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

void mproc_exit(int code)
{
    (void)code;
}

int mproc_set_start_method(mproc_start_method method)
{
    (void)method;
    return MPROC_ENOSYS;
}

mproc_start_method mproc_get_start_method(void)
{
    return MPROC_START_DEFAULT;
}

int mproc_process_create(mproc_process **out, mproc_target target, mproc_value *args)
{
    (void)out;
    (void)target;
    (void)args;
    return MPROC_ENOSYS;
}

int mproc_process_create_run(mproc_process **out, mproc_run run, mproc_value *state)
{
    (void)out;
    (void)run;
    (void)state;
    return MPROC_ENOSYS;
}

int mproc_process_set_name(mproc_process *p, const char *name)
{
    (void)p;
    (void)name;
    return MPROC_ENOSYS;
}

int mproc_process_set_daemon(mproc_process *p, bool daemon)
{
    (void)p;
    (void)daemon;
    return MPROC_ENOSYS;
}

int mproc_process_set_start_method(mproc_process *p, mproc_start_method method)
{
    (void)p;
    (void)method;
    return MPROC_ENOSYS;
}

int mproc_process_start(mproc_process *p)
{
    (void)p;
    return MPROC_ENOSYS;
}

int mproc_process_join(mproc_process *p, int timeout_ms)
{
    (void)p;
    (void)timeout_ms;
    return MPROC_ENOSYS;
}

int mproc_process_is_alive(mproc_process *p)
{
    (void)p;
    return MPROC_ENOSYS;
}

int mproc_process_terminate(mproc_process *p)
{
    (void)p;
    return MPROC_ENOSYS;
}

int mproc_process_kill(mproc_process *p)
{
    (void)p;
    return MPROC_ENOSYS;
}

int mproc_process_close(mproc_process *p)
{
    (void)p;
    return MPROC_ENOSYS;
}

mproc_process * mproc_process_destroy(mproc_process *p)
{
    (void)p;
    return NULL;
}

int64_t mproc_process_pid(const mproc_process *p)
{
    (void)p;
    return MPROC_ENOSYS;
}

int mproc_process_exitcode(mproc_process *p, int *code)
{
    (void)p;
    (void)code;
    return MPROC_ENOSYS;
}

const char * mproc_process_name(const mproc_process *p)
{
    (void)p;
    return NULL;
}

int mproc_process_daemon(const mproc_process *p)
{
    (void)p;
    return MPROC_ENOSYS;
}

mproc_value * mproc_process_state(const mproc_process *p)
{
    (void)p;
    return NULL;
}

mproc_process * mproc_current_process(void)
{
    return NULL;
}

mproc_process * mproc_parent_process(void)
{
    return NULL;
}

int mproc_active_children(mproc_process **out, size_t cap)
{
    (void)out;
    (void)cap;
    return MPROC_ENOSYS;
}

int mproc_cpu_count(void)
{
    return MPROC_ENOSYS;
}

int mproc_cpu_count_usable(void)
{
    return MPROC_ENOSYS;
}

int mproc__process_wait_handle(mproc_process *p, mproc__handle *h, bool *ready_now)
{
    (void)p;
    (void)h;
    (void)ready_now;
    return MPROC_ENOSYS;
}
