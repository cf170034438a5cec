"""Roundings of a trade's cash that the round test markets hide (PROTOCOL.md §2, §6):
trading fees `ceil(notional x rate)`, the cost basis a partial close removes
`ceil(open_notional x |delta| / |size|)` (toward +inf) and the value of a
`transfer_position` (backstop takeover, ADL), rounded in favour of the account
that gives the position up. Each is checked to the wei against keeper.model,
where the exact value is not a whole wei, and the floor is shown to differ.

In BTC-PERP and ETH-PERP a fill is worth a multiple of 1e15 wei (tick x lot),
and every fee rate (a whole multiple of 1e-9) divides it exactly: the fee tests
run on FINE-PERP, a market on a 1e-6 grid (tick $0.000001, lot 0.000001: a
tick x lot of 1e6 wei) with a 7e-9 fee rate, where
`fee = lots x ticks x 7 / 1000` wei.
"""

import boa
import pytest

from keeper import liquidation_model as lm
from keeper import model
from keeper.deploy import to_wad
from keeper.model import WAD, Position
from tests.unitary.clearinghouse.liquidation_helpers import (
    events,
    liquidation_params,
    open_position,
    takeover,
)
from tests.utils.protocol import FINE, GTC, IOC, deploy_fine_grid

#: 7e-9: a rate in whole 1e-9 (PerpMarket.set_params) that divides no fill of FINE-PERP
#: evenly unless lots x ticks is a multiple of 1000
ODD_RATE = 7 * 10**9
#: 1001 lots of 0.000001 BTC; 1001 x 7 = 7007 = 7 mod 1000, so the fraction of a
#: wei the fee leaves is set by the price's last three digits (in ticks)
FILL_SIZE = "0.001001"
#: the fill price and the fraction of a wei in its fee (ticks of 1e-6 mod 1000:
#: 0 -> exact, 143 -> 1001 x 143 x 7 = 1 mod 1000, 857 -> 999 mod 1000)
FEE_PRICES = {
    "exact": ("100000", 0),
    "one_thousandth_above": ("100000.000143", 1),
    "one_thousandth_below": ("99999.999857", 999),
}


@pytest.fixture(scope="module")
def _fine():
    return deploy_fine_grid()


@pytest.fixture
def fine(_fine):
    """FINE-PERP with a 7e-9 taker and maker fee (set through set_params)."""
    p = _fine
    with boa.env.anchor():
        params = p.params(FINE)._replace(taker_fee=ODD_RATE, maker_fee=ODD_RATE)
        p.market(FINE).set_params(tuple(params), sender=p.owner)
        yield p


def _fill(p, taker_side: str, price: str) -> tuple[str, str, list]:
    """A maker rests FILL_SIZE at `price`, a taker takes it on `taker_side`;
    returns (maker, taker, the clearinghouse's logs of the taker's order)."""
    maker = p.actor("maker", 10_000)
    taker = p.actor("taker", 10_000)
    p.order(maker, "sell" if taker_side == "buy" else "buy", FILL_SIZE, price, GTC, symbol=FINE)
    p.order(taker, taker_side, FILL_SIZE, price, IOC, symbol=FINE)
    return maker, taker, p.ch.get_logs(strict=False)


def _of(logs, name: str) -> list:
    return [e for e in logs if type(e).__name__ == name]


def _expected_fee(price: str, thousandths: int) -> int:
    """The fee of FILL_SIZE at `price` (keeper.model.fee), checked to leave
    `thousandths` of a wei when rounded up, and to differ from the floor then."""
    value = model.fill_value(to_wad(FILL_SIZE), to_wad(price))
    fee = model.fee(value, ODD_RATE)
    floor = value * ODD_RATE // WAD
    assert value * ODD_RATE % WAD == thousandths * WAD // 1000
    assert fee == (floor if thousandths == 0 else floor + 1)
    return fee


# ---------------------------------------------------------------- taker and maker fees


@pytest.mark.parametrize("taker_side", ["buy", "sell"])
@pytest.mark.parametrize("case", list(FEE_PRICES), ids=list(FEE_PRICES))
def test_taker_fee__notional_not_divisible__rounded_up(fine, taker_side, case):
    p = fine
    price, thousandths = FEE_PRICES[case]
    fee = _expected_fee(price, thousandths)

    _maker, taker, logs = _fill(p, taker_side, price)

    (changed,) = _of(logs, "PositionChanged")
    assert changed.fee_paid == fee
    # an opening trade realizes nothing: the taker's cash moves by the fee alone
    assert p.ch.cash(p.account(taker)) == 10_000 * WAD - fee


@pytest.mark.parametrize("taker_side", ["buy", "sell"])
@pytest.mark.parametrize("case", list(FEE_PRICES), ids=list(FEE_PRICES))
def test_maker_fee__notional_not_divisible__rounded_up(fine, taker_side, case):
    p = fine
    price, thousandths = FEE_PRICES[case]
    fee = _expected_fee(price, thousandths)

    maker, _taker, logs = _fill(p, taker_side, price)

    (fill,) = _of(logs, "Fill")
    assert fill.maker_fee == fee
    assert p.ch.cash(p.account(maker)) == 10_000 * WAD - fee


def test_fees__both_sides_rounded_up__house_gets_both_ceilings(fine):
    p = fine
    price, thousandths = FEE_PRICES["one_thousandth_above"]
    fee = _expected_fee(price, thousandths)
    ins, treasury = p.ch.insurance_account(), p.ch.treasury_account()
    before = p.ch.cash(ins) + p.ch.cash(treasury)

    _fill(p, "buy", price)

    # taker and maker each pay floor + 1 wei (_expected_fee): all of it reaches the house
    assert p.ch.cash(ins) + p.ch.cash(treasury) - before == 2 * fee


# ---------------------------------------------------------------- partial close: removed cost basis


def _open_at_two_prices(p, trader: str, maker: str, side: str) -> Position:
    """`trader` opens 0.003 BTC on `side` from two resting orders, 0.001 at
    $100,000 and 0.002 one tick worse: its open notional is 300.002 (long) or
    -299.998 (short) and does not split in three."""
    other = "sell" if side == "buy" else "buy"
    worse = 100_001 if side == "buy" else 99_999
    p.order(maker, other, "0.001", 100_000, GTC)
    p.order(maker, other, "0.002", worse, GTC)
    p.order(trader, side, "0.003", worse, IOC)
    pos = p.position(trader)
    sign = 1 if side == "buy" else -1
    expected = sign * (
        model.fill_value(to_wad("0.001"), to_wad(100_000)) + model.fill_value(to_wad("0.002"), to_wad(worse))
    )
    assert (pos.size, pos.open_notional) == (sign * to_wad("0.003"), expected)
    return Position(pos.size, pos.open_notional)


@pytest.mark.parametrize("side", ["buy", "sell"], ids=["long", "short"])
@pytest.mark.parametrize("close", ["0.001", "0.002"])
def test_partial_close__mixed_entry_prices__removed_notional_rounded_up(protocol, side, close):
    p = protocol
    maker = p.actor("maker", 1_000_000)
    trader = p.actor("trader", 10_000)
    before = _open_at_two_prices(p, trader, maker, side)
    cash0 = p.ch.cash(p.account(trader))
    delta = to_wad(close) if side == "sell" else -to_wad(close)
    value = model.fill_value(to_wad(close), to_wad(100_000))
    after, realized = model.apply_trade(before, delta, value)
    exact = before.open_notional * abs(delta)  # / |size|: not whole
    assert exact % abs(before.size) != 0
    floor_removed = exact // abs(before.size)
    assert before.open_notional - after.open_notional == floor_removed + 1  # toward +inf

    closing = "buy" if side == "sell" else "sell"
    p.order(maker, side, close, 100_000, GTC)
    p.order(trader, closing, close, 100_000, IOC, reduce_only=True)
    (changed,) = _of(p.ch.get_logs(strict=False), "PositionChanged")

    pos = p.position(trader)
    assert (pos.size, pos.open_notional) == (after.size, after.open_notional)
    assert changed.realized_pnl == realized
    assert p.ch.cash(p.account(trader)) == cash0 + realized
    # a floor would have left the account 1 wei more basis (long) / credit (short)
    assert pos.open_notional != before.open_notional - floor_removed


# ---------------------------------------------------------------- transfer_position (takeover)


def _stuck(p, side: str, index: str) -> tuple[str, str]:
    """`trader` opens 0.1 BTC on `side` at $100,000 with $1,100; the index
    moves 6.4% against it to `index` (a few wei off the dollar grid) and the
    book is empty: liquidatable, solvent, only a takeover can close it."""
    maker = p.actor("maker", 10_000_000)
    trader = p.actor("trader", 1_100)
    open_position(p, trader, maker, side, "0.1", 100_000)
    p.set_index(index)
    equity, _im, mm, _ = p.margin(trader)
    assert 0 <= equity < mm
    return trader, p.actor("backstop", 100_000)


#: (side of the account taken over, index, the value's remainder in 1e-18 wei):
#: mark = index, price = mark -+ floor(mark x 1%), value = 0.1 x price
TRANSFERS = {
    "long_exact": ("buy", "93600", 0),
    "long_one_wei_above": ("buy", "93600.000000000000000001", 1),
    "long_below": ("buy", "93599.99999999999999999", 1),
    "long_off_grid": ("buy", "93600.123456789012345678", 1),
    "short_exact": ("sell", "106400", 0),
    "short_one_wei_above": ("sell", "106400.000000000000000001", 1),
    "short_below": ("sell", "106399.99999999999999999", 1),
    "short_off_grid": ("sell", "106400.123456789012345678", 1),
}


@pytest.mark.parametrize("case", list(TRANSFERS), ids=list(TRANSFERS))
def test_transfer_position__takeover_value_rounded_for_the_account(protocol, case):
    side, index, inexact = TRANSFERS[case]
    p = protocol
    trader, backstop = _stuck(p, side, index)
    acct = p.account(trader)
    pos = p.position(trader)
    equity = p.margin(trader)[0]
    lp = liquidation_params(p)
    size = to_wad("0.1")
    price = lm.takeover_price(pos.mark, equity, pos.size, lp.takeover_discount)
    exact = size * price
    assert (exact % WAD != 0) == bool(inexact)
    # the account sells a long (the backstop buys): rounded up; it buys back a short: down
    value = model.ceil_div(exact, WAD) if side == "buy" else exact // WAD
    cash0 = p.ch.cash(acct)

    assert takeover(p, acct, backstop, "0.1") == price

    taken = p.position(backstop)
    assert (taken.size, taken.open_notional) == (pos.size, value if side == "buy" else -value)
    _flat, realized = model.apply_trade(Position(pos.size, pos.open_notional), -pos.size, value)
    (ev,) = events("Takeover")
    assert p.ch.cash(acct) == cash0 + realized - ev.fee
    if inexact:
        # the other rounding would have cost the account a wei
        other = exact // WAD if side == "buy" else model.ceil_div(exact, WAD)
        assert abs(taken.open_notional) != other
