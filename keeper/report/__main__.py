"""``python -m keeper.report out/data.json``: rebuild a run's report.md and plots from its data."""

from keeper.report import main

if __name__ == "__main__":
    raise SystemExit(main())
