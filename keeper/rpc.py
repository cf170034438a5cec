"""JSON-RPC transaction lane: :class:`FastLane` (JSON-RPC batches over one keep-alive HTTP
connection, node-signed dev accounts, fixed gas, receipts checked), used by the scenario
runner's ``advance`` and by the simulation's lane (``keeper.sim.lane``)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any


def selector(signature: str) -> bytes:
    from eth_utils import function_signature_to_4byte_selector

    return bytes(function_signature_to_4byte_selector(signature))


_FUNDING_PARAMS_TYPES = ["uint256", "uint256", "int256", "uint256", "uint256", "uint256", "uint256", "uint8"]
_FUNDING_READS = (
    ("next_funding_time", selector("next_funding_time()")),
    ("last_sample_time", selector("last_sample_time()")),
    ("params", selector("params()")),
)


class FastLane:
    """The runner's transaction lane for the stops of ``advance`` (thousands of keeper transactions).

    JSON-RPC batches over one keep-alive HTTP connection. During an advance the
    node's automine is off (:meth:`manual_mining`): a stop's transactions go to
    the pool in one batch and are mined together by ``evm_mine`` at the stop's
    exact timestamp, so a stop costs a few round trips and one block per
    phase. Transactions are signed by the node (anvil's dev accounts are
    unlocked; a sender it cannot sign for is signed locally), with locally
    tracked nonces and a fixed gas limit (no estimate); every receipt is
    checked and a failed one raises TxReverted with its reason. The pre-flight
    ``eth_call`` of the keepers' ChainClient is skipped: each action is planned
    from the state just read, and a revert still fails the step. Afterwards
    the ChainClients' nonces must be re-synced.
    """

    GAS = 1_000_000  # per transaction; a block holds 30 of them at anvil's 30M gas limit

    def __init__(self, url: str, keys: Mapping[str, str]) -> None:
        from urllib.parse import urlsplit

        self.url = url
        parts = urlsplit(url)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port
        self._path = parts.path or "/"
        self._https = parts.scheme == "https"
        self._conn: Any = None
        self.keys = dict(keys)  # address -> private key, for local signing
        self.nonces: dict[str, int] = {}
        self.local_signing: set[str] = set()
        self.sent = 0
        self.automine = True
        self._chain_id: int | None = None

    # ------------------------------------------------------------ JSON-RPC

    def _post(self, body: bytes, *, idempotent: bool) -> Any:
        """POST one JSON-RPC body; a dropped keep-alive connection is reopened and the body re-sent only
        when `idempotent` (reads): a batch of transactions is never re-sent blindly."""
        import http.client
        import json
        import socket

        for attempt in (1, 2):
            if self._conn is None:
                cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
                self._conn = cls(self._host, self._port, timeout=60)
                self._conn.connect()
                if not self._https:
                    self._conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                self._conn.request(
                    "POST", self._path, body=body, headers={"Content-Type": "application/json"}
                )
                response = self._conn.getresponse()
                text = response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self._conn.close()
                self._conn = None
                if attempt == 2 or not idempotent:
                    raise
                continue
            if response.status != 200:
                raise OSError(f"HTTP {response.status} from {self.url}: {text[:200]!r}")
            return json.loads(text)
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def batch(self, calls: Sequence[tuple[str, list[Any]]], *, check: bool = True) -> list[Any]:
        """Results of `calls` sent as one JSON-RPC batch; with `check`, an error answer raises
        (TxReverted with the reason for a revert), else it is returned as the answer dict."""
        import json

        from keeper.chain import TxError, TxReverted, decode_revert_data

        if not calls:
            return []
        payload = [{"jsonrpc": "2.0", "id": i, "method": m, "params": p} for i, (m, p) in enumerate(calls)]
        idempotent = not any(m.startswith(("eth_send", "evm_", "anvil_")) for m, _p in calls)
        answers = {a.get("id"): a for a in self._post(json.dumps(payload).encode(), idempotent=idempotent)}
        out = []
        for i, (method, _params) in enumerate(calls):
            answer = answers.get(i, {"error": {"message": "no answer"}})
            if "error" in answer:
                if not check:
                    out.append(answer)
                    continue
                error = answer["error"]
                data = error.get("data") if isinstance(error, dict) else None
                if isinstance(data, str) and data.startswith("0x"):
                    reason = decode_revert_data(bytes.fromhex(data[2:]))
                    if reason is not None:
                        raise TxReverted(reason)
                raise TxError(f"{method} failed: {error}")
            out.append(answer["result"])
        return out

    def call(self, method: str, *params: Any) -> Any:
        return self.batch([(method, list(params))])[0]

    def timestamp(self) -> int:
        return int(self.call("eth_getBlockByNumber", "latest", False)["timestamp"], 16)

    # ------------------------------------------------------------ reads

    def eth_calls(self, calls: Sequence[tuple[str, bytes]]) -> list[bytes]:
        """Return data of read-only calls (to, data) at the latest block, in one batch."""
        results = self.batch(
            [("eth_call", [{"to": to, "data": "0x" + data.hex()}, "latest"]) for to, data in calls]
        )
        return [bytes.fromhex(r[2:]) for r in results]

    def funding_states(self, contracts: Mapping[str, str]) -> dict[str, Any]:
        """FundingState of each market (symbol -> FundingRate address), read in one batch."""
        from eth_abi import decode

        from keeper.bots.funding import FundingState

        symbols = list(contracts)
        raw = self.eth_calls([(contracts[s], sel) for s in symbols for _name, sel in _FUNDING_READS])
        out = {}
        for i, symbol in enumerate(symbols):
            nft, last, params = raw[3 * i : 3 * i + 3]
            p = decode(_FUNDING_PARAMS_TYPES, params)
            out[symbol] = FundingState(
                symbol, int.from_bytes(nft, "big"), int.from_bytes(last, "big"), p[0], p[6]
            )
        return out

    # ------------------------------------------------------------ mining

    @contextmanager
    def manual_mining(self) -> Iterator[None]:
        """Automine off inside (blocks are mined by :meth:`transact` at the stop's time), restored after."""
        answer = self.batch([("anvil_getAutomine", [])], check=False)[0]
        was = answer if isinstance(answer, bool) else True
        self.call("evm_setAutomine", False)
        self.automine = False
        try:
            yield
        finally:
            self.automine = True
            self.call("evm_setAutomine", was)

    # ------------------------------------------------------------ transactions

    def transact(self, calls: Sequence[tuple[str, str, bytes]], at: int | None = None) -> list[dict]:
        """Send (sender, to, data) transactions in one batch, have them mined (automine off: by
        `evm_mine`, the block at timestamp `at` when given), wait for every receipt; raise on a revert."""
        from keeper.chain import TxError

        if not calls:
            return []
        missing = sorted({sender for sender, _to, _data in calls if sender not in self.nonces})
        if missing:
            counts = self.batch([("eth_getTransactionCount", [a, "pending"]) for a in missing])
            self.nonces.update({a: int(n, 16) for a, n in zip(missing, counts, strict=True)})
        requests_ = []
        for sender, to, data in calls:
            nonce = self.nonces[sender]
            self.nonces[sender] = nonce + 1
            requests_.append(self._send_request(sender, to, data, nonce))
        answers = self.batch(requests_, check=False)
        hashes = []
        for (sender, to, data), request, answer in zip(calls, requests_, answers, strict=True):
            if (
                isinstance(answer, dict)
                and request[0] == "eth_sendTransaction"
                and "signer" in str(answer.get("error", "")).lower()
            ):
                # the node cannot sign for this sender ("no signer available"): sign locally from now on
                self.local_signing.add(sender)
                nonce = int(request[1][0]["nonce"], 16)
                answer = self.batch([self._send_request(sender, to, data, nonce)], check=False)[0]
            if isinstance(answer, dict):
                raise TxError(f"send from {sender} to {to} failed: {answer.get('error')}")
            hashes.append(answer)
        self.sent += len(hashes)
        return self._receipts(hashes, at)

    def _receipts(self, hashes: Sequence[str], at: int | None, timeout_s: float = 30) -> list[dict]:
        import time

        from keeper.chain import TxError, TxReverted

        deadline = time.monotonic() + timeout_s
        mined_at = at
        while True:
            if not self.automine:  # mine what is pending (a full block leaves some: mine again)
                self.call("evm_mine", *([mined_at] if mined_at is not None else []))
                mined_at = None
            receipts = self.batch([("eth_getTransactionReceipt", [h]) for h in hashes])
            if all(r is not None for r in receipts):
                break
            if time.monotonic() > deadline:
                raise TxError(f"no receipt within {timeout_s} s for {sum(r is None for r in receipts)} tx(s)")
            if self.automine:
                time.sleep(0.002)
        for h, r in zip(hashes, receipts, strict=True):
            if int(r["status"], 16) != 1:
                raise TxReverted(self._replay_reason(h, r))
        return receipts

    def _send_request(self, sender: str, to: str, data: bytes, nonce: int) -> tuple[str, list[Any]]:
        if sender not in self.local_signing:
            tx = {
                "from": sender,
                "to": to,
                "data": "0x" + data.hex(),
                "gas": hex(self.GAS),
                "nonce": hex(nonce),
            }
            return ("eth_sendTransaction", [tx])
        from eth_account import Account

        if self._chain_id is None:
            self._chain_id = int(self.call("eth_chainId"), 16)
        base_fee = int(self.call("eth_getBlockByNumber", "latest", False)["baseFeePerGas"], 16)
        signed = Account.sign_transaction(
            {
                "to": to,
                "data": data,
                "gas": self.GAS,
                "maxFeePerGas": 2 * base_fee + 10**9,
                "maxPriorityFeePerGas": 10**9,
                "nonce": nonce,
                "chainId": self._chain_id,
                "type": 2,
                "value": 0,
            },
            self.keys[sender],
        )
        return ("eth_sendRawTransaction", ["0x" + bytes(signed.raw_transaction).hex()])

    def _replay_reason(self, tx_hash: str, receipt: dict) -> str:
        """The reason of a mined revert: traced inside its own block (`debug_traceTransaction`),
        else replayed on the parent block's state."""
        from keeper.chain import TxReverted, trace_revert_reason

        trace = self.batch([("debug_traceTransaction", [tx_hash, {"tracer": "callTracer"}])], check=False)[0]
        traced = trace_revert_reason(trace)
        if traced is not None:
            return traced
        tx = self.call("eth_getTransactionByHash", tx_hash)
        replay = {"from": tx["from"], "to": tx["to"], "data": tx["input"], "gas": tx["gas"]}
        try:
            self.batch([("eth_call", [replay, hex(int(receipt["blockNumber"], 16) - 1)])])
        except TxReverted as exc:
            return exc.reason or "reverted"
        except Exception as exc:
            if not is_chain_error(exc):
                raise
        return f"reverted on-chain (status 0), tx {tx_hash}"


def is_chain_error(exc: BaseException) -> bool:
    """Errors from the node or a transaction (reported as a failed step), not bugs of the runner."""
    import requests
    from web3.exceptions import Web3Exception

    from keeper.chain import TxError

    return isinstance(exc, TxError | Web3Exception | OSError | requests.RequestException)


__all__ = ["FastLane", "is_chain_error", "selector"]
