"""Prometheus text exposition (format 0.0.4) and a small local HTTP server for `/health` and
`/metrics`, with the standard library only.

    page = Exposition("vyperp_keeper_")
    page.add("liquidations", "counter", "liquidations mined", 3, {"bot": "liquidation"})
    page.add("liquidation_latency_seconds", "histogram", "...", histogram, {"bot": "liquidation"})
    text = page.render()

    server = StatusServer(health=lambda: (200, {...}), metrics=page_text_fn, port=0).start()
    server.port  # the port chosen
"""

from __future__ import annotations

import json
import logging
import math
import threading
from bisect import bisect_left
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
Kind = Literal["counter", "gauge", "histogram"]


class Histogram:
    """Counts of observations per upper bound (`le`), their sum and count; thread-safe."""

    def __init__(self, buckets: Sequence[float]) -> None:
        self.bounds = sorted(float(b) for b in buckets)
        self._counts = [0] * (len(self.bounds) + 1)  # the last one: above every bound (+Inf)
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe(self, value: float) -> None:
        with self._lock:
            self._counts[bisect_left(self.bounds, value)] += 1
            self._sum += value

    def snapshot(self) -> tuple[list[tuple[float, int]], float, int]:
        """([(le, cumulative count)] ending with (+Inf, count), sum, count)."""
        with self._lock:
            counts, total = list(self._counts), self._sum
        out, running = [], 0
        for bound, n in zip([*self.bounds, math.inf], counts, strict=True):
            running += n
            out.append((bound, running))
        return out, total, running


@dataclass
class Family:
    name: str
    kind: Kind
    help: str
    samples: list[tuple[dict[str, str], float | Histogram]] = field(default_factory=list)


def format_value(value: float) -> str:
    """A sample value: integers without a fraction, NaN, +Inf, -Inf as Prometheus spells them."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)


def _escape(text: str, *, quotes: bool = True) -> str:
    """Backslash, newline (and in label values the double quote) escaped as the format wants."""
    text = text.replace("\\", "\\\\").replace("\n", "\\n")
    return text.replace('"', '\\"') if quotes else text


def _labels(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(str(v))}"' for k, v in labels.items()) + "}"


class Exposition:
    """Metric families in the order first added, rendered as Prometheus text."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix
        self.families: dict[str, Family] = {}

    def add(
        self,
        name: str,
        kind: Kind,
        help_text: str,
        value: float | Histogram | None,
        labels: Mapping[str, str] | None = None,
    ) -> None:
        """One sample; a counter's name gets `_total`; None is written as NaN (not known yet)."""
        full = self.prefix + name + ("_total" if kind == "counter" and not name.endswith("_total") else "")
        family = self.families.setdefault(full, Family(full, kind, help_text))
        if family.kind != kind:
            raise ValueError(f"metric {full} added as {family.kind} and {kind}")
        family.samples.append((dict(labels or {}), math.nan if value is None else value))

    def render(self) -> str:
        lines: list[str] = []
        for f in self.families.values():
            lines.append(f"# HELP {f.name} {_escape(f.help, quotes=False)}")
            lines.append(f"# TYPE {f.name} {f.kind}")
            for labels, value in f.samples:
                if isinstance(value, Histogram):
                    buckets, total, count = value.snapshot()
                    for le, n in buckets:
                        lines.append(f"{f.name}_bucket{_labels({**labels, 'le': format_value(le)})} {n}")
                    lines.append(f"{f.name}_sum{_labels(labels)} {format_value(total)}")
                    lines.append(f"{f.name}_count{_labels(labels)} {count}")
                else:
                    lines.append(f"{f.name}{_labels(labels)} {format_value(value)}")
        return "\n".join(lines) + "\n"


class StatusServer:
    """`GET /health` (JSON; the status code from `health()`) and `GET /metrics` (Prometheus text)
    on `host:port` (port 0: a free one, see `.port`), served from a daemon thread."""

    def __init__(
        self,
        health: Callable[[], tuple[int, dict[str, Any]]],
        metrics: Callable[[], str],
        *,
        port: int = 0,
        host: str = "127.0.0.1",
        logger: logging.Logger | None = None,
    ) -> None:
        self.health = health
        self.metrics = metrics
        self.host = host
        self.requested_port = port
        self.log = logger or logging.getLogger("keeper.metrics")
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("status server not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> StatusServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                path = self.path.split("?", 1)[0]
                try:
                    if path == "/health":
                        status, body = server.health()
                        self._reply(status, "application/json", json.dumps(body, default=str, indent=1))
                    elif path == "/metrics":
                        self._reply(200, CONTENT_TYPE, server.metrics())
                    else:
                        self._reply(404, "text/plain", "not found: try /health or /metrics\n")
                except Exception as exc:  # a broken page must not kill the server: 500 and a log line
                    server.log.exception("status page failed", extra={"path": path})
                    self._reply(500, "text/plain", f"error: {exc!r}\n")

            def _reply(self, status: int, content_type: str, text: str) -> None:
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base's name)
                server.log.debug("status request", extra={"request": format % args})

        self._server = ThreadingHTTPServer((self.host, self.requested_port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="status-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> StatusServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


__all__ = ["CONTENT_TYPE", "Exposition", "Family", "Histogram", "StatusServer", "format_value"]
