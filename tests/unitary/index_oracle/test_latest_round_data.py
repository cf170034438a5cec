import boa
import pytest

from .conftest import MAX_AGE, WAD, now, report_all

BPS = 10**14


def test_latest_round_data__answer_is_index(oracle, reporters):
    report_all(oracle, reporters, [100 * WAD, 102 * WAD, 101 * WAD])
    round_id, answer, started_at, updated_at, answered_in_round = oracle.latestRoundData()
    assert answer == oracle.index() == 101 * WAD
    assert updated_at == now()


def test_latest_round_data__updated_at_is_oldest_fresh_timestamp(oracle, reporters):
    ts = now()
    oracle.report(100 * WAD, ts - 20, sender=reporters[0])
    oracle.report(101 * WAD, ts - 5, sender=reporters[1])
    oracle.report(102 * WAD, ts - 10, sender=reporters[2])
    round_id, answer, started_at, updated_at, answered_in_round = oracle.latestRoundData()
    assert answer == 101 * WAD
    assert updated_at == ts - 20
    assert started_at == ts - 20
    assert round_id == answered_in_round == ts - 20


def test_latest_round_data__ignores_stale_timestamps(oracle, reporters):
    ts = now()
    oracle.report(500 * WAD, ts - MAX_AGE - 1, sender=reporters[0])  # stale on arrival
    oracle.report(301 * WAD, ts - 5, sender=reporters[1])
    oracle.report(303 * WAD, ts - 10, sender=reporters[2])
    _, answer, _, updated_at, _ = oracle.latestRoundData()
    assert answer == 302 * WAD
    assert updated_at == ts - 10


# ---------------------------------------------------------------- no fresh quorum: the last answer


def test_latest_round_data__all_stale__returns_last_answer_with_its_age(oracle, reporters):
    ts = now()
    report_all(oracle, reporters, [100 * WAD, 102 * WAD, 101 * WAD])
    boa.env.time_travel(seconds=MAX_AGE + 1)
    with boa.reverts("oracle: stale index"):
        oracle.index()
    assert oracle.latestRoundData() == (ts, 101 * WAD, ts, ts, ts)


def test_latest_round_data__all_stale__updated_at_is_oldest_report(oracle, reporters):
    ts = now()
    oracle.report(100 * WAD, ts - 20, sender=reporters[0])
    oracle.report(103 * WAD, ts - 5, sender=reporters[1])
    oracle.report(101 * WAD, ts - 10, sender=reporters[2])
    boa.env.time_travel(seconds=10 * MAX_AGE)
    round_id, answer, started_at, updated_at, answered_in_round = oracle.latestRoundData()
    assert answer == 101 * WAD
    assert round_id == started_at == updated_at == answered_in_round == ts - 20


def test_latest_round_data__below_fresh_quorum__median_of_every_latest_report(oracle, reporters):
    """One fresh source of three (quorum 2): not the fresh one alone, the median of all
    three latest reports, as old as the oldest of them."""
    ts = now()
    oracle.report(100 * WAD, ts - MAX_AGE - 30, sender=reporters[0])
    oracle.report(104 * WAD, ts - MAX_AGE - 1, sender=reporters[1])
    oracle.report(500 * WAD, ts, sender=reporters[2])
    assert oracle.index_status() == (False, 500 * WAD, 1)
    _, answer, _, updated_at, _ = oracle.latestRoundData()
    assert (answer, updated_at) == (104 * WAD, ts - MAX_AGE - 30)


def test_latest_round_data__never_reported__reverts(oracle):
    with boa.reverts("oracle: no answer"):
        oracle.latestRoundData()


def test_latest_round_data__fewer_reports_than_quorum__reverts(oracle, reporters):
    report_all(oracle, reporters[:1], [100 * WAD])
    with boa.reverts("oracle: below quorum"):
        oracle.latestRoundData()
    boa.env.time_travel(seconds=MAX_AGE + 1)
    with boa.reverts("oracle: below quorum"):
        oracle.latestRoundData()


# ---------------------------------------------------------------- invalid for another reason: reverts


@pytest.fixture
def guarded(make_oracle, reporters):
    """The narrowest guard (5%, 1% per hour), its reference at 100 (every source reported it)."""
    o = make_oracle(reporters, max_divergence=500 * BPS, reference_rate=100 * BPS)
    report_all(o, reporters, [100 * WAD] * 3)
    return o


def test_latest_round_data__fresh_sources_held_by_guard__reverts(guarded, reporters):
    report_all(guarded, reporters, [200 * WAD] * 3)
    assert guarded.index_status() == (False, 200 * WAD, 3)
    with boa.reverts("oracle: index moved too fast"):
        guarded.latestRoundData()


def test_latest_round_data__stale_answer_held_by_guard__reverts(guarded, reporters):
    """A consumer checking only updatedAt, with an age limit longer than max_age, must not
    get the price the guard held back."""
    report_all(guarded, reporters, [200 * WAD] * 3)
    boa.env.time_travel(seconds=MAX_AGE + 1)
    with boa.reverts("oracle: index moved too fast"):
        guarded.latestRoundData()


def test_latest_round_data__fresh_sources_disagree__reverts(oracle, reporters):
    oracle.report(100 * WAD, now() - MAX_AGE - 1, sender=reporters[0])
    report_all(oracle, reporters[1:], [100 * WAD, 110 * WAD])  # 10% apart, max_spread 1%
    with boa.reverts("oracle: sources disagree"):
        oracle.latestRoundData()


def test_latest_round_data__stale_reports_disagree__reverts(oracle, reporters):
    report_all(oracle, reporters[:2], [100 * WAD, 110 * WAD])
    boa.env.time_travel(seconds=MAX_AGE + 1)
    with boa.reverts("oracle: sources disagree"):
        oracle.latestRoundData()


def test_latest_round_data__readable_through_aggregator_interface(oracle, reporters):
    """Another contract consumes the oracle as a Chainlink AggregatorV3 feed."""
    consumer = boa.loads(
        """
interface AggregatorV3:
    def decimals() -> uint8: view
    def latestRoundData() -> (uint80, int256, uint256, uint256, uint80): view

@external
@view
def read(feed: address) -> (uint8, int256, uint256):
    r: uint80 = 0
    answer: int256 = 0
    s: uint256 = 0
    updated: uint256 = 0
    a: uint80 = 0
    r, answer, s, updated, a = staticcall AggregatorV3(feed).latestRoundData()
    return (staticcall AggregatorV3(feed).decimals(), answer, updated)
"""
    )
    report_all(oracle, reporters, [100 * WAD, 102 * WAD, 101 * WAD])
    assert consumer.read(oracle.address) == (18, 101 * WAD, now())
