"""Fixtures of the FundingRate tests; the helpers are in funding_helpers.py."""

import pytest

from tests.unitary.funding_rate.funding_helpers import funding_of


@pytest.fixture
def funding(protocol):
    return funding_of(protocol)


@pytest.fixture
def maker(protocol):
    return protocol.actor("maker", deposit=10_000_000)


@pytest.fixture
def long_trader(protocol):
    return protocol.actor("long_trader", deposit=1_000_000)


@pytest.fixture
def short_trader(protocol):
    return protocol.actor("short_trader", deposit=1_000_000)
