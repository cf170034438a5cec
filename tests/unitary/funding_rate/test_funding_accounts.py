"""What accounts owe and pay (PROTOCOL.md §9, §2, §14.4): each position owes
size x (cumulative - snapshot), the payer rounded up and the receiver down;
the clearinghouse applies it lazily (explicit settle, withdraw, trades),
moves cash by exactly the amount owed and books the rounding residue, in
whole wei, to the insurance account, so that Σ paid = Σ received + residue
and the vault still holds Σ cash exactly."""

import boa
import pytest

from keeper import funding_model as fm
from keeper.deploy import to_wad
from keeper.units import WAD
from tests.unitary.funding_rate.funding_helpers import (
    DEFAULTS,
    INDEX,
    events,
    funding_of,
    now,
    quotes,
    set_params,
    trade,
    warp,
    warp_to,
)
from tests.utils.protocol import position_changes

HOUR = 3600
#: an index with many digits: F x index and size x cumulative are inexact
ODD_INDEX = 100_000_123_456_789_012_345_678
#: (interest rate per 8h) -> longs pay when positive, shorts when negative
SIGNS = {"longs_pay": DEFAULTS.interest_rate, "shorts_pay": -DEFAULTS.interest_rate}


def _dust(p) -> int:
    """The market's unswept funding residue, in 1e-18 wei (private storage)."""
    return p.market()._storage._funding_dust.get()


def _vault_wad(p) -> int:
    return p.token.balanceOf(p.ch.address) * 10 ** (18 - p.decimals)


def _settle_interval(p, index=ODD_INDEX) -> int:
    """Settle the running interval at `index` (empty book: interest only)."""
    f = funding_of(p)
    warp_to(p, f.next_funding_time(), index)
    f.settle()
    return p.market().cumulative_funding()


def _open(p, long_trader, short_trader, size="0.003", price=100_000) -> int:
    """The long buys `size` from the short at `price`; returns the size, WAD."""
    trade(p, long_trader, short_trader, size, price)
    return to_wad(size)


# ---------------------------------------------------------------- funding owed


@pytest.mark.parametrize("interest", list(SIGNS.values()), ids=list(SIGNS))
def test_funding_owed__long_and_short__opposite_payer_rounded_up(
    protocol, long_trader, short_trader, interest
):
    p = protocol
    set_params(p, interest_rate=interest)
    size = _open(p, long_trader, short_trader)
    assert p.position(long_trader).funding_owed == p.position(short_trader).funding_owed == 0

    cum = _settle_interval(p)

    exact = size * cum  # in 1e-18 wei
    assert exact % WAD != 0
    long_owed = p.position(long_trader).funding_owed
    short_owed = p.position(short_trader).funding_owed
    assert long_owed == fm.funding_owed(size, cum, 0) == -(-exact // WAD)  # ceil
    assert short_owed == fm.funding_owed(-size, cum, 0) == -(exact // WAD)  # receiver: floor of what it gets
    assert long_owed + short_owed == 1  # equal and opposite, up to one wei for the house
    payer_owed = long_owed if interest > 0 else short_owed
    assert payer_owed > 0
    assert payer_owed * WAD > abs(exact)  # the payer's share is rounded up


def test_funding_owed__accumulates_over_settlements_then_rounds_once(protocol, long_trader, short_trader):
    p = protocol
    size = _open(p, long_trader, short_trader, "0.007")
    cums = [_settle_interval(p, ODD_INDEX + k * 13) for k in range(3)]

    assert p.position(long_trader).funding_owed == fm.funding_owed(size, cums[-1], 0)
    pieces = [fm.funding_owed(size, b, a) for a, b in zip([0, *cums], cums, strict=False)]
    assert sum(pieces) >= fm.funding_owed(size, cums[-1], 0)


def test_funding_owed__opened_after_a_settlement__from_then_only(protocol, long_trader, short_trader, maker):
    p = protocol
    c1 = _settle_interval(p)
    size = _open(p, long_trader, short_trader)
    assert p.market().funding_snapshot(p.account(long_trader)) == c1

    c2 = _settle_interval(p)

    assert p.position(long_trader).funding_owed == fm.funding_owed(size, c2, c1)
    assert p.position(short_trader).funding_owed == fm.funding_owed(-size, c2, c1)


def test_funding_owed__flat_account__zero(protocol, long_trader, short_trader):
    p = protocol
    bystander = p.actor("bystander", deposit=1_000)
    _open(p, long_trader, short_trader)
    _settle_interval(p)

    assert p.position(bystander).funding_owed == 0
    p.ch.settle_funding(bystander, 0)
    assert p.ch.cash(p.account(bystander)) == 1_000 * WAD
    with boa.reverts("no such account"):
        p.ch.settle_funding(p.actor("nobody"), 0)


def test_margin__unsettled_funding_already_in_equity(protocol, long_trader, short_trader):
    p = protocol
    _open(p, long_trader, short_trader)
    before = p.margin(long_trader)[0]
    _settle_interval(p, INDEX)  # same index: the PnL does not move

    owed = p.position(long_trader).funding_owed

    assert owed > 0
    assert p.margin(long_trader)[0] == before - owed
    p.ch.settle_funding(long_trader, 0)
    assert p.margin(long_trader)[0] == before - owed  # settling only moves it into cash


# ---------------------------------------------------------------- settlement through the clearinghouse


@pytest.mark.parametrize("interest", list(SIGNS.values()), ids=list(SIGNS))
def test_settle_funding__cash_moves_by_owed_residue_to_insurance(protocol_any_decimals, interest):
    p = protocol_any_decimals
    long_trader = p.actor("long_trader", deposit=1_000_000)
    short_trader = p.actor("short_trader", deposit=1_000_000)
    set_params(p, interest_rate=interest)
    _open(p, long_trader, short_trader)
    _settle_interval(p)
    ins = p.ch.insurance_account()
    accounts = {who: p.account(who) for who in (long_trader, short_trader)}
    owed = {who: p.position(who).funding_owed for who in accounts}
    cash0 = {who: p.ch.cash(a) for who, a in accounts.items()}
    ins0 = p.ch.cash(ins)

    residues = []
    for who in (long_trader, short_trader):
        before = p.ch.cash(ins)
        p.ch.settle_funding(who, 0, sender=p.actor("keeper"))  # permissionless
        (changed,) = events(p.ch, "PositionChanged")
        assert (changed.account, changed.funding_paid, changed.realized_pnl) == (accounts[who], owed[who], 0)
        residues.append(p.ch.cash(ins) - before)
        assert p.ch.cash(accounts[who]) == cash0[who] - owed[who]
        assert p.position(who).funding_owed == 0
        assert p.market().funding_snapshot(accounts[who]) == p.market().cumulative_funding()

    paid = sum(o for o in owed.values() if o > 0)
    received = -sum(o for o in owed.values() if o < 0)
    assert residues == [0, 1]  # the second settlement completes a whole wei
    assert paid == received + sum(residues)
    assert p.ch.cash(ins) == ins0 + 1
    assert _dust(p) == 0
    # both opened at the same price: Σ open notional = 0, so the vault holds Σ cash exactly
    assert _vault_wad(p) == p.total_cash()


def test_settle_funding__twice__changes_nothing(protocol, long_trader, short_trader):
    p = protocol
    _open(p, long_trader, short_trader)
    _settle_interval(p)
    p.ch.settle_funding(long_trader, 0)
    state = (p.ch.cash(p.account(long_trader)), p.ch.cash(p.ch.insurance_account()), _dust(p))

    p.ch.settle_funding(long_trader, 0)
    assert events(p.ch, "PositionChanged") == []
    warp(p, 600)  # time alone does not accrue funding: only settlements do
    p.ch.settle_funding(long_trader, 0)

    assert (p.ch.cash(p.account(long_trader)), p.ch.cash(p.ch.insurance_account()), _dust(p)) == state


def test_withdraw__settles_funding_first(protocol, long_trader, short_trader):
    p = protocol
    _open(p, long_trader, short_trader)
    _settle_interval(p)
    owed = p.position(long_trader).funding_owed
    cash0 = p.ch.cash(p.account(long_trader))

    p.ch.withdraw(0, p.units("12.5"), sender=long_trader)

    assert p.ch.cash(p.account(long_trader)) == cash0 - owed - 125 * WAD // 10
    assert p.position(long_trader).funding_owed == 0
    assert p.token.balanceOf(long_trader) == p.units("12.5")


def test_trade__settles_funding_of_taker_and_maker(protocol, long_trader, short_trader):
    """Reducing both at the entry price realizes no PnL: cash moves by
    exactly the funding, reported in the taker's PositionChanged.funding_paid
    and the maker's Fill.maker_funding_paid."""
    p = protocol
    size = _open(p, long_trader, short_trader)
    cum = _settle_interval(p, INDEX + 7)
    owed_long = p.position(long_trader).funding_owed
    owed_short = p.position(short_trader).funding_owed
    cash0 = {w: p.ch.cash(p.account(w)) for w in (long_trader, short_trader)}
    ins0 = p.ch.cash(p.ch.insurance_account())

    trade(p, short_trader, long_trader, "0.001", 100_000)  # the long sells a lot back to the short

    changed = {e.account: e for e in position_changes(p.ch.get_logs())}
    assert changed[p.account(long_trader)].funding_paid == owed_long == fm.funding_owed(size, cum, 0)
    assert changed[p.account(short_trader)].funding_paid == owed_short
    assert changed[p.account(long_trader)].realized_pnl == 0
    for who, owed in ((long_trader, owed_long), (short_trader, owed_short)):
        assert p.ch.cash(p.account(who)) == cash0[who] - owed
    assert p.ch.cash(p.ch.insurance_account()) - ins0 == owed_long + owed_short


def test_settle_funding__many_accounts__zero_sum_to_the_wei(protocol, short_trader):
    """Seven longs of odd sizes against one short, two settlements, one long
    settled in between (rounded twice): Σ paid = Σ received + residue, the
    residue sits in the insurance account, no dust is left."""
    p = protocol
    longs = [p.actor(f"speculator_{i}", deposit=100_000) for i in range(7)]
    sizes = {who: (i + 1) * 10**15 for i, who in enumerate(longs)}
    for who, size in sizes.items():
        trade(p, who, short_trader, str(size / WAD), 100_000)
    sizes[short_trader] = -sum(sizes.values())
    everyone = list(sizes)
    ins0 = p.ch.cash(p.ch.insurance_account())
    cash0 = {w: p.ch.cash(p.account(w)) for w in everyone}

    c1 = _settle_interval(p)
    early = p.position(longs[0]).funding_owed
    p.ch.settle_funding(longs[0], 0)
    c2 = _settle_interval(p, ODD_INDEX + 99)
    for w in everyone:
        p.ch.settle_funding(w, 0)

    moved = {w: cash0[w] - p.ch.cash(p.account(w)) for w in everyone}
    assert moved[longs[0]] == early + fm.funding_owed(sizes[longs[0]], c2, c1)
    assert early == fm.funding_owed(sizes[longs[0]], c1, 0)
    for w in everyone[1:]:
        assert moved[w] == fm.funding_owed(sizes[w], c2, 0)
    residue = p.ch.cash(p.ch.insurance_account()) - ins0
    paid = sum(v for v in moved.values() if v > 0)
    received = -sum(v for v in moved.values() if v < 0)
    assert paid == received + residue
    assert 0 < residue <= len(everyone) + 1  # at most one wei per settlement
    assert _dust(p) == 0
    assert _vault_wad(p) == p.total_cash()


# ---------------------------------------------------------------- the seeds


def test_seed_004__38000_at_one_basis_point__pays_3_80(protocol, long_trader, short_trader):
    """Seed 004: a $38,000 position at a funding rate of 0.01% pays $3.80
    per 8h funding period (interval = period = 8h, premium within the clamp)."""
    p = protocol
    set_params(p, funding_interval=8 * HOUR, funding_period=8 * HOUR, clamp=fm.MAX_CLAMP)
    _open(p, long_trader, short_trader, "0.38")  # $38,000 at $100,000
    f = funding_of(p)
    warp_to(p, f.next_funding_time(), INDEX)

    assert f.settle() == WAD // 10_000
    assert p.position(long_trader).funding_owed == 38 * WAD // 10
    assert p.position(short_trader).funding_owed == -38 * WAD // 10


def test_seed_003__impact_mid_two_percent_below__long_receives_24_a_day(
    protocol, long_trader, short_trader, maker
):
    """Seed 003 (Zeta): impact mid 2% below the oracle, 24h realization, no
    interest: F = -2% a day; 100 SOL at $12 ($1,200) receive $24 a day.
    Here $1,200 of BTC (0.012) against an impact mid of $98,000. The book's
    bid, 97,900, is 2.1% below the index: the market's price band is widened
    from 2% to 5% (as in scenarios/seed003_zeta_sol_impact_mid.yaml)."""
    p = protocol
    p.market().set_params(p.params()._replace(price_band=5 * WAD // 100), sender=p.owner)
    params = set_params(
        p,
        funding_interval=86_400,
        funding_period=86_400,
        interest_rate=0,
        clamp=0,
        cap=fm.MAX_CAP,
        premium_mode=fm.IMPACT_MID,
    )
    _open(p, long_trader, short_trader, "0.012")
    quotes(p, maker, 97_900, 98_100, size="0.02")
    f = funding_of(p)
    f.sample()  # the day's premium: settle() reads no book
    warp_to(p, f.next_funding_time(), INDEX)
    assert now() == f.next_funding_time()

    rate = f.settle()

    assert abs(rate + 2 * WAD // 100) < 10**4  # -2%, to the impact prices' rounding
    owed = p.position(long_trader).funding_owed
    cum = fm.settle(0, rate, fm.rate_for(params, 0), INDEX, 1, params.cap)
    assert owed == fm.funding_owed(12 * 10**15, cum, 0)
    assert abs(owed + 24 * WAD) < 10**6  # receives $24
