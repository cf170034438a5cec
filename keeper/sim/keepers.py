"""The protocol's keepers as real processes, for the simulation: one ``keeper run <bot>``
process per bot, from one generated YAML config, each behind its own path of the
simulation's :class:`~keeper.sim.gate.RpcGate`.

Per process the environment overrides two settings of the shared file (pydantic-settings:
env beats file): ``VYPERP_RPC_URL`` (the keeper's path of the gate) and
``VYPERP_PRIORITY_FEE_GWEI``. The priority fees differ per keeper so that, when two keepers'
transactions share a block, the node orders them the same way every run: the funding keeper
first (its premium sample reads the book before liquidations change it), then ADL, then
liquidations. Their JSON logs go to ``<out>/logs/<bot>.log``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from eth_utils import function_signature_to_4byte_selector

from keeper.sim.gate import Marker, eth_call_marker, method_marker

BOTS = ("oracle", "funding", "liquidation", "adl")
# gwei; higher first in a shared block
PRIORITY_FEES = {"oracle": 4, "funding": 3, "adl": 2, "liquidation": 1}
STOP_TIMEOUT_S = 10.0


class KeeperDied(RuntimeError):
    """A keeper process exited while the simulation needed it."""


def round_markers(clearinghouse: str) -> dict[str, Marker]:
    """The first request of each bot's round (keeper/bots/*: `_step`), where the gate parks it:
    the oracle reporter and the funding keeper read the latest block's timestamp first; the
    liquidation and ADL keepers refresh their market directory (`market_count()`) first."""
    latest = method_marker("eth_getBlockByNumber", "latest")
    directory = eth_call_marker(clearinghouse, bytes(function_signature_to_4byte_selector("market_count()")))
    return {"oracle": latest, "funding": latest, "liquidation": directory, "adl": directory}


def keeper_config(
    manifest: Path,
    keys: Mapping[str, str | Sequence[str]],
    csv_path: Path,
    *,
    seed: int,
    venue_noise: float,
    interval_s: float = 0.01,
) -> dict[str, Any]:
    """The keepers' YAML settings (keeper/settings.py): the oracle replays `csv_path`."""
    return {
        "manifest": str(manifest),
        "log_level": "INFO",
        "receipt_timeout_s": 60,
        # the simulation mines a keeper's transaction in the next block, however long (in wall time) the
        # step takes: a replacement after a wall-clock timeout would make runs differ
        "replace_after_s": None,
        "shutdown_timeout_s": 5,  # at the end every transaction is mined as sent; if the node is gone, do not wait
        "oracle": {
            "interval_s": interval_s,
            "feed": "csv",
            "csv_path": str(csv_path),
            "seed": seed,
            "venue_noise": venue_noise,
            "reporter_keys": list(keys["oracle"]),
        },
        "funding": {"interval_s": interval_s, "key": keys["funding"]},
        # a liquidation that filled nothing is retried 3 blocks later (the default 10 is a minute
        # of a real chain; here a step of the simulation is a few blocks). The takeover backstop
        # (takeover_subaccount) stays off: with it, runs under heavy CPU load were not
        # reproducible (to investigate; see the issue 6 note)
        "liquidation": {"interval_s": interval_s, "key": keys["liquidation"], "no_fill_backoff_blocks": 3},
        "adl": {"interval_s": interval_s, "key": keys["adl"]},
    }


@dataclass
class KeeperProcesses:
    """The running keeper processes (start with :meth:`start`, always :meth:`stop`)."""

    config: Path
    log_dir: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    exit_codes: dict[str, int] = field(default_factory=dict)
    finished: set[str] = field(default_factory=set)  # bots allowed to have exited (the oracle's feed ran out)

    def start(self, urls: Mapping[str, str], bots: Sequence[str] = BOTS) -> KeeperProcesses:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for bot in bots:
            env = {
                **os.environ,
                "VYPERP_RPC_URL": urls[bot],
                "VYPERP_PRIORITY_FEE_GWEI": str(PRIORITY_FEES[bot]),
            }
            env.pop("VYPERP_CONFIG", None)
            log = (self.log_dir / f"{bot}.log").open("wb")
            try:
                self.procs[bot] = subprocess.Popen(
                    [sys.executable, "-m", "keeper.cli", "run", bot, "--config", str(self.config)],
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # a Ctrl-C in the terminal reaches the simulation, which stops them
                    preexec_fn=_die_with_parent,
                )
            finally:
                log.close()  # the child holds its own descriptor
        return self

    def check_alive(self) -> None:
        for bot, proc in self.procs.items():
            code = proc.poll()
            if code is not None and bot not in self.finished:
                tail = self.log_tail(bot)
                raise KeeperDied(f"keeper {bot} exited with code {code}; its log ends:\n{tail}")

    def stop(self) -> None:
        """SIGTERM every process (a graceful stop: each logs its final health), SIGKILL after 10 s."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for bot, proc in self.procs.items():
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            self.exit_codes[bot] = proc.returncode

    def log_tail(self, bot: str, lines: int = 15) -> str:
        try:
            text = (self.log_dir / f"{bot}.log").read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def log_entries(self, bot: str) -> list[dict[str, Any]]:
        """The bot's JSON log lines, parsed (other lines skipped)."""
        try:
            lines = (self.log_dir / f"{bot}.log").read_text(errors="replace").splitlines()
        except OSError:
            return []
        out = []
        for line in lines:
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    continue
        return out

    def summary(self) -> dict[str, dict[str, Any]]:
        """Per bot: log lines per level, and its last "... stopped" line (its health counters)."""
        out: dict[str, dict[str, Any]] = {}
        for bot in self.procs:
            entries = self.log_entries(bot)
            levels: dict[str, int] = {}
            for e in entries:
                levels[e.get("level", "?")] = levels.get(e.get("level", "?"), 0) + 1
            stopped = next(
                (
                    e
                    for e in reversed(entries)
                    if e.get("logger") == f"keeper.{bot}" and str(e.get("msg", "")).endswith(" stopped")
                ),
                {},
            )
            out[bot] = {"levels": levels, "final": stopped, "exit_code": self.exit_codes.get(bot)}
        return out


def _die_with_parent() -> None:
    """In the child, before exec (Linux): SIGTERM when the simulation dies, even by SIGKILL."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the simulation's own teardown has to do
        pass


def write_config(path: Path, config: Mapping[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "# generated by scripts/simulate.py: the keepers of the simulation (keeper run <bot> --config this)\n"
        + yaml.safe_dump(dict(config), sort_keys=False)
    )
    return path


__all__ = [
    "BOTS",
    "PRIORITY_FEES",
    "KeeperDied",
    "KeeperProcesses",
    "keeper_config",
    "round_markers",
    "write_config",
]
