"""ape test: the deploy script deploys the whole protocol on ape's local
network and writes a manifest that matches the chain."""

import json

from scripts.deploy import deploy


def test_deploy_script__deploys_and_writes_manifest(project, accounts, chain, tmp_path):
    deployer = accounts[0]
    path = tmp_path / "manifest.json"
    d = deploy(project, deployer, manifest_path=path)
    manifest = json.loads(path.read_text())
    assert manifest["chain_id"] == chain.chain_id
    assert manifest["clearinghouse"] == str(d.clearinghouse.address)
    assert set(manifest["markets"]) == {"BTC-PERP", "ETH-PERP", "SOL-PERP"}
    ch = project.Clearinghouse.at(manifest["clearinghouse"])
    assert ch.market_count() == 3
    # the liquidation engine, connected to the clearinghouse, and the lens
    engine = project.LiquidationEngine.at(manifest["liquidation_engine"])
    assert manifest["liquidation_engine"] == str(d.liquidation_engine.address)
    assert ch.liquidation_engine() == engine.address and engine.CLEARINGHOUSE() == ch.address
    lens = project.Lens.at(manifest["lens"])
    assert lens.CLEARINGHOUSE() == ch.address
    for symbol, m in manifest["markets"].items():
        oracle = project.IndexOracle.at(m["oracle"])
        market = project.PerpMarket.at(m["market"])
        assert market.SYMBOL() == symbol
        assert ch.market_index(m["market"]) > 0
        assert oracle.index() == int(float(m["initial_price"])) * 10**18
        assert market.mark_price() == oracle.index()
        lp = engine.liquidation_params(m["market"])
        assert lp.liquidation_fee == 5 * 10**15 and lp.bankrupt_band == 5 * 10**16  # the deployer's 0.5%, 5%


def test_deploy_script__a_trade_through_ape(project, accounts):
    deployer, maker, taker = accounts[0], accounts[1], accounts[2]
    d = deploy(project, deployer)
    token, ch = d.collateral, d.clearinghouse
    btc = d.markets["BTC-PERP"].market
    for who in (maker, taker):
        token.mint(who, 10**12, sender=deployer)
        token.approve(ch, 2**256 - 1, sender=who)
        ch.deposit(0, 10**11, sender=who)
    wad = 10**18
    ch.place_order(maker, 0, btc, False, wad // 10, 100_000 * wad, 0, False, 0, sender=maker)
    ch.place_order(taker, 0, btc, True, wad // 10, 100_000 * wad, 2, False, 0, sender=taker)
    assert btc.position(ch.account_of(taker, 0)).size == wad // 10
    assert btc.open_interest() == wad // 10
