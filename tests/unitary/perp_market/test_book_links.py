"""The order book's storage links against a plain price-time model.

PerpMarket writes only the links it reads later ("book links" in the
contract): a tail order's next link, the best level's prev link and an
emptied level's word stay stale. Hypothesis drives random placements (with
and without hints), cancels of any order (head, middle, tail, a level's last,
the best level's or a deeper one's), IOC takers and limit-order sweeps
through the clearinghouse (what max_fills leaves of a sweep rests only when
the side is used up);
after every step the book views equal the model's book and
`MarketState.check_book_links` walks the storage as the contract does.

BTC-PERP in the fixture: tick $1, lot 0.001 BTC, at most 20 open orders per
account and 8 fills per taker order.
"""

from __future__ import annotations

import boa
from hypothesis import event, given, settings
from hypothesis import strategies as st

from keeper.deploy import to_wad
from tests.fuzz.liquidation_helpers import MarketState
from tests.unitary.perp_market.test_model_diff import _examples
from tests.utils.protocol import IOC, POST_ONLY

LOT = 10**15  # 0.001 BTC
MAKERS = ("maker_a", "maker_b", "maker_c")
MAX_OPEN = 20
MAX_FILLS = 8

place = st.tuples(
    st.just("place"),
    st.integers(0, len(MAKERS) - 1),
    st.booleans(),  # is_buy
    st.integers(1, 4),  # ticks away from the index, on the maker's side: levels share orders
    st.integers(1, 3),  # lots x 0.01 BTC
    st.sampled_from(["none", "find_hint"]),
)
# an order by its rank in time (-1: the newest, often a level's tail)
cancel = st.tuples(st.just("cancel"), st.one_of(st.just(-1), st.integers(0, 10**6)))
take = st.tuples(st.just("take"), st.booleans(), st.integers(1, 30))
# a limit order (GTC) through the whole side: what max_fills leaves of it rests
# only if the side is used up (it would cross the book otherwise)
sweep = st.tuples(st.just("sweep"), st.booleans(), st.integers(1, 150))
# n placements of 0.01 BTC by one maker on one side, over the 4 prices: a side
# deeper than max_fills orders
ladder = st.tuples(st.just("ladder"), st.integers(0, len(MAKERS) - 1), st.booleans(), st.integers(5, 12))


def _expand(steps: list[tuple]) -> list[tuple]:
    """Ladders as their placements."""
    out: list[tuple] = []
    for step in steps:
        if step[0] == "ladder":
            _, who, is_buy, n = step
            out += [("place", who, is_buy, 1 + k % 4, 1, "none") for k in range(n)]
        else:
            out.append(step)
    return out


def _model_book(resting: dict[int, tuple[str, bool, int, int]], is_buy: bool) -> list[tuple[int, int, int]]:
    """(price, size, orders) per level of one side, best first."""
    levels: dict[int, list[int]] = {}
    for _maker, buy, price, lots in resting.values():
        if buy == is_buy:
            levels.setdefault(price, []).append(lots)
    return [(to_wad(p), sum(lv) * LOT, len(lv)) for p, lv in sorted(levels.items(), reverse=is_buy)]


def _cancel_kind(resting: dict[int, tuple[str, bool, int, int]], oid: int) -> str:
    """Which links the cancel of `oid` rewrites (hypothesis statistics)."""
    _, is_buy, price, _ = resting[oid]
    queue = sorted(o for o, r in resting.items() if (r[1], r[2]) == (is_buy, price))
    prices = sorted({r[2] for r in resting.values() if r[1] == is_buy}, reverse=is_buy)
    if len(queue) > 1:
        return "cancel: head" if oid == queue[0] else "cancel: tail" if oid == queue[-1] else "cancel: middle"
    if price == prices[0]:
        return "cancel: the best level's last order"
    return "cancel: a deeper level's last order" + (", with a worse level" if price != prices[-1] else "")


def _check(p, resting) -> None:
    s = p.lens.market_summary(p.market().address, 50)
    assert [(lv.price, lv.size, lv.orders) for lv in s.bids] == _model_book(resting, True)
    assert [(lv.price, lv.size, lv.orders) for lv in s.asks] == _model_book(resting, False)
    state = MarketState.read(p.market())
    state.check_aggregates()  # check_book_links included


@settings(max_examples=_examples(40))
@given(
    steps=st.lists(
        st.one_of(place, place, place, cancel, cancel, take, sweep, ladder), min_size=20, max_size=60
    )
)
def test_book_links__random_places_cancels_and_takers__match_the_model(protocol, steps):
    with boa.env.anchor():
        p = protocol
        m = p.market()
        makers = {name: p.actor(name, deposit="1000000") for name in MAKERS}
        taker = p.actor("taker", deposit="1000000")
        resting: dict[int, tuple[str, bool, int, int]] = {}  # oid -> (maker, is_buy, price, lots), time order
        for step in _expand(steps):
            if step[0] == "place":
                _, who, is_buy, away, lots10, hint_mode = step
                name = MAKERS[who]
                if sum(1 for r in resting.values() if r[0] == name) >= MAX_OPEN:
                    continue
                price = 100_000 - away if is_buy else 100_000 + away
                hint = p.lens.find_hint(m.address, is_buy, to_wad(price)) if hint_mode == "find_hint" else 0
                oid = p.order(
                    makers[name],
                    "buy" if is_buy else "sell",
                    str(lots10 / 100),
                    str(price),
                    POST_ONLY,
                    hint=hint,
                )
                resting[oid] = (name, is_buy, price, lots10 * 10)
            elif step[0] == "cancel":
                if not resting:
                    continue
                oid = sorted(resting)[step[1] % len(resting)] if step[1] >= 0 else max(resting)
                event(_cancel_kind(resting, oid))
                p.cancel(makers[resting[oid][0]], oid)
                del resting[oid]
            else:
                kind, taker_buys, lots = step
                # the model: price then time priority, at most MAX_FILLS maker orders touched
                queue = sorted(
                    (oid for oid, r in resting.items() if r[1] != taker_buys),
                    key=lambda oid: (resting[oid][2] if taker_buys else -resting[oid][2], oid),
                )
                if not queue:
                    continue
                left = lots
                for oid in queue[:MAX_FILLS]:
                    name, buy, price, olots = resting[oid]
                    got = min(left, olots)
                    left -= got
                    if got == olots:
                        del resting[oid]
                    else:
                        resting[oid] = (name, buy, price, olots - got)
                    if left == 0:
                        break
                # the limit is beyond every level: whatever of the side is left crosses it
                limit = 100_010 if taker_buys else 99_990
                side = "buy" if taker_buys else "sell"
                if kind == "take":
                    p.order(taker, side, str(lots / 1000), str(limit), IOC)
                else:
                    oid = p.order(taker, side, str(lots / 1000), str(limit))
                    crossing = any(r[1] != taker_buys for r in resting.values())
                    event(
                        "sweep: "
                        + (
                            "filled"
                            if left == 0
                            else "rest cancelled, still crossing"
                            if crossing
                            else "rest rests"
                        )
                    )
                    if left == 0 or crossing:
                        assert oid == 0
                    else:
                        # it rests at its limit, then goes (makers' post-only orders would cross it)
                        assert p.lens.order(m.address, oid)[1:4] == (taker_buys, to_wad(limit), left * LOT)
                        resting[oid] = ("taker", taker_buys, limit, left)
                        _check(p, resting)
                        p.cancel(taker, oid)
                        del resting[oid]
            _check(p, resting)


def test_hint__an_emptied_level__is_a_bad_hint(protocol):
    """An emptied level's word stays in storage (dead): as a hint it is refused."""
    maker = protocol.actor("maker", deposit="1000000")
    protocol.order(maker, "sell", "0.1", "100100")
    gone = protocol.order(maker, "sell", "0.1", "100200")
    protocol.order(maker, "sell", "0.1", "100400")
    protocol.cancel(maker, gone)  # 100,200 empties: not the best, unlinked between its neighbours
    assert protocol.market()._storage._levels.get()[100_200 * 2] != 0  # the dead word stays
    with boa.reverts("book: bad hint"):
        protocol.order(maker, "sell", "0.1", "100300", hint=100_200)
    protocol.order(maker, "sell", "0.1", "100300", hint=100_100)
    protocol.order(maker, "sell", "0.1", "100200", hint=100_100)  # the dead price reopens
    assert [
        lv.price // 10**18 for lv in protocol.lens.market_summary(protocol.market().address, 10).asks
    ] == [
        100_100,
        100_200,
        100_300,
        100_400,
    ]
    MarketState.read(protocol.market()).check_aggregates()


def _asks(p) -> list[tuple[int, int]]:
    return [(lv.price // 10**18, lv.orders) for lv in p.lens.market_summary(p.market().address, 10).asks]


def test_links__a_deeper_level_empties__its_neighbours_relink(protocol):
    maker = protocol.actor("maker", deposit="1000000")
    protocol.order(maker, "sell", "0.1", "100100")
    middle = protocol.order(maker, "sell", "0.1", "100200")
    worst = protocol.order(maker, "sell", "0.1", "100300")
    protocol.cancel(maker, middle)  # 100,300's prev link now points at 100,100
    MarketState.read(protocol.market()).check_aggregates()
    protocol.cancel(maker, worst)  # unlinked through that prev link
    assert _asks(protocol) == [(100_100, 1)]
    MarketState.read(protocol.market()).check_aggregates()


def test_links__middle_then_tail_cancels__queue_stays_linked(protocol):
    maker = protocol.actor("maker", deposit="1000000")
    a, b, c, d = (protocol.order(maker, "sell", "0.1", "100100") for _ in range(4))
    protocol.cancel(maker, b)  # the middle: a and c link to each other
    MarketState.read(protocol.market()).check_aggregates()
    protocol.cancel(maker, c)  # again the middle, through c's rewritten prev link
    protocol.cancel(maker, d)  # the tail: a's next link stays stale, a is the tail
    assert _asks(protocol) == [(100_100, 1)]
    e = protocol.order(maker, "sell", "0.1", "100100")  # appended: a's next link rewritten
    MarketState.read(protocol.market()).check_aggregates()
    taker = protocol.actor("taker", deposit="1000000")
    protocol.order(taker, "buy", "0.2", "100100", IOC)
    assert (
        protocol.lens.order(protocol.market().address, a)[0] == 0
        and protocol.lens.order(protocol.market().address, e)[0] == 0
    )
    assert _asks(protocol) == []
