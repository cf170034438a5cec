"""Liquidation keeper: the pure ranking and planning, the gas budget, settings and CLI wiring.
(Against anvil: tests/integration/test_liquidation_keeper_process.py.)"""

from __future__ import annotations

from typing import Any

import pytest

from keeper.bots.liquidation import (
    Health,
    LiquidationBot,
    Position,
    describe_failed_ranges,
    is_benign_revert,
    liquidation_gas,
    plan_liquidations,
    rank_liquidatable,
)
from keeper.liquidation_model import LiquidationParams, worst_case_deficit
from keeper.settings import SettingsError, load_settings

WAD = 10**18
BTC = "0x000000000000000000000000000000000000b7c0"
ETH = "0x000000000000000000000000000000000000e7e0"
PARAMS = {
    m: LiquidationParams(
        liquidation_fee=5 * 10**15,
        liquidator_share=WAD // 2,
        bankrupt_band=5 * 10**16,
        takeover_discount=10**16,
        small_position_notional=1_000 * WAD,
    )
    for m in (BTC, ETH)
}


def health(account: int, equity: float, mm: float, im: float | None = None) -> Health:
    e, m = int(equity * WAD), int(mm * WAD)
    return Health(account, e, int((im if im is not None else mm * 1.5) * WAD), m, e < m)


def position(account: int, size: float, mark: float = 92_000, market: str = BTC, orders: int = 0) -> Position:
    return Position(account, market, int(size * WAD), 0, int(mark * WAD), 0, orders)


# ---------------------------------------------------------------- ranking


def test_rank__liquidatable_only__lowest_equity_over_mm_first() -> None:
    rows = [
        health(1, 50, 60),  # ratio 0.83
        health(2, 10, 60),  # 0.17
        health(3, 70, 60),  # healthy
        health(4, 100, 1_000),  # 0.10: larger account, smaller ratio
        health(5, -5, 60),  # bankrupt: negative ratio, first
        health(6, 60, 60),  # equity == MM: not liquidatable
    ]
    assert [h.account for h in rank_liquidatable(rows)] == [5, 4, 2, 1]


def test_rank__ties__larger_shortfall_then_lower_id() -> None:
    rows = [health(7, 10, 20), health(3, 50, 100), health(2, 50, 100)]  # all ratio 0.5
    assert [h.account for h in rank_liquidatable(rows)] == [2, 3, 7]


def test_rank__no_maintenance_margin__negative_equity_still_ranked() -> None:
    # flat with negative cash (orders only): liquidatable by the rule, planned to nothing (no position)
    (h,) = rank_liquidatable([Health(9, -WAD, 0, 0, True)])
    assert h.account == 9
    plan = plan_liquidations([h], {9: []}, PARAMS, capacity=0)
    assert plan.liquidate == [] and plan.adl == []


# ---------------------------------------------------------------- planning


def test_plan__solvent__liquidate_in_rank_order() -> None:
    ranked = rank_liquidatable([health(1, 50, 60), health(2, 10, 60)])
    plan = plan_liquidations(ranked, {1: [position(1, 0.01)], 2: [position(2, 0.01, orders=3)]}, PARAMS, 0)
    assert [(a.account, a.kind) for a in plan.liquidate] == [(2, "liquidate"), (1, "liquidate")]
    assert plan.liquidate[0].open_orders == 3 and plan.adl == []


def test_plan__bankrupt__liquidate_only_when_the_fund_covers_the_worst_case() -> None:
    h = health(1, -400, 550)
    p = position(1, 0.1, mark=85_000)
    worst = worst_case_deficit(h.equity, abs(p.size), p.mark, PARAMS[BTC].bankrupt_band)
    assert worst == 400 * WAD + 425 * WAD  # deficit + 5% band on $8,500
    covered = plan_liquidations([h], {1: [p]}, PARAMS, capacity=worst)
    assert [a.kind for a in covered.liquidate] == ["liquidate"] and covered.liquidate[
        0
    ].worst_case_deficit == worst
    short = plan_liquidations([h], {1: [p]}, PARAMS, capacity=worst - 1)
    assert short.liquidate == [] and [(a.account, a.kind) for a in short.adl] == [(1, "adl")]


def test_plan__bankrupt_accounts_share_the_capacity_within_a_round() -> None:
    rows = [health(1, -400, 550), health(2, -300, 550)]
    positions = {1: [position(1, 0.1, 85_000)], 2: [position(2, 0.1, 85_000)]}
    # room for one worst case (825 or 725), not both: the worst account first, the other to ADL
    plan = plan_liquidations(rank_liquidatable(rows), positions, PARAMS, capacity=1_000 * WAD)
    assert [a.account for a in plan.liquidate] == [1] and [a.account for a in plan.adl] == [2]
    both = plan_liquidations(rank_liquidatable(rows), positions, PARAMS, capacity=1_550 * WAD)
    assert [a.account for a in both.liquidate] == [1, 2]


def test_plan__bankrupt_in_two_markets__deficit_reserved_once() -> None:
    h = health(1, -100, 700)
    btc, eth = position(1, 0.1, 85_000), position(1, 1, 3_000, market=ETH)
    # worst cases: 100 + 425 (BTC) and 100 + 150 (ETH); the deficit is counted once: 675
    plan = plan_liquidations([h], {1: [eth, btc]}, PARAMS, capacity=675 * WAD)
    assert [a.market for a in plan.liquidate] == [BTC, ETH]  # largest notional first
    tight = plan_liquidations([h], {1: [eth, btc]}, PARAMS, capacity=674 * WAD)
    assert [a.market for a in tight.liquidate] == [BTC] and [a.market for a in tight.adl] == [ETH]


def test_plan__in_flight_skipped__flat_markets_ignored__max_actions_defers() -> None:
    ranked = rank_liquidatable([health(a, 10, 60) for a in (1, 2, 3, 4)])
    positions = {a: [position(a, 0.01)] for a in (1, 2, 3, 4)}
    positions[4] = [position(4, 0, orders=2)]  # orders only, no position
    plan = plan_liquidations(ranked, positions, PARAMS, 0, in_flight={(2, BTC)}, max_actions=1)
    assert [a.account for a in plan.liquidate] == [1]
    assert plan.in_flight == [(2, BTC)] and plan.deferred == 1


@pytest.mark.parametrize(
    ("reason", "benign"),
    [
        ("not liquidatable", True),
        ("liquidate: no position", True),
        ("liquidate: insurance fund cannot cover, adl", True),
        ("oracle: stale index", False),
        ("zero size", False),
    ],
)
def test_is_benign_revert(reason: str, benign: bool) -> None:
    assert is_benign_revert(reason) is benign


def test_liquidation_gas__bounded_by_fills_and_cancels() -> None:
    # measured on anvil: ~223k for 1 fill, ~974k for 16 fills, ~2.75M for 16 fills and 150 cancels
    assert liquidation_gas(16, 0) > 974_192
    assert liquidation_gas(16, 150) > 2_749_410
    assert liquidation_gas(1, 0) > 222_641


def test_describe_failed_ranges__grouped_by_reason() -> None:
    failed = [(3, 1, "stale index"), (7, 3, "stale index"), (20, 1, "out of gas")]
    assert describe_failed_ranges(failed) == "accounts 3, 7..9: stale index; accounts 20: out of gas"


def test_bot__health_page_bounds() -> None:
    with pytest.raises(ValueError, match="health_page"):
        LiquidationBot(object(), _FakeContract(), health_page=501)  # type: ignore[arg-type]


class _FakeContract:
    w3: Any = None


# ---------------------------------------------------------------- settings and CLI


def test_settings__liquidation_and_adl_sections(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    key = "0x" + "ab" * 32
    config = tmp_path / "k.yaml"
    config.write_text(
        f"liquidation:\n  interval_s: 0.5\n  max_per_round: 50\n  key: '{key}'\nadl:\n  max_per_round: 3\n"
    )
    monkeypatch.setenv("VYPERP_LIQUIDATION__DRY_RUN", "true")
    s = load_settings(config)
    assert s.liquidation.interval_s == 0.5 and s.liquidation.max_per_round == 50 and s.liquidation.dry_run
    assert s.liquidation.key is not None and s.liquidation.key.get_secret_value() == key
    assert s.adl.max_per_round == 3 and s.adl.interval_s == 2.0 and not s.adl.dry_run
    assert s.liquidation.health_page == 500 and s.liquidation.gas is None
    config.write_text("liquidation:\n  health_page: 1000\n")
    with pytest.raises(SettingsError, match="health_page"):
        load_settings(config)
    config.write_text("adl:\n  bogus: 1\n")
    with pytest.raises(SettingsError, match="unknown setting 'adl.bogus'"):
        load_settings(config)


def test_cli__liquidation_adl_and_audit_commands_parse() -> None:
    from keeper.cli import BOTS, build_parser

    assert {"liquidation", "adl"} <= set(BOTS)
    args = build_parser().parse_args(["run", "liquidation", "--once", "--dry-run"])
    assert args.bot == "liquidation" and args.once and args.dry_run
    args = build_parser().parse_args(["audit", "adl", "--tx", "0xab", "--json"])
    assert args.tx == "0xab" and args.block is None and args.json
    with pytest.raises(SystemExit):
        build_parser().parse_args(["audit", "adl", "--tx", "0xab", "--block", "3"])


def test_cli__run_liquidation_without_key__exit_2(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from keeper.cli import main

    manifest = tmp_path / "m.json"
    manifest.write_text('{"chain_id": 31337, "clearinghouse": "0x' + "11" * 20 + '", "markets": {}}')
    config = tmp_path / "k.yaml"
    config.write_text(f"manifest: {manifest}\n")
    assert main(["run", "liquidation", "--config", str(config)]) == 2
    assert "no liquidation keeper key" in capsys.readouterr().err
