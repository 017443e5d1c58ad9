#!/bin/sh
# The MPI pool's benchmark: builds mproc with MPROC_WITH_MPI in Release,
# runs bench/bench-mpi.c (the MPI pool on 4 ranks, the local pool with 4
# workers, a raw MPI master/worker loop) and bench/bench_mpi4py.py
# (mpi4py.futures' MPIPoolExecutor on 4 ranks), and prints them side by
# side with the targets of docs/benchmarks.md.
#
#   bench/mpi.sh [--rounds N] [--no-mpi4py] [--build-dir DIR]
#
# One run, 4 ranks on whatever cores the machine has (Open MPI:
# --oversubscribe): correctness-grade figures, noisy on a loaded machine.
# mpi4py at chunksize 1 takes about a minute and a half on 2 cores.
# As root, installs what is missing (scripts/deps.sh mpibench).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
build=$repo/build-bench-mpi
rounds=7
mpi4py=1
while [ $# -gt 0 ]; do
    case "$1" in
    --rounds) shift; rounds=$1 ;;
    --no-mpi4py) mpi4py=0 ;;
    --build-dir) shift; build=$1 ;;
    -h|--help) sed -n '2,/^[^#]/s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) echo "mpi.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

"$repo/scripts/deps.sh" mpibench >&2 || {
    echo "mpi.sh: missing dependencies (scripts/deps.sh mpibench)" >&2
    exit 1
}
cmake -S "$repo" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DMPROC_WITH_MPI=ON -DMPROC_BUILD_BENCH=ON -DMPROC_BUILD_TESTS=OFF \
    -DMPROC_BUILD_EXAMPLES=OFF >&2
cmake --build "$build" --target mproc-bench-mpi >&2

launcher=$(command -v mpiexec || command -v mpirun)
flags=""
if grep -q -E 'Open MPI|OpenRTE' <<<"$("$launcher" --version 2>&1)"; then
    flags="--oversubscribe"
    [ "$(id -u)" -ne 0 ] || flags="$flags --allow-run-as-root"
fi
bin=$build/bin/mproc-bench-mpi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
echo "mpi.sh: mproc local pool, 4 workers" >&2
"$bin" local "$rounds" >>"$out"
echo "mpi.sh: mproc MPI pool, $launcher -n 4 $flags" >&2
# shellcheck disable=SC2086
"$launcher" -n 4 $flags "$bin" mpi "$rounds" >>"$out"
# shellcheck disable=SC2086
"$launcher" -n 4 $flags "$bin" mpi "$rounds" 2 >>"$out"
echo "mpi.sh: raw MPI master/worker loop" >&2
# shellcheck disable=SC2086
"$launcher" -n 4 $flags "$bin" raw "$rounds" >>"$out"
if [ "$mpi4py" = 1 ]; then
    py=$(bash -c ". '$repo/scripts/deps.sh'; mproc_find_mpi4py_python")
    echo "mpi.sh: mpi4py.futures MPIPoolExecutor ($py)" >&2
    # Fewer rounds: at chunksize 1 one round takes about 20 s here.
    # shellcheck disable=SC2086
    "$launcher" -n 4 $flags "$py" -m mpi4py.futures "$here/bench_mpi4py.py" 3 >>"$out"
fi

awk '
{ best[$1 " " $2] = $3; med[$1 " " $2] = $4; per[$1 " " $2] = $5; order[n++] = $1 " " $2 }
END {
    printf "%-6s %-26s %10s %10s %12s\n", "case", "impl", "best ms", "median ms", "us per task"
    for (i = 0; i < n; i++) {
        k = order[i]; split(k, p, " ")
        printf "%-6s %-26s %10.2f %10.2f %12.2f\n", p[1], p[2], best[k], med[k], per[k]
    }
    m = best["map mproc-mpi"]; l = best["map mproc-local-4"]
    printf "\nmap, MPI pool / local pool (target <= 1.5): %.2f %s\n", m / l, (m <= 1.5 * l) ? "pass" : "FAIL"
    for (k in best) if (k ~ /^map mpi4py/)
        printf "map, MPI pool / %s (target < 1): %.3f %s\n", substr(k, 5), m / best[k], (m < best[k]) ? "pass" : "FAIL"
    printf "task, MPI pool - raw MPI floor: %.2f us per task (depth 2: %.2f)\n", per["task mproc-mpi"] - per["task raw-mpi"], per["task mproc-mpi-depth2"] - per["task raw-mpi"]
}' "$out"
