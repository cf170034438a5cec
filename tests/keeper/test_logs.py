from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal

import pytest

from keeper.logs import get_logger, setup_logging


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    buf = io.StringIO()
    setup_logging("DEBUG", stream=buf)
    yield buf
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)


def _lines(buf: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buf.getvalue().splitlines()]


def test_line_is_json_with_extra_fields(stream: io.StringIO) -> None:
    get_logger("keeper.test").info(
        "price %s", "pushed", extra={"market": "BTC-PERP", "price": Decimal("1.5")}
    )
    (entry,) = _lines(stream)
    assert entry["level"] == "INFO"
    assert entry["logger"] == "keeper.test"
    assert entry["msg"] == "price pushed"
    assert entry["market"] == "BTC-PERP"
    assert entry["price"] == "1.5"  # not JSON-native: written with str()
    ts = datetime.fromisoformat(str(entry["ts"]))
    assert ts.utcoffset() is not None and ts.utcoffset().total_seconds() == 0  # type: ignore[union-attr]


def test_exception_is_included(stream: io.StringIO) -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        get_logger("keeper.test").exception("failed")
    (entry,) = _lines(stream)
    assert entry["level"] == "ERROR" and "RuntimeError: boom" in str(entry["exc"])


def test_setup_is_idempotent_and_level_applies(stream: io.StringIO) -> None:
    setup_logging("WARNING", stream=stream)
    log = get_logger("keeper.test")
    log.info("hidden")
    log.warning("shown")
    assert [e["msg"] for e in _lines(stream)] == ["shown"]  # one handler, not two


def test_default_stream_follows_sys_stderr__a_closed_former_one_is_not_written(monkeypatch) -> None:
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    first, second = io.StringIO(), io.StringIO()
    try:
        monkeypatch.setattr("sys.stderr", first)
        setup_logging("INFO")
        get_logger("keeper.test").info("one")
        first.close()  # e.g. a test's captured stderr, torn down
        monkeypatch.setattr("sys.stderr", second)
        get_logger("keeper.test").info("two")  # "--- Logging error ---" with a bound stream
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
    assert [e["msg"] for e in _lines(second)] == ["two"]
