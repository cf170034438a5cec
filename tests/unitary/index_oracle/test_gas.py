"""Gas of `report()`, measured as a real transaction would be charged.

titanoboa executes a call as a bare message, not a transaction, so two
adjustments are made here:

* the intrinsic cost (21,000 + calldata, with Prague's EIP-7623 floor) is
  not part of `computation.get_gas_used()` and is added explicitly;
* boa never ends a transaction, so storage slots stay warm and "dirty"
  (original value != current value) across calls, which makes SSTORE look
  far cheaper than on chain. The measurement therefore runs in its own
  `boa.Env` (outside the test anchors) and commits the state between calls
  with `lock_changes()`, exactly what py-evm does at the end of a
  transaction: cold access lists and fresh original storage values.
"""

import boa
import pytest

from .conftest import WAD

TX_BASE_GAS = 21_000
REPORT_GAS_LIMIT = 50_000


def _intrinsic_gas(calldata: bytes) -> tuple[int, int]:
    zeros = calldata.count(0)
    tokens = zeros + 4 * (len(calldata) - zeros)
    return TX_BASE_GAS + 4 * tokens, TX_BASE_GAS + 10 * tokens  # (standard, EIP-7623 floor)


def _tx_gas(contract) -> int:
    computation = contract._computation
    standard, floor = _intrinsic_gas(bytes(computation.msg.data))
    used = standard + computation.get_gas_used()
    used -= min(computation.get_gas_refund(), used // 5)
    return max(used, floor)


def _end_tx(env) -> None:
    env.evm.vm.state._account_db.lock_changes()


def _deploy(oracle_factory, n_reporters):
    """A separate chain with a fresh oracle whose reporters have each reported once."""
    env = boa.Env()
    owner = env.generate_address("owner")
    reporters = [env.generate_address(f"reporter-{i}") for i in range(n_reporters)]
    oracle = oracle_factory.deploy(
        "BTC-PERP index", reporters, 60, min(2, n_reporters), WAD // 2, WAD // 2, env=env, sender=owner
    )
    for i, r in enumerate(reporters):
        oracle.report(100_000 * WAD + i, env.timestamp, sender=r)
    _end_tx(env)
    env.time_travel(seconds=12)
    return env, oracle, reporters


@pytest.fixture
def gas_env(oracle_factory):
    """The deployed markets' configuration: 3 reporter sources."""
    return _deploy(oracle_factory, 3)


def test_report__repeat_by_existing_reporter__under_50k_gas(gas_env):
    env, oracle, reporters = gas_env
    oracle.report(100_001 * WAD, env.timestamp, sender=reporters[0])
    gas = _tx_gas(oracle)
    assert 25_000 < gas <= REPORT_GAS_LIMIT, gas


def test_report__repeat_same_values__under_50k_gas(gas_env):
    """Re-reporting an identical (price, timestamp) is the cheap no-op SSTORE."""
    env, oracle, reporters = gas_env
    ts = env.timestamp
    oracle.report(100_001 * WAD, ts, sender=reporters[1])
    _end_tx(env)
    oracle.report(100_001 * WAD, ts, sender=reporters[1])
    assert _tx_gas(oracle) <= REPORT_GAS_LIMIT


def test_report__max_sources__bounded_gas(oracle_factory):
    """With 8 reporter sources `report()` recomputes the cached median over all
    of them (measured 62,728 gas at the time of writing): bounded, but above
    the 50k of the 3-source configuration."""
    env, oracle, reporters = _deploy(oracle_factory, 8)
    oracle.report(100_001 * WAD, env.timestamp, sender=reporters[0])
    assert _tx_gas(oracle) <= 70_000


def test_report__gas_measurement_sees_cold_storage(gas_env):
    """Sanity check of the method: a second report in the same 'transaction'
    (no lock_changes) is much cheaper, so the measured figure is the cold one."""
    env, oracle, reporters = gas_env
    oracle.report(100_001 * WAD, env.timestamp, sender=reporters[2])
    cold = _tx_gas(oracle)
    oracle.report(100_002 * WAD, env.timestamp, sender=reporters[2])
    warm = _tx_gas(oracle)
    assert cold - warm >= 2 * 2_000 + 2_800  # two cold SLOADs, clean SSTORE
