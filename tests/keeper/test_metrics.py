"""The Prometheus text keeper.metrics has prometheus_client write, and the status server's routes."""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from keeper.metrics import Histogram, MetricPage, StatusServer


def test_metric_page__counter_gauge_histogram__exact_text() -> None:
    page = MetricPage("vyperp_keeper_")
    page.add("liquidations", "counter", "liquidations mined", 3, {"bot": "liquidation"})
    page.add("liquidations", "counter", "liquidations mined", 0, {"bot": "other"})
    page.add(
        "last_success_age_seconds", "gauge", "seconds since\nthe last \\ success", None, {"bot": 'a"b\\c\nd'}
    )
    latency = Histogram([1, 5])
    for v in (0.5, 1, 7):
        latency.observe(v)
    page.add("latency_seconds", "histogram", "latency", latency, {"bot": "liquidation"})
    page.add("start_time_seconds", "gauge", "start", 1.5)
    assert page.render() == (
        "# HELP vyperp_keeper_liquidations_total liquidations mined\n"
        "# TYPE vyperp_keeper_liquidations_total counter\n"
        'vyperp_keeper_liquidations_total{bot="liquidation"} 3.0\n'
        'vyperp_keeper_liquidations_total{bot="other"} 0.0\n'
        "# HELP vyperp_keeper_last_success_age_seconds seconds since\\nthe last \\\\ success\n"
        "# TYPE vyperp_keeper_last_success_age_seconds gauge\n"
        'vyperp_keeper_last_success_age_seconds{bot="a\\"b\\\\c\\nd"} NaN\n'
        "# HELP vyperp_keeper_latency_seconds latency\n"
        "# TYPE vyperp_keeper_latency_seconds histogram\n"
        'vyperp_keeper_latency_seconds_bucket{bot="liquidation",le="1"} 2.0\n'
        'vyperp_keeper_latency_seconds_bucket{bot="liquidation",le="5"} 2.0\n'
        'vyperp_keeper_latency_seconds_bucket{bot="liquidation",le="+Inf"} 3.0\n'
        'vyperp_keeper_latency_seconds_count{bot="liquidation"} 3.0\n'
        'vyperp_keeper_latency_seconds_sum{bot="liquidation"} 8.5\n'
        "# HELP vyperp_keeper_start_time_seconds start\n"
        "# TYPE vyperp_keeper_start_time_seconds gauge\n"
        "vyperp_keeper_start_time_seconds 1.5\n"
    )


def test_metric_page__parses_back__names_types_labels_values() -> None:
    page = MetricPage("vyperp_keeper_")
    page.add("steps", "counter", "rounds run", 5, {"bot": "oracle"})
    page.add("nonce", "gauge", "next nonce", 7, {"bot": "oracle", "sender": "0xab"})
    latency = Histogram([0.5, 1])
    latency.observe(0.7)
    page.add("latency_seconds", "histogram", "latency", latency, {"bot": "oracle"})
    families = {f.name: f for f in text_string_to_metric_families(page.render())}
    assert {n: f.type for n, f in families.items()} == {
        "vyperp_keeper_steps": "counter",
        "vyperp_keeper_nonce": "gauge",
        "vyperp_keeper_latency_seconds": "histogram",
    }
    assert [(s.name, s.labels, s.value) for s in families["vyperp_keeper_steps"].samples] == [
        ("vyperp_keeper_steps_total", {"bot": "oracle"}, 5)
    ]
    assert families["vyperp_keeper_nonce"].samples[0].labels == {"bot": "oracle", "sender": "0xab"}
    buckets = [(s.labels["le"], s.value) for s in families["vyperp_keeper_latency_seconds"].samples[:3]]
    assert buckets == [("0.5", 0), ("1", 1), ("+Inf", 1)]


def test_metric_page__one_name_one_type__one_label_set() -> None:
    page = MetricPage()
    page.add("x_total", "gauge", "x", 1)
    with pytest.raises(ValueError, match="added as gauge and counter"):
        page.add("x", "counter", "x", 1)
    page.add("y", "gauge", "y", 1, {"bot": "a"})
    with pytest.raises(ValueError, match="added with labels"):
        page.add("y", "gauge", "y", 1, {"bot": "a", "sender": "b"})


def test_histogram__le_is_inclusive__empty_snapshot() -> None:
    h = Histogram([0, 1, 2])
    assert h.snapshot() == ([(0.0, 0), (1.0, 0), (2.0, 0), (math.inf, 0)], 0.0, 0)
    for v in (0, 1, 1, 3):
        h.observe(v)
    assert h.snapshot() == ([(0.0, 1), (1.0, 3), (2.0, 3), (math.inf, 4)], 5.0, 4)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (3, "3.0"),
        (True, "1.0"),
        (2.0, "2.0"),
        (0.25, "0.25"),
        (1_000_000_007, "1.000000007e+09"),
        (None, "NaN"),
        (math.nan, "NaN"),
        (math.inf, "+Inf"),
        (-math.inf, "-Inf"),
    ],
)
def test_metric_page__sample_values(value: float | None, text: str) -> None:
    page = MetricPage()
    page.add("x", "gauge", "x", value)
    assert page.render().splitlines()[-1] == f"x {text}"


def test_status_server__routes__free_port__errors_are_500() -> None:
    calls = {"health": 0}

    def health() -> tuple[int, dict[str, object]]:
        calls["health"] += 1
        return (503, {"status": "unhealthy"}) if calls["health"] > 1 else (200, {"status": "ok"})

    def broken() -> str:
        raise RuntimeError("boom")

    with StatusServer(health, broken, port=0) as server:
        assert server.port > 0 and server.url == f"http://127.0.0.1:{server.port}"
        with urllib.request.urlopen(f"{server.url}/health", timeout=5) as r:
            assert r.status == 200 and json.loads(r.read()) == {"status": "ok"}
        for path, code in (("/health", 503), ("/metrics", 500), ("/other", 404)):
            with pytest.raises(urllib.error.HTTPError) as info:
                urllib.request.urlopen(f"{server.url}{path}", timeout=5)
            assert info.value.code == code
