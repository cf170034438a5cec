"""The funding model itself (keeper/funding_model.py): Vyper's truncating
division, the seeds' worked examples (003: -2% a day, $24 on 100 SOL; 004:
$3.80 on $38,000 at 0.01%), and the residue bookkeeping that makes funding
zero-sum to the wei (PROTOCOL.md §8)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keeper import funding_model as fm

WAD = fm.WAD


@pytest.mark.parametrize(
    ("x", "y", "q"), [(7, 2, 3), (-7, 2, -3), (7, -2, -3), (-7, -2, 3), (6, 3, 2), (-6, 3, -2), (0, 5, 0)]
)
def test_trunc_div__toward_zero(x, y, q):
    assert fm.trunc_div(x, y) == q


def test_seed_003__impact_mid_11_76_against_12__long_receives_24_a_day():
    # prices in WAD: impact mid $11.76 (bid = ask = 11.76), oracle $12
    mid, index = 1176 * WAD // 100, 12 * WAD
    p = fm.premium(fm.IMPACT_MID, mid, mid, index)
    assert p == -2 * WAD // 100
    # 24h realization settled daily, no interest, no clamp
    rate = fm.funding_rate(p, 0, 0, fm.MAX_CAP, 86_400, 86_400)
    assert rate == -2 * WAD // 100
    cum = fm.settle(0, rate, index, 1)
    assert fm.funding_owed(100 * WAD, cum, 0) == -24 * WAD  # receives $24
    assert fm.funding_owed(-100 * WAD, cum, 0) == 24 * WAD


def test_seed_004__38000_at_one_basis_point__3_80():
    rate = fm.funding_rate(0, WAD // 10_000, fm.MAX_CLAMP, fm.MAX_CAP, 8 * 3600, 8 * 3600)
    assert rate == WAD // 10_000
    cum = fm.settle(0, rate, 100_000 * WAD, 1)
    assert fm.funding_owed(38 * WAD // 100, cum, 0) == 38 * WAD // 10


def test_funding_rate__defaults__interest_within_clamp():
    p = fm.FundingParams()
    assert fm.rate_for(p, 0) == p.interest_rate // 8
    assert fm.rate_for(p, p.interest_rate + p.clamp) == p.interest_rate // 8
    assert fm.rate_for(p, p.interest_rate + p.clamp + 8) == p.interest_rate // 8 + 1
    assert fm.rate_for(p, WAD) == p.cap
    assert fm.rate_for(p, -WAD) == -p.cap


def test_due_intervals__bounded():
    assert fm.due_intervals(100, 100, 60) == 1
    assert fm.due_intervals(159, 100, 60) == 1
    assert fm.due_intervals(160, 100, 60) == 2
    assert fm.due_intervals(100 + 1000 * 60, 100, 60) == fm.MAX_CATCHUP
    with pytest.raises(ValueError, match="too early"):
        fm.due_intervals(99, 100, 60)


def test_impact_price__too_thin_and_32_levels():
    levels = [((100_000 + k) * WAD, 10**15) for k in range(33)]
    in_32 = sum(s * p // WAD for p, s in levels[:32])
    assert fm.impact_price(levels, in_32) > 0
    assert fm.impact_price(levels, in_32 + 1) == 0
    assert fm.impact_price([], 1) == 0


@given(
    sizes=st.lists(st.integers(-(10**24), 10**24), min_size=1, max_size=8),
    cums=st.lists(st.integers(-(10**24), 10**24), min_size=1, max_size=6),
)
def test_settle_account__zero_sum_to_the_wei(sizes, cums):
    """Accounts (sizes made to sum to zero) settled at every cumulative
    value: Σ paid = Σ residue swept, and the dust left is then zero."""
    sizes = [*sizes, -sum(sizes)]
    dust, swept, paid = 0, 0, 0
    snaps = [0] * len(sizes)
    for cum in cums:
        for i, size in enumerate(sizes):
            owed = fm.funding_owed(size, cum, snaps[i])
            got, dust, residue = fm.settle_account(size, cum, snaps[i], dust)
            assert got == owed
            assert 0 <= dust < WAD
            snaps[i] = cum
            paid += got
            swept += residue
    assert paid == swept
    assert dust == 0


def test_params_error__defaults_valid():
    assert fm.params_error(fm.FundingParams()) is None


def test_funding__sample_then_settle_reasons():
    f = fm.Funding(fm.FundingParams(), next_funding_time=3600)
    f.sample(60, 0, 0, 100 * WAD)
    with pytest.raises(ValueError, match="sample too early"):
        f.sample(61, 0, 0, 100 * WAD)
    with pytest.raises(ValueError, match="settle first"):
        f.sample(3600, 0, 0, 100 * WAD)
    with pytest.raises(ValueError, match="too early"):
        f.settle(3599, 0, 0, 100 * WAD)
    assert f.settle(3600 + 100 * 3600, 0, 0, 100 * WAD) == (12_500_000_000_000, 48)
    assert f.next_funding_time == 3600 + 48 * 3600
