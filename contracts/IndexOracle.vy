# pragma version 0.4.3
# pragma nonreentrancy on
"""
@title IndexOracle
@license MIT
@notice The index price of one market (PROTOCOL.md §4): the median of the
        fresh sources, valid only with at least `quorum` fresh sources and,
        with an even number of them, when the two middle prices agree
        within `max_spread` (else one source of two would move the mean).
        A source is either a reporter account that pushes (price, timestamp)
        or a Chainlink AggregatorV3 feed read with `latestRoundData()`.
        A report must be > 0, not from the future, and a source's timestamps
        never go backwards. The oracle itself is a Chainlink AggregatorV3
        feed (18 decimals; `latestRoundData`, `getRoundData`, `decimals`,
        `description`, `version`) so other contracts can consume it.
        A guard bounds how fast the index may move: a reference price
        follows the median, moving at most by the factor
        1 + `reference_rate` x hours since its last checkpoint, and the
        index is invalid while the median is more than `max_divergence`
        away from it (Drift's oracle guard rails, Mango v4's stable price).
@custom:security Trust: the owner chooses the sources; the median tolerates
        fewer than half of the fresh sources being wrong, and with an even
        count the spread rule bounds what one wrong source does: at most
        max_spread / 2 (<= 2%) from the honest price, or an invalid index. A reader never
        gets a price from a stale, zero or quorum-less set: `index()` reverts.
        `latestRoundData()` returns the last answer when stale, with its old
        `updatedAt` for the consumer to check, and reverts like `index()` on
        disagreeing sources or the guard, which no staleness check can see.
        A majority of sources pushing the price far away (Mango, 2022) makes
        the index invalid, not wrong, for as long as the reference needs to
        catch up: the owner's time to replace the sources.
"""

from snekmate.auth import ownable
from snekmate.auth import ownable_2step

from .interfaces import IIndexOracle
from .interfaces import IAggregatorV3

implements: IIndexOracle
implements: IAggregatorV3

initializes: ownable
initializes: ownable_2step[ownable := ownable]

exports: (
    # two-step ownership
    ownable_2step.owner,
    ownable_2step.pending_owner,
    ownable_2step.transfer_ownership,
    ownable_2step.accept_ownership,
)

MAX_SOURCES: constant(uint256) = 8
KIND_REPORTER: constant(uint8) = 1
KIND_AGGREGATOR: constant(uint8) = 2
WAD: constant(uint256) = 10**18

# hard bounds on the parameters
MIN_MAX_AGE: constant(uint256) = 5          # seconds
MAX_MAX_AGE: constant(uint256) = 86_400     # one day
BPS: constant(uint256) = 10**14                 # one basis point, WAD
MIN_DIVERGENCE: constant(uint256) = 500         # 5%, in basis points
MAX_DIVERGENCE: constant(uint256) = 100_000     # 1000%
MIN_REFERENCE_RATE: constant(uint256) = 100     # 1% per hour, in basis points
MAX_REFERENCE_RATE: constant(uint256) = 100_000 # 1000% per hour
MIN_SPREAD: constant(uint256) = 10              # 0.1%, in basis points
MAX_SPREAD: constant(uint256) = 400             # 4%: one source of two moves the index <= 2%
DEFAULT_SPREAD: constant(uint256) = 100         # 1%

# packed source word: kind (8 bits) | aggregator decimals (8) | price (128) | timestamp (64)
PRICE_BITS: constant(uint256) = 128
TS_BITS: constant(uint256) = 64
PRICE_MASK: constant(uint256) = (1 << 128) - 1
TS_MASK: constant(uint256) = (1 << 64) - 1
# config word, read once per report or index (low to high): source_count (8)
# | quorum (8) | max_age (24) | max_divergence (24, basis points)
# | reference_rate (24, basis points per hour) | aggregator count (8)
# | reference time (32: block timestamps below 2**32, until 2106)
# | reference price (128). The reference price shares the word so that a
# report's checkpoint costs no extra storage slot.
C_QUORUM: constant(uint256) = 8
C_MAX_AGE: constant(uint256) = 16
C_DIVERGENCE: constant(uint256) = 40
C_RATE: constant(uint256) = 64
C_AGGREGATORS: constant(uint256) = 88
C_REF_TIME: constant(uint256) = 96
C_REF_PRICE: constant(uint256) = 128
MASK24: constant(uint256) = (1 << 24) - 1
MASK32: constant(uint256) = (1 << 32) - 1
# everything but the reference
SETTINGS_MASK: constant(uint256) = (1 << C_REF_TIME) - 1

description: public(String[32])
# packed config word (fields above)
_config: uint256
_source_word: HashMap[uint256, uint256]
_source_addr: HashMap[uint256, address]
# the median computed at the last report: price (128) | expiry (64), where
# expiry = oldest timestamp used + max_age; valid while now <= expiry. Only
# kept when every source is a reporter (an aggregator can move without a
# report); cleared by every admin change.
_cache: uint256
# reporter address -> source index + 1 (0: not a reporter)
reporter_source: public(HashMap[address, uint256])
# the largest spread of the two middle prices of an even count (basis points);
# read only when the count of fresh sources is even
_max_spread: uint256


@deploy
def __init__(
    description_: String[32],
    reporters: DynArray[address, MAX_SOURCES],
    max_age_: uint256,
    quorum_: uint256,
    max_divergence_: uint256,
    reference_rate_: uint256,
):
    """
    @notice Deploy an index oracle with an initial set of reporter sources.
    @param description_ e.g. "BTC-PERP index".
    @param reporters Reporter accounts, one source each.
    @param max_age_ Seconds after which a report is stale (5 .. 86,400).
    @param quorum_ Fresh sources needed for a valid index (1 .. sources).
    @param max_divergence_ The index is invalid while the median is more than
           this (WAD fraction, whole basis points) away from the reference
           price (5% .. 1000%).
    @param reference_rate_ Largest relative move of the reference price per
           hour (WAD fraction, whole basis points; 1% .. 1000%).
    """
    ownable.__init__()
    ownable_2step.__init__()
    self.description = description_
    for r: address in reporters:
        self._add_source(KIND_REPORTER, r, 0)
    self._set_max_age(max_age_)
    self._set_quorum(quorum_)
    self._set_guard(max_divergence_, reference_rate_)
    self._set_max_spread(DEFAULT_SPREAD * BPS)


# ---------------------------------------------------------------- reads

@external
@view
def max_age() -> uint256:
    """
    @notice Seconds after which a source's price is stale.
    """
    return (self._config >> C_MAX_AGE) & MASK24


@external
@view
def max_divergence() -> uint256:
    """
    @notice The index is invalid while the median is further than this
            (WAD fraction) from the reference price.
    """
    return ((self._config >> C_DIVERGENCE) & MASK24) * BPS


@external
@view
def reference_rate() -> uint256:
    """
    @notice Largest relative move of the reference price per hour (WAD).
    """
    return ((self._config >> C_RATE) & MASK24) * BPS


@external
@view
def max_spread() -> uint256:
    """
    @notice With an even number of fresh sources the index is invalid while
            its two middle prices differ by more than this (WAD fraction of
            the lower one).
    """
    return self._max_spread * BPS


@external
@view
def reference_price() -> (uint256, uint256):
    """
    @notice (the reference price now, the time of its last checkpoint): the
            stored reference moved toward the current median by at most the
            factor 1 + `reference_rate` x hours since the checkpoint. The
            reference is the median itself before the first checkpoint.
    """
    price: uint256 = 0
    oldest: uint256 = 0
    fresh: uint256 = 0
    agree: bool = False
    config: uint256 = self._config
    price, oldest, fresh, agree = self._median_unchecked(config)
    return (self._reference_now(price, config), (config >> C_REF_TIME) & MASK32)


@external
@view
def quorum() -> uint256:
    """
    @notice Fresh sources needed for a valid index.
    """
    return (self._config >> 8) & 255


@external
@view
def source_count() -> uint256:
    """
    @notice Number of sources.
    """
    return self._config & 255


@external
@view
def index() -> uint256:
    """
    @notice The index price (WAD, quote per base unit).
    @dev Reverts "oracle: stale index" when no source is fresh,
         "oracle: below quorum" when fewer than `quorum` are, "oracle:
         sources disagree" when an even count's middle prices differ by
         more than max_spread, "oracle: index moved too fast" beyond the guard.
    """
    # dev: the cache's price alone (one storage read), as `_median` would serve it; the test is
    # written out in both, as a shared internal helper costs 87 gas on every index read
    cache: uint256 = self._cache
    if cache != 0 and block.timestamp <= cache & TS_MASK:
        return cache >> TS_BITS
    price: uint256 = 0
    oldest: uint256 = 0
    fresh: uint256 = 0
    price, oldest, fresh = self._median()
    return price


@external
@view
def index_status() -> (bool, uint256, uint256):
    """
    @notice Never reverts: (valid, median of the fresh sources, fresh count).
    """
    price: uint256 = 0
    oldest: uint256 = 0
    fresh: uint256 = 0
    agree: bool = False
    config: uint256 = self._config
    price, oldest, fresh, agree = self._median_unchecked(config)
    ok: bool = fresh > 0 and fresh >= (config >> 8) & 255 and agree
    return (ok and self._within_guard(price, config), price, fresh)


@external
@view
def latestRoundData() -> (uint80, int256, uint256, uint256, uint80):
    """
    @notice Chainlink AggregatorV3 read of the index (18 decimals):
            (roundId, answer, startedAt, updatedAt, answeredInRound).
            With a fresh quorum: the index, `updatedAt` the oldest fresh
            timestamp used. Without one (stale, below quorum): the last
            answer, the same median over every source's latest report up to
            2**24 - 1 s old, as if none were stale, `updatedAt` the oldest of
            them; the consumer checks its age, as with any Chainlink feed.
            roundId = answeredInRound = startedAt = updatedAt (one round per
            answer; not monotonic: a source going stale can make it older).
    @dev Reverts "oracle: no answer" when no source has a report, "oracle:
         below quorum" when fewer than `quorum` have one, and whenever the
         answer fails the spread rule ("oracle: sources disagree") or the
         guard ("oracle: index moved too fast"), fresh or not: a consumer
         that only checks `updatedAt` would take a fresh price the oracle
         itself refuses. Freshness is the only check it relaxes, and
         `updatedAt` shows it: with its own age limit T >= now - updatedAt,
         the consumer gets what `index()` would with max_age = T.
    """
    price: uint256 = 0
    updated: uint256 = 0
    price, updated = self._answer()
    return (convert(updated, uint80), convert(price, int256), updated, updated, convert(updated, uint80))


@external
@view
def getRoundData(round_id: uint80) -> (uint80, int256, uint256, uint256, uint80):
    """
    @notice `latestRoundData()` when `round_id` is its roundId (the updatedAt
            of the current answer); no past round is kept: any other id
            reverts "oracle: round not kept", as Chainlink does for an
            unknown round.
    """
    price: uint256 = 0
    updated: uint256 = 0
    price, updated = self._answer()
    assert convert(round_id, uint256) == updated, "oracle: round not kept"
    return (round_id, convert(price, int256), updated, updated, round_id)


@external
@view
def version() -> uint256:
    """
    @notice Version of this AggregatorV3 read side (1: the rules of
            `latestRoundData` above).
    """
    return 1


@external
@view
def decimals() -> uint8:
    """
    @notice The index is quoted with 18 decimals.
    """
    return 18


@external
@view
def source(i: uint256) -> (uint8, address, uint256, uint256):
    """
    @notice Source `i` as (kind, address, last price WAD, last timestamp);
            kind 1 = reporter, 2 = Chainlink aggregator (price and
            timestamp read live from the feed, 0 if unreadable).
    """
    assert i < self._config & 255, "oracle: no such source"
    word: uint256 = self._source_word[i]
    kind: uint8 = convert(word >> 248, uint8)
    if kind == KIND_AGGREGATOR:
        p: uint256 = 0
        t: uint256 = 0
        p, t = self._read_aggregator(self._source_addr[i], convert((word >> 240) & 255, uint8))
        return (kind, self._source_addr[i], p, t)
    return (kind, self._source_addr[i], (word >> TS_BITS) & PRICE_MASK, word & TS_MASK)


# ---------------------------------------------------------------- reporting

@external
@reentrant
def report(price: uint256, timestamp: uint256):
    """
    @notice Push a price for the caller's source.
    @dev `@reentrant` (no lock, 300 gas less): the only external calls it
         makes are static reads of aggregator feeds, which cannot reenter a
         state-changing function.
    @param price WAD, quote per base unit; must be > 0.
    @param timestamp When the price was observed; not in the future and not
           before this source's previous report.
    """
    slot: uint256 = self.reporter_source[msg.sender]
    assert slot != 0, "oracle: not a reporter"
    assert price > 0, "oracle: zero price"
    assert price <= PRICE_MASK, "oracle: price too large"
    assert timestamp <= block.timestamp, "oracle: future timestamp"
    i: uint256 = slot - 1
    word: uint256 = self._source_word[i]
    assert timestamp >= word & TS_MASK, "oracle: timestamp went backwards"
    # keep kind and decimals (top 16 bits), replace price and timestamp
    self._source_word[i] = (word >> 192 << 192) | (price << TS_BITS) | timestamp
    log IIndexOracle.PriceReported(reporter=msg.sender, price=price, timestamp=timestamp)
    self._checkpoint()


@external
def update_reference():
    """
    @notice Checkpoint the reference price (anyone). Reports do it; an oracle
            whose sources include Chainlink feeds needs a keeper calling this
            regularly, or the reference moves in one straight step from its
            last checkpoint. Reverts while the index has no quorum.
    """
    self._checkpoint_valid()


@external
def reset_reference():
    """
    @notice Owner only: set the reference price to the current median, e.g.
            after checking that a move the guard holds back is genuine.
            Reverts while the index has no quorum.
    """
    ownable._check_owner()
    self._config = self._config & SETTINGS_MASK
    price: uint256 = self._checkpoint_valid()
    log IIndexOracle.ReferenceReset(price=price)


# ---------------------------------------------------------------- admin

@external
def add_reporter(reporter: address) -> uint256:
    """
    @notice Add a reporter source (owner only). Returns its index.
    """
    ownable._check_owner()
    return self._add_source(KIND_REPORTER, reporter, 0)


@external
def add_aggregator(aggregator: address) -> uint256:
    """
    @notice Add a Chainlink AggregatorV3 source (owner only). Returns its index.
    """
    ownable._check_owner()
    dec: uint8 = staticcall IAggregatorV3(aggregator).decimals()
    assert dec <= 36, "oracle: aggregator decimals"
    return self._add_source(KIND_AGGREGATOR, aggregator, dec)


@external
def remove_source(i: uint256):
    """
    @notice Remove source `i` (owner only); the last source takes its index.
            The quorum must still be reachable afterwards.
    """
    ownable._check_owner()
    n: uint256 = self._config & 255
    assert i < n, "oracle: no such source"
    assert (self._config >> 8) & 255 <= n - 1, "oracle: quorum above sources"
    addr: address = self._source_addr[i]
    if convert(self._source_word[i] >> 248, uint8) == KIND_REPORTER:
        self.reporter_source[addr] = 0
    else:
        self._config -= 1 << C_AGGREGATORS
    last: uint256 = n - 1
    if i != last:
        self._source_word[i] = self._source_word[last]
        self._source_addr[i] = self._source_addr[last]
        if convert(self._source_word[i] >> 248, uint8) == KIND_REPORTER:
            self.reporter_source[self._source_addr[i]] = i + 1
    self._source_word[last] = 0
    self._source_addr[last] = empty(address)
    self._config = (self._config >> 8 << 8) | last
    self._cache = 0
    log IIndexOracle.SourceRemoved(addr=addr, source=i)


@external
def set_max_age(max_age_: uint256):
    """
    @notice Seconds after which a source is stale (owner; 5 .. 86,400).
    """
    ownable._check_owner()
    self._set_max_age(max_age_)


@external
def set_guard(max_divergence_: uint256, reference_rate_: uint256):
    """
    @notice The index guard (owner): largest divergence of the median from the
            reference price (WAD, 5% .. 1000%) and largest relative move of the
            reference per hour (WAD, 1% .. 1000%); whole basis points.
    """
    ownable._check_owner()
    self._set_guard(max_divergence_, reference_rate_)


@external
def set_max_spread(max_spread_: uint256):
    """
    @notice The largest spread of the two middle prices of an even count of
            fresh sources (owner; WAD fraction, whole basis points, 0.1% .. 4%).
    """
    ownable._check_owner()
    self._set_max_spread(max_spread_)


@external
def set_quorum(quorum_: uint256):
    """
    @notice Fresh sources required for a valid index (owner; 1 .. sources).
    """
    ownable._check_owner()
    self._set_quorum(quorum_)


# ---------------------------------------------------------------- internals

@internal
def _add_source(kind: uint8, addr: address, dec: uint8) -> uint256:
    assert addr != empty(address), "oracle: zero address"
    n: uint256 = self._config & 255
    assert n < MAX_SOURCES, "oracle: too many sources"
    if kind == KIND_REPORTER:
        assert self.reporter_source[addr] == 0, "oracle: duplicate reporter"
        self.reporter_source[addr] = n + 1
    else:
        self._config += 1 << C_AGGREGATORS
    self._source_word[n] = (convert(kind, uint256) << 248) | (convert(dec, uint256) << 240)
    self._source_addr[n] = addr
    self._config = (self._config >> 8 << 8) | (n + 1)
    self._cache = 0
    log IIndexOracle.SourceAdded(addr=addr, source=n, kind=kind)
    return n


@internal
def _checkpoint() -> uint256:
    """
    @dev Recompute the median; with a quorum, move the reference price toward
         it (bounded) and store it; cache the median when every source is a
         reporter and the index is valid. Returns the median (0: no quorum).
         A median within the guard stays within it until it changes (the
         reference only comes closer), so the cache never needs the guard.
    """
    config: uint256 = self._config
    price: uint256 = 0
    oldest: uint256 = 0
    fresh: uint256 = 0
    agree: bool = False
    price, oldest, fresh, agree = self._median_unchecked(config)
    if fresh == 0 or fresh < (config >> 8) & 255 or not agree:
        # dev: no quorum, or an even count whose middle prices disagree: the
        # reference stays (it follows valid medians only)
        self._cache = 0
        return 0
    reference: uint256 = self._reference_now(price, config)
    self._config = (config & SETTINGS_MASK) | (block.timestamp << C_REF_TIME) | (reference << C_REF_PRICE)
    if (config >> C_AGGREGATORS) & 255 != 0 or not self._within(price, reference, config):
        self._cache = 0
        return price
    self._cache = (price << TS_BITS) | (oldest + ((config >> C_MAX_AGE) & MASK24))
    return price


@internal
def _checkpoint_valid() -> uint256:
    price: uint256 = self._checkpoint()
    assert price != 0, "oracle: no quorum, or the sources disagree"
    return price


@internal
@view
def _reference_now(median: uint256, config: uint256) -> uint256:
    """
    @dev The stored reference moved toward `median` by at most the factor
         1 + reference_rate x hours since its checkpoint; `median` itself
         before the first checkpoint.
    """
    r: uint256 = config >> C_REF_PRICE
    if r == 0:
        return median
    # dev: rate <= 10 WAD per hour, r < 2**128, elapsed < 2**32: no overflow
    elapsed: uint256 = block.timestamp - ((config >> C_REF_TIME) & MASK32)
    step: uint256 = WAD + ((config >> C_RATE) & MASK24) * BPS * elapsed // 3600
    hi: uint256 = r * step // WAD
    lo: uint256 = r * WAD // step
    return min(max(median, lo), hi)


@internal
@view
def _within_guard(median: uint256, config: uint256) -> bool:
    """
    @dev The median is within (1 + max_divergence) of the reference, either way.
    """
    return self._within(median, self._reference_now(median, config), config)


@internal
@pure
def _within(median: uint256, reference: uint256, config: uint256) -> bool:
    band: uint256 = WAD + ((config >> C_DIVERGENCE) & MASK24) * BPS
    return median * WAD <= reference * band and reference * WAD <= median * band


@internal
def _set_max_age(max_age_: uint256):
    assert max_age_ >= MIN_MAX_AGE and max_age_ <= MAX_MAX_AGE, "oracle: max_age out of bounds"
    self._config = (self._config & ~(MASK24 << C_MAX_AGE)) | (max_age_ << C_MAX_AGE)
    self._cache = 0
    log IIndexOracle.MaxAgeSet(max_age=max_age_)


@internal
def _set_max_spread(max_spread_: uint256):
    assert max_spread_ % BPS == 0, "oracle: spread not in whole basis points"
    spread: uint256 = max_spread_ // BPS
    assert spread >= MIN_SPREAD and spread <= MAX_SPREAD, "oracle: max_spread out of bounds"
    self._max_spread = spread
    self._cache = 0
    log IIndexOracle.MaxSpreadSet(max_spread=max_spread_)


@internal
def _set_quorum(quorum_: uint256):
    assert quorum_ >= 1 and quorum_ <= self._config & 255, "oracle: quorum out of bounds"
    self._config = (self._config >> 16 << 16) | (quorum_ << 8) | (self._config & 255)
    self._cache = 0
    log IIndexOracle.QuorumSet(quorum=quorum_)


@internal
def _set_guard(max_divergence_: uint256, reference_rate_: uint256):
    assert max_divergence_ % BPS == 0 and reference_rate_ % BPS == 0, "oracle: guard not in whole basis points"
    div: uint256 = max_divergence_ // BPS
    rate: uint256 = reference_rate_ // BPS
    assert div >= MIN_DIVERGENCE and div <= MAX_DIVERGENCE, "oracle: max_divergence out of bounds"
    assert rate >= MIN_REFERENCE_RATE and rate <= MAX_REFERENCE_RATE, "oracle: reference_rate out of bounds"
    mask: uint256 = (MASK24 << C_DIVERGENCE) | (MASK24 << C_RATE)
    self._config = (self._config & ~mask) | (div << C_DIVERGENCE) | (rate << C_RATE)
    self._cache = 0
    log IIndexOracle.GuardSet(max_divergence=max_divergence_, reference_rate=reference_rate_)


@internal
@view
def _read_aggregator(feed: address, dec: uint8) -> (uint256, uint256):
    """
    @dev (price WAD, updatedAt) of a Chainlink feed, (0, 0) when the call
         fails, the answer is not positive, above 2**128 - 1 once scaled to
         WAD, or the return data is malformed:
         a broken feed counts as not fresh, it never bricks the index.
    """
    ok: bool = False
    res: Bytes[160] = b""
    ok, res = raw_call(
        feed, method_id("latestRoundData()"), max_outsize=160, is_static_call=True, revert_on_failure=False
    )
    if not ok or len(res) != 160:
        return (0, 0)
    answer: int256 = convert(slice(res, 32, 32), int256)
    updated: uint256 = convert(slice(res, 96, 32), uint256)
    if answer <= 0:
        return (0, 0)
    p: uint256 = convert(answer, uint256)
    if dec < 18:
        scale: uint256 = 10 ** convert(18 - dec, uint256)
        if p > PRICE_MASK // scale:
            # an absurd answer is not a price: not fresh (and no overflow)
            return (0, 0)
        p = p * scale
    elif dec > 18:
        p = p // 10 ** convert(dec - 18, uint256)
    if p > PRICE_MASK:
        return (0, 0)
    return (p, updated)


@internal
@view
def _median() -> (uint256, uint256, uint256):
    """
    @dev `_median_unchecked`, reverting when the index is invalid; served
         from the cache (one storage read) while it has not expired.
    """
    cache: uint256 = self._cache
    if cache != 0 and block.timestamp <= cache & TS_MASK:
        return (cache >> TS_BITS, (cache & TS_MASK) - ((self._config >> C_MAX_AGE) & MASK24), (self._config >> 8) & 255)
    price: uint256 = 0
    oldest: uint256 = 0
    fresh: uint256 = 0
    agree: bool = False
    config: uint256 = self._config
    price, oldest, fresh, agree = self._median_unchecked(config)
    assert fresh > 0, "oracle: stale index"
    assert fresh >= (config >> 8) & 255, "oracle: below quorum"
    assert agree, "oracle: sources disagree"
    assert self._within_guard(price, config), "oracle: index moved too fast"
    return (price, oldest, fresh)


@internal
@view
def _answer() -> (uint256, uint256):
    """
    @dev (answer, updatedAt) of `latestRoundData`: the cache or the median of
         the fresh sources with a quorum; without a fresh quorum the median
         of every source's latest report (max_age read as 2**24 - 1 s, the
         field's largest value). The spread rule and the guard apply to both.
    """
    config: uint256 = self._config
    cache: uint256 = self._cache
    if cache != 0 and block.timestamp <= cache & TS_MASK:
        return (cache >> TS_BITS, (cache & TS_MASK) - ((config >> C_MAX_AGE) & MASK24))
    price: uint256 = 0
    oldest: uint256 = 0
    fresh: uint256 = 0
    agree: bool = False
    price, oldest, fresh, agree = self._median_unchecked(config)
    quorum_: uint256 = (config >> 8) & 255
    if fresh < quorum_ or fresh == 0:
        price, oldest, fresh, agree = self._median_unchecked(config | (MASK24 << C_MAX_AGE))
        assert fresh > 0, "oracle: no answer"
        assert fresh >= quorum_, "oracle: below quorum"
    assert agree, "oracle: sources disagree"
    assert self._within_guard(price, config), "oracle: index moved too fast"
    return (price, oldest)


@internal
@view
def _median_unchecked(config: uint256) -> (uint256, uint256, uint256, bool):
    """
    @dev (median of fresh sources, oldest fresh timestamp, fresh count, the
         middle prices agree). Even counts take the mean of the two middle
         prices, rounded down; they agree when the higher is at most
         (1 + max_spread) x the lower (always, for an odd count).
    """
    n: uint256 = config & 255
    max_age_: uint256 = (config >> C_MAX_AGE) & MASK24
    prices: uint256[MAX_SOURCES] = empty(uint256[MAX_SOURCES])
    m: uint256 = 0
    oldest: uint256 = max_value(uint256)
    for i: uint256 in range(n, bound=MAX_SOURCES):
        word: uint256 = self._source_word[i]
        p: uint256 = (word >> TS_BITS) & PRICE_MASK
        t: uint256 = word & TS_MASK
        if convert(word >> 248, uint8) == KIND_AGGREGATOR:
            p, t = self._read_aggregator(self._source_addr[i], convert((word >> 240) & 255, uint8))
        # fresh: positive, not from the future, younger than max_age
        if p == 0 or t > block.timestamp or block.timestamp - t > max_age_:
            continue
        oldest = min(oldest, t)
        # insertion sort: at most MAX_SOURCES elements (m < n <= MAX_SOURCES)
        j: uint256 = m
        m = unsafe_add(m, 1)
        for _k: uint256 in range(MAX_SOURCES):
            if j == 0 or prices[unsafe_sub(j, 1)] <= p:
                break
            prices[j] = prices[unsafe_sub(j, 1)]
            j = unsafe_sub(j, 1)
        prices[j] = p
    if m == 0:
        return (0, 0, 0, True)
    if m % 2 == 1:
        return (prices[m // 2], oldest, m, True)
    lo: uint256 = prices[m // 2 - 1]
    hi: uint256 = prices[m // 2]
    # dev: every price <= PRICE_MASK (reports and feeds alike): the sum < 2**129
    return (unsafe_add(lo, hi) // 2, oldest, m, hi * WAD <= lo * (WAD + self._max_spread * BPS))
