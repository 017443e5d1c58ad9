#!/usr/bin/env bash
# Checks for the tools a task needs and installs the missing ones on Debian
# 12 (and derivatives) with apt-get.
#
#   scripts/deps.sh [--check|--dry-run] demo|test|bench|docs|package|mpi|mpibench|mpich ...
#
#   demo     cmake ninja-build gcc libc6-dev        (build + run the examples)
#   test     demo + clang libclang-rt-dev gcc-mingw-w64-x86-64 wine64
#            (sanitizers, clang + fuzz build, Windows cross build under Wine)
#            + musl-tools gcc-multilib gcc-mingw-w64-i686 (musl, i686 and
#            mingw-i686 presets) + g++ (C++ consumer rows K06, K07)
#            + clang-tidy cppcheck (lint stage)
#            + docs + package (scripts/test.sh's docs, consumer and package
#            stages)
#   bench    demo + libapr1-dev python3 pkg-config (bench/run.sh)
#   docs     demo + doxygen                (the API reference: docs target)
#   package  demo + pkg-config dpkg-dev file   (the .deb packages: deb
#            preset, whose dpkg-shlibdeps step needs `file`; building
#            against an installed mproc with pkg-config)
#   mpi      demo + libopenmpi-dev openmpi-bin   (mproc_mpi: the mpi preset,
#            scripts/mpi-demo.sh; an MPI already there, MPICH's mpicc and
#            mpiexec included, counts as present); test includes it
#   mpibench mpi + bench + python3-mpi4py       (bench/mpi.sh)
#   mpich    demo + libmpich-dev mpich  (the mpich preset: the MPI component
#            against MPICH, beside Open MPI, which stays the default MPI)
#
# As root, missing packages are installed with apt-get (one `apt-get update`,
# only if something is missing). As any other user the script prints the
# exact apt-get command to run as root and exits with status 1: it never
# calls sudo itself. Nothing is installed when everything is present, so a
# normal user with the packages already installed needs no privileges.
#
# --check    report what is missing and exit 1 if anything is; never install
# --dry-run  print the apt-get commands instead of running them
#
# Each requirement is probed the way the build uses it (a command on PATH,
# a header, clang's runtime libraries, the wine64 loader), not only by asking
# dpkg, so tools installed some other way count as present.
#
# Also sourced by scripts/demo.sh and scripts/test.sh (mproc_deps function).

# One line per requirement: SETS PACKAGE PROBE
#   SETS     comma-separated sets that need it
#   PROBE    cmd:NAME | file:PATH | clang-rt | wine64 | gcc-m32 |
#            python3-mpi4py
MPROC_DEPS_TABLE='
demo,test,bench,docs,package,mpi,mpibench,mpich  cmake                 cmd:cmake
demo,test,bench,docs,package,mpi,mpibench,mpich  ninja-build           cmd:ninja
demo,test,bench,docs,package,mpi,mpibench,mpich  gcc                   cmd:gcc
demo,test,bench,docs,package,mpi,mpibench,mpich  libc6-dev             file:/usr/include/stdio.h
test,mpi,mpibench             libopenmpi-dev        cmd:mpicc
test,mpi,mpibench             openmpi-bin           cmd:mpiexec
mpibench                      python3-mpi4py        python3-mpi4py
mpich                         libmpich-dev          cmd:mpicc.mpich
mpich                         mpich                 cmd:mpiexec.mpich
test                          clang                 cmd:clang
test                          libclang-rt-dev       clang-rt
test                          gcc-mingw-w64-x86-64  cmd:x86_64-w64-mingw32-gcc
test                          wine64                wine64
test                          musl-tools            cmd:musl-gcc
test                          gcc-multilib          gcc-m32
test                          gcc-mingw-w64-i686    cmd:i686-w64-mingw32-gcc
test                          g++                   cmd:g++
test                          clang-tidy            cmd:clang-tidy
test                          cppcheck              cmd:cppcheck
bench,mpibench                libapr1-dev           file:/usr/include/apr-1.0/apr.h
bench,mpibench                python3               cmd:python3
bench,test,package,mpibench   pkg-config            cmd:pkg-config
test,docs                     doxygen               cmd:doxygen
test,package                  dpkg-dev              cmd:dpkg-shlibdeps
test,package                  file                  cmd:file
'

# The wine64 loader of Debian's wine64 package (no 32-bit architecture is
# needed), or one on PATH. Prints its path; status 1 when there is none.
mproc_find_wine64()
{
    if command -v wine64 >/dev/null 2>&1; then
        command -v wine64
    elif [ -x /usr/lib/wine/wine64 ]; then
        echo /usr/lib/wine/wine64
    else
        return 1
    fi
}

# The wineserver that belongs to that loader.
mproc_find_wineserver()
{
    local wine dir
    wine=$(mproc_find_wine64) || return 1
    dir=$(dirname "$wine")
    for s in "$dir/wineserver64" "$dir/wineserver"; do
        if [ -x "$s" ]; then
            echo "$s"
            return 0
        fi
    done
    command -v wineserver 2>/dev/null || return 1
}

# A Python that has mpi4py.futures: Debian's python3-mpi4py is for the
# system's /usr/bin/python3, which another python3 on PATH may hide.
mproc_find_mpi4py_python()
{
    local py
    for py in python3 /usr/bin/python3; do
        if command -v "$py" >/dev/null 2>&1 &&
            "$py" -c 'import mpi4py.futures' >/dev/null 2>&1; then
            command -v "$py"
            return 0
        fi
    done
    return 1
}

# True when clang can link the sanitizer and libFuzzer runtimes.
mproc_have_clang_rt()
{
    local dir
    command -v clang >/dev/null 2>&1 || return 1
    dir=$(clang -print-resource-dir 2>/dev/null) || return 1
    compgen -G "$dir/lib/*/libclang_rt.tsan*x86_64*" >/dev/null &&
        compgen -G "$dir/lib/*/libclang_rt.fuzzer*x86_64*" >/dev/null
}

# True when gcc can build and link a 32-bit x86 program (gcc-multilib).
mproc_have_gcc_m32()
{
    local out
    command -v gcc >/dev/null 2>&1 || return 1
    out=$(mktemp) || return 1
    printf 'int main(void) { return 0; }\n' |
        gcc -m32 -x c - -o "$out" >/dev/null 2>&1
    local rc=$?
    rm -f "$out"
    return $rc
}

mproc_probe()
{
    case "$1" in
    cmd:*) command -v "${1#cmd:}" >/dev/null 2>&1 ;;
    file:*) [ -e "${1#file:}" ] ;;
    clang-rt) mproc_have_clang_rt ;;
    wine64) mproc_find_wine64 >/dev/null ;;
    gcc-m32) mproc_have_gcc_m32 ;;
    python3-mpi4py) mproc_find_mpi4py_python >/dev/null ;;
    *) return 1 ;;
    esac
}

# The packages of the given sets whose probe fails, one per line.
mproc_missing()
{
    local sets s pkg probe want one
    sets=" $* "
    while read -r s pkg probe; do
        [ -n "$s" ] || continue
        want=no
        for one in ${s//,/ }; do
            case "$sets" in *" $one "*) want=yes ;; esac
        done
        [ "$want" = yes ] || continue
        mproc_probe "$probe" || echo "$pkg"
    done <<<"$MPROC_DEPS_TABLE"
}

# CMakePresets.json (version 3) needs CMake 3.21.
mproc_cmake_ok()
{
    local v
    v=$(cmake --version 2>/dev/null | sed -n 's/^cmake version \([0-9]*\.[0-9]*\).*/\1/p')
    [ -n "$v" ] || return 1
    [ "${v%%.*}" -gt 3 ] || { [ "${v%%.*}" -eq 3 ] && [ "${v#*.}" -ge 21 ]; }
}

# mproc_deps [--check|--dry-run] SET...: 0 when everything is (now) present.
mproc_deps()
{
    local mode=install missing
    case "${1:-}" in
    --check) mode=check; shift ;;
    --dry-run) mode=dry-run; shift ;;
    esac
    if [ $# -eq 0 ]; then
        echo "usage: deps.sh [--check|--dry-run] demo|test|bench|docs|package|mpi|mpibench|mpich ..." >&2
        return 2
    fi
    for s in "$@"; do
        case "$s" in
        demo | test | bench | docs | package | mpi | mpibench | mpich) ;;
        *) echo "deps: unknown set '$s' (demo, test, bench, docs, package, mpi, mpibench, mpich)" >&2; return 2 ;;
        esac
    done

    missing=$(mproc_missing "$@" | tr '\n' ' ')
    missing=${missing% }
    if [ -z "$missing" ]; then
        if command -v cmake >/dev/null && ! mproc_cmake_ok; then
            echo "deps: CMake 3.21 or newer is needed (CMakePresets.json);" \
                "found: $(cmake --version | head -n1)" >&2
            return 1
        fi
        echo "deps: everything needed for '$*' is installed"
        return 0
    fi

    echo "deps: missing for '$*': $missing"
    if [ "$mode" = check ]; then
        return 1
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "deps: no apt-get here; install the equivalents of: $missing" >&2
        return 1
    fi
    if [ "$(id -u)" -ne 0 ] && [ "$mode" != dry-run ]; then
        echo "deps: installing needs root. Run as root (or with sudo):" >&2
        echo "  apt-get update && apt-get install -y $missing" >&2
        echo "then run this command again." >&2
        return 1
    fi
    if [ "$mode" = dry-run ]; then
        echo "deps: would run: DEBIAN_FRONTEND=noninteractive apt-get update"
        echo "deps: would run: DEBIAN_FRONTEND=noninteractive apt-get install -y $missing"
        return 0
    fi
    # Debian 12's wine64 package alone gives the 64-bit loader and
    # wineserver; apt-get also installs its recommended `wine` package
    # (the wrappers on PATH), still without a 32-bit architecture.
    # A fresh machine may be running unattended-upgrades at boot: wait for
    # the dpkg lock instead of failing at once.
    # shellcheck disable=SC2086 # the package list is meant to split
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 \
        update -q &&
        DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 \
            install -y -q $missing ||
        { echo "deps: apt-get failed" >&2; return 1; }

    missing=$(mproc_missing "$@" | tr '\n' ' ')
    if [ -n "${missing% }" ]; then
        echo "deps: still missing after apt-get: $missing" >&2
        return 1
    fi
    echo "deps: installed; everything needed for '$*' is present"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -u
    mproc_deps "$@"
    exit $?
fi
