"""cover: the clearinghouse's bad-debt call. It books the inflow the
clearinghouse pushed first, pays min(deficit, payout_cap x assets) to the
clearinghouse, never calls back into it, and every shareholder (requested
shares included) bears the loss."""

import boa

from keeper.units import WAD
from tests.unitary.insurance_fund.conftest import PAYOUT_CAP, events


def test_cover__not_clearinghouse__reverts(env, depositor, attacker):
    env.deposit(depositor, env.units(1_000))
    with boa.reverts("insurance: not clearinghouse"):
        env.fund.cover(7, 0, env.units(10), sender=attacker)
    with boa.reverts("insurance: not clearinghouse"):
        env.fund.cover(7, 0, env.units(10), sender=env.owner)


def test_cover__no_clearinghouse_set__reverts(env):
    fund = env.backend.deploy("InsuranceFund", env.token.address, "n", "s", PAYOUT_CAP, 0, 3_600)
    with boa.reverts("insurance: not clearinghouse"):
        fund.cover(7, 0, 1, sender=env.ch.address)


def test_cover__deficit_below_cap__pays_deficit(env, depositor):
    env.deposit(depositor, env.units(1_000))
    ch_before = env.token.balanceOf(env.ch.address)
    paid = env.cover(0, env.units(300))
    (log,) = events(env.fund, "Covered")
    assert paid == env.units(300)
    assert env.token.balanceOf(env.ch.address) - ch_before == paid
    assert env.fund.total_assets_stored() == env.units(700)
    assert env.token.balanceOf(env.fund.address) == env.units(700)
    assert (log.account, log.inflow, log.deficit, log.paid, log.total_assets) == (
        7,
        0,
        env.units(300),
        env.units(300),
        env.units(700),
    )


def test_cover__payout_cap_reached__pays_cap(env, depositor):
    env.deposit(depositor, env.units(1_000))
    paid = env.cover(0, env.units(800))
    (log,) = events(env.fund, "Covered")
    assert paid == env.units(1_000) * PAYOUT_CAP // WAD
    assert paid == env.units(500)
    assert env.fund.total_assets_stored() == env.units(500)
    assert (log.deficit, log.paid) == (env.units(800), env.units(500))


def test_cover__inflow__booked_before_cap(env, depositor):
    env.deposit(depositor, env.units(1_000))
    paid = env.cover(env.units(100), env.units(800))
    assert paid == env.units(550)
    assert env.fund.total_assets_stored() == env.units(550)
    assert env.token.balanceOf(env.fund.address) == env.units(550)


def test_cover__inflow_only__books_it(env, depositor):
    env.deposit(depositor, env.units(1_000))
    assert env.cover(env.units(40), 0) == 0
    (log,) = events(env.fund, "Covered")
    assert env.fund.total_assets_stored() == env.units(1_040)
    assert (log.inflow, log.paid, log.total_assets) == (env.units(40), 0, env.units(1_040))


def test_cover__inflow_not_received__reverts(env, depositor):
    env.deposit(depositor, env.units(1_000))
    with boa.reverts("insurance: inflow not received"):
        env.fund.cover(7, env.units(1), env.units(10), sender=env.ch.address)


def test_cover__partial_inflow__reverts(env, depositor):
    env.deposit(depositor, env.units(1_000))
    env.token.mint(env.fund.address, env.units(1) - 1, sender=env.owner)
    with boa.reverts("insurance: inflow not received"):
        env.fund.cover(7, env.units(1), env.units(10), sender=env.ch.address)


def test_cover__cap_rounds_down(env, depositor):
    env.deposit(depositor, 3)
    env.fund.set_params(WAD // 2, env.fund.cooldown(), env.fund.withdraw_window(), sender=env.owner)
    assert env.cover(0, 10) == 1


def test_cover__empty_fund__pays_nothing(env):
    assert env.cover(0, env.units(10)) == 0
    assert env.token.balanceOf(env.fund.address) == 0


def test_cover__does_not_call_clearinghouse(env, depositor):
    """Pending clearinghouse cash is not collected by cover (the
    clearinghouse holds its lock during the call): the cap is on the booked
    assets only, and the clearinghouse's cash is untouched."""
    env.deposit(depositor, env.units(1_000))
    env.credit_fund_cash(env.units(200))
    account = env.ch.insurance_account()
    cash = env.ch.cash(account)
    paid = env.cover(0, env.units(900))
    assert paid == env.units(500)
    assert env.ch.cash(account) == cash
    assert events(env.fund, "Collected") == []


def test_cover__requested_shares_bear_the_loss(env, depositor, victim):
    shares = env.deposit(depositor, env.units(1_000))
    env.deposit(victim, env.units(1_000))
    # the depositor sees bad debt coming and asks to leave
    env.fund.request_withdraw(shares, sender=depositor)
    value_before = env.fund.convertToAssets(shares)
    env.cover(0, env.units(400))
    assert env.fund.convertToAssets(shares) < value_before
    boa.env.time_travel(seconds=env.fund.cooldown())
    paid = env.fund.redeem(shares, depositor, depositor, sender=depositor)
    # half the loss, like every other shareholder
    assert env.units(800) - 1 <= paid <= env.units(800)
    assert env.fund.convertToAssets(env.fund.balanceOf(victim)) >= env.units(800) - 1


def test_cover__caller_gets_paid_and_total_matches_balance(env, depositor):
    env.deposit(depositor, env.units(1_000))
    env.cover(env.units(3), env.units(2))
    env.cover(0, env.units(1_000))
    assert env.token.balanceOf(env.fund.address) == env.fund.total_assets_stored()
