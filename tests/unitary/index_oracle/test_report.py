import boa
import pytest

from .conftest import WAD, now

PRICE_MAX = 2**128 - 1


def test_report__stores_price_and_timestamp(oracle, reporters):
    reporter = reporters[1]
    ts = now()
    oracle.report(100_000 * WAD, ts, sender=reporter)
    assert oracle.source(1) == (1, reporter, 100_000 * WAD, ts)
    # the other sources are untouched
    assert oracle.source(0)[2:] == (0, 0)
    assert oracle.source(2)[2:] == (0, 0)


def test_report__emits_price_reported(oracle, reporters):
    reporter = reporters[2]
    ts = now() - 3
    oracle.report(12_345 * WAD, ts, sender=reporter)
    logs = oracle.get_logs()
    assert len(logs) == 1
    event = logs[0]
    assert type(event).__name__ == "PriceReported"
    assert event.reporter == reporter
    assert event.price == 12_345 * WAD
    assert event.timestamp == ts


def test_report__not_a_reporter__reverts(oracle, attacker):
    with boa.reverts("oracle: not a reporter"):
        oracle.report(100 * WAD, now(), sender=attacker)


def test_report__owner_is_not_a_reporter__reverts(oracle, owner):
    with boa.reverts("oracle: not a reporter"):
        oracle.report(100 * WAD, now(), sender=owner)


def test_report__zero_price__reverts(oracle, reporters):
    with boa.reverts("oracle: zero price"):
        oracle.report(0, now(), sender=reporters[0])


def test_report__price_too_large__reverts(oracle, reporters):
    with boa.reverts("oracle: price too large"):
        oracle.report(PRICE_MAX + 1, now(), sender=reporters[0])


def test_report__largest_price__accepted(oracle, reporters):
    ts = now()
    oracle.report(PRICE_MAX, ts, sender=reporters[0])
    assert oracle.source(0)[2:] == (PRICE_MAX, ts)


def test_report__smallest_price__accepted(oracle, reporters):
    oracle.report(1, now(), sender=reporters[0])
    assert oracle.source(0)[2] == 1


def test_report__future_timestamp__reverts(oracle, reporters):
    with boa.reverts("oracle: future timestamp"):
        oracle.report(100 * WAD, now() + 1, sender=reporters[0])


def test_report__timestamp_now__accepted(oracle, reporters):
    oracle.report(100 * WAD, now(), sender=reporters[0])
    assert oracle.source(0)[3] == now()


def test_report__timestamp_backwards__reverts(oracle, reporters):
    reporter = reporters[0]
    ts = now()
    oracle.report(100 * WAD, ts, sender=reporter)
    boa.env.time_travel(seconds=10)
    with boa.reverts("oracle: timestamp went backwards"):
        oracle.report(101 * WAD, ts - 1, sender=reporter)


def test_report__equal_timestamp__accepted(oracle, reporters):
    reporter = reporters[0]
    ts = now()
    oracle.report(100 * WAD, ts, sender=reporter)
    oracle.report(101 * WAD, ts, sender=reporter)
    assert oracle.source(0)[2:] == (101 * WAD, ts)


def test_report__later_timestamp__replaces_previous(oracle, reporters):
    reporter = reporters[0]
    ts = now()
    oracle.report(100 * WAD, ts, sender=reporter)
    boa.env.time_travel(seconds=7)
    oracle.report(99 * WAD, ts + 7, sender=reporter)
    assert oracle.source(0)[2:] == (99 * WAD, ts + 7)


def test_report__old_but_increasing_timestamp__accepted_and_stale(oracle, reporters):
    """A late report of an old observation is stored, but does not count as fresh."""
    reporter = reporters[0]
    ts = now() - 3_600
    oracle.report(100 * WAD, ts, sender=reporter)
    assert oracle.source(0)[2:] == (100 * WAD, ts)
    assert oracle.index_status() == (False, 0, 0)


def test_report__timestamps_are_per_source(oracle, reporters):
    """One source's newer report does not constrain another source."""
    ts = now()
    oracle.report(100 * WAD, ts, sender=reporters[0])
    oracle.report(100 * WAD, ts - 5, sender=reporters[1])
    assert oracle.source(1)[3] == ts - 5


@pytest.mark.parametrize("price", [1, 10**18, 2**100])
def test_report__keeps_source_kind(oracle, reporters, price):
    oracle.report(price, now(), sender=reporters[0])
    oracle.report(price, now(), sender=reporters[0])
    assert oracle.source(0)[0] == 1
    assert oracle.reporter_source(reporters[0]) == 1
