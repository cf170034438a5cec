"""Order conventions shared by the scenario runner and the trading CLI (``keeper.people``):
the market order's slippage bound, the report line for an order's cancelled rest and the
names of ``OrderRemoved`` reasons."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from keeper.units import fmt, from_wad

# the scenario's order types -> Clearinghouse.place_order's order_type
ORDER_TYPES = {"limit": 0, "post_only": 1, "ioc": 2, "market": 2}
# a market order is an IOC whose limit is the mark +- this fraction (on the tick grid)
MARKET_SLIPPAGE = Decimal("0.5")


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
}
