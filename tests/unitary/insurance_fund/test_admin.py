"""Admin: parameters within hard bounds, the clearinghouse set once and
checked, two-step ownership."""

import boa

from keeper.units import WAD
from tests.unitary.insurance_fund.conftest import (
    COOLDOWN,
    DAY,
    INSURANCE_FEE_SHARE,
    PAYOUT_CAP,
    WITHDRAW_WINDOW,
    ZERO_ADDRESS,
    events,
)


def _fresh_fund(env):
    return env.backend.deploy(
        "InsuranceFund", env.token.address, "vyperp insurance", "vpINS", PAYOUT_CAP, COOLDOWN, WITHDRAW_WINDOW
    )


# ---------------------------------------------------------------- set_params


def test_set_params__sets_and_logs(env):
    env.fund.set_params(WAD // 10, DAY, 3 * DAY, sender=env.owner)
    (log,) = events(env.fund, "FundParamsSet")
    assert (log.payout_cap, log.cooldown, log.withdraw_window) == (WAD // 10, DAY, 3 * DAY)
    assert (env.fund.payout_cap(), env.fund.cooldown(), env.fund.withdraw_window()) == (
        WAD // 10,
        DAY,
        3 * DAY,
    )


def test_set_params__bounds_inclusive(env):
    env.fund.set_params(1, 0, 3_600, sender=env.owner)
    env.fund.set_params(WAD, 30 * DAY, 30 * DAY, sender=env.owner)
    assert (env.fund.payout_cap(), env.fund.cooldown(), env.fund.withdraw_window()) == (
        WAD,
        30 * DAY,
        30 * DAY,
    )


def test_set_params__zero_payout_cap__reverts(env):
    with boa.reverts("insurance: payout cap out of range"):
        env.fund.set_params(0, COOLDOWN, WITHDRAW_WINDOW, sender=env.owner)


def test_set_params__payout_cap_above_one__reverts(env):
    with boa.reverts("insurance: payout cap out of range"):
        env.fund.set_params(WAD + 1, COOLDOWN, WITHDRAW_WINDOW, sender=env.owner)


def test_set_params__cooldown_above_30_days__reverts(env):
    with boa.reverts("insurance: cooldown above 30 days"):
        env.fund.set_params(PAYOUT_CAP, 30 * DAY + 1, WITHDRAW_WINDOW, sender=env.owner)


def test_set_params__window_below_one_hour__reverts(env):
    with boa.reverts("insurance: withdraw window out of range"):
        env.fund.set_params(PAYOUT_CAP, COOLDOWN, 3_599, sender=env.owner)


def test_set_params__window_above_30_days__reverts(env):
    with boa.reverts("insurance: withdraw window out of range"):
        env.fund.set_params(PAYOUT_CAP, COOLDOWN, 30 * DAY + 1, sender=env.owner)


def test_set_params__not_owner__reverts(env):
    with boa.reverts("ownable: caller is not the owner"):
        env.fund.set_params(PAYOUT_CAP, COOLDOWN, WITHDRAW_WINDOW, sender=env.actor("attacker"))


# ---------------------------------------------------------------- set_clearinghouse


def test_set_clearinghouse__sets_and_logs(env):
    fund = _fresh_fund(env)
    ch = env.backend.deploy(
        "Clearinghouse", env.token.address, fund.address, env.treasury, INSURANCE_FEE_SHARE
    )
    fund.set_clearinghouse(ch.address, sender=env.owner)
    (log,) = events(fund, "ClearinghouseSet")
    assert log.clearinghouse == ch.address
    assert fund.clearinghouse() == ch.address


def test_set_clearinghouse__twice__reverts(env):
    with boa.reverts("insurance: clearinghouse already set"):
        env.fund.set_clearinghouse(env.ch.address, sender=env.owner)


def test_set_clearinghouse__not_owner__reverts(env):
    fund = _fresh_fund(env)
    ch = env.backend.deploy(
        "Clearinghouse", env.token.address, fund.address, env.treasury, INSURANCE_FEE_SHARE
    )
    with boa.reverts("ownable: caller is not the owner"):
        fund.set_clearinghouse(ch.address, sender=env.actor("attacker"))


def test_set_clearinghouse__zero_address__reverts(env):
    with boa.reverts("insurance: zero address"):
        _fresh_fund(env).set_clearinghouse(ZERO_ADDRESS, sender=env.owner)


def test_set_clearinghouse__of_another_fund__reverts(env):
    fund = _fresh_fund(env)
    # env.ch names env.fund as its insurance fund, not this one
    with boa.reverts("insurance: clearinghouse of another fund"):
        fund.set_clearinghouse(env.ch.address, sender=env.owner)


def test_set_clearinghouse__of_another_asset__reverts(env):
    fund = _fresh_fund(env)
    other = env.backend.deploy("MockStablecoin", "Other", "OTH", env.decimals)
    ch = env.backend.deploy("Clearinghouse", other.address, fund.address, env.treasury, INSURANCE_FEE_SHARE)
    with boa.reverts("insurance: clearinghouse of another asset"):
        fund.set_clearinghouse(ch.address, sender=env.owner)


# ---------------------------------------------------------------- ownership


def test_transfer_ownership__two_step(env):
    new_owner = env.actor("new-owner")
    env.fund.transfer_ownership(new_owner, sender=env.owner)
    assert env.fund.owner() == env.owner
    assert env.fund.pending_owner() == new_owner
    with boa.reverts("ownable_2step: caller is not the new owner"):
        env.fund.accept_ownership(sender=env.actor("attacker"))
    env.fund.accept_ownership(sender=new_owner)
    assert env.fund.owner() == new_owner
    assert env.fund.pending_owner() == ZERO_ADDRESS
    with boa.reverts("ownable: caller is not the owner"):
        env.fund.set_params(PAYOUT_CAP, COOLDOWN, WITHDRAW_WINDOW, sender=env.owner)
    env.fund.set_params(PAYOUT_CAP, DAY, WITHDRAW_WINDOW, sender=new_owner)


def test_transfer_ownership__not_owner__reverts(env):
    attacker = env.actor("attacker")
    with boa.reverts("ownable: caller is not the owner"):
        env.fund.transfer_ownership(attacker, sender=attacker)
