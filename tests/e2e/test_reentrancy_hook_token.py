"""Re-entrancy through a collateral token with transfer hooks (the ERC-777
family: imBTC/Uniswap, Cream, Lendf.me). The protocol is deployed with
HookToken (tests/e2e/HookToken.vy) as its collateral; the token holds an
account in the clearinghouse and, from inside every transfer the
clearinghouse makes, calls it back: withdraw, deposit, place_order,
liquidate. Every re-entrant call reverts (the clearinghouse is
`# pragma nonreentrancy on`), the outer call completes (or, if the hook
insists, reverts whole) and nothing is lost."""

from pathlib import Path

import boa
import pytest

from keeper.deploy import BoaBackend, DeployConfig, deploy_protocol
from tests.e2e.replay_helpers import assert_solvent, attempt, open_position, snapshot, to_wad
from tests.utils import protocol as tp
from tests.utils.protocol import GTC, MAX_UINT, Protocol

HOOK_TOKEN = Path(__file__).with_name("HookToken.vy")
# keeper.deploy reads an existing collateral through MockStablecoin's ABI
pytestmark = pytest.mark.filterwarnings("ignore:casted bytecode does not match compiled bytecode")


@pytest.fixture(scope="module")
def _hooked():
    token = boa.load_partial(str(HOOK_TOKEN)).deploy(6)
    markets = tp.test_markets()
    reporters = {
        mc.symbol: [
            boa.env.generate_address(f"hook-{mc.symbol}-reporter-{i}") for i in range(mc.oracle_sources)
        ]
        for mc in markets
    }
    backend = BoaBackend()
    d = deploy_protocol(backend, DeployConfig(collateral=token.address, markets=markets, reporters=reporters))
    return Protocol(d, backend, 6), token


@pytest.fixture
def hooked(_hooked):
    with boa.env.anchor():
        p, token = _hooked
        p.set_index(100_000)
        funder = p.actor("funder")
        p.token.mint(funder, p.units(10_000), sender=funder)
        p.token.approve(p.ch.address, MAX_UINT, sender=funder)
        p.ch.deposit(0, p.units(5_000), token.address, sender=funder)  # the token's own account
        token.mint(token.address, p.units(5_000))
        token.approve_for_self(p.ch.address, MAX_UINT)
        yield p, token


def _payload(fn, *args) -> bytes:
    return fn.prepare_calldata(*args)


def _payloads(p, token):
    """Each re-entry as (the contract it calls, its calldata)."""
    ch, m = p.ch, p.market().address
    return {
        "withdraw": (ch.address, _payload(ch.withdraw, 0, p.units(5_000))),
        "deposit": (ch.address, _payload(ch.deposit, 0, p.units(1_000))),
        "place_order": (
            ch.address,
            _payload(
                ch.place_order, token.address, 0, m, True, to_wad("0.01"), to_wad(99_000), GTC, False, 0
            ),
        ),
        # the liquidation engine reads and writes through the clearinghouse,
        # whose lock is held during the transfer
        "liquidate": (p.engine.address, _payload(p.engine.liquidate, 1, m, 2**200, [])),
    }


def test_hook__reenters_outside_a_clearinghouse_call(hooked):
    # the control: the payload works when nothing else is on the stack
    p, token = hooked
    a = p.account(token.address)
    token.set_hook(*_payloads(p, token)["withdraw"], True)
    holder = p.actor("holder")
    token.mint(holder, 1)
    token.transfer(p.actor("other"), 1, sender=holder)
    assert token.hook_successes() == 1 and p.ch.cash(a) == 0
    assert_solvent(p)


@pytest.mark.parametrize("reentry", ["withdraw", "deposit", "place_order", "liquidate"])
@pytest.mark.parametrize("outer", ["withdraw", "deposit"])
def test_reentrant_call_during_a_transfer__reverts__nothing_lost(hooked, outer, reentry):
    p, token = hooked
    user = p.actor("user", 1_000)
    token.mint(user, p.units(1_000))
    a = p.account(token.address)
    cash = p.ch.cash(a)
    token.set_hook(*_payloads(p, token)[reentry], False)
    balance = token.balanceOf(user)

    if outer == "withdraw":
        p.ch.withdraw(0, p.units(100), sender=user)
        assert token.balanceOf(user) == balance + p.units(100)
    else:
        p.ch.deposit(0, p.units(100), sender=user)
        assert token.balanceOf(user) == balance - p.units(100)

    assert token.hook_calls() == 1 and token.hook_successes() == 0  # the re-entry reverted
    assert p.ch.cash(a) == cash
    assert p.ch.cash(p.account(user)) == p.units(1_000 + (100 if outer == "deposit" else -100)) * 10**12
    assert_solvent(p)


def test_strict_hook__whole_withdraw_reverts__state_unchanged(hooked):
    p, token = hooked
    user = p.actor("user", 1_000)
    token.set_hook(*_payloads(p, token)["withdraw"], True)
    before = snapshot(p)

    ok, out = attempt(lambda: p.ch.withdraw(0, p.units(100), sender=user))

    assert not ok and "hook: re-entry failed" in out, out
    assert snapshot(p) == before and token.balanceOf(user) == 0
    assert_solvent(p)


def test_reentry_during_trades_and_withdrawals__reverts(hooked):
    # a trade and a withdrawal with the hook armed on a busy account: the
    # token's re-entering withdraw never runs inside any clearinghouse call
    p, token = hooked
    maker = p.actor("maker", 100_000)
    trader = p.actor("trader", 10_000)
    token.set_hook(*_payloads(p, token)["withdraw"], False)
    open_position(p, trader, maker, "buy", "0.1", 100_000)
    p.ch.withdraw(0, p.units(5_000), sender=trader)
    p.ch.withdraw(0, p.units(50_000), sender=maker)
    assert token.hook_calls() == 2 and token.hook_successes() == 0
    assert p.ch.cash(p.account(token.address)) == p.units(5_000) * 10**12
    assert_solvent(p)
