#!/usr/bin/env bash
# Installs what is missing (as root; see scripts/deps.sh) and runs the whole
# test suite, one CMake preset per configuration, each in its own build dir
# under build/:
#
#   debug   gcc, warnings as errors
#   stress  the stress tests (CTest label `stress`, left out of every other
#           run) on the debug build: queue kill storm, pid reuse, mixed
#           sizes, hostile peers; about 1-2 minutes
#   asan    gcc, AddressSanitizer + UndefinedBehaviorSanitizer
#   tsan    clang, ThreadSanitizer
#   clang   clang, warnings as errors; the bounded fuzz tests when they exist
#   mingw   Windows x86_64 cross build with mingw-w64, tests under Wine
#   portable     gcc, the POSIX backend with every Linux-only feature off
#                (the fallback of each primitive: what other systems take)
#   macos-logic  portable plus the macOS choices that run on Linux
#                (31-character shm names, ...)
#   musl         musl-gcc (musl libc)
#   i686         gcc -m32, 32-bit x86
#   mingw-i686   Windows i686 cross build: compiled with -Werror, not run
#                (no 32-bit Wine)
#   mpi     gcc with MPROC_WITH_MPI (Open MPI): the MPI suite (label mpi),
#           each test a job of `mpirun -n 4 --oversubscribe`; under a minute
#   mpich   the same against MPICH (installed beside Open MPI); only when
#           named: `scripts/test.sh mpich`
#
# and stages that are not one preset's suite:
#
#   docs      the API reference (docs preset): Doxygen with zero warnings,
#             every function, type, macro and enum value documented; the C
#             programs of docs/guide-*.md built, run, output checked
#   consumer  mproc installed as the README says (release, mingw-release),
#             an outside project built against it every documented way
#             and run, natively and under Wine (tests/consumer/run.sh)
#   package   the .deb packages (deb preset), unpacked into an empty
#             folder, a consumer built against them and run; as root with
#             MPROC_TEST_DEB_INSTALL=1 (.ci/run sets it) or CI=true, also
#             installed into this system with apt-get, built against with
#             no paths, run, and purged (tests/consumer/run.sh deb)
#   msvc      src/common and src/win32 compiled in clang's MSVC mode against
#             the mingw-w64 headers, strict warnings as errors, and no
#             GCC-only construct outside a guard (scripts/msvc-check.sh)
#   lint      clang-tidy and cppcheck over the clang and mingw builds
#             (scripts/lint.sh)
#
#   scripts/test.sh [STAGE...]      default: all of them, in that order
#
#   MPROC_CTEST_ARGS="-R ^P0 -j1"   extra arguments for every ctest run
#
# Every configuration runs even when an earlier one failed. The script ends
# with each configuration's time and CTest summary, and exits non-zero if
# any configuration failed to configure, build or pass its tests.
# Works from any directory and needs no input (CI runs it through .ci/run).
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root" || exit 1
# shellcheck source=deps.sh
. scripts/deps.sh

all_presets="debug stress asan tsan clang mingw portable macos-logic musl i686 mingw-i686 mpi"
all_stages="docs consumer package msvc lint"
extra_presets="mpich"
# Presets that are built only: their programs cannot run here.
build_only=" mingw-i686 "
presets=${*:-$all_presets $all_stages}
for p in $presets; do
    case " $all_presets $all_stages $extra_presets " in
    *" $p "*) ;;
    *) echo "test: unknown stage '$p' (one of: $all_presets $all_stages $extra_presets)" >&2; exit 2 ;;
    esac
done

mproc_deps test || exit 1
case " $presets " in
*" mpich "*) mproc_deps mpich || exit 1 ;;
esac

logdir=$root/build/logs
mkdir -p "$logdir"
started=$SECONDS

# ---------------------------------------------------------------------------
# Wine: one prefix inside the build dir, so nothing depends on ~/.wine, and
# one persistent wineserver for the whole run (a test program then starts in
# about 0.1 s instead of 2.4 s). The server is per prefix, so stopping it
# touches no other Wine user of this machine.

wine_server=
wine_prefix=$root/build/mingw/wineprefix

wine_stop()
{
    if [ -n "$wine_server" ]; then
        WINEPREFIX=$wine_prefix "$wine_server" -k >/dev/null 2>&1 || true
        wine_server=
    fi
}
trap wine_stop EXIT
trap 'exit 130' INT TERM

wine_start()
{
    local wine t0
    wine=$(mproc_find_wine64) || { echo "test: no wine64" >&2; return 1; }
    wine_server=$(mproc_find_wineserver) ||
        { echo "test: no wineserver" >&2; return 1; }
    export WINEPREFIX=$wine_prefix WINEARCH=win64 WINEDEBUG=-all
    mkdir -p "$WINEPREFIX"
    # Its output must not hold our pipes open: it outlives this command.
    "$wine_server" -p </dev/null >/dev/null 2>&1
    # Create (or update) the prefix now rather than inside the first test's
    # timeout: 8-20 s the first time. No Mono/Gecko installers: the tests are
    # console programs.
    t0=$SECONDS
    WINEDLLOVERRIDES="mscoree,mshtml=" "$wine" wineboot -i \
        </dev/null >"$logdir/wineboot.log" 2>&1 ||
        { echo "test: wineboot failed, see $logdir/wineboot.log" >&2; return 1; }
    echo "test: Wine prefix ready in $((SECONDS - t0)) s ($wine)"
}

# ---------------------------------------------------------------------------

declare -A status took summary

# The summary block CTest prints at its end (from "N% tests passed" or
# "No tests were found" to the last line).
ctest_summary()
{
    sed -n '/tests passed, .* tests\{0,1\} failed out of/,$p; /No tests were found/,$p' "$1"
}

# The configure (and build) preset a stage tests: the stress stage tests the
# debug build.
configure_preset()
{
    if [ "$1" = stress ]; then echo debug; else echo "$1"; fi
}

run_preset()
{
    local p=$1 t0=$SECONDS t1 log=$logdir/$1.ctest.log
    local cp
    cp=$(configure_preset "$p")
    echo
    echo "======================================================================"
    echo "=== $p: configure + build ($cp)"
    echo "======================================================================"
    if ! cmake --preset "$cp" </dev/null; then
        status[$p]="FAILED (configure)"
    elif ! cmake --build --preset "$cp" </dev/null; then
        status[$p]="FAILED (build)"
    fi
    t1=$SECONDS
    if [ -n "${status[$p]:-}" ]; then
        took[$p]="build $((t1 - t0)) s"
        summary[$p]="(no tests run)"
        return
    fi
    case "$build_only" in
    *" $p "*)
        status[$p]=passed
        took[$p]="build $((t1 - t0)) s"
        summary[$p]="(built with -Werror; not run: no 32-bit Wine)"
        return
        ;;
    esac
    if [ "$p" = mingw ] && ! wine_start; then
        status[$p]="FAILED (Wine setup)"
        took[$p]="build $((t1 - t0)) s"
        summary[$p]="(no tests run)"
        return
    fi
    echo "=== $p: test"
    # shellcheck disable=SC2086 # extra arguments are meant to split
    if ctest --preset "$p" ${MPROC_CTEST_ARGS:-} </dev/null 2>&1 | tee "$log"; then
        status[$p]=passed
    else
        status[$p]="FAILED (tests)"
    fi
    if [ "$p" = mingw ]; then
        wine_stop
    fi
    took[$p]="build $((t1 - t0)) s, test $((SECONDS - t1)) s"
    summary[$p]=$(ctest_summary "$log")
    if [ -z "${summary[$p]}" ]; then
        summary[$p]="(CTest printed no summary; see $log)"
    fi
}

# ---------------------------------------------------------------------------
# The stages beyond the presets' suites. Each prints its checks and ends
# with "N passed, N failed", its summary line.

stage_docs()
{
    local rc=0
    if cmake --preset docs </dev/null && cmake --build --preset docs </dev/null; then
        echo "reference: 1 passed, 0 failed"
    else
        echo "reference: 0 passed, 1 failed"
        rc=1
    fi
    scripts/check-guides.sh build/docs </dev/null || rc=1
    return $rc
}

stage_consumer()
{
    local rc=0
    tests/consumer/run.sh native </dev/null || rc=1
    # Windows programs under the same persistent wineserver as the suite.
    if wine_start; then
        tests/consumer/run.sh mingw </dev/null || rc=1
        wine_stop
    else
        echo "consumer-mingw: 0 passed, 1 failed (Wine setup)"
        rc=1
    fi
    return $rc
}

stage_package()
{
    tests/consumer/run.sh deb </dev/null
}

stage_msvc()
{
    scripts/msvc-check.sh </dev/null
}

stage_lint()
{
    scripts/lint.sh </dev/null
}

run_stage()
{
    local s=$1 t0=$SECONDS log=$logdir/$1.log
    echo
    echo "======================================================================"
    echo "=== $s"
    echo "======================================================================"
    # Not in a pipeline: wine_start must set this shell's variables.
    if "stage_$s" >"$log" 2>&1; then
        status[$s]=passed
    else
        status[$s]=FAILED
    fi
    cat "$log"
    took[$s]="$((SECONDS - t0)) s"
    summary[$s]=$(grep -E '(^|: )[0-9]+ passed, [0-9]+ failed' "$log")
    if [ -z "${summary[$s]}" ]; then
        summary[$s]="(no summary; see $log)"
    fi
}

for p in $presets; do
    case " $all_stages " in
    *" $p "*) run_stage "$p" ;;
    *) run_preset "$p" ;;
    esac
    echo "=== $p: ${status[$p]} (${took[$p]})"
done

failed=0
echo
echo "======================================================================"
echo "=== Results (total $((SECONDS - started)) s)"
for p in $presets; do
    printf '  %-12s %-20s %s\n' "$p" "${status[$p]}" "${took[$p]}"
    [ "${status[$p]}" = passed ] || failed=1
done
if [ $failed -eq 0 ]; then
    echo "=== ALL CONFIGURATIONS PASSED"
else
    echo "=== SOME CONFIGURATIONS FAILED"
fi
echo "=== CTest summaries"
for p in $presets; do
    echo
    echo "--- $p"
    echo "${summary[$p]}"
done
exit $failed
