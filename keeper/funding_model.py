"""Reference model of vyperp's funding (PROTOCOL.md §9), to the wei.

Exact integer arithmetic, no chain I/O: each function gives what
``contracts/FundingRate.vy`` and the funding part of ``contracts/PerpMarket.vy``
compute, so that differential tests can compare the contracts with it and a
reader can check the rules in one place.

The rules (§9):

* premium sample, from the impact bid and ask (the average prices of selling
  and of buying ``impact_notional`` into the book; a side too thin counts as
  at the index), in one of two modes (seed 004: venues differ):

  - ``impact_band`` (Binance, Hyperliquid; default):
    ``P = (max(0, impact_bid - index) - max(0, index - impact_ask)) / index``
  - ``impact_mid`` (Zeta, Paradigm; seeds 002, 003):
    ``P = ((impact_bid + impact_ask) / 2 - index) / index``

* settlement: ``P_mean`` = mean of the interval's samples, 0 when there is
  none (the book is read by samples only, never at settlement);
  ``F_period = P_mean + clamp(interest - P_mean, -clamp, +clamp)``;
  ``F = clamp(F_period x interval / period, -cap, +cap)``. The samples
  belong to the first due interval, charged ``rate = F(P_mean)``; each
  further missed interval (``due - 1``, ``due`` at most 48 per call) is
  charged the interest part only, ``base = F(0)``:
  ``delta = trunc(rate x index / WAD) + trunc(base x index / WAD) x (due - 1)``,
  clamped to ``+-trunc(cap x index / WAD)`` (one call never moves more than
  one interval's cap); ``cumulative += delta``.

* an account owes ``size x (cumulative - snapshot)``, longs paying when it is
  positive; the payer's amount is rounded up and the receiver's down, and the
  rounding residue is booked to the insurance fund.

Seeds, as worked examples (see :func:`funding_rate` and :func:`funding_owed`):

* seed 003 (Zeta): impact mid $11.76 against an oracle at $12 is a premium of
  -2%; with a 24h period settled daily and no interest, F = -2% per day and a
  100 SOL long *receives* 100 x 2% x $12 = $24 a day.
* seed 004 (GFMI): a $38,000 position at a funding rate of 0.01% pays
  $38,000 x 0.0001 = $3.80 per funding period.

Units (§2): prices, notionals and amounts are ``WAD`` (10**18) fixed point;
sizes are signed base amounts (long > 0); rates are signed WAD fractions.

Vyper's ``//`` on signed integers truncates toward zero, Python's floors:
every signed division below goes through :func:`trunc_div` unless the
contract rounds explicitly (:func:`ceil_div_signed`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from keeper.model import ceil_div_signed, trunc_div
from keeper.units import WAD

YEAR = 365 * 86_400
#: intervals settled by one ``settle()`` call at most (catch-up bound)
MAX_CATCHUP = 48
#: levels per side walked by ``PerpMarket._impact`` at most
MAX_IMPACT_LEVELS = 32

IMPACT_BAND = 0
IMPACT_MID = 1

# hard bounds of FundingRate.set_params
MIN_INTERVAL = 60
MAX_INTERVAL = 86_400
MAX_PERIOD = 30 * 86_400
MAX_INTEREST = WAD // 100
MAX_CLAMP = WAD // 100
MAX_CAP = WAD // 10
MIN_SAMPLE_INTERVAL = 1


# ---------------------------------------------------------------- parameters


@dataclass(frozen=True)
class FundingParams:
    """``FundingRate.FundingParams``, in the contract's field order."""

    funding_interval: int = 3600
    funding_period: int = 8 * 3600
    interest_rate: int = WAD // 10_000  # 0.01% per period (seed 004)
    clamp: int = 5 * WAD // 10_000  # 0.05%
    cap: int = 5 * WAD // 1_000  # 0.5% per interval
    impact_notional: int = 1_000 * WAD  # $1k of quotes (seed 003)
    sample_interval: int = 60
    premium_mode: int = IMPACT_BAND

    def as_tuple(self) -> tuple:
        return (
            self.funding_interval,
            self.funding_period,
            self.interest_rate,
            self.clamp,
            self.cap,
            self.impact_notional,
            self.sample_interval,
            self.premium_mode,
        )


def params_error(p: FundingParams) -> str | None:
    """The revert reason ``FundingRate.set_params`` gives for `p` (the
    first failing bound, in the contract's order), or None when valid."""
    if not MIN_INTERVAL <= p.funding_interval <= MAX_INTERVAL:
        return "funding: interval out of bounds"
    if not p.funding_interval <= p.funding_period <= MAX_PERIOD:
        return "funding: period out of bounds"
    if not -MAX_INTEREST <= p.interest_rate <= MAX_INTEREST:
        return "funding: interest rate out of bounds"
    if not p.clamp <= MAX_CLAMP:
        return "funding: clamp out of bounds"
    if not 0 < p.cap <= MAX_CAP:
        return "funding: cap out of bounds"
    if not WAD <= p.impact_notional < 2**128:
        return "funding: impact notional out of bounds"
    if not MIN_SAMPLE_INTERVAL <= p.sample_interval <= p.funding_interval:
        return "funding: sample interval out of bounds"
    if p.premium_mode not in (IMPACT_BAND, IMPACT_MID):
        return "funding: unknown premium mode"
    return None


# ---------------------------------------------------------------- premium


def impact_price(levels: Sequence[tuple[int, int]], notional: int) -> int:
    """Average fill price of `notional` (quote WAD) walked into one side of
    the book, as ``PerpMarket._impact``; 0 when the side holds less within
    its first 32 levels.

    `levels` are ``(price_wad, size_wad)``, best first (bids: highest first,
    asks: lowest first). The base bought at the last level is rounded down
    (``left x WAD // price``), then the average ``notional x WAD // base``
    rounded down. 0 as well when the base walked rounds to zero (a notional
    below one wei of base at the best price): no meaningful price.
    """
    left = notional
    base = 0
    for price, size in list(levels)[:MAX_IMPACT_LEVELS]:
        value = size * price // WAD
        if value >= left:
            base += left * WAD // price
            return notional * WAD // base if base else 0
        left -= value
        base += size
    return 0


def premium(mode: int, impact_bid: int, impact_ask: int, index: int) -> int:
    """Premium P of one sample, WAD (``FundingRate._premium``).

    An impact price of 0 (side too thin) counts as at the index. Both
    divisions truncate toward zero (the mid first, then by the index).
    """
    if index <= 0:
        raise ValueError("premium: index > 0")
    b = impact_bid or index
    a = impact_ask or index
    if mode == IMPACT_MID:
        return trunc_div((trunc_div(b + a, 2) - index) * WAD, index)
    if mode == IMPACT_BAND:
        return trunc_div((max(0, b - index) - max(0, index - a)) * WAD, index)
    raise ValueError(f"premium: unknown mode {mode}")


def mean_premium(samples: Sequence[int]) -> int:
    """Mean of an interval's samples, truncated toward zero; 0 without
    samples (``FundingRate._mean_premium``: interest only)."""
    if not samples:
        return 0
    return trunc_div(sum(samples), len(samples))


# ---------------------------------------------------------------- rate


def funding_rate(premium_mean: int, interest: int, clamp: int, cap: int, interval: int, period: int) -> int:
    """F, the rate per funding interval, WAD (``FundingRate._rate``):
    ``F_period = P + clamp(interest - P, -clamp, +clamp)``, then
    ``F = clamp(F_period x interval / period, -cap, +cap)`` (truncated).

    Seed 003: ``funding_rate(-2 * WAD // 100, 0, 0, WAD // 10, 86_400,
    86_400) == -2 * WAD // 100``: -2% per day. With the default interest and
    clamp, a premium within ``interest +- clamp`` gives F_period = interest
    (seed 004's 0.01% per 8h) whatever the premium.
    """
    f_period = premium_mean + max(-clamp, min(clamp, interest - premium_mean))
    f = trunc_div(f_period * interval, period)
    return max(-cap, min(cap, f))


def rate_for(p: FundingParams, premium_mean: int) -> int:
    """:func:`funding_rate` with the parameters of `p`."""
    return funding_rate(premium_mean, p.interest_rate, p.clamp, p.cap, p.funding_interval, p.funding_period)


def due_intervals(now: int, next_funding_time: int, interval: int) -> int:
    """Intervals one ``settle()`` at `now` covers: every interval boundary
    passed since `next_funding_time` (inclusive), at most 48."""
    if now < next_funding_time:
        raise ValueError("funding: too early")
    return min((now - next_funding_time) // interval + 1, MAX_CATCHUP)


def settle(cum: int, rate: int, base: int, index: int, due: int, cap: int) -> int:
    """The cumulative funding after one ``settle()`` of `due` intervals at
    `index` (quote per base): the first interval at `rate`, the ``due - 1``
    others at `base` (the interest part), the whole move clamped to one
    interval's `cap`:
    ``cum + clamp(trunc(rate x index / WAD) + trunc(base x index / WAD) x (due - 1), +-cap x index / WAD)``.
    """
    if due < 1:
        raise ValueError("settle: due >= 1")
    delta = trunc_div(rate * index, WAD) + trunc_div(base * index, WAD) * (due - 1)
    bound = cap * index // WAD
    return cum + max(-bound, min(bound, delta))


# ---------------------------------------------------------------- accounts


def funding_owed(size: int, cum: int, snapshot: int) -> int:
    """What a position owes since its snapshot, WAD (+ pays, - receives):
    ``ceil(size x (cum - snapshot) / WAD)``, so the payer's amount is rounded
    up and the receiver's down (``PerpMarket._funding_owed``).

    Seed 004: ``funding_owed(380 * WAD // 1000, 10 * WAD, 0)`` (0.38 BTC,
    i.e. $38,000 at $100,000, after a settlement of 0.01% x $100,000 = $10
    per BTC) is ``3_800_000_000_000_000_000``: $3.80.
    """
    if size == 0:
        return 0
    return ceil_div_signed(size * (cum - snapshot), WAD)


def settle_account(size: int, cum: int, snapshot: int, dust: int) -> tuple[int, int, int]:
    """``PerpMarket._settle_funding`` for a position of `size`:
    ``(paid, new_dust, residue)``. `dust` is the market's residue in 1e-18
    wei; each settlement adds ``paid x WAD - size x (cum - snapshot)`` (in
    [0, WAD)), and whole wei are swept out as `residue` (to the insurance
    account). A flat position or an unchanged snapshot pays nothing.
    """
    if snapshot == cum or size == 0:
        return 0, dust, 0
    exact = size * (cum - snapshot)
    paid = ceil_div_signed(exact, WAD)
    total = dust + paid * WAD - exact
    return paid, total % WAD, total // WAD


# ---------------------------------------------------------------- views


def apr(rate: int, interval: int) -> int:
    """A per-interval rate as a simple annual rate, WAD
    (``rate x (YEAR // interval)``: whole intervals per year)."""
    return rate * (YEAR // interval)


def effective_apr(rate: int, interval: int, leverage: int) -> int:
    """APR on margin at `leverage` (WAD): ``apr x leverage``, truncated."""
    return trunc_div(apr(rate, interval) * leverage, WAD)


# ---------------------------------------------------------------- accumulator


@dataclass
class Funding:
    """The state of one market's FundingRate, stepped like the contract:
    :meth:`sample` and :meth:`settle` take the impact prices and the index at
    the time of the call and return what the contract returns."""

    params: FundingParams
    next_funding_time: int
    cumulative: int = 0
    last_sample_time: int = 0
    samples: list[int] = field(default_factory=list)
    last_rate: int = 0
    last_premium: int = 0

    def premium(self, impact_bid: int, impact_ask: int, index: int) -> int:
        return premium(self.params.premium_mode, impact_bid, impact_ask, index)

    def sample(self, now: int, impact_bid: int, impact_ask: int, index: int) -> int:
        """Take a sample; raises ValueError with the contract's reason."""
        if now < self.last_sample_time + self.params.sample_interval:
            raise ValueError("funding: sample too early")
        if now >= self.next_funding_time:
            raise ValueError("funding: settle first")
        p = self.premium(impact_bid, impact_ask, index)
        self.samples.append(p)
        self.last_sample_time = now
        return p

    def mean(self) -> int:
        """The running interval's mean premium, 0 without samples."""
        return mean_premium(self.samples)

    def predicted_rate(self) -> int:
        return rate_for(self.params, self.mean())

    def settle(self, now: int, index: int) -> tuple[int, int]:
        """Settle the due intervals: returns ``(rate, intervals)``, the rate
        of the first (sampled) interval, as the contract returns it."""
        if now < self.next_funding_time:
            raise ValueError("funding: too early")
        prem = self.mean()
        rate = rate_for(self.params, prem)
        base = rate_for(self.params, 0)
        due = due_intervals(now, self.next_funding_time, self.params.funding_interval)
        self.cumulative = settle(self.cumulative, rate, base, index, due, self.params.cap)
        self.next_funding_time += due * self.params.funding_interval
        self.samples = []
        self.last_rate = rate
        self.last_premium = prem
        return rate, due


def premiums(mode: int, quotes: Iterable[tuple[int, int, int]]) -> list[int]:
    """Premiums of several ``(impact_bid, impact_ask, index)`` samples."""
    return [premium(mode, b, a, i) for b, a, i in quotes]
