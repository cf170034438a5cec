"""Drift v1 (May 2022): in a crash the winners closed and withdrew their
profit before the losers were liquidated; the losers' collateral was not
enough and the vault ran dry for the last withdrawers.

Replayed: the winner realizes and withdraws first; the loser cannot withdraw
while under water; it is then liquidated (solvent: from its own cash) or,
after a gap past its bankruptcy price, taken over with the insurance fund
paying the deficit. No bad debt beyond what the fund covers, and every
remaining withdrawal succeeds: the vault is never short (PROTOCOL.md §7,
§9, §11, §14.1)."""

from tests.e2e.replay_helpers import assert_solvent, attempt, open_position, withdraw
from tests.utils.protocol import GTC, IOC


def _crash(p, to_price):
    p.set_index(100_000)
    maker = p.actor("maker", 1_000_000)
    winner = p.actor("winner", 20_000)
    loser = p.actor("loser", 11_000)
    open_position(p, loser, winner, "buy", "1", 100_000)  # the loser long 1 BTC, the winner short
    p.set_index(to_price)
    return maker, winner, loser


def _everyone_withdraws(p, actors):
    """Each actor closes nothing more and withdraws all it can; every call succeeds."""
    for who in actors:
        free = p.margin(who)[3] // p.ch.PRECISION()
        if free > 0:
            p.ch.withdraw(0, free, sender=who)
    for who in actors:
        assert p.margin(who)[3] < p.ch.PRECISION()  # nothing free is left behind


def test_drift__winner_withdraws_first__loser_liquidated_from_its_own_cash(protocol):
    p = protocol
    maker, winner, loser = _crash(p, 90_000)  # loser: equity 1,000 < MM 5,850, solvent
    p.order(maker, "sell", "1", 90_000, GTC)
    p.order(winner, "buy", "1", 90_000, IOC, reduce_only=True)  # the winner closes: +10,000
    assert p.position(winner).size == 0
    ok, _ = withdraw(p, winner, 30_000)  # deposit + profit, all of it, before any liquidation
    assert ok and p.token.balanceOf(winner) == p.units(30_000)
    assert_solvent(p)

    ok, out = withdraw(p, loser, 1)
    assert not ok and "below initial margin" in out, out
    p.order(maker, "buy", "1", 90_000, GTC)
    keeper = p.actor("keeper")
    p.engine.liquidate(p.account(loser), p.market().address, 2**200, [], sender=keeper)

    equity, im, _mm, _ = p.margin(loser)
    assert 0 < p.position(loser).size < 10**18 and equity >= im  # partly closed, back at IM
    assert p.ch.bad_debt() == 0
    _everyone_withdraws(p, [loser, keeper, maker])
    assert_solvent(p)


def test_drift__gap_past_bankruptcy__fund_covers__everyone_withdraws(protocol):
    p = protocol
    p.fund_insurance(1_000_000)
    maker, winner, loser = _crash(p, 85_000)  # loser: equity -4,000, bankrupt
    p.order(maker, "sell", "1", 85_000, GTC)
    p.order(winner, "buy", "1", 85_000, IOC, reduce_only=True)  # the winner closes: +15,000
    ok, _ = withdraw(p, winner, 35_000)
    assert ok
    a = p.account(loser)
    assert p.margin(loser)[0] < 0
    ok, out = withdraw(p, loser, 1)
    assert not ok and "below initial margin" in out, out
    ok, out = attempt(lambda: p.order(loser, "sell", "1", 80_000, IOC, reduce_only=True))
    assert not ok  # a bankrupt account cannot close itself (below zero)
    fund0 = p.insurance.totalAssets()

    backstop = p.actor("backstop", 100_000)
    p.engine.takeover(a, p.market().address, 10**18, 0, sender=backstop)

    assert p.position(loser).size == 0 and p.ch.cash(a) == 0
    assert p.ch.bad_debt() == 0
    paid = fund0 - p.insurance.totalAssets()
    assert 0 < paid <= p.units(4_000 + 85_000 // 100 + 1)  # the deficit plus the taker's 1% discount
    _everyone_withdraws(p, [maker, backstop])
    assert_solvent(p)


def test_drift__gap_with_an_empty_fund__adl_not_the_vault(protocol):
    p = protocol
    maker, winner, loser = _crash(p, 85_000)
    late = p.actor("late_short", 10_000)
    p.order(maker, "buy", "1", 85_000, GTC)
    p.order(late, "sell", "1", 85_000, IOC)  # another short, not yet profitable
    p.set_index(84_000)
    p.order(maker, "sell", "1", 84_000, GTC)
    p.order(winner, "buy", "1", 84_000, IOC, reduce_only=True)  # the first winner closes: +16,000
    ok, _ = withdraw(p, winner, 36_000)
    assert ok
    a = p.account(loser)
    keeper = p.actor("keeper")
    ok, out = attempt(lambda: p.engine.liquidate(a, p.market().address, 2**200, [], sender=keeper))
    assert not ok and "insurance fund cannot cover, adl" in out, out

    # the deficit is absorbed by the profitable opposite position, never the vault
    p.engine.adl(a, p.market().address, [p.account(late)], [], sender=keeper)

    assert p.position(loser).size == 0 and p.ch.cash(a) == 0 and p.ch.bad_debt() == 0
    assert p.margin(late)[0] >= 0
    _everyone_withdraws(p, [maker, late])
    assert_solvent(p)
    assert p.ch.cash(p.account(winner)) == 0 and p.token.balanceOf(winner) == p.units(36_000)
