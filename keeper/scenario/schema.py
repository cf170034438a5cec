"""The scenario schema: pydantic models of every level of a scenario file (unknown keys
rejected; the contracts' hard bounds checked before deploying), the parsed :class:`Step`
and :class:`Scenario`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, localcontext
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from keeper.units import fmt, format_duration, parse_decimal, parse_duration, to_units

# Features a scenario can declare in `requires:`; the ones not in
# IMPLEMENTED_FEATURES make the test suite skip the scenario (with that reason).
FEATURES = ("funding", "liquidation", "adl")
IMPLEMENTED_FEATURES: frozenset[str] = frozenset({"funding", "liquidation", "adl"})

# actors of the runner itself (never a scenario account): the insurance fund's
# depositor and the keepers' keys
INSURANCE_DEPOSITOR = "<insurance depositor>"
LIQUIDATION_KEEPER = "<liquidation keeper>"
ADL_KEEPER = "<adl keeper>"
RUNNER_ACTORS = (INSURANCE_DEPOSITOR, LIQUIDATION_KEEPER, ADL_KEEPER)


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


# PerpMarket's rates: whole multiples of 1e-9, packed in one parameter word
MARKET_RATE_KEYS = (
    "initial_margin",
    "maintenance_margin",
    "taker_fee",
    "maker_fee",
    "mark_band",
    "price_band",
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
    price_band: Fraction | None = None
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
            *MARKET_RATE_KEYS,
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
        from keeper.deploy import MarketConfig, default_mark_band

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
        widest = default_mark_band(mmr)  # one trade moves the mark at most half the maintenance margin
        if self.mark_band is not None and not Decimal("0.0001") <= self.mark_band <= widest:
            raise ValueError(
                f"mark_band {fmt(self.mark_band)} out of bounds [0.0001, maintenance_margin / 4 = {fmt(widest)}]"
            )
        if self.price_band is not None and not Decimal("0.001") <= self.price_band <= Decimal("0.2"):
            raise ValueError(f"price_band {fmt(self.price_band)} out of bounds [0.001, 0.2]")
        with localcontext() as ctx:
            ctx.prec = 100
            for key in MARKET_RATE_KEYS:
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


_DURATION_KEYS = frozenset({"funding_interval", "funding_period", "sample_interval"})
