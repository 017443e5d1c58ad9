#!/usr/bin/env bash
# The MPI pool on one machine: installs what is missing (Open MPI:
# libopenmpi-dev and openmpi-bin, as root; see scripts/deps.sh mpi),
# builds mproc with its MPI component (MPROC_WITH_MPI, release) into
# build/mpi-release, and runs examples/mpi_primes.c as a job of 4 ranks:
# rank 0 is the pool's master, ranks 1-3 its workers (docs/mpi.md).
#
#   scripts/mpi-demo.sh [RANKS]       default 4
#
# Open MPI refuses to start more ranks than the machine has cores unless
# told (--oversubscribe), and refuses to run as root unless told
# (--allow-run-as-root): both are added here, the second only as root.
# MPICH's mpiexec needs neither. Works from any directory.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# shellcheck source=deps.sh
. scripts/deps.sh

ranks=${1:-4}
mproc_deps mpi

build=build/mpi-release
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DMPROC_WITH_MPI=ON -DMPROC_BUILD_TESTS=OFF
cmake --build "$build" --target mpi_primes

launcher=$(command -v mpiexec || command -v mpirun)
flags=()
if grep -q -E 'Open MPI|OpenRTE' <<<"$("$launcher" --version 2>&1)"; then
    flags+=(--oversubscribe)
    if [ "$(id -u)" -eq 0 ]; then
        flags+=(--allow-run-as-root)
    fi
fi

echo
echo "=== $launcher -n $ranks ${flags[*]} $build/bin/mpi_primes"
# A job that hangs must not hang the demo.
timeout 300 "$launcher" -n "$ranks" "${flags[@]}" "$build/bin/mpi_primes"
echo
echo "mpi-demo: the pool of rank 0 ran on ranks 1-$((ranks - 1))"
