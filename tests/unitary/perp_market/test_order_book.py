"""The order book: every order kind, matching rules and every rejection
(PROTOCOL.md §5), through the clearinghouse router as users reach it.

BTC-PERP in the fixture: index $100,000, tick $1, lot 0.001 BTC, IM 10%,
MM 6.5%, zero fees, min order notional $10, at most 20 open orders and
8 fills per taker order.
"""

import boa
import pytest

from keeper import model
from keeper.deploy import to_wad
from keeper.units import WAD
from tests.utils.protocol import GTC, IOC, POST_ONLY


@pytest.fixture
def maker(protocol):
    return protocol.actor("maker", deposit="1000000")


@pytest.fixture
def taker(protocol):
    return protocol.actor("taker", deposit="1000000")


def book(protocol, depth=10):
    return protocol.lens.market_summary(protocol.market().address, depth)


# ---------------------------------------------------------------- resting and matching


def test_limit__rests_at_its_price(protocol, maker):
    oid = protocol.order(maker, "sell", "0.5", "100100")
    assert oid == 1
    s = book(protocol)
    assert s.best_ask == to_wad(100_100) and s.best_bid == 0
    assert [(lv.price, lv.size, lv.orders) for lv in s.asks] == [(to_wad(100_100), to_wad("0.5"), 1)]
    acct, is_buy, price, size, ro = protocol.lens.order(protocol.market().address, oid)
    assert (acct, is_buy, price, size, ro) == (
        protocol.account(maker),
        False,
        to_wad(100_100),
        to_wad("0.5"),
        False,
    )


def test_book__price_priority_then_time_priority(protocol, maker, taker):
    other = protocol.actor("other_maker", deposit="1000000")
    protocol.order(maker, "sell", "0.1", "100200")
    first = protocol.order(maker, "sell", "0.1", "100100")
    second = protocol.order(other, "sell", "0.1", "100100")
    protocol.order(taker, "buy", "0.1", "100300", IOC)
    # the best price fills first, and at that price the older order
    assert protocol.lens.order(protocol.market().address, first)[0] == 0
    assert protocol.lens.order(protocol.market().address, second)[0] == protocol.account(other)
    assert protocol.position(taker).entry_price == to_wad(100_100)


def test_levels__sorted_both_sides(protocol, maker):
    for p in ("99900", "99700", "99800"):
        protocol.order(maker, "buy", "0.1", p)
    for p in ("100300", "100100", "100200"):
        protocol.order(maker, "sell", "0.1", p)
    s = book(protocol)
    assert [lv.price // WAD for lv in s.bids] == [99_900, 99_800, 99_700]
    assert [lv.price // WAD for lv in s.asks] == [100_100, 100_200, 100_300]


def test_limit__crossing__fills_then_rests_remainder(protocol, maker, taker):
    protocol.order(maker, "sell", "0.1", "100100")
    oid = protocol.order(taker, "buy", "0.3", "100150")
    assert protocol.position(taker).size == to_wad("0.1")
    assert protocol.lens.order(protocol.market().address, oid)[3] == to_wad("0.2")
    assert book(protocol).best_bid == to_wad(100_150)


def test_ioc__fills_what_it_can_and_cancels_the_rest(protocol, maker, taker):
    protocol.order(maker, "sell", "0.1", "100100")
    protocol.order(maker, "sell", "0.1", "100300")
    oid = protocol.order(taker, "buy", "0.5", "100200", IOC)
    assert oid == 0
    assert protocol.position(taker).size == to_wad("0.1")
    s = book(protocol)
    assert s.best_bid == 0 and s.best_ask == to_wad(100_300)


def test_ioc__nothing_to_match__changes_nothing(protocol, taker):
    oid = protocol.order(taker, "buy", "0.5", "100200", IOC)
    assert oid == 0
    assert protocol.position(taker).size == 0


def test_post_only__rests_when_not_crossing(protocol, maker):
    oid = protocol.order(maker, "buy", "0.1", "99990", POST_ONLY)
    assert protocol.lens.order(protocol.market().address, oid)[0] == protocol.account(maker)


def test_post_only__crossing__reverts(protocol, maker, taker):
    protocol.order(maker, "sell", "0.1", "100100")
    with boa.reverts("post-only would cross"):
        protocol.order(taker, "buy", "0.1", "100100", POST_ONLY)


def test_max_fills__bounds_a_taker_walk(protocol, maker, taker):
    # 10 one-lot asks at 10 levels; max_fills is 8
    for i in range(10):
        protocol.order(maker, "sell", "0.001", str(100_100 + i))
    protocol.order(taker, "buy", "0.010", "100200", IOC)
    assert protocol.position(taker).size == to_wad("0.008")
    assert book(protocol).best_ask == to_wad(100_108)


def test_max_fills__a_limit_order_still_crossing__its_rest_is_cancelled_not_rested(protocol, maker, taker):
    # the walk stops after 8 of 10 asks; resting at 100,200 the bid would cross
    # the asks left at 100,108 and 100,109: the rest is cancelled, as an IOC's
    for i in range(10):
        protocol.order(maker, "sell", "0.001", str(100_100 + i))
    assert protocol.order(taker, "buy", "0.010", "100200") == 0
    s = book(protocol)
    assert (s.best_bid, s.best_ask) == (0, to_wad(100_108))
    assert protocol.position(taker).size == to_wad("0.008")
    assert protocol.market().open_order_stats(protocol.account(taker)) == (0, 0, 0)


def test_max_fills__a_limit_order_that_no_longer_crosses__rests(protocol, maker, taker):
    # 8 asks, 8 fills: the side is empty and the rest rests at the limit
    for i in range(8):
        protocol.order(maker, "sell", "0.001", str(100_100 + i))
    oid = protocol.order(taker, "buy", "0.010", "100200")
    assert oid != 0 and protocol.lens.order(protocol.market().address, oid)[3] == to_wad("0.002")
    s = book(protocol)
    assert (s.best_bid, s.best_ask) == (to_wad(100_200), 0)


def test_self_trade__resting_order_is_cancelled(protocol, maker, taker):
    own = protocol.order(taker, "sell", "0.1", "100100")
    protocol.order(maker, "sell", "0.1", "100200")
    protocol.order(taker, "buy", "0.1", "100200", IOC)
    # the taker's own ask was cancelled, not filled; it bought from the maker
    assert protocol.lens.order(protocol.market().address, own)[0] == 0
    assert protocol.position(taker).size == to_wad("0.1")
    assert protocol.position(maker).size == -to_wad("0.1")


def test_partial_fill__keeps_queue_position(protocol, maker, taker):
    other = protocol.actor("other_maker", deposit="1000000")
    first = protocol.order(maker, "sell", "0.3", "100100")
    protocol.order(other, "sell", "0.1", "100100")
    protocol.order(taker, "buy", "0.1", "100100", IOC)
    assert protocol.lens.order(protocol.market().address, first)[3] == to_wad("0.2")
    protocol.order(taker, "buy", "0.2", "100100", IOC)
    assert protocol.lens.order(protocol.market().address, first)[0] == 0
    assert protocol.position(other).size == 0


# ---------------------------------------------------------------- reduce-only


def test_reduce_only__ioc_closes_position(protocol, maker, taker):
    protocol.order(maker, "sell", "0.2", "100000")
    protocol.order(taker, "buy", "0.2", "100000", IOC)
    protocol.order(maker, "buy", "0.2", "99990")
    protocol.order(taker, "sell", "0.2", "99990", IOC, reduce_only=True)
    assert protocol.position(taker).size == 0


def test_reduce_only__would_increase__reverts(protocol, maker, taker):
    protocol.order(maker, "sell", "0.2", "100000")
    protocol.order(taker, "buy", "0.2", "100000", IOC)
    with boa.reverts("reduce-only would increase position"):
        protocol.order(taker, "buy", "0.1", "100000", IOC, reduce_only=True)
    with boa.reverts("reduce-only would increase position"):
        # larger than the position: it would flip
        protocol.order(taker, "sell", "0.3", "99000", IOC, reduce_only=True)


def test_reduce_only__flat_account__reverts(protocol, taker):
    with boa.reverts("reduce-only would increase position"):
        protocol.order(taker, "sell", "0.1", "99000", GTC, reduce_only=True)


def test_reduce_only__resting_order_void_once_flat(protocol, maker, taker):
    # taker long 0.2 with a resting reduce-only ask; it closes elsewhere first
    protocol.order(maker, "sell", "0.2", "100000")
    protocol.order(taker, "buy", "0.2", "100000", IOC)
    ro = protocol.order(taker, "sell", "0.2", "100500", GTC, reduce_only=True)
    protocol.order(maker, "buy", "0.2", "99990")
    protocol.order(taker, "sell", "0.2", "99990", IOC)
    assert protocol.position(taker).size == 0
    # a buyer reaching 100,500 must not make the flat taker short
    buyer = protocol.actor("buyer", deposit="1000000")
    protocol.order(maker, "sell", "0.1", "100600")
    protocol.order(buyer, "buy", "0.1", "100600", IOC)
    assert protocol.position(taker).size == 0
    assert protocol.lens.order(protocol.market().address, ro)[0] == 0
    assert protocol.position(buyer).size == to_wad("0.1")


def test_reduce_only__reserves_margin_and_its_order_risk(protocol, maker, taker):
    """§8: a resting reduce-only order reserves margin like any other: its fill may
    lose against the mark (here an ask above the mark loses nothing, but one placed
    after a move might), so IM and MM both carry its order risk."""
    protocol.order(maker, "sell", "0.2", "100000")
    protocol.order(taker, "buy", "0.2", "100000", IOC)
    protocol.order(taker, "sell", "0.2", "100500", GTC, reduce_only=True)
    p = protocol.params()
    asks = model.order_notional(to_wad("0.2"), to_wad(100_500))
    risk = model.order_risk(0, asks, p.price_band, p.mark_band, p.maker_fee)
    assert risk > 0
    pos = model.Position(to_wad("0.2"), to_wad(20_000))
    want = model.account_margin(pos, protocol.market().mark_price(), p.imr, p.mmr, asks, risk=risk)
    assert protocol.market().account_margin(protocol.account(taker)) == (want.pnl, want.im, want.mm)


# ---------------------------------------------------------------- cancels


def test_cancel__removes_order_and_releases_margin(protocol, maker):
    oid = protocol.order(maker, "buy", "1", "99000")
    assert protocol.margin(maker)[1] > 0
    protocol.cancel(maker, oid)
    assert protocol.lens.order(protocol.market().address, oid)[0] == 0
    assert protocol.margin(maker)[1] == 0
    assert book(protocol).best_bid == 0


def test_cancel__middle_of_level_keeps_the_rest_linked(protocol, maker, taker):
    a = protocol.order(maker, "sell", "0.1", "100100")
    b = protocol.order(maker, "sell", "0.1", "100100")
    c = protocol.order(maker, "sell", "0.1", "100100")
    protocol.cancel(maker, b)
    lv = book(protocol).asks[0]
    assert (lv.size, lv.orders) == (to_wad("0.2"), 2)
    protocol.order(taker, "buy", "0.2", "100100", IOC)
    assert (
        protocol.lens.order(protocol.market().address, a)[0] == 0
        and protocol.lens.order(protocol.market().address, c)[0] == 0
    )
    assert book(protocol).best_ask == 0


def test_cancel__best_level_moves_best_price(protocol, maker):
    a = protocol.order(maker, "sell", "0.1", "100100")
    protocol.order(maker, "sell", "0.1", "100200")
    protocol.cancel(maker, a)
    assert book(protocol).best_ask == to_wad(100_200)


def test_cancel__another_accounts_order__reverts(protocol, maker, taker):
    oid = protocol.order(maker, "sell", "0.1", "100100")
    with boa.reverts("not your order"):
        protocol.cancel(taker, oid)


def test_cancel__unknown_order__reverts(protocol, maker):
    with boa.reverts("no such order"):
        protocol.cancel(maker, 999)


def test_cancel__works_on_an_invalid_index(protocol, maker):
    oid = protocol.order(maker, "sell", "0.1", "100100")
    protocol.warp(3600)  # every source stale
    protocol.cancel(maker, oid)
    assert protocol.lens.order(protocol.market().address, oid)[0] == 0


def _direct_cancel(protocol, who, oid):
    protocol.market().cancel(oid, sender=who)


def test_cancel_direct__owner_cancels_at_the_market__same_as_through_the_router(protocol, maker):
    m = protocol.market()
    kept = protocol.order(maker, "buy", "1", "99000")
    oid = protocol.order(maker, "buy", "1", "98000")
    im_both = protocol.margin(maker)[1]
    _direct_cancel(protocol, maker, oid)
    (ev,) = [e for e in m.get_logs() if type(e).__name__ == "OrderRemoved"]
    assert (ev.account, ev.order_id, ev.remaining, ev.reason) == (protocol.account(maker), oid, to_wad(1), 1)
    assert protocol.lens.order(m.address, oid)[0] == 0 and protocol.lens.order(m.address, kept)[
        0
    ] == protocol.account(maker)
    assert 0 < protocol.margin(maker)[1] < im_both
    assert m.open_order_stats(protocol.account(maker))[0] == 1
    assert [lv.price for lv in book(protocol).bids] == [to_wad(99_000)]


def test_cancel_direct__another_owner_or_an_operator__reverts(protocol, maker, taker):
    oid = protocol.order(maker, "sell", "0.1", "100100")
    operator = protocol.actor("operator")
    protocol.ch.set_operator(0, operator, True, sender=maker)
    for who in (taker, operator, protocol.ch.address):
        with boa.reverts("not your order"):
            _direct_cancel(protocol, who, oid)
    protocol.cancel(maker, oid, sender=operator)  # an operator cancels through the router
    assert protocol.lens.order(protocol.market().address, oid)[0] == 0
    with boa.reverts("no such order"):
        _direct_cancel(protocol, maker, oid)


def test_cancel_direct__the_owner_of_an_operators_order_and_of_any_subaccount(protocol, maker):
    """The market keeps the account's owner (not the operator who placed the first order)."""
    operator = protocol.actor("operator")
    protocol.fund(maker, "100000", sub=1)
    protocol.ch.set_operator(1, operator, True, sender=maker)
    oid = protocol.order(maker, "sell", "0.1", "100100", sub=1, sender=operator)
    with boa.reverts("not your order"):
        _direct_cancel(protocol, operator, oid)
    _direct_cancel(protocol, maker, oid)
    assert protocol.market().open_order_stats(protocol.account(maker, 1))[0] == 0


def test_cancel_direct__works_on_an_invalid_index_and_when_paused(protocol, maker):
    a = protocol.order(maker, "sell", "0.1", "100100")
    b = protocol.order(maker, "sell", "0.1", "100200")
    protocol.warp(3600)  # every source stale
    _direct_cancel(protocol, maker, a)
    protocol.ch.set_paused(3, sender=protocol.owner)  # everything paused
    _direct_cancel(protocol, maker, b)
    assert book(protocol).best_ask == 0


def test_cancel_all__lists_every_order(protocol, maker):
    ids = [protocol.order(maker, "sell", "0.1", str(100_100 + i)) for i in range(3)]
    m = protocol.market()
    assert protocol.lens.orders_of(m.address, protocol.account(maker), 1, 10) == ids
    with boa.env.prank(maker):
        with boa.reverts("cancel-all: orders missing from the list"):
            protocol.ch.cancel_all(maker, 0, m.address, ids[:2])
        protocol.ch.cancel_all(maker, 0, m.address, ids)
    assert m.open_order_stats(protocol.account(maker))[0] == 0


def test_cancel_all__an_order_filled_since_it_was_listed__skipped(protocol, maker, taker):
    """A market maker's cancel-all in a moving market: one of its listed orders
    fills first. The others are cancelled; the call does not revert."""
    ids = [protocol.order(maker, "sell", "0.1", str(100_100 + i)) for i in range(3)]
    m = protocol.market()
    protocol.order(taker, "buy", "0.1", "100100", IOC)  # fills ids[0]
    with boa.env.prank(maker):
        protocol.ch.cancel_all(maker, 0, m.address, ids)
    removed = [e.order_id for e in protocol.ch.get_logs() if type(e).__name__ == "OrderRemoved"]
    assert removed == ids[1:]
    assert m.open_order_stats(protocol.account(maker))[0] == 0
    # one order through the router is still told it does not rest
    with boa.reverts("no such order"):
        protocol.cancel(maker, ids[0])


def test_reinsert_at_emptied_level__links_correctly(protocol, maker, taker):
    a = protocol.order(maker, "sell", "0.1", "100100")
    protocol.order(maker, "sell", "0.1", "100300")
    protocol.cancel(maker, a)
    protocol.order(maker, "sell", "0.1", "100200")
    protocol.order(maker, "sell", "0.1", "100100")
    assert [lv.price // WAD for lv in book(protocol).asks] == [100_100, 100_200, 100_300]


# ---------------------------------------------------------------- hints


def test_hint__bad_hint__reverts(protocol, maker):
    protocol.order(maker, "sell", "0.1", "100100")
    with boa.reverts("book: bad hint"):
        # 100,500 is not a level
        protocol.order(maker, "sell", "0.1", "100600", hint=100_500)
    protocol.order(maker, "sell", "0.1", "100300")
    with boa.reverts("book: bad hint"):
        # a level worse than the price
        protocol.order(maker, "sell", "0.1", "100200", hint=100_300)


def test_hint__far_behind_best_needs_a_hint(protocol, maker):
    m = protocol.market()
    protocol.market().set_params(protocol.params()._replace(max_open_orders=100), sender=protocol.owner)
    for i in range(40):
        protocol.order(maker, "sell", "0.001", str(100_100 + i), hint=100_100 + i - 1 if i else 0)
    with boa.reverts("book: hint too far"):
        protocol.order(maker, "sell", "0.001", "100200")
    hint = protocol.lens.find_hint(m.address, False, to_wad(100_200))
    assert hint == 100_139
    protocol.order(maker, "sell", "0.001", "100200", hint=hint)
    assert book(protocol, 50).asks[-1].price == to_wad(100_200)


# ---------------------------------------------------------------- rejections


@pytest.mark.parametrize(
    "size,price,kind,reason",
    [
        ("0", "100000", GTC, "zero size"),
        ("0.1", "0", GTC, "zero price"),
        ("0.1", "100000.5", GTC, "price off tick"),
        ("0.0005", "100000", GTC, "size off lot"),
        ("0.1", "100000", 7, "bad order type"),
        ("0.0001", "100000", GTC, "size off lot"),
        ("0.001", "9000", GTC, "order below min notional"),  # $9 < $10
    ],
)
def test_order__malformed__reverts(protocol, taker, size, price, kind, reason):
    with boa.reverts(reason):
        protocol.order(taker, "buy", size, price, kind)


def test_order__max_uint_size__reverts(protocol, taker):
    with boa.env.prank(taker):
        with boa.reverts():
            protocol.ch.place_order(
                taker, 0, protocol.market().address, True, 2**256 - 1, to_wad(100_000), 0, False, 0
            )


def test_order__below_initial_margin__reverts(protocol, maker):
    poor = protocol.actor("poor_trader", deposit="1000")
    protocol.order(maker, "sell", "1", "100000")
    # $1,000 supports $10,000 of notional at IM 10%: 0.1 BTC
    with boa.reverts("below initial margin"):
        protocol.order(poor, "buy", "0.2", "100000", IOC)
    protocol.order(poor, "buy", "0.099", "100000", IOC)


def test_resting_order__reserves_initial_margin(protocol):
    # IM of a bid: ceil(n x 10%) + its order risk ceil(n x k), k = ceil((2% + 1.625%) / 98%):
    # 0.07 x $99,000 needs $949.37, 0.08 needs $1,084.99
    poor = protocol.actor("poor_trader", deposit="1000")
    with boa.reverts("below initial margin"):
        protocol.order(poor, "buy", "0.08", "99000")
    protocol.order(poor, "buy", "0.07", "99000")


def test_order__too_many_open_orders__reverts(protocol, maker):
    for i in range(20):
        protocol.order(maker, "sell", "0.001", str(100_100 + i), hint=100_100 + i - 1 if i else 0)
    with boa.reverts("too many open orders"):
        protocol.order(maker, "sell", "0.001", "100120", hint=100_119)


def test_order__invalid_index__reverts(protocol, maker, taker):
    protocol.order(maker, "sell", "0.1", "100100")
    protocol.warp(3600)
    with boa.reverts("oracle: stale index"):
        protocol.order(taker, "buy", "0.1", "100100", IOC)


def test_order__below_quorum__reverts(protocol, taker):
    md = protocol.d.markets["BTC-PERP"]
    protocol.warp(3600)
    now = boa.env.evm.patch.timestamp
    md.oracle.report(to_wad(100_000), now, sender=md.reporters[0])
    with boa.reverts("oracle: below quorum"):
        protocol.order(taker, "buy", "0.1", "100100")


def test_order__stranger__reverts(protocol, maker):
    stranger = protocol.actor("stranger")
    with boa.reverts("not owner or operator"):
        protocol.order(maker, "buy", "0.1", "99000", sender=stranger)


def test_order__unknown_market__reverts(protocol, maker):
    with boa.env.prank(maker):
        with boa.reverts("unknown market"):
            protocol.ch.place_order(maker, 0, maker, True, to_wad("0.1"), to_wad(99_000), 0, False, 0)


def test_market__only_clearinghouse_routes_orders(protocol, maker):
    with boa.env.prank(maker):
        with boa.reverts("market: not clearinghouse"):
            protocol.market().place_order(1, maker, True, to_wad("0.1"), to_wad(99_000), 0, False, 0)
        with boa.reverts("market: not clearinghouse"):
            protocol.market().cancel_order(1, 1)


def test_open_interest_cap__reverts_when_exceeded(protocol, maker, taker):
    m = protocol.market()
    m.set_params(protocol.params()._replace(max_open_interest=to_wad("0.5")), sender=protocol.owner)
    protocol.order(maker, "sell", "1", "100000")
    protocol.order(taker, "buy", "0.5", "100000", IOC)
    with boa.reverts("open interest cap"):
        protocol.order(taker, "buy", "0.1", "100000", IOC)


# ---------------------------------------------------------------- positions and open interest


def test_open_interest__longs_equal_shorts(protocol, maker, taker):
    third = protocol.actor("third", deposit="1000000")
    protocol.order(maker, "sell", "0.5", "100000")
    protocol.order(taker, "buy", "0.3", "100000", IOC)
    protocol.order(third, "buy", "0.2", "100000", IOC)
    protocol.order(third, "sell", "0.4", "99000")
    protocol.order(taker, "buy", "0.4", "99000", IOC)  # taker 0.7 long; third 0.2 short
    longs, shorts = protocol.market().open_interest_sides()
    assert longs == shorts == to_wad("0.7")
    assert protocol.market().open_interest() == to_wad("0.7")


def test_position__flip_realizes_pnl_and_reopens(protocol, maker, taker):
    protocol.order(maker, "sell", "0.1", "100000")
    protocol.order(taker, "buy", "0.1", "100000", IOC)
    cash0 = protocol.ch.cash(protocol.account(taker))
    protocol.order(maker, "buy", "0.3", "101000")
    protocol.order(taker, "sell", "0.3", "101000", IOC)
    p = protocol.position(taker)
    assert p.size == -to_wad("0.2") and p.entry_price == to_wad(101_000)
    # +$1,000 x 0.1 realized on the closed part
    assert protocol.ch.cash(protocol.account(taker)) - cash0 == to_wad(100)


def test_mark__one_silly_trade_cannot_move_it_beyond_the_band(protocol, maker, taker):
    protocol.order(maker, "sell", "0.001", "102000")  # the price band's edge
    protocol.order(taker, "buy", "0.001", "102000", IOC)
    s = book(protocol)
    assert s.last_trade == to_wad(102_000)
    # median(bid=index, ask=index, last=102k) = index
    assert s.mark == to_wad(100_000)
    protocol.order(maker, "sell", "0.001", "101900")
    protocol.order(maker, "buy", "0.001", "101800")
    # median(101.8k, 101.9k, 102k) = 101.9k, clamped to index + mark_band (mmr / 4 = 1.625%)
    assert protocol.market().mark_price() == to_wad(101_625)


def _asks(protocol):
    return [(lv.price // WAD, lv.size, lv.orders) for lv in book(protocol).asks]


def test_queue__head_fills_then_cancels_anywhere__stays_linked(protocol, maker, taker):
    """A filled head's successor keeps a stale prev link (a head's is never
    read): cancelling the new head, a middle order or the tail afterwards
    must keep the level's queue, lots and order count exact."""
    other = protocol.actor("other_maker", deposit="1000000")
    a, b, c, d, e = (protocol.order(other, "sell", "0.1", "100100") for _ in range(5))
    protocol.order(taker, "buy", "0.1", "100100", IOC)  # a, the head, fills: b is the head
    assert protocol.lens.order(protocol.market().address, a)[0] == 0
    protocol.cancel(other, c)  # the middle, behind the new head
    assert _asks(protocol) == [(100_100, to_wad("0.3"), 3)]
    protocol.cancel(other, b)  # the head: d follows
    assert _asks(protocol) == [(100_100, to_wad("0.2"), 2)]
    protocol.order(taker, "buy", "0.05", "100100", IOC)  # d, partly
    assert protocol.lens.order(protocol.market().address, d)[3] == to_wad("0.05")
    protocol.cancel(other, e)  # the tail, behind a head that was never rewritten
    assert _asks(protocol) == [(100_100, to_wad("0.05"), 1)]
    protocol.order(maker, "sell", "0.1", "100100")  # appended behind d
    protocol.order(taker, "buy", "0.15", "100100", IOC)
    assert protocol.position(other).size == -to_wad("0.2")  # a and d
    assert protocol.position(maker).size == -to_wad("0.1")
    assert book(protocol).best_ask == 0
    assert protocol.market().open_order_stats(protocol.account(other)) == (0, 0, 0)


def _logged(protocol, name):
    """The market's events `name` logged by the last clearinghouse call."""
    return [ev for ev in protocol.ch.get_logs() if type(ev).__name__ == name]


def test_fill__event_tells_what_is_left__a_filled_order_logs_no_order_removed(protocol, maker, taker):
    first = protocol.order(maker, "sell", "0.3", "100100")
    other = protocol.actor("other_maker", deposit="1000000")
    second = protocol.order(other, "sell", "0.1", "100100")
    protocol.order(taker, "buy", "0.1", "100100", IOC)
    fills = _logged(protocol, "Fill")
    assert [(f.order_id, f.size, f.remaining) for f in fills] == [(first, to_wad("0.1"), to_wad("0.2"))]
    protocol.order(taker, "buy", "0.3", "100100", IOC)
    fills = _logged(protocol, "Fill")
    assert [(f.order_id, f.size, f.remaining) for f in fills] == [
        (first, to_wad("0.2"), 0),
        (second, to_wad("0.1"), 0),
    ]
    assert _logged(protocol, "OrderRemoved") == []
    # a cancel still logs it, with reason 1
    third = protocol.order(maker, "sell", "0.1", "100200")
    protocol.cancel(maker, third)
    (removed,) = _logged(protocol, "OrderRemoved")
    assert (removed.order_id, removed.remaining, removed.reason) == (third, to_wad("0.1"), 1)


def test_fill__tells_the_makers_new_position__a_maker_logs_no_position_changed(protocol, maker, taker):
    """One event per maker fill: the Fill carries the maker's new position, what the fill
    realized and the funding it settled; only the taker logs a PositionChanged."""
    other = protocol.actor("other_maker", deposit="1000000")
    protocol.order(maker, "sell", "0.3", "100100")
    protocol.order(other, "sell", "0.1", "100100")
    protocol.order(taker, "buy", "0.4", "100100", IOC)
    logs = protocol.ch.get_logs()  # titanoboa hands the last call's logs out once
    fills = [e for e in logs if type(e).__name__ == "Fill"]
    assert [(f.maker, f.maker_size, f.maker_open_notional, f.maker_realized_pnl) for f in fills] == [
        (protocol.account(maker), -to_wad("0.3"), -to_wad("30030"), 0),
        (protocol.account(other), -to_wad("0.1"), -to_wad("10010"), 0),
    ]
    changed = [(e.account, e.size) for e in logs if type(e).__name__ == "PositionChanged"]
    assert changed == [(protocol.account(taker), to_wad("0.4"))]

    # the maker buys back 0.1 lower: the fill realizes (100,100 - 100,000) x 0.1 = +10
    protocol.order(maker, "buy", "0.1", "100000")
    protocol.order(taker, "sell", "0.1", "100000", IOC)
    logs = protocol.ch.get_logs()
    (fill,) = [e for e in logs if type(e).__name__ == "Fill"]
    view = protocol.position(maker)
    assert (fill.maker_size, fill.maker_open_notional) == (view.size, view.open_notional)
    assert (fill.maker_size, fill.maker_realized_pnl, fill.maker_funding_paid) == (
        -to_wad("0.2"),
        10 * WAD,
        0,
    )
    assert [e.account for e in logs if type(e).__name__ == "PositionChanged"] == [protocol.account(taker)]


# ---------------------------------------------------------------- what a trade returns to the clearinghouse


def test_trade_result__margin_is_account_margin_after__maker_deltas_unpack_to_the_fills(
    protocol, maker, taker
):
    """PerpMarket.place_order returns the taker's margin in the market after
    the trade (the clearinghouse gates on it instead of calling
    account_margin) and each maker's cash delta packed in one word,
    (amount + 2**207) << 48 | account. Called as the clearinghouse: a rest,
    a fill where the maker closes at a loss and pays its fee, and a fill
    against the other account's rest. The market itself books no cash."""
    m = protocol.market()
    p = list(protocol.params())
    p[2], p[3] = 5 * 10**14, 2 * 10**14  # taker 0.05%, maker 0.02%
    m.set_params(tuple(p), sender=protocol.owner)
    mk, tk = protocol.account(maker), protocol.account(taker)
    # the maker is long 0.2 at 100,100: selling at 99,000 later realizes a loss
    protocol.order(maker, "buy", "0.2", "100100")
    protocol.order(taker, "sell", "0.2", "100100", IOC)
    steps = [
        (mk, maker, False, "0.3", "99000", GTC),  # rests: a new ask level
        (tk, taker, True, "0.5", "99000", GTC),  # takes the 0.3 ask, rests a 0.2 bid
        (mk, maker, False, "0.4", "98000", IOC),  # takes the 0.2 bid; the rest is cancelled
    ]
    fills = 0
    for account, owner, is_buy, size, price, kind in steps:
        cash = [protocol.ch.cash(a) for a in (mk, tk)]
        with boa.env.prank(protocol.ch.address):
            r = m.place_order(account, owner, is_buy, to_wad(size), to_wad(price), kind, False, 0)
        events = [e for e in m.get_logs() if type(e).__name__ == "Fill"]  # before any other call
        assert tuple(r.margin) == tuple(m.account_margin(account))
        assert len(r.maker_deltas) == len(events)
        for word, e in zip(r.maker_deltas, events, strict=True):
            assert word & (2**48 - 1) == e.maker != account
            expected = e.maker_realized_pnl - e.maker_funding_paid - e.maker_fee
            assert (word >> 48) - 2**207 == expected
            fills += 1
        assert [protocol.ch.cash(a) for a in (mk, tk)] == cash
    assert fills == 2
    # the first fill closed the maker's long at a loss, fee on top: a negative delta
    assert m.position(mk).size == -to_wad("0.3")
