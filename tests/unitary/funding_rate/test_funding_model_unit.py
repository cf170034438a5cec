"""The funding model itself (keeper/funding_model.py): Vyper's truncating
division, the seeds' worked examples (003: -2% a day, $24 on 100 SOL; 004:
$3.80 on $38,000 at 0.01%), the catch-up of missed intervals (the first at
its samples' rate, the others interest only, one cap per call), and the
residue bookkeeping that makes funding zero-sum to the wei (PROTOCOL.md §9)."""

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
    cum = fm.settle(0, rate, 0, index, 1, fm.MAX_CAP)
    assert fm.funding_owed(100 * WAD, cum, 0) == -24 * WAD  # receives $24
    assert fm.funding_owed(-100 * WAD, cum, 0) == 24 * WAD


def test_seed_004__38000_at_one_basis_point__3_80():
    rate = fm.funding_rate(0, WAD // 10_000, fm.MAX_CLAMP, fm.MAX_CAP, 8 * 3600, 8 * 3600)
    assert rate == WAD // 10_000
    cum = fm.settle(0, rate, rate, 100_000 * WAD, 1, fm.MAX_CAP)
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


#: an index with a remainder: rate x index / WAD is inexact (7 x rate < WAD)
ODD_INDEX = 100_000 * WAD + 7


@pytest.mark.parametrize("sign", [1, -1], ids=["longs_pay", "shorts_pay"])
def test_settle__first_interval_at_rate__the_others_at_base__truncated_toward_zero(sign):
    rate, base = sign * 3_000_000_000_000_003, sign * 100_000_000_000_001
    cum = fm.settle(11, rate, base, ODD_INDEX, 3, fm.MAX_CAP)
    # trunc(rate x index / WAD) = 100,000 x rate (7 x rate / WAD < 1), idem for base
    assert cum == 11 + 100_000 * (rate + 2 * base)
    floored = 11 + rate * ODD_INDEX // WAD + 2 * (base * ODD_INDEX // WAD)
    assert (cum == floored) == (sign > 0)  # Python's floor would add -3 wei when shorts pay
    assert fm.settle(11, rate, base, ODD_INDEX, 1, fm.MAX_CAP) == 11 + 100_000 * rate


@pytest.mark.parametrize("sign", [1, -1], ids=["longs_pay", "shorts_pay"])
@pytest.mark.parametrize(("k", "clamped"), [(1, False), (0, False), (-1, True)], ids=["below", "at", "above"])
def test_settle__one_cap_per_call(sign, k, clamped):
    """rate + base x (due - 1) against the cap: one wei of rate below, at, above it."""
    rate, base, due = 3_000_000_000_000_003, 100_000_000_000_001, 3
    cap = rate + base * (due - 1) + k
    bound = cap * ODD_INDEX // WAD
    delta = fm.settle(0, sign * rate, sign * base, ODD_INDEX, due, cap)
    assert delta == sign * (bound if clamped else 100_000 * (rate + 2 * base))
    assert abs(delta) <= bound and (abs(delta) == bound) == (k <= 0)


def test_settle__no_interval__refused():
    with pytest.raises(ValueError, match="due >= 1"):
        fm.settle(0, 1, 1, WAD, 0, 1)


def test_mean_premium__no_samples__zero():
    assert fm.mean_premium([]) == 0
    assert fm.mean_premium([-7, 2]) == -2  # truncated toward zero


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
        f.settle(3599, 100 * WAD)
    assert f.predicted_rate() == 12_500_000_000_000  # one sample of premium 0: interest only
    assert f.settle(3600 + 100 * 3600, 100 * WAD) == (12_500_000_000_000, 48)
    assert f.next_funding_time == 3600 + 48 * 3600
    assert f.cumulative == 48 * (12_500_000_000_000 * 100)  # $0.00125 per base an interval


def test_funding__catch_up__sampled_first_interval_then_interest_clamped_to_one_cap():
    p = fm.FundingParams(funding_period=3600)  # F = F_period: a 1% premium reaches the 0.5% cap
    f = fm.Funding(p, next_funding_time=3600)
    f.sample(60, 101 * WAD, 0, 100 * WAD)  # impact bid 1% above the index
    assert f.mean() == WAD // 100 and f.predicted_rate() == p.cap
    base = fm.rate_for(p, 0)
    assert base == p.interest_rate

    assert f.settle(3600 + 9 * 3600 + 5, 100 * WAD) == (p.cap, 10)

    assert f.cumulative == p.cap * 100  # cap + 9 x interest, clamped to one cap
    assert (f.last_rate, f.last_premium, f.samples) == (p.cap, WAD // 100, [])
    assert f.predicted_rate() == base  # no samples in the new interval: interest only
