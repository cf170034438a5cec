"""Lens.account_summary: the token-unit fields and their rounding (passing
`withdrawable_units` to `withdraw` never reverts), and the `valid` flag instead of
a revert on an invalid index (PROTOCOL.md §1.2, §8)."""

import boa
import pytest

from tests.unitary.clearinghouse.liquidation_helpers import open_position

WAD = 10**18
MAX_AGE = 60  # the test oracles' max_age
BELOW_IM = "below initial margin"
PROFIT = "unrealized profit not withdrawable"


def _precision(p) -> int:
    return 10 ** (18 - p.decimals)


def _long(p, deposit=2_000, size="0.1", price=100_000, symbol="BTC-PERP") -> str:
    """A trader with `deposit`, long `size` at `price` from a maker's resting order."""
    trader = p.actor("trader", deposit)
    maker = p.actor("maker", 100_000)
    open_position(p, trader, maker, "buy", size, price, symbol=symbol)
    return trader


def _report(p, price_wad: int, symbol="BTC-PERP") -> None:
    """Every reporter of the market reports a WAD price now (one the guard lets through)."""
    md = p.d.markets[symbol]
    for r in md.reporters:
        md.oracle.report(price_wad, boa.env.timestamp, sender=r)


def _add_funding(p, delta: int, symbol="BTC-PERP") -> None:
    """Longs owe `delta` (quote WAD per base unit) more, as a FundingRate settlement does."""
    md = p.d.markets[symbol]
    md.market.add_cumulative_funding(delta, sender=md.funding.address)


# ---------------------------------------------------------------- units


def test_account_summary__units__exact_amounts_convert_exactly(protocol_any_decimals):
    p = protocol_any_decimals
    trader = p.actor("trader", "1234.5")
    s = p.lens.account_summary(trader, 0)
    assert p.lens.PRECISION() == p.ch.PRECISION() == _precision(p)
    assert s.valid
    assert s.cash_units == s.equity_units == s.withdrawable_units == p.units("1234.5")


def test_account_summary__withdrawable_units__rounded_down_and_withdraw_takes_it(protocol_any_decimals):
    """Index up 0.000011111... above entry: equity - IM = 1,000.000000999999999999 (a fraction
    of a 6-decimal unit, .999999999999 of it); withdrawable_units rounds it down, withdraw
    accepts exactly that and refuses one unit more."""
    p = protocol_any_decimals
    trader = _long(p)
    _report(p, 100_000 * WAD + 11_111_111_111_111)
    s = p.lens.account_summary(trader, 0)
    free = 1_000 * WAD + 999_999_999_999
    assert s.valid
    assert s.withdrawable == s.equity - s.initial_margin == free
    assert s.withdrawable_units == free // _precision(p)
    if p.decimals == 6:
        assert s.withdrawable_units == 1_000_000_000  # 1,000.000000|999999999999 rounded down

    with boa.reverts(BELOW_IM):
        p.ch.withdraw(0, s.withdrawable_units + 1, sender=trader)
    p.ch.withdraw(0, s.withdrawable_units, sender=trader)

    assert p.token.balanceOf(trader) == s.withdrawable_units
    assert p.lens.account_summary(trader, 0).withdrawable_units == 0


def test_account_summary__withdrawable__counts_the_funding_withdraw_settles(protocol):
    """Cash binds (unrealized profit above IM) and the long owes 300.000000000000123457
    of funding: withdraw settles it first, so Clearinghouse.margin's withdrawable (cash
    before settlement) reverts while the Lens's passes."""
    p = protocol
    trader = _long(p, deposit=10_000)
    p.set_index(120_000)
    _add_funding(p, 3_000 * WAD + 1_234_567)
    owed = 300 * WAD + 123_457  # ceil(0.1 x 3,000.000000000001234567)
    s = p.lens.account_summary(trader, 0)
    assert s.positions[0].funding_owed == owed
    assert p.margin(trader)[3] == 10_000 * WAD  # min(cash, equity - IM) = cash
    assert s.withdrawable == 10_000 * WAD - owed
    assert s.withdrawable_units == 9_699_999_999  # 9,699.999999|999999876543 rounded down

    with boa.reverts(PROFIT):
        p.ch.withdraw(0, p.units(10_000), sender=trader)
    with boa.reverts(PROFIT):
        p.ch.withdraw(0, s.withdrawable_units + 1, sender=trader)
    p.ch.withdraw(0, s.withdrawable_units, sender=trader)

    assert p.token.balanceOf(trader) == s.withdrawable_units


def test_account_summary__cash_units__negative_cash_rounded_toward_minus_infinity(protocol):
    """Funding settled beyond the deposit leaves cash at -100.000000000000123457 (equity
    still positive on the unrealized profit): cash_units is -100.000001, never the smaller
    debt -100.000000."""
    p = protocol
    trader = _long(p, deposit=10_000)
    p.set_index(120_000)
    _add_funding(p, 101_000 * WAD + 1_234_567)
    p.ch.settle_funding(trader, 0)
    s = p.lens.account_summary(trader, 0)
    assert s.valid
    assert s.cash == -100 * WAD - 123_457
    assert s.cash_units == -100_000_001
    assert s.equity > 0
    assert s.equity_units == (s.equity // 10**12)
    assert s.withdrawable == s.withdrawable_units == 0


# ---------------------------------------------------------------- invalid index: a flag, no revert


def test_account_summary__stale_index__valid_false_and_price_free_fields(protocol):
    p = protocol
    trader = _long(p)
    market = p.market().address
    p.warp(MAX_AGE + 1)
    with boa.reverts("oracle: stale index"):
        p.margin(trader)

    s = p.lens.account_summary(trader, 0)

    assert not s.valid
    assert (s.cash, s.cash_units) == (2_000 * WAD, p.units(2_000))
    assert (s.equity, s.equity_units, s.initial_margin, s.maintenance_margin) == (0, 0, 0, 0)
    assert (s.withdrawable, s.withdrawable_units) == (0, 0)
    (pos,) = s.positions
    assert (pos.market, pos.size, pos.open_orders) == (market, WAD // 10, 0)
    assert (pos.entry_price, pos.mark, pos.unrealized_pnl, pos.funding_owed) == (0, 0, 0, 0)


def test_account_summary__stale_index__account_without_exposure_stays_valid(protocol):
    p = protocol
    _long(p)
    idle = p.actor("idle-trader", 100)
    p.warp(MAX_AGE + 1)
    s = p.lens.account_summary(idle, 0)
    assert s.valid
    assert s.withdrawable_units == p.units(100)
    p.ch.withdraw(0, s.withdrawable_units, sender=idle)


def test_account_summary__stale_index__resting_orders_only__valid_false(protocol):
    p = protocol
    trader = p.actor("trader", 2_000)
    p.order(trader, "buy", "0.01", 99_000)
    p.warp(MAX_AGE + 1)
    s = p.lens.account_summary(trader, 0)
    assert not s.valid
    (pos,) = s.positions
    assert (pos.size, pos.open_orders) == (0, 1)


def test_account_summary__one_market_stale__other_listed_in_full(protocol):
    p = protocol
    trader = _long(p, deposit=10_000)
    open_position(p, p.actor("eth-maker", 100_000), trader, "buy", "1", 4_000, symbol="ETH-PERP")
    p.warp(MAX_AGE + 1)
    p.set_index(4_000, "ETH-PERP")

    s = p.lens.account_summary(trader, 0)

    assert not s.valid
    btc, eth = s.positions
    assert (btc.size, btc.mark) == (WAD // 10, 0)
    assert (eth.size, eth.entry_price, eth.mark) == (-WAD, 4_000 * WAD, 4_000 * WAD)
    assert s.withdrawable_units == 0


def test_account_summary__index_fresh_again__valid(protocol):
    p = protocol
    trader = _long(p)
    p.warp(MAX_AGE + 1)
    assert not p.lens.account_summary(trader, 0).valid
    p.set_index(100_000)
    s = p.lens.account_summary(trader, 0)
    assert s.valid
    assert (s.equity, s.initial_margin, s.maintenance_margin, s.withdrawable) == p.margin(trader)


def test_account_summary__guard_holds_index__valid_false(protocol):
    p = protocol
    trader = _long(p)
    p.set_index(200_000, confirm=False)  # +100%: beyond the guard
    assert not p.oracle().index_status()[0]
    s = p.lens.account_summary(trader, 0)
    assert not s.valid
    assert s.cash_units == p.units(2_000)


@pytest.mark.parametrize("sub", [0, 7])
def test_account_summary__unknown_account__empty_and_valid(protocol, sub):
    s = protocol.lens.account_summary(protocol.actor("nobody"), sub)
    assert (s.account, s.valid, s.cash_units, s.withdrawable_units, list(s.positions)) == (0, True, 0, 0, [])
