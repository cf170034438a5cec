"""Typed keeper settings (pydantic-settings).

Sources, highest priority first:
  1. explicit overrides: `load_settings(path, rpc_url=...)` (e.g. from CLI flags);
  2. environment: `VYPERP_RPC_URL`, `VYPERP_METRICS_PORT=0`, `VYPERP_ORACLE__INTERVAL_S`,
     `VYPERP_ORACLE__REPORTER_KEYS='["0x..."]'`, `VYPERP_FUNDING__KEY=0x...`,
     `VYPERP_LIQUIDATION__KEY=0x...`, `VYPERP_ADL__MAX_PER_ROUND=5`;
  3. a config file, YAML (.yaml/.yml) or TOML (.toml): the `path` argument, else `$VYPERP_CONFIG`;
  4. the defaults below.
Unknown keys (in the file or the overrides) are an error naming the key.
"""

from __future__ import annotations

import os
import re
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

CONFIG_ENV = "VYPERP_CONFIG"
_KEY_RE = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")

_config_path: ContextVar[Path | None] = ContextVar("vyperp_config_path", default=None)


class SettingsError(ValueError):
    """Settings could not be loaded: a bad file, an unknown key or an invalid value."""


def _check_key(key: SecretStr | None) -> SecretStr | None:
    if key is not None and not _KEY_RE.match(key.get_secret_value().strip()):
        raise ValueError("must be a 32-byte hex private key (64 hex digits, optional 0x)")
    return key


class OracleSettings(BaseModel):
    """The oracle reporter bot."""

    model_config = ConfigDict(extra="forbid")

    interval_s: float = Field(2.0, gt=0)
    feed: Literal["random_walk", "csv"] = "random_walk"
    csv_path: Path | None = None
    seed: int = 7
    volatility: float = Field(0.002, ge=0, description="per step, fraction")
    venue_noise: float = Field(0.0005, ge=0, description="per venue, fraction")
    # one key per oracle source; the bot reports for every source whose reporter address is one of these
    reporter_keys: list[SecretStr] = Field(default_factory=list)
    # an oracle with Chainlink sources: update_reference() when the reference price is older than this
    reference_interval_s: int = Field(60, ge=1)

    @field_validator("reporter_keys")
    @classmethod
    def _keys_are_hex(cls, keys: list[SecretStr]) -> list[SecretStr]:
        for key in keys:
            _check_key(key)
        return keys

    @model_validator(mode="after")
    def _csv_needs_path(self) -> OracleSettings:
        if self.feed == "csv" and self.csv_path is None:
            raise ValueError("oracle.feed = 'csv' needs oracle.csv_path")
        return self


class BotSettings(BaseModel):
    """What every bot section has: its interval, its own key (falling back to
    the shared private_key) and a dry-run switch (or the shared dry_run)."""

    model_config = ConfigDict(extra="forbid")

    interval_s: float = Field(5.0, gt=0, description="seconds between rounds")
    key: SecretStr | None = None
    dry_run: bool = False

    @field_validator("key")
    @classmethod
    def _key_is_hex(cls, key: SecretStr | None) -> SecretStr | None:
        return _check_key(key)


class FundingSettings(BotSettings):
    """The funding keeper bot (premium samples and settlements)."""

    interval_s: float = Field(5.0, gt=0, description="seconds between passes over the markets")


class LiquidationSettings(BotSettings):
    """The liquidation keeper bot (PROTOCOL.md §9, §12)."""

    interval_s: float = Field(1.0, gt=0, description="seconds between rounds")
    max_per_round: int = Field(1_000, ge=1, description="liquidations sent per round at most")
    health_page: int = Field(500, ge=1, le=500, description="accounts per Clearinghouse.health call")
    gas: int | None = Field(
        None, gt=21_000, description="fixed gas limit per liquidation (default: bounded by max_fills)"
    )
    no_fill_backoff_blocks: int = Field(
        10, ge=0, description="blocks before retrying a liquidation that filled nothing"
    )
    takeover_subaccount: int | None = Field(
        None,
        ge=0,
        description="backstop takeover (LiquidationEngine.takeover) from this subaccount of the keeper's key "
        "when the book cannot close a liquidatable position (None: off); fund it with collateral",
    )
    takeover_max_notional: float | None = Field(
        None, gt=0, description="quote (e.g. USD) per takeover at most (None: as much as the margin allows)"
    )


class AdlSettings(BotSettings):
    """The ADL keeper bot (PROTOCOL.md §11, §12)."""

    interval_s: float = Field(2.0, gt=0, description="seconds between rounds")
    max_per_round: int = Field(10, ge=1, description="ADL calls per round at most")
    health_page: int = Field(500, ge=1, le=500, description="accounts per Clearinghouse.health call")


class KeeperSettings(BaseSettings):
    """Settings shared by every keeper, with one nested section per bot."""

    model_config = SettingsConfigDict(env_prefix="VYPERP_", env_nested_delimiter="__", extra="forbid")

    rpc_url: str = "http://127.0.0.1:8545"
    manifest: Path = Path("deployments/local.json")
    private_key: SecretStr | None = None
    log_level: str = "INFO"
    dry_run: bool = False
    receipt_timeout_s: float = Field(30, gt=0)
    max_fee_gwei: float = Field(500, gt=0, description="cap on maxFeePerGas")
    priority_fee_gwei: float = Field(1, ge=0)
    replace_after_s: float | None = Field(
        12, gt=0, description="re-send a tx still pending after this long with bumped fees (None: never)"
    )
    fee_bump_percent: float = Field(20, ge=12.5, description="fee raise of a replacement, percent")
    max_batch: int = Field(
        200,
        ge=1,
        description="JSON-RPC requests per batch at most (a refused batch is split, smaller from then on)",
    )
    # `keeper run` as a service
    metrics_port: int | None = Field(
        None, ge=0, le=65_535, description="/health and /metrics on 127.0.0.1 (0: a free port; None: off)"
    )
    health_max_age_s: float = Field(
        60, gt=0, description="a bot is unhealthy when its last success is older (at least 3 intervals)"
    )
    shutdown_timeout_s: float = Field(30, ge=0, description="at shutdown, wait this long for pending txs")
    oracle: OracleSettings = Field(default_factory=OracleSettings)
    funding: FundingSettings = Field(default_factory=FundingSettings)
    liquidation: LiquidationSettings = Field(default_factory=LiquidationSettings)
    adl: AdlSettings = Field(default_factory=AdlSettings)

    @field_validator("private_key")
    @classmethod
    def _key_is_hex(cls, key: SecretStr | None) -> SecretStr | None:
        return _check_key(key)

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, level: str) -> str:
        level = level.upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, ConfigFileSource(settings_cls))


def read_config_file(path: Path) -> dict[str, Any]:
    """The mapping in a YAML or TOML file (chosen by extension)."""
    if not path.is_file():
        raise SettingsError(f"config file not found: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix in (".yaml", ".yml"):
            data = yaml.safe_load(path.read_text()) or {}
        elif suffix == ".toml":
            try:
                import tomllib
            except ModuleNotFoundError:  # Python 3.10
                import tomli as tomllib  # type: ignore[no-redef]
            data = tomllib.loads(path.read_text())
        else:
            raise SettingsError(f"config file {path}: use .yaml, .yml or .toml")
    except (yaml.YAMLError, ValueError) as exc:
        if isinstance(exc, SettingsError):
            raise
        raise SettingsError(f"config file {path} is not valid {suffix[1:].upper()}: {exc}") from exc
    if not isinstance(data, dict):
        raise SettingsError(f"config file {path} must hold a mapping at the top level")
    return data


class ConfigFileSource(PydanticBaseSettingsSource):
    """The config file chosen by `load_settings` (or $VYPERP_CONFIG), below env in priority."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        raise NotImplementedError  # __call__ returns the whole mapping at once

    def __call__(self) -> dict[str, Any]:
        path = _config_path.get()
        if path is None:
            env = os.environ.get(CONFIG_ENV)
            path = Path(env) if env else None
        return read_config_file(path) if path is not None else {}


def _describe(exc: ValidationError, origin: str) -> str:
    lines = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(root)"
        if err["type"] == "extra_forbidden":
            lines.append(f"unknown setting {where!r}")
        else:
            lines.append(f"{where}: {err['msg']}")
    return f"invalid keeper settings ({origin}):\n  " + "\n  ".join(lines)


def load_settings(path: str | Path | None = None, **overrides: Any) -> KeeperSettings:
    """Settings from file (`path` or $VYPERP_CONFIG), then env, then `overrides` (None values are ignored)."""
    file_path = Path(path) if path is not None else None
    if file_path is None and os.environ.get(CONFIG_ENV):
        file_path = Path(os.environ[CONFIG_ENV])
    origin = f"file {file_path}, env VYPERP_*, overrides" if file_path else "env VYPERP_*, overrides"
    token = _config_path.set(file_path)
    try:
        return KeeperSettings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        raise SettingsError(_describe(exc, origin)) from None
    finally:
        _config_path.reset(token)


__all__ = [
    "AdlSettings",
    "FundingSettings",
    "KeeperSettings",
    "LiquidationSettings",
    "OracleSettings",
    "SettingsError",
    "load_settings",
    "read_config_file",
]
