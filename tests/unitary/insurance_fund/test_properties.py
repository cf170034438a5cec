"""Property: whatever the share price (inflows, donations, covered losses),
a deposit (or mint) followed by a redeem (or withdraw) of everything it
bought never returns more than was put in, and the booked assets never
exceed the token balance."""

import boa
import pytest
from hypothesis import given
from hypothesis import strategies as st

AMOUNT = st.integers(min_value=0, max_value=10**30)


@pytest.fixture(scope="module", params=[6, 18], ids=["usdc6", "token18"])
def prop_env(request):
    # the session deployment; every hypothesis example runs in its own anchor
    return request.getfixturevalue(f"_fund_env_{request.param}")


@given(
    seed_assets=AMOUNT,
    inflow=AMOUNT,
    donation=AMOUNT,
    loss=AMOUNT,
    assets=st.integers(min_value=1, max_value=10**30),
    mint_instead=st.booleans(),
    withdraw_instead=st.booleans(),
)
def test_deposit_redeem__round_trip__never_returns_more(
    prop_env, seed_assets, inflow, donation, loss, assets, mint_instead, withdraw_instead
):
    env = prop_env
    with boa.env.anchor():
        seeder = env.actor("seeder")
        depositor = env.actor("depositor")
        env.token.mint(seeder, seed_assets + inflow + donation + 1, sender=env.owner)
        env.token.mint(depositor, 2 * assets + 1, sender=env.owner)
        if seed_assets:
            env.deposit(seeder, seed_assets)
        if inflow:
            env.ch.deposit(0, inflow, env.fund.address, sender=seeder)
        if donation:
            env.donate(seeder, donation)
            env.fund.skim()
        if loss:
            env.cover(0, loss)

        shares = env.fund.previewDeposit(assets)
        if shares == 0:
            with boa.reverts("insurance: zero shares"):
                env.deposit(depositor, assets)
            return
        if mint_instead:
            paid = env.fund.mint(shares, depositor, sender=depositor)
            assert paid <= assets
        else:
            paid = assets
            assert env.deposit(depositor, assets) == shares

        env.request_and_wait(depositor, shares)
        if withdraw_instead:
            got = env.fund.maxWithdraw(depositor)
            if got == 0:
                return
            assert env.fund.withdraw(got, depositor, depositor, sender=depositor) <= shares
        else:
            if env.fund.maxRedeem(depositor) == 0:
                return
            got = env.fund.redeem(shares, depositor, depositor, sender=depositor)
        assert got <= paid
        assert env.fund.total_assets_stored() <= env.token.balanceOf(env.fund.address)
