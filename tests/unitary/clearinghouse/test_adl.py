"""Clearinghouse.adl and adl_score (PROTOCOL.md §11), on seed 001's example:
"you were only 2x leveraged, so you earned 40%"."""

from decimal import Decimal

import boa
import pytest

from keeper import liquidation_model as lm
from keeper.deploy import MarketConfig, to_wad
from tests.unitary.clearinghouse.liquidation_helpers import adl, events, liquidate, open_position
from tests.utils.protocol import deploy_for_tests


@pytest.fixture(scope="module")
def _seed001():
    # IM 5% lets L open at 11x. The mark band is the default, mmr / 4 = 0.75% (the
    # widest allowed): the book is empty after each trade, so the mark is
    # median(index, index, last trade) = the index and follows the gap anyway
    btc = MarketConfig(
        "BTC-PERP",
        Decimal("100000"),
        tick_size=Decimal("1"),
        lot_size=Decimal("0.001"),
        initial_margin=Decimal("0.05"),
        maintenance_margin=Decimal("0.03"),
        taker_fee=Decimal("0"),
        maker_fee=Decimal("0"),
    )
    return deploy_for_tests(6, markets=(btc,))


@pytest.fixture
def seed001(_seed001):
    """W shorts 2 BTC at $100,000 with $50,000 (4x) against C's fully
    collateralized long; at $110,000 L buys 1 BTC (from C) with $10,000."""
    p = _seed001
    with boa.env.anchor():
        c = p.actor("collateralized-long", 400_000)
        w = p.actor("winner-short", 50_000)
        lng = p.actor("levered-long", 10_000)
        open_position(p, w, c, "sell", "2", "100000")
        p.set_index(110_000)
        open_position(p, lng, c, "buy", "1", "110000")
        yield p, c, w, lng


def gap(p, price=80_000):
    p.set_index(price)


def test_adl__seed001__winner_keeps_40_percent(seed001):
    p, _c, w, lng = seed001
    gap(p)
    acct_l, acct_w = p.account(lng), p.account(w)
    assert p.market().mark_price() == to_wad(80_000)  # the mark followed the gap
    assert p.ch.margin(acct_l)[0] == to_wad(-20_000)
    with boa.reverts("liquidate: insurance fund cannot cover, adl"):
        liquidate(p, acct_l, p.actor("keeper"))
    closed = adl(p, acct_l, [acct_w], p.actor("keeper"))
    assert closed == to_wad(1)
    (ev,) = events("Deleveraged")
    assert (ev.account, ev.counterparty, ev.size, ev.price, ev.counterparty_size) == (
        acct_l,
        acct_w,
        to_wad(1),
        to_wad(100_000),
        to_wad(-1),
    )
    assert len(events("AutoDeleverage")) == 1
    # L is bankrupt at $100,000 and ends at exactly zero
    assert p.position(lng).size == 0 and p.ch.cash(acct_l) == 0
    # W keeps a 1 BTC short worth +$20,000: 40% of its $50,000, not 80%
    pos = p.position(w)
    assert pos.size == to_wad(-1)
    assert pos.unrealized_pnl == to_wad(20_000)
    assert p.ch.cash(acct_w) == to_wad(50_000)
    assert p.ch.bad_debt() == 0
    assert not events("BadDebt")
    assert p.market().open_interest_sides() == (to_wad(1), to_wad(1))


def test_adl_score__matches_model(seed001):
    p, c, w, _lng = seed001
    gap(p)
    acct = p.account(w)
    pos = p.position(w)
    equity = p.ch.margin(acct)[0]
    expected = lm.adl_score(pos.unrealized_pnl, pos.open_notional, pos.size, pos.mark, equity)
    assert p.engine.adl_score(acct, p.market().address) == expected > 0
    # the losing long scores 0
    assert p.engine.adl_score(p.account(c), p.market().address) == 0


def test_adl__account_not_bankrupt__reverts(seed001):
    p, _c, w, lng = seed001
    gap(p, 101_000)
    with boa.reverts("adl: account not bankrupt"):
        adl(p, p.account(lng), [p.account(w)], p.actor("keeper"))


def test_adl__insurance_fund_can_cover__reverts(seed001):
    p, _c, w, lng = seed001
    p.fund_insurance(1_000_000)
    gap(p)
    with boa.reverts("adl: insurance fund can cover, liquidate"):
        adl(p, p.account(lng), [p.account(w)], p.actor("keeper"))


def test_adl__no_candidates__reverts(seed001):
    p, _c, _w, lng = seed001
    gap(p)
    with boa.reverts("adl: no candidates"):
        adl(p, p.account(lng), [], p.actor("keeper"))


def test_adl__candidate_on_the_same_side__reverts(seed001):
    p, c, _w, lng = seed001
    gap(p)
    with boa.reverts("adl: candidate on the same side"):
        adl(p, p.account(lng), [p.account(c)], p.actor("keeper"))


def test_adl__candidate_already_flat__reverts(seed001):
    p, _c, _w, lng = seed001
    flat = p.actor("flat", 1_000)
    gap(p)
    with boa.reverts("adl: candidate has no position"):
        adl(p, p.account(lng), [p.account(flat)], p.actor("keeper"))


def test_adl__candidate_is_the_account__reverts(seed001):
    p, _c, _w, lng = seed001
    gap(p)
    with boa.reverts("adl: candidate is the account"):
        adl(p, p.account(lng), [p.account(lng)], p.actor("keeper"))


def test_adl__unprofitable_candidate__reverts(seed001):
    p, c, _w, lng = seed001
    # a short opened at $75,000 loses when the index is $80,000
    p.set_index(75_000)
    loser = p.actor("losing-short", 10_000)
    open_position(p, loser, c, "sell", "0.1", "75000")
    gap(p)
    with boa.reverts("adl: candidate not profitable"):
        adl(p, p.account(lng), [p.account(loser)], p.actor("keeper"))


@pytest.fixture
def two_shorts(seed001):
    """A second, less levered winner: 0.5 BTC short at $100,000 with $100,000."""
    p, c, w, lng = seed001
    p.set_index(100_000)
    w2 = p.actor("calm-short", 100_000)
    open_position(p, w2, c, "sell", "0.5", "100000")
    gap(p)
    return p, w, w2, lng


def test_adl__candidates_out_of_order__reverts(two_shorts):
    p, w, w2, lng = two_shorts
    s_w = p.engine.adl_score(p.account(w), p.market().address)
    s_w2 = p.engine.adl_score(p.account(w2), p.market().address)
    assert s_w > s_w2
    with boa.reverts("adl: candidates out of order"):
        adl(p, p.account(lng), [p.account(w2), p.account(w)], p.actor("keeper"))


def test_adl__list_beyond_the_deficit__reverts(two_shorts):
    p, w, w2, lng = two_shorts
    with boa.reverts("adl: deficit already absorbed"):
        adl(p, p.account(lng), [p.account(w), p.account(w2)], p.actor("keeper"))


def test_adl__splits_across_counterparties_in_score_order(seed001):
    p, c, w, lng = seed001
    # L is bigger than the top winner: it takes 2 BTC of L's 2.5
    p.set_index(110_000)
    p.fund(lng, 15_000)
    open_position(p, lng, c, "buy", "1.5", "110000")  # L: 2.5 BTC at $110,000
    p.set_index(100_000)
    w2 = p.actor("calm-short", 100_000)
    open_position(p, w2, c, "sell", "0.5", "100000")
    gap(p, 85_000)
    acct_l = p.account(lng)
    assert p.ch.margin(acct_l)[0] < 0
    closed = adl(p, acct_l, [p.account(w), p.account(w2)], p.actor("keeper"))
    assert closed == to_wad("2.5")
    evs = events("Deleveraged")
    assert [(e.counterparty, e.size) for e in evs] == [
        (p.account(w), to_wad(2)),
        (p.account(w2), to_wad("0.5")),
    ]
    assert evs[0].score >= evs[1].score
    assert p.ch.cash(acct_l) >= 0 and p.position(lng).size == 0
    assert p.ch.bad_debt() == 0
    longs, shorts = p.market().open_interest_sides()
    assert longs == shorts


def test_adl__partial_list__keeps_going_next_call(seed001):
    p, c, w, lng = seed001
    p.set_index(110_000)
    p.fund(lng, 15_000)
    open_position(p, lng, c, "buy", "1.5", "110000")
    p.set_index(100_000)
    w2 = p.actor("calm-short", 100_000)
    open_position(p, w2, c, "sell", "0.5", "100000")
    gap(p, 85_000)
    acct_l = p.account(lng)
    assert adl(p, acct_l, [p.account(w)], p.actor("keeper")) == to_wad(2)
    # still bankrupt (never below the bankruptcy price): the next call finishes it
    assert p.ch.margin(acct_l)[0] < 0
    assert adl(p, acct_l, [p.account(w2)], p.actor("keeper")) == to_wad("0.5")
    assert p.position(lng).size == 0 and p.ch.cash(acct_l) >= 0
