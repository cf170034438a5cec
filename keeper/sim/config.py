"""What a simulation run is (:mod:`keeper.sim.engine`): its markets, as deployed, with their price
paths and the maker's book, the crowd's size and the schedule (:func:`default_config`, the
demo), and the error that stops a run."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple

from keeper.deploy import MarketConfig
from keeper.sim.maker import MakerBook
from keeper.sim.path import MarketPath, Schedule


class SimError(RuntimeError):
    """The simulation cannot go on (no suitable node, a keeper stalled, a setup transaction failed)."""


# ---------------------------------------------------------------- configuration


class SimMarket(NamedTuple):
    """One market: as deployed, how its price moves, how the maker quotes it."""

    config: MarketConfig
    path: MarketPath
    book: MakerBook


@dataclass(frozen=True)
class SimConfig:
    seed: int
    traders: int
    schedule: Schedule
    markets: tuple[SimMarket, ...]
    insurance_fund_usd: float = 250_000.0
    maker_deposit_usd: float = 20_000_000.0
    venue_noise: float = 0.0003  # oracle sources around the fair price
    max_blocks_per_step: int = 40  # keeper blocks per step at most (a stuck keeper cannot hang a step)
    settle_timeout_s: float = 60.0  # wall seconds a keeper may take to react to a block
    quick: bool = False

    @property
    def symbols(self) -> list[str]:
        return [m.config.symbol for m in self.markets]


def _market(
    symbol: str, price: str, tick: str, lot: str, imr: str, mmr: str, vol: float, beta: float, drift: float,
    level_usd: float, inventory_usd: float,
) -> SimMarket:  # fmt: skip
    config = MarketConfig(
        symbol,
        Decimal(price),
        tick_size=Decimal(tick),
        lot_size=Decimal(lot),
        initial_margin=Decimal(imr),  # 1% on BTC: up to 100x, as the crowd wants
        maintenance_margin=Decimal(mmr),
        bankrupt_band=Decimal("0.02"),  # a bankrupt account closes within mark -+ 2%
    )
    return SimMarket(
        config, MarketPath(symbol, float(price), vol, beta, drift), MakerBook(level_usd, inventory_usd)
    )


def default_config(seed: int = 7, quick: bool = False) -> SimConfig:
    """The demo: BTC, ETH and SOL perps at about their prices of 10 October 2025, 200 traders,
    8 hours of calm in 10-minute steps, the 40-minute crash minute by minute, an hour of
    recovery. `quick` (tests): 60 traders, 90 minutes of calm in 15-minute steps, the crash in
    4-minute steps, 20 minutes of recovery."""
    markets = (
        _market("BTC-PERP", "120000", "1", "0.0001", "0.01", "0.005", 0.45, 1.0, 0.012, 1_000_000, 8_000_000),
        _market("ETH-PERP", "4300", "0.01", "0.001", "0.02", "0.01", 0.60, 1.4, 0.015, 400_000, 3_000_000),
        _market("SOL-PERP", "220", "0.001", "0.01", "0.04", "0.02", 0.80, 2.0, 0.02, 150_000, 1_200_000),
    )
    if quick:
        return SimConfig(seed, 60, Schedule(90 * 60, 900, 2400, 240, 1200, 600), markets, quick=True)
    return SimConfig(seed, 200, Schedule(8 * 3600, 600, 2400, 60, 3600, 600), markets)


__all__ = ["SimConfig", "SimError", "SimMarket", "default_config"]
