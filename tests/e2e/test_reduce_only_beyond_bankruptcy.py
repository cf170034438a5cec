"""A reduce-only order resting beyond its owner's bankruptcy price (an outside
review, on the contracts before resting orders reserved margin).

A reduce-only order reserved no margin and needed only equity >= 0: an owner
below maintenance could rest a reduce-only ask under its bankruptcy price, an
accomplice bought it, and the owner's loss beyond its equity went to the
insurance fund while the accomplice kept the discount. The same order, placed
again before each keeper call, also kept the account from being liquidated.

Now (PROTOCOL.md §8) every resting order, reduce-only included, reserves margin
and its order risk, and resting one needs equity >= initial margin: an account
below maintenance cannot rest anything, its liquidation goes through, the pair
gains nothing and the fund pays nothing.
"""

from __future__ import annotations

from tests.e2e.replay_helpers import WAD, assert_solvent, attempt, open_position
from tests.utils.protocol import GTC, IOC


def test_reduce_only_beyond_bankruptcy__refused_below_initial_margin_and_liquidation_goes_through(protocol):
    p = protocol
    p.fund_insurance(1_000_000)
    p.set_index(100_000)
    maker = p.actor("maker", 1_000_000)
    owner = p.actor("owner", 10_000)  # 1 BTC long at 100,000: 10x, bankrupt at 90,000
    colluder = p.actor("colluder", 50_000)
    open_position(p, owner, maker, "buy", "1", 100_000)
    p.set_index(91_000)  # equity $1,000 < maintenance $5,915; the band's low edge is 89,180
    p.order(maker, "sell", "2", 91_100, GTC)  # the bid side momentarily empty
    fund0 = p.insurance.totalAssets()
    pair0 = p.margin(owner)[0] + p.margin(colluder)[0]
    assert 0 < p.margin(owner)[0] < p.margin(owner)[2]

    # the owner rests a reduce-only ask under its bankruptcy price, the accomplice takes it
    rested, reason = attempt(lambda: p.order(owner, "sell", "1", 89_180, GTC, reduce_only=True))
    attempt(lambda: p.order(colluder, "buy", "1", 89_180, IOC))
    p.order(maker, "buy", "2", 90_900, GTC)
    # the keeper liquidates; the accomplice closes at the book
    keeper = p.actor("keeper")
    closed, _ = attempt(
        lambda: p.engine.liquidate(p.account(owner), p.market().address, 2**200, [], sender=keeper)
    )
    if p.position(colluder).size > 0:
        attempt(lambda: p.order(colluder, "sell", "1", 90_900, IOC))

    pair1 = max(0, p.margin(owner)[0]) + p.margin(colluder)[0]
    assert p.insurance.totalAssets() >= fund0 and p.ch.bad_debt() == 0, "the insurance fund paid"
    assert pair1 <= pair0, f"the pair gained ${(pair1 - pair0) / WAD:,.2f}"
    assert_solvent(p)
    assert (rested, reason) == (False, "below initial margin")
    assert closed and p.position(owner).size < WAD  # the liquidation was not blocked
