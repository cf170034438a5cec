"""Funding keeper: the pure planner, and one pass against a real FundingRate on anvil."""

from __future__ import annotations

import logging
import threading
import time
from decimal import Decimal
from typing import Any

import pytest

from keeper.anvil import Anvil
from keeper.bots.funding import (
    MAX_CATCHUP,
    FundingKeeper,
    FundingState,
    is_benign_revert,
    plan_funding_actions,
)
from keeper.chain import ChainClient
from keeper.deploy import DeployConfig, MarketConfig, Web3Backend, deploy_protocol, to_wad
from keeper.retry import connect

HOUR = 3600


def state(
    market: str = "BTC-PERP", nft: int = 10_000, last: int = 9_000, interval: int = HOUR, sample: int = 60
):
    return FundingState(market, nft, last, interval, sample)


# ---------------------------------------------------------------- pure planning


def test_plan__settle_when_due() -> None:
    actions = plan_funding_actions([state(nft=10_000)], now=10_000)
    assert [(a.market, a.kind, a.intervals) for a in actions] == [("BTC-PERP", "settle", 1)]
    # late by more than an interval: the one call catches up every missed interval
    (late,) = plan_funding_actions([state(nft=10_000)], now=10_000 + 2 * HOUR + 5)
    assert late.kind == "settle" and late.intervals == 3


def test_plan__catch_up_is_bounded_like_the_contract() -> None:
    (a,) = plan_funding_actions([state(nft=0)], now=1_000 * HOUR)
    assert a.intervals == MAX_CATCHUP == 48


def test_plan__sample_when_due() -> None:
    assert [a.kind for a in plan_funding_actions([state(last=9_000, sample=60)], now=9_060)] == ["sample"]
    # never sampled (last_sample_time 0): due at once
    assert [a.kind for a in plan_funding_actions([state(last=0)], now=5_000)] == ["sample"]


def test_plan__nothing_when_neither_is_due() -> None:
    assert plan_funding_actions([state(nft=10_000, last=9_000, sample=60)], now=9_059) == []
    assert plan_funding_actions([], now=9_059) == []


def test_plan__settle_before_sample() -> None:
    # both due in one market: settle only (the contract refuses a sample then: "settle first")
    assert [a.kind for a in plan_funding_actions([state(nft=10_000, last=0)], now=10_000)] == ["settle"]
    # across markets: every settlement comes before any sample
    states = [state("ETH-PERP", nft=20_000, last=0), state("BTC-PERP", nft=10_000, last=0)]
    actions = plan_funding_actions(states, now=10_000)
    assert [(a.market, a.kind) for a in actions] == [("BTC-PERP", "settle"), ("ETH-PERP", "sample")]


@pytest.mark.parametrize(
    ("reason", "benign"),
    [
        ("funding: too early", True),
        ("funding: sample too early", True),
        ("funding: settle first", True),
        ("oracle: stale index", False),
        ("market: not funding rate", False),
    ],
)
def test_is_benign_revert(reason: str, benign: bool) -> None:
    assert is_benign_revert(reason) is benign


# ---------------------------------------------------------------- against anvil


@pytest.fixture
def protocol(node: Anvil) -> Any:
    """The protocol on the session anvil: one market, funding every 60 s, samples every 10 s."""
    w3 = connect(node.url)
    backend = Web3Backend(w3, node.private_keys[:1])
    market = MarketConfig(
        "SOL-PERP", Decimal("100"), funding_interval=60, funding_period=600, sample_interval=10
    )
    return deploy_protocol(backend, DeployConfig(markets=[market]))


def _keeper(node: Anvil, protocol: Any, key_index: int = 1, **kwargs: Any) -> FundingKeeper:
    client = ChainClient(connect(node.url), node.private_keys[key_index], receipt_timeout_s=10)
    contracts = {s: md.funding for s, md in protocol.markets.items()}
    return FundingKeeper(client, contracts, logger=logging.getLogger("test.funding"), **kwargs)


def _advance(node: Anvil, protocol: Any, seconds: int) -> int:
    """Move chain time and re-report the index (every source) so it stays fresh; returns the new time."""
    node.increase_time(seconds)
    now = node.block_timestamp()
    for md in protocol.markets.values():
        for reporter in md.reporters:
            protocol.backend.transact(
                md.oracle, "report", to_wad(md.config.initial_price), now, sender=reporter
            )
    return node.block_timestamp()


def test_run_once__dry_run__sends_nothing(node: Anvil, protocol: Any) -> None:
    bot = _keeper(node, protocol, dry_run=True)
    funding = protocol.markets["SOL-PERP"].funding
    nonce = bot.client.w3.eth.get_transaction_count(bot.client.address)
    result = bot.run_once()
    assert result == {"planned": 1, "settled": 0, "sampled": 0, "skipped": 0, "failed": 0}
    assert bot.client.w3.eth.get_transaction_count(bot.client.address) == nonce
    assert funding.functions.sample_count().call() == 0 and funding.functions.last_sample_time().call() == 0
    health = bot.health()
    assert health["dry_run"] and health["steps"] == 1 and health["samples"] == 0


def test_run_once__samples_then_settles__never_twice(node: Anvil, protocol: Any) -> None:
    bot = _keeper(node, protocol)
    funding = protocol.markets["SOL-PERP"].funding
    assert bot.run_once() == {"planned": 1, "settled": 0, "sampled": 1, "skipped": 0, "failed": 0}
    assert funding.functions.sample_count().call() == 1
    # the same chain time again (a restart re-running the step): nothing is due
    assert bot.run_once(now=funding.functions.last_sample_time().call())["planned"] == 0
    assert funding.functions.sample_count().call() == 1

    _advance(node, protocol, 15)
    assert bot.run_once()["sampled"] == 1
    assert funding.functions.sample_count().call() == 2

    nft = funding.functions.next_funding_time().call()
    _advance(node, protocol, nft - node.block_timestamp())
    result = bot.run_once()
    assert result is not None and result["settled"] == 1 and result["sampled"] == 0
    assert funding.functions.next_funding_time().call() == nft + 60
    assert funding.functions.sample_count().call() == 0  # the interval's samples were consumed
    # premium 0 (empty book) -> F = interest 0.01% per 600 s period x 60 s interval
    assert funding.functions.last_rate().call() == 10**14 * 60 // 600
    health = bot.health()
    assert (health["settles"], health["samples"], health["failures"]) == (1, 2, 0)
    assert health["markets"]["SOL-PERP"]["last_action"] == "settle"


def test_run_once__someone_else_was_first__skipped_not_failed(node: Anvil, protocol: Any) -> None:
    funding = protocol.markets["SOL-PERP"].funding
    nft = funding.functions.next_funding_time().call()
    _advance(node, protocol, nft - node.block_timestamp())
    first, second = _keeper(node, protocol, 1), _keeper(node, protocol, 2)
    now = node.block_timestamp()
    assert first.run_once(now)["settled"] == 1
    # the second keeper planned from state read before the first one's settlement: same plan, late
    stale = [FundingState("SOL-PERP", nft, 0, 60, 10)]
    second.read_state = lambda market: stale[0]  # type: ignore[method-assign]
    result = second.run_once(now)
    assert result == {"planned": 1, "settled": 0, "sampled": 0, "skipped": 1, "failed": 0}
    assert second.health()["failures"] == 0 and second.last_error is None
    assert funding.functions.next_funding_time().call() == nft + 60  # settled once


def test_run_once__sample_mined_after_the_interval_ended__skipped_not_failed(
    node: Anvil, protocol: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A sample sent 5 s before `next_funding_time` and mined in a block past it reverts with
    "funding: settle first": the clock overtook it. The reason is traced inside that block, so it
    counts as skipped; a replay on the parent block's state passed and read as a failure (a CI flake)."""
    funding = protocol.markets["SOL-PERP"].funding
    nft = funding.functions.next_funding_time().call()
    _advance(node, protocol, nft - node.block_timestamp() - 5)
    bot = _keeper(node, protocol)
    node.set_automine(False)

    def late_block() -> None:
        time.sleep(0.5)
        node.increase_time(30)
        node.mine()

    miner = threading.Thread(target=late_block)
    miner.start()
    try:
        with caplog.at_level(logging.INFO):
            result = bot.run_once()
    finally:
        miner.join()
        node.set_automine(True)
    assert result == {"planned": 1, "settled": 0, "sampled": 0, "skipped": 1, "failed": 0}
    assert bot.health()["failures"] == 0 and bot.last_error is None
    assert funding.functions.sample_count().call() == 0
    assert node.block_timestamp() >= nft
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "sample skipped: done by someone else or overtaken by the clock" in caplog.messages


def test_run_once__stale_index__is_a_failure(node: Anvil, protocol: Any) -> None:
    bot = _keeper(node, protocol)
    node.increase_time(3 * 60)  # no re-report: the index is stale (max age 60 s)
    result = bot.run_once()
    assert result is not None and result["failed"] == 1 and result["settled"] == 0
    assert bot.health()["failures"] == 1 and "SOL-PERP settle" in (bot.last_error or "")


# ---------------------------------------------------------------- CLI


def test_cli__run_funding_once__samples(node: Anvil, protocol: Any, tmp_path: Any) -> None:
    from keeper.cli import BOTS, build_parser, main
    from keeper.deploy import write_manifest

    args = build_parser().parse_args(["run", "funding", "--dry-run", "--steps", "3", "--rpc", "http://x"])
    assert args.bot == "funding" and args.dry_run and args.steps == 3 and "funding" in BOTS
    manifest = write_manifest(protocol.manifest, tmp_path / "m.json")
    config = tmp_path / "keeper.yaml"
    config.write_text(f"funding:\n  interval_s: 0.01\n  key: '{node.private_keys[3]}'\n")
    argv = ["run", "funding", "--config", str(config), "--rpc", node.url, "--manifest", str(manifest)]
    funding = protocol.markets["SOL-PERP"].funding
    assert main([*argv, "--once", "--dry-run"]) == 0
    assert funding.functions.sample_count().call() == 0
    assert main([*argv, "--once"]) == 0
    assert funding.functions.sample_count().call() == 1
    assert main([*argv, "--steps", "2"]) == 0  # nothing due: two quiet passes
    assert funding.functions.sample_count().call() == 1


def test_cli__run_funding_without_key__exit_2(
    node: Anvil,
    protocol: Any,
    tmp_path: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from keeper.cli import main
    from keeper.deploy import write_manifest

    monkeypatch.delenv("VYPERP_PRIVATE_KEY", raising=False)
    monkeypatch.delenv("VYPERP_FUNDING__KEY", raising=False)
    monkeypatch.delenv("VYPERP_CONFIG", raising=False)
    manifest = write_manifest(protocol.manifest, tmp_path / "m.json")
    assert main(["run", "funding", "--rpc", node.url, "--manifest", str(manifest), "--once"]) == 2
    assert "no funding keeper key" in capsys.readouterr().err
    # a dry run needs no key: it sends nothing
    assert (
        main(["run", "funding", "--rpc", node.url, "--manifest", str(manifest), "--once", "--dry-run"]) == 0
    )
