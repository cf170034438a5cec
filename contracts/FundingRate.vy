# pragma version 0.4.3
# pragma nonreentrancy on
"""
@title FundingRate
@license MIT
@notice Funding of one perp market (PROTOCOL.md §8): permissionless premium
        samples from the order book's impact prices, and permissionless
        settlement at each interval boundary that moves the market's
        cumulative funding by F x index. Positions settle lazily against it
        in the market, so the cost is O(1) whatever the number of accounts.
@custom:security Every rate is clamped (premium-interest clamp, then the
        per-interval cap); missed intervals are caught up at most
        MAX_CATCHUP per call at the rate of the current interval; a stale
        index reverts sampling and settlement with the oracle's reason.
"""

from snekmate.auth import ownable
from snekmate.auth import ownable_2step

from .interfaces import IIndexOracle

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
    def impact_prices(notional: uint256) -> (uint256, uint256): view
    def cumulative_funding() -> int256: view
    def set_cumulative_funding(cumulative: int256): nonpayable


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

MARKET: public(immutable(IMarketFunding))
ORACLE: public(immutable(IIndexOracle))

params: public(FundingParams)
next_funding_time: public(uint256)
last_sample_time: public(uint256)
premium_sum: public(int256)
sample_count: public(uint256)
last_rate: public(int256)
last_premium: public(int256)


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
    self._set_params(params_)
    self.next_funding_time = block.timestamp + params_.funding_interval


# ================================================================ keepers

@external
def sample() -> int256:
    """
    @notice Take a premium sample (anyone; at most once per sample_interval,
            and only while the current interval is not yet due).
    @return The premium P, WAD.
    """
    p: FundingParams = self.params
    assert block.timestamp >= self.last_sample_time + p.sample_interval, "funding: sample too early"
    assert block.timestamp < self.next_funding_time, "funding: settle first"
    index: uint256 = staticcall ORACLE.index()
    premium: int256 = 0
    bid: uint256 = 0
    ask: uint256 = 0
    premium, bid, ask = self._premium(p, index)
    self.premium_sum += premium
    self.sample_count += 1
    self.last_sample_time = block.timestamp
    log PremiumSampled(premium=premium, impact_bid=bid, impact_ask=ask, index=index, time=block.timestamp)
    return premium


@external
def settle() -> int256:
    """
    @notice Settle the due interval(s) (anyone, from next_funding_time on):
            F_period = P_mean + clamp(interest - P_mean, -clamp, +clamp),
            F = clamp(F_period x interval / period, -cap, +cap),
            cumulative_funding += F x index for each due interval (at most
            48 per call). With no sample in the interval, one is taken now.
    @return F, the rate per interval, WAD.
    """
    nft: uint256 = self.next_funding_time
    assert block.timestamp >= nft, "funding: too early"
    p: FundingParams = self.params
    index: uint256 = staticcall ORACLE.index()
    premium: int256 = 0
    count: uint256 = self.sample_count
    if count == 0:
        bid: uint256 = 0
        ask: uint256 = 0
        premium, bid, ask = self._premium(p, index)
    else:
        premium = self.premium_sum // convert(count, int256)
    rate: int256 = self._rate(p, premium)
    due: uint256 = min((block.timestamp - nft) // p.funding_interval + 1, MAX_CATCHUP)
    cum: int256 = staticcall MARKET.cumulative_funding()
    # dev: |rate| <= 10%, index < 2**128, due <= 48: no overflow
    cum += rate * convert(index, int256) // SWAD * convert(due, int256)
    extcall MARKET.set_cumulative_funding(cum)
    self.next_funding_time = nft + due * p.funding_interval
    self.premium_sum = 0
    self.sample_count = 0
    self.last_rate = rate
    self.last_premium = premium
    log FundingSettled(
        rate=rate, premium=premium, index=index, time=block.timestamp, intervals=due, cumulative_funding=cum
    )
    return rate


# ================================================================ views

@external
@view
def predicted_rate() -> int256:
    """
    @notice The rate per interval if the running interval settled now (its
            mean premium, or a live sample when none was taken).
    """
    p: FundingParams = self.params
    premium: int256 = 0
    count: uint256 = self.sample_count
    if count == 0:
        bid: uint256 = 0
        ask: uint256 = 0
        premium, bid, ask = self._premium(p, staticcall ORACLE.index())
    else:
        premium = self.premium_sum // convert(count, int256)
    return self._rate(p, premium)


@external
@view
def rate_apr(rate: int256) -> int256:
    """
    @notice A per-interval rate as an annual rate (simple, WAD): people
            compare borrowing costs in APR (seed 001).
    """
    return rate * convert(YEAR // self.params.funding_interval, int256)


@external
@view
def funding_apr() -> int256:
    """
    @notice The last settled rate as an APR, WAD.
    """
    return self.last_rate * convert(YEAR // self.params.funding_interval, int256)


@external
@view
def effective_apr(leverage: uint256) -> int256:
    """
    @notice APR on margin at `leverage` (WAD, e.g. 10e18 for 10x): funding
            is paid on notional, so on margin it is APR x leverage.
    """
    return self.last_rate * convert(YEAR // self.params.funding_interval, int256) * convert(leverage, int256) // SWAD


# ================================================================ admin

@external
def set_params(params_: FundingParams):
    """
    @notice Set every funding parameter (owner). Bounds: 60 s <= interval <=
            1 day; interval <= period <= 30 days; |interest| <= 1% per
            period; clamp <= 1%; 0 < cap <= 10% per interval;
            impact_notional > 0; 1 s <= sample_interval <= interval;
            premium_mode 0 (impact_band) or 1 (impact_mid). The new interval
            applies from the next settlement on.
    """
    ownable._check_owner()
    self._set_params(params_)


# ================================================================ internals

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
    bid, ask = staticcall MARKET.impact_prices(p.impact_notional)
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
    assert p.impact_notional > 0 and p.impact_notional < 2**128, "funding: impact notional out of bounds"
    assert p.sample_interval >= MIN_SAMPLE_INTERVAL and p.sample_interval <= p.funding_interval, "funding: sample interval out of bounds"
    assert p.premium_mode <= IMPACT_MID, "funding: unknown premium mode"
    self.params = p
    log FundingParamsSet(
        funding_interval=p.funding_interval, funding_period=p.funding_period, interest_rate=p.interest_rate,
        clamp=p.clamp, cap=p.cap, impact_notional=p.impact_notional, sample_interval=p.sample_interval,
        premium_mode=p.premium_mode
    )
