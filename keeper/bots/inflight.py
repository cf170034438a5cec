"""Keeper transactions in batches: `send_batch` (pre-flight, sign and send hundreds of calls at
once), `wait_receipts`, and `InFlight`, the transactions sent without a receipt yet (never re-sent
blindly). Used by the liquidation and ADL keepers and the simulation benchmark."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from eth_account.datastructures import SignedTransaction
from hexbytes import HexBytes
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.exceptions import TransactionNotFound

from keeper.bots.scan import BlockId, CallFailed, batch_call
from keeper.chain import ChainClient, TxError, TxReverted
from keeper.retry import batch_request, call_with_retry
from keeper.txpool import SentTx, TxState

# (index in the batch, the transaction's fields, signed)
_Signed = tuple[int, dict[str, Any], SignedTransaction]

# ---------------------------------------------------------------- batched sending


@dataclass(frozen=True)
class Outgoing:
    """One transaction for `send_batch`: what it acts on (`key`), the call, its gas limit."""

    key: Any
    call: ContractFunction
    gas: int


def send_batch(
    client: ChainClient,
    txs: Sequence[Outgoing],
    *,
    block: BlockId = "latest",
    chunk: int = 100,
    logger: logging.Logger | None = None,
) -> list[tuple[Any, HexBytes | TxError]]:
    """Send many calls at once, for a keeper that must act on hundreds of accounts per block.

    The transaction path of `ChainClient.send_nowait`, batched: every call is first re-checked
    on-chain by `eth_call` at `block` (one JSON-RPC batch; a revert raises nothing and returns
    TxReverted for that call, nothing is sent for it), fees are read once, each transaction is
    signed locally with the client's key and its next nonce, and the raw transactions go out in
    JSON-RPC batches. The pre-flight is against `block` (the latest block), not "pending": a node
    re-executes its whole pool for every "pending" call (anvil: +0.15 ms per pooled tx per call),
    which makes one block of 1,000 liquidations quadratic. The calls of one batch must not
    depend on each other (distinct accounts).

    Nonces: read from the client before signing and re-synced from the node ("pending" count)
    after, so the client must not send from another thread meanwhile. The first rejected
    transaction stops the batch: the ones after it are returned unsent (TxError), those already
    accepted keep their hashes (they are in the pool; a gap before them is filled by the next
    transaction of this key). Returns (key, tx hash or TxError) in the order given."""
    if not txs:
        return []
    with client.send_lock:  # the key's other senders in this process wait (nonces in a row)
        return _send_batch(client, txs, block, chunk, logger or client.log)


def _send_batch(
    client: ChainClient, txs: Sequence[Outgoing], block: BlockId, chunk: int, log: logging.Logger
) -> list[tuple[Any, HexBytes | TxError]]:
    max_fee, priority_fee = client.fees()
    state = _BatchSend(nonce=client.nonce)
    first_nonce = state.nonce
    provider = client.w3.provider
    # one re-check of every call on the latest state, then signed and sent chunk by chunk, so that
    # the first transactions (the worst accounts) reach the pool while the rest are being signed
    # from the sender: calls that check msg.sender (takeover, place_order) would fail without it
    checks = batch_call(client.w3, [t.call for t in txs], block, sender=client.address, logger=log)
    try:
        for start in range(0, len(txs), chunk):
            part = list(range(start, min(start + chunk, len(txs))))
            if state.stopped is not None:
                state.out.update((i, state.unsent()) for i in part)
                continue
            signed = _sign_chunk(client, txs, checks, part, (max_fee, priority_fee), state)
            if signed:
                _send_chunk(client, provider, signed, state)
    except (
        OSError,
        ValueError,
        TxError,
    ) as exc:  # transport: what was sent is unknown; the node says which it has (never re-sent blindly)
        _recover_in_doubt(client, state, len(txs), exc)
    finally:
        client.resync_nonce()
    log.info(
        "txs sent",
        extra={
            "sender": client.address,
            "count": sum(1 for v in state.out.values() if isinstance(v, HexBytes)),
            "first_nonce": first_nonce,
            "max_fee_gwei": max_fee / 10**9,
        },
    )
    return [(t.key, state.out[i]) for i, t in enumerate(txs)]


@dataclass
class _BatchSend:
    """`send_batch` under way: the result of each transaction so far (by index in the batch),
    the next nonce, the first rejection, and the chunk sent whose answer is not read yet."""

    nonce: int
    out: dict[int, HexBytes | TxError] = field(default_factory=dict)
    stopped: str | None = None  # the first rejection: the transactions after it are not sent
    in_doubt: list[_Signed] = field(default_factory=list)  # sent, answer not read

    def unsent(self) -> TxError:
        return TxError(f"not sent: an earlier transaction of the batch was rejected ({self.stopped})")


def _sign_chunk(
    client: ChainClient,
    txs: Sequence[Outgoing],
    checks: Sequence[Any],
    part: Sequence[int],
    fees: tuple[int, int],
    state: _BatchSend,
) -> list[_Signed]:
    """Sign the transactions of `part` whose pre-flight passed, with the next nonces; those that
    reverted get TxReverted and are not sent."""
    max_fee, priority_fee = fees
    signed: list[_Signed] = []
    for i in part:
        check = checks[i]
        if isinstance(check, CallFailed):
            state.out[i] = TxReverted(check.reason)
            continue
        t = txs[i]
        tx = {
            "from": client.address,
            "to": t.call.address,
            "data": t.call._encode_transaction_data(),
            "value": 0,
            "gas": t.gas,
            "maxFeePerGas": max_fee,
            "maxPriorityFeePerGas": priority_fee,
            "chainId": client.chain_id,
            "type": 2,
            "nonce": state.nonce,
        }
        signed.append((i, tx, client.account.sign_transaction(tx)))
        state.nonce += 1
    return signed


def _send_chunk(client: ChainClient, provider: Any, signed: list[_Signed], state: _BatchSend) -> None:
    """Send signed transactions in one JSON-RPC batch and record each answer: the accepted ones
    are tracked by the client; the first rejection stops the batch (the ones after it: unsent)."""
    state.in_doubt = signed
    requests = [("eth_sendRawTransaction", [HexBytes(s.raw_transaction).to_0x_hex()]) for _, _, s in signed]
    # a batch the node refuses is split (batch_request): the same signed transactions again
    responses = batch_request(provider, requests, retry=False, logger=client.log)
    state.in_doubt = []
    for (i, tx, s), resp in zip(signed, responses, strict=True):
        error = resp.get("error")
        if error is None or "already known" in str(error).lower():
            # (after a gap: in the pool all the same, mined once the gap is filled)
            state.out[i] = client.record_sent(tx, s)
        elif state.stopped is None:
            state.stopped = str(error.get("message", error)) if isinstance(error, dict) else str(error)
            state.out[i] = TxError(f"send failed: {state.stopped}")
            client.stats["failed"] += 1
        else:
            state.out[i] = state.unsent()


def _recover_in_doubt(client: ChainClient, state: _BatchSend, count: int, exc: BaseException) -> None:
    """After a transport error: of the chunk in doubt, the transactions the node has count as sent
    (never re-sent blindly); every transaction without a result fails with `exc`."""
    for (i, tx, s), known in zip(
        state.in_doubt, client.node_has([HexBytes(s.hash) for _, _, s in state.in_doubt]), strict=True
    ):
        if known:
            state.out[i] = client.record_sent(tx, s)
    for i in range(count):
        state.out.setdefault(i, TxError(f"send failed: {exc}"))


def wait_receipts(
    client: ChainClient, hashes: Sequence[HexBytes], *, timeout_s: float | None = None, poll_s: float = 0.1
) -> list[Any]:
    """Receipts of many transactions (`ChainClient.wait_many`: batched polling, stuck ones
    replaced with bumped fees): each entry is the receipt, TxReverted (status 0, with the
    replayed reason), or TxTimeout."""
    return client.wait_many(hashes, timeout_s=timeout_s, poll_s=poll_s)


# ---------------------------------------------------------------- in-flight transactions


@dataclass
class InFlight:
    """Transactions sent without a receipt yet, keyed by what they act on. A key is cleared when
    its receipt shows up, or when its nonce was taken by another transaction (it can never be
    mined then). Otherwise it stays: it may still be mined, so it is never re-sent blindly.
    With the sending `client`, a transaction it replaced with bumped fees counts as mined when
    any of its versions is."""

    w3: Web3
    sender: str
    txs: dict[Any, HexBytes] = field(default_factory=dict)
    nonces: dict[HexBytes, int] = field(default_factory=dict)
    client: ChainClient | None = None

    def add(self, key: Any, tx_hash: HexBytes) -> None:
        self.txs[key] = tx_hash

    def adopt(self, contract: Contract, adopted: Iterable[SentTx], fn_name: str, log: logging.Logger) -> int:
        """Key the `fn_name(account, market, ...)` calls to `contract` among transactions found in
        the pool (an earlier run of this key): in flight, so not sent again. Returns how many."""
        n = 0
        for sent in adopted:
            if sent.tx.get("to") != contract.address:
                continue
            try:
                fn, args = contract.decode_function_input(sent.tx["data"])
            except ValueError:
                continue
            if fn.fn_name == fn_name:
                self.add((int(args["account"]), Web3.to_checksum_address(args["market"])), sent.hash)
                n += 1
        if n:
            log.info(
                f"{fn_name} calls of an earlier run still pending: in flight, not sent again",
                extra={"count": n},
            )
        return n

    def discard(self, key: Any) -> None:
        h = self.txs.pop(key, None)
        if h is not None:
            self.nonces.pop(h, None)

    def refresh(self, log: logging.Logger) -> list[tuple[Any, HexBytes]]:
        """Look up every in-flight tx; drop the ones settled. Returns the (key, hash) of those
        mined (their receipts came after the wait that sent them)."""
        mined: list[tuple[Any, HexBytes]] = []
        if not self.txs:
            return mined
        mined_nonce = None
        states = self.client.tx_states(list(self.txs.values())) if self.client is not None else None
        for i, (key, h) in enumerate(list(self.txs.items())):
            state = self._settled_by_client(key, h, states[i], log) if states is not None else "unknown"
            if state == "mined":
                mined.append((key, h))
            if state != "unknown":
                continue
            try:
                receipt = call_with_retry(lambda h=h: self.w3.eth.get_transaction_receipt(h), logger=log)
            except TransactionNotFound:
                receipt = None
            if receipt is not None:
                mined.append((key, h))
                self.discard(key)
                log.info(
                    "earlier transaction mined",
                    extra={"key": str(key), "tx_hash": h.to_0x_hex(), "status": receipt["status"]},
                )
                continue
            if h not in self.nonces:
                try:
                    self.nonces[h] = int(
                        call_with_retry(lambda h=h: self.w3.eth.get_transaction(h), logger=log)["nonce"]
                    )
                except TransactionNotFound:
                    pass
            if h in self.nonces:
                if mined_nonce is None:
                    mined_nonce = int(
                        call_with_retry(
                            lambda: self.w3.eth.get_transaction_count(self.sender, "latest"), logger=log
                        )
                    )
                if self.nonces[h] < mined_nonce and not self._mined(h, log):
                    # its nonce went to another transaction: this one can never be mined
                    self.discard(key)
                    log.warning(
                        "earlier transaction replaced or dropped",
                        extra={"key": str(key), "tx_hash": h.to_0x_hex()},
                    )
                    continue
            log.warning(
                "earlier transaction still pending, skipped",
                extra={"key": str(key), "tx_hash": h.to_0x_hex()},
            )
        return mined

    def _settled_by_client(
        self, key: Any, h: HexBytes, known: tuple[TxState, Any], log: logging.Logger
    ) -> TxState:
        """Act on what the client knows of `h` (and its replacements)."""
        state, receipt = known
        fields = {"key": str(key), "tx_hash": h.to_0x_hex()}
        if state == "mined" and receipt is not None:
            self.discard(key)
            log.info("earlier transaction mined", extra={**fields, "status": receipt["status"]})
        elif state == "dropped":
            self.discard(key)
            log.warning("earlier transaction replaced or dropped", extra=fields)
        elif state == "pending":
            log.warning("earlier transaction still pending, skipped", extra=fields)
        return state

    def _mined(self, h: HexBytes, log: logging.Logger) -> bool:
        try:
            call_with_retry(lambda: self.w3.eth.get_transaction_receipt(h), logger=log)
        except TransactionNotFound:
            return False
        return True

    def as_dict(self) -> dict[str, str]:
        return {str(k): h.to_0x_hex() for k, h in self.txs.items()}


# ---------------------------------------------------------------- bot


__all__ = [
    "InFlight",
    "Outgoing",
    "send_batch",
    "wait_receipts",
]
