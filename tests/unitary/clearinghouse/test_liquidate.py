"""Clearinghouse.liquidate (PROTOCOL.md §9): who can be liquidated, how much
is closed and at what bound, the fee and its split, orders, bad debt."""

import boa
import pytest

from keeper import liquidation_model as lm
from keeper.deploy import to_wad
from keeper.units import WAD
from tests.unitary.clearinghouse.liquidation_helpers import (
    MAX,
    events,
    levered_long,
    liquidate,
    liquidation_params,
    open_position,
    set_liquidation_params,
)
from tests.utils.protocol import GTC


@pytest.fixture
def crashed(protocol):
    """Trader long 0.1 BTC at $100,000 with $1,100; the index falls to
    $93,600 and then a bid for 1 BTC at $93,500 rests (within the 2% price
    band of the new index): mark $93,600, equity $460 < MM $608.40."""
    maker, trader = levered_long(protocol)
    protocol.set_index(93_600)
    protocol.order(maker, "buy", "1", "93500")
    return maker, trader


def test_liquidate__healthy_account__reverts(protocol):
    _maker, trader = levered_long(protocol)
    keeper = protocol.actor("liquidator")
    with boa.reverts("not liquidatable"):
        liquidate(protocol, protocol.account(trader), keeper)


def test_liquidate__flat_account__reverts(protocol, crashed):
    other = protocol.actor("other", 10)
    # an account with cash only: equity 10 >= MM 0
    with boa.reverts("not liquidatable"):
        liquidate(protocol, protocol.account(other), protocol.actor("liquidator"))


def test_liquidate__unknown_market__reverts(protocol, crashed):
    _maker, trader = crashed
    with boa.env.prank(protocol.actor("liquidator")), boa.reverts("unknown market"):
        protocol.engine.liquidate(protocol.account(trader), protocol.token.address, MAX, [])


def test_liquidate__stale_index__reverts(protocol, crashed):
    _maker, trader = crashed
    protocol.warp(3600)
    with boa.reverts("oracle: stale index"):
        liquidate(protocol, protocol.account(trader), protocol.actor("liquidator"))


def test_liquidate__zero_max_size__reverts(protocol, crashed):
    _maker, trader = crashed
    with boa.reverts("zero size"):
        liquidate(protocol, protocol.account(trader), protocol.actor("liquidator"), max_size=0)


def test_liquidate__closes_enough_to_restore_initial_margin(protocol, crashed):
    _maker, trader = crashed
    acct = protocol.account(trader)
    equity, im, mm, _ = protocol.ch.margin(acct)
    pos = protocol.position(trader)
    lp = liquidation_params(protocol)
    imr = protocol.params().imr
    expected = lm.restore_size(equity, im, pos.mark, imr, lp.liquidation_fee, to_wad("0.001"), pos.size)
    expected = lm.close_size(expected, pos.size, pos.mark, lp.small_position_notional)
    closed = liquidate(protocol, acct, protocol.actor("liquidator"))
    assert closed == expected == to_wad("0.054")
    assert protocol.position(trader).size == to_wad("0.1") - closed


def test_liquidate__fee_capped_and_split(protocol, crashed):
    _maker, trader = crashed
    acct = protocol.account(trader)
    keeper = protocol.actor("liquidator")
    mark = protocol.position(trader).mark
    ins0 = protocol.ch.cash(protocol.ch.insurance_account())
    closed = liquidate(protocol, acct, keeper)
    lp = liquidation_params(protocol)
    fee = lm.liquidation_fee(closed * mark // WAD, lp.liquidation_fee, 10**30)
    keeper_fee = lm.keeper_share(fee, lp.liquidator_share, False)
    assert protocol.ch.cash(protocol.account(keeper)) == keeper_fee
    assert protocol.ch.cash(protocol.ch.insurance_account()) - ins0 == fee - keeper_fee
    logs = events("Liquidation")
    assert len(logs) == 1
    ev = logs[0]
    assert (ev.account, ev.closed_size, ev.fee, ev.liquidator_fee, ev.bankrupt) == (
        acct,
        closed,
        fee,
        keeper_fee,
        False,
    )


def test_liquidate__fee_larger_than_equity__capped_at_equity(protocol):
    maker, trader = levered_long(protocol)
    # the bid sits exactly where closing everything leaves ~nothing
    set_liquidation_params(protocol, liquidation_fee="0.05", small_position_notional="100000")
    protocol.set_index(89_200)
    protocol.order(maker, "buy", "1", "89100")
    acct = protocol.account(trader)
    liquidate(protocol, acct, protocol.actor("liquidator"))
    assert protocol.position(trader).size == 0
    # equity after the close was 1,100 - 1,090 = 10 < 5% x 8,910: the fee took it all, no bad debt
    assert protocol.ch.cash(acct) == 0
    assert protocol.ch.bad_debt() == 0


def test_liquidate__never_fills_beyond_bankruptcy_price(protocol):
    maker, trader = levered_long(protocol)
    # bids below the bankruptcy price ($89,000) are not taken; the bid must rest
    # within the 2% price band ($88,200 .. $91,800 at the index $90,000), so the
    # index falls to where the account is still solvent: equity $100 < MM $585
    protocol.set_index(90_000)
    oid = protocol.order(maker, "buy", "1", "88500")
    acct = protocol.account(trader)
    equity, _im, mm, _ = protocol.ch.margin(acct)
    assert 0 <= equity < mm
    pos = protocol.position(trader)
    bk = lm.bankruptcy_price(pos.mark, equity, pos.size)
    assert bk == to_wad(89_000) > to_wad(88_500)
    assert liquidate(protocol, acct, protocol.actor("liquidator")) == 0
    assert protocol.position(trader).size == to_wad("0.1")
    # the bid was not reached: not filled, not cancelled
    assert protocol.lens.order(protocol.market().address, oid)[0] == protocol.account(maker)


def test_liquidate__dust_remainder__closed_whole(protocol, crashed):
    _maker, trader = crashed
    acct = protocol.account(trader)
    # restoring IM needs 0.054 BTC; the 0.046 BTC left (~$4,300) is at most
    # the small-position threshold, so all of it goes
    set_liquidation_params(protocol, small_position_notional="5000")
    closed = liquidate(protocol, acct, protocol.actor("liquidator"))
    assert closed == to_wad("0.1")
    assert protocol.position(trader).size == 0


def test_liquidate__max_size__bounds_the_chunk(protocol, crashed):
    _maker, trader = crashed
    closed = liquidate(
        protocol, protocol.account(trader), protocol.actor("liquidator"), max_size=to_wad("0.02")
    )
    assert closed == to_wad("0.02")


def test_liquidate__self_liquidation__pays_no_keeper_fee(protocol, crashed):
    _maker, trader = crashed
    acct = protocol.account(trader)
    cash0 = protocol.ch.cash(acct)
    ins0 = protocol.ch.cash(protocol.ch.insurance_account())
    liquidate(protocol, acct, trader)
    ev = events("Liquidation")[0]
    assert ev.liquidator_fee == 0
    assert protocol.ch.cash(protocol.ch.insurance_account()) - ins0 == ev.fee
    # the owner only lost: realized loss and the whole fee
    assert protocol.ch.cash(acct) < cash0


def crash_with_orders(protocol, prices):
    """The trader rests reduce-only asks of 0.001 BTC at `prices` (within the 2%
    price band of $100,000; resting them reserves margin, which the trader's
    $1,100 covers at this size), the index falls to $92,000 and a bid for 1 BTC
    rests at $93,000."""
    maker, trader = levered_long(protocol)
    oids = [protocol.order(trader, "sell", "0.001", price, GTC, reduce_only=True) for price in prices]
    protocol.set_index(92_000)
    protocol.order(maker, "buy", "1", "93000")
    # the resting asks pull the mark up to the mark band's edge: $93,495 (92,000 + 1.625%)
    assert protocol.position(trader).mark == to_wad(93_495)
    return trader, oids


def test_liquidate__cancels_listed_orders(protocol):
    trader, (oid,) = crash_with_orders(protocol, ["101000"])
    acct = protocol.account(trader)
    closed = liquidate(protocol, acct, protocol.actor("liquidator"), order_ids=[oid])
    assert closed > 0
    assert protocol.lens.order(protocol.market().address, oid)[0] == 0


def test_liquidate__orders_missing_from_list__only_cancels(protocol):
    trader, (a, b) = crash_with_orders(protocol, ["101000", "102000"])
    acct = protocol.account(trader)
    assert liquidate(protocol, acct, protocol.actor("liquidator"), order_ids=[a]) == 0
    assert (
        protocol.lens.order(protocol.market().address, a)[0] == 0
        and protocol.lens.order(protocol.market().address, b)[0] == acct
    )
    assert protocol.position(trader).size == to_wad("0.1")
    assert liquidate(protocol, acct, protocol.actor("liquidator"), order_ids=[b]) > 0


def test_liquidate__a_listed_order_gone_meanwhile__skipped_not_reverted(protocol):
    """The owner cancels a listed order before the liquidation lands (a front-run):
    the liquidation cancels the rest of the list and goes on."""
    trader, (a, b) = crash_with_orders(protocol, ["101000", "102000"])
    acct = protocol.account(trader)
    protocol.cancel(trader, a)
    closed = liquidate(protocol, acct, protocol.actor("liquidator"), order_ids=[a, b])
    assert closed > 0
    assert protocol.lens.order(protocol.market().address, b)[0] == 0
    assert [e.order_id for e in events("OrderRemoved")] == [b]


def test_liquidate__not_paused_by_trade_pause(protocol, crashed):
    _maker, trader = crashed
    with boa.env.prank(protocol.owner):
        protocol.ch.set_paused(3)
    assert liquidate(protocol, protocol.account(trader), protocol.actor("liquidator")) > 0


# ---------------------------------------------------------------- bankrupt accounts (gapped)


def gapped(protocol, bid="88000", index=88_100):
    """The index gaps through the trader's bankruptcy price ($89,000); then a
    bid rests (within the 2% price band of the new index)."""
    maker, trader = levered_long(protocol)
    protocol.set_index(index)
    protocol.order(maker, "buy", "1", bid)
    return maker, trader


def test_liquidate__bankrupt_and_fund_empty__reverts_to_adl(protocol):
    _maker, trader = gapped(protocol)
    with boa.reverts("liquidate: insurance fund cannot cover, adl"):
        liquidate(protocol, protocol.account(trader), protocol.actor("liquidator"))


def test_liquidate__bankrupt__fund_covers_the_deficit(protocol):
    protocol.fund_insurance(10_000)
    _maker, trader = gapped(protocol)
    acct = protocol.account(trader)
    assets0 = protocol.insurance.totalAssets()
    closed = liquidate(protocol, acct, protocol.actor("liquidator"))
    assert closed == to_wad("0.1")
    # sold at $88,000: lost $1,200 on $1,100 of margin -> $100 of bad debt covered
    assert protocol.ch.cash(acct) == 0
    assert protocol.ch.bad_debt() == 0
    assert assets0 - protocol.insurance.totalAssets() == protocol.units(100)
    bd = events("BadDebt")
    assert len(bd) == 1 and bd[0].deficit == to_wad(100) and bd[0].uncovered == 0


def test_liquidate__bankrupt__fills_only_within_band(protocol):
    protocol.fund_insurance(10_000)
    set_liquidation_params(protocol, bankrupt_band="0.01")
    # the only bid is 1.25% under mark ($88,100): outside the 1% bankrupt band
    # (the limit is $87,219), inside the 2% price band (from $86,338)
    _maker, trader = gapped(protocol, bid="87000", index=88_100)
    assert liquidate(protocol, protocol.account(trader), protocol.actor("liquidator")) == 0
    assert protocol.position(trader).size == to_wad("0.1")


def test_liquidate__payout_cap_reached__liquidation_refused(protocol):
    # the fund holds $150 at a 50% cap: it pays at most $75 < the $100+ deficit
    protocol.fund_insurance(150)
    _maker, trader = gapped(protocol)
    cap = protocol.engine.insurance_capacity()
    assert cap == to_wad(75)
    with boa.reverts("liquidate: insurance fund cannot cover, adl"):
        liquidate(protocol, protocol.account(trader), protocol.actor("liquidator"))


def test_liquidate__fund_pending_fees_count_toward_capacity(protocol):
    protocol.fund_insurance(100)
    # the fund's pending cash at the clearinghouse (fees) is part of its assets
    payer = protocol.actor("payer")
    protocol.token.mint(payer, protocol.units(100), sender=protocol.owner)
    with boa.env.prank(payer):
        protocol.token.approve(protocol.ch.address, MAX)
        protocol.ch.deposit(0, protocol.units(100), protocol.insurance.address)
    assert protocol.engine.insurance_capacity() == to_wad(100)


def test_liquidate__two_markets__bad_debt_waits_until_flat(protocol):
    protocol.fund_insurance(10_000)
    maker = protocol.actor("maker", 10_000_000)
    trader = protocol.actor("trader", 2_000)
    open_position(protocol, trader, maker, "buy", "0.1", "100000")
    open_position(protocol, trader, maker, "buy", "1", "4000", symbol="ETH-PERP")
    # both indexes fall, then the bids rest within the 2% price band of each
    protocol.set_index(79_000)
    protocol.set_index(3_900, symbol="ETH-PERP")
    protocol.order(maker, "buy", "1", "79000")
    protocol.order(maker, "buy", "2", "3900", symbol="ETH-PERP")
    acct = protocol.account(trader)
    equity = protocol.ch.margin(acct)[0]
    assert equity < 0
    liquidate(protocol, acct, protocol.actor("liquidator"))
    # still an ETH position: the negative cash is not yet bad debt
    assert protocol.ch.cash(acct) < 0
    assert not events("BadDebt")
    liquidate(protocol, acct, protocol.actor("liquidator"), symbol="ETH-PERP")
    assert events("BadDebt")[0].deficit == to_wad(200)
    assert protocol.ch.cash(acct) == 0
    assert protocol.ch.active_markets(acct) == 0


# ---------------------------------------------------------------- parameters


@pytest.mark.parametrize(
    "field,value,reason",
    [
        ("liquidation_fee", "0.051", "liquidation fee out of bounds"),
        ("liquidator_share", "1.01", "liquidator share above 1"),
        ("bankrupt_band", "0.0009", "bankrupt band out of bounds"),
        ("bankrupt_band", "0.51", "bankrupt band out of bounds"),
        ("takeover_discount", "0.11", "takeover discount out of bounds"),
    ],
)
def test_set_liquidation_params__out_of_bounds__reverts(protocol, field, value, reason):
    with boa.reverts(reason):
        set_liquidation_params(protocol, **{field: value})


def test_set_liquidation_params__not_owner__reverts(protocol):
    with boa.env.prank(protocol.actor("stranger")), boa.reverts("ownable: caller is not the owner"):
        protocol.engine.set_liquidation_params(protocol.market().address, (0, 0, to_wad("0.01"), 0, 0))


def test_set_liquidation_params__unknown_market__reverts(protocol):
    with boa.env.prank(protocol.owner), boa.reverts("unknown market"):
        protocol.engine.set_liquidation_params(protocol.token.address, (0, 0, to_wad("0.01"), 0, 0))


def test_liquidation_params__set_by_the_deployer(protocol):
    mc = protocol.d.markets["BTC-PERP"].config
    assert tuple(protocol.engine.liquidation_params(protocol.market().address)) == mc.liquidation_params()
