"""A local vyperp exchange: anvil (or any node with dev keys), the protocol
deployed by the one deployer, and funded actors. Used by ``make demo``, the
scenario runner, the gas benchmark and the integration tests.

Dev-key layout (anvil's default mnemonic): key 0 deploys and is the
treasury, key 1 funds the insurance fund (an InsuranceFund contract), the next ``sources`` keys per market
are its oracle reporters, every later key is an actor handed out by
:meth:`LocalNet.actor`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from eth_account import Account

from keeper.anvil import Anvil, dev_private_keys
from keeper.deploy import (
    DeployConfig,
    Deployment,
    Web3Backend,
    deploy_protocol,
    to_wad,
    write_manifest,
)
from keeper.retry import connect

MAX_UINT = 2**256 - 1


@dataclass
class Actor:
    name: str
    key: str
    address: str


@dataclass
class LocalNet:
    """Start with :func:`start_localnet`; stop with :meth:`stop` (or ``with``)."""

    anvil: Anvil | None
    w3: Any
    backend: Web3Backend
    deployment: Deployment
    keys: list[str]
    next_key: int
    actors: dict[str, Actor] = field(default_factory=dict)

    # ------------------------------------------------------------ handles
    @property
    def ch(self):
        return self.deployment.clearinghouse

    @property
    def engine(self):
        """The LiquidationEngine: liquidate, takeover, adl, settle_bad_debt, adl_score."""
        return self.deployment.liquidation_engine

    @property
    def lens(self):
        return self.deployment.lens

    @property
    def token(self):
        return self.deployment.collateral

    @property
    def decimals(self) -> int:
        return self.deployment.config.collateral_decimals

    def market(self, symbol: str):
        return self.deployment.markets[symbol].market

    def oracle(self, symbol: str):
        return self.deployment.markets[symbol].oracle

    def client(self, who: str):
        return self.backend.client(self.actors[who].address if who in self.actors else who)

    # ------------------------------------------------------------ actors
    def actor(self, name: str) -> Actor:
        """The actor called `name`, given the next free dev key on first use."""
        if name not in self.actors:
            if self.next_key >= len(self.keys):
                raise RuntimeError(f"out of dev keys ({len(self.keys)}): start the node with more accounts")
            key = self.keys[self.next_key]
            self.next_key += 1
            addr = Account.from_key(key).address
            self.actors[name] = Actor(name, key, addr)
            if addr not in self.backend.clients:
                from keeper.chain import ChainClient

                self.backend.clients[addr] = ChainClient(self.w3, key)
        return self.actors[name]

    def units(self, amount) -> int:
        return int(Decimal(str(amount)) * 10**self.decimals)

    def fund(self, name: str, amount, subaccount: int = 0, approve: bool = True) -> None:
        """Mint `amount` (human units) of collateral to the actor and deposit it."""
        a = self.actor(name)
        units = self.units(amount)
        self.backend.transact(self.token, "mint", a.address, units)
        if approve:
            self.backend.transact(self.token, "approve", self.ch.address, MAX_UINT, sender=a.address)
        self.backend.transact(self.ch, "deposit", subaccount, units, sender=a.address)

    def set_index(self, symbol: str, price, confirm: bool = True) -> bool:
        """Every reporter of the market pushes `price` at the chain's time. A
        move the index guard holds back (PROTOCOL.md §4: "oracle: index moved
        too fast") is confirmed by the deployer, the oracle's owner, with
        `reset_reference()`, unless `confirm` is False. Returns whether it was."""
        md = self.deployment.markets[symbol]
        now = self.backend.timestamp()
        hashes = [
            # explicit gas: an estimate against pending state can miss the median recompute
            self.backend.client(r).send_nowait(md.oracle.functions.report(to_wad(price), now), gas=150_000)
            for r in md.reporters
        ]
        for h in hashes:
            self.backend.client(md.reporters[0]).wait(h)
        if confirm and not md.oracle.functions.index_status().call()[0]:
            self.backend.transact(md.oracle, "reset_reference")
            return True
        return False

    def resync_nonces(self) -> None:
        """After another process sent from our keys (a keeper run separately)."""
        for client in self.backend.clients.values():
            client.resync_nonce()

    def account(self, name: str, subaccount: int = 0) -> int:
        return self.ch.functions.account_of(self.actor(name).address, subaccount).call()

    # ------------------------------------------------------------ lifecycle
    def stop(self) -> None:
        if self.anvil is not None:
            self.anvil.stop()

    def __enter__(self) -> LocalNet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_localnet(
    config: DeployConfig | None = None,
    *,
    rpc_url: str | None = None,
    accounts: int = 60,
    manifest_path: str | Path | None = None,
    anvil_args: tuple[str, ...] = (),
) -> LocalNet:
    """Start anvil on a free port (unless `rpc_url` is given: a node that
    knows the default dev mnemonic), deploy, and return the local net."""
    anvil = None
    if rpc_url is None:
        anvil = Anvil(accounts=accounts, extra_args=anvil_args).start()
        rpc_url = anvil.url
    try:
        w3 = connect(rpc_url)
        keys = list(anvil.private_keys if anvil else dev_private_keys(accounts))
        config = config or DeployConfig()
        addresses = [Account.from_key(k).address for k in keys]
        cursor = 2
        reporters: dict[str, list[str]] = {}
        for mc in config.markets:
            reporters[mc.symbol] = addresses[cursor : cursor + mc.oracle_sources]
            cursor += mc.oracle_sources
        config = replace(config, treasury=addresses[0], reporters=reporters)
        backend = Web3Backend(w3, keys[:cursor])
        deployment = deploy_protocol(backend, config)
        if manifest_path:
            write_manifest(deployment.manifest, manifest_path)
        return LocalNet(anvil, w3, backend, deployment, keys, cursor)
    except BaseException:
        if anvil is not None:
            anvil.stop()
        raise
