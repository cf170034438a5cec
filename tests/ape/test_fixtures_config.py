"""ape test: a module overrides `vyperp_config` (the README's example): 18-decimal collateral and one
market of its own; the fixtures and helpers follow it."""

from dataclasses import replace
from decimal import Decimal

import pytest

from keeper.deploy import DEFAULT_MARKETS, DeployConfig
from keeper.units import WAD


@pytest.fixture(scope="module")
def vyperp_config():
    """BTC-PERP at 60,000 with a 0.5 tick and a 0.001 lot; DAI with 18 decimals."""
    grid = {"tick_size": Decimal("0.5"), "lot_size": Decimal("0.001")}
    btc = replace(DEFAULT_MARKETS[0], initial_price=Decimal("60000"), oracle_max_age=86_400, **grid)
    return DeployConfig(collateral_decimals=18, collateral_symbol="DAI", markets=(btc,))


def test_vyperp_config__override__18_decimals_one_market(vyperp, vyperp_trader):
    assert list(vyperp.markets) == ["BTC-PERP"]
    assert vyperp.collateral.decimals() == 18
    maker = vyperp_trader(deposit="50000.25")
    assert vyperp.clearinghouse.cash(vyperp.account_of(maker)) == 50_000_250_000_000_000_000_000
    trader = vyperp_trader(deposit=700)
    vyperp.place_order(maker, "BTC-PERP", "buy", "0.1", price="59999.5")
    vyperp.place_order(trader, "BTC-PERP", "sell", "0.1", type="market")
    vyperp.set_index("BTC-PERP", 57_000)
    (position,) = vyperp.account_summary(trader).positions
    assert position.size == -WAD // 10
    assert position.entry_price == 599_995 * WAD // 10
    assert position.unrealized_pnl == 29995 * WAD // 100  # 0.1 x (59,999.5 - 57,000)
