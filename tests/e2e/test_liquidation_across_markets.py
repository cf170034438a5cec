"""A liquidation that spent the margin of its owner's orders in another market
(found after price protection, on the contracts of that change).

An account long BTC and long ETH rests a reduce-only ETH ask a little under
the ETH mark: the ask's order risk is part of its maintenance margin. BTC
falls; the liquidation closed the BTC long down to the bankruptcy price, which
counted that reserved margin as equity to spend, and left the ETH ask live. An
accomplice then bought the ask under the mark: the account ended flat below
zero and the insurance fund paid the difference to the accomplice.

Now (PROTOCOL.md §10) a solvent account's close keeps the order risk of its
other markets' resting orders out of the bankruptcy price: whatever of them
fills, the account ends at or above zero. The liquidation keeper cancels those
orders first (a `liquidate` call in a market of orders only), then the close
goes down to the plain bankruptcy price.
"""

from __future__ import annotations

from tests.e2e.replay_helpers import WAD, assert_solvent, attempt, open_position
from tests.utils.protocol import GTC, IOC


def owner_with_an_eth_ask(p) -> tuple[str, str, int]:
    """The owner ($13,200) long 1 BTC at 100,000 and 5 ETH at 4,000; ETH trades
    at 4,400 and the owner rests a reduce-only ask for its 5 ETH at 4,320, $80
    under the mark, inside the 2% band. BTC falls to 86,000 (equity $1,200 <
    maintenance) and a bid for 1 BTC rests at 84,800: the bankruptcy price
    counting the ask's margin. Returns (owner, maker, the ask's id)."""
    maker = p.actor("maker", 10_000_000)
    owner = p.actor("owner", 13_200)
    open_position(p, owner, maker, "buy", "1", 100_000)
    open_position(p, owner, maker, "buy", "5", 4_000, symbol="ETH-PERP")
    p.set_index(4_400, symbol="ETH-PERP")
    open_position(p, p.actor("other", 10_000), maker, "buy", "0.01", 4_400, symbol="ETH-PERP")
    ask = p.order(owner, "sell", "5", 4_320, GTC, symbol="ETH-PERP", reduce_only=True)
    p.set_index(86_000)
    p.order(maker, "buy", "1", 84_800, GTC)
    assert 0 < p.margin(owner)[0] < p.margin(owner)[2]
    return owner, maker, ask


def test_liquidation_across_markets__other_markets_order_risk_kept__fund_pays_nothing(protocol):
    p = protocol
    p.fund_insurance(1_000_000)
    colluder = p.actor("colluder", 100_000)
    owner, _maker, _ask = owner_with_an_eth_ask(p)
    acct = p.account(owner)
    fund0 = p.insurance.totalAssets()
    pair0 = p.margin(owner)[0] + p.margin(colluder)[0]

    keeper = p.actor("keeper")
    btc = p.market().address
    attempt(lambda: p.engine.liquidate(acct, btc, 2**200, [], sender=keeper))
    # the accomplice lifts the ETH ask under the mark; the account, if flat below zero, is settled
    attempt(lambda: p.order(colluder, "buy", "5", 4_320, IOC, symbol="ETH-PERP"))
    if p.position(owner).size == 0 and p.position(owner, "ETH-PERP").size == 0 and p.ch.cash(acct) < 0:
        p.engine.settle_bad_debt(acct, sender=keeper)

    assert p.insurance.totalAssets() >= fund0 and p.ch.bad_debt() == 0, "the insurance fund paid"
    assert p.margin(owner)[0] >= 0, "the account ended below zero"
    pair1 = max(0, p.margin(owner)[0]) + p.margin(colluder)[0]
    assert pair1 <= pair0, f"the pair gained ${(pair1 - pair0) / WAD:,.2f}"
    assert_solvent(p)


def test_liquidation_across_markets__orders_cancelled_first__close_goes_to_bankruptcy_price(protocol):
    p = protocol
    owner, _maker, ask = owner_with_an_eth_ask(p)
    acct = p.account(owner)
    keeper = p.actor("keeper")
    btc, eth = p.market().address, p.market("ETH-PERP").address
    # the ask's risk held back: nothing at 84,800
    assert p.engine.liquidate(acct, btc, 2**200, [], sender=keeper) == 0
    # the keeper's order: the ETH ask cancelled, then the close
    assert p.engine.liquidate(acct, eth, 2**200, [ask], sender=keeper) == 0
    assert p.engine.liquidate(acct, btc, 2**200, [], sender=keeper) == WAD
    assert p.margin(owner)[0] == 0 and p.position(owner, "ETH-PERP").open_orders == 0
    assert_solvent(p)
