#!/bin/sh
# Builds and runs every benchmark, then prints the table (or JSON lines).
#
#   bench/run.sh [--json] [--quick] [--rounds N] [--build-dir DIR]
#                [--no-python] [BENCH...]
#
# --json        one JSON object per line instead of the table:
#               {"bench":..., "impl":..., "value":..., "unit":...}, then one
#               record per target (unit "ratio", "target", "pass")
# --quick       fewer iterations and rounds (a smoke run, noisy)
# --rounds N    rounds per case (default: per benchmark, 3 to 9)
# --build-dir   where to build (default: build-bench in the source tree, or
#               $MPROC_BENCH_BUILD_DIR); configured with
#               -DMPROC_BUILD_BENCH=ON -DCMAKE_BUILD_TYPE=Release
# --no-python   skip the Python multiprocessing baselines
# BENCH...      only these (see `bench/run.sh --list`); default: all
#
# Run as root, it installs what is missing with apt-get (cmake, a C
# compiler, pkg-config, python3, libapr1-dev: scripts/deps.sh bench).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
build=${MPROC_BENCH_BUILD_DIR:-$repo/build-bench}
json=""
quick=""
rounds=""
python=1
benches=""

while [ $# -gt 0 ]; do
    case "$1" in
    --json) json="--json" ;;
    --quick) quick="--quick" ;;
    --rounds) shift; rounds="--rounds $1" ;;
    --build-dir) shift; build=$1 ;;
    --no-python) python=0 ;;
    --list) python3 "$here/bench_py.py" --list; exit 0 ;; # same names
    -h|--help) sed -n '2,/^[^#]/s/^# \{0,1\}//p' "$0"; exit 0 ;;
    -*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    *) benches="$benches $1" ;;
    esac
    shift
done

log() { echo "run.sh: $*" >&2; }

# ---------------------------------------------------------------- deps
# scripts/deps.sh knows the packages of every task; without it (bench/ used
# alone) the same check is done here.
if [ -x "$repo/scripts/deps.sh" ]; then
    "$repo/scripts/deps.sh" bench >&2 ||
        log "some dependencies are missing; continuing without them"
else
    missing=""
    command -v cmake >/dev/null 2>&1 || missing="$missing cmake"
    command -v cc >/dev/null 2>&1 || missing="$missing gcc libc6-dev"
    command -v pkg-config >/dev/null 2>&1 || missing="$missing pkg-config"
    command -v python3 >/dev/null 2>&1 || missing="$missing python3"
    pkg-config --exists apr-1 2>/dev/null || missing="$missing libapr1-dev"
    if [ -n "$missing" ]; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
            log "installing:$missing"
            DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
            # shellcheck disable=SC2086
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >&2
        else
            log "missing:$missing (install them, or run as root to let" \
                "this script use apt-get); continuing without"
        fi
    fi
fi

# ---------------------------------------------------------------- build
gen=""
if [ ! -f "$build/CMakeCache.txt" ] && command -v ninja >/dev/null 2>&1; then
    gen="-G Ninja"
fi
log "configuring $build (Release, MPROC_BUILD_BENCH=ON)"
# shellcheck disable=SC2086
cmake $gen -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=Release \
    -DMPROC_BUILD_BENCH=ON -DMPROC_BUILD_TESTS=OFF \
    -DMPROC_BUILD_EXAMPLES=OFF -DMPROC_BUILD_STATIC=OFF >&2
jobs=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2)
cmake --build "$build" --target mproc-bench mproc-queue-rss mproc-queue-tput \
    --parallel "$jobs" >&2

# ---------------------------------------------------------------- run
out=$(mktemp "${TMPDIR:-/tmp}/mproc-bench.XXXXXX")
trap 'rm -f "$out"' EXIT INT TERM

if [ -z "$benches" ]; then
    benches=$("$build/bin/mproc-bench" --list)
fi
if [ "$python" = 1 ] && ! command -v python3 >/dev/null 2>&1; then
    log "no python3: the Python baselines are skipped"
    python=0
fi
# Benchmark by benchmark, the C cases (mproc, raw, APR) and then the Python
# ones, so that the cases compared ran close together in time.
for b in $benches; do
    log "$b: mproc-bench (mproc, raw system calls, APR)"
    # shellcheck disable=SC2086
    "$build/bin/mproc-bench" $quick $rounds "$b" >>"$out" ||
        log "mproc-bench $b ended with status $? (results so far are kept)"
    if [ "$python" = 1 ]; then
        log "$b: bench_py.py (Python multiprocessing)"
        # shellcheck disable=SC2086
        python3 "$here/bench_py.py" $quick $rounds "$b" >>"$out" ||
            log "bench_py.py $b ended with status $? (results so far are kept)"
    fi
done

MPROC_BENCH_COMMIT=${MPROC_BENCH_COMMIT:-$(git -C "$repo" describe --always --dirty 2>/dev/null ||
    echo unknown)}
export MPROC_BENCH_COMMIT
python3 "$here/report.py" $json "$out"
