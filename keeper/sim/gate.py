"""A JSON-RPC gate in front of the node for the keeper processes of a simulation.

The keepers run as real, unmodified processes (``keeper run <bot>``) and poll
the chain on their own clocks. For a simulation to be reproducible, each
keeper must react to exactly the blocks the simulation mines, never to a
block mined while it is half-way through a round. The gate gives the
simulation that control without touching the keepers:

* each keeper talks to its own path of the gate (``http://127.0.0.1:PORT/<name>``),
  which forwards every request to the node;
* the first request of a keeper's round (its *marker*, e.g. the funding
  keeper's ``eth_getBlockByNumber("latest")``) is held (*parked*) until the
  simulation releases that keeper, after it mined a new block;
* a keeper whose latest request was a receipt poll answered ``null`` after the
  latest block is *blocked*: it waits for a transaction only the next block
  can bring.

When every keeper is parked or blocked, nothing the keepers do can change
before the simulation mines again (:meth:`RpcGate.wait_settled`), so the
blocks' contents depend only on the chain state, not on timing. The gate
also counts each keeper's requests and raw transactions (for the report
and the benchmark). :meth:`RpcGate.open` turns it into a plain proxy
(shutdown: parked keepers go on and see their stop signal).
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

Marker = Callable[[dict[str, Any]], bool]


def _requests(payload: Any) -> list[dict[str, Any]]:
    if isinstance(payload, list):
        return [p for p in payload if isinstance(p, dict)]
    return [payload] if isinstance(payload, dict) else []


def method_marker(method: str, *first_params: Any) -> Marker:
    """A marker: a single request of `method` whose params start with `first_params`."""

    def is_marker(request: dict[str, Any]) -> bool:
        params = request.get("params") or []
        return request.get("method") == method and list(params[: len(first_params)]) == list(first_params)

    return is_marker


def eth_call_marker(to: str, selector: bytes) -> Marker:
    """A marker: a single `eth_call` to `to` whose data starts with `selector` (a view's 4 bytes)."""
    to, prefix = to.lower(), "0x" + selector.hex()

    def is_marker(request: dict[str, Any]) -> bool:
        params = request.get("params") or [{}]
        call = params[0] if isinstance(params[0], dict) else {}
        data = str(call.get("data") or call.get("input") or "")
        return (
            request.get("method") == "eth_call"
            and str(call.get("to", "")).lower() == to
            and data.lower().startswith(prefix)
        )

    return is_marker


@dataclass
class KeeperLane:
    """What the gate knows of one keeper."""

    name: str
    marker: Marker
    parked: bool = False
    active: int = 0  # requests being forwarded
    last_null_receipt_epoch: int = -1  # epoch of the latest request, when it was a receipt poll answered null
    release_token: int = 0
    requests: int = 0
    transactions: int = 0
    rounds: int = 0
    sent_at: list[float] = field(default_factory=list)  # wall time of every raw transaction
    hashes: list[str] = field(default_factory=list)  # of every raw transaction the node accepted


class RpcGate:
    """The gate (see the module docstring). Use as a context manager or start()/stop()."""

    def __init__(self, upstream: str, markers: Mapping[str, Marker]) -> None:
        self.upstream = upstream
        parts = urlsplit(upstream)
        self._host, self._port, self._path = parts.hostname or "127.0.0.1", parts.port, parts.path or "/"
        self.lanes = {name: KeeperLane(name, marker) for name, marker in markers.items()}
        self.epoch = 0
        self.gated = True
        self._cond = threading.Condition()
        self._local = threading.local()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ lifecycle

    def start(self) -> RpcGate:
        gate = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the keepers' HTTP sessions expect
            disable_nagle_algorithm = True  # else every answer waits for a delayed ACK (40 ms)

            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    answer = gate._handle(self.path.strip("/"), body)
                except (OSError, http.client.HTTPException) as exc:
                    self.send_error(502, f"upstream: {exc}")
                    return
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                except OSError:  # the keeper gave up on this request (its timeout): nothing to answer
                    pass

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="rpc-gate", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.open()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> RpcGate:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def url(self, name: str) -> str:
        if self._server is None:
            raise RuntimeError("the gate is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}/{name}"

    # ------------------------------------------------------------ control (the simulation's side)

    def new_block(self) -> None:
        """The simulation mined: receipt polls answered before this are stale."""
        with self._cond:
            self.epoch += 1

    def release(self, names: Iterable[str]) -> None:
        """Let the parked keepers among `names` go on (they start a round on the latest block).
        A released keeper counts as busy at once, until it parks again or blocks."""
        with self._cond:
            for name in names:
                lane = self.lanes[name]
                if lane.parked:
                    lane.release_token += 1
                    lane.parked = False
                    lane.last_null_receipt_epoch = -1
            self._cond.notify_all()

    def open(self) -> None:
        """No more parking: a plain proxy from now on."""
        with self._cond:
            self.gated = False
            self._cond.notify_all()

    def settled(self, name: str) -> bool:
        lane = self.lanes[name]
        return lane.parked or (lane.active == 0 and lane.last_null_receipt_epoch == self.epoch)

    def parked(self, names: Iterable[str]) -> bool:
        with self._cond:
            return all(self.lanes[n].parked for n in names)

    def wait_settled(
        self,
        names: Iterable[str],
        timeout_s: float,
        alive: Callable[[], None] | None = None,
        *,
        parked_only: bool = False,
    ) -> bool:
        """Wait until every keeper of `names` is parked or blocked (`parked_only`: parked); False
        on timeout. `alive` is called now and then (it raises when a keeper process died)."""
        names = list(names)
        deadline = time.monotonic() + timeout_s
        done = (lambda n: self.lanes[n].parked) if parked_only else self.settled
        with self._cond:
            while not all(done(n) for n in names):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.25))
                if alive is not None:
                    self._cond.release()
                    try:
                        alive()
                    finally:
                        self._cond.acquire()
        return True

    # ------------------------------------------------------------ the proxy

    def _handle(self, name: str, body: bytes) -> bytes:
        lane = self.lanes.get(name)
        if lane is None:
            return self._forward(body)
        try:
            payload = json.loads(body)
        except ValueError:
            return self._forward(body)
        requests = _requests(payload)
        with self._cond:
            lane.requests += 1
            if self.gated and isinstance(payload, dict) and lane.marker(payload):
                self._park(lane)
                lane.rounds += 1
            lane.active += 1
        try:
            answer = self._forward(body)
        finally:
            with self._cond:
                lane.active -= 1
        methods = {r.get("method") for r in requests}
        null_receipt = False
        accepted: list[str] = []
        if methods & {"eth_getTransactionReceipt", "eth_sendRawTransaction"}:
            try:
                answers = _requests(json.loads(answer))
            except ValueError:
                answers = []
            if methods == {"eth_getTransactionReceipt"}:
                null_receipt = any(a.get("result") is None for a in answers)
            by_id = {a.get("id"): a for a in answers}
            for r in requests:
                got = by_id.get(r.get("id"), {}).get("result")
                if r.get("method") == "eth_sendRawTransaction" and isinstance(got, str):
                    accepted.append(got)
        with self._cond:
            lane.last_null_receipt_epoch = self.epoch if null_receipt else -1
            if accepted:
                lane.transactions += len(accepted)
                lane.sent_at.extend([time.monotonic()] * len(accepted))
                lane.hashes.extend(accepted)
            self._cond.notify_all()
        return answer

    def _park(self, lane: KeeperLane) -> None:
        """Hold the caller (a keeper's marker request) until released or the gate opens. Under _cond."""
        token = lane.release_token
        lane.parked = True
        self._cond.notify_all()
        try:
            while self.gated and lane.release_token == token:
                self._cond.wait()
        finally:
            lane.parked = False  # (release() cleared it already)

    def _forward(self, body: bytes) -> bytes:
        """POST `body` to the node on this thread's keep-alive connection."""
        for attempt in (1, 2):
            conn = getattr(self._local, "conn", None)
            if conn is None:
                conn = http.client.HTTPConnection(self._host, self._port, timeout=60)
                conn.connect()
                conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self._local.conn = conn
            try:
                conn.request("POST", self._path, body=body, headers={"Content-Type": "application/json"})
                return conn.getresponse().read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                conn.close()
                self._local.conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


__all__ = ["KeeperLane", "Marker", "RpcGate", "eth_call_marker", "method_marker"]
