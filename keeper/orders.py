"""Order conventions shared by the scenario runner and the trading CLI (``keeper.people``):
the market order's limit (the price band's edge), the report line for an order's cancelled rest and the
names of ``OrderRemoved`` reasons."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from keeper.model import price_band_ticks
from keeper.units import fmt, from_wad

# the scenario's order types -> Clearinghouse.place_order's order_type
ORDER_TYPES = {"limit": 0, "post_only": 1, "ioc": 2, "market": 2}


def market_limit(index: int, price_band: int, tick: int, is_buy: bool) -> int:
    """The limit of a market order (an IOC): the price band's edge around the index, the
    widest price the market takes (PROTOCOL.md §5; `Lens.market_params(m).price_band`)."""
    lo, hi = price_band_ticks(index, price_band, tick)
    return (hi if is_buy else lo) * tick


def cancelled_rest(
    size: int, filled: int, rested: int, order_type: int, show: Callable[[Decimal], str] | None = None
) -> str | None:
    """The report's line for the part of a (partly) filled order that neither
    filled nor rests, None when there is none: an IOC's rest, or a limit
    order's rest that would cross the book after max_fills maker orders
    (PROTOCOL.md §5). Nothing filled and nothing resting has its own line."""
    left = size - filled - rested
    if not filled or left <= 0:
        return None
    why = (
        "IOC"
        if order_type == ORDER_TYPES["ioc"]
        else "max_fills reached with the book still within the limit: resting, it would cross the book"
    )
    return f"the rest, {(show or fmt)(from_wad(left))}, is cancelled ({why})"


REMOVED_REASONS = {
    1: "cancelled",
    2: "filled",  # no longer logged: a filled order's end is its Fill with remaining 0
    3: "self-trade: own resting order cancelled",
    4: "reduce-only void",
    5: "off-market: beyond the price band when reached",
}
