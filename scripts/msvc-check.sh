#!/usr/bin/env bash
# MSVC readiness, without MSVC: compiles src/common and src/win32 with clang
# in MSVC mode (--target=x86_64-pc-windows-msvc: _MSC_VER set, no __GNUC__)
# against the mingw-w64 headers, -fsyntax-only, with the project's strict
# warnings as errors; then checks that no GCC-only construct survives the
# preprocessor in the project's own lines (attributes, builtins, __atomic,
# statement expressions, typeof): such code must sit behind a compiler
# guard with an MSVC branch.
#
#   scripts/msvc-check.sh          (exit 1 on any finding)
#
# What it cannot tell: MSVC's own diagnostics, its C11 conformance
# (/std:c11 /experimental:c11atomics, which CMake passes), linking, running.
# docs/platforms.md says what this covers.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root" || exit 1

mingw_inc=/usr/x86_64-w64-mingw32/include
if ! command -v clang >/dev/null 2>&1 || [ ! -f "$mingw_inc/windows.h" ]; then
    echo "msvc-check: needs clang and the mingw-w64 headers (scripts/deps.sh test)" >&2
    echo "msvc-check: 0 passed, 1 failed"
    exit 1
fi

# The same definitions as the library's Windows build (CMakeLists.txt).
flags=(--target=x86_64-pc-windows-msvc -std=c11
    -Wall -Wextra -Wpedantic -Wconversion -Wsign-conversion
    -Wstrict-prototypes -Wmissing-prototypes -Wshadow -Wformat=2 -Wundef
    -Wcast-qual -Wvla -Werror
    -isystem "$mingw_inc" -include cmake/msvc-check/mingw-headers.h
    -Iinclude -Isrc/common
    -DMPROC_BUILDING -DWIN32_LEAN_AND_MEAN -D_WIN32_WINNT=0x0A00
    -DUNICODE -D_UNICODE)

# The sources of the Windows library, as CMakeLists.txt lists them.
mapfile -t files < <(sed -n '/^set(MPROC_COMMON_SOURCES/,/^)/p; /^  set(MPROC_BACKEND_SOURCES/,/^  )/p' CMakeLists.txt |
    grep -oE 'src/(common|win32)/[a-z0-9_-]+\.c' | sort -u)

passed=0
failed=0
for f in "${files[@]}"; do
    if ! out=$(clang "${flags[@]}" -fsyntax-only "$f" 2>&1) || [ -n "$out" ]; then
        echo "FAIL $f (clang, MSVC mode)"
        echo "$out"
        failed=$((failed + 1))
        continue
    fi
    # The preprocessed text of the project's own files only (line markers
    # name the file each line comes from).
    gcc_only=$(clang "${flags[@]}" -E "$f" 2>/dev/null | awk -v root="$root" '
        /^# [0-9]+ "/ { file = $3; gsub(/"/, "", file); next }
        file ~ "^(" root "/)?(src|include)/" { print file ": " $0 }' |
        grep -E '__attribute__|__builtin_|__atomic_|__sync_|__typeof__|\btypeof\b|__extension__|\(\{|__asm__' |
        # What standard macros (offsetof, va_start) expand to is the
        # compiler's own business.
        grep -vE '^[^:]*: .*__builtin_(offsetof|va_[a-z]+)' |
        grep -E '__attribute__|__builtin_|__atomic_|__sync_|__typeof__|\btypeof\b|__extension__|\(\{|__asm__' || true)
    if [ -n "$gcc_only" ]; then
        echo "FAIL $f (GCC-only construct outside a compiler guard)"
        echo "$gcc_only"
        failed=$((failed + 1))
        continue
    fi
    echo "ok   $f"
    passed=$((passed + 1))
done
echo "msvc-check: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
