"""Integration: `scripts/simulate.py --quick` end to end, twice with the same seed.

A fresh anvil, the protocol, the four keepers as processes, the maker and the crowd through the
crash: the report and every plot are written, the crash liquidates accounts, the solvency
identity holds to the wei, and a second run with the same seed reproduces every key number
(summary.json, compared whole). About 45 s."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scripts.simulate import main

pytestmark = pytest.mark.integration

SEED = 11


def run(out: Path) -> dict:
    assert main(["--quick", "--seed", str(SEED), "--out", str(out), "--no-progress"]) == 0
    return json.loads((out / "summary.json").read_text())


def test_simulate_quick__report_plots_solvency__same_seed_same_numbers(tmp_path: Path) -> None:
    first = run(tmp_path / "first")
    out = tmp_path / "first"
    report = (out / "report.md").read_text()
    for name in (
        "index_mark",
        "funding_apr",
        "open_interest",
        "book_depth",
        "liquidations",
        "insurance_fund",
        "adl",
    ):
        png = out / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        assert f"]({name}.png)" in report, name
    assert "holds to the wei" in report
    data = json.loads((out / "data.json").read_text())
    solvency = data["solvency"]
    assert solvency["holds"] and solvency["difference"] == 0 and solvency["fund_difference"] == 0
    assert solvency["positions"] > 0 and solvency["cash"] > 0
    assert first["solvency_holds"] and first["accounts_liquidated"] > 0 and first["liquidations_closing"] > 0
    assert first["latency_samples"] > 0 and first["funding_settlements"] > 0
    for bot in ("oracle", "funding", "liquidation", "adl"):
        assert data["keepers"]["processes"][bot]["exit_code"] == 0, bot
    assert data["keepers"]["transactions"]["oracle"]["mined"] > 0

    second = run(tmp_path / "second")
    assert second == first
