from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from web3 import Web3

from keeper.anvil import Anvil
from keeper.bots.oracle import (
    KIND_AGGREGATOR,
    KIND_REPORTER,
    REPORT_GAS,
    OracleReporter,
    Source,
    plan_checkpoint,
    plan_reports,
    price_to_wad,
)
from keeper.chain import ChainClient
from keeper.feeds import RandomWalkFeed
from keeper.units import WAD

MARKETS = {"BTC-PERP": 100_000.0, "ETH-PERP": 3_000.0}
MAX_AGE = 60
QUORUM = 2

# ---------------------------------------------------------------- pure planning

REPORTER_A = "0x" + "aa" * 20
REPORTER_B = "0x" + "bb" * 20
AGGREGATOR = "0x" + "cc" * 20


def test_price_to_wad__exact_decimal() -> None:
    assert price_to_wad(100_000.5) == 100_000_500_000_000_000_000_000
    assert price_to_wad(0.1) == 10**17  # not 100000000000000005551
    assert price_to_wad(3_000) == 3_000 * WAD
    with pytest.raises(ValueError):
        price_to_wad(0.0)


def test_plan_reports__only_held_reporter_sources() -> None:
    sources = [
        Source(0, KIND_REPORTER, Web3.to_checksum_address(REPORTER_A), 0, 0),
        Source(1, KIND_AGGREGATOR, Web3.to_checksum_address(AGGREGATOR), 5 * WAD, 900),
        Source(2, KIND_REPORTER, Web3.to_checksum_address(REPORTER_B), 0, 0),
    ]
    reports, skipped = plan_reports("BTC-PERP", sources, [1.0, 2.0, 3.0], [REPORTER_B], chain_ts=1_000)
    assert [(r.source, r.price, r.price_wad, r.timestamp) for r in reports] == [(2, 3.0, 3 * WAD, 1_000)]
    assert reports[0].reporter == Web3.to_checksum_address(REPORTER_B)
    assert skipped == []


def test_plan_reports__skips_newer_and_identical_reports() -> None:
    a, b = Web3.to_checksum_address(REPORTER_A), Web3.to_checksum_address(REPORTER_B)
    sources = [Source(0, KIND_REPORTER, a, 1 * WAD, 1_001), Source(1, KIND_REPORTER, b, 2 * WAD, 1_000)]
    reports, skipped = plan_reports("BTC-PERP", sources, [1.0, 2.0], [a, b], chain_ts=1_000)
    assert reports == []
    assert [(s.index, why.split(" ")[0]) for s, why in skipped] == [(0, "last"), (1, "already")]
    reports, _ = plan_reports("BTC-PERP", sources[1:], [1.0, 2.5], [b], chain_ts=1_000)
    assert [r.price_wad for r in reports] == [int(2.5 * WAD)]  # same second, new price: sent


def test_plan_checkpoint__only_feeds_unreported_quorate_and_old() -> None:
    feed = [Source(0, KIND_AGGREGATOR, AGGREGATOR, 0, 0)]
    reporter = [Source(0, KIND_REPORTER, REPORTER_A, 0, 0)]
    assert plan_checkpoint(
        feed, reported=False, quorate=True, reference_time=940, chain_ts=1_000, interval_s=60
    )
    assert not plan_checkpoint(feed, False, True, 941, 1_000, 60)  # checkpointed 59 s ago
    assert not plan_checkpoint(feed, True, True, 0, 1_000, 60)  # our report checkpoints it
    assert not plan_checkpoint(feed, False, False, 0, 1_000, 60)  # no quorum: it would revert
    assert not plan_checkpoint(reporter, False, True, 0, 1_000, 60)  # reporters' reports do it


# ---------------------------------------------------------------- against anvil


@pytest.fixture
def reporter_keys(node: Anvil) -> list[str]:
    return node.private_keys[1:4]


@pytest.fixture
def oracles(
    deployer: ChainClient,
    deploy_contract: Any,
    index_oracle_artifact: Any,
    reporter_keys: list[str],
    node: Anvil,
) -> dict[str, Any]:
    reporters = node.addresses[1:4]
    return {
        m: deploy_contract(
            deployer, *index_oracle_artifact, f"{m} index", reporters, MAX_AGE, QUORUM, 5 * 10**17, 5 * 10**17
        )
        for m in MARKETS
    }


def _bot(w3: Web3, keys: list[str], oracles: dict[str, Any], **kw: Any) -> OracleReporter:
    clients = {}
    for key in keys:
        c = ChainClient(w3, key, receipt_timeout_s=10)
        clients[c.address] = c
    feed = RandomWalkFeed(MARKETS, seed=1, volatility=0.001, venue_noise=0.0005)
    return OracleReporter(clients, oracles, feed, **kw)


def test_run_once__all_sources_reported__index_valid(
    w3: Web3, reporter_keys: list[str], oracles: dict[str, Any]
) -> None:
    bot = _bot(w3, reporter_keys, oracles)
    result = bot.run_once()
    assert result == {"planned": 6, "pushed": 6, "failed": 0, "skipped": 0}
    chain_ts = w3.eth.get_block("latest")["timestamp"]
    for market, oracle in oracles.items():
        valid, price, fresh = oracle.functions.index_status().call()
        assert valid and fresh == 3
        assert price == pytest.approx(bot.last_prices[market] * WAD, rel=0.01)
        for i in range(3):
            _kind, _addr, src_price, src_ts = oracle.functions.source(i).call()
            assert src_price > 0 and chain_ts - 5 <= src_ts <= chain_ts
    health = bot.health()
    assert health["pushes"] == 6 and health["failures"] == 0 and health["steps"] == 1
    assert health["last_success"] is not None and set(health["last_prices"]) == set(MARKETS)


def test_run_once__only_held_keys_report(w3: Web3, reporter_keys: list[str], oracles: dict[str, Any]) -> None:
    bot = _bot(w3, reporter_keys[:1], oracles)
    assert bot.run_once() == {"planned": 2, "pushed": 2, "failed": 0, "skipped": 0}
    valid, _price, fresh = oracles["BTC-PERP"].functions.index_status().call()
    assert not valid and fresh == 1  # below quorum of 2
    assert oracles["BTC-PERP"].functions.source(1).call()[3] == 0


def test_run_once__uses_chain_time_after_warp(
    w3: Web3, reporter_keys: list[str], oracles: dict[str, Any], node: Anvil
) -> None:
    bot = _bot(w3, reporter_keys, oracles)
    bot.run_once()
    node.increase_time(100_000)  # far past max_age: the old reports are stale
    assert not oracles["ETH-PERP"].functions.index_status().call()[0]
    warped = node.block_timestamp()
    bot.run_once()
    assert oracles["ETH-PERP"].functions.index_status().call()[0]
    assert oracles["ETH-PERP"].functions.source(0).call()[3] >= warped


def test_run_once__dry_run_sends_nothing(w3: Web3, reporter_keys: list[str], oracles: dict[str, Any]) -> None:
    bot = _bot(w3, reporter_keys, oracles, dry_run=True)
    nonces = {a: w3.eth.get_transaction_count(a) for a in bot.clients}
    assert bot.run_once() == {"planned": 6, "pushed": 0, "failed": 0, "skipped": 0}
    assert {a: w3.eth.get_transaction_count(a) for a in bot.clients} == nonces
    assert oracles["BTC-PERP"].functions.source(0).call()[2] == 0


def test_run_once__revert_counted_as_failure(
    w3: Web3, reporter_keys: list[str], oracles: dict[str, Any]
) -> None:
    bot = _bot(w3, reporter_keys[:1], oracles)
    bot.feed = RandomWalkFeed(
        {"BTC-PERP": 1e21, "ETH-PERP": 3_000.0}, seed=1, volatility=0.0, venue_noise=0.0
    )
    nonce = w3.eth.get_transaction_count(next(iter(bot.clients)))
    assert bot.run_once() == {"planned": 2, "pushed": 1, "failed": 1, "skipped": 0}
    assert "price too large" in str(bot.health()["last_error"])
    assert w3.eth.get_transaction_count(next(iter(bot.clients))) == nonce + 1  # the bad one was never sent


def test_run_once__in_progress_guard(w3: Web3, reporter_keys: list[str], oracles: dict[str, Any]) -> None:
    bot = _bot(w3, reporter_keys, oracles)
    with bot._guard:
        assert bot.run_once() is None
        assert bot.health()["in_progress"] is True
    assert bot.steps == 0


def test_run_forever__max_steps_and_stop_event(
    w3: Web3, reporter_keys: list[str], oracles: dict[str, Any]
) -> None:
    bot = _bot(w3, reporter_keys, oracles)
    assert bot.run_forever(0.0, max_steps=3) == 3
    assert bot.health()["pushes"] == 18
    stop = threading.Event()
    stop.set()
    assert bot.run_forever(0.0, stop) == 0


def test_run_forever__step_error_logged_and_loop_continues(
    w3: Web3, reporter_keys: list[str], oracles: dict[str, Any]
) -> None:
    bot = _bot(w3, reporter_keys, oracles)
    real_step = bot.feed.step
    calls = {"n": 0}

    def flaky_step() -> dict[str, float]:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("venue API down")
        return real_step()

    bot.feed.step = flaky_step  # type: ignore[method-assign]
    assert bot.run_forever(0.0, max_steps=2) == 2
    assert bot.failures == 1 and bot.pushes == 6


def _run_in_one_block(w3: Web3, node: Anvil, bot: OracleReporter, expected_txs: int) -> dict[str, int]:
    """`bot.run_once()` with automine off: every report waits in the pool, then one block mines them."""
    node.set_automine(False)
    out: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: out.update(result=bot.run_once()))
    worker.start()
    deadline = time.monotonic() + 20
    while int(w3.provider.make_request("txpool_status", [])["result"]["pending"], 16) < expected_txs:
        assert time.monotonic() < deadline, "the reports did not reach the pool"
        time.sleep(0.05)
    node.mine()
    worker.join(30)
    node.set_automine(True)
    return out["result"]


def test_run_once__reports_mined_in_one_block__none_out_of_gas(
    w3: Web3, node: Anvil, reporter_keys: list[str], oracles: dict[str, Any]
) -> None:
    # a first report per source, then a step where the three reports of each market share a block,
    # every source stale before it. They are not mined in the order sent (the tips differ): the
    # first one sent saw a pool without the others (one fresh source, no quorum: the cheap path,
    # ~41k gas) and is mined second (it brings the quorum: the median written, ~64k). An estimate
    # against the pending state (x1.2: ~55k) runs out of gas there
    clients = {}
    for tip, key in zip((2, 3, 1), reporter_keys, strict=True):
        c = ChainClient(w3, key, receipt_timeout_s=10, priority_fee_gwei=tip)
        clients[c.address] = c
    feed = RandomWalkFeed(MARKETS, seed=1, volatility=0.001, venue_noise=0.0005)
    bot = OracleReporter(clients, oracles, feed)
    assert bot.run_once() == {"planned": 6, "pushed": 6, "failed": 0, "skipped": 0}
    node.increase_time(MAX_AGE + 60)
    start = w3.eth.block_number
    assert _run_in_one_block(w3, node, bot, 6) == {"planned": 6, "pushed": 6, "failed": 0, "skipped": 0}
    assert w3.eth.block_number == start + 1
    block = w3.eth.get_block(start + 1, full_transactions=True)
    receipts = [w3.eth.get_transaction_receipt(tx["hash"]) for tx in block["transactions"]]
    assert len(receipts) == 6 and all(r["status"] == 1 for r in receipts)
    assert all(tx["gas"] == REPORT_GAS for tx in block["transactions"])
    assert max(r["gasUsed"] for r in receipts) <= REPORT_GAS // 2  # the measured bound holds with headroom
    for oracle in oracles.values():
        assert oracle.functions.index_status().call()[2] == 3


# ---------------------------------------------------------------- the index guard


def test_run_once__guard_holds_a_pump__warned_in_health_until_released(
    w3: Web3, reporter_keys: list[str], oracles: dict[str, Any]
) -> None:
    bot = _bot(w3, reporter_keys, oracles)
    bot.run_once()
    assert bot.health()["guard_held"] == []
    # two of the three sources report x11 for BTC (a manipulated majority)
    btc = oracles["BTC-PERP"]
    ts = w3.eth.get_block("latest")["timestamp"]
    for key in reporter_keys[:2]:
        ChainClient(w3, key).send(btc.functions.report(1_100_000 * WAD, ts), gas=REPORT_GAS)
    pumped = _bot(w3, [reporter_keys[2]], oracles)  # an honest bot holding the third key
    pumped.run_once()
    assert pumped.health()["guard_held"] == ["BTC-PERP"]
    assert pumped.checkpoints == 0  # reporter sources: nothing to checkpoint
    bot.run_once()  # all three honest again
    assert bot.health()["guard_held"] == []


def test_run_once__oracle_with_a_chainlink_feed__reference_checkpointed(
    w3: Web3,
    node: Anvil,
    deployer: ChainClient,
    deploy_contract: Any,
    index_oracle_artifact: Any,
    mock_aggregator_artifact: Any,
) -> None:
    """An oracle whose only source is a Chainlink feed: nobody reports, so the
    bot calls update_reference() once the reference is reference_interval_s old."""
    feed = deploy_contract(deployer, *mock_aggregator_artifact, 8, "BTC / USD")
    oracle = deploy_contract(
        deployer,
        *index_oracle_artifact,
        "BTC-PERP index",
        [node.addresses[9]],
        MAX_AGE,
        1,
        5 * 10**17,
        5 * 10**17,
    )
    deployer.send(oracle.functions.add_aggregator(feed.address))
    deployer.send(oracle.functions.remove_source(0))  # the reporter goes: only the feed is left
    ts = w3.eth.get_block("latest")["timestamp"]
    deployer.send(feed.functions.set_answer(100_000 * 10**8, ts))
    assert oracle.functions.reference_price().call()[1] == 0  # never checkpointed
    bot = _bot(w3, [node.private_keys[5]], {"BTC-PERP": oracle}, reference_interval_s=60)
    bot.run_once()
    reference, at = oracle.functions.reference_price().call()
    assert bot.checkpoints == 1 and reference == 100_000 * WAD and at > 0
    bot.run_once()  # checkpointed less than 60 s ago: nothing sent
    assert bot.checkpoints == 1
