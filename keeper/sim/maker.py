"""The simulated market maker: quotes both sides around the index and does the basis trade.

Seed 001: "when the market is exuberant, the perp will trade above spot ... a sophisticated
market participant should do the basis trade: short the perp and buy spot, in equal size",
collecting the funding longs pay. Here:

* **quotes**: `levels` price levels a side around a centre, `half_spread_bps` from it and
  `step_bps` apart, each worth `level_usd`; every step the maker cancels its resting orders
  (``cancel_all``) and quotes again around the new index;
* **basis**: the crowd buys, so the maker ends up short; the shorter it is, the higher it moves
  its centre above the index (up to `max_basis_bps` at `inventory_usd` of short), so the perp
  trades rich, the premium is positive and longs pay funding to the short maker. It never
  buys its short back on the perp: it stays short and collects;
* **hedge**: off-chain (tracked here, in Python): after every step it holds spot equal and
  opposite to its perp position, bought or sold at the fair price plus `hedge_fee_bps`. An ADL
  that closes part of its short leaves the hedge too long until the next step (seed 001: "they
  thought they were 100 units short via perps and 100 units long somewhere else via spot");
* **pulling liquidity**: when the index moves fast (the largest move per sqrt-minute over the
  last steps), it widens its spread, quotes fewer levels and much smaller sizes ("wide", then
  "pulled"), and keeps doing so for `cooldown_steps` after: the book's depth collapses, as
  sophisticated participants withdraw liquidity in a crash.

Decisions are pure: :meth:`MarketMaker.quote` takes what the simulation read from the chain and
returns :class:`~keeper.sim.market.Order` / :class:`~keeper.sim.market.CancelAll` intents.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from keeper.sim.market import GTC, WAD, CancelAll, Intent, MarketSpec, MarketView, Order

MODES = ("normal", "wide", "pulled")


@dataclass(frozen=True)
class MakerBook:
    """How the maker quotes one market."""

    level_usd: float
    inventory_usd: float  # short inventory at which the basis is at its maximum
    levels: int = 5
    half_spread_bps: float = 2.0
    step_bps: float = 3.0
    max_basis_bps: float = 12.0


@dataclass(frozen=True)
class PullRule:
    """When and how the maker pulls liquidity: a mode per stress level (move per sqrt-minute)."""

    wide_above: float = 0.0025  # 0.25% per sqrt-minute
    pulled_above: float = 0.008
    cooldown_steps: int = 3
    # mode -> (levels, spread multiplier, level step multiplier, size multiplier)
    shapes: Mapping[str, tuple[int, float, float, float]] = field(
        default_factory=lambda: {
            "normal": (0, 1.0, 1.0, 1.0),  # levels 0: the book's own
            "wide": (3, 6.0, 4.0, 0.3),
            "pulled": (2, 25.0, 20.0, 0.08),
        }
    )


@dataclass
class Hedge:
    """The maker's off-chain spot position in one market."""

    qty: float = 0.0
    cash: float = 0.0  # USD, spent (<0) or received (>0)
    fees: float = 0.0
    traded_usd: float = 0.0

    def value(self, price: float) -> float:
        """Mark-to-market PnL of the hedge (cash + holdings at `price`)."""
        return self.cash + self.qty * price


@dataclass
class MarketMaker:
    """The maker of every market (one account; see the module docstring)."""

    owner: str
    books: Mapping[str, MakerBook]
    pull: PullRule = field(default_factory=PullRule)
    hedge_fee_bps: float = 1.0
    hedges: dict[str, Hedge] = field(default_factory=dict)
    modes: dict[str, str] = field(default_factory=dict)
    calm_for: dict[str, int] = field(default_factory=dict)  # steps since the last stress
    _last_index: dict[str, tuple[int, int]] = field(default_factory=dict)  # symbol -> (t, index)
    _stress: dict[str, list[float]] = field(default_factory=dict)

    # ------------------------------------------------------------ liquidity

    def observe(self, symbol: str, t: int, index: int) -> str:
        """Record the index at time `t`; returns the quoting mode for this step."""
        last = self._last_index.get(symbol)
        self._last_index[symbol] = (t, index)
        moves = self._stress.setdefault(symbol, [])
        if last is not None and t > last[0] and last[1] > 0:
            minutes = (t - last[0]) / 60
            moves.append(abs(math.log(index / last[1])) / math.sqrt(minutes))
            del moves[:-2]
        stress = max(moves, default=0.0)
        raw = (
            "pulled"
            if stress >= self.pull.pulled_above
            else "wide"
            if stress >= self.pull.wide_above
            else "normal"
        )
        previous = self.modes.get(symbol, "normal")
        if MODES.index(raw) >= MODES.index(previous):
            mode, calm = raw, 0
        else:  # calmer: step down one mode after `cooldown_steps` calmer steps
            calm = self.calm_for.get(symbol, 0) + 1
            mode = previous
            if calm >= self.pull.cooldown_steps:
                mode, calm = MODES[MODES.index(previous) - 1], 0
        self.calm_for[symbol] = calm
        self.modes[symbol] = mode
        return mode

    def basis_bps(self, symbol: str, position: int, index: int, mode: str) -> float:
        """How far above the index the maker centres its quotes: the richer, the shorter it is."""
        if mode != "normal":
            return 0.0
        book = self.books[symbol]
        short_usd = -position * index / WAD / WAD
        frac = max(-1.0, min(1.0, short_usd / book.inventory_usd))
        return book.max_basis_bps * frac

    def quote(
        self,
        t: int,
        specs: Mapping[str, MarketSpec],
        views: Mapping[str, MarketView],
        positions: Mapping[str, int],
        resting: Mapping[str, Sequence[int]],
    ) -> list[Intent]:
        """Cancel every resting order and quote again, market by market."""
        intents: list[Intent] = []
        for symbol, book in self.books.items():
            spec, view = specs[symbol], views[symbol]
            mode = self.observe(symbol, t, view.index)
            if resting.get(symbol):
                intents.append(CancelAll(self.owner, symbol, tuple(resting[symbol])))
            intents += self._levels(spec, book, view, positions.get(symbol, 0), mode)
        return intents

    def _levels(
        self, spec: MarketSpec, book: MakerBook, view: MarketView, position: int, mode: str
    ) -> list[Order]:
        levels, spread_x, step_x, size_x = self.pull.shapes[mode]
        levels = levels or book.levels
        index = view.index_f
        centre = index * (1 + self.basis_bps(spec.symbol, position, view.index, mode) / 10_000)
        half, step = book.half_spread_bps * spread_x / 10_000, book.step_bps * step_x / 10_000
        exposure = position * index / WAD
        out: list[Order] = []
        for i in range(levels):
            size = spec.size_for(book.level_usd * size_x, index)
            if size == 0 or spec.notional(size, int(index * WAD)) < spec.min_notional / WAD:
                continue
            bid = spec.price_down(centre * (1 - half - i * step))
            ask = spec.price_up(centre * (1 + half + i * step))
            if exposure > -2 * book.inventory_usd:  # not too short to sell more
                out.append(Order(self.owner, spec.symbol, False, size, ask, GTC))
            if exposure < 2 * book.inventory_usd:
                out.append(Order(self.owner, spec.symbol, True, size, bid, GTC))
        # best first on each side: each new level is linked right after the previous one
        return sorted(out, key=lambda o: (o.is_buy, o.price if not o.is_buy else -o.price))

    # ------------------------------------------------------------ the hedge

    def rehedge(self, symbol: str, position: int, fair: float) -> float:
        """Trade spot to hold -position at the fair price (plus the fee); returns the spot traded."""
        hedge = self.hedges.setdefault(symbol, Hedge())
        target = -position / WAD
        delta = target - hedge.qty
        if delta == 0:
            return 0.0
        fee = abs(delta) * fair * self.hedge_fee_bps / 10_000
        hedge.qty = target
        hedge.cash -= delta * fair + fee
        hedge.fees += fee
        hedge.traded_usd += abs(delta) * fair
        return delta


__all__ = ["MODES", "Hedge", "MakerBook", "MarketMaker", "PullRule"]
