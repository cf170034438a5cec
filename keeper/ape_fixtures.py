"""pytest fixtures for ape users: a deployed vyperp in one fixture.

A pytest plugin, registered through the ``pytest11`` entry point ``vyperp`` in
pyproject.toml: wherever vyperp is installed (``pip install -e path/to/vyperp``
in the environment that runs ``ape test``) every test can ask for these
fixtures, nothing to import. With plugin autoloading off
(``PYTEST_DISABLE_PLUGIN_AUTOLOAD``) load it by name: ``ape test -p keeper.ape_fixtures``.

The README's example is ``tests/ape/test_fixtures.py::test_long_5x__index_up_2pct__earns_10pct``:
two traders from ``vyperp_trader``, orders through ``vyperp.place_order``, the
index moved with ``vyperp.set_index``, the PnL read from ``vyperp.account_summary``.

Fixtures:

* ``vyperp`` (module scope): the protocol deployed by the one deployer
  (``keeper.deploy.deploy_protocol`` through its ape backend, as ``ape run
  deploy``) from ``vyperp_deployer`` with ``vyperp_config``; a :class:`Vyperp`
  of ape contract instances with helpers. Deployed once per test module; ape's
  chain isolation reverts what each test did, so tests stay fast and
  independent.
* ``vyperp_trader`` (function scope): a factory ``vyperp_trader(deposit=10_000,
  account=None, subaccount=0)`` returning an ape account (a fresh test account
  unless given) with ``deposit`` collateral minted, approved and deposited.
* ``vyperp_config`` (module scope): the ``keeper.deploy.DeployConfig``; override
  it in your ``conftest.py`` for other markets, collateral decimals or
  parameters. The default is the deployer's three markets with the oracle's
  ``max_age`` raised to a day, so that the wall-clock time a slow module takes
  on ape's test provider never makes the index stale; lower it to test staleness.
* ``vyperp_deployer`` (module scope): the deploying (and owning) account,
  ``accounts[0]``.
* ``vyperp_contracts`` (session scope): where the contract types come from:
  the ape project itself when it is vyperp's checkout (ape's own compilation,
  with its traces), otherwise :class:`ArtifactContracts` (vyperp's sources
  compiled by ``keeper.artifacts``; needs vyperp installed from a checkout, as
  the Vyper sources are not in the package).

Amounts in the helpers are human decimals (``"0.1"``, ``100_000``) checked
against the market's lot and tick like ``keeper trade`` (``keeper.people.trade``);
what the contracts return stays in their fixed point (WAD).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from keeper import artifacts
from keeper.deploy import (
    DEFAULT_MARKETS,
    ApeBackend,
    DeployConfig,
    Deployment,
    MarketConfig,
    deploy_protocol,
    to_wad,
)

MAX_UINT = 2**256 - 1
TEST_ORACLE_MAX_AGE = 86_400  # IndexOracle's upper bound
TRADER_GAS_ETH = 10**18  # what a fresh trader account gets for gas when it has none


class ArtifactContracts:
    """ape ``ContractContainer``s of vyperp's deployables compiled by ``keeper.artifacts``:
    ``ArtifactContracts().Clearinghouse.deploy(...)``, ``.at(address)``."""

    _containers: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if name not in self._containers:
            from ape.contracts import ContractContainer
            from ethpm_types import ContractType

            if name not in artifacts.deployables():
                raise AttributeError(
                    f"no vyperp contract {name!r} in {artifacts.CONTRACTS}: "
                    f"{', '.join(artifacts.deployables())}"
                )
            contract_type = ContractType.model_validate(
                {
                    "contractName": name,
                    "abi": artifacts.abi(name),
                    "deploymentBytecode": {"bytecode": artifacts.bytecode(name)},
                }
            )
            self._containers[name] = ContractContainer(contract_type)
        return self._containers[name]


@dataclass
class VyperpMarket:
    symbol: str
    market: Any  # PerpMarket
    oracle: Any  # IndexOracle
    funding: Any  # FundingRate
    config: MarketConfig


class Vyperp:
    """A deployed vyperp: ape contract instances and helpers for tests.

    Attributes: ``clearinghouse``, ``liquidation_engine`` (``liquidate``,
    ``takeover``, ``adl``, ``settle_bad_debt``, ``adl_score``,
    ``liquidation_params``, ``insurance_capacity``; its owner is the deployer),
    ``collateral`` (a mintable mock unless the config names a token),
    ``insurance_fund``, ``lens`` (``account_summary``, ``market_summary``,
    ``find_hint``, ``orders_of``, ``order``), ``markets`` (symbol ->
    :class:`VyperpMarket`), ``deployer``, ``manifest`` (what ``ape run deploy``
    writes) and ``deployment`` (``keeper.deploy.Deployment``)."""

    def __init__(self, deployment: Deployment, deployer: Any, chain: Any):
        self.deployment = deployment
        self.deployer = deployer
        self.chain = chain
        self.clearinghouse = deployment.clearinghouse
        self.liquidation_engine = deployment.liquidation_engine
        self.collateral = deployment.collateral
        self.insurance_fund = deployment.insurance_fund
        self.lens = deployment.lens
        self.manifest = deployment.manifest
        self.markets = {
            s: VyperpMarket(s, md.market, md.oracle, md.funding, md.config)
            for s, md in deployment.markets.items()
        }

    def market(self, symbol: str) -> Any:
        """The PerpMarket of `symbol`."""
        if symbol not in self.markets:
            raise KeyError(f"no market {symbol!r}; deployed: {', '.join(self.markets)}")
        return self.markets[symbol].market

    # ------------------------------------------------------------ accounts

    def units(self, amount: Any) -> int:
        """Human collateral amount -> token units."""
        return int(Decimal(str(amount)) * 10**self.deployment.config.collateral_decimals)

    def fund(self, account: Any, amount: Any, subaccount: int = 0) -> None:
        """Mint `amount` (human units) of the mock collateral to `account`, approve and deposit it."""
        units = self.units(amount)
        self.collateral.mint(account, units, sender=self.deployer)
        self.collateral.approve(self.clearinghouse, MAX_UINT, sender=account)
        self.clearinghouse.deposit(subaccount, units, sender=account)

    def account_of(self, owner: Any, subaccount: int = 0) -> int:
        return self.clearinghouse.account_of(owner, subaccount)

    def account_summary(self, owner: Any, subaccount: int = 0) -> Any:
        """Cash, equity, IM, MM, withdrawable and positions (WAD) of (owner, subaccount)."""
        return self.lens.account_summary(owner, subaccount)

    def position(self, owner: Any, symbol: str, subaccount: int = 0) -> Any:
        """PerpMarket.position of (owner, subaccount): size, entry, mark, unrealized PnL, funding owed (WAD)."""
        return self.market(symbol).position(self.account_of(owner, subaccount))

    # ------------------------------------------------------------ trading

    def place_order(
        self,
        account: Any,
        symbol: str,
        side: str,
        size: Any,
        price: Any = None,
        *,
        type: str | None = None,
        reduce_only: bool = False,
        subaccount: int = 0,
    ) -> Any:
        """Place an order like ``keeper trade place``: `side` "buy" | "sell", human `size` and
        `price`; `type` "gtc" (default with a price), "post-only", "ioc" or "market" (default
        without: an IOC with its limit at the price band's edge around the index). Returns the
        ape receipt."""
        from keeper.orders import market_limit
        from keeper.people.trade import order_args

        mkt = self.market(symbol)
        order = order_args(
            side,
            size,
            price,
            type,
            tick=mkt.TICK_SIZE(),
            lot=mkt.LOT_SIZE(),
            symbol=symbol,
            reduce_only=reduce_only,
        )
        limit = (
            order.price
            if order.price is not None
            else market_limit(
                mkt.index_price(), self.lens.market_params(mkt).price_band, mkt.TICK_SIZE(), order.is_buy
            )
        )
        hint = self.lens.find_hint(mkt, order.is_buy, limit)
        return self.clearinghouse.place_order(
            account, subaccount, mkt, order.is_buy, order.size, limit, order.order_type, order.reduce_only, hint,
            sender=account,
        )  # fmt: skip

    def set_index(self, symbol: str, price: Any, confirm: bool = True) -> None:
        """Every reporter of the market reports `price` (human) now. A block is mined first, so a
        test that moved ``chain.pending_timestamp`` reports at that time. A move the index guard
        holds back ("oracle: index moved too fast", docs/PROTOCOL.md §4) is confirmed by the
        deployer (the oracle's owner) with ``reset_reference()``, unless ``confirm`` is False."""
        md = self.deployment.markets[symbol]
        self.chain.mine()
        now = self.chain.blocks.head.timestamp
        for reporter in md.reporters:
            self.deployment.backend.transact(md.oracle, "report", to_wad(price), now, sender=reporter)
        if confirm and not md.oracle.index_status()[0]:
            self.deployment.backend.transact(md.oracle, "reset_reference")


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def vyperp_contracts(project: Any) -> Any:
    """The ape project when it is vyperp's checkout (ape's compilation), else ArtifactContracts."""
    try:
        own = artifacts.REPO is not None and Path(project.path).resolve() == artifacts.REPO.resolve()
    except (AttributeError, OSError):
        own = False
    return project if own else ArtifactContracts()


@pytest.fixture(scope="module")
def vyperp_config() -> DeployConfig:
    """The deployer's markets, oracle max_age 1 day (override in your conftest.py)."""
    return DeployConfig(
        markets=tuple(replace(m, oracle_max_age=TEST_ORACLE_MAX_AGE) for m in DEFAULT_MARKETS)
    )


@pytest.fixture(scope="module")
def vyperp_deployer(accounts: Any) -> Any:
    return accounts[0]


@pytest.fixture(scope="module")
def vyperp(
    vyperp_contracts: Any, vyperp_deployer: Any, vyperp_config: DeployConfig, accounts: Any, chain: Any
) -> Vyperp:
    """vyperp deployed once per module; ape's isolation reverts each test's changes."""
    backend = ApeBackend(vyperp_contracts, vyperp_deployer, list(accounts))
    return Vyperp(deploy_protocol(backend, vyperp_config), vyperp_deployer, chain)


@pytest.fixture
def vyperp_trader(vyperp: Vyperp, accounts: Any) -> Callable[..., Any]:
    """Factory: ``vyperp_trader(deposit=10_000, account=None, subaccount=0)`` -> a funded ape account."""

    def make(deposit: Any = 10_000, account: Any = None, subaccount: int = 0) -> Any:
        if account is None:
            account = accounts.generate_test_account()
            if account.balance < TRADER_GAS_ETH // 10:
                vyperp.deployer.transfer(account, TRADER_GAS_ETH)
        vyperp.fund(account, deposit, subaccount)
        return account

    return make


__all__ = ["ArtifactContracts", "Vyperp", "VyperpMarket"]
