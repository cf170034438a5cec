"""Funding views (PROTOCOL.md §9): the predicted rate of the running
interval (its samples' mean, interest only without samples), the last rate
as an APR, any rate as an APR, the effective APR on
margin at a leverage, and the next funding time. People compare borrowing
costs in APR, not in basis points per period (seed 001)."""

import pytest

from keeper import funding_model as fm
from keeper.units import WAD
from tests.unitary.funding_rate.funding_helpers import (
    DEFAULTS,
    INDEX,
    book_levels,
    quotes,
    set_params,
    warp,
    warp_to,
)

HOUR = 3600
HOURS_PER_YEAR = 8760


def _live_premium(p) -> int:
    bids, asks = book_levels(p)
    n = DEFAULTS.impact_notional
    return fm.premium(DEFAULTS.premium_mode, fm.impact_price(bids, n), fm.impact_price(asks, n), INDEX)


def test_predicted_rate__no_sample__interest_only_whatever_the_book(protocol, funding, maker):
    assert funding.predicted_rate() == DEFAULTS.interest_rate // 8  # empty book: interest only
    quotes(protocol, maker, 100_500, 100_600, size="0.02")
    assert fm.rate_for(DEFAULTS, _live_premium(protocol)) > DEFAULTS.interest_rate // 8

    assert funding.predicted_rate() == fm.rate_for(DEFAULTS, 0) == DEFAULTS.interest_rate // 8
    funding.sample()
    assert funding.predicted_rate() == fm.rate_for(DEFAULTS, _live_premium(protocol))


def test_predicted_rate__samples__their_mean_then_settle_gives_it(protocol, funding, maker):
    quotes(protocol, maker, 100_500, 100_600, size="0.02")
    p1 = funding.sample()
    warp(protocol, 60)
    protocol.cancel(maker, 1)
    protocol.cancel(maker, 2)
    p2 = funding.sample()  # empty book: 0
    quotes(protocol, maker, 98_000, 98_100, size="0.02")  # not sampled: ignored

    predicted = funding.predicted_rate()

    assert p2 == 0
    assert predicted == fm.rate_for(DEFAULTS, fm.mean_premium([p1, p2]))
    warp_to(protocol, funding.next_funding_time())
    assert funding.settle() == predicted
    # a new interval without samples: interest only, the book is not read
    assert _live_premium(protocol) < 0
    assert funding.predicted_rate() == fm.rate_for(DEFAULTS, 0) > 0


def test_funding_apr__last_settled_rate_annualized(protocol, funding):
    assert funding.funding_apr() == 0  # nothing settled yet
    warp_to(protocol, funding.next_funding_time())
    rate = funding.settle()

    # seed 004 interest: 0.01% per 8h is 10.95% a year
    assert rate * HOURS_PER_YEAR == 1095 * WAD // 10_000
    assert funding.funding_apr() == fm.apr(rate, HOUR) == 1095 * WAD // 10_000


def test_funding_apr__after_a_catch_up__the_first_intervals_rate_then_interest_only(protocol, funding, maker):
    quotes(protocol, maker, 100_500, 100_600, size="0.02")
    sampled = fm.rate_for(DEFAULTS, funding.sample())
    warp_to(protocol, funding.next_funding_time() + 3 * HOUR)  # 4 intervals due

    assert funding.settle() == sampled
    assert funding.funding_apr() == fm.apr(sampled, HOUR)
    assert funding.effective_apr(10 * WAD) == fm.effective_apr(sampled, HOUR, 10 * WAD)

    warp_to(protocol, funding.next_funding_time())  # no sample in this interval, the book unchanged
    assert funding.settle() == fm.rate_for(DEFAULTS, 0)
    assert funding.funding_apr() == fm.apr(fm.rate_for(DEFAULTS, 0), HOUR) == 1095 * WAD // 10_000


@pytest.mark.parametrize("rate", [0, 1, -1, 12_500_000_000_000, -5 * 10**15, 10**17, -(10**17)])
@pytest.mark.parametrize("interval", [HOUR, 8 * HOUR, 7 * HOUR, 60, 86_400])
def test_rate_apr__any_rate_and_interval(protocol, funding, rate, interval):
    set_params(
        protocol, funding_interval=interval, funding_period=max(interval, 8 * HOUR), sample_interval=60
    )

    assert funding.rate_apr(rate) == fm.apr(rate, interval) == rate * (fm.YEAR // interval)


def test_rate_apr__interval_not_dividing_the_year__whole_intervals(protocol, funding):
    set_params(protocol, funding_interval=7 * HOUR)
    # 31,536,000 / 25,200 = 1251.43: 1251 whole intervals a year
    assert funding.rate_apr(WAD // 1000) == 1251 * WAD // 1000


@pytest.mark.parametrize("leverage", [WAD, 10 * WAD, 3 * WAD // 2, 7, 125 * WAD])
@pytest.mark.parametrize("book", ["above", "below"])
def test_effective_apr__apr_times_leverage(protocol, funding, maker, leverage, book):
    if book == "above":
        quotes(protocol, maker, 100_500, 100_600, size="0.02")
    else:
        quotes(protocol, maker, 99_400, 99_500, size="0.02")
    funding.sample()
    warp_to(protocol, funding.next_funding_time())
    rate = funding.settle()

    effective = funding.effective_apr(leverage)

    assert effective == fm.effective_apr(rate, HOUR, leverage)
    assert effective == fm.trunc_div(fm.apr(rate, HOUR) * leverage, WAD)
    if leverage == 10 * WAD:
        assert effective == 10 * funding.funding_apr()


def test_effective_apr__negative_rate_truncates_toward_zero(protocol, funding, maker):
    quotes(protocol, maker, 99_400, 99_500, size="0.02")
    funding.sample()
    warp_to(protocol, funding.next_funding_time())
    rate = funding.settle()
    leverage = 3  # 3e-18 x: the product is not a whole WAD

    assert rate < 0
    assert funding.effective_apr(leverage) == -(-fm.apr(rate, HOUR) * leverage // WAD)
    assert funding.effective_apr(leverage) != fm.apr(rate, HOUR) * leverage // WAD


def test_next_funding_time__moves_one_interval_per_settlement(protocol, funding):
    t0 = funding.next_funding_time()
    for k in range(1, 4):
        warp_to(protocol, funding.next_funding_time())
        funding.settle()
        assert funding.next_funding_time() == t0 + k * HOUR
