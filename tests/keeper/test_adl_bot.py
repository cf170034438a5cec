"""ADL keeper: which bankrupt positions go to ADL, and the candidate order of one call (pure).
(Against anvil: tests/integration/test_liquidation_keeper_process.py.)"""

from __future__ import annotations

import pytest

from keeper.bots.adl import (
    MAX_ADL,
    AdlCase,
    RankedCandidate,
    find_adl_cases,
    is_benign_adl_revert,
    plan_adl,
)
from keeper.bots.scan import Health, Position
from keeper.liquidation_model import LiquidationParams
from keeper.units import WAD

BTC = "0x000000000000000000000000000000000000b7c0"
PARAMS = {BTC: LiquidationParams(5 * 10**15, WAD // 2, 5 * 10**16, 10**16, 1_000 * WAD)}


def case(size: float, account: int = 1) -> AdlCase:
    return AdlCase(account, BTC, -400 * WAD, int(size * WAD), 85_000 * WAD, 0, 825 * WAD, 0)


def cand(account: int, size: float, score: float) -> RankedCandidate:
    return RankedCandidate(account, int(size * WAD), int(score * WAD))


def test_find_adl_cases__beyond_capacity_only__worst_first() -> None:
    rows = [
        Health(1, -400 * WAD, 0, 550 * WAD, True),  # worst case 400 + 425 = 825
        Health(2, -50 * WAD, 0, 550 * WAD, True),  # worst case 50 + 425 = 475
        Health(3, 10 * WAD, 0, 550 * WAD, True),  # solvent: the liquidation keeper's
    ]
    positions = {a: [Position(a, BTC, WAD // 10, 0, 85_000 * WAD, 0, 0)] for a in (1, 2, 3)}
    cases, to_liquidate = find_adl_cases(rows, positions, PARAMS, capacity=500 * WAD)
    assert [(c.account, c.worst_case_deficit) for c in cases] == [(1, 825 * WAD)]
    assert to_liquidate == [(2, BTC)]
    cases, _ = find_adl_cases(rows, positions, PARAMS, capacity=0)
    assert [c.account for c in cases] == [1, 2]  # equity / MM: -0.73 before -0.09


def test_plan_adl__opposite_side_profitable__highest_score_first__until_absorbed() -> None:
    ranked = [
        cand(1, 0.1, 0),  # the bankrupt long itself (score 0)
        cand(2, -0.05, 0.30),
        cand(3, -0.10, 0.50),
        cand(4, 0.20, 0.90),  # same side: never
        cand(5, -0.30, 0),  # unprofitable
        cand(6, -0.10, 0.10),
    ]
    plan = plan_adl(case(0.1), ranked)
    assert [(a, t) for a, t, _ in plan.takes] == [(3, int(0.1 * WAD))]  # the best score absorbs it all
    plan = plan_adl(case(0.12), ranked)
    assert [(a, t) for a, t, _ in plan.takes] == [(3, int(0.1 * WAD)), (2, int(0.02 * WAD))]
    assert plan.candidates == [3, 2] and plan.eligible == 3 and plan.unabsorbed == 0
    assert [s for _, _, s in plan.takes] == [int(0.5 * WAD), int(0.3 * WAD)]


def test_plan_adl__ties_to_the_lower_account_id() -> None:
    plan = plan_adl(case(0.1), [cand(9, -0.1, 0.3), cand(4, -0.1, 0.3)])
    assert plan.candidates == [4]


def test_plan_adl__a_bankrupt_short_takes_longs() -> None:
    plan = plan_adl(case(-0.1), [cand(2, -0.1, 0.9), cand(3, 0.05, 0.2), cand(4, 0.2, 0.1)])
    assert plan.candidates == [3, 4] and plan.unabsorbed == 0


def test_plan_adl__too_few_candidates__partial__and_at_most_max_adl() -> None:
    plan = plan_adl(case(1), [cand(2, -0.1, 0.3)])
    assert plan.candidates == [2] and plan.unabsorbed == int(0.9 * WAD)
    many = [cand(10 + i, -0.01, 0.5) for i in range(40)]
    plan = plan_adl(case(1), many)
    assert len(plan.takes) == MAX_ADL == 32 and plan.unabsorbed == int(0.68 * WAD)
    assert plan_adl(case(0.1), [cand(2, 0.1, 0.3)]).takes == []  # nobody on the other side


@pytest.mark.parametrize(
    ("reason", "benign"),
    [
        ("adl: account not bankrupt", True),
        ("adl: insurance fund can cover, liquidate", True),
        ("adl: no position", True),
        ("adl: candidates out of order", False),
        ("adl: candidate not profitable", False),
    ],
)
def test_is_benign_adl_revert(reason: str, benign: bool) -> None:
    assert is_benign_adl_revert(reason) is benign
