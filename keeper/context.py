"""What a `keeper` command gets (:class:`RunContext`): its settings and parsed arguments, and
lazily the node (checked against the manifest's chain id), the manifest and the protocol's
contracts with their artifacts' ABIs. Used by `keeper run` (keeper/cli.py), `keeper status`
and `keeper trade` (keeper/people/) and `keeper audit` (keeper/audit.py)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any

from hexbytes import HexBytes

from keeper.errors import CliError
from keeper.logs import get_logger
from keeper.manifest import PROTOCOL_CONTRACTS, Manifest, load_manifest
from keeper.settings import KeeperSettings


@dataclass
class RunContext:
    """What every `keeper run <bot>` gets: settings, parsed args, and lazily the chain and manifest."""

    settings: KeeperSettings
    args: argparse.Namespace
    _w3: Any = field(default=None, repr=False)
    _manifest: Manifest | None = field(default=None, repr=False)
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)  # address -> ChainClient

    @property
    def manifest(self) -> Manifest:
        if self._manifest is None:
            self._manifest = load_manifest(self.settings.manifest)
        return self._manifest

    @property
    def w3(self) -> Any:
        """Web3 connected to settings.rpc_url, checked against the manifest's chain id."""
        if self._w3 is None:
            from keeper.retry import call_with_retry, connect, set_max_batch

            w3 = connect(self.settings.rpc_url)
            set_max_batch(w3, self.settings.max_batch)
            try:
                chain_id = int(call_with_retry(lambda: w3.eth.chain_id))
            except OSError as exc:
                raise CliError(f"cannot reach the node at {self.settings.rpc_url}: {exc}") from None
            if chain_id != self.manifest.chain_id:
                raise CliError(
                    f"node {self.settings.rpc_url} is chain {chain_id}, the manifest "
                    f"{self.settings.manifest} is for chain {self.manifest.chain_id}"
                )
            self._w3 = w3
        return self._w3

    def client(self, private_key: str) -> Any:
        """The process's one ChainClient for `private_key`, shared by every bot that uses the key
        (one nonce counter per key). The first use claims the key on this chain for this process
        (keeper.keylock): a second process with the same key refuses to start."""
        from eth_account import Account

        from keeper.keylock import claim_key

        address = Account.from_key(private_key).address
        if address not in self._clients:
            genesis = self.w3.eth.get_block(0)["hash"]
            claim_key(self.manifest.chain_id, HexBytes(genesis).to_0x_hex(), address, self.settings.rpc_url)
            self._clients[address] = self._new_client(private_key)
        return self._clients[address]

    def _new_client(self, private_key: str) -> Any:
        from keeper.chain import ChainClient

        s = self.settings
        return ChainClient(
            self.w3,
            private_key,
            receipt_timeout_s=s.receipt_timeout_s,
            max_fee_gwei=s.max_fee_gwei,
            priority_fee_gwei=s.priority_fee_gwei,
            replace_after_s=s.replace_after_s,
            fee_bump_percent=s.fee_bump_percent,
            logger=get_logger("keeper.chain"),
        )

    def contract(self, name: str, address: str) -> Any:
        from keeper.artifacts import abi  # the lead's compiler wrapper; imported lazily

        return self.w3.eth.contract(address=self.w3.to_checksum_address(address), abi=abi(name))

    def manifest_address(self, key: str) -> str:
        """The manifest's address under `key` (one of PROTOCOL_CONTRACTS); a CliError naming the
        key when the manifest has none (an older deployer's manifest). Reads no chain."""
        address = getattr(self.manifest, key, None)
        if not address:
            raise CliError(
                f"the manifest {self.settings.manifest} has no {key} ({PROTOCOL_CONTRACTS[key]}): it was "
                "written by an older deployer; redeploy with the current one (scripts/deploy.py, keeper.deploy)"
            )
        return str(address)

    def protocol_contract(self, key: str) -> Any:
        """The manifest's contract under `key` with its artifact's ABI (keeper/artifacts)."""
        return self.contract(PROTOCOL_CONTRACTS[key], self.manifest_address(key))

    def clearinghouse(self) -> Any:
        return self.protocol_contract("clearinghouse")

    def liquidation_engine(self) -> Any:
        """The manifest's LiquidationEngine, checked to be the one its clearinghouse uses."""
        from web3.exceptions import Web3Exception

        from keeper.retry import call_with_retry

        self.manifest_address("liquidation_engine")
        ch = self.clearinghouse()
        engine = self.protocol_contract("liquidation_engine")
        try:
            used = call_with_retry(ch.functions.liquidation_engine())
        except Web3Exception as exc:  # no contract there, or a clearinghouse from before the engine
            raise CliError(
                f"cannot read the liquidation engine of the clearinghouse {ch.address} (manifest "
                f"{self.settings.manifest}): {exc}"
            ) from None
        if self.w3.to_checksum_address(used) != engine.address:
            raise CliError(
                f"the manifest {self.settings.manifest} names the liquidation engine {engine.address}, "
                f"but its clearinghouse {ch.address} uses {used} (a new engine was applied since?): "
                "update the manifest's liquidation_engine"
            )
        return engine

    def lens(self) -> Any:
        return self.protocol_contract("lens")
