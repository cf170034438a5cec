"""Withdrawals wait while the index of any listed market is invalid
(PROTOCOL.md §11.0): a loss can then be visible but not booked (liquidations
wait too), so maxWithdraw and maxRedeem are 0, withdraw and redeem revert
"insurance: index invalid, withdrawals wait"; previews and deposits are
unchanged. On the full protocol (BTC-PERP and ETH-PERP, 3 reporters each,
quorum 2, max_age 60 s)."""

import boa
import pytest

from tests.utils.protocol import MAX_UINT

WAIT = "insurance: index invalid, withdrawals wait"
PRICES = {"BTC-PERP": 100_000, "ETH-PERP": 4_000}


def _report_all(p, skip: str | None = None) -> None:
    """Every reporter of every market (but `skip`) reports its price now."""
    for symbol, price in PRICES.items():
        if symbol != skip:
            p.set_index(price, symbol)


@pytest.fixture
def holder(protocol):
    """A fund holder of $10,000 whose request's window is open, every index fresh."""
    p = protocol
    who = p.actor("holder")
    p.fund_insurance(10_000, who)
    p.insurance.request_withdraw(p.insurance.balanceOf(who), sender=who)
    p.warp(p.insurance.cooldown())
    _report_all(p)
    return who


def _can_exit(p, who) -> bool:
    """The max views are open and the whole request redeems (in an anchor: nothing is kept)."""
    shares = p.insurance.withdraw_request(who)[0]
    if p.insurance.maxRedeem(who) != shares or p.insurance.maxWithdraw(who) == 0:
        return False
    with boa.env.anchor():
        return p.insurance.redeem(shares, who, who, sender=who) > 0


def _assert_waits(p, who) -> None:
    shares = p.insurance.withdraw_request(who)[0]
    assert p.insurance.withdrawals_wait()
    assert p.insurance.maxRedeem(who) == 0
    assert p.insurance.maxWithdraw(who) == 0
    with boa.reverts(WAIT):
        p.insurance.redeem(shares, who, who, sender=who)
    with boa.reverts(WAIT):
        p.insurance.withdraw(p.units(1), who, who, sender=who)


def test_redeem__every_index_valid__pays(protocol, holder):
    p = protocol
    assert not p.insurance.withdrawals_wait()
    assert _can_exit(p, holder)
    assert p.insurance.redeem(p.insurance.maxRedeem(holder), holder, holder, sender=holder) == p.units(10_000)


def test_redeem__one_market_stale__waits_then_recovers(protocol, holder):
    p = protocol
    p.warp(p.oracle("ETH-PERP").max_age() + 1)
    _report_all(p, skip="ETH-PERP")
    assert p.oracle("BTC-PERP").index_status()[0] and not p.oracle("ETH-PERP").index_status()[0]
    _assert_waits(p, holder)
    _report_all(p)
    assert not p.insurance.withdrawals_wait()
    assert _can_exit(p, holder)


def test_redeem__stale_boundary__fresh_at_max_age_waits_one_second_later(protocol, holder):
    p = protocol
    max_age = p.oracle("ETH-PERP").max_age()
    assert p.oracle("BTC-PERP").max_age() == max_age
    p.warp(max_age)
    assert _can_exit(p, holder)
    p.warp(1)
    _assert_waits(p, holder)


def test_redeem__below_quorum__waits(protocol, holder):
    p = protocol
    md = p.d.markets["BTC-PERP"]
    assert md.oracle.quorum() == 2
    p.warp(md.oracle.max_age() + 1)
    _report_all(p, skip="BTC-PERP")
    md.oracle.report(100_000 * 10**18, boa.env.evm.patch.timestamp, sender=md.reporters[0])
    assert md.oracle.index_status()[2] == 1
    _assert_waits(p, holder)


def test_redeem__index_held_by_the_guard__waits_until_confirmed(protocol, holder):
    p = protocol
    p.set_index(60_000, confirm=False)  # -40%: beyond max_divergence from the reference
    valid, median, fresh = p.oracle().index_status()
    assert not valid and median == 60_000 * 10**18 and fresh == 3
    _assert_waits(p, holder)
    p.oracle().reset_reference(sender=p.owner)
    assert _can_exit(p, holder)


def test_redeem__guard_caught_up__no_longer_waits(protocol, holder):
    """The reference follows the reports at a bounded speed: once it is within
    max_divergence of the median, withdrawals go on without the owner."""
    p = protocol
    p.set_index(60_000, confirm=False)
    for _ in range(240):  # reports every 30 s for at most 2 h
        if p.oracle().index_status()[0]:
            break
        _assert_waits(p, holder)
        p.warp(30)
        p.set_index(60_000, confirm=False)
        p.set_index(PRICES["ETH-PERP"], "ETH-PERP")
    assert p.oracle().index_status()[0]
    assert _can_exit(p, holder)


def _previews(p, shares) -> tuple[int, int, int]:
    return (
        p.insurance.previewRedeem(shares),
        p.insurance.previewWithdraw(p.units(1)),
        p.insurance.totalAssets(),
    )


def test_previews_and_deposit__index_invalid__unchanged(protocol, holder):
    p = protocol
    shares = p.insurance.withdraw_request(holder)[0]
    before = _previews(p, shares)
    p.set_index(60_000, confirm=False)
    assert p.insurance.withdrawals_wait()
    assert _previews(p, shares) == before
    assert p.insurance.maxDeposit(holder) == MAX_UINT and p.insurance.maxMint(holder) == MAX_UINT
    depositor = p.actor("depositor")
    p.fund_insurance(1_000, depositor)
    assert p.insurance.balanceOf(depositor) > 0
