"""The simulated crowd: a few hundred levered traders, long-biased before the crash.

Each trader trades one market with one deposit and a target leverage drawn from a seeded
mixture between 1x and the market's maximum (100x on BTC-PERP): 30% at 1-5x, 30% at 5-20x,
22% at 20-50x, 18% at 50-100x. Before the crash the crowd is long (so the perp trades rich,
the premium is positive and longs pay funding, seed 001); traders enter at random steps of the
calm period by market orders (IOC at the mark +- a slippage bound, at most `max_order_usd`
at once: a large position is built and closed over several steps), now and then take
profit and come back. Styles:

* ``holder``: holds through everything (the high-leverage ones are the cascade's fuel);
* ``panic``: sells in the crash, more likely the deeper the drawdown;
* ``momentum``: flat before the crash, shorts it, takes profit in the recovery;
* ``dip_buyer``: flat before the crash, buys its second half and the recovery;
* ``whale``: one per market, near the maximum leverage with a large deposit, buying late in
  the calm period: the account that gaps through its bankruptcy price when the
  book is thin, beyond what the insurance fund can cover (ADL).

Decisions are pure and seeded per step (:meth:`Crowd.orders`): the same seed, step and chain
state give the same orders.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from keeper.sim.market import IOC, WAD, MarketSpec, MarketView, Order
from keeper.sim.path import Step

STYLES = ("holder", "panic", "momentum", "dip_buyer", "whale")


@dataclass
class Trader:
    index: int
    owner: str
    symbol: str
    deposit: float  # USD
    leverage: float
    side: int  # +1 long, -1 short: the side it takes before the crash
    style: str
    entry_step: int  # first step it may open at

    @property
    def label(self) -> str:
        side = "long" if self.side > 0 else "short"
        name = "whale" if self.style == "whale" else f"trader {self.index}"
        return f"{name} ({self.symbol} {self.leverage:.0f}x {side}, {self.style})"


@dataclass(frozen=True)
class TraderState:
    """What the crowd reads of a trader each step (WAD integers)."""

    equity: int
    im: int
    size: int  # position in its market


@dataclass(frozen=True)
class CrowdMix:
    """The crowd's composition (fractions) and habits."""

    markets: Mapping[str, float] = field(
        default_factory=lambda: {"BTC-PERP": 0.5, "ETH-PERP": 0.3, "SOL-PERP": 0.2}
    )
    long_share: float = 0.78
    deposit_range: tuple[float, float] = (1_000.0, 50_000.0)  # log-uniform
    # (cumulative probability, low, high) of the target leverage
    leverage_bands: tuple[tuple[float, float, float], ...] = (
        (0.30, 1.0, 5.0),
        (0.60, 5.0, 20.0),
        (0.82, 20.0, 50.0),
        (1.00, 50.0, 100.0),
    )
    styles: tuple[tuple[float, str], ...] = (
        (0.45, "holder"),
        (0.80, "panic"),
        (0.90, "momentum"),
        (1.00, "dip_buyer"),
    )
    whales: Mapping[str, float] = field(
        default_factory=lambda: {"BTC-PERP": 150_000.0, "ETH-PERP": 80_000.0, "SOL-PERP": 40_000.0}
    )
    # the largest order (notional) a trader sends at once: a larger position is built, or closed, over steps
    max_order_usd: Mapping[str, float] = field(
        default_factory=lambda: {"BTC-PERP": 1_500_000.0, "ETH-PERP": 600_000.0, "SOL-PERP": 250_000.0}
    )
    take_profit: float = 0.03  # per step, a holder in position closes with this probability
    top_up: float = 0.08  # per step, a trader below its target notional adds to it
    slippage: float = 0.01  # market orders: limit at the mark +- this
    crash_slippage: float = 0.03


def _pick(bands: Sequence[tuple[float, ...]], u: float) -> tuple[float, ...]:
    return next(b for b in bands if u <= b[0])


def make_crowd(
    n: int,
    owners: Sequence[str],
    specs: Mapping[str, MarketSpec],
    calm_steps: int,
    seed: int,
    mix: CrowdMix | None = None,
) -> list[Trader]:
    """`n` traders and one whale per market (owners: `n` + whales addresses, in order)."""
    mix = mix or CrowdMix()
    rng = random.Random(f"vyperp-sim:{seed}:crowd")
    symbols = [s for s in mix.markets if s in specs]
    weights = [mix.markets[s] for s in symbols]
    lo, hi = mix.deposit_range
    out: list[Trader] = []
    for i in range(n):
        symbol = rng.choices(symbols, weights)[0]
        _, low, high = _pick(mix.leverage_bands, rng.random())
        leverage = min(rng.uniform(low, high), 0.95 * specs[symbol].max_leverage)
        deposit = math.exp(rng.uniform(math.log(lo), math.log(hi)))
        side = 1 if rng.random() < mix.long_share else -1
        style = str(_pick(mix.styles, rng.random())[1])
        entry = rng.randrange(0, max(1, int(calm_steps * 0.85)))
        if style == "panic" and side < 0:
            style = "holder"
        side = {"momentum": -1, "dip_buyer": 1}.get(style, side)  # the side they take in the crash
        out.append(
            Trader(i + 1, owners[i], symbol, round(deposit, 2), round(leverage, 1), side, style, entry)
        )
    for k, (symbol, deposit) in enumerate(mix.whales.items()):
        if symbol not in specs:
            continue
        entry = int(calm_steps * rng.uniform(0.7, 0.85))
        leverage = round(0.9 * specs[symbol].max_leverage, 1)
        out.append(Trader(n + k + 1, owners[n + k], symbol, deposit, leverage, 1, "whale", entry))
    return out


@dataclass
class Crowd:
    traders: list[Trader]
    specs: Mapping[str, MarketSpec]
    seed: int
    mix: CrowdMix = field(default_factory=CrowdMix)
    peak: dict[str, int] = field(default_factory=dict)  # highest index seen, per market
    _next_entry: dict[int, int] = field(default_factory=dict)

    def orders(
        self,
        step: Step,
        crash_progress: float,
        views: Mapping[str, MarketView],
        states: Mapping[str, TraderState],
    ) -> list[Order]:
        """This step's orders. `crash_progress`: 0 before the crash, in (0, 1] through it, > 1 after."""
        rng = random.Random(f"vyperp-sim:{self.seed}:crowd:{step.index}")
        for symbol, v in views.items():
            self.peak[symbol] = max(self.peak.get(symbol, 0), v.index)
        out: list[Order] = []
        for tr in self.traders:
            u = (rng.random(), rng.random(), rng.random())  # always three draws: streams stay aligned
            st = states.get(tr.owner)
            if st is None or st.equity <= 0:
                continue
            order = self._decide(tr, st, step, crash_progress, views[tr.symbol], u)
            if order is not None:
                out.append(order)
        return out

    # ------------------------------------------------------------ one trader

    def _decide(
        self, tr: Trader, st: TraderState, step: Step, crash: float, view: MarketView, u: tuple[float, ...]
    ) -> Order | None:
        mix = self.mix
        flat = st.size == 0
        side = 1 if st.size > 0 else -1 if st.size < 0 else 0
        entry = self._next_entry.get(tr.index, tr.entry_step)
        if step.phase == "calm":
            if tr.style in ("momentum", "dip_buyer"):
                return None
            if flat:
                return self._open(tr, st, view, tr.side, 1.0) if step.index >= entry else None
            if tr.style == "whale":
                return self._open(tr, st, view, tr.side, 1.0)  # keeps buying to its target
            if u[0] < mix.take_profit:
                self._next_entry[tr.index] = step.index + 2 + int(u[1] * 12)
                return self._close(tr, st, view)
            if u[1] < mix.top_up:
                return self._open(tr, st, view, tr.side, 1.0)
            return None
        if step.phase == "crash":
            drawdown = 1 - view.index / max(self.peak.get(tr.symbol, view.index), 1)
            if tr.style == "panic" and side > 0 and u[0] < 0.04 + 4 * drawdown:
                return self._close(tr, st, view, crash=True)
            if tr.style == "momentum" and flat and u[0] < 0.15:
                return self._open(tr, st, view, -1, 0.6, crash=True)
            if tr.style == "dip_buyer" and flat and crash > 0.5 and u[0] < 0.12:
                return self._open(tr, st, view, 1, 0.5, crash=True)
            return None
        # recovery
        if tr.style == "momentum" and side < 0 and u[0] < 0.3:
            return self._close(tr, st, view, crash=True)
        if tr.style in ("dip_buyer", "panic") and flat and u[0] < 0.15:
            return self._open(tr, st, view, 1, 0.5)
        return None

    def _open(
        self, tr: Trader, st: TraderState, view: MarketView, side: int, scale: float, *, crash: bool = False
    ) -> Order | None:
        """Buy (side +1) or sell toward `scale` x the target notional, within initial margin."""
        spec = self.specs[tr.symbol]
        price = view.mark_f
        target = st.equity / WAD * tr.leverage * scale
        held = abs(st.size) * price / WAD
        want = target - held if (st.size >= 0) == (side > 0) else target
        room = (0.97 * st.equity - st.im) / spec.imr  # USD of notional the initial margin still allows
        want = min(want, 0.98 * room, self.mix.max_order_usd.get(tr.symbol, want))
        if want < 0.02 * target or want <= 0:
            return None
        size = spec.size_for(want, price)
        if size == 0 or spec.notional(size, view.mark) < spec.min_notional / WAD:
            return None
        slip = self.mix.crash_slippage if crash else self.mix.slippage
        limit = spec.price_up(price * (1 + slip)) if side > 0 else spec.price_down(price * (1 - slip))
        limit = spec.within_band(limit, view.index, side > 0)
        return Order(tr.owner, tr.symbol, side > 0, size, limit, IOC)

    def _close(self, tr: Trader, st: TraderState, view: MarketView, *, crash: bool = False) -> Order | None:
        spec = self.specs[tr.symbol]
        if st.size == 0:
            return None
        slip = self.mix.crash_slippage if crash else self.mix.slippage
        buy = st.size < 0
        price = view.mark_f
        limit = spec.within_band(
            spec.price_up(price * (1 + slip)) if buy else spec.price_down(price * (1 - slip)), view.index, buy
        )
        cap = self.mix.max_order_usd.get(tr.symbol)
        size = abs(st.size) if cap is None else min(abs(st.size), spec.size_for(cap, price))
        return Order(tr.owner, tr.symbol, buy, size, limit, IOC, reduce_only=True)


__all__ = ["STYLES", "Crowd", "CrowdMix", "Trader", "TraderState", "make_crowd"]
