"""Differential tests: PerpMarket and Clearinghouse against keeper.model.

Hypothesis drives random orders through the clearinghouse; a test-side
``Ledger`` predicts every outcome with ``keeper.model`` (positions, realized
PnL, fees, cash, mark, margin, the initial-margin gate) and a small
price-time matcher (which orders fill is book logic, not margin math), then
compares the chain with it to the wei.

Isolation: each hypothesis example runs in its own ``boa.env.anchor()``
(titanoboa's pytest plugin also opens one per example); ``Ledger`` asserts
the state it starts from is fresh.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass
from decimal import Decimal
from fractions import Fraction

import boa
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from keeper import model
from keeper.model import WAD, Fill, Position
from tests.utils.protocol import GTC, IOC, POST_ONLY

BTC, ETH = "BTC-PERP", "ETH-PERP"
ROLES = ("market_maker", "arbitrageur", "speculator")
#: (taker_fee, maker_fee) WAD rates, including odd ones to exercise the ceiling
# rates are whole multiples of 1e-9 (PerpMarket.set_params); the odd ones exercise the roundings
FEES = [(0, 0), (5 * 10**14, 2 * 10**14), (10**16, 10**16), (333_333 * 10**9, 7 * 10**9), (10**16 - 10**9, 0)]
SHARES = [0, WAD // 2, WAD, 333_333_333_333_333_333]


@dataclass
class Resting:
    oid: int
    account: int
    is_buy: bool
    size: int
    price: int
    reduce_only: bool


def _examples(quick: int) -> int:
    """`quick` examples under the quick profile (25 per test), scaled down
    the same way under the others (deep: 2000)."""
    return max(1, settings.default.max_examples * quick // 25)


def _event(what: str) -> None:
    """hypothesis.event, also callable from plain tests (coverage statistics:
    pytest --hypothesis-show-statistics)."""
    if currently_in_test_context():
        event(what)


def _kind(before: Position, after: Position) -> str:
    """Which branch of apply_trade a trade took (for hypothesis statistics)."""
    if before.size == 0 or (
        after.size != 0 and (after.size > 0) == (before.size > 0) and abs(after.size) > abs(before.size)
    ):
        return "open or increase"
    if after.size == 0:
        return "close"
    return "reduce" if (after.size > 0) == (before.size > 0) else "flip"


class Ledger:
    """What the chain should hold, predicted with keeper.model."""

    def __init__(self, protocol, traders: dict[str, int]):
        self.p = protocol
        ch = protocol.ch
        # a fresh deployment: only the insurance and treasury accounts exist
        assert ch.account_count() == 2, "state leaked from another example"
        self.precision = ch.PRECISION()
        self.insurance = ch.insurance_account()
        self.treasury = ch.treasury_account()
        self.share = ch.insurance_fee_share()
        self.addr: dict[int, str] = {}
        self.cash = {self.insurance: ch.cash(self.insurance), self.treasury: ch.cash(self.treasury)}
        self.deposits = 0
        for role, dollars in traders.items():
            addr = protocol.actor(role, deposit=dollars)
            acct = protocol.account(addr)
            self.addr[acct] = addr
            self.cash[acct] = dollars * WAD
            self.deposits += dollars * WAD
        self.traders = list(self.addr)
        self.syms = [BTC, ETH]
        self.pos = {(a, s): model.FLAT for a in self.traders for s in self.syms}
        self.realized = dict.fromkeys(self.traders, 0)
        self.fees = 0
        self.book: dict[str, list[Resting]] = {s: [] for s in self.syms}
        self.last = dict.fromkeys(self.syms, 0)
        self.next_oid = {s: protocol.lens.next_order_id(protocol.market(s).address) for s in self.syms}
        self.index = {s: protocol.market(s).index_price() for s in self.syms}
        self.params = {s: protocol.params(s) for s in self.syms}
        # no funding is due anywhere: cash deltas are realized PnL minus fees
        assert all(protocol.market(s).cumulative_funding() == 0 for s in self.syms)
        self.lot = {s: protocol.market(s).LOT_SIZE() for s in self.syms}
        self.tick = {s: protocol.market(s).TICK_SIZE() for s in self.syms}

    # ------------------------------------------------------------ admin

    def set_params(self, sym: str, **changes) -> None:
        params = self.params[sym]._replace(**changes)
        self.p.market(sym).set_params(tuple(params), sender=self.p.owner)
        self.params[sym] = params

    def set_insurance_fee_share(self, share: int) -> None:
        self.p.ch.set_insurance_fee_share(share, sender=self.p.owner)
        self.share = share

    def set_index(self, sym: str, cents: int) -> None:
        self.p.set_index(Decimal(cents) / 100, sym)
        self.index[sym] = cents * WAD // 100

    # ------------------------------------------------------------ predictions

    def best(self, sym: str, book: list[Resting] | None = None) -> tuple[int, int]:
        book = self.book[sym] if book is None else book
        bids = [o.price for o in book if o.is_buy]
        asks = [o.price for o in book if not o.is_buy]
        return max(bids, default=0), min(asks, default=0)

    def mark(self, sym: str, book=None, last=None) -> int:
        bid, ask = self.best(sym, book)
        last = self.last[sym] if last is None else last
        return model.mark_price(self.index[sym], bid, ask, last, self.params[sym].mark_band)

    def order_stats(self, acct: int, sym: str, book=None) -> tuple[int, int, int]:
        book = self.book[sym] if book is None else book
        mine = [o for o in book if o.account == acct]
        bids = sum(model.order_notional(o.size, o.price) for o in mine if o.is_buy)
        asks = sum(model.order_notional(o.size, o.price) for o in mine if not o.is_buy)
        return len(mine), bids, asks

    def margin(self, acct: int, cash=None, pos=None, books=None, lasts=None) -> model.CrossMargin:
        """Cross-margin of `acct`, optionally in a hypothetical state."""
        cash = self.cash if cash is None else cash
        pos = self.pos if pos is None else pos
        books = books or {}
        lasts = lasts or {}
        per_market = []
        for s in self.syms:
            book = books.get(s, self.book[s])
            _, bids, asks = self.order_stats(acct, s, book)
            p = self.params[s]
            per_market.append(
                model.account_margin(
                    pos[acct, s],
                    self.mark(s, book, lasts.get(s)),
                    p.imr,
                    p.mmr,
                    model.worst_order_notional(bids, asks),
                    risk=model.order_risk(bids, asks, p.price_band, p.mark_band, p.maker_fee),
                )
            )
        return model.cross_margin(cash[acct], per_market)

    def _revert_reason(self, acct, sym, is_buy, size, price, kind, reduce_only) -> str | None:
        """Reverts of place_order that come before any matching."""
        size0 = self.pos[acct, sym].size
        if reduce_only and not (size0 != 0 and (size0 > 0) != is_buy and size <= abs(size0)):
            return "reduce-only would increase position"
        if (
            not (reduce_only and kind == IOC)
            and model.order_notional(size, price) < self.params[sym].min_order_notional
        ):
            return "order below min notional"
        lo, hi = self.band(sym)
        if not lo <= price // self.tick[sym] <= hi:
            return "price beyond the price band"
        bid, ask = self.best(sym)
        best = ask if is_buy else bid
        if kind == POST_ONLY and best != 0 and (price >= best if is_buy else price <= best):
            return "post-only would cross"
        return None

    def band(self, sym: str) -> tuple[int, int]:
        """The ticks an order may be priced at now (PROTOCOL.md §5)."""
        return model.price_band_ticks(self.index[sym], self.params[sym].price_band, self.tick[sym])

    def _match(self, sym, acct, is_buy, size, price):
        """Price-time matching as PerpMarket.place_order walks the book: at
        most max_fills steps, each a fill, a self-trade cancel or a void of a
        reduce-only maker order that can no longer reduce."""
        book = [Resting(**vars(o)) for o in self.book[sym]]
        sizes = {a: self.pos[a, sym].size for a in self.traders}
        lot = self.lot[sym]
        fills: list[Fill] = []
        remaining = size
        for _ in range(self.params[sym].max_fills):
            if remaining == 0:
                break
            opposite = [o for o in book if o.is_buy != is_buy]
            if not opposite:
                break
            best = min(o.price for o in opposite) if is_buy else max(o.price for o in opposite)
            if (is_buy and best > price) or (not is_buy and best < price):
                break
            head = next(o for o in opposite if o.price == best)
            lo, hi = self.band(sym)
            if not lo <= best // self.tick[sym] <= hi:
                _event("off-market maker order cancelled")
                book.remove(head)
                continue
            if head.account == acct:
                _event("self-trade: resting order cancelled")
                book.remove(head)
                continue
            take = min(remaining, head.size)
            if head.reduce_only:
                msize = sizes[head.account]
                reducible = (
                    abs(msize) // lot * lot
                    if (head.is_buy and msize < 0) or (not head.is_buy and msize > 0)
                    else 0
                )
                if reducible == 0:
                    _event("reduce-only maker order voided")
                    book.remove(head)
                    continue
                take = min(take, reducible)
            fills.append(Fill(head.account, take, best))
            sizes[head.account] += -take if is_buy else take
            head.size -= take
            if head.size == 0:
                book.remove(head)
            remaining -= take
        return fills, book, remaining

    # ------------------------------------------------------------ actions

    def order(
        self,
        acct: int,
        sym: str,
        is_buy: bool,
        size: int,
        price: int,
        kind: int = GTC,
        reduce_only: bool = False,
    ):
        """Place an order on chain and in the ledger; returns the resting
        order id (0 when nothing rests), or None when it reverted as
        predicted."""
        market = self.p.market(sym)

        def send():
            with boa.env.prank(self.addr[acct]):
                return self.p.ch.place_order(
                    self.addr[acct], 0, market.address, is_buy, size, price, kind, reduce_only, 0
                )

        reason = self._revert_reason(acct, sym, is_buy, size, price, kind, reduce_only)
        if reason is not None:
            _event(f"reverts: {reason}")
            with boa.reverts(reason):
                send()
            return None
        fills, book, remaining = self._match(sym, acct, is_buy, size, price)
        p = self.params[sym]
        st_ = model.settle_taker_order(
            {a: self.pos[a, sym] for a in self.traders}, acct, is_buy, fills, p.taker_fee, p.maker_fee
        )
        size0 = self.pos[acct, sym]
        size1 = st_.positions[acct]
        oid = 0
        opposite = [o.price for o in book if o.is_buy != is_buy]
        # a walk cut short by max_fills leaves the rest crossing: it is cancelled, not rested
        still_crosses = bool(opposite) and (price >= min(opposite) if is_buy else price <= max(opposite))
        if still_crosses and remaining > 0 and kind == GTC:
            _event("max_fills reached, the crossing rest cancelled")
        if remaining > 0 and kind != IOC and not still_crosses:
            if reduce_only and not (
                size1.size != 0 and (size1.size > 0) != is_buy and remaining <= abs(size1.size)
            ):
                with boa.reverts("reduce-only would increase position"):
                    send()
                return None
            if sum(o.account == acct for o in book) >= p.max_open_orders:
                with boa.reverts("too many open orders"):
                    send()
                return None
            oid = self.next_oid[sym]
            book.append(Resting(oid, acct, is_buy, remaining, price, reduce_only))
        cash = dict(self.cash)
        for a, d in st_.cash.items():
            cash[a] += d
        to_insurance, to_treasury = model.split_fees(st_.fees, self.share)
        cash[self.insurance] += to_insurance
        cash[self.treasury] += to_treasury
        pos = dict(self.pos)
        for a, new in st_.positions.items():
            pos[a, sym] = new
        last = fills[-1].price if fills else self.last[sym]
        risk_increased = model.grew(size0, size1) or oid != 0
        if risk_increased:
            m = self.margin(acct, cash, pos, {sym: book}, {sym: last})
            if not model.meets_initial_margin(m.equity, m.im):
                _event("reverts: below initial margin")
                with boa.reverts("below initial margin"):
                    send()
                return None
        assert send() == oid
        for a in st_.positions:
            _event(f"trade: {_kind(self.pos[a, sym], pos[a, sym])}")
        self.cash, self.pos, self.book[sym], self.last[sym] = cash, pos, book, last
        if oid:
            self.next_oid[sym] += 1
        for a, r in st_.realized.items():
            self.realized[a] += r
        self.fees += st_.fees
        return oid

    def cancel(self, order: Resting, sym: str) -> None:
        with boa.env.prank(self.addr[order.account]):
            self.p.ch.cancel_order(self.addr[order.account], 0, self.p.market(sym).address, order.oid)
        self.book[sym].remove(order)

    def cancel_all(self, sym: str) -> None:
        for o in list(self.book[sym]):
            self.cancel(o, sym)

    # ------------------------------------------------------------ checks

    def check_market(self, sym: str) -> None:
        m = self.p.market(sym)
        bid, ask = self.best(sym)
        assert m.index_price() == self.index[sym]
        assert (m.best_bid(), m.best_ask(), self.p.lens.last_trade_price(m.address)) == (
            bid,
            ask,
            self.last[sym],
        )
        mark = self.mark(sym)
        assert m.mark_price() == mark
        half = self.index[sym] * self.params[sym].mark_band // WAD
        _event(
            "mark: clamped to the band"
            if abs(mark - self.index[sym]) == half
            else "mark: median inside the band"
        )
        longs = sum(self.pos[a, sym].size for a in self.traders if self.pos[a, sym].size > 0)
        shorts = -sum(self.pos[a, sym].size for a in self.traders if self.pos[a, sym].size < 0)
        assert m.open_interest_sides() == (longs, shorts)
        for a in self.traders:
            pos = self.pos[a, sym]
            count, bids, asks = self.order_stats(a, sym)
            assert m.open_order_stats(a) == (count, bids, asks)
            if pos.size == 0:
                expected = (0, 0, 0, 0, 0, 0, count)
            else:
                expected = (
                    pos.size,
                    pos.open_notional,
                    pos.entry_price,
                    mark,
                    model.unrealized_pnl(pos, mark),
                    0,
                    count,
                )
            assert tuple(m.position(a)) == expected, (sym, a)

    def check_cash(self) -> None:
        for a, c in self.cash.items():
            assert self.p.ch.cash(a) == c, a

    def check_margins(self) -> None:
        health = {h.account: h.liquidatable for h in self.p.ch.health(1, self.p.ch.account_count())}
        for a in self.traders:
            m = self.margin(a)
            assert self.p.ch.margin(a) == astuple(m), a
            assert health[a] == model.liquidatable(m.equity, m.mm)
            if m.equity < m.mm:
                _event("liquidatable account")

    def check(self, syms=None) -> None:
        for s in syms or self.syms:
            self.check_market(s)
        self.check_cash()
        self.check_margins()


# ================================================================ model-only properties

signed_sizes = st.integers(-(10**24), 10**24)
nonzero_sizes = st.one_of(st.integers(-(10**24), -1), st.integers(1, 10**24))


@given(x=st.integers(-(10**40), 10**40), y=st.one_of(st.integers(-(10**20), -1), st.integers(1, 10**20)))
def test_model__trunc_div__truncates_toward_zero(x, y):
    q = model.trunc_div(x, y)
    assert q == int(Fraction(x, y))  # int() of a Fraction truncates toward zero
    assert abs(q * y) <= abs(x)


@given(
    size=signed_sizes,
    on=st.integers(0, 10**30),
    delta=nonzero_sizes,
    value=st.integers(0, 10**30),
)
def test_model__apply_trade__basis_identity_and_reduce_rounding(size, on, delta, value):
    pos = Position(size, (on if size > 0 else -on) if size else 0)
    new, realized = model.apply_trade(pos, delta, value)
    signed = value if delta > 0 else -value
    # cash realized minus basis change is exactly the value paid (§5)
    assert realized - (new.open_notional - pos.open_notional) == -signed
    assert new.size == size + delta
    if size != 0 and (size > 0) != (delta > 0) and abs(delta) <= abs(size):
        # reduce/close: realized rounded against the account (§2)
        assert realized <= -signed - Fraction(pos.open_notional * abs(delta), abs(size))


@given(
    index=st.integers(1, 10**24),
    bid=st.integers(0, 10**24),
    ask=st.integers(0, 10**24),
    last=st.integers(0, 10**24),
    band=st.integers(WAD // 1000, WAD // 2),
)
def test_model__mark_price__median_clamped_to_band(index, bid, ask, last, band):
    mark = model.mark_price(index, bid, ask, last, band)
    half = index * band // WAD
    assert index - half <= mark <= index + half
    values = [v or index for v in (bid, ask, last)]
    if index - half <= sorted(values)[1] <= index + half:
        assert mark == sorted(values)[1]


# ================================================================ chain vs model

price_near = st.integers(99_000, 101_000)
price_silly = st.integers(70_000, 130_000)
maker_order = st.tuples(st.integers(1, 2), st.integers(1, 400), st.integers(0, 5))
trade_step = st.tuples(
    st.integers(0, 2),  # taker
    st.booleans(),  # taker buys
    st.one_of(price_near, price_silly),  # base price, dollars (silly ones: beyond the price band, refused)
    st.lists(maker_order, min_size=1, max_size=3),  # (maker offset from taker, lots, ticks away)
    st.one_of(st.integers(1, 1_200), st.none()),  # taker lots; None: exactly the taker's position
    st.one_of(st.none(), st.integers(97_000_00, 103_000_00)),  # new index, cents
)


def _dollars(x: int) -> int:
    return x * WAD


def run_trade_steps(ledger: Ledger, steps, close_price: int) -> None:
    """Each step: cancel what rests, maybe move the index, 1-3 makers rest
    orders on one side, the taker sweeps them with an IOC (reduces, closes
    and flips happen). Then everybody closes (reduce-only on both sides)."""
    lot = ledger.lot[BTC]
    traders = ledger.traders
    for taker_i, buys, base, makers, lots, index in steps:
        ledger.cancel_all(BTC)
        if index is not None:
            ledger.set_index(BTC, index)
        taker = traders[taker_i]
        size0 = ledger.pos[taker, BTC].size
        if lots is None:
            buys, lots = (size0 < 0, abs(size0) // lot) if size0 else (buys, 1)
        worst = base
        for k, mlots, away in makers:
            price = base + away if buys else base - away
            worst = max(worst, price) if buys else min(worst, price)
            ledger.order(traders[(taker_i + k) % 3], BTC, not buys, mlots * lot, _dollars(price))
        ledger.order(taker, BTC, buys, lots * lot, _dollars(worst), IOC)
        ledger.check([BTC])
    # close everything: the largest short bids reduce-only, the largest long sells into it
    # (at the starting index, so that close_price is inside the price band)
    ledger.cancel_all(BTC)
    ledger.set_index(BTC, 100_000_00)
    for _ in range(len(traders)):
        longs = [a for a in traders if ledger.pos[a, BTC].size > 0]
        shorts = [a for a in traders if ledger.pos[a, BTC].size < 0]
        if not longs:
            break
        long_ = max(longs, key=lambda a: ledger.pos[a, BTC].size)
        short = min(shorts, key=lambda a: ledger.pos[a, BTC].size)
        size = min(ledger.pos[long_, BTC].size, -ledger.pos[short, BTC].size)
        assert ledger.order(short, BTC, True, size, _dollars(close_price), GTC, reduce_only=True) is not None
        assert ledger.order(long_, BTC, False, size, _dollars(close_price), IOC, reduce_only=True) == 0
    assert all(ledger.pos[a, BTC] == model.FLAT for a in traders)
    ledger.check([BTC])


def assert_conserved(ledger: Ledger) -> None:
    """§14.1-2 once everything is closed: realized PnL is zero-sum, fees sit
    in the insurance and treasury accounts, cash is backed by tokens."""
    assert sum(ledger.realized.values()) == 0
    fee_cash = ledger.cash[ledger.insurance] + ledger.cash[ledger.treasury]
    assert fee_cash == ledger.fees
    assert sum(ledger.cash[a] for a in ledger.traders) + fee_cash == ledger.deposits
    p = ledger.p
    assert p.total_cash() == p.token.balanceOf(p.ch.address) * ledger.precision == ledger.deposits


@settings(max_examples=_examples(20))
@given(
    steps=st.lists(trade_step, min_size=1, max_size=5),
    fees=st.sampled_from(FEES),
    share=st.sampled_from(SHARES),
    close_price=price_near,
)
def test_trades__positions_cash_and_conservation__match_model(protocol, steps, fees, share, close_price):
    with boa.env.anchor():
        ledger = Ledger(protocol, dict.fromkeys(ROLES, 1_000_000))
        ledger.set_params(BTC, taker_fee=fees[0], maker_fee=fees[1])
        ledger.set_insurance_fee_share(share)
        run_trade_steps(ledger, steps, close_price)
        assert_conserved(ledger)


@settings(max_examples=_examples(6))
@given(
    steps=st.lists(trade_step, min_size=1, max_size=3),
    fees=st.sampled_from(FEES),
    close_price=price_near,
)
def test_conservation__any_decimals__cash_equals_token_balance(
    protocol_any_decimals, steps, fees, close_price
):
    with boa.env.anchor():
        ledger = Ledger(protocol_any_decimals, dict.fromkeys(ROLES, 1_000_000))
        ledger.set_params(BTC, taker_fee=fees[0], maker_fee=fees[1])
        run_trade_steps(ledger, steps, close_price)
        assert_conserved(ledger)


@given(
    last=st.one_of(st.none(), st.integers(80_000, 120_000)),
    bid=st.one_of(st.none(), st.integers(80_000, 110_000)),
    ask_gap=st.one_of(st.none(), st.integers(1, 10_000)),
    # 0.01% .. mmr / 4 (1.625% on the test market)
    band=st.sampled_from([WAD // 10_000, WAD // 1000, WAD // 100, 1625 * WAD // 100_000]),
    index=st.integers(50_000_00, 200_000_00),
)
def test_mark_price__random_book_and_silly_trades__matches_model_within_band(
    protocol, last, bid, ask_gap, band, index
):
    with boa.env.anchor():
        ledger = Ledger(protocol, {"market_maker": 1_000_000, "attacker": 1_000_000})
        maker, attacker = ledger.traders
        lot = ledger.lot[BTC]
        # the widest price band (20%): silly prices within it, then the index moves anywhere
        ledger.set_params(BTC, mark_band=band, price_band=WAD // 5)
        if last is not None:
            # one lot traded at a silly price moves the last trade, not the mark beyond the band
            assert ledger.order(maker, BTC, False, lot, _dollars(last)) != 0
            assert ledger.order(attacker, BTC, True, lot, _dollars(last), IOC) == 0
        ask = None
        if ask_gap is not None:
            ask = (bid or 100_000) + ask_gap
            assert ledger.order(maker, BTC, False, lot, _dollars(ask)) != 0
        if bid is not None:
            assert ledger.order(maker, BTC, True, lot, _dollars(bid)) != 0
        ledger.set_index(BTC, index)
        ledger.check([BTC])
        idx = ledger.index[BTC]
        half = idx * band // WAD
        assert idx - half <= protocol.market(BTC).mark_price() <= idx + half


order_op = st.tuples(  # (kind, who, market, buys, lots, ticks from index, order type)
    st.just("order"),
    st.integers(0, 2),
    st.sampled_from([BTC, BTC, ETH]),
    st.booleans(),
    st.integers(1, 300),
    st.integers(-30, 30),
    st.sampled_from([GTC, GTC, IOC, POST_ONLY]),
)
trade_op = st.tuples(  # (kind, maker, taker offset, market, taker buys, maker lots, ticks, taker lots)
    st.just("trade"),
    st.integers(0, 2),
    st.integers(1, 2),
    st.sampled_from([BTC, BTC, ETH]),
    st.booleans(),
    st.integers(1, 300),
    st.integers(-30, 30),
    st.integers(1, 400),
)
reduce_op = st.tuples(  # (kind, who, market, percent of the position, ticks, order type), reduce-only
    st.just("reduce"),
    st.integers(0, 2),
    st.sampled_from([BTC, ETH]),
    st.integers(1, 120),
    st.integers(-30, 30),
    st.sampled_from([GTC, IOC]),
)
cancel_op = st.tuples(st.just("cancel"), st.integers(0, 2), st.sampled_from([BTC, ETH]), st.integers(0, 50))
index_op = st.tuples(st.just("index"), st.sampled_from([BTC, BTC, ETH]), st.integers(-500, 500))  # bps
margin_op = st.one_of(order_op, order_op, trade_op, trade_op, trade_op, reduce_op, cancel_op, index_op)


@settings(max_examples=_examples(20))
@given(
    deposits=st.tuples(*[st.sampled_from([1_000, 5_000, 50_000])] * 3),
    ops=st.lists(margin_op, min_size=4, max_size=16),
    fees=st.sampled_from(FEES),
    crash=st.tuples(*[st.sampled_from([-1_500, -700, 0, 700, 1_500])] * 2),  # bps
)
def test_margin__positions_orders_and_index_moves__match_model(protocol, deposits, ops, fees, crash):
    with boa.env.anchor():
        ledger = Ledger(protocol, dict(zip(ROLES, deposits, strict=True)))
        for s in ledger.syms:
            ledger.set_params(s, taker_fee=fees[0], maker_fee=fees[1])
        initial = {s: ledger.index[s] for s in ledger.syms}
        for op in ops:
            kind, *args = op
            if kind == "index":
                sym, bps = args
                cents = initial[sym] * (10_000 + bps) // 10_000 // (WAD // 100)
                ledger.set_index(sym, cents)
            elif kind == "cancel":
                who, sym, k = args
                mine = [o for o in ledger.book[sym] if o.account == ledger.traders[who]]
                if mine:
                    ledger.cancel(mine[k % len(mine)], sym)
            elif kind == "trade":
                # the maker rests, the taker crosses at the same limit
                maker_i, k, sym, buys, lots, ticks, taker_lots = args
                tick, lot = ledger.tick[sym], ledger.lot[sym]
                price = (ledger.index[sym] // tick + ticks) * tick
                ledger.order(ledger.traders[maker_i], sym, not buys, lots * lot, price)
                ledger.order(ledger.traders[(maker_i + k) % 3], sym, buys, taker_lots * lot, price, IOC)
            else:
                who, sym = ledger.traders[args[0]], args[1]
                tick, lot = ledger.tick[sym], ledger.lot[sym]
                ref = ledger.index[sym] // tick
                if kind == "order":
                    buys, lots, ticks, otype = args[2:]
                else:
                    pct, ticks, otype = args[2:]
                    size = ledger.pos[who, sym].size
                    buys = size < 0
                    lots = max(1, abs(size) * pct // 100 // lot)
                ledger.order(
                    who, sym, buys, lots * lot, (ref + ticks) * tick, otype, reduce_only=kind == "reduce"
                )
            ledger.check([args[2] if kind == "trade" else args[1]] if kind != "index" else None)
        # a final large move of both indexes: some accounts become liquidatable
        for sym, bps in zip(ledger.syms, crash, strict=True):
            ledger.set_index(sym, initial[sym] * (10_000 + bps) // 10_000 // (WAD // 100))
        ledger.check()
        # withdrawable is exact: one token unit more reverts, exactly it passes
        for a in ledger.traders:
            m = ledger.margin(a)
            units = m.withdrawable // ledger.precision
            wad = (units + 1) * ledger.precision
            reason = "below initial margin" if m.equity - wad < m.im else "unrealized profit not withdrawable"
            _event(f"withdraw: {reason}")
            with boa.env.prank(ledger.addr[a]), boa.reverts(reason):
                protocol.ch.withdraw(0, units + 1)
            if units:
                with boa.env.prank(ledger.addr[a]):
                    protocol.ch.withdraw(0, units)
                ledger.cash[a] -= units * ledger.precision
        ledger.check()


def test_margin__leveraged_long_after_a_drop__liquidatable_and_profit_not_withdrawable(protocol):
    """Worked example of §7: a 9.5x long becomes liquidatable after a 5%
    drop; after a 15% drop its counterparty's unrealized profit exceeds its
    IM, counts in equity, and still cannot be withdrawn."""
    ledger = Ledger(protocol, {"speculator": 1_000, "market_maker": 100_000})
    speculator, maker = ledger.traders
    size = 95 * ledger.lot[BTC]  # 0.095 BTC = $9,500: IM $950 <= $1,000
    ledger.order(maker, BTC, False, size, _dollars(100_000))
    ledger.order(speculator, BTC, True, size, _dollars(100_000), IOC)
    ledger.set_index(BTC, 96_000_00)  # equity $620 >= MM $592.80
    ledger.check()
    assert not protocol.ch.health(speculator, 1)[0].liquidatable
    ledger.set_index(BTC, 95_000_00)  # equity $525 < MM $586.625
    ledger.check()
    m = ledger.margin(speculator)
    assert (m.equity, m.mm) == (_dollars(525), 586_625 * WAD // 1_000)
    assert protocol.ch.health(speculator, 1)[0].liquidatable
    ledger.set_index(BTC, 85_000_00)  # the short's profit: $1,425 > IM $807.50
    ledger.check()
    m = ledger.margin(maker)
    assert (m.equity, m.im, m.withdrawable) == (_dollars(101_425), 8_075 * WAD // 10, _dollars(100_000))
    with boa.env.prank(ledger.addr[maker]), boa.reverts("unrealized profit not withdrawable"):
        protocol.ch.withdraw(0, protocol.units(100_000) + 1)
    with boa.env.prank(ledger.addr[maker]):
        protocol.ch.withdraw(0, protocol.units(100_000))
    ledger.cash[maker] -= _dollars(100_000)
    ledger.check()


def test_max_fills__a_limit_order_still_crossing__model_and_contract_cancel_its_rest(protocol):
    """A limit buy through more asks than max_fills: the model walks max_fills
    of them and predicts that nothing rests (the rest would cross the book);
    Ledger.order checks the contract returns the same order id 0, and the
    positions, cash and book the same as the model."""
    ledger = Ledger(protocol, {"market_maker": 1_000_000, "speculator": 1_000_000})
    maker, speculator = ledger.traders
    lot, n = ledger.lot[BTC], ledger.params[BTC].max_fills
    for i in range(n + 2):
        ledger.order(maker, BTC, False, lot, _dollars(100_100 + i))
    assert ledger.order(speculator, BTC, True, (n + 4) * lot, _dollars(100_200)) == 0
    assert ledger.pos[speculator, BTC].size == n * lot
    assert [o.price for o in ledger.book[BTC]] == [_dollars(100_100 + n), _dollars(100_101 + n)]
    ledger.check()


# ================================================================ rounding direction (PROTOCOL.md §2)


@pytest.mark.parametrize("flip_to_long", [False, True], ids=["long_to_short", "short_to_long"])
def test_apply_trade__flip_at_vwap__realized_pnl_rounds_against_the_account(protocol, flip_to_long):
    """A flip splits the taker's summed fill value pro rata between the closed
    and the opened part. PROTOCOL.md §2: rounding goes against the account, so
    the realized PnL must not exceed its exact value, in either direction.

    The contract (and the model, which mirrors it) truncates the closed part
    toward zero: long -> short rounds against the account, short -> long in
    its favour (by < 1e-18 quote). Rounding toward +inf (``_ceil_div_signed``,
    as the reduce branch does) would be against the account both ways."""
    ledger = Ledger(protocol, {"market_maker": 1_000_000, "speculator": 1_000_000})
    maker, speculator = ledger.traders
    lot = ledger.lot[BTC]
    # open 1 lot at 100,000: short when flipping to long, long when flipping to short
    ledger.order(maker, BTC, flip_to_long, lot, _dollars(100_000))
    ledger.order(speculator, BTC, not flip_to_long, lot, _dollars(100_000), IOC)
    on = ledger.pos[speculator, BTC].open_notional
    # flip through 3 lots at a volume-weighted price: 1 @ 100,000 and 2 @ 100,001 (99,999)
    worse = 100_000 + (1 if flip_to_long else -1)
    ledger.order(maker, BTC, not flip_to_long, lot, _dollars(100_000))
    ledger.order(maker, BTC, not flip_to_long, 2 * lot, _dollars(worse))
    cash0 = protocol.ch.cash(speculator)
    ledger.order(speculator, BTC, flip_to_long, 3 * lot, _dollars(worse), IOC)
    ledger.check([BTC])  # the chain agrees with the model to the wei ...
    realized = protocol.ch.cash(speculator) - cash0  # zero fees: cash delta = realized PnL
    value = model.fill_value(lot, _dollars(100_000)) + model.fill_value(2 * lot, _dollars(worse))
    signed = value if flip_to_long else -value
    exact = -Fraction(signed * lot, 3 * lot) - on
    # ... and must not credit more than the exact realized PnL
    assert realized <= exact, f"realized {realized} > exact {exact} ({float(realized - exact):+.3f} wei)"
