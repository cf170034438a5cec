"""Shared set-ups for the liquidation, takeover and ADL unit tests."""

from __future__ import annotations

from dataclasses import asdict

import boa

from keeper.deploy import to_wad
from keeper.liquidation_model import LiquidationParams
from tests.utils.protocol import GTC, IOC

MAX = 2**256 - 1


def open_position(p, who: str, counterparty: str, side: str, size, price, symbol: str = "BTC-PERP") -> None:
    """`who` takes `size` on `side` at `price` from a resting order of `counterparty`."""
    other = "sell" if side == "buy" else "buy"
    oid = p.order(counterparty, other, size, price, GTC, symbol=symbol)
    p.order(who, side, size, price, IOC, symbol=symbol)
    assert p.lens.order(p.market(symbol).address, oid)[0] == 0


# the logs of the last liquidate/adl/takeover call: the LiquidationEngine's and,
# decoded too, the Clearinghouse's it called (BadDebt). boa keeps only the
# logs of a contract's latest call, views included
_last_logs: list = []


def events(name: str) -> list:
    """Events `name` (LiquidationEngine's, or the Clearinghouse's BadDebt) logged by the last helper call below."""
    return [e for e in _last_logs if type(e).__name__ == name]


def _call(p, fn, caller: str, *args):
    with boa.env.prank(caller):
        out = getattr(p.engine, fn)(*args)
    _last_logs[:] = p.engine.get_logs()
    return out


def liquidate(
    p, account: int, caller: str, max_size: int = MAX, order_ids=(), symbol: str = "BTC-PERP"
) -> int:
    return _call(p, "liquidate", caller, account, p.market(symbol).address, max_size, list(order_ids))


def adl(p, account: int, candidates, caller: str, symbol: str = "BTC-PERP", order_ids=()) -> int:
    return _call(p, "adl", caller, account, p.market(symbol).address, list(candidates), list(order_ids))


def takeover(p, account: int, caller: str, size, sub: int = 0, symbol: str = "BTC-PERP") -> int:
    return _call(p, "takeover", caller, account, p.market(symbol).address, to_wad(size), sub)


def liquidation_params(p, symbol: str = "BTC-PERP") -> LiquidationParams:
    return LiquidationParams(*p.engine.liquidation_params(p.market(symbol).address))


def set_liquidation_params(p, symbol: str = "BTC-PERP", **changes) -> None:
    lp = asdict(liquidation_params(p, symbol))
    lp.update({k: to_wad(v) for k, v in changes.items()})
    with boa.env.prank(p.owner):
        p.engine.set_liquidation_params(p.market(symbol).address, tuple(lp.values()))


def levered_long(p, trader: str = "trader", margin="1100", size="0.1", price="100000"):
    """A maker and a trader long `size` BTC at `price` with `margin` of
    collateral (default 0.1 BTC, $10,000 notional at ~9x)."""
    maker = p.actor("maker", 10_000_000)
    who = p.actor(trader, margin)
    open_position(p, who, maker, "buy", size, price)
    return maker, who
