"""keeper.bots.fund_hold: the liquidation keeper holds the insurance fund's withdrawals for
accounts below zero and releases the ones it held once they are back at or above zero
(PROTOCOL.md §11.0)."""

from __future__ import annotations

import logging
from types import SimpleNamespace

from hexbytes import HexBytes

from keeper.bots.fund_hold import HOLD_GAS, FundHolds
from keeper.bots.scan import Health
from keeper.chain import TxReverted
from keeper.units import WAD


class FakeFund:
    """`fund.functions.hold(a)` / `release(a)` as (name, account) tuples."""

    functions = SimpleNamespace(hold=lambda a: ("hold", a), release=lambda a: ("release", a))


def health(account: int, equity: int) -> Health:
    return Health(account, equity * WAD, 0, WAD, equity < 1)


def holds() -> FundHolds:
    return FundHolds(FakeFund(), logging.getLogger("test"))


def test_calls__below_zero_held_once__released_when_back():
    h = holds()
    calls = h.calls([health(1, -5), health(2, 3), health(3, -1)])
    assert [(c.key, c.call, c.gas) for c in calls] == [
        (("hold", 1), ("hold", 1), HOLD_GAS),
        (("hold", 3), ("hold", 3), HOLD_GAS),
    ]
    assert h.sent([(c.key, HexBytes("0x01")) for c in calls]) == 0
    assert h.held == {1, 3}
    # the next round: 1 still below zero (nothing to send), 3 back at zero (released)
    calls = h.calls([health(1, -5), health(2, 3), health(3, 0)])
    assert [c.key for c in calls] == [("release", 3)]
    assert h.sent([(("release", 3), HexBytes("0x02"))]) == 0
    assert h.held == {1}


def test_sent__benign_refusals_book_the_state__others_fail_and_retry():
    h = holds()
    results = [
        (("hold", 1), TxReverted("insurance: account already held")),  # someone else held it
        (("hold", 2), TxReverted("oracle: stale index")),
    ]
    assert h.sent(results) == 1
    assert h.held == {1}
    assert [c.key for c in h.calls([health(1, -1), health(2, -1)])] == [("hold", 2)]  # retried
    assert h.sent([(("release", 1), TxReverted("insurance: account not held"))]) == 0
    assert h.held == set()
