"""hold and release (PROTOCOL.md §11.0): anyone may put a hold on a
clearinghouse account whose equity is below zero at a valid index (a loss
visible but not booked); while any hold is active, maxWithdraw and maxRedeem
are 0 and withdraw and redeem revert "insurance: account on hold, withdrawals
wait". Anyone releases a hold once the account's equity is >= 0 (liquidated
and settled, or the price came back). On the full protocol (BTC-PERP: IM 10%,
MM 6.5%, no fees)."""

import boa
import pytest

from tests.e2e.replay_helpers import open_position
from tests.unitary.insurance_fund.conftest import events
from tests.utils.protocol import GTC

WAIT = "insurance: account on hold, withdrawals wait"


@pytest.fixture
def bankrupt(protocol):
    """(holder, maker, trader): a fund holder of $100,000 in its window; the
    trader, 1 BTC long at 100,000 on $12,000, is below zero after a confirmed
    crash to 85,000 (equity about -$3,000), not yet liquidated."""
    p = protocol
    holder = p.actor("holder")
    p.fund_insurance(100_000, holder)
    p.insurance.request_withdraw(p.insurance.balanceOf(holder), sender=holder)
    p.warp(p.insurance.cooldown())
    p.set_index(4_000, "ETH-PERP")
    p.set_index(100_000)
    maker = p.actor("maker", 1_000_000)
    trader = p.actor("trader", 12_000)
    open_position(p, trader, maker, "buy", "1", 100_000)
    p.set_index(85_000)
    p.set_index(4_000, "ETH-PERP")
    assert p.margin(trader)[0] < 0
    return holder, maker, trader


def _liquidate(p, maker, trader) -> None:
    """The maker bids at the index, a keeper liquidates the trader whole; the
    fund covers its deficit."""
    p.order(maker, "buy", "1", 85_000, GTC)
    p.engine.liquidate(p.account(trader), p.market().address, 2**200, [], sender=p.actor("keeper"))
    assert p.position(trader).size == 0 and p.ch.cash(p.account(trader)) == 0


def test_hold__account_below_zero__withdrawals_wait(protocol, bankrupt):
    p = protocol
    holder, _maker, trader = bankrupt
    account = p.account(trader)
    assert not p.insurance.withdrawals_wait() and p.insurance.maxRedeem(holder) > 0
    p.insurance.hold(account, sender=p.actor("watcher"))
    (log,) = events(p.insurance, "Held")
    assert log.account == account
    assert p.insurance.held(account) and p.insurance.hold_count() == 1
    assert p.insurance.withdrawals_wait()
    assert p.insurance.maxRedeem(holder) == 0 and p.insurance.maxWithdraw(holder) == 0
    shares = p.insurance.withdraw_request(holder)[0]
    with boa.reverts(WAIT):
        p.insurance.redeem(shares, holder, holder, sender=holder)
    with boa.reverts(WAIT):
        p.insurance.withdraw(p.units(1), holder, holder, sender=holder)


def test_hold__twice__reverts(protocol, bankrupt):
    p = protocol
    account = p.account(bankrupt[2])
    p.insurance.hold(account)
    with boa.reverts("insurance: account already held"):
        p.insurance.hold(account)


def test_hold__account_not_below_zero__reverts(protocol, bankrupt):
    p = protocol
    _holder, maker, _trader = bankrupt
    with boa.reverts("insurance: account not below zero"):
        p.insurance.hold(p.account(maker))
    with boa.reverts("insurance: account not below zero"):
        p.insurance.hold(10**6)  # no such account: equity 0


def test_hold__index_invalid__reverts_with_the_oracle_reason(protocol, bankrupt):
    p = protocol
    p.set_index(60_000, confirm=False)
    with boa.reverts("oracle: index moved too fast"):
        p.insurance.hold(p.account(bankrupt[2]))


def test_release__not_held_or_still_below_zero__reverts(protocol, bankrupt):
    p = protocol
    account = p.account(bankrupt[2])
    with boa.reverts("insurance: account not held"):
        p.insurance.release(account)
    p.insurance.hold(account)
    with boa.reverts("insurance: account below zero"):
        p.insurance.release(account)


def test_release__after_liquidation__withdrawals_resume_after_the_loss(protocol, bankrupt):
    p = protocol
    holder, maker, trader = bankrupt
    account = p.account(trader)
    p.insurance.hold(account)
    assets0 = p.insurance.totalAssets()
    _liquidate(p, maker, trader)
    assert p.insurance.totalAssets() < assets0  # the fund paid the deficit
    assert p.insurance.withdrawals_wait()  # until someone releases
    p.insurance.release(account, sender=p.actor("stranger"))
    (log,) = events(p.insurance, "Released")
    assert log.account == account
    assert not p.insurance.held(account) and p.insurance.hold_count() == 0
    shares = p.insurance.maxRedeem(holder)
    assert shares == p.insurance.withdraw_request(holder)[0]
    paid = p.insurance.redeem(shares, holder, holder, sender=holder)
    assert p.token.balanceOf(holder) == paid < p.units(100_000)  # it bore the loss


def test_release__price_came_back__anyone_releases(protocol, bankrupt):
    p = protocol
    holder, _maker, trader = bankrupt
    account = p.account(trader)
    p.insurance.hold(account)
    p.set_index(98_000)
    assert p.margin(trader)[0] >= 0
    p.insurance.release(account, sender=p.actor("stranger"))
    assert p.insurance.maxRedeem(holder) == p.insurance.withdraw_request(holder)[0]


def test_hold__two_accounts__withdrawals_wait_until_both_released(protocol, bankrupt):
    p = protocol
    holder, maker, trader = bankrupt
    other = p.actor("other", 12_000)
    p.set_index(100_000)
    open_position(p, other, maker, "buy", "1", 100_000)
    p.set_index(85_000)
    a, b = p.account(trader), p.account(other)
    p.insurance.hold(a)
    p.insurance.hold(b)
    assert p.insurance.hold_count() == 2
    p.set_index(98_000)
    p.insurance.release(a)
    assert p.insurance.hold_count() == 1 and p.insurance.maxRedeem(holder) == 0
    p.insurance.release(b)
    assert p.insurance.maxRedeem(holder) > 0
