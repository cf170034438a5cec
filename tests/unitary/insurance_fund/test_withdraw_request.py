"""Withdrawals by request (PROTOCOL.md §10): request, wait the cooldown,
withdraw within the window. Requested shares are locked and bear losses; a
cooldown change is not retroactive; a new request replaces the old one."""

import boa

from keeper.units import WAD
from tests.unitary.insurance_fund.conftest import DAY, events, now, warp


def test_request_withdraw__records_request(env, depositor):
    shares = env.deposit(depositor, env.units(100))
    env.fund.request_withdraw(shares // 2, sender=depositor)
    (log,) = events(env.fund, "WithdrawRequested")
    unlock = now() + env.fund.cooldown()
    expiry = unlock + env.fund.withdraw_window()
    assert env.fund.withdraw_request(depositor) == (shares // 2, unlock, expiry)
    assert (log.owner, log.shares, log.unlock_time, log.expiry_time) == (
        depositor,
        shares // 2,
        unlock,
        expiry,
    )
    assert env.fund.locked_shares(depositor) == shares // 2


def test_request_withdraw__zero_shares__reverts(env, depositor):
    env.deposit(depositor, env.units(100))
    with boa.reverts("insurance: zero shares"):
        env.fund.request_withdraw(0, sender=depositor)


def test_request_withdraw__above_balance__reverts(env, depositor):
    shares = env.deposit(depositor, env.units(100))
    with boa.reverts("insurance: shares above balance"):
        env.fund.request_withdraw(shares + 1, sender=depositor)


def test_redeem__no_request__reverts(env, depositor):
    shares = env.deposit(depositor, env.units(100))
    with boa.reverts("insurance: no withdraw request"):
        env.fund.redeem(shares, depositor, depositor, sender=depositor)
    with boa.reverts("insurance: no withdraw request"):
        env.fund.withdraw(env.units(1), depositor, depositor, sender=depositor)


def test_redeem__cooldown_not_over__reverts(env, depositor):
    shares = env.deposit(depositor, env.units(100))
    env.fund.request_withdraw(shares, sender=depositor)
    warp(env.fund.cooldown() - 1)
    with boa.reverts("insurance: cooldown not over"):
        env.fund.redeem(shares, depositor, depositor, sender=depositor)
    with boa.reverts("insurance: cooldown not over"):
        env.fund.withdraw(env.units(1), depositor, depositor, sender=depositor)
    warp(1)
    assert env.fund.redeem(shares, depositor, depositor, sender=depositor) == env.units(100)


def test_redeem__window_expired__reverts(env, depositor):
    shares = env.deposit(depositor, env.units(100))
    env.fund.request_withdraw(shares, sender=depositor)
    warp(env.fund.cooldown() + env.fund.withdraw_window() + 1)
    with boa.reverts("insurance: withdraw window expired"):
        env.fund.redeem(shares, depositor, depositor, sender=depositor)
    with boa.reverts("insurance: withdraw window expired"):
        env.fund.withdraw(env.units(1), depositor, depositor, sender=depositor)


def test_redeem__last_second_of_window__succeeds(env, depositor):
    shares = env.deposit(depositor, env.units(100))
    env.fund.request_withdraw(shares, sender=depositor)
    warp(env.fund.cooldown() + env.fund.withdraw_window())
    assert env.fund.redeem(shares, depositor, depositor, sender=depositor) == env.units(100)


def test_redeem__above_requested_shares__reverts(env, depositor):
    shares = env.deposit(depositor, env.units(100))
    env.request_and_wait(depositor, shares // 2)
    with boa.reverts("insurance: above requested shares"):
        env.fund.redeem(shares // 2 + 1, depositor, depositor, sender=depositor)
    with boa.reverts("insurance: above requested shares"):
        env.fund.withdraw(env.units(51), depositor, depositor, sender=depositor)


def test_redeem__partial__reduces_request(env, depositor):
    shares = env.deposit(depositor, env.units(100))
    env.request_and_wait(depositor, shares // 2)
    unlock, expiry = env.fund.withdraw_request(depositor)[1:]
    env.fund.redeem(shares // 8, depositor, depositor, sender=depositor)
    assert env.fund.withdraw_request(depositor) == (shares // 2 - shares // 8, unlock, expiry)
    burned = env.fund.withdraw(env.units(10), depositor, depositor, sender=depositor)
    assert env.fund.withdraw_request(depositor)[0] == shares // 2 - shares // 8 - burned


def test_request_withdraw__second_request_replaces_first(env, depositor):
    shares = env.deposit(depositor, env.units(100))
    env.fund.request_withdraw(shares, sender=depositor)
    warp(DAY)
    env.fund.request_withdraw(shares // 4, sender=depositor)
    assert env.fund.withdraw_request(depositor) == (
        shares // 4,
        now() + env.fund.cooldown(),
        now() + env.fund.cooldown() + env.fund.withdraw_window(),
    )
    # the first request's window no longer applies
    warp(env.fund.cooldown() - DAY)
    with boa.reverts("insurance: cooldown not over"):
        env.fund.redeem(shares // 4, depositor, depositor, sender=depositor)
    warp(DAY)
    with boa.reverts("insurance: above requested shares"):
        env.fund.redeem(shares // 4 + 1, depositor, depositor, sender=depositor)
    env.fund.redeem(shares // 4, depositor, depositor, sender=depositor)


def test_set_params__shorter_cooldown__not_retroactive(env, depositor):
    shares = env.deposit(depositor, env.units(100))
    env.fund.request_withdraw(shares // 2, sender=depositor)
    unlock = env.fund.withdraw_request(depositor)[1]
    env.fund.set_params(WAD // 2, DAY, env.fund.withdraw_window(), sender=env.owner)
    warp(DAY)
    with boa.reverts("insurance: cooldown not over"):
        env.fund.redeem(shares // 2, depositor, depositor, sender=depositor)
    assert env.fund.withdraw_request(depositor)[1] == unlock
    # a new request gets the new cooldown
    env.fund.request_withdraw(shares // 2, sender=depositor)
    warp(DAY)
    env.fund.redeem(shares // 2, depositor, depositor, sender=depositor)


def test_set_params__longer_cooldown__not_retroactive(env, depositor):
    shares = env.deposit(depositor, env.units(100))
    env.fund.request_withdraw(shares, sender=depositor)
    env.fund.set_params(WAD // 2, 30 * DAY, 30 * DAY, sender=env.owner)
    warp(7 * DAY)
    env.fund.redeem(shares, depositor, depositor, sender=depositor)


def test_cancel_withdraw_request__clears_and_unlocks(env, depositor):
    shares = env.deposit(depositor, env.units(100))
    env.fund.request_withdraw(shares, sender=depositor)
    env.fund.cancel_withdraw_request(sender=depositor)
    (log,) = events(env.fund, "WithdrawRequested")
    assert env.fund.withdraw_request(depositor) == (0, 0, 0)
    assert (log.owner, log.shares, log.unlock_time, log.expiry_time) == (depositor, 0, 0, 0)
    receiver = env.actor("receiver")
    env.fund.transfer(receiver, shares, sender=depositor)
    assert env.fund.balanceOf(receiver) == shares


def test_cancel_withdraw_request__no_request__reverts(env, depositor):
    with boa.reverts("insurance: no withdraw request"):
        env.fund.cancel_withdraw_request(sender=depositor)


def test_transfer__locked_shares__reverts(env, depositor):
    shares = env.deposit(depositor, env.units(100))
    receiver = env.actor("receiver")
    env.fund.request_withdraw(shares // 2, sender=depositor)
    with boa.reverts("insurance: shares locked by withdraw request"):
        env.fund.transfer(receiver, shares // 2 + 1, sender=depositor)
    # the unrequested part moves freely
    assert env.fund.transfer(receiver, shares - shares // 2, sender=depositor)
    with boa.reverts("insurance: shares locked by withdraw request"):
        env.fund.transfer(receiver, 1, sender=depositor)
    # still locked in the window
    warp(env.fund.cooldown())
    with boa.reverts("insurance: shares locked by withdraw request"):
        env.fund.transfer(receiver, 1, sender=depositor)


def test_transfer_from__locked_shares__reverts(env, depositor):
    shares = env.deposit(depositor, env.units(100))
    spender = env.actor("spender")
    env.fund.approve(spender, shares, sender=depositor)
    env.fund.request_withdraw(shares, sender=depositor)
    with boa.reverts("insurance: shares locked by withdraw request"):
        env.fund.transferFrom(depositor, spender, 1, sender=spender)
    assert env.fund.allowance(depositor, spender) == shares


def test_transfer__above_balance__erc20_reason(env, depositor):
    shares = env.deposit(depositor, env.units(100))
    env.fund.request_withdraw(shares, sender=depositor)
    with boa.reverts("erc20: transfer amount exceeds balance"):
        env.fund.transfer(env.actor("receiver"), shares + 1, sender=depositor)


def test_transfer__request_expired__unlocked(env, depositor):
    shares = env.deposit(depositor, env.units(100))
    receiver = env.actor("receiver")
    env.fund.request_withdraw(shares, sender=depositor)
    warp(env.fund.cooldown() + env.fund.withdraw_window() + 1)
    assert env.fund.locked_shares(depositor) == 0
    env.fund.transfer(receiver, shares, sender=depositor)
    assert env.fund.balanceOf(receiver) == shares


def test_transfer_from__unlocked__spends_allowance(env, depositor):
    shares = env.deposit(depositor, env.units(100))
    spender = env.actor("spender")
    env.fund.approve(spender, shares, sender=depositor)
    env.fund.transferFrom(depositor, spender, shares // 3, sender=spender)
    assert env.fund.balanceOf(spender) == shares // 3
    assert env.fund.allowance(depositor, spender) == shares - shares // 3
    with boa.reverts("erc20: insufficient allowance"):
        env.fund.transferFrom(depositor, spender, shares, sender=spender)


def test_request_withdraw__zero_cooldown__redeem_at_once(env, depositor):
    env.fund.set_params(WAD // 2, 0, 3_600, sender=env.owner)
    shares = env.deposit(depositor, env.units(100))
    env.fund.request_withdraw(shares, sender=depositor)
    assert env.fund.redeem(shares, depositor, depositor, sender=depositor) == env.units(100)
