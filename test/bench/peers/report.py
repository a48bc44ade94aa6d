#!/usr/bin/python3
"""report.py: summarises `make bench-peers` (test/bench/peers.sh).

Reads the per-run rows of OUT/rounds.tsv (written by rounds.sh), prints a
Markdown table with the median of the rounds for every system and data set,
and writes the same table as TSV to the path given.  A peer's ratios are the
median over rounds of mf_ext's time in that round divided by the peer's, with
the same solver (cholesky, cg; LIBMF's SGD against mf_ext's cholesky, its
default for explicit feedback).

Usage: report.py ROUNDS_TSV OUT_TSV MACHINE DATE
"""
import csv
import statistics
import sys

rounds_path, out_path, machine, date = sys.argv[1:5]
with open(rounds_path, newline="") as f:
    runs = list(csv.DictReader(f, delimiter="\t"))

ORDER = {"mf_ext": 0, "cmfrec": 1, "implicit": 2, "LIBMF": 3}
SOLVERS = {"cholesky": 0, "cg": 1, "sgd": 2}
groups = {}
for r in runs:
    groups.setdefault((r["data"], r["system"], r["solver"]), []).append(r)
data_order = list(dict.fromkeys(r["data"] for r in runs))


def med(rows, key):
    return statistics.median(float(r[key]) for r in rows)


def ratios(data, solver, rows, key):
    """mf_ext's time over the peer's, per round."""
    ours = {r["round"]: float(r[key]) for r in groups.get((data, "mf_ext", solver), [])}
    return [ours[r["round"]] / float(r[key]) for r in rows if r["round"] in ours and float(r[key]) > 0]


table = []
for data in data_order:
    keys = sorted((k for k in groups if k[0] == data), key=lambda k: (SOLVERS[k[2]], ORDER[k[1]]))
    for key in keys:
        _, system, solver = key
        rows = groups[key]
        line = {
            "system": system, "solver": solver, "data": data,
            "iterations": rows[0]["iterations"], "rounds": len(rows),
            "wall_s": med(rows, "wall_s"), "cpu_s": med(rows, "cpu_s"),
            "s_per_iteration": med(rows, "s_per_iteration"),
            "metric_name": rows[0]["metric_name"], "metric": med(rows, "metric"),
            "peak_mb": med(rows, "peak_kb") / 1024,
            "compared_with": "", "wall_ratio": None, "wall_ratio_min": None,
            "wall_ratio_max": None, "cpu_ratio": None,
        }
        if system != "mf_ext":
            ours = "cholesky" if solver == "sgd" else solver
            wall = ratios(data, ours, rows, "wall_s")
            cpu = ratios(data, ours, rows, "cpu_s")
            if wall:
                line.update(compared_with="mf_ext " + ours, wall_ratio=statistics.median(wall),
                            wall_ratio_min=min(wall), wall_ratio_max=max(wall),
                            cpu_ratio=statistics.median(cpu) if cpu else None)
        table.append(line)


def fmt(x, digits):
    return "" if x is None else "%.*f" % (digits, x)


print("machine: %s; date: %s; medians of %d rounds" % (machine, date, max(len(g) for g in groups.values())))
print()
print("| system | solver | data | iterations | wall s | CPU s | s / iteration "
      "| wall ratio mf_ext/peer (min–max) | CPU ratio mf_ext/peer | held-out metric | peak MB |")
print("|---|---|---|---:|---:|---:|---:|---:|---:|---|---:|")
for t in table:
    ratio = ""
    if t["wall_ratio"] is not None:
        ratio = "%.2f (%.2f–%.2f) vs %s" % (t["wall_ratio"], t["wall_ratio_min"], t["wall_ratio_max"],
                                            t["compared_with"].replace("mf_ext ", ""))
    print("| %s | %s | %s | %s | %.2f | %.2f | %.3f | %s | %s | %s %.4f | %.0f |" % (
        t["system"], t["solver"], t["data"], t["iterations"], t["wall_s"], t["cpu_s"],
        t["s_per_iteration"], ratio, fmt(t["cpu_ratio"], 2), t["metric_name"], t["metric"],
        t["peak_mb"]))

columns = ["system", "solver", "data", "iterations", "rounds", "wall_s", "cpu_s", "s_per_iteration",
           "wall_ratio", "wall_ratio_min", "wall_ratio_max", "cpu_ratio", "compared_with",
           "metric_name", "metric", "peak_mb", "machine", "date"]
with open(out_path, "w") as f:
    f.write("\t".join(columns) + "\n")
    for t in table:
        t = dict(t, machine=machine, date=date)
        cells = []
        for c in columns:
            v = t[c]
            if v is None:
                v = ""
            elif isinstance(v, float):
                v = "%.4f" % v if c != "peak_mb" else "%.0f" % v
            cells.append(str(v))
        f.write("\t".join(cells) + "\n")
