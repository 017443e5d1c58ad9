#!/usr/bin/env python3
"""Python multiprocessing baselines of the mproc benchmarks.

    python3 bench/bench_py.py [--quick] [--rounds N] [BENCH...]

Prints one JSON object per line, the same records as mproc-bench
({"bench", "impl", "value", "unit", "min", "max", "rounds"} with the median
of the rounds as value, or "value": null and a "note"), for the same bench
names, so bench/report.py can put them side by side. Rounds of the
implementations of one benchmark are interleaved, as in mproc-bench.

The module is imported again by every spawn/forkserver child: everything
that runs lives under the __main__ guard.
"""

import json
import multiprocessing as mp
import os
import statistics
import sys
import time

QUICK = False


def n_of(full, quick):
    return quick if QUICK else full


# --------------------------------------------------------------------------
# Children (module level so that spawn and forkserver can find them)


def empty(x=None):
    return None


def inc(x):
    return x + 1


def noop():
    pass


def idle():
    time.sleep(30)


def pin(cpu):
    if cpu is not None and cpu >= 0:
        os.sched_setaffinity(0, {cpu})


def echo(conn, n, cpu):
    pin(cpu)
    for _ in range(n):
        conn.send_bytes(conn.recv_bytes())


def sink(conn, n):
    conn.send_bytes(b"r")
    for _ in range(n):
        conn.recv_bytes()
    conn.send_bytes(b"d")


def producer(q, n):
    item = b"q" * 64
    for _ in range(n):
        q.put(item)


def consumer(q, n):
    for _ in range(n):
        q.get()


def lock_loop(lock, n, barrier, times, who):
    barrier.wait()
    t0 = time.monotonic()
    for _ in range(n):
        lock.acquire()
        lock.release()
    times[2 * who] = t0
    times[2 * who + 1] = time.monotonic()


# --------------------------------------------------------------------------
# Measurements: each returns the value (or a tuple of values) of one round


def start_join(method, n, warm):
    ctx = mp.get_context(method)
    t0 = 0.0
    for i in range(warm + n):
        if i == warm:
            t0 = time.perf_counter()
        p = ctx.Process(target=noop)
        p.start()
        p.join()
        if p.exitcode != 0:
            raise RuntimeError("child exit code %s" % p.exitcode)
    return (time.perf_counter() - t0) / n * 1e6


def read_mem(pid):
    rss, priv = None, 0
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            k, _, rest = line.partition(":")
            if k == "Rss":
                rss = int(rest.split()[0])
            elif k in ("Private_Clean", "Private_Dirty"):
                priv += int(rest.split()[0])
    return rss, priv


def child_mem(method):
    ctx = mp.get_context(method)
    p = ctx.Process(target=idle)
    p.start()
    time.sleep(n_of(0.5, 0.25))
    try:
        return read_mem(p.pid)
    finally:
        p.kill()
        p.join()


def cpus():
    allowed = sorted(os.sched_getaffinity(0))
    return allowed[0], allowed[1] if len(allowed) > 1 else None


def rtt(same_cpu):
    c0, c1 = cpus()
    if not same_cpu and c1 is None:
        raise RuntimeError("needs 2 usable CPUs")
    saved = os.sched_getaffinity(0)
    warm = 1000
    n = n_of(20000, 5000) if same_cpu else n_of(5000, 1500)
    ctx = mp.get_context("fork")
    a, b = ctx.Pipe(True)
    os.sched_setaffinity(0, {c0})
    try:
        p = ctx.Process(target=echo,
                        args=(b, warm + n, -1 if same_cpu else c1))
        p.start()
        b.close()
        msg = b"x" * 64
        t0 = 0.0
        for i in range(warm + n):
            if i == warm:
                t0 = time.perf_counter()
            a.send_bytes(msg)
            if len(a.recv_bytes()) != 64:
                raise RuntimeError("bad echo")
        us = (time.perf_counter() - t0) / n * 1e6
        p.join()
        a.close()
        return us
    finally:
        os.sched_setaffinity(0, saved)


def tput(size):
    n = n_of(150000, 40000) if size <= 64 else n_of(6000, 1500)
    ctx = mp.get_context("fork")
    a, b = ctx.Pipe(True)
    p = ctx.Process(target=sink, args=(b, n))
    p.start()
    b.close()
    msg = b"x" * size
    a.recv_bytes()
    t0 = time.perf_counter()
    for _ in range(n):
        a.send_bytes(msg)
    a.recv_bytes()
    secs = time.perf_counter() - t0
    p.join()
    a.close()
    return n / secs if size <= 64 else n * size / secs / 1e6


def queue(producers, consumers):
    n = n_of(150000, 40000)
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    ps = [ctx.Process(target=producer, args=(q, n // producers))
          for _ in range(producers)]
    ps += [ctx.Process(target=consumer, args=(q, n // consumers))
           for _ in range(consumers)]
    t0 = time.perf_counter()
    for p in ps:
        p.start()
    for p in ps:
        p.join()
        if p.exitcode != 0:
            raise RuntimeError("child exit code %s" % p.exitcode)
    return n / (time.perf_counter() - t0)


def lock_uncontended():
    lock = mp.get_context("fork").Lock()
    n = n_of(1000000, 200000)
    for _ in range(1000):
        lock.acquire()
        lock.release()
    # Best of 10 batches, as mproc-bench does for its pure CPU loops.
    batch = n // 10
    best = None
    for _ in range(10):
        t0 = time.perf_counter()
        for _ in range(batch):
            lock.acquire()
            lock.release()
        dt = time.perf_counter() - t0
        best = dt if best is None or dt < best else best
    return best / batch * 1e9


def lock_contended():
    ctx = mp.get_context("fork")
    lock = ctx.Lock()
    barrier = ctx.Barrier(2)
    times = ctx.Array("d", 4, lock=False)
    n = n_of(300000, 80000)
    p = ctx.Process(target=lock_loop, args=(lock, n, barrier, times, 1))
    p.start()
    lock_loop(lock, n, barrier, times, 0)
    p.join()
    return 2 * n / (max(times[1], times[3]) - min(times[0], times[2]))


def pool_imap(kind):
    n = n_of(20000, 5000)
    if kind == "pool":
        with mp.get_context("fork").Pool(2) as pool:
            t0 = time.perf_counter()
            for _ in pool.imap_unordered(empty, range(n), chunksize=1):
                pass
            return n / (time.perf_counter() - t0)
    import concurrent.futures as cf
    with cf.ProcessPoolExecutor(2, mp_context=mp.get_context("fork")) as ex:
        ex.submit(empty).result()
        t0 = time.perf_counter()
        for _ in ex.map(empty, range(n), chunksize=1):
            pass
        return n / (time.perf_counter() - t0)


def pool_apply(kind):
    n = n_of(3000, 500)
    if kind == "pool":
        with mp.get_context("fork").Pool(2) as pool:
            for _ in range(50):
                pool.apply(inc, (1,))
            t0 = time.perf_counter()
            for _ in range(n):
                pool.apply(inc, (1,))
            return (time.perf_counter() - t0) / n * 1e6
    import concurrent.futures as cf
    with cf.ProcessPoolExecutor(2, mp_context=mp.get_context("fork")) as ex:
        for _ in range(50):
            ex.submit(inc, 1).result()
        t0 = time.perf_counter()
        for _ in range(n):
            ex.submit(inc, 1).result()
        return (time.perf_counter() - t0) / n * 1e6


def pool_map():
    n = n_of(1000000, 100000)
    with mp.get_context("fork").Pool(2) as pool:
        pool.apply(empty)
        t0 = time.perf_counter()
        pool.map(inc, range(n))
        return time.perf_counter() - t0


def pool_create(method):
    n = n_of(20, 5) if method == "fork" else n_of(4, 2)
    t0 = time.perf_counter()
    for _ in range(n):
        pool = mp.get_context(method).Pool(2)
        pool.apply(empty)
        pool.close()
        pool.join()
    return (time.perf_counter() - t0) / n * 1e3


# --------------------------------------------------------------------------
# Benchmarks: (command, [metric names], [units], [(impl, function)],
# rounds, quick rounds). They mirror mproc-bench's sub-commands.

BENCHES = [
    ("process-fork", ["process-fork"], ["us"],
     [("python-fork", lambda: start_join("fork", n_of(150, 40), 10))], 7, 3),
    ("process-spawn", ["process-spawn"], ["us"],
     [("python-spawn", lambda: start_join("spawn", n_of(12, 4), 1)),
      ("python-forkserver",
       lambda: start_join("forkserver", n_of(40, 10), 2))], 5, 3),
    ("memory", ["memory-child-rss", "memory-child-uss"], ["KiB", "KiB"],
     [("python-fork", lambda: child_mem("fork")),
      ("python-spawn", lambda: child_mem("spawn")),
      ("python-forkserver", lambda: child_mem("forkserver"))], 3, 1),
    ("pipe-rtt-2cpu", ["pipe-rtt-2cpu"], ["us"],
     [("python", lambda: rtt(False))], 5, 3),
    ("pipe-rtt-1cpu", ["pipe-rtt-1cpu"], ["us"],
     [("python", lambda: rtt(True))], 5, 3),
    ("pipe-tput-64", ["pipe-tput-64"], ["msg/s"],
     [("python", lambda: tput(64))], 5, 3),
    ("pipe-tput-64k", ["pipe-tput-64k"], ["MB/s"],
     [("python", lambda: tput(64 * 1024))], 5, 3),
    ("queue-1p1c", ["queue-1p1c"], ["items/s"],
     [("python", lambda: queue(1, 1))], 5, 3),
    ("queue-2p2c", ["queue-2p2c"], ["items/s"],
     [("python", lambda: queue(2, 2))], 5, 3),
    ("lock-uncontended", ["lock-uncontended"], ["ns"],
     [("python", lock_uncontended)], 7, 3),
    ("lock-contended", ["lock-contended"], ["ops/s"],
     [("python", lock_contended)], 5, 3),
    ("pool-imap-unordered", ["pool-imap-unordered"], ["tasks/s"],
     [("python-pool", lambda: pool_imap("pool")),
      ("python-ppe", lambda: pool_imap("ppe"))], 5, 3),
    ("pool-apply", ["pool-apply"], ["us"],
     [("python-pool", lambda: pool_apply("pool")),
      ("python-ppe", lambda: pool_apply("ppe"))], 5, 3),
    ("pool-map-1m", ["pool-map-1m"], ["s"],
     [("python-pool", pool_map)], 3, 2),
    ("pool-create", ["pool-create"], ["ms"],
     [("python-fork", lambda: pool_create("fork")),
      ("python-spawn", lambda: pool_create("spawn"))], 3, 2),
]


def emit(rec):
    print(json.dumps(rec), flush=True)


def run(bench, rounds_override):
    cmd, metrics, units, impls, rounds, rounds_quick = bench
    rounds = rounds_override or (rounds_quick if QUICK else rounds)
    samples = {impl: [] for impl, _ in impls}
    failed = {}
    for r in range(rounds):
        for impl, fn in impls:
            if impl in failed:
                continue
            print("  %s %s round %d/%d" % (cmd, impl, r + 1, rounds),
                  file=sys.stderr, flush=True)
            try:
                v = fn()
            except Exception as e:  # a failed case is reported, not fatal
                failed[impl] = "%s: %s" % (type(e).__name__, e)
                continue
            samples[impl].append(v if isinstance(v, tuple) else (v,))
    for m, (metric, unit) in enumerate(zip(metrics, units)):
        for impl, _ in impls:
            if impl in failed:
                emit({"bench": metric, "impl": impl, "value": None,
                      "unit": unit, "note": failed[impl]})
                continue
            vals = sorted(s[m] for s in samples[impl])
            emit({"bench": metric, "impl": impl,
                  "value": round(statistics.median(vals), 6), "unit": unit,
                  "min": round(vals[0], 6), "max": round(vals[-1], 6),
                  "rounds": len(vals)})


def main():
    global QUICK
    args = sys.argv[1:]
    rounds = 0
    sel = []
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--quick":
            QUICK = True
        elif a == "--rounds" and i + 1 < len(args):
            i += 1
            rounds = int(args[i])
        elif a == "--list":
            for b in BENCHES:
                print(b[0])
            return 0
        elif a.startswith("-"):
            print(__doc__, file=sys.stderr)
            return 2
        else:
            sel.append(a)
        i += 1
    for b in BENCHES:
        if not sel or "all" in sel or b[0] in sel:
            print("bench_py: %s" % b[0], file=sys.stderr, flush=True)
            run(b, rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
