"""Funding into cash, rounded against each side (PROTOCOL.md §2, §9): a position
owes `size x (cumulative - snapshot)`, the payer rounded up and the receiver
down (`PerpMarket._settle_funding`, `_funding_owed`), the residue swept whole
to the insurance account. Checked to the wei against keeper.funding_model for
both signs of funding, with the exact amount on a whole wei, a thousandth
above one and a thousandth below one, and the floor shown to differ.

The accumulator is moved by `PerpMarket.add_cumulative_funding`, called as the
market's FundingRate (its only caller): the rounding is the market's, whatever
the FundingRate's settlement computes.
"""

import boa
import pytest

from keeper import funding_model as fm
from keeper.deploy import to_wad
from keeper.model import WAD
from tests.unitary.funding_rate.funding_helpers import events, funding_of, trade
from tests.utils.protocol import IOC

SIZE = to_wad("0.003")
#: cumulative funding moves (quote wei per base unit): 0.003 x move is exact,
#: a thousandth of a wei above or below a whole one
MOVES = {
    "longs_pay_exact": 1_000_000,
    "longs_pay_above": 1_000_001,
    "longs_pay_below": 999_999,
    "shorts_pay_exact": -1_000_000,
    "shorts_pay_above": -1_000_001,
    "shorts_pay_below": -999_999,
}


def _move_accumulator(p, delta: int) -> int:
    """The market's FundingRate adds `delta` to the accumulator; returns the new cumulative."""
    with boa.env.prank(funding_of(p).address):
        p.market().add_cumulative_funding(delta)
    return p.market().cumulative_funding()


def _dust(p) -> int:
    """The market's unswept funding residue, in 1e-18 wei (private storage)."""
    return p.market()._storage._funding_dust.get()


def _check_rounding(size: int, cum: int, paid: int) -> None:
    """`paid` is rounded toward +inf (the payer pays more, the receiver gets
    less); when the exact amount is not whole the floor is 1 wei less."""
    exact = size * cum
    assert paid == fm.funding_owed(size, cum, 0)
    if exact % WAD == 0:
        assert paid * WAD == exact
    else:
        assert paid == exact // WAD + 1


@pytest.mark.parametrize("move", list(MOVES.values()), ids=list(MOVES))
def test_settle_funding__payer_up_receiver_down_residue_to_insurance(
    protocol, long_trader, short_trader, move
):
    p = protocol
    trade(p, long_trader, short_trader, "0.003", 100_000)
    equity0 = {who: p.margin(who)[0] for who in (long_trader, short_trader)}
    cum = _move_accumulator(p, move)
    assert cum == move
    ins = p.ch.insurance_account()
    ins0 = p.ch.cash(ins)
    dust = _dust(p)
    assert dust == 0

    swept = 0
    for who, size in ((long_trader, SIZE), (short_trader, -SIZE)):
        acct = p.account(who)
        owed = p.position(who).funding_owed
        _check_rounding(size, cum, owed)
        # unsettled funding already counts in equity, rounded the same way
        assert p.margin(who)[0] == equity0[who] - owed
        paid, dust, residue = fm.settle_account(size, cum, 0, dust)
        assert paid == owed
        cash0 = p.ch.cash(acct)
        before = p.ch.cash(ins)

        p.ch.settle_funding(who, 0, sender=p.actor("keeper"))

        (changed,) = events(p.ch, "PositionChanged")
        assert (changed.account, changed.funding_paid) == (acct, paid)
        assert p.ch.cash(acct) == cash0 - paid
        assert p.ch.cash(ins) - before == residue
        assert _dust(p) == dust
        swept += residue

    # the payer paid ceil, the receiver got floor: the house keeps the wei between
    exact = SIZE * abs(move)
    assert swept == (0 if exact % WAD == 0 else 1)
    assert p.ch.cash(ins) == ins0 + swept


@pytest.mark.parametrize("move", list(MOVES.values()), ids=list(MOVES))
def test_trade__settles_funding_of_taker_and_maker_rounded_up(protocol, long_trader, short_trader, move):
    p = protocol
    trade(p, long_trader, short_trader, "0.003", 100_000)
    cum = _move_accumulator(p, move)

    # the long sells 0.001 to the short (a resting bid): both positions shrink, each
    # settling its funding first, the maker's in its Fill and the taker's in PositionChanged
    oid = p.order(short_trader, "buy", "0.001", 100_000)
    assert oid != 0
    p.order(long_trader, "sell", "0.001", 100_000, IOC, reduce_only=True)
    logs = p.ch.get_logs(strict=False)

    (fill,) = [e for e in logs if type(e).__name__ == "Fill"]
    (changed,) = [e for e in logs if type(e).__name__ == "PositionChanged"]
    assert changed.account == p.account(long_trader) and fill.maker == p.account(short_trader)
    _check_rounding(SIZE, cum, changed.funding_paid)
    _check_rounding(-SIZE, cum, fill.maker_funding_paid)
    assert p.position(long_trader).funding_owed == p.position(short_trader).funding_owed == 0
