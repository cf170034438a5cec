"""The simulation's report: ``report.md``, its PNG plots and ``summary.json``, from the
:class:`keeper.sim.results.SimData` a run collected (or its ``data.json``).

Numbers first (:mod:`keeper.report.numbers`: :func:`key_numbers`, :func:`report_facts`, pure
functions of the data, every one from the protocol's events and views, none computed by the
simulation's participants), then the plots (:mod:`keeper.report.plots`) and the text (the
Jinja2 template ``report.md.j2``, rendered by :mod:`keeper.report.markdown`), files last
(:func:`write_report`, here). ``summary.json`` holds the key numbers only, the ones a run with the same seed
reproduces exactly (no wall-clock times): the integration test compares two runs with it.

    python -m keeper.report out/data.json      # rebuild out/report.md and the plots (__main__.py)
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from keeper.report.markdown import render_markdown
from keeper.report.numbers import key_numbers
from keeper.report.plots import plot_all


def write_report(data: Any, out: str | Path) -> dict[str, Any]:
    """report.md, the plots and summary.json in `out`; returns the key numbers."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    numbers = key_numbers(data)
    plots = plot_all(data, out)
    (out / "report.md").write_text(render_markdown(data, numbers, plots))
    (out / "summary.json").write_text(json.dumps(numbers, indent=1, sort_keys=True) + "\n")
    return numbers


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) != 1:
        print("usage: python -m keeper.report out/data.json", file=sys.stderr)
        return 2
    path = Path(argv[0])
    numbers = write_report(json.loads(path.read_text()), path.parent)
    print(f"wrote {path.parent / 'report.md'}: {numbers['accounts_liquidated']} accounts liquidated")
    return 0


__all__ = ["main", "write_report"]
