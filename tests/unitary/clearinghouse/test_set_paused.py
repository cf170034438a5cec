"""Clearinghouse.set_paused: per-operation pause that never blocks reducing
risk, cancels or withdrawing free collateral (PROTOCOL.md §13)."""

import boa

from keeper.deploy import to_wad
from keeper.units import WAD
from tests.utils.protocol import GTC, IOC, MAX_UINT

PAUSE_DEPOSIT, PAUSE_TRADE, PAUSE_ALL = 1, 2, 3


def test_set_paused__owner__sets_bits_and_logs(protocol):
    p = protocol
    for bits in (PAUSE_DEPOSIT, PAUSE_TRADE, PAUSE_ALL, 0):
        p.ch.set_paused(bits, sender=p.owner)
        (event,) = [e for e in p.ch.get_logs() if type(e).__name__ == "PauseSet"]
        assert event.paused_ops == bits
        assert p.ch.paused_ops() == bits


def test_set_paused__unknown_bits__reverts(protocol):
    p = protocol
    p.ch.set_paused(PAUSE_TRADE, sender=p.owner)
    for bits in (4, 5, 2**255):
        with boa.reverts("unknown pause bits"):
            p.ch.set_paused(bits, sender=p.owner)
    assert p.ch.paused_ops() == PAUSE_TRADE


def test_set_paused__non_owner__reverts(protocol):
    p = protocol
    attacker = p.actor("attacker")
    with boa.reverts("ownable: caller is not the owner"):
        p.ch.set_paused(PAUSE_ALL, sender=attacker)
    assert p.ch.paused_ops() == 0


def test_deposit__deposits_paused__reverts(protocol_any_decimals):
    p = protocol_any_decimals
    trader = p.actor("trader", 100)
    p.token.mint(trader, p.units(50), sender=p.owner)
    p.token.approve(p.ch.address, MAX_UINT, sender=trader)
    p.ch.set_paused(PAUSE_DEPOSIT, sender=p.owner)
    cash = p.ch.cash(p.account(trader))
    count = p.ch.account_count()

    with boa.reverts("deposits paused"):
        p.ch.deposit(0, p.units(50), sender=trader)
    with boa.reverts("deposits paused"):
        p.ch.deposit(1, p.units(50), sender=trader)  # would create an account
    with boa.reverts("deposits paused"):
        p.ch.deposit(0, p.units(50), p.actor("beneficiary"), sender=trader)

    assert p.ch.cash(p.account(trader)) == cash
    assert p.ch.account_count() == count
    assert p.token.balanceOf(trader) == p.units(50)


def test_deposit__trading_paused__still_works(protocol_any_decimals):
    p = protocol_any_decimals
    trader = p.actor("trader", 100)
    p.ch.set_paused(PAUSE_TRADE, sender=p.owner)
    p.fund(trader, 50)
    assert p.ch.cash(p.account(trader)) == 150 * WAD


def test_place_order__trading_paused__risk_increasing_reverts(protocol):
    p = protocol
    trader = p.actor("trader", 10_000)
    maker = p.actor("maker", 10_000)
    p.order(maker, "sell", "0.01", 100_000, GTC)
    p.ch.set_paused(PAUSE_TRADE, sender=p.owner)
    cash = p.ch.cash(p.account(trader))

    with boa.reverts("trading paused"):
        p.order(trader, "buy", "0.01", 99_000, GTC)  # a resting order adds risk
    with boa.reverts("trading paused"):
        p.order(trader, "buy", "0.01", 100_000, IOC)  # opens a position
    with boa.reverts("trading paused"):
        p.order(trader, "sell", "0.01", 101_000, 1)  # post-only

    assert p.position(trader).size == 0
    assert p.ch.cash(p.account(trader)) == cash
    assert p.market().best_ask() == 100_000 * WAD  # the maker's ask still rests


def test_place_order__trading_paused__closing_order_works(protocol, trade):
    p = protocol
    trader = p.actor("trader", 10_000)
    maker = p.actor("maker", 10_000)
    trade(p, trader, maker, "0.02", 100_000)  # trader long 0.02
    p.order(maker, "buy", "0.02", 100_000, GTC)  # a bid to close into, before the pause
    p.ch.set_paused(PAUSE_ALL, sender=p.owner)

    p.order(trader, "sell", "0.01", 100_000, IOC, reduce_only=True)
    assert p.position(trader).size == 10**16
    p.order(trader, "sell", "0.01", 100_000, IOC)  # closing without the flag is fine too
    assert p.position(trader).size == 0


def test_place_order__trading_paused__flip_reverts(protocol, trade):
    p = protocol
    trader = p.actor("trader", 10_000)
    maker = p.actor("maker", 10_000)
    trade(p, trader, maker, "0.01", 100_000)
    p.order(maker, "buy", "0.02", 100_000, GTC)
    p.ch.set_paused(PAUSE_TRADE, sender=p.owner)

    with boa.reverts("trading paused"):
        p.order(trader, "sell", "0.02", 100_000, IOC)  # long 0.01 -> short 0.01

    assert p.position(trader).size == 10**16


def test_place_order__trading_paused__resting_reduce_only_order_works(protocol, trade):
    # A resting reduce-only order now reserves margin (PROTOCOL.md §8: its fill can lose
    # against the mark), so it adds risk and the trade pause holds it back; the close the
    # pause must never block is still there, as a reduce-only IOC. The order rests once
    # trading reopens.
    p = protocol
    trader = p.actor("trader", 10_000)
    maker = p.actor("maker", 10_000)
    trade(p, trader, maker, "0.01", 100_000)
    p.order(maker, "buy", "0.005", 100_000, GTC)  # a bid to close into, before the pause
    p.ch.set_paused(PAUSE_TRADE, sender=p.owner)

    with boa.reverts("trading paused"):
        p.order(trader, "sell", "0.01", 101_000, GTC, reduce_only=True)
    assert p.market().best_ask() == 0
    assert p.margin(trader)[1] == 100 * WAD  # IM of the position only: nothing reserved

    p.order(trader, "sell", "0.005", 100_000, IOC, reduce_only=True)
    assert p.position(trader).size == 5 * 10**15

    p.ch.set_paused(0, sender=p.owner)
    oid = p.order(trader, "sell", "0.005", 101_000, GTC, reduce_only=True)
    assert p.lens.order(p.market().address, oid)[0] == p.account(trader)


def test_cancel_order__trading_paused__works(protocol):
    p = protocol
    trader = p.actor("trader", 10_000)
    oid = p.order(trader, "buy", "0.01", 99_000, GTC)
    p.ch.set_paused(PAUSE_ALL, sender=p.owner)

    p.cancel(trader, oid)

    assert p.lens.order(p.market().address, oid)[0] == 0
    assert p.margin(trader)[1] == 0


def test_withdraw__everything_paused__free_collateral_still_withdrawable(protocol_any_decimals, trade):
    p = protocol_any_decimals
    trader = p.actor("trader", 10_000)
    maker = p.actor("maker", 10_000)
    trade(p, trader, maker, "0.1", 100_000)  # IM 1,000: 9,000 free
    idle = p.actor("idle-trader", 500)
    p.ch.set_paused(PAUSE_ALL, sender=p.owner)

    p.ch.withdraw(0, p.units(9_000), sender=trader)
    p.ch.withdraw(0, p.units(500), sender=idle)

    assert p.token.balanceOf(trader) == p.units(9_000)
    assert p.token.balanceOf(idle) == p.units(500)
    # the margin check still applies while paused
    with boa.reverts("below initial margin"):
        p.ch.withdraw(0, 1, sender=trader)


def _order_on(p, who: str, market, side: str, size: str, price: int) -> int:
    """A limit order on any listed market, by address (a market added in the test)."""
    with boa.env.prank(who):
        return p.ch.place_order(
            who, 0, market.address, side == "buy", to_wad(size), price * WAD, GTC, False, 0
        )


def test_place_order__trading_paused__every_listed_market__unpause_reopens_every_one(protocol):
    """The pause is kept in every listed market's word (the one word an order
    reads about its market): setting and clearing it reaches them all."""
    p = protocol
    trader = p.actor("trader", 100_000)
    markets = [p.market(s) for s in p.d.markets]
    assert len(markets) == 2
    p.ch.set_paused(PAUSE_TRADE, sender=p.owner)
    for m in markets:
        index = m.index_price() // WAD
        with boa.reverts("trading paused"):
            _order_on(p, trader, m, "buy", "0.01", index - index // 100)  # 1% below: in the band
        assert p.ch.market_index(m.address) in (1, 2)  # the pause is not part of the index
    p.ch.set_paused(PAUSE_DEPOSIT, sender=p.owner)  # trading reopens, deposits pause
    for m in markets:
        index = m.index_price() // WAD
        assert _order_on(p, trader, m, "buy", "0.01", index - index // 100) != 0


def test_add_market__while_trading_paused__the_new_market_is_paused_until_unpaused(protocol):
    from tests.unitary.clearinghouse.test_admin import _new_market

    p = protocol
    trader = p.actor("trader", 100_000)
    p.ch.set_paused(PAUSE_TRADE, sender=p.owner)
    market = _new_market(p, p.ch.address)
    p.ch.add_market(market.address, sender=p.owner)
    assert p.ch.market_index(market.address) == 3
    with boa.reverts("trading paused"):
        _order_on(p, trader, market, "buy", "0.01", 99_000)
    assert market.best_bid() == 0
    p.ch.set_paused(0, sender=p.owner)
    assert _order_on(p, trader, market, "buy", "0.01", 99_000) != 0
    assert market.best_bid() == 99_000 * WAD
