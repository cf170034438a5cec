"""The funding epoch (PROTOCOL.md §5, §8): the accumulator counts its moves,
and a position word written in the current epoch owes nothing, so its
settlement does not read the snapshot. Each case below crosses an epoch
boundary and checks what the next settlement pays against the model
(keeper.funding_model.funding_owed) and the maker's Fill."""

import boa

from keeper import funding_model as fm
from keeper.deploy import to_wad
from keeper.units import WAD
from tests.unitary.funding_rate.funding_helpers import events, trade

F_OFFSET = 2**223


def _move(p, funding, delta: int) -> int:
    """Move the accumulator by `delta` as its FundingRate does; the new cumulative funding."""
    return p.market().add_cumulative_funding(delta, sender=funding.address)


def test_epoch__counts_the_accumulators_moves(protocol, funding):
    m = protocol.market()
    e0, cum0 = m.funding_epoch(), m.cumulative_funding()
    _move(protocol, funding, 7)
    _move(protocol, funding, 0)
    _move(protocol, funding, -3)
    assert (m.funding_epoch(), m.cumulative_funding()) == (e0 + 3, cum0 + 4)


def test_accumulator__beyond_its_224_bits__reverts__state_unchanged(protocol, funding):
    m = protocol.market()
    cum0, e0 = m.cumulative_funding(), m.funding_epoch()
    for delta in (F_OFFSET - cum0, -F_OFFSET - cum0):
        with boa.reverts("funding accumulator overflow"):
            _move(protocol, funding, delta)
    assert (m.cumulative_funding(), m.funding_epoch()) == (cum0, e0)
    assert _move(protocol, funding, F_OFFSET - 1 - cum0) == F_OFFSET - 1  # the largest that fits
    assert _move(protocol, funding, -2 * (F_OFFSET - 1)) == -(F_OFFSET - 1)


def test_maker__fill_after_a_move_settles_it__next_fill_in_the_same_epoch_settles_nothing(
    protocol, funding, maker, long_trader
):
    p, m = protocol, protocol.market()
    trade(p, long_trader, maker, "0.01", 100_000)  # the maker rests the ask: short 0.01
    a = p.account(maker)
    cum0 = m.cumulative_funding()
    assert m.funding_snapshot(a) == cum0
    cum1 = _move(p, funding, 3 * WAD + 1)  # longs owe 3 quote per base unit (and a 1e-18 to round)
    owed = p.position(maker).funding_owed
    assert owed == fm.funding_owed(-to_wad("0.01"), cum1, cum0) < 0  # the short receives

    trade(p, long_trader, maker, "0.01", 100_000)
    (fill,) = events(p.ch, "Fill")
    assert (fill.maker_funding_paid, fill.maker_size) == (owed, -to_wad("0.02"))
    assert m.funding_snapshot(a) == cum1
    assert p.position(maker).funding_owed == 0

    trade(p, long_trader, maker, "0.01", 100_000)  # same epoch: nothing to settle
    (fill,) = events(p.ch, "Fill")
    assert (fill.maker_funding_paid, fill.maker_size) == (0, -to_wad("0.03"))
    assert fill.maker_size == p.position(maker).size
    assert m.funding_snapshot(a) == cum1


def test_settle_funding__then_a_move__the_next_fill_settles_only_the_new_move(
    protocol, funding, maker, long_trader
):
    p, m = protocol, protocol.market()
    trade(p, long_trader, maker, "0.01", 100_000)
    a = p.account(maker)
    cum1 = _move(p, funding, 3 * WAD)
    p.ch.settle_funding(maker, 0)  # brings the snapshot; the position word keeps its epoch
    assert (m.funding_snapshot(a), p.position(maker).funding_owed) == (cum1, 0)
    cum2 = _move(p, funding, 5 * WAD + 7)
    owed = fm.funding_owed(-to_wad("0.01"), cum2, cum1)
    assert p.position(maker).funding_owed == owed

    trade(p, long_trader, maker, "0.01", 100_000)
    (fill,) = events(p.ch, "Fill")
    assert fill.maker_funding_paid == owed
    assert m.funding_snapshot(a) == cum2


def test_flat_account__reopens_after_a_move__owes_nothing_for_the_time_it_was_flat(
    protocol, funding, maker, long_trader, short_trader
):
    p, m = protocol, protocol.market()
    trade(p, long_trader, maker, "0.01", 100_000)
    trade(p, maker, short_trader, "0.01", 100_000)  # the maker buys it back: flat
    assert p.position(maker).size == 0
    a = p.account(maker)
    cum1 = _move(p, funding, 4 * WAD)

    trade(p, long_trader, maker, "0.01", 100_000)  # reopens short as a maker
    (fill,) = events(p.ch, "Fill")
    assert (fill.maker_funding_paid, fill.maker_size) == (0, -to_wad("0.01"))
    assert m.funding_snapshot(a) == cum1
    cum2 = _move(p, funding, 2 * WAD)
    assert p.position(maker).funding_owed == fm.funding_owed(-to_wad("0.01"), cum2, cum1)
