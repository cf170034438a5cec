"""The simulation's price path: a calm period, a crash modelled on 10 October 2025, a partial
recovery. Pure and seeded: the same seed and schedule give the same path, to the last digit.

Per market a fair ("spot") price is drawn step by step from correlated log-returns (one common
factor, then a per-market part):

* **calm**: a slow drift up (the market is exuberant: the crowd is long) at a crypto-like
  volatility;
* **crash**: the total log-return over the crash is fixed (BTC -14%, the other markets by their
  `beta`, as altcoins fell harder that night); it is spread over the crash's steps by a bell
  shape with a spike at the middle, so the worst step is in the middle (seed 001: "the forced
  liquidations eat through the diminished liquidity in the book"), plus noise that sums to zero;
* **recovery**: a part of the drop (`recovery_share` of the log-drop) comes back, with noise.

:func:`write_csv` writes the path in the wide format of ``keeper.feeds.CsvReplayFeed`` (one row
per step), which the oracle keeper replays (``oracle.feed: csv``).
"""

from __future__ import annotations

import csv
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

YEAR_S = 365 * 86_400


@dataclass(frozen=True)
class MarketPath:
    """How one market moves: its start price, annualized volatility, and beta to the crash."""

    symbol: str
    start: float
    volatility: float  # annualized, fraction
    beta: float = 1.0  # crash log-return x beta
    calm_drift: float = 0.01  # total log-return over the calm period


@dataclass(frozen=True)
class Schedule:
    """The phases, in seconds of simulated time and steps."""

    calm_s: int
    calm_step_s: int
    crash_s: int
    crash_step_s: int
    recovery_s: int
    recovery_step_s: int
    crash_return: float = math.log(0.86)  # BTC: about -14% over the crash (10 October 2025)
    recovery_share: float = 0.45  # of the crash's log-drop, recovered
    correlation: float = 0.8  # of every market's returns with the common factor

    def steps(self) -> list[tuple[str, int]]:
        """(phase, step length in s) of every step, in order."""
        out: list[tuple[str, int]] = []
        for phase, total, step in (
            ("calm", self.calm_s, self.calm_step_s),
            ("crash", self.crash_s, self.crash_step_s),
            ("recovery", self.recovery_s, self.recovery_step_s),
        ):
            if total % step:
                raise ValueError(f"{phase}: {total} s is not a whole number of {step} s steps")
            out += [(phase, step)] * (total // step)
        return out


@dataclass(frozen=True)
class Step:
    """One step: its index, phase, start time (s from the start of the run) and fair prices."""

    index: int
    phase: str
    t: int
    length: int
    prices: dict[str, float]


def crash_weights(n: int) -> list[float]:
    """How the crash's total move is spread over `n` steps: a bell over the whole window and a
    spike at the middle step, normalized to 1; the middle step is the largest."""
    if n <= 0:
        return []
    mid = (n - 1) / 2
    width = max(n / 5, 1.0)
    raw = [math.exp(-(((i - mid) / width) ** 2) / 2) for i in range(n)]
    peak, centre = max(raw), n // 2
    raw[centre] += 2.5 * peak  # the worst minute, in the middle
    for side in (centre - 1, centre + 1):
        if 0 <= side < n:
            raw[side] += 0.6 * peak
    total = sum(raw)
    return [r / total for r in raw]


def _zero_sum(xs: list[float]) -> list[float]:
    mean = sum(xs) / len(xs) if xs else 0.0
    return [x - mean for x in xs]


def price_path(markets: Sequence[MarketPath], schedule: Schedule, seed: int) -> list[Step]:
    """The fair price of every market at the start of every step (step 0: the start prices)."""
    rng = random.Random(f"vyperp-sim:{seed}:path")
    plan = schedule.steps()
    phases = {p: [i for i, (q, _) in enumerate(plan) if q == p] for p in ("calm", "crash", "recovery")}
    rho = schedule.correlation
    # one common shock and one own shock per market and step, drawn in a fixed order
    common = [rng.gauss(0.0, 1.0) for _ in plan]
    own = {m.symbol: [rng.gauss(0.0, 1.0) for _ in plan] for m in markets}
    log_returns: dict[str, list[float]] = {}
    for m in markets:
        r = [0.0] * len(plan)
        shocks = [rho * c + math.sqrt(1 - rho * rho) * o for c, o in zip(common, own[m.symbol], strict=True)]
        for i, (_phase, step_s) in enumerate(plan):
            r[i] = m.volatility * math.sqrt(step_s / YEAR_S) * shocks[i]
        calm = phases["calm"]
        for i in calm:
            r[i] += m.calm_drift / len(calm)
        crash = phases["crash"]
        if crash:
            total = schedule.crash_return * m.beta
            noise = _zero_sum([r[i] for i in crash])
            for i, w, e in zip(crash, crash_weights(len(crash)), noise, strict=True):
                r[i] = total * w + 0.5 * e  # the noise sums to zero: the crash's total is exact
        recovery = phases["recovery"]
        if recovery:
            back = -schedule.crash_return * m.beta * schedule.recovery_share
            noise = _zero_sum([r[i] for i in recovery])
            for i, e in zip(recovery, noise, strict=True):
                r[i] = back / len(recovery) + e
        log_returns[m.symbol] = r
    steps: list[Step] = []
    t = 0
    level = {m.symbol: math.log(m.start) for m in markets}
    for i, (phase, step_s) in enumerate(plan):
        if i > 0:
            for m in markets:
                level[m.symbol] += log_returns[m.symbol][i - 1]
        steps.append(Step(i, phase, t, step_s, {s: _round(math.exp(v)) for s, v in level.items()}))
        t += step_s
    return steps


def _round(price: float) -> float:
    """Nine significant digits: the CSV and the oracle's WAD conversion see the same decimal."""
    return float(f"{price:.9g}")


def write_csv(steps: Sequence[Step], path: str | Path) -> Path:
    """The wide CSV of ``keeper.feeds.CsvReplayFeed``: `timestamp,<MARKET>...`, a row per step."""
    path = Path(path)
    symbols = list(steps[0].prices) if steps else []
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["timestamp", *symbols])
        for s in steps:
            w.writerow([s.t, *(repr(s.prices[m]) for m in symbols)])
    return path


def phase_bounds(steps: Sequence[Step]) -> Mapping[str, tuple[int, int]]:
    """Phase -> (first t, end t) in seconds from the start."""
    out: dict[str, tuple[int, int]] = {}
    for s in steps:
        start, _end = out.get(s.phase, (s.t, s.t))
        out[s.phase] = (start, s.t + s.length)
    return out


__all__ = [
    "MarketPath",
    "Schedule",
    "Step",
    "crash_weights",
    "phase_bounds",
    "price_path",
    "write_csv",
]
