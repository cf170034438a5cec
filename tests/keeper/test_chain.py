from __future__ import annotations

import logging
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
    call_with_retry,
    decode_revert_data,
    eip1559_fees,
    revert_reason,
)

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
