"""Keepers as a service: the supervisor starts several bots and stops them (signal, --steps),
/health answers 200 or 503, /metrics is Prometheus text; `keeper run` with every bot at once."""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from keeper.anvil import Anvil, free_port
from keeper.bots.loop import LoopingBot
from keeper.cli import main
from keeper.deploy import (
    MANIFEST_ABIS,
    DeployConfig,
    MarketConfig,
    Web3Backend,
    abi_path,
    deploy_protocol,
    write_manifest,
)
from keeper.metrics import Histogram
from keeper.retry import connect
from keeper.service import BotRun, Supervisor, bot_problems, collect_metrics


class Ticker(LoopingBot):
    """A bot without a chain: counts its rounds."""

    counters = {"ticks": ("ticks", "rounds ticked")}

    def __init__(self, name: str, client: Any = None) -> None:
        self.name = self.label = name
        self.log = logging.getLogger(f"test.{name}")
        self.dry_run = False
        self._guard = threading.Lock()
        self.steps = self.skipped = self.failures = self.ticks = 0
        self.last_success: float | None = None
        self.last_error: str | None = None
        self.client = client
        self.latency = Histogram([1, 2])
        self.broken = False  # rounds fail

    def _step(self) -> dict[str, int]:
        self.steps += 1
        if self.broken:
            self.failures += 1
            return {"failed": 1}
        self.ticks += 1
        self.last_success = time.time()
        return {"failed": 0}

    def health(self) -> dict[str, Any]:
        return {**self._base_health(), "ticks": self.ticks}

    def histograms(self) -> dict[str, tuple[Histogram, str]]:
        return {"tick_latency_seconds": (self.latency, "tick latency")}


class FakeClient:
    """What the supervisor and /metrics read of a ChainClient."""

    address = "0x" + "ab" * 20
    stats = {"sent": 3, "failed": 1, "replaced": 2, "resent": 0, "timeouts": 1}
    known_nonce = 7
    pending_count = 1
    oldest_pending_s: float | None = 0.5
    last_base_fee = 1_000_000_000
    last_max_fee = 2_100_000_000
    last_priority_fee = None

    def __init__(self) -> None:
        self.drained: list[float] = []

    def adopt_pool(self) -> list[Any]:
        return []

    def maintain(self) -> int:
        return self.pending_count

    def drain(self, timeout_s: float) -> int:
        self.drained.append(timeout_s)
        return 0


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.fixture
def running(anvil_node: Anvil) -> Iterator[tuple[Supervisor, Ticker, FakeClient]]:
    """Two tickers under a supervisor in a background thread (no signals there), status server on."""
    client = FakeClient()
    ticker = Ticker("ticker", client)
    sup = Supervisor(
        [BotRun(ticker, 0.02), BotRun(Ticker("tocker"), 0.02)],
        rpc_url=anvil_node.url,
        health_max_age_s=1,
        shutdown_timeout_s=2,
    )
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(sup.run(metrics_port=0)))
    thread.start()
    deadline = time.monotonic() + 10
    while (sup.server is None or ticker.steps == 0) and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        yield sup, ticker, client
    finally:
        sup.stop.set()
        thread.join(timeout=10)
    assert result == [0] and client.drained == [pytest.approx(2, abs=0.5)]


# ---------------------------------------------------------------- health verdicts


def test_bot_problems__fresh__stale__never__stopped__stuck_tx() -> None:
    fresh = {"last_success_age_s": 0.5}
    assert bot_problems(fresh, running=True, max_age_s=5, uptime_s=100) == []
    assert bot_problems({"last_success_age_s": 9}, running=True, max_age_s=5, uptime_s=100) == [
        "last success 9 s ago (max 5 s)"
    ]
    assert bot_problems({"last_success_age_s": None}, running=True, max_age_s=5, uptime_s=3) == []
    assert bot_problems({"last_success_age_s": None}, running=True, max_age_s=5, uptime_s=6) == [
        "no successful step in 6 s"
    ]
    assert bot_problems(fresh, running=False, max_age_s=5, uptime_s=100) == ["not running"]
    assert bot_problems(fresh, running=True, max_age_s=5, uptime_s=100, oldest_pending_s=8) == [
        "a transaction pending for 8 s (max 5 s)"
    ]


# ---------------------------------------------------------------- supervisor and status server


def test_status_server__health_200__then_503_when_a_bot_is_stale(
    running: tuple[Supervisor, Ticker, FakeClient],
) -> None:
    sup, ticker, _ = running
    assert sup.server is not None
    status, body = get(f"{sup.server.url}/health")
    health = json.loads(body)
    assert status == 200 and health["status"] == "ok", body
    assert set(health["bots"]) == {"ticker", "tocker"} and health["bots"]["ticker"]["healthy"]
    assert health["node"]["reachable"] and health["process"]["pid"] == os.getpid()
    assert get(f"{sup.server.url}/nothing")[0] == 404

    ticker.broken = True
    ticker.last_success = time.time() - 30  # its rounds have been failing for 30 s
    status, body = get(f"{sup.server.url}/health")
    health = json.loads(body)
    assert status == 503 and health["status"] == "unhealthy"
    assert health["bots"]["ticker"]["problems"] == ["last success 30 s ago (max 1 s)"]
    assert health["bots"]["tocker"]["healthy"]


def test_health__node_unreachable__503() -> None:
    sup = Supervisor([BotRun(Ticker("ticker"), 1)], rpc_url=f"http://127.0.0.1:{free_port()}")
    status, body = sup.health_report()
    assert status == 503 and not body["node"]["reachable"]
    assert body["bots"]["ticker"]["problems"] == ["not running"]  # not started


def test_status_server__metrics__prometheus_text(running: tuple[Supervisor, Ticker, FakeClient]) -> None:
    sup, ticker, client = running
    assert sup.server is not None
    ticker.latency.observe(1.5)
    with urllib.request.urlopen(f"{sup.server.url}/metrics", timeout=10) as r:
        assert r.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        text = r.read().decode()
    lines = text.splitlines()
    assert "# TYPE vyperp_keeper_steps_total counter" in lines
    assert any(x.startswith('vyperp_keeper_steps_total{bot="tocker"} ') for x in lines)
    assert 'vyperp_keeper_healthy{bot="ticker"} 1.0' in lines
    assert "# TYPE vyperp_keeper_ticks_total counter" in lines
    assert 'vyperp_keeper_tick_latency_seconds_bucket{bot="ticker",le="1"} 0.0' in lines
    assert 'vyperp_keeper_tick_latency_seconds_bucket{bot="ticker",le="2"} 1.0' in lines
    assert 'vyperp_keeper_tick_latency_seconds_count{bot="ticker"} 1.0' in lines
    who = f'bot="ticker",sender="{client.address}"'
    assert f"vyperp_keeper_tx_replaced_total{{{who}}} 2.0" in lines
    assert f"vyperp_keeper_nonce{{{who}}} 7.0" in lines
    assert f"vyperp_keeper_pending_txs{{{who}}} 1.0" in lines
    assert f"vyperp_keeper_base_fee_wei{{{who}}} 1e+09" in lines
    assert f"vyperp_keeper_max_priority_fee_per_gas_wei{{{who}}} NaN" in lines  # not sent yet
    assert not any("tocker" in x and "sender=" in x for x in lines)  # no client, no tx metrics


def test_collect_metrics__every_family_typed_once() -> None:
    runs = [BotRun(Ticker("a", FakeClient()), 1), BotRun(Ticker("b", FakeClient()), 1)]
    verdicts = {r.bot.name: (r.bot.health(), []) for r in runs}
    text = collect_metrics(runs, verdicts, started=1_700_000_000.0).render()
    types = [x.split()[2] for x in text.splitlines() if x.startswith("# TYPE")]
    assert len(types) == len(set(types))
    assert "vyperp_keeper_process_start_time_seconds 1.7e+09" in text.splitlines()


def test_supervisor__sigterm__every_bot_finishes_its_step__exit_0() -> None:
    bots = [Ticker("one"), Ticker("two"), Ticker("three")]
    sup = Supervisor([BotRun(b, 0.01) for b in bots], rpc_url="http://127.0.0.1:1", shutdown_timeout_s=1)
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGTERM))
    timer.start()
    previous = signal.getsignal(signal.SIGTERM)
    try:
        assert sup.run() == 0
    finally:
        timer.cancel()
    assert signal.getsignal(signal.SIGTERM) is previous  # handlers restored
    assert sup.stop.is_set() and all(b.steps > 0 and not b._guard.locked() for b in bots)
    assert not any(t.is_alive() for t in sup._threads.values())


def test_supervisor__max_steps__stops_by_itself() -> None:
    bots = [Ticker("one"), Ticker("two")]
    assert Supervisor([BotRun(b, 0.001) for b in bots], rpc_url="http://x", max_steps=3).run() == 0
    assert [b.steps for b in bots] == [3, 3]


def test_supervisor__one_run_per_bot() -> None:
    with pytest.raises(ValueError, match="one run per bot"):
        Supervisor([BotRun(Ticker("one"), 1), BotRun(Ticker("one"), 1)], rpc_url="http://x")


# ---------------------------------------------------------------- keeper run, every bot at once


@pytest.fixture
def deployed(node: Anvil, tmp_path: Path) -> tuple[Path, Any]:
    """The protocol (one market) on the session anvil, and its manifest."""
    backend = Web3Backend(connect(node.url), node.private_keys[:1])
    market = MarketConfig("SOL-PERP", Decimal("100"), funding_interval=60, sample_interval=10)
    protocol = deploy_protocol(backend, DeployConfig(markets=[market]))
    return write_manifest(protocol.manifest, tmp_path / "m.json"), protocol


def test_manifest__abis_beside_it__web3_reads_the_protocol_with_them(
    node: Anvil, deployed: tuple[Path, Any]
) -> None:
    """An integrator needs no build: the ABIs of every contract the manifest names are in
    `<manifest>.abi.json` (docs/APE.md), e.g. for web3.py."""
    manifest_path, protocol = deployed
    abis = json.loads(abi_path(manifest_path).read_text())
    assert set(abis) == set(MANIFEST_ABIS)
    manifest = json.loads(manifest_path.read_text())
    w3 = connect(node.url)
    ch = w3.eth.contract(address=manifest["clearinghouse"], abi=abis["Clearinghouse"])
    market = w3.eth.contract(address=manifest["markets"]["SOL-PERP"]["market"], abi=abis["PerpMarket"])
    assert ch.functions.market_index(market.address).call() == 1
    assert (
        market.functions.TICK_SIZE().call()
        == protocol.markets["SOL-PERP"].market.functions.TICK_SIZE().call()
    )


def test_cli__run_four_bots_in_one_process__steps__exit_0(
    node: Anvil, deployed: tuple[Path, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest, protocol = deployed
    k = node.private_keys
    config = tmp_path / "keeper.yaml"
    config.write_text(
        f"rpc_url: {node.url}\nmanifest: {manifest}\nmetrics_port: 0\n"
        f"oracle: {{interval_s: 0.05, reporter_keys: ['{k[0]}']}}\n"
        f"funding: {{interval_s: 0.05, key: '{k[1]}'}}\n"
        f"liquidation: {{interval_s: 0.05, key: '{k[2]}'}}\n"
        f"adl: {{interval_s: 0.05, key: '{k[3]}'}}\n"
    )
    assert (
        main(["run", "oracle", "funding", "liquidation", "adl", "--config", str(config), "--steps", "2"]) == 0
    )
    logs = [json.loads(x) for x in capsys.readouterr().err.splitlines() if x.startswith("{")]
    stopped = {e["bot"]: e for e in logs if e["msg"].endswith("stopped") and "bot" in e}
    assert set(stopped) == {"oracle", "funding", "liquidation", "adl"}
    assert all(e["steps"] == 2 and e["failures"] == 0 for e in stopped.values())
    assert next(e for e in logs if e["msg"] == "status server listening")["port"] > 0
    assert next(e for e in logs if e["msg"] == "keepers stopped")["pending_txs_left"] == 0
    md = protocol.markets["SOL-PERP"]
    assert md.oracle.functions.index_status().call()[0]  # the oracle pushed
    assert md.funding.functions.sample_count().call() == 1  # the funding keeper sampled
    senders = {e.get("sender") for e in logs if e["msg"] == "tx sent"}
    assert len(senders) == 2  # oracle and funding, each with its own key
