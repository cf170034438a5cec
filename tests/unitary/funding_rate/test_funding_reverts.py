"""Every revert of FundingRate and of the market's funding hooks
(PROTOCOL.md §8, §13): sampling and settling out of time, parameters out of
their hard bounds, the accumulator guarded, and a stale or quorum-less index
stopping both sample and settle with the oracle's own reason (§4, §14.11)."""

from dataclasses import replace

import boa
import pytest

from keeper import funding_model as fm
from keeper.units import WAD
from tests.unitary.funding_rate.funding_helpers import (
    DEFAULTS,
    INDEX,
    now,
    push_index,
    set_params,
    warp,
    warp_to,
)

MAX_AGE = 60


# ---------------------------------------------------------------- timing


def test_sample__twice_within_sample_interval__reverts(protocol, funding):
    funding.sample()
    warp(protocol, DEFAULTS.sample_interval - 1)

    with boa.reverts("funding: sample too early"):
        funding.sample()

    assert funding.sample_count() == 1


def test_sample__exactly_sample_interval_later__works(protocol, funding):
    funding.sample()
    warp(protocol, DEFAULTS.sample_interval)

    funding.sample()

    assert funding.sample_count() == 2
    assert funding.last_sample_time() == now()


def test_sample__interval_due__reverts_settle_first(protocol, funding):
    warp_to(protocol, funding.next_funding_time())

    with boa.reverts("funding: settle first"):
        funding.sample()

    funding.settle()
    funding.sample()  # the next interval is open again
    assert funding.sample_count() == 1


def test_sample__one_second_before_due__works(protocol, funding):
    warp_to(protocol, funding.next_funding_time() - 1)

    funding.sample()

    assert funding.sample_count() == 1


def test_settle__before_next_funding_time__reverts(protocol, funding):
    warp_to(protocol, funding.next_funding_time() - 1)

    with boa.reverts("funding: too early"):
        funding.settle()


def test_settle__twice_at_the_same_time__reverts(protocol, funding):
    warp_to(protocol, funding.next_funding_time())
    funding.settle()

    with boa.reverts("funding: too early"):
        funding.settle()


# ---------------------------------------------------------------- index


@pytest.mark.parametrize("action", ["sample", "settle", "predicted_rate"])
def test_funding__stale_index__reverts_with_oracle_reason(protocol, funding, action):
    # fresh until 62 s before the settlement is due, then no report
    warp_to(protocol, funding.next_funding_time() - MAX_AGE - 2)
    boa.env.time_travel(seconds=MAX_AGE + 2 if action == "settle" else MAX_AGE + 1)
    assert protocol.oracle().index_status()[0] is False

    with boa.reverts("oracle: stale index"):
        getattr(funding, action)()


@pytest.mark.parametrize("action", ["sample", "settle"])
def test_funding__index_below_quorum__reverts_with_oracle_reason(protocol, funding, action):
    if action == "settle":
        boa.env.time_travel(seconds=funding.next_funding_time() - now())
    else:
        boa.env.time_travel(seconds=MAX_AGE + 1)
    md = protocol.d.markets["BTC-PERP"]
    md.oracle.report(INDEX, now(), sender=md.reporters[0])  # 1 fresh source, quorum 2

    with boa.reverts("oracle: below quorum"):
        getattr(funding, action)()


def test_settle__stale_index__state_unchanged(protocol, funding):
    funding.sample()
    nft = funding.next_funding_time()
    boa.env.time_travel(seconds=nft - now() + MAX_AGE + 1)

    with boa.reverts("oracle: stale index"):
        funding.settle()

    assert funding.next_funding_time() == nft
    assert funding.sample_count() == 1
    assert protocol.market().cumulative_funding() == 0
    push_index(protocol, INDEX)
    funding.settle()  # fresh again: settles
    assert funding.next_funding_time() > nft


# ---------------------------------------------------------------- parameters

# one change per bound: (field, value, reason); the rest stays at the defaults
BAD_PARAMS = [
    ("funding_interval", fm.MIN_INTERVAL - 1, "funding: interval out of bounds"),
    ("funding_interval", fm.MAX_INTERVAL + 1, "funding: interval out of bounds"),
    ("funding_period", DEFAULTS.funding_interval - 1, "funding: period out of bounds"),
    ("funding_period", fm.MAX_PERIOD + 1, "funding: period out of bounds"),
    ("interest_rate", fm.MAX_INTEREST + 1, "funding: interest rate out of bounds"),
    ("interest_rate", -fm.MAX_INTEREST - 1, "funding: interest rate out of bounds"),
    ("clamp", fm.MAX_CLAMP + 1, "funding: clamp out of bounds"),
    ("cap", 0, "funding: cap out of bounds"),
    ("cap", fm.MAX_CAP + 1, "funding: cap out of bounds"),
    ("impact_notional", WAD - 1, "funding: impact notional out of bounds"),
    ("impact_notional", 2**128, "funding: impact notional out of bounds"),
    ("sample_interval", 0, "funding: sample interval out of bounds"),
    ("sample_interval", DEFAULTS.funding_interval + 1, "funding: sample interval out of bounds"),
    ("premium_mode", 2, "funding: unknown premium mode"),
]

# every bound reached exactly is accepted
EDGE_PARAMS = [
    {"funding_interval": fm.MIN_INTERVAL, "funding_period": fm.MIN_INTERVAL, "sample_interval": 1},
    {"funding_interval": fm.MAX_INTERVAL, "funding_period": fm.MAX_PERIOD},
    {"funding_period": DEFAULTS.funding_interval},
    {"interest_rate": fm.MAX_INTEREST, "clamp": fm.MAX_CLAMP, "cap": fm.MAX_CAP},
    {"interest_rate": -fm.MAX_INTEREST, "clamp": 0, "cap": 1},
    {"impact_notional": WAD},
    {"impact_notional": 2**128 - 1},
    {"sample_interval": DEFAULTS.funding_interval},
    {"premium_mode": fm.IMPACT_MID},
]


@pytest.mark.parametrize(("field", "value", "reason"), BAD_PARAMS, ids=[f"{f}={v}" for f, v, _ in BAD_PARAMS])
def test_set_params__out_of_bounds__reverts(protocol, funding, field, value, reason):
    params = replace(DEFAULTS, **{field: value})
    assert fm.params_error(params) == reason  # the model knows the same bounds

    with boa.reverts(reason):
        funding.set_params(params.as_tuple(), sender=protocol.owner)

    assert funding.params() == DEFAULTS.as_tuple()


@pytest.mark.parametrize("changes", EDGE_PARAMS, ids=[",".join(c) for c in EDGE_PARAMS])
def test_set_params__at_the_bounds__accepted(protocol, funding, changes):
    params = set_params(protocol, **changes)
    (event,) = [e for e in funding.get_logs() if type(e).__name__ == "FundingParamsSet"]

    assert fm.params_error(params) is None
    assert funding.params() == params.as_tuple()
    assert (event.funding_interval, event.cap, event.premium_mode) == (
        params.funding_interval,
        params.cap,
        params.premium_mode,
    )


def test_set_params__not_owner__reverts(protocol, funding):
    stranger = protocol.actor("attacker")
    params = replace(DEFAULTS, cap=fm.MAX_CAP)

    with boa.reverts("ownable: caller is not the owner"):
        funding.set_params(params.as_tuple(), sender=stranger)


def test_constructor__params_out_of_bounds__reverts(protocol):
    factory = protocol.backend.factory("FundingRate")
    market, oracle = protocol.market().address, protocol.oracle().address
    with boa.reverts("funding: cap out of bounds"):
        factory.deploy(market, oracle, replace(DEFAULTS, cap=0).as_tuple())
    with boa.reverts("funding: zero address"):
        factory.deploy("0x" + "00" * 20, oracle, DEFAULTS.as_tuple())
    with boa.reverts("funding: zero address"):
        factory.deploy(market, "0x" + "00" * 20, DEFAULTS.as_tuple())


def test_constructor__first_settlement_one_interval_later(protocol):
    factory = protocol.backend.factory("FundingRate")
    params = replace(DEFAULTS, funding_interval=600, sample_interval=10)
    fr = factory.deploy(protocol.market().address, protocol.oracle().address, params.as_tuple())
    assert fr.next_funding_time() == now() + 600
    assert fr.params() == params.as_tuple()


# ---------------------------------------------------------------- the market's hooks


def test_add_cumulative_funding__not_the_funding_rate__reverts(protocol, funding):
    m = protocol.market()
    for sender in (protocol.owner, protocol.actor("attacker"), protocol.ch.address):
        with boa.reverts("market: not funding rate"):
            m.add_cumulative_funding(10 * WAD, sender=sender)
    assert m.cumulative_funding() == 0

    assert m.add_cumulative_funding(7, sender=funding.address) == 7
    assert m.add_cumulative_funding(-10, sender=funding.address) == -3
    assert m.cumulative_funding() == -3


def test_set_funding_rate__already_set__reverts(protocol, funding):
    m = protocol.market()
    assert m.funding_rate() == funding.address

    with boa.reverts("market: funding rate already set"):
        m.set_funding_rate(protocol.actor("other_funding"), sender=protocol.owner)

    assert m.funding_rate() == funding.address


def test_set_funding_rate__not_owner__reverts(protocol):
    with boa.reverts("ownable: caller is not the owner"):
        protocol.market().set_funding_rate(protocol.actor("attacker"), sender=protocol.actor("attacker"))


def test_set_funding_rate__fresh_market_zero_address__reverts(protocol):
    md = protocol.d.markets["BTC-PERP"]
    factory = protocol.backend.factory("PerpMarket")
    with boa.env.prank(protocol.owner):
        market = factory.deploy(
            "BTC-PERP", protocol.ch.address, md.oracle.address, 10**18, 10**15, md.config.params()
        )
    with boa.reverts("market: zero address"):
        market.set_funding_rate("0x" + "00" * 20, sender=protocol.owner)
    market.set_funding_rate(protocol.actor("funding"), sender=protocol.owner)
    with boa.reverts("market: funding rate already set"):
        market.set_funding_rate(protocol.actor("funding"), sender=protocol.owner)
