"""One nonce counter per key: the bots of a process share one ChainClient per key, whose sends
(single or batched) hold the key's send lock, and a second process with the same key on the
same chain refuses to start (keeper.keylock)."""

from __future__ import annotations

import fcntl
import subprocess
import sys
import threading
from typing import Any

import pytest
from web3 import Web3

from keeper.anvil import Anvil
from keeper.bots.inflight import Outgoing, send_batch
from keeper.chain import ChainClient
from keeper.errors import CliError
from keeper.keylock import claim_key, release_all

ADDRESS = "0x00000000000000000000000000000000000000aa"
GENESIS = "0x" + "ab" * 32


@pytest.fixture
def lock_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("VYPERP_LOCK_DIR", str(tmp_path))
    yield tmp_path
    release_all()


def test_claim_key__same_process_twice__no_op(lock_dir) -> None:
    assert claim_key(10, GENESIS, ADDRESS) == claim_key(10, GENESIS, ADDRESS)


def test_claim_key__held_by_another_process__refused_naming_it(lock_dir) -> None:
    code = (
        "import sys, time; from keeper.keylock import claim_key; "
        f"claim_key(10, {GENESIS!r}, {ADDRESS!r}); print('held', flush=True); time.sleep(30)"
    )
    other = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout is not None and other.stdout.readline().strip() == "held"
        with pytest.raises(
            CliError, match=rf"key {ADDRESS} is in use by another keeper process.*pid {other.pid}"
        ):
            claim_key(10, GENESIS, ADDRESS)
    finally:
        other.kill()
        other.wait()
    claim_key(10, GENESIS, ADDRESS)  # the OS released it with the process


def test_claim_key__other_chain_or_dev_node__separate_locks(lock_dir) -> None:
    held = claim_key(31337, GENESIS, ADDRESS, "http://127.0.0.1:8545")
    with held.open() as f:  # another open file description: flock conflicts as another process's would
        with pytest.raises(BlockingIOError):
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    assert claim_key(31337, GENESIS, ADDRESS, "http://127.0.0.1:8546") != held  # another dev node
    assert claim_key(10, "0x" + "cd" * 32, ADDRESS) != claim_key(10, GENESIS, ADDRESS)


def test_shared_client__two_threads_send__nonces_in_a_row_all_mined(
    w3: Web3, deployer: ChainClient, thing: Any, node: Anvil
) -> None:
    """Two bots of one process share the key's client: one sends singly, the other in batches,
    at the same time; every nonce is used once and every transaction is mined."""
    start = w3.eth.get_transaction_count(deployer.address)
    hashes: list[Any] = []
    lock = threading.Lock()

    def single() -> None:
        for v in range(1, 11):
            h = deployer.send_nowait(thing.functions.set_value(v), gas=100_000)
            with lock:
                hashes.append(h)

    def batched() -> None:
        for _ in range(5):
            calls = [Outgoing(i, thing.functions.set_value(20 + i), 100_000) for i in range(2)]
            out = send_batch(deployer, calls)
            with lock:
                hashes.extend(h for _, h in out)

    threads = [threading.Thread(target=single), threading.Thread(target=batched)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    receipts = [deployer.wait(h) for h in hashes]
    assert all(r["status"] == 1 for r in receipts)
    nonces = sorted(w3.eth.get_transaction(h)["nonce"] for h in hashes)
    assert nonces == list(range(start, start + 20))
