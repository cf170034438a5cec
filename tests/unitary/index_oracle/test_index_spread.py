"""The spread rule: with an even number of fresh sources the index is the mean
of the two middle prices, valid only while the higher is at most
(1 + max_spread) x the lower, so that one source of two moves the index by at
most max_spread / 2 (<= 2%) from the honest price."""

import boa
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from .conftest import MAX_AGE, WAD, now, report_all

BPS = 10**14
MIN_SPREAD = 10 * BPS  # 0.1%
DEFAULT_SPREAD = 100 * BPS  # 1%
MAX_SPREAD = 400 * BPS  # 4%
PRICE_MAX = 2**128 - 1
NOT_OWNER = "ownable: caller is not the owner"
DISAGREE = "oracle: sources disagree"

# (max_spread, lower middle price): hi = lo x (1 + max_spread) exactly, with
# hi - lo odd so that the mean's rounding down shows
AT_SPREAD = [
    (MIN_SPREAD, 100 * WAD + 1_000),
    (DEFAULT_SPREAD, 100 * WAD + 100),
    (MAX_SPREAD, 100 * WAD + 25),
]


def _at_spread(spread, lo):
    hi = lo * (WAD + spread) // WAD
    assert hi * WAD == lo * (WAD + spread) and (lo + hi) % 2 == 1
    return hi


def _two_fresh_of_three(oracle, reporters, owner, spread, lo, hi):
    """reporters[0] reports a far price stale on arrival (max_age + 1 s old);
    reporters[1] and [2] report lo and hi now."""
    if spread != DEFAULT_SPREAD:
        oracle.set_max_spread(spread, sender=owner)
    oracle.report(1_000 * WAD, now() - MAX_AGE - 1, sender=reporters[0])
    report_all(oracle, reporters[1:], [lo, hi])


# ---------------------------------------------------------------- two fresh of three


@pytest.mark.parametrize("spread, lo", AT_SPREAD)
def test_index__two_fresh_spread_exactly_max_spread__valid_mean_rounded_down(
    oracle, reporters, owner, spread, lo
):
    hi = _at_spread(spread, lo)
    _two_fresh_of_three(oracle, reporters, owner, spread, lo, hi)
    assert oracle.index() == (lo + hi) // 2 == (lo + hi - 1) // 2
    assert oracle.index_status() == (True, (lo + hi) // 2, 2)
    assert oracle.latestRoundData()[1] == (lo + hi) // 2


@pytest.mark.parametrize("spread, lo", AT_SPREAD)
def test_index__two_fresh_spread_one_wei_above_max_spread__reverts_disagree(
    oracle, reporters, owner, spread, lo
):
    hi = _at_spread(spread, lo) + 1
    _two_fresh_of_three(oracle, reporters, owner, spread, lo, hi)
    with boa.reverts(DISAGREE):
        oracle.index()
    with boa.reverts(DISAGREE):
        oracle.latestRoundData()


@pytest.mark.parametrize("spread, lo", AT_SPREAD)
def test_index__two_fresh_spread_one_wei_below_max_spread__valid(oracle, reporters, owner, spread, lo):
    hi = _at_spread(spread, lo) - 1
    _two_fresh_of_three(oracle, reporters, owner, spread, lo, hi)
    assert oracle.index() == (lo + hi) // 2
    assert oracle.index_status() == (True, (lo + hi) // 2, 2)


def test_index__higher_middle_price_reported_first__same_rule(oracle, reporters):
    """The higher price reporting first changes nothing."""
    report_all(oracle, reporters[:2], [101 * WAD + 1, 100 * WAD])
    with boa.reverts(DISAGREE):
        oracle.index()
    oracle.report(101 * WAD, now(), sender=reporters[0])
    assert oracle.index() == 100 * WAD + WAD // 2


# ---------------------------------------------------------------- four and odd counts


def test_index__four_fresh_outer_far_apart_middle_agree__valid(make_oracle):
    reporters = [boa.env.generate_address(f"reporter-{i}") for i in range(4)]
    oracle = make_oracle(reporters, quorum=4)
    report_all(oracle, reporters, [10_000 * WAD, 100 * WAD, 1, 100 * WAD + WAD // 2])
    # sorted: 1 wei, 100, 100.5, 10,000: only the middle two must agree
    assert oracle.index() == 100 * WAD + WAD // 4
    assert oracle.index_status() == (True, 100 * WAD + WAD // 4, 4)


def test_index__four_fresh_outer_close_middle_disagree__reverts(make_oracle):
    reporters = [boa.env.generate_address(f"reporter-{i}") for i in range(4)]
    oracle = make_oracle(reporters, quorum=4)
    report_all(oracle, reporters, [100 * WAD, 101 * WAD + 1, 100 * WAD, 101 * WAD + 1])
    with boa.reverts(DISAGREE):
        oracle.index()
    assert oracle.index_status() == (False, 100 * WAD + WAD // 2, 4)


@pytest.mark.parametrize("count", [1, 3, 5, 7])
def test_index__odd_count_far_outliers__valid_median(make_oracle, owner, count):
    """Prices ten times apart, at the narrowest max_spread: an odd count has
    one middle price, nothing to agree on."""
    reporters = [boa.env.generate_address(f"reporter-{i}") for i in range(count)]
    oracle = make_oracle(reporters, quorum=count)
    oracle.set_max_spread(MIN_SPREAD, sender=owner)
    report_all(oracle, reporters, [10**i * WAD for i in reversed(range(count))])
    assert oracle.index() == 10 ** (count // 2) * WAD
    assert oracle.index_status() == (True, 10 ** (count // 2) * WAD, count)


def test_index__outlier_turns_stale__even_count_checked(oracle, reporters):
    """Three fresh, valid whatever the outlier; once it is stale the two left
    must agree."""
    ts = now()
    oracle.report(1_000 * WAD, ts - 30, sender=reporters[0])
    report_all(oracle, reporters[1:], [100 * WAD, 103 * WAD])
    assert oracle.index() == 103 * WAD
    boa.env.time_travel(seconds=MAX_AGE - 30 + 1)
    with boa.reverts(DISAGREE):
        oracle.index()


# ---------------------------------------------------------------- index_status and order


def test_index_status__sources_disagree__invalid_with_mean_and_count(oracle, reporters):
    report_all(oracle, reporters[:2], [100 * WAD, 110 * WAD + 1])
    assert oracle.index_status() == (False, 105 * WAD, 2)


def test_index__below_quorum_and_disagree__reverts_below_quorum(make_oracle, reporters):
    oracle = make_oracle(reporters, quorum=3)
    report_all(oracle, reporters[:2], [100 * WAD, 110 * WAD])
    with boa.reverts("oracle: below quorum"):
        oracle.index()
    assert oracle.index_status() == (False, 105 * WAD, 2)


def test_index__disagree_and_beyond_the_guard__reverts_disagree(make_oracle, reporters):
    """The spread is checked before the guard."""
    oracle = make_oracle(reporters, max_divergence=WAD // 20, reference_rate=WAD // 100)
    report_all(oracle, reporters, [100 * WAD] * 3)
    boa.env.time_travel(seconds=MAX_AGE + 1)
    report_all(oracle, reporters[:2], [200 * WAD, 300 * WAD])
    with boa.reverts(DISAGREE):
        oracle.index()
    report_all(oracle, reporters[:2], [300 * WAD, 300 * WAD])
    with boa.reverts("oracle: index moved too fast"):
        oracle.index()


# ---------------------------------------------------------------- reference and cache


def test_report__sources_disagree__reference_stays_and_cache_cleared(make_oracle, reporters):
    oracle = make_oracle(reporters[:2], max_age=3_600)
    t0 = now()
    report_all(oracle, reporters[:2], [100 * WAD, 100 * WAD])
    assert oracle.reference_price() == (100 * WAD, t0)
    assert oracle._storage._cache.get() != 0
    oracle.report(110 * WAD, t0, sender=reporters[1])
    assert oracle.reference_price() == (100 * WAD, t0)
    assert oracle._storage._cache.get() == 0
    with boa.reverts(DISAGREE):
        oracle.index()  # the cached 100 would still be fresh
    # a minute later: no checkpoint was stored at the disagreeing report
    boa.env.time_travel(seconds=60)
    oracle.report(110 * WAD, now(), sender=reporters[1])
    assert oracle.reference_price()[1] == t0
    # back in agreement: the checkpoint starts from the stored 100 (105 had it moved)
    oracle.report(100 * WAD, now(), sender=reporters[1])
    assert oracle.reference_price() == (100 * WAD, now())
    assert oracle.index() == 100 * WAD


@pytest.mark.parametrize("call", ["update_reference", "reset_reference"])
def test_reference__sources_disagree__reverts(oracle, reporters, owner, call):
    report_all(oracle, reporters[:2], [100 * WAD, 110 * WAD])
    with boa.reverts("oracle: no quorum, or the sources disagree"):
        getattr(oracle, call)(sender=owner)


# ---------------------------------------------------------------- set_max_spread


def test_max_spread__default__one_percent(oracle):
    assert oracle.max_spread() == DEFAULT_SPREAD == WAD // 100


@pytest.mark.parametrize("spread", [MIN_SPREAD, DEFAULT_SPREAD + BPS, MAX_SPREAD])
def test_set_max_spread__within_bounds__set_and_emitted(oracle, owner, spread):
    oracle.set_max_spread(spread, sender=owner)
    logs = oracle.get_logs()
    assert [type(e).__name__ for e in logs] == ["MaxSpreadSet"]
    assert logs[0].max_spread == spread
    assert oracle.max_spread() == spread
    # the packed settings are untouched
    assert (oracle.max_age(), oracle.quorum(), oracle.source_count()) == (MAX_AGE, 2, 3)


@pytest.mark.parametrize("spread", [0, MIN_SPREAD - BPS, MAX_SPREAD + BPS, WAD])
def test_set_max_spread__out_of_bounds__reverts(oracle, owner, spread):
    with boa.reverts("oracle: max_spread out of bounds"):
        oracle.set_max_spread(spread, sender=owner)


@pytest.mark.parametrize("spread", [1, BPS // 2, DEFAULT_SPREAD + 1, MAX_SPREAD - 1])
def test_set_max_spread__not_whole_basis_points__reverts(oracle, owner, spread):
    with boa.reverts("oracle: spread not in whole basis points"):
        oracle.set_max_spread(spread, sender=owner)


def test_set_max_spread__not_owner__reverts(oracle, attacker, reporters):
    for caller in (attacker, reporters[0]):
        with boa.reverts(NOT_OWNER):
            oracle.set_max_spread(MAX_SPREAD, sender=caller)
    assert oracle.max_spread() == DEFAULT_SPREAD


def test_set_max_spread__narrower__cached_index_invalid_at_once(oracle, reporters, owner):
    report_all(oracle, reporters[:2], [100 * WAD, 100 * WAD + WAD // 2])
    assert oracle.index() == 100 * WAD + WAD // 4
    oracle.set_max_spread(MIN_SPREAD, sender=owner)
    with boa.reverts(DISAGREE):
        oracle.index()
    oracle.set_max_spread(WAD // 200, sender=owner)
    assert oracle.index() == 100 * WAD + WAD // 4


def test_set_max_spread__wider__disagreeing_sources_valid(oracle, reporters, owner):
    report_all(oracle, reporters[:2], [100 * WAD, 104 * WAD])
    with boa.reverts(DISAGREE):
        oracle.index()
    oracle.set_max_spread(MAX_SPREAD, sender=owner)
    assert oracle.index() == 102 * WAD


# ---------------------------------------------------------------- one source of two


@st.composite
def _honest_evil_spread(draw):
    """(honest price, evil price, max_spread): the evil price often near the
    bounds of agreement, sometimes anywhere."""
    spread = draw(st.integers(10, 400)) * BPS
    honest = draw(st.one_of(st.integers(1, PRICE_MAX), st.integers(10**12, 10**24)))
    top = honest * (WAD + spread) // WAD  # highest agreeing from above
    bottom = -(-honest * WAD // (WAD + spread))  # lowest agreeing from below
    near = st.sampled_from([top - 1, top, top + 1, bottom - 1, bottom, bottom + 1])
    evil = draw(st.one_of(near, st.integers(1, PRICE_MAX)))
    return honest, min(max(evil, 1), PRICE_MAX), spread


@given(case=_honest_evil_spread())
@example(case=(100 * WAD, 104 * WAD, MAX_SPREAD))
@example(case=(104 * WAD, 100 * WAD, MAX_SPREAD))
@example(case=(26, 25, MAX_SPREAD))  # dust prices: the mean's rounding, one wei
def test_index__one_evil_source_of_two__within_half_max_spread_or_reverts(
    make_oracle, reporters, owner, case
):
    """A single source cannot move a valid index more than max_spread / 2
    (<= 2%) from the honest one: with one honest and one evil fresh source,
    index() reverts or is within h x max_spread / 2 of the honest price h
    (one wei more below h: the mean rounds down)."""
    honest_price, evil_price, spread = case
    honest, evil = reporters[:2]
    with boa.env.anchor():
        oracle = make_oracle(reporters, quorum=2)
        oracle.set_max_spread(spread, sender=owner)
        oracle.report(honest_price, now(), sender=honest)
        oracle.report(evil_price, now(), sender=evil)
        lo, hi = sorted((honest_price, evil_price))
        if hi * WAD > lo * (WAD + spread):
            with boa.reverts(DISAGREE):
                oracle.index()
            assert not oracle.index_status()[0]
            return
        index = oracle.index()
        assert index == (honest_price + evil_price) // 2
        moved = abs(index - honest_price) - (1 if index < honest_price else 0)
        assert moved * 2 * WAD <= honest_price * spread
        assert moved * 50 <= honest_price  # max_spread / 2 <= 2%
