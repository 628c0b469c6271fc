"""The `equiv` command (also `python -m equiv`): one entry for the tools beside the test run."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

USAGE = """usage: equiv new NAME                 write cases/NAME.py, a claim that passes, with TODOs
       equiv readme [--report PATH]   rewrite README.md's claims table and fw API list (and, from a
                                      run's JSON report, its matrix sample)
       equiv merge REPORT.json ...    one matrix from several runs' reports (shards, labels)
       equiv shards [-n N] [-- ARGS]  the suite as N shard processes side by side, then their merge
       equiv sweep REPORT.json ...    a many-seed run's worst error_ratio per case, and the registry
       equiv benchmark [...]          where the CPU suite's time goes (nox -s benchmark)
       equiv diff OLD.json NEW.json   what changed between two runs (exit 1 on an outcome change)
       equiv versions REPORT.json ... one matrix across framework releases (nox -s versions)
`equiv COMMAND --help` says more of each."""


def _new(args: list[str]) -> int:
    from equiv import scaffold

    if len(args) != 1:
        return _usage()
    try:
        path = scaffold.new(args[0])
    except scaffold.ScaffoldError as e:
        print(e, file=sys.stderr)
        return 2
    print(f"wrote {path}; run it with: pytest {path} --equiv-device cpu")
    return 0


def _readme(args: list[str]) -> int:
    from equiv import readme

    if args and not (len(args) == 2 and args[0] == "--report"):
        return _usage()
    report = Path(args[1]) if args else None
    if not Path("README.md").is_file() or not Path("cases").is_dir():
        print("equiv readme: run it from the project root (README.md and cases/ here)", file=sys.stderr)
        return 2
    readme.update(Path("README.md"), Path("cases"), report)
    print("rewrote README.md's generated sections" + (f" (matrix from {report})" if report else ""))
    return 0


def _merge(args: list[str]) -> int:
    from equiv.distribute import merge

    return merge.main(args)


def _shards(args: list[str]) -> int:
    from equiv.distribute import launcher

    return launcher.main(args)


def _sweep(args: list[str]) -> int:
    from equiv.tools import sweep

    return sweep.main(args)


def _benchmark(args: list[str]) -> int:
    from equiv.tools import benchmark

    return benchmark.main(args)


def _diff(args: list[str]) -> int:
    from equiv.tools import diff

    return diff.main(args)


def _versions(args: list[str]) -> int:
    from equiv.tools import versions

    return versions.main(args)


COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "new": _new, "readme": _readme, "merge": _merge, "shards": _shards, "sweep": _sweep,
    "benchmark": _benchmark, "diff": _diff, "versions": _versions,
}


def _usage() -> int:
    print(USAGE, file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] in (["-h"], ["--help"]) or (len(args) == 2 and args[0] in ("new", "readme")
                                           and args[1] in ("-h", "--help")):
        print(USAGE)
        return 0
    command = COMMANDS.get(args[0]) if args else None
    return command(args[1:]) if command else _usage()
