"""Fixtures for the MockStablecoin unit tests (isolation: titanoboa's pytest
plugin anchors every fixture setup and test call)."""

import boa
import pytest

from keeper.deploy import BoaBackend


@pytest.fixture(scope="session")
def token_factory():
    return BoaBackend().factory("MockStablecoin")


@pytest.fixture(scope="session")
def deployer():
    return boa.env.generate_address("token-deployer")


@pytest.fixture(scope="session")
def holder():
    return boa.env.generate_address("holder")


@pytest.fixture(scope="session")
def spender():
    return boa.env.generate_address("spender")


@pytest.fixture(scope="session")
def recipient():
    return boa.env.generate_address("recipient")


@pytest.fixture(scope="session")
def attacker():
    return boa.env.generate_address("attacker")


@pytest.fixture
def make_token(token_factory, deployer):
    def make(decimals=6, name="USD Coin (mock)", symbol="USDC"):
        with boa.env.prank(deployer):
            return token_factory.deploy(name, symbol, decimals)

    return make


@pytest.fixture(params=[6, 18], ids=["usdc6", "token18"])
def token(make_token, request):
    return make_token(request.param)
