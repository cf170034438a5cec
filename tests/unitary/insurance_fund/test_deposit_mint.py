"""deposit and mint: shares rounded down, assets rounded up (in favour of the
vault), previews equal to what the call does, events."""

import boa

from tests.unitary.insurance_fund.conftest import MAX_UINT, ZERO_ADDRESS, events, to_assets, to_shares


def _odd_price(env, depositor):
    """A share price that is not a round number: a deposit, then a skimmed
    donation of a third of it."""
    env.deposit(depositor, env.units(1_000))
    env.donate(depositor, env.units(1_000) // 3)
    env.fund.skim()


def test_deposit__first_deposit__shares_at_offset(env, depositor):
    assets = env.units(1_000)
    shares = env.deposit(depositor, assets)
    assert shares == assets * 10**6
    assert env.fund.balanceOf(depositor) == shares
    assert env.fund.totalSupply() == shares
    assert env.fund.total_assets_stored() == assets
    assert env.token.balanceOf(env.fund.address) == assets


def test_deposit__shares_rounded_down__matches_preview(env, depositor):
    _odd_price(env, depositor)
    supply, total = env.supply_total()
    assets = env.units(777) + 1
    preview = env.fund.previewDeposit(assets)
    assert preview == to_shares(assets, supply, total, roundup=False)
    assert env.fund.convertToShares(assets) == preview
    shares = env.deposit(depositor, assets)
    assert shares == preview
    # never worth more than what was paid
    assert env.fund.convertToAssets(shares) <= assets


def test_deposit__logs_deposit(env, depositor):
    receiver = env.actor("receiver")
    shares = env.fund.deposit(env.units(5), receiver, sender=depositor)
    (log,) = events(env.fund, "Deposit")
    assert (log.sender, log.owner, log.assets, log.shares) == (depositor, receiver, env.units(5), shares)
    assert env.fund.balanceOf(receiver) == shares
    assert env.fund.balanceOf(depositor) == 0


def test_deposit__zero_shares__reverts(env, depositor):
    _odd_price(env, depositor)
    with boa.reverts("insurance: zero shares"):
        env.deposit(depositor, 0)


def test_deposit__zero_receiver__reverts(env, depositor):
    with boa.reverts("insurance: zero address"):
        env.fund.deposit(env.units(1), ZERO_ADDRESS, sender=depositor)


def test_deposit__without_approval__reverts(env):
    poor = boa.env.generate_address("poor")
    env.token.mint(poor, env.units(10), sender=env.owner)
    with boa.reverts():
        env.fund.deposit(env.units(10), poor, sender=poor)


def test_mint__assets_rounded_up__matches_preview(env, depositor):
    _odd_price(env, depositor)
    supply, total = env.supply_total()
    shares = 10**6 * env.units(3) + 12_345
    preview = env.fund.previewMint(shares)
    assert preview == to_assets(shares, supply, total, roundup=True)
    before = env.token.balanceOf(depositor)
    assets = env.fund.mint(shares, depositor, sender=depositor)
    assert assets == preview
    assert before - env.token.balanceOf(depositor) == assets
    # the shares minted are never worth more than what was paid
    assert env.fund.convertToAssets(shares) <= assets


def test_mint__one_share__costs_at_least_one_unit(env, depositor):
    _odd_price(env, depositor)
    assert env.fund.mint(1, depositor, sender=depositor) >= 1


def test_mint__logs_deposit(env, depositor):
    shares = 10**6 * env.units(2)
    assets = env.fund.mint(shares, depositor, sender=depositor)
    (log,) = events(env.fund, "Deposit")
    assert (log.sender, log.owner, log.assets, log.shares) == (depositor, depositor, assets, shares)


def test_mint__zero_shares__reverts(env, depositor):
    with boa.reverts("insurance: zero shares"):
        env.fund.mint(0, depositor, sender=depositor)


def test_max_deposit_and_mint__unlimited(env, depositor):
    assert env.fund.maxDeposit(depositor) == MAX_UINT
    assert env.fund.maxMint(depositor) == MAX_UINT


def test_convert__round_trip_never_gains(env, depositor):
    _odd_price(env, depositor)
    for assets in (1, 7, env.units(1), env.units(123) + 5):
        shares = env.fund.convertToShares(assets)
        assert env.fund.convertToAssets(shares) <= assets
