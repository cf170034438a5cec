import boa

from .conftest import MAX_AGE, WAD, report_all


def test_index_status__never_reported__invalid_zero(oracle):
    assert oracle.index_status() == (False, 0, 0)


def test_index_status__valid__price_and_fresh_count(oracle, reporters):
    report_all(oracle, reporters, [100 * WAD, 300 * WAD, 200 * WAD])
    assert oracle.index_status() == (True, 200 * WAD, 3)


def test_index_status__at_quorum__valid(oracle, reporters):
    report_all(oracle, reporters[:2], [300 * WAD, 302 * WAD])
    assert oracle.index_status() == (True, 301 * WAD, 2)


def test_index_status__below_quorum__invalid_with_median(oracle, reporters):
    report_all(oracle, reporters[:1], [100 * WAD])
    assert oracle.index_status() == (False, 100 * WAD, 1)


def test_index_status__all_stale__invalid_zero(oracle, reporters):
    report_all(oracle, reporters, [100 * WAD, 300 * WAD, 200 * WAD])
    boa.env.time_travel(seconds=MAX_AGE + 1)
    assert oracle.index_status() == (False, 0, 0)


def test_index_status__agrees_with_index_when_valid(oracle, reporters):
    report_all(oracle, reporters, [7 * WAD, 5 * WAD, 6 * WAD])
    valid, price, _ = oracle.index_status()
    assert valid
    assert price == oracle.index()


def test_index_status__quorum_one_single_fresh__valid(make_oracle, reporters):
    oracle = make_oracle(reporters, quorum=1)
    report_all(oracle, reporters[:1], [100 * WAD])
    assert oracle.index_status() == (True, 100 * WAD, 1)
