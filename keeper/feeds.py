"""Price feeds for the oracle reporter: pure, seeded, reproducible (no chain I/O).

A feed advances one step at a time (`step()` -> fair price per market) and
gives per-venue prices around the fair price (`venue_prices`), one per oracle
source, so the on-chain median sees several slightly different reports.
"""

from __future__ import annotations

import csv
import math
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol, runtime_checkable


class FeedExhausted(Exception):
    """A replay feed has no more rows."""


@runtime_checkable
class PriceFeed(Protocol):
    def step(self) -> dict[str, float]:
        """Advance one step; the fair price of each market."""
        ...

    def venue_prices(self, market: str, n_sources: int) -> list[float]:
        """`n_sources` venue prices around the current fair price of `market`."""
        ...

    @property
    def exhausted(self) -> bool: ...


class _VenueNoise:
    """Independent multiplicative Gaussian noise per venue, one RNG per market (reproducible)."""

    def __init__(self, seed: int, venue_noise: float) -> None:
        self.seed = seed
        self.venue_noise = venue_noise
        self._rngs: dict[str, random.Random] = {}

    def apply(self, market: str, fair: float, n_sources: int) -> list[float]:
        if n_sources < 0:
            raise ValueError("n_sources must be >= 0")
        if self.venue_noise == 0:
            return [fair] * n_sources
        rng = self._rngs.setdefault(market, random.Random(f"{self.seed}:{market}:venues"))
        # exp(noise * z) ~ 1 + noise * z for small noise, and never <= 0
        return [fair * math.exp(self.venue_noise * rng.gauss(0.0, 1.0)) for _ in range(n_sources)]


class RandomWalkFeed:
    """Geometric random walk per market, `volatility` (fraction) per step.

    Each market has its own RNG seeded from (seed, market), and venue noise has
    separate RNGs: a market's path depends only on the seed and its step count,
    not on other markets nor on how many venue prices were drawn.
    """

    def __init__(
        self, initial: Mapping[str, float], seed: int, volatility: float, venue_noise: float
    ) -> None:
        if any(p <= 0 for p in initial.values()):
            raise ValueError("initial prices must be > 0")
        if volatility < 0 or venue_noise < 0:
            raise ValueError("volatility and venue_noise must be >= 0")
        self.seed = seed
        self.volatility = volatility
        self.prices: dict[str, float] = {m: float(p) for m, p in initial.items()}
        self.steps = 0
        self._walk = {m: random.Random(f"{seed}:{m}:walk") for m in self.prices}
        self._noise = _VenueNoise(seed, venue_noise)

    @property
    def exhausted(self) -> bool:
        return False

    def step(self) -> dict[str, float]:
        sigma = self.volatility
        for market, rng in self._walk.items():
            # zero-drift geometric step: E[price_{t+1}] = price_t
            self.prices[market] *= math.exp(sigma * rng.gauss(0.0, 1.0) - sigma * sigma / 2)
        self.steps += 1
        return dict(self.prices)

    def venue_prices(self, market: str, n_sources: int) -> list[float]:
        return self._noise.apply(market, self.prices[market], n_sources)


class CsvReplayFeed:
    """Replays prices from a CSV file, one timestamp per step.

    Long format: header `timestamp,market,price`, rows grouped by timestamp.
    Wide format: header `timestamp,<MARKET1>,<MARKET2>,...`, one row per step
    (an empty cell means "no price for that market at that step").
    """

    def __init__(self, path: str | Path, *, seed: int = 0, venue_noise: float = 0.0) -> None:
        self.path = Path(path)
        self.rows = parse_price_csv(self.path.read_text())
        self.prices: dict[str, float] = {}
        self.timestamp: float | None = None
        self._next = 0
        self._noise = _VenueNoise(seed, venue_noise)

    @property
    def exhausted(self) -> bool:
        return self._next >= len(self.rows)

    @property
    def markets(self) -> list[str]:
        return sorted({m for _, prices in self.rows for m in prices})

    def step(self) -> dict[str, float]:
        if self.exhausted:
            raise FeedExhausted(f"{self.path}: all {len(self.rows)} steps replayed")
        self.timestamp, step_prices = self.rows[self._next]
        self._next += 1
        self.prices.update(step_prices)
        return dict(step_prices)

    def venue_prices(self, market: str, n_sources: int) -> list[float]:
        return self._noise.apply(market, self.prices[market], n_sources)


def parse_price_csv(text: str) -> list[tuple[float, dict[str, float]]]:
    """[(timestamp, {market: price})] from long or wide CSV text, in file order."""
    reader = csv.reader(line for line in text.splitlines() if line.strip())
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise ValueError("price CSV is empty") from None
    if not header or header[0].lower() != "timestamp" or len(header) < 2:
        raise ValueError(f"price CSV header must start with 'timestamp', got {header}")
    steps: list[tuple[float, dict[str, float]]] = []
    if [h.lower() for h in header] == ["timestamp", "market", "price"]:
        for lineno, row in enumerate(reader, start=2):
            if len(row) != 3:
                raise ValueError(f"price CSV line {lineno}: expected 3 columns, got {len(row)}")
            ts, market, price = float(row[0]), row[1].strip(), _price(row[2], lineno)
            if steps and steps[-1][0] == ts:
                steps[-1][1][market] = price
            else:
                steps.append((ts, {market: price}))
        return steps
    markets = header[1:]
    for lineno, row in enumerate(reader, start=2):
        if len(row) != len(header):
            raise ValueError(f"price CSV line {lineno}: expected {len(header)} columns, got {len(row)}")
        prices = {m: _price(cell, lineno) for m, cell in zip(markets, row[1:], strict=True) if cell.strip()}
        steps.append((float(row[0]), prices))
    return steps


def _price(cell: str, lineno: int) -> float:
    price = float(cell)
    if not price > 0 or math.isinf(price):
        raise ValueError(f"price CSV line {lineno}: price must be a finite number > 0, got {cell!r}")
    return price


__all__ = ["CsvReplayFeed", "FeedExhausted", "PriceFeed", "RandomWalkFeed", "parse_price_csv"]
