"""The participants' transaction lane: many transactions per JSON-RPC batch, mined when the
simulation says so.

Built on :class:`keeper.rpc.FastLane` (one keep-alive HTTP
connection, JSON-RPC batches). The participants (the market maker, the crowd, the setup) have
no private keys: the node signs for them (anvil's impersonation), so a batch of 1,000 orders
costs no local signing. Every transaction carries an explicit nonce, gas limit and a
priority fee that decreases along the batch: the node orders a block by priority fee, so the
transactions of one batch execute in the order given, whatever order the node received them
in (a block's content and order are then reproducible). Automine is off while the simulation
runs; :meth:`SimLane.mine` mines a block at an exact timestamp.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from keeper.rpc import FastLane

GWEI = 10**9
TX_GAS = 2_000_000  # per transaction: a place_order walking 16 fills, a cancel_all of 30 orders


class LaneError(RuntimeError):
    """The node refused a transaction or a control call."""


@dataclass(frozen=True)
class Tx:
    """One participant transaction: node-signed from `sender`; `tag` says who sent it."""

    sender: str
    to: str
    data: bytes
    gas: int = TX_GAS
    tag: str = ""


class SimLane(FastLane):
    """JSON-RPC lane of the simulation's participants (see the module docstring)."""

    def __init__(self, url: str) -> None:
        super().__init__(url, {})
        self.sent_by_tag: dict[str, int] = {}

    # ------------------------------------------------------------ node control

    def set_automine(self, on: bool) -> None:
        self.call("evm_setAutomine", on)
        self.automine = on  # FastLane's flag

    def mine(self, timestamp: int) -> int:
        """Mine one block at `timestamp` with what the pool holds; returns its number."""
        self.call("evm_mine", timestamp)
        return int(self.call("eth_blockNumber"), 16)

    def pending(self) -> int:
        status = self.call("txpool_status")
        return int(status["pending"], 16) + int(status["queued"], 16)

    def block_number(self) -> int:
        return int(self.call("eth_blockNumber"), 16)

    def set_balances(self, addresses: Iterable[str], wei: int) -> None:
        self.batch([("anvil_setBalance", [a, hex(wei)]) for a in addresses])

    # ------------------------------------------------------------ transactions

    def send(self, txs: Sequence[Tx]) -> list[str]:
        """Put `txs` in the pool (not mined), to execute in this order; returns their hashes."""
        if not txs:
            return []
        missing = sorted({t.sender for t in txs if t.sender not in self.nonces})
        if missing:
            counts = self.batch([("eth_getTransactionCount", [a, "pending"]) for a in missing])
            self.nonces.update({a: int(n, 16) for a, n in zip(missing, counts, strict=True)})
        requests = []
        n = len(txs)
        for i, t in enumerate(txs):
            nonce = self.nonces[t.sender]
            self.nonces[t.sender] = nonce + 1
            tip = n - i  # wei: strictly decreasing along the batch
            tx = {
                "from": t.sender,
                "to": t.to,
                "data": "0x" + t.data.hex(),
                "gas": hex(t.gas),
                "nonce": hex(nonce),
                "maxPriorityFeePerGas": hex(tip),
                "maxFeePerGas": hex(tip + GWEI),
            }
            requests.append(("eth_sendTransaction", [tx]))
        answers = self.batch(requests, check=False)
        hashes = []
        for t, answer in zip(txs, answers, strict=True):
            if isinstance(answer, dict):
                self.nonces.clear()  # unknown state: re-read next time
                raise LaneError(f"send from {t.sender} to {t.to} refused: {answer.get('error')}")
            hashes.append(answer)
            self.sent_by_tag[t.tag] = self.sent_by_tag.get(t.tag, 0) + 1
        self.sent += len(hashes)
        return hashes

    def receipts(self, hashes: Sequence[str], blocks: Iterable[int]) -> list[dict[str, Any]]:
        """Raw receipts of `hashes`, mined in `blocks` (raises when one is not there). Read a whole
        block at a time (`eth_getBlockReceipts`): the node builds every receipt of a block to
        answer for one, so one by one a block of 1,000 costs a million."""
        found: dict[str, dict[str, Any]] = {}
        for block in blocks:
            for r in self.call("eth_getBlockReceipts", hex(block)) or []:
                found[r["transactionHash"]] = r
        missing = [h for h in hashes if h not in found]
        if missing:
            raise LaneError(
                f"{len(missing)} transaction(s) not mined in blocks {list(blocks)}, first {missing[0]}"
            )
        return [found[h] for h in hashes]

    def mine_pending(self, timestamp: int) -> list[int]:
        """Mine blocks at `timestamp` until the pool is empty (a full block leaves the rest)."""
        blocks = []
        while self.pending():
            blocks.append(self.mine(timestamp))
        return blocks

    def send_and_mine(self, txs: Sequence[Tx], at: int | None = None) -> list[dict]:
        """Send, mine one block at `at` (or now), and return the receipts; raise if one reverted."""
        hashes = self.send(txs)
        receipts = self.receipts(hashes, self.mine_pending(at if at is not None else self.timestamp()))
        failed = [r["transactionHash"] for r in receipts if int(r["status"], 16) != 1]
        if failed:
            raise LaneError(f"{len(failed)} of {len(txs)} transactions reverted, first {failed[0]}")
        return receipts


__all__ = ["GWEI", "TX_GAS", "LaneError", "SimLane", "Tx"]
