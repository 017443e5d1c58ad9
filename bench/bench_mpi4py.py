"""mpi4py.futures' MPIPoolExecutor.map on the input of bench-mpi.c's "map"
case: square over 100,000 ints, on the worker ranks of a static world:

    mpirun -n 4 python3 -m mpi4py.futures bench/bench_mpi4py.py [rounds]

Prints `map IMPL best_ms median_ms per_task_us` like mproc-bench-mpi, for
map's default chunksize (1) and for the chunksize mproc's automatic rule
gives this input on 3 workers (about 8,334 items), and the "task" case
(20,000 ints at chunksize 1).
"""
import sys
import time

from mpi4py.futures import MPIPoolExecutor


def square(x):
    return x * x


def bench(ex, n, chunksize, rounds):
    xs = range(n)
    want = [x * x for x in xs]
    times = []
    for r in range(rounds + 1):
        t0 = time.perf_counter()
        out = list(ex.map(square, xs, chunksize=chunksize))
        t = (time.perf_counter() - t0) * 1000
        if out != want:
            raise SystemExit("bench_mpi4py: wrong results")
        if r > 0:
            times.append(t)
    times.sort()
    return times[0], times[len(times) // 2]


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    from mpi4py import MPI
    workers = MPI.COMM_WORLD.Get_size() - 1  # static world: rank 0 submits
    with MPIPoolExecutor() as ex:
        auto = -(-100000 // (4 * workers))
        for case, n, cs, impl in (
            ("map", 100000, 1, "mpi4py-chunksize1"),
            ("map", 100000, auto, "mpi4py-chunksize%d" % auto),
            ("task", 20000, 1, "mpi4py"),
        ):
            best, med = bench(ex, n, cs, rounds)
            print("%s %s %.2f %.2f %.2f" % (case, impl, best, med,
                                            best * 1000 / n), flush=True)


if __name__ == "__main__":
    main()
