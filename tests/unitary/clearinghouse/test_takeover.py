"""Clearinghouse.takeover: the backstop (PROTOCOL.md §9.5)."""

import boa
import pytest

from keeper import liquidation_model as lm
from keeper.deploy import to_wad
from tests.unitary.clearinghouse.liquidation_helpers import (
    events,
    levered_long,
    liquidation_params,
    takeover,
)
from tests.utils.protocol import GTC


@pytest.fixture
def stuck(protocol):
    """Trader long 0.1 BTC at $100,000 with $1,100; the index falls to
    $93,600 and the book has no bid: nothing can absorb the close."""
    _maker, trader = levered_long(protocol)
    protocol.set_index(93_600)
    backstop = protocol.actor("backstop", 100_000)
    return trader, backstop


def test_takeover__at_a_discount_bounded_by_bankruptcy(protocol, stuck):
    trader, backstop = stuck
    acct = protocol.account(trader)
    equity = protocol.ch.margin(acct)[0]
    pos = protocol.position(trader)
    lp = liquidation_params(protocol)
    expected = lm.takeover_price(pos.mark, equity, pos.size, lp.takeover_discount)
    price = takeover(protocol, acct, backstop, "0.1")
    assert price == expected == to_wad(92_664)  # mark $93,600 - 1%
    assert protocol.position(trader).size == 0
    assert protocol.position(backstop).size == to_wad("0.1")
    (ev,) = events("Takeover")
    assert ev.fee == lm.liquidation_fee(to_wad("0.1") * pos.mark // 10**18, lp.liquidation_fee, 10**30)
    assert ev.liquidator == protocol.account(backstop)


def test_takeover__bankruptcy_price_binds(protocol, stuck):
    trader, backstop = stuck
    # a 10% discount would sell below the bankruptcy price ($89,000)
    from tests.unitary.clearinghouse.liquidation_helpers import set_liquidation_params

    set_liquidation_params(protocol, takeover_discount="0.1")
    price = takeover(protocol, protocol.account(trader), backstop, "0.1")
    assert price == to_wad(89_000)


def test_takeover__liquidator_below_initial_margin__reverts(protocol, stuck):
    trader, _backstop = stuck
    poor = protocol.actor("poor-backstop", 100)
    with boa.reverts("takeover: liquidator below initial margin"):
        takeover(protocol, protocol.account(trader), poor, "0.1")


def test_takeover__own_account__reverts(protocol, stuck):
    trader, _backstop = stuck
    protocol.fund(trader, 100_000, sub=1)
    with boa.reverts("takeover: own account"):
        takeover(protocol, protocol.account(trader), trader, "0.1", sub=1)


def test_takeover__healthy_account__reverts(protocol):
    _maker, trader = levered_long(protocol)
    backstop = protocol.actor("backstop", 100_000)
    with boa.reverts("not liquidatable"):
        takeover(protocol, protocol.account(trader), backstop, "0.1")


def test_takeover__bankrupt_account_fund_cannot_cover__reverts(protocol):
    _maker, trader = levered_long(protocol)
    protocol.set_index(85_000)  # equity < 0, the fund is empty
    backstop = protocol.actor("backstop", 100_000)
    with boa.reverts("takeover: insurance fund cannot cover, adl"):
        takeover(protocol, protocol.account(trader), backstop, "0.1")


def test_takeover__bankrupt_account__whole_at_the_discount_fund_pays(protocol):
    _maker, trader = levered_long(protocol, size="0.2", margin="2200")
    protocol.fund_insurance(100_000)
    protocol.set_index(85_000)
    acct = protocol.account(trader)
    equity = protocol.ch.margin(acct)[0]
    pos = protocol.position(trader)
    assert equity < 0
    backstop = protocol.actor("backstop", 100_000)
    lp = liquidation_params(protocol)
    price = takeover(protocol, acct, backstop, "0.1")  # asks for half: gets the whole
    assert price == lm.takeover_price(pos.mark, equity, pos.size, lp.takeover_discount) < pos.mark
    assert protocol.position(trader).size == 0 and protocol.position(backstop).size == to_wad("0.2")
    (bd,) = events("BadDebt")
    assert bd.uncovered == 0 and bd.covered == bd.deficit > -equity
    assert protocol.ch.cash(acct) == 0 and protocol.ch.bad_debt() == 0


def test_takeover__open_orders__reverts(protocol):
    _maker, trader = levered_long(protocol)
    # a reduce-only ask within the 2% price band, small enough for the margin it
    # reserves (IM $1,013.84 <= $1,100); at the index $92,000 the account is
    # liquidatable with the ask still resting
    protocol.order(trader, "sell", "0.001", "101000", GTC, reduce_only=True)
    protocol.set_index(92_000)
    equity, _im, mm, _ = protocol.ch.margin(protocol.account(trader))
    assert equity < mm
    backstop = protocol.actor("backstop", 100_000)
    with boa.reverts("takeover: account has open orders, liquidate first"):
        takeover(protocol, protocol.account(trader), backstop, "0.1")


def test_takeover__size_off_lot__reverts(protocol, stuck):
    trader, backstop = stuck
    with boa.reverts("size off lot"):
        takeover(protocol, protocol.account(trader), backstop, "0.0005")


def test_takeover__partial_leaves_the_rest(protocol, stuck):
    trader, backstop = stuck
    takeover(protocol, protocol.account(trader), backstop, "0.05")
    assert protocol.position(trader).size == to_wad("0.05")
    assert protocol.position(backstop).size == to_wad("0.05")
    longs, shorts = protocol.market().open_interest_sides()
    assert longs == shorts
