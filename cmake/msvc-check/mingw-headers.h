/* Included first (-include) by scripts/msvc-check.sh: lets clang in MSVC
 * mode (--target=x86_64-pc-windows-msvc) read the mingw-w64 headers, which
 * put attributes after declarators, a place MSVC's __declspec cannot go.
 * Only the headers' attribute spellings change here; the project's code is
 * compiled as MSVC would see it (_MSC_VER set, no __GNUC__). */
#include <_mingw.h>
#undef __MINGW_ATTRIB_NORETURN
#define __MINGW_ATTRIB_NORETURN
#undef __MINGW_ATTRIB_DEPRECATED
#define __MINGW_ATTRIB_DEPRECATED
/* _mingw.h defines __attribute__ away for compilers other than GCC, which
 * would break clang's own intrinsic headers that windows.h pulls in. */
#undef __attribute__
/* MSVC's winnt.h declares this intrinsic (through its intrin.h); the
 * mingw-w64 headers leave it to GCC's builtins in MSVC mode. */
long long _InterlockedExchange64(long long volatile *target, long long value);
