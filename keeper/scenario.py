"""Scenario runner: replay a YAML scenario on a real local chain.

    keeper scenario run FILE.yaml [--rpc URL] [--verbose]
    keeper scenario check FILE.yaml

A scenario (format: ``SCENARIOS.md``; every level is a pydantic model with
unknown keys rejected) sets up markets and accounts on a fresh deployment of
the protocol (:func:`keeper.localnet.start_localnet`), drives it step by step
and checks expectations. Exit codes of ``run``: 0 every expectation holds,
1 an expectation or a step failed, 2 the file is malformed (or the node
could not be started).

Python API: :func:`load_scenario` (parse and validate, raises
:class:`ScenarioError` with ``line N`` in its message) and :func:`run_scenario`
(returns a :class:`ScenarioResult`).

Beyond SCENARIOS.md this runner accepts:

* top level ``requires: [funding, liquidation, adl]``: features the scenario
  needs; the test suite skips it while one is missing from
  ``IMPLEMENTED_FEATURES`` (a scenario that needs one without saying so fails);
  ``insurance_fee_share`` (default: the deployer's, 0.5 of trading fees) and
  ``insurance_payout_cap`` (the fund pays at most this fraction of its assets
  per bad-debt event, beyond it ADL; default 0.5, ``DeployConfig``);
* market keys ``max_open_orders``, ``max_fills``, ``max_open_interest``,
  ``oracle_sources``, ``oracle_quorum``, ``oracle_max_age`` (a duration),
  ``oracle_max_divergence`` and ``oracle_reference_rate`` (per hour), the
  index guard's fractions (PROTOCOL.md §4; default 0.5 each, in [0.05, 10]
  and [0.01, 10], whole basis points). An ``oracle`` step that moves the
  index beyond the guard is confirmed by the owner, and the step says so;
  unset keys fall back to ``keeper.deploy.MarketConfig``; the funding keys
  are applied to the market's FundingRate (checked against its hard bounds
  before deploying); the liquidation keys to the market's
  ``Clearinghouse.LiquidationParams`` (hard bounds checked too):
  ``liquidation_fee`` (of closed notional, default 0.005, at most 0.05),
  ``liquidator_share`` (of that fee, to the caller; default 0.5),
  ``bankrupt_band`` (a bankrupt account closes within mark -+ this; default
  0.05, in [0.001, 0.5]), ``takeover_discount`` (default 0.01, at most 0.1),
  ``small_position_notional`` (positions and remainders worth at most this
  close whole; default 1000);
* steps: ``cancel`` by ``order_id`` (+ ``market``), ``expect_revert`` and
  ``note`` beside the step kind (``- advance: 1h`` / ``  note: ...``);
  ``keepers: [oracle]`` re-reports every index now, ``keepers: [funding]``
  runs one pass of the funding keeper (``keeper.bots.funding``) now,
  ``keepers: [liquidation]`` / ``[adl]`` one pass of the liquidation / ADL
  keeper (``keeper.bots.liquidation.LiquidationBot``,
  ``keeper.bots.adl.AdlBot``) from keys of the runner's own;
  ``liquidate: {account, market, by, max_size?}``: `by` calls
  ``LiquidationEngine.liquidate`` on the account's subaccount 0, listing all its
  resting orders in the market (the fee share goes to `by`);
* account fields ``open_orders`` (per market), ``initial_margin``,
  ``maintenance_margin``; ``liquidated_size`` (base units of the account's
  position closed by ``Liquidation`` + taken over by ``Takeover`` events) and
  ``adl_size`` (``Deleveraged`` events where it is the bankrupt account or the
  counterparty), per market or summed over all; market fields
  ``predicted_funding_rate`` (the running interval's rate if it settled now),
  ``period_funding_rate`` (the last rate per funding_period: last rate x
  period / interval) and ``last_premium`` (the last settled mean premium).

Semantics worth knowing: a ``market`` order is an IOC whose limit is the mark
x (1 +- 50%) rounded inwards to the tick, so the minimum order notional is
checked at that limit, not at the fill price (reduce-only IOCs are exempt);
chain time stands still between steps (anvil's block timestamp interval is
set to 0 for the run, and restored afterwards), so only ``advance`` moves it;
``advance: D`` plays the keepers' schedule: it steps time forward in stops no
longer than the smallest ``sample_interval`` of the markets, landing exactly
on every market's next funding time, and at each stop (block timestamp exact)
runs every action of ``ADVANCE_KEEPERS`` in order: the oracle reporter
re-reports every market's current index; the funding keeper's plan (settle
or sample as due, ``keeper.bots.funding.plan_funding_actions``) is executed;
the liquidation keeper's plan (``keeper.bots.liquidation.plan_liquidations``:
liquidatable accounts worst first, bankrupt ones the insurance fund can cover)
and then the ADL keeper's (the accounts left to ADL, against the profitable
opposite positions by live ``adl_score``) are executed, each call simulated
first and skipped when it would revert benignly or close nothing.
Those stops use a fast transaction lane (JSON-RPC batches, node-signed dev
accounts, fixed gas, receipts checked): a day at 60 s samples is 1,440 stops.
``funding_paid`` is the funding settled into cash (``PositionChanged``
events) plus the funding owed now (``position().funding_owed``), + = paid;
event counts cover every protocol contract (clearinghouse, liquidation engine,
markets, oracles, funding rates, insurance fund; each matched against its own ABI) from the
block after the deployment, so they include the setup's deposits;
``insurance_fund: balance`` is the fund's ERC-4626 ``totalAssets()`` (its
assets plus the whole token units of its pending cash at the clearinghouse),
funded at setup by an ERC-4626 deposit from an actor of the runner's own;
a failed expectation does not stop the run, a failed step does.

Layout: the YAML loader that keeps line numbers, the models, the static
checks (pure), then :class:`ScenarioRunner` (chain I/O) and the CLI glue.
"""

from __future__ import annotations

import argparse
import difflib
import logging
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal, localcontext
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from keeper.model import position_change_of_fill

WAD = 10**18

# Features a scenario can declare in `requires:`; the ones not in
# IMPLEMENTED_FEATURES make the test suite skip the scenario (with that reason).
FEATURES = ("funding", "liquidation", "adl")
IMPLEMENTED_FEATURES: frozenset[str] = frozenset({"funding", "liquidation", "adl"})
ORDER_TYPES = {"limit": 0, "post_only": 1, "ioc": 2, "market": 2}
# a market order is an IOC whose limit is the mark +- this fraction (on the tick grid)
MARKET_SLIPPAGE = Decimal("0.5")


def cancelled_rest(
    size: int, filled: int, rested: int, order_type: int, show: Callable[[Decimal], str] | None = None
) -> str | None:
    """The report's line for the part of a (partly) filled order that neither
    filled nor rests, None when there is none: an IOC's rest, or a limit
    order's rest that would cross the book after max_fills maker orders
    (PROTOCOL.md §5). Nothing filled and nothing resting has its own line."""
    left = size - filled - rested
    if not filled or left <= 0:
        return None
    why = (
        "IOC"
        if order_type == ORDER_TYPES["ioc"]
        else "max_fills reached with the book still within the limit: resting, it would cross the book"
    )
    return f"the rest, {(show or fmt)(from_wad(left))}, is cancelled ({why})"


REMOVED_REASONS = {
    1: "cancelled",
    2: "filled",  # no longer logged: a filled order's end is its Fill with remaining 0
    3: "self-trade: own resting order cancelled",
    4: "reduce-only void",
}


# actors of the runner itself (never a scenario account): the insurance fund's
# depositor and the keepers' keys
INSURANCE_DEPOSITOR = "<insurance depositor>"
LIQUIDATION_KEEPER = "<liquidation keeper>"
ADL_KEEPER = "<adl keeper>"
RUNNER_ACTORS = (INSURANCE_DEPOSITOR, LIQUIDATION_KEEPER, ADL_KEEPER)


class ScenarioError(ValueError):
    """A malformed scenario: the message is one line naming the line and the key."""


class ScenarioEnvironmentError(RuntimeError):
    """The node could not be started or reached."""


class UnobservableValue(Exception):
    """A field the runner cannot compute exactly from the chain (e.g. funding settled without an event)."""


# ================================================================ scalars


_DECIMAL_RE = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")
_DURATION_RE = re.compile(r"(\d+)([smhd])")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_decimal(v: Any) -> Decimal:
    """A decimal from a string ("86000", "0.065", "1_000"), an int or a Decimal. YAML values arrive
    as the text written, so they are exact; a float (Python API only) goes through its repr."""
    if isinstance(v, bool):
        raise ValueError(f"expected a decimal number, got {v!r}")
    if isinstance(v, Decimal):
        if not v.is_finite():
            raise ValueError(f"expected a finite decimal, got {v}")
        return v
    if isinstance(v, int):
        return Decimal(v)
    if isinstance(v, float):
        return Decimal(repr(v))
    if isinstance(v, str):
        s = v.strip().replace("_", "")
        if _DECIMAL_RE.fullmatch(s):
            return Decimal(s)
    raise ValueError(f'expected a decimal number as a string, e.g. "86000.5", got {v!r}')


def parse_duration(v: Any) -> int:
    """Seconds of a duration: "30s", "5m", "8h", "1d" (or a sum like "1h30m")."""
    if isinstance(v, str):
        s = v.strip()
        if s and _DURATION_RE.sub("", s) == "":
            return sum(int(n) * _DURATION_UNITS[u] for n, u in _DURATION_RE.findall(s))
    raise ValueError(f"bad duration {v!r}: use a whole number with a unit s, m, h or d (30s, 5m, 8h, 1d)")


def format_duration(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def fmt(d: Decimal | int | None) -> str:
    """A decimal without exponent or trailing zeros: 400, 0.1, -2.0495."""
    if d is None:
        return "-"
    if isinstance(d, int):
        return str(d)
    with localcontext() as ctx:
        ctx.prec = 100
        s = format(d.normalize(), "f")
    return "0" if s in ("-0", "+0") else s


def from_wad(x: int) -> Decimal:
    """Exact: WAD integer -> human decimal."""
    with localcontext() as ctx:
        ctx.prec = 100
        return Decimal(x) / WAD


def to_units(x: Decimal, decimals: int) -> int:
    """Exact: human decimal -> integer units with `decimals` (refuses a fraction of a unit)."""
    with localcontext() as ctx:
        ctx.prec = 100
        scaled = x.scaleb(decimals)
        if scaled != scaled.to_integral_value():
            raise ValueError(f"{fmt(x)} has more than {decimals} decimals")
        return int(scaled)


def _max_decimals(n: int) -> Callable[[Decimal], Decimal]:
    def check(d: Decimal) -> Decimal:
        to_units(d, n)
        return d

    return check


Dec = Annotated[Decimal, BeforeValidator(parse_decimal)]
NonNegDec = Annotated[Decimal, BeforeValidator(parse_decimal), Field(ge=0)]
PosDec = Annotated[Decimal, BeforeValidator(parse_decimal), Field(gt=0)]
Fraction = Annotated[Decimal, BeforeValidator(parse_decimal), Field(ge=0, le=1)]
# WAD values on chain: at most 18 decimals
WadDec = Annotated[Decimal, BeforeValidator(lambda v: _max_decimals(18)(parse_decimal(v))), Field(ge=0)]
PosWadDec = Annotated[Decimal, BeforeValidator(lambda v: _max_decimals(18)(parse_decimal(v))), Field(gt=0)]
Duration = Annotated[int, BeforeValidator(parse_duration)]
PosDuration = Annotated[int, BeforeValidator(parse_duration), Field(gt=0)]
Feature = Literal["funding", "liquidation", "adl"]
KeeperName = Literal["oracle", "funding", "liquidation", "adl"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ================================================================ models


# MarketSpec keys applied to keeper.deploy.MarketConfig (Clearinghouse.LiquidationParams)
LIQUIDATION_MARKET_KEYS = (
    "liquidation_fee",
    "liquidator_share",
    "bankrupt_band",
    "takeover_discount",
    "small_position_notional",
)
# MarketSpec keys applied to keeper.deploy.MarketConfig under the same name
FUNDING_MARKET_KEYS = (
    "funding_interval",
    "funding_period",
    "interest_rate",
    "funding_clamp",
    "funding_cap",
    "impact_notional",
    "sample_interval",
    "premium_mode",
)


class MarketSpec(_Model):
    """One market. Unset optional parameters fall back to keeper.deploy.MarketConfig's defaults."""

    index: PosWadDec
    tick_size: PosWadDec
    lot_size: PosWadDec
    min_order_notional: PosWadDec
    initial_margin: Fraction | None = None
    maintenance_margin: Fraction | None = None
    taker_fee: Fraction | None = None
    maker_fee: Fraction | None = None
    mark_band: Fraction | None = None
    max_open_orders: int | None = Field(None, ge=1, le=1000)
    max_fills: int | None = Field(None, ge=1, le=64)
    max_open_interest: PosWadDec | None = None
    oracle_sources: int | None = Field(None, ge=1, le=8)
    oracle_quorum: int | None = Field(None, ge=1, le=8)
    oracle_max_age: Annotated[int, BeforeValidator(parse_duration), Field(ge=5, le=86400)] | None = None
    oracle_max_divergence: (
        Annotated[Decimal, BeforeValidator(parse_decimal), Field(ge=Decimal("0.05"), le=10)] | None
    ) = None
    oracle_reference_rate: (
        Annotated[Decimal, BeforeValidator(parse_decimal), Field(ge=Decimal("0.01"), le=10)] | None
    ) = None
    # liquidation (PROTOCOL.md §9): the market's Clearinghouse.LiquidationParams
    liquidation_fee: WadDec | None = None
    liquidator_share: Fraction | None = None
    bankrupt_band: WadDec | None = None
    takeover_discount: WadDec | None = None
    small_position_notional: WadDec | None = None
    # funding (PROTOCOL.md §8): the market's FundingRate parameters
    funding_interval: PosDuration | None = None
    funding_period: PosDuration | None = None
    interest_rate: (
        Annotated[Decimal, BeforeValidator(lambda v: _max_decimals(18)(parse_decimal(v)))] | None
    ) = None
    funding_clamp: WadDec | None = None
    funding_cap: WadDec | None = None
    impact_notional: PosWadDec | None = None
    sample_interval: PosDuration | None = None
    premium_mode: Literal["impact_band", "impact_mid"] | None = None

    def market_config(self, symbol: str) -> Any:
        from keeper.deploy import MarketConfig

        overrides = {
            "initial_price": self.index,
            "tick_size": self.tick_size,
            "lot_size": self.lot_size,
            "min_order_notional": self.min_order_notional,
        }
        for key in (
            "initial_margin",
            "maintenance_margin",
            "taker_fee",
            "maker_fee",
            "mark_band",
            "max_open_orders",
            "max_fills",
            "max_open_interest",
            "oracle_sources",
            "oracle_quorum",
            "oracle_max_age",
            "oracle_max_divergence",
            "oracle_reference_rate",
            *FUNDING_MARKET_KEYS,
            *LIQUIDATION_MARKET_KEYS,
        ):
            value = getattr(self, key)
            if value is not None:
                overrides[key] = value
        return MarketConfig(symbol, **overrides)

    @model_validator(mode="after")
    def _bounds(self) -> MarketSpec:
        """The contracts' hard bounds (PerpMarket._set_params, IndexOracle), checked before deploying."""
        from keeper.deploy import MarketConfig

        d = MarketConfig("X", Decimal(1))
        imr = self.initial_margin if self.initial_margin is not None else d.initial_margin
        mmr = self.maintenance_margin if self.maintenance_margin is not None else d.maintenance_margin
        if not Decimal("0.001") <= mmr < imr:
            raise ValueError(
                f"need 0.001 <= maintenance_margin < initial_margin <= 1, got maintenance_margin {fmt(mmr)} "
                f"and initial_margin {fmt(imr)}"
            )
        for key in ("taker_fee", "maker_fee"):
            fee = getattr(self, key)
            if fee is not None and fee > Decimal("0.01"):
                raise ValueError(f"{key} {fmt(fee)} is above the 1% bound")
        band = self.mark_band if self.mark_band is not None else d.mark_band
        if not Decimal("0.001") <= band <= Decimal("0.5"):
            raise ValueError(f"mark_band {fmt(band)} out of bounds [0.001, 0.5]")
        with localcontext() as ctx:
            ctx.prec = 100
            for key in ("initial_margin", "maintenance_margin", "taker_fee", "maker_fee", "mark_band"):
                rate = getattr(self, key)
                if rate is not None and rate.scaleb(9) % 1 != 0:
                    # PerpMarket keeps its rates in units of 1e-9, in one storage word
                    raise ValueError(f"{key} {fmt(rate)} must be a whole multiple of 1e-9")
            if (self.tick_size * self.lot_size).scaleb(18) % 1 != 0:
                raise ValueError(
                    f"tick_size x lot_size = {fmt(self.tick_size * self.lot_size)} must be a whole wei (1e-18)"
                )
        sources = self.oracle_sources or d.oracle_sources
        quorum = self.oracle_quorum or min(d.oracle_quorum, sources)
        if quorum > sources:
            raise ValueError(f"oracle_quorum {quorum} is above oracle_sources {sources}")
        for key in ("oracle_max_divergence", "oracle_reference_rate"):
            value = getattr(self, key)
            if value is not None and value.scaleb(4) % 1 != 0:
                raise ValueError(f"{key} {fmt(value)} must be whole basis points (0.0001)")
        self._funding_bounds(d)
        self._liquidation_bounds()
        return self

    def _liquidation_bounds(self) -> None:
        """LiquidationEngine._set_liquidation_params' hard bounds."""
        if self.liquidation_fee is not None and self.liquidation_fee > Decimal("0.05"):
            raise ValueError(f"liquidation_fee {fmt(self.liquidation_fee)} is above the 5% bound")
        band = self.bankrupt_band
        if band is not None and not Decimal("0.001") <= band <= Decimal("0.5"):
            raise ValueError(f"bankrupt_band {fmt(band)} out of bounds [0.001, 0.5]")
        if self.takeover_discount is not None and self.takeover_discount > Decimal("0.1"):
            raise ValueError(f"takeover_discount {fmt(self.takeover_discount)} is above the 10% bound")

    def _funding_bounds(self, d: Any) -> None:
        """FundingRate._set_params' hard bounds, on the values that will be deployed."""

        def pick(key: str) -> Any:
            value = getattr(self, key)
            return getattr(d, key) if value is None else value

        interval, period, sample = pick("funding_interval"), pick("funding_period"), pick("sample_interval")
        if not 60 <= interval <= 86400:
            raise ValueError(f"funding_interval {format_duration(interval)} out of bounds [60s, 1d]")
        if not interval <= period <= 30 * 86400:
            raise ValueError(
                f"funding_period {format_duration(period)} out of bounds [funding_interval "
                f"{format_duration(interval)}, 30d]"
            )
        if sample > interval:
            raise ValueError(
                f"sample_interval {format_duration(sample)} is longer than funding_interval "
                f"{format_duration(interval)}"
            )
        interest = pick("interest_rate")
        if abs(interest) > Decimal("0.01"):
            raise ValueError(
                f"interest_rate {fmt(interest)} out of bounds [-0.01, 0.01] (per funding_period)"
            )
        if pick("funding_clamp") > Decimal("0.01"):
            raise ValueError(f"funding_clamp {fmt(pick('funding_clamp'))} is above the 1% bound")
        cap = pick("funding_cap")
        if not Decimal(0) < cap <= Decimal("0.1"):
            raise ValueError(f"funding_cap {fmt(cap)} out of bounds (0, 0.1] (per funding_interval)")


class AccountSpec(_Model):
    deposit: WadDec | None = None


class ScenarioSpec(_Model):
    """The top level of a scenario file (steps are validated one by one, with their own models)."""

    name: str | None = None
    description: str = ""
    requires: list[Feature] = []
    collateral_decimals: int = Field(6, ge=2, le=18)
    insurance_fee_share: Fraction | None = None
    insurance_payout_cap: Annotated[Decimal, BeforeValidator(parse_decimal), Field(gt=0, le=1)] | None = None
    markets: dict[str, MarketSpec] = Field(min_length=1)
    insurance_fund: WadDec = Decimal(0)
    accounts: dict[str, AccountSpec] = {}
    steps: list[Any] = []

    @field_validator("accounts", mode="before")
    @classmethod
    def _empty_accounts(cls, v: Any) -> Any:
        if isinstance(v, Mapping):
            return {k: ({} if a is None else a) for k, a in v.items()}
        return v

    @field_validator("accounts")
    @classmethod
    def _reserved(cls, v: dict[str, AccountSpec]) -> dict[str, AccountSpec]:
        for name in v:
            if name in RUNNER_ACTORS:
                raise ValueError(f"account name {name!r} is reserved for the runner")
        return v

    @field_validator("markets")
    @classmethod
    def _symbols(cls, v: dict[str, MarketSpec]) -> dict[str, MarketSpec]:
        for symbol in v:
            if not 0 < len(symbol.encode()) <= 16:
                raise ValueError(f"market symbol {symbol!r} must be 1..16 bytes")
        return v


class _Revertible(_Model):
    expect_revert: str | None = None


class OracleStep(_Revertible):
    market: str
    price: WadDec


class OrderStep(_Revertible):
    account: str
    market: str
    side: Literal["buy", "sell"]
    size: WadDec
    price: WadDec | None = None
    type: Literal["limit", "post_only", "ioc", "market"] = "limit"
    reduce_only: bool = False
    label: str | None = None

    @model_validator(mode="after")
    def _price_needed(self) -> OrderStep:
        if self.price is None and self.type != "market":
            raise ValueError(f"a {self.type} order needs a price (only market orders may omit it)")
        return self


class CancelStep(_Revertible):
    account: str
    label: str | None = None
    order_id: int | None = Field(None, ge=0)
    market: str | None = None

    @model_validator(mode="after")
    def _one_of(self) -> CancelStep:
        if (self.label is None) == (self.order_id is None):
            raise ValueError("a cancel names exactly one of label or order_id")
        return self


class AmountStep(_Revertible):
    account: str
    amount: WadDec


class LiquidateStep(_Revertible):
    account: str
    market: str
    by: str
    max_size: PosWadDec | None = None


AccountField = Literal[
    "cash",
    "equity",
    "position",
    "entry_price",
    "unrealized_pnl",
    "realized_pnl",
    "funding_paid",
    "fees_paid",
    "withdrawable",
    "initial_margin",
    "maintenance_margin",
    "open_orders",
    "liquidated_size",
    "adl_size",
]
MarketField = Literal[
    "index",
    "mark",
    "open_interest",
    "best_bid",
    "best_ask",
    "last_trade",
    "cumulative_funding",
    "last_funding_rate",
    "funding_apr",
    "predicted_funding_rate",
    "period_funding_rate",
    "last_premium",
]
# account fields read per market (the market may be omitted when the scenario has one)
PER_MARKET_FIELDS = frozenset({"position", "entry_price", "open_orders"})
# account fields of the whole (cross-margined) account: no market
ACCOUNT_WIDE_FIELDS = frozenset({"cash", "equity", "withdrawable", "initial_margin", "maintenance_margin"})


class AccountExpect(_Model):
    account: str
    field: AccountField
    market: str | None = None
    value: Dec
    tol: NonNegDec = Decimal(0)


class MarketExpect(_Model):
    market: str
    field: MarketField
    value: Dec
    tol: NonNegDec = Decimal(0)


class InsuranceExpect(_Model):
    insurance_fund: Literal["balance"]
    value: Dec
    tol: NonNegDec = Decimal(0)


class EventExpect(_Model):
    event: str
    count: int = Field(ge=0)


Expectation = AccountExpect | MarketExpect | InsuranceExpect | EventExpect

STEP_MODELS: dict[str, type[_Model]] = {
    "oracle": OracleStep,
    "order": OrderStep,
    "cancel": CancelStep,
    "deposit": AmountStep,
    "withdraw": AmountStep,
    "liquidate": LiquidateStep,
}
STEP_KINDS = (*STEP_MODELS, "advance", "keepers", "expect")
STEP_SIBLING_KEYS = ("expect_revert", "note")


@dataclass(frozen=True)
class Step:
    index: int  # 1-based
    line: int | None
    kind: str
    spec: Any  # a step model, seconds (advance), keeper names (keepers) or expectations (expect)
    expect_revert: str | None = None
    note: str | None = None
    item_lines: tuple[int | None, ...] = ()  # expect: the line of each item


@dataclass
class Scenario:
    spec: ScenarioSpec
    steps: list[Step]
    source: str = "<scenario>"

    @property
    def name(self) -> str:
        return self.spec.name or Path(self.source).stem

    def missing_features(self) -> list[str]:
        """Features in `requires:` that the protocol does not implement yet."""
        return [f for f in self.spec.requires if f not in IMPLEMENTED_FEATURES]


# ================================================================ loading


@dataclass
class _Doc:
    data: Any
    lines: dict[tuple, int]
    source: str

    def line(self, path: Sequence[Any]) -> int | None:
        path = tuple(path)
        while True:
            if path in self.lines:
                return self.lines[path]
            if not path:
                return None
            path = path[:-1]

    def error(self, path: Sequence[Any], problem: str) -> ScenarioError:
        line = self.line(path)
        where = _where(tuple(path))
        parts = [self.source]
        if line is not None:
            parts.append(f"line {line}")
        if where:
            parts.append(where)
        parts.append(problem)
        return ScenarioError(": ".join(parts))


def _where(path: tuple) -> str:
    """A human name for the container of a key path: "step 3 (order)", "markets.BTC-PERP"."""
    if len(path) >= 2 and path[0] == "steps" and isinstance(path[1], int):
        out = f"step {path[1] + 1}"
        if len(path) >= 3:
            out += f" ({path[2]})"
            if path[2] == "expect" and len(path) >= 4 and isinstance(path[3], int):
                out += f" item {path[3] + 1}"
        return out
    if len(path) >= 2 and path[0] in ("markets", "accounts"):
        return f"{path[0]}.{path[1]}"
    return ""


def _compose(text: str, source: str) -> _Doc:
    """YAML -> plain data (every scalar kept as the text written, null as None) + line of every key."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise ScenarioError(f"{source}: {where}YAML syntax error: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{source}: YAML error: {exc}") from None
    if node is None:
        raise ScenarioError(f"{source}: empty scenario file")
    lines: dict[tuple, int] = {}
    return _Doc(_node_data(node, (), lines, source), lines, source)


def _node_data(node: yaml.Node, path: tuple, lines: dict[tuple, int], source: str) -> Any:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for knode, vnode in node.value:
            kline = knode.start_mark.line + 1
            if not isinstance(knode, yaml.ScalarNode):
                raise ScenarioError(f"{source}: line {kline}: a key must be a plain name")
            key = knode.value
            if key in out:
                raise ScenarioError(f"{source}: line {kline}: duplicate key '{key}'")
            lines[path + (key,)] = kline
            out[key] = _node_data(vnode, path + (key,), lines, source)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_node_data(n, path + (i,), lines, source) for i, n in enumerate(node.value)]
    if node.tag == "tag:yaml.org,2002:null" and not node.style:
        return None
    return node.value


def _unwrap(t: Any) -> Any:
    while True:
        origin = get_origin(t)
        if origin is Annotated:
            t = get_args(t)[0]
        elif origin is Union or type(t).__name__ == "UnionType":
            args = [a for a in get_args(t) if a is not type(None)]
            if len(args) != 1:
                return t
            t = args[0]
        else:
            return t


def _allowed_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    """Field names of the model reached by `loc` (a pydantic error location without its last key)."""
    t: Any = model
    for part in loc:
        t = _unwrap(t)
        if isinstance(t, type) and issubclass(t, BaseModel):
            f = t.model_fields.get(part) if isinstance(part, str) else None
            if f is None:
                return []
            t = f.annotation
        elif get_origin(t) in (dict, list):
            t = get_args(t)[-1]
        else:
            return []
    t = _unwrap(t)
    if isinstance(t, type) and issubclass(t, BaseModel):
        return list(t.model_fields)
    return []


def _validate(doc: _Doc, model: type[BaseModel] | TypeAdapter, data: Any, base: tuple) -> Any:
    """Validate `data` (found at path `base` of the document); a failure becomes a ScenarioError."""
    try:
        if isinstance(model, TypeAdapter):
            return model.validate_python(data)
        return model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        # the earliest line first; on one line an unknown key (often a misspelt required one) first
        errors.sort(key=lambda e: (doc.line(base + tuple(e["loc"])) or 0, e["type"] != "extra_forbidden"))
        err = errors[0]
        loc = tuple(err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        last = loc[-1] if loc else None
        if err["type"] == "extra_forbidden":
            allowed = _allowed_keys(model, loc[:-1]) if isinstance(model, type) else []
            close = difflib.get_close_matches(str(last), allowed, n=1)
            problem = f"unknown key '{last}'"
            if close:
                problem += f" (did you mean '{close[0]}'?)"
            elif allowed:
                problem += f" (allowed: {', '.join(allowed)})"
        elif err["type"] == "missing":
            problem = f"missing required key '{last}'"
        elif last is None or (isinstance(model, type) and _allowed_keys(model, loc)):
            problem = msg  # a check of the whole mapping (model validator)
        else:
            keys = [k for k in base + loc if isinstance(k, str)]
            name = f"key '{keys[-1]}'" if keys else "value"
            if isinstance(last, int):
                name += f" item {last + 1}"
            problem = f"{name}: {msg}"
            if "input" in err and not isinstance(err["input"], dict | list) and "got " not in msg:
                problem += f" (got {err['input']!r})"
        raise doc.error(base + loc, problem) from None


def load_scenario(source: str | Path | Mapping[str, Any]) -> Scenario:
    """Parse and validate a scenario file (or an already loaded mapping). Raises ScenarioError."""
    if isinstance(source, Mapping):
        doc = _Doc(dict(source), {}, "<scenario>")
    else:
        path = Path(source)
        try:
            text = path.read_text()
        except OSError as exc:
            raise ScenarioError(f"{path}: cannot read: {exc.strerror or exc}") from None
        doc = _compose(text, str(path))
    if not isinstance(doc.data, dict):
        raise doc.error((), "a scenario is a mapping (name, markets, accounts, steps, ...)")
    spec: ScenarioSpec = _validate(doc, ScenarioSpec, doc.data, ())
    steps = [_parse_step(doc, raw, i) for i, raw in enumerate(spec.steps)]
    scenario = Scenario(spec, steps, doc.source)
    _check_references(doc, scenario)
    return scenario


_keepers_adapter = TypeAdapter(list[KeeperName])


def _parse_step(doc: _Doc, raw: Any, i: int) -> Step:
    path = ("steps", i)
    if not isinstance(raw, dict):
        raise doc.error(path, f"a step is a mapping with one kind ({', '.join(STEP_KINDS)}), got {raw!r}")
    for key in raw:
        if key not in STEP_KINDS and key not in STEP_SIBLING_KEYS:
            close = difflib.get_close_matches(key, (*STEP_KINDS, *STEP_SIBLING_KEYS), n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"expected one of: {', '.join(STEP_KINDS)}"
            raise doc.error(path + (key,), f"unknown step kind '{key}' ({hint})")
    kinds = [k for k in raw if k in STEP_KINDS]
    if len(kinds) != 1:
        raise doc.error(path, f"a step has exactly one kind, found {kinds or 'none'}")
    kind = kinds[0]
    body = raw[kind]
    base = path + (kind,)
    expect_revert = raw.get("expect_revert")
    note = raw.get("note")
    for key, value in (("expect_revert", expect_revert), ("note", note)):
        if value is not None and not isinstance(value, str):
            raise doc.error(path + (key,), f"key '{key}': expected a string")
    item_lines: tuple[int | None, ...] = ()
    if kind in STEP_MODELS:
        if not isinstance(body, dict):
            raise doc.error(base, f"'{kind}' takes a mapping of keys, got {body!r}")
        spec: Any = _validate(doc, STEP_MODELS[kind], body, base)
        if spec.expect_revert is not None:
            if expect_revert is not None:
                raise doc.error(path + ("expect_revert",), "expect_revert given twice")
            expect_revert = spec.expect_revert
    elif kind == "advance":
        try:
            spec = parse_duration(body)
        except ValueError as exc:
            raise doc.error(base, f"key 'advance': {exc}") from None
    elif kind == "keepers":
        spec = tuple(_validate(doc, _keepers_adapter, body, base))
    else:  # expect
        if not isinstance(body, list) or not body:
            raise doc.error(base, "'expect' takes a non-empty list of expectations")
        if expect_revert is not None:
            raise doc.error(path + ("expect_revert",), "an expect step cannot carry expect_revert")
        spec = tuple(_parse_expectation(doc, item, base + (j,)) for j, item in enumerate(body))
        item_lines = tuple(doc.line(base + (j,)) for j in range(len(body)))
    if expect_revert is not None and not expect_revert:
        raise doc.error(path + ("expect_revert",), "expect_revert needs a reason substring")
    return Step(i + 1, doc.line(path), kind, spec, expect_revert, note, item_lines)


def _parse_expectation(doc: _Doc, item: Any, path: tuple) -> Expectation:
    if not isinstance(item, dict):
        raise doc.error(path, f"an expectation is a mapping, got {item!r}")
    if "event" in item:
        model: type[_Model] = EventExpect
    elif "insurance_fund" in item:
        model = InsuranceExpect
    elif "account" in item:
        model = AccountExpect
    elif "market" in item:
        model = MarketExpect
    else:
        raise doc.error(path, "an expectation names one of: account, market, insurance_fund, event")
    return _validate(doc, model, item, path)


# the protocol's contracts, whose events `{event: NAME, count: N}` counts
PROTOCOL_CONTRACTS = (
    "Clearinghouse", "LiquidationEngine", "PerpMarket", "IndexOracle", "FundingRate", "InsuranceFund",
)  # fmt: skip


def _contract_events(contract: str) -> dict[str, list[dict]]:
    """Event name -> ABI entries of one contract."""
    from keeper import artifacts

    out: dict[str, list[dict]] = {}
    for entry in artifacts.abi(contract):
        if entry.get("type") == "event":
            out.setdefault(entry["name"], []).append(entry)
    return out


def _protocol_events() -> dict[str, list[dict]]:
    """Event name -> ABI entries, over the contracts whose logs are counted."""
    out: dict[str, list[dict]] = {}
    for contract in PROTOCOL_CONTRACTS:
        for name, entries in _contract_events(contract).items():
            out.setdefault(name, []).extend(entries)
    return out


def _check_references(doc: _Doc, sc: Scenario) -> None:
    """Names used by steps exist; labels are defined before use; per-market fields have a market."""
    markets = sc.spec.markets
    accounts = sc.spec.accounts
    single = next(iter(markets)) if len(markets) == 1 else None
    dec = sc.spec.collateral_decimals
    labels: set[str] = set()
    events: dict[str, list[dict]] | None = None

    def need(kind: str, name: str | None, known: Mapping[str, Any], path: tuple) -> None:
        if name is not None and name not in known:
            raise doc.error(
                path, f"key '{path[-1]}': unknown {kind} '{name}' (declared: {', '.join(known) or 'none'})"
            )

    def amount(value: Decimal | None, path: tuple) -> None:
        if value is not None:
            try:
                to_units(value, dec)
            except ValueError as exc:
                raise doc.error(path, f"key '{path[-1]}': {exc} (collateral_decimals {dec})") from None

    amount(sc.spec.insurance_fund, ("insurance_fund",))
    for name, acc in accounts.items():
        amount(acc.deposit, ("accounts", name, "deposit"))
    for step in sc.steps:
        base = ("steps", step.index - 1, step.kind)
        s = step.spec
        if step.kind in STEP_MODELS and step.kind != "oracle":
            need("account", s.account, accounts, base + ("account",))
        if step.kind in ("oracle", "order", "liquidate"):
            need("market", s.market, markets, base + ("market",))
        if step.kind == "liquidate":
            need("account", s.by, accounts, base + ("by",))
        if step.kind in ("deposit", "withdraw"):
            amount(s.amount, base + ("amount",))
        if step.kind == "order" and s.label is not None:
            labels.add(s.label)
        if step.kind == "cancel":
            if s.label is not None and s.label not in labels:
                raise doc.error(base + ("label",), f"key 'label': no earlier order has label '{s.label}'")
            need("market", s.market, markets, base + ("market",))
            if s.order_id is not None and s.market is None and single is None:
                raise doc.error(base, "a cancel by order_id needs 'market' (the scenario has several)")
        if step.kind == "expect":
            for j, e in enumerate(s):
                p = base + (j,)
                if isinstance(e, AccountExpect | MarketExpect):
                    need("market", e.market, markets, p + ("market",))
                if isinstance(e, AccountExpect):
                    need("account", e.account, accounts, p + ("account",))
                    if e.field in PER_MARKET_FIELDS and e.market is None and single is None:
                        raise doc.error(p, f"field '{e.field}' needs 'market' (the scenario has several)")
                    if e.field in ACCOUNT_WIDE_FIELDS and e.market is not None:
                        raise doc.error(
                            p + ("market",),
                            f"key 'market': field '{e.field}' is of the whole account, not per market",
                        )
                if isinstance(e, EventExpect):
                    if events is None:
                        events = _protocol_events()
                    if e.event not in events:
                        raise doc.error(
                            p + ("event",),
                            f"key 'event': unknown event '{e.event}' (known: {', '.join(sorted(events))})",
                        )


# ================================================================ results


@dataclass
class ExpectationResult:
    step: int
    line: int | None
    subject: str
    expected: Decimal | int
    actual: Decimal | int | None
    tol: Decimal = Decimal(0)
    ok: bool = False
    error: str | None = None

    def describe(self) -> str:
        exp = fmt(self.expected) + (f" ± {fmt(self.tol)}" if self.tol else "")
        act = f"error: {self.error}" if self.error else fmt(self.actual)
        return f"{'ok' if self.ok else 'FAIL':<4}  {self.subject:<34} expected {exp:<14} actual {act}"


@dataclass
class StepResult:
    index: int
    line: int | None
    kind: str
    summary: str
    ok: bool = True
    error: str | None = None
    revert_reason: str | None = None
    expectations: list[ExpectationResult] = field(default_factory=list)


@dataclass
class ScenarioResult:
    name: str
    source: str
    steps: list[StepResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None  # setup failed, or a step failed and the run stopped
    output: list[str] = field(default_factory=list)

    @property
    def expectations(self) -> list[ExpectationResult]:
        return [e for s in self.steps for e in s.expectations]

    @property
    def failures(self) -> list[str]:
        out = [f"step {s.index}: {s.error}" for s in self.steps if not s.ok and s.error]
        out += [f"step {e.step}: {e.subject}: {e.describe()}" for e in self.expectations if not e.ok]
        if self.error and not any(not s.ok for s in self.steps):
            out.insert(0, self.error)
        return out

    @property
    def ok(self) -> bool:
        return self.error is None and all(s.ok for s in self.steps) and all(e.ok for e in self.expectations)

    def text(self) -> str:
        return "\n".join(self.output)


# ================================================================ runner

# What "keepers acting as they would live" do when time passes (`advance`):
# at every stop of the schedule, each action gets the runner (``runner.now`` is
# the stop's block timestamp) and the seconds since the previous stop, in this
# order; it may return a summary. Automine is off during an advance: an action
# sends through ``runner.lane.transact(calls, at=runner.now)`` (which mines its
# block at the stop's time), never through a ChainClient (that would wait for
# a receipt that never comes). Liquidation and ADL keepers go here.
AdvanceAction = Callable[["ScenarioRunner", int], "str | None"]


def _keeper_oracle(runner: ScenarioRunner, _seconds: int = 0) -> str | None:
    """The oracle reporter: every market's current index pushed again, so it stays fresh."""
    for symbol, price in runner.index.items():
        runner.net.set_index(symbol, price)
    return None


def _advance_oracle(runner: ScenarioRunner, _seconds: int) -> str | None:
    """The oracle reporter at a stop: every source of every market re-reports its index at the stop's time."""
    calls = []
    for symbol, price in runner.index.items():
        md = runner.net.deployment.markets[symbol]
        data = _REPORT_SELECTOR + abi_encode(["uint256", "uint256"], [to_units(price, 18), runner.now])
        calls += [(reporter, md.oracle.address, data) for reporter in md.reporters]
    runner.lane.transact(calls, at=runner.now)
    return None


def _advance_funding(runner: ScenarioRunner, _seconds: int) -> str | None:
    """The funding keeper at a stop: its plan (settle or sample as due) from the state just read."""
    from keeper.bots.funding import plan_funding_actions

    lane = runner.lane
    states = lane.funding_states(runner.funding_contracts())
    actions = plan_funding_actions(states.values(), runner.now)
    if actions:
        keeper = runner.net.backend.deployer
        contracts = runner.funding_contracts()
        lane.transact(
            [(keeper, contracts[a.market], _FUNDING_SELECTORS[a.kind]) for a in actions], at=runner.now
        )
        settled = [a.market for a in actions if a.kind == "settle"]
        runner.funding_counts["settle"] += len(settled)
        runner.funding_counts["sample"] += len(actions) - len(settled)
        if settled:
            states.update(lane.funding_states({m: contracts[m] for m in settled}))
    runner.next_funding = {m: st.next_funding_time for m, st in states.items()}
    return None


def _keeper_funding(runner: ScenarioRunner, _seconds: int = 0) -> str | None:
    """One pass of the funding keeper (keeper.bots.funding.FundingKeeper), now, from the deployer's key."""
    from keeper.bots.funding import FundingKeeper
    from keeper.chain import TxError

    net = runner.net
    contracts = {s: md.funding for s, md in net.deployment.markets.items()}
    bot = FundingKeeper(net.backend.client(), contracts, logger=logging.getLogger("keeper.funding"))
    result = bot.run_once()
    assert result is not None  # a fresh bot is never mid-step
    if result["failed"]:
        raise TxError(f"funding keeper: {bot.last_error}")
    return f"funding: {result['settled']} settled, {result['sampled']} sampled, {result['skipped']} skipped"


# ---------------------------------------------------------------- liquidation and ADL keepers
#
# `keepers: [liquidation]` / `[adl]` run one pass of the real bots
# (keeper.bots.liquidation.LiquidationBot, keeper.bots.adl.AdlBot) from keys of
# the runner's own. At the stops of `advance` the bots cannot run as they are
# (they wait for receipts, and automine is off): the same pure planners
# (`plan_liquidations`, ADL ranking) decide from the state read through the
# fast lane, and every call is simulated (eth_call) just before it is sent
# through the lane at the stop's time, so a call that would revert for a
# benign reason (the state moved) or close nothing (no liquidity within the
# bound: the live bot sends it and backs off) is skipped and printed.

MAX_UINT = 2**256 - 1


class _SayHandler(logging.Handler):
    """A keeper bot's log records as lines of the runner's output (INFO and below only when verbose)."""

    def __init__(self, runner: ScenarioRunner, label: str) -> None:
        super().__init__(logging.DEBUG)
        self.runner, self.label = runner, label

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno < logging.WARNING and not self.runner.verbose:
            return
        from keeper.logs import _RECORD_ATTRS

        extra = {k: v for k, v in record.__dict__.items() if k not in _RECORD_ATTRS}
        keys = ("account", "market", "why", "reason", "equity", "worst_case_deficit", "error")
        wad = ("equity", "worst_case_deficit")
        detail = ", ".join(
            f"{k} {fmt(from_wad(extra[k])) if k in wad and isinstance(extra[k], int) else extra[k]}"
            for k in keys
            if k in extra
        )
        self.runner.say(f"      {self.label}: {record.getMessage()}" + (f" ({detail})" if detail else ""))


def _bot_logger(runner: ScenarioRunner, name: str) -> logging.Logger:
    log = logging.getLogger(f"keeper.scenario.{name}")
    log.propagate = False
    log.setLevel(logging.DEBUG)
    for h in list(log.handlers):
        log.removeHandler(h)
    log.addHandler(_SayHandler(runner, f"{name} keeper"))
    return log


def _keeper_actor(runner: ScenarioRunner, name: str) -> Any:
    actor = runner.net.actor(name)
    if runner._lane is not None:
        runner._lane.keys.setdefault(actor.address, actor.key)
    return actor


def _lane_read(runner: ScenarioRunner, *fns: Any) -> list[Any]:
    """Results of view calls (web3 ContractFunctions) in one batch of the fast lane, at the latest block."""
    from eth_abi import decode
    from eth_utils.abi import get_abi_output_types

    raw = runner.lane.eth_calls(
        [(fn.address, bytes.fromhex(fn._encode_transaction_data()[2:])) for fn in fns]
    )
    out = []
    for fn, data in zip(fns, raw, strict=True):
        values = decode(get_abi_output_types(fn.abi), data)
        out.append(values[0] if len(values) == 1 else values)
    return out


def _lane_send_checked(runner: ScenarioRunner, kind: str, sender: str, fn: Any, why: str) -> Any | None:
    """Simulate `fn` from `sender`; send it through the lane at the stop's time when it would close
    something; return its (decoded) receipt, or None when skipped. A revert that is not benign fails
    the step (TxReverted), as a failed keeper pass does."""
    from keeper.bots import adl, liquidation
    from keeper.chain import TxReverted, decode_revert_data

    data = bytes.fromhex(fn._encode_transaction_data()[2:])
    to = fn.address  # the LiquidationEngine (liquidate, adl)
    answer = runner.lane.batch(
        [("eth_call", [{"from": sender, "to": to, "data": "0x" + data.hex()}, "latest"])], check=False
    )[0]
    if isinstance(answer, dict):
        error = answer.get("error") or {}
        revert = error.get("data") if isinstance(error, dict) else None
        reason = decode_revert_data(bytes.fromhex(revert[2:])) if isinstance(revert, str) else None
        reason = reason or str(error)
        # the bots' own list of "someone acted first / the state moved"
        if not liquidation.is_benign_revert(reason, (*liquidation.BENIGN_REVERTS, *adl.BENIGN_REVERTS)):
            raise TxReverted(f"{kind} keeper: {reason}")
        runner.say(f"      {kind} keeper at {runner.now}: {why}: would revert ({reason}), skipped")
        return None
    if int(answer, 16) == 0:
        runner.say(f"      {kind} keeper at {runner.now}: {why}: would close nothing (no liquidity), skipped")
        return None
    (raw,) = runner.lane.transact([(sender, to, data)], at=runner.now)
    receipt = runner.net.w3.eth.get_transaction_receipt(raw["transactionHash"])
    runner.risk_counts[kind] += 1
    runner.say(
        f"      {kind} keeper at {runner.now}: {why} -> " + "; ".join(runner._describe_liquidation(receipt))
    )
    return receipt


def _liquidatable(runner: ScenarioRunner) -> list[Any]:
    """Clearinghouse.health of every account (pages of 500, through the lane), liquidatable ones worst
    first (keeper.bots.liquidation.rank_liquidatable)."""
    from keeper.bots.liquidation import HEALTH_PAGE, Health, rank_liquidatable

    key = (runner.now, runner.lane.sent)  # nothing was sent since the last read: the same answer
    if runner.health_cache is not None and runner.health_cache[0] == key:
        return runner.health_cache[1]
    ch = runner.net.ch
    rows: list[Any] = []
    start = 1
    while True:
        (page,) = _lane_read(runner, ch.functions.health(start, HEALTH_PAGE))
        rows += [Health(int(r[0]), int(r[1]), int(r[2]), int(r[3]), bool(r[4])) for r in page]
        if len(page) < HEALTH_PAGE:
            break
        start += HEALTH_PAGE
    ranked = rank_liquidatable(rows)
    runner.health_cache = (key, ranked)
    return ranked


def _risk_state(runner: ScenarioRunner, ranked: list[Any]) -> tuple[Any, dict, dict, int]:
    """(market directory, account -> positions, market -> LiquidationParams, insurance capacity)."""
    from keeper.bots.liquidation import MarketDirectory, read_positions
    from keeper.chain import TxError
    from keeper.liquidation_model import LiquidationParams

    net = runner.net
    if runner.directory is None:
        runner.directory = MarketDirectory(net.ch, {s: md.market for s, md in net.deployment.markets.items()})
    directory = runner.directory
    directory.refresh()
    positions, failures = read_positions(directory, [h.account for h in ranked])
    if failures:
        raise TxError(f"reading positions: {failures}")
    markets = sorted({p.market for ps in positions.values() for p in ps})
    reads = _lane_read(
        runner,
        net.engine.functions.insurance_capacity(),
        *(net.engine.functions.liquidation_params(m) for m in markets),
    )
    params = {m: LiquidationParams(*p) for m, p in zip(markets, reads[1:], strict=True)}
    return directory, positions, params, int(reads[0])


def _advance_liquidation(runner: ScenarioRunner, _seconds: int) -> str | None:
    """The liquidation keeper at a stop: LiquidationBot's plan (plan_liquidations, worst first) from the
    state just read; each liquidate simulated, then sent through the lane."""
    from keeper.bots.liquidation import plan_liquidations, resting_order_ids

    ranked = _liquidatable(runner)
    if not ranked:
        return None
    directory, positions, params, capacity = _risk_state(runner, ranked)
    plan = plan_liquidations(ranked, positions, params, capacity)
    sender = _keeper_actor(runner, LIQUIDATION_KEEPER).address
    for a in plan.liquidate:
        order_ids = resting_order_ids(runner.net.lens, a.market, a.account, a.open_orders)
        fn = runner.net.engine.functions.liquidate(a.account, a.market, MAX_UINT, order_ids)
        why = f"account {a.account} in {directory.name(a.market)}: {a.reason}"
        _lane_send_checked(runner, "liquidation", sender, fn, why)
    return None


def _advance_adl(runner: ScenarioRunner, _seconds: int) -> str | None:
    """The ADL keeper at a stop: AdlBot's plan - the bankrupt positions beyond the insurance fund's
    capacity (find_adl_cases), each against the profitable opposite positions by live adl_score,
    highest first (read_market_scores, plan_adl) - each ADL simulated, then sent through the lane."""
    from keeper.bots.adl import find_adl_cases, plan_adl, read_market_scores
    from keeper.bots.liquidation import resting_order_ids
    from keeper.chain import TxError

    bankrupt = [h for h in _liquidatable(runner) if h.equity < 0]
    if not bankrupt:
        return None
    directory, positions, params, capacity = _risk_state(runner, bankrupt)
    cases, _to_liquidate = find_adl_cases(bankrupt, positions, params, capacity)
    sender = _keeper_actor(runner, ADL_KEEPER).address
    for case in cases:
        plan = plan_adl(case, read_market_scores(directory, runner.net.engine, case.market))
        why = (
            f"account {case.account} in {directory.name(case.market)}: equity {fmt(from_wad(case.equity))}, "
            f"worst case {fmt(from_wad(case.worst_case_deficit))} > insurance capacity "
            f"{fmt(from_wad(case.capacity))}"
        )
        if not plan.takes:
            raise TxError(f"adl keeper: {why}: no opposite-side profitable position to deleverage")
        order_ids = resting_order_ids(runner.net.lens, case.market, case.account, case.open_orders)
        fn = runner.net.engine.functions.adl(case.account, case.market, plan.candidates, order_ids)
        why += "; candidates " + ", ".join(f"{a} (score {fmt(from_wad(sc))})" for a, _t, sc in plan.takes)
        _lane_send_checked(runner, "adl", sender, fn, why)
    return None


def _since(runner: ScenarioRunner, block: int) -> list[str]:
    """What liquidations, ADL and bad debt did in the blocks after `block`."""
    w3 = runner.net.w3
    latest = w3.eth.block_number
    out = []
    for n in range(block + 1, latest + 1):
        for tx in w3.eth.get_block(n)["transactions"]:
            out += runner._describe_liquidation(w3.eth.get_transaction_receipt(tx))
    return out


def _keeper_adl(runner: ScenarioRunner, _seconds: int = 0) -> str | None:
    """One pass of the ADL keeper (keeper.bots.adl.AdlBot), now, from a key of its own."""
    from keeper.bots.adl import AdlBot
    from keeper.chain import TxError

    net = runner.net
    actor = _keeper_actor(runner, ADL_KEEPER)
    markets = {s: md.market for s, md in net.deployment.markets.items()}
    bot = AdlBot(
        net.client(actor.address), net.ch, markets, engine=net.engine, lens=net.lens,
        logger=_bot_logger(runner, "adl"),
    )  # fmt: skip
    block = net.w3.eth.block_number
    counts = bot.run_once()
    assert counts is not None  # a fresh bot is never mid-step
    for line in _since(runner, block):
        runner.say(f"      adl keeper: {line}")
    if counts["failed"]:
        raise TxError(f"adl keeper: {bot.last_error}")
    return f"adl: {counts['bankrupt']} bankrupt, {counts['cases']} beyond the insurance fund, {counts['adl']} deleveraged"


def _keeper_liquidation(runner: ScenarioRunner, _seconds: int = 0) -> str | None:
    """One pass of the liquidation keeper (keeper.bots.liquidation.LiquidationBot), now, from a key of its own."""
    from keeper.bots.liquidation import LiquidationBot
    from keeper.chain import TxError

    net = runner.net
    actor = _keeper_actor(runner, LIQUIDATION_KEEPER)
    markets = {s: md.market for s, md in net.deployment.markets.items()}
    bot = LiquidationBot(
        net.client(actor.address), net.ch, markets, engine=net.engine, lens=net.lens,
        logger=_bot_logger(runner, "liquidation"),
    )  # fmt: skip
    block = net.w3.eth.block_number
    counts = bot.run_once()
    assert counts is not None  # a fresh bot is never mid-step
    for line in _since(runner, block):
        runner.say(f"      liquidation keeper: {line}")
    if counts["failed"]:
        raise TxError(f"liquidation keeper: {bot.last_error}")
    return (
        f"liquidation: {counts['liquidatable']} liquidatable, {counts['liquidated']} liquidated, "
        f"{counts['adl_handoff']} left to ADL, {counts['skipped']} skipped"
    )


ADVANCE_KEEPERS: list[tuple[str, AdvanceAction]] = [
    ("oracle", _advance_oracle),
    ("funding", _advance_funding),
    ("liquidation", _advance_liquidation),
    ("adl", _advance_adl),
]


# `keepers: [...]` steps: run one keeper pass now
KEEPERS: dict[str, AdvanceAction] = {
    "oracle": _keeper_oracle,
    "funding": _keeper_funding,
    "liquidation": _keeper_liquidation,
    "adl": _keeper_adl,
}


def _selector(signature: str) -> bytes:
    from eth_utils import function_signature_to_4byte_selector

    return bytes(function_signature_to_4byte_selector(signature))


def abi_encode(types: list[str], values: list[Any]) -> bytes:
    from eth_abi import encode

    return encode(types, values)


_REPORT_SELECTOR = _selector("report(uint256,uint256)")
_FUNDING_SELECTORS = {"settle": _selector("settle()"), "sample": _selector("sample()")}
_FUNDING_PARAMS_TYPES = ["uint256", "uint256", "int256", "uint256", "uint256", "uint256", "uint256", "uint8"]
_FUNDING_READS = (
    ("next_funding_time", _selector("next_funding_time()")),
    ("last_sample_time", _selector("last_sample_time()")),
    ("params", _selector("params()")),
)


class FastLane:
    """The runner's transaction lane for the stops of ``advance`` (thousands of keeper transactions).

    JSON-RPC batches over one keep-alive HTTP connection. During an advance the
    node's automine is off (:meth:`manual_mining`): a stop's transactions go to
    the pool in one batch and are mined together by ``evm_mine`` at the stop's
    exact timestamp, so a stop costs a few round trips and one block per
    phase. Transactions are signed by the node (anvil's dev accounts are
    unlocked; a sender it cannot sign for is signed locally), with locally
    tracked nonces and a fixed gas limit (no estimate); every receipt is
    checked and a failed one raises TxReverted with its reason. The pre-flight
    ``eth_call`` of the keepers' ChainClient is skipped: each action is planned
    from the state just read, and a revert still fails the step. Afterwards
    the ChainClients' nonces must be re-synced.
    """

    GAS = 1_000_000  # per transaction; a block holds 30 of them at anvil's 30M gas limit

    def __init__(self, url: str, keys: Mapping[str, str]) -> None:
        from urllib.parse import urlsplit

        self.url = url
        parts = urlsplit(url)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port
        self._path = parts.path or "/"
        self._https = parts.scheme == "https"
        self._conn: Any = None
        self.keys = dict(keys)  # address -> private key, for local signing
        self.nonces: dict[str, int] = {}
        self.local_signing: set[str] = set()
        self.sent = 0
        self.automine = True
        self._chain_id: int | None = None

    # ------------------------------------------------------------ JSON-RPC

    def _post(self, body: bytes, *, idempotent: bool) -> Any:
        """POST one JSON-RPC body; a dropped keep-alive connection is reopened and the body re-sent only
        when `idempotent` (reads): a batch of transactions is never re-sent blindly."""
        import http.client
        import json
        import socket

        for attempt in (1, 2):
            if self._conn is None:
                cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
                self._conn = cls(self._host, self._port, timeout=60)
                self._conn.connect()
                if not self._https:
                    self._conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                self._conn.request(
                    "POST", self._path, body=body, headers={"Content-Type": "application/json"}
                )
                response = self._conn.getresponse()
                text = response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self._conn.close()
                self._conn = None
                if attempt == 2 or not idempotent:
                    raise
                continue
            if response.status != 200:
                raise OSError(f"HTTP {response.status} from {self.url}: {text[:200]!r}")
            return json.loads(text)
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def batch(self, calls: Sequence[tuple[str, list[Any]]], *, check: bool = True) -> list[Any]:
        """Results of `calls` sent as one JSON-RPC batch; with `check`, an error answer raises
        (TxReverted with the reason for a revert), else it is returned as the answer dict."""
        import json

        from keeper.chain import TxError, TxReverted, decode_revert_data

        if not calls:
            return []
        payload = [{"jsonrpc": "2.0", "id": i, "method": m, "params": p} for i, (m, p) in enumerate(calls)]
        idempotent = not any(m.startswith(("eth_send", "evm_", "anvil_")) for m, _p in calls)
        answers = {a.get("id"): a for a in self._post(json.dumps(payload).encode(), idempotent=idempotent)}
        out = []
        for i, (method, _params) in enumerate(calls):
            answer = answers.get(i, {"error": {"message": "no answer"}})
            if "error" in answer:
                if not check:
                    out.append(answer)
                    continue
                error = answer["error"]
                data = error.get("data") if isinstance(error, dict) else None
                if isinstance(data, str) and data.startswith("0x"):
                    reason = decode_revert_data(bytes.fromhex(data[2:]))
                    if reason is not None:
                        raise TxReverted(reason)
                raise TxError(f"{method} failed: {error}")
            out.append(answer["result"])
        return out

    def call(self, method: str, *params: Any) -> Any:
        return self.batch([(method, list(params))])[0]

    def timestamp(self) -> int:
        return int(self.call("eth_getBlockByNumber", "latest", False)["timestamp"], 16)

    # ------------------------------------------------------------ reads

    def eth_calls(self, calls: Sequence[tuple[str, bytes]]) -> list[bytes]:
        """Return data of read-only calls (to, data) at the latest block, in one batch."""
        results = self.batch(
            [("eth_call", [{"to": to, "data": "0x" + data.hex()}, "latest"]) for to, data in calls]
        )
        return [bytes.fromhex(r[2:]) for r in results]

    def funding_states(self, contracts: Mapping[str, str]) -> dict[str, Any]:
        """FundingState of each market (symbol -> FundingRate address), read in one batch."""
        from eth_abi import decode

        from keeper.bots.funding import FundingState

        symbols = list(contracts)
        raw = self.eth_calls([(contracts[s], sel) for s in symbols for _name, sel in _FUNDING_READS])
        out = {}
        for i, symbol in enumerate(symbols):
            nft, last, params = raw[3 * i : 3 * i + 3]
            p = decode(_FUNDING_PARAMS_TYPES, params)
            out[symbol] = FundingState(
                symbol, int.from_bytes(nft, "big"), int.from_bytes(last, "big"), p[0], p[6]
            )
        return out

    # ------------------------------------------------------------ mining

    @contextmanager
    def manual_mining(self) -> Iterator[None]:
        """Automine off inside (blocks are mined by :meth:`transact` at the stop's time), restored after."""
        answer = self.batch([("anvil_getAutomine", [])], check=False)[0]
        was = answer if isinstance(answer, bool) else True
        self.call("evm_setAutomine", False)
        self.automine = False
        try:
            yield
        finally:
            self.automine = True
            self.call("evm_setAutomine", was)

    # ------------------------------------------------------------ transactions

    def transact(self, calls: Sequence[tuple[str, str, bytes]], at: int | None = None) -> list[dict]:
        """Send (sender, to, data) transactions in one batch, have them mined (automine off: by
        `evm_mine`, the block at timestamp `at` when given), wait for every receipt; raise on a revert."""
        from keeper.chain import TxError

        if not calls:
            return []
        missing = sorted({sender for sender, _to, _data in calls if sender not in self.nonces})
        if missing:
            counts = self.batch([("eth_getTransactionCount", [a, "pending"]) for a in missing])
            self.nonces.update({a: int(n, 16) for a, n in zip(missing, counts, strict=True)})
        requests_ = []
        for sender, to, data in calls:
            nonce = self.nonces[sender]
            self.nonces[sender] = nonce + 1
            requests_.append(self._send_request(sender, to, data, nonce))
        answers = self.batch(requests_, check=False)
        hashes = []
        for (sender, to, data), request, answer in zip(calls, requests_, answers, strict=True):
            if (
                isinstance(answer, dict)
                and request[0] == "eth_sendTransaction"
                and "signer" in str(answer.get("error", "")).lower()
            ):
                # the node cannot sign for this sender ("no signer available"): sign locally from now on
                self.local_signing.add(sender)
                nonce = int(request[1][0]["nonce"], 16)
                answer = self.batch([self._send_request(sender, to, data, nonce)], check=False)[0]
            if isinstance(answer, dict):
                raise TxError(f"send from {sender} to {to} failed: {answer.get('error')}")
            hashes.append(answer)
        self.sent += len(hashes)
        return self._receipts(hashes, at)

    def _receipts(self, hashes: Sequence[str], at: int | None, timeout_s: float = 30) -> list[dict]:
        import time

        from keeper.chain import TxError, TxReverted

        deadline = time.monotonic() + timeout_s
        mined_at = at
        while True:
            if not self.automine:  # mine what is pending (a full block leaves some: mine again)
                self.call("evm_mine", *([mined_at] if mined_at is not None else []))
                mined_at = None
            receipts = self.batch([("eth_getTransactionReceipt", [h]) for h in hashes])
            if all(r is not None for r in receipts):
                break
            if time.monotonic() > deadline:
                raise TxError(f"no receipt within {timeout_s} s for {sum(r is None for r in receipts)} tx(s)")
            if self.automine:
                time.sleep(0.002)
        for h, r in zip(hashes, receipts, strict=True):
            if int(r["status"], 16) != 1:
                raise TxReverted(self._replay_reason(h, r))
        return receipts

    def _send_request(self, sender: str, to: str, data: bytes, nonce: int) -> tuple[str, list[Any]]:
        if sender not in self.local_signing:
            tx = {
                "from": sender,
                "to": to,
                "data": "0x" + data.hex(),
                "gas": hex(self.GAS),
                "nonce": hex(nonce),
            }
            return ("eth_sendTransaction", [tx])
        from eth_account import Account

        if self._chain_id is None:
            self._chain_id = int(self.call("eth_chainId"), 16)
        base_fee = int(self.call("eth_getBlockByNumber", "latest", False)["baseFeePerGas"], 16)
        signed = Account.sign_transaction(
            {
                "to": to,
                "data": data,
                "gas": self.GAS,
                "maxFeePerGas": 2 * base_fee + 10**9,
                "maxPriorityFeePerGas": 10**9,
                "nonce": nonce,
                "chainId": self._chain_id,
                "type": 2,
                "value": 0,
            },
            self.keys[sender],
        )
        return ("eth_sendRawTransaction", ["0x" + bytes(signed.raw_transaction).hex()])

    def _replay_reason(self, tx_hash: str, receipt: dict) -> str:
        """The reason of a mined revert: traced inside its own block (`debug_traceTransaction`),
        else replayed on the parent block's state."""
        from keeper.chain import TxReverted, trace_revert_reason

        trace = self.batch([("debug_traceTransaction", [tx_hash, {"tracer": "callTracer"}])], check=False)[0]
        traced = trace_revert_reason(trace)
        if traced is not None:
            return traced
        tx = self.call("eth_getTransactionByHash", tx_hash)
        replay = {"from": tx["from"], "to": tx["to"], "data": tx["input"], "gas": tx["gas"]}
        try:
            self.batch([("eth_call", [replay, hex(int(receipt["blockNumber"], 16) - 1)])])
        except TxReverted as exc:
            return exc.reason or "reverted"
        except Exception as exc:
            if not _is_chain_error(exc):
                raise
        return f"reverted on-chain (status 0), tx {tx_hash}"


class ScenarioRunner:
    """Runs one parsed scenario on a fresh deployment. `out` receives each printed line."""

    def __init__(
        self,
        scenario: Scenario,
        rpc_url: str | None = None,
        *,
        verbose: bool = False,
        out: Callable[[str], None] | None = None,
    ) -> None:
        self.scenario = scenario
        self.rpc_url = rpc_url
        self.verbose = verbose
        self._out = out
        self.result = ScenarioResult(scenario.name, scenario.source)
        self.net: Any = None
        self.index: dict[str, Decimal] = {s: m.index for s, m in scenario.spec.markets.items()}
        self.labels: dict[str, tuple[str, int]] = {}
        self.start_block = 0
        self._topics: dict[str, dict[str, list[str]]] | None = None
        # advance: the current stop's block timestamp, the fast lane, each market's next funding time
        self.now = 0
        self._lane: FastLane | None = None
        self.next_funding: dict[str, int] = {}
        self.funding_counts = {"settle": 0, "sample": 0}
        self.risk_counts = {"liquidation": 0, "adl": 0}
        self.directory: Any = None  # keeper.bots.liquidation.MarketDirectory, for the advance keepers
        self.health_cache: tuple[tuple[int, int], list[Any]] | None = None
        self._time_frozen = False

    # ------------------------------------------------------------ output

    def say(self, line: str) -> None:
        self.result.output.append(line)
        if self._out is not None:
            self._out(line)

    def note(self, text: str) -> None:
        self.result.notes.append(text)
        self.say(f"note: {text}")

    # ------------------------------------------------------------ run

    def run(self) -> ScenarioResult:
        sc = self.scenario
        self.say(f"scenario {sc.name} ({sc.source})")
        if sc.spec.description:
            self.say("  " + " ".join(sc.spec.description.split()))
        missing = sc.missing_features()
        if missing:
            self.note(f"requires {', '.join(missing)}: not implemented yet, expect failures")
        self.net = self._start()
        try:
            self._freeze_time()
            try:
                self._setup()
            except Exception as exc:
                if not _is_chain_error(exc):
                    raise
                self.result.error = f"setup failed: {_describe_error(exc)}"
                self.say(f"FAIL  {self.result.error}")
                return self._finish()
            for step in sc.steps:
                sr = self._run_step(step)
                self.result.steps.append(sr)
                if not sr.ok:
                    rest = len(sc.steps) - step.index
                    self.result.error = f"step {step.index} failed: {sr.error}"
                    if rest:
                        self.say(f"stopped: {rest} step(s) not run")
                    break
            return self._finish()
        finally:
            self._unfreeze_time()
            if self._lane is not None:
                self._lane.close()
            self.net.stop()

    def _freeze_time(self) -> None:
        """Chain time stands still between steps: every block gets the previous block's timestamp."""
        answer = self.net.w3.provider.make_request("anvil_setBlockTimestampInterval", [0])
        if answer.get("error"):
            self.note(f"the node cannot pin block timestamps ({answer['error']}): times follow its clock")
            return
        self._time_frozen = True

    def _unfreeze_time(self) -> None:
        if self._time_frozen:
            self._time_frozen = False
            try:
                self.net.w3.provider.make_request("anvil_removeBlockTimestampInterval", [])
            except Exception as exc:
                if not _is_chain_error(exc):
                    raise

    @property
    def lane(self) -> FastLane:
        if self._lane is None:
            keys = {c.address: c.account.key.hex() for c in self.net.backend.clients.values()}
            self._lane = FastLane(self.net.w3.provider.endpoint_uri, keys)
        return self._lane

    def funding_contracts(self) -> dict[str, str]:
        """Symbol -> FundingRate address."""
        return {s: md.funding.address for s, md in self.net.deployment.markets.items()}

    def _finish(self) -> ScenarioResult:
        r = self.result
        exps = r.expectations
        failed = [e for e in exps if not e.ok]
        if r.ok:
            self.say(f"PASS  {len(r.steps)} steps, {len(exps)} expectations hold")
        else:
            bits = []
            if failed:
                bits.append(f"{len(failed)} of {len(exps)} expectations failed")
            if r.error:
                bits.append(r.error)
            self.say("FAIL  " + "; ".join(bits))
        return r

    def _start(self) -> Any:
        from eth_account import Account

        from keeper.anvil import AnvilError, dev_private_keys
        from keeper.chain import ChainClient, TxError, connect
        from keeper.deploy import DeployConfig
        from keeper.localnet import start_localnet

        spec = self.scenario.spec
        markets = [m.market_config(s) for s, m in spec.markets.items()]
        needed = 2 + sum(mc.oracle_sources for mc in markets) + len(spec.accounts) + len(RUNNER_ACTORS)
        n_keys = max(60, needed + 4)
        kwargs: dict[str, Any] = {}
        if spec.insurance_fee_share is not None:
            kwargs["insurance_fee_share"] = spec.insurance_fee_share
        if spec.insurance_payout_cap is not None:
            kwargs["insurance_payout_cap"] = spec.insurance_payout_cap
        config = DeployConfig(collateral_decimals=spec.collateral_decimals, markets=markets, **kwargs)
        try:
            if self.rpc_url is not None:
                w3 = connect(self.rpc_url)
                keys = dev_private_keys(n_keys)
                funder = ChainClient(w3, keys[0])
                if w3.eth.get_balance(funder.address) < 10**18:
                    raise ScenarioEnvironmentError(
                        f"the node at {self.rpc_url} does not fund anvil's default dev accounts"
                    )
                for key in keys[1:needed]:  # dev nodes started with few accounts: top the others up
                    addr = Account.from_key(key).address
                    if w3.eth.get_balance(addr) < 10**18:
                        funder.transfer(addr, 100 * 10**18)
            net = start_localnet(config, rpc_url=self.rpc_url, accounts=n_keys)
        except (AnvilError, OSError, TxError) as exc:
            raise ScenarioEnvironmentError(f"cannot start the local chain: {exc}") from exc
        except Exception as exc:
            if not _is_chain_error(exc):
                raise
            raise ScenarioEnvironmentError(f"cannot deploy on {self.rpc_url or 'anvil'}: {exc}") from exc
        self.start_block = int(net.deployment.manifest["block"]) + 1
        return net

    def _setup(self) -> None:
        net, spec = self.net, self.scenario.spec
        parts = []
        for symbol, m in spec.markets.items():
            mc = net.deployment.markets[symbol].config
            parts.append(
                f"{symbol} index {fmt(m.index)} tick {fmt(mc.tick_size)} lot {fmt(mc.lot_size)} "
                f"min notional {fmt(mc.min_order_notional)} IM {fmt(mc.initial_margin)} "
                f"MM {fmt(mc.maintenance_margin)} fees {fmt(mc.taker_fee)}/{fmt(mc.maker_fee)} "
                f"band {fmt(mc.mark_band)}"
            )
            parts.append(
                f"{symbol} funding {mc.premium_mode} every {format_duration(mc.funding_interval)} "
                f"quoted per {format_duration(mc.funding_period)}, interest {fmt(mc.interest_rate)} "
                f"clamp {fmt(mc.funding_clamp)} cap {fmt(mc.funding_cap)} impact notional "
                f"{fmt(mc.impact_notional)}, samples every {format_duration(mc.sample_interval)}"
            )
            parts.append(
                f"{symbol} liquidation fee {fmt(mc.liquidation_fee)} (keeper share {fmt(mc.liquidator_share)}), "
                f"bankrupt band {fmt(mc.bankrupt_band)}, takeover discount {fmt(mc.takeover_discount)}, "
                f"small position {fmt(mc.small_position_notional)}"
            )
        self.say(f"setup: collateral {spec.collateral_decimals} decimals; chain {net.w3.eth.chain_id}")
        for p in parts:
            self.say(f"  market {p}")
        for name, acc in spec.accounts.items():
            actor = net.actor(name)
            if acc.deposit:
                self._deposit(name, acc.deposit)
            self.say(f"  account {name} {actor.address} deposit {fmt(acc.deposit or Decimal(0))}")
        fund = net.deployment.insurance_fund
        cap = from_wad(self._call(fund.functions.payout_cap()))
        if spec.insurance_fund > 0:
            # an ERC-4626 deposit by a liquidity provider of the fund (an actor of the runner's own)
            units = to_units(spec.insurance_fund, spec.collateral_decimals)
            lp = net.actor(INSURANCE_DEPOSITOR)
            self._tx(net.token, "mint", lp.address, units)
            self._tx(net.token, "approve", fund.address, units, sender=lp.address)
            self._tx(fund, "deposit", units, lp.address, sender=lp.address)
        self.say(
            f"  insurance fund {fund.address}: {fmt(spec.insurance_fund)} deposited, payout cap {fmt(cap)} "
            "of its assets per bad-debt event"
        )

    # ------------------------------------------------------------ steps

    def _run_step(self, step: Step) -> StepResult:
        head = f"[{step.index}] line {step.line}" if step.line else f"[{step.index}]"
        sr = StepResult(step.index, step.line, step.kind, self._describe(step))
        self.say(f"{head}  {step.kind:<8} {sr.summary}" + (f"  # {step.note}" if step.note else ""))
        if step.kind == "expect":
            for spec, line in zip(step.spec, step.item_lines or (None,) * len(step.spec), strict=False):
                er = self._check(step, spec, line)
                sr.expectations.append(er)
                self.say("      " + er.describe())
            return sr
        reason: str | None = None
        outcome = ""
        try:
            outcome = getattr(self, f"_step_{step.kind}")(step.spec)
        except Exception as exc:
            if not _is_chain_error(exc):
                raise
            from keeper.chain import TxReverted

            if isinstance(exc, TxReverted):
                reason = exc.reason or "(no reason)"
                sr.revert_reason = reason
            else:
                sr.ok, sr.error = False, _describe_error(exc)
        if sr.error is None:
            if step.expect_revert is not None:
                if reason is None:
                    sr.ok, sr.error = (
                        False,
                        f"expected a revert with '{step.expect_revert}', but it succeeded",
                    )
                elif step.expect_revert not in reason:
                    sr.ok, sr.error = False, f"expected a revert with '{step.expect_revert}', got '{reason}'"
                else:
                    outcome = f"reverted as expected: {reason}"
            elif reason is not None:
                sr.ok, sr.error = False, f"reverted: {reason}"
        if sr.ok:
            if outcome:
                self.say(f"      -> {outcome}")
        else:
            self.say(f"      FAIL  {sr.error}")
        return sr

    def _describe(self, step: Step) -> str:
        s = step.spec
        rev = f" (expect revert '{step.expect_revert}')" if step.expect_revert else ""
        if step.kind == "oracle":
            return f"{s.market} index -> {fmt(s.price)}{rev}"
        if step.kind == "order":
            price = f" @ {fmt(s.price)}" if s.price is not None else ""
            flags = " reduce-only" if s.reduce_only else ""
            label = f" [{s.label}]" if s.label else ""
            return f"{s.account} {s.side} {fmt(s.size)} {s.market}{price} {s.type}{flags}{label}{rev}"
        if step.kind == "cancel":
            what = s.label if s.label is not None else f"order #{s.order_id}"
            return f"{s.account} cancels {what}{rev}"
        if step.kind in ("deposit", "withdraw"):
            return f"{s.account} {step.kind}s {fmt(s.amount)}{rev}"
        if step.kind == "advance":
            return f"{format_duration(s)} ({s} s){rev}"
        if step.kind == "keepers":
            return ", ".join(s) + rev
        if step.kind == "liquidate":
            return f"{s.by} liquidates {s.account} in {s.market}{rev}"
        return f"{len(s)} item(s)"

    def _step_oracle(self, s: OracleStep) -> str:
        confirmed = self.net.set_index(s.market, s.price)
        self.index[s.market] = s.price
        # a move beyond the index guard (PROTOCOL.md §4) is confirmed by the owner, visibly
        return "the guard held the move back: the owner reset the reference" if confirmed else ""

    def _step_order(self, s: OrderStep) -> str:
        net = self.net
        actor = net.actor(s.account)
        mkt = net.market(s.market)
        is_buy = s.side == "buy"
        price = to_units(s.price, 18) if s.price is not None else self._market_limit(mkt, is_buy)
        size = to_units(s.size, 18)
        hint = self._call(net.lens.functions.find_hint(mkt.address, is_buy, price))
        receipt = self._tx(
            net.ch,
            "place_order",
            actor.address,
            0,
            mkt.address,
            is_buy,
            size,
            price,
            ORDER_TYPES[s.type],
            s.reduce_only,
            hint,
            sender=actor.address,
        )
        bits = []
        if s.price is None:
            bits.append(f"limit {fmt(from_wad(price))}")
        fills = self._logs(mkt, "Fill", receipt)
        if fills:
            filled = sum(f["size"] for f in fills)
            value = sum(f["size"] * f["price"] for f in fills)
            with localcontext() as ctx:
                ctx.prec = 60
                avg = (Decimal(value) / filled / WAD).quantize(Decimal(1).scaleb(-18))
            bits.append(
                f"filled {fmt(from_wad(filled))} @ {fmt(avg)} ({len(fills)} fill{'s' * (len(fills) > 1)})"
            )
        order_id = 0
        placed = self._logs(mkt, "OrderPlaced", receipt)
        for ev in placed:
            order_id = ev["order_id"]
            bits.append(
                f"rests {fmt(from_wad(ev['size']))} @ {fmt(from_wad(ev['price']))} as order #{order_id}"
            )
        rest = cancelled_rest(
            size, sum(f["size"] for f in fills), sum(e["size"] for e in placed), ORDER_TYPES[s.type]
        )
        if rest:
            bits.append(rest)
        for ev in self._logs(mkt, "OrderRemoved", receipt):
            if ev["reason"] in (3, 4):
                bits.append(f"order #{ev['order_id']}: {REMOVED_REASONS[ev['reason']]}")
        if not fills and not order_id:
            bits.append("nothing filled, nothing rests")
        if s.label is not None:
            self.labels[s.label] = (s.market, order_id)
            if not order_id:
                bits.append(f"label '{s.label}' names no resting order")
        return "; ".join(bits)

    def _market_limit(self, mkt: Any, is_buy: bool) -> int:
        """The limit of a market order: mark x (1 +- 50%), on the tick grid, rounded inwards."""
        mark = self._call(mkt.functions.mark_price())
        tick = self._call(mkt.functions.TICK_SIZE())
        if is_buy:
            limit = mark * (WAD + to_units(MARKET_SLIPPAGE, 18)) // WAD
            return max(limit // tick * tick, tick)
        limit = mark * (WAD - to_units(MARKET_SLIPPAGE, 18)) // WAD
        return max(-(-limit // tick) * tick, tick)

    def _step_cancel(self, s: CancelStep) -> str:
        net = self.net
        if s.label is not None:
            symbol, order_id = self.labels[s.label]
        else:
            symbol, order_id = s.market or next(iter(self.scenario.spec.markets)), int(s.order_id or 0)
        actor = net.actor(s.account)
        mkt = net.market(symbol)
        self._tx(net.ch, "cancel_order", actor.address, 0, mkt.address, order_id, sender=actor.address)
        return f"cancelled {symbol} order #{order_id}"

    def _step_deposit(self, s: AmountStep) -> str:
        self._deposit(s.account, s.amount)
        return ""

    def _step_withdraw(self, s: AmountStep) -> str:
        actor = self.net.actor(s.account)
        units = to_units(s.amount, self.scenario.spec.collateral_decimals)
        self._tx(self.net.ch, "withdraw", 0, units, sender=actor.address)
        return ""

    def _step_advance(self, seconds: int) -> str:
        """Play the keepers' schedule over `seconds`: stops at most min(sample_interval) apart, on every
        market's next funding time, block timestamps exact; ADVANCE_KEEPERS act at every stop."""
        lane = self.lane
        lane.nonces.clear()  # the ChainClients sent since the last advance
        start = lane.timestamp()
        end = start + seconds
        step = min(md.config.sample_interval for md in self.net.deployment.markets.values())
        self.next_funding = {
            m: st.next_funding_time for m, st in lane.funding_states(self.funding_contracts()).items()
        }
        before = dict(self.funding_counts)
        risk_before = dict(self.risk_counts)
        t, stops = start, 0
        try:
            with lane.manual_mining():
                while t < end:
                    nxt = min(t + step, end, *(n for n in self.next_funding.values() if n > t))
                    self.now, seconds_since, t = nxt, nxt - t, nxt
                    for _name, action in ADVANCE_KEEPERS:
                        action(self, seconds_since)
                    stops += 1
                if lane.timestamp() < end:  # nothing was sent at the last stop: its block must still exist
                    lane.call("evm_mine", end)
        finally:
            self.net.resync_nonces()
        after = lane.timestamp()
        settled = self.funding_counts["settle"] - before["settle"]
        sampled = self.funding_counts["sample"] - before["sample"]
        return (
            f"chain time {start} -> {after} in {stops} stop{'s' * (stops != 1)}; keepers: "
            f"{', '.join(name for name, _a in ADVANCE_KEEPERS)}; funding: {settled} settlement(s), "
            f"{sampled} sample(s); liquidations: {self.risk_counts['liquidation'] - risk_before['liquidation']}, "
            f"ADL: {self.risk_counts['adl'] - risk_before['adl']}"
        )

    def _step_keepers(self, names: tuple[str, ...]) -> str:
        said = []
        for name in names:
            summary = KEEPERS[name](self, 0)
            said.append(summary or f"ran {name}")
        return "; ".join(said)

    def _step_liquidate(self, s: LiquidateStep) -> str:
        """`by` calls LiquidationEngine.liquidate on the account's subaccount 0 in `market`, listing every
        resting order of the account there (max_size: the whole position when not given)."""
        net = self.net
        account = self._call(net.ch.functions.account_of(net.actor(s.account).address, 0))
        mkt = net.market(s.market)
        max_size = to_units(s.max_size, 18) if s.max_size is not None else 2**256 - 1
        order_ids = self._resting_orders(mkt, account)
        by = net.actor(s.by).address
        receipt = self._tx(net.engine, "liquidate", account, mkt.address, max_size, order_ids, sender=by)
        return "; ".join(self._describe_liquidation(receipt)) or "nothing closed"

    def _resting_orders(self, mkt: Any, account: int) -> list[int]:
        """Ids of the account's resting orders in a market (the liquidation keeper's reader)."""
        from keeper.bots.liquidation import resting_order_ids

        if account == 0:
            return []
        count = self._call(mkt.functions.open_order_stats(account))[0]
        return resting_order_ids(self.net.lens, mkt, account, count)

    def _describe_liquidation(self, receipt: Any) -> list[str]:
        """What a liquidation, takeover or ADL transaction did, from the events in its receipt."""
        bits = []
        for ev in self._logs(self.net.engine, "Liquidation", receipt):
            bits.append(
                f"liquidated account {ev['account']}: closed {fmt(from_wad(ev['closed_size']))} at mark "
                f"{fmt(from_wad(ev['mark']))} (limit {fmt(from_wad(ev['limit_price']))}), fee "
                f"{fmt(from_wad(ev['fee']))} (keeper {fmt(from_wad(ev['liquidator_fee']))}), equity "
                f"{fmt(from_wad(ev['equity_before']))} -> {fmt(from_wad(ev['equity_after']))}, size left "
                f"{fmt(from_wad(ev['size_after']))}" + (" (bankrupt)" if ev["bankrupt"] else "")
            )
        for ev in self._logs(self.net.engine, "Deleveraged", receipt):
            bits.append(
                f"ADL account {ev['account']} against {ev['counterparty']}: {fmt(from_wad(ev['size']))} "
                f"@ {fmt(from_wad(ev['price']))} (score {fmt(from_wad(ev['score']))}, its size left "
                f"{fmt(from_wad(ev['counterparty_size']))})"
            )
        for ev in self._logs(self.net.ch, "BadDebt", receipt):
            bits.append(
                f"bad debt of account {ev['account']}: {fmt(from_wad(ev['deficit']))}, insurance fund paid "
                f"{fmt(from_wad(ev['covered']))}, uncovered {fmt(from_wad(ev['uncovered']))}"
            )
        return bits

    def _deposit(self, name: str, amount: Decimal) -> None:
        net = self.net
        actor = net.actor(name)
        units = to_units(amount, self.scenario.spec.collateral_decimals)
        self._tx(net.token, "mint", actor.address, units)
        self._tx(net.token, "approve", net.ch.address, units, sender=actor.address)
        self._tx(net.ch, "deposit", 0, units, sender=actor.address)

    # ------------------------------------------------------------ expectations

    def _check(self, step: Step, e: Expectation, line: int | None) -> ExpectationResult:
        subject = self._subject(e)
        if isinstance(e, EventExpect):
            er = ExpectationResult(step.index, line, subject, e.count, None)
            try:
                er.actual = self._event_count(e.event)
                er.ok = er.actual == e.count
            except Exception as exc:
                if not _is_chain_error(exc):
                    raise
                er.error = _describe_error(exc)
            return er
        er = ExpectationResult(step.index, line, subject, e.value, None, e.tol)
        try:
            er.actual = self._actual(e)
            er.ok = abs(er.actual - e.value) <= e.tol
        except UnobservableValue as exc:
            er.error = str(exc)
        except Exception as exc:
            if not _is_chain_error(exc):
                raise
            er.error = _describe_error(exc)
        return er

    def _subject(self, e: Expectation) -> str:
        if isinstance(e, AccountExpect):
            market = e.market or (self._single_market() if e.field in PER_MARKET_FIELDS else None)
            return f"{e.account}.{e.field}" + (f"[{market}]" if market else "")
        if isinstance(e, MarketExpect):
            return f"{e.market}.{e.field}"
        if isinstance(e, InsuranceExpect):
            return "insurance_fund.balance"
        return f"events {e.event} (count)"

    def _single_market(self) -> str | None:
        markets = self.scenario.spec.markets
        return next(iter(markets)) if len(markets) == 1 else None

    def _actual(self, e: Expectation) -> Decimal:
        net = self.net
        if isinstance(e, InsuranceExpect):
            # ERC-4626 totalAssets: the fund's booked assets + its whole token units of pending cash
            units = self._call(net.deployment.insurance_fund.functions.totalAssets())
            return Decimal(units).scaleb(-self.scenario.spec.collateral_decimals)
        if isinstance(e, MarketExpect):
            return self._market_field(e.market, e.field)
        assert isinstance(e, AccountExpect)
        account = self._call(net.ch.functions.account_of(net.actor(e.account).address, 0))
        f = e.field
        if f == "cash":
            return from_wad(self._call(net.ch.functions.cash(account)))
        if f in ("equity", "initial_margin", "maintenance_margin", "withdrawable"):
            margin = self._call(net.ch.functions.margin(account))
            pos = ("equity", "initial_margin", "maintenance_margin", "withdrawable").index(f)
            return from_wad(margin[pos])
        symbols = [e.market] if e.market else list(self.scenario.spec.markets)
        if f in ("liquidated_size", "adl_size"):
            return from_wad(sum(self._risk_sizes(account, s)[f] for s in symbols))
        if f in ("realized_pnl", "funding_paid", "fees_paid"):
            key = {"realized_pnl": "realized_pnl", "funding_paid": "funding_paid", "fees_paid": "fee_paid"}[f]
            total = sum(ev[key] for ev in self._position_changes(account, e.market))
            if f == "funding_paid":  # settled so far + owed now (+ = paid)
                for s in symbols:
                    self._check_funding_observable(account, s)
                total += sum(self._call(net.market(s).functions.position(account))[5] for s in symbols)
            return from_wad(total)
        if f == "open_orders":
            return Decimal(self._call(net.market(symbols[0]).functions.open_order_stats(account))[0])
        views = [self._call(net.market(s).functions.position(account)) for s in symbols]
        if f == "position":
            return from_wad(views[0][0])
        if f == "entry_price":
            return from_wad(views[0][2])
        return from_wad(sum(v[4] for v in views))  # unrealized_pnl

    def _market_field(self, symbol: str, f: str) -> Decimal:
        ffns = self.net.deployment.markets[symbol].funding.functions
        if f == "period_funding_rate":
            params = self._call(ffns.params())
            with localcontext() as ctx:
                ctx.prec = 100
                return from_wad(self._call(ffns.last_rate())) * params[1] / params[0]
        funding_views = {
            "last_funding_rate": ffns.last_rate,
            "funding_apr": ffns.funding_apr,
            "predicted_funding_rate": ffns.predicted_rate,
            "last_premium": ffns.last_premium,
        }
        if f in funding_views:
            return from_wad(self._call(funding_views[f]()))
        fns = self.net.market(symbol).functions
        view = {
            "index": fns.index_price,
            "mark": fns.mark_price,
            "open_interest": fns.open_interest,
            "best_bid": fns.best_bid,
            "best_ask": fns.best_ask,
            "last_trade": lambda: self.net.lens.functions.last_trade_price(self.net.market(symbol).address),
            "cumulative_funding": fns.cumulative_funding,
        }[f]
        return from_wad(self._call(view()))

    def _risk_sizes(self, account: int, symbol: str) -> dict[str, int]:
        """Base WAD of the account's position in `symbol` closed by liquidations (Liquidation.closed_size +
        Takeover.size, the account being the one liquidated) and by ADL (Deleveraged.size, the account
        being the bankrupt one or the counterparty), from the liquidation engine's events."""
        if account == 0:
            return {"liquidated_size": 0, "adl_size": 0}
        acc = _topic_word(account)
        mkt = _topic_word(int(self.net.market(symbol).address, 16))
        liquidated = sum(ev["closed_size"] for ev in self._engine_events("Liquidation", acc, mkt))
        liquidated += sum(ev["size"] for ev in self._engine_events("Takeover", acc, mkt))
        adl = sum(ev["size"] for ev in self._engine_events("Deleveraged", acc, None, mkt))
        adl += sum(ev["size"] for ev in self._engine_events("Deleveraged", None, acc, mkt))
        return {"liquidated_size": liquidated, "adl_size": adl}

    def _position_changes(self, account: int, symbol: str | None) -> list[dict[str, Any]]:
        """Every change of the account's positions, in order: its PositionChanged events, and its
        fills as a maker (a maker's Fill carries its new position and emits no PositionChanged;
        `position_change_of_fill`). Each a dict with PositionChanged's fields and `blockNumber`."""
        if account == 0:
            return []
        symbols = [symbol] if symbol else list(self.scenario.spec.markets)
        markets = [self.net.market(s) for s in symbols]
        topics = self._topic_map("PerpMarket")
        changed, fill = markets[0].events.PositionChanged(), markets[0].events.Fill()
        logs = self.net.w3.eth.get_logs(
            {
                "fromBlock": self.start_block,
                "toBlock": "latest",
                "address": [m.address for m in markets],
                "topics": [topics["PositionChanged"] + topics["Fill"], _topic_word(account)],
            }
        )
        out = []
        for log in sorted(logs, key=lambda x: (x["blockNumber"], x["logIndex"])):
            if "0x" + bytes(log["topics"][0]).hex() in topics["Fill"]:
                args = position_change_of_fill(fill.process_log(log)["args"])
            else:
                args = dict(changed.process_log(log)["args"])
            out.append({**args, "blockNumber": log["blockNumber"]})
        return out

    def _check_funding_observable(self, account: int, symbol: str) -> None:
        """Raise UnobservableValue when funding was settled into the account's cash without an event.

        Every settlement is told by an event: PositionChanged (a taker's trade, a transfer, and
        PerpMarket.settle_funding reached from Clearinghouse.withdraw and settle_funding) or, for a
        maker's fill, its Fill. This is the safety net that would catch a path that does not,
        since `funding_paid` is summed from events. Detected by replaying the accumulator: after
        each change the account's snapshot is the market's cumulative funding at that block, and
        the next change must settle exactly ceil(size x (cumulative now - then)); today's snapshot
        must still be the last one."""
        if account == 0:
            return
        mkt = self.net.market(symbol)
        size, cum = 0, 0
        for ev in self._position_changes(account, symbol):
            cum_then = self._call_at(mkt.functions.cumulative_funding(), ev["blockNumber"])
            if size != 0 and ev["funding_paid"] != -((-size * (cum_then - cum)) // WAD):
                break
            size, cum = ev["size"], cum_then
        else:
            if size == 0 or self._call(mkt.functions.funding_snapshot(account)) == cum:
                return
        raise UnobservableValue(
            f"funding was settled into cash without an event in {symbol}: "
            "funding_paid cannot be summed from PositionChanged and Fill events"
        )

    def _call_at(self, fn: Any, block: int) -> Any:
        from web3.exceptions import ContractLogicError, Web3RPCError

        from keeper.chain import TxReverted, revert_reason

        try:
            return fn.call(block_identifier=block)
        except (ContractLogicError, Web3RPCError) as exc:
            raise TxReverted(revert_reason(exc)) from exc

    def _topic_map(self, contract: str) -> dict[str, list[str]]:
        """Event name -> topic0s, of one protocol contract."""
        if self._topics is None:
            from eth_utils import event_abi_to_log_topic

            self._topics = {
                c: {
                    name: sorted({"0x" + event_abi_to_log_topic(a).hex() for a in entries})
                    for name, entries in _contract_events(c).items()
                }
                for c in PROTOCOL_CONTRACTS
            }
        return self._topics[contract]

    def _protocol_addresses(self) -> dict[str, list[str]]:
        """Contract kind -> the deployment's addresses of that kind."""
        d = self.net.deployment
        mds = list(d.markets.values())
        return {
            "Clearinghouse": [d.clearinghouse.address],
            "LiquidationEngine": [d.liquidation_engine.address],
            "PerpMarket": [md.market.address for md in mds],
            "IndexOracle": [md.oracle.address for md in mds],
            "FundingRate": [md.funding.address for md in mds],
            "InsuranceFund": [d.insurance_fund.address],
        }

    def _event_count(self, name: str) -> int:
        """Logs named `name` emitted by any protocol contract (clearinghouse, liquidation engine, markets,
        oracles, funding rates, insurance fund) since deployment; each contract's logs matched against
        its own ABI."""
        total = 0
        for contract, addresses in self._protocol_addresses().items():
            topics = self._topic_map(contract).get(name)
            if not topics:
                continue
            logs = self.net.w3.eth.get_logs(
                {"fromBlock": self.start_block, "toBlock": "latest", "address": addresses, "topics": [topics]}
            )
            total += len(logs)
        return total

    def _engine_events(self, name: str, *topics: str | None) -> list[Any]:
        """Decoded args of the liquidation engine's `name` events since deployment, filtered by
        indexed topics."""
        engine = self.net.engine
        logs = self.net.w3.eth.get_logs(
            {
                "fromBlock": self.start_block,
                "toBlock": "latest",
                "address": engine.address,
                "topics": [self._topic_map("LiquidationEngine")[name], *topics],
            }
        )
        event = getattr(engine.events, name)()
        return [event.process_log(log)["args"] for log in logs]

    # ------------------------------------------------------------ chain helpers

    def _tx(self, contract: Any, fn: str, *args: Any, sender: str | None = None) -> Any:
        receipt = self.net.backend.transact(contract, fn, *args, sender=sender)
        if self.verbose:
            self.say(
                f"      tx {fn} gas {receipt['gasUsed']} block {receipt['blockNumber']} "
                f"{receipt['transactionHash'].to_0x_hex()}"
            )
        return receipt

    def _call(self, fn: Any) -> Any:
        """A view call; a revert raises TxReverted with its reason (like a transaction)."""
        from web3.exceptions import ContractLogicError, Web3RPCError

        from keeper.chain import TxReverted, revert_reason

        try:
            return fn.call()
        except (ContractLogicError, Web3RPCError) as exc:
            raise TxReverted(revert_reason(exc)) from exc

    def _logs(self, contract: Any, event: str, receipt: Any) -> list[Any]:
        from web3.logs import DISCARD

        out = []
        for ev in getattr(contract.events, event)().process_receipt(receipt, errors=DISCARD):
            if ev["address"] == contract.address:
                out.append(ev["args"])
        return out


_DURATION_KEYS = frozenset({"funding_interval", "funding_period", "sample_interval"})


def _topic_word(x: int) -> str:
    """An indexed uint256/address as a log topic."""
    return "0x" + x.to_bytes(32, "big").hex()


def _is_chain_error(exc: BaseException) -> bool:
    """Errors from the node or a transaction (reported as a failed step), not bugs of the runner."""
    import requests
    from web3.exceptions import Web3Exception

    from keeper.chain import TxError

    return isinstance(exc, TxError | Web3Exception | OSError | requests.RequestException)


def _describe_error(exc: BaseException) -> str:
    from keeper.chain import TxReverted

    if isinstance(exc, TxReverted):
        return f"reverted: {exc.reason or '(no reason)'}"
    return f"{type(exc).__name__}: {exc}"


def run_scenario(
    scenario: str | Path | Mapping[str, Any] | Scenario,
    rpc_url: str | None = None,
    *,
    verbose: bool = False,
    out: Callable[[str], None] | None = None,
) -> ScenarioResult:
    """Parse (unless already parsed) and run a scenario on a fresh deployment: on `rpc_url` (a node
    that knows anvil's default dev mnemonic) or on an anvil of its own, always stopped afterwards.
    Raises ScenarioError for a malformed scenario, ScenarioEnvironmentError when no chain is available."""
    sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    return ScenarioRunner(sc, rpc_url, verbose=verbose, out=out).run()


# ================================================================ CLI


@contextmanager
def _quiet_chain_logs(verbose: bool) -> Iterator[None]:
    """The chain client warns on every pre-flight revert; expected reverts are part of a scenario."""
    logger = logging.getLogger("keeper.chain")
    level = logger.level
    logger.setLevel(logging.WARNING if verbose else logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _cli_run(args: argparse.Namespace) -> int:
    from keeper.cli import CliError

    try:
        scenario = load_scenario(args.file)
    except ScenarioError as exc:
        raise CliError(str(exc)) from None
    with _quiet_chain_logs(args.verbose):
        try:
            result = run_scenario(
                scenario, args.rpc_url, verbose=args.verbose, out=lambda s: print(s, flush=True)
            )
        except ScenarioEnvironmentError as exc:
            raise CliError(str(exc)) from None
    return 0 if result.ok else 1


def _cli_check(args: argparse.Namespace) -> int:
    from keeper.cli import CliError

    try:
        scenario = load_scenario(args.file)
    except ScenarioError as exc:
        raise CliError(str(exc)) from None
    print(f"{args.file}: ok ({len(scenario.steps)} steps)")
    missing = scenario.missing_features()
    if missing:
        print(f"note: requires {', '.join(missing)}: not implemented yet")
    return 0


def add_scenario_command(sub: Any) -> None:
    """`keeper scenario run FILE [--rpc URL] [--verbose]` and `keeper scenario check FILE`."""
    p = sub.add_parser("scenario", help="run YAML scenarios against a fresh deployment")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    run = actions.add_parser(
        "run",
        help="run a scenario (exit 0: every expectation holds, 1: one fails, 2: malformed file)",
    )
    run.add_argument("file", type=Path, help="scenario YAML file")
    run.add_argument("--rpc", dest="rpc_url", help="use this node (must know anvil's dev mnemonic)")
    run.add_argument("--verbose", "-v", action="store_true", help="print every transaction")
    run.set_defaults(handler=_cli_run)
    check = actions.add_parser("check", help="parse and validate a scenario without running it")
    check.add_argument("file", type=Path, help="scenario YAML file")
    check.set_defaults(handler=_cli_check)


__all__ = [
    "ADVANCE_KEEPERS",
    "AccountExpect",
    "EventExpect",
    "InsuranceExpect",
    "MarketExpect",
    "FEATURES",
    "IMPLEMENTED_FEATURES",
    "KEEPERS",
    "ExpectationResult",
    "Scenario",
    "ScenarioEnvironmentError",
    "ScenarioError",
    "ScenarioResult",
    "ScenarioRunner",
    "StepResult",
    "add_scenario_command",
    "load_scenario",
    "parse_duration",
    "run_scenario",
]
