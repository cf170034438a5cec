"""The clearinghouse with an invalid index (PROTOCOL.md §4): whatever needs a
price reverts with a clear reason; deposits, cancels and withdrawals that
need no price still work."""

import boa

from keeper.units import WAD
from tests.utils.protocol import GTC

MAX_AGE = 60  # the test oracles' max_age


def _trader_with_position(p, trade) -> str:
    trader = p.actor("trader", 10_000)
    maker = p.actor("maker", 10_000)
    trade(p, trader, maker, "0.1", 100_000)
    return trader


def test_withdraw__stale_index_with_position__reverts(protocol, trade, warp):
    p = protocol
    trader = _trader_with_position(p, trade)
    warp(p, MAX_AGE + 1)
    cash = p.ch.cash(p.account(trader))

    with boa.reverts("oracle: stale index"):
        p.ch.withdraw(0, p.units(1), sender=trader)

    assert p.ch.cash(p.account(trader)) == cash
    assert p.token.balanceOf(trader) == 0


def test_withdraw__stale_index_without_exposure__works(protocol_any_decimals, trade, warp):
    p = protocol_any_decimals
    _trader_with_position(p, trade)
    idle = p.actor("idle-trader", 100)
    warp(p, MAX_AGE + 1)

    p.ch.withdraw(0, p.units(100), sender=idle)

    assert p.token.balanceOf(idle) == p.units(100)


def test_deposit__stale_index__works(protocol_any_decimals, trade, warp):
    p = protocol_any_decimals
    trader = _trader_with_position(p, trade)
    warp(p, MAX_AGE + 1)

    p.fund(trader, 500)

    assert p.ch.cash(p.account(trader)) == 10_500 * WAD


def test_cancel_order__stale_index__works(protocol, trade, warp):
    p = protocol
    trader = _trader_with_position(p, trade)
    oid = p.order(trader, "buy", "0.01", 99_000, GTC)
    warp(p, MAX_AGE + 1)

    p.cancel(trader, oid)

    assert p.lens.order(p.market().address, oid)[0] == 0


def test_place_order__stale_index__reverts(protocol, trade, warp):
    p = protocol
    trader = _trader_with_position(p, trade)
    warp(p, MAX_AGE + 1)

    with boa.reverts("oracle: stale index"):
        p.order(trader, "sell", "0.1", 100_000, GTC, reduce_only=True)


def test_margin__stale_index__reverts_then_recovers(protocol, trade, warp, move_index):
    p = protocol
    trader = _trader_with_position(p, trade)
    warp(p, MAX_AGE + 1)

    with boa.reverts("oracle: stale index"):
        p.margin(trader)

    move_index(p, 100_000)
    assert p.margin(trader) == (10_000 * WAD, 1_000 * WAD, 650 * WAD, 9_000 * WAD)
