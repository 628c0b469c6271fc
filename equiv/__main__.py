"""python -m equiv: see equiv.cli."""

from equiv.cli import main

raise SystemExit(main())
