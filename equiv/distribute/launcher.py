"""The suite as N pytest processes side by side, one slice each, then one merged report and matrix.

    python -m equiv shards [-n N] [--dir DIR] [--out FILE] [--markdown FILE] [-- PYTEST ARGS]

pytest-xdist sends every item through a controlling process, which takes CPU from the workers on a
small machine; shard processes share nothing until the merge (`nox -s benchmark` prints both). Each
process here runs `pytest cases -p no:xdist --equiv-shard K/N` (whole groups, so every
pair of frameworks stays in one process) with framework thread pools of its share of the cores, and
writes its report and its log into DIR. The merge (`equiv merge`) prints one matrix; the
exit status is the worst of the shards' and the merge's. What it gives up against -n: one live
progress line, one failure summary (each shard's log has its own) and one junit.xml.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from equiv import machine
from equiv.distribute import merge

NO_TESTS = 5  # pytest's exit status when it collected nothing


def commands(count: int, folder: Path, pytest_args: list[str]) -> list[list[str]]:
    """One pytest command per slice, each writing its report into the folder."""
    return [[sys.executable, "-m", "pytest", "cases", "-q", "-p", "no:xdist", f"--equiv-shard={k}/{count}",
             f"--equiv-report={folder / f'shard-{k}.json'}", *pytest_args] for k in range(1, count + 1)]


def environment(count: int, env: dict[str, str] | None = None) -> dict[str, str]:
    """Each process's thread pools sized to its share of the cores, as an xdist worker's are."""
    threads = str(max(1, machine.usable_cores() // count))
    return {**{var: threads for var in machine.THREAD_VARS}, **(os.environ if env is None else env)}


def main(argv: list[str]) -> int:
    own, extra = (argv[: argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    parser = argparse.ArgumentParser(prog="equiv shards", description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=machine.usable_cores(), metavar="N",
                        help="processes, one slice each (default: the usable cores, %(default)s here)")
    parser.add_argument("--dir", type=Path, default=Path("reports/shards"),
                        help="each shard's report and log (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=Path("reports/shards.json"),
                        help="the merged JSON report (default: %(default)s)")
    parser.add_argument("--markdown", type=Path, help="the merged matrix as a Markdown table")
    args = parser.parse_args(own)
    if args.n < 1:
        parser.error(f"-n: {args.n} is not a number of processes; give 1 or more")
    for option in ("--equiv-shard", "--equiv-report", "-n", "--numprocesses"):
        if any(a == option or a.startswith(f"{option}=") for a in extra):
            parser.error(f"{option} after --: equiv shards sets it for each process; leave it out")
    args.dir.mkdir(parents=True, exist_ok=True)
    for stale in args.dir.glob("shard-*.json"):  # an earlier run's slices must not join in
        stale.unlink()
    env = environment(args.n)
    logs = [args.dir / f"shard-{k}.log" for k in range(1, args.n + 1)]
    procs = []
    for command, log in zip(commands(args.n, args.dir, extra), logs, strict=True):
        with log.open("w") as out:
            procs.append(subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env))
    codes = [proc.wait() for proc in procs]
    for k, (code, log) in enumerate(zip(codes, logs, strict=True), 1):
        last = (log.read_text(errors="replace").strip().splitlines() or ["(no output)"])[-1]
        print(f"shard {k}/{args.n}: exit {code}: {last} (log: {log})")
    reports = sorted(args.dir.glob("shard-*.json"))
    if len(reports) != args.n:
        print(f"equiv shards: {args.n - len(reports)} shard(s) wrote no report; see their logs above",
              file=sys.stderr)
        return max(codes) or 1
    markdown = [f"--markdown={args.markdown}"] if args.markdown else []
    merged = [*map(str, reports), f"--out={args.out}", *markdown]
    ran = [code for code in codes if code != NO_TESTS] or codes  # a slice may hold no item
    return max([*ran, merge.main(merged)])


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
