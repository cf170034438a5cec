"""First-depositor inflation attack and skim: assets tracked in storage keep
donations from moving the share price; once skimmed, the virtual shares make
the attack a loss for the attacker."""

from tests.unitary.insurance_fund.conftest import events, to_assets, to_shares


def test_inflation_attack__donation_not_booked__victim_gets_fair_shares(env, attacker, victim):
    env.deposit(attacker, 1)
    donation = env.units(100_000)
    env.donate(attacker, donation)
    # the donation does not move the share price
    assert env.fund.totalAssets() == 1
    assert env.fund.convertToAssets(10**6) == 1
    deposit = env.units(1_000)
    shares = env.deposit(victim, deposit)
    assert shares == deposit * 10**6
    assert env.fund.convertToAssets(shares) == deposit


def test_inflation_attack__donation_skimmed__attacker_loses(env, attacker, victim):
    spent = 1 + env.units(10_000)
    env.deposit(attacker, 1)
    env.donate(attacker, spent - 1)
    env.fund.skim()
    supply, total = env.supply_total()
    deposit = env.units(1_000)
    shares = env.deposit(victim, deposit)
    assert shares == to_shares(deposit, supply, total)
    assert shares > 0
    # the victim loses at most one share's worth of rounding: < 10**-5 of its deposit
    victim_value = env.fund.convertToAssets(shares)
    assert deposit - victim_value <= deposit // 100_000
    # the attacker does not profit: about half of its donation went to the
    # virtual shares, far more than the victim's rounding loss
    env.request_and_wait(attacker)
    got = env.fund.redeem(env.fund.balanceOf(attacker), attacker, attacker, sender=attacker)
    assert got < spent
    assert spent - got > spent // 3
    assert spent - got > 1_000 * (deposit - victim_value)
    # and the victim, redeeming after it, is still whole up to that rounding
    env.request_and_wait(victim)
    assert env.fund.redeem(shares, victim, victim, sender=victim) >= deposit - deposit // 100_000


def test_inflation_attack__donation_before_any_deposit__victim_keeps_deposit(env, attacker, victim):
    env.donate(attacker, env.units(10_000))
    env.fund.skim()
    deposit = env.units(1_000)
    shares = env.deposit(victim, deposit)
    assert shares > 0
    assert env.fund.convertToAssets(shares) >= deposit - deposit // 100_000


def test_skim__books_tokens_above_stored(env, depositor):
    env.deposit(depositor, env.units(1_000))
    donor = env.actor("donor", 100)
    env.donate(donor, env.units(100))
    assert env.fund.totalAssets() == env.units(1_000)
    supply, _ = env.supply_total()
    anyone = env.actor("anyone")
    assert env.fund.skim(sender=anyone) == env.units(100)
    (log,) = events(env.fund, "Skimmed")
    assert (log.amount, log.total_assets) == (env.units(100), env.units(1_100))
    assert env.fund.total_assets_stored() == env.units(1_100)
    assert env.fund.totalAssets() == env.units(1_100)
    # a donation to the shareholders
    assert env.fund.convertToAssets(supply) == to_assets(supply, supply, env.units(1_100))
    assert env.fund.convertToAssets(supply) > env.units(1_099)


def test_skim__nothing_to_book__returns_zero(env, depositor):
    env.deposit(depositor, env.units(1_000))
    assert env.fund.skim() == 0
    assert events(env.fund, "Skimmed") == []
    assert env.fund.total_assets_stored() == env.units(1_000)


def test_skim__pending_clearinghouse_cash__not_skimmed(env, depositor):
    env.deposit(depositor, env.units(1_000))
    env.credit_fund_cash(env.units(50))
    assert env.fund.skim() == 0
    assert env.fund.totalAssets() == env.units(1_050)
