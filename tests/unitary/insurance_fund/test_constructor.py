"""InsuranceFund deployment: share token metadata, parameters, ownership."""

import boa

from keeper.deploy import BoaBackend
from keeper.units import WAD
from tests.unitary.insurance_fund.conftest import (
    COOLDOWN,
    DECIMALS_OFFSET,
    PAYOUT_CAP,
    WITHDRAW_WINDOW,
    ZERO_ADDRESS,
    events,
)

# a token whose decimals() is above 18 (test-only stub)
_BAD_DECIMALS_TOKEN = """
# pragma version 0.4.3
DECIMALS: immutable(uint8)

@deploy
def __init__(d: uint8):
    DECIMALS = d

@external
@view
def decimals() -> uint8:
    return DECIMALS
"""


def _deploy(env, asset=None, payout_cap=PAYOUT_CAP, cooldown=COOLDOWN, window=WITHDRAW_WINDOW):
    return env.backend.deploy(
        "InsuranceFund", asset or env.token.address, "vyperp insurance", "vpINS", payout_cap, cooldown, window
    )


def test_init__deployed_state(env):
    f = env.fund
    assert f.asset() == env.token.address
    assert f.name() == "vyperp insurance"
    assert f.symbol() == "vpINS"
    assert f.decimals() == env.decimals + DECIMALS_OFFSET
    assert f.DECIMALS_OFFSET() == DECIMALS_OFFSET
    assert f.totalSupply() == 0
    assert f.totalAssets() == 0
    assert f.total_assets_stored() == 0
    assert (f.payout_cap(), f.cooldown(), f.withdraw_window()) == (PAYOUT_CAP, COOLDOWN, WITHDRAW_WINDOW)
    assert f.owner() == env.owner
    assert f.pending_owner() == ZERO_ADDRESS
    assert f.clearinghouse() == env.ch.address
    assert env.ch.insurance_fund() == f.address


def test_init__logs_fund_params(env):
    f = _deploy(env, payout_cap=WAD // 4, cooldown=0, window=3_600)
    (log,) = events(f, "FundParamsSet")
    assert (log.payout_cap, log.cooldown, log.withdraw_window) == (WAD // 4, 0, 3_600)
    assert f.clearinghouse() == ZERO_ADDRESS


def test_init__deployer_is_owner(env):
    deployer = boa.env.generate_address("other-deployer")
    with boa.env.prank(deployer):
        f = (
            BoaBackend(deployer)
            .factory("InsuranceFund")
            .deploy(env.token.address, "n", "s", PAYOUT_CAP, COOLDOWN, WITHDRAW_WINDOW)
        )
    assert f.owner() == deployer


def test_init__zero_asset__reverts(env):
    with boa.reverts("insurance: zero address"):
        _deploy(env, asset=ZERO_ADDRESS)


def test_init__asset_decimals_above_18__reverts(env):
    token = boa.loads(_BAD_DECIMALS_TOKEN, 19)
    with boa.reverts("insurance: asset decimals above 18"):
        _deploy(env, asset=token.address)


def test_init__params_out_of_bounds__revert(env):
    with boa.reverts("insurance: payout cap out of range"):
        _deploy(env, payout_cap=0)
    with boa.reverts("insurance: cooldown above 30 days"):
        _deploy(env, cooldown=30 * 86_400 + 1)
    with boa.reverts("insurance: withdraw window out of range"):
        _deploy(env, window=3_599)
