"""A late funding settlement priced from a book the settler shaped (an
outside review, on the contracts before this rule).

After missed intervals, ``FundingRate.settle()`` charged the current rate once
per missed interval (up to 48), and with no sample in the running interval
that rate came from a live sample taken inside ``settle()``: the settler
shaped the book in the same transaction. Replayed here on a market that
quotes its rate per hour (``funding_period`` 1 h), so a bid at the 2% price
band's edge reaches the 0.5% cap in one interval: the keepers stop for 10
hours, then the attacker (short) rests that bid and settles. On the old
contract one call moved 10 x 0.5% = 5% of the index from the long to the
short: the victim paid $5,000 on 1 BTC (plus the $10 of the last on-time
interval), the attacker received it.

Now (PROTOCOL.md §9) only ``sample()`` reads the book: an interval without
samples has premium 0 and is charged the interest part only. The samples
belong to the first due interval, charged at their rate; each further
missed interval is charged the interest part only; and one call moves the
cumulative funding by at most one interval's cap (cap x index). So the
shaped book earns nothing beyond the interest parts; and an attacker that
also took the running interval's samples before the outage (permissionless
samples, PROTOCOL.md §15) gains one interval's cap at most, not one per
missed interval.
"""

from __future__ import annotations

from dataclasses import replace

import boa

from keeper import funding_model as fm
from tests.e2e.replay_helpers import WAD, assert_solvent, open_position, to_wad
from tests.utils.protocol import GTC

HOUR = 3_600
INDEX = 100_000
OUTAGE = 10 * HOUR
EDGE_BID = 101_999  # under the price band's upper edge, index x 1.02 = 102,000


def _market(p):
    """BTC-PERP with its rate quoted per hour; a victim long and an attacker short of 1 BTC at
    the index, a maker's neutral book (premium 0) and one on-time interval sampled and settled
    by the keepers (interest only: the victim pays $10). Returns (funding, params, victim, attacker)."""
    funding = p.d.markets["BTC-PERP"].funding
    params = replace(fm.FundingParams(), funding_period=HOUR)
    funding.set_params(params.as_tuple(), sender=p.owner)
    p.set_index(INDEX)
    victim = p.actor("victim", 20_000)
    attacker = p.actor("attacker", 20_000)
    maker = p.actor("maker", 1_000_000)
    keeper = p.actor("keeper")
    open_position(p, victim, attacker, "buy", "1", INDEX)
    quotes = [p.order(maker, "buy", "0.02", 99_990, GTC), p.order(maker, "sell", "0.02", 100_010, GTC)]
    for _ in range(3):
        assert funding.sample(sender=keeper) == 0
        p.warp(60)
        p.set_index(INDEX)
    p.warp(funding.next_funding_time() - boa.env.evm.patch.timestamp)
    p.set_index(INDEX)
    assert funding.settle(sender=keeper) == params.interest_rate  # $10 per BTC
    # the outage begins: the keepers stop, the maker pulls its quotes
    for oid in quotes:
        p.cancel(maker, oid)
    for who in (victim, attacker):
        p.ch.settle_funding(who, 0, sender=keeper)
    return funding, params, victim, attacker


def _shape_and_settle(p, funding, attacker) -> tuple[int, int]:
    """In one go: a bid at the band's edge, settle(), cancel. Returns (intervals, delta)."""
    bid = p.order(attacker, "buy", "0.02", EDGE_BID, GTC)
    cum0 = p.market().cumulative_funding()
    funding.settle(sender=attacker)
    (settled,) = [e for e in funding.get_logs() if type(e).__name__ == "FundingSettled"]
    p.cancel(attacker, bid)
    return settled.intervals, p.market().cumulative_funding() - cum0


def _paid(p, who, cash0) -> int:
    """What `who` paid in funding since `cash0` (settled now; < 0: received)."""
    p.ch.settle_funding(who, 0, sender=who)
    return cash0 - p.ch.cash(p.account(who))


def test_late_settlement__shaped_book__interest_parts_only(protocol):
    p = protocol
    funding, params, victim, attacker = _market(p)
    cash0 = {who: p.ch.cash(p.account(who)) for who in (victim, attacker)}

    p.warp(OUTAGE)  # the keepers are down; the oracle's reporters are not
    p.set_index(INDEX)
    due, delta = _shape_and_settle(p, funding, attacker)

    index = to_wad(INDEX)
    one_cap = params.cap * index // WAD  # $500 per BTC
    interest_parts = due * fm.trunc_div(fm.rate_for(params, 0) * index, WAD)  # $10 per BTC each
    victim_paid, attacker_gain = _paid(p, victim, cash0[victim]), -_paid(p, attacker, cash0[attacker])
    assert due == 10
    assert abs(delta) <= one_cap, (
        f"one settlement moved ${delta / WAD:,.2f} per BTC, one cap is ${one_cap / WAD:,.2f}"
    )
    assert attacker_gain <= interest_parts, f"the attacker gained ${attacker_gain / WAD:,.2f}"
    assert victim_paid <= one_cap + interest_parts, f"the victim paid ${victim_paid / WAD:,.2f}"
    assert victim_paid == attacker_gain == interest_parts == 100 * WAD  # 10 x $10, nothing for the book
    assert_solvent(p)


def test_late_settlement__running_interval_sampled_by_the_attacker__one_cap_per_call(protocol):
    """The attacker also samples the running interval with its bid (once, as
    the outage begins): that interval is charged at the cap (bounded by it,
    PROTOCOL.md §15), the 9 others at the interest part, and the call's move
    is clamped to one interval's cap."""
    p = protocol
    funding, params, victim, attacker = _market(p)
    cash0 = {who: p.ch.cash(p.account(who)) for who in (victim, attacker)}
    p.warp(60)
    p.set_index(INDEX)
    bid = p.order(attacker, "buy", "0.02", EDGE_BID, GTC)
    assert fm.rate_for(params, funding.sample(sender=attacker)) == params.cap
    p.cancel(attacker, bid)

    p.warp(OUTAGE - 60)
    p.set_index(INDEX)
    due, delta = _shape_and_settle(p, funding, attacker)

    index = to_wad(INDEX)
    one_cap = params.cap * index // WAD
    interest_parts = due * fm.trunc_div(fm.rate_for(params, 0) * index, WAD)
    victim_paid, attacker_gain = _paid(p, victim, cash0[victim]), -_paid(p, attacker, cash0[attacker])
    assert due == 10
    assert abs(delta) <= one_cap, (
        f"one settlement moved ${delta / WAD:,.2f} per BTC, one cap is ${one_cap / WAD:,.2f}"
    )
    assert attacker_gain <= one_cap, (
        f"the attacker gained ${attacker_gain / WAD:,.2f}, one cap is ${one_cap / WAD:,.2f}"
    )
    assert victim_paid <= one_cap + interest_parts, f"the victim paid ${victim_paid / WAD:,.2f}"
    assert_solvent(p)
