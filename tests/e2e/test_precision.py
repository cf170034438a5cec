"""Precision at the edges: 1-unit (1 wei for 18 decimals) deposits and
withdrawals; trades at $3e-8 (a market with a $1e-8 tick) and at $1e6; a
one-lot position held for a year of hourly funding. Every rounding goes
against the account (PROTOCOL.md §5, §8, conventions of STYLE.md): fees and
funding paid are rounded up, funding received down, and the contract agrees
exactly with the Python model (keeper/funding_model.py)."""

from decimal import Decimal

import boa
import pytest

from keeper import funding_model as fm
from keeper.deploy import MarketConfig
from tests.e2e.replay_helpers import WAD, assert_solvent, attempt, report, to_wad
from tests.utils.protocol import GTC, IOC, deploy_for_tests

MICRO, MEGA = "MICRO-PERP", "MEGA-PERP"
MICRO_INDEX = Decimal("0.000000033")  # rate x index / WAD and size x cum / WAD both leave remainders
YEAR = 365 * 86_400 + 3_600  # a year and an hour: an odd number of intervals
HOUR = 3_600


@pytest.fixture(scope="module")
def _edge_protocol():
    markets = (
        MarketConfig(
            MICRO,
            MICRO_INDEX,
            tick_size=Decimal("0.00000001"),
            lot_size=Decimal("0.001"),
            min_order_notional=Decimal("0.00000000001"),
            max_fills=8,
            # the index, 3.3 ticks, is priced to leave remainders; a 2% band
            # (+-0.066 ticks) holds no tick at all, 20% (the widest allowed)
            # holds one: ticks [ceil(2.64), floor(3.96)] = [3, 3], $3e-8
            price_band=Decimal("0.2"),
        ),
        MarketConfig(MEGA, Decimal("1000000"), tick_size=Decimal("1"), lot_size=Decimal("0.001")),
    )
    return deploy_for_tests(6, markets=markets)


@pytest.fixture
def edge(_edge_protocol):
    with boa.env.anchor():
        yield _edge_protocol


def test_one_unit_deposit_and_withdraw(protocol_any_decimals):
    p = protocol_any_decimals
    who = p.actor("dust")
    p.token.mint(who, 2, sender=p.owner)
    p.token.approve(p.ch.address, 2, sender=who)
    p.ch.deposit(0, 1, sender=who)
    a = p.account(who)
    assert p.ch.cash(a) == p.ch.PRECISION()  # 1 unit, exactly, in WAD
    ok, out = attempt(lambda: p.ch.withdraw(0, 2, sender=who))
    assert not ok and "below initial margin" in out, out
    p.ch.withdraw(0, 1, sender=who)
    assert p.ch.cash(a) == 0 and p.token.balanceOf(who) == 2
    assert_solvent(p)


@pytest.mark.parametrize("symbol, price, size", [(MICRO, "0.00000003", "0.001"), (MEGA, "1000000", "0.001")])
def test_trade_at_extreme_prices__fees_and_margin_round_against_the_account(edge, symbol, price, size):
    p = edge
    maker = p.actor("maker", 10_000)
    taker = p.actor("taker", 10_000)
    m = p.market(symbol)
    params = p.params(symbol)
    p.order(maker, "sell", size, price, GTC, symbol=symbol)
    before = p.ch.cash(p.account(taker))
    p.order(taker, "buy", size, price, IOC, symbol=symbol)

    notional = to_wad(size) * to_wad(price) // WAD
    fee = before - p.ch.cash(p.account(taker))
    assert fee == -(-notional * params.taker_fee // WAD)  # ceil
    assert fee * WAD >= notional * params.taker_fee
    _equity, im, mm, _ = p.margin(taker)
    mark = m.mark_price()
    mark_notional = -(-to_wad(size) * mark // WAD)
    assert im == -(-mark_notional * params.imr // WAD) and im * WAD >= mark_notional * params.imr
    assert mm == -(-mark_notional * params.mmr // WAD)
    assert_solvent(p)


def test_tiny_position_held_a_year__funding_never_rounds_in_the_payers_favour(edge):
    p = edge
    m = p.market(MICRO)
    funding = p.d.markets[MICRO].funding
    long = p.actor("long", 1)
    short = p.actor("short", 1)
    p.order(short, "sell", "0.001", "0.00000003", GTC, symbol=MICRO)
    p.order(long, "buy", "0.001", "0.00000003", IOC, symbol=MICRO)  # one lot: $3e-11 of notional
    la, sa = p.account(long), p.account(short)
    size = m.position(la).size
    assert size == to_wad("0.001") and m.position(sa).size == -size
    cum = m.cumulative_funding()
    long_paid = 0
    short0 = p.ch.cash(sa)
    index = to_wad(MICRO_INDEX)
    cap = funding.params().cap
    settled = 0
    while settled < YEAR:
        step = min(47 * HOUR, YEAR - settled)  # 47 intervals per settle (at most 48): odd
        p.warp(step)
        settled += step
        report(p, [MICRO_INDEX] * 3, MICRO)
        nft = funding.next_funding_time()
        now = boa.env.evm.patch.timestamp
        if now < nft:
            continue
        due = fm.due_intervals(now, nft, HOUR)
        rate = funding.settle(sender=long)  # no samples: the interest part, every interval
        cum = fm.settle(cum, rate, rate, index, due, cap)
        assert m.cumulative_funding() == cum
        # the long settles every time: each rounding is up (it pays)
        c0, snap = p.ch.cash(la), m.funding_snapshot(la)
        p.ch.settle_funding(long, 0, sender=long)
        paid = c0 - p.ch.cash(la)
        assert paid == fm.funding_owed(size, cum, snap)
        assert paid * WAD >= size * (cum - snap)  # payer: never less than owed
        long_paid += paid
    assert cum > 0 and long_paid > 0

    # the short, settled once at the end, receives the exact amount rounded down
    p.ch.settle_funding(short, 0, sender=short)
    received = p.ch.cash(sa) - short0
    exact = size * (cum - 0)  # the short's snapshot was 0 at entry (cum was 0)
    assert received * WAD <= exact
    assert received == exact // WAD  # floor, not more
    assert long_paid * WAD > exact  # hourly ceilings: the long paid more than the exact total
    # the difference went to the insurance fund, nothing created or lost
    assert long_paid - received >= 0
    assert_solvent(p)
