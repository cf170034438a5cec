"""Malformed calls: zero size, max uint size and price, price 0, an unknown
order type or market, reduce-only orders that would increase a position,
cancelling someone else's order, zero and absurd amounts. Each reverts with
its reason and leaves every balance, position and order as it was."""

import pytest

from tests.e2e.replay_helpers import assert_solvent, attempt, open_position, snapshot, to_wad
from tests.utils.protocol import GTC, IOC, MAX_UINT

LOT = 10**15  # BTC-PERP: 0.001
TICK = 10**18  # BTC-PERP: $1


@pytest.fixture
def setup(protocol):
    p = protocol
    p.set_index(100_000)
    p.set_index(4_000, "ETH-PERP")
    maker = p.actor("maker", 1_000_000)
    trader = p.actor("trader", 10_000)
    open_position(p, trader, maker, "buy", "0.1", 100_000)
    resting = p.order(maker, "sell", "0.1", 101_000, GTC)
    return p, maker, trader, resting


SIZE, PRICE = to_wad("0.01"), to_wad(100_000)


def _place(p, who, is_buy=True, size=SIZE, price=PRICE, kind=GTC, reduce_only=False, market=None):
    market = market or p.market().address
    return attempt(
        lambda: p.ch.place_order(who, 0, market, is_buy, size, price, kind, reduce_only, 0, sender=who)
    )


CASES = {
    "zero size": (dict(size=0), "zero size"),
    "max uint size": (dict(size=MAX_UINT), "size off lot"),
    "max uint size on the lot grid": (dict(size=MAX_UINT // LOT * LOT), "size or price too large"),
    "max uint price": (dict(price=MAX_UINT), "price off tick"),
    "max uint price on the tick grid": (dict(price=MAX_UINT // TICK * TICK), "size or price too large"),
    "price 0": (dict(price=0), "zero price"),
    "price off tick": (dict(price=to_wad("100000.5")), "price off tick"),
    "size off lot": (dict(size=to_wad("0.0015")), "size off lot"),
    "liquidation order type from a user": (dict(kind=3), "bad order type"),
    "order type 255": (dict(kind=255), "bad order type"),
    "below min notional": (dict(size=LOT, price=to_wad(5_000)), "order below min notional"),
    "reduce-only buy on a long": (dict(reduce_only=True), "reduce-only would increase position"),
    "reduce-only sell above the position": (
        dict(is_buy=False, size=to_wad("0.2"), price=to_wad(99_000), reduce_only=True, kind=IOC),
        "reduce-only would increase position",
    ),
    "max uint size IOC": (
        dict(size=MAX_UINT // LOT * LOT, price=to_wad(101_000), kind=IOC),
        "size or price too large",
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_malformed_order__reverts__state_unchanged(setup, case):
    p, _maker, trader, _resting = setup
    kwargs, reason = CASES[case]
    before = snapshot(p)

    ok, out = _place(p, trader, **kwargs)

    assert not ok and reason in out, out
    assert snapshot(p) == before
    assert_solvent(p)


def test_reduce_only__flat_account__reverts(setup):
    p, maker, _trader, _resting = setup
    flat = p.actor("flat", 1_000)
    before = snapshot(p)
    for is_buy in (True, False):
        ok, out = _place(p, flat, is_buy=is_buy, reduce_only=True)
        assert not ok and "reduce-only would increase position" in out, out
    assert snapshot(p) == before


def test_unknown_market__reverts(setup):
    p, _maker, trader, _resting = setup
    before = snapshot(p)
    ok, out = _place(p, trader, market=p.token.address)
    assert not ok and "unknown market" in out, out
    assert snapshot(p) == before


def test_cancel_another_accounts_order__reverts(setup):
    p, maker, trader, resting = setup
    before = snapshot(p)
    # as the owner of another account, naming the maker's order id
    ok, out = attempt(lambda: p.cancel(trader, resting))
    assert not ok and "not your order" in out, out
    # naming the maker's account without being its owner or operator
    ok, out = attempt(lambda: p.cancel(maker, resting, sender=trader))
    assert not ok and "not owner or operator" in out, out
    # cancel-all over the maker's order from the trader's account
    ok, out = attempt(lambda: p.ch.cancel_all(trader, 0, p.market().address, [resting], sender=trader))
    assert not ok and "not your order" in out, out
    # straight at the market, as the owner of another account
    ok, out = attempt(lambda: p.market().cancel(resting, sender=trader))
    assert not ok and "not your order" in out, out
    ok, out = attempt(lambda: p.cancel(trader, 10**9))
    assert not ok and "no such order" in out, out
    assert snapshot(p) == before
    assert p.lens.order(p.market().address, resting)[0] != 0


def test_place_order_for_another_account__reverts(setup):
    p, maker, trader, _resting = setup
    before = snapshot(p)
    ok, out = attempt(lambda: p.order(maker, "sell", "0.1", 90_000, IOC, sender=trader))
    assert not ok and "not owner or operator" in out, out
    assert snapshot(p) == before


@pytest.mark.parametrize(
    "amount, reason",
    [(0, "zero amount"), (10**30, "below initial margin"), (MAX_UINT, "")],
    ids=["zero", "above equity", "max uint (overflow)"],
)
def test_malformed_withdraw__reverts(setup, amount, reason):
    p, _maker, trader, _resting = setup
    before, balance = snapshot(p), p.token.balanceOf(trader)
    ok, out = attempt(lambda: p.ch.withdraw(0, amount, sender=trader))
    assert not ok and reason in out, out
    assert snapshot(p) == before and p.token.balanceOf(trader) == balance


def test_malformed_deposit__reverts(setup):
    p, _maker, trader, _resting = setup
    before = snapshot(p)
    ok, out = attempt(lambda: p.ch.deposit(0, 0, sender=trader))
    assert not ok and "zero amount" in out, out
    ok, out = attempt(lambda: p.ch.deposit(2**96, 1, sender=trader))  # subaccount out of range
    assert not ok
    ok, out = attempt(lambda: p.ch.deposit(0, MAX_UINT, sender=trader))  # more than it holds
    assert not ok
    assert snapshot(p) == before
    assert_solvent(p)


def test_liquidate_takeover_adl_with_malformed_arguments__revert(setup):
    p, _maker, trader, _resting = setup
    keeper = p.actor("keeper", 10_000)
    a, m = p.account(trader), p.market().address
    before = snapshot(p)
    for fn, reason in [
        (lambda: p.engine.liquidate(a, m, MAX_UINT, [], sender=keeper), "not liquidatable"),
        (lambda: p.engine.liquidate(a, p.token.address, 1, [], sender=keeper), "unknown market"),
        (lambda: p.engine.liquidate(10**9, m, 1, [], sender=keeper), "not liquidatable"),
        (lambda: p.engine.takeover(a, m, MAX_UINT, 0, sender=keeper), "not liquidatable"),
        (lambda: p.engine.adl(a, m, [], [], sender=keeper), "adl: no candidates"),
        (lambda: p.engine.adl(a, m, [a], [], sender=keeper), "adl: account not bankrupt"),
        (lambda: p.engine.settle_bad_debt(a, sender=keeper), "settle: no deficit"),
    ]:
        ok, out = attempt(fn)
        assert not ok and reason in out, (reason, out)
    assert snapshot(p) == before
