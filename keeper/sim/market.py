"""What the simulated participants see of a market and what they ask of it: pure data and the
rounding of prices and sizes onto the market's grid (PROTOCOL.md §5). No chain I/O here: the
simulation reads the chain into :class:`MarketView`s and turns :class:`Order`s and
:class:`CancelAll`s into transactions."""

from __future__ import annotations

from dataclasses import dataclass

from keeper.model import WAD, price_band_ticks

GTC, POST_ONLY, IOC = 0, 1, 2


@dataclass(frozen=True)
class MarketSpec:
    """A market's static facts, as deployed (WAD integers)."""

    symbol: str
    address: str
    tick: int
    lot: int
    imr: int
    mmr: int
    min_notional: int
    price_band: int = 0  # WAD; orders within index x (1 +- price_band), 0: unbounded

    def within_band(self, limit: int, index: int, buy: bool) -> int:
        """A market order's limit pulled inside the price band around `index` (PROTOCOL.md §5),
        a tick short of its edge: the index may move a little before the order lands."""
        if self.price_band == 0:
            return limit
        lo, hi = price_band_ticks(index, self.price_band, self.tick)
        if buy:
            return min(limit, max(hi - 1, 1) * self.tick)
        return max(limit, (lo + 1) * self.tick)

    @property
    def max_leverage(self) -> float:
        return WAD / self.imr

    def price_down(self, price: float) -> int:
        """`price` (quote per base) as WAD, rounded down onto the tick grid, at least one tick."""
        return max(int(price * WAD) // self.tick * self.tick, self.tick)

    def price_up(self, price: float) -> int:
        return max(-(-int(price * WAD) // self.tick) * self.tick, self.tick)

    def size_for(self, notional: float, price: float) -> int:
        """Base size (WAD, whole lots, rounded down) worth `notional` at `price`."""
        if notional <= 0 or price <= 0:
            return 0
        return int(notional / price * WAD) // self.lot * self.lot

    def notional(self, size: int, price: int) -> float:
        return abs(size) * price / WAD / WAD


@dataclass(frozen=True)
class MarketView:
    """One market at one moment of the simulation (WAD integers; `fair` is the off-chain spot)."""

    symbol: str
    index: int
    mark: int
    best_bid: int
    best_ask: int
    fair: float

    @property
    def index_f(self) -> float:
        return self.index / WAD

    @property
    def mark_f(self) -> float:
        return self.mark / WAD


@dataclass(frozen=True)
class Order:
    """An order to place through ``Clearinghouse.place_order`` (subaccount 0, hint 0)."""

    owner: str
    symbol: str
    is_buy: bool
    size: int
    price: int
    kind: int = IOC
    reduce_only: bool = False


@dataclass(frozen=True)
class CancelAll:
    """``Clearinghouse.cancel_all`` of the owner's listed resting orders in a market."""

    owner: str
    symbol: str
    order_ids: tuple[int, ...]


Intent = Order | CancelAll

__all__ = ["GTC", "IOC", "POST_ONLY", "WAD", "CancelAll", "Intent", "MarketSpec", "MarketView", "Order"]
