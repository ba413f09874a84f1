"""Turns the JSON lines of ops/bench into the Markdown table of docs/benchmarks.md."""
import json
import statistics
import sys

rows = [json.loads(line) for line in open(sys.argv[1])]
secs, reps = sys.argv[2], sys.argv[3]


def fmt(values, digits=0):
    values = sorted(values)
    med = statistics.median(values)
    return f"{med:,.{digits}f} ({values[0]:,.{digits}f}-{values[-1]:,.{digits}f})"


print(f"Each cell: median of {reps} runs of {secs} s (min-max).\n")
print("| measure | clients | PostgreSQL | SQLite | pgbench insert TPS (reference) | PostgreSQL / pgbench |")
print("|---|---|---|---|---|---|")
clients = sorted({r["clients"] for r in rows if r["kind"] == "pgbench"})
for c in clients:
    ref = [r["value"] for r in rows if r["kind"] == "pgbench" and r["clients"] == c]
    cell = {}
    for store in ("postgres", "sqlite"):
        cell[store] = [r["run"]["mutations_per_s"] for r in rows
                       if r["kind"] == "mutations" and r["store"] == store and r["clients"] == c]
    ratios = sorted(p / statistics.median(ref) for p in cell["postgres"])
    print(f"| GraphQL mutations/s | {c} | {fmt(cell['postgres'])} | {fmt(cell['sqlite'])} | {fmt(ref)} | "
          f"{statistics.median(ratios):.2f} ({ratios[0]:.2f}-{ratios[-1]:.2f}) |")
for c in clients:
    cell = {}
    for store in ("postgres", "sqlite"):
        cell[store] = [r["run"]["mutation_p99_ms"] for r in rows
                       if r["kind"] == "mutations" and r["store"] == store and r["clients"] == c]
    print(f"| mutation p99 latency, ms | {c} | {fmt(cell['postgres'], 1)} | {fmt(cell['sqlite'], 1)} | | |")
for q in ("panel_p50_ms", "panel_p99_ms"):
    cell = {s: [r["run"][q] for r in rows if r["kind"] == "panel" and r["store"] == s] for s in ("postgres", "sqlite")}
    label = "control-panel p50, ms" if q.endswith("p50_ms") else "control-panel p99, ms"
    print(f"| {label} (8 writers + 2 readers) | 10 | {fmt(cell['postgres'], 2)} | {fmt(cell['sqlite'], 2)} | | |")
for name in sorted({r["projection"] for r in rows if r["kind"] == "rebuild"}):
    cell = {}
    for s in ("postgres", "sqlite"):
        runs = [r for r in rows if r["kind"] == "rebuild" and r["store"] == s and r["projection"] == name]
        cell[s] = [r["events"] / r["seconds"] for r in runs]
        n = runs[0]["events"] if runs else 0
    print(f"| rebuild `{name}`, events/s over {n:,} events | 1 | {fmt(cell['postgres'])} | {fmt(cell['sqlite'])} | | |")
