"""One layer of retries: a read against an endpoint that drops every request makes at most
`retries + 1` attempts (call_with_retry), and a call outside call_with_retry makes one (the web3
connection from `connect` has no retries of its own)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from web3 import Web3

from keeper.retry import READ_ATTEMPTS, call_with_retry, connect


class DroppingEndpoint(ThreadingHTTPServer):
    """A local HTTP server on a free port that reads each request and hangs up without an answer,
    counting the requests (JSON-RPC methods) it got."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Dropper)
        self.requests: list[bytes] = []
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Dropper(BaseHTTPRequestHandler):
    server: DroppingEndpoint

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with self.server._lock:
            self.server.requests.append(body)
        self.close_connection = True  # no status line: the client sees the connection dropped

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base's name)
        pass


@pytest.fixture
def endpoint() -> Iterator[DroppingEndpoint]:
    server = DroppingEndpoint()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


READS: dict[str, Callable[[Web3], Any]] = {
    "eth_blockNumber": lambda w3: w3.eth.block_number,
    "eth_chainId": lambda w3: w3.eth.chain_id,
    "eth_call": lambda w3: w3.eth.call({"to": "0x" + "11" * 20, "data": "0x"}),
    "eth_getTransactionReceipt": lambda w3: w3.eth.get_transaction_receipt("0x" + "22" * 32),
    "batch": lambda w3: w3.provider.make_batch_request([("eth_blockNumber", []), ("eth_chainId", [])]),  # type: ignore[attr-defined]
}


@pytest.mark.parametrize("read", list(READS))
@pytest.mark.parametrize("retries", [0, 2, 3])
def test_call_with_retry__endpoint_drops_every_request__retries_plus_one_attempts(
    endpoint: DroppingEndpoint, read: str, retries: int
) -> None:
    w3 = connect(endpoint.url, timeout_s=5)
    with pytest.raises(requests.ConnectionError):
        call_with_retry(lambda: READS[read](w3), retries=retries, backoff=0)
    assert len(endpoint.requests) == retries + 1


def test_call_with_retry__default__read_attempts(endpoint: DroppingEndpoint) -> None:
    w3 = connect(endpoint.url, timeout_s=5)
    with pytest.raises(requests.ConnectionError):
        call_with_retry(lambda: w3.eth.block_number, backoff=0)
    assert len(endpoint.requests) == READ_ATTEMPTS == 4


@pytest.mark.parametrize(
    "call",
    [
        lambda w3: w3.eth.block_number,
        lambda w3: w3.eth.send_raw_transaction("0x" + "33" * 100),
    ],
    ids=["read", "send"],
)
def test_connect__no_transport_retries__one_attempt(
    endpoint: DroppingEndpoint, call: Callable[[Web3], Any]
) -> None:
    w3 = connect(endpoint.url, timeout_s=5)
    with pytest.raises(requests.ConnectionError):
        call(w3)
    assert len(endpoint.requests) == 1
