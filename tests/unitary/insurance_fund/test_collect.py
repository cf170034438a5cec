"""collect: the fund's clearinghouse cash (its inflows) is pulled into the
vault, permissionlessly and before every deposit, mint, withdraw and redeem;
totalAssets counts it before it is collected."""

import boa

from tests.unitary.insurance_fund.conftest import COOLDOWN, PAYOUT_CAP, WITHDRAW_WINDOW, events, to_shares

# a clearinghouse stand-in whose cash can be set to anything (sub-unit
# remainders, negative cash), test-only
_MOCK_CLEARINGHOUSE = """
# pragma version 0.4.3
from ethereum.ercs import IERC20

COLLATERAL: public(immutable(address))
PRECISION: public(immutable(uint256))
insurance_fund: public(immutable(address))
insurance_account: public(constant(uint256)) = 1
cash: public(HashMap[uint256, int256])

@deploy
def __init__(collateral: address, fund: address, precision: uint256):
    COLLATERAL = collateral
    insurance_fund = fund
    PRECISION = precision

@external
def set_cash(account: uint256, amount: int256):
    self.cash[account] = amount

@external
def withdraw(subaccount: uint256, amount: uint256, to: address):
    assert msg.sender == insurance_fund and subaccount == 0
    self.cash[1] -= convert(amount * PRECISION, int256)
    assert extcall IERC20(COLLATERAL).transfer(to, amount)
"""


def _fund_with_mock_ch(env):
    fund = env.backend.deploy(
        "InsuranceFund", env.token.address, "vyperp insurance", "vpINS", PAYOUT_CAP, COOLDOWN, WITHDRAW_WINDOW
    )
    precision = 10 ** (18 - env.decimals)
    ch = boa.loads(_MOCK_CLEARINGHOUSE, env.token.address, fund.address, precision)
    env.token.mint(ch.address, env.units(1_000), sender=env.owner)
    fund.set_clearinghouse(ch.address, sender=env.owner)
    return fund, ch, precision


def test_collect__pulls_pending_cash(env):
    env.credit_fund_cash(env.units(250))
    account = env.ch.insurance_account()
    assert env.fund.total_assets_stored() == 0
    assert env.fund.totalAssets() == env.units(250)
    anyone = env.actor("anyone")
    assert env.fund.collect(sender=anyone) == env.units(250)
    (log,) = events(env.fund, "Collected")
    assert (log.amount, log.total_assets) == (env.units(250), env.units(250))
    assert env.ch.cash(account) == 0
    assert env.fund.total_assets_stored() == env.units(250)
    assert env.fund.totalAssets() == env.units(250)
    assert env.token.balanceOf(env.fund.address) == env.units(250)


def test_collect__nothing_pending__returns_zero(env):
    assert env.fund.collect() == 0
    assert events(env.fund, "Collected") == []


def test_collect__no_clearinghouse__returns_zero(env):
    fund = env.backend.deploy(
        "InsuranceFund", env.token.address, "vyperp insurance", "vpINS", PAYOUT_CAP, COOLDOWN, WITHDRAW_WINDOW
    )
    assert fund.totalAssets() == 0
    assert fund.collect() == 0


def test_deposit__collects_first__preview_matches(env, depositor):
    env.deposit(depositor, env.units(1_000))
    env.credit_fund_cash(env.units(100))
    supply, total = env.supply_total()
    assert total == env.units(1_100)
    assets = env.units(500)
    preview = env.fund.previewDeposit(assets)
    assert preview == to_shares(assets, supply, total)
    assert env.deposit(depositor, assets) == preview
    (log,) = events(env.fund, "Collected")
    assert log.amount == env.units(100)
    assert env.fund.total_assets_stored() == env.units(1_600)
    assert env.ch.cash(env.ch.insurance_account()) == 0


def test_mint__collects_first__preview_matches(env, depositor):
    env.deposit(depositor, env.units(1_000))
    env.credit_fund_cash(env.units(100))
    shares = 10**6 * env.units(10)
    preview = env.fund.previewMint(shares)
    assert env.fund.mint(shares, depositor, sender=depositor) == preview
    assert env.fund.total_assets_stored() == env.units(1_100) + preview


def test_redeem__collects_first__inflows_reach_shareholders(env, depositor):
    shares = env.deposit(depositor, env.units(1_000))
    env.request_and_wait(depositor)
    env.credit_fund_cash(env.units(100))
    preview = env.fund.previewRedeem(shares)
    assert preview > env.units(1_099)
    assert env.fund.redeem(shares, depositor, depositor, sender=depositor) == preview
    assert len(events(env.fund, "Collected")) == 1


def test_withdraw__collects_first__preview_matches(env, depositor):
    env.deposit(depositor, env.units(1_000))
    env.request_and_wait(depositor)
    env.credit_fund_cash(env.units(100))
    preview = env.fund.previewWithdraw(env.units(1_050))
    assert env.fund.withdraw(env.units(1_050), depositor, depositor, sender=depositor) == preview


def test_collect__sub_unit_remainder__stays_in_clearinghouse(env6):
    env = env6
    fund, ch, precision = _fund_with_mock_ch(env)
    ch.set_cash(1, 5 * precision + precision - 1)
    assert fund.totalAssets() == 5
    assert fund.collect() == 5
    assert ch.cash(1) == precision - 1
    assert fund.total_assets_stored() == 5
    assert fund.totalAssets() == 5
    assert fund.collect() == 0


def test_collect__negative_cash__counts_zero(env):
    fund, ch, precision = _fund_with_mock_ch(env)
    ch.set_cash(1, -(10**18))
    assert fund.totalAssets() == 0
    assert fund.collect() == 0
    assert ch.cash(1) == -(10**18)
