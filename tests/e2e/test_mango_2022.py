"""Mango Markets (October 2022): two colluding accounts open opposite
positions on a thin market, the price is pushed up ten-fold and the winning
side borrows against its unrealized profit, leaving the protocol the loss.

Here most of the oracle's reporters push the index +1000% (the median follows
them: the oracle's trust assumption is broken on purpose). Two defences are
replayed:

1. The oracle's guard (PROTOCOL.md §4): the median is more than
   `max_divergence` (10%) away from the reference price, which moves at most
   `reference_rate` (200% per hour). The index is invalid, so nothing
   price-dependent runs (no withdrawal, no order, no liquidation, no ADL)
   while the owner replaces the sources: protocol loss 0.
2. The clearinghouse's, for a pump the guard let through (the owner confirmed
   it, or the reference caught up): unrealized profit is never withdrawable
   (withdrawable = min(cash, equity - IM), §7), and a bankrupt colluder is
   closed by ADL at its bankruptcy price when the fund is empty, so the winner
   realizes no more than the loser had.

What remains (strict xfail below, docs/SECURITY.md): a majority of sources
holding the pump for longer than the guard's window (about 1 hour) while the
owner does nothing, with a funded insurance fund."""

import boa
import pytest

from tests.e2e.replay_helpers import assert_solvent, attempt, open_position, report, snapshot, withdraw
from tests.utils.protocol import GTC

SYMBOL = "ETH-PERP"  # the thin market: no resting liquidity
DEPOSIT = 10_000
PUMP = [44_000, 44_000, 4_000]  # two of three reporters pump +1000%
MOVED_TOO_FAST = "oracle: index moved too fast"


def _positions(p):
    p.set_index(4_000, SYMBOL)
    p.set_index(100_000)
    attacker = p.actor("attacker", DEPOSIT)
    colluder = p.actor("colluder", DEPOSIT)
    open_position(p, attacker, colluder, "buy", "10", 4_000, SYMBOL)  # 10x, at IM
    backstop = p.actor("backstop", 1_000_000)  # a well-capitalized taker for takeover
    return attacker, colluder, backstop


def _pumped(p):
    """The pump got past the guard: the owner confirmed the move."""
    attacker, colluder, _ = _positions(p)
    report(p, PUMP, SYMBOL)
    assert not p.oracle(SYMBOL).index_status()[0]  # the guard holds it back ...
    p.oracle(SYMBOL).reset_reference(sender=p.owner)  # ... until the owner lets it through
    assert p.oracle(SYMBOL).index() == 44_000 * 10**18
    return attacker, colluder


def _every_price_dependent_call_reverts(p, attacker, colluder, backstop) -> None:
    m = p.market(SYMBOL)
    keeper = p.actor("keeper")
    a, c = p.account(attacker), p.account(colluder)
    calls = [
        lambda: p.ch.withdraw(0, p.units(1), sender=attacker),
        lambda: p.ch.withdraw(0, p.units(1), sender=colluder),
        lambda: p.order(attacker, "sell", "10", 44_000, GTC, symbol=SYMBOL, reduce_only=True),
        lambda: p.engine.liquidate(c, m.address, 2**200, [], sender=keeper),
        lambda: p.engine.takeover(c, m.address, 10 * 10**18, 0, sender=backstop),
        lambda: p.engine.adl(c, m.address, [a], [], sender=keeper),
    ]
    for i, call in enumerate(calls):
        ok, out = attempt(call)
        assert not ok and MOVED_TOO_FAST in out, (i, out)


def test_mango__pump_by_most_sources__index_invalid__owner_replaces_them__loss_0(protocol):
    p = protocol
    p.fund_insurance(2_000_000)
    attacker, colluder, backstop = _positions(p)
    fund0 = p.insurance.totalAssets()
    report(p, PUMP, SYMBOL)
    oracle = p.oracle(SYMBOL)
    assert oracle.index_status() == (False, 44_000 * 10**18, 3)
    before = snapshot(p)

    _every_price_dependent_call_reverts(p, attacker, colluder, backstop)
    assert snapshot(p) == before and p.insurance.totalAssets() == fund0

    # the owner removes the two pumping reporters; the honest one is the index
    oracle.set_quorum(1, sender=p.owner)
    oracle.remove_source(1, sender=p.owner)  # the honest last source takes index 1
    oracle.remove_source(0, sender=p.owner)
    assert oracle.index() == 4_000 * 10**18
    assert p.margin(attacker)[0] == p.margin(colluder)[0] == DEPOSIT * 10**18  # both whole, no profit
    ok, out = withdraw(p, attacker, DEPOSIT - 4_000 + 1)  # more than its free collateral (IM 4,000)
    assert not ok and "below initial margin" in out, out
    assert p.insurance.totalAssets() == fund0 and p.ch.bad_debt() == 0
    assert_solvent(p)


def test_mango__pump_held_for_an_hour__still_invalid__fund_intact(protocol):
    """The sources keep pumping every 30 s and a keeper tries every 10 min:
    the reference climbs at most 200% per hour (compounded), so the index
    stays invalid for ln(11 / 1.1) / 2 ~ 1.15 hours, the owner's window."""
    p = protocol
    p.fund_insurance(2_000_000)
    attacker, colluder, backstop = _positions(p)
    fund0 = p.insurance.totalAssets()
    for step in range(120):
        boa.env.time_travel(seconds=30)
        report(p, PUMP, SYMBOL)
        if step % 20 == 0:
            _every_price_dependent_call_reverts(p, attacker, colluder, backstop)
    assert not p.oracle(SYMBOL).index_status()[0]
    assert p.insurance.totalAssets() == fund0 and p.ch.bad_debt() == 0
    assert_solvent(p)


def test_mango__withdraw_against_pumped_profit__reverts(protocol):
    p = protocol
    attacker, colluder = _pumped(p)
    equity, im, _mm, withdrawable = p.margin(attacker)
    assert equity > 400_000 * 10**18 > im  # 400,000 of paper profit
    assert withdrawable == DEPOSIT * 10**18  # never more than its cash
    balance0 = p.token.balanceOf(attacker)

    ok, out = withdraw(p, attacker, DEPOSIT + 1)
    assert not ok and "unrealized profit not withdrawable" in out, out
    ok, out = withdraw(p, attacker, 300_000)
    assert not ok and "unrealized profit not withdrawable" in out, out
    # the colluder, deep below zero at the pumped index, withdraws nothing
    ok, out = withdraw(p, colluder, 1)
    assert not ok and "below initial margin" in out, out
    # borrowing against the profit = withdrawing its own deposit: allowed, and all it gets
    ok, _ = withdraw(p, attacker, DEPOSIT)
    assert ok
    assert p.token.balanceOf(attacker) - balance0 == p.units(DEPOSIT)
    assert_solvent(p)

    # the price returns: the attacker is back at equity 0 and liquidated, no bad debt
    p.set_index(4_000, SYMBOL)
    assert p.margin(attacker)[0] >= 0
    maker = p.actor("maker", 1_000_000)
    p.order(maker, "buy", "10", 4_000, GTC, symbol=SYMBOL)
    keeper = p.actor("keeper")
    a = p.account(attacker)
    p.engine.liquidate(a, p.market(SYMBOL).address, 2**200, [], sender=keeper)
    assert p.position(attacker, SYMBOL).size == 0 and p.ch.cash(a) >= 0
    assert p.margin(colluder)[0] == DEPOSIT * 10**18  # the colluder is whole again
    ok, _ = withdraw(p, colluder, DEPOSIT - 4_000)  # its free collateral (IM 4,000)
    assert ok
    assert p.ch.bad_debt() == 0
    assert_solvent(p)


def test_mango__bankrupt_colluder_adl__winner_gets_only_the_losers_cash(protocol):
    p = protocol
    attacker, colluder = _pumped(p)
    keeper = p.actor("keeper")
    m = p.market(SYMBOL)
    a, c = p.account(attacker), p.account(colluder)
    assert p.margin(colluder)[0] < 0 and p.engine.insurance_capacity() == 0

    p.engine.adl(c, m.address, [a], [], sender=keeper)  # the fund is empty: ADL, not the fund

    assert p.position(colluder, SYMBOL).size == 0 and p.ch.cash(c) == 0
    assert p.ch.cash(a) <= 2 * DEPOSIT * 10**18  # its deposit plus the colluder's, no more
    ok, out = withdraw(p, attacker, 2 * DEPOSIT + 1)
    assert not ok, "withdrew more than the colluders deposited"
    ok, _ = withdraw(p, attacker, p.ch.cash(a) // 10**18)  # all of its cash, whole dollars
    assert ok
    # together they deposited 20,000 and took out at most 20,000
    assert p.token.balanceOf(attacker) + p.token.balanceOf(colluder) <= p.units(2 * DEPOSIT)
    assert p.ch.bad_debt() == 0
    assert_solvent(p)


@pytest.mark.xfail(
    strict=True,
    reason=(
        "Outside the trust model: a majority of reporters holding a +1000% pump past the guard's window "
        "(about 1 hour, or the owner confirming it) with a funded insurance fund. liquidate then closes "
        "the bankrupt colluder into the attacker's reduce-only ask at the pumped price; the attacker "
        "realizes +400,000 as cash and withdraws it, and the fund pays the colluder's 390,000 deficit "
        "(bounded by payout_cap = 50% of its assets per event)"
    ),
)
def test_mango__pump_past_the_guard__funded_insurance_pays_the_deficit(protocol):
    p = protocol
    p.fund_insurance(2_000_000)
    attacker, colluder = _pumped(p)
    p.order(attacker, "sell", "10", 44_000, GTC, symbol=SYMBOL, reduce_only=True)
    fund0 = p.insurance.totalAssets()

    p.engine.liquidate(p.account(colluder), p.market(SYMBOL).address, 2**200, [], sender=p.actor("keeper"))
    ok, _ = withdraw(p, attacker, 400_000)

    assert_solvent(p)  # the books balance: the loss is the fund's, not the vault's
    assert not ok and p.insurance.totalAssets() == fund0, "the insurance fund paid for the manipulation"
