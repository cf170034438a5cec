"""The report's text: ``report.md`` from a run's data, its key numbers and its plots
(:func:`render_markdown`). The words are in the Jinja2 template ``report.md.j2`` beside this file; the
numbers come from :mod:`keeper.report.numbers` (:func:`~keeper.report.numbers.report_facts`);
here only the template's environment and the filters that format values for it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, Template

from keeper.report.numbers import report_facts
from keeper.report.plots import PLOTS

TEMPLATE = "report.md.j2"


def money(x: float) -> str:
    """USD: whole dollars from $100 up, cents below."""
    return f"${x:,.0f}" if abs(x) >= 100 else f"${x:,.2f}"


def pairs(mapping: Mapping[Any, Any], pattern: str) -> str:
    """Each key and value of `mapping` through `pattern` (``str.format``), comma-separated."""
    return ", ".join(pattern.format(k, v) for k, v in mapping.items())


def who(row: Mapping[str, Any]) -> str:
    """An account as ``#id label``."""
    return f"#{row['account']} {row['label']}"


def counterparties(rows: Sequence[Mapping[str, Any]]) -> str:
    """ADL counterparties as ``#id label (size taken)``, semicolon-separated."""
    return "; ".join(f"{who(r)} ({r['size']:g})" for r in rows)


def align(column: Sequence[str]) -> str:
    """A markdown table column's alignment: right when every cell is a number."""
    return "---:" if all(_is_number(cell) for cell in column) else "---"


def _is_number(cell: str) -> bool:
    return cell.lstrip("+-$").replace(",", "").replace(".", "", 1).isdigit()


@lru_cache(maxsize=1)
def template() -> Template:
    """The report's template, ``keeper/report/report.md.j2``, from the installed package."""
    env = Environment(
        loader=PackageLoader("keeper.report", "."),
        autoescape=False,  # markdown, not HTML
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        money=money, fmt=format, pairs=pairs, who=who, counterparties=counterparties, align=align
    )
    env.globals["zip"] = zip
    return env.get_template(TEMPLATE)


def render_markdown(data: Any, numbers: Mapping[str, Any], plots: Mapping[str, Path]) -> str:
    """``report.md``: the key numbers (`numbers`, :func:`~keeper.report.numbers.key_numbers`), the
    rest of what the run's data tells, and the plots written (name -> path), in :data:`PLOTS` order."""
    shown = [(title, plots[name].name) for name, title in PLOTS.items() if name in plots]
    return template().render(n=numbers, plots=shown, **report_facts(data))


__all__ = ["money", "render_markdown", "template"]
