#!/usr/bin/env python3
"""Turns the JSON lines of mproc-bench and bench_py.py into the report.

    python3 bench/report.py [--json] [FILE...]   (stdin without FILE)

FILE may also be the saved output of `bench/run.sh --json`: the tables can
be printed again from it.

Without --json: a Markdown table of every result (median of the rounds,
spread, ratio to the benchmark's baseline measured in the same run), then
the table of targets with the ratio and PASS/FAIL. A ratio is the ratio
of the two medians, measured in the same run. With --json: the input
records again, one JSON object per line, followed by one record per target:
{"bench", "impl": "mproc/raw", "value": ratio, "unit": "ratio", "target",
"pass"}.
"""

import json
import os
import platform
import sys

# The baseline each benchmark's ratios are taken against (same run).
BASELINE = {
    "process-fork": "raw",
    "process-spawn": "raw",
    "memory-child-rss": "raw-fork",
    "memory-child-uss": "raw-fork",
    "pipe-rtt-2cpu": "raw",
    "pipe-rtt-1cpu": "raw",
    "pipe-tput-64": "raw",
    "pipe-tput-64k": "raw",
    "queue-1p1c": "python",
    "queue-2p2c": "python",
    "lock-uncontended": "raw-mutex",
    "lock-contended": "raw-mutex",
    "pool-imap-unordered": "raw",
    "pool-apply": "raw",
    "pool-map-1m": "raw",
    "pool-map-1m-cpu": "raw",
    "pool-create": "python-fork",
    "pool-kill-report": "mproc",
    "pool-kill-full": "mproc",
}

ORDER = list(BASELINE)

# Lower is better for these units; higher for the others.
TIME_UNITS = {"us", "ns", "ms", "s", "KiB"}

# (bench, impl, reference (impl, or (bench, impl)), kind, threshold)
#   slower_le: impl's time / reference's time <= threshold
#   faster_ge: reference's time / impl's time >= threshold
#   rate_ge:   impl's rate / reference's rate >= threshold
#   abs_le:    impl's value <= threshold, in its own unit (reference None)
TARGETS = [
    ("process-fork", "mproc", "raw", "slower_le", 1.25),
    ("process-fork", "mproc", "python-fork", "faster_ge", 10),
    ("process-spawn", "mproc", "raw", "slower_le", 1.5),
    ("process-spawn", "mproc", "python-spawn", "faster_ge", 20),
    ("process-spawn", "mproc", "python-forkserver", "faster_ge", 5),
    ("pipe-rtt-2cpu", "mproc", "raw", "slower_le", 1.1),
    ("pipe-rtt-1cpu", "mproc", "raw", "slower_le", 1.1),
    ("pipe-tput-64", "mproc", "raw", "rate_ge", 0.8),
    ("pipe-tput-64", "mproc", "python", "rate_ge", 2),
    ("pipe-tput-64k", "mproc", "raw", "rate_ge", 0.9),
    ("queue-1p1c", "mproc", "python", "rate_ge", 20),
    ("queue-2p2c", "mproc", ("queue-1p1c", "mproc"), "rate_ge", 1.0),
    ("lock-uncontended", "mproc", "raw-mutex", "slower_le", 1.3),
    ("lock-uncontended", "mproc", "raw-sem", "slower_le", 1.3),
    ("lock-uncontended", "mproc", "apr", "slower_le", 1.0),
    ("lock-contended", "mproc", "raw-mutex", "rate_ge", 0.67),
    ("lock-contended", "mproc", "python", "rate_ge", 2),
    ("pool-imap-unordered", "mproc", "raw", "rate_ge", 0.8),
    ("pool-imap-unordered", "mproc", "python-pool", "rate_ge", 2),
    ("pool-apply", "mproc", "raw", "slower_le", 2),
    ("pool-map-1m", "mproc", "raw", "slower_le", 1.2),
    ("pool-create", "mproc-fork", None, "abs_le", 5),
    ("pool-create", "mproc-spawn", "python-spawn", "faster_ge", 10),
    ("pool-kill-report", "mproc", None, "abs_le", 100),
    ("pool-kill-full", "mproc", None, "abs_le", 200),
]


def load(paths):
    recs = []
    streams = [open(p) for p in paths] if paths else [sys.stdin]
    for f in streams:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                print("report: skipping a malformed line: %s" % line,
                      file=sys.stderr)
                continue
            # The target records of an earlier --json run are recomputed.
            if rec.get("unit") != "ratio":
                recs.append(rec)
    return recs


def fmt(v):
    if v is None:
        return "n/a"
    a = abs(v)
    if a >= 1e9:
        return "%.3g G" % (v / 1e9)
    if a >= 1e6:
        return "%.3g M" % (v / 1e6)
    if a >= 1e4:
        return "%.3g k" % (v / 1e3)
    if a >= 100:
        return "%.0f" % v
    if a >= 10:
        return "%.1f" % v
    return "%.2f" % v


def na_text(rec):
    """The result cell of a case that has no value."""
    note = rec.get("note")
    if note is None:
        return "n/a (not measured)"
    if note.startswith("not implemented"):
        return "n/a (not implemented)"
    return "n/a (error)"


def ratio_text(r):
    return "%.2fx" % r if r < 100 else "%.0fx" % r


def paired_ratio(a, b):
    """a / b for two records: the ratio of their medians. Both come from
    the same run, and mproc-bench interleaves the rounds of one benchmark,
    so a slow spell of a shared machine hits both medians alike. (The
    median of per-round ratios was tried too: with the spiky noise of a
    loaded 2-core machine it swung further than the ratio of medians.)"""
    return a["value"] / b["value"]


def evaluate(by_key):
    out = []
    ran = {b for b, _ in by_key}
    for bench, impl, ref, kind, thr in TARGETS:
        if bench not in ran:
            continue  # not selected in this run
        if kind == "abs_le":
            ra = by_key.get((bench, impl), {})
            a = ra.get("value")
            text = "%s <= %g %s" % (impl, thr, ra.get("unit", ""))
            if a is None:
                out.append((bench, impl, "-", text, None, None, na_text(ra)))
            else:
                ok = a <= thr
                out.append((bench, impl, "-", text, a, ok,
                            "PASS" if ok else "FAIL"))
            continue
        ref_key = ref if isinstance(ref, tuple) else (bench, ref)
        ref_name = ref if isinstance(ref, str) else "%s %s" % ref
        ra = by_key.get((bench, impl), {})
        rb = by_key.get(ref_key, {})
        a, b = ra.get("value"), rb.get("value")
        if kind == "slower_le":
            text = "%s <= %gx %s (time)" % (impl, thr, ref_name)
        elif kind == "faster_ge":
            text = "%s >= %gx faster than %s" % (impl, thr, ref_name)
        else:
            text = "%s >= %gx %s (rate)" % (impl, thr, ref_name)
        if a is None or b is None or a <= 0 or b <= 0:
            rec = by_key.get((bench, impl) if a is None else ref_key, {})
            out.append((bench, impl, ref_name, text, None, None,
                        na_text(rec)))
            continue
        if kind == "slower_le":
            r = paired_ratio(ra, rb)
            ok = r <= thr
        elif kind == "faster_ge":
            r = paired_ratio(rb, ra)
            ok = r >= thr
        else:
            r = paired_ratio(ra, rb)
            ok = r >= thr
        out.append((bench, impl, ref_name, text, r, ok,
                    "PASS" if ok else "FAIL"))
    return out


def md_table(header, rows):
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    line = lambda cells: "| " + " | ".join(
        str(c).ljust(w) for c, w in zip(cells, widths)) + " |"
    print(line(header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(line(r))


def machine():
    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            for l in f:
                if l.startswith("model name"):
                    cpu = l.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return "%s, %d CPUs (%d usable), %s %s, Python %s" % (
        cpu, os.cpu_count() or 0, len(os.sched_getaffinity(0)),
        platform.system(), platform.release(), platform.python_version())


def main():
    args = sys.argv[1:]
    as_json = "--json" in args
    paths = [a for a in args if a != "--json"]
    recs = load(paths)
    by_key = {}
    for r in recs:
        by_key[(r.get("bench"), r.get("impl"))] = r
    checks = evaluate(by_key)

    if as_json:
        for r in recs:
            print(json.dumps(r))
        for bench, impl, ref, text, ratio, ok, result in checks:
            rec = {"bench": bench, "impl": "%s/%s" % (impl, ref),
                   "value": None if ratio is None else round(ratio, 4),
                   "unit": "ratio", "target": text, "pass": ok}
            if ratio is None:
                rec["note"] = result
            print(json.dumps(rec))
        return 0

    print("Machine: %s" % machine())
    if os.environ.get("MPROC_BENCH_COMMIT"):
        print("mproc commit: %s" % os.environ["MPROC_BENCH_COMMIT"])
    print()
    benches = sorted({r["bench"] for r in recs},
                     key=lambda b: (ORDER.index(b) if b in ORDER else 99, b))
    rows = []
    for b in benches:
        base = by_key.get((b, BASELINE.get(b)), {})
        for r in recs:
            if r["bench"] != b:
                continue
            v = r.get("value")
            if v is None:
                rows.append((b, r["impl"], na_text(r), r.get("unit", ""),
                             "", "", r.get("note", "")))
                continue
            spread = "%s-%s" % (fmt(r.get("min")), fmt(r.get("max"))) \
                if "min" in r else ""
            rel = ""
            if base.get("value") and r["impl"] != BASELINE.get(b):
                rel = ratio_text(paired_ratio(r, base)) + " " + BASELINE[b]
            rows.append((b, r["impl"], fmt(v), r.get("unit", ""), spread,
                         rel, r.get("note", "")))
    md_table(("benchmark", "impl", "median", "unit", "min-max", "vs baseline",
              "note"), rows)
    print()
    trows = [(bench, text, "" if ratio is None else
              (fmt(ratio) if ref == "-" else ratio_text(ratio)), result)
             for bench, impl, ref, text, ratio, ok, result in checks]
    md_table(("benchmark", "target", "measured", "result"), trows)
    npass = sum(1 for c in checks if c[5] is True)
    nfail = sum(1 for c in checks if c[5] is False)
    print()
    print("targets: %d PASS, %d FAIL, %d n/a" %
          (npass, nfail, len(checks) - npass - nfail))
    return 0


if __name__ == "__main__":
    sys.exit(main())
