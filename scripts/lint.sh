#!/usr/bin/env bash
# Static analysis: clang-tidy (checks in .clang-tidy) and cppcheck, over
# every project source the clang build (POSIX backend) and the mingw cross
# build (Win32 backend) compile, using their compile_commands.json.
#
#   scripts/lint.sh [tidy|cppcheck|format]...     default: all three
#
# format: every C and C++ file of the tree is as clang-format (the repo's
# .clang-format) would write it.
#
# Exits 1 when either tool reports something; scripts/test.sh runs it as its
# lint stage, so CI does. Needs the packages clang-tidy and cppcheck (the
# `test` set of scripts/deps.sh installs them, and what the two builds'
# configure step needs).
# Silence a deliberate finding in the code, with the reason beside it:
# `// NOLINT(check-name): why` for clang-tidy, `// cppcheck-suppress id` for
# cppcheck.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root" || exit 1

tools=${*:-tidy cppcheck format}
for t in $tools; do
    case "$t" in
    tidy) need=clang-tidy ;;
    cppcheck) need=cppcheck ;;
    format) need=clang-format ;;
    *) echo "lint: unknown tool '$t' (tidy, cppcheck, format)" >&2; exit 2 ;;
    esac
    if ! command -v "$need" >/dev/null 2>&1; then
        echo "lint: $need is not installed (apt-get install -y $need)" >&2
        exit 1
    fi
done

# Project sources of one build's compilation database.
sources()
{
    sed -n 's/^ *"file": "\(.*\)",\{0,1\}$/\1/p' "build/$1/compile_commands.json" |
        grep -E "^$root/(src|tests|examples|bench)/" | sort -u
}

status=0 passed=0 failed=0
# The last line says how many checks (a tool on one build) found nothing.
summary() { echo "lint: $passed passed, $failed failed"; }
case " $tools " in
*" format "*)
    mapfile -t all < <(find include src tests examples bench -type f \
        \( -name '*.c' -o -name '*.h' -o -name '*.cpp' \) 2>/dev/null | sort)
    out=$(clang-format --dry-run "${all[@]}" 2>&1 | grep 'warning:' | cut -d: -f1 | sort -u)
    echo "=== format (${#all[@]} files)"
    if [ -n "$out" ]; then
        echo "$out"
        echo "=== format: $(wc -l <<<"$out") file(s) not formatted (clang-format -i them)"
        status=1
        failed=$((failed + 1))
    else
        echo "=== format: clean"
        passed=$((passed + 1))
    fi
    ;;
esac
tools=${tools//format/}
if [ -z "${tools// /}" ]; then
    summary
    exit $status
fi
for preset in clang mingw; do
    # Configured each time: the database and the headers configure
    # generates (mproc_features.h) must be those of this tree.
    cmake --preset "$preset" >/dev/null || {
        status=1 failed=$((failed + 1))
        continue
    }
    mapfile -t files < <(sources "$preset")
    if [ "$preset" = mingw ]; then
        # clang-tidy sees the same code in both builds except where a file
        # is written for Windows: the mingw pass takes only those (a third
        # of the files, most of the stage's time saved); cppcheck, quick,
        # still reads them all.
        mapfile -t tidy_files < <({
            printf '%s\n' "${files[@]}" | grep -E '/src/win32/|-win32\.c$'
            grep -lE '_WIN32|MINGW' "${files[@]}"
        } | sort -u)
    else
        tidy_files=("${files[@]}")
    fi
    for t in $tools; do
        if [ "$t" = tidy ]; then
            echo "=== $t ($preset build, ${#tidy_files[@]} files)"
        else
            echo "=== $t ($preset build, ${#files[@]} files)"
        fi
        case "$t" in
        tidy)
            # clang-tidy reads the target (x86_64-w64-mingw32) from the
            # compiler name in the mingw database.
            # One clang-tidy per file, as many at once as there are CPUs.
            out=$(printf '%s\n' "${tidy_files[@]}" |
                xargs -P "$(nproc 2>/dev/null || echo 2)" -n 1 \
                    clang-tidy -p "build/$preset" --quiet 2>/dev/null |
                # A finding without a file is in a token the preprocessor
                # pasted (mingw-w64's __MSABI_LONG(x) is x ## l, in
                # Windows constants such as STATUS_* and GENERIC_*): not
                # our code, and no NOLINT can reach it.
                grep -vE '^warning: integer literal has suffix .l., which is not uppercase \[cert-dcl16-c\]$')
            ;;
        cppcheck)
            # The database holds project sources only (nothing generated).
            # cppcheck does not know the compiler's predefined macros: give
            # it the target's, and __GNUC__ so that it sees the noreturn
            # attribute of the harness's th_fail().
            if [ "$preset" = mingw ]; then
                target="--platform=win64 -D_WIN32 -D_WIN64 -D__MINGW32__ -D__MINGW64__"
            elif [ "$(uname -s)" = Darwin ]; then
                target="-D__APPLE__ -D__MACH__ -D__unix__"
            else
                target="-D__linux__ -D__unix__"
            fi
            # shellcheck disable=SC2086 # $target is meant to split
            out=$(cppcheck --project="build/$preset/compile_commands.json" \
                -D__GNUC__=12 $target \
                --enable=warning,performance,portability --std=c11 \
                --inline-suppr --suppress=missingIncludeSystem \
                --template='{file}:{line}:{column}: {severity}: {message} [{id}]' \
                -q -j"$(nproc 2>/dev/null || echo 2)" 2>&1)
            ;;
        esac
        if [ -n "$out" ]; then
            echo "$out"
            echo "=== $t ($preset): $(grep -cE ': (warning|error|style|performance|portability):' <<<"$out") finding(s)"
            status=1
            failed=$((failed + 1))
        else
            echo "=== $t ($preset): clean"
            passed=$((passed + 1))
        fi
    done
done
summary
exit $status
