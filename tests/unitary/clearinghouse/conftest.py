"""Helpers for the clearinghouse unit tests (as fixtures).

titanoboa runs every call in one never-ending transaction, so transient
storage is never cleared between calls (vyperlang/titanoboa#218).
PerpMarket caches the index in transient storage during `place_order` and
its views read that cache first: after a trade, a new oracle report is
invisible to `margin`, `withdraw` and `health` until the transaction context
is reset. `move_index` reports a price and then ends the "transaction", as a
real chain would between two blocks.
"""

import boa
import pytest

from tests.unitary.clearinghouse.liquidation_helpers import open_position


def end_transaction() -> None:
    """Clear transient storage, as the end of a real transaction does."""
    boa.env.evm.vm.state.clear_transient_storage()


@pytest.fixture
def move_index():
    """`move_index(protocol, price, symbol="BTC-PERP")`: every reporter
    reports `price`, then the transaction context is reset."""

    def _move(protocol, price, symbol: str = "BTC-PERP") -> None:
        protocol.set_index(price, symbol)
        end_transaction()

    return _move


@pytest.fixture
def trade():
    """`trade(protocol, buyer, seller, size, price, symbol="BTC-PERP")`: the
    seller rests a GTC ask, the buyer takes all of it with an IOC; the book is
    left as it was and the last trade price is `price`."""

    def _trade(protocol, buyer: str, seller: str, size, price, symbol: str = "BTC-PERP") -> None:
        open_position(protocol, buyer, seller, "buy", size, price, symbol=symbol)

    return _trade


@pytest.fixture
def warp():
    """`warp(protocol, seconds)`: time passes, in a new transaction."""

    def _warp(protocol, seconds: int) -> None:
        protocol.warp(seconds)
        end_transaction()

    return _warp
