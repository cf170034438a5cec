"""The mark push (an outside review, on the contracts before the mark-band bound).

BTC at 1% initial / 0.5% maintenance margin (the demo's) with a 2% mark band.
One trader sells through three thin bids down to $98,000 and rests an ask at
$98,001. With the index still at $100,000 the mark went to $98,001: a 45x long
fell from equity $2,222 to $223, below its maintenance margin of $490, and was
liquidated into a bid the same trader left at the victim's bankruptcy price.
The band was four times the maintenance margin.

Now (PROTOCOL.md §7, §12) the mark band may be at most a quarter of the
maintenance margin rate, checked when a market is listed and whenever its
parameters change: one trade moves the mark at most 2 x mark_band, half the
maintenance margin. The replay lists the market as the review found it (a 2%
band, refused, so it runs at the widest band allowed), then pushes as the
attacker did; the victim stays above maintenance, nobody is liquidated, the
pusher gains nothing and the insurance fund pays nothing.
"""

from __future__ import annotations

from keeper.deploy import to_wad
from tests.e2e.replay_helpers import WAD, assert_solvent, attempt, demo_btc_market
from tests.utils.protocol import GTC, IOC, deploy_for_tests

BTC = "BTC-PERP"


def test_mark_push__one_trader_cannot_push_a_45x_long_below_maintenance():
    p = deploy_for_tests(6, markets=(demo_btc_market(),))
    p.fund_insurance(1_000_000)
    p.set_index(100_000)
    # the market as the review found it: a 2% mark band (refused when the bound holds)
    params = list(p.params())
    params[4] = to_wad("0.02")
    listed, _ = attempt(lambda: p.market().set_params(tuple(params), sender=p.owner))

    maker = p.actor("honest_maker", 1_000_000)
    victim = p.actor("victim", "2222.22")
    pusher = p.actor("pusher", 100_000)
    fund0 = p.insurance.totalAssets()
    p.order(maker, "sell", "1", 100_000, GTC)
    p.order(victim, "buy", "1", 100_000, IOC)  # 45x: equity $2,222 on $100,000
    for price in (99_000, 98_500, 98_000):  # three thin bids
        p.order(maker, "buy", "0.01", price, GTC)
    p.order(maker, "sell", "1", 100_100, GTC)
    pusher0 = p.margin(pusher)[0]
    victim_mm = p.margin(victim)[2]

    # the push: sell through the bids to $98,000, rest an ask at $98,001 and a bid
    # at the lowest price the book takes (the victim's bankruptcy price, $97,778,
    # is beyond the price band)
    assert attempt(lambda: p.order(pusher, "sell", "0.03", 98_000, IOC))[0]
    assert attempt(lambda: p.order(pusher, "sell", "0.001", 98_001, GTC))[0]
    bid_ok, bid_reason = attempt(lambda: p.order(pusher, "buy", "1", 97_778, GTC))
    attempt(lambda: p.order(pusher, "buy", "1", 98_000, GTC))

    mark = p.market().mark_price()
    equity, _im, mm, _ = p.margin(victim)
    keeper = p.actor("keeper")
    liquidated, _ = attempt(
        lambda: p.engine.liquidate(p.account(victim), p.market().address, 2**200, [], sender=keeper)
    )
    assert not liquidated and p.position(victim).size == WAD, "the victim was liquidated"
    assert equity >= mm, f"pushed below maintenance: equity {equity / WAD:,.2f} < {mm / WAD:,.2f}"
    # the mark moved at most half the maintenance margin rate
    assert to_wad(100_000) - mark <= to_wad(100_000) * p.params().mmr // (2 * WAD)
    assert p.margin(pusher)[0] <= pusher0  # the pusher gained nothing
    assert p.insurance.totalAssets() >= fund0 and p.ch.bad_debt() == 0
    assert_solvent(p)
    assert not listed  # a 2% band on a 0.5% maintenance margin is refused
    assert (bid_ok, bid_reason) == (False, "price beyond the price band")
    assert victim_mm == 500 * WAD  # 0.5% of $100,000
