"""Roundings of the liquidation engine that on-grid prices hide (PROTOCOL.md §2,
§10, §11.2): the liquidation fee `ceil(liquidation_fee x closed x mark)`, the
IOC's limit moved onto the tick grid on the safe side (a long's up, a short's
down) and the ADL price of a counterparty whose equity is smaller than its
loss at the bankruptcy price (`keeper.liquidation_model.adl_price`). Each is
checked to the wei against keeper.liquidation_model with marks and margins a
few wei off the grid, and the other rounding is shown to differ.

BTC-PERP in the `protocol` fixture: tick $1, lot 0.001 BTC, IM 10%, MM 6.5%,
no trading fees; liquidation fee 0.5%, half to the liquidator.
"""

from decimal import Decimal

import pytest

from keeper import liquidation_model as lm
from keeper import model
from keeper.deploy import to_wad
from keeper.model import WAD, Position
from tests.unitary.clearinghouse.liquidation_helpers import (
    adl,
    events,
    liquidate,
    liquidation_params,
    open_position,
)
from tests.utils.protocol import GTC

TICK = to_wad(1)
LOT = to_wad("0.001")


def _set_index_wad(p, index: int) -> None:
    """The index at an exact WAD value (every reporter)."""
    p.set_index(Decimal(index) / WAD)


def _position(p, side: str, margin, entry=100_000, size="0.1") -> tuple[str, str]:
    """`trader` opens `size` BTC on `side` at `entry` with `margin` against a rich maker."""
    maker = p.actor("maker", 10_000_000)
    trader = p.actor("trader", margin)
    open_position(p, trader, maker, side, size, entry)
    return maker, trader


# ---------------------------------------------------------------- liquidation fee

#: (side, index in WAD): the close is 0.054 BTC for the long at ~$93,600 and 0.06 BTC
#: for the short at ~$106,400; a mark a few wei off the dollar moves the closed
#: notional floor(closed x mark) by one wei, and 0.5% of it is then not whole
FEES = {
    "long_exact": ("buy", to_wad(93_600)),
    "long_one_wei_above": ("buy", to_wad(93_600) + 19),  # notional +1 wei: 0.005 wei of fee
    "long_one_wei_below": ("buy", to_wad(93_600) - 18),  # notional -1 wei: 0.995 wei short of the exact fee
    "long_off_grid": ("buy", 93_600_123_456_789_012_345_678),
    "short_exact": ("sell", to_wad(106_400)),
    "short_one_wei_above": ("sell", to_wad(106_400) + 17),
    "short_one_wei_below": ("sell", to_wad(106_400) - 16),
    "short_off_grid": ("sell", 106_400_123_456_789_012_345_678),
}


@pytest.mark.parametrize("case", list(FEES), ids=list(FEES))
def test_liquidate__fee_not_whole_wei__rounded_up(protocol, case):
    side, index = FEES[case]
    p = protocol
    maker, trader = _position(p, side, 1_100)
    _set_index_wad(p, index)
    # the book absorbs the close: 1 BTC resting $100 on the far side of the index
    if side == "buy":
        p.order(maker, "buy", "1", (index // WAD) - 100, GTC)
    else:
        p.order(maker, "sell", "1", (index // WAD) + 100, GTC)
    acct = p.account(trader)
    equity, im, mm, _ = p.ch.margin(acct)
    assert 0 <= equity < mm
    pos = p.position(trader)
    assert pos.mark == index
    lp = liquidation_params(p)
    q = lm.restore_size(equity, im, pos.mark, p.params().imr, lp.liquidation_fee, LOT, abs(pos.size))
    q = lm.close_size(q, abs(pos.size), pos.mark, lp.small_position_notional)
    notional = q * pos.mark // WAD
    fee = lm.liquidation_fee(notional, lp.liquidation_fee, 10**30)
    keeper = p.actor("liquidator")
    ins = p.ch.insurance_account()
    ins0 = p.ch.cash(ins)

    assert liquidate(p, acct, keeper) == q

    (ev,) = events("Liquidation")
    assert ev.fee == fee
    keeper_fee = lm.keeper_share(fee, lp.liquidator_share, False)
    assert ev.liquidator_fee == keeper_fee == p.ch.cash(p.account(keeper))
    assert p.ch.cash(ins) - ins0 == fee - keeper_fee
    floor = notional * lp.liquidation_fee // WAD
    if case.endswith("exact"):
        assert fee * WAD == notional * lp.liquidation_fee
    else:
        assert fee == floor + 1


# ---------------------------------------------------------------- the IOC's limit on the tick grid

#: (side, margin, index, limit): the bankruptcy price entry -+ margin / 0.1 is on
#: the tick, a hair above it or a hair below; a long's limit rounds up, a short's down
LIMITS = {
    "short_on_tick": ("sell", "1100", 109_000, 111_000),
    "short_above_tick": ("sell", "1100.000001", 109_000, 111_000),  # 111,000.00001
    "short_below_tick": ("sell", "1099.999999", 109_000, 110_999),  # 110,999.99999
    "long_on_tick": ("buy", "1100", 90_000, 89_000),
    "long_below_tick": ("buy", "1100.000001", 90_000, 89_000),  # 88,999.99999
    "long_above_tick": ("buy", "1099.999999", 90_000, 89_001),  # 89,000.00001
}


@pytest.mark.parametrize("case", list(LIMITS), ids=list(LIMITS))
def test_liquidate__limit_on_the_safe_side_of_the_bankruptcy_price(protocol, case):
    side, margin, index, limit = LIMITS[case]
    p = protocol
    maker, trader = _position(p, side, margin)
    p.set_index(index)
    # 0.001 BTC resting at the limit and 0.001 one tick beyond it (beyond the bankruptcy price)
    sign = 1 if side == "sell" else -1
    quote = "sell" if side == "sell" else "buy"
    at_limit = p.order(maker, quote, "0.001", limit, GTC)
    beyond = p.order(maker, quote, "0.001", limit + sign, GTC)
    acct = p.account(trader)
    equity, _im, mm, _ = p.ch.margin(acct)
    assert 0 <= equity < mm
    pos = p.position(trader)
    lp = liquidation_params(p)
    bk = lm.bankruptcy_price(pos.mark, equity, pos.size)
    expected = lm.liquidation_limit(pos.mark, equity, pos.size, lp.bankrupt_band, TICK)
    assert expected == limit * TICK
    if bk % TICK != 0:
        # the other rounding is the tick beyond the bankruptcy price
        other = bk // TICK * TICK if side == "buy" else lm.round_up(bk, TICK)
        assert other == (limit + sign) * TICK

    closed = liquidate(p, acct, p.actor("liquidator"))

    (ev,) = events("Liquidation")
    assert ev.limit_price == expected
    assert closed == LOT
    market = p.market().address
    assert p.lens.order(market, at_limit)[0] == 0
    assert p.lens.order(market, beyond)[0] == p.account(maker)
    assert p.ch.margin(acct)[0] >= 0


# ---------------------------------------------------------------- ADL: a counterparty with little equity

#: (bankrupt side, gap index, counterparty entry, counterparty deposit, remainder):
#: 0.3 BTC bankrupt at $100,000 with $3,000; the counterparty opens 0.3 BTC on the
#: other side $1,000 into profit with little margin; its price is
#: mark -+ (equity - 4 wei) / 0.3, whose remainder (in thirds) the deposit sets
ADLS = {
    "long_exact": ("buy", 70_000, 71_000, "2200", 0),
    "long_one_third": ("buy", 70_000, 71_000, "2200.000001", 1),
    "long_two_thirds": ("buy", 70_000, 71_000, "2200.000002", 2),
    "short_exact": ("sell", 130_000, 129_000, "3900.000001", 0),
    "short_one_third": ("sell", 130_000, 129_000, "3900.000002", 1),
    "short_two_thirds": ("sell", 130_000, 129_000, "3900", 2),
}


@pytest.mark.parametrize("case", list(ADLS), ids=list(ADLS))
def test_adl__counterparty_equity_below_its_loss__price_keeps_it_solvent(protocol, case):
    side, gap, entry, deposit, thirds = ADLS[case]
    p = protocol
    whale = p.actor("whale", 10_000_000)
    bankrupt = p.actor("bankrupt", 3_000)
    open_position(p, bankrupt, whale, side, "0.3", 100_000)
    p.set_index(gap)
    late = p.actor("late", deposit)
    other = "sell" if side == "buy" else "buy"
    open_position(p, late, whale, other, "0.3", entry)
    acct, c = p.account(bankrupt), p.account(late)
    equity = p.ch.margin(acct)[0]
    assert equity == to_wad(-6_000) and p.engine.insurance_capacity() == 0
    mark = p.market().mark_price()
    assert mark == to_wad(gap)
    take = to_wad("0.3")
    bk = lm.bankruptcy_price(mark, equity, take if side == "buy" else -take)
    ce = p.ch.margin(c)[0]
    # its equity is smaller than its loss at the bankruptcy price
    assert 0 < ce < take * abs(bk - mark) // WAD
    assert (ce - lm.ADL_ROUNDING) * WAD % take == thirds * WAD // 10
    price = lm.adl_price(bk, mark, ce, take, side == "buy")
    before = p.position(late)
    cash0 = p.ch.cash(c)

    adl(p, acct, [c], p.actor("keeper"))

    (ev,) = events("Deleveraged")
    assert (ev.counterparty, ev.size, ev.price) == (c, take, price)
    # the transfer's value: rounded up when the counterparty buys (a short), down when it sells
    exact = take * price
    value = model.ceil_div(exact, WAD) if side == "buy" else exact // WAD
    _flat, realized = model.apply_trade(
        Position(before.size, before.open_notional), take if side == "buy" else -take, value
    )
    assert p.position(late).size == 0
    assert p.ch.cash(c) == cash0 + realized
    assert 0 <= p.ch.margin(c)[0] <= lm.ADL_ROUNDING
    if thirds:
        # a per-unit amount rounded up would have priced it one wei worse
        per_unit_up = model.ceil_div((ce - lm.ADL_ROUNDING) * WAD, take)
        up = mark + per_unit_up if side == "buy" else mark - per_unit_up
        assert up != price
