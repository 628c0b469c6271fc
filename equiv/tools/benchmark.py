"""Where the suite's time goes: runs the CPU suite several ways and prints (and writes) the figures.

    python -m equiv benchmark [--runs serial-cold,serial-warm,n2,nauto] [--repeat N] [--out FILE]
                              [-- PYTEST ARGS]

Each run is a fresh `pytest cases` process; its JSON report gives the time inside each framework's
calls, the oracle, collection, imports and JAX's compiles. The runs share one JAX compilation cache,
new and empty at the start, so `serial-cold` compiles everything and the runs after it find it warm;
`n2-cold` has an empty cache of its own, as a fresh CI machine does. `shards2` is not pytest-xdist:
two `--equiv-shard K/2` processes side by side, then `python -m equiv merge` of their reports.

Figures (per run): wall; seconds inside framework calls per framework; oracle, comparison, collection
and import seconds; the overhead ratio, wall / ((framework calls + imports) / processes), which is 1
when every second of every process is spent inside the frameworks; tests (pytest items: one input,
every framework), results (one per framework and test) and results per second; JAX compiles, their
seconds and persistent-cache hits; CPU seconds of all processes and of xdist's controller; the
largest process's peak resident memory at its session's end. Across runs: the speed-up of -n 2 and
-n auto over one warm process, and JAX's warm share (JAX seconds warm / cold). With --repeat N the
runs take turns N times; each run shows its round of median wall time, and each speed-up is the
median of the ratios within a round, so a machine whose speed drifts compares like with like.
Each round also measures the machine's own ceiling for two processes: a pure-Python loop alone, two
at once, alone again. Two cores that share a physical core, or a busy host, give well under 2x, and
no -n 2 run can beat that. With serial-warm and n2 both run, it also measures pytest's and xdist's
own cost for as many no-op tests, one process and -n 2, and prints the best -n 2 could do here: one
process's CPU plus that xdist cost plus a second worker's start, over two fully used cores; and the
lowest overhead ratio one process could have: the frameworks, the oracle, the comparisons, collection
and pytest's own wall for that many no-op tests, with nothing else.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from equiv import frameworks, machine
from equiv.report import add_counts

RUNS: dict[str, list[str]] = {
    "serial-cold": ["-p", "no:xdist"],
    "serial-warm": ["-p", "no:xdist"],
    "n2": ["-n", "2", "--dist", "loadgroup"],
    "nauto": ["-n", "auto", "--dist", "loadgroup"],
    "n2-cold": ["-n", "2", "--dist", "loadgroup"],  # its own empty cache, as on a fresh CI machine
    "stress": ["-n", "auto", "--dist", "loadgroup", "--equiv-seed", "1-20"],  # nox -s stress's run
    # Random draws, no example database: every shape new, as a nightly run meets them.
    "fuzz": ["-n", "auto", "--dist", "loadgroup", "--equiv-fuzz", "20", "--equiv-fuzz-profile", "local",
             "--equiv-fuzz-db", "off"],
}
# Runs that split the items into shard processes side by side (--equiv-shard K/N, one thread pool
# each, as an xdist worker has) and merge their reports: no controller, no per-item messages.
SHARDED: dict[str, int] = {"shards2": 2}
OWN_CACHE = ("n2-cold",)
DEFAULT_RUNS = ("serial-cold", "serial-warm", "n2", "nauto", "n2-cold")


def figures(report: dict[str, Any], wall: float, workers: int, controller: bool = True) -> dict[str, Any]:
    """The figures of one run, from its JSON report and its measured wall time."""
    per_fw: dict[str, float] = defaultdict(float)
    totals: dict[str, float] = defaultdict(float)
    outcomes: dict[str, int] = defaultdict(int)
    for r in report["results"]:
        outcomes[r["outcome"]] += 1
        seconds = r.get("seconds", {})
        per_fw[r["framework"]] += seconds.get("framework", 0.0)
        for part in ("oracle", "framework", "compare"):
            totals[part] += seconds.get(part, 0.0)
    timing = report.get("timing", {})
    imports = sum(timing.get("import_seconds", {}).values())
    inside = totals["framework"] + imports
    results = len(report["results"])
    draws, per_fw_draws = _draws(report["results"])
    return {
        "wall_seconds": wall,
        "workers": workers,
        "tests": timing.get("tests"),  # pytest items: one input of one variant, every framework
        "results": results,  # one per framework and test
        "outcomes": dict(outcomes),
        "results_per_second": results / wall if wall else None,
        "framework_seconds": dict(sorted(per_fw.items())),
        "framework_seconds_total": totals["framework"],
        # Fuzzing: distinct draws (point, seed, dtype, values), overall and per second inside each
        # framework's calls (the compiles of never-seen shapes included).
        "draws": draws,
        "draws_per_second": draws / wall if draws and wall else None,
        "draws_per_framework_second": {fw: n / per_fw[fw] for fw, n in sorted(per_fw_draws.items())
                                       if per_fw.get(fw)},
        "oracle_seconds": totals["oracle"],
        "compare_seconds": totals["compare"],
        "collection_seconds": timing.get("collection_seconds"),
        "import_seconds": timing.get("import_seconds", {}),
        "processes": timing.get("processes"),
        "overhead_ratio": wall / (inside / workers) if inside else None,
        "jax_compile": timing.get("compile", {}).get("jax", {}),
        "peak_rss_mb": max((m for m in timing.get("peak_rss_mb", []) if m is not None), default=None),
        # CPU of every process: more than `workers` x wall is impossible, well under it means waiting.
        "cpu_seconds": _total(timing.get("cpu_seconds", [])),
        # Under xdist the controlling process reports last; its CPU is taken from the workers.
        "controller_cpu_seconds": timing["cpu_seconds"][-1]
        if controller and workers > 1 and timing.get("cpu_seconds") else None,
    }


def _draws(results: list[dict[str, Any]]) -> tuple[int | None, dict[str, int]]:
    """Fuzzed draws in a report: how many, and how many each framework ran (skips left out)."""
    def key(r: dict[str, Any]) -> tuple[Any, ...]:
        return r["case"], json.dumps(r["params"], sort_keys=True), r["seed"], r["dtype"], r.get("values")

    fuzzed = [r for r in results if r.get("fuzzed")]
    if not fuzzed:
        return None, {}
    per_fw: dict[str, set[tuple[Any, ...]]] = defaultdict(set)
    for r in fuzzed:
        if r["outcome"] != "skipped":
            per_fw[r["framework"]].add(key(r))
    return len({key(r) for r in fuzzed}), {fw: len(k) for fw, k in per_fw.items()}


def _total(values: list[float | None]) -> float | None:
    return None if not values or None in values else sum(v for v in values if v is not None)


def run_one(name: str, extra: list[str], cache: Path, folder: Path) -> dict[str, Any]:
    report_path = folder / f"benchmark-{name}.json"
    command = [sys.executable, "-m", "pytest", "cases", "-q", "-p", "no:cacheprovider", "--equiv-device",
               "cpu", f"--equiv-jax-cache={cache}", f"--equiv-report={report_path}", *RUNS[name], *extra]
    done, wall = _timed(name, command, report_path)
    workers = _workers(RUNS[name] + extra)
    return {"command": command[1:], "exit_code": done.returncode,
            **figures(json.loads(report_path.read_text()), wall, workers)}


def _timed(name: str, command: list[str], report: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run one benchmark command, print its last line and wall time; it must have written the report."""
    print(f"[{name}] {' '.join(command[1:])}", flush=True)
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    last = (done.stdout.strip().splitlines() or ["(no output)"])[-1]
    print(f"[{name}] exit {done.returncode} in {wall:.1f} s: {last}", flush=True)
    if not report.is_file():
        sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
        raise SystemExit(f"[{name}] wrote no report ({report}); its output is above")
    return done, wall


def run_sharded(name: str, extra: list[str], cache: Path, folder: Path) -> dict[str, Any]:
    """python -m equiv shards: N shard processes at once and their merge; wall time to the merged report."""
    count = SHARDED[name]
    shard_dir, merged = folder / f"benchmark-{name}", folder / f"benchmark-{name}.json"
    command = [sys.executable, "-m", "equiv", "shards", "-n", str(count), f"--dir={shard_dir}",
               f"--out={merged}", "--", "-p", "no:cacheprovider", "--equiv-device", "cpu",
               f"--equiv-jax-cache={cache}", *extra]
    done, wall = _timed(name, command, merged)
    timings = [json.loads(r.read_text()).get("timing", {}) for r in sorted(shard_dir.glob("shard-*.json"))]
    joined = {"results": json.loads(merged.read_text())["results"], "timing": _joined(timings)}
    return {"command": command[1:], "exit_code": done.returncode,
            **figures(joined, wall, count, controller=False)}


def _joined(timings: list[dict[str, Any]]) -> dict[str, Any]:
    """Several single-process reports' timing as one run's: sums, and the per-process lists joined."""
    joined: dict[str, Any] = {"processes": 0, "collection_seconds": 0.0, "import_seconds": {}, "compile": {},
                              "peak_rss_mb": [], "cpu_seconds": []}
    for t in timings:
        joined["processes"] += t.get("processes", 1)
        joined["collection_seconds"] += t.get("collection_seconds") or 0.0
        joined["peak_rss_mb"] += t.get("peak_rss_mb", [])
        joined["cpu_seconds"] += t.get("cpu_seconds", [])
        add_counts(joined["import_seconds"], t.get("import_seconds", {}))
        add_counts(joined["compile"], t.get("compile", {}))
    return joined


def _workers(args: list[str]) -> int:
    if "-n" not in args:
        return 1
    value = args[args.index("-n") + 1]
    return machine.usable_cores() if value in ("auto", "logical") else int(value)


# CPU-bound Python, as pytest's and equiv's own work between framework calls is.
SPIN = "import time\nt = time.perf_counter()\nx = 0\nfor i in range({loops}):\n    x += i & 7\n" \
       "print(time.perf_counter() - t)"


def two_process_ceiling(loops: int = 20_000_000) -> dict[str, Any]:
    """Work two processes get done here against one: a loop alone, two copies at once, alone again."""
    def spin(copies: int) -> list[float]:
        procs = [subprocess.Popen([sys.executable, "-c", SPIN.format(loops=loops)], stdout=subprocess.PIPE,
                                  text=True) for _ in range(copies)]
        return [float(proc.communicate()[0]) for proc in procs]

    alone = spin(1)
    pair = spin(2)
    alone += spin(1)
    return {"alone_seconds": alone, "pair_seconds": pair, "ceiling": sum(alone) / max(pair)}  # 2 x mean


NOOP_TESTS = "import pytest\n\n\n@pytest.mark.parametrize('i', range({items}))\ndef test_noop(i):\n    pass\n"


def pytest_floor(items: int, folder: Path) -> dict[str, Any]:
    """pytest's and xdist's own cost for this many items: no-op tests, one process and -n 2.

    xdist's cheapest schedule (`load`), without equiv's plugin: what any suite of this many items
    pays, whatever its tests do. A worker's CPU reaches this process when its parent reaps it.
    """
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "test_noop.py").write_text(NOOP_TESTS.format(items=items))
    figures: dict[str, Any] = {"items": items}
    for name, extra in (("serial", ["-p", "no:xdist"]), ("n2", ["-n", "2", "--dist", "load"])):
        cpu = _children_cpu()
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pytest", "test_noop.py", "-q", "-p", "no:cacheprovider",
                        "-p", "no:equiv", *extra], cwd=folder, capture_output=True, check=True)
        after = _children_cpu()
        figures[name] = {"wall_seconds": time.perf_counter() - start,
                         "cpu_seconds": None if cpu is None or after is None else after - cpu}
    return figures


def _children_cpu() -> float | None:
    try:
        import resource
    except ImportError:  # Windows: no CPU figure, and no bound drawn from it
        return None
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def summary_of_rounds(rounds: list[dict[str, dict[str, Any]]], ceilings: list[float | None] | None = None,
                      xdist_cpu: float | None = None, pytest_wall: float | None = None) -> dict[str, Any]:
    """Each figure's median over the rounds, each taken within one round: runs next to each other see
    the same machine, while its speed drifts by a quarter between minutes on a shared one."""
    each = [summary(runs, ceiling, xdist_cpu, pytest_wall)
            for runs, ceiling in zip(rounds, ceilings or [None] * len(rounds), strict=True)]
    return {key: _median([s[key] for s in each if s[key] is not None]) for key in each[0]}


def median_round(rounds: list[dict[str, dict[str, Any]]], name: str) -> dict[str, Any]:
    """A run's figures from its round of median wall time, with every round's wall beside them."""
    ordered = sorted((r[name] for r in rounds), key=lambda run: run["wall_seconds"])
    picked = dict(ordered[(len(ordered) - 1) // 2])
    picked["wall_seconds_all"] = [r[name]["wall_seconds"] for r in rounds]
    return picked


def _median(values: list[float]) -> float | None:
    values = sorted(values)
    if not values:
        return None
    middle = len(values) // 2
    return values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2


def summary(runs: dict[str, dict[str, Any]], ceiling: float | None = None,
            xdist_cpu: float | None = None, pytest_wall: float | None = None) -> dict[str, Any]:
    """Speed-ups, JAX's warm share, and what -n 2 could reach at best: one warm process's CPU plus
    xdist's own CPU for as many items (`xdist_cpu`, from pytest_floor) plus a second worker's imports
    and collection, spread over two cores that both work all the time. And the lowest overhead ratio
    one process could have: its framework calls and imports, the oracle, the comparisons and case
    collection it must make, and pytest's own wall for as many no-op tests (`pytest_wall`, with
    pytest's start and exit), nothing else."""
    def wall(name: str) -> float | None:
        return runs[name]["wall_seconds"] if name in runs else None

    def jax(name: str) -> float | None:
        return runs[name]["framework_seconds"].get("jax") if name in runs else None

    def ratio(a: float | None, b: float | None) -> float | None:
        return a / b if a is not None and b else None

    return {
        "speedup_n2": ratio(wall("serial-warm"), wall("n2")),
        "speedup_n2_cold": ratio(wall("serial-cold"), wall("n2-cold")),
        "speedup_nauto": ratio(wall("serial-warm"), wall("nauto")),
        "speedup_shards2": ratio(wall("serial-warm"), wall("shards2")),
        "jax_warm_share": ratio(jax("serial-warm"), jax("serial-cold")),
        "two_process_ceiling": ceiling,
        "speedup_n2_of_ceiling": ratio(ratio(wall("serial-warm"), wall("n2")), ceiling),
        "speedup_n2_at_best": _at_best(runs.get("serial-warm"), xdist_cpu),
        "overhead_ratio_at_best": _overhead_at_best(runs.get("serial-warm"), pytest_wall),
    }


def _overhead_at_best(serial: dict[str, Any] | None, pytest_wall: float | None) -> float | None:
    if serial is None or pytest_wall is None:
        return None
    inside = serial["framework_seconds_total"] + sum(serial["import_seconds"].values())
    needed = serial["oracle_seconds"] + serial["compare_seconds"] + (serial["collection_seconds"] or 0.0)
    return float((inside + needed + pytest_wall) / inside) if inside else None


ONE_CORE = 1.05  # cores a one-process run may keep busy for its CPU to count as one core's work


def _cores_busy(run: dict[str, Any] | None) -> float | None:
    """CPU s / wall of a run; None where its CPU is not known."""
    return run["cpu_seconds"] / run["wall_seconds"] if run and run.get("cpu_seconds") else None


def _at_best(serial: dict[str, Any] | None, xdist_cpu: float | None) -> float | None:
    """None where the one process kept more than one core busy: its framework pools then ran threads
    beside it, so its CPU is not the one-thread work an xdist worker (one-thread pools) does."""
    busy = _cores_busy(serial)
    if serial is None or xdist_cpu is None or busy is None or busy > ONE_CORE:
        return None
    second_worker = sum(serial["import_seconds"].values()) + (serial["collection_seconds"] or 0.0)
    return float(serial["wall_seconds"] / ((serial["cpu_seconds"] + xdist_cpu + second_worker) / 2))


def _why_no_bound(runs: dict[str, dict[str, Any]], summed: dict[str, Any]) -> str:
    busy = _cores_busy(runs.get("serial-warm"))
    if summed["speedup_n2_at_best"] is None and busy is not None and busy > ONE_CORE:
        return f" (one process kept {busy:.2f} cores busy: its CPU is not one thread's work)"
    return ""


def table(runs: dict[str, dict[str, Any]], summed: dict[str, Any]) -> list[str]:
    def f(value: Any, spec: str = ".1f") -> str:
        return "-" if value is None else format(value, spec)

    names = list(runs)
    rows: list[tuple[str, ...]] = [("", *names)]

    def add(label: str, get: Any, spec: str = ".1f") -> None:
        rows.append((label, *(f(get(runs[n]), spec) for n in names)))

    add("wall s", lambda r: r["wall_seconds"])
    if any(len(r.get("wall_seconds_all", ())) > 1 for r in runs.values()):
        add("wall s, fastest round", lambda r: min(r["wall_seconds_all"]))
        add("wall s, slowest round", lambda r: max(r["wall_seconds_all"]))
    add("workers", lambda r: r["workers"], "d")
    add("tests (pytest items)", lambda r: r["tests"], "d")
    add("results (per framework)", lambda r: r["results"], "d")
    add("results/s", lambda r: r["results_per_second"])
    for fw in sorted({fw for r in runs.values() for fw in r["framework_seconds"]}):
        add(f"in {fw} calls s", lambda r, fw=fw: r["framework_seconds"].get(fw))
    if any(r.get("draws") for r in runs.values()):
        add("fuzz draws", lambda r: r.get("draws"), "d")
        add("fuzz draws/s", lambda r: r.get("draws_per_second"))
        for fw in sorted({fw for r in runs.values() for fw in r.get("draws_per_framework_second", {})}):
            add(f"fuzz draws per s in {fw} calls", lambda r, fw=fw: r.get("draws_per_framework_second",
                                                                            {}).get(fw))
    add("oracle s", lambda r: r["oracle_seconds"])
    add("compare s", lambda r: r["compare_seconds"])
    add("collection s", lambda r: r["collection_seconds"])
    add("imports s", lambda r: sum(r["import_seconds"].values()))
    add("overhead ratio", lambda r: r["overhead_ratio"], ".2f")
    add("jax compiles", lambda r: r["jax_compile"].get("compiles"), ".0f")
    add("jax compile s", lambda r: r["jax_compile"].get("compile_seconds"))
    add("jax cache hits", lambda r: r["jax_compile"].get("cache_hits"), ".0f")
    add("CPU s, all processes", lambda r: r.get("cpu_seconds"))
    add("CPU s, xdist controller", lambda r: r.get("controller_cpu_seconds"))
    # Well under 1 per process: this run waited, for a busy host (steal) or for I/O; its round misleads.
    add("cores busy (CPU s / wall)", _cores_busy, ".2f")
    add("peak MB, largest process", lambda r: r.get("peak_rss_mb"), ".0f")
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(v.rjust(w) if i else v.ljust(w) for i, (v, w) in enumerate(zip(row, widths,
                                                                                       strict=True)))
             for row in rows]
    lines += [f"speed-up of -n 2 over one warm process: {f(summed['speedup_n2'], '.2f')}x",
              f"speed-up of -n auto over one warm process: {f(summed['speedup_nauto'], '.2f')}x",
              f"speed-up of two shard processes and a merge over one warm process: "
              f"{f(summed['speedup_shards2'], '.2f')}x",
              f"speed-up of -n 2 over one process, both cold: {f(summed['speedup_n2_cold'], '.2f')}x",
              f"JAX seconds, warm cache / cold: {f(summed['jax_warm_share'], '.2f')}",
              f"two processes on this machine do {f(summed['two_process_ceiling'], '.2f')}x the work of one "
              f"(a pure-Python loop); -n 2 reached {f(summed['speedup_n2_of_ceiling'], '.2f')} of that",
              f"-n 2 at best, with xdist's own cost for these items: "
              f"{f(summed['speedup_n2_at_best'], '.2f')}x{_why_no_bound(runs, summed)}",
              f"overhead ratio of one process at best, had it spent nothing beyond the frameworks, the "
              f"oracle, the comparisons, collection and pytest's own cost for as many no-op tests: "
              f"{f(summed['overhead_ratio_at_best'], '.2f')}"]
    return lines


def main(argv: list[str]) -> int:
    own, _, extra = (argv[: argv.index("--")], None, argv[argv.index("--") + 1:]) if "--" in argv \
        else (argv, None, [])
    parser = argparse.ArgumentParser(prog="equiv benchmark", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default=",".join(DEFAULT_RUNS),
                        help=f"comma-separated, in order, from {', '.join([*RUNS, *SHARDED])} "
                             "(default: %(default)s)")
    parser.add_argument("--out", type=Path, default=Path("reports/benchmark.json"))
    parser.add_argument("--repeat", type=int, default=1, metavar="N",
                        help="run the runs N times in turn (A B A B ...) and print each run's round of "
                             "median wall time and the median of the speed-ups within a round; a cold "
                             "run gets a new, empty cache each time")
    parser.add_argument("--ceiling-loops", type=int, default=20_000_000, metavar="N",
                        help="iterations of the loop that measures two processes against one "
                             "(default: %(default)s, about 2 s here)")
    parser.add_argument("--jax-cache", type=Path, help="use this JAX cache directory as it is (default: a "
                        "new, empty one, so that the first run is cold)")
    args = parser.parse_args(own)
    names = [n.strip() for n in args.runs.split(",") if n.strip()]
    unknown = [n for n in names if n not in RUNS and n not in SHARDED]
    if unknown or not names:
        parser.error(f"--runs: unknown run(s) {', '.join(unknown) or '(none given)'}; choose from "
                     f"{', '.join([*RUNS, *SHARDED])}")
    if args.ceiling_loops < 1:
        parser.error(f"--ceiling-loops: {args.ceiling_loops} is not a number of iterations; give 1 or more")
    if args.repeat < 1:
        parser.error(f"--repeat: {args.repeat} is not a number of rounds; give 1 or more")
    rounds: list[dict[str, dict[str, Any]]] = []
    ceilings: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="equiv-bench-") as tmp:
        cache = args.jax_cache or Path(tmp) / "jax-cache"  # new and empty: the first run is cold
        for round_ in range(args.repeat):
            ceilings.append(two_process_ceiling(args.ceiling_loops))
            print(f"[ceiling] two processes: {ceilings[-1]['ceiling']:.2f}x one", flush=True)
            runs: dict[str, dict[str, Any]] = {}
            for name in names:  # each run's own report goes beside --out
                fresh = Path(tmp) / f"jax-cache-{name}-{round_}"  # cold again in every round
                cold = name in OWN_CACHE or (name == "serial-cold" and round_ > 0)
                run = run_sharded if name in SHARDED else run_one
                runs[name] = run(name, extra, fresh if cold else cache, args.out.parent)
            rounds.append(runs)
        floor = None
        if "serial-warm" in names and "n2" in names:  # what -n 2 could reach: pytest's and xdist's floor
            warm = rounds[0]["serial-warm"]
            floor = pytest_floor(warm["tests"] or warm["results"], Path(tmp) / "floor")
            one, two = floor["serial"], floor["n2"]
            cpu = "" if two["cpu_seconds"] is None else f" ({two['cpu_seconds']:.1f} CPU s)"
            print(f"[floor] {floor['items']} no-op tests: one process {one['wall_seconds']:.1f} s, -n 2 "
                  f"{two['wall_seconds']:.1f} s{cpu}", flush=True)
    runs = {name: median_round(rounds, name) for name in names}
    xdist_cpu = None
    if floor and floor["n2"]["cpu_seconds"] is not None:
        xdist_cpu = floor["n2"]["cpu_seconds"] - floor["serial"]["cpu_seconds"]
    summed = summary_of_rounds(rounds, [c["ceiling"] for c in ceilings], xdist_cpu,
                               floor["serial"]["wall_seconds"] if floor else None)
    lines = table(runs, summed)
    print("\n".join(lines))
    machine = _machine()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": machine, "pytest_args": extra, "runs": runs, "summary": summed,
                                    "rounds": rounds, "ceilings": ceilings, "floor": floor}, indent=1) + "\n")
    print(f"machine: {machine['cpu']['model']}, {machine['cpu']['cores']} cores; wrote {args.out}")
    return 0 if all(r["exit_code"] == 0 for runs in rounds for r in runs.values()) else 1


def _machine() -> dict[str, Any]:
    return {"cpu": machine.cpu(), "python": sys.version.split()[0],
            "versions": {n: frameworks.installed_version(n) for n in frameworks.NAMES}}


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
