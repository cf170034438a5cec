"""Impact prices and premium samples (PROTOCOL.md §8): the average fill
prices of $1,000 sold into the bids and bought from the asks, and the
premium in both modes (impact_band, impact_mid) for books above, below and
around the index, with a side too thin (it counts as at the index)."""

import boa
import pytest

from keeper import funding_model as fm
from keeper.deploy import to_wad
from keeper.units import WAD
from tests.unitary.funding_rate.funding_helpers import (
    DEFAULTS,
    INDEX,
    book_levels,
    events,
    now,
    push_index,
    quotes,
    rest,
    set_params,
)

NOTIONAL = DEFAULTS.impact_notional
BAND, MID = fm.IMPACT_BAND, fm.IMPACT_MID


def _impact_from_book(p, notional=NOTIONAL) -> tuple[int, int]:
    bids, asks = book_levels(p)
    return fm.impact_price(bids, notional), fm.impact_price(asks, notional)


# ---------------------------------------------------------------- impact prices


def test_impact_prices__empty_book__zero_both_sides(protocol, funding):
    assert funding.impact_prices(NOTIONAL) == (0, 0)


def test_impact_prices__one_deep_level__its_price(protocol, funding, maker):
    quotes(protocol, maker, 99_900, 100_100, size="0.01")  # $999 and $1,001 of quotes

    bid, ask = funding.impact_prices(NOTIONAL)

    assert bid == 0  # 0.01 x $99,900 < $1,000: too thin
    # base bought rounds down, so the average rounds up: a hair above the price
    assert ask == NOTIONAL * WAD // (NOTIONAL * WAD // to_wad(100_100))
    assert ask - to_wad(100_100) == 100_100  # 1e-18 relative


def test_impact_prices__walks_levels__volume_weighted_and_rounded(protocol, funding, maker):
    rest(protocol, maker, "sell", 100_100, "0.005")  # $500.50
    rest(protocol, maker, "sell", 100_200, "0.01")
    rest(protocol, maker, "buy", 99_900, "0.003")
    rest(protocol, maker, "buy", 99_800, "0.003")
    rest(protocol, maker, "buy", 99_000, "0.1")

    bid, ask = funding.impact_prices(NOTIONAL)

    # asks: 0.005 BTC for $500.50, then $499.50 / $100,200 = 0.004985029940119760 BTC (rounded down)
    left = NOTIONAL - 5 * 10**15 * to_wad(100_100) // WAD
    base = 5 * 10**15 + left * WAD // to_wad(100_200)
    assert base == 9_985_029_940_119_760
    assert ask == NOTIONAL * WAD // base
    assert (bid, ask) == _impact_from_book(protocol)
    assert to_wad(100_100) < ask < to_wad(100_200)
    assert to_wad(99_000) < bid < to_wad(99_900)


def test_impact_prices__thin_side__zero(protocol, funding, maker):
    rest(protocol, maker, "sell", 100_100, "0.009")  # $900.90 < $1,000
    rest(protocol, maker, "buy", 99_000, "0.5")

    bid, ask = funding.impact_prices(NOTIONAL)
    assert ask == 0
    assert bid == NOTIONAL * WAD // (NOTIONAL * WAD // to_wad(99_000)) == to_wad(99_000) + 99_000


def test_impact_prices__exactly_the_notional__its_price(protocol, funding, maker):
    rest(protocol, maker, "sell", 100_000, "0.01")  # exactly $1,000

    assert funding.impact_prices(NOTIONAL)[1] == to_wad(100_000)
    assert funding.impact_prices(NOTIONAL + 1)[1] == 0


def test_impact_prices__walks_at_most_32_levels(protocol, funding):
    # 33 ask levels of one lot at $100,001 .. $100,033, from two makers (20 orders max each)
    makers = [protocol.actor(f"maker_{i}", deposit=1_000_000) for i in range(2)]
    for k in range(33):
        rest(protocol, makers[k % 2], "sell", 100_001 + k, "0.001")
    _, asks = book_levels(protocol)
    assert len(asks) == 33
    in_32 = sum(size * price // WAD for price, size in asks[:32])

    assert funding.impact_prices(in_32)[1] == fm.impact_price(asks, in_32) > 0
    # one wei more needs the 33rd level, which is not walked
    assert funding.impact_prices(in_32 + 1)[1] == 0
    assert fm.impact_price(asks, in_32 + 1) == 0


def test_impact_prices__notional_below_one_wei_of_base__no_price(protocol, funding, maker):
    """A notional worth less than 1e-18 BTC at the best price walks no base:
    that side has no meaningful impact price (0, counted as at the index),
    never a division by zero; and set_params refuses a notional below one
    quote unit, so funding can never be blocked this way."""
    rest(protocol, maker, "sell", 100_100, "0.01")
    _, asks = book_levels(protocol)
    assert fm.impact_price(asks, 1) == 0
    assert funding.impact_prices(1) == (0, 0)
    with boa.reverts("funding: impact notional out of bounds"):
        set_params(protocol, impact_notional=WAD - 1)
    set_params(protocol, impact_notional=WAD)
    funding.sample()


# ---------------------------------------------------------------- premium, both modes

# (bid, ask) in dollars with the index at $100,000; None: no quotes on that side
BOOKS = {
    "above": (100_500, 100_600),
    "below": (99_400, 99_500),
    "around_symmetric": (99_900, 100_100),
    "around_skewed_up": (99_950, 100_250),
    "around_skewed_down": (99_700, 100_050),
    "bid_side_thin": (None, 100_600),
    "ask_side_thin": (99_400, None),
    "both_thin": (None, None),
    "bid_thin_below": (None, 99_500),
}

# expected premium (WAD) per book and mode, worked by hand; the contract is
# off by the impact prices' rounding (< 1e-15 relative), the model is exact
EXPECTED = {
    ("above", BAND): 5 * WAD // 1_000,  # (100,500 - 100,000) / 100,000
    ("above", MID): 55 * WAD // 10_000,  # 100,550
    ("below", BAND): -5 * WAD // 1_000,  # -(100,000 - 99,500) / 100,000
    ("below", MID): -55 * WAD // 10_000,
    ("around_symmetric", BAND): 0,
    ("around_symmetric", MID): 0,
    ("around_skewed_up", BAND): 0,
    ("around_skewed_up", MID): WAD // 1_000,  # mid 100,100
    ("around_skewed_down", BAND): 0,
    ("around_skewed_down", MID): -WAD // 1_000 * 125 // 100,  # mid 99,875
    ("bid_side_thin", BAND): 0,  # the bid counts as at the index; the ask is above it
    ("bid_side_thin", MID): 3 * WAD // 1_000,  # (100,000 + 100,600) / 2
    ("ask_side_thin", BAND): 0,
    ("ask_side_thin", MID): -3 * WAD // 1_000,
    ("both_thin", BAND): 0,
    ("both_thin", MID): 0,
    ("bid_thin_below", BAND): -5 * WAD // 1_000,  # the ask below the index still counts
    ("bid_thin_below", MID): -25 * WAD // 10_000,
}


def _quote_book(p, maker, name: str) -> None:
    bid, ask = BOOKS[name]
    if name == "bid_side_thin":
        rest(p, maker, "buy", 99_000, "0.001")  # $99 of bids: too thin
    quotes(p, maker, bid, ask, size="0.02")


@pytest.mark.parametrize("mode", [BAND, MID], ids=["impact_band", "impact_mid"])
@pytest.mark.parametrize("name", list(BOOKS))
def test_sample__premium_of_book(protocol, funding, maker, name, mode):
    set_params(protocol, premium_mode=mode)
    _quote_book(protocol, maker, name)
    bid, ask = funding.impact_prices(NOTIONAL)

    premium = funding.sample()
    (event,) = events(funding, "PremiumSampled")

    assert premium == fm.premium(mode, bid, ask, INDEX)
    expected = EXPECTED[(name, mode)]
    assert abs(premium - expected) <= 100
    assert (premium > 0) == (expected > 0) and (premium < 0) == (expected < 0) or expected == 0
    assert (event.premium, event.impact_bid, event.impact_ask, event.index, event.time) == (
        premium,
        bid,
        ask,
        INDEX,
        now(),
    )
    assert funding.premium_sum() == premium
    assert funding.sample_count() == 1


@pytest.mark.parametrize("mode", [BAND, MID], ids=["impact_band", "impact_mid"])
def test_sample__negative_premium__truncates_toward_zero(protocol, funding, maker, mode):
    # an index just off the dollar makes every division inexact
    index = INDEX + 7
    push_index(protocol, index)
    set_params(protocol, premium_mode=mode)
    quotes(protocol, maker, 99_001, 99_500, size="0.02")
    bid, ask = funding.impact_prices(NOTIONAL)

    premium = funding.sample()

    assert premium == fm.premium(mode, bid, ask, index) < 0
    # Python's floor division would be one wei lower: the test tells them apart
    if mode == BAND:
        floored = (0 - (index - ask)) * WAD // index
    else:
        floored = ((bid + ask) // 2 - index) * WAD // index
    assert floored == premium - 1


def test_sample__book_moves__each_sample_reads_the_book_then(protocol, funding, maker):
    oids = [rest(protocol, maker, "buy", 100_200, "0.02"), rest(protocol, maker, "sell", 100_300, "0.02")]
    first = funding.sample()
    for oid in oids:
        protocol.cancel(maker, oid)
    quotes(protocol, maker, 99_700, 99_800, size="0.02")
    boa.env.time_travel(seconds=DEFAULTS.sample_interval)
    push_index(protocol, INDEX)

    second = funding.sample()

    assert abs(first - 2 * WAD // 1_000) <= 100
    assert abs(second + 2 * WAD // 1_000) <= 100
    assert funding.premium_sum() == first + second
    assert funding.sample_count() == 2


def test_sample__impact_notional_param__walks_that_much(protocol, funding, maker):
    rest(protocol, maker, "sell", 100_100, "0.01")
    rest(protocol, maker, "sell", 101_100, "0.1")
    set_params(protocol, impact_notional=5_000 * WAD)
    _, ask = funding.impact_prices(5_000 * WAD)
    _, asks = book_levels(protocol)

    premium = funding.sample()

    assert ask == fm.impact_price(asks, 5_000 * WAD)
    assert to_wad(100_100) < ask < to_wad(101_100)
    assert premium == 0  # band: the ask is above the index, the bid side empty
    set_params(protocol, impact_notional=5_000 * WAD, premium_mode=MID)
    boa.env.time_travel(seconds=DEFAULTS.sample_interval)
    push_index(protocol, INDEX)
    assert funding.sample() == fm.premium(MID, 0, ask, INDEX) > 0


def test_sample__symmetric_book_mid__one_wei_above_zero(protocol, funding, maker):
    """Both impact prices round up (the base walked rounds down), so a book
    symmetric around the index reads as a premium of +1e-18, not 0: the
    model reproduces it; it is far below any rate resolution that matters."""
    set_params(protocol, premium_mode=MID)
    quotes(protocol, maker, 99_900, 100_100, size="0.02")
    bid, ask = funding.impact_prices(NOTIONAL)
    assert bid - to_wad(99_900) > 0 and ask - to_wad(100_100) > 0

    assert funding.sample() == fm.premium(MID, bid, ask, INDEX) == 1
