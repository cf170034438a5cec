"""The deployment manifest: the deployer's JSON, the one source of the protocol's addresses
(their ABIs: keeper/artifacts). Read by `keeper run|status|trade|audit` through
:class:`keeper.context.RunContext`."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from keeper.errors import CliError


class CollateralInfo(BaseModel):
    model_config = ConfigDict(extra="allow")
    address: str
    decimals: int
    symbol: str = ""


# manifest key -> contract name (keeper/artifacts): the protocol's singletons
PROTOCOL_CONTRACTS = {
    "clearinghouse": "Clearinghouse",
    "liquidation_engine": "LiquidationEngine",
    "lens": "Lens",
    "insurance_fund": "InsuranceFund",
}


class MarketInfo(BaseModel):
    model_config = ConfigDict(extra="allow")
    oracle: str
    market: str | None = None
    funding: str | None = None
    reporters: list[str] = []
    initial_price: Decimal


class Manifest(BaseModel):
    """The deployer's JSON manifest (new keys from later deployers are kept, not rejected).

    The one source of the protocol's addresses (their ABIs: keeper/artifacts). `liquidation_engine`
    and `lens` are needed by the liquidation and ADL bots, `keeper audit adl`, `keeper status` and
    `keeper trade`: a manifest without them (an older deployer's) is refused by
    `RunContext.manifest_address`, naming the key."""

    model_config = ConfigDict(extra="allow")
    chain_id: int
    block: int = 0
    deployer: str = ""
    collateral: CollateralInfo | None = None
    clearinghouse: str | None = None
    liquidation_engine: str | None = None  # LiquidationEngine: liquidate, takeover, adl, adl_score
    lens: str | None = None  # Lens: market_summary, find_hint, orders_of, order, account_summary
    insurance_fund: str | None = None
    markets: dict[str, MarketInfo]


def load_manifest(path: str | Path) -> Manifest:
    path = Path(path)
    if not path.is_file():
        raise CliError(f"deployment manifest not found: {path} (deploy first, or pass --manifest)")
    try:
        return Manifest.model_validate(json.loads(path.read_text()))
    except (json.JSONDecodeError, ValidationError) as exc:
        raise CliError(f"invalid deployment manifest {path}: {exc}") from None
