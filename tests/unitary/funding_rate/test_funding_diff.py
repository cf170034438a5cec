"""Differential tests: FundingRate and the market's funding against
keeper/funding_model.py (PROTOCOL.md §9), to the wei.

Hypothesis draws parameters within their bounds, an index, order books
(levels and sizes, above, below, around the index, thin or deep), trades
between traders, premium samples at random times, index moves and
settlements after short or long gaps (catch-up: the first interval at its
samples' rate, the others interest only, one cap per call), with the book
and the index moved just before settling (the book must not count). At
every step the chain must give exactly what the model predicts: impact
prices, each sample's premium, each settled rate and number of intervals,
the cumulative funding, each trade's funding paid and each account's
funding owed.

Isolation: titanoboa's pytest plugin runs every hypothesis example inside
its own ``boa.env.anchor()``; the test asserts it starts from the fresh
deployment.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import boa
from hypothesis import event, given
from hypothesis import strategies as st

from keeper import funding_model as fm
from keeper.units import WAD
from tests.unitary.funding_rate.funding_helpers import (
    events,
    funding_of,
    now,
    push_index,
)
from tests.utils.protocol import GTC, IOC, position_changes

TICK = WAD  # $1
LOT = 10**15  # 0.001 BTC
TRADERS = ("market_maker", "arbitrageur", "speculator")
MAX_LEVELS = 6

# ---------------------------------------------------------------- strategies


@st.composite
def funding_params(draw) -> fm.FundingParams:
    interval = draw(st.sampled_from([60, 600, 3600, 8 * 3600]) | st.integers(fm.MIN_INTERVAL, 4 * 3600))
    period = max(
        interval, draw(st.sampled_from([interval, 8 * 3600, 86_400]) | st.integers(0, fm.MAX_PERIOD))
    )
    edge = st.sampled_from
    return fm.FundingParams(
        funding_interval=interval,
        funding_period=period,
        interest_rate=draw(
            edge([0, 10**14, -(10**14), fm.MAX_INTEREST, -fm.MAX_INTEREST])
            | st.integers(-fm.MAX_INTEREST, fm.MAX_INTEREST)
        ),
        clamp=draw(edge([0, 5 * 10**14, fm.MAX_CLAMP]) | st.integers(0, fm.MAX_CLAMP)),
        cap=draw(edge([1, 5 * 10**15, fm.MAX_CAP]) | st.integers(1, fm.MAX_CAP)),
        impact_notional=draw(edge([1_000 * WAD, 100 * WAD]) | st.integers(WAD, 20_000 * WAD)),
        sample_interval=draw(st.integers(1, min(interval, 600))),
        premium_mode=draw(st.sampled_from([fm.IMPACT_BAND, fm.IMPACT_MID])),
    )


indices = st.integers(60_000 * WAD, 150_000 * WAD) | st.sampled_from([100_000 * WAD, 100_000 * WAD + 7])


@st.composite
def books(draw, index: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(bids, asks): [(price, size)] best first, never crossing; the centre
    anywhere within ±4% of the index, either side possibly empty or thin."""
    centre = index * (10_000 + draw(st.integers(-400, 400))) // 10_000 // TICK
    half_spread = draw(st.integers(1, 300))
    sides = []
    for sign in (-1, 1):
        n = draw(st.integers(0, MAX_LEVELS))
        gaps = draw(st.lists(st.integers(1, 80), min_size=n, max_size=n))
        lots = draw(st.lists(st.integers(1, 40), min_size=n, max_size=n))
        tick = centre + sign * half_spread
        levels = []
        for gap, size in zip(gaps, lots, strict=True):
            levels.append((tick * TICK, size * LOT))
            tick += sign * gap
        sides.append(levels)
    return sides[0], sides[1]


# ---------------------------------------------------------------- the run


@dataclass
class Run:
    """The chain and its model side by side."""

    p: object
    model: fm.Funding
    index: int
    traders: list[str]
    makers: list[str]
    book: tuple[list, list] = ([], [])
    oids: list[tuple[str, int]] = field(default_factory=list)
    size: dict[str, int] = field(default_factory=dict)
    snap: dict[str, int] = field(default_factory=dict)

    @property
    def f(self):
        return funding_of(self.p)

    @property
    def m(self):
        return self.p.market()

    def impact(self) -> tuple[int, int]:
        n = self.model.params.impact_notional
        return fm.impact_price(self.book[0], n), fm.impact_price(self.book[1], n)

    def set_book(self, bids, asks) -> None:
        for who, oid in self.oids:
            self.p.cancel(who, oid)
        self.oids = []
        for who, side, levels in ((self.makers[0], "buy", bids), (self.makers[1], "sell", asks)):
            for price, size in levels:
                with boa.env.prank(who):
                    oid = self.p.ch.place_order(
                        who, 0, self.m.address, side == "buy", size, price, GTC, False, 0
                    )
                assert oid != 0
                self.oids.append((who, oid))
        self.book = (bids, asks)
        s = self.p.lens.market_summary(self.m.address, MAX_LEVELS)
        assert [(lv.price, lv.size) for lv in s.bids] == bids
        assert [(lv.price, lv.size) for lv in s.asks] == asks

    def move_to(self, t: int, index: int | None = None) -> None:
        if index is not None:
            self.index = index
        if t > now():
            boa.env.time_travel(seconds=t - now())
        push_index(self.p, self.index)

    def trade(self, buyer: str, seller: str, lots: int, price: int) -> None:
        """On an empty book: the seller rests, the buyer takes it all; both
        settle their funding first, as the model says."""
        assert not self.oids
        cum = self.model.cumulative
        with boa.env.prank(seller):
            oid = self.p.ch.place_order(seller, 0, self.m.address, False, lots * LOT, price, GTC, False, 0)
        with boa.env.prank(buyer):
            self.p.ch.place_order(buyer, 0, self.m.address, True, lots * LOT, price, IOC, False, 0)
        assert self.p.lens.order(self.m.address, oid)[0] == 0
        changed = {e.account: e for e in position_changes(self.p.ch.get_logs())}
        for who, delta in ((buyer, lots * LOT), (seller, -lots * LOT)):
            e = changed[self.p.account(who)]
            assert e.funding_paid == fm.funding_owed(self.size[who], cum, self.snap[who])
            self.size[who] += delta
            self.snap[who] = cum
            assert e.size == self.size[who]

    def check_accounts(self) -> None:
        assert self.m.cumulative_funding() == self.model.cumulative
        for who in self.traders:
            v = self.p.position(who)
            assert v.size == self.size[who]
            assert v.funding_owed == fm.funding_owed(self.size[who], self.model.cumulative, self.snap[who])
            if self.size[who] != 0:
                assert self.m.funding_snapshot(self.p.account(who)) == self.snap[who]

    def sample(self) -> None:
        bid, ask = self.impact()
        assert self.f.impact_prices(self.model.params.impact_notional) == (bid, ask)
        expected = self.model.sample(now(), bid, ask, self.index)
        assert self.f.sample() == expected
        (e,) = events(self.f, "PremiumSampled")
        assert (e.premium, e.impact_bid, e.impact_ask, e.index) == (expected, bid, ask, self.index)
        event("sample", "thin side" if 0 in (bid, ask) else "both sides deep")
        assert self.f.sample_count() == len(self.model.samples)
        assert self.f.premium_sum() == sum(self.model.samples)

    def settle_all_due(self) -> None:
        """Settle until on schedule again (catch-up: 48 intervals a call)."""
        while now() >= self.model.next_funding_time:
            assert self.f.predicted_rate() == self.model.predicted_rate()
            cum = self.model.cumulative
            rate, due = self.model.settle(now(), self.index)
            assert self.f.settle() == rate
            (e,) = events(self.f, "FundingSettled")
            assert (e.rate, e.premium, e.intervals, e.cumulative_funding) == (
                rate,
                self.model.last_premium,
                due,
                self.model.cumulative,
            )
            assert self.f.next_funding_time() == self.model.next_funding_time
            event(
                "settle",
                "catch-up of 48" if due == fm.MAX_CATCHUP else "1 interval" if due == 1 else "2-47 intervals",
            )
            event(
                "rate",
                "capped" if abs(rate) == self.model.params.cap else "negative" if rate < 0 else "positive",
            )
            bound = self.model.params.cap * self.index // WAD
            assert abs(self.model.cumulative - cum) <= bound  # one interval's cap per call
            if due > 1:
                event(
                    "catch-up move",
                    "clamped to one cap" if abs(self.model.cumulative - cum) == bound else "within",
                )
            assert self.f.funding_apr() == fm.apr(rate, self.model.params.funding_interval)
        assert self.f.next_funding_time() > now()


@given(data=st.data())
def test_funding__random_books_params_samples__match_model(protocol, data):
    p = protocol
    assert p.ch.account_count() == 2, "state leaked from another example"
    params = data.draw(funding_params(), label="params")
    f = funding_of(p)
    f.set_params(params.as_tuple(), sender=p.owner)
    # the widest price band (20%): books anywhere within 4% of a moving index stay quotable
    p.market().set_params(tuple(p.params()._replace(price_band=WAD // 5)), sender=p.owner)
    model = fm.Funding(params, f.next_funding_time(), last_sample_time=f.last_sample_time())
    run = Run(
        p,
        model,
        data.draw(indices, label="index"),
        traders=[p.actor(name, deposit=100_000_000) for name in TRADERS],
        makers=[p.actor(f"quoter_{i}", deposit=100_000_000) for i in range(2)],
    )
    run.size = dict.fromkeys(run.traders, 0)
    run.snap = dict.fromkeys(run.traders, 0)
    run.move_to(now())

    for _round in range(data.draw(st.integers(1, 3), label="rounds")):
        # trades on an empty book: positions open, grow, shrink and flip
        run.set_book([], [])
        for _ in range(data.draw(st.integers(0, 2), label="trades")):
            buyer, seller = data.draw(st.permutations(run.traders), label="parties")[:2]
            lots = data.draw(st.integers(1, 200), label="lots")
            price = run.index * (10_000 + data.draw(st.integers(-100, 100))) // 10_000 // TICK * TICK
            run.trade(buyer, seller, lots, price)
        run.set_book(*data.draw(books(run.index), label="book"))

        # samples at random times, the book and the index moving
        for _ in range(data.draw(st.integers(0, 4), label="samples")):
            dt = data.draw(st.integers(params.sample_interval, 2 * params.sample_interval + 30), label="dt")
            start = max(now(), model.last_sample_time + params.sample_interval)
            if start + dt - params.sample_interval >= model.next_funding_time:
                break
            moved = data.draw(st.none() | st.integers(-200, 200), label="index move (bp)")
            new_index = None if moved is None else run.index * (10_000 + moved) // 10_000
            run.move_to(start + dt - params.sample_interval, new_index)
            if data.draw(st.booleans(), label="new book"):
                run.set_book(*data.draw(books(run.index), label="book"))
            run.sample()

        # settlement on time, late, or after an outage (catch-up)
        i = params.funding_interval
        late = data.draw(
            st.sampled_from([0, i - 1, i, 47 * i, 48 * i - 1, 48 * i, 100 * i + 5])
            | st.integers(0, i)
            | st.integers(0, 120 * i),
            label="late",
        )
        settle_index = data.draw(st.none() | st.integers(-200, 200), label="index move at settlement (bp)")
        run.move_to(
            model.next_funding_time + late,
            None if settle_index is None else run.index * (10_000 + settle_index) // 10_000,
        )
        if data.draw(st.booleans(), label="book moved at settlement"):
            run.set_book(*data.draw(books(run.index), label="book"))
        run.settle_all_due()
        run.check_accounts()

        # some accounts settle through the clearinghouse: cash moves by exactly what they owed
        for who in run.traders:
            if data.draw(st.booleans(), label="settle account"):
                owed = fm.funding_owed(run.size[who], model.cumulative, run.snap[who])
                cash = p.ch.cash(p.account(who))
                p.ch.settle_funding(who, 0)
                assert p.ch.cash(p.account(who)) == cash - owed
                if run.size[who] != 0:
                    run.snap[who] = model.cumulative
        run.check_accounts()
