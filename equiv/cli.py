"""The `equiv` command (also `python -m equiv`): `equiv new NAME`, `equiv readme [--report PATH]`."""

from __future__ import annotations

import sys
from pathlib import Path

from equiv import readme, scaffold

USAGE = """usage: equiv new NAME                 write cases/NAME.py, a claim that passes, with TODOs
       equiv readme [--report PATH]   rewrite README.md's claims table and fw API list (and, from a
                                      run's JSON report, its matrix sample)"""


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) == 2 and args[0] == "new":
        try:
            path = scaffold.new(args[1])
        except scaffold.ScaffoldError as e:
            print(e, file=sys.stderr)
            return 2
        print(f"wrote {path}; run it with: pytest {path} --equiv-device cpu")
        return 0
    if args[:1] == ["readme"] and len(args) in (1, 3) and (len(args) == 1 or args[1] == "--report"):
        report = Path(args[2]) if len(args) == 3 else None
        if not Path("README.md").is_file() or not Path("cases").is_dir():
            print("equiv readme: run it from the project root (README.md and cases/ here)", file=sys.stderr)
            return 2
        readme.update(Path("README.md"), Path("cases"), report)
        print("rewrote README.md's generated sections" + (f" (matrix from {report})" if report else ""))
        return 0
    print(USAGE, file=sys.stderr)
    return 2
