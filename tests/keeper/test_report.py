"""The report's text: ``report.md`` from the Jinja2 template (keeper/report/report.md.j2)
and the numbers of keeper/report/numbers.py. A saved run (tests/keeper/data/report_run.json, a
trimmed data.json of seed 7 with one takeover added) renders to the pinned bytes of
report_run.md, written by the hand-built text the template replaced."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from keeper.report.markdown import align, money, render_markdown
from keeper.report.numbers import key_numbers, report_facts
from keeper.report.plots import PLOTS

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def run() -> dict[str, Any]:
    return json.loads((DATA / "report_run.json").read_text())


def plots(*left_out: str) -> dict[str, Path]:
    return {name: Path(f"/out/{name}.png") for name in PLOTS if name not in left_out}


def test_render_markdown__saved_run__byte_identical_to_the_pinned_report(run: dict[str, Any]) -> None:
    text = render_markdown(run, key_numbers(run), plots("adl"))
    assert text == (DATA / "report_run.md").read_text()


def test_render_markdown__no_losses_no_solvency__says_so_and_keeps_every_section(run: dict[str, Any]) -> None:
    calm = copy.deepcopy(run)
    for name in ("BadDebt", "AutoDeleverage", "Deleveraged", "Takeover"):
        calm["events"][name] = []
    calm["solvency"] = {}
    text = render_markdown(calm, key_numbers(calm), {})
    assert "No bad debt: every liquidated account closed above its bankruptcy price.\n\n### ADL" in text
    assert "No ADL: the insurance fund could cover every bankrupt position.\n\n## Plots\n\n## Keepers" in text
    assert "## Solvency check\n\n\n## Run" in text and "backstop takeovers took over" not in text
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert headings == [
        "## What happened", "## Key numbers", "## Who took the losses", "## Plots", "## Keepers",
        "## The market maker's basis trade", "## Solvency check", "## Run", "## Reproduce",
    ]  # fmt: skip
    assert text.endswith("`logs/`.\n") and "{{" not in text and "{%" not in text


def test_report_facts__numbers_only__the_template_formats_them(run: dict[str, Any]) -> None:
    facts = report_facts(run)
    assert facts["solvency"]["difference"] == 0 and facts["solvency"]["holds"] is True
    (first, _second) = facts["adl"]
    assert isinstance(first["size"], float) and first["counterparties"][0]["account"] == 40
    assert [r["bot"] for r in facts["keepers"]] == ["oracle", "funding", "liquidation", "adl"]
    assert facts["reverted"][0] == {"bot": "liquidation", "reason": "not liquidatable", "count": 6}


def test_filters__money_and_column_alignment() -> None:
    assert (money(271_467.4), money(0.5), money(-411_045.2)) == ("$271,467", "$0.50", "$-411,045")
    assert align(["155", "+12", "$3,430", "4,242.58"]) == "---:"
    assert align(["406.444", "1e-05"]) == "---"  # a number in exponent form is not right-aligned
