"""Clearinghouse.deposit: token units in, WAD cash credited, accounts created
on first use (PROTOCOL.md §2, §3)."""

import boa

from keeper.units import WAD
from tests.utils.protocol import MAX_UINT


def _events(contract, name: str) -> list:
    """Decoded `name` events of the contract's last call (views count: read first)."""
    return [e for e in contract.get_logs() if type(e).__name__ == name]


def _mint_and_approve(p, who: str, units: int) -> None:
    p.token.mint(who, units, sender=p.owner)
    p.token.approve(p.ch.address, MAX_UINT, sender=who)


def test_deposit__credits_cash_scaled_to_wad(protocol_any_decimals):
    p = protocol_any_decimals
    trader = p.actor("trader")
    amount = p.units("1234.567891")
    _mint_and_approve(p, trader, amount)
    vault_before = p.token.balanceOf(p.ch.address)

    p.ch.deposit(0, amount, sender=trader)

    account = p.account(trader)
    assert p.ch.cash(account) == amount * 10 ** (18 - p.decimals)
    assert p.ch.cash(account) == 1234_567891 * 10**12  # the same in WAD whatever the decimals
    assert p.ch.PRECISION() == 10 ** (18 - p.decimals)
    assert p.token.balanceOf(trader) == 0
    assert p.token.balanceOf(p.ch.address) == vault_before + amount


def test_deposit__twice__adds_up_in_one_account(protocol_any_decimals):
    p = protocol_any_decimals
    trader = p.actor("trader", 100)
    account = p.account(trader)
    count = p.ch.account_count()

    p.fund(trader, "0.25")

    assert p.account(trader) == account
    assert p.ch.account_count() == count
    assert p.ch.cash(account) == 100_250_000_000_000_000_000


def test_deposit__first_use__creates_account(protocol):
    p = protocol
    trader = p.actor("trader")
    _mint_and_approve(p, trader, p.units(50))
    count = p.ch.account_count()
    assert p.account(trader) == 0

    p.ch.deposit(7, p.units(50), sender=trader)
    (created,) = _events(p.ch, "AccountCreated")

    account = count + 1
    assert p.ch.account_count() == account
    assert p.ch.account_of(trader, 7) == account
    assert p.ch.account_key(account) == (trader, 7)
    assert created.owner == trader
    assert created.account == account
    assert created.subaccount == 7


def test_deposit__existing_account__creates_no_account(protocol):
    p = protocol
    trader = p.actor("trader", 10)
    _mint_and_approve(p, trader, p.units(10))

    p.ch.deposit(0, p.units(10), sender=trader)

    assert _events(p.ch, "AccountCreated") == []


def test_deposit__subaccounts__are_distinct_accounts(protocol):
    p = protocol
    trader = p.actor("trader", 100, sub=0)
    p.fund(trader, 30, sub=1)
    p.fund(trader, 5, sub=2**96 - 1)

    ids = [p.account(trader, s) for s in (0, 1, 2**96 - 1)]
    assert len(set(ids)) == 3 and 0 not in ids
    assert [p.ch.cash(i) for i in ids] == [100 * WAD, 30 * WAD, 5 * WAD]
    assert [p.ch.account_key(i) for i in ids] == [(trader, 0), (trader, 1), (trader, 2**96 - 1)]


def test_deposit__subaccount_too_large__reverts(protocol):
    p = protocol
    trader = p.actor("trader")
    _mint_and_approve(p, trader, p.units(10))
    count = p.ch.account_count()

    with boa.reverts("subaccount too large"):
        p.ch.deposit(2**96, p.units(10), sender=trader)

    assert p.ch.account_count() == count
    assert p.token.balanceOf(trader) == p.units(10)


def test_deposit__for_another_owner__credits_that_owner(protocol_any_decimals):
    p = protocol_any_decimals
    payer = p.actor("payer")
    trader = p.actor("trader")
    _mint_and_approve(p, payer, p.units(40))

    p.ch.deposit(3, p.units(40), trader, sender=payer)
    (event,) = _events(p.ch, "Deposit")

    account = p.account(trader, 3)
    assert account != 0
    assert p.ch.account_key(account) == (trader, 3)
    assert p.ch.cash(account) == 40 * WAD
    assert p.account(payer, 3) == 0  # the payer gets no account
    assert p.token.balanceOf(payer) == 0
    assert (event.sender, event.owner, event.account) == (payer, trader, account)


def test_deposit__zero_owner__reverts(protocol):
    p = protocol
    payer = p.actor("payer")
    _mint_and_approve(p, payer, p.units(40))

    with boa.reverts("zero address"):
        p.ch.deposit(0, p.units(40), "0x0000000000000000000000000000000000000000", sender=payer)


def test_deposit__zero_amount__reverts(protocol_any_decimals):
    p = protocol_any_decimals
    trader = p.actor("trader")
    _mint_and_approve(p, trader, p.units(10))
    count = p.ch.account_count()

    with boa.reverts("zero amount"):
        p.ch.deposit(0, 0, sender=trader)

    assert p.ch.account_count() == count
    assert p.account(trader) == 0


def test_deposit__no_approval__reverts(protocol_any_decimals):
    p = protocol_any_decimals
    trader = p.actor("trader")
    p.token.mint(trader, p.units(10), sender=p.owner)
    count = p.ch.account_count()
    vault = p.token.balanceOf(p.ch.address)

    with boa.reverts("erc20: insufficient allowance"):
        p.ch.deposit(0, p.units(10), sender=trader)

    # the account created on the way is rolled back with everything else
    assert p.ch.account_count() == count
    assert p.account(trader) == 0
    assert p.token.balanceOf(trader) == p.units(10)
    assert p.token.balanceOf(p.ch.address) == vault


def test_deposit__more_than_balance__reverts(protocol_any_decimals):
    p = protocol_any_decimals
    trader = p.actor("trader", 10)
    _mint_and_approve(p, trader, p.units(5))
    cash = p.ch.cash(p.account(trader))

    with boa.reverts("erc20: transfer amount exceeds balance"):
        p.ch.deposit(0, p.units(5) + 1, sender=trader)

    assert p.ch.cash(p.account(trader)) == cash
    assert p.token.balanceOf(trader) == p.units(5)


def test_deposit__event__fields(protocol_any_decimals):
    p = protocol_any_decimals
    trader = p.actor("trader", 100)
    account = p.account(trader)
    amount = p.units("12.5")
    _mint_and_approve(p, trader, amount)

    p.ch.deposit(0, amount, sender=trader)
    (event,) = _events(p.ch, "Deposit")
    (transfer,) = _events(p.ch, "Transfer")

    assert event.sender == trader
    assert event.owner == trader
    assert event.account == account
    assert event.amount == amount  # token units
    assert event.cash == 112_500_000_000_000_000_000  # new cash, WAD
    assert (transfer.sender, transfer.receiver, transfer.value) == (trader, p.ch.address, amount)
