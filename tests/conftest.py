"""Shared fixtures: one protocol deployment per collateral decimals per
session; each test runs inside a boa anchor so state never leaks."""

import os

import boa
import pytest
from hypothesis import HealthCheck, settings

from tests.utils.protocol import deploy_for_tests

settings.register_profile(
    "quick", max_examples=25, stateful_step_count=20, deadline=None, suppress_health_check=list(HealthCheck)
)
settings.register_profile(
    "deep", max_examples=2000, stateful_step_count=50, deadline=None, suppress_health_check=list(HealthCheck)
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "quick"))

_deployments: dict = {}


def _deployment(decimals: int):
    if decimals not in _deployments:
        _deployments[decimals] = deploy_for_tests(decimals)
    return _deployments[decimals]


@pytest.fixture
def protocol():
    """A deployed protocol with 6-decimal collateral, state reset after the test."""
    p = _deployment(6)
    with boa.env.anchor():
        yield p


@pytest.fixture(params=[6, 18], ids=["usdc6", "token18"])
def protocol_any_decimals(request):
    """The same, once with 6 and once with 18 collateral decimals."""
    p = _deployment(request.param)
    with boa.env.anchor():
        yield p
