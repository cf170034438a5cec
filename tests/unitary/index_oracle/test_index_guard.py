"""The index guard (PROTOCOL.md §4): a reference price follows the median at
most `reference_rate` x elapsed seconds (relative); the index is invalid
while the median is more than `max_divergence` away from it."""

import boa
import pytest

from .conftest import WAD, now, report_all

DIVERGENCE = WAD // 2  # 50%
RATE = WAD // 2  # 50% per hour
BPS = 10**14
P = 4_000 * WAD


@pytest.fixture
def guarded(make_oracle, reporters):
    oracle = make_oracle(reporters, max_divergence=DIVERGENCE, reference_rate=RATE)
    report_all(oracle, reporters, [P, P, P])
    return oracle


def _keep_fresh(oracle, reporters, prices, seconds):
    """Time passes in steps of 30 s; every reporter re-reports `prices`."""
    for _ in range(seconds // 30):
        boa.env.time_travel(seconds=30)
        report_all(oracle, reporters, prices)


def test_guard__defaults_and_reads(guarded):
    assert guarded.max_divergence() == DIVERGENCE
    assert guarded.reference_rate() == RATE
    assert guarded.reference_price() == (P, now())
    assert guarded.index() == P


def test_guard__move_within_the_band__valid_at_once(guarded, reporters):
    report_all(guarded, reporters, [P * 3 // 2] * 3)  # +50% exactly: the bound
    assert guarded.index() == P * 3 // 2
    report_all(guarded, reporters, [P] * 3)
    report_all(guarded, reporters, [P * 7 // 10] * 3)  # -30%
    assert guarded.index() == P * 7 // 10
    report_all(guarded, reporters, [P * 7 // 15 - 1] * 3)  # beyond 1 / 1.5 of the reference
    assert not guarded.index_status()[0]


def test_guard__majority_pumps_1000_percent__index_invalid(guarded, reporters):
    report_all(guarded, reporters[:2], [11 * P, 11 * P])
    valid, median, fresh = guarded.index_status()
    assert (valid, median, fresh) == (False, 11 * P, 3)
    with boa.reverts("oracle: index moved too fast"):
        guarded.index()
    with boa.reverts("oracle: index moved too fast"):
        guarded.latestRoundData()
    # the reference moved no further than the rate allows since its checkpoint
    assert guarded.reference_price()[0] == P


def test_guard__sustained_pump__valid_again_only_after_the_reference_catches_up(guarded, reporters):
    """With reports every 30 s the reference compounds at most e^(0.5 t/h):
    a +1000% push stays invalid for ln(11 / 1.5) / 0.5 ~ 4 hours."""
    pumped = [11 * P, 11 * P, P]
    _keep_fresh(guarded, reporters, pumped, 3 * 3600)
    assert not guarded.index_status()[0], "valid within 3 hours"
    ref = guarded.reference_price()[0]
    assert P < ref < 11 * P * 2 // 3
    _keep_fresh(guarded, reporters, pumped, 2 * 3600)
    assert guarded.index() == 11 * P  # the owner did not act within 5 hours


def test_guard__owner_removes_the_bad_reporters__index_back(guarded, reporters, owner):
    report_all(guarded, reporters[:2], [11 * P, 11 * P])
    assert not guarded.index_status()[0]
    guarded.set_quorum(1, sender=owner)
    guarded.remove_source(1, sender=owner)  # the honest last source takes index 1
    guarded.remove_source(0, sender=owner)
    assert guarded.index() == P


def test_guard__genuine_move__owner_resets_the_reference(guarded, reporters, owner):
    report_all(guarded, reporters, [P // 3] * 3)  # -66.7%
    with boa.reverts("oracle: index moved too fast"):
        guarded.index()
    guarded.reset_reference(sender=owner)
    assert [e.price for e in guarded.get_logs() if type(e).__name__ == "ReferenceReset"] == [P // 3]
    assert guarded.index() == P // 3
    assert guarded.reference_price() == (P // 3, now())


def test_guard__reset_and_set_guard__owner_only(guarded, attacker):
    with boa.reverts("ownable: caller is not the owner"):
        guarded.reset_reference(sender=attacker)
    with boa.reverts("ownable: caller is not the owner"):
        guarded.set_guard(10 * WAD, 10 * WAD, sender=attacker)


def test_guard__without_quorum__reset_and_update_revert(make_oracle, reporters, owner):
    oracle = make_oracle(reporters, max_divergence=DIVERGENCE, reference_rate=RATE)
    with boa.reverts("oracle: no quorum, or the sources disagree"):
        oracle.reset_reference(sender=owner)
    with boa.reverts("oracle: no quorum, or the sources disagree"):
        oracle.update_reference()


def test_guard__update_reference__anyone_checkpoints(make_oracle, reporters, attacker):
    guarded = make_oracle(reporters, max_age=3600, max_divergence=DIVERGENCE, reference_rate=RATE)
    report_all(guarded, reporters, [P] * 3)
    report_all(guarded, reporters, [2 * P] * 3)  # +100%: invalid
    boa.env.time_travel(seconds=1800)  # 30 min: the reference may move x1.25
    guarded.update_reference(sender=attacker)
    assert guarded.reference_price() == (P * 5 // 4, now())
    assert not guarded.index_status()[0]  # 2P > 1.25P x 1.5
    boa.env.time_travel(seconds=20 * 60)
    ref = P * 5 // 4 * (WAD + RATE * 1200 // 3600) // WAD
    assert guarded.reference_price()[0] == ref
    assert guarded.index() == 2 * P  # within 1.5 x the reference now


@pytest.mark.parametrize(
    "divergence,rate,ok",
    [
        (WAD // 20, WAD // 100, True),
        (10 * WAD, 10 * WAD, True),
        (WAD // 20 - BPS, WAD // 2, False),
        (10 * WAD + BPS, WAD // 2, False),
        (WAD // 2, WAD // 100 - BPS, False),
        (WAD // 2, 10 * WAD + BPS, False),
        (WAD // 2 + 1, WAD // 2, False),
        (WAD // 2, WAD // 2 + 1, False),
    ],
)
def test_guard__bounds(guarded, owner, divergence, rate, ok):
    if ok:
        guarded.set_guard(divergence, rate, sender=owner)
        assert [type(e).__name__ for e in guarded.get_logs()] == ["GuardSet"]
        assert (guarded.max_divergence(), guarded.reference_rate()) == (divergence, rate)
    else:
        with boa.reverts():
            guarded.set_guard(divergence, rate, sender=owner)


def test_guard__set_guard_keeps_max_age_and_quorum(guarded, owner):
    ref = guarded.reference_price()
    guarded.set_guard(WAD, WAD, sender=owner)
    assert (guarded.max_age(), guarded.quorum(), guarded.source_count()) == (60, 2, 3)
    guarded.set_max_age(30, sender=owner)
    guarded.set_quorum(3, sender=owner)
    assert (guarded.max_divergence(), guarded.reference_rate()) == (WAD, WAD)
    assert guarded.reference_price() == ref


def test_guard__a_valid_cached_index_stays_valid_until_it_expires(guarded, reporters):
    """The cache is only written when the guard passes; the reference only
    comes closer to an unchanged median, so the cached index stays valid."""
    report_all(guarded, reporters, [P * 7 // 5] * 3)  # +40%, within the band
    for _ in range(6):
        boa.env.time_travel(seconds=10)
        assert guarded.index() == P * 7 // 5
