"""Cross-margin inside a subaccount, isolation between subaccounts
(PROTOCOL.md §3, §7): account_summary and margin()."""

import boa

from keeper.units import WAD
from tests.utils.protocol import GTC, IOC


def _two_market_account(p, trade, move_index) -> str:
    """Subaccount 0 of a trader with 10,000: long 0.1 BTC at 100,000 and
    short 1 ETH at 4,000; then BTC index 101,000 and ETH index 3,900 (empty
    books, so the marks follow)."""
    trader = p.actor("trader", 10_000)
    maker = p.actor("maker", 100_000)
    trade(p, trader, maker, "0.1", 100_000)
    trade(p, maker, trader, "1", 4_000, symbol="ETH-PERP")
    move_index(p, 101_000)
    move_index(p, 3_900, "ETH-PERP")
    return trader


def test_account_summary__two_markets__sums_equity_and_margins(protocol, trade, move_index):
    p = protocol
    trader = _two_market_account(p, trade, move_index)
    # BTC: notional 10,100, uPnL +100, IM 1,010, MM 656.5
    # ETH: notional 3,900, uPnL +100 (short), IM 390, MM 253.5
    cash = 10_000 * WAD
    equity = cash + 100 * WAD + 100 * WAD
    im = 1_010 * WAD + 390 * WAD
    mm = 6565 * 10**17 + 2535 * 10**17

    s = p.lens.account_summary(trader, 0)

    assert s.account == p.account(trader)
    assert s.cash == cash
    assert s.equity == equity == 10_200 * WAD
    assert s.initial_margin == im == 1_400 * WAD
    assert s.maintenance_margin == mm == 910 * WAD
    assert s.withdrawable == min(cash, equity - im) == 8_800 * WAD
    assert p.margin(trader) == (s.equity, s.initial_margin, s.maintenance_margin, s.withdrawable)


def test_account_summary__two_markets__equals_sum_of_market_margins(protocol, trade, move_index):
    p = protocol
    trader = _two_market_account(p, trade, move_index)
    account = p.account(trader)
    parts = [p.market(sym).account_margin(account) for sym in ("BTC-PERP", "ETH-PERP")]

    equity, im, mm, _ = p.margin(trader)

    assert equity == p.ch.cash(account) + sum(m.pnl for m in parts)
    assert im == sum(m.im for m in parts)
    assert mm == sum(m.mm for m in parts)


def test_account_summary__lists_each_position(protocol, trade, move_index):
    p = protocol
    trader = _two_market_account(p, trade, move_index)

    btc, eth = p.lens.account_summary(trader, 0).positions

    assert btc.market == p.market("BTC-PERP").address
    assert (btc.size, btc.entry_price, btc.mark) == (10**17, 100_000 * WAD, 101_000 * WAD)
    assert (btc.unrealized_pnl, btc.funding_owed, btc.open_orders) == (100 * WAD, 0, 0)
    assert eth.market == p.market("ETH-PERP").address
    assert (eth.size, eth.entry_price, eth.mark) == (-(10**18), 4_000 * WAD, 3_900 * WAD)
    assert (eth.unrealized_pnl, eth.funding_owed, eth.open_orders) == (100 * WAD, 0, 0)


def test_account_summary__unknown_account__is_empty(protocol):
    p = protocol
    s = p.lens.account_summary(p.actor("nobody"), 0)
    assert s.account == 0
    assert (s.cash, s.equity, s.initial_margin, s.maintenance_margin, s.withdrawable) == (0, 0, 0, 0, 0)
    assert list(s.positions) == []


def test_account_summary__position_closed_as_taker__drops_from_positions(protocol, trade):
    p = protocol
    trader = p.actor("trader", 10_000)
    maker = p.actor("maker", 100_000)
    trade(p, trader, maker, "0.1", 100_000)
    trade(p, maker, trader, "1", 4_000, symbol="ETH-PERP")
    p.order(maker, "sell", "1", 4_000, GTC, symbol="ETH-PERP")

    p.order(trader, "buy", "1", 4_000, IOC, symbol="ETH-PERP")  # closes the short

    (btc,) = p.lens.account_summary(trader, 0).positions
    assert btc.market == p.market("BTC-PERP").address
    assert p.margin(trader)[1] == 1_000 * WAD  # only BTC's IM is left


def test_subaccounts__isolated__second_subaccount_unaffected(protocol, trade, move_index):
    p = protocol
    trader = p.actor("trader", 10_000, sub=0)
    p.fund(trader, 500, sub=1)
    maker = p.actor("maker", 100_000)
    trade(p, trader, maker, "0.1", 100_000)

    move_index(p, 97_000)  # sub 0 loses 300

    assert p.margin(trader, sub=0)[0] == 9_700 * WAD
    assert p.margin(trader, sub=1) == (500 * WAD, 0, 0, 500 * WAD)
    assert list(p.lens.account_summary(trader, 1).positions) == []


def test_subaccounts__isolated__free_collateral_not_shared(protocol):
    # sub 0 has 10,000 free, sub 1 has 500: a 0.1 BTC bid needs 1,000 in sub 1 alone
    p = protocol
    trader = p.actor("trader", 10_000, sub=0)
    p.fund(trader, 500, sub=1)

    with boa.reverts("below initial margin"):
        p.order(trader, "buy", "0.1", 100_000, GTC, sub=1)

    p.order(trader, "buy", "0.1", 100_000, GTC, sub=0)
    assert p.margin(trader, sub=1) == (500 * WAD, 0, 0, 500 * WAD)


def test_place_order__profit_in_one_market_backs_another(protocol, trade, move_index):
    # 1,000 cash, long 0.1 BTC: IM 1,000 uses it all. A 0.4 ETH short needs 160.
    p = protocol
    trader = p.actor("trader", 1_000)
    maker = p.actor("maker", 100_000)
    trade(p, trader, maker, "0.1", 100_000)
    p.order(maker, "buy", "0.4", 4_000, GTC, symbol="ETH-PERP")

    with boa.reverts("below initial margin"):
        p.order(trader, "sell", "0.4", 4_000, IOC, symbol="ETH-PERP")

    # BTC at 102,000: equity 1,200, IM 1,020 -> 180 free, enough for ETH's 160
    move_index(p, 102_000)
    p.order(trader, "sell", "0.4", 4_000, IOC, symbol="ETH-PERP")

    equity, im, mm, withdrawable = p.margin(trader)
    assert (equity, im) == (1_200 * WAD, 1_180 * WAD)
    assert mm == 663 * WAD + 104 * WAD  # 10,200 x 6.5% + 1,600 x 6.5%
    assert withdrawable == 20 * WAD


def test_withdraw__loss_in_one_market__limits_withdrawal_everywhere(protocol, trade, move_index):
    p = protocol
    trader = _two_market_account(p, trade, move_index)
    move_index(p, 4_000, "ETH-PERP")  # the ETH short goes back to 0 PnL
    move_index(p, 95_000)  # BTC: -500
    # equity 9,500, IM 950 + 400 = 1,350 -> withdrawable 8,150
    assert p.margin(trader) == (9_500 * WAD, 1_350 * WAD, 6175 * 10**17 + 260 * WAD, 8_150 * WAD)

    with boa.reverts("below initial margin"):
        p.ch.withdraw(0, p.units(8_150) + 1, sender=trader)
    p.ch.withdraw(0, p.units(8_150), sender=trader)


def test_place_order__below_initial_margin__only_reducing_orders_pass(protocol, trade, move_index):
    # 1,000 cash, long 0.1 BTC; at 99,000 equity 900 < IM 990
    p = protocol
    trader = p.actor("trader", 1_000)
    maker = p.actor("maker", 100_000)
    trade(p, trader, maker, "0.1", 100_000)
    p.order(maker, "buy", "0.05", 99_000, GTC)
    move_index(p, 99_000)  # mark = median(bid 99,000, index, last 100,000)
    assert p.margin(trader)[:2] == (900 * WAD, 990 * WAD)

    # resting orders reserve margin, even on the reducing side
    with boa.reverts("below initial margin"):
        p.order(trader, "buy", "0.01", 98_000, GTC)
    with boa.reverts("below initial margin"):
        p.order(trader, "sell", "0.01", 99_500, GTC)

    p.order(trader, "sell", "0.05", 99_000, IOC)
    assert p.position(trader).size == 5 * 10**16
