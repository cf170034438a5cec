"""The keepers' metrics, written by `prometheus_client`, and a small local HTTP server for
`/health` and `/metrics`.

`MetricPage` is a custom collector: it gathers the values the bots already count into
prometheus_client metric families (read at scrape time, nothing registered globally), and
`prometheus_client.generate_latest` writes the text (format 0.0.4). A counter's name gets
`_total`; None is written as NaN (not known yet).

    page = MetricPage("vyperp_keeper_")
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
from collections.abc import Callable, Iterator, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4 as CONTENT_TYPE
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

Kind = Literal["counter", "gauge", "histogram"]
FAMILIES: dict[str, Callable[..., Metric]] = {
    "counter": CounterMetricFamily,
    "gauge": GaugeMetricFamily,
    "histogram": HistogramMetricFamily,
}


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


def _le(bound: float) -> str:
    """A bucket's `le` label as before prometheus_client: `1`, `0.5`, `+Inf`."""
    if math.isinf(bound):
        return "+Inf"
    return str(int(bound)) if bound.is_integer() else repr(bound)


class MetricPage:
    """Metric families in the order first added (a prometheus_client custom collector)."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix
        self.families: dict[str, Metric] = {}
        self._label_names: dict[str, tuple[str, ...]] = {}

    def add(
        self,
        name: str,
        kind: Kind,
        help_text: str,
        value: float | Histogram | None,
        labels: Mapping[str, str] | None = None,
    ) -> None:
        """One sample of the family `prefix + name` (a counter's with `_total`)."""
        full = self.prefix + name + ("_total" if kind == "counter" and not name.endswith("_total") else "")
        names, values = tuple(labels or {}), [str(v) for v in (labels or {}).values()]
        family: Any = self.families.get(full)  # a Counter-, Gauge- or HistogramMetricFamily
        if family is None:
            family = self.families[full] = FAMILIES[kind](full, help_text, labels=names)
            self._label_names[full] = names
        if family.type != kind:
            raise ValueError(f"metric {full} added as {family.type} and {kind}")
        if self._label_names[full] != names:
            raise ValueError(f"metric {full} added with labels {self._label_names[full]} and {names}")
        if isinstance(value, Histogram):
            buckets, total, _count = value.snapshot()
            family.add_metric(values, [(_le(le), n) for le, n in buckets], total)
        else:
            family.add_metric(values, math.nan if value is None else float(value))

    def collect(self) -> Iterator[Metric]:
        yield from self.families.values()

    def render(self) -> str:
        return generate_latest(self).decode()


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


__all__ = ["CONTENT_TYPE", "Histogram", "MetricPage", "StatusServer"]
