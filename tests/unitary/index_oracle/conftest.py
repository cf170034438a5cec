"""Fixtures for the IndexOracle unit tests: fresh oracles and mock feeds.

Isolation comes from titanoboa's pytest plugin, which runs every fixture
setup and every test call inside a `boa.env.anchor()`."""

import boa
import pytest

from keeper.deploy import BoaBackend

WAD = 10**18
MAX_AGE = 60
QUORUM = 2
# the widest guard: unit tests of the median move prices freely (the guard
# has its own tests, test_index_guard.py)
WIDE_DIVERGENCE = 10 * WAD
FASTEST_RATE = 10 * WAD  # per hour


@pytest.fixture(scope="session")
def backend():
    return BoaBackend()


@pytest.fixture(scope="session")
def oracle_factory(backend):
    return backend.factory("IndexOracle")


@pytest.fixture(scope="session")
def aggregator_factory(backend):
    return backend.factory("MockAggregator")


@pytest.fixture(scope="session")
def owner(backend):
    return backend.deployer


@pytest.fixture(scope="session")
def reporters():
    return [boa.env.generate_address(f"oracle-reporter-{i}") for i in range(3)]


@pytest.fixture(scope="session")
def attacker():
    return boa.env.generate_address("attacker")


@pytest.fixture
def make_oracle(oracle_factory, owner):
    """Deploy an IndexOracle as `owner`."""

    def make(
        reporters,
        max_age=MAX_AGE,
        quorum=QUORUM,
        description="BTC-PERP index",
        max_divergence=WIDE_DIVERGENCE,
        reference_rate=FASTEST_RATE,
    ):
        with boa.env.prank(owner):
            return oracle_factory.deploy(
                description, reporters, max_age, quorum, max_divergence, reference_rate
            )

    return make


@pytest.fixture
def oracle(make_oracle, reporters):
    """Three reporter sources, quorum 2, max_age 60 s, nothing reported yet."""
    return make_oracle(reporters)


@pytest.fixture
def make_aggregator(aggregator_factory, owner):
    """Deploy a MockAggregator (owned by `owner`), optionally with an answer."""

    def make(decimals=8, answer=None, updated_at=None):
        with boa.env.prank(owner):
            agg = aggregator_factory.deploy(decimals, "BTC / USD")
            if answer is not None:
                agg.set_answer(answer, boa.env.timestamp if updated_at is None else updated_at)
        return agg

    return make


def now() -> int:
    return boa.env.timestamp


def report_all(oracle, reporters, prices, timestamp=None):
    """reporters[i] reports prices[i] (WAD) at `timestamp` (default now)."""
    ts = now() if timestamp is None else timestamp
    for r, p in zip(reporters, prices, strict=True):
        oracle.report(p, ts, sender=r)
