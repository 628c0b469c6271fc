"""python -m equiv new NAME: see equiv.scaffold."""

from equiv.scaffold import main

raise SystemExit(main())
