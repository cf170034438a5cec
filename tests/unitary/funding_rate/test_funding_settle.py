"""Settlement (PROTOCOL.md §9): the mean premium of the interval's samples
(0 without samples: interest only, the book is never read at settlement),
F_period = P + clamp(interest - P, ±clamp), the per-interval cap,
cumulative funding += F x index, and the bounded catch-up of missed
intervals: the first due interval at its samples' rate, each further one at
the interest part only, the call's whole move within one interval's cap (at
most 48 intervals per call, the rest on the next calls)."""

import boa
import pytest

from keeper import funding_model as fm
from keeper.units import WAD
from tests.unitary.funding_rate.funding_helpers import (
    DEFAULTS,
    INDEX,
    book_levels,
    events,
    now,
    push_index,
    quotes,
    set_params,
    warp,
    warp_to,
)

HOUR = 3600
NOTIONAL = DEFAULTS.impact_notional
#: an index with a remainder: rate x index / WAD is inexact (7 x rate < WAD)
ODD_INDEX = INDEX + 7


def _live_premium(p, params=DEFAULTS, index=INDEX) -> int:
    """The premium a sample would take now, from the book via the model."""
    bids, asks = book_levels(p)
    return fm.premium(
        params.premium_mode,
        fm.impact_price(bids, params.impact_notional),
        fm.impact_price(asks, params.impact_notional),
        index,
    )


def _settle_at_due(p, funding) -> int:
    """Sample the book now (its premium is the interval's), then settle when due."""
    funding.sample()
    warp_to(p, funding.next_funding_time())
    return funding.settle()


def _settle_at_due_unsampled(p, funding) -> int:
    """Settle when due, whatever the book: no sample taken."""
    warp_to(p, funding.next_funding_time())
    return funding.settle()


def _settled_event(funding):
    (event,) = events(funding, "FundingSettled")
    return event


def _base(params=DEFAULTS) -> int:
    """The interest part of a rate: F at premium 0."""
    return fm.rate_for(params, 0)


def _move(rate: int, index: int) -> int:
    """trunc(rate x index / WAD): one interval's move of the accumulator."""
    return fm.trunc_div(rate * index, WAD)


# ---------------------------------------------------------------- premium of the interval


def test_settle__no_sample__interest_only_whatever_the_book(protocol, funding, maker):
    quotes(protocol, maker, 100_500, 100_600, size="0.02")  # P ~ +0.5%: ignored, nobody sampled it
    assert _live_premium(protocol) > 4 * WAD // 1_000
    nft = funding.next_funding_time()
    assert funding.predicted_rate() == _base()

    rate = _settle_at_due_unsampled(protocol, funding)
    event = _settled_event(funding)

    # seed 004: 0.01% per 8h -> 0.00125% per hour
    assert rate == _base() == DEFAULTS.interest_rate // 8 == funding.last_rate()
    assert funding.last_premium() == 0
    assert (event.rate, event.premium, event.index, event.time, event.intervals) == (
        rate,
        0,
        INDEX,
        now(),
        1,
    )
    cum = fm.settle(0, rate, _base(), INDEX, 1, DEFAULTS.cap)
    assert event.cumulative_funding == cum == protocol.market().cumulative_funding() == _move(rate, INDEX)
    assert funding.next_funding_time() == nft + HOUR
    assert funding.sample_count() == 0


def test_settle__one_sample__its_premium(protocol, funding, maker):
    quotes(protocol, maker, 100_500, 100_600, size="0.02")  # P ~ +0.5%
    premium = _live_premium(protocol)

    rate = _settle_at_due(protocol, funding)
    event = _settled_event(funding)

    # 0.5% - 0.05% clamp = 0.45% per 8h = 0.05625% per hour
    assert abs(rate - 5625 * 10**11) <= 100
    assert rate == fm.rate_for(DEFAULTS, premium) == funding.last_rate()
    assert funding.last_premium() == premium == event.premium
    assert protocol.market().cumulative_funding() == _move(rate, INDEX)


def test_settle__empty_book__interest_only(protocol, funding):
    rate = _settle_at_due_unsampled(protocol, funding)

    # seed 004: 0.01% per 8h -> 0.00125% per hour, $1.25 per BTC at $100,000
    assert rate == WAD // 10_000 // 8 == 12_500_000_000_000
    assert protocol.market().cumulative_funding() == 125 * WAD // 100


def test_settle__samples__their_mean_not_the_book_at_settlement(protocol, funding, maker):
    premiums = []
    for bid, ask in [(100_300, 100_400), (99_100, 99_200), (99_600, 99_710)]:
        quotes(protocol, maker, bid, ask, size="0.02")
        premiums.append(funding.sample())
        protocol.cancel(maker, protocol.lens.next_order_id(protocol.market().address) - 1)
        protocol.cancel(maker, protocol.lens.next_order_id(protocol.market().address) - 2)
        warp(protocol, DEFAULTS.sample_interval)
    quotes(protocol, maker, 101_000, 101_100, size="0.02")  # ignored: there are samples
    assert funding.sample_count() == 3
    assert funding.premium_sum() == sum(premiums)
    mean = fm.mean_premium(premiums)
    assert mean < 0 and sum(premiums) % 3 != 0  # truncation toward zero is exercised
    assert mean == -(-sum(premiums) // 3) != sum(premiums) // 3
    assert funding.predicted_rate() == fm.rate_for(DEFAULTS, mean)

    rate = _settle_at_due_unsampled(protocol, funding)
    event = _settled_event(funding)

    assert funding.last_premium() == mean == event.premium
    assert rate == fm.rate_for(DEFAULTS, mean)


def test_settle__resets_samples_keeps_last_sample_time(protocol, funding):
    warp_to(protocol, funding.next_funding_time() - 30)
    funding.sample()
    t = now()
    warp(protocol, 30)
    funding.settle()

    assert (funding.sample_count(), funding.premium_sum(), funding.last_sample_time()) == (0, 0, t)
    with boa.reverts("funding: sample too early"):
        funding.sample()  # 30 s after the last one
    warp(protocol, 30)
    funding.sample()


# ---------------------------------------------------------------- clamp edges


def _base_premium(p, maker) -> int:
    quotes(p, maker, 100_300, 100_400, size="0.02")  # P0 ~ +0.3%
    return _live_premium(p)


@pytest.mark.parametrize("offset", [-1, 0, 1], ids=["inside", "edge", "outside"])
@pytest.mark.parametrize("side", ["above", "below"])
def test_settle__clamp_edges(protocol, funding, maker, side, offset):
    """F_period = interest while |P - interest| <= clamp, then P -+ clamp:
    P one wei past the edge moves F by one wei (interval = period: F = F_period)."""
    p0 = _base_premium(protocol, maker)
    clamp = 5 * WAD // 10_000
    if side == "above":  # P = interest + clamp + offset
        interest = p0 - clamp - offset
        expected = interest + max(0, offset)
    else:  # P = interest - clamp - offset
        interest = p0 + clamp + offset
        expected = interest - max(0, offset)
    params = set_params(protocol, funding_period=HOUR, interest_rate=interest, clamp=clamp)

    rate = _settle_at_due(protocol, funding)

    assert rate == expected == fm.rate_for(params, p0)


def test_settle__zero_clamp__premium_plus_nothing(protocol, funding, maker):
    p0 = _base_premium(protocol, maker)
    set_params(protocol, funding_period=HOUR, clamp=0)

    assert _settle_at_due(protocol, funding) == p0


def test_settle__premium_within_clamp__interest_whatever_the_premium(protocol, funding, maker):
    quotes(protocol, maker, 100_030, 100_060, size="0.02")  # band: P ~ 0.03%, within 0.01% +- 0.05%
    assert 0 < _live_premium(protocol) < 6 * WAD // 10_000

    assert _settle_at_due(protocol, funding) == DEFAULTS.interest_rate // 8


# ---------------------------------------------------------------- cap edges


@pytest.mark.parametrize("delta", [-1, 0, 1], ids=["cap_below", "cap_at", "cap_above"])
@pytest.mark.parametrize("sign", [1, -1], ids=["longs_pay", "shorts_pay"])
def test_settle__cap_edges(protocol, funding, maker, sign, delta):
    if sign > 0:
        quotes(protocol, maker, 100_800, 100_900, size="0.02")
    else:
        quotes(protocol, maker, 99_100, 99_200, size="0.02")
    p0 = _live_premium(protocol)
    assert (p0 > 0) == (sign > 0)
    cap = abs(p0) + delta
    params = set_params(protocol, funding_period=HOUR, clamp=0, cap=cap)

    rate = _settle_at_due(protocol, funding)

    assert rate == fm.rate_for(params, p0) == (p0 if delta >= 0 else sign * cap)


def test_settle__cap_applies_after_scaling_to_the_interval(protocol, funding, maker):
    # a premium above 8 x the cap needs a bid more than 4.05% above the index:
    # the market's price band is widened from 2% to 6% to let it rest
    protocol.market().set_params(protocol.params()._replace(price_band=6 * WAD // 100), sender=protocol.owner)
    quotes(protocol, maker, 105_000, 105_100, size="0.02")  # P ~ 5%: F_period ~ 4.95%
    p0 = _live_premium(protocol)
    f_period = p0 - DEFAULTS.clamp
    # 4.95% / 8 ~ 0.62% per hour > 0.5% cap; with a 24h period, 0.21% < cap
    assert f_period // 8 > DEFAULTS.cap
    assert _settle_at_due(protocol, funding) == DEFAULTS.cap
    set_params(protocol, funding_period=24 * HOUR)
    assert _settle_at_due(protocol, funding) == fm.trunc_div(f_period, 24) < DEFAULTS.cap


# ---------------------------------------------------------------- accumulator


def test_settle__negative_rate__cumulative_truncates_toward_zero(protocol, funding, maker):
    index = INDEX + 3
    push_index(protocol, index)
    quotes(protocol, maker, 99_100, 99_200, size="0.02")
    funding.sample()
    warp_to(protocol, funding.next_funding_time(), index)
    rate = funding.settle()

    assert rate < 0
    assert rate * index % WAD != 0  # inexact: truncation and floor differ
    assert (
        protocol.market().cumulative_funding() == fm.trunc_div(rate * index, WAD) == -(-rate * index // WAD)
    )


def test_settle__successive__cumulative_adds_up(protocol, funding, maker):
    cum = 0
    for bid, ask, index in [
        (100_300, 100_400, INDEX),
        (99_000, 99_100, INDEX + 11),
        (None, None, 101_000 * WAD),
    ]:
        push_index(protocol, index)
        oids = []
        if bid is not None:
            quotes(protocol, maker, bid, ask, size="0.02")
            oids = [
                protocol.lens.next_order_id(protocol.market().address) - 2,
                protocol.lens.next_order_id(protocol.market().address) - 1,
            ]
        premium = _live_premium(protocol, index=index)
        assert funding.sample() == premium
        warp_to(protocol, funding.next_funding_time(), index)

        rate = funding.settle()

        assert rate == fm.rate_for(DEFAULTS, premium)
        cum = fm.settle(cum, rate, _base(), index, 1, DEFAULTS.cap)
        assert protocol.market().cumulative_funding() == cum
        for oid in oids:
            protocol.cancel(maker, oid)


def test_settle__due_boundaries(protocol, funding):
    nft = funding.next_funding_time()
    warp_to(protocol, nft + HOUR - 1)
    funding.settle()
    assert _settled_event(funding).intervals == 1
    assert funding.next_funding_time() == nft + HOUR

    warp_to(protocol, nft + 2 * HOUR)  # the boundary after the next: 2 due
    funding.settle()
    assert _settled_event(funding).intervals == 2
    assert funding.next_funding_time() == nft + 3 * HOUR


# ---------------------------------------------------------------- catch-up


@pytest.mark.parametrize("missed", [2, 5, 47, 48])
def test_settle__missed_intervals__first_at_its_samples_the_others_interest_only(
    protocol, funding, maker, missed
):
    quotes(protocol, maker, 100_300, 100_400, size="0.02")
    premium = funding.sample()
    nft = funding.next_funding_time()
    for oid in (1, 2):
        protocol.cancel(maker, oid)
    quotes(protocol, maker, 101_500, 101_600, size="0.02")  # the book at settlement: ignored
    warp_to(protocol, nft + (missed - 1) * HOUR + 1234)

    rate = funding.settle()
    event = _settled_event(funding)

    assert event.intervals == missed
    assert funding.next_funding_time() == nft + missed * HOUR > now()
    assert rate == fm.rate_for(DEFAULTS, premium) == event.rate == funding.last_rate() > _base()
    # 0.03% + 47 x 0.00125% < 0.5%: within one cap
    expected = _move(rate, INDEX) + _move(_base(), INDEX) * (missed - 1)
    assert expected < DEFAULTS.cap * INDEX // WAD
    assert protocol.market().cumulative_funding() == expected == event.cumulative_funding
    with boa.reverts("funding: too early"):
        funding.settle()


def test_settle__more_than_48_missed__rest_on_the_next_calls(protocol, funding, maker):
    """100 missed intervals: 48, 48, then 4. The first call spends the
    interval's samples; the next ones have none: interest only."""
    quotes(protocol, maker, 100_300, 100_400, size="0.02")
    sampled = funding.sample()
    for oid in (1, 2):
        protocol.cancel(maker, oid)
    quotes(protocol, maker, 99_500, 99_600, size="0.02")  # the book moves during the outage: ignored
    nft = funding.next_funding_time()
    warp_to(protocol, nft + 99 * HOUR + 10)

    with boa.reverts("funding: settle first"):
        funding.sample()
    r1 = funding.settle()
    e1 = _settled_event(funding)
    assert (e1.intervals, e1.premium) == (48, sampled)
    assert funding.next_funding_time() == nft + 48 * HOUR
    with boa.reverts("funding: settle first"):
        funding.sample()  # still behind

    r2 = funding.settle()
    e2 = _settled_event(funding)
    assert (e2.intervals, e2.premium) == (48, 0)
    assert funding.next_funding_time() == nft + 96 * HOUR

    r3 = funding.settle()
    assert _settled_event(funding).intervals == 4
    assert funding.next_funding_time() == nft + 100 * HOUR > now()
    with boa.reverts("funding: too early"):
        funding.settle()

    assert r1 == fm.rate_for(DEFAULTS, sampled) > _base()
    assert r2 == r3 == _base()
    per = _move(_base(), INDEX)
    assert protocol.market().cumulative_funding() == _move(r1, INDEX) + 47 * per + 48 * per + 4 * per
    warp(protocol, 60)
    funding.sample()  # back on schedule


def test_settle__model_accumulator_follows_the_catch_up(protocol, funding):
    model = fm.Funding(DEFAULTS, funding.next_funding_time())
    warp_to(protocol, model.next_funding_time + 130 * HOUR)
    calls = []
    while now() >= funding.next_funding_time():
        rate = funding.settle()
        calls.append((rate, _settled_event(funding).intervals))
        assert model.settle(now(), INDEX) == calls[-1]
        assert funding.next_funding_time() == model.next_funding_time
        assert protocol.market().cumulative_funding() == model.cumulative
    assert [d for _, d in calls] == [48, 48, 35]


# ---------------------------------------------------------------- the catch-up rule at its edges

# interval = period = 1h, clamp 1%: the interest part is the interest rate itself
# (premium 0: clamp(interest, +-1%)); a premium beyond interest + 1% gives F = P - 1%.
# The index has a remainder (ODD_INDEX): every rate x index / WAD is inexact.
INTEREST = 1_000_000_000_000_003  # 0.1% (+3 wei) per hour


def _catch_up_params(sign: int, cap: int = DEFAULTS.cap):
    return dict(funding_period=HOUR, interest_rate=sign * INTEREST, clamp=fm.MAX_CLAMP, cap=cap)


def _quote_beyond_the_clamp(p, maker, sign: int) -> int:
    """A book 1.2% above (longs pay) or below (shorts pay) the index; its
    premium, beyond interest + clamp: F = P -+ 1% ~ 0.2%."""
    if sign > 0:
        quotes(p, maker, 101_200, 101_300, size="0.02")
    else:
        quotes(p, maker, 98_700, 98_800, size="0.02")
    premium = _live_premium(p, index=ODD_INDEX)
    assert (premium > fm.MAX_CLAMP + INTEREST) if sign > 0 else (premium < -fm.MAX_CLAMP - INTEREST)
    return premium


def _late_settle(p, funding, due: int) -> tuple[int, int, object]:
    """Settle `due` intervals in one call, 17 s into the last: (rate, delta, event)."""
    warp_to(p, funding.next_funding_time() + (due - 1) * HOUR + 17, ODD_INDEX)
    cum = p.market().cumulative_funding()
    rate = funding.settle()
    event = _settled_event(funding)
    assert event.intervals == due
    return rate, p.market().cumulative_funding() - cum, event


@pytest.mark.parametrize("due", [1, 3])
@pytest.mark.parametrize("sign", [1, -1], ids=["longs_pay", "shorts_pay"])
def test_settle__no_samples__every_due_interval_interest_only(protocol, funding, maker, sign, due):
    push_index(protocol, ODD_INDEX)
    params = set_params(protocol, **_catch_up_params(sign))
    _quote_beyond_the_clamp(protocol, maker, sign)  # unsampled: not charged

    rate, delta, event = _late_settle(protocol, funding, due)

    assert rate == _base(params) == sign * INTEREST == event.rate
    assert event.premium == 0 == funding.last_premium()
    assert rate * ODD_INDEX % WAD != 0
    assert delta == _move(rate, ODD_INDEX) * due == sign * (INTEREST * ODD_INDEX // WAD) * due
    assert delta == fm.settle(0, rate, rate, ODD_INDEX, due, params.cap)


@pytest.mark.parametrize("sign", [1, -1], ids=["longs_pay", "shorts_pay"])
def test_settle__samples_due_1__the_samples_rate(protocol, funding, maker, sign):
    push_index(protocol, ODD_INDEX)
    params = set_params(protocol, **_catch_up_params(sign))
    premium = _quote_beyond_the_clamp(protocol, maker, sign)
    assert funding.sample() == premium

    rate, delta, event = _late_settle(protocol, funding, 1)

    assert rate == premium - sign * fm.MAX_CLAMP == fm.rate_for(params, premium)  # P -+ clamp, within cap
    assert abs(rate) < params.cap and rate * ODD_INDEX % WAD != 0
    assert (event.rate, event.premium, funding.last_rate()) == (rate, premium, rate)
    assert delta == _move(rate, ODD_INDEX) == fm.settle(0, rate, _base(params), ODD_INDEX, 1, params.cap)


@pytest.mark.parametrize("sign", [1, -1], ids=["longs_pay", "shorts_pay"])
def test_settle__samples_due_3__first_interval_sampled_then_two_interest_only(protocol, funding, maker, sign):
    push_index(protocol, ODD_INDEX)
    params = set_params(protocol, **_catch_up_params(sign))
    premium = _quote_beyond_the_clamp(protocol, maker, sign)
    funding.sample()

    rate, delta, event = _late_settle(protocol, funding, 3)

    base = _base(params)
    assert rate == fm.rate_for(params, premium) == event.rate == funding.last_rate()
    assert base == sign * INTEREST and abs(rate) > abs(base)
    # truncated toward zero per term: the shorts-pay case differs from Python's floor
    assert delta == fm.trunc_div(rate * ODD_INDEX, WAD) + fm.trunc_div(base * ODD_INDEX, WAD) * 2
    assert abs(delta) < params.cap * ODD_INDEX // WAD  # within the cap: not clamped
    assert delta == fm.settle(0, rate, base, ODD_INDEX, 3, params.cap) == event.cumulative_funding
    assert funding.predicted_rate() == base  # the new interval has no sample yet


@pytest.mark.parametrize(("k", "clamped"), [(1, False), (0, False), (-1, True)], ids=["below", "at", "above"])
@pytest.mark.parametrize("sign", [1, -1], ids=["longs_pay", "shorts_pay"])
def test_settle__one_cap_per_call__edges(protocol, funding, maker, sign, k, clamped):
    """rate + base x (due - 1) one wei of rate below, at and above the cap
    (due = 3): the call's move is the sum, then clamped to cap x index."""
    push_index(protocol, ODD_INDEX)
    premium = _quote_beyond_the_clamp(protocol, maker, sign)
    rate = premium - sign * fm.MAX_CLAMP
    cap = abs(rate) + 2 * INTEREST + k
    params = set_params(protocol, **_catch_up_params(sign, cap))
    assert fm.rate_for(params, premium) == rate  # the first interval is not capped on its own
    funding.sample()

    got, delta, event = _late_settle(protocol, funding, 3)

    bound = cap * ODD_INDEX // WAD
    unclamped = _move(rate, ODD_INDEX) + 2 * _move(sign * INTEREST, ODD_INDEX)
    assert got == rate == event.rate
    assert abs(unclamped) - bound == -k * (ODD_INDEX // WAD)  # 7 x rate < WAD: exact multiples of 100,000
    assert delta == (sign * bound if clamped else unclamped)
    assert delta == fm.settle(0, rate, sign * INTEREST, ODD_INDEX, 3, cap) == event.cumulative_funding
    assert abs(delta) <= bound


# ---------------------------------------------------------------- parameters over time


def test_set_params__new_interval__reschedules_the_running_one(protocol, funding):
    """A new interval keeps the running interval's start and gives it the new
    length, and later intervals follow it."""
    nft = funding.next_funding_time()
    start = nft - HOUR
    set_params(protocol, funding_interval=1800)
    assert funding.next_funding_time() == start + 1800

    warp_to(protocol, start + 2 * 1800 + 5)
    funding.settle()

    assert _settled_event(funding).intervals == 2  # counted in the new interval
    assert funding.next_funding_time() == start + 3 * 1800
    # F scales with the new interval: 0.01% x 1800 / 28800
    assert funding.last_rate() == WAD // 10_000 * 1800 // (8 * HOUR)


def test_set_params__interval_lengthened_mid_interval__charged_for_the_time_elapsed(protocol, funding):
    """Switching from hourly to daily settlement during an hour: the running
    interval becomes a day from the same start, so it settles after a day at
    a day's rate, never a day's rate for one hour."""
    set_params(protocol, funding_period=24 * HOUR)
    warp_to(protocol, funding.next_funding_time())
    hourly = funding.settle()
    assert hourly == fm.trunc_div(DEFAULTS.interest_rate, 24)
    start = funding.next_funding_time() - HOUR  # the running hour began here
    warp(protocol, 1800)
    set_params(protocol, funding_interval=24 * HOUR, funding_period=24 * HOUR)
    assert funding.next_funding_time() == start + 24 * HOUR

    warp_to(protocol, start + HOUR)
    with boa.reverts("funding: too early"):
        funding.settle()
    warp_to(protocol, start + 24 * HOUR)
    daily = funding.settle()

    assert daily == DEFAULTS.interest_rate  # a full day's rate, for a full day
    assert funding.next_funding_time() == start + 48 * HOUR
    assert protocol.market().cumulative_funding() == _move(hourly, INDEX) + _move(daily, INDEX)
