# pragma version 0.4.3
# pragma nonreentrancy on
"""
@title IndexOracle
@license MIT
@notice The index price of one market (PROTOCOL.md §4): the median of the
        fresh sources, valid only with at least `quorum` fresh sources.
        A source is either a reporter account that pushes (price, timestamp)
        or a Chainlink AggregatorV3 feed read with `latestRoundData()`.
        A report must be > 0, not from the future, and a source's timestamps
        never go backwards. The oracle itself exposes `latestRoundData()`
        (18 decimals) so other contracts can consume it.
@custom:security Trust: the owner chooses the sources; the median tolerates
        fewer than half of the fresh sources being wrong. A reader never
        gets a price from a stale, zero or quorum-less set: `index()` reverts.
"""

from snekmate.auth import ownable
from snekmate.auth import ownable_2step

from .interfaces import IIndexOracle
from .interfaces import IAggregatorV3

implements: IIndexOracle

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

# packed source word: kind (8 bits) | aggregator decimals (8) | price (128) | timestamp (64)
PRICE_BITS: constant(uint256) = 128
TS_BITS: constant(uint256) = 64
PRICE_MASK: constant(uint256) = (1 << 128) - 1
TS_MASK: constant(uint256) = (1 << 64) - 1

description: public(String[32])
# packed config word, read once per index: max_age (64) | quorum (8) | source_count (8)
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


@deploy
def __init__(
    description_: String[32],
    reporters: DynArray[address, MAX_SOURCES],
    max_age_: uint256,
    quorum_: uint256,
):
    """
    @notice Deploy an index oracle with an initial set of reporter sources.
    @param description_ e.g. "BTC-PERP index".
    @param reporters Reporter accounts, one source each.
    @param max_age_ Seconds after which a report is stale (5 .. 86,400).
    @param quorum_ Fresh sources needed for a valid index (1 .. sources).
    """
    ownable.__init__()
    ownable_2step.__init__()
    self.description = description_
    for r: address in reporters:
        self._add_source(KIND_REPORTER, r, 0)
    self._set_max_age(max_age_)
    self._set_quorum(quorum_)


# ---------------------------------------------------------------- reads

@external
@view
def max_age() -> uint256:
    """
    @notice Seconds after which a source's price is stale.
    """
    return self._config >> 16


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
    @dev Reverts "oracle: stale index" when no source is fresh and
         "oracle: below quorum" when fewer than `quorum` are.
    """
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
    price, oldest, fresh = self._median_unchecked()
    return (fresh > 0 and fresh >= (self._config >> 8) & 255, price, fresh)


@external
@view
def latestRoundData() -> (uint80, int256, uint256, uint256, uint80):
    """
    @notice AggregatorV3-style read of the index (18 decimals). `updatedAt`
            is the oldest timestamp among the fresh sources used; the round
            id is that timestamp. Reverts like `index()` when invalid.
    """
    price: uint256 = 0
    oldest: uint256 = 0
    fresh: uint256 = 0
    price, oldest, fresh = self._median()
    return (convert(oldest, uint80), convert(price, int256), oldest, oldest, convert(oldest, uint80))


@external
@pure
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
def report(price: uint256, timestamp: uint256):
    """
    @notice Push a price for the caller's source.
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
    log IIndexOracle.PriceReported(reporter=msg.sender, source=i, price=price, timestamp=timestamp)
    self._refresh_cache()


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
    self._source_word[n] = (convert(kind, uint256) << 248) | (convert(dec, uint256) << 240)
    self._source_addr[n] = addr
    self._config = (self._config >> 8 << 8) | (n + 1)
    self._cache = 0
    log IIndexOracle.SourceAdded(addr=addr, source=n, kind=kind)
    return n


@internal
def _refresh_cache():
    config: uint256 = self._config
    n: uint256 = config & 255
    for i: uint256 in range(n, bound=MAX_SOURCES):
        if convert(self._source_word[i] >> 248, uint8) != KIND_REPORTER:
            self._cache = 0
            return
    price: uint256 = 0
    oldest: uint256 = 0
    fresh: uint256 = 0
    price, oldest, fresh = self._median_unchecked()
    if fresh == 0 or fresh < (config >> 8) & 255:
        self._cache = 0
        return
    self._cache = (price << TS_BITS) | (oldest + (config >> 16))


@internal
def _set_max_age(max_age_: uint256):
    assert max_age_ >= MIN_MAX_AGE and max_age_ <= MAX_MAX_AGE, "oracle: max_age out of bounds"
    self._config = (max_age_ << 16) | (self._config & 65535)
    self._cache = 0
    log IIndexOracle.MaxAgeSet(max_age=max_age_)


@internal
def _set_quorum(quorum_: uint256):
    assert quorum_ >= 1 and quorum_ <= self._config & 255, "oracle: quorum out of bounds"
    self._config = (self._config >> 16 << 16) | (quorum_ << 8) | (self._config & 255)
    self._cache = 0
    log IIndexOracle.QuorumSet(quorum=quorum_)


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
        return (cache >> TS_BITS, (cache & TS_MASK) - (self._config >> 16), (self._config >> 8) & 255)
    price: uint256 = 0
    oldest: uint256 = 0
    fresh: uint256 = 0
    price, oldest, fresh = self._median_unchecked()
    assert fresh > 0, "oracle: stale index"
    assert fresh >= (self._config >> 8) & 255, "oracle: below quorum"
    return (price, oldest, fresh)


@internal
@view
def _median_unchecked() -> (uint256, uint256, uint256):
    """
    @dev (median of fresh sources, oldest fresh timestamp, fresh count).
         Even counts take the mean of the two middle prices, rounded down.
    """
    config: uint256 = self._config
    n: uint256 = config & 255
    max_age_: uint256 = config >> 16
    prices: DynArray[uint256, MAX_SOURCES] = []
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
        # insertion sort: at most MAX_SOURCES elements
        prices.append(p)
        j: uint256 = len(prices) - 1
        for _k: uint256 in range(MAX_SOURCES):
            if j == 0 or prices[j - 1] <= prices[j]:
                break
            tmp: uint256 = prices[j - 1]
            prices[j - 1] = prices[j]
            prices[j] = tmp
            j -= 1
    m: uint256 = len(prices)
    if m == 0:
        return (0, 0, 0)
    if m % 2 == 1:
        return (prices[m // 2], oldest, m)
    # dev: every price <= PRICE_MASK (reports and feeds alike): the sum < 2**129
    return (unsafe_add(prices[m // 2 - 1], prices[m // 2]) // 2, oldest, m)
