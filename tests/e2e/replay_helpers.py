"""Shared checks of the attack replays (tests/e2e): the conservation of
collateral (PROTOCOL.md §14.1, the formula of the liquidation state machine's
check_accounting), the book and open-interest aggregates (§14.3, §14.5), and
a few set-ups."""

from __future__ import annotations

from decimal import Decimal

import boa

from keeper.deploy import MarketConfig, to_wad
from keeper.units import WAD
from tests.fuzz.liquidation_helpers import MarketState, attempt
from tests.utils.protocol import GTC, IOC

__all__ = ["WAD", "attempt", "assert_solvent", "demo_btc_market", "open_position", "snapshot", "to_wad"]


def demo_btc_market() -> MarketConfig:
    """BTC-PERP at $100,000 with the demo's risk (1% initial, 0.5% maintenance margin: up to
    100x), a $1 tick and a 0.001 lot, the other parameters at their defaults."""
    return MarketConfig(
        "BTC-PERP",
        Decimal("100000"),
        tick_size=Decimal("1"),
        lot_size=Decimal("0.001"),
        initial_margin=Decimal("0.01"),
        maintenance_margin=Decimal("0.005"),
    )


def assert_solvent(p) -> None:
    """Nothing was lost: the clearinghouse's collateral (x PRECISION) plus the
    recognized bad debt equals every account's cash plus the unrealized PnL of
    every position (Σ size x mark - open notional: Σ size = 0 per market, so
    the marks cancel) less the unsettled funding, exactly (in 1e-18 wei, the
    market's funding dust included); the insurance fund holds what it books;
    no flat account is left below zero without its bad debt booked."""
    ch = p.ch
    cash = dict(ch._storage.cash.get())
    vault = p.token.balanceOf(ch.address) * ch.PRECISION()
    bad = ch._storage.bad_debt.get()
    unsettled = on = dust = 0
    exposed: set[int] = set()
    for symbol in p.d.markets:
        state = MarketState.read(p.market(symbol))
        state.check_aggregates()
        state.check_funding_epochs()
        unsettled += state.unsettled_exact()
        on += sum(o for _, o in state.positions.values())
        dust += state.dust
        exposed |= set(state.positions) | {o.account for o in state.orders}
    assert (sum(cash.values()) - on - vault - bad) * WAD == unsettled - dust, "collateral not conserved"
    fund = p.insurance
    assert p.token.balanceOf(fund.address) == fund._storage.total_assets_stored.get(), "fund assets drifted"
    stranded = [a for a, c in cash.items() if c < 0 and a not in exposed]
    assert not stranded, f"flat accounts below zero, bad debt not booked: {stranded}"


def snapshot(p) -> tuple:
    """Everything a rejected call must leave unchanged: cash, bad debt, vault
    and the storage of every market."""
    markets = tuple(
        (s.positions, s.epochs, s.snapshots, s.orders, s.levels, s.book, s.open_interest, s.cumulative)
        for s in (MarketState.read(p.market(sym)) for sym in p.d.markets)
    )
    return dict(p.ch._storage.cash.get()), p.ch.bad_debt(), p.token.balanceOf(p.ch.address), markets


def open_position(p, who: str, counterparty: str, side: str, size, price, symbol: str = "BTC-PERP") -> None:
    """`who` takes `size` on `side` at `price` from a resting order of `counterparty`."""
    other = "sell" if side == "buy" else "buy"
    p.order(counterparty, other, size, price, GTC, symbol=symbol)
    p.order(who, side, size, price, IOC, symbol=symbol)


def report(p, prices, symbol: str = "BTC-PERP", timestamp: int | None = None) -> None:
    """Reporter i of the market reports prices[i] (None: no report)."""
    md = p.d.markets[symbol]
    now = boa.env.evm.patch.timestamp if timestamp is None else timestamp
    for r, price in zip(md.reporters, prices, strict=False):
        if price is not None:
            md.oracle.report(to_wad(price), now, sender=r)


def withdraw(p, who: str, amount, sub: int = 0):
    """Withdraw `amount` (human units) as `who`: (ok, result or revert reason)."""
    return attempt(lambda: p.ch.withdraw(sub, p.units(amount), sender=who))


def units_balance(p, who: str) -> int:
    return p.token.balanceOf(who)


def ioc(p, who, side, size, price, **kw):
    return attempt(lambda: p.order(who, side, size, price, IOC, **kw))
