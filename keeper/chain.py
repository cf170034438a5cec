"""web3.py chain client shared by every keeper.

The transaction path (after lido-oracle `src/utils/transaction.py`):
`eth_call` first (a revert raises `TxReverted` and nothing is sent), EIP-1559
fees from `eth_feeHistory`, gas estimate x1.2, local signing, raw send, wait
for the receipt with a timeout. Nonces are tracked locally. Reads may be
retried; sends never are (a signed transaction is sent once; on "nonce too
low" the nonce is re-synced and the call re-signed, since the node rejected
the first one).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import requests
from eth_abi import decode as abi_decode
from eth_abi.exceptions import DecodingError
from eth_account import Account
from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from web3 import Web3
from web3.contract.contract import ContractConstructor, ContractFunction
from web3.exceptions import ContractLogicError, TimeExhausted, Web3Exception, Web3RPCError
from web3.providers.rpc.utils import REQUEST_RETRY_ALLOWLIST, ExceptionRetryConfiguration
from web3.types import TxParams, TxReceipt

T = TypeVar("T")

GWEI = 10**9
GAS_MARGIN = 1.2
ERROR_STRING_SELECTOR = bytes.fromhex("08c379a0")  # Error(string)
PANIC_SELECTOR = bytes.fromhex("4e487b71")  # Panic(uint256)

# Transport errors worth retrying for reads; never for sends.
RETRYABLE_READ_ERRORS: tuple[type[BaseException], ...] = (
    ConnectionError,
    TimeoutError,
    requests.ConnectionError,
    requests.Timeout,
)

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


def connect(rpc_url: str, *, timeout_s: float = 10.0) -> Web3:
    """Web3 over HTTP with a request timeout; transport retries for reads only (never eth_sendRawTransaction)."""
    retry = ExceptionRetryConfiguration(
        errors=RETRYABLE_READ_ERRORS,
        retries=3,
        backoff_factor=0.125,
        method_allowlist=[m for m in REQUEST_RETRY_ALLOWLIST if m != "eth_sendRawTransaction"],
    )
    provider = Web3.HTTPProvider(
        rpc_url, request_kwargs={"timeout": timeout_s}, exception_retry_configuration=retry
    )
    return Web3(provider)


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


def call_with_retry(
    fn: Callable[[], T] | ContractFunction,
    retries: int = 3,
    backoff: float = 0.5,
    *,
    logger: logging.Logger | None = None,
) -> T | Any:
    """Run a read (a zero-argument callable, or a ContractFunction to `.call()`), retrying connection errors.

    Only for read-only calls: a reverting call raises immediately.
    """
    read: Callable[[], Any] = fn.call if isinstance(fn, ContractFunction) else fn
    attempt = 0
    while True:
        try:
            return read()
        except RETRYABLE_READ_ERRORS as exc:
            attempt += 1
            if attempt > retries:
                raise
            delay = backoff * 2 ** (attempt - 1)
            if logger is not None:
                logger.warning(
                    "read failed, retrying", extra={"error": repr(exc), "attempt": attempt, "delay_s": delay}
                )
            time.sleep(delay)


def _is_nonce_too_low(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "nonce too low" in text or "nonce is too low" in text or "oldnonce" in text.replace(" ", "")


def _is_already_known(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "already known" in text or "already imported" in text


# ---------------------------------------------------------------- client


class ChainClient:
    """Sends transactions for one private key: pre-flight eth_call, EIP-1559 fees, local nonces."""

    def __init__(
        self,
        w3: Web3,
        private_key: str,
        *,
        receipt_timeout_s: float = 30,
        max_fee_gwei: float = 500,
        priority_fee_gwei: float = 1,
        logger: logging.Logger | None = None,
    ) -> None:
        self.w3 = w3
        self.account: LocalAccount = Account.from_key(private_key)
        self.address = self.account.address
        self.receipt_timeout_s = receipt_timeout_s
        self.max_fee_wei = int(max_fee_gwei * GWEI)
        self.priority_fee_wei = int(priority_fee_gwei * GWEI)
        self.log = logger or logging.getLogger("keeper.chain")
        self.chain_id = int(call_with_retry(lambda: w3.eth.chain_id))
        self._lock = threading.Lock()
        self._nonce: int | None = None

    # ------------------------------------------------------------ nonces

    @property
    def nonce(self) -> int:
        """The nonce the next transaction will use."""
        with self._lock:
            if self._nonce is None:
                self._nonce = self._pending_nonce()
            return self._nonce

    def resync_nonce(self) -> int:
        """Re-read the nonce from the node ("pending" count)."""
        with self._lock:
            self._nonce = self._pending_nonce()
            return self._nonce

    def _pending_nonce(self) -> int:
        return int(call_with_retry(lambda: self.w3.eth.get_transaction_count(self.address, "pending")))

    # ------------------------------------------------------------ fees

    def fees(self) -> tuple[int, int]:
        """(maxFeePerGas, maxPriorityFeePerGas) in wei for the next block."""
        history = call_with_retry(lambda: self.w3.eth.fee_history(1, "latest", []))
        next_base_fee = int(history["baseFeePerGas"][-1])
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
                        raise TxError(f"send failed: {exc}") from exc
                except (Web3Exception, OSError, requests.RequestException) as exc:
                    self._nonce = None
                    raise TxError(f"send failed: {exc}") from exc
                self._nonce += 1
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

    def wait(self, tx_hash: HexBytes | bytes | str) -> TxReceipt:
        """Wait for a receipt (receipt_timeout_s); raises TxReverted on status 0, TxTimeout when none comes."""
        tx_hash = HexBytes(tx_hash)
        try:
            receipt = self.w3.eth.wait_for_transaction_receipt(
                tx_hash, timeout=self.receipt_timeout_s, poll_latency=0.05
            )
        except TimeExhausted as exc:
            raise TxTimeout(tx_hash, self.receipt_timeout_s) from exc
        if receipt["status"] != 1:
            reason = self._replay_reason(tx_hash, receipt)
            self.log.error(
                "tx reverted",
                extra={"tx_hash": tx_hash.to_0x_hex(), "reason": reason, "block": receipt["blockNumber"]},
            )
            raise TxReverted(reason, tx_hash=tx_hash, receipt=receipt)
        self.log.debug(
            "tx mined",
            extra={
                "tx_hash": tx_hash.to_0x_hex(),
                "block": receipt["blockNumber"],
                "gas_used": receipt["gasUsed"],
            },
        )
        return receipt

    def wait_all(self, tx_hashes: list[HexBytes]) -> list[TxReceipt | TxError]:
        """Wait for every hash; each entry is the receipt or the TxError it raised."""
        results: list[TxReceipt | TxError] = []
        for h in tx_hashes:
            try:
                results.append(self.wait(h))
            except TxError as exc:
                results.append(exc)
        return results

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
        """Best-effort reason of a mined revert: replay the tx on the parent block's state."""
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


__all__ = [
    "ChainClient",
    "FeeCapExceeded",
    "TxError",
    "TxReverted",
    "TxTimeout",
    "call_with_retry",
    "connect",
    "decode_revert_data",
    "eip1559_fees",
    "revert_reason",
]
