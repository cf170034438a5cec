"""ADL auditor: the pure proof (`check_adl`) and its report.
(Against anvil, from chain history: tests/integration/test_liquidation_keeper_process.py.)"""

from __future__ import annotations

import pytest

from keeper.anvil import Anvil
from keeper.audit import (
    ASSUMPTION,
    AdlAudit,
    AuditError,
    LiveScore,
    UsedCounterparty,
    _require_state,
    audit_exit_code,
    check_adl,
    format_audit,
)
from keeper.chain import ChainClient
from keeper.retry import connect
from keeper.units import WAD
from tests.keeper.conftest import compile_source, deploy

BANKRUPT = 1


def scores(*rows: tuple[int, float, int]) -> dict[int, LiveScore]:
    """(account, size, score) -> LiveScore with the model agreeing."""
    return {a: LiveScore(a, int(size * WAD), score, score) for a, size, score in rows}


def used(*rows: tuple[int, float, int]) -> list[UsedCounterparty]:
    return [UsedCounterparty(a, int(size * WAD), score) for a, size, score in rows]


LIVE = scores(
    (BANKRUPT, 0.1, 0),
    (2, -0.05, 300),  # highest
    (3, -0.10, 200),
    (4, -0.10, 100),
    (5, 0.20, 900),  # same side as the bankrupt long: never eligible
    (6, -0.10, 0),  # not profitable
)


def test_check__highest_scores_first__proved() -> None:
    check = check_adl(BANKRUPT, int(0.1 * WAD), used((2, 0.05, 300), (3, 0.05, 200)), LIVE)
    assert check.verdict == "proved" and check.violations == [] and check.lowest_used == 200


def test_check__higher_score_skipped__violation_names_it_with_both_scores() -> None:
    check = check_adl(BANKRUPT, int(0.1 * WAD), used((3, 0.1, 200)), LIVE)
    assert check.verdict == "violation"
    assert check.violations == [
        "account 2 (score 300) was skipped while account 3 (score 200) was deleveraged"
    ]


def test_check__partly_used_before_a_lower_score__violation() -> None:
    check = check_adl(BANKRUPT, int(0.1 * WAD), used((2, 0.02, 300), (3, 0.08, 200)), LIVE)
    assert check.verdict == "violation"
    assert check.violations == [
        f"account 2 (score 300) was used for {int(0.02 * WAD)} of {int(0.05 * WAD)} while account 3 "
        "(score 200) was deleveraged after it"
    ]


def test_check__ineligible_or_out_of_order_counterparty__violation() -> None:
    check = check_adl(BANKRUPT, int(0.1 * WAD), used((2, 0.05, 300), (5, 0.05, 900)), LIVE)
    assert check.verdict == "violation"
    assert any("account 5 was deleveraged but is not eligible" in v for v in check.violations)
    assert any("used after a lower score" in v for v in check.violations)


def test_check__tie_with_the_lowest_is_not_a_violation() -> None:
    live = scores((BANKRUPT, 0.1, 0), (2, -0.1, 200), (3, -0.1, 200))
    check = check_adl(BANKRUPT, int(0.1 * WAD), used((3, 0.1, 200)), live)
    assert check.verdict == "proved" and any("ties the lowest score" in n for n in check.notes)


def test_check__event_score_differs_from_the_state_before__inconclusive() -> None:
    check = check_adl(BANKRUPT, int(0.1 * WAD), used((2, 0.05, 301), (3, 0.05, 200)), LIVE)
    assert check.verdict == "inconclusive"
    assert check.notes == ["account 2: score 301 in the event, 300 recomputed at block - 1"]
    model_off = dict(LIVE)
    model_off[4] = LiveScore(4, int(-0.1 * WAD), 100, 99)
    check = check_adl(BANKRUPT, int(0.1 * WAD), used((2, 0.05, 300), (3, 0.05, 200)), model_off)
    assert check.verdict == "inconclusive" and "view 100 != model 99" in check.notes[0]


def test_check__a_bankrupt_short() -> None:
    live = scores((BANKRUPT, -0.1, 0), (2, 0.1, 50), (3, 0.1, 70), (4, -0.3, 999))
    assert check_adl(BANKRUPT, int(-0.1 * WAD), used((3, 0.1, 70)), live).verdict == "proved"
    assert check_adl(BANKRUPT, int(-0.1 * WAD), used((2, 0.1, 50)), live).verdict == "violation"


def _audit(check_used: list[UsedCounterparty]) -> AdlAudit:
    check = check_adl(BANKRUPT, int(0.1 * WAD), check_used, LIVE)
    eligible = [LIVE[2], LIVE[3], LIVE[4]]
    return AdlAudit("0xab", 10, 0, BANKRUPT, "BTC-PERP", int(0.1 * WAD), int(0.1 * WAD), 88_950 * WAD,
                    check_used, eligible, check)  # fmt: skip


def test_report__statuses__assumption__exit_codes() -> None:
    good = _audit(used((2, 0.05, 300), (3, 0.05, 200)))
    text = format_audit(good)
    assert ASSUMPTION in text and "PROVED" in text
    lines = {line.split()[1]: line for line in text.splitlines() if line.strip()[:1].isdigit()}
    assert lines["2"].endswith("deleveraged") and lines["3"].endswith("deleveraged (partly)")
    assert lines["4"].endswith("not needed")
    bad = _audit(used((3, 0.1, 200)))
    text = format_audit(bad)
    assert "VIOLATION: account 2 (score 300) was skipped" in text
    assert {line.split()[1]: line for line in text.splitlines() if line.strip()[:1].isdigit()}["2"].endswith(
        "SKIPPED"
    )
    assert audit_exit_code([good]) == 0 and audit_exit_code([good, bad]) == 1
    odd = _audit(used((2, 0.05, 301), (3, 0.05, 200)))
    assert audit_exit_code([good, odd]) == 3 and "INCONCLUSIVE" in format_audit(odd)


def test_require_state__node_keeping_recent_states_only__old_block_is_a_clear_audit_error() -> None:
    """The audit replays the state before the ADL: on a node that has dropped it (anvil
    --prune-history, a full node past its last 128 blocks) it says so, instead of a raw RPC error."""
    source = "# pragma version 0.4.3\n@external\n@view\ndef market_count() -> uint256:\n    return 1\n"
    with Anvil(accounts=1, extra_args=("--prune-history", "4")) as node:
        w3 = connect(node.url)
        ch = deploy(ChainClient(w3, node.private_keys[0], receipt_timeout_s=10), *compile_source(source))
        deployed = w3.eth.block_number
        node.mine(10)
        _require_state(ch, w3.eth.block_number - 1)  # recent: kept
        with pytest.raises(AuditError, match=f"cannot read the state at block {deployed} .*archive node"):
            _require_state(ch, deployed)
