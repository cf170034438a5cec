"""Mango Markets (October 2022): two colluding accounts open opposite
positions on a thin market, the price is pushed up ten-fold and the winning
side borrows against its unrealized profit, leaving the protocol the loss.

Here most of the oracle's reporters push the index +1000% (the median follows
them: the oracle's trust assumption is broken on purpose). The defence
replayed is the clearinghouse's: unrealized profit is never withdrawable
(withdrawable = min(cash, equity - IM), PROTOCOL.md §7), and a bankrupt
colluder is closed by ADL at its bankruptcy price, so the winner realizes no
more than the loser had. Together the colluders get back at most what they
deposited: protocol loss 0."""

import pytest

from tests.e2e.replay_helpers import assert_solvent, open_position, report, withdraw
from tests.utils.protocol import GTC

SYMBOL = "ETH-PERP"  # the thin market: no resting liquidity
DEPOSIT = 10_000


def _pumped(p):
    p.set_index(4_000, SYMBOL)
    p.set_index(100_000)
    attacker = p.actor("attacker", DEPOSIT)
    colluder = p.actor("colluder", DEPOSIT)
    open_position(p, attacker, colluder, "buy", "10", 4_000, SYMBOL)  # 10x, at IM
    report(p, [44_000, 44_000, 4_000], SYMBOL)  # two of three reporters pump +1000%
    assert p.oracle(SYMBOL).index() == 44_000 * 10**18
    return attacker, colluder


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
    p.ch.liquidate(a, p.market(SYMBOL).address, 2**200, [], sender=keeper)
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
    assert p.margin(colluder)[0] < 0 and p.ch.insurance_capacity() == 0

    p.ch.adl(c, m.address, [a], [], sender=keeper)  # the fund is empty: ADL, not the fund

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
        "Known limit of the oracle trust assumption (median of reporters, no price band on reports): "
        "with 2 of 3 reporters pumping +1000% and a funded insurance fund, liquidate closes the bankrupt "
        "colluder into the attacker's reduce-only ask at the pumped price (within mark x (1 + bankrupt_band)); "
        "the attacker realizes +400,000 as cash and withdraws it, and the fund pays the colluder's "
        "390,000 deficit (bounded only by payout_cap = 50% of its assets per event)"
    ),
)
def test_mango__funded_insurance_pays_a_deficit_made_at_a_manipulated_index(protocol):
    p = protocol
    p.fund_insurance(2_000_000)
    attacker, colluder = _pumped(p)
    p.order(attacker, "sell", "10", 44_000, GTC, symbol=SYMBOL, reduce_only=True)
    fund0 = p.insurance.totalAssets()

    p.ch.liquidate(p.account(colluder), p.market(SYMBOL).address, 2**200, [], sender=p.actor("keeper"))
    ok, _ = withdraw(p, attacker, 400_000)

    assert_solvent(p)  # the books balance: the loss is the fund's, not the vault's
    assert not ok and p.insurance.totalAssets() == fund0, "the insurance fund paid for the manipulation"
