"""The one deployer of vyperp, used by tests, scripts and the simulation.

One plan (:func:`deploy_protocol`) and small backend adapters:

* :class:`BoaBackend` — titanoboa, for contract tests;
* :class:`Web3Backend` — web3.py against any JSON-RPC node (anvil), for keepers,
  the scenario runner and the simulation;
* ``scripts/deploy.py`` adapts ape accounts to the same interface.

Every deploy returns a :class:`Deployment` whose ``manifest`` (chain id,
addresses, block) is what keepers read; :func:`write_manifest` saves it as JSON.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path
from typing import Any, Protocol

from keeper import artifacts
from keeper.units import WAD


def to_wad(x: Decimal | str | int | float) -> int:
    """Human decimal -> 18-decimal fixed point (exact for decimal strings)."""
    return int(Decimal(str(x)) * WAD)


def from_wad(x: int) -> Decimal:
    return Decimal(x) / WAD


# ---------------------------------------------------------------- configuration


def default_mark_band(maintenance_margin: Decimal) -> Decimal:
    """A quarter of the maintenance margin rate, down to a whole 1e-9: the widest mark band
    PerpMarket takes (MARK_BAND_PER_MMR)."""
    return (maintenance_margin / 4).quantize(Decimal("1e-9"), rounding=ROUND_FLOOR)


@dataclass
class MarketConfig:
    """One market and its index oracle. Defaults are documented in docs/PROTOCOL.md."""

    symbol: str
    initial_price: Decimal
    tick_size: Decimal = Decimal("0.01")
    lot_size: Decimal = Decimal("0.001")
    initial_margin: Decimal = Decimal("0.10")  # Zeta (seed 003): IM 10%
    maintenance_margin: Decimal = Decimal("0.065")  # Zeta (seed 003): MM 6.5%
    taker_fee: Decimal = Decimal("0.0005")
    maker_fee: Decimal = Decimal("0.0002")
    # the mark is clamped to index x (1 +- mark_band); the contract takes at most a quarter
    # of the maintenance margin rate (one trade moves the mark at most half of it), and
    # that largest value is the default (PROTOCOL.md §7)
    mark_band: Decimal | None = None
    min_order_notional: Decimal = Decimal("10")
    max_open_orders: int = 100
    max_fills: int = 16
    max_open_interest: Decimal = Decimal("1000000000")
    oracle_sources: int = 3
    oracle_quorum: int = 2
    oracle_max_age: int = 60
    # index guard (PROTOCOL.md §4): the index is invalid while the median is
    # more than max_divergence from a reference price that moves at most
    # reference_rate per hour (a report moves a valid index at most 10%)
    oracle_max_divergence: Decimal = Decimal("0.1")
    oracle_reference_rate: Decimal = Decimal("2")  # per hour
    # an even count of fresh sources whose two middle prices differ by more
    # than this leaves the index invalid (None: the contract's default, 1%)
    oracle_max_spread: Decimal | None = None
    # funding (PROTOCOL.md §8): Binance-like defaults, 1h settlement of an 8h quote
    funding_interval: int = 3600
    funding_period: int = 8 * 3600
    interest_rate: Decimal = Decimal("0.0001")  # per funding_period (seed 004: 0.01% per 8h)
    funding_clamp: Decimal = Decimal("0.0005")
    funding_cap: Decimal = Decimal("0.005")  # per interval
    impact_notional: Decimal = Decimal("1000")  # Zeta (seed 003): $1k of quotes
    sample_interval: int = 60
    premium_mode: str = "impact_band"  # or impact_mid (seeds 002, 003)
    # liquidation (PROTOCOL.md §9): LiquidationEngine.LiquidationParams
    liquidation_fee: Decimal = Decimal("0.005")  # seed 001: "a nominal fee of 0.5%"
    liquidator_share: Decimal = Decimal("0.5")
    bankrupt_band: Decimal = Decimal("0.05")
    takeover_discount: Decimal = Decimal("0.01")
    small_position_notional: Decimal = Decimal("1000")
    # price protection (PROTOCOL.md §5): an order's price within index x (1 +- price_band)
    price_band: Decimal = Decimal("0.02")

    def __post_init__(self):
        if self.mark_band is None:
            self.mark_band = default_mark_band(Decimal(self.maintenance_margin))

    def params(self) -> tuple:
        """The PerpMarket.MarketParams tuple."""
        return (
            to_wad(self.initial_margin),
            to_wad(self.maintenance_margin),
            to_wad(self.taker_fee),
            to_wad(self.maker_fee),
            to_wad(self.mark_band),
            to_wad(self.min_order_notional),
            self.max_open_orders,
            self.max_fills,
            to_wad(self.max_open_interest),
            to_wad(self.price_band),
        )

    def liquidation_params(self) -> tuple:
        """The LiquidationEngine.LiquidationParams tuple."""
        return (
            to_wad(self.liquidation_fee),
            to_wad(self.liquidator_share),
            to_wad(self.bankrupt_band),
            to_wad(self.takeover_discount),
            to_wad(self.small_position_notional),
        )

    def funding_params(self) -> tuple:
        """The FundingRate.FundingParams tuple."""
        modes = {"impact_band": 0, "impact_mid": 1}
        if self.premium_mode not in modes:
            raise ValueError(f"premium_mode must be one of {sorted(modes)}, not {self.premium_mode!r}")
        return (
            self.funding_interval,
            self.funding_period,
            to_wad(self.interest_rate),
            to_wad(self.funding_clamp),
            to_wad(self.funding_cap),
            to_wad(self.impact_notional),
            self.sample_interval,
            modes[self.premium_mode],
        )


DEFAULT_MARKETS = (
    MarketConfig("BTC-PERP", Decimal("100000"), tick_size=Decimal("1"), lot_size=Decimal("0.0001")),
    MarketConfig("ETH-PERP", Decimal("4000"), tick_size=Decimal("0.1"), lot_size=Decimal("0.001")),
    MarketConfig("SOL-PERP", Decimal("200"), tick_size=Decimal("0.01"), lot_size=Decimal("0.01")),
)


@dataclass
class DeployConfig:
    collateral_decimals: int = 6
    collateral_symbol: str = "USDC"
    collateral: str | None = None  # an existing token: no mock is deployed
    insurance_fee_share: Decimal = Decimal("0.5")
    markets: Sequence[MarketConfig] = DEFAULT_MARKETS
    # insurance fund (PROTOCOL.md §10): an InsuranceFund is deployed unless given
    insurance_fund: str | None = None
    insurance_payout_cap: Decimal = Decimal("0.5")  # of its assets per bad-debt event
    insurance_cooldown: int = 7 * 86400
    insurance_withdraw_window: int = 2 * 86400
    # None -> the deployer
    treasury: str | None = None
    # reporters[symbol] = reporter addresses, one per oracle source
    reporters: dict[str, list[str]] = field(default_factory=dict)
    push_initial_prices: bool = True


# ---------------------------------------------------------------- backends


class Backend(Protocol):
    deployer: str

    def deploy(self, name: str, *args: Any) -> Any: ...

    def at(self, name: str, address: str) -> Any: ...

    def transact(self, contract: Any, fn: str, *args: Any, sender: str | None = None) -> Any: ...

    def address(self, contract: Any) -> str: ...

    def chain_id(self) -> int: ...

    def block_number(self) -> int: ...

    def timestamp(self) -> int: ...


class BoaBackend:
    """titanoboa: contracts compiled from the same sources as the artifacts."""

    def __init__(self, deployer: str | None = None):
        import boa

        self.boa = boa
        self.deployer = deployer or boa.env.generate_address("deployer")
        boa.env.eoa = self.deployer

    _deployers: dict[str, Any] = {}

    def factory(self, name: str) -> Any:
        """The compiled boa deployer for a contract, compiled once per process."""
        if name not in self._deployers:
            self._deployers[name] = self.boa.load_partial(str(artifacts.source_path(name)))
        return self._deployers[name]

    def deploy(self, name: str, *args: Any) -> Any:
        with self.boa.env.prank(self.deployer):
            return self.factory(name).deploy(*args)

    def at(self, name: str, address: str) -> Any:
        return self.factory(name).at(address)

    def transact(self, contract: Any, fn: str, *args: Any, sender: str | None = None) -> Any:
        with self.boa.env.prank(sender or self.deployer):
            return getattr(contract, fn)(*args)

    def address(self, contract: Any) -> str:
        return str(contract.address)

    def chain_id(self) -> int:
        return self.boa.env.evm.patch.chain_id

    def block_number(self) -> int:
        return self.boa.env.evm.patch.block_number

    def timestamp(self) -> int:
        return self.boa.env.evm.patch.timestamp


class Web3Backend:
    """web3.py over JSON-RPC; each sender needs its private key."""

    def __init__(self, w3: Any, keys: Sequence[str], receipt_timeout_s: float = 60):
        from eth_account import Account

        from keeper.chain import ChainClient

        self.w3 = w3
        self.clients: dict[str, ChainClient] = {}
        for k in keys:
            addr = Account.from_key(k).address
            self.clients[addr] = ChainClient(w3, k, receipt_timeout_s=receipt_timeout_s)
        self.deployer = next(iter(self.clients))

    def client(self, sender: str | None = None):
        from web3 import Web3

        addr = Web3.to_checksum_address(sender or self.deployer)
        if addr not in self.clients:
            raise KeyError(f"no private key for sender {addr}")
        return self.clients[addr]

    def at(self, name: str, address: str) -> Any:
        return self.w3.eth.contract(address=address, abi=artifacts.abi(name))

    contract = at

    def deploy(self, name: str, *args: Any) -> Any:
        factory = self.w3.eth.contract(abi=artifacts.abi(name), bytecode=artifacts.bytecode(name))
        receipt = self.client().deploy(factory.constructor(*args))
        return self.contract(name, receipt["contractAddress"])

    def transact(self, contract: Any, fn: str, *args: Any, sender: str | None = None) -> Any:
        return self.client(sender).send(getattr(contract.functions, fn)(*args))

    def address(self, contract: Any) -> str:
        return contract.address

    def chain_id(self) -> int:
        return self.w3.eth.chain_id

    def block_number(self) -> int:
        return self.w3.eth.block_number

    def timestamp(self) -> int:
        return self.w3.eth.get_block("latest")["timestamp"]


class ApeBackend:
    """ape: contracts from ape's own compilation of the same sources, sent
    from ape accounts (``ape run deploy`` on any ape network)."""

    def __init__(self, project: Any, sender: Any, accounts: Sequence[Any] = ()):
        from ape import chain

        self.chain = chain
        self.project = project
        self.sender = sender
        self.deployer = str(sender.address)
        self.accounts = {str(a.address): a for a in (sender, *accounts)}

    def deploy(self, name: str, *args: Any) -> Any:
        return getattr(self.project, name).deploy(*args, sender=self.sender)

    def at(self, name: str, address: str) -> Any:
        return getattr(self.project, name).at(address)

    def transact(self, contract: Any, fn: str, *args: Any, sender: str | None = None) -> Any:
        account = self.accounts[str(sender)] if sender else self.sender
        return getattr(contract, fn)(*args, sender=account)

    def address(self, contract: Any) -> str:
        return str(contract.address)

    def chain_id(self) -> int:
        return self.chain.chain_id

    def block_number(self) -> int:
        return self.chain.blocks.height

    def timestamp(self) -> int:
        return self.chain.blocks.head.timestamp


# ---------------------------------------------------------------- the plan


@dataclass
class MarketDeployment:
    config: MarketConfig
    oracle: Any
    market: Any
    reporters: list[str]
    funding: Any = None


@dataclass
class Deployment:
    backend: Any
    config: DeployConfig
    collateral: Any
    clearinghouse: Any
    markets: dict[str, MarketDeployment]
    manifest: dict
    insurance_fund: Any = None
    lens: Any = None
    liquidation_engine: Any = None


def deploy_protocol(backend: Backend, config: DeployConfig | None = None) -> Deployment:
    """Deploy the collateral (mock unless given), the insurance fund (unless
    given), the clearinghouse, its liquidation engine (connected before any market is listed) and its
    lens, and per market an index oracle, a perp market and its funding rate; list the markets (on the
    clearinghouse, which lists them on the engine) with their liquidation parameters; push initial
    prices. Returns handles and the manifest."""
    config = config or DeployConfig()
    treasury = config.treasury or backend.deployer
    collateral, collateral_address = _collateral(backend, config)
    fund = _insurance_fund(backend, config, collateral_address)
    insurance = backend.address(fund)
    ch = backend.deploy(
        "Clearinghouse", collateral_address, insurance, treasury, to_wad(config.insurance_fee_share)
    )
    ch_address = backend.address(ch)
    engine = backend.deploy("LiquidationEngine", ch_address)
    backend.transact(ch, "set_liquidation_engine", backend.address(engine))
    lens = backend.deploy("Lens", ch_address)
    if not config.insurance_fund:
        backend.transact(fund, "set_clearinghouse", ch_address)
    markets = {mc.symbol: _deploy_market(backend, config, mc, ch, engine) for mc in config.markets}
    if config.push_initial_prices:
        _push_initial_prices(backend, markets.values())
    deployment = Deployment(backend, config, collateral, ch, markets, {}, fund, lens, engine)
    deployment.manifest = _manifest(deployment, collateral_address, treasury)
    return deployment


def _collateral(backend: Backend, config: DeployConfig) -> tuple[Any, str]:
    """The collateral token and its address: the configured one, else a fresh MockStablecoin."""
    if config.collateral:
        return backend.at("MockStablecoin", config.collateral), config.collateral  # its ERC-20 ABI part
    token = backend.deploy(
        "MockStablecoin",
        f"{config.collateral_symbol} (mock)",
        config.collateral_symbol,
        config.collateral_decimals,
    )
    return token, backend.address(token)


def _insurance_fund(backend: Backend, config: DeployConfig, collateral_address: str) -> Any:
    """The configured insurance fund, else a fresh one (its clearinghouse set once deployed)."""
    if config.insurance_fund:
        return backend.at("InsuranceFund", config.insurance_fund)
    return backend.deploy(
        "InsuranceFund",
        collateral_address,
        "vyperp insurance fund",
        "vIF",
        to_wad(config.insurance_payout_cap),
        config.insurance_cooldown,
        config.insurance_withdraw_window,
    )


def _deploy_market(
    backend: Backend, config: DeployConfig, mc: MarketConfig, ch: Any, engine: Any
) -> MarketDeployment:
    """One market's index oracle, perp market and funding rate, listed on the clearinghouse
    with its liquidation parameters on the engine."""
    reporters = list(config.reporters.get(mc.symbol, [])) or [backend.deployer]
    oracle = backend.deploy(
        "IndexOracle",
        f"{mc.symbol} index"[:32],
        reporters,
        mc.oracle_max_age,
        min(mc.oracle_quorum, len(reporters)),
        to_wad(mc.oracle_max_divergence),
        to_wad(mc.oracle_reference_rate),
    )
    if mc.oracle_max_spread is not None:
        backend.transact(oracle, "set_max_spread", to_wad(mc.oracle_max_spread))
    market = backend.deploy(
        "PerpMarket",
        mc.symbol,
        backend.address(ch),
        backend.address(oracle),
        to_wad(mc.tick_size),
        to_wad(mc.lot_size),
        mc.params(),
    )
    funding = backend.deploy(
        "FundingRate", backend.address(market), backend.address(oracle), mc.funding_params()
    )
    backend.transact(market, "set_funding_rate", backend.address(funding))
    backend.transact(ch, "add_market", backend.address(market))
    backend.transact(engine, "set_liquidation_params", backend.address(market), mc.liquidation_params())
    return MarketDeployment(mc, oracle, market, reporters, funding)


def _push_initial_prices(backend: Backend, markets: Iterable[MarketDeployment]) -> None:
    """Every reporter of every market reports the market's initial price, now."""
    now = backend.timestamp()
    for md in markets:
        for r in md.reporters:
            backend.transact(md.oracle, "report", to_wad(md.config.initial_price), now, sender=r)


def _manifest(d: Deployment, collateral_address: str, treasury: str) -> dict:
    """The deployment's JSON manifest (read back by keeper.manifest.Manifest)."""
    backend, config = d.backend, d.config
    return {
        "chain_id": backend.chain_id(),
        "block": backend.block_number(),
        "deployed_at": int(time.time()),
        "deployer": backend.deployer,
        "collateral": {
            "address": collateral_address,
            "decimals": config.collateral_decimals,
            "symbol": config.collateral_symbol,
        },
        "clearinghouse": backend.address(d.clearinghouse),
        "liquidation_engine": backend.address(d.liquidation_engine),
        "insurance_fund": backend.address(d.insurance_fund),
        "lens": backend.address(d.lens),
        "treasury": treasury,
        "markets": {
            s: {
                "oracle": backend.address(md.oracle),
                "market": backend.address(md.market),
                "funding": backend.address(md.funding),
                "reporters": md.reporters,
                "initial_price": str(md.config.initial_price),
                "tick_size": str(md.config.tick_size),
                "lot_size": str(md.config.lot_size),
            }
            for s, md in d.markets.items()
        },
    }


#: the contracts a manifest names, whose ABIs go beside it (`abi_path`)
MANIFEST_ABIS = (
    "Clearinghouse", "LiquidationEngine", "Lens", "InsuranceFund", "PerpMarket", "IndexOracle", "FundingRate",
    "MockStablecoin",
)  # fmt: skip


def abi_path(manifest_path: str | Path) -> Path:
    """Where the ABIs of a manifest's contracts are written: ``<name>.abi.json`` beside it."""
    path = Path(manifest_path)
    return path.with_name(path.stem + ".abi.json")


def write_manifest(manifest: dict, path: str | Path) -> Path:
    """Save the manifest as JSON, and beside it (`abi_path`) the ABI of every contract it names,
    ``{"Clearinghouse": [...], "PerpMarket": [...], ...}``, for integrators (cast, web3.py,
    ethers) who do not build the contracts."""
    from keeper.artifacts import abi  # compiles on first use

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    abi_path(path).write_text(json.dumps({name: abi(name) for name in MANIFEST_ABIS}, indent=1) + "\n")
    return path
