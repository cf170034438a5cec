from __future__ import annotations

import logging
import time
from typing import Any

import pytest
import requests
from web3 import Web3
from web3.exceptions import ContractLogicError

from keeper.anvil import Anvil
from keeper.chain import (
    GWEI,
    ChainClient,
    FeeCapExceeded,
    TxReverted,
    TxTimeout,
    bump_fees,
    decode_revert_data,
    eip1559_fees,
    revert_reason,
    trace_revert_reason,
)
from keeper.retry import call_with_retry

# ---------------------------------------------------------------- pure helpers


def test_eip1559_fees__twice_base_plus_tip() -> None:
    assert eip1559_fees(10 * GWEI, priority_fee=1 * GWEI, max_fee_cap=500 * GWEI) == (21 * GWEI, 1 * GWEI)


def test_eip1559_fees__capped() -> None:
    max_fee, tip = eip1559_fees(10 * GWEI, priority_fee=2 * GWEI, max_fee_cap=11 * GWEI)
    assert max_fee == 11 * GWEI and tip == 1 * GWEI  # the tip shrinks to fit under the cap


def test_eip1559_fees__base_fee_above_cap__raises() -> None:
    with pytest.raises(FeeCapExceeded, match="above the cap"):
        eip1559_fees(600 * GWEI, priority_fee=GWEI, max_fee_cap=500 * GWEI)


def test_revert_reason__decodes_error_string() -> None:
    data = "0x08c379a0" + Web3.to_hex(
        bytes.fromhex("0" * 62 + "20") + (11).to_bytes(32, "big") + b"thing: boom".ljust(32, b"\0")
    ).removeprefix("0x")
    assert revert_reason(ContractLogicError("execution reverted: something else", data=data)) == "thing: boom"
    assert (
        revert_reason(ContractLogicError("execution reverted: oracle: stale index")) == "oracle: stale index"
    )
    assert revert_reason(ContractLogicError("execution reverted")) == ""
    assert decode_revert_data(bytes.fromhex("4e487b71" + "0" * 62 + "11")) == "panic 0x11"
    assert decode_revert_data(b"\x12\x34") is None


def test_call_with_retry__retries_connection_errors_only() -> None:
    calls = {"n": 0}

    def flaky() -> int:
        calls["n"] += 1
        if calls["n"] < 3:
            raise requests.ConnectionError("down")
        return 42

    assert call_with_retry(flaky, retries=3, backoff=0) == 42
    assert calls["n"] == 3

    def reverting() -> int:
        calls["n"] += 1
        raise ContractLogicError("execution reverted: no")

    calls["n"] = 0
    with pytest.raises(ContractLogicError):
        call_with_retry(reverting, retries=3, backoff=0)
    assert calls["n"] == 1

    def down() -> int:
        raise requests.ConnectionError("down")

    with pytest.raises(requests.ConnectionError):
        call_with_retry(down, retries=2, backoff=0)


# ---------------------------------------------------------------- against anvil


def test_transfer__eth_moves(w3: Web3, deployer: ChainClient, node: Anvil) -> None:
    to = node.addresses[5]
    before = w3.eth.get_balance(to)
    receipt = deployer.transfer(to, 10**18)
    assert receipt["status"] == 1
    assert w3.eth.get_balance(to) == before + 10**18


def test_send__contract_call_is_eip1559(w3: Web3, deployer: ChainClient, thing: Any) -> None:
    receipt = deployer.send(thing.functions.set_value(7))
    assert thing.functions.value().call() == 7
    tx = w3.eth.get_transaction(receipt["transactionHash"])
    assert tx["type"] == 2
    assert tx["maxPriorityFeePerGas"] == 1 * GWEI
    base = w3.eth.get_block(receipt["blockNumber"])["baseFeePerGas"]
    assert base + tx["maxPriorityFeePerGas"] <= tx["maxFeePerGas"] <= 500 * GWEI
    assert tx["gas"] > receipt["gasUsed"]  # estimate x1.2
    assert tx["chainId"] == 31337


def test_send__explicit_gas_and_value(w3: Web3, deployer: ChainClient, thing: Any) -> None:
    receipt = deployer.send(thing.functions.deposit(), gas=100_000, value=123)
    assert w3.eth.get_transaction(receipt["transactionHash"])["gas"] == 100_000
    assert w3.eth.get_balance(thing.address) == 123


def test_send_nowait__nonces_tracked_across_batch(
    w3: Web3, deployer: ChainClient, thing: Any, node: Anvil
) -> None:
    start = w3.eth.get_transaction_count(deployer.address)
    node.set_automine(False)
    hashes = [deployer.send_nowait(thing.functions.set_value(v)) for v in (1, 2, 3, 4)]
    nonces = [w3.eth.get_transaction(h)["nonce"] for h in hashes]
    assert nonces == [start, start + 1, start + 2, start + 3]
    assert deployer.nonce == start + 4
    node.mine(1)
    receipts = [deployer.wait(h) for h in hashes]
    assert all(r["status"] == 1 for r in receipts)
    assert thing.functions.calls().call() == 4 and thing.functions.value().call() == 4


def test_send__revert__raises_reason_and_sends_nothing(w3: Web3, deployer: ChainClient, thing: Any) -> None:
    nonce_before = deployer.nonce
    chain_nonce_before = w3.eth.get_transaction_count(deployer.address, "pending")
    block_before = w3.eth.block_number
    with pytest.raises(TxReverted, match="thing: unlucky") as info:
        deployer.send(thing.functions.set_value(13))
    assert info.value.reason == "thing: unlucky" and info.value.tx_hash is None
    assert deployer.nonce == nonce_before
    assert w3.eth.get_transaction_count(deployer.address, "pending") == chain_nonce_before
    assert w3.eth.block_number == block_before


def test_wait__status_0__raises(w3: Web3, thing: Any, node: Anvil) -> None:
    """A transaction that passes the pre-flight but fails on-chain raises TxReverted with its receipt."""
    other = ChainClient(w3, node.private_keys[1], receipt_timeout_s=10)
    # the revert is forced with too little gas: the pre-flight passes, the tx fails
    with pytest.raises(TxReverted) as info:
        other.send(thing.functions.set_value(5), gas=22_000)
    assert info.value.receipt is not None and info.value.receipt["status"] == 0
    assert info.value.reason  # replayed: the node's error, e.g. out of gas
    assert other.nonce == w3.eth.get_transaction_count(other.address)


def test_wait__reverted_by_its_block__reason_traced_inside_the_block(
    w3: Web3, thing: Any, node: Anvil, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tx that passes the pre-flight but is mined after its deadline: the reason comes from a
    trace inside its own block. A replay on the parent block's state passes, so it cannot tell."""
    client = ChainClient(w3, node.private_keys[1], receipt_timeout_s=10)
    deadline = w3.eth.get_block("latest")["timestamp"] + 30

    def mined_late() -> TxReverted:
        node.set_automine(False)
        tx_hash = client.send_nowait(thing.functions.set_value_before(5, deadline), gas=100_000)
        node.increase_time(60)
        node.mine()
        node.set_automine(True)
        with pytest.raises(TxReverted) as info:
            client.wait(tx_hash)
        return info.value

    assert mined_late().reason == "thing: too late"
    deadline = w3.eth.get_block("latest")["timestamp"] + 30
    monkeypatch.setattr(client, "_traced_reason", lambda tx_hash: None)  # a node without the debug API
    assert mined_late().reason == "reverted on-chain (status 0)"
    assert thing.functions.value().call() == 0


def test_nonce_too_low__resynced(
    w3: Web3, deployer: ChainClient, thing: Any, deployer_key: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Another process used the key: the local nonce is stale, the node says 'nonce too low', we re-sync."""
    deployer.send(thing.functions.set_value(1))
    intruder = ChainClient(w3, deployer_key, receipt_timeout_s=10)
    intruder.send(thing.functions.set_value(2))
    with caplog.at_level(logging.WARNING, logger="keeper.chain"):
        receipt = deployer.send(thing.functions.set_value(3))
    assert "nonce too low, re-synced" in caplog.messages
    assert receipt["status"] == 1 and thing.functions.value().call() == 3
    assert deployer.nonce == w3.eth.get_transaction_count(deployer.address)


def test_fee_cap_below_base_fee__nothing_sent(w3: Web3, deployer_key: str, thing: Any) -> None:
    client = ChainClient(w3, deployer_key, max_fee_gwei=0.000_001)
    with pytest.raises(FeeCapExceeded):
        client.send(thing.functions.set_value(1))
    assert w3.eth.get_transaction_count(client.address, "pending") == client.nonce


def test_deploy_with_constructor(deployer: ChainClient, thing_artifact: Any) -> None:
    abi, bytecode = thing_artifact
    receipt = deployer.deploy(deployer.w3.eth.contract(abi=abi, bytecode=bytecode).constructor())
    assert receipt["contractAddress"] is not None
    assert deployer.w3.eth.get_code(receipt["contractAddress"]) != b""


# ---------------------------------------------------------------- stuck transactions: replacement


def test_bump_fees__raised_by_percent__or_to_the_market__within_the_cap() -> None:
    cap = 500 * GWEI
    assert bump_fees((10 * GWEI, GWEI), (5 * GWEI, GWEI), percent=20, max_fee_cap=cap) == (
        12 * GWEI,
        1_200_000_000,
    )
    # the market moved more than the bump (base fee x10): its fees, the tip still raised
    assert bump_fees((21 * GWEI, GWEI), (201 * GWEI, GWEI), percent=20, max_fee_cap=cap) == (
        201 * GWEI,
        1_200_000_000,
    )
    # near the cap: capped, still a valid replacement (>= +12.5%)
    assert bump_fees((10 * GWEI, GWEI), (0, 0), percent=20, max_fee_cap=11_300_000_000) == (
        11_300_000_000,
        1_200_000_000,
    )
    # at the cap: no replacement a node would take
    assert bump_fees((10 * GWEI, GWEI), (0, 0), percent=20, max_fee_cap=11 * GWEI) is None
    with pytest.raises(ValueError, match="at least 12.5"):
        ChainClient(Web3(), "0x" + "11" * 32, fee_bump_percent=10)


def _stuck(w3: Web3, node: Anvil, key: str, thing: Any, **kwargs: Any) -> tuple[ChainClient, Any]:
    """A client whose set_value(7) waits in the pool (automine off)."""
    client = ChainClient(w3, key, receipt_timeout_s=0.6, replace_after_s=0.2, **kwargs)
    node.set_automine(False)
    return client, client.send_nowait(thing.functions.set_value(7), gas=100_000)


def test_stuck_tx__replaced_with_bumped_fees__same_nonce__mined_once(
    w3: Web3, node: Anvil, deployer_key: str, thing: Any
) -> None:
    client, first = _stuck(w3, node, deployer_key, thing)
    original = w3.eth.get_transaction(first)
    with pytest.raises(TxTimeout):
        client.wait(first)  # replaced meanwhile (after 0.2 s, again after 0.4 s)
    assert client.stats["replaced"] >= 1 and client.pending_count == 1
    node.mine()
    receipt = client.wait(first)  # the receipt of whichever version was mined
    mined = w3.eth.get_transaction(receipt["transactionHash"])
    assert receipt["transactionHash"] != first and mined["nonce"] == original["nonce"]
    assert mined["input"] == original["input"] and mined["gas"] == original["gas"]
    assert mined["maxFeePerGas"] >= original["maxFeePerGas"] * 1.2
    assert mined["maxPriorityFeePerGas"] >= original["maxPriorityFeePerGas"] * 1.2
    assert thing.functions.calls().call() == 1 and client.pending_count == 0
    assert w3.eth.get_transaction_count(client.address) == original["nonce"] + 1
    assert client.tx_states([first]) == [("mined", receipt)]


def test_tx_lost_by_the_node__sent_again__same_nonce(
    w3: Web3, node: Anvil, deployer_key: str, thing: Any
) -> None:
    client, first = _stuck(w3, node, deployer_key, thing)
    nonce = w3.eth.get_transaction(first)["nonce"]
    node.rpc("anvil_dropAllTransactions", [])  # as a node restart loses its pool
    time.sleep(0.25)
    assert client.maintain() == 1 and client.stats["replaced"] == 1
    node.mine()
    receipt = client.wait(first)
    assert w3.eth.get_transaction(receipt["transactionHash"])["nonce"] == nonce
    assert thing.functions.calls().call() == 1


def test_fee_cap_reached__sent_again_unchanged(
    w3: Web3, node: Anvil, deployer_key: str, thing: Any, caplog: pytest.LogCaptureFixture
) -> None:
    base = w3.eth.fee_history(1, "latest", [])["baseFeePerGas"][-1]
    client, first = _stuck(w3, node, deployer_key, thing, max_fee_gwei=(2 * base + GWEI) / GWEI)
    time.sleep(0.25)
    with caplog.at_level(logging.WARNING, logger="keeper.chain"):
        client.maintain()
    assert "stuck tx at the fee cap: sent again unchanged" in caplog.messages
    assert client.stats["replaced"] == 0
    node.mine()
    assert client.wait(first)["transactionHash"] == first


def test_adopt_pool__a_restarted_client_tracks_what_is_pending(
    w3: Web3, node: Anvil, deployer_key: str, thing: Any
) -> None:
    _, first = _stuck(w3, node, deployer_key, thing)  # then the process dies
    restarted = ChainClient(w3, deployer_key, replace_after_s=0.2)
    (adopted,) = restarted.adopt_pool() or []
    assert adopted.hash == first and adopted.raw is not None  # the same signed bytes: reproducible
    assert restarted.nonce == adopted.nonce + 1  # its next transaction comes after
    assert restarted.adopt_pool() == []  # tracked already
    assert restarted.tx_states([first]) == [("pending", None)]
    time.sleep(0.25)
    restarted.maintain()  # still stuck: replaced, as if sent here
    node.mine()
    assert restarted.tx_states([first])[0][0] == "mined" and thing.functions.calls().call() == 1


# ---------------------------------------------------------------- receipts of many transactions


def _many(w3: Web3, node: Anvil, client: ChainClient, thing: Any, n: int) -> list[Any]:
    """`n` transactions mined over three blocks (automine off while sending)."""
    node.set_automine(False)
    hashes = []
    for k in range(n):
        hashes.append(client.send_nowait(thing.functions.set_value(k + 100), gas=100_000))
        if k % (n // 3 + 1) == n // 3:
            node.mine()
    node.mine()
    node.set_automine(True)
    return hashes


def _rpc_methods(client: ChainClient, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The JSON-RPC methods `client` reads in batches from now on, in order."""
    calls: list[str] = []
    batch = client._batch
    monkeypatch.setattr(client, "_batch", lambda reqs: calls.extend(m for m, _ in reqs) or batch(reqs))
    return calls


def test_wait_many__many_transactions__whole_blocks_read_not_each_receipt(
    w3: Web3, node: Anvil, deployer: ChainClient, thing: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    hashes = _many(w3, node, deployer, thing, 40)
    calls = _rpc_methods(deployer, monkeypatch)
    receipts = deployer.wait_many(hashes)
    assert [r["transactionHash"] for r in receipts] == hashes
    assert all(r["status"] == 1 for r in receipts) and deployer.pending_count == 0
    assert "eth_getTransactionReceipt" not in calls and 1 <= calls.count("eth_getBlockReceipts") <= 4
    assert {r["blockNumber"] for r in receipts} == {
        w3.eth.get_transaction_receipt(h)["blockNumber"] for h in hashes
    }


def test_wait_many__node_without_block_receipts__per_transaction(
    w3: Web3, node: Anvil, deployer: ChainClient, thing: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    hashes = _many(w3, node, deployer, thing, 40)
    batch = deployer._batch

    def refusing(reqs: Any) -> list[Any]:
        if reqs and reqs[0][0] == "eth_getBlockReceipts":
            return [None] * len(reqs)  # "method not found" for each
        return batch(reqs)

    monkeypatch.setattr(deployer, "_batch", refusing)
    receipts = deployer.wait_many(hashes)
    assert [r["transactionHash"] for r in receipts] == hashes and not deployer._block_receipts


def test_wait_many__few_transactions__per_transaction(
    w3: Web3, node: Anvil, deployer: ChainClient, thing: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    hashes = _many(w3, node, deployer, thing, 5)
    calls = _rpc_methods(deployer, monkeypatch)
    assert len(deployer.wait_many(hashes)) == 5
    assert "eth_getBlockReceipts" not in calls and calls.count("eth_getTransactionReceipt") == 5


def test_trace_revert_reason__reason_output_error_or_none() -> None:
    error_string = "0x08c379a0" + Web3.to_hex(
        bytes.fromhex("0" * 62 + "20") + (11).to_bytes(32, "big") + b"thing: boom".ljust(32, b"\0")
    ).removeprefix("0x")
    assert (
        trace_revert_reason({"revertReason": "thing: late", "error": "execution reverted"}) == "thing: late"
    )
    assert trace_revert_reason({"output": error_string, "error": "execution reverted"}) == "thing: boom"
    assert trace_revert_reason({"output": "0x", "error": "execution reverted"}) == "reverted"
    assert trace_revert_reason({"error": "OutOfGas"}) == "OutOfGas"
    assert trace_revert_reason({"output": "0x"}) is None  # it did not revert
    assert trace_revert_reason(None) is None  # no debug API
    assert trace_revert_reason({"error": {"code": -32601, "message": "method not found"}}) is None
