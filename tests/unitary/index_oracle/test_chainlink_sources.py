"""Chainlink AggregatorV3 sources: scaling to WAD, staleness, broken feeds."""

import boa
import pytest

from .conftest import MAX_AGE, WAD, now, report_all

INT256_MAX = 2**255 - 1

REVERTING_FEED = """
broken: public(bool)

@external
@view
def decimals() -> uint8:
    return 8

@external
def set_broken(broken_: bool):
    self.broken = broken_

@external
@view
def latestRoundData() -> (uint80, int256, uint256, uint256, uint80):
    assert not self.broken, "feed: down"
    return (1, 100 * 10**8, block.timestamp, block.timestamp, 1)
"""

SHORT_RETURN_FEED = """
@external
@view
def decimals() -> uint8:
    return 8

@external
@view
def latestRoundData() -> (uint80, int256, uint256):
    return (1, 100 * 10**8, block.timestamp)
"""


@pytest.fixture
def oracle1(make_oracle, reporters):
    """Reporters 0 and 1 only, quorum 1: room to add aggregators."""
    return make_oracle(reporters[:2], quorum=1)


def add(oracle, owner, feed) -> int:
    i = oracle.add_aggregator(feed.address, sender=owner)
    return i


# ---------------------------------------------------------------- add_aggregator


def test_add_aggregator__appends_source_and_emits(oracle, owner, make_aggregator):
    feed = make_aggregator(decimals=8)
    assert oracle.add_aggregator(feed.address, sender=owner) == 3
    added = [e for e in oracle.get_logs() if type(e).__name__ == "SourceAdded"]
    assert [(e.addr, e.source, e.kind) for e in added] == [(feed.address, 3, 2)]
    assert oracle.source_count() == 4
    assert oracle.reporter_source(feed.address) == 0


def test_add_aggregator__feed_cannot_report(oracle, owner, make_aggregator):
    feed = make_aggregator(decimals=8)
    add(oracle, owner, feed)
    with boa.reverts("oracle: not a reporter"):
        oracle.report(100 * WAD, now(), sender=feed.address)


@pytest.mark.parametrize("decimals", [0, 36])
def test_add_aggregator__decimals_at_bound__accepted(oracle, owner, make_aggregator, decimals):
    add(oracle, owner, make_aggregator(decimals=decimals))


def test_add_aggregator__decimals_above_36__reverts(oracle, owner, make_aggregator):
    feed = make_aggregator(decimals=37)
    with boa.reverts("oracle: aggregator decimals"):
        oracle.add_aggregator(feed.address, sender=owner)


def test_add_aggregator__eoa__reverts(oracle, owner):
    eoa = boa.env.generate_address("not-a-feed")
    with boa.reverts():
        oracle.add_aggregator(eoa, sender=owner)


def test_add_aggregator__zero_address__reverts(oracle, owner):
    with boa.reverts():
        oracle.add_aggregator("0x0000000000000000000000000000000000000000", sender=owner)


def test_add_aggregator__same_feed_twice__two_sources(oracle1, owner, make_aggregator):
    """Only reporters are deduplicated; the owner chooses the feeds."""
    feed = make_aggregator(decimals=8, answer=100 * 10**8)
    add(oracle1, owner, feed)
    add(oracle1, owner, feed)
    assert oracle1.source_count() == 4
    assert oracle1.index_status() == (True, 100 * WAD, 2)


# ---------------------------------------------------------------- scaling


@pytest.mark.parametrize(
    "decimals, answer, expected",
    [
        (8, 100_000 * 10**8, 100_000 * WAD),
        (8, 12_345_678_901, 123_456_789_010_000_000_000),  # 123.45678901
        (18, 100_000 * WAD + 7, 100_000 * WAD + 7),
        (20, 100_000 * 10**20, 100_000 * WAD),
        (20, 100_000 * 10**20 + 99, 100_000 * WAD),  # truncated
        (0, 3, 3 * WAD),
        (36, 5 * 10**36, 5 * WAD),
    ],
)
def test_aggregator__scaled_to_wad(
    make_oracle, owner, reporters, make_aggregator, decimals, answer, expected
):
    oracle = make_oracle(reporters[:1], quorum=1)
    feed = make_aggregator(decimals=decimals, answer=answer)
    i = add(oracle, owner, feed)
    assert oracle.source(i) == (2, feed.address, expected, now())
    assert oracle.index_status() == (True, expected, 1)
    assert oracle.index() == expected


def test_aggregator__too_precise_answer_scales_to_zero__not_counted(oracle1, owner, make_aggregator):
    feed = make_aggregator(decimals=20, answer=99)  # < 1 wei in WAD
    add(oracle1, owner, feed)
    assert oracle1.index_status() == (False, 0, 0)


# ---------------------------------------------------------------- in the median


def test_aggregators_mixed_with_reporters__median(make_oracle, owner, reporters, make_aggregator):
    oracle = make_oracle(reporters, quorum=3)
    add(oracle, owner, make_aggregator(decimals=8, answer=104 * 10**8))
    add(oracle, owner, make_aggregator(decimals=18, answer=103 * WAD))
    add(oracle, owner, make_aggregator(decimals=20, answer=1_000 * 10**20))  # outlier
    report_all(oracle, reporters, [100 * WAD, 101 * WAD, 102 * WAD])
    # 100, 101, 102, 103, 104, 1000 -> (102 + 103) / 2
    assert oracle.index() == 102 * WAD + WAD // 2
    assert oracle.index_status()[2] == 6


def test_aggregators_only__valid_index(make_oracle, owner, reporters, make_aggregator):
    oracle = make_oracle(reporters[:2], quorum=2)
    add(oracle, owner, make_aggregator(decimals=8, answer=300 * 10**8))
    add(oracle, owner, make_aggregator(decimals=8, answer=302 * 10**8))
    # reporters silent, the two feeds reach the quorum
    assert oracle.index() == 301 * WAD


def test_aggregator__updated_at_used_for_latest_round_data(oracle1, owner, reporters, make_aggregator):
    ts = now()
    oracle1.report(300 * WAD, ts, sender=reporters[0])
    add(oracle1, owner, make_aggregator(decimals=8, answer=302 * 10**8, updated_at=ts - 30))
    _, answer, _, updated_at, _ = oracle1.latestRoundData()
    assert answer == 301 * WAD
    assert updated_at == ts - 30


# ---------------------------------------------------------------- not counted


@pytest.mark.parametrize("answer", [0, -1, -(100 * 10**8)])
def test_aggregator__non_positive_answer__not_counted(oracle1, owner, reporters, make_aggregator, answer):
    i = add(oracle1, owner, make_aggregator(decimals=8, answer=answer))
    report_all(oracle1, reporters[:1], [100 * WAD])
    assert oracle1.source(i)[2:] == (0, 0)
    assert oracle1.index_status() == (True, 100 * WAD, 1)


def test_aggregator__never_answered__not_counted(oracle1, owner, make_aggregator):
    add(oracle1, owner, make_aggregator(decimals=8))
    assert oracle1.index_status() == (False, 0, 0)
    with boa.reverts("oracle: stale index"):
        oracle1.index()


def test_aggregator__stale__not_counted(oracle1, owner, reporters, make_aggregator):
    add(oracle1, owner, make_aggregator(decimals=8, answer=500 * 10**8, updated_at=now() - MAX_AGE - 1))
    report_all(oracle1, reporters[:1], [100 * WAD])
    assert oracle1.index_status() == (True, 100 * WAD, 1)


def test_aggregator__exactly_max_age__counted(oracle1, owner, make_aggregator):
    add(oracle1, owner, make_aggregator(decimals=8, answer=500 * 10**8, updated_at=now() - MAX_AGE))
    assert oracle1.index_status() == (True, 500 * WAD, 1)


def test_aggregator__goes_stale_with_time(oracle1, owner, make_aggregator):
    add(oracle1, owner, make_aggregator(decimals=8, answer=500 * 10**8))
    assert oracle1.index() == 500 * WAD
    boa.env.time_travel(seconds=MAX_AGE + 1)
    with boa.reverts("oracle: stale index"):
        oracle1.index()


def test_aggregator__updated_at_in_future__not_counted(oracle1, owner, reporters, make_aggregator):
    add(oracle1, owner, make_aggregator(decimals=8, answer=500 * 10**8, updated_at=now() + 1))
    report_all(oracle1, reporters[:1], [100 * WAD])
    assert oracle1.index_status() == (True, 100 * WAD, 1)
    _, _, _, updated_at, _ = oracle1.latestRoundData()
    assert updated_at == now()


def test_aggregator__reverting_feed__does_not_brick_index(oracle1, owner, reporters):
    feed = boa.loads(REVERTING_FEED)
    i = add(oracle1, owner, feed)
    report_all(oracle1, reporters[:1], [101 * WAD])
    assert oracle1.index() == (100 * WAD + 101 * WAD) // 2
    feed.set_broken(True)
    assert oracle1.source(i) == (2, feed.address, 0, 0)
    assert oracle1.index() == 101 * WAD
    assert oracle1.index_status() == (True, 101 * WAD, 1)


def test_aggregator__reverting_feed__below_quorum_reverts(make_oracle, owner, reporters):
    oracle = make_oracle(reporters[:1], quorum=1)
    feed = boa.loads(REVERTING_FEED)
    add(oracle, owner, feed)
    oracle.set_quorum(2, sender=owner)
    report_all(oracle, reporters[:1], [101 * WAD])
    feed.set_broken(True)
    with boa.reverts("oracle: below quorum"):
        oracle.index()
    assert oracle.index_status() == (False, 101 * WAD, 1)


def test_aggregator__short_return_data__not_counted(oracle1, owner, reporters):
    i = add(oracle1, owner, boa.loads(SHORT_RETURN_FEED))
    report_all(oracle1, reporters[:1], [101 * WAD])
    assert oracle1.source(i)[2:] == (0, 0)
    assert oracle1.index_status() == (True, 101 * WAD, 1)


def test_aggregator__code_removed__not_counted(oracle1, owner, reporters, make_aggregator):
    """A feed address that no longer has code (a call to it 'succeeds' with no data)."""
    feed = make_aggregator(decimals=8, answer=500 * 10**8)
    i = add(oracle1, owner, feed)
    boa.env.set_code(feed.address, b"")
    report_all(oracle1, reporters[:1], [101 * WAD])
    assert oracle1.source(i)[2:] == (0, 0)
    assert oracle1.index() == 101 * WAD


@pytest.mark.parametrize("decimals", [0, 8])
def test_aggregator__huge_answer__does_not_brick_index(oracle1, owner, reporters, make_aggregator, decimals):
    """A feed whose answer overflows when scaled to WAD is a broken feed: per
    `_read_aggregator`'s NatSpec it must count as not fresh and never brick
    the index while the reporters still reach the quorum."""
    add(oracle1, owner, make_aggregator(decimals=decimals, answer=INT256_MAX))
    report_all(oracle1, reporters[:2], [300 * WAD, 302 * WAD])
    assert oracle1.index() == 301 * WAD


@pytest.mark.parametrize("decimals", [0, 8])
def test_index_status__huge_aggregator_answer__does_not_revert(
    oracle1, owner, reporters, make_aggregator, decimals
):
    """`index_status()` is documented to never revert."""
    add(oracle1, owner, make_aggregator(decimals=decimals, answer=INT256_MAX))
    report_all(oracle1, reporters[:2], [300 * WAD, 302 * WAD])
    assert oracle1.index_status() == (True, 301 * WAD, 2)


def test_aggregator__largest_answer_scalable_to_wad__exact_or_rejected(oracle1, owner, make_aggregator):
    """The largest 8-decimal answer that still fits in uint256 once scaled is
    either counted exactly or rejected as a broken feed, without reverting."""
    answer = (2**256 - 1) // 10**10
    add(oracle1, owner, make_aggregator(decimals=8, answer=answer))
    assert oracle1.index_status() in ((True, answer * 10**10, 1), (False, 0, 0))


def test_aggregator__two_huge_scaled_answers__median_not_wrapped(
    make_oracle, owner, reporters, make_aggregator
):
    """Two 8-decimal feeds whose answers scale to just under 2**256 WAD: the
    mean of the two middle prices must not wrap around (the median uses
    `unsafe_add`, whose "sum < 2**129" premise holds for reporter prices only).
    Either the feeds count (median == p) or they are rejected as broken (index
    invalid), never a wrapped, made-up price."""
    oracle = make_oracle(reporters[:1], quorum=1)
    answer = (2**256 - 1) // 10**10
    p = answer * 10**10
    add(oracle, owner, make_aggregator(decimals=8, answer=answer))
    add(oracle, owner, make_aggregator(decimals=8, answer=answer))
    valid, price, fresh = oracle.index_status()
    assert (valid, price, fresh) in ((True, p, 2), (False, 0, 0))


def test_aggregator__answer_above_price_range__not_fresh(oracle1, owner, make_aggregator):
    """A feed price above 2**128 - 1 (WAD) is not a price: the feed counts as
    not fresh, so two such feeds leave no fresh source (and nothing wraps)."""
    add(oracle1, owner, make_aggregator(decimals=18, answer=INT256_MAX))
    add(oracle1, owner, make_aggregator(decimals=18, answer=2**128))
    assert oracle1.index_status()[2] == 0
    with boa.reverts("oracle: stale index"):
        oracle1.index()


def test_aggregator__answer_at_price_range_limit__used(oracle1, owner, make_aggregator):
    add(oracle1, owner, make_aggregator(decimals=18, answer=2**128 - 1))
    assert oracle1.index_status()[1] == 2**128 - 1


# ---------------------------------------------------------------- removal


def test_remove_source__aggregator__reporters_keep_working(make_oracle, owner, reporters, make_aggregator):
    oracle = make_oracle(reporters, quorum=2)
    feed = make_aggregator(decimals=8, answer=500 * 10**8)
    add(oracle, owner, feed)
    oracle.remove_source(0, sender=owner)  # the feed (last) moves to index 0
    assert oracle.source(0)[:2] == (2, feed.address)
    assert oracle.reporter_source(reporters[0]) == 0
    oracle.remove_source(0, sender=owner)  # remove the feed; reporter 2 moves to 0
    assert oracle.source(0)[:2] == (1, reporters[2])
    assert oracle.reporter_source(reporters[2]) == 1
    report_all(oracle, [reporters[2], reporters[1]], [300 * WAD, 302 * WAD])
    assert oracle.index() == 301 * WAD
