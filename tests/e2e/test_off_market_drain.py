"""The off-market drain (an outside review, on the contracts before price protection).

Index $100,000, the ask side momentarily empty. Account B rests a bid for 1 BTC
far above the index ($150,000): placing it asked only for the initial margin of
its notional. Account A, B's accomplice, sells into that bid, buys back from an
honest maker near the index and withdraws the realized profit. B is left below
zero and its liquidation costs the insurance fund what the pair took. Mango and
JELLY did this through the oracle; here the trade price alone was enough.

Replayed as the attacker would, on the demo's 100x market (1% initial, 0.5%
maintenance margin), with every variant a rule now stops (PROTOCOL.md §5, §8):

* the bid far off the index: refused, "price beyond the price band";
* the bid at the band's edge, B keeping only what the contract asks (it
  withdraws the rest): the order risk reserved at rest (what a fill can lose
  against the mark) keeps B solvent after the fill;
* the bid at the band's edge, then the index falls: the bid is off-market and is
  cancelled when a taker reaches it, never filled.

Each attempt is made with `attempt` (a refusal is a possible outcome, not a
failure); what the replay asserts is the outcome: the pair's combined profit is
at most zero, the insurance fund pays nothing, no bad debt, and the honest maker
never becomes liquidatable while the index stands still.
"""

from __future__ import annotations

from tests.e2e.replay_helpers import WAD, assert_solvent, attempt, demo_btc_market
from tests.utils.protocol import GTC, IOC, deploy_for_tests

BTC = "BTC-PERP"
DEPOSIT = 60_000


class Pair:
    """The two colluding accounts: what they put in and what they took out."""

    def __init__(self, p):
        self.p = p
        self.a = p.actor("attacker_a", DEPOSIT)
        self.b = p.actor("attacker_b", DEPOSIT)
        self.withdrawn = 0

    def withdraw_all(self, who: str) -> None:
        free = self.p.margin(who)[3] // 10**12 // 10**6 * 10**6  # whole dollars, in token units
        if free > 0:
            ok, _ = attempt(lambda: self.p.ch.withdraw(0, free, sender=who))
            if ok:
                self.withdrawn += free * 10**12

    def profit(self) -> int:
        """Taken out plus what is still theirs, less what they put in (WAD)."""
        left = sum(max(0, self.p.margin(w)[0]) for w in (self.a, self.b))
        return self.withdrawn + left - 2 * DEPOSIT * WAD


def _setup():
    p = deploy_for_tests(6, markets=(demo_btc_market(),))
    p.fund_insurance(1_000_000)
    p.set_index(100_000)
    maker = p.actor("honest_maker", 1_000_000)
    for k in range(5):  # the honest bids; the ask side momentarily empty
        p.order(maker, "buy", "0.5", 99_900 - 100 * k, GTC)
    return p, maker


def _asks(p, maker: str, mid: int) -> None:
    """The honest maker's asks come back."""
    for k in range(5):
        p.order(maker, "sell", "0.5", mid + 100 + 100 * k, GTC)


def _liquidate_all(p, who: str) -> None:
    keeper = p.actor("keeper")
    equity, _im, mm, _ = p.margin(who)
    if equity < mm:
        attempt(lambda: p.engine.liquidate(p.account(who), p.market().address, 2**200, [], sender=keeper))


def _drain(p, pair: Pair, maker: str, bid_price: int) -> str | None:
    """B rests a 1 BTC bid at `bid_price` keeping only the margin it must; A sells
    into it, buys back from the maker, and both take out what they can. The
    revert reason of B's bid, None when it rested."""
    ok, reason = attempt(lambda: p.order(pair.b, "buy", "1", bid_price, GTC))
    if not ok:
        return reason
    pair.withdraw_all(pair.b)
    attempt(lambda: p.order(pair.a, "sell", "1", bid_price, IOC))
    _asks(p, maker, 100_000)
    attempt(lambda: p.order(pair.a, "buy", "1", 100_200, IOC))
    equity, _im, mm, _ = p.margin(maker)
    assert equity >= mm, "the honest maker became liquidatable while the index stood still"
    pair.withdraw_all(pair.a)
    _liquidate_all(p, pair.b)
    pair.withdraw_all(pair.b)
    return None


def _outcome(p, pair: Pair, fund0: int) -> None:
    assert p.ch.bad_debt() == 0
    assert p.insurance.totalAssets() >= fund0, "the insurance fund paid"
    assert pair.profit() <= 0, f"the pair gained ${pair.profit() / WAD:,.2f}"
    assert_solvent(p)


def test_off_market_drain__a_bid_far_above_the_index__gains_the_pair_nothing():
    p, maker = _setup()
    pair, fund0 = Pair(p), p.insurance.totalAssets()
    refused = _drain(p, pair, maker, 150_000)
    _outcome(p, pair, fund0)
    assert refused == "price beyond the price band"


def test_off_market_drain__a_bid_at_the_band_edge_with_the_least_margin__fund_pays_nothing():
    p, maker = _setup()
    pair, fund0 = Pair(p), p.insurance.totalAssets()
    assert _drain(p, pair, maker, 102_000) is None  # index + 2%: the price band's edge
    _outcome(p, pair, fund0)
    # the fill did happen: B holds the long (solvent, not liquidatable), A is flat again
    assert p.position(pair.b).size == WAD
    assert p.position(pair.a).size == 0


def test_off_market_drain__the_index_falls_under_a_resting_bid__it_is_cancelled_not_filled():
    p, maker = _setup()
    pair, fund0 = Pair(p), p.insurance.totalAssets()
    oid = p.order(pair.b, "buy", "1", 102_000, GTC)
    pair.withdraw_all(pair.b)
    p.set_index(96_000)  # the bid is now 6% above the index
    p.order(maker, "buy", "2", 95_500, GTC)
    attempt(lambda: p.order(pair.a, "sell", "1", 94_080, IOC))  # the band's low edge
    removed = [(e.order_id, e.reason) for e in p.ch.get_logs() if type(e).__name__ == "OrderRemoved"]
    b_size = p.position(pair.b).size
    _asks(p, maker, 96_000)
    attempt(lambda: p.order(pair.a, "buy", "1", 96_200, IOC))
    pair.withdraw_all(pair.a)
    _liquidate_all(p, pair.b)
    pair.withdraw_all(pair.b)
    _outcome(p, pair, fund0)
    # REMOVED_OFF_MARKET: B's bid first, then the maker's bids above 97,920 as the walk reaches them
    assert removed[0] == (oid, 5) and {r for _, r in removed} == {5}
    assert b_size == 0  # B's bid never filled
    assert p.lens.order(p.market().address, oid)[0] == 0
