"""Keepers as a service: `keeper run oracle funding liquidation adl` runs the chosen bots in one
process, one thread each (each bot with its own web3 connection and key), with `/health` and
`/metrics` on a local port.

Shutdown (SIGINT/SIGTERM): every bot finishes its current step, then the transactions still
pending are waited for (at most `shutdown_timeout_s`, stuck ones replaced), and the process
exits 0. A second signal stops at once (exit 130).

`/health` is HTTP 200 when every bot is healthy and the node answers `eth_blockNumber`, else
503: a bot is unhealthy when it stopped while the service runs, when its last successful step
is older than `max(health_max_age_s, 3 x its interval)` (or it has had none for that long since
start), or when a transaction of its has been pending for longer than that. The JSON body has each bot's `health()` with its verdict, the node and the
process. `/metrics` is the Prometheus text format (written by prometheus_client), names prefixed
`vyperp_keeper_`, the bot as a label (see `collect_metrics`).
"""

from __future__ import annotations

import json
import logging
import os
import platform
import threading
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from keeper.bots.loop import LoopingBot, install_stop_signals
from keeper.metrics import MetricPage, StatusServer

METRIC_PREFIX = "vyperp_keeper_"
NODE_TIMEOUT_S = 2.0


@dataclass
class BotRun:
    """A bot and the seconds between its rounds, as `keeper run` starts it."""

    bot: LoopingBot
    interval_s: float


# ---------------------------------------------------------------- pure logic


def bot_problems(
    health: dict[str, Any],
    *,
    running: bool,
    max_age_s: float,
    uptime_s: float,
    oldest_pending_s: float | None = None,
) -> list[str]:
    """Why a bot is unhealthy (empty: healthy), from its `health()` dict: stopped, no successful
    step for `max_age_s`, or a transaction of its pending for longer than that."""
    problems = [] if running else ["not running"]
    age = health.get("last_success_age_s")
    if age is None and uptime_s > max_age_s:
        problems.append(f"no successful step in {uptime_s:.0f} s")
    elif age is not None and age > max_age_s:
        problems.append(f"last success {age:.0f} s ago (max {max_age_s:.0f} s)")
    if oldest_pending_s is not None and oldest_pending_s > max_age_s:
        problems.append(f"a transaction pending for {oldest_pending_s:.0f} s (max {max_age_s:.0f} s)")
    return problems


def node_status(rpc_url: str, timeout_s: float = NODE_TIMEOUT_S) -> dict[str, Any]:
    """{"reachable": bool, "block": n} or {"reachable": False, "error": ...}: one eth_blockNumber."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []}).encode()
    request = urllib.request.Request(rpc_url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            answer = json.loads(response.read())
        return {"reachable": True, "block": int(answer["result"], 16)}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return {"reachable": False, "error": repr(exc)}


def read_health(bot: LoopingBot) -> dict[str, Any]:
    """`bot.health()`, read from another thread: retried if the bot changed a dict meanwhile."""
    for _ in range(5):
        try:
            return bot.health()
        except RuntimeError:  # "dictionary changed size during iteration"
            time.sleep(0.001)
    return bot.health()


# ---------------------------------------------------------------- supervisor


class Supervisor:
    """Runs bots in threads until a signal (or `stop`), each `max_steps` rounds at most."""

    def __init__(
        self,
        runs: Sequence[BotRun],
        *,
        rpc_url: str,
        max_steps: int | None = None,
        health_max_age_s: float = 60.0,
        shutdown_timeout_s: float = 30.0,
        logger: logging.Logger | None = None,
    ) -> None:
        names = [r.bot.name for r in runs]
        if not runs or len(set(names)) != len(names):
            raise ValueError(f"one run per bot, at least one: {names}")
        self.runs = list(runs)
        self.rpc_url = rpc_url
        self.max_steps = max_steps
        self.health_max_age_s = health_max_age_s
        self.shutdown_timeout_s = shutdown_timeout_s
        self.log = logger or logging.getLogger("keeper.service")
        self.stop = threading.Event()
        self.started = time.time()
        self.server: StatusServer | None = None
        self._threads: dict[str, threading.Thread] = {}
        self._crashed: dict[str, str] = {}

    # ------------------------------------------------------------ running

    def run(self, *, metrics_port: int | None = None) -> int:
        """Start the bots (and the status server when `metrics_port` is not None), wait until
        they end or are stopped, wait for their pending transactions. 0, or 1 if a bot crashed."""
        restore = install_stop_signals(self.stop, second_interrupts=True)
        try:
            if metrics_port is not None:
                self.server = StatusServer(
                    self.health_report, self.metrics_text, port=metrics_port, logger=self.log
                ).start()
                self.log.info(
                    "status server listening", extra={"url": self.server.url, "port": self.server.port}
                )
            for r in self.runs:
                thread = threading.Thread(
                    target=self._run_bot, args=(r,), name=f"bot-{r.bot.name}", daemon=True
                )
                self._threads[r.bot.name] = thread
                thread.start()
            self.log.info("keepers started", extra={"bots": list(self._threads), "pid": os.getpid()})
            while any(t.is_alive() for t in self._threads.values()):
                for t in self._threads.values():
                    t.join(timeout=0.2)  # a timeout: signals reach the main thread meanwhile
            if self.stop.is_set():
                self.log.info("stopping: every bot finished its step")
            left = self._drain()
        finally:
            restore()
            if self.server is not None:
                self.server.stop()
        self.log.info(
            "keepers stopped",
            extra={"bots": list(self._threads), "crashed": self._crashed, "pending_txs_left": left},
        )
        return 1 if self._crashed else 0

    def _run_bot(self, r: BotRun) -> None:
        try:
            r.bot.run_forever(r.interval_s, self.stop, max_steps=self.max_steps)
        except BaseException as exc:  # run_forever survives step errors; anything else ends the service
            self._crashed[r.bot.name] = repr(exc)
            self.log.exception("bot crashed, stopping the others", extra={"bot": r.bot.name})
            self.stop.set()

    def _drain(self) -> int:
        """Wait (bounded, in all) for every bot's transactions still pending; returns how many are left."""
        deadline = time.monotonic() + self.shutdown_timeout_s
        left = 0
        for r in self.runs:
            if r.bot.dry_run:
                continue
            for client in r.bot.chain_clients():
                try:
                    left += client.drain(max(0.0, deadline - time.monotonic()))
                except Exception as exc:  # the node may be gone: say so, exit all the same
                    left += client.pending_count
                    self.log.warning(
                        "could not wait for pending txs", extra={"bot": r.bot.name, "error": repr(exc)}
                    )
        return left

    # ------------------------------------------------------------ status

    def _bot_verdicts(self) -> dict[str, tuple[dict[str, Any], list[str]]]:
        uptime = time.time() - self.started
        out = {}
        for r in self.runs:
            health = read_health(r.bot)
            thread = self._threads.get(r.bot.name)
            running = thread is not None and thread.is_alive()
            max_age = max(self.health_max_age_s, 3 * r.interval_s)
            ages = [a for c in r.bot.chain_clients() if (a := c.oldest_pending_s) is not None]
            problems = bot_problems(
                health,
                running=running,
                max_age_s=max_age,
                uptime_s=uptime,
                oldest_pending_s=max(ages, default=None),
            )
            out[r.bot.name] = (health, problems)
        return out

    def health_report(self) -> tuple[int, dict[str, Any]]:
        """(HTTP status, JSON body) of /health: 200 when every bot is healthy and the node answers."""
        node = {"url": self.rpc_url, **node_status(self.rpc_url)}
        bots = {}
        for name, (health, problems) in self._bot_verdicts().items():
            bots[name] = {**health, "healthy": not problems, "problems": problems}
        healthy = node["reachable"] and all(b["healthy"] for b in bots.values())
        body = {
            "status": "ok" if healthy else "unhealthy",
            "node": node,
            "process": self.process_info(),
            "bots": bots,
        }
        return (200 if healthy else 503), body

    def process_info(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "started_at": datetime.fromtimestamp(self.started, tz=timezone.utc).isoformat(),
            "uptime_s": round(time.time() - self.started, 3),
            "python": platform.python_version(),
            "threads": threading.active_count(),
            "stopping": self.stop.is_set(),
        }

    def metrics_text(self) -> str:
        return collect_metrics(self.runs, self._bot_verdicts(), started=self.started).render()


def collect_metrics(
    runs: Sequence[BotRun],
    verdicts: dict[str, tuple[dict[str, Any], list[str]]],
    *,
    started: float,
) -> MetricPage:
    """Every metric of the bots and their chain clients (no RPC: what the bots already know), as a
    prometheus_client collector."""
    page = MetricPage(METRIC_PREFIX)
    page.add("process_start_time_seconds", "gauge", "start time of the keeper process, unix seconds", started)
    for r in runs:
        bot = r.bot
        health, problems = verdicts[bot.name]
        b = {"bot": bot.name}
        page.add("healthy", "gauge", "1 when the bot is healthy (see /health)", int(not problems), b)
        page.add("steps", "counter", "rounds run", health.get("steps", 0), b)
        page.add(
            "step_failures",
            "counter",
            "actions or reads that failed, steps that raised",
            health.get("failures", 0),
            b,
        )
        page.add(
            "skipped",
            "counter",
            "actions skipped (done by someone else, in flight, ...)",
            health.get("skipped", 0),
            b,
        )
        page.add(
            "last_success_age_seconds",
            "gauge",
            "seconds since the last round without failure",
            health.get("last_success_age_s"),
            b,
        )
        page.add("in_progress", "gauge", "1 while a round runs", int(bool(health.get("in_progress"))), b)
        for metric, (attribute, help_text) in bot.counters.items():
            page.add(metric, "counter", help_text, getattr(bot, attribute), b)
        for metric, (histogram, help_text) in bot.histograms().items():
            page.add(metric, "histogram", help_text, histogram, b)
        for client in bot.chain_clients():
            c = {**b, "sender": client.address}
            _client_metrics(page, client, c)
    return page


def _client_metrics(page: MetricPage, client: Any, labels: dict[str, str]) -> None:
    stats = client.stats
    page.add(
        "tx_sent",
        "counter",
        "transactions the node accepted (replacements not counted)",
        stats["sent"],
        labels,
    )
    page.add(
        "tx_failed",
        "counter",
        "transactions refused by the node or reverted on-chain",
        stats["failed"],
        labels,
    )
    page.add(
        "tx_replaced", "counter", "stuck transactions replaced with bumped fees", stats["replaced"], labels
    )
    page.add(
        "tx_resent", "counter", "transactions sent again unchanged (fee cap reached)", stats["resent"], labels
    )
    page.add("tx_timeouts", "counter", "waits for a receipt that timed out", stats["timeouts"], labels)
    page.add("nonce", "gauge", "the nonce the next transaction will use", client.known_nonce, labels)
    page.add(
        "pending_txs", "gauge", "transactions sent whose nonce is not mined yet", client.pending_count, labels
    )
    page.add(
        "base_fee_wei",
        "gauge",
        "the next block's base fee at the latest fee read",
        client.last_base_fee,
        labels,
    )
    page.add(
        "max_fee_per_gas_wei",
        "gauge",
        "maxFeePerGas of the latest transaction sent",
        client.last_max_fee,
        labels,
    )
    page.add(
        "max_priority_fee_per_gas_wei",
        "gauge",
        "maxPriorityFeePerGas of the latest transaction sent",
        client.last_priority_fee,
        labels,
    )


__all__ = [
    "METRIC_PREFIX",
    "BotRun",
    "Supervisor",
    "bot_problems",
    "collect_metrics",
    "node_status",
    "read_health",
]
