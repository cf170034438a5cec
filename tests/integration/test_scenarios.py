"""Every scenarios/*.yaml runs green; the CLI runs the seed-001 example."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from keeper.anvil import Anvil
from keeper.scenario.loader import load_scenario
from keeper.scenario.runner import run_scenario
from keeper.scenario.schema import AccountExpect, EventExpect, InsuranceExpect

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = sorted((REPO / "scenarios").glob("*.yaml"))
SEED001 = REPO / "scenarios" / "seed001_btc_86k_to_90k.yaml"

pytestmark = pytest.mark.integration


def test_scenarios__shipped_files_exist() -> None:
    names = {p.name for p in SCENARIOS}
    assert {"seed001_btc_86k_to_90k.yaml", "basics_orders_and_margin.yaml"} <= names
    # the seeds' funding examples (002: mark - index per day, both ways; 003: Zeta; 004: Binance 8h)
    assert {
        "seed002_mark_minus_index.yaml",
        "seed002_perp_below_index.yaml",
        "seed003_zeta_sol_impact_mid.yaml",
        "seed004_8h_funding.yaml",
    } <= names
    # the seeds' liquidation, bad-debt and ADL examples (002: 1% and 2% drops; 001: ADL, basis trade)
    assert {
        "seed002_liquidation_1pct.yaml",
        "seed002_bad_debt_2pct.yaml",
        "seed001_adl_2x.yaml",
        "basis_trader_adl.yaml",
    } <= names
    for path in SCENARIOS:
        assert not load_scenario(path).missing_features(), path.name


def _expected(name: str) -> dict[str, list[tuple[Decimal, Decimal]]]:
    """subject -> [(value, tol)] of every expectation of a shipped scenario (static: no chain)."""
    sc = load_scenario(REPO / "scenarios" / name)
    out: dict[str, list[tuple[Decimal, Decimal]]] = {}
    for step in sc.steps:
        if step.kind != "expect":
            continue
        for e in step.spec:
            if isinstance(e, EventExpect):
                out.setdefault(f"event {e.event}", []).append((Decimal(e.count), Decimal(0)))
            elif isinstance(e, InsuranceExpect):
                out.setdefault("insurance_fund", []).append((e.value, e.tol))
            elif isinstance(e, AccountExpect):
                out.setdefault(f"{e.account}.{e.field}", []).append((e.value, e.tol))
    return out


def test_seed_examples__pinned_exactly() -> None:
    """The seeds' figures stay in the shipped files as exact expectations (the runs check them)."""
    liq = _expected("seed002_liquidation_1pct.yaml")
    assert (Decimal("0.25"), Decimal("0.003")) in liq["anon.cash"]  # "she may get back only $0.25"
    assert (Decimal("0.2525"), Decimal(0)) in liq["anon.cash"]
    assert (Decimal(1), Decimal(0)) in liq["anon.liquidated_size"]
    assert (Decimal(1), Decimal(0)) in liq["event Liquidation"]
    bad = _expected("seed002_bad_debt_2pct.yaml")
    assert (Decimal("99.5"), Decimal(0)) in bad["insurance_fund"]  # the fund pays the $0.50
    assert (Decimal(2), Decimal(0)) in bad["bot.realized_pnl"]  # the winner is paid in full
    assert (Decimal(1), Decimal(0)) in bad["event BadDebt"]
    adl = _expected("seed001_adl_2x.yaml")
    assert (Decimal(20000), Decimal(0)) in adl["winner.unrealized_pnl"]  # 40% of 50,000, not 80%
    assert (Decimal(-1), Decimal(0)) in adl["winner.position"]
    assert (Decimal(1), Decimal(0)) in adl["winner.adl_size"] and (Decimal(1), Decimal(0)) in adl[
        "loser.adl_size"
    ]
    assert (Decimal(0), Decimal(0)) in adl["event BadDebt"]
    basis = _expected("basis_trader_adl.yaml")
    assert (Decimal(-5), Decimal(0)) in basis["basis_trader.position"]  # half its hedge gone
    assert (Decimal(5), Decimal(0)) in basis["basis_trader.adl_size"]


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_scenario__every_expectation_holds(path: Path, scenario_rpc: str) -> None:
    scenario = load_scenario(path)
    missing = scenario.missing_features()
    if missing:
        pytest.skip(f"{path.name} requires {', '.join(missing)}: not implemented yet")
    result = run_scenario(scenario, scenario_rpc)
    assert result.ok, "\n".join(result.failures) + "\n\n" + result.text()
    assert result.expectations, "a scenario must check something"
    assert all(e.ok for e in result.expectations)


def test_seed001__unrealized_pnl_is_400_with_position_still_01(scenario_rpc: str) -> None:
    result = run_scenario(SEED001, scenario_rpc)
    by_subject: dict[str, list] = {}
    for e in result.expectations:
        by_subject.setdefault(e.subject, []).append(e)
    assert result.ok, result.text()
    assert any(str(e.actual) == "400" and e.tol == 0 for e in by_subject["trader.unrealized_pnl[BTC-PERP]"])
    assert any(str(e.actual) == "0.1" for e in by_subject["trader.position[BTC-PERP]"])
    assert all(e.actual == 0 for e in by_subject["trader.fees_paid"])


# A day of hourly funding on a 1 BTC long at 38,000: a book around the index (premium 0), interest
# 0.01% per 8h, so every hourly settlement moves the accumulator by 0.0001 / 8 x 38,000 = 0.475 and
# the day costs the long 24 x 0.475 = 11.40, paid to the short
DAY_OF_HOURLY_FUNDING = """\
name: day-of-hourly-funding
markets:
  BTC-PERP:
    index: "38000"
    tick_size: "1"
    lot_size: "0.001"
    min_order_notional: "10"
    taker_fee: "0"
    maker_fee: "0"
    funding_interval: 1h
    funding_period: 8h
    interest_rate: "0.0001"
    premium_mode: impact_band
    sample_interval: 1h
accounts:
  trader: {deposit: "10000"}
  seller: {deposit: "10000"}
  maker: {deposit: "100000"}
steps:
  - order: {account: seller, market: BTC-PERP, side: sell, size: "1", price: "38000"}
  - order: {account: trader, market: BTC-PERP, side: buy, size: "1", price: "38000", type: ioc}
  - order: {account: maker, market: BTC-PERP, side: buy, size: "1", price: "37990", type: post_only}
  - order: {account: maker, market: BTC-PERP, side: sell, size: "1", price: "38010", type: post_only}
  - advance: 1d
  - expect:
      - {event: FundingSettled, count: 24}
      - {market: BTC-PERP, field: cumulative_funding, value: "11.4"}
      - {account: trader, field: funding_paid, value: "11.4"}
      - {account: seller, field: funding_paid, value: "-11.4"}
  # the long closes into the bid: the 11.40 moves from owed to cash
  - order: {account: trader, market: BTC-PERP, side: sell, size: "1", price: "37990", type: ioc, reduce_only: true}
  - expect:
      - {account: trader, field: funding_paid, value: "11.4"}
      - {account: trader, field: realized_pnl, value: "-10"}
      - {account: trader, field: cash, value: "9978.6"}
"""


def test_run_scenario__day_of_hourly_funding__recent_states_only__funding_paid_from_events(
    tmp_path: Path,
) -> None:
    """`funding_paid` after a long advance, on a node that keeps the state of its last 8 blocks only
    (as a real node keeps recent states): the position was opened far more blocks ago than that, and
    funding_paid (settled by events + owed now) must still equal the accumulator's 24 moves and the
    cash the close settles. It once read the accumulator by eth_call at each position change's
    block and failed with BlockOutOfRangeError (so did `keeper scenario run` of 1 day in 1,440
    stops on its own anvil)."""
    path = tmp_path / "day.yaml"
    path.write_text(DAY_OF_HOURLY_FUNDING)
    with Anvil(accounts=60, extra_args=("--prune-history", "8")) as node:
        result = run_scenario(path, node.url)
    assert result.ok, "\n".join(result.failures) + "\n\n" + result.text()
    assert any("funding: 24 settlement(s)" in line for line in result.output), result.text()
    assert all(e.ok and e.error is None for e in result.expectations)


def _keeper_command() -> list[str]:
    script = Path(sys.executable).with_name("keeper")
    return [str(script)] if script.exists() else [sys.executable, "-m", "keeper.cli"]


def test_cli__scenario_run_seed001__exit_0_and_prints_expected_and_actual() -> None:
    """The real command line, with an anvil of its own (started and stopped by the runner)."""
    proc = subprocess.run(
        [*_keeper_command(), "scenario", "run", "scenarios/seed001_btc_86k_to_90k.yaml"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    pnl = [line for line in lines if "trader.unrealized_pnl[BTC-PERP]" in line and "expected 400" in line]
    assert pnl and all("actual 400" in line and line.split()[0] == "ok" for line in pnl), proc.stdout
    assert lines[-1].startswith("PASS"), proc.stdout
