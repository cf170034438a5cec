import boa

from .conftest import MAX_AGE, WAD, now, report_all


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


def test_latest_round_data__all_stale__reverts(oracle, reporters):
    report_all(oracle, reporters, [100 * WAD, 102 * WAD, 101 * WAD])
    boa.env.time_travel(seconds=MAX_AGE + 1)
    with boa.reverts("oracle: stale index"):
        oracle.latestRoundData()


def test_latest_round_data__never_reported__reverts(oracle):
    with boa.reverts("oracle: stale index"):
        oracle.latestRoundData()


def test_latest_round_data__below_quorum__reverts(oracle, reporters):
    report_all(oracle, reporters[:1], [100 * WAD])
    with boa.reverts("oracle: below quorum"):
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
