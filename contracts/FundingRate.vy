# pragma version 0.4.3
# pragma nonreentrancy on
"""
@title FundingRate
@license MIT
@notice Funding of one perp market (PROTOCOL.md §9): permissionless premium
        samples from the order book's impact prices, and permissionless
        settlement at each interval boundary that moves the market's
        cumulative funding by F x index. Positions settle lazily against it
        in the market, so the cost is O(1) whatever the number of accounts.
@custom:security Every rate is clamped (premium-interest clamp, then the
        per-interval cap). Only sample() reads the book: an interval without
        samples has premium 0 (interest only), so a settler cannot shape the
        book for its own settlement. The samples belong to the interval
        ending at next_funding_time; missed intervals after it are caught up
        (at most MAX_CATCHUP per call) at the interest-only rate, and one
        call moves the cumulative funding by at most cap x index, however
        many intervals it settles. A stale index reverts sampling and
        settlement with the oracle's reason.
"""

from snekmate.auth import ownable
from snekmate.auth import ownable_2step

from .interfaces import IIndexOracle
from .modules import book_layout as layout

initializes: ownable
initializes: ownable_2step[ownable := ownable]

exports: (
    # two-step ownership (parameters)
    ownable_2step.owner,
    ownable_2step.pending_owner,
    ownable_2step.transfer_ownership,
    ownable_2step.accept_ownership,
)


interface IMarketFunding:
    def book_word() -> uint256: view
    def level_word(key: uint256) -> uint256: view
    def TICK_SIZE() -> uint256: view
    def LOT_SIZE() -> uint256: view
    def add_cumulative_funding(delta: int256) -> int256: nonpayable


struct FundingParams:
    funding_interval: uint256       # seconds between settlements
    funding_period: uint256         # seconds the premium and interest are quoted for
    interest_rate: int256           # per funding_period, WAD
    clamp: uint256                  # premium-interest clamp, WAD
    cap: uint256                    # |F| per interval, WAD
    impact_notional: uint256        # quote WAD walked into each side
    sample_interval: uint256        # seconds between premium samples
    premium_mode: uint8             # 0 impact_band (default), 1 impact_mid


event PremiumSampled:
    premium: int256
    impact_bid: uint256
    impact_ask: uint256
    index: uint256
    time: uint256

event FundingSettled:
    rate: int256                    # F per interval, WAD
    premium: int256                 # mean premium of the interval
    index: uint256
    time: uint256
    intervals: uint256              # intervals settled by this call (catch-up)
    cumulative_funding: int256

event FundingParamsSet:
    funding_interval: uint256
    funding_period: uint256
    interest_rate: int256
    clamp: uint256
    cap: uint256
    impact_notional: uint256
    sample_interval: uint256
    premium_mode: uint8


WAD: constant(uint256) = 10**18
SWAD: constant(int256) = 10**18
YEAR: constant(uint256) = 365 * 86_400
MAX_CATCHUP: constant(uint256) = 48
IMPACT_BAND: constant(uint8) = 0
IMPACT_MID: constant(uint8) = 1

# hard bounds
MIN_INTERVAL: constant(uint256) = 60
MAX_INTERVAL: constant(uint256) = 86_400
MAX_PERIOD: constant(uint256) = 30 * 86_400
MAX_INTEREST: constant(int256) = SWAD // 100         # 1% per period
MAX_CLAMP: constant(uint256) = WAD // 100            # 1%
MAX_CAP: constant(uint256) = WAD // 10               # 10% per interval
MIN_SAMPLE_INTERVAL: constant(uint256) = 1
MIN_IMPACT_NOTIONAL: constant(uint256) = WAD     # 1 unit of quote
OFF128: constant(int256) = 2**127
OFF96: constant(int256) = 2**95
M32: constant(uint256) = 2**32 - 1
M64: constant(uint256) = 2**64 - 1
M96: constant(uint256) = 2**96 - 1
M128: constant(uint256) = 2**128 - 1

MAX_IMPACT_LEVELS: constant(uint256) = 32

MARKET: public(immutable(IMarketFunding))
ORACLE: public(immutable(IIndexOracle))
# the market's grid, read once at deployment (impact prices walk its book)
TICK_SIZE: immutable(uint256)
LOT_SIZE: immutable(uint256)

# packed words (one storage read or write each; getters below):
#   params A: funding_interval (32) | funding_period (32) | sample_interval (32) | premium_mode (8) | clamp (64) | cap (64)
#   params B: interest_rate + 2**127 (128) | impact_notional (128)
#   samples:  premium_sum + 2**127 (128) | sample_count (32) | last_sample_time (64)
#   settled:  next_funding_time (64) | last_rate + 2**95 (96) | last_premium + 2**95 (96)
_params_a: uint256
_params_b: uint256
_samples: uint256
_settled: uint256


@deploy
def __init__(market_: address, oracle_: address, params_: FundingParams):
    """
    @notice Deploy the funding of `market_`; the first settlement is one
            funding interval after deployment.
    """
    assert market_ != empty(address) and oracle_ != empty(address), "funding: zero address"
    ownable.__init__()
    ownable_2step.__init__()
    MARKET = IMarketFunding(market_)
    ORACLE = IIndexOracle(oracle_)
    TICK_SIZE = staticcall MARKET.TICK_SIZE()
    LOT_SIZE = staticcall MARKET.LOT_SIZE()
    self._set_params(params_)
    self._settled = self._pack_settled(block.timestamp + params_.funding_interval, 0, 0)
    self._samples = convert(OFF128, uint256) << 128  # premium_sum 0, no sample yet


# ================================================================ keepers

@external
def sample() -> int256:
    """
    @notice Take a premium sample (anyone; at most once per sample_interval,
            and only while the current interval is not yet due).
    @return The premium P, WAD.
    """
    p: FundingParams = self._params()
    samples: uint256 = self._samples
    assert block.timestamp >= (samples & M64) + p.sample_interval, "funding: sample too early"
    assert block.timestamp < self._settled & M64, "funding: settle first"
    index: uint256 = staticcall ORACLE.index()
    premium: int256 = 0
    bid: uint256 = 0
    ask: uint256 = 0
    premium, bid, ask = self._premium(p, index)
    total: int256 = convert(samples >> 128, int256) - OFF128 + premium
    count: uint256 = ((samples >> 64) & M32) + 1
    assert abs(total) < OFF128 and count <= M32  # dev: bounded by interval / sample_interval samples of |P| < 2**128
    self._samples = (convert(total + OFF128, uint256) << 128) | (count << 64) | block.timestamp
    log PremiumSampled(premium=premium, impact_bid=bid, impact_ask=ask, index=index, time=block.timestamp)
    return premium


@external
def settle() -> int256:
    """
    @notice Settle the due interval(s) (anyone, from next_funding_time on).
            The first due interval (the one the samples belong to) is
            charged F = clamp(F_period x interval / period, -cap, +cap) with
            F_period = P_mean + clamp(interest - P_mean, -clamp, +clamp),
            P_mean the mean of its samples (0 without samples: the book is
            not read here). Each further missed interval (due - 1 of them,
            due <= 48 per call) is charged the interest part only,
            base = F at P_mean = 0. Per unit of size (quote WAD):
            delta = F x index / 1e18 + (base x index / 1e18) x (due - 1)
            (each division truncated toward zero), clamped to
            +-(cap x index / 1e18): one call never moves more than one
            interval's cap. cumulative_funding += delta.
    @return F, the first due interval's rate, WAD.
    """
    nft: uint256 = self._settled & M64
    assert block.timestamp >= nft, "funding: too early"
    p: FundingParams = self._params()
    index: uint256 = staticcall ORACLE.index()
    samples: uint256 = self._samples
    premium: int256 = self._mean_premium(samples)
    rate: int256 = self._rate(p, premium)
    base: int256 = self._rate(p, 0)
    due: uint256 = min((block.timestamp - nft) // p.funding_interval + 1, MAX_CATCHUP)
    i: int256 = convert(index, int256)
    # dev: |rate|, |base| <= cap <= 10%, index < 2**128, due <= 48: no overflow
    delta: int256 = rate * i // SWAD + (base * i // SWAD) * convert(due - 1, int256)
    bound: int256 = convert(p.cap * index // WAD, int256)
    delta = max(-bound, min(bound, delta))
    cum: int256 = extcall MARKET.add_cumulative_funding(delta)
    self._settled = self._pack_settled(nft + due * p.funding_interval, rate, premium)
    # the interval's samples are spent; keep the last sample time
    self._samples = (convert(OFF128, uint256) << 128) | (samples & M64)
    log FundingSettled(
        rate=rate, premium=premium, index=index, time=block.timestamp, intervals=due, cumulative_funding=cum
    )
    return rate


# ================================================================ views

@external
@view
def impact_prices(notional: uint256) -> (uint256, uint256):
    """
    @notice (impact bid, impact ask): the average prices of selling and of
            buying `notional` (quote WAD) into the market's book, walking at
            most 32 levels per side. A side too thin for the notional returns 0.
    """
    return self._impact_prices(notional)


@external
@view
def predicted_rate() -> int256:
    """
    @notice The rate per interval if the running interval settled now: F
            at the mean premium of its samples, or the interest part only
            (premium 0) when none was taken. Reverts with the oracle's
            reason when the index is invalid, as settle() would.
    """
    p: FundingParams = self._params()
    # dev: the index is read for its validity only: the rate does not depend on it
    index: uint256 = staticcall ORACLE.index()
    return self._rate(p, self._mean_premium(self._samples))


@external
@view
def rate_apr(rate: int256) -> int256:
    """
    @notice A per-interval rate as an annual rate (simple, WAD): people
            compare borrowing costs in APR (seed 001).
    """
    return rate * convert(YEAR // (self._params_a & M32), int256)


@external
@view
def funding_apr() -> int256:
    """
    @notice The last settled rate (the first interval of the last
            settlement, interest only if it had no samples) as an APR, WAD.
    """
    return self._last_rate() * convert(YEAR // (self._params_a & M32), int256)


@external
@view
def effective_apr(leverage: uint256) -> int256:
    """
    @notice APR on margin at `leverage` (WAD, e.g. 10e18 for 10x) of the
            last settled rate (as funding_apr): funding is paid on
            notional, so on margin it is APR x leverage.
    """
    return self._last_rate() * convert(YEAR // (self._params_a & M32), int256) * convert(leverage, int256) // SWAD


@external
@view
def params() -> FundingParams:
    """
    @notice The funding parameters (see set_params for their bounds).
    """
    return self._params()


@external
@view
def next_funding_time() -> uint256:
    """
    @notice When the running interval can be settled.
    """
    return self._settled & M64


@external
@view
def last_rate() -> int256:
    """
    @notice The rate per interval of the last settlement (its first due
            interval's), WAD.
    """
    return self._last_rate()


@external
@view
def last_premium() -> int256:
    """
    @notice The mean premium of the last settled interval, WAD.
    """
    return convert((self._settled >> 160) & M96, int256) - OFF96


@external
@view
def last_sample_time() -> uint256:
    """
    @notice Time of the last premium sample.
    """
    return self._samples & M64


@external
@view
def sample_count() -> uint256:
    """
    @notice Samples taken in the running interval.
    """
    return (self._samples >> 64) & M32


@external
@view
def premium_sum() -> int256:
    """
    @notice Sum of the running interval's premium samples, WAD.
    """
    return convert(self._samples >> 128, int256) - OFF128


# ================================================================ admin

@external
def set_params(params_: FundingParams):
    """
    @notice Set every funding parameter (owner). Bounds: 60 s <= interval <=
            1 day; interval <= period <= 30 days; |interest| <= 1% per
            period; clamp <= 1%; 0 < cap <= 10% per interval;
            impact_notional >= 1 (quote unit); 1 s <= sample_interval <= interval;
            premium_mode 0 (impact_band) or 1 (impact_mid). A new interval
            reschedules the running one: same start, new length.
    """
    ownable._check_owner()
    old_interval: uint256 = self._params_a & M32
    self._set_params(params_)
    if params_.funding_interval != old_interval:
        # the running interval keeps its start and takes the new length, so
        # it is charged for the time that elapses, never a longer interval
        settled: uint256 = self._settled
        start: uint256 = (settled & M64) - old_interval
        self._settled = (settled >> 64 << 64) | (start + params_.funding_interval)


# ================================================================ internals

@internal
@view
def _impact_prices(notional: uint256) -> (uint256, uint256):
    book: uint256 = staticcall MARKET.book_word()
    return (
        self._impact((book & layout.M56), 1, notional),
        self._impact(((book >> layout.B_ASK) & layout.M56), 0, notional),
    )


@internal
@view
def _impact(start: uint256, side: uint256, notional: uint256) -> uint256:
    """
    @dev Average fill price of `notional` walked from level `start` of the
         market's book, 0 when the side holds less within MAX_IMPACT_LEVELS levels.
    """
    cur: uint256 = start
    left: uint256 = notional
    base: uint256 = 0
    for _i: uint256 in range(MAX_IMPACT_LEVELS):
        if cur == 0:
            break
        level: uint256 = staticcall MARKET.level_word(cur * 2 + side)
        price: uint256 = cur * TICK_SIZE
        size: uint256 = ((level >> layout.L_LOTS) & layout.M64) * LOT_SIZE
        value: uint256 = size * price // WAD
        if value >= left:
            base += left * WAD // price
            if base == 0:
                # dev: a notional below one wei of base: no meaningful price
                return 0
            return notional * WAD // base
        left -= value
        base += size
        cur = (level & layout.M56)
    return 0


@internal
@view
def _premium(p: FundingParams, index: uint256) -> (int256, uint256, uint256):
    """
    @dev impact_band: P = (max(0, bid - index) - max(0, index - ask)) / index;
         impact_mid:  P = ((bid + ask) / 2 - index) / index.
         A side too thin for impact_notional counts as at the index.
    """
    bid: uint256 = 0
    ask: uint256 = 0
    bid, ask = self._impact_prices(p.impact_notional)
    b: int256 = convert(index, int256)
    a: int256 = convert(index, int256)
    if bid != 0:
        b = convert(bid, int256)
    if ask != 0:
        a = convert(ask, int256)
    i: int256 = convert(index, int256)
    premium: int256 = 0
    if p.premium_mode == IMPACT_MID:
        premium = ((b + a) // 2 - i) * SWAD // i
    else:
        premium = (max(0, b - i) - max(0, i - a)) * SWAD // i
    return (premium, bid, ask)


@internal
@view
def _params() -> FundingParams:
    a: uint256 = self._params_a
    b: uint256 = self._params_b
    return FundingParams(
        funding_interval=a & M32,
        funding_period=(a >> 32) & M32,
        interest_rate=convert(b & M128, int256) - OFF128,
        clamp=(a >> 128) & M64,
        cap=a >> 192,
        impact_notional=b >> 128,
        sample_interval=(a >> 64) & M32,
        premium_mode=convert((a >> 96) & 255, uint8),
    )


@internal
@pure
def _mean_premium(samples: uint256) -> int256:
    """
    @dev The running interval's mean premium (truncated toward zero), 0
         without samples: never a live sample, which the caller could shape.
    """
    count: uint256 = (samples >> 64) & M32
    if count == 0:
        return 0
    return (convert(samples >> 128, int256) - OFF128) // convert(count, int256)


@internal
@view
def _last_rate() -> int256:
    return convert((self._settled >> 64) & M96, int256) - OFF96


@internal
@pure
def _pack_settled(nft: uint256, rate: int256, premium: int256) -> uint256:
    # dev: |rate| <= cap <= 10%; |premium| is bounded by the book's prices < 2**95
    assert abs(rate) < OFF96 and abs(premium) < OFF96 and nft <= M64  # dev: packed field overflow
    return (convert(premium + OFF96, uint256) << 160) | (convert(rate + OFF96, uint256) << 64) | nft


@internal
@view
def _rate(p: FundingParams, premium: int256) -> int256:
    clamp_: int256 = convert(p.clamp, int256)
    f_period: int256 = premium + max(-clamp_, min(clamp_, p.interest_rate - premium))
    f: int256 = f_period * convert(p.funding_interval, int256) // convert(p.funding_period, int256)
    cap_: int256 = convert(p.cap, int256)
    return max(-cap_, min(cap_, f))


@internal
def _set_params(p: FundingParams):
    assert p.funding_interval >= MIN_INTERVAL and p.funding_interval <= MAX_INTERVAL, "funding: interval out of bounds"
    assert p.funding_period >= p.funding_interval and p.funding_period <= MAX_PERIOD, "funding: period out of bounds"
    assert p.interest_rate >= -MAX_INTEREST and p.interest_rate <= MAX_INTEREST, "funding: interest rate out of bounds"
    assert p.clamp <= MAX_CLAMP, "funding: clamp out of bounds"
    assert p.cap > 0 and p.cap <= MAX_CAP, "funding: cap out of bounds"
    assert p.impact_notional >= MIN_IMPACT_NOTIONAL and p.impact_notional < 2**128, "funding: impact notional out of bounds"
    assert p.sample_interval >= MIN_SAMPLE_INTERVAL and p.sample_interval <= p.funding_interval, "funding: sample interval out of bounds"
    assert p.premium_mode <= IMPACT_MID, "funding: unknown premium mode"
    self._params_a = (
        p.funding_interval | (p.funding_period << 32) | (p.sample_interval << 64)
        | (convert(p.premium_mode, uint256) << 96) | (p.clamp << 128) | (p.cap << 192)
    )
    self._params_b = convert(p.interest_rate + OFF128, uint256) | (p.impact_notional << 128)
    log FundingParamsSet(
        funding_interval=p.funding_interval, funding_period=p.funding_period, interest_rate=p.interest_rate,
        clamp=p.clamp, cap=p.cap, impact_notional=p.impact_notional, sample_interval=p.sample_interval,
        premium_mode=p.premium_mode
    )
