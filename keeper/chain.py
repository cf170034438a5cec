"""web3.py chain client shared by every keeper.

The transaction path (after lido-oracle `src/utils/transaction.py`):
`eth_call` first (a revert raises `TxReverted` and nothing is sent), EIP-1559
fees from `eth_feeHistory`, gas estimate x1.2, local signing, raw send, wait
for the receipt with a timeout. Nonces are tracked locally. Reads may be
retried; sends never are (a signed transaction is sent once; on "nonce too
low" the nonce is re-synced and the call re-signed, since the node rejected
the first one; after a transport error the node is asked whether it has the
transaction before anything else happens).

Every transaction sent stays tracked (`SentTx`, by nonce) until its nonce is
mined. With `replace_after_s` set, one still pending after that long is
replaced: the same nonce, call and gas, maxFeePerGas and
maxPriorityFeePerGas raised by `fee_bump_percent` (at least 12.5%, the
replacement rule of geth and anvil) or to the market's fees if higher, up to
the fee cap (there: the latest version is sent again unchanged). One the node
no longer knows (a node restart lost its pool) goes out again the same way.
Waits return whichever version is mined. As every
version has the same nonce, at most one of them is ever mined. A restarted
keeper picks up its transactions still in the node's pool (`adopt_pool`,
`txpool_content`) and tracks them as if it had sent them (:mod:`keeper.txpool`). Reads are
retried by :func:`keeper.retry.call_with_retry`.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import requests
from eth_abi import decode as abi_decode
from eth_abi.exceptions import DecodingError
from eth_account import Account
from eth_account.datastructures import SignedTransaction
from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from web3 import Web3
from web3.contract.contract import ContractConstructor, ContractFunction
from web3.exceptions import ContractLogicError, Web3Exception, Web3RPCError
from web3.types import TxParams, TxReceipt

from keeper.retry import batch_request, call_with_retry
from keeper.txpool import PendingTxs, SentTx

GWEI = 10**9
GAS_MARGIN = 1.2
ERROR_STRING_SELECTOR = bytes.fromhex("08c379a0")  # Error(string)
PANIC_SELECTOR = bytes.fromhex("4e487b71")  # Panic(uint256)
MIN_FEE_BUMP_PERCENT = 12.5  # a replacement must raise both fees by this much (geth: 10%, some nodes 12.5%)
# waiting for at least this many transactions: read the receipts of whole blocks
# (eth_getBlockReceipts, one call per block) instead of one eth_getTransactionReceipt per
# transaction, which makes the node rebuild the block's receipts for each one
BLOCK_RECEIPTS_MIN = 32
BLOCK_RECEIPTS_MAX_SPAN = 256  # more new blocks than this in one poll: per transaction instead

Sendable = ContractFunction | ContractConstructor | TxParams


class TxError(Exception):
    """A transaction could not be sent or confirmed."""


class TxReverted(TxError):
    """The call reverts (pre-flight `eth_call`) or the mined transaction has status 0."""

    def __init__(self, reason: str, *, tx_hash: HexBytes | None = None, receipt: TxReceipt | None = None):
        super().__init__(reason)
        self.reason = reason
        self.tx_hash = tx_hash
        self.receipt = receipt


class TxTimeout(TxError):
    """No receipt within the timeout. The transaction may still be mined: do not re-send blindly."""

    def __init__(self, tx_hash: HexBytes, timeout_s: float):
        super().__init__(f"no receipt for {tx_hash.to_0x_hex()} within {timeout_s} s")
        self.tx_hash = tx_hash


class FeeCapExceeded(TxError):
    """The next block's base fee is above the configured max fee: the transaction could not be included."""


# ---------------------------------------------------------------- pure helpers


def decode_revert_data(data: bytes) -> str | None:
    """Reason string of ABI-encoded revert data (Error(string) or Panic(uint256)); None if neither."""
    if data[:4] == ERROR_STRING_SELECTOR:
        try:
            return str(abi_decode(["string"], data[4:])[0])
        except DecodingError:  # malformed payload: fall back to the node's message
            return None
    if data[:4] == PANIC_SELECTOR:
        try:
            return f"panic 0x{abi_decode(['uint256'], data[4:])[0]:02x}"
        except DecodingError:
            return None
    return None


def trace_revert_reason(trace: Any) -> str | None:
    """Revert reason in a `debug_traceTransaction` call-tracer result (the transaction replayed
    inside its own block); None when the trace has none (no debug API: an RPC error, not a dict)."""
    if not isinstance(trace, dict) or isinstance(trace.get("error"), dict):
        return None
    if trace.get("revertReason"):
        return str(trace["revertReason"])
    output = trace.get("output")
    if isinstance(output, str) and output.startswith("0x") and len(output) > 2:
        decoded = decode_revert_data(bytes.fromhex(output[2:]))
        if decoded is not None:
            return decoded
    error = trace.get("error")
    if not error:
        return None
    # a bare revert reads as the parent-state replay's would: "reverted"
    return "reverted" if str(error) == "execution reverted" else str(error)


def revert_reason(exc: BaseException) -> str:
    """The revert reason string carried by a web3 exception ("" for a bare revert)."""
    if isinstance(exc, ContractLogicError):
        data = exc.data
        if isinstance(data, str) and data.startswith("0x"):
            decoded = decode_revert_data(bytes.fromhex(data[2:]))
            if decoded is not None:
                return decoded
        message = exc.message or str(exc)
    elif isinstance(exc, Web3RPCError):
        error = (exc.rpc_response or {}).get("error")
        message = str(error.get("message", exc.message)) if isinstance(error, dict) else exc.message
    else:
        message = str(exc)
    for prefix in ("execution reverted: ", "execution reverted"):
        if message.startswith(prefix):
            return message[len(prefix) :].strip()
    return message


def eip1559_fees(next_base_fee: int, *, priority_fee: int, max_fee_cap: int) -> tuple[int, int]:
    """(maxFeePerGas, maxPriorityFeePerGas): 2 x next base fee + tip, capped; raises if base fee > cap."""
    if next_base_fee > max_fee_cap:
        raise FeeCapExceeded(
            f"next base fee {next_base_fee / GWEI:.3f} gwei is above the cap {max_fee_cap / GWEI:.3f} gwei"
        )
    max_fee = min(2 * next_base_fee + priority_fee, max_fee_cap)
    return max_fee, min(priority_fee, max_fee - next_base_fee)


def _raised(fee: int, percent: float) -> int:
    """`fee` raised by `percent`, rounded up."""
    return math.ceil(fee * (1 + Fraction(str(percent)) / 100))


def bump_fees(
    old: tuple[int, int], market: tuple[int, int], *, percent: float, max_fee_cap: int
) -> tuple[int, int] | None:
    """(maxFeePerGas, maxPriorityFeePerGas) of a replacement for a transaction sent with `old`:
    each raised by `percent`, or the `market` fees when higher, within the cap. None when the
    cap leaves less than the MIN_FEE_BUMP_PERCENT a node requires to accept a replacement."""
    (old_max, old_tip), (market_max, market_tip) = old, market
    max_fee = min(max(_raised(old_max, percent), market_max), max_fee_cap)
    tip = min(max(_raised(old_tip, percent), market_tip), max_fee)
    if max_fee < _raised(old_max, MIN_FEE_BUMP_PERCENT) or tip < _raised(old_tip, MIN_FEE_BUMP_PERCENT):
        return None
    return max_fee, tip


def format_receipt(raw: dict[str, Any]) -> TxReceipt:
    """web3's formatting of a raw JSON-RPC receipt (ints, HexBytes, checksummed addresses)."""
    from web3._utils.method_formatters import receipt_formatter
    from web3.datastructures import AttributeDict

    return AttributeDict.recursive(receipt_formatter(raw))  # type: ignore[no-any-return]


def _is_nonce_too_low(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "nonce too low" in text or "nonce is too low" in text or "oldnonce" in text.replace(" ", "")


def _is_already_known(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "already known" in text or "already imported" in text


# ---------------------------------------------------------------- client


class ChainClient(PendingTxs):
    """Sends transactions for one private key: pre-flight eth_call, EIP-1559 fees, local nonces,
    stuck transactions replaced with bumped fees (`replace_after_s`)."""

    def __init__(
        self,
        w3: Web3,
        private_key: str,
        *,
        receipt_timeout_s: float = 30,
        max_fee_gwei: float = 500,
        priority_fee_gwei: float = 1,
        replace_after_s: float | None = None,
        fee_bump_percent: float = 20,
        logger: logging.Logger | None = None,
    ) -> None:
        if fee_bump_percent < MIN_FEE_BUMP_PERCENT:
            raise ValueError(f"fee_bump_percent must be at least {MIN_FEE_BUMP_PERCENT}")
        self.w3 = w3
        self.account: LocalAccount = Account.from_key(private_key)
        self.address = self.account.address
        self.receipt_timeout_s = receipt_timeout_s
        self.max_fee_wei = int(max_fee_gwei * GWEI)
        self.priority_fee_wei = int(priority_fee_gwei * GWEI)
        self.replace_after_s = replace_after_s
        self.fee_bump_percent = fee_bump_percent
        self.log = logger or logging.getLogger("keeper.chain")
        self.chain_id = int(call_with_retry(lambda: w3.eth.chain_id))
        self._lock = threading.Lock()
        # held by every send of this key (one transaction, a batch, a replacement): the bots of a
        # process share one client per key (RunContext.client), so their nonces never collide
        self.send_lock = threading.RLock()
        self._nonce: int | None = None
        # transactions whose nonce is not mined yet, by nonce; every hash sent -> its SentTx
        self._sent: dict[int, SentTx] = {}
        self._by_hash: OrderedDict[HexBytes, SentTx] = OrderedDict()
        # for /metrics: counts, and the fees of the latest send
        self.stats = dict.fromkeys(("sent", "failed", "replaced", "resent", "timeouts"), 0)
        self.last_base_fee: int | None = None
        self.last_fee_block = 0  # the latest block at the last fee read
        self._block_receipts = True  # the node serves eth_getBlockReceipts (until it refuses)
        self.last_max_fee: int | None = None
        self.last_priority_fee: int | None = None

    # ------------------------------------------------------------ nonces

    @property
    def nonce(self) -> int:
        """The nonce the next transaction will use."""
        with self._lock:
            if self._nonce is None:
                self._nonce = self._pending_nonce()
            return self._nonce

    @property
    def known_nonce(self) -> int | None:
        """The next nonce if already read (no RPC), for metrics."""
        return self._nonce

    def resync_nonce(self) -> int:
        """Re-read the nonce from the node ("pending" count)."""
        with self._lock:
            self._nonce = self._pending_nonce()
            return self._nonce

    def _pending_nonce(self) -> int:
        return int(call_with_retry(lambda: self.w3.eth.get_transaction_count(self.address, "pending")))

    def _mined_nonce(self) -> int:
        return int(call_with_retry(lambda: self.w3.eth.get_transaction_count(self.address, "latest")))

    # ------------------------------------------------------------ fees

    def fees(self) -> tuple[int, int]:
        """(maxFeePerGas, maxPriorityFeePerGas) in wei for the next block."""
        history = call_with_retry(lambda: self.w3.eth.fee_history(1, "latest", []))
        next_base_fee = int(history["baseFeePerGas"][-1])
        self.last_base_fee = next_base_fee
        self.last_fee_block = int(history["oldestBlock"])
        return eip1559_fees(next_base_fee, priority_fee=self.priority_fee_wei, max_fee_cap=self.max_fee_wei)

    # ------------------------------------------------------------ sending

    def send(self, call: Sendable, *, gas: int | None = None, value: int = 0) -> TxReceipt:
        """Pre-flight, sign, send and wait. Raises TxReverted (nothing sent, or status 0) or TxTimeout."""
        return self.wait(self.send_nowait(call, gas=gas, value=value))

    def deploy(
        self, constructor: ContractConstructor, *, gas: int | None = None, value: int = 0
    ) -> TxReceipt:
        """Deploy a contract (`w3.eth.contract(abi=..., bytecode=...).constructor(*args)`); the receipt has
        `contractAddress`."""
        return self.send(constructor, gas=gas, value=value)

    def transfer(self, to: str, value_wei: int) -> TxReceipt:
        """Send ETH."""
        return self.send({"to": Web3.to_checksum_address(to), "value": value_wei, "data": b""})

    def send_nowait(self, call: Sendable, *, gas: int | None = None, value: int = 0) -> HexBytes:
        """Pre-flight and send; returns the tx hash without waiting. Raises TxReverted if the call reverts."""
        with self.send_lock:
            return self._send_nowait(call, gas, value)

    def _send_nowait(self, call: Sendable, gas: int | None, value: int) -> HexBytes:
        tx = self._base_tx(call, value)
        self._preflight(tx)
        if gas is None:
            gas = self._estimate_gas(tx)
        max_fee, priority_fee = self.fees()
        tx.update(
            {
                "gas": gas,
                "maxFeePerGas": max_fee,
                "maxPriorityFeePerGas": priority_fee,
                "chainId": self.chain_id,
                "type": 2,
            }
        )
        with self._lock:
            if self._nonce is None:
                self._nonce = self._pending_nonce()
            for attempt in (1, 2):
                tx["nonce"] = self._nonce
                signed = self.account.sign_transaction(tx)
                try:
                    tx_hash = HexBytes(self.w3.eth.send_raw_transaction(signed.raw_transaction))
                except Web3RPCError as exc:
                    if _is_already_known(exc):
                        tx_hash = HexBytes(signed.hash)
                    elif _is_nonce_too_low(exc) and attempt == 1:
                        # the node rejected it: nothing was sent, so re-signing with a fresh nonce is safe
                        self._nonce = self._pending_nonce()
                        self.log.warning(
                            "nonce too low, re-synced", extra={"sender": self.address, "nonce": self._nonce}
                        )
                        continue
                    else:
                        self._nonce = None  # unknown state: re-read from the node next time
                        self.stats["failed"] += 1
                        raise TxError(f"send failed: {exc}") from exc
                except (Web3Exception, OSError, requests.RequestException) as exc:
                    self._nonce = None
                    if not self.node_has([HexBytes(signed.hash)])[0]:  # did it get there all the same?
                        self.stats["failed"] += 1
                        raise TxError(f"send failed: {exc}") from exc
                    tx_hash = HexBytes(signed.hash)
                    self._nonce = tx["nonce"]
                self._nonce += 1
                self.record_sent(tx, signed)
                break
        self.log.info(
            "tx sent",
            extra={
                "tx_hash": tx_hash.to_0x_hex(),
                "sender": self.address,
                "to": tx.get("to"),
                "nonce": tx["nonce"],
                "gas": gas,
                "max_fee_gwei": max_fee / GWEI,
                "priority_fee_gwei": priority_fee / GWEI,
            },
        )
        return tx_hash

    def record_sent(self, tx: dict[str, Any], signed: SignedTransaction) -> HexBytes:
        """Track a transaction the node accepted (`tx`: the fields signed, with its nonce)."""
        tx_hash = HexBytes(signed.hash)
        self._track(
            SentTx(
                tx["nonce"],
                dict(tx),
                HexBytes(signed.raw_transaction),
                [tx_hash],
                time.monotonic(),
                sent_after_block=self.last_fee_block,
            )
        )
        self.stats["sent"] += 1
        self.last_max_fee, self.last_priority_fee = tx["maxFeePerGas"], tx["maxPriorityFeePerGas"]
        return tx_hash

    def node_has(self, tx_hashes: Sequence[HexBytes]) -> list[bool]:
        """Whether the node knows each transaction (pending or mined); False when it cannot be asked."""
        try:
            found = self._batch([("eth_getTransactionByHash", [h.to_0x_hex()]) for h in tx_hashes])
        except (Web3Exception, OSError, requests.RequestException, TxError):
            return [False] * len(tx_hashes)
        return [r is not None for r in found]

    # ------------------------------------------------------------ waiting

    def wait(self, tx_hash: HexBytes | bytes | str) -> TxReceipt:
        """Wait for a receipt (receipt_timeout_s); raises TxReverted on status 0, TxTimeout when none comes.
        A replacement's receipt counts as the original's."""
        result = self.wait_many([HexBytes(tx_hash)])[0]
        if isinstance(result, TxError):
            raise result
        return result

    def wait_all(self, tx_hashes: list[HexBytes]) -> list[TxReceipt | TxError]:
        """Wait for every hash; each entry is the receipt or the TxError it raised."""
        return self.wait_many(tx_hashes)

    def wait_many(
        self, tx_hashes: Sequence[HexBytes], *, timeout_s: float | None = None, poll_s: float = 0.05
    ) -> list[TxReceipt | TxError]:
        """Receipts of many transactions, polled together (JSON-RPC batches): each entry is the
        receipt (of whichever version of it was mined), TxReverted (status 0, the reason replayed)
        or TxTimeout. Stuck ones are replaced meanwhile (`maintain`)."""
        timeout = self.receipt_timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + timeout
        hashes = [HexBytes(h) for h in tx_hashes]
        found: dict[HexBytes, TxReceipt] = {}
        todo = list(dict.fromkeys(hashes))
        since = self._first_block(todo)
        while todo:
            by_block = self._receipts_by_block(todo, since) if since is not None else None
            if by_block is None:
                since = None  # per transaction from now on
                found.update(self._receipts(todo))
            else:
                receipts, since = by_block
                found.update(receipts)
            todo = [h for h in todo if h not in found]
            if not todo or time.monotonic() >= deadline:
                break
            if self._has_stale():
                self.maintain()
            time.sleep(poll_s)
        return [self._outcome(h, found.get(h), timeout) for h in hashes]

    def _outcome(self, tx_hash: HexBytes, receipt: TxReceipt | None, timeout: float) -> TxReceipt | TxError:
        if receipt is None:
            self.stats["timeouts"] += 1
            return TxTimeout(tx_hash, timeout)
        mined = HexBytes(receipt["transactionHash"])
        if receipt["status"] != 1:
            self.stats["failed"] += 1
            reason = self._replay_reason(mined, receipt)
            # a warning: the caller decides whether it is a failure (a keeper that lost a race
            # to another keeper or to the clock counts it as skipped, and logs real failures itself)
            self.log.warning(
                "tx reverted",
                extra={"tx_hash": mined.to_0x_hex(), "reason": reason, "block": receipt["blockNumber"]},
            )
            return TxReverted(reason, tx_hash=mined, receipt=receipt)
        self.log.debug(
            "tx mined",
            extra={
                "tx_hash": mined.to_0x_hex(),
                "block": receipt["blockNumber"],
                "gas_used": receipt["gasUsed"],
            },
        )
        return receipt

    def _first_block(self, tx_hashes: Sequence[HexBytes]) -> int | None:
        """The block after which every one of `tx_hashes` was sent, when they are many enough to
        read whole blocks' receipts (`BLOCK_RECEIPTS_MIN`), all ours with a known send block
        (not adopted from the pool) and the node serves eth_getBlockReceipts; else None."""
        if len(tx_hashes) < BLOCK_RECEIPTS_MIN or not self._block_receipts:
            return None
        blocks = [s.sent_after_block if (s := self._by_hash.get(h)) else 0 for h in tx_hashes]
        return min(blocks) if all(blocks) else None

    def _receipts_by_block(
        self, tx_hashes: Sequence[HexBytes], since: int
    ) -> tuple[dict[HexBytes, TxReceipt], int] | None:
        """The receipts of `tx_hashes` in the blocks after `since` (eth_getBlockReceipts, one call
        per block, batched) and the latest block read; None when there are too many new blocks
        or the node does not serve the method (then `_receipts`)."""
        latest = int(call_with_retry(lambda: self.w3.eth.block_number, logger=self.log))
        if latest - since > BLOCK_RECEIPTS_MAX_SPAN or latest < since:  # too many, or the chain went back
            return None
        if latest == since:
            return {}, since
        blocks = self._batch([("eth_getBlockReceipts", [hex(b)]) for b in range(since + 1, latest + 1)])
        if any(b is None for b in blocks):
            self._block_receipts = False
            self.log.info("eth_getBlockReceipts not served: receipts per transaction")
            return None
        mined = {HexBytes(r["transactionHash"]): r for receipts in blocks for r in receipts}
        return self._match(tx_hashes, mined), latest

    def _receipts(self, tx_hashes: Sequence[HexBytes]) -> dict[HexBytes, TxReceipt]:
        """The receipts found, by the hash asked for (any version of a replaced transaction)."""
        flat = list(dict.fromkeys(v for h in tx_hashes for v in self._versions(h)))
        mined = {
            h: r
            for h, r in zip(
                flat, self._batch([("eth_getTransactionReceipt", [h.to_0x_hex()]) for h in flat]), strict=True
            )
            if r
        }
        return self._match(tx_hashes, mined)

    def _match(self, tx_hashes: Sequence[HexBytes], mined: dict[HexBytes, Any]) -> dict[HexBytes, TxReceipt]:
        """The receipt of each of `tx_hashes` found in `mined` (raw receipts by hash), whichever
        version of it was mined; a mined transaction is no longer pending."""
        versions = {h: self._versions(h) for h in tx_hashes}
        out: dict[HexBytes, TxReceipt] = {}
        for h, vs in versions.items():
            raw = next((mined[v] for v in vs if v in mined), None)
            if raw is not None:
                out[h] = format_receipt(raw)
                sent = self._by_hash.get(h)
                if sent is not None and self._sent.get(sent.nonce) is sent:
                    del self._sent[sent.nonce]
        return out

    def _batch(self, requests_: Sequence[tuple[str, list[Any]]]) -> list[Any]:
        """`result` of each request (None for an error), in JSON-RPC batches; reads only (retried)."""
        responses = batch_request(self.w3.provider, requests_, logger=self.log)
        return [r.get("result") if not r.get("error") else None for r in responses]

    # ------------------------------------------------------------ stuck transactions

    def _has_stale(self) -> bool:
        if self.replace_after_s is None or not self._sent:
            return False
        now = time.monotonic()
        return any(now - s.sent_at >= self.replace_after_s for s in self._sent.values())

    def maintain(self) -> int:
        """Our transactions whose nonce is not mined: forget those whose nonce is mined (by one of
        their versions, or by another transaction); with `replace_after_s`, replace each one
        pending that long with bumped fees (a node that lost it, e.g. after a restart, takes it
        as new). Never takes a new nonce: each is mined at most once. Returns how many remain."""
        with self.send_lock:
            return self._maintain()

    def _maintain(self) -> int:
        if not self._sent:
            return 0
        mined = self._mined_nonce()
        for nonce in [n for n in self._sent if n < mined]:
            del self._sent[nonce]
        if self.replace_after_s is None:
            return len(self._sent)
        now = time.monotonic()
        for sent in sorted(self._sent.values(), key=lambda s: s.nonce):
            if now - sent.sent_at >= self.replace_after_s:
                self._replace(sent)
        return len(self._sent)

    def _replace(self, sent: SentTx) -> None:
        """Send `sent` again with bumped fees (the same nonce, call and gas); at the fee cap, the
        latest version as it was, for a node that lost it."""
        old = (int(sent.tx["maxFeePerGas"]), int(sent.tx["maxPriorityFeePerGas"]))
        try:
            market = self.fees()
        except FeeCapExceeded:
            market = (self.max_fee_wei, self.priority_fee_wei)
        fees = bump_fees(old, market, percent=self.fee_bump_percent, max_fee_cap=self.max_fee_wei)
        fields = {"sender": self.address, "nonce": sent.nonce, "tx_hash": sent.hash.to_0x_hex()}
        sent.sent_at = time.monotonic()
        if fees is None:
            self.log.warning(
                "stuck tx at the fee cap: sent again unchanged",
                extra={**fields, "error": str(FeeCapExceeded(f"cap {self.max_fee_wei / GWEI} gwei"))},
            )
            if sent.raw is not None:
                self._send_raw(sent, sent.raw, sent.hash, fields)
            return
        tx = {**sent.tx, "maxFeePerGas": fees[0], "maxPriorityFeePerGas": fees[1]}
        signed = self.account.sign_transaction(tx)
        new_hash = HexBytes(signed.hash)
        if self._send_raw(sent, HexBytes(signed.raw_transaction), new_hash, fields):
            sent.tx, sent.raw = tx, HexBytes(signed.raw_transaction)
            sent.hashes.append(new_hash)
            self._remember(new_hash, sent)
            self.stats["replaced"] += 1
            self.last_max_fee, self.last_priority_fee = fees
            self.log.warning(
                "stuck tx replaced with bumped fees",
                extra={
                    **fields,
                    "new_tx_hash": new_hash.to_0x_hex(),
                    "max_fee_gwei": fees[0] / GWEI,
                    "priority_fee_gwei": fees[1] / GWEI,
                    "old_max_fee_gwei": old[0] / GWEI,
                },
            )

    def _send_raw(self, sent: SentTx, raw: HexBytes, tx_hash: HexBytes, fields: dict[str, Any]) -> bool:
        """Send a version of `sent`; False when the node refused it (logged)."""
        try:
            self.w3.eth.send_raw_transaction(raw)
        except Web3RPCError as exc:
            if _is_already_known(exc):
                return True
            if _is_nonce_too_low(exc):  # one of its versions (or another tx) was mined meanwhile
                self._sent.pop(sent.nonce, None)
            else:
                self.log.warning("resend refused", extra={**fields, "error": str(exc)})
            return False
        except (Web3Exception, OSError, requests.RequestException) as exc:
            self.log.warning("resend failed", extra={**fields, "error": str(exc)})
            return False
        if tx_hash == sent.hash:
            self.stats["resent"] += 1
        return True

    def drain(self, timeout_s: float) -> int:
        """At shutdown: wait (at most `timeout_s`, replacing stuck ones) for our transactions
        whose nonce is not mined. Returns how many are still pending."""
        pending = [s.hash for s in self._sent.values()]
        if not pending:
            return 0
        results = self.wait_many(pending, timeout_s=timeout_s)
        left = sum(isinstance(r, TxTimeout) for r in results)
        self.log.log(
            logging.WARNING if left else logging.INFO,
            "pending transactions at shutdown",
            extra={"sender": self.address, "waited_for": len(pending), "still_pending": left},
        )
        return left

    # ------------------------------------------------------------ internals

    def _base_tx(self, call: Sendable, value: int) -> dict[str, Any]:
        """{from, to, data, value} of a contract call, a deployment or a raw tx dict."""
        if isinstance(call, ContractFunction):
            placeholders: TxParams = {
                "from": self.address,
                "gas": 1,
                "maxFeePerGas": 1,
                "maxPriorityFeePerGas": 1,
                "nonce": 0,
                "chainId": self.chain_id,
                "value": value,
            }
            built = call.build_transaction(placeholders)  # no RPC: every field is given
            return {"from": self.address, "to": built["to"], "data": built["data"], "value": value}
        if isinstance(call, ContractConstructor):
            return {"from": self.address, "data": call.data_in_transaction, "value": value}
        tx = {k: v for k, v in dict(call).items() if k in ("to", "data", "value")}
        tx["from"] = self.address
        tx.setdefault("value", value)
        tx.setdefault("data", b"")
        return tx

    def _preflight(self, tx: dict[str, Any]) -> None:
        try:
            call_with_retry(lambda: self.w3.eth.call(tx, "pending"))  # type: ignore[arg-type]
        except (ContractLogicError, Web3RPCError) as exc:
            reason = revert_reason(exc)
            self.log.warning(
                "call would revert, not sent",
                extra={"sender": self.address, "to": tx.get("to"), "reason": reason},
            )
            raise TxReverted(reason) from exc

    def _estimate_gas(self, tx: dict[str, Any]) -> int:
        try:
            estimate = call_with_retry(lambda: self.w3.eth.estimate_gas(tx, "pending"))  # type: ignore[arg-type]
        except (ContractLogicError, Web3RPCError) as exc:
            raise TxReverted(revert_reason(exc)) from exc
        return int(estimate * GAS_MARGIN)

    def _replay_reason(self, tx_hash: HexBytes, receipt: TxReceipt) -> str:
        """Best-effort reason of a mined revert. First `debug_traceTransaction`, which replays the
        tx inside its own block (its timestamp, the transactions before it): a revert caused by
        the block (a deadline passed, another transaction came first) keeps its reason. A node
        without the debug API gets the tx replayed on the parent block's state instead."""
        traced = self._traced_reason(tx_hash)
        if traced is not None:
            return traced
        try:
            tx = self.w3.eth.get_transaction(tx_hash)
            replay = {
                "from": tx["from"],
                "to": tx.get("to"),
                "data": tx["input"],
                "value": tx["value"],
                "gas": tx["gas"],
            }
            self.w3.eth.call(replay, receipt["blockNumber"] - 1)  # type: ignore[arg-type]
        except (ContractLogicError, Web3RPCError) as exc:
            return revert_reason(exc) or "reverted"
        except (Web3Exception, OSError, requests.RequestException):
            pass
        return "reverted on-chain (status 0)"

    def _traced_reason(self, tx_hash: HexBytes) -> str | None:
        """The revert reason from the node's call tracer, or None when it has no debug API."""
        try:
            trace = self._batch(
                [("debug_traceTransaction", [tx_hash.to_0x_hex(), {"tracer": "callTracer"}])]
            )[0]
        except (Web3Exception, OSError, requests.RequestException, TxError):
            return None
        return trace_revert_reason(trace)


__all__ = [
    "ChainClient",
    "FeeCapExceeded",
    "TxError",
    "TxReverted",
    "TxTimeout",
    "bump_fees",
    "decode_revert_data",
    "trace_revert_reason",
    "eip1559_fees",
    "format_receipt",
    "revert_reason",
]
