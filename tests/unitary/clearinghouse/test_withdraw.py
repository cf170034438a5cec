"""Clearinghouse.withdraw and margin(): only the owner withdraws, never below
initial margin, never unrealized profit (PROTOCOL.md §2, §3, §7)."""

import boa

from keeper.units import WAD
from tests.utils.protocol import GTC

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"


def _snapshot(p, who: str, sub: int = 0) -> tuple:
    """What a reverted withdraw must leave untouched."""
    return (p.ch.cash(p.account(who, sub)), p.token.balanceOf(who), p.token.balanceOf(p.ch.address))


def _long_in_profit(p, trade, move_index) -> str:
    """A trader with 10,000 long 0.1 BTC from 100,000; index and book then at
    120,000: unrealized PnL +2,000, equity 12,000, IM 1,200."""
    trader = p.actor("trader", 10_000)
    maker = p.actor("maker", 10_000)
    trade(p, trader, maker, "0.1", 100_000)
    move_index(p, 120_000)
    # the book agrees with the index: two other accounts trade there
    arbitrageur = p.actor("arbitrageur", 1_000)
    hedger = p.actor("hedger", 1_000)
    trade(p, arbitrageur, hedger, "0.001", 120_000)
    assert p.market().mark_price() == 120_000 * WAD
    return trader


def _long_at_loss(p, trade, move_index) -> str:
    """A trader with 10,000 long 0.1 BTC from 100,000; index 95,000 and an
    empty book, so mark = 95,000: unrealized PnL -500, equity 9,500, IM 950."""
    trader = p.actor("trader", 10_000)
    maker = p.actor("maker", 10_000)
    trade(p, trader, maker, "0.1", 100_000)
    move_index(p, 95_000)
    assert p.market().mark_price() == 95_000 * WAD
    return trader


# ---------------------------------------------------------------- amounts


def test_withdraw__returns_exact_token_amount(protocol_any_decimals):
    p = protocol_any_decimals
    trader = p.actor("trader", 1_000)
    vault = p.token.balanceOf(p.ch.address)
    amount = p.units("250.123456")

    p.ch.withdraw(0, amount, sender=trader)

    assert p.token.balanceOf(trader) == amount
    assert p.token.balanceOf(p.ch.address) == vault - amount
    assert p.ch.cash(p.account(trader)) == 1_000 * WAD - 250_123456 * 10**12


def test_withdraw__all_cash__leaves_zero(protocol_any_decimals):
    p = protocol_any_decimals
    trader = p.actor("trader", "99.99")

    p.ch.withdraw(0, p.units("99.99"), sender=trader)

    assert p.ch.cash(p.account(trader)) == 0
    assert p.token.balanceOf(trader) == p.units("99.99")
    assert p.margin(trader) == (0, 0, 0, 0)


def test_withdraw__to_address__pays_recipient_and_logs(protocol_any_decimals):
    p = protocol_any_decimals
    trader = p.actor("trader", 100, sub=4)
    recipient = p.actor("recipient")
    account = p.account(trader, 4)

    p.ch.withdraw(4, p.units(30), recipient, sender=trader)
    (event,) = [e for e in p.ch.get_logs() if type(e).__name__ == "Withdraw"]

    assert p.token.balanceOf(recipient) == p.units(30)
    assert p.token.balanceOf(trader) == 0
    assert p.ch.cash(account) == 70 * WAD
    assert (event.owner, event.to, event.account) == (trader, recipient, account)
    assert event.amount == p.units(30)
    assert event.cash == 70 * WAD


def test_withdraw__zero_amount__reverts(protocol_any_decimals):
    p = protocol_any_decimals
    trader = p.actor("trader", 100)
    before = _snapshot(p, trader)

    with boa.reverts("zero amount"):
        p.ch.withdraw(0, 0, sender=trader)

    assert _snapshot(p, trader) == before


def test_withdraw__zero_recipient__reverts(protocol):
    p = protocol
    trader = p.actor("trader", 100)
    before = _snapshot(p, trader)

    with boa.reverts("zero address"):
        p.ch.withdraw(0, p.units(1), ZERO_ADDRESS, sender=trader)

    assert _snapshot(p, trader) == before


def test_withdraw__no_such_account__reverts(protocol):
    p = protocol
    trader = p.actor("trader", 100, sub=0)
    before = _snapshot(p, trader)

    with boa.reverts("no such account"):
        p.ch.withdraw(1, p.units(1), sender=trader)  # subaccount 1 never used
    with boa.reverts("no such account"):
        p.ch.withdraw(0, p.units(1), sender=p.actor("attacker"))

    assert _snapshot(p, trader) == before


def test_withdraw__more_than_cash_without_position__reverts(protocol_any_decimals):
    # equity - amount < IM = 0
    p = protocol_any_decimals
    trader = p.actor("trader", 100)
    before = _snapshot(p, trader)

    with boa.reverts("below initial margin"):
        p.ch.withdraw(0, p.units(100) + 1, sender=trader)

    assert _snapshot(p, trader) == before


# ---------------------------------------------------------------- who may withdraw


def test_withdraw__operator__cannot_take_owner_funds(protocol):
    p = protocol
    trader = p.actor("trader", 1_000)
    operator = p.actor("operator")
    p.ch.set_operator(0, operator, True, sender=trader)
    before = _snapshot(p, trader)

    # accounts are keyed by msg.sender: the operator has no subaccount 0
    with boa.reverts("no such account"):
        p.ch.withdraw(0, p.units(1), sender=operator)
    with boa.reverts("no such account"):
        p.ch.withdraw(0, p.units(1), operator, sender=operator)

    # with an account of its own, the operator only ever reaches its own cash
    p.fund(operator, 5)
    with boa.reverts("below initial margin"):
        p.ch.withdraw(0, p.units(1_000), sender=operator)
    p.ch.withdraw(0, p.units(5), sender=operator)

    assert _snapshot(p, trader)[0] == before[0]
    assert p.token.balanceOf(operator) == p.units(5)
    assert p.ch.cash(p.account(operator)) == 0


# ---------------------------------------------------------------- margin


def test_withdraw__open_position__below_initial_margin__reverts(protocol_any_decimals, trade):
    # 10,000 cash, long 0.1 BTC at 100,000: IM = 10,000 x 10% = 1,000
    p = protocol_any_decimals
    trader = p.actor("trader", 10_000)
    maker = p.actor("maker", 10_000)
    trade(p, trader, maker, "0.1", 100_000)
    assert p.margin(trader) == (10_000 * WAD, 1_000 * WAD, 650 * WAD, 9_000 * WAD)
    before = _snapshot(p, trader)

    with boa.reverts("below initial margin"):
        p.ch.withdraw(0, p.units(9_000) + 1, sender=trader)
    assert _snapshot(p, trader) == before

    p.ch.withdraw(0, p.units(9_000), sender=trader)
    assert p.margin(trader) == (1_000 * WAD, 1_000 * WAD, 650 * WAD, 0)
    with boa.reverts("below initial margin"):
        p.ch.withdraw(0, 1, sender=trader)


def test_withdraw__resting_orders__reserve_initial_margin(protocol_any_decimals):
    # a bid of 0.05 BTC at 99,000 (notional 4,950) reserves IM = 4,950 x 10% + order risk;
    # risk = ceil(4,950 x k), k = ceil((2% + 1.625%) / (1 - 2%)) = 3.6989796% (1e-9 units)
    # = 183.0994902, so IM = 678.0994902, MM = 183.0994902 and 321.9005098 is withdrawable
    p = protocol_any_decimals
    trader = p.actor("trader", 1_000)
    p.order(trader, "buy", "0.05", 99_000, GTC)
    risk = 1_830_994_902 * 10**11
    im = 495 * WAD + risk
    free = 1_000 * WAD - im
    assert p.margin(trader) == (1_000 * WAD, im, risk, free)
    before = _snapshot(p, trader)

    # the most that can leave, in whole token units (321.900509 with 6 decimals)
    scale = 10 ** (18 - p.decimals)
    amount = free // scale
    with boa.reverts("below initial margin"):
        p.ch.withdraw(0, amount + 1, sender=trader)
    assert _snapshot(p, trader) == before

    p.ch.withdraw(0, amount, sender=trader)
    assert p.ch.cash(p.account(trader)) == 1_000 * WAD - amount * scale
    # what is left is the IM, up to less than one token unit
    equity, im_after, _, withdrawable = p.margin(trader)
    assert im_after == im
    assert 0 <= equity - im == withdrawable < scale
    with boa.reverts("below initial margin"):
        p.ch.withdraw(0, 1, sender=trader)


def test_withdraw__unrealized_loss__limits_to_equity_minus_im(protocol_any_decimals, trade, move_index):
    p = protocol_any_decimals
    trader = _long_at_loss(p, trade, move_index)
    # withdrawable = min(cash 10,000, equity 9,500 - IM 950) = 8,550
    assert p.margin(trader)[3] == 8_550 * WAD
    before = _snapshot(p, trader)

    with boa.reverts("below initial margin"):
        p.ch.withdraw(0, p.units(8_550) + 1, sender=trader)
    assert _snapshot(p, trader) == before

    p.ch.withdraw(0, p.units(8_550), sender=trader)
    equity, im, _, withdrawable = p.margin(trader)
    assert equity == im == 950 * WAD
    assert withdrawable == 0


def test_withdraw__unrealized_profit__reverts(protocol_any_decimals, trade, move_index):
    p = protocol_any_decimals
    trader = _long_in_profit(p, trade, move_index)
    # equity 12,000 - IM 1,200 = 10,800 would allow 10,500 but cash is 10,000
    before = _snapshot(p, trader)

    with boa.reverts("unrealized profit not withdrawable"):
        p.ch.withdraw(0, p.units(10_500), sender=trader)
    with boa.reverts("unrealized profit not withdrawable"):
        p.ch.withdraw(0, p.units(10_000) + 1, sender=trader)

    assert _snapshot(p, trader) == before


def test_withdraw__up_to_withdrawable_with_profit__succeeds(protocol_any_decimals, trade, move_index):
    p = protocol_any_decimals
    trader = _long_in_profit(p, trade, move_index)
    assert p.margin(trader)[3] == 10_000 * WAD

    p.ch.withdraw(0, p.units(10_000), sender=trader)

    assert p.token.balanceOf(trader) == p.units(10_000)
    assert p.ch.cash(p.account(trader)) == 0
    # what is left is the unrealized profit: equity 2,000 >= IM 1,200, nothing withdrawable
    assert p.margin(trader) == (2_000 * WAD, 1_200 * WAD, 780 * WAD, 0)
    with boa.reverts("unrealized profit not withdrawable"):
        p.ch.withdraw(0, 1, sender=trader)


def _withdrawable(cash: int, equity: int, im: int) -> int:
    """PROTOCOL.md §7: max(0, min(cash, equity - IM))."""
    return max(0, min(cash, equity - im))


def test_margin__flat_account__withdrawable_is_cash(protocol):
    p = protocol
    trader = p.actor("trader", "123.45")
    assert p.margin(trader) == (123_450 * 10**15, 0, 0, 123_450 * 10**15)
    assert p.ch.margin(0) == (0, 0, 0, 0)  # no account


def test_margin__profit__withdrawable_capped_by_cash(protocol, trade, move_index):
    p = protocol
    trader = _long_in_profit(p, trade, move_index)
    # mark 120,000: notional 12,000, IM 10% = 1,200, MM 6.5% = 780,
    # uPnL = 0.1 x 120,000 - 10,000 = 2,000
    cash, equity, im, mm = 10_000 * WAD, 12_000 * WAD, 1_200 * WAD, 780 * WAD
    assert p.ch.cash(p.account(trader)) == cash
    assert p.margin(trader) == (equity, im, mm, _withdrawable(cash, equity, im))
    assert _withdrawable(cash, equity, im) == cash


def test_margin__loss__withdrawable_capped_by_equity_minus_im(protocol, trade, move_index):
    p = protocol
    trader = _long_at_loss(p, trade, move_index)
    # mark 95,000: notional 9,500, IM 950, MM 617.5, uPnL -500
    cash, equity, im, mm = 10_000 * WAD, 9_500 * WAD, 950 * WAD, 6175 * 10**17
    assert p.margin(trader) == (equity, im, mm, _withdrawable(cash, equity, im))
    assert _withdrawable(cash, equity, im) == 8_550 * WAD


def test_margin__equity_below_im__nothing_withdrawable(protocol, trade, move_index):
    p = protocol
    trader = p.actor("trader", 1_000)
    maker = p.actor("maker", 10_000)
    trade(p, trader, maker, "0.1", 100_000)  # IM 1,000 = equity: just allowed
    move_index(p, 99_000)
    # uPnL -100, equity 900 < IM 990 (but > MM 643.5)
    cash, equity, im, mm = 1_000 * WAD, 900 * WAD, 990 * WAD, 6435 * 10**17
    assert p.margin(trader) == (equity, im, mm, 0)
    assert _withdrawable(cash, equity, im) == 0
    before = _snapshot(p, trader)

    with boa.reverts("below initial margin"):
        p.ch.withdraw(0, 1, sender=trader)

    assert _snapshot(p, trader) == before


def test_account_summary__matches_margin(protocol, trade, move_index):
    p = protocol
    trader = _long_in_profit(p, trade, move_index)
    s = p.lens.account_summary(trader, 0)
    assert s.account == p.account(trader)
    assert s.cash == 10_000 * WAD
    assert (s.equity, s.initial_margin, s.maintenance_margin, s.withdrawable) == p.margin(trader)
