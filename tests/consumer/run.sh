#!/usr/bin/env bash
# Builds mproc, installs it the way the README says, and builds and runs
# the outside project of this folder against the installed tree, each way
# the README shows. The rows (label K):
#
#   K03  native: find_package shared and static, pkg-config mproc and
#        mproc-static, add_subdirectory; every program runs under fork and
#        spawn from its build tree, the CMake ones also once installed,
#        without LD_LIBRARY_PATH (RUNPATH); the static ones need no libmproc
#   K04  Windows (mingw-w64 cross, programs under Wine): the same five
#        ways, from the build tree and (CMake) installed
#   K05  the .deb packages (cmake --preset deb): names, dependencies and
#        contents; unpacked into an empty folder (dpkg-deb -x), the four
#        installed-tree ways build against it and run. Then, as root and
#        only where that is allowed (CI=true, as CI sets, or
#        MPROC_TEST_DEB_INSTALL=1) and no mproc package is installed yet:
#        the README's `apt-get install ./<both files>` into this system,
#        the four ways built with no paths at all and run without
#        LD_LIBRARY_PATH, then `apt-get purge`, after which nothing that
#        `dpkg -L` listed may be left and the loader's cache must no
#        longer name libmproc
#
#   tests/consumer/run.sh native|mingw|deb [WORKDIR]   (default build/consumer)
#
# Every program must print the README's line "[42, None, 'hello']" and
# exit 0. mingw runs programs with wine64 in the current WINEPREFIX
# (scripts/test.sh prepares one and keeps its wineserver alive). The last
# line is "consumer-<what>: N passed, N failed"; the exit status is 1 if
# anything failed.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
here=$root/tests/consumer
# shellcheck source=../../scripts/deps.sh
. "$root/scripts/deps.sh"

what=${1:-}
work=${2:-$root/build/consumer}
case "$what" in
native | mingw | deb) ;;
*) echo "usage: tests/consumer/run.sh native|mingw|deb [WORKDIR]" >&2; exit 2 ;;
esac
mkdir -p "$work"
work=$(cd "$work" && pwd)
cd "$root" || exit 1

passed=0
failed=0
expect="[42, None, 'hello']"

case "$what" in
native) row=K03 ;;
mingw) row=K04 ;;
deb) row=K05 ;;
esac
ok() { passed=$((passed + 1)); echo "ok   $row $*"; }
bad() { failed=$((failed + 1)); echo "FAIL $row $*"; }

# step NAME CMD...: runs a build step quietly, its output shown on failure.
step()
{
    local name=$1 log
    shift
    log=$work/step.log
    if "$@" >"$log" 2>&1; then
        return 0
    fi
    bad "$name: $*"
    sed 's/^/     | /' "$log" | tail -n 40
    return 1
}

# run_app NAME ENV... -- PROGRAM: runs it (timeout 120 s) and checks output.
run_app()
{
    local name=$1 out rc
    shift
    local envs=()
    while [ "$1" != "--" ]; do
        envs+=("$1")
        shift
    done
    shift
    out=$(env -u LD_LIBRARY_PATH "${envs[@]}" timeout 120 "$@" 2>&1)
    rc=$?
    out=${out//$'\r'/}
    if [ $rc -eq 0 ] && [ "$out" = "$expect" ]; then
        ok "$name"
    else
        bad "$name: exit status $rc, output:"
        printf '%s\n' "$out" | sed 's/^/     | /' | tail -n 20
    fi
}

# check NAME COMMAND...: a check that passes when the command does.
check()
{
    local name=$1
    shift
    if "$@"; then ok "$name"; else bad "$name"; fi
}

# The README's example is this folder's app.c, word for word.
readme_example()
{
    awk '/^```c$/{f=1;next} /^```$/{if(f){exit}} f' "$root/README.md" |
        cmp -s - "$here/app.c"
}
echo "consumer $what: in $work"
check "README's example is tests/consumer/app.c" readme_example
# The README's CMake block for Windows programs is in this folder's
# CMakeLists.txt, word for word.
# contains_lines A B: file B holds the lines of file A, consecutively.
contains_lines()
{
    awk -v n="$(wc -l <"$1")" '
        NR == FNR { want[NR] = $0; next }
        { if ($0 == want[k + 1]) k++; else k = ($0 == want[1]) ? 1 : 0
          if (k == n) found = 1 }
        END { exit !found }' "$1" "$2"
}
readme_windows_block()
{
    awk '/^```cmake$/ { f = 1; b = ""; next }
         /^```$/ { if (f && b ~ /TARGET_RUNTIME_DLLS/) { printf "%s", b; exit } f = 0; next }
         f { b = b $0 "\n" }' "$root/README.md" >"$work/readme-windows.cmake"
    [ -s "$work/readme-windows.cmake" ] &&
        contains_lines "$work/readme-windows.cmake" "$here/CMakeLists.txt"
}
check "README's Windows CMake block is in tests/consumer/CMakeLists.txt" readme_windows_block

# ---------------------------------------------------------------------------
# ELF and PE facts of a program.

needed() { readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'; }
runpath() { readelf -d "$1" | sed -n 's/.*(RUNPATH).*\[\(.*\)\]/\1/p'; }
dlls() { x86_64-w64-mingw32-objdump -p "$1" | sed -n 's/^[[:space:]]*DLL Name: //p'; }

# The greps read a command's whole output from a here-string, never from a
# pipe: under pipefail, `cmd | grep -q` fails when grep has its match and
# exits while cmd is still writing (cmd dies of SIGPIPE). `ldconfig -p` on
# a machine with many libraries printed over 64 KiB, and that failed CI.
links_shared() { grep -qx "libmproc.so.$2" <<<"$(needed "$1")"; }
links_no_libmproc() { ! grep -q '^libmproc' <<<"$(needed "$1")"; }
# A RUNPATH entry that is the directory $2 (compared as real paths).
has_runpath()
{
    local d want
    want=$(realpath "$2")
    for d in $(runpath "$1" | tr ':' ' '); do
        [ "$(realpath -m "$d")" = "$want" ] && return 0
    done
    return 1
}
no_runpath() { [ -z "$(runpath "$1")" ]; }
imports_dll() { grep -qix "$2" <<<"$(dlls "$1")"; }
imports_no_libmproc() { ! grep -qi '^libmproc' <<<"$(dlls "$1")"; }

# ---------------------------------------------------------------------------
# The installed-tree ways against PREFIX (native): find_package shared and
# static, pkg-config shared and static.
#   native_consumers TAG PREFIX LIBDIR SYSTEM(yes|no)
# SYSTEM yes: the libdir is where the .deb puts it, a system directory on
# the real machine: mproc.pc then adds no RUNPATH and the pkg-config
# program is run with LD_LIBRARY_PATH, as a system install would not need.

native_consumers()
{
    local tag=$1 prefix=$2 libdir=$3 system=$4 b m soabi
    soabi=$(cd "$libdir" && readlink libmproc.so)
    soabi=${soabi#libmproc.so.}

    for m in shared static; do
        b=$work/$tag-cmake-$m
        rm -rf "$b" "$b-inst"
        step "$tag find_package $m: configure" \
            cmake -S "$here" -B "$b" -G Ninja -DCMAKE_BUILD_TYPE=Release \
            -DMPROC_CONSUMER_LINK=$m -DCMAKE_PREFIX_PATH="$prefix" \
            -DCMAKE_INSTALL_PREFIX="$b-inst" || continue
        step "$tag find_package $m: build" cmake --build "$b" || continue
        step "$tag find_package $m: install" cmake --install "$b" || continue
        if [ $m = shared ]; then
            check "$tag find_package shared: links libmproc.so.$soabi" \
                links_shared "$b/app" "$soabi"
            check "$tag find_package shared: installed program has RUNPATH $libdir" \
                has_runpath "$b-inst/bin/app" "$libdir"
        else
            check "$tag find_package static: no libmproc at run time" \
                links_no_libmproc "$b/app"
        fi
        for sm in fork spawn; do
            run_app "$tag find_package $m, build tree, $sm" \
                MPROC_START_METHOD=$sm -- "$b/app"
            run_app "$tag find_package $m, installed, $sm" \
                MPROC_START_METHOD=$sm -- "$b-inst/bin/app"
        done
    done

    # The README's command lines, with the README's PKG_CONFIG_PATH.
    b=$work/$tag-pkgconfig
    rm -rf "$b"
    mkdir -p "$b"
    export PKG_CONFIG_PATH=$libdir/pkgconfig
    if step "$tag pkg-config mproc: build" \
        sh -c 'cc "$1" $(pkg-config --cflags --libs mproc) -o "$2"' \
        sh "$here/app.c" "$b/app"; then
        check "$tag pkg-config mproc: links libmproc.so.$soabi" \
            links_shared "$b/app" "$soabi"
        if [ "$system" = yes ]; then
            check "$tag pkg-config mproc: no RUNPATH for a system libdir" \
                no_runpath "$b/app"
            for sm in fork spawn; do
                run_app "$tag pkg-config mproc, $sm" \
                    LD_LIBRARY_PATH="$libdir" MPROC_START_METHOD=$sm -- "$b/app"
            done
        else
            check "$tag pkg-config mproc: RUNPATH $libdir" \
                has_runpath "$b/app" "$libdir"
            for sm in fork spawn; do
                run_app "$tag pkg-config mproc, $sm" \
                    MPROC_START_METHOD=$sm -- "$b/app"
            done
        fi
    fi
    if step "$tag pkg-config mproc-static: build" \
        sh -c 'cc "$1" $(pkg-config --cflags --libs mproc-static) -o "$2"' \
        sh "$here/app.c" "$b/app-static"; then
        check "$tag pkg-config mproc-static: no libmproc at run time" \
            links_no_libmproc "$b/app-static"
        for sm in fork spawn; do
            run_app "$tag pkg-config mproc-static, $sm" \
                MPROC_START_METHOD=$sm -- "$b/app-static"
        done
    fi
    unset PKG_CONFIG_PATH
}

# ---------------------------------------------------------------------------

stage_native()
{
    local prefix=$work/native-prefix b
    rm -rf "$prefix"
    # The README: cmake --preset release -DCMAKE_INSTALL_PREFIX=...
    step "native: configure (release preset)" \
        cmake --preset release -DCMAKE_INSTALL_PREFIX="$prefix" &&
        step "native: build" cmake --build --preset release &&
        step "native: install" cmake --install build/release ||
        return
    native_consumers native "$prefix" "$prefix/lib" no

    b=$work/native-subdir
    rm -rf "$b"
    step "native add_subdirectory: configure" \
        cmake -S "$here" -B "$b" -G Ninja -DCMAKE_BUILD_TYPE=Release \
        -DMPROC_CONSUMER_LINK=subdir -DMPROC_SOURCE_DIR="$root" &&
        step "native add_subdirectory: build" cmake --build "$b" &&
        for sm in fork spawn; do
            run_app "native add_subdirectory, build tree, $sm" \
                MPROC_START_METHOD=$sm -- "$b/app"
        done
}

stage_mingw()
{
    local prefix=$work/mingw-prefix wine b m tc
    wine=$(mproc_find_wine64) || { bad "mingw: no wine64"; return; }
    rm -rf "$prefix"
    step "mingw: configure (mingw-release preset)" \
        cmake --preset mingw-release -DCMAKE_INSTALL_PREFIX="$prefix" &&
        step "mingw: build" cmake --build --preset mingw-release &&
        step "mingw: install" cmake --install build/mingw-release ||
        return
    tc=$prefix/lib/cmake/mproc/mingw-w64-x86_64.cmake
    check "mingw: the toolchain file is installed" test -f "$tc"

    for m in shared static; do
        b=$work/mingw-cmake-$m
        rm -rf "$b" "$b-inst"
        step "mingw find_package $m: configure" \
            cmake -S "$here" -B "$b" -G Ninja -DCMAKE_BUILD_TYPE=Release \
            -DCMAKE_TOOLCHAIN_FILE="$tc" -DMPROC_CONSUMER_LINK=$m \
            -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_INSTALL_PREFIX="$b-inst" ||
            continue
        step "mingw find_package $m: build" cmake --build "$b" || continue
        step "mingw find_package $m: install" cmake --install "$b" || continue
        if [ $m = shared ]; then
            check "mingw find_package shared: imports libmproc.dll" \
                imports_dll "$b/app.exe" libmproc.dll
        else
            check "mingw find_package static: no libmproc.dll" \
                imports_no_libmproc "$b/app.exe"
        fi
        run_app "mingw find_package $m, build tree" -- "$wine" "$b/app.exe"
        run_app "mingw find_package $m, installed" -- "$wine" "$b-inst/bin/app.exe"
    done

    # The README's cross command lines: the Windows tree's .pc files only.
    b=$work/mingw-pkgconfig
    rm -rf "$b"
    mkdir -p "$b"
    export PKG_CONFIG_LIBDIR=$prefix/lib/pkgconfig
    if step "mingw pkg-config mproc: build" \
        sh -c 'x86_64-w64-mingw32-gcc "$1" $(pkg-config --cflags --libs mproc) -o "$2"' \
        sh "$here/app.c" "$b/app.exe"; then
        cp "$prefix/bin/libmproc.dll" "$b/"
        check "mingw pkg-config mproc: imports libmproc.dll" \
            imports_dll "$b/app.exe" libmproc.dll
        run_app "mingw pkg-config mproc" -- "$wine" "$b/app.exe"
    fi
    if step "mingw pkg-config mproc-static: build" \
        sh -c 'x86_64-w64-mingw32-gcc "$1" $(pkg-config --cflags --libs mproc-static) -o "$2"' \
        sh "$here/app.c" "$b/app-static.exe"; then
        check "mingw pkg-config mproc-static: no libmproc.dll" \
            imports_no_libmproc "$b/app-static.exe"
        run_app "mingw pkg-config mproc-static" -- "$wine" "$b/app-static.exe"
    fi
    unset PKG_CONFIG_LIBDIR

    b=$work/mingw-subdir
    rm -rf "$b"
    step "mingw add_subdirectory: configure" \
        cmake -S "$here" -B "$b" -G Ninja -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_TOOLCHAIN_FILE="$root/cmake/mingw-w64-x86_64.cmake" \
        -DMPROC_CONSUMER_LINK=subdir -DMPROC_SOURCE_DIR="$root" &&
        step "mingw add_subdirectory: build" cmake --build "$b" &&
        run_app "mingw add_subdirectory, build tree (no copy)" -- "$wine" "$b/app.exe"
}

stage_deb()
{
    local debroot=$work/deb-root arch triplet version soabi rt dev libdir f
    step "deb: configure (deb preset)" cmake --preset deb &&
        step "deb: build + cpack" cmake --build --preset deb || return
    arch=$(dpkg --print-architecture)
    triplet=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
    version=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' build/deb/CMakeCache.txt)
    case "$version" in
    0.*) soabi=$(echo "$version" | cut -d. -f1-2) ;;
    *) soabi=${version%%.*} ;;
    esac
    # This version's packages (older ones may still lie in build/deb).
    rt=$(find build/deb -maxdepth 1 -name "libmproc${soabi}_${version}-*_$arch.deb" | head -n1)
    dev=$(find build/deb -maxdepth 1 -name "libmproc-dev_${version}-*_$arch.deb" | head -n1)
    check "deb: libmproc$soabi and libmproc-dev packages" test -f "$rt" -a -f "$dev" ||
        return
    check "deb: libmproc-dev depends on libmproc$soabi of its version" \
        sh -c 'dpkg-deb -f "$1" Depends | grep -q "libmproc$3 (= $(dpkg-deb -f "$2" Version))"' \
        sh "$dev" "$rt" "$soabi"
    check "deb: libmproc$soabi depends on libc6" \
        sh -c 'dpkg-deb -f "$1" Depends | grep -q "^libc6"' sh "$rt"
    libdir=usr/lib/$triplet
    dpkg-deb -c "$rt" >"$work/deb-rt.list"
    dpkg-deb -c "$dev" >"$work/deb-dev.list"
    for f in "$libdir/libmproc.so.$soabi" "$libdir/libmproc.so.$version"; do
        check "deb: libmproc$soabi holds /$f" \
            grep -q " \./$f\( \|$\)" "$work/deb-rt.list"
    done
    for f in usr/include/mproc.h "$libdir/libmproc.so" "$libdir/libmproc.a" \
        "$libdir/cmake/mproc/mprocConfig.cmake" \
        "$libdir/cmake/mproc/mprocConfigVersion.cmake" \
        "$libdir/cmake/mproc/mprocTargets.cmake" \
        "$libdir/pkgconfig/mproc.pc" "$libdir/pkgconfig/mproc-static.pc"; do
        check "deb: libmproc-dev holds /$f" \
            grep -q " \./$f\( \|$\)" "$work/deb-dev.list"
    done
    rm -rf "$debroot"
    mkdir -p "$debroot"
    step "deb: dpkg-deb -x into an empty folder" \
        sh -c 'dpkg-deb -x "$1" "$3" && dpkg-deb -x "$2" "$3"' sh "$rt" "$dev" "$debroot" ||
        return
    native_consumers deb "$debroot/usr" "$debroot/$libdir" yes
    deb_system "$rt" "$dev" "$soabi" "/$libdir"
}

# ---------------------------------------------------------------------------
# The packages really installed (K05, system). This changes the machine,
# so it runs only as root where it is allowed (see the top).

# Only the system's own search paths: no prefix, no .pc directory, no
# library path of the caller's.
sys_env() { env -u CMAKE_PREFIX_PATH -u PKG_CONFIG_PATH -u PKG_CONFIG_LIBDIR "$@"; }
ldcache_has() { grep -q "^[[:space:]]*$1 " <<<"$(ldconfig -p)"; }
# Every path dpkg -L listed is gone, except directories another package
# still owns.
all_gone()
{
    local p left=0
    while read -r p; do
        [ -n "$p" ] || continue
        if [ -d "$p" ] && [ ! -L "$p" ]; then
            dpkg-query -S "$p" >/dev/null 2>&1 && continue
        elif [ ! -e "$p" ] && [ ! -L "$p" ]; then
            continue
        fi
        echo "     | left behind: $p"
        left=1
    done <"$1"
    [ $left -eq 0 ]
}

deb_system()
{
    local rt=$1 dev=$2 soabi=$3 libdir=$4 b m why='' rtpkg
    rtpkg=libmproc$soabi
    if [ "$(id -u)" -ne 0 ]; then
        why="not root"
    elif [ "${CI:-}" != true ] && [ "${MPROC_TEST_DEB_INSTALL:-}" != 1 ]; then
        why="set MPROC_TEST_DEB_INSTALL=1 (or CI=true) to let it install into this system"
    elif dpkg-query -W -f '${Status}\n' libmproc-dev "$rtpkg" 2>/dev/null |
        grep -q ' installed$'; then
        why="an mproc package is installed already; it is left alone"
    elif grep -q libmproc <<<"$(ldconfig -p)"; then
        why="the loader's cache has a libmproc already (another install)"
    fi
    if [ -n "$why" ]; then
        echo "skip $row deb system install: $why"
        return
    fi
    step "deb system: apt-get install ./$(basename "$rt") ./$(basename "$dev")" \
        env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 \
        install -y "$(realpath "$rt")" "$(realpath "$dev")" || return
    dpkg-query -L "$rtpkg" libmproc-dev | sort -u >"$work/deb-system.list"
    check "deb system: dpkg -L lists $libdir/libmproc.so.$soabi" \
        grep -qx "$libdir/libmproc.so.$soabi" "$work/deb-system.list"
    check "deb system: the loader's cache has libmproc.so.$soabi" \
        ldcache_has "libmproc.so.$soabi"

    for m in shared static; do
        b=$work/sys-cmake-$m
        rm -rf "$b" "$b-inst"
        step "deb system find_package $m: configure (no CMAKE_PREFIX_PATH)" \
            sys_env cmake -S "$here" -B "$b" -G Ninja -DCMAKE_BUILD_TYPE=Release \
            -DMPROC_CONSUMER_LINK=$m -DCMAKE_INSTALL_PREFIX="$b-inst" || continue
        check "deb system find_package $m: found in $libdir/cmake/mproc" \
            grep -qx "mproc_DIR:PATH=$libdir/cmake/mproc" "$b/CMakeCache.txt"
        step "deb system find_package $m: build" cmake --build "$b" || continue
        step "deb system find_package $m: install" cmake --install "$b" || continue
        if [ $m = shared ]; then
            check "deb system find_package shared: links libmproc.so.$soabi" \
                links_shared "$b/app" "$soabi"
            check "deb system find_package shared: installed program has no RUNPATH" \
                no_runpath "$b-inst/bin/app"
        else
            check "deb system find_package static: no libmproc at run time" \
                links_no_libmproc "$b/app"
        fi
        for sm in fork spawn; do
            run_app "deb system find_package $m, installed, $sm" \
                MPROC_START_METHOD=$sm -- "$b-inst/bin/app"
        done
    done

    b=$work/sys-pkgconfig
    rm -rf "$b"
    mkdir -p "$b"
    check "deb system pkg-config: mproc.pc found in $libdir/pkgconfig" \
        sh -c '[ "$(env -u PKG_CONFIG_PATH -u PKG_CONFIG_LIBDIR pkg-config --variable=pcfiledir mproc)" = "$1" ]' \
        sh "$libdir/pkgconfig"
    if step "deb system pkg-config mproc: build (no PKG_CONFIG_PATH)" \
        sys_env sh -c 'cc "$1" $(pkg-config --cflags --libs mproc) -o "$2"' \
        sh "$here/app.c" "$b/app"; then
        check "deb system pkg-config mproc: links libmproc.so.$soabi" \
            links_shared "$b/app" "$soabi"
        check "deb system pkg-config mproc: no RUNPATH" no_runpath "$b/app"
        for sm in fork spawn; do
            run_app "deb system pkg-config mproc, $sm" \
                MPROC_START_METHOD=$sm -- "$b/app"
        done
    fi
    if step "deb system pkg-config mproc-static: build (no PKG_CONFIG_PATH)" \
        sys_env sh -c 'cc "$1" $(pkg-config --cflags --libs mproc-static) -o "$2"' \
        sh "$here/app.c" "$b/app-static"; then
        check "deb system pkg-config mproc-static: no libmproc at run time" \
            links_no_libmproc "$b/app-static"
        for sm in fork spawn; do
            run_app "deb system pkg-config mproc-static, $sm" \
                MPROC_START_METHOD=$sm -- "$b/app-static"
        done
    fi

    step "deb system: apt-get purge libmproc-dev $rtpkg" \
        env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 \
        purge -y libmproc-dev "$rtpkg" || return
    check "deb system: purged, dpkg knows neither package" \
        sh -c '! dpkg-query -W -f "\${Status}\n" libmproc-dev "$1" 2>/dev/null | grep -q " installed$"' \
        sh "$rtpkg"
    check "deb system: nothing dpkg -L listed is left" all_gone "$work/deb-system.list"
    check "deb system: the loader's cache no longer has libmproc" \
        sh -c '! ldconfig -p | grep -q libmproc'
}

t0=$SECONDS
"stage_$what"
echo "consumer $what: $((SECONDS - t0)) s"
echo "consumer-$what: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
