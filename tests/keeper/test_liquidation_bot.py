"""Liquidation keeper: the pure ranking and planning, the gas budget, settings and CLI wiring.
(Against anvil: tests/integration/test_liquidation_keeper_process.py.)"""

from __future__ import annotations

import json
from typing import Any

import pytest

from keeper.bots.inflight import Outgoing, send_batch
from keeper.bots.liquidation import (
    LiquidationBot,
    is_benign_revert,
    liquidation_gas,
    plan_liquidations,
    rank_liquidatable,
)
from keeper.bots.scan import Health, Position, describe_failed_ranges
from keeper.bots.takeover import TAKEOVER_BENIGN_REVERTS, TakeoverCandidate, plan_takeovers, takeover_size
from keeper.liquidation_model import LiquidationParams, worst_case_deficit
from keeper.settings import SettingsError, load_settings
from keeper.units import WAD

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


def test_plan__market_of_orders_only__cancelled_first_then_the_close() -> None:
    # the orders' risk holds back the close elsewhere (PROTOCOL.md §10): cancel them first
    ranked = rank_liquidatable([health(1, 50, 60)])
    book = [position(1, 0.01), position(1, 0, market=ETH, orders=2), position(1, 0, market=BTC + "1")]
    plan = plan_liquidations(ranked, {1: book}, PARAMS, 0)
    assert [(a.market, a.size, a.open_orders) for a in plan.liquidate] == [(ETH, 0, 2), (BTC, WAD // 100, 0)]
    assert plan.liquidate[0].reason == "cancel the orders of a market without position"


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


def test_plan__bankrupt_accounts_share_the_capacity__the_rest_beyond_reservation__not_withheld() -> None:
    rows = [health(1, -400, 550), health(2, -300, 550), health(3, -900, 950)]
    positions = {a: [position(a, 0.1, 85_000)] for a in (1, 2, 3)}
    # worst cases 1,325 (3), 825 (1), 725 (2): room for one, not two. The worst account in the
    # batch; the ones the fund covers alone (what `adl` checks) one by one after it, worst first
    # (the contract re-checks the capacity per call); only what it cannot cover alone goes to ADL
    plan = plan_liquidations(rank_liquidatable(rows), positions, PARAMS, capacity=1_000 * WAD)
    assert [a.account for a in plan.liquidate] == [1]
    assert [a.account for a in plan.beyond_reservation] == [2] and [a.account for a in plan.adl] == [3]
    both = plan_liquidations(rank_liquidatable(rows), positions, PARAMS, capacity=1_550 * WAD)
    assert [a.account for a in both.liquidate] == [3] and [a.account for a in both.beyond_reservation] == [
        1,
        2,
    ]
    assert both.adl == []
    capped = plan_liquidations(
        rank_liquidatable(rows), positions, PARAMS, capacity=1_550 * WAD, max_actions=2
    )
    assert [a.account for a in capped.liquidate + capped.beyond_reservation] == [
        3,
        1,
    ] and capped.deferred == 1


def test_plan__bankrupt_in_two_markets__deficit_reserved_once() -> None:
    h = health(1, -100, 700)
    btc, eth = position(1, 0.1, 85_000), position(1, 1, 3_000, market=ETH)
    # worst cases: 100 + 425 (BTC) and 100 + 150 (ETH); the deficit is counted once: 675
    plan = plan_liquidations([h], {1: [eth, btc]}, PARAMS, capacity=675 * WAD)
    assert [a.market for a in plan.liquidate] == [BTC, ETH]  # largest notional first
    tight = plan_liquidations([h], {1: [eth, btc]}, PARAMS, capacity=674 * WAD)
    assert [a.market for a in tight.liquidate] == [BTC] and [a.market for a in tight.beyond_reservation] == [
        ETH
    ]
    short = plan_liquidations([h], {1: [eth, btc]}, PARAMS, capacity=524 * WAD)
    assert [a.market for a in short.liquidate] == [ETH] and [a.market for a in short.adl] == [BTC]


def test_plan__in_flight_skipped__flat_markets_ignored__max_actions_defers() -> None:
    ranked = rank_liquidatable([health(a, 10, 60) for a in (1, 2, 3, 4)])
    positions = {a: [position(a, 0.01)] for a in (1, 2, 3, 4)}
    positions[4] = [position(4, 0)]  # flat, no orders (orders only: cancelled, see above)
    plan = plan_liquidations(ranked, positions, PARAMS, 0, in_flight={(2, BTC)}, max_actions=1)
    assert [a.account for a in plan.liquidate] == [1]
    assert plan.in_flight == [(2, BTC)] and plan.deferred == 1


# ---------------------------------------------------------------- backstop takeover

LOT = 10**14  # 0.0001 BTC
IMR = WAD // 10


def candidate(
    account: int, size: float, equity: float, mark: float = 92_000, orders: int = 0, own: bool = False
) -> TakeoverCandidate:
    return TakeoverCandidate(
        account, BTC, int(equity * WAD), int(abs(size) * mark * 0.065 * WAD), int(size * WAD),
        int(mark * WAD), orders, LOT, IMR, PARAMS[BTC], own,
    )  # fmt: skip


def test_takeover_size__whole__partial_in_lots__never_leaves_dust__bankrupt_only_whole() -> None:
    mark = 92_000 * WAD
    kw: dict[str, Any] = {"small_position_notional": 1_000 * WAD, "bankrupt": False}
    assert takeover_size(WAD, mark, LOT, afford=2 * WAD, **kw) == WAD
    assert takeover_size(WAD, mark, LOT, afford=WAD // 2 + 12_345, **kw) == WAD // 2  # whole lots
    # taking 0.995 would leave $460 (<= $1,000: the contract takes all): leave 0.0109 (> $1,000)
    q = takeover_size(WAD, mark, LOT, afford=995 * WAD // 1000, **kw)
    assert q == WAD - 109 * LOT and (WAD - q) * mark // WAD // WAD > 1_000
    assert takeover_size(WAD // 100, mark, LOT, afford=WAD // 200, **kw) == 0  # all of it is small
    assert takeover_size(WAD, mark, LOT, afford=WAD // 100, **kw) == 0  # $920: less than worth a tx
    assert takeover_size(WAD, mark, LOT, afford=WAD - LOT, small_position_notional=0, bankrupt=True) == 0
    assert takeover_size(WAD, mark, LOT, afford=WAD, small_position_notional=0, bankrupt=True) == WAD


def test_plan_takeovers__within_the_takers_margin__worst_first__skips_orders_and_own() -> None:
    # 1 BTC at $92,000 needs $9,200 of initial margin (10%): $13,000 free (1% kept back: $12,870)
    # carries it and 0.3989 more
    cands = [
        candidate(1, 1, 500),
        candidate(2, -1, 400, orders=1),  # resting orders: liquidate cancels them first
        candidate(3, 1, 300, own=True),  # our own key's account: the contract refuses
        candidate(4, -1, 200),
    ]
    planned = plan_takeovers(cands, 13_000 * WAD, capacity=0)
    assert [(c.account, q) for c, q in planned] == [(1, WAD), (4, 3_989 * LOT)]
    assert plan_takeovers(cands, 0, capacity=0) == []
    capped = plan_takeovers(cands, 13_000 * WAD, capacity=0, max_notional=46_000 * WAD)
    assert [(c.account, q) for c, q in capped] == [(1, WAD // 2), (4, WAD // 2)]


def test_plan_takeovers__bankrupt__whole_and_only_when_the_fund_covers_it() -> None:
    c = candidate(1, 0.1, -400, mark=85_000)
    worst = 400 * WAD + 85 * WAD  # deficit + 1% takeover discount on $8,500
    assert plan_takeovers([c], 100_000 * WAD, capacity=worst) == [(c, WAD // 10)]
    assert plan_takeovers([c], 100_000 * WAD, capacity=worst - 1) == []
    assert plan_takeovers([c], 800 * WAD, capacity=worst) == []  # cannot carry it whole
    two = [c, candidate(2, 0.1, -400, mark=85_000)]
    assert [p.account for p, _ in plan_takeovers(two, 100_000 * WAD, capacity=worst * 3 // 2)] == [1]


@pytest.mark.parametrize(
    ("reason", "benign"),
    [
        ("takeover: account has open orders, liquidate first", True),
        ("takeover: insurance fund cannot cover, adl", True),
        ("takeover: liquidator below initial margin", False),
    ],
)
def test_is_benign_revert__takeover(reason: str, benign: bool) -> None:
    assert is_benign_revert(reason, TAKEOVER_BENIGN_REVERTS) is benign


OWNED_SOURCE = """# pragma version 0.4.3
owner: public(address)
calls: public(uint256)


@deploy
def __init__():
    self.owner = msg.sender


@external
def poke():
    assert msg.sender == self.owner, "not owner"
    self.calls += 1
"""


def test_send_batch__precheck_from_the_sender__msg_sender_checks_pass(
    deployer: Any, deploy_contract: Any
) -> None:
    from tests.keeper.conftest import compile_source

    owned = deploy_contract(deployer, *compile_source(OWNED_SOURCE))
    ((key, result),) = send_batch(deployer, [Outgoing("poke", owned.functions.poke(), 100_000)])
    assert key == "poke" and not isinstance(result, Exception), result
    assert deployer.wait(result)["status"] == 1 and owned.functions.calls().call() == 1


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
        LiquidationBot(
            object(),  # type: ignore[arg-type]
            _FakeContract(),  # type: ignore[arg-type]
            engine=_FakeContract(),  # type: ignore[arg-type]
            lens=_FakeContract(),  # type: ignore[arg-type]
            health_page=501,
        )


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
    assert s.liquidation.takeover_subaccount is None and s.liquidation.takeover_max_notional is None
    config.write_text("liquidation:\n  takeover_subaccount: 1\n  takeover_max_notional: 250000\n")
    s = load_settings(config)
    assert s.liquidation.takeover_subaccount == 1 and s.liquidation.takeover_max_notional == 250_000
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


@pytest.mark.parametrize("argv", [["run", "liquidation"], ["run", "adl"], ["audit", "adl", "--tx", "0xab"]])
def test_cli__manifest_without_liquidation_engine__exit_2_naming_it(
    argv: list[str], tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """A manifest of a deployer from before the LiquidationEngine: a clear error, before the node is asked."""
    from keeper.cli import main

    manifest = tmp_path / "m.json"
    old = {"chain_id": 31337, "clearinghouse": "0x" + "11" * 20, "lens": "0x" + "22" * 20, "markets": {}}
    manifest.write_text(json.dumps(old))
    config = tmp_path / "k.yaml"
    # no node listens there: the manifest is checked first
    config.write_text(f"manifest: {manifest}\nrpc_url: http://127.0.0.1:9\n")
    assert main([*argv, "--config", str(config), *(["--dry-run", "--once"] if argv[0] == "run" else [])]) == 2
    err = capsys.readouterr().err
    assert f"the manifest {manifest} has no liquidation_engine (LiquidationEngine)" in err
    assert "redeploy" in err
