"""withdraw and redeem: shares rounded up, assets rounded down (in favour of
the vault), previews equal to what the call does, allowance, max views."""

import boa

from tests.unitary.insurance_fund.conftest import ZERO_ADDRESS, events, to_assets, to_shares, warp


def _funded(env, depositor, tokens=1_000):
    """A deposit, then a skimmed donation so the share price is not round."""
    shares = env.deposit(depositor, env.units(tokens))
    env.donate(depositor, env.units(tokens) // 3)
    env.fund.skim()
    return shares


def test_redeem__assets_rounded_down__matches_preview(env, depositor):
    shares = _funded(env, depositor)
    env.request_and_wait(depositor)
    part = shares // 3 + 1
    supply, total = env.supply_total()
    preview = env.fund.previewRedeem(part)
    assert preview == to_assets(part, supply, total, roundup=False)
    before = env.token.balanceOf(depositor)
    assets = env.fund.redeem(part, depositor, depositor, sender=depositor)
    assert assets == preview
    assert env.token.balanceOf(depositor) - before == assets
    assert env.fund.balanceOf(depositor) == shares - part
    assert env.fund.total_assets_stored() == total - assets


def test_redeem__logs_withdraw(env, depositor):
    shares = _funded(env, depositor)
    env.request_and_wait(depositor)
    receiver = env.actor("receiver")
    assets = env.fund.redeem(shares, receiver, depositor, sender=depositor)
    (log,) = events(env.fund, "Withdraw")
    assert (log.sender, log.receiver, log.owner, log.assets, log.shares) == (
        depositor,
        receiver,
        depositor,
        assets,
        shares,
    )
    assert env.token.balanceOf(receiver) == assets


def test_redeem__all_shares__leaves_at_most_dust(env, depositor):
    shares = _funded(env, depositor)
    env.request_and_wait(depositor)
    paid = env.fund.redeem(shares, depositor, depositor, sender=depositor)
    assert env.fund.totalSupply() == 0
    # the virtual shares keep their part: at most 10**-6 of the assets, rounded
    assert env.fund.total_assets_stored() == env.units(1_000) + env.units(1_000) // 3 - paid
    assert env.fund.total_assets_stored() <= paid // 10**6 + 1
    assert env.token.balanceOf(env.fund.address) == env.fund.total_assets_stored()


def test_redeem__worth_less_than_one_unit__reverts(env, depositor):
    _funded(env, depositor)
    env.request_and_wait(depositor)
    with boa.reverts("insurance: zero assets"):
        env.fund.redeem(1, depositor, depositor, sender=depositor)


def test_withdraw__shares_rounded_up__matches_preview(env, depositor):
    shares = _funded(env, depositor)
    env.request_and_wait(depositor)
    assets = env.units(333) + 7
    supply, total = env.supply_total()
    preview = env.fund.previewWithdraw(assets)
    assert preview == to_shares(assets, supply, total, roundup=True)
    before = env.token.balanceOf(depositor)
    burned = env.fund.withdraw(assets, depositor, depositor, sender=depositor)
    assert burned == preview
    assert env.token.balanceOf(depositor) - before == assets
    assert env.fund.balanceOf(depositor) == shares - burned
    # the shares burned were worth at least what was paid
    assert to_assets(burned, supply, total) >= assets


def test_withdraw__logs_withdraw(env, depositor):
    _funded(env, depositor)
    env.request_and_wait(depositor)
    shares = env.fund.withdraw(env.units(10), depositor, depositor, sender=depositor)
    (log,) = events(env.fund, "Withdraw")
    assert (log.owner, log.assets, log.shares) == (depositor, env.units(10), shares)


def test_withdraw__zero_assets__reverts(env, depositor):
    _funded(env, depositor)
    env.request_and_wait(depositor)
    with boa.reverts("insurance: zero assets"):
        env.fund.withdraw(0, depositor, depositor, sender=depositor)


def test_withdraw__zero_receiver__reverts(env, depositor):
    _funded(env, depositor)
    env.request_and_wait(depositor)
    with boa.reverts("insurance: zero address"):
        env.fund.withdraw(env.units(1), ZERO_ADDRESS, depositor, sender=depositor)


def test_withdraw__more_than_owned__reverts(env, depositor):
    _funded(env, depositor)
    env.request_and_wait(depositor)
    with boa.reverts("insurance: above requested shares"):
        env.fund.withdraw(env.units(2_000), depositor, depositor, sender=depositor)


def test_redeem__other_caller_without_allowance__reverts(env, depositor):
    shares = _funded(env, depositor)
    env.request_and_wait(depositor)
    operator = env.actor("operator")
    with boa.reverts("erc20: insufficient allowance"):
        env.fund.redeem(shares, operator, depositor, sender=operator)


def test_redeem__other_caller_with_allowance__spends_it(env, depositor):
    shares = _funded(env, depositor)
    env.request_and_wait(depositor)
    operator = env.actor("operator")
    env.fund.approve(operator, shares, sender=depositor)
    assets = env.fund.redeem(shares // 2, operator, depositor, sender=operator)
    assert env.token.balanceOf(operator) == assets
    assert env.fund.allowance(depositor, operator) == shares - shares // 2
    assert env.fund.balanceOf(depositor) == shares - shares // 2


def test_withdraw__other_caller_with_allowance__spends_it(env, depositor):
    shares = _funded(env, depositor)
    env.request_and_wait(depositor)
    operator = env.actor("operator")
    env.fund.approve(operator, shares, sender=depositor)
    burned = env.fund.withdraw(env.units(100), operator, depositor, sender=operator)
    assert env.token.balanceOf(operator) == env.units(100)
    assert env.fund.allowance(depositor, operator) == shares - burned


def test_max_redeem__in_window__min_of_request_and_balance(env, depositor):
    shares = _funded(env, depositor)
    env.fund.request_withdraw(shares // 2, sender=depositor)
    assert env.fund.maxRedeem(depositor) == 0
    assert env.fund.maxWithdraw(depositor) == 0
    warp(env.fund.cooldown())
    assert env.fund.maxRedeem(depositor) == shares // 2
    supply, total = env.supply_total()
    assert env.fund.maxWithdraw(depositor) == to_assets(shares // 2, supply, total)
    # max views are redeemable exactly
    assert env.fund.previewWithdraw(env.fund.maxWithdraw(depositor)) <= env.fund.maxRedeem(depositor)
    env.fund.withdraw(env.fund.maxWithdraw(depositor), depositor, depositor, sender=depositor)
    warp(env.fund.withdraw_window() + 1)
    assert env.fund.maxRedeem(depositor) == 0
    assert env.fund.maxWithdraw(depositor) == 0


def test_max_redeem__dust_request__zero(env, depositor):
    _funded(env, depositor)
    env.request_and_wait(depositor, 1)
    assert env.fund.maxRedeem(depositor) == 0


def test_max_redeem__no_request__zero(env, depositor):
    _funded(env, depositor)
    assert env.fund.maxRedeem(depositor) == 0
    assert env.fund.maxWithdraw(depositor) == 0


def test_redeem__full_request__clears_it(env, depositor):
    shares = _funded(env, depositor)
    env.request_and_wait(depositor, shares // 2)
    env.fund.redeem(shares // 2, depositor, depositor, sender=depositor)
    assert env.fund.withdraw_request(depositor) == (0, 0, 0)
    assert env.fund.locked_shares(depositor) == 0
    with boa.reverts("insurance: no withdraw request"):
        env.fund.redeem(1, depositor, depositor, sender=depositor)
