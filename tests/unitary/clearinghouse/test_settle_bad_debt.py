"""Clearinghouse.settle_bad_debt and the below-zero guard on orders
(PROTOCOL.md §7, §9.3, §11): an account is never left below zero by its own
orders as taker; one left flat below zero by a resting order filled beyond
its bankruptcy price is booked by anyone: the fund covers, the rest is
bad_debt."""

import boa
import pytest

from keeper.deploy import to_wad
from tests.unitary.clearinghouse.liquidation_helpers import levered_long
from tests.utils.protocol import GTC, IOC


@pytest.fixture
def flat_below_zero(protocol):
    """Trader long 0.1 BTC at $100,000 with $1,100 (bankruptcy price $89,000)
    rests a reduce-only ask at $85,000 on an empty book; a buyer takes it:
    the trader is flat with cash -$400."""
    _maker, trader = levered_long(protocol)
    protocol.order(trader, "sell", "0.1", "85000", GTC, reduce_only=True)
    buyer = protocol.actor("buyer", 100_000)
    protocol.order(buyer, "buy", "0.1", "85000", IOC)
    acct = protocol.account(trader)
    assert protocol.position(trader).size == 0
    assert protocol.ch.cash(acct) == -to_wad(400)
    return acct


def test_order__taker_close_beyond_bankruptcy__reverts(protocol):
    maker, trader = levered_long(protocol)
    protocol.order(maker, "buy", "0.1", "85000", GTC)
    with boa.reverts("order would leave the account below zero"):
        protocol.order(trader, "sell", "0.1", "85000", IOC, reduce_only=True)


def test_order__account_below_zero__any_order_reverts(protocol):
    maker, trader = levered_long(protocol)
    protocol.set_index(85_000)  # mark 86,700 (index + 2%): equity -230
    with boa.reverts("order would leave the account below zero"):
        protocol.order(trader, "sell", "0.01", "120000", GTC, reduce_only=True)


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
    # half the position sold by a resting ask far below: cash -400, still long 0.05
    _maker, trader = levered_long(protocol)
    protocol.order(trader, "sell", "0.05", "70000", GTC, reduce_only=True)
    protocol.order(protocol.actor("buyer", 100_000), "buy", "0.05", "70000", IOC)
    acct = protocol.account(trader)
    assert protocol.ch.cash(acct) < 0 and protocol.position(trader).size == to_wad("0.05")
    with boa.reverts("settle: account has positions or orders"):
        protocol.engine.settle_bad_debt(acct)


def test_settle_bad_debt__flat_account_below_zero__cannot_trade_and_settles_once(protocol, flat_below_zero):
    owner = protocol.ch.account_key(flat_below_zero)[0]
    with boa.env.prank(owner), boa.reverts("below initial margin"):
        protocol.ch.place_order(
            owner, 0, protocol.market().address, True, to_wad("0.01"), to_wad(50_000), GTC, False, 0
        )
    protocol.engine.settle_bad_debt(flat_below_zero)
    with boa.reverts("settle: no deficit"):
        protocol.engine.settle_bad_debt(flat_below_zero)
