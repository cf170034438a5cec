"""Clearinghouse.set_operator: operators trade and cancel for one subaccount,
never withdraw (PROTOCOL.md §3)."""

import boa

from keeper.units import WAD
from tests.utils.protocol import GTC, IOC

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"


def test_set_operator__operator_places_order_for_owner(protocol):
    p = protocol
    trader = p.actor("trader", 10_000)
    operator = p.actor("operator")
    p.ch.set_operator(0, operator, True, sender=trader)
    assert p.ch.is_operator(p.account(trader), operator)

    oid = p.order(trader, "buy", "0.01", 99_000, GTC, sender=operator)

    account, is_buy, price, size, reduce_only = p.lens.order(p.market().address, oid)
    assert account == p.account(trader)
    assert (is_buy, price, size, reduce_only) == (True, 99_000 * WAD, 10**16, False)
    assert p.account(operator) == 0  # the operator got no account of its own


def test_set_operator__operator_trade__books_owner_cash_and_position(protocol, trade):
    p = protocol
    trader = p.actor("trader", 10_000)
    maker = p.actor("maker", 10_000)
    operator = p.actor("operator")
    p.ch.set_operator(0, operator, True, sender=trader)
    p.order(maker, "sell", "0.01", 100_000, GTC)

    p.order(trader, "buy", "0.01", 100_000, IOC, sender=operator)

    assert p.position(trader).size == 10**16
    assert p.margin(trader)[1] == 100 * WAD  # IM of the owner's account


def test_set_operator__operator_cancels_owner_order(protocol):
    p = protocol
    trader = p.actor("trader", 10_000)
    operator = p.actor("operator")
    p.ch.set_operator(0, operator, True, sender=trader)
    oid = p.order(trader, "buy", "0.01", 99_000, GTC)

    p.cancel(trader, oid, sender=operator)

    assert p.lens.order(p.market().address, oid)[0] == 0
    assert p.margin(trader)[1] == 0  # the reservation is released


def test_set_operator__operator_cancel_all(protocol):
    p = protocol
    trader = p.actor("trader", 10_000)
    operator = p.actor("operator")
    p.ch.set_operator(0, operator, True, sender=trader)
    oids = [p.order(trader, "buy", "0.01", 99_000 - i, GTC) for i in range(3)]
    market = p.market().address

    with boa.reverts("cancel-all: orders missing from the list"):
        p.ch.cancel_all(trader, 0, market, oids[:2], sender=operator)
    p.ch.cancel_all(trader, 0, market, oids, sender=operator)

    assert p.market().open_order_stats(p.account(trader)) == (0, 0, 0)
    assert p.margin(trader)[1] == 0  # no reservation left


def test_set_operator__revoked__reverts(protocol):
    p = protocol
    trader = p.actor("trader", 10_000)
    operator = p.actor("operator")
    p.ch.set_operator(0, operator, True, sender=trader)
    oid = p.order(trader, "buy", "0.01", 99_000, GTC)

    p.ch.set_operator(0, operator, False, sender=trader)

    assert not p.ch.is_operator(p.account(trader), operator)
    with boa.reverts("not owner or operator"):
        p.order(trader, "buy", "0.01", 99_000, GTC, sender=operator)
    with boa.reverts("not owner or operator"):
        p.cancel(trader, oid, sender=operator)
    assert p.lens.order(p.market().address, oid)[0] == p.account(trader)  # still resting


def test_place_order__stranger__reverts(protocol):
    p = protocol
    trader = p.actor("trader", 10_000)
    attacker = p.actor("attacker", 10_000)
    oid = p.order(trader, "buy", "0.01", 99_000, GTC)
    stats = p.market().open_order_stats(p.account(trader))

    with boa.reverts("not owner or operator"):
        p.order(trader, "buy", "0.01", 99_000, GTC, sender=attacker)
    with boa.reverts("not owner or operator"):
        p.cancel(trader, oid, sender=attacker)
    with boa.reverts("not owner or operator"):
        p.ch.cancel_all(trader, 0, p.market().address, [oid], sender=attacker)

    assert p.market().open_order_stats(p.account(trader)) == stats


def test_place_order__no_such_account__reverts(protocol):
    p = protocol
    trader = p.actor("trader")
    with boa.reverts("no such account"):
        p.order(trader, "buy", "0.01", 99_000, GTC)


def test_place_order__unknown_market__reverts(protocol):
    p = protocol
    trader = p.actor("trader", 10_000)
    with boa.reverts("unknown market"):
        p.ch.place_order(trader, 0, p.token.address, True, 10**16, 99_000 * WAD, GTC, False, 0, sender=trader)


def test_cancel_order__unknown_market__reverts(protocol):
    # PROTOCOL.md §13: a reason string on every user-reachable revert
    # (place_order and cancel_all say "unknown market"; cancel_order lost the check)
    p = protocol
    trader = p.actor("trader", 10_000)
    with boa.reverts("unknown market"):
        p.ch.cancel_order(trader, 0, p.token.address, 1, sender=trader)


def test_cancel_all__unknown_market__reverts(protocol):
    p = protocol
    trader = p.actor("trader", 10_000)
    with boa.reverts("unknown market"):
        p.ch.cancel_all(trader, 0, p.token.address, [1], sender=trader)


def test_set_operator__rights_are_per_subaccount(protocol):
    p = protocol
    trader = p.actor("trader", 10_000, sub=0)
    p.fund(trader, 10_000, sub=1)
    operator = p.actor("operator")
    p.ch.set_operator(0, operator, True, sender=trader)
    oid1 = p.order(trader, "buy", "0.01", 99_000, GTC, sub=1)

    with boa.reverts("not owner or operator"):
        p.order(trader, "buy", "0.01", 99_000, GTC, sub=1, sender=operator)
    with boa.reverts("not owner or operator"):
        p.cancel(trader, oid1, sub=1, sender=operator)

    p.order(trader, "buy", "0.01", 99_000, GTC, sub=0, sender=operator)
    assert not p.ch.is_operator(p.account(trader, 1), operator)


def test_set_operator__operator_of_one_owner__cannot_act_for_another(protocol):
    p = protocol
    trader = p.actor("trader", 10_000)
    other = p.actor("other-trader", 10_000)
    operator = p.actor("operator")
    p.ch.set_operator(0, operator, True, sender=trader)

    with boa.reverts("not owner or operator"):
        p.order(other, "buy", "0.01", 99_000, GTC, sender=operator)


def test_set_operator__new_subaccount__creates_account_and_logs(protocol):
    p = protocol
    trader = p.actor("trader")
    operator = p.actor("operator")
    count = p.ch.account_count()

    p.ch.set_operator(5, operator, True, sender=trader)
    names = [type(e).__name__ for e in p.ch.get_logs()]
    (event,) = [e for e in p.ch.get_logs() if type(e).__name__ == "OperatorSet"]

    account = p.account(trader, 5)
    assert account == count + 1
    assert names == ["AccountCreated", "OperatorSet"]
    assert (event.owner, event.operator, event.account, event.allowed) == (trader, operator, account, True)


def test_set_operator__zero_address__reverts(protocol):
    p = protocol
    trader = p.actor("trader", 100)
    with boa.reverts("zero address"):
        p.ch.set_operator(0, ZERO_ADDRESS, True, sender=trader)
