"""Local anvil chain launcher for tests, scripts and keepers.

Every instance binds its own free port on 127.0.0.1 (never a fixed port),
writes anvil's output to a log file in a temp dir, and is always stopped at
interpreter exit.

    with Anvil() as node:
        w3 = connect(node.url)
        node.increase_time(3600)
"""

from __future__ import annotations

import atexit
import glob
import gzip
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

DEFAULT_MNEMONIC = "test test test test test test test test test test test junk"
REPO_ROOT = Path(__file__).resolve().parent.parent

_START_TIMEOUT_S = 20.0
_STOP_TIMEOUT_S = 5.0
_MAX_PERSISTED_STATES = 2_000  # historical states anvil may page out to disk
_PORT_ATTEMPTS = 5


class AnvilError(RuntimeError):
    """anvil could not be found, started, or answered an RPC with an error."""


def find_anvil() -> str:
    """Path of the anvil binary: $VYPERP_ANVIL, the npm-installed native binary, or PATH."""
    env = os.environ.get("VYPERP_ANVIL")
    if env:
        if not os.access(env, os.X_OK):
            raise AnvilError(f"VYPERP_ANVIL={env!r} is not an executable file")
        return env
    pattern = str(REPO_ROOT / "node_modules" / "@foundry-rs" / "anvil-*" / "bin" / "anvil")
    for candidate in sorted(glob.glob(pattern)):
        if os.access(candidate, os.X_OK):
            return candidate
    on_path = shutil.which("anvil")
    if on_path:
        return on_path
    raise AnvilError(
        "anvil not found: run `make install` (installs it from npm), or set VYPERP_ANVIL=/path/to/anvil"
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (bind port 0, read it, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@lru_cache(maxsize=8)
def dev_private_keys(n: int, mnemonic: str = DEFAULT_MNEMONIC) -> tuple[str, ...]:
    """The first `n` private keys (0x-hex) derived from `mnemonic` on m/44'/60'/0'/0/i, as anvil does."""
    from eth_account import Account

    Account.enable_unaudited_hdwallet_features()
    return tuple(
        "0x"
        + Account.from_mnemonic(mnemonic, account_path=f"m/44'/60'/0'/0/{i}").key.hex().removeprefix("0x")
        for i in range(n)
    )


class Anvil:
    """An anvil process on a free local port. Use as a context manager or call start()/stop()."""

    def __init__(
        self,
        accounts: int = 20,
        balance_eth: int = 10_000,
        block_time: float | None = None,
        chain_id: int = 31337,
        extra_args: Sequence[str] = (),
        keep_logs: bool = False,
    ) -> None:
        self.accounts = accounts
        self.balance_eth = balance_eth
        self.block_time = block_time
        self.chain_id = chain_id
        self.extra_args = tuple(extra_args)
        self.keep_logs = keep_logs  # keep the log dir after stop(); always kept when start() failed
        self.port: int | None = None
        self.log_dir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file: Any = None
        self._rpc_id = 0
        self._start_failed = False
        self._log_offset = 0

    # ------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        if self.port is None:
            raise AnvilError("anvil is not started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        if self.log_dir is None:
            raise AnvilError("anvil is not started")
        return self.log_dir / "anvil.log"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self) -> Anvil:
        """Launch anvil and wait until it answers `eth_chainId`. Retries on a port bind race."""
        if self.running:
            return self
        binary = find_anvil()
        self.log_dir = Path(tempfile.mkdtemp(prefix="vyperp-anvil-"))
        last_error = ""
        for _ in range(_PORT_ATTEMPTS):
            self.port = free_port()
            self._launch(binary)
            try:
                self._wait_ready()
                return self
            except AnvilError as exc:
                last_error = str(exc)
                in_use = "in use" in self._log_since_launch().lower()
                self._terminate()
                if not in_use:
                    self._start_failed = True
                    raise
        self._start_failed = True
        raise AnvilError(f"anvil could not bind a free port after {_PORT_ATTEMPTS} attempts: {last_error}")

    def stop(self) -> None:
        """Terminate anvil (kill after 5 s) and remove its log dir unless keep_logs. Idempotent."""
        self._terminate()
        atexit.unregister(self.stop)
        if self.log_dir is not None:
            # anvil's paged-out states go whatever happens to the logs
            shutil.rmtree(self.log_dir / "home", ignore_errors=True)
        if not (self.keep_logs or self._start_failed) and self.log_dir is not None:
            shutil.rmtree(self.log_dir, ignore_errors=True)
            self.log_dir = None

    def restart(self) -> None:
        """Stop anvil and start it again on the same port with the same chain (blocks, receipts,
        accounts, storage: `anvil_dumpState`, then `--load-state`). As on a real node restart,
        the transaction pool is lost; so are snapshots, automine settings and impersonations."""
        state = self.rpc("anvil_dumpState", [], timeout=60)
        data = bytes.fromhex(str(state).removeprefix("0x"))
        try:
            data = gzip.decompress(data)  # anvil gzips the dump
        except OSError:
            pass
        path = self.log_path.with_name("state.json")
        path.write_bytes(data)
        self._terminate()
        self._launch(find_anvil(), ("--load-state", str(path)))
        self._wait_ready()

    def __enter__(self) -> Anvil:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _launch(self, binary: str, more_args: Sequence[str] = ()) -> None:
        cmd = [
            binary,
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--accounts", str(self.accounts),
            "--balance", str(self.balance_eth),
            "--chain-id", str(self.chain_id),
        ]  # fmt: skip
        if self.block_time is not None:
            cmd += ["--block-time", str(self.block_time)]
        # anvil pages historical states out to $HOME/.foundry/anvil/tmp and never
        # removes them (80 GB seen after a day of runs): bound how many it keeps,
        # and give it a private HOME inside log_dir, which stop() deletes (with
        # --prune-history it keeps recent states in memory only, and refuses the bound)
        if "--prune-history" not in self.extra_args:
            cmd += ["--max-persisted-states", str(_MAX_PERSISTED_STATES)]
        cmd += [*self.extra_args, *more_args]
        home = self.log_dir / "home"
        home.mkdir(exist_ok=True)
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self._log_file = open(self.log_path, "ab")  # closed in _terminate
        self._log_file.write(f"$ {' '.join(cmd)}\n".encode())
        self._log_file.flush()
        self._proc = subprocess.Popen(
            cmd,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "HOME": str(home)},
        )
        atexit.register(self.stop)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise AnvilError(
                    f"anvil exited with code {self._proc.returncode} on port {self.port}; "
                    f"log {self.log_path}:\n{self._log_tail()}"
                )
            try:
                chain_id = int(self.rpc("eth_chainId", [], timeout=1.0), 16)
            except (OSError, AnvilError):
                time.sleep(0.05)
                continue
            if chain_id != self.chain_id:
                raise AnvilError(f"port {self.port} answers chain id {chain_id}, expected {self.chain_id}")
            return
        raise AnvilError(
            f"anvil did not answer eth_chainId within {_START_TIMEOUT_S:.0f} s; "
            f"log {self.log_path}:\n{self._log_tail()}"
        )

    def _terminate(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def _log_since_launch(self) -> str:
        """The log written by the latest launch attempt only."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self._log_offset)
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def _log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    # ------------------------------------------------------------ accounts

    @property
    def private_keys(self) -> list[str]:
        """Private keys of the dev accounts (anvil's default mnemonic)."""
        return list(dev_private_keys(self.accounts))

    @property
    def addresses(self) -> list[str]:
        """Checksummed addresses of the dev accounts."""
        from eth_account import Account

        return [Account.from_key(k).address for k in self.private_keys]

    # ------------------------------------------------------------ RPC helpers

    def rpc(self, method: str, params: Sequence[Any] = (), *, timeout: float = 10.0) -> Any:
        """One JSON-RPC call; returns `result` or raises AnvilError with the node's error."""
        self._rpc_id += 1
        body = json.dumps({"jsonrpc": "2.0", "id": self._rpc_id, "method": method, "params": list(params)})
        req = urllib.request.Request(
            self.url, data=body.encode(), headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            answer = json.loads(resp.read())
        if "error" in answer:
            raise AnvilError(f"{method} failed: {answer['error']}")
        return answer.get("result")

    def mine(self, n: int = 1) -> None:
        """Mine `n` blocks."""
        self.rpc("anvil_mine", [hex(n)])

    def increase_time(self, seconds: int) -> None:
        """Move the chain clock forward by `seconds` and mine a block with the new time."""
        self.rpc("evm_increaseTime", [int(seconds)])
        self.rpc("evm_mine", [])

    def set_automine(self, enabled: bool) -> None:
        self.rpc("evm_setAutomine", [enabled])

    def snapshot(self) -> str:
        """Snapshot the chain state; returns an id for revert()."""
        return str(self.rpc("evm_snapshot", []))

    def revert(self, snapshot_id: str) -> bool:
        """Revert to a snapshot (the id is consumed, as in anvil)."""
        return bool(self.rpc("evm_revert", [snapshot_id]))

    def block_timestamp(self) -> int:
        """Timestamp of the latest block."""
        return int(self.rpc("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)


__all__ = ["DEFAULT_MNEMONIC", "Anvil", "AnvilError", "dev_private_keys", "find_anvil", "free_port"]
