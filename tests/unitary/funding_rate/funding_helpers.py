"""Helpers for the FundingRate tests (PROTOCOL.md §8).

BTC-PERP in the `protocol` fixture: index $100,000, tick $1, lot 0.001 BTC
($100 a lot at the index), zero fees; its FundingRate has the
keeper/deploy.py defaults: interval 1h, period 8h, interest 0.01% per 8h,
clamp 0.05%, cap 0.5% per interval, impact notional $1,000, samples at most
every 60 s, impact_band premium. The oracle's max_age is 60 s: every helper
that moves time re-pushes the index.
"""

from __future__ import annotations

from dataclasses import replace

import boa

from keeper import funding_model as fm
from keeper.units import WAD
from tests.utils.protocol import GTC, IOC

BTC = "BTC-PERP"
INDEX = 100_000 * WAD
DEFAULTS = fm.FundingParams()


def funding_of(p, symbol: str = BTC):
    """The market's FundingRate contract."""
    return p.d.markets[symbol].funding


def now() -> int:
    return boa.env.evm.patch.timestamp


def push_index(p, price_wad: int, symbol: str = BTC) -> None:
    """Every reporter reports `price_wad` (exact WAD) now; a move the index
    guard holds back is confirmed by the owner (PROTOCOL.md §4)."""
    md = p.d.markets[symbol]
    t = now()
    for r in md.reporters:
        md.oracle.report(price_wad, t, sender=r)
    valid, _median, fresh = md.oracle.index_status()
    if not valid and fresh >= md.oracle.quorum():
        md.oracle.reset_reference(sender=p.owner)


def warp_to(p, t: int, index_wad: int | None = None, symbol: str = BTC) -> None:
    """Move time to `t` (not backwards) and re-push the index (the current
    one unless `index_wad`), so the oracle stays fresh."""
    price = index_wad if index_wad is not None else p.oracle(symbol).index_status()[1]
    assert t >= now()
    if t > now():
        boa.env.time_travel(seconds=t - now())
    push_index(p, price, symbol)


def warp(p, seconds: int, index_wad: int | None = None) -> None:
    warp_to(p, now() + seconds, index_wad)


def set_params(p, symbol: str = BTC, **changes) -> fm.FundingParams:
    """Set the funding parameters: the defaults with `changes` (owner)."""
    params = replace(DEFAULTS, **changes)
    funding_of(p, symbol).set_params(params.as_tuple(), sender=p.owner)
    return params


def rest(p, who: str, side: str, price, size) -> int:
    """A resting GTC order; it must not cross (asserted)."""
    oid = p.order(who, side, size, price, GTC)
    assert oid != 0
    return oid


def trade(p, buyer: str, seller: str, size, price) -> None:
    """The seller rests an ask, the buyer takes all of it (IOC)."""
    oid = rest(p, seller, "sell", price, size)
    p.order(buyer, "buy", size, price, IOC)
    assert p.lens.order(p.market().address, oid)[0] == 0, "the ask was not filled"


def events(contract, name: str) -> list:
    """Decoded `name` events of the contract's last call."""
    return [e for e in contract.get_logs() if type(e).__name__ == name]


def book_levels(p, depth: int = 50) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(bids, asks) as [(price, size)] best first, from market_summary."""
    s = p.lens.market_summary(p.market().address, depth)
    return [(lv.price, lv.size) for lv in s.bids], [(lv.price, lv.size) for lv in s.asks]


def quotes(p, maker: str, bid, ask, size="0.05") -> None:
    """A two-sided quote by `maker`: `size` at `bid` and at `ask` (dollars);
    None leaves that side empty."""
    if bid is not None:
        rest(p, maker, "buy", bid, size)
    if ask is not None:
        rest(p, maker, "sell", ask, size)
