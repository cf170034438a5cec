def test_deploy__index_and_mark_at_initial_price(protocol):
    m = protocol.market()
    assert protocol.oracle().index() == 100_000 * 10**18
    assert m.mark_price() == 100_000 * 10**18


def test_deploy__existing_collateral__is_reused(protocol):
    from keeper.deploy import BoaBackend, DeployConfig, deploy_protocol
    from tests.utils.protocol import test_markets

    d = deploy_protocol(
        BoaBackend(), DeployConfig(collateral=protocol.token.address, markets=test_markets()[:1])
    )
    assert d.collateral.address == protocol.token.address
    assert d.clearinghouse.COLLATERAL() == protocol.token.address
