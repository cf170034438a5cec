"""ape test: the `vyperp` / `vyperp_trader` fixtures of the pytest plugin (keeper/ape_fixtures.py,
entry point `pytest11: vyperp`), used exactly as the README shows: nothing imported, the protocol
deployed once for the module, every test's changes reverted by ape's chain isolation."""

import ape
import pytest

from keeper.units import WAD


def test_long_5x__index_up_2pct__earns_10pct(vyperp, vyperp_trader):
    """The README example: a 10x long, the index moves, the account summary shows the PnL."""
    maker = vyperp_trader(deposit=100_000)
    trader = vyperp_trader(deposit=1_000)
    vyperp.place_order(maker, "BTC-PERP", "sell", "0.05", price=100_000)
    vyperp.place_order(trader, "BTC-PERP", "buy", "0.05")  # market: 5,000 notional on 1,000
    vyperp.set_index("BTC-PERP", 102_000)

    summary = vyperp.account_summary(trader)
    (position,) = summary.positions
    assert position.size == WAD // 20
    assert position.entry_price == 100_000 * WAD
    assert position.mark == 102_000 * WAD
    assert position.unrealized_pnl == 100 * WAD  # 0.05 x 2,000: 10% on the margin
    fee = 5_000 * WAD * 5 // 10_000  # taker fee 0.05% of 5,000
    assert summary.equity == 1_000 * WAD - fee + 100 * WAD


def test_vyperp__deployed_as_the_deploy_script_does(vyperp, chain):
    assert vyperp.manifest["chain_id"] == chain.chain_id
    assert vyperp.manifest["clearinghouse"] == vyperp.clearinghouse.address
    assert set(vyperp.markets) == {"BTC-PERP", "ETH-PERP", "SOL-PERP"}
    assert vyperp.clearinghouse.market_count() == 3
    for symbol, m in vyperp.markets.items():
        assert m.market.SYMBOL() == symbol
        assert m.market.funding_rate() == m.funding.address
        assert m.oracle.index() == int(m.config.initial_price) * WAD
    assert vyperp.insurance_fund.clearinghouse() == vyperp.clearinghouse.address
    assert vyperp.lens.CLEARINGHOUSE() == vyperp.clearinghouse.address


def test_vyperp__state_of_the_previous_test_is_reverted(vyperp):
    """The example above traded and moved the index: ape's isolation reverted both."""
    btc = vyperp.markets["BTC-PERP"]
    assert btc.market.open_interest() == 0
    assert btc.oracle.index() == 100_000 * WAD


def test_vyperp_trader__funded_approved_deposited(vyperp, vyperp_trader, accounts):
    trader = vyperp_trader(deposit="2500.5")
    assert trader.address not in [a.address for a in accounts]  # a fresh account
    assert trader.balance > 0  # gas money
    account = vyperp.account_of(trader)
    assert vyperp.clearinghouse.cash(account) == 2_500_500_000 * 10**12  # 6-decimal USDC as WAD
    again = vyperp_trader(deposit=10, account=trader, subaccount=1)
    assert again == trader
    assert vyperp.clearinghouse.cash(vyperp.account_of(trader, 1)) == 10 * WAD


def test_place_order__resting_order_then_cancel(vyperp, vyperp_trader):
    maker = vyperp_trader()
    receipt = vyperp.place_order(maker, "ETH-PERP", "buy", "1.5", price="3999.9", type="post-only")
    eth = vyperp.market("ETH-PERP")
    assert eth.best_bid() == 39_999 * WAD // 10
    (placed,) = [log for log in receipt.events if log.event_name == "OrderPlaced"]
    vyperp.clearinghouse.cancel_order(maker, 0, eth, placed.order_id, sender=maker)
    assert eth.best_bid() == 0


def test_place_order__off_lot__refused_before_sending(vyperp, vyperp_trader):
    from keeper.people.common import PeopleError

    trader = vyperp_trader()
    with pytest.raises(PeopleError, match="lot size 0.0001"):
        vyperp.place_order(trader, "BTC-PERP", "buy", "0.00015", price=100_000)


def test_place_order__over_leverage__reverts_with_reason(vyperp, vyperp_trader):
    maker = vyperp_trader(deposit=1_000_000)
    trader = vyperp_trader(deposit=100)
    vyperp.place_order(maker, "BTC-PERP", "sell", "1", price=100_000)
    with ape.reverts("below initial margin"):
        vyperp.place_order(trader, "BTC-PERP", "buy", "1")


def test_liquidation_engine__exposed__a_liquidation_through_it(vyperp, vyperp_trader):
    """`vyperp.liquidation_engine` beside `vyperp.clearinghouse`: liquidate, its params, its events."""
    engine, ch = vyperp.liquidation_engine, vyperp.clearinghouse
    assert vyperp.manifest["liquidation_engine"] == engine.address
    assert ch.liquidation_engine() == engine.address and engine.CLEARINGHOUSE() == ch.address
    btc = vyperp.markets["BTC-PERP"]
    lp = engine.liquidation_params(btc.market)
    assert (lp.liquidation_fee, lp.bankrupt_band) == (5 * 10**15, 5 * 10**16)  # 0.5%, 5%
    maker = vyperp_trader(deposit=1_000_000)
    trader = vyperp_trader(deposit=112)
    vyperp.place_order(maker, "BTC-PERP", "sell", "0.01", price=100_000)
    vyperp.place_order(trader, "BTC-PERP", "buy", "0.01")  # ~9x
    vyperp.set_index("BTC-PERP", 92_000)  # -8%: below maintenance, above bankruptcy
    # the bid the liquidation sells into, inside the price band around the new index (92,000 +- 2%)
    vyperp.place_order(maker, "BTC-PERP", "buy", "1", price=91_000)
    account = vyperp.account_of(trader)
    liquidator = vyperp_trader(deposit=1)
    receipt = engine.liquidate(account, btc.market, 2**256 - 1, [], sender=liquidator)
    (ev,) = [log for log in receipt.events if log.event_name == "Liquidation"]
    assert ev.contract_address == engine.address  # the engine's event, not the clearinghouse's
    assert ev.account == account and ev.closed_size == WAD // 100 and ev.size_after == 0
    assert vyperp.position(trader, "BTC-PERP").size == 0


def test_set_index__after_time_travel__index_fresh_at_the_new_time(vyperp, chain):
    chain.pending_timestamp += 3 * 86_400  # beyond max_age: every source is stale
    vyperp.set_index("SOL-PERP", "180.5")
    valid, price, fresh = vyperp.markets["SOL-PERP"].oracle.index_status()
    assert valid and price == 1805 * WAD // 10 and fresh == 1
    assert not vyperp.markets["BTC-PERP"].oracle.index_status()[0]  # not re-reported: stale
