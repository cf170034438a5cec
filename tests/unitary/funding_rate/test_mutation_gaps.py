"""A rounding of settle() the round test indexes hide, found by the mutation
run (scripts/mutate.py, PROTOCOL.md §9): a catch-up's accumulator delta is
`trunc(rate x index / 1e18) + trunc(base x index / 1e18) x (due - 1)`, each
part truncated on its own, not the sum once."""

from tests.unitary.funding_rate.funding_helpers import INDEX, events, funding_of, warp_to

WAD = 10**18
HOUR = 3600


def test_settle__three_due_intervals__each_part_truncated(protocol):
    """No sample, so rate = base (interest only); the index 40,000 wei above
    $100,000 leaves half a wei in base x index / 1e18: three intervals move
    the accumulator by 3 x trunc(...), one wei less than trunc(3 x ...)."""
    funding = funding_of(protocol)
    market = protocol.market()
    cum0 = market.cumulative_funding()
    index = INDEX + 40_000
    warp_to(protocol, funding.next_funding_time() + 2 * HOUR, index)
    funding.settle()
    (ev,) = events(funding, "FundingSettled")
    assert ev.intervals == 3 and ev.index == index
    part = ev.rate * index // WAD
    assert 3 * (ev.rate * index % WAD) >= WAD  # truncating the sum once would add a wei
    assert market.cumulative_funding() - cum0 == 3 * part
