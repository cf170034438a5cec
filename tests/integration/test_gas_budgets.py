"""The issues' gas budgets, asserted on real transactions (bench/gas.py on
anvil: receipts' gasUsed, deterministic), and every deployable's size. The
four corner shapes of the order book are budgeted at their measured storage
floor + 1,000 gas (docs/PROTOCOL.md §15). A deep book of 100 orders and 100
open positions stand in for the bench's 5,000 and 10,000 (the figures are the
same, see the depth tests)."""

from __future__ import annotations

import pytest

from bench.gas import BUDGETS, measure, measure_funding, measure_liquidation, sizes
from keeper import artifacts

DEEP, POSITIONS = 100, 100

# rows the bench measures with 10,000 positions; here with POSITIONS (same gas, tested below)
SCALED = {
    "funding settlement, 10,000 open positions": f"funding settlement, {POSITIONS} open positions",
    "premium sample, 10,000 open positions": f"premium sample, {POSITIONS} open positions",
}


@pytest.fixture(scope="module")
def gas() -> dict[str, int]:
    figures = {k: v for k, v in measure(DEEP).items() if k != "_rows"}
    for row in [*measure_funding((10, POSITIONS)), *measure_liquidation()]:
        figures[row.name] = row.gas
    return figures


@pytest.mark.parametrize("name", sorted(BUDGETS))
def test_gas_budget(gas, name):
    got = gas[SCALED.get(name, name)]
    assert got <= BUDGETS[name], f"{name}: {got:,} gas > budget {BUDGETS[name]:,}"


@pytest.mark.parametrize("what", ["place at a fresh tick behind", "cancel in", "market order vs 1 resting,"])
def test_order_book_gas_does_not_depend_on_depth(gas, what):
    shallow = gas[f"{what} a book of 5" if what != "market order vs 1 resting," else f"{what} book of 5"]
    deep = gas[
        f"{what} a book of {DEEP}" if what != "market order vs 1 resting," else f"{what} book of {DEEP}"
    ]
    assert shallow == deep


@pytest.mark.parametrize("what", ["premium sample", "funding settlement"])
def test_funding_gas_does_not_depend_on_open_positions(gas, what):
    assert gas[f"{what}, 10 open positions"] == gas[f"{what}, {POSITIONS} open positions"]


def test_every_deployable_keeps_2kb_under_eip170():
    rows = sizes()
    assert {r.name for r in rows} >= {
        "PerpMarket",
        "Clearinghouse",
        "LiquidationEngine",
        "Lens",
        "IndexOracle",
        "FundingRate",
        "InsuranceFund",
    }
    assert artifacts.SIZE_TARGET == 22_528
    for row in rows:
        assert row.gas <= artifacts.SIZE_TARGET, f"{row.name}: {row.gas:,} bytes > {artifacts.SIZE_TARGET:,}"
