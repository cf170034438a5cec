"""What `keeper status` and `keeper trade` share: the user-facing error, the contracts of a
deployment on a connected node (:class:`Chain`, :func:`connect_chain`), a checked view call
(:func:`_read`), and the number and health formatting both print."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from decimal import Decimal, localcontext
from typing import Any, Literal

from keeper.errors import CliError

WAD = 10**18
Health = Literal["healthy", "liquidatable", "bankrupt"]


class PeopleError(CliError):
    """A user-facing problem of `status` / `trade` (the CLI prints it as `keeper: error: ...`)."""


def health_state(equity: int, maintenance_margin: int) -> Health:
    if equity < 0:
        return "bankrupt"
    if equity < maintenance_margin:
        return "liquidatable"
    return "healthy"


def num(d: Decimal | None, places: int = 6) -> str:
    """A human number: thousands separators, at most `places` decimals, no trailing zeros."""
    if d is None:
        return "-"
    with localcontext() as ctx:
        ctx.prec = 100
        text = f"{d.quantize(Decimal(1).scaleb(-places)):,f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


@dataclass
class Chain:
    """The contracts of one deployment, from its manifest, on a connected node."""

    w3: Any
    clearinghouse: Any
    liquidation_engine: Any  # insurance_capacity
    lens: Any  # market_summary, find_hint, order, orders_of
    markets: dict[str, Any]  # symbol -> PerpMarket
    oracles: dict[str, Any]
    fundings: dict[str, Any]
    insurance_fund: Any | None
    collateral_symbol: str
    collateral_decimals: int

    def market(self, symbol: str) -> Any:
        if symbol not in self.markets:
            known = ", ".join(self.markets) or "none"
            raise PeopleError(f"unknown market {symbol!r}: this deployment has {known}")
        return self.markets[symbol]


def check_reachable(rpc_url: str, timeout_s: float = 3.0) -> None:
    """One `eth_chainId`, no retries: a person waiting at a prompt wants to know now."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}).encode()
    req = urllib.request.Request(rpc_url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            json.loads(resp.read())
    except (OSError, ValueError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise PeopleError(f"cannot reach the node at {rpc_url}: {reason}") from None


def connect_chain(ctx: Any) -> Chain:
    """Contracts of `ctx.manifest` on `ctx.w3` (a keeper.context.RunContext), checked to exist."""
    check_reachable(ctx.settings.rpc_url)
    manifest = ctx.manifest
    ch = ctx.clearinghouse()  # a CliError when the manifest has none
    w3 = ctx.w3
    if not w3.eth.get_code(ch.address):
        raise PeopleError(
            f"no contract at the clearinghouse {manifest.clearinghouse} on chain {manifest.chain_id}: the manifest "
            f"{ctx.settings.manifest} is from another deployment (a restarted node?); redeploy or pass --manifest"
        )
    engine, lens = ctx.liquidation_engine(), ctx.lens()
    markets, oracles, fundings = {}, {}, {}
    for symbol, info in manifest.markets.items():
        if not info.market:
            continue
        markets[symbol] = ctx.contract("PerpMarket", info.market)
        oracles[symbol] = ctx.contract("IndexOracle", info.oracle)
        if info.funding:
            fundings[symbol] = ctx.contract("FundingRate", info.funding)
    collateral = manifest.collateral
    return Chain(
        w3,
        ch,
        engine,
        lens,
        markets,
        oracles,
        fundings,
        ctx.protocol_contract("insurance_fund") if manifest.insurance_fund else None,
        collateral.symbol if collateral and collateral.symbol else "USD",
        collateral.decimals if collateral else 18,
    )


def _read(fn: Any, what: str) -> Any:
    from web3.exceptions import ContractLogicError, Web3RPCError

    from keeper.chain import revert_reason
    from keeper.retry import call_with_retry

    try:
        return call_with_retry(fn)
    except (ContractLogicError, Web3RPCError) as exc:
        raise PeopleError(f"{what} reverted: {revert_reason(exc)}") from None


__all__ = [
    "Chain",
    "PeopleError",
    "check_reachable",
    "connect_chain",
    "health_state",
    "num",
]
