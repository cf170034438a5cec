import boa

from .conftest import WAD, now


def test_source__reporter_kind(oracle, reporters):
    ts = now()
    oracle.report(123 * WAD, ts, sender=reporters[1])
    assert oracle.source(1) == (1, reporters[1], 123 * WAD, ts)


def test_source__reporter_never_reported(oracle, reporters):
    assert oracle.source(0) == (1, reporters[0], 0, 0)


def test_source__aggregator_kind_read_live(oracle, owner, make_aggregator):
    feed = make_aggregator(decimals=8, answer=250 * 10**8, updated_at=now() - 7)
    i = oracle.add_aggregator(feed.address, sender=owner)
    assert oracle.source(i) == (2, feed.address, 250 * WAD, now() - 7)
    boa.env.time_travel(seconds=12)
    feed.set_answer(260 * 10**8, now(), sender=owner)
    assert oracle.source(i) == (2, feed.address, 260 * WAD, now())


def test_source__stale_price_still_shown(oracle, reporters):
    ts = now()
    oracle.report(123 * WAD, ts, sender=reporters[0])
    boa.env.time_travel(seconds=3_600)
    assert oracle.source(0) == (1, reporters[0], 123 * WAD, ts)


def test_source__index_out_of_range__reverts(oracle):
    with boa.reverts("oracle: no such source"):
        oracle.source(3)
    with boa.reverts("oracle: no such source"):
        oracle.source(2**256 - 1)
