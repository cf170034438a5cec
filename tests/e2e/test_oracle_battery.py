"""Oracle battery (PROTOCOL.md §4, §5, §7): stale sources, a lost quorum, a zero
price, a price from the future, a backwards timestamp, an absurd price, one
wild source, and a wild trade against the price band and the mark's clamp.
Each bad input is rejected with its reason or bounded (the median ignores one
wild source of three; no order trades beyond index x (1 +- price_band); the
mark never leaves index x (1 +- mark_band)), and no action that
needs a price (order, withdrawal with exposure, liquidation, takeover, ADL,
funding) runs on an invalid index: each reverts and leaves the state as it
was, while deposits and cancels still work."""

import boa
import pytest

from tests.e2e.replay_helpers import WAD, assert_solvent, attempt, open_position, report, snapshot, to_wad
from tests.utils.protocol import GTC, IOC

MAX_AGE = 60  # the test oracles' max_age


@pytest.fixture
def book(protocol):
    """A trader 1 BTC long at 100,000 (10,100 deposited: just above IM), its
    maker short, a bid and an ask resting, an insurance fund."""
    p = protocol
    p.set_index(100_000)
    p.fund_insurance(1_000_000)
    maker = p.actor("maker", 1_000_000)
    trader = p.actor("trader", 10_100)
    open_position(p, trader, maker, "buy", "1", 100_000)
    bid = p.order(maker, "buy", "1", 99_000, GTC)
    p.order(maker, "sell", "1", 101_000, GTC)
    return p, maker, trader, bid


def _price_actions(p, maker, trader, keeper):
    m = p.market().address
    a = p.account(trader)
    return {
        "order": lambda: p.order(trader, "sell", "0.1", 99_000, GTC, reduce_only=True),
        "withdraw": lambda: p.ch.withdraw(0, 1, sender=trader),
        "liquidate": lambda: p.engine.liquidate(a, m, 2**200, [], sender=keeper),
        "takeover": lambda: p.engine.takeover(a, m, WAD, 0, sender=keeper),
        "adl": lambda: p.engine.adl(a, m, [p.account(maker)], [], sender=keeper),
        "funding settle": lambda: p.d.markets["BTC-PERP"].funding.settle(sender=keeper),
        "margin view": lambda: p.margin(trader),
    }


def _assert_no_price_action(p, maker, trader, reason):
    keeper = p.actor("keeper", 100_000)
    before = snapshot(p)
    for name, fn in _price_actions(p, maker, trader, keeper).items():
        ok, out = attempt(fn)
        assert not ok and reason in out, (name, out)
    assert snapshot(p) == before
    # what needs no price still works
    p.fund(trader, 1)
    return keeper


def _warp_to_funding_time(p):
    """Past the next funding time (so only the index can stop a settle): stale."""
    nft = p.d.markets["BTC-PERP"].funding.next_funding_time()
    p.warp(max(nft - boa.env.evm.patch.timestamp, MAX_AGE + 1))


def test_stale_sources__every_price_action_reverts(book):
    p, maker, trader, bid = book
    _warp_to_funding_time(p)
    assert not p.oracle().index_status()[0]
    _assert_no_price_action(p, maker, trader, "oracle: stale index")
    p.cancel(maker, bid)  # cancels never need a price
    p.set_index(100_000)  # fresh again: everything works
    p.ch.withdraw(0, 1, sender=trader)
    assert_solvent(p)


def test_lost_quorum__one_fresh_source_of_three__reverts(book):
    p, maker, trader, _bid = book
    _warp_to_funding_time(p)
    report(p, [50_000, None, None])  # one fresh (and crashed) source, quorum 2
    assert p.oracle().index_status() == (False, to_wad(50_000), 1)
    _assert_no_price_action(p, maker, trader, "oracle: below quorum")
    assert_solvent(p)


@pytest.mark.parametrize(
    "price, when, reason",
    [
        (0, "now", "oracle: zero price"),
        (2**128, "now", "oracle: price too large"),
        (to_wad(100_000), "future", "oracle: future timestamp"),
        (to_wad(100_000), "backwards", "oracle: timestamp went backwards"),
    ],
    ids=["zero", "too large", "future timestamp", "backwards timestamp"],
)
def test_bad_report__rejected(book, price, when, reason):
    p, maker, trader, _bid = book
    p.warp(5)
    md = p.d.markets["BTC-PERP"]
    now = boa.env.evm.patch.timestamp
    md.oracle.report(to_wad(100_000), now - 5, sender=md.reporters[0])
    word = md.oracle.source(0)
    timestamp = {"now": now, "future": now + 1, "backwards": now - 6}[when]

    ok, out = attempt(lambda: md.oracle.report(price, timestamp, sender=md.reporters[0]))

    assert not ok and reason in out, out
    assert md.oracle.source(0) == word
    assert p.oracle().index() == to_wad(100_000)


def test_not_a_reporter__rejected(book):
    p, maker, _trader, _bid = book
    ok, out = attempt(lambda: p.oracle().report(to_wad(1), boa.env.evm.patch.timestamp, sender=maker))
    assert not ok and "oracle: not a reporter" in out, out


def test_one_wild_source__median_ignores_it__nobody_liquidated(book):
    p, maker, trader, _bid = book
    keeper = p.actor("keeper", 100_000)
    for wild in (1, 10**9):  # a crash to $1 or a pump to $1e9 from one source of three
        report(p, [wild, 100_000, 100_000])
        assert p.oracle().index() == to_wad(100_000)
        (h,) = p.ch.health(p.account(trader), 1)
        assert not h.liquidatable
        ok, out = attempt(
            lambda: p.engine.liquidate(p.account(trader), p.market().address, 2**200, [], sender=keeper)
        )
        assert not ok and "not liquidatable" in out, out
    assert_solvent(p)


def test_wild_trade__mark_clamped_to_the_index_band(book):
    p, maker, trader, bid = book
    keeper = p.actor("keeper", 100_000)
    dumper = p.actor("dumper", 100_000)
    m = p.market()
    band = p.params().mark_band
    assert band == to_wad("0.01625") < p.params().price_band == to_wad("0.02")
    # someone wants to hit every bid down to $50,000: the price band (2%) refuses
    # such an order before it rests or trades
    p.cancel(maker, bid)
    for kind in (GTC, IOC):
        ok, out = attempt(lambda kind=kind: p.order(dumper, "sell", "0.001", 50_000, kind))
        assert not ok and "price beyond the price band" in out, out
    # so the wildest trade is at the band's edge, $98,000, leaving a low ask at
    # $98,001: last trade and ask below index - mark_band ($98,375)
    p.order(maker, "buy", "0.001", 98_000, GTC)
    p.order(dumper, "sell", "0.001", 98_000, IOC)
    p.order(dumper, "sell", "0.001", 98_001, GTC)
    assert p.lens.last_trade_price(m.address) == to_wad(98_000)
    assert m.best_bid() == 0 and m.best_ask() == to_wad(98_001)
    mark = m.mark_price()

    assert mark == to_wad(100_000) * (WAD - band) // WAD == to_wad(98_375)  # clamped at index - 1.625%
    equity, _im, mm, _ = p.margin(trader)
    # 10,100 - 1,625 = 8,475 >= 6,394.375: the wild trade liquidates nobody
    assert (equity, mm) == (to_wad(8_475), to_wad("6394.375"))
    ok, out = attempt(lambda: p.engine.liquidate(p.account(trader), m.address, 2**200, [], sender=keeper))
    assert not ok and "not liquidatable" in out, out
    assert_solvent(p)
