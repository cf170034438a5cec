"""One keeper process per key and chain: a lock file per (chain, key).

The bots of one process share one `ChainClient` per key (`RunContext.client`), so their
nonces never collide. Two *processes* with one key would each count nonces on their own
("replacement transaction underpriced", or one's pending transaction silently replacing
the other's), so the second refuses to start. The lock is an exclusive `flock` on
``<dir>/<chain id>-<genesis hash prefix>-<address>.lock``, held for the life of the process
(the OS releases it when the process dies, even by SIGKILL). ``dir`` is
``$VYPERP_LOCK_DIR``, else ``$XDG_RUNTIME_DIR/vyperp``, else the system's temporary
directory. The genesis hash tells chains with one chain id apart, and on a local dev chain
(ids 31337, 1337) so does the node's URL.

It guards one machine. Keepers on several machines need a key each (or a transaction
service in front of one key): nothing on-chain tells them apart.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
from pathlib import Path
from typing import IO

from keeper.errors import CliError

_held: dict[str, IO[str]] = {}  # lock path -> the open file holding it (kept for the process's life)


def lock_dir() -> Path:
    if os.environ.get("VYPERP_LOCK_DIR"):
        return Path(os.environ["VYPERP_LOCK_DIR"])
    if os.environ.get("XDG_RUNTIME_DIR"):
        return Path(os.environ["XDG_RUNTIME_DIR"]) / "vyperp"
    return Path(tempfile.gettempdir()) / "vyperp"


#: local dev chains (anvil, hardhat): many nodes share the chain id and may share a genesis
DEV_CHAIN_IDS = (31337, 1337)


def claim_key(chain_id: int, genesis_hash: str, address: str, rpc_url: str = "") -> Path:
    """Hold the lock of `address` on this chain for this process; a CliError naming the other
    process when one holds it. Claiming again in the same process is a no-op. On a local dev
    chain the node's URL is part of the chain's identity too."""
    d = lock_dir()
    d.mkdir(parents=True, exist_ok=True)
    chain = f"{chain_id}-{genesis_hash.removeprefix('0x')[:16]}"
    if chain_id in DEV_CHAIN_IDS:
        chain += "-" + hashlib.sha256(rpc_url.encode()).hexdigest()[:8]
    path = d / f"{chain}-{address.lower()}.lock"
    if str(path) in _held:
        return path
    f = path.open("a+")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        other = f.read().strip() or "unknown"
        f.close()
        raise CliError(
            f"key {address} is in use by another keeper process on this chain (pid {other}, lock {path}): "
            "run its bots in one process (`keeper run a b c`), or give each process its own key"
        ) from None
    f.truncate(0)
    f.write(str(os.getpid()))
    f.flush()
    _held[str(path)] = f
    return path


def release_all() -> None:
    """Drop every lock this process holds (tests; a process that exits drops them anyway)."""
    for f in _held.values():
        f.close()
    _held.clear()
