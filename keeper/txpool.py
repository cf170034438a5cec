"""Our transactions whose nonce is not mined yet, as :class:`~keeper.chain.ChainClient` tracks
them: every version sent for a nonce (:class:`SentTx`), what became of them (`tx_states`), and
those of an earlier run of the same key still in the node's pool (`adopt_pool`,
``txpool_content``), tracked from then on as if sent here."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import requests
from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import Web3Exception
from web3.types import TxReceipt

TRACKED_HASHES = 100_000  # hashes remembered (with their versions) for waits and in-flight lookups


@dataclass
class SentTx:
    """One of our transactions whose nonce is not mined yet: every version sent for that nonce
    (a replacement keeps the nonce, the call and the gas, with higher fees), oldest first, and
    the latest one signed, for sending again to a node that lost it."""

    nonce: int
    tx: dict[str, Any]  # the fields signed in the latest version
    raw: HexBytes | None  # the latest version signed (None: adopted and not reproducible)
    hashes: list[HexBytes]
    sent_at: float  # time.monotonic() of the latest (re)send
    first_sent_at: float = 0.0  # time.monotonic() of the first version (0: sent_at)
    # the latest block when its fees were read: it is mined in a later block (0: unknown)
    sent_after_block: int = 0

    def __post_init__(self) -> None:
        self.first_sent_at = self.first_sent_at or self.sent_at

    @property
    def hash(self) -> HexBytes:
        return self.hashes[-1]


TxState = Literal["mined", "pending", "dropped", "unknown"]


class PendingTxs:
    """The pending-transaction half of :class:`~keeper.chain.ChainClient` (mixed into it): the
    tracking of what it sent, by nonce and by hash, and the recovery of its transactions from
    the node's pool. Uses the client's node, key and logger, its nonce reads (`_mined_nonce`)
    and receipt reads (`_receipts`)."""

    w3: Web3
    account: LocalAccount
    address: str
    chain_id: int
    log: logging.Logger
    _sent: dict[int, SentTx]
    _by_hash: OrderedDict[HexBytes, SentTx]

    @property
    def pending_count(self) -> int:
        """Our transactions sent whose nonce is not known to be mined."""
        return len(self._sent)

    @property
    def oldest_pending_s(self) -> float | None:
        """Seconds since the oldest of them was first sent (None: none)."""
        sent = list(self._sent.values())
        return time.monotonic() - min(s.first_sent_at for s in sent) if sent else None

    def _track(self, sent: SentTx) -> None:
        self._sent[sent.nonce] = sent  # a nonce re-used after a re-sync: the older one can no longer be mined
        for h in sent.hashes:
            self._remember(h, sent)

    def _remember(self, tx_hash: HexBytes, sent: SentTx) -> None:
        self._by_hash[tx_hash] = sent
        while len(self._by_hash) > TRACKED_HASHES:
            self._by_hash.popitem(last=False)

    def _versions(self, tx_hash: HexBytes) -> list[HexBytes]:
        sent = self._by_hash.get(tx_hash)
        return list(sent.hashes) if sent is not None else [tx_hash]

    def tx_states(self, tx_hashes: Sequence[HexBytes]) -> list[tuple[TxState, TxReceipt | None]]:
        """What became of transactions we sent: "mined" (with the receipt of whichever version
        was), "dropped" (another transaction took its nonce), "pending", or "unknown" (not ours)."""
        hashes = [HexBytes(h) for h in tx_hashes]
        ours = [h for h in hashes if h in self._by_hash]
        if not ours:
            return [("unknown", None)] * len(hashes)
        mined_nonce = self._mined_nonce()  # first: a receipt that comes after cannot be missed
        receipts = self._receipts(ours)
        out: list[tuple[TxState, TxReceipt | None]] = []
        for h in hashes:
            sent = self._by_hash.get(h)
            if sent is None:
                out.append(("unknown", None))
            elif h in receipts:
                out.append(("mined", receipts[h]))
            else:
                out.append(("dropped" if sent.nonce < mined_nonce else "pending", None))
        return out

    def adopt_pool(self) -> list[SentTx] | None:
        """Our transactions already in the node's pool (sent by an earlier run of this key, e.g.
        one killed mid-send), tracked from now on as if sent here; None when the node does not
        serve `txpool_content`."""
        try:
            response = self.w3.provider.make_request("txpool_content", [])  # type: ignore[arg-type]
        except (Web3Exception, OSError, requests.RequestException, ValueError):
            return None
        result = response.get("result") if isinstance(response, dict) else None
        if not isinstance(result, dict):
            return None
        adopted: list[SentTx] = []
        for section in ("pending", "queued"):
            for sender, by_nonce in (result.get(section) or {}).items():
                if sender.lower() != self.address.lower():
                    continue
                for raw_tx in by_nonce.values():
                    sent = self._adopt(raw_tx)
                    if sent is not None:
                        adopted.append(sent)
        adopted.sort(key=lambda s: s.nonce)
        if adopted:
            self.log.info(
                "own transactions found in the pool, tracked",
                extra={"sender": self.address, "count": len(adopted), "nonces": [s.nonce for s in adopted]},
            )
        return adopted

    def _adopt(self, pooled: dict[str, Any]) -> SentTx | None:
        nonce = int(pooled["nonce"], 16)
        if nonce in self._sent or pooled.get("maxFeePerGas") is None:
            return None  # already tracked, or not an EIP-1559 transaction (not one of ours)
        tx: dict[str, Any] = {
            "from": self.address,
            "data": HexBytes(pooled["input"]),
            "value": int(pooled["value"], 16),
            "gas": int(pooled["gas"], 16),
            "maxFeePerGas": int(pooled["maxFeePerGas"], 16),
            "maxPriorityFeePerGas": int(pooled["maxPriorityFeePerGas"], 16),
            "chainId": self.chain_id,
            "type": 2,
            "nonce": nonce,
        }
        if pooled.get("to"):
            tx["to"] = Web3.to_checksum_address(pooled["to"])
        tx_hash = HexBytes(pooled["hash"])
        signed = self.account.sign_transaction(tx)  # deterministic: the same bytes if nothing was lost
        raw = HexBytes(signed.raw_transaction) if HexBytes(signed.hash) == tx_hash else None
        sent = SentTx(nonce, tx, raw, [tx_hash], time.monotonic())
        self._track(sent)
        return sent


__all__ = ["PendingTxs", "SentTx", "TxState"]
