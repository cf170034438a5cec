"""JSON-RPC batches against a provider that caps or refuses them (keeper.retry.batch_request):
a refused batch is split in halves down to single requests, the connection's cap is lowered
once, and reads, receipts and raw transactions all go through (hosted RPCs cap batches)."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from web3 import Web3

from keeper.anvil import Anvil
from keeper.bots.inflight import Outgoing, send_batch
from keeper.bots.scan import batch_call
from keeper.chain import ChainClient
from keeper.retry import batch_request, max_batch, set_max_batch


class CappedProvider:
    """A fake provider: batches above `cap` answered with an error object (or an HTTP 413 with
    `http`); `cap=0` refuses every batch. Single requests echo their params."""

    def __init__(self, cap: int, http: bool = False) -> None:
        self.cap, self.http = cap, http
        self.batches: list[int] = []
        self.singles = 0

    def make_request(self, method: str, params: list[Any]) -> dict[str, Any]:
        self.singles += 1
        return {"jsonrpc": "2.0", "id": 1, "result": params[0]}

    def make_batch_request(self, reqs: list[tuple[str, list[Any]]]) -> Any:
        self.batches.append(len(reqs))
        if len(reqs) > self.cap:
            if self.http:
                raise requests.HTTPError("413 Client Error: Payload Too Large")
            return {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "batch too large"}}
        return [{"jsonrpc": "2.0", "id": i, "result": p[0]} for i, (_, p) in enumerate(reqs)]


@pytest.mark.parametrize("http", [False, True], ids=["error object", "http 413"])
def test_batch_request__capped_at_3__split_in_order__cap_learned(http: bool) -> None:
    provider = CappedProvider(3, http)
    reqs = [("eth_call", [i]) for i in range(10)]
    assert [r["result"] for r in batch_request(provider, reqs)] == list(range(10))
    assert max_batch(provider) == 2  # 10 refused -> 5 refused -> 2 (then 2 go through)
    provider.batches.clear()
    assert [r["result"] for r in batch_request(provider, reqs)] == list(range(10))
    assert provider.batches == [2, 2, 2, 2, 2]  # the learned cap, no refusal any more


def test_batch_request__batches_refused__single_requests() -> None:
    provider = CappedProvider(0)
    assert [r["result"] for r in batch_request(provider, [("eth_call", [i]) for i in range(5)])] == list(
        range(5)
    )
    assert provider.singles == 5 and max_batch(provider) == 1


class CappingHTTPProvider(Web3.HTTPProvider):
    """anvil behind a provider that refuses batches above `cap` (as a hosted RPC would)."""

    cap = 2

    def make_batch_request(self, reqs: Any) -> Any:  # type: ignore[override]
        if len(reqs) > self.cap:
            return {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "batch too large"}}
        return super().make_batch_request(reqs)


def test_keeper_batches_on_a_capped_node__reads_sends_receipts_go_through(node: Anvil, thing: Any) -> None:
    w3 = Web3(CappingHTTPProvider(node.url, exception_retry_configuration=None))
    client = ChainClient(w3, node.private_keys[0], receipt_timeout_s=10)
    contract = w3.eth.contract(address=thing.address, abi=thing.abi)
    out = send_batch(client, [Outgoing(i, contract.functions.set_value(40 + i), 100_000) for i in range(5)])
    hashes = [h for _, h in out]
    receipts = client.wait_all(hashes)
    assert [r["status"] for r in receipts] == [1] * 5
    assert batch_call(w3, [contract.functions.value() for _ in range(5)]) == [44] * 5
    assert max_batch(w3.provider) <= 2


def test_set_max_batch__from_the_settings__below_one_refused() -> None:
    w3 = Web3(Web3.HTTPProvider("http://127.0.0.1:1"))
    set_max_batch(w3, 7)
    assert max_batch(w3.provider) == 7
    with pytest.raises(ValueError, match="max_batch must be at least 1"):
        set_max_batch(w3, 0)
