from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from keeper.anvil import Anvil, AnvilError, find_anvil, free_port


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0); stop() waits for the child, so it is reaped
    return True


def test_find_anvil__env_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = tmp_path / "anvil"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("VYPERP_ANVIL", str(fake))
    assert find_anvil() == str(fake)
    monkeypatch.setenv("VYPERP_ANVIL", str(tmp_path / "missing"))
    with pytest.raises(AnvilError, match="not an executable"):
        find_anvil()


def test_find_anvil__default_is_native_binary(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VYPERP_ANVIL", raising=False)
    assert os.access(find_anvil(), os.X_OK)


def test_free_port__bindable() -> None:
    port = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


def test_start__avoids_port_held_by_another_socket() -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        taken = held.getsockname()[1]
        with Anvil(accounts=2) as node:
            assert node.port != taken
            assert int(node.rpc("eth_chainId"), 16) == 31337


def test_start__retries_when_port_is_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bind race: the first port handed out is already in use; start() picks another."""
    import keeper.anvil as anvil_mod

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        taken = held.getsockname()[1]
        ports = iter([taken])
        monkeypatch.setattr(anvil_mod, "free_port", lambda: next(ports, None) or free_port())
        with Anvil(accounts=1) as node:
            assert node.port != taken
            assert "in use" in node.log_path.read_text().lower()


def test_stop__process_gone_and_idempotent() -> None:
    node = Anvil(accounts=1).start()
    pid = node.pid
    assert pid is not None and node.running
    log_dir = node.log_dir
    node.stop()
    assert not node.running and not _pid_alive(pid)
    assert log_dir is not None and not log_dir.exists()
    node.stop()  # idempotent


def test_two_anvils__different_ports() -> None:
    with Anvil(accounts=1) as a, Anvil(accounts=1, chain_id=1337) as b:
        assert a.port != b.port
        assert int(a.rpc("eth_chainId"), 16) == 31337
        assert int(b.rpc("eth_chainId"), 16) == 1337


def test_increase_time__moves_block_timestamp(node: Anvil) -> None:
    before = node.block_timestamp()
    node.increase_time(3_600)
    assert node.block_timestamp() >= before + 3_600


def test_mine_snapshot_revert_automine(node: Anvil) -> None:
    start = int(node.rpc("eth_blockNumber"), 16)
    snap = node.snapshot()
    node.mine(3)
    assert int(node.rpc("eth_blockNumber"), 16) == start + 3
    assert node.revert(snap)
    assert int(node.rpc("eth_blockNumber"), 16) == start
    node.set_automine(False)
    node.set_automine(True)


def test_private_keys__match_node_accounts(node: Anvil) -> None:
    assert [a.lower() for a in node.addresses] == [a.lower() for a in node.rpc("eth_accounts")]
    assert node.private_keys[0] == "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"


def test_rpc_error__raises(node: Anvil) -> None:
    with pytest.raises(AnvilError, match="no_such_method"):
        node.rpc("no_such_method")


def test_start_failure__clear_error_with_log(monkeypatch: pytest.MonkeyPatch) -> None:
    node = Anvil(accounts=1, extra_args=["--no-such-flag"])
    t0 = time.monotonic()
    with pytest.raises(AnvilError, match="exited") as info:
        node.start()
    assert "no-such-flag" in str(info.value)
    assert time.monotonic() - t0 < 10
    assert not node.running
    node.stop()
    assert node.log_path.exists()  # kept for debugging after a failed start


def test_stop__removes_anvils_paged_out_state():
    """anvil writes historical states under $HOME/.foundry; the launcher gives
    it a private HOME inside its temp dir and deletes it on stop."""
    node = Anvil(accounts=1).start()
    home = node.log_dir / "home"
    assert home.is_dir()
    (home / ".foundry" / "anvil" / "tmp").mkdir(parents=True, exist_ok=True)
    node.stop()
    assert not home.exists()
