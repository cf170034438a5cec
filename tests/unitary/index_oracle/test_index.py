import boa
import pytest

from .conftest import MAX_AGE, WAD, now, report_all


@pytest.fixture
def reporters5():
    return [boa.env.generate_address(f"reporter-{i}") for i in range(5)]


def test_index__median_of_three(oracle, reporters):
    report_all(oracle, reporters, [101 * WAD, 99 * WAD, 100 * WAD])
    assert oracle.index() == 100 * WAD


def test_index__median_of_three__order_independent(oracle, reporters):
    for prices in ([1, 2, 3], [3, 2, 1], [2, 3, 1], [1, 3, 2]):
        report_all(oracle, reporters, [p * WAD for p in prices])
        assert oracle.index() == 2 * WAD


def test_index__median_of_two__mean_rounded_down(make_oracle, reporters):
    oracle = make_oracle(reporters[:2], quorum=2)
    report_all(oracle, reporters[:2], [100 * WAD, 100 * WAD + 3])
    assert oracle.index() == 100 * WAD + 1  # (2 * 100e18 + 3) // 2


def test_index__median_of_four__mean_of_middle_two_rounded_down(make_oracle):
    reporters = [boa.env.generate_address(f"reporter-{i}") for i in range(4)]
    oracle = make_oracle(reporters, quorum=3)
    report_all(oracle, reporters, [500 * WAD, 7, 100 * WAD, 100 * WAD + 3])
    # sorted: 7, 100e18, 100e18 + 3, 500e18 -> (2 * 100e18 + 3) // 2
    assert oracle.index() == 100 * WAD + 1


def test_index__even_fresh_count__mean_of_middle_two(oracle, reporters):
    """Three sources of which two are fresh: the mean of the two."""
    report_all(oracle, reporters[:2], [100 * WAD, 100 * WAD + WAD // 2])
    assert oracle.index() == 100 * WAD + WAD // 4


def test_index__single_source_quorum_one(make_oracle, reporters):
    oracle = make_oracle(reporters[:1], quorum=1)
    report_all(oracle, reporters[:1], [42 * WAD])
    assert oracle.index() == 42 * WAD


def test_index__outlier_voted_out_by_median(oracle, reporters):
    report_all(oracle, reporters, [100 * WAD, 1_000 * WAD, 101 * WAD])
    assert oracle.index() == 101 * WAD


def test_index__low_outlier_voted_out_by_median(oracle, reporters):
    report_all(oracle, reporters, [100 * WAD, 1, 101 * WAD])
    assert oracle.index() == 100 * WAD


def test_index__two_outliers_of_five_voted_out(make_oracle, reporters5):
    oracle = make_oracle(reporters5, quorum=3)
    report_all(oracle, reporters5, [10 * WAD, 100 * WAD, 1_000 * WAD, 101 * WAD, 99 * WAD])
    assert oracle.index() == 100 * WAD


def test_index__median_of_eight(make_oracle):
    reporters = [boa.env.generate_address(f"reporter-{i}") for i in range(8)]
    oracle = make_oracle(reporters, quorum=8)
    prices = [108, 103, 107, 101, 106, 102, 105, 104]
    report_all(oracle, reporters, [p * WAD for p in prices])
    assert oracle.index() == 104 * WAD + WAD // 2


def test_index__largest_prices__no_overflow(oracle, reporters):
    top = 2**128 - 1
    report_all(oracle, reporters[:2], [top, top - 1])
    assert oracle.index() == top - 1  # (2 * top - 1) // 2


def test_index__stale_source_dropped(oracle, reporters):
    report_all(oracle, reporters[:1], [1_000 * WAD])
    boa.env.time_travel(seconds=MAX_AGE + 1)
    report_all(oracle, reporters[1:], [300 * WAD, 302 * WAD])
    # the stale 1000 no longer counts: mean of 300 and 302
    assert oracle.index() == 301 * WAD
    assert oracle.index_status() == (True, 301 * WAD, 2)


def test_index__exactly_max_age__fresh(oracle, reporters):
    report_all(oracle, reporters, [100 * WAD, 101 * WAD, 102 * WAD])
    boa.env.time_travel(seconds=MAX_AGE)
    assert oracle.index() == 101 * WAD
    assert oracle.index_status()[2] == 3


def test_index__max_age_plus_one__stale(oracle, reporters):
    report_all(oracle, reporters, [100 * WAD, 101 * WAD, 102 * WAD])
    boa.env.time_travel(seconds=MAX_AGE + 1)
    with boa.reverts("oracle: stale index"):
        oracle.index()


def test_index__all_stale__reverts(oracle, reporters):
    report_all(oracle, reporters, [100 * WAD, 101 * WAD, 102 * WAD])
    boa.env.time_travel(seconds=3_600)
    with boa.reverts("oracle: stale index"):
        oracle.index()


def test_index__never_reported__reverts_stale(oracle):
    with boa.reverts("oracle: stale index"):
        oracle.index()


def test_index__fresh_below_quorum__reverts(oracle, reporters):
    report_all(oracle, reporters[:1], [100 * WAD])
    with boa.reverts("oracle: below quorum"):
        oracle.index()


def test_index__quorum_lost_by_staleness__reverts(oracle, reporters):
    ts = now()
    oracle.report(100 * WAD, ts - 30, sender=reporters[0])
    oracle.report(101 * WAD, ts, sender=reporters[1])
    assert oracle.index() == 100 * WAD + WAD // 2
    boa.env.time_travel(seconds=31)
    with boa.reverts("oracle: below quorum"):
        oracle.index()


def test_index__never_reported_source_does_not_count(oracle, reporters):
    """Two of three reported: the silent one is neither a price of 0 nor a vote."""
    report_all(oracle, reporters[:2], [300 * WAD, 302 * WAD])
    assert oracle.index() == 301 * WAD
    assert oracle.index_status()[2] == 2


def test_index__never_reported_source__quorum_three__reverts(make_oracle, reporters):
    oracle = make_oracle(reporters, quorum=3)
    report_all(oracle, reporters[:2], [100 * WAD, 200 * WAD])
    with boa.reverts("oracle: below quorum"):
        oracle.index()


def test_index__refreshed_source_counts_again(oracle, reporters):
    report_all(oracle, reporters, [100 * WAD, 101 * WAD, 102 * WAD])
    boa.env.time_travel(seconds=MAX_AGE + 1)
    report_all(oracle, reporters[:2], [200 * WAD, 202 * WAD])
    assert oracle.index() == 201 * WAD


def test_index__max_age_change_applies_immediately(oracle, reporters, owner):
    report_all(oracle, reporters, [100 * WAD, 101 * WAD, 102 * WAD])
    boa.env.time_travel(seconds=30)
    oracle.set_max_age(29, sender=owner)
    with boa.reverts("oracle: stale index"):
        oracle.index()
    oracle.set_max_age(30, sender=owner)
    assert oracle.index() == 101 * WAD


def test_index__protocol_oracle_follows_set_index(protocol):
    oracle = protocol.oracle()
    protocol.set_index(95_000)
    assert oracle.index() == 95_000 * WAD
    reporters = protocol.d.markets["BTC-PERP"].reporters
    # one reporter goes rogue: the median of the other two holds
    oracle.report(10 * 95_000 * WAD, now(), sender=reporters[0])
    assert oracle.index() == 95_000 * WAD


def test_index__protocol_oracle_stale_after_max_age(protocol):
    oracle = protocol.oracle()
    protocol.set_index(95_000)
    protocol.warp(oracle.max_age() + 1)
    with boa.reverts("oracle: stale index"):
        oracle.index()
