"""Roundings the round test markets hide, found by the mutation run
(scripts/mutate.py, PROTOCOL.md §2, §5, §8): the price band's ticks when
the index is off the tick grid, unrealized PnL rounded down and the
position notional, IM and MM rounded up when the mark is off the wei grid
of a position, and the order risk rounded up on a market whose orders are
worth a fraction of its 1e-9 rates; and Lens.orders_of with two accounts.

Each expected value is computed here from the formula, and each test
checks that the other rounding would differ.
"""

from decimal import Decimal

import boa
import pytest

from keeper.deploy import to_wad
from keeper.model import RATE
from keeper.units import WAD
from tests.unitary.clearinghouse.liquidation_helpers import open_position
from tests.utils.protocol import FINE, GTC, deploy_fine_grid


def _end_transaction() -> None:
    """Clear transient storage (the market's index cache), as a new transaction does."""
    boa.env.evm.vm.state.clear_transient_storage()


def _ceil_div(x: int, y: int) -> int:
    return -(-x // y)


# ---------------------------------------------------------------- the price band (§5)


def test_price_band__index_off_the_tick_grid__lowest_tick_up_highest_down(protocol):
    """index $100,000.50, band 2% = $2,000.01: ticks [ceil(98,000.49), floor(102,000.51)]
    = [98,001, 102,000] ($1 ticks); one tick beyond either end is refused."""
    p = protocol
    maker = p.actor("maker", deposit="1000000")
    p.set_index("100000.5")
    _end_transaction()
    band = to_wad("100000.5") * (p.params().price_band // RATE) // RATE
    assert band == to_wad("2000.01")
    for side, beyond, inside in (("buy", "98000", "98001"), ("sell", "102001", "102000")):
        with boa.reverts("price beyond the price band"):
            p.order(maker, side, "0.001", beyond, GTC)
        assert p.order(maker, side, "0.001", inside, GTC) > 0


# ---------------------------------------------------------------- margins (§8)


@pytest.mark.parametrize("side", ["long", "short"])
def test_margin__mark_off_the_wei_grid__pnl_down_notional_im_mm_up(protocol, side):
    """A 0.001 BTC position opened at $100,000 (open notional $100 exactly),
    the mark then 123 wei above $100,000 (the book empty: the mark is the
    index): size x mark = $100 + 0.123 wei either way."""
    p = protocol
    trader = p.actor("trader", deposit="10000")
    other = p.actor("other", deposit="10000")
    open_position(p, trader, other, "buy" if side == "long" else "sell", "0.001", "100000")
    mark = to_wad(100_000) + 123
    p.set_index(Decimal(mark) / WAD)
    _end_transaction()
    size = to_wad("0.001") * (1 if side == "long" else -1)
    assert p.market().mark_price() == mark
    exact_num = size * mark  # size x mark x 1e18, not a multiple of 1e18
    assert exact_num % WAD != 0
    params = p.params()
    notional = _ceil_div(abs(size) * mark, WAD)
    expected = (
        exact_num // WAD - size * 100_000,  # floor(size x mark) - open notional
        _ceil_div(notional * (params.imr // RATE), RATE),
        _ceil_div(notional * (params.mmr // RATE), RATE),
    )
    assert tuple(p.market().account_margin(p.account(trader))) == expected
    # the other roundings differ
    assert notional * (params.imr // RATE) % RATE != 0 and notional * (params.mmr // RATE) % RATE != 0
    assert abs(size) * mark // WAD != notional


# ---------------------------------------------------------------- order risk (params_layout.order_risk)


@pytest.fixture(scope="module")
def _fine():
    return deploy_fine_grid()


def test_order_risk__orders_worth_a_fraction_of_the_rates__rounded_up_both_sides(_fine):
    """FINE-PERP (tick x lot = 1e6 wei): a bid and an ask of 0.001001 BTC at
    $99,999.999857 and $100,000.000286. k = ceil((price_band + mark_band) /
    (1 - price_band)) + maker_fee, risk = ceil((bids + asks) x k), both sides."""
    p = _fine
    with boa.env.anchor():
        maker = p.actor("maker", deposit="100000")
        p.order(maker, "buy", "0.001001", "99999.999857", GTC, symbol=FINE)
        p.order(maker, "sell", "0.001001", "100000.000286", GTC, symbol=FINE)
        params = p.params(FINE)
        pb, mb, fee = params.price_band // RATE, params.mark_band // RATE, params.maker_fee // RATE
        k = _ceil_div((pb + mb) * RATE, RATE - pb) + fee
        assert (pb + mb) * RATE % (RATE - pb) != 0  # k's ceiling differs from its floor
        bids = 1001 * 99_999_999_857 * 10**6
        asks = 1001 * 100_000_000_286 * 10**6
        assert (bids + asks) * k % RATE != 0  # the risk's ceiling differs from its floor
        risk = _ceil_div((bids + asks) * k, RATE)
        im = _ceil_div(max(bids, asks) * (params.imr // RATE), RATE) + risk
        assert tuple(p.market(FINE).account_margin(p.account(maker))) == (0, im, risk)


# ---------------------------------------------------------------- Lens.orders_of


def test_orders_of__two_accounts_interleaved__only_the_accounts_own(protocol):
    """The list cancel_all and liquidate take: another account's orders between
    the account's own are left out."""
    p = protocol
    maker = p.actor("maker", deposit="1000000")
    other = p.actor("other", deposit="1000000")
    mine = [p.order(maker, "sell", "0.1", "100100", GTC)]
    theirs = [p.order(other, "sell", "0.1", "100200", GTC)]
    mine.append(p.order(maker, "buy", "0.1", "99900", GTC))
    market = p.market().address
    assert p.lens.orders_of(market, p.account(maker), 1, 10) == mine
    assert p.lens.orders_of(market, p.account(other), 1, 10) == theirs
