import boa
import pytest


@pytest.mark.parametrize("decimals", [2, 6, 8, 18])
def test_constructor__decimals_in_range__set(make_token, deployer, decimals):
    token = make_token(decimals)
    assert token.decimals() == decimals
    assert token.name() == "USD Coin (mock)"
    assert token.symbol() == "USDC"
    assert token.totalSupply() == 0
    assert token.owner() == deployer
    assert token.is_minter(deployer)


@pytest.mark.parametrize("decimals", [0, 1, 19, 255])
def test_constructor__decimals_out_of_range__reverts(make_token, decimals):
    with boa.reverts("token: decimals out of range"):
        make_token(decimals)
