"""ape test: the fixtures in a project other than vyperp's checkout, where the contract types come
from `keeper.artifacts` (ArtifactContracts) instead of the ape project: the same deployment."""

import pytest

from keeper.ape_fixtures import ArtifactContracts
from keeper.units import WAD


@pytest.fixture(scope="module")
def vyperp_contracts():
    return ArtifactContracts()


def test_artifact_contracts__deploy_and_trade(vyperp, vyperp_trader):
    assert vyperp.clearinghouse.contract_type.source_id is None  # not from the ape project
    assert vyperp.liquidation_engine.contract_type.source_id is None
    assert vyperp.clearinghouse.liquidation_engine() == vyperp.liquidation_engine.address
    maker = vyperp_trader(deposit=100_000)
    trader = vyperp_trader(deposit=1_000)
    vyperp.place_order(maker, "SOL-PERP", "buy", "10", price=200)
    vyperp.place_order(trader, "SOL-PERP", "sell", "10")
    vyperp.set_index("SOL-PERP", 190)
    (position,) = vyperp.account_summary(trader).positions
    assert position.size == -10 * WAD
    assert position.unrealized_pnl == 100 * WAD  # short 10 x 10


def test_artifact_contracts__unknown_name__names_the_contracts_folder():
    with pytest.raises(AttributeError, match="no vyperp contract 'Nope'"):
        getattr(ArtifactContracts(), "Nope")  # noqa: B009
