"""Shared fixtures: one protocol deployment per collateral decimals per
session; each test runs inside a boa anchor so state never leaks."""

import os
import signal

import boa
import pytest
from hypothesis import HealthCheck, Phase, settings

from tests.utils.protocol import deploy_for_tests

settings.register_profile(
    "quick", max_examples=25, stateful_step_count=20, deadline=None, suppress_health_check=list(HealthCheck)
)
# `make fuzz`; FUZZ_EXAMPLES=N shortens it (e.g. for a time-boxed run)
settings.register_profile(
    "deep",
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "2000")),
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
# scripts/mutate.py (`make mutate`): the quick profile, the same examples on
# every run and no shrinking (a mutant is caught at its first failure)
settings.register_profile(
    "mutation",
    parent=settings.get_profile("quick"),
    phases=[p for p in Phase if p != Phase.shrink],
    derandomize=True,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "quick"))


def pytest_configure(config):
    # importing ape (the vyperp pytest plugin does) makes SIGINT exit the process
    # with SystemExit(130); pytest-xdist's workers are interrupted when the run ends,
    # which then surfaced as an "exception ignored" warning: keep Python's own handler
    if os.environ.get("PYTEST_XDIST_WORKER"):
        signal.signal(signal.SIGINT, signal.default_int_handler)


# titanoboa's pytest plugin anchors every fixture setup: deployments live in
# session-scoped fixtures (reverted at session end), tests in their own anchor.


@pytest.fixture(scope="session")
def _protocol_6():
    return deploy_for_tests(6)


@pytest.fixture(scope="session")
def _protocol_18():
    return deploy_for_tests(18)


@pytest.fixture
def protocol(_protocol_6):
    """A deployed protocol with 6-decimal collateral, state reset after the test."""
    with boa.env.anchor():
        yield _protocol_6


@pytest.fixture(params=[6, 18], ids=["usdc6", "token18"])
def protocol_any_decimals(request):
    """The same, once with 6 and once with 18 collateral decimals."""
    p = request.getfixturevalue(f"_protocol_{request.param}")
    with boa.env.anchor():
        yield p
