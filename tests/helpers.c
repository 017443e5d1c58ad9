/*
 * Helpers the test files share: starting and joining children, and reading
 * a child's integer arguments (declared in harness.h).
 */
#include "harness.h"

#if defined(_WIN32)
#include <aclapi.h>
#include <windows.h>
#endif

mproc_process *th_start(mproc_target fn, mproc_value *args)
{
    mproc_process *p = NULL;
    ASSERT_OK(mproc_process_create(&p, fn, args));
    ASSERT_NOT_NULL(p);
    ASSERT_OK(mproc_process_start(p));
    return p;
}

int th_join_code(mproc_process *p, int ms)
{
    int code = -1000;
    ASSERT_OK(mproc_process_join(p, th_ms(ms)));
    ASSERT_OK(mproc_process_exitcode(p, &code));
    (void)mproc_process_destroy(p);
    return code;
}

void th_join_ok(mproc_process *p, int ms)
{
    ASSERT_EQ(th_join_code(p, ms), 0);
}

int64_t th_arg_int(const mproc_value *args, size_t i)
{
    int64_t v = -1;
    if (mproc_value_get_int(mproc_list_get(args, i), &v) != 0)
        return -1;
    return v;
}

int64_t th_arg_int_ok(const mproc_value *args, size_t i)
{
    int64_t v = 0;
    ASSERT_OK(mproc_value_get_int(mproc_list_get(args, i), &v));
    return v;
}

int th_pool_create(mproc_pool **out, const mproc_pool_options *opt)
{
    return mproc_pool_create(out, opt);
}

#if defined(_WIN32)
void th_dacl_is_owner_only(intptr_t h)
{
    PACL dacl = NULL;
    PSECURITY_DESCRIPTOR sd = NULL;
    union {
        TOKEN_USER user;
        unsigned char space[sizeof(TOKEN_USER) + SECURITY_MAX_SID_SIZE];
    } tu;
    HANDLE token;
    DWORD len = 0, i;

    ASSERT(OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &token));
    ASSERT(GetTokenInformation(token, TokenUser, &tu, sizeof tu, &len));
    CloseHandle(token);
    ASSERT_EQ(GetSecurityInfo((HANDLE)h, SE_KERNEL_OBJECT,
                              DACL_SECURITY_INFORMATION, NULL, NULL, &dacl,
                              NULL, &sd),
              ERROR_SUCCESS);
    ASSERT_NOT_NULL(dacl);
    ASSERT_GT(dacl->AceCount, 0);
    for (i = 0; i < dacl->AceCount; i++) {
        ACCESS_ALLOWED_ACE *ace = NULL;
        ASSERT(GetAce(dacl, i, (void **)&ace));
        if (ace->Header.AceType != ACCESS_ALLOWED_ACE_TYPE)
            continue;
        ASSERT(EqualSid((PSID)&ace->SidStart, tu.user.User.Sid));
    }
    LocalFree(sd);
}
#endif
