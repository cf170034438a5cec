"""The median cache written by `report()` (reporter-only oracles): it must be
indistinguishable from computing the median live."""

import boa

from .conftest import MAX_AGE, WAD, now, report_all


def test_index__cached_until_oldest_source_expires_then_recomputed(oracle, reporters):
    ts = now()
    oracle.report(100 * WAD, ts - 30, sender=reporters[0])
    oracle.report(200 * WAD, ts, sender=reporters[1])
    oracle.report(202 * WAD, ts, sender=reporters[2])
    assert oracle.index() == 200 * WAD
    assert oracle.latestRoundData()[3] == ts - 30
    # the oldest source is fresh up to and including ts - 30 + MAX_AGE
    boa.env.time_travel(seconds=MAX_AGE - 30)
    assert oracle.index() == 200 * WAD
    assert oracle.latestRoundData()[3] == ts - 30
    # one second later it is stale: median of the other two
    boa.env.time_travel(seconds=1)
    assert oracle.index() == 201 * WAD
    assert oracle.latestRoundData()[3] == ts
    assert oracle.index_status() == (True, 201 * WAD, 2)


def test_index__cache_expiry_drops_below_quorum__reverts(make_oracle, reporters):
    oracle = make_oracle(reporters, quorum=3)
    ts = now()
    oracle.report(100 * WAD, ts - 10, sender=reporters[0])
    oracle.report(101 * WAD, ts, sender=reporters[1])
    oracle.report(102 * WAD, ts, sender=reporters[2])
    assert oracle.index() == 101 * WAD
    boa.env.time_travel(seconds=MAX_AGE - 10 + 1)
    with boa.reverts("oracle: below quorum"):
        oracle.index()


def test_index__report_below_quorum_then_more_reports(oracle, reporters):
    oracle.report(300 * WAD, now(), sender=reporters[0])
    with boa.reverts("oracle: below quorum"):
        oracle.index()
    oracle.report(302 * WAD, now(), sender=reporters[1])
    assert oracle.index() == 301 * WAD


def test_index__new_report_replaces_cached_median(oracle, reporters):
    report_all(oracle, reporters, [100 * WAD, 101 * WAD, 102 * WAD])
    assert oracle.index() == 101 * WAD
    boa.env.time_travel(seconds=5)
    oracle.report(90 * WAD, now(), sender=reporters[1])
    assert oracle.index() == 100 * WAD
    assert oracle.latestRoundData()[3] == now() - 5


def test_index__set_max_age_shorter_invalidates_cache(oracle, reporters, owner):
    ts = now()
    report_all(oracle, reporters, [100 * WAD, 101 * WAD, 102 * WAD])
    boa.env.time_travel(seconds=20)
    oracle.set_max_age(10, sender=owner)
    with boa.reverts("oracle: stale index"):
        oracle.index()
    # the Chainlink read returns the last answer with its age (test_latest_round_data_stale.py)
    assert oracle.latestRoundData()[1:4] == (101 * WAD, ts, ts)


def test_index__set_max_age_longer_extends_freshness(oracle, reporters, owner):
    ts = now()
    report_all(oracle, reporters, [100 * WAD, 101 * WAD, 102 * WAD])
    oracle.set_max_age(600, sender=owner)
    boa.env.time_travel(seconds=MAX_AGE + 1)
    assert oracle.index() == 101 * WAD
    assert oracle.latestRoundData()[3] == ts


def test_index__set_quorum_invalidates_cache(oracle, reporters, owner):
    report_all(oracle, reporters[:2], [300 * WAD, 302 * WAD])
    assert oracle.index() == 301 * WAD
    oracle.set_quorum(3, sender=owner)
    with boa.reverts("oracle: below quorum"):
        oracle.latestRoundData()


def test_index__remove_median_source_invalidates_cache(oracle, reporters, owner):
    report_all(oracle, reporters, [600 * WAD, 601 * WAD, 604 * WAD])
    assert oracle.index() == 601 * WAD
    oracle.remove_source(1, sender=owner)
    assert oracle.index() == 602 * WAD


def test_index__add_aggregator_counted_at_once(oracle, reporters, owner, make_aggregator):
    report_all(oracle, reporters, [100 * WAD, 200 * WAD, 400 * WAD])
    assert oracle.index() == 200 * WAD
    oracle.add_aggregator(make_aggregator(decimals=8, answer=201 * 10**8).address, sender=owner)
    assert oracle.index() == 200 * WAD + WAD // 2


def test_index__aggregator_moves_without_report(oracle, reporters, owner, make_aggregator):
    """With an aggregator source no cached value may hide the feed's updates."""
    feed = make_aggregator(decimals=8, answer=602 * 10**8)
    oracle.add_aggregator(feed.address, sender=owner)
    report_all(oracle, reporters, [100 * WAD, 600 * WAD, 900 * WAD])
    assert oracle.index() == 601 * WAD
    feed.set_answer(604 * 10**8, now(), sender=owner)
    assert oracle.index() == 602 * WAD
    feed.set_answer(-1, now(), sender=owner)
    assert oracle.index() == 600 * WAD


def test_index__aggregator_removed_reporters_cached_again(oracle, reporters, owner, make_aggregator):
    feed = make_aggregator(decimals=8, answer=300 * 10**8)
    oracle.add_aggregator(feed.address, sender=owner)
    oracle.remove_source(3, sender=owner)
    report_all(oracle, reporters, [100 * WAD, 200 * WAD, 400 * WAD])
    feed.set_answer(1, now(), sender=owner)
    assert oracle.index() == 200 * WAD
