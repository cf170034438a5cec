"""Integration: anvil, the protocol deployed (BTC-PERP and ETH-PERP), and the liquidation and ADL
keepers against it: `keeper run liquidation` as its own process liquidates every account a price
move made liquidatable exactly once and spares the healthy one, a second instance then finds
nothing to do; a bankrupt account goes to ADL when the insurance fund is empty and is liquidated
when the fund can cover it; a stale market does not hide the other accounts; the ADL keeper
deleverages the highest score first and `keeper audit adl` proves it, or names the account a
hand-made ADL skipped.

One localnet for the module; every test runs in an anvil snapshot reverted afterwards."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from web3.logs import DISCARD

from keeper.audit import audit_adl
from keeper.bots.adl import AdlBot
from keeper.bots.liquidation import LiquidationBot
from keeper.chain import ChainClient
from keeper.cli import main
from keeper.deploy import DeployConfig, MarketConfig, to_wad
from keeper.localnet import LocalNet, start_localnet

pytestmark = pytest.mark.integration

GTC, IOC = 0, 2
BTC, ETH = "BTC-PERP", "ETH-PERP"
MAX = 2**256 - 1


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def localnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalNet, Path]]:
    markets = [
        MarketConfig(BTC, Decimal("100000"), tick_size=Decimal("1"), lot_size=Decimal("0.0001")),
        MarketConfig(ETH, Decimal("4000"), tick_size=Decimal("0.1"), lot_size=Decimal("0.001")),
    ]
    manifest = tmp_path_factory.mktemp("liq") / "manifest.json"
    with start_localnet(DeployConfig(markets=markets), accounts=40, manifest_path=manifest) as net:
        yield net, manifest


@pytest.fixture
def net(localnet: tuple[LocalNet, Path]) -> Iterator[LocalNet]:
    node, _ = localnet
    assert node.anvil is not None
    snap = node.anvil.snapshot()
    actors = dict(node.actors)
    next_key = node.next_key
    try:
        yield node
    finally:
        node.anvil.set_automine(True)
        node.anvil.revert(snap)
        node.actors, node.next_key = actors, next_key
        node.resync_nonces()


@pytest.fixture
def manifest(localnet: tuple[LocalNet, Path]) -> Path:
    return localnet[1]


# ---------------------------------------------------------------- helpers


def order(
    net: LocalNet, who: str, is_buy: bool, size: str, price: int, kind: int = GTC, symbol: str = BTC
) -> Any:
    a = net.actor(who).address
    m = net.market(symbol)
    args = (a, 0, m.address, is_buy, to_wad(size), to_wad(price), kind, False, 0)
    return net.backend.transact(net.ch, "place_order", *args, sender=a)


def open_position(
    net: LocalNet, who: str, margin: Any, side: str, size: str, price: int, symbol: str = BTC
) -> int:
    """`who` deposits `margin` and takes `size` on `side` at `price` from the maker's resting order."""
    net.fund(who, margin)
    order(net, "maker", side != "buy", size, price, GTC, symbol)
    order(net, who, side == "buy", size, price, IOC, symbol)
    account = net.account(who)
    assert net.market(symbol).functions.position(account).call()[0] == (1 if side == "buy" else -1) * to_wad(
        size
    )
    return account


def liquidations(net: LocalNet, from_block: int = 0) -> list[Any]:
    return list(net.engine.events.Liquidation().get_logs(from_block=from_block))


def keeper_client(net: LocalNet, name: str, **kwargs: Any) -> ChainClient:
    return ChainClient(net.w3, net.actor(name).key, **kwargs)


def liquidation_bot(net: LocalNet, name: str = "liquidator", **kwargs: Any) -> LiquidationBot:
    client = keeper_client(net, name, receipt_timeout_s=kwargs.pop("receipt_timeout_s", 20))
    markets = {s: net.market(s) for s in (BTC, ETH)}
    return LiquidationBot(
        client, net.ch, markets, engine=net.engine, lens=net.lens, logger=logging.getLogger("test.liquidation"),
        **kwargs,
    )  # fmt: skip


def adl_bot(net: LocalNet, name: str = "adl-keeper") -> AdlBot:
    markets = {s: net.market(s) for s in (BTC, ETH)}
    return AdlBot(
        keeper_client(net, name), net.ch, markets, engine=net.engine, lens=net.lens,
        logger=logging.getLogger("test.adl"),
    )  # fmt: skip


def write_config(path: Path, net: LocalNet, manifest: Path, section: str, key: str) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "rpc_url": net.w3.provider.endpoint_uri,
                "manifest": str(manifest),
                section: {"interval_s": 0.1, "key": key},
            }
        )
    )
    return path


def run_keeper(config: Path, bot: str, *args: str) -> tuple[int, list[dict[str, Any]], str]:
    proc = subprocess.run(
        [sys.executable, "-m", "keeper.cli", "run", bot, "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    logs = [json.loads(line) for line in proc.stderr.splitlines() if line.startswith("{")]
    return proc.returncode, logs, proc.stderr


# ---------------------------------------------------------------- liquidation keeper


def test_liquidation_keeper_process__each_liquidatable_account_once__healthy_spared__restart_idle(
    net: LocalNet, manifest: Path, tmp_path: Path
) -> None:
    net.fund("maker", 5_000_000)
    levered = [open_position(net, f"long{i}", "112", "buy", "0.01", 100_000) for i in range(6)]
    healthy = open_position(net, "healthy", "1000", "buy", "0.01", 100_000)
    # one of them has a resting order the liquidation must cancel first: an ask inside the price
    # band (index +- 2%), which nobody reaches once the index falls
    order(net, "long0", False, "0.0002", 102_000)
    # -8%: below 6.5% maintenance at ~9x, above bankruptcy (the mark, median(91,000, 102,000, last
    # 100,000), is clamped to 92,000 x (1 + 1.625%) = 93,495: still below maintenance)
    net.set_index(BTC, 92_000)
    order(net, "maker", True, "1", 91_000)  # the bid the liquidations sell into (inside the new band)
    rows = {r[0]: r for r in net.ch.functions.health(1, 100).call()}
    assert all(rows[a][4] for a in levered) and not rows[healthy][4]
    start = net.w3.eth.block_number

    config = write_config(tmp_path / "keeper.yaml", net, manifest, "liquidation", net.actor("liquidator").key)
    code, logs, stderr = run_keeper(config, "liquidation", "--steps", "4")
    assert code == 0, stderr[-3000:]
    assert not [e for e in logs if e["level"] == "ERROR"], stderr[-3000:]
    events = liquidations(net, start)
    assert sorted(e["args"]["account"] for e in events) == levered  # each exactly once, healthy spared
    assert all(e["args"]["size_after"] == 0 and not e["args"]["bankrupt"] for e in events)
    assert all(e["args"]["liquidator"] == net.actor("liquidator").address for e in events)
    assert net.market(BTC).functions.position(levered[0]).call()[6] == 0  # its resting bid was cancelled
    stopped = next(e for e in logs if e["msg"] == "liquidation keeper stopped")
    assert stopped["liquidations"] == len(levered) and stopped["failures"] == 0
    keeper_account = net.ch.functions.account_of(net.actor("liquidator").address, 0).call()
    assert (
        net.ch.functions.margin(keeper_account).call()[0]
        == sum(e["args"]["liquidator_fee"] for e in events)
        > 0
    )

    # a second instance (a restart) reads the chain and finds nothing to do: no transaction sent
    nonce = net.w3.eth.get_transaction_count(net.actor("liquidator").address)
    code, logs, stderr = run_keeper(config, "liquidation", "--once")
    assert code == 0, stderr[-3000:]
    done = next(e for e in logs if e["msg"] == "liquidation step done")
    assert done["result"]["liquidatable"] == 0 and done["result"]["planned"] == 0
    assert net.w3.eth.get_transaction_count(net.actor("liquidator").address) == nonce
    assert len(liquidations(net, start)) == len(levered)


def test_liquidation_bot__dry_run__sends_nothing(net: LocalNet) -> None:
    net.fund("maker", 1_000_000)
    open_position(net, "long", "112", "buy", "0.01", 100_000)
    net.set_index(BTC, 92_000)
    bot = liquidation_bot(net, dry_run=True)
    result = bot.run_once()
    assert result is not None and result["liquidatable"] == 1 and result["planned"] == 1
    assert result["liquidated"] == 0 and net.w3.eth.get_transaction_count(bot.client.address) == 0
    assert liquidations(net) == []


def test_liquidation_bot__tx_without_receipt__never_resent(net: LocalNet) -> None:
    net.fund("maker", 1_000_000)
    account = open_position(net, "long", "112", "buy", "0.01", 100_000)
    net.set_index(BTC, 92_000)
    order(net, "maker", True, "1", 91_000)  # inside the price band around the new index
    bot = liquidation_bot(net, receipt_timeout_s=0.5)
    assert net.anvil is not None
    net.anvil.set_automine(False)  # the liquidation stays in the pool
    first = bot.run_once()
    assert first is not None and first["planned"] == 1 and first["failed"] == 1  # no receipt in time
    assert list(bot.health()["pending_txs"]) == [str((account, net.market(BTC).address))]
    # the next round sees the pair in flight: nothing is sent again
    second = bot.run_once()
    assert second is not None and second["in_flight"] == 1 and second["planned"] == 0
    assert net.w3.eth.get_transaction_count(bot.client.address, "pending") == 1
    net.anvil.mine()
    net.anvil.set_automine(True)
    third = bot.run_once()
    assert third is not None and third["liquidatable"] == 0 and bot.health()["pending_txs"] == {}
    assert len(liquidations(net)) == 1


def test_liquidation_bot__no_liquidity__backs_off__then_liquidates(net: LocalNet) -> None:
    net.fund("maker", 1_000_000)
    account = open_position(net, "long", "112", "buy", "0.01", 100_000)
    net.set_index(BTC, 92_000)  # liquidatable, but no bid above the bankruptcy price (~88,900)
    bot = liquidation_bot(net, no_fill_backoff_blocks=3)
    first = bot.run_once()
    assert first is not None and first["skipped"] == 1 and first["liquidated"] == 0 and first["failed"] == 0
    (ev,) = liquidations(net)
    assert ev["args"]["closed_size"] == 0
    nonce = net.w3.eth.get_transaction_count(bot.client.address)
    second = bot.run_once()  # backing off: nothing sent
    assert second is not None and second["skipped"] == 1 and second["planned"] == 0
    assert net.w3.eth.get_transaction_count(bot.client.address) == nonce
    order(net, "maker", True, "1", 91_000)
    assert net.anvil is not None
    net.anvil.mine(3)
    net.set_index(BTC, 92_000)
    third = bot.run_once()
    assert third is not None and third["liquidated"] == 1
    assert net.market(BTC).functions.position(account).call()[0] == 0


def test_liquidation_keeper_process__empty_book__takeover_subaccount_takes_over__without_it_stays(
    net: LocalNet, manifest: Path, tmp_path: Path
) -> None:
    net.fund("maker", 1_000_000)
    account = open_position(net, "long", "112", "buy", "0.01", 100_000)
    # a resting order of its own (an ask inside the price band, index +- 2%): cancelled before the takeover
    order(net, "long", False, "0.0002", 102_000)
    net.set_index(BTC, 92_000)  # a crash, the book empty: no bid above the bankruptcy price (~88,900)
    key = net.actor("liquidator").key
    start = net.w3.eth.block_number

    # without the setting: the liquidation closes nothing and the position stays
    config = write_config(tmp_path / "off.yaml", net, manifest, "liquidation", key)
    code, logs, stderr = run_keeper(config, "liquidation", "--steps", "2")
    assert code == 0, stderr[-3000:]
    assert net.market(BTC).functions.position(account).call()[0] == to_wad("0.01")
    assert [e["args"]["closed_size"] for e in liquidations(net, start)] == [0]
    assert list(net.engine.events.Takeover().get_logs(from_block=start)) == []

    # with a funded takeover subaccount: taken over whole, once
    net.fund("liquidator", 500, subaccount=1)
    taker = net.account("liquidator", 1)
    on = yaml.safe_load(config.read_text())
    on["liquidation"]["takeover_subaccount"] = 1
    (tmp_path / "on.yaml").write_text(yaml.safe_dump(on))
    code, logs, stderr = run_keeper(tmp_path / "on.yaml", "liquidation", "--steps", "3")
    assert code == 0, stderr[-3000:]
    assert not [e for e in logs if e["level"] == "ERROR"], stderr[-3000:]
    (ev,) = net.engine.events.Takeover().get_logs(from_block=start)
    assert ev["args"]["account"] == account and ev["args"]["liquidator"] == taker
    assert ev["args"]["size"] == to_wad("0.01") and ev["args"]["price"] < ev["args"]["mark"]
    assert net.market(BTC).functions.position(account).call()[0] == 0
    assert net.market(BTC).functions.position(taker).call()[0] == to_wad("0.01")
    equity, im, _mm, _w = net.ch.functions.margin(taker).call()
    assert equity >= im > 0
    stopped = next(e for e in logs if e["msg"] == "liquidation keeper stopped")
    assert stopped["takeovers_sent"] == 1 and stopped["takeovers"] == 1 and stopped["takeovers_failed"] == 0
    assert any(e["msg"] == "taken over (backstop)" for e in logs)


def test_liquidation_bot__takeover_beyond_the_takers_margin__partial__then_nothing_resent(
    net: LocalNet,
) -> None:
    net.fund("maker", 1_000_000)
    account = open_position(net, "long", "1120", "buy", "0.1", 100_000)
    net.set_index(BTC, 92_000)  # no bid: the liquidation closes nothing
    net.fund("liquidator", 500, subaccount=2)  # carries ~0.05 BTC at 10% initial margin
    bot = liquidation_bot(net, takeover_subaccount=2, no_fill_backoff_blocks=50)
    tried = bot.run_once()  # the liquidation closes nothing (and cancels); the takeover comes next round
    assert tried is not None and tried["skipped"] == 1 and tried["taken_over"] == 0, bot.last_error
    first = bot.run_once()
    assert first is not None and first["taken_over"] == 1 and first["failed"] == 0, bot.last_error
    (ev,) = net.engine.events.Takeover().get_logs()
    taken = ev["args"]["size"]
    assert 0 < taken < to_wad("0.1") and taken % to_wad("0.0001") == 0
    assert net.market(BTC).functions.position(account).call()[0] == to_wad("0.1") - taken
    taker = net.account("liquidator", 2)
    equity, im, _mm, _w = net.ch.functions.margin(taker).call()
    assert equity >= im
    # the taker's margin is used up: nothing more is sent, no failure counted
    nonce = net.w3.eth.get_transaction_count(bot.client.address)
    second = bot.run_once()
    assert second is not None and second["failed"] == 0 and second["taken_over"] == 0
    assert net.w3.eth.get_transaction_count(bot.client.address) == nonce
    assert bot.health()["takeovers_sent"] == 1 and bot.health()["takeovers_failed"] == 0


def test_liquidation_bot__bankrupt__adl_when_fund_empty__liquidated_when_it_covers(net: LocalNet) -> None:
    net.fund("maker", 1_000_000)
    account = open_position(net, "long", "1110", "buy", "0.1", 100_000)
    net.set_index(BTC, 85_000)  # the price gaps through the bankruptcy price (~88,900)
    order(net, "maker", True, "1", 84_000)  # within the bankrupt band (5%) around the new mark
    equity = net.ch.functions.margin(account).call()[0]
    assert equity < 0
    bot = liquidation_bot(net)
    result = bot.run_once()
    assert result is not None and result["adl_handoff"] == 1 and result["planned"] == 0
    assert liquidations(net) == []

    # fill the insurance fund (ERC-4626 deposit): it now covers the worst case, the keeper liquidates
    fund = net.deployment.insurance_fund
    depositor = net.actor("insurer").address
    net.backend.transact(net.token, "mint", depositor, net.units(10_000))
    net.backend.transact(net.token, "approve", fund.address, MAX, sender=depositor)
    net.backend.transact(fund, "deposit", net.units(10_000), depositor, sender=depositor)
    assert net.engine.functions.insurance_capacity().call() > -equity
    result = bot.run_once()
    assert result is not None and result["liquidated"] == 1 and result["failed"] == 0
    (ev,) = liquidations(net)
    assert ev["args"]["bankrupt"] and ev["args"]["size_after"] == 0
    receipt = net.w3.eth.get_transaction_receipt(ev["transactionHash"])
    (bad_debt,) = net.ch.events.BadDebt().process_receipt(receipt, errors=DISCARD)
    # the liquidation is the engine's event, the bad debt the clearinghouse's
    assert ev["address"] == net.engine.address and bad_debt["address"] == net.ch.address
    assert (
        bad_debt["args"]["covered"] == bad_debt["args"]["deficit"] > 0 and bad_debt["args"]["uncovered"] == 0
    )


def test_liquidation_bot__bankrupt_beyond_the_reservation__sent__fund_rechecked_per_call__rest_to_adl(
    net: LocalNet,
) -> None:
    net.fund("maker", 1_000_000)
    accounts = [open_position(net, f"long{i}", "1110", "buy", "0.1", 100_000) for i in range(3)]
    net.set_index(BTC, 85_000)  # the price gaps through their bankruptcy price (~88,900)
    order(net, "maker", True, "1", 84_000)  # within the bankrupt band around the new mark
    lp = net.engine.functions.liquidation_params(net.market(BTC).address).call()
    equity = net.ch.functions.margin(accounts[0]).call()[0]
    mark = net.market(BTC).functions.position(accounts[0]).call()[3]
    worst = -equity + to_wad("0.1") * mark // 10**18 * lp[2] // 10**18
    # a fund covering each worst case alone (so `adl` refuses them), about 1.5 of them together
    fund = net.deployment.insurance_fund
    depositor = net.actor("insurer").address
    assets = net.units(Decimal(worst * 3) / 10**18)  # payout cap 50%: capacity 1.5 x worst
    net.backend.transact(net.token, "mint", depositor, assets)
    net.backend.transact(net.token, "approve", fund.address, MAX, sender=depositor)
    net.backend.transact(fund, "deposit", assets, depositor, sender=depositor)
    capacity = net.engine.functions.insurance_capacity().call()
    assert worst <= capacity < 2 * worst
    bot = liquidation_bot(net)
    # all sent in one batch and mined in one block, worst first (automine off), after the
    # fund's holds on the three accounts below zero (fund_hold.py)
    assert net.anvil is not None
    net.anvil.set_automine(False)
    out: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: out.update(result=bot.run_once()))
    worker.start()
    deadline = time.monotonic() + 20
    while net.w3.eth.get_transaction_count(bot.client.address, "pending") < 2 * len(accounts):
        assert time.monotonic() < deadline, "the liquidations did not reach the pool"
        time.sleep(0.05)
    net.anvil.mine()
    worker.join(30)
    net.anvil.set_automine(True)
    result = out["result"]
    assert result is not None and result["failed"] == 0, bot.last_error
    # the contract re-checks the fund per call: the first two pass, the third, left uncovered by
    # them, is refused on-chain and left to ADL, not counted as a failure
    done = [e["args"]["account"] for e in liquidations(net)]
    assert done == accounts[:2] and result["liquidated"] == 2 and result["adl_handoff"] == 1
    # the fund's withdrawals wait while the third stays below zero
    assert [fund.functions.held(a).call() for a in accounts] == [True] * 3
    assert fund.functions.withdrawals_wait().call()
    assert bot.liquidations_failed == 0
    for a in accounts[len(done) :]:  # refused: the ADL keeper may act on it now
        e = net.ch.functions.margin(a).call()[0]
        assert (
            -e + to_wad("0.1") * mark // 10**18 * lp[2] // 10**18
            > net.engine.functions.insurance_capacity().call()
        )


def test_liquidation_bot__stale_market__other_accounts_still_liquidated(net: LocalNet) -> None:
    net.fund("maker", 5_000_000)
    btc = [open_position(net, f"long{i}", "112", "buy", "0.01", 100_000) for i in range(3)]
    eth = open_position(net, "eth-long", "500", "buy", "1", 4_000, symbol=ETH)
    net.set_index(BTC, 92_000)
    order(net, "maker", True, "1", 91_000)  # inside the price band around the new index
    assert net.anvil is not None
    net.anvil.increase_time(120)  # every index is stale (max age 60 s) ...
    net.set_index(BTC, 92_000)  # ... but BTC's, refreshed
    bot = liquidation_bot(net, health_page=500)
    result = bot.run_once()
    assert result is not None
    # the page holding the ETH account reverts: it is split, the BTC accounts are read and liquidated
    assert sorted(e["args"]["account"] for e in liquidations(net)) == btc
    assert result["failed"] == 1 and "stale" in (bot.last_error or "") and str(eth) in (bot.last_error or "")
    net.set_index(ETH, 4_000)
    result = bot.run_once()
    assert result is not None and result["failed"] == 0 and result["liquidatable"] == 0


# ---------------------------------------------------------------- ADL keeper and auditor


def _bankrupt_long_vs_two_shorts(net: LocalNet) -> tuple[int, int, int]:
    """A 9x long (0.1 BTC) bankrupt after a gap to 85,000; short_a (5x, 0.05) and short_b (3.3x, 0.1)
    profitable, short_a with the higher score; the maker holds the other long. Fund empty: ADL."""
    net.fund("maker", 1_000_000)
    short_a = open_position(net, "short_a", "1000", "sell", "0.05", 100_000)
    net.fund("short_b", 3000)
    net.fund("long", 1110)
    order(net, "short_b", False, "0.1", 100_000)
    order(net, "long", True, "0.1", 100_000, IOC)
    long_, short_b = net.account("long"), net.account("short_b")
    net.set_index(BTC, 85_000)
    assert net.ch.functions.margin(long_).call()[0] < 0
    score_a = net.engine.functions.adl_score(short_a, net.market(BTC).address).call()
    score_b = net.engine.functions.adl_score(short_b, net.market(BTC).address).call()
    assert score_a > score_b > 0
    return long_, short_a, short_b


def test_adl_keeper_and_auditor__highest_score_first__proved(
    net: LocalNet, manifest: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    long_, short_a, short_b = _bankrupt_long_vs_two_shorts(net)
    mkt = net.market(BTC)
    config = write_config(tmp_path / "adl.yaml", net, manifest, "adl", net.actor("adl-keeper").key)
    assert main(["run", "adl", "--config", str(config), "--once", "--dry-run"]) == 0
    assert net.engine.events.AutoDeleverage().get_logs(from_block=0) == []
    assert main(["run", "adl", "--config", str(config), "--once"]) == 0
    (adl,) = net.engine.events.AutoDeleverage().get_logs(from_block=0)
    delev = net.engine.events.Deleveraged().get_logs(from_block=0)
    assert [(e["args"]["counterparty"], e["args"]["size"]) for e in delev] == [
        (short_a, to_wad("0.05")),
        (short_b, to_wad("0.05")),
    ]
    assert adl["args"]["account"] == long_ and adl["args"]["size"] == to_wad("0.1")
    assert mkt.functions.position(long_).call()[0] == 0
    assert mkt.functions.position(short_a).call()[0] == 0
    assert mkt.functions.position(short_b).call()[0] == -to_wad("0.05")
    assert net.ch.functions.bad_debt().call() == 0
    # a second pass: nothing bankrupt is left
    bot = adl_bot(net)
    assert bot.run_once() == {"bankrupt": 0, "cases": 0, "adl": 0, "skipped": 0, "failed": 0, "in_flight": 0}

    # the auditor replays it from the block before and proves it
    capsys.readouterr()
    tx = adl["transactionHash"].to_0x_hex()
    argv = ["audit", "adl", "--config", str(config), "--tx", tx]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "PROVED" in out and "first state change in its block" in out
    assert main(["audit", "adl", "--config", str(config), "--block", str(adl["blockNumber"]), "--json"]) == 0
    (audit,) = json.loads(capsys.readouterr().out)
    assert audit["verdict"] == "proved" and [u["account"] for u in audit["used"]] == [short_a, short_b]
    assert main(["audit", "adl", "--config", str(config), "--block", str(adl["blockNumber"] - 1)]) == 2


def test_auditor__hand_made_adl_skips_the_higher_score__named__exit_1(
    net: LocalNet, manifest: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    long_, short_a, short_b = _bankrupt_long_vs_two_shorts(net)
    mkt = net.market(BTC)
    score_a = net.engine.functions.adl_score(short_a, mkt.address).call()
    score_b = net.engine.functions.adl_score(short_b, mkt.address).call()
    # short_b alone absorbs the whole 0.1: the contract accepts the list, it cannot see short_a
    caller = net.actor("someone").address
    net.fund("someone", 1)
    receipt = net.backend.transact(net.engine, "adl", long_, mkt.address, [short_b], [], sender=caller)
    assert mkt.functions.position(short_a).call()[0] == -to_wad("0.05")  # untouched

    (audit,) = audit_adl(
        net.ch, net.engine, tx_hash=receipt["transactionHash"].to_0x_hex(), markets={BTC: mkt}
    )
    assert audit.check.verdict == "violation" and audit.exit_code == 1
    assert audit.check.violations == [
        f"account {short_a} (score {score_a}) was skipped while account {short_b} (score {score_b}) was deleveraged"
    ]
    config = write_config(tmp_path / "audit.yaml", net, manifest, "adl", net.actor("adl-keeper").key)
    capsys.readouterr()
    assert (
        main(["audit", "adl", "--config", str(config), "--tx", receipt["transactionHash"].to_0x_hex()]) == 1
    )
    out = capsys.readouterr().out
    assert "VIOLATION" in out and f"account {short_a} (score {score_a}) was skipped" in out
    assert "SKIPPED" in out
