"""Malformed scenario files exit 2 naming the line and the key; failures exit 1 or fail the result."""

from __future__ import annotations

import copy
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from keeper.cli import main
from keeper.scenario.errors import ScenarioError
from keeper.scenario.loader import load_scenario
from keeper.scenario.runner import run_scenario
from keeper.units import parse_duration

HEADER = """\
name: errors
markets:
  BTC-PERP: {index: "100", tick_size: "1", lot_size: "0.001", min_order_notional: "10"}
accounts:
  trader: {deposit: "1000"}
"""  # five lines: the steps start on line 6

MALFORMED = {
    "unknown_top_level_key": (HEADER + "colateral_decimals: 6\nsteps: []\n", 6, "'colateral_decimals'"),
    "unknown_key_in_step": (
        HEADER
        + "steps:\n"
        + '  - oracle: {market: BTC-PERP, price: "100"}\n'
        + '  - order: {account: trader, market: BTC-PERP, sidee: buy, size: "1", price: "100"}\n',
        8,
        "'sidee'",
    ),
    "unknown_key_in_market": (HEADER.replace('"10"}', '"10", tick: "1"}') + "steps: []\n", 3, "'tick'"),
    "bad_duration": (
        HEADER + 'steps:\n  - deposit: {account: trader, amount: "1"}\n  - advance: 5x\n',
        8,
        "'advance'",
    ),
    "bad_duration_in_market": (
        HEADER.replace('"10"}', '"10", funding_interval: 1hour}') + "steps: []\n",
        3,
        "'funding_interval'",
    ),
    "missing_required_key": (
        HEADER + 'steps:\n  - order:\n      account: trader\n      market: BTC-PERP\n      size: "1"\n'
        '      price: "100"\n',
        7,
        "'side'",
    ),
    "missing_market_key": (
        HEADER.replace(', min_order_notional: "10"', "") + "steps: []\n",
        3,
        "'min_order_notional'",
    ),
    "unknown_step_kind": (
        HEADER + "steps:\n  - advance: 1h\n  - teleport: {account: trader}\n",
        8,
        "'teleport'",
    ),
    "unknown_expect_field": (
        HEADER + 'steps:\n  - expect:\n      - {account: trader, field: cashh, value: "1"}\n',
        8,
        "'field'",
    ),
    "market_on_account_wide_field": (
        HEADER
        + 'steps:\n  - expect:\n      - {account: trader, field: cash, market: BTC-PERP, value: "1"}\n',
        8,
        "'market'",
    ),
    "unknown_account": (HEADER + 'steps:\n  - deposit: {account: whale, amount: "1"}\n', 7, "'whale'"),
    "unknown_feature": (HEADER + "requires: [funding, teleport]\nsteps: []\n", 6, "'requires'"),
    "yaml_syntax": (HEADER + "steps:\n  - order: {account: trader\n", 8, "YAML"),
    # the liquidate step and the liquidation fields and parameters
    "liquidate_missing_by": (
        HEADER + 'steps:\n  - oracle: {market: BTC-PERP, price: "90"}\n'
        "  - liquidate: {account: trader, market: BTC-PERP}\n",
        8,
        "'by'",
    ),
    "liquidate_unknown_key": (
        HEADER + 'steps:\n  - liquidate: {account: trader, market: BTC-PERP, by: trader, size: "1"}\n',
        7,
        "'size'",
    ),
    "liquidate_unknown_liquidator": (
        HEADER + "steps:\n  - liquidate: {account: trader, market: BTC-PERP, by: whale}\n",
        7,
        "'whale'",
    ),
    "liquidate_unknown_market": (
        HEADER + "steps:\n  - liquidate: {account: trader, market: ETH-PERP, by: trader}\n",
        7,
        "'ETH-PERP'",
    ),
    "liquidate_zero_max_size": (
        HEADER + 'steps:\n  - liquidate: {account: trader, market: BTC-PERP, by: trader, max_size: "0"}\n',
        7,
        "'max_size'",
    ),
    "liquidate_revert_not_a_string": (
        HEADER + "steps:\n  - liquidate: {account: trader, market: BTC-PERP, by: trader}\n"
        "    expect_revert: [not liquidatable]\n",
        8,
        "'expect_revert'",
    ),
    "unknown_liquidation_field": (
        HEADER + 'steps:\n  - expect:\n      - {account: trader, field: liquidated, value: "1"}\n',
        8,
        "'field'",
    ),
    "liquidation_fee_above_bound": (
        HEADER.replace('"10"}', '"10", liquidation_fee: "0.1"}') + "steps: []\n",
        3,
        "liquidation_fee 0.1 is above the 5% bound",
    ),
    "bankrupt_band_out_of_bounds": (
        HEADER.replace('"10"}', '"10", bankrupt_band: "0.6"}') + "steps: []\n",
        3,
        "bankrupt_band 0.6 out of bounds",
    ),
    "insurance_payout_cap_zero": (
        HEADER + 'insurance_payout_cap: "0"\nsteps: []\n',
        6,
        "'insurance_payout_cap'",
    ),
    "reserved_account_name": (HEADER + "  <adl keeper>: {}\nsteps: []\n", 4, "reserved"),
}


@pytest.mark.parametrize("case", list(MALFORMED), ids=list(MALFORMED))
def test_scenario_run__malformed__exit_2_names_line_and_key(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text, line, key = MALFORMED[case]
    path = tmp_path / f"{case}.yaml"
    path.write_text(text)
    code = main(["scenario", "run", str(path)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1, err  # one line
    assert f"line {line}:" in err, err
    assert key in err, err


def test_load_scenario__unknown_key_suggests_the_close_one(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        HEADER + 'steps:\n  - order: {account: trader, market: BTC-PERP, sidee: buy, size: "1", price: "1"}\n'
    )
    with pytest.raises(
        ScenarioError, match=r"line 7: step 1 \(order\): unknown key 'sidee' \(did you mean 'side'\?\)"
    ):
        load_scenario(path)


def test_load_scenario__duplicate_key__error(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(HEADER + "  trader: {}\n")
    with pytest.raises(ScenarioError, match="line 6: duplicate key 'trader'"):
        load_scenario(path)


def test_load_scenario__cancel_of_undefined_label__error(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(HEADER + "steps:\n  - cancel: {account: trader, label: ask}\n")
    with pytest.raises(ScenarioError, match="line 7: step 1 \\(cancel\\): key 'label'"):
        load_scenario(path)


def test_load_scenario__liquidation_params_applied_and_requires_implemented() -> None:
    sc = load_scenario(
        {
            "requires": ["funding", "liquidation", "adl"],
            "insurance_payout_cap": "0.25",
            "markets": {
                "SOL-PERP": {
                    "index": "12",
                    "tick_size": "0.01",
                    "lot_size": "0.01",
                    "min_order_notional": "1",
                    "liquidation_fee": "0.005",
                    "liquidator_share": "0.5",
                    "bankrupt_band": "0.1",
                    "takeover_discount": "0.02",
                    "small_position_notional": "500",
                    "funding_interval": "1h",
                    "funding_period": "24h",
                    "interest_rate": "0",
                    "funding_clamp": "0.0005",
                    "funding_cap": "0.05",
                    "impact_notional": "1000",
                    "sample_interval": "60s",
                    "premium_mode": "impact_mid",
                }
            },
            "accounts": {"trader": {"deposit": "10000"}, "liquidator": {}},
            "steps": [
                {"advance": "24h"},
                {"keepers": ["liquidation", "adl"]},
                {
                    "liquidate": {
                        "account": "trader",
                        "market": "SOL-PERP",
                        "by": "liquidator",
                        "max_size": "1",
                    }
                },
                {
                    "expect": [
                        {"account": "trader", "field": "liquidated_size", "market": "SOL-PERP", "value": "0"},
                        {"account": "trader", "field": "adl_size", "value": "0"},
                        {"insurance_fund": "balance", "value": "0"},
                        {"event": "Covered", "count": 0},  # an InsuranceFund event
                    ]
                },
            ],
        }
    )
    assert sc.missing_features() == []  # the test suite runs such scenarios
    assert sc.spec.insurance_payout_cap == Decimal("0.25")
    mc = sc.spec.markets["SOL-PERP"].market_config("SOL-PERP")
    assert mc.liquidation_params() == (5 * 10**15, 5 * 10**17, 10**17, 2 * 10**16, 500 * 10**18)
    # the funding keys are applied to the market's FundingRate
    assert (mc.funding_interval, mc.funding_period, mc.sample_interval) == (3600, 86400, 60)
    assert mc.premium_mode == "impact_mid" and mc.funding_cap == Decimal("0.05")
    assert [s.kind for s in sc.steps] == ["advance", "keepers", "liquidate", "expect"]
    assert sc.steps[2].spec.max_size == Decimal(1)


def test_load_scenario__unset_liquidation_params__deployer_defaults() -> None:
    mc = load_scenario(copy.deepcopy(BASE)).spec.markets["BTC-PERP"].market_config("BTC-PERP")
    assert (mc.liquidation_fee, mc.liquidator_share, mc.bankrupt_band) == (
        Decimal("0.005"),
        Decimal("0.5"),
        Decimal("0.05"),
    )
    assert (mc.takeover_discount, mc.small_position_notional) == (Decimal("0.01"), Decimal(1000))


@pytest.mark.parametrize(
    ("override", "problem"),
    [
        ({"funding_interval": "30s"}, "funding_interval 30s out of bounds [60s, 1d]"),
        ({"funding_interval": "8h", "funding_period": "1h"}, "funding_period 1h out of bounds"),
        ({"sample_interval": "2h"}, "sample_interval 2h is longer than funding_interval 1h"),
        ({"interest_rate": "0.02"}, "interest_rate 0.02 out of bounds"),
        ({"funding_clamp": "0.05"}, "funding_clamp 0.05 is above the 1% bound"),
        ({"funding_cap": "0"}, "funding_cap 0 out of bounds"),
        ({"funding_cap": "0.2"}, "funding_cap 0.2 out of bounds"),
    ],
)
def test_load_scenario__funding_params_out_of_contract_bounds__error(
    override: dict[str, str], problem: str
) -> None:
    sc = copy.deepcopy(BASE)
    sc["markets"]["BTC-PERP"].update(override)
    with pytest.raises(ScenarioError, match="markets.BTC-PERP: " + problem.replace("[", r"\[")):
        load_scenario(sc)


def test_load_scenario__oracle_guard__passed_to_the_deployment() -> None:
    sc = copy.deepcopy(BASE)
    sc["markets"]["BTC-PERP"].update({"oracle_max_divergence": "2", "oracle_reference_rate": "0.25"})
    mc = load_scenario(sc).spec.markets["BTC-PERP"].market_config("BTC-PERP")
    assert (mc.oracle_max_divergence, mc.oracle_reference_rate) == (Decimal(2), Decimal("0.25"))


@pytest.mark.parametrize(
    ("override", "problem"),
    [
        ({"oracle_max_divergence": "0.04"}, "oracle_max_divergence"),
        ({"oracle_max_divergence": "11"}, "oracle_max_divergence"),
        ({"oracle_reference_rate": "0.005"}, "oracle_reference_rate"),
        ({"oracle_max_divergence": "0.50005"}, "oracle_max_divergence 0.50005 must be whole basis points"),
    ],
)
def test_load_scenario__oracle_guard_out_of_bounds__error(override: dict[str, str], problem: str) -> None:
    sc = copy.deepcopy(BASE)
    sc["markets"]["BTC-PERP"].update(override)
    with pytest.raises(ScenarioError, match=problem):
        load_scenario(sc)


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("5m", 300), ("8h", 28800), ("1d", 86400), ("1h30m", 5400)]
)
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["5x", "90", "", "h", "1.5h", 60])
def test_parse_duration__bad__raises(text: Any) -> None:
    with pytest.raises(ValueError, match="bad duration"):
        parse_duration(text)


# ---------------------------------------------------------------- runs that fail

BASE: dict[str, Any] = {
    "name": "failing",
    "markets": {
        "BTC-PERP": {
            "index": "100",
            "tick_size": "1",
            "lot_size": "0.001",
            "min_order_notional": "10",
            "taker_fee": "0",
            "maker_fee": "0",
        }
    },
    "accounts": {"maker": {"deposit": "10000"}, "trader": {"deposit": "1000"}},
    "steps": [
        {
            "order": {
                "account": "maker",
                "market": "BTC-PERP",
                "side": "sell",
                "size": "1",
                "price": "101",
                "type": "post_only",
                "label": "ask",
            }
        },
    ],
}


def scenario_with(*steps: dict[str, Any], **top: Any) -> dict[str, Any]:
    sc = copy.deepcopy(BASE)
    sc["steps"] += list(steps)
    sc.update(top)
    return sc


@pytest.mark.integration
def test_scenario_run__failing_expectation__exit_1_prints_expected_and_actual(
    scenario_rpc: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "fail.yaml"
    path.write_text(
        HEADER
        + "steps:\n"
        + "  - expect:\n"
        + '      - {account: trader, field: cash, value: "1000"}\n'
        + '      - {account: trader, field: cash, value: "999", tol: "0.5"}\n'
    )
    code = main(["scenario", "run", str(path), "--rpc", scenario_rpc])
    out = capsys.readouterr().out
    assert code == 1, out
    fail = [line for line in out.splitlines() if line.strip().startswith("FAIL") and "trader.cash" in line]
    assert fail and "expected 999 ± 0.5" in fail[0] and "actual 1000" in fail[0], out
    assert any(line.strip().startswith("ok") and "expected 1000" in line for line in out.splitlines()), out
    assert out.splitlines()[-1].startswith("FAIL  1 of 2 expectations failed"), out


@pytest.mark.integration
def test_run_scenario__expect_revert_that_does_not_revert__fails(scenario_rpc: str) -> None:
    result = run_scenario(
        scenario_with(
            {
                "order": {
                    "account": "trader",
                    "market": "BTC-PERP",
                    "side": "buy",
                    "size": "1",
                    "price": "100",
                    "expect_revert": "below initial margin",
                }
            },
            {"expect": [{"account": "trader", "field": "open_orders", "value": "1"}]},
        ),
        scenario_rpc,
    )
    assert not result.ok
    step = result.steps[1]
    assert not step.ok and "expected a revert with 'below initial margin', but it succeeded" in (
        step.error or ""
    )
    assert len(result.steps) == 2  # the run stops: later state would not be the scenario's


@pytest.mark.integration
def test_run_scenario__unexpected_revert_and_wrong_reason__fail_with_the_reason(scenario_rpc: str) -> None:
    result = run_scenario(
        scenario_with(
            {
                "order": {
                    "account": "trader",
                    "market": "BTC-PERP",
                    "side": "buy",
                    "size": "1",
                    "price": "101",
                    "type": "post_only",
                    "expect_revert": "size off lot",
                }
            },
        ),
        scenario_rpc,
    )
    assert not result.ok
    assert result.steps[-1].error == "expected a revert with 'size off lot', got 'post-only would cross'"

    result = run_scenario(
        scenario_with(
            {
                "order": {
                    "account": "trader",
                    "market": "BTC-PERP",
                    "side": "buy",
                    "size": "1",
                    "price": "101",
                    "type": "post_only",
                }
            }
        ),
        scenario_rpc,
    )
    assert not result.ok
    assert result.steps[-1].error == "reverted: post-only would cross"
    assert result.steps[-1].revert_reason == "post-only would cross"


@pytest.mark.integration
def test_run_scenario__order_larger_than_the_book__the_report_says_its_rest_is_cancelled(
    scenario_rpc: str,
) -> None:
    take = {"account": "trader", "market": "BTC-PERP", "side": "buy", "size": "3", "price": "101"}
    result = run_scenario(scenario_with({"order": {**take, "type": "ioc"}}), scenario_rpc)
    assert result.ok, result.text()
    assert "-> filled 1 @ 101 (1 fill); the rest, 2, is cancelled (IOC)" in result.text()
    # a limit order rests what is left once the side is used up
    result = run_scenario(scenario_with({"order": take}), scenario_rpc)
    assert result.ok, result.text()
    assert "-> filled 1 @ 101 (1 fill); rests 2 @ 101 as order #2" in result.text()


@pytest.mark.integration
def test_run_scenario__advance_with_every_keeper__nothing_to_liquidate(scenario_rpc: str) -> None:
    sc = scenario_with(
        {"advance": "8h"},
        {
            "expect": [
                {"market": "BTC-PERP", "field": "index", "value": "100"},
                # empty book: premium 0, so F = interest 0.01% per 8h, per 1h interval
                {"market": "BTC-PERP", "field": "last_funding_rate", "value": "0.0000125"},
                {"market": "BTC-PERP", "field": "funding_apr", "value": "0.1095"},
                {"market": "BTC-PERP", "field": "cumulative_funding", "value": "0.01"},
                {"event": "FundingSettled", "count": 8},
                {"account": "trader", "field": "liquidated_size", "value": "0"},
                {"account": "trader", "field": "adl_size", "value": "0"},
                {"event": "Liquidation", "count": 0},
            ]
        },
        {"keepers": ["oracle", "liquidation", "adl"]},
    )
    sc["markets"]["BTC-PERP"].update(funding_interval="1h", sample_interval="10m", liquidation_fee="0.01")
    result = run_scenario(sc, scenario_rpc)
    assert result.ok, result.text()  # the index was re-reported at every stop: valid
    assert not result.notes
    assert any("liquidations: 0, ADL: 0" in line for line in result.output), result.text()


# a long of 1 at 100 on 12 (IM 10%, MM 5%) against a maker's bid of 1 at 90; the index drops to 92:
# mark median(90, 92, 100) = 92, equity 12 - 8 = 4 < MM 4.6, bankruptcy price 88 (price_band 10%: the
# bid sits 10% below the index of 100)
def _underwater(**market: str) -> dict[str, Any]:
    sc = copy.deepcopy(BASE)
    sc["markets"]["BTC-PERP"].update(
        initial_margin="0.1", maintenance_margin="0.05", price_band="0.1", **market
    )
    sc["accounts"] = {"maker": {"deposit": "10000"}, "trader": {"deposit": "12"}, "liquidator": {}}
    sc["steps"] = [
        {"order": {"account": "maker", "market": "BTC-PERP", "side": "sell", "size": "1", "price": "100"}},
        {"order": {"account": "trader", "market": "BTC-PERP", "side": "buy", "size": "1", "type": "market"}},
        {"order": {"account": "maker", "market": "BTC-PERP", "side": "buy", "size": "1", "price": "90"}},
        {"oracle": {"market": "BTC-PERP", "price": "92"}},
    ]
    return sc


@pytest.mark.integration
def test_run_scenario__liquidate_step__fee_share_to_the_caller_and_fields(scenario_rpc: str) -> None:
    sc = _underwater(liquidation_fee="0.005", liquidator_share="0.5")
    sc["steps"] += [
        {"expect": [{"account": "trader", "field": "equity", "value": "4"}]},
        {"liquidate": {"account": "trader", "market": "BTC-PERP", "by": "liquidator"}},
        {
            "expect": [
                {"account": "trader", "field": "position", "value": "0"},
                {"account": "trader", "field": "liquidated_size", "market": "BTC-PERP", "value": "1"},
                {"account": "trader", "field": "liquidated_size", "value": "1"},
                # sold at the bid 90: 12 - 10 - 0.5% x 92
                {"account": "trader", "field": "cash", "value": "1.54"},
                {"account": "liquidator", "field": "cash", "value": "0.23"},  # half of the fee
                {"insurance_fund": "balance", "value": "0.23"},
                {"account": "maker", "field": "liquidated_size", "value": "0"},
                {"event": "Liquidation", "count": 1},
            ]
        },
        {
            "liquidate": {"account": "trader", "market": "BTC-PERP", "by": "liquidator"},
            "expect_revert": "not liquidatable",
        },
    ]
    result = run_scenario(sc, scenario_rpc)
    assert result.ok, result.text()
    assert any("closed 1 at mark 92 (limit 88)" in line for line in result.output), result.text()


@pytest.mark.integration
def test_run_scenario__liquidate_max_size__partial_close(scenario_rpc: str) -> None:
    sc = _underwater(small_position_notional="0")
    sc["steps"] += [
        {"liquidate": {"account": "trader", "market": "BTC-PERP", "by": "liquidator", "max_size": "0.5"}},
        {
            "expect": [
                {"account": "trader", "field": "position", "value": "0.5"},
                {"account": "trader", "field": "liquidated_size", "value": "0.5"},
            ]
        },
    ]
    result = run_scenario(sc, scenario_rpc)
    assert result.ok, result.text()


@pytest.mark.integration
def test_run_scenario__advance_liquidates_when_due_and_skips_an_empty_book(scenario_rpc: str) -> None:
    """At the stops of `advance` the liquidation keeper acts through the lane: with no bid within the
    bankruptcy price it sends nothing (skipped, printed); once the maker bids, the next stop liquidates."""
    sc = _underwater()
    sc["steps"] += [
        {"cancel": {"account": "maker", "order_id": 2}},
        {"advance": "2m"},
        {
            "expect": [
                {"account": "trader", "field": "position", "value": "1"},
                {"event": "Liquidation", "count": 0},
            ]
        },
        {"order": {"account": "maker", "market": "BTC-PERP", "side": "buy", "size": "1", "price": "90"}},
        {"advance": "1m"},
        {
            "expect": [
                {"account": "trader", "field": "position", "value": "0"},
                {"account": "trader", "field": "liquidated_size", "value": "1"},
                {"event": "Liquidation", "count": 1},
            ]
        },
    ]
    result = run_scenario(sc, scenario_rpc)
    assert result.ok, result.text()
    assert any("would close nothing" in line for line in result.output), result.text()
    assert any("liquidations: 1, ADL: 0" in line for line in result.output), result.text()


@pytest.mark.integration
def test_run_scenario__liquidate_healthy_account__step_fails_with_the_reason(scenario_rpc: str) -> None:
    result = run_scenario(
        scenario_with({"liquidate": {"account": "trader", "market": "BTC-PERP", "by": "maker"}}), scenario_rpc
    )
    assert not result.ok
    assert result.steps[-1].error == "reverted: not liquidatable"


@pytest.mark.integration
def test_run_scenario__funding_settled_by_withdraw__is_an_event_and_counted(
    scenario_rpc: str,
) -> None:
    """Clearinghouse.withdraw settles funding into cash and the market emits
    PositionChanged with funding_paid, so the events' sum stays exact (the
    runner's replay check, which catches a settlement without an event, passes)."""
    sc = scenario_with(
        {"order": {"account": "trader", "market": "BTC-PERP", "side": "buy", "size": "1", "type": "market"}},
        {"advance": "1h"},
        {"expect": [{"account": "trader", "field": "funding_paid", "value": "0.00125"}]},
        {"withdraw": {"account": "trader", "amount": "1"}},
        {"expect": [{"account": "trader", "field": "funding_paid", "value": "0.00125"}]},
    )
    sc["markets"]["BTC-PERP"].update(funding_interval="1h", sample_interval="30m")
    result = run_scenario(sc, scenario_rpc)
    (owed,) = result.steps[3].expectations
    assert owed.ok, result.text()  # 1 x 100 x 0.01% per 8h x 1h/8h, owed
    (settled,) = result.steps[5].expectations
    assert settled.ok, result.text()  # settled by the withdrawal, seen through its event


@pytest.mark.parametrize(
    "key", ["initial_margin", "maintenance_margin", "taker_fee", "maker_fee", "mark_band", "price_band"]
)
def test_load_scenario__market_rate_off_the_1e9_grid__error_names_the_field(key: str) -> None:
    """PerpMarket keeps its rates in units of 1e-9: a finer rate is refused
    when the file is read, with the field, before any chain is started."""
    sc = copy.deepcopy(BASE)
    rates = {
        "initial_margin": "0.1",
        "maintenance_margin": "0.05",
        "taker_fee": "0.0005",
        "maker_fee": "0.0002",
    }
    # mark_band at most maintenance_margin / 4 = 0.0125
    sc["markets"]["BTC-PERP"].update({**rates, "mark_band": "0.01", "price_band": "0.02"})
    rate = Decimal(sc["markets"]["BTC-PERP"][key])
    sc["markets"]["BTC-PERP"][key] = str(rate + Decimal("1e-10"))
    with pytest.raises(ScenarioError, match=f"markets.BTC-PERP: {key} .* must be a whole multiple of 1e-9"):
        load_scenario(sc)
    sc["markets"]["BTC-PERP"][key] = str(rate + Decimal("1e-9"))
    assert getattr(load_scenario(sc).spec.markets["BTC-PERP"], key) == rate + Decimal("1e-9")  # on the grid
