"""The loop every keeper bot shares: step every interval until stopped."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from types import FrameType
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from keeper.chain import ChainClient
    from keeper.metrics import Histogram
    from keeper.txpool import SentTx


class LoopingBot:
    """Base of the keeper bots: subclasses set `name`, `label`, `log`, `dry_run`,
    the counters (`steps`, `skipped`, `failures`, `last_success`,
    `last_error`), an in-progress `_guard` lock, and implement `_step()` (one
    round, run by `run_once()` under the guard), `health()` and `_start_info()`. Exceptions in `stop_on` end the loop (e.g. a replayed
    price feed running out); any other error in a step is logged and
    counted, and the loop goes on.

    Before each round the bot's chain clients settle, re-send or replace
    their stuck transactions (`ChainClient.maintain`); before the first, they
    pick up this key's transactions already in the node's pool (a restart
    after `kill -9`), which `_on_adopted` marks as in flight. `counters`
    (metric name -> (attribute, help)) and `histograms()` are what /metrics
    shows beyond the common fields."""

    name: str = "keeper"
    label: str = "keeper"  # in log messages: "<label> started", "<label> stopped"
    stop_on: tuple[type[BaseException], ...] = ()
    counters: ClassVar[dict[str, tuple[str, str]]] = {}
    _adopted_from: frozenset[str] = frozenset()  # senders whose pool was looked at
    log: logging.Logger
    dry_run: bool
    failures: int
    skipped: int
    steps: int
    last_success: float | None
    last_error: str | None
    _guard: threading.Lock

    def run_once(self, *args: Any, **kwargs: Any) -> Any:
        """One round (`_step`) under the in-progress guard; None when a round
        is already running (another thread, or the loop)."""
        if not self._guard.acquire(blocking=False):
            self.log.warning("step already in progress, skipped")
            return None
        try:
            if not self.dry_run:
                self._maintain_clients()
            return self._step(*args, **kwargs)
        finally:
            self._guard.release()

    def _step(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def chain_clients(self) -> list[ChainClient]:
        """The clients this bot sends with (default: its `client`)."""
        client = getattr(self, "client", None)
        return [client] if client is not None else []

    def histograms(self) -> dict[str, tuple[Histogram, str]]:
        """Metric name -> (histogram, help), for /metrics."""
        return {}

    def _maintain_clients(self) -> None:
        for client in self.chain_clients():
            if client.address not in self._adopted_from:
                adopted = client.adopt_pool()
                self._adopted_from = self._adopted_from | {client.address}
                if adopted:
                    self._on_adopted(adopted)
            client.maintain()

    def _on_adopted(self, adopted: list[SentTx]) -> None:
        """Transactions of this key found pending in the pool at start: nothing to do by default
        (their nonces are taken; the chain shows their effect once mined)."""

    def health(self) -> dict[str, Any]:
        raise NotImplementedError

    def _start_info(self) -> dict[str, Any]:
        return {}

    def _base_health(self) -> dict[str, Any]:
        """The fields every bot's health() starts with."""
        last = self.last_success
        return {
            "bot": self.name,
            "dry_run": self.dry_run,
            "in_progress": self._guard.locked(),
            "steps": self.steps,
            "skipped": self.skipped,
            "failures": self.failures,
            "last_success": datetime.fromtimestamp(last, tz=timezone.utc).isoformat() if last else None,
            "last_success_age_s": round(time.time() - last, 3) if last else None,
            "last_error": self.last_error,
        }

    def run_forever(
        self,
        interval_s: float,
        stop_event: threading.Event | None = None,
        *,
        max_steps: int | None = None,
    ) -> int:
        """Step every `interval_s` until stop_event is set, SIGINT/SIGTERM, a
        `stop_on` exception, or max_steps. Returns the steps run."""
        stop = stop_event or threading.Event()
        restore = install_stop_signals(stop)
        steps = 0
        self.log.info(
            f"{self.label} started",
            extra={"interval_s": interval_s, "dry_run": self.dry_run, **self._start_info()},
        )
        try:
            while not stop.is_set() and (max_steps is None or steps < max_steps):
                started = time.monotonic()
                try:
                    self.run_once()
                except self.stop_on as exc:
                    self.log.info(f"{self.label} stopping", extra={"detail": str(exc)})
                    break
                except Exception as exc:  # keep the keeper alive: log, count, try again next interval
                    self.failures += 1
                    self.last_error = repr(exc)
                    self.log.exception("step failed")
                steps += 1
                if max_steps is not None and steps >= max_steps:
                    break
                stop.wait(max(0.0, interval_s - (time.monotonic() - started)))
        finally:
            restore()
            self.log.info(f"{self.label} stopped", extra={"steps": steps, **self.health()})
        return steps


def install_stop_signals(stop: threading.Event, *, second_interrupts: bool = False) -> Callable[[], None]:
    """SIGINT/SIGTERM set `stop` (main thread only; with `second_interrupts`, a second signal
    raises KeyboardInterrupt: stop now); returns a function restoring the old handlers."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(signum: int, frame: FrameType | None) -> None:
        if second_interrupts and stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)

    return restore
