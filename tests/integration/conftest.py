"""One anvil for the scenario tests; every scenario deploys the protocol afresh on it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from keeper.anvil import Anvil


@pytest.fixture(scope="session")
def scenario_rpc() -> Iterator[str]:
    """URL of a session anvil with 60 dev accounts (the scenario runner's key layout)."""
    with Anvil(accounts=60) as node:
        yield node.url
