"""Clearinghouse.settle_bad_debt and the below-zero guard on orders
(PROTOCOL.md §7, §9.3, §11): an account is never left below zero by its own
orders as taker; one left flat below zero by a resting order's fill is booked
by anyone: the fund covers, the rest is bad_debt.

With price protection (PROTOCOL.md §5, §8) a resting order alone can no longer
fill beyond its owner's bankruptcy price (an ask far below the index is
refused, and the order risk it reserves covers a fill within the band), and a
solvent account's liquidation keeps its other markets' order risk (§10). The
flat account below zero is built here across two markets from an account
already bankrupt: auto-deleveraging closes its BTC long at the bankruptcy
price, which counts the ETH position at its mark, and then the account's
reduce-only ETH ask, resting since before, fills below that mark."""

import boa
import pytest

from keeper.deploy import to_wad
from tests.unitary.clearinghouse.liquidation_helpers import adl, levered_long, liquidate, open_position
from tests.utils.protocol import GTC, IOC


def eth_ask_and_btc_long(protocol) -> tuple[str, str]:
    """The trader deposits $13,200 and buys 1 BTC at $100,000 and 5 ETH at
    $4,000. ETH rises to $4,400 (and trades there: ETH mark $4,400, +$2,000);
    the trader rests a reduce-only ask for its 5 ETH at $4,320 (within the 2%
    price band, $4,312 .. $4,488): equity $15,200 >= IM $15,158.98 (the ask's
    order risk included). Returns (trader, maker, the ask's id)."""
    p = protocol
    maker = p.actor("maker", 10_000_000)
    trader = p.actor("trader", 13_200)
    open_position(p, trader, maker, "buy", "1", "100000")
    open_position(p, trader, maker, "buy", "5", "4000", symbol="ETH-PERP")
    p.set_index(4_400, symbol="ETH-PERP")
    open_position(p, p.actor("other", 10_000), maker, "buy", "0.01", "4400", symbol="ETH-PERP")
    ask = p.order(trader, "sell", "5", "4320", GTC, symbol="ETH-PERP", reduce_only=True)
    acct = p.account(trader)
    equity, im, _mm, _ = p.ch.margin(acct)
    assert (equity, im) == (to_wad(15_200), to_wad("15158.9795936"))
    return trader, maker, ask


def liquidated_with_an_eth_ask(protocol) -> str:
    """After `eth_ask_and_btc_long`, BTC falls to $84,000: equity -$800, and
    the insurance fund (empty) cannot cover it. Auto-deleveraging closes the
    whole BTC long against the maker's short at the bankruptcy price $84,800:
    equity 0, cash -$2,000, the ETH long and its ask still open."""
    p = protocol
    trader, maker, _ask = eth_ask_and_btc_long(p)
    acct = p.account(trader)
    p.set_index(84_000)
    p.order(maker, "buy", "0.01", "84000")
    assert p.ch.margin(acct)[0] == -to_wad(800)
    assert adl(p, acct, [p.account(maker)], p.actor("deleverager")) == to_wad(1)
    assert p.ch.margin(acct)[0] == 0 and p.ch.cash(acct) == -to_wad(2_000)
    assert p.position(trader).size == 0 and p.position(trader, "ETH-PERP").size == to_wad(5)
    return trader


def test_liquidate__other_markets_orders__close_keeps_their_order_risk(protocol):
    """BTC falls to $86,000: equity $1,200 < MM. A bid rests at $84,800, the
    bankruptcy price counting the ETH ask's margin as equity; the liquidation
    keeps that order risk in the account, so it does not sell there, and after
    the ETH orders are cancelled (a liquidation call in a market of orders
    only) it does: the account ends at zero, its ETH long left unhedged."""
    p = protocol
    trader, maker, ask = eth_ask_and_btc_long(p)
    acct = p.account(trader)
    p.set_index(86_000)
    p.order(maker, "buy", "1", "84800")
    assert p.ch.margin(acct)[0] == to_wad(1_200)
    assert liquidate(p, acct, p.actor("liquidator")) == 0
    assert p.position(trader).size == to_wad(1)
    p.order(maker, "sell", "5", "4400", GTC, symbol="ETH-PERP")  # ETH trades on, away from the ask
    assert liquidate(p, acct, p.actor("liquidator"), order_ids=[ask], symbol="ETH-PERP") == 0
    assert p.position(trader, "ETH-PERP").open_orders == 0
    assert liquidate(p, acct, p.actor("liquidator")) == to_wad(1)
    assert p.ch.margin(acct)[0] == 0 and p.position(trader).size == 0


def test_liquidate__market_of_orders_only_nothing_listed__reverts(protocol):
    trader, maker, ask = eth_ask_and_btc_long(protocol)
    acct = protocol.account(trader)
    protocol.set_index(86_000)
    # the ETH long sold first (a taker close at the mark): ETH holds the ask only
    protocol.order(maker, "buy", "5", "4400", GTC, symbol="ETH-PERP")
    protocol.order(trader, "sell", "5", "4400", IOC, symbol="ETH-PERP")
    assert protocol.position(trader, "ETH-PERP").size == 0
    with boa.reverts("liquidate: no position"):
        liquidate(protocol, acct, protocol.actor("liquidator"), symbol="ETH-PERP")


@pytest.fixture
def flat_below_zero(protocol):
    """After `liquidated_with_an_eth_ask`, a buyer takes the trader's ETH ask at
    $4,320, $80 under the mark its bankruptcy price counted: the trader is flat
    with cash -$2,000 + 5 x $320 = -$400 (a maker's fill: nothing booked it)."""
    trader = liquidated_with_an_eth_ask(protocol)
    buyer = protocol.actor("buyer", 100_000)
    protocol.order(buyer, "buy", "5", "4320", IOC, symbol="ETH-PERP")
    acct = protocol.account(trader)
    assert protocol.position(trader).size == 0 and protocol.position(trader, "ETH-PERP").size == 0
    assert protocol.ch.cash(acct) == -to_wad(400)
    return acct


def test_order__taker_close_beyond_bankruptcy__reverts(protocol):
    maker, trader = levered_long(protocol)
    # bankruptcy price $89,000; a bid under it must rest within the 2% price
    # band, so the index falls first: at $90,000 the trader still has equity $100
    protocol.set_index(90_000)
    protocol.order(maker, "buy", "0.1", "88500", GTC)
    assert protocol.margin(trader)[0] == to_wad(100)
    # selling into it realizes -$1,150: cash -$50
    with boa.reverts("order would leave the account below zero"):
        protocol.order(trader, "sell", "0.1", "88500", IOC, reduce_only=True)


def test_order__account_below_zero__any_order_reverts(protocol):
    maker, trader = levered_long(protocol)
    protocol.set_index(85_000)
    protocol.order(maker, "buy", "0.01", "85000", GTC)
    # mark 85,000 (median of the bid, the index and the last trade 100,000): equity -400
    assert protocol.margin(trader)[0] == -to_wad(400)
    # a reduce-only close as taker
    with boa.reverts("order would leave the account below zero"):
        protocol.order(trader, "sell", "0.01", "85000", IOC, reduce_only=True)
    # resting a reduce-only ask (within the price band) now adds risk: it needs
    # initial margin (its mark 85,500, the ask's price: equity -350)
    with boa.reverts("below initial margin"):
        protocol.order(trader, "sell", "0.01", "85500", GTC, reduce_only=True)


def test_settle_bad_debt__fund_covers(protocol, flat_below_zero):
    protocol.fund_insurance(10_000)
    assets = protocol.insurance.totalAssets()
    protocol.engine.settle_bad_debt(flat_below_zero, sender=protocol.actor("anyone"))
    (ev,) = [e for e in protocol.engine.get_logs() if type(e).__name__ == "BadDebt"]
    assert (ev.deficit, ev.covered, ev.uncovered) == (to_wad(400), to_wad(400), 0)
    assert protocol.ch.cash(flat_below_zero) == 0 and protocol.ch.bad_debt() == 0
    assert protocol.insurance.totalAssets() == assets - protocol.units(400)
    assert protocol.ch.active_markets(flat_below_zero) == 0


def test_settle_bad_debt__empty_fund__recognized_as_bad_debt(protocol, flat_below_zero):
    protocol.engine.settle_bad_debt(flat_below_zero)
    assert protocol.ch.cash(flat_below_zero) == 0
    assert protocol.ch.bad_debt() == to_wad(400)


def test_settle_bad_debt__no_deficit__reverts(protocol):
    _maker, trader = levered_long(protocol)
    with boa.reverts("settle: no deficit"):
        protocol.engine.settle_bad_debt(protocol.account(trader))


def test_settle_bad_debt__account_with_position__reverts(protocol):
    # half the ETH position sold by its resting ask after the BTC liquidation:
    # cash -2,000 + 2.5 x 320 = -1,200, still long 2.5 ETH (and the rest of the ask)
    trader = liquidated_with_an_eth_ask(protocol)
    protocol.order(protocol.actor("buyer", 100_000), "buy", "2.5", "4320", IOC, symbol="ETH-PERP")
    acct = protocol.account(trader)
    assert protocol.ch.cash(acct) == -to_wad(1_200)
    assert protocol.position(trader, "ETH-PERP").size == to_wad("2.5")
    with boa.reverts("settle: account has positions or orders"):
        protocol.engine.settle_bad_debt(acct)


def test_settle_bad_debt__flat_account_below_zero__cannot_trade_and_settles_once(protocol, flat_below_zero):
    owner = protocol.ch.account_key(flat_below_zero)[0]
    with boa.env.prank(owner), boa.reverts("below initial margin"):
        protocol.ch.place_order(
            owner, 0, protocol.market().address, True, to_wad("0.01"), to_wad(85_000), GTC, False, 0
        )
    protocol.engine.settle_bad_debt(flat_below_zero)
    with boa.reverts("settle: no deficit"):
        protocol.engine.settle_bad_debt(flat_below_zero)
