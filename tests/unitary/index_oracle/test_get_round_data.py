"""The rest of the AggregatorV3 read side: getRoundData (only the latest round is
kept), version, decimals, description (PROTOCOL.md §4)."""

import boa

from .conftest import MAX_AGE, WAD, now, report_all

NOT_KEPT = "oracle: round not kept"


def test_get_round_data__latest_round_id__same_as_latest_round_data(oracle, reporters):
    report_all(oracle, reporters, [100 * WAD, 102 * WAD, 101 * WAD])
    latest = oracle.latestRoundData()
    assert oracle.getRoundData(latest[0]) == latest == (now(), 101 * WAD, now(), now(), now())


def test_get_round_data__stale__latest_round_id_gives_last_answer(oracle, reporters):
    ts = now()
    report_all(oracle, reporters, [100 * WAD, 102 * WAD, 101 * WAD])
    boa.env.time_travel(seconds=MAX_AGE + 1)
    assert oracle.getRoundData(ts) == (ts, 101 * WAD, ts, ts, ts)


def test_get_round_data__other_round_id__reverts(oracle, reporters):
    ts = now()
    report_all(oracle, reporters, [100 * WAD, 102 * WAD, 101 * WAD], timestamp=ts - 10)
    for round_id in (0, ts - 11, ts - 9, ts, 2**80 - 1):
        with boa.reverts(NOT_KEPT):
            oracle.getRoundData(round_id)


def test_get_round_data__past_round_after_a_new_one__reverts(oracle, reporters):
    ts = now()
    report_all(oracle, reporters, [100 * WAD, 102 * WAD, 101 * WAD])
    boa.env.time_travel(seconds=5)
    report_all(oracle, reporters, [100 * WAD, 102 * WAD, 101 * WAD])
    with boa.reverts(NOT_KEPT):
        oracle.getRoundData(ts)
    assert oracle.getRoundData(ts + 5)[3] == ts + 5


def test_get_round_data__no_answer__reverts_like_latest_round_data(oracle):
    with boa.reverts("oracle: no answer"):
        oracle.getRoundData(0)


def test_version_decimals_description(oracle):
    assert oracle.version() == 1
    assert oracle.decimals() == 18
    assert oracle.description() == "BTC-PERP index"
