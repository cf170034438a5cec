"""Roundings of the clearinghouse and the liquidation engine that the round
test numbers hide, found by the mutation run (scripts/mutate.py, PROTOCOL.md
§6, §10, §11): the insurance fund's share of trading fees is
`floor(fees x insurance_fee_share)`, a bad debt asks the fund for the
ceiling in token units, and a bankruptcy price is rounded for the account."""

import boa

from keeper import liquidation_model as lm
from keeper.deploy import to_wad
from tests.unitary.clearinghouse.liquidation_helpers import (
    adl,
    events,
    levered_long,
    set_liquidation_params,
    takeover,
)
from tests.utils.protocol import GTC, IOC

WAD = 10**18


def test_fee_split__share_not_a_whole_wei__insurance_rounded_down(protocol):
    """Fees $2.50 (taker 0.05%) + $1 (maker 0.02%) of a $5,000 fill at a
    share of 1/3: $1.1666... to the fund, rounded down, the rest to the treasury."""
    p = protocol
    params = p.params()._replace(taker_fee=to_wad("0.0005"), maker_fee=to_wad("0.0002"))
    p.market().set_params(tuple(params), sender=p.owner)
    share = WAD // 3
    p.ch.set_insurance_fee_share(share, sender=p.owner)
    ins, tre = p.ch.insurance_account(), p.ch.treasury_account()
    ins0, tre0 = p.ch.cash(ins), p.ch.cash(tre)
    maker = p.actor("maker", 10_000)
    trader = p.actor("trader", 10_000)
    p.order(maker, "sell", "0.1", 100_000, GTC)
    p.order(trader, "buy", "0.05", 100_000, IOC)
    fees = to_wad("3.5")
    assert fees * share % WAD != 0  # the ceiling would differ
    to_insurance = fees * share // WAD
    assert (p.ch.cash(ins) - ins0, p.ch.cash(tre) - tre0) == (to_insurance, fees - to_insurance)


def test_settle_bad_debt__deficit_not_a_whole_token_unit__fund_asked_the_ceiling(protocol):
    """A long of 0.1 BTC closed by its resting reduce-only ask after funding
    of $26,000.00000000000000007 per BTC (owed $2,600 + 0.7 wei, rounded up):
    flat with cash $2,500 - $2,600 - 1 wei. The fund is asked ceil($100 + 1 wei)
    in token units, so it covers the whole deficit and no bad debt is left."""
    p = protocol
    p.fund_insurance(10_000)
    maker = p.actor("maker", 100_000)
    trader = p.actor("trader", 2_500)
    buyer = p.actor("buyer", 100_000)
    p.order(maker, "sell", "0.1", 100_000, GTC)
    p.order(trader, "buy", "0.1", 100_000, IOC)
    p.order(trader, "sell", "0.1", 100_000, GTC, reduce_only=True)
    market = p.market()
    with boa.env.prank(market.funding_rate()):
        market.add_cumulative_funding(to_wad(26_000) + 7)
    p.order(buyer, "buy", "0.1", 100_000, IOC)
    acct = p.account(trader)
    assert p.position(trader).size == 0
    deficit = to_wad(100) + 1
    assert p.ch.cash(acct) == -deficit and deficit % p.ch.PRECISION() != 0
    p.engine.settle_bad_debt(acct, sender=p.actor("anyone"))
    (ev,) = [e for e in p.engine.get_logs() if type(e).__name__ == "BadDebt"]
    assert (ev.deficit, ev.covered, ev.uncovered) == (deficit, deficit, 0)
    assert p.ch.cash(acct) == 0 and p.ch.bad_debt() == 0


# ---------------------------------------------------------------- bankruptcy prices (§10, §11.2)


def test_takeover__bankruptcy_price_not_a_whole_wei__rounded_for_the_account(protocol, move_index):
    """A long of 0.3 BTC at $100,000 with $3,100; the index falls to $95,900:
    equity $1,870, p_bk = 95,900 - 1,870 / 0.3 = 89,666.66... A 10% discount
    would sell below it: the takeover is at p_bk, the equity per unit rounded
    down (the price up, for the account)."""
    p = protocol
    _maker, trader = levered_long(p, margin="3100", size="0.3")
    move_index(p, 95_900)
    set_liquidation_params(p, takeover_discount="0.1")
    acct = p.account(trader)
    equity = p.ch.margin(acct)[0]
    size = to_wad("0.3")
    assert equity * WAD % size != 0  # the other rounding differs
    expected = to_wad(95_900) - equity * WAD // size
    assert expected == lm.takeover_price(to_wad(95_900), equity, size, to_wad("0.1"))
    assert takeover(p, acct, p.actor("backstop", 100_000), "0.3") == expected


def test_adl__bankruptcy_price_not_a_whole_wei__deficit_per_unit_rounded_up(protocol, move_index):
    """The same long, the index at $89,000 and the insurance fund empty:
    equity -$200, p_bk = 89,000 + 200 / 0.3 = 89,666.66...7, the deficit per
    unit rounded up (the price up: the bankrupt long sells higher)."""
    p = protocol
    maker, trader = levered_long(p, margin="3100", size="0.3")
    move_index(p, 89_000)
    acct = p.account(trader)
    equity = p.ch.margin(acct)[0]
    size = to_wad("0.3")
    assert equity < 0 and -equity * WAD % size != 0
    expected = to_wad(89_000) + -(equity * WAD // size)  # mark + ceil(-equity / size)
    assert expected == lm.bankruptcy_price(to_wad(89_000), equity, size)
    adl(p, acct, [p.account(maker)], p.actor("keeper"))
    (ev,) = events("Deleveraged")
    assert (ev.size, ev.price) == (size, expected)
