"""Turns the JSON lines of ops/bench into the Markdown table of docs/benchmarks.md."""
import json
import statistics
import sys

rows = [json.loads(line) for line in open(sys.argv[1])]
secs, reps = sys.argv[2], sys.argv[3]


def fmt(values, digits=0):
    values = sorted(values)
    if not values:
        return ""
    med = statistics.median(values)
    return f"{med:,.{digits}f} ({values[0]:,.{digits}f}-{values[-1]:,.{digits}f})"


def spread(values, digits=2):
    values = sorted(values)
    return f"{statistics.median(values):.{digits}f} ({values[0]:.{digits}f}-{values[-1]:.{digits}f})"


def paired(a, b):
    """Per-run ratios a/b of two lists measured in the same runs, in order."""
    return [x / y for x, y in zip(a, b) if y]


def verdict(ok):
    return "yes" if ok else "**no**"


wrk = [r for r in rows if r["kind"] == "wrk"]
if wrk:
    def runs(system, op, c, key="ok_per_s"):
        return [r["run"][key] for r in wrk if r["system"] == system and r["op"] == op and r["clients"] == c]

    failed = sum(r["run"]["failed"] + r["run"]["socket_errors"] for r in wrk)
    print(f"Targets of issue 16. `wrk` drives every system alike (one thread per connection, each")
    print(f"connection its own person or account; {secs} s runs, {reps} repetitions alternated between")
    print(f"systems); each cell: median (min-max); ratios are taken per repetition. Failed responses")
    print(f"in all wrk runs: {failed}.\n")
    print("| target | measure | reference | Portal | ratio | reached |")
    print("|---|---|---|---|---|---|")
    for c in sorted({r["clients"] for r in wrk}):
        stock, pg = runs("stock", "write", c), runs("postgres", "write", c)
        if stock and pg:
            ratios = paired(pg, stock)
            print(f"| PostgreSQL writes ≥ 1.5 × stock | mutations/s, {c} conn. | stock cqrs-es {fmt(stock)} | "
                  f"{fmt(pg)} | {spread(ratios)} | {verdict(statistics.median(ratios) >= 1.5)} |")
    p50 = runs("postgres", "write", 1, "p50_ms")
    if p50:
        ref = runs("stock", "write", 1, "p50_ms")
        print(f"| write p50 ≤ 2 ms | PostgreSQL, 1 conn., ms | stock {fmt(ref, 2)} | {fmt(p50, 2)} | "
              f"{spread(paired(p50, ref))} | {verdict(statistics.median(p50) <= 2)} |")
    lite = runs("sqlite", "write", 8)
    if lite:
        print(f"| SQLite ≥ 1,000 writes/s at 8 | mutations/s, 8 conn. | | {fmt(lite)} | | "
              f"{verdict(statistics.median(lite) >= 1000)} |")
    for store in ("postgres", "sqlite"):
        for c in sorted({r["clients"] for r in wrk}):
            panel, me = runs(store, "panel", c), runs(store, "me", c)
            if panel and me:
                ratios = paired(panel, me)
                print(f"| controlPanel ≥ 0.5 × `me` | {store} reads/s, {c} conn. | `me` {fmt(me)}; stock GET "
                      f"{fmt(runs('stock', 'read', c))} | {fmt(panel)} | {spread(ratios)} | "
                      f"{verdict(statistics.median(ratios) >= 0.5)} |")
    for store in ("postgres", "sqlite"):
        grown, fresh = runs(store, "write_10k", 1), runs(store, "write", 1)
        if grown and fresh:
            events = min(r["events"] for r in wrk if r["system"] == store and r["op"] == "write_10k")
            ratios = paired(grown, fresh)
            print(f"| write at 10,000 events ≥ 0.9 × fresh | {store} mutations/s, 1 conn. ({events:,}+ events) | "
                  f"fresh {fmt(fresh)} | {fmt(grown)} | {spread(ratios)} | {verdict(statistics.median(ratios) >= 0.9)} |")
    print()

if any(r["kind"] in ("pgbench", "mutations") for r in rows):
    print(f"Each cell: median of {reps} runs of {secs} s (min-max).\n")
    print("| measure | clients | PostgreSQL | SQLite | pgbench insert TPS (reference) | PostgreSQL / pgbench |")
    print("|---|---|---|---|---|---|")
clients = sorted({r["clients"] for r in rows if r["kind"] == "pgbench"})
for c in clients:
    ref = [r["value"] for r in rows if r["kind"] == "pgbench" and r["clients"] == c]
    if not any(r["kind"] == "mutations" for r in rows):
        print(f"| pgbench insert TPS | {c} | | | {fmt(ref)} | |")
        continue
    cell = {}
    for store in ("postgres", "sqlite"):
        cell[store] = [r["run"]["mutations_per_s"] for r in rows
                       if r["kind"] == "mutations" and r["store"] == store and r["clients"] == c]
    ratios = sorted(p / statistics.median(ref) for p in cell["postgres"])
    print(f"| GraphQL mutations/s | {c} | {fmt(cell['postgres'])} | {fmt(cell['sqlite'])} | {fmt(ref)} | "
          f"{statistics.median(ratios):.2f} ({ratios[0]:.2f}-{ratios[-1]:.2f}) |")
for c in clients if any(r["kind"] == "mutations" for r in rows) else ():
    cell = {}
    for store in ("postgres", "sqlite"):
        cell[store] = [r["run"]["mutation_p99_ms"] for r in rows
                       if r["kind"] == "mutations" and r["store"] == store and r["clients"] == c]
    print(f"| mutation p99 latency, ms | {c} | {fmt(cell['postgres'], 1)} | {fmt(cell['sqlite'], 1)} | | |")
for q in ("panel_p50_ms", "panel_p99_ms") if any(r["kind"] == "panel" for r in rows) else ():
    cell = {s: [r["run"][q] for r in rows if r["kind"] == "panel" and r["store"] == s] for s in ("postgres", "sqlite")}
    label = "control-panel p50, ms" if q.endswith("p50_ms") else "control-panel p99, ms"
    print(f"| {label} (8 writers + 2 readers) | 10 | {fmt(cell['postgres'], 2)} | {fmt(cell['sqlite'], 2)} | | |")
for name in sorted({r["projection"] for r in rows if r["kind"] == "rebuild"}):
    cell = {}
    for s in ("postgres", "sqlite"):
        runs = [r for r in rows if r["kind"] == "rebuild" and r["store"] == s and r["projection"] == name]
        cell[s] = [r["events"] / r["seconds"] for r in runs]
    n = next(r["events"] for r in rows if r["kind"] == "rebuild" and r["projection"] == name)
    print(f"| rebuild `{name}`, events/s over {n:,} events | 1 | {fmt(cell['postgres'])} | {fmt(cell['sqlite'])} | | |")

sections = [r for r in rows if r["kind"] == "section"]
if sections:
    ref8 = [r["value"] for r in rows if r["kind"] == "pgbench" and r["clients"] == 8]
    print("\nOne write command per section, 8 clients (mutations/s; median (min-max)):\n")
    print("| section | command | PostgreSQL | SQLite | PostgreSQL / pgbench at 8 clients |")
    print("|---|---|---|---|---|")
    commands = {"status": "rateStatus", "medication": "changeMedication", "network": "updatePerson",
                "crisis_plan": "reviseCrisisPlan", "exercise": "startExercise / completeExercise"}
    for kind, command in commands.items():
        cell = {s: [r["run"]["mutations_per_s"] for r in sections if r["store"] == s and r["section"] == kind]
                for s in ("postgres", "sqlite")}
        if not cell["postgres"] or not ref8:
            continue
        ratios = sorted(p / statistics.median(ref8) for p in cell["postgres"])
        print(f"| {kind} | `{command}` | {fmt(cell['postgres'])} | {fmt(cell['sqlite'])} | "
              f"{statistics.median(ratios):.3f} ({ratios[0]:.3f}-{ratios[-1]:.3f}) |")
asof = [r for r in rows if r["kind"] == "asof"]
if asof:
    n = asof[0]["run"]["events"]
    print(f"\nReads of one portal with {n:,} events, p50 / p99 in ms (median of runs; `me` is the HTTP floor):\n")
    print("| query | PostgreSQL as of T | PostgreSQL now | SQLite as of T | SQLite now |")
    print("|---|---|---|---|---|")
    for q in ("me", "control_panel", "medications", "network", "crisis_plan", "exercise_log"):
        cells = []
        for s in ("postgres", "sqlite"):
            for when in ("as_of", "now"):
                runs = [r["run"].get(f"{q}_{when}") for r in asof if r["store"] == s]
                runs = [x for x in runs if x]
                if not runs:
                    cells.append("")
                    continue
                p50 = statistics.median(x["p50_ms"] for x in runs)
                p99 = statistics.median(x["p99_ms"] for x in runs)
                cells.append(f"{p50:.2f} / {p99:.2f}")
        print(f"| {q} | " + " | ".join(cells) + " |")
access = [r for r in rows if r["kind"] == "access"]
if access:
    print("\nA provider's recorded read (decided from the relationship's events, appended to the access trail")
    print("before it is answered) next to the owner's own read of the same portal, same run;")
    print("median of runs (min-max of the provider / owner ratio):\n")
    print("| store | clients | read | owner p50 / p99 ms | provider p50 / p99 ms | p50 ratio | p99 ratio | owner reads/s | provider reads/s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for s in ("postgres", "sqlite"):
        for c in sorted({r["clients"] for r in access}):
            runs = [r["run"] for r in access if r["store"] == s and r["clients"] == c]
            if not runs:
                continue
            for read in ("medications", "control_panel"):
                own = [x[f"{read}_owner"] for x in runs]
                prov = [x[f"{read}_provider"] for x in runs]
                med = lambda xs, k: statistics.median(x[k] for x in xs)
                r50 = sorted(p["p50_ms"] / o["p50_ms"] for o, p in zip(own, prov))
                r99 = sorted(p["p99_ms"] / o["p99_ms"] for o, p in zip(own, prov))
                print(f"| {s} | {c} | {read} | {med(own, 'p50_ms'):.2f} / {med(own, 'p99_ms'):.2f} | "
                      f"{med(prov, 'p50_ms'):.2f} / {med(prov, 'p99_ms'):.2f} | "
                      f"{statistics.median(r50):.2f}× ({r50[0]:.2f}-{r50[-1]:.2f}) | "
                      f"{statistics.median(r99):.2f}× ({r99[0]:.2f}-{r99[-1]:.2f}) | "
                      f"{med(own, 'per_s'):,.0f} | {med(prov, 'per_s'):,.0f} |")

messaging = [r for r in rows if r["kind"] == "messaging"]
if messaging:
    print("\nMessages with read receipts end to end (8 writers: post as the user, mark read as the provider),")
    print("500 threads with both sides subscribed over WebSocket (1,000 subscribers); median (min-max):\n")
    print("| store | messages with receipts/s | delivery p50, ms | delivery p99, ms | delivered / sent |")
    print("|---|---|---|---|---|")
    for s in ("postgres", "sqlite"):
        runs = [r["run"] for r in messaging if r["store"] == s]
        if not runs:
            continue
        print(f"| {s} | {fmt([x['messages_with_receipts_per_s'] for x in runs], 1)} | "
              f"{fmt([x['delivery_p50_ms'] for x in runs], 1)} | {fmt([x['delivery_p99_ms'] for x in runs], 1)} | "
              f"{sum(x['delivered'] for x in runs)} / {sum(x['sent'] for x in runs)} |")

# The rest of issue 16's targets, from the same run.
other = []
for s in ("postgres", "sqlite"):
    p99 = [r["run"]["panel_p99_ms"] for r in rows if r["kind"] == "panel" and r["store"] == s]
    if p99:
        p50 = [r["run"]["panel_p50_ms"] for r in rows if r["kind"] == "panel" and r["store"] == s]
        other.append(f"| control-panel p99 < 5 ms under mixed load (8 writers + 2 readers) | {s}, ms | "
                     f"p50 {fmt(p50, 2)} | {fmt(p99, 2)} | {verdict(statistics.median(p99) < 5)} |")
for s in ("postgres", "sqlite"):
    runs = [r["run"] for r in asof if r["store"] == s]
    for q in ("medications", "network", "crisis_plan", "exercise_log"):
        pairs = [(x["me_now"]["p50_ms"], x[f"{q}_now"]["p50_ms"]) for x in runs if x.get(f"{q}_now") and x.get("me_now")]
        if pairs:
            ratios = [me / read for me, read in pairs]
            other.append(f"| each toolbox section ≥ 0.5 × `me` (p50 ratio, 1 client, {runs[0]['events']:,}-event portal) | "
                         f"{s}: {q} | `me` {fmt([me for me, _ in pairs], 2)} ms | {fmt([r for _, r in pairs], 2)} ms: "
                         f"{spread(ratios)} × | {verdict(statistics.median(ratios) >= 0.5)} |")
for s in ("postgres", "sqlite"):
    for c in sorted({r["clients"] for r in access}):
        runs = [r["run"] for r in access if r["store"] == s and r["clients"] == c]
        for read in ("medications", "control_panel"):
            ratios = [x[f"{read}_provider"]["p50_ms"] / x[f"{read}_owner"]["p50_ms"] for x in runs]
            if ratios:
                other.append(f"| provider's recorded read ≤ 1.5 × owner's, p50 | {s}, {c} client(s): {read} | owner "
                             f"{fmt([x[f'{read}_owner']['p50_ms'] for x in runs], 2)} ms | "
                             f"{fmt([x[f'{read}_provider']['p50_ms'] for x in runs], 2)} ms: {spread(ratios)} × | "
                             f"{verdict(statistics.median(ratios) <= 1.5)} |")
for s, goal in (("postgres", 300_000), ("sqlite", 200_000)):
    copy = [r["events"] / r["seconds"] for r in rows if r["kind"] == "copy" and r["store"] == s]
    tool = "`psql \\copy`" if s == "postgres" else "`sqlite3` CLI"
    for name in sorted({r["projection"] for r in rows if r["kind"] == "rebuild"}):
        rates = [r["events"] / r["seconds"] for r in rows
                 if r["kind"] == "rebuild" and r["store"] == s and r["projection"] == name]
        if rates:
            other.append(f"| rebuild ≥ {goal:,} events/s | {s}: `{name}` | {tool} of the events {fmt(copy) if copy else 'not measured'} | "
                         f"{fmt(rates)} | {verdict(statistics.median(rates) >= goal)} |")
for s in ("postgres", "sqlite"):
    runs = [r["run"] for r in messaging if r["store"] == s]
    if runs:
        rate = [x["messages_with_receipts_per_s"] for x in runs]
        p99 = [x["delivery_p99_ms"] for x in runs]
        reached = s == "postgres" and statistics.median(rate) >= 300 and statistics.median(p99) < 50
        other.append(f"| ≥ 300 messages with receipts/s and delivery p99 < 50 ms, 1,000 subscribers | {s} | | "
                     f"{fmt(rate, 1)}/s; p99 {fmt(p99, 1)} ms | {verdict(reached) if s == 'postgres' else '(PostgreSQL only)'} |")
if other:
    print("\nThe other targets of issue 16, same run; median (min-max):\n")
    print("| target | measure | reference | Portal | reached |")
    print("|---|---|---|---|---|")
    print("\n".join(other))

forum = [r for r in rows if r["kind"] == "forum"]
if forum:
    print("\nThe forum (issue 17): a forum of 10,000 topics and 200,000 posts (`portal bench forum-seed`),")
    print("`wrk` on one server; `me` on the same server is the reference (the service's cheapest query).")
    print("Each cell: median (min-max) over the repetitions; ratios per repetition.\n")
    print("| store | conn. | measure | `me` | forum | forum / `me` |")
    print("|---|---|---|---|---|---|")

    def of(store, op, c, key):
        return [r["run"][key] for r in forum if r["store"] == store and r["op"] == op and r["clients"] == c]

    for store in ("postgres", "sqlite"):
        for c in sorted({r["clients"] for r in forum if r["store"] == store}):
            for op, label in (("forum-topics", "topic list"), ("forum-topic", "topic page (30 posts)"),
                              ("forum-post", "reply")):
                rate, me = of(store, op, c, "ok_per_s"), of(store, "me", c, "ok_per_s")
                p50, p99 = of(store, op, c, "p50_ms"), of(store, op, c, "p99_ms")
                me50 = of(store, "me", c, "p50_ms")
                if rate:
                    print(f"| {store} | {c} | {label}: per s | {fmt(me)} | {fmt(rate)} | {spread(paired(rate, me))} |")
                    print(f"| {store} | {c} | {label}: p50 / p99 ms | {fmt(me50, 2)} | {fmt(p50, 2)} / {fmt(p99, 2)} | "
                          f"{spread(paired(p50, me50))} (p50) |")
    failed = sum(r["run"]["failed"] + r["run"]["socket_errors"] for r in forum)
    print(f"\nFailed responses in the forum runs: {failed}.")

privacy = [r for r in rows if r["kind"] == "privacy"]
if privacy:
    print("\nWhat sealing personal data costs (issue 18): the release before encryption and this one,")
    print("alternated run by run on the same machine, 8 clients; each cell: median (min-max); the ratio")
    print("is taken per repetition (this release / the one before; target: >= 0.90).\n")
    print("| store | measure | before encryption | with encryption | ratio | reached |")
    print("|---|---|---|---|---|---|")

    def of(store, build, op, pick):
        return [pick(r["run"]) for r in privacy if r["store"] == store and r["build"] == build and r["op"] == op]

    measures = [
        ("mix", "mutations/s (status ratings and goals)", lambda run: run["mutations_per_s"]),
        ("crisis_plan", "crisis-plan revisions/s (all sealed)", lambda run: run["mutations_per_s"]),
    ]
    for read in ("medications", "control_panel"):
        for reader in ("owner", "provider"):
            measures.append(("reads", f"{read.replace('_', ' ')} reads/s, {reader}",
                             lambda run, k=f"{read}_{reader}": run[k]["per_s"]))
    for store in ("postgres", "sqlite"):
        for op, label, pick in measures:
            before, now = of(store, "before", op, pick), of(store, "now", op, pick)
            if before and now:
                ratio = paired(now, before)
                print(f"| {store} | {label} | {fmt(before)} | {fmt(now)} | {spread(ratio)} | "
                      f"{verdict(statistics.median(ratio) >= 0.9)} |")

export = [r for r in rows if r["kind"] == "export"]
if export:
    print("\nA person's data export (`requestDataExport`, followed with `dataExport` until ready, the")
    print("archive downloaded), beside the store's own client reading every event of the store")
    print("(`psql \\copy`, `sqlite3`) in the same run; median (min-max):\n")
    print("| store | events of the person | events read | records | archive bytes | export s | store's client s | export / client |")
    print("|---|---|---|---|---|---|---|---|")
    for store in ("postgres", "sqlite"):
        runs = [r for r in export if r["store"] == store]
        if runs:
            v = runs[-1]["view"]
            ratio = [r["seconds"] / r["copy_seconds"] for r in runs]
            print(f"| {store} | {min(r['events'] for r in runs):,}+ | {int(v['eventsScanned']):,} | {int(v['records']):,} | "
                  f"{int(v['sizeBytes']):,} | {spread([r['seconds'] for r in runs], 3)} | "
                  f"{spread([r['copy_seconds'] for r in runs], 3)} | {spread(ratio)} |")

erase = [r for r in rows if r["kind"] == "erase"]
if erase:
    print("\nErasing a person (`orderErasure`: ledger line, key destroyed, `PersonErased`, every")
    print("projection past it, SQLite's log truncated); seconds, median (min-max):\n")
    print("| store | events of the person | seconds |")
    print("|---|---|---|")
    for store in ("postgres", "sqlite"):
        runs = [r for r in erase if r["store"] == store]
        if runs:
            print(f"| {store} | {min(r['events'] for r in runs):,}+ | {spread([r['seconds'] for r in runs], 3)} |")

fhir = [r for r in rows if r["kind"] == "fhir"]
if fhir:
    print("\nA provider's FHIR search of a patient's Goals (`/fhir/R4/Goal?patient=`, 20 goals of two")
    print("activities) beside the GraphQL `goals` read of the same goals, and `me`, on the same")
    print("server in the same run, each read recorded in the access trail; requests/s and p50 ms,")
    print("median (min-max); the ratio is FHIR's p50 over GraphQL's, run by run (target: at most 1.5):\n")
    print("| store | clients | GraphQL goals /s | FHIR Goal /s | me /s | GraphQL p50 ms | FHIR p50 ms | FHIR / GraphQL | within 1.5 |")
    print("|---|---|---|---|---|---|---|---|---|")
    for store in ("postgres", "sqlite"):
        for c in (1, 8):
            runs = [r["run"] for r in fhir if r["store"] == store and r["clients"] == c]
            if runs:
                g = [x["graphql"]["p50_ms"] for x in runs]
                f = [x["fhir"]["p50_ms"] for x in runs]
                ratio = paired(f, g)
                print(f"| {store} | {c} | {fmt([x['graphql']['per_s'] for x in runs])} | {fmt([x['fhir']['per_s'] for x in runs])} | "
                      f"{fmt([x['me']['per_s'] for x in runs])} | {spread(g)} | {spread(f)} | {spread(ratio)} | "
                      f"{verdict(statistics.median(ratio) <= 1.5)} |")

tokens = [r for r in rows if r["kind"] == "tokens"]
if tokens:
    print("\nToken checks in one task (`portal bench tokens`): the local HS256 key beside an identity")
    print("provider's tokens with its key set cached; microseconds per check, median (min-max), and")
    print("the ratio to HS256 run by run:\n")
    print("| token | µs per check | / HS256 |")
    print("|---|---|---|")
    for name in ("hs256_local", "eddsa_oidc_cached", "es256_oidc_cached"):
        us = [r["run"][name]["us_per_check"] for r in tokens if name in r["run"]]
        base = [r["run"]["hs256_local"]["us_per_check"] for r in tokens if name in r["run"]]
        if us:
            print(f"| {name} | {spread(us, 1)} | {spread(paired(us, base))} |")
