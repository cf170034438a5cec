"""A rogue liquidation engine: the Clearinghouse's engine_* functions move
cash and positions with no check of their own (the LiquidationEngine checks),
so only the connected engine may call them (PROTOCOL.md §9.7).

* Any address calling them directly (a fee of the victim's whole cash paid to
  itself, the victim's position moved to itself at a price of 1, a close into
  its own bid) is refused, and nothing moves.
* An engine the attacker deploys itself, naming this clearinghouse and with
  its own parameters (a 5% fee, all of it to the caller), is refused by the
  clearinghouse; only the owner can connect an engine.
* Even the owner's key (stolen) cannot swap the engine at once: a replacement
  is proposed in an event and takes effect ENGINE_DELAY (2 days) later, time
  for accounts to leave."""

import boa
import pytest

from tests.e2e.replay_helpers import WAD, assert_solvent, attempt, open_position, snapshot, to_wad
from tests.utils.protocol import GTC

ENGINE_DELAY = 2 * 86400
REFUSED = "not the liquidation engine"


@pytest.fixture
def victim(protocol):
    """A 10x long of 0.1 BTC at 100,000 with 1,100 of margin, a book both sides."""
    p = protocol
    p.set_index(100_000)
    maker = p.actor("maker", 1_000_000)
    victim = p.actor("victim", 1_100)
    open_position(p, victim, maker, "buy", "0.1", 100_000)
    p.order(maker, "buy", "1", 99_000, GTC)
    p.order(maker, "sell", "1", 101_000, GTC)
    return victim


def _rogue_engine(p, attacker):
    """An engine of the attacker's own, naming this clearinghouse, with the
    market listed and the richest parameters the bounds allow."""
    with boa.env.prank(attacker):
        rogue = p.backend.factory("LiquidationEngine").deploy(p.ch.address)
    m = p.market().address
    rogue.add_market(m, sender=attacker)
    rogue.set_liquidation_params(m, (WAD // 20, WAD, WAD // 20, WAD // 10, 0), sender=attacker)
    return rogue


def test_rogue_caller__engine_functions_called_directly__refused_nothing_moves(protocol, victim):
    p = protocol
    # the attacker's own bid, as low as the price band allows (index - 2%), under the
    # maker's; it reserves IM 9,800 x 10% + order risk ceil(9,800 x 3.6989796%) = 1,342.50...
    attacker = p.actor("attacker", 1_400)
    a, m = p.account(victim), p.market().address
    p.order(attacker, "buy", "0.1", 98_000, GTC)
    before = snapshot(p)
    calls = {
        "engine_settle": lambda: p.ch.engine_settle(a, p.ch.cash(a), attacker, WAD, False, sender=attacker),
        "engine_transfer": lambda: p.ch.engine_transfer(
            a, p.account(attacker), m, -to_wad("0.1"), 1, True, sender=attacker
        ),
        "engine_close": lambda: p.ch.engine_close(a, m, False, to_wad("0.1"), 1, sender=attacker),
        "engine_cancel": lambda: p.ch.engine_cancel(a, m, [1], sender=attacker),
    }
    for name, call in calls.items():
        ok, out = attempt(call)
        assert not ok and REFUSED in out, (name, out)
    # nor the owner: only the engine's own checks stand behind these functions
    ok, out = attempt(lambda: p.ch.engine_settle(a, 1, p.owner, WAD, False, sender=p.owner))
    assert not ok and REFUSED in out, out
    assert snapshot(p) == before
    assert_solvent(p)


def test_rogue_engine__deployed_by_the_attacker__refused(protocol, victim):
    p = protocol
    attacker = p.actor("attacker", 1_000)
    rogue = _rogue_engine(p, attacker)
    # the victim is liquidatable now: the mark clamped to 1.625% (the mark band) above
    # 92,000, 93,495: equity 1,100 - 650.5 = 449.5 < MM 607.7175
    p.set_index(92_000)
    # the book follows the index: a bid near it (the maker's at 99,000 is now beyond
    # the price band, cancelled when a taker reaches it, PROTOCOL.md §5)
    p.order(p.actor("maker2", 1_000_000), "buy", "1", 92_000, GTC)
    a, m = p.account(victim), p.market().address
    assert p.ch.health(a, 1)[0].liquidatable
    assert p.market().mark_price() == to_wad(93_495)
    before = snapshot(p)

    ok, out = attempt(lambda: rogue.liquidate(a, m, 2**200, [], sender=attacker))
    assert not ok and REFUSED in out, out
    ok, out = attempt(lambda: p.ch.set_liquidation_engine(rogue.address, sender=attacker))
    assert not ok and "ownable: caller is not the owner" in out, out

    assert snapshot(p) == before and p.ch.liquidation_engine() == p.engine.address
    # the connected engine still liquidates, at its own parameters
    assert p.engine.liquidate(a, m, 2**200, [], sender=p.actor("keeper")) > 0
    assert_solvent(p)


def test_rogue_engine__proposed_by_the_owner_key__waits_two_days_in_the_open(protocol, victim):
    p = protocol
    attacker = p.actor("attacker", 1_000)
    rogue = _rogue_engine(p, attacker)
    p.ch.set_liquidation_engine(rogue.address, sender=p.owner)  # a stolen owner key
    (proposed,) = [e for e in p.ch.get_logs() if type(e).__name__ == "LiquidationEngineProposed"]
    assert (proposed.engine, proposed.effective_at) == (
        rogue.address,
        boa.env.evm.patch.timestamp + ENGINE_DELAY,
    )
    assert p.ch.liquidation_engine() == p.engine.address

    boa.env.time_travel(seconds=ENGINE_DELAY - 1)
    ok, out = attempt(lambda: p.ch.apply_liquidation_engine(sender=p.owner))
    assert not ok and "engine delay not over" in out, out
    # meanwhile the victim leaves: it closes and withdraws everything
    p.set_index(100_000)
    p.order(victim, "sell", "0.1", 99_000, 2)
    p.ch.withdraw(0, p.ch.margin(p.account(victim))[3] // p.ch.PRECISION(), sender=victim)
    assert p.position(victim).size == 0 and p.ch.cash(p.account(victim)) < p.ch.PRECISION()

    boa.env.time_travel(seconds=1)
    p.ch.apply_liquidation_engine(sender=p.owner)
    assert p.ch.liquidation_engine() == rogue.address
    # the old engine is disconnected at once
    ok, out = attempt(lambda: p.engine.settle_bad_debt(p.account(victim), sender=attacker))
    assert not ok
    assert_solvent(p)
