"""`keeper status` and `keeper trade` (keeper/people/) against a live anvil: one localnet for the
module (the deployer's three markets), every test in an anvil snapshot reverted afterwards.

Set-up of the chain tests: a `maker` with 100,000 USDC rests liquidity, a `trader` with 1,000 USDC
goes 5x long 0.05 BTC at 100,000 (`long_trader`)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from keeper.anvil import free_port
from keeper.cli import main
from keeper.deploy import to_wad
from keeper.localnet import LocalNet, start_localnet
from keeper.orders import market_limit
from keeper.people.commands import TRADER_KEY_ENV
from keeper.people.common import PeopleError, health_state, num
from keeper.people.status import eta
from keeper.people.trade import order_args

WAD = 10**18
BTC = "BTC-PERP"
GTC, IOC = 0, 2


# ---------------------------------------------------------------- pure helpers


def test_order_args__human_units_to_wad():
    o = order_args("sell", "0.05", "100001", None, tick=WAD, lot=WAD // 10_000, symbol=BTC)
    assert (o.is_buy, o.size, o.price, o.order_type, o.reduce_only) == (
        False,
        5 * 10**16,
        100_001 * WAD,
        0,
        False,
    )
    market = order_args("buy", "1", None, None, tick=WAD, lot=WAD, symbol=BTC, reduce_only=True)
    assert (market.price, market.order_type, market.reduce_only) == (None, 2, True)
    assert order_args("buy", "1", "5", "post-only", tick=WAD, lot=WAD, symbol=BTC).order_type == 1


@pytest.mark.parametrize(
    ("side", "size", "price", "kind", "error"),
    [
        ("long", "1", "5", None, "side must be buy or sell"),
        ("buy", "0.00015", "5", None, r"size 0.00015 is not a multiple of BTC-PERP's lot size 0.0001 \(nearest: 0.0001 or 0.0002\)"),
        ("buy", "1", "100.5", None, r"price 100.5 is not a multiple of BTC-PERP's tick size 1 \(nearest: 100 or 101\)"),
        ("buy", "1", "1e-30", None, "price 0.000000000000000000000000000001 is not a multiple"),
        ("buy", "-1", "5", None, "size must be a positive number"),
        ("buy", "abc", "5", None, "size 'abc' is not a decimal number"),
        ("buy", "1", None, "ioc", "ioc orders need a price"),
        ("buy", "1", "5", "fok", "order type must be one of"),
    ],
)  # fmt: skip
def test_order_args__bad_input__names_the_problem(side, size, price, kind, error):
    with pytest.raises(PeopleError, match=error):
        order_args(side, size, price, kind, tick=WAD, lot=WAD // 10_000, symbol=BTC)


def test_market_limit__the_price_band_edge_rounded_inwards_to_the_tick():
    band = 2 * WAD // 100  # 2%: 100,001 +- 2,000.02
    assert market_limit(100_001 * WAD, band, 10 * WAD, True) == 102_000 * WAD  # 102,001.02 down
    assert market_limit(100_001 * WAD, band, 10 * WAD, False) == 98_010 * WAD  # 98,000.98 up


def test_health_state__bankrupt_below_zero_liquidatable_below_mm():
    assert health_state(-1, 0) == "bankrupt"
    assert health_state(99, 100) == "liquidatable"
    assert health_state(100, 100) == "healthy"


def test_formatting__numbers_and_durations():
    assert num(Decimal("1234567.1234567")) == "1,234,567.123457"
    assert num(Decimal("100000.000")) == "100,000"
    assert num(None) == "-"
    assert (
        eta(2480) == "in 41m 20s" and eta(3600) == "in 1h" and eta(-5) == "due 5s ago" and eta(0) == "due now"
    )


# ---------------------------------------------------------------- chain fixtures


@pytest.fixture(autouse=True)
def _no_root_log_handlers() -> Iterator[None]:
    """`keeper run` in other test files leaves root handlers on streams pytest has closed since."""
    root = logging.getLogger()
    handlers = list(root.handlers)
    root.handlers.clear()
    yield
    root.handlers[:] = handlers


@pytest.fixture(scope="module")
def localnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalNet, Path]]:
    manifest = tmp_path_factory.mktemp("people") / "manifest.json"
    with start_localnet(accounts=20, manifest_path=manifest) as net:
        yield net, manifest


@pytest.fixture
def net(localnet: tuple[LocalNet, Path], monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalNet]:
    node, _ = localnet
    assert node.anvil is not None
    for name in ("VYPERP_CONFIG", "VYPERP_RPC_URL", "VYPERP_MANIFEST", TRADER_KEY_ENV):
        monkeypatch.delenv(name, raising=False)
    snap = node.anvil.snapshot()
    actors, next_key = dict(node.actors), node.next_key
    try:
        yield node
    finally:
        node.anvil.revert(snap)
        node.actors, node.next_key = actors, next_key
        node.resync_nonces()


@pytest.fixture
def keeper(net: LocalNet, localnet: tuple[LocalNet, Path], capsys: pytest.CaptureFixture[str]) -> Any:
    """keeper(*argv) -> (exit code, stdout, stderr) of the CLI on the localnet."""
    assert net.anvil is not None
    chain = ["--rpc", net.anvil.url, "--manifest", str(localnet[1])]

    def run(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()  # what the set-up printed
        code = main([*argv, *chain])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def order(net: LocalNet, who: str, is_buy: bool, size: str, price: int, kind: int = GTC) -> Any:
    a = net.actor(who).address
    args = (a, 0, net.market(BTC).address, is_buy, to_wad(size), to_wad(price), kind, False, 0)
    return net.backend.transact(net.ch, "place_order", *args, sender=a)


@pytest.fixture
def long_trader(net: LocalNet) -> str:
    """`trader` 5x long 0.05 BTC at 100,000 from `maker`; the maker also rests a bid and an ask."""
    net.fund("maker", 100_000)
    net.fund("trader", 1_000)
    order(net, "maker", False, "0.05", 100_000)
    order(net, "trader", True, "0.05", 100_000, IOC)
    order(net, "maker", True, "0.3", 99_990)
    order(net, "maker", False, "0.2", 100_010)
    return net.actor("trader").address


@pytest.fixture
def trader_key(net: LocalNet, monkeypatch: pytest.MonkeyPatch) -> str:
    net.fund("trader", 1_000)
    key = net.actor("trader").key
    monkeypatch.setenv(TRADER_KEY_ENV, key)
    return key


# ---------------------------------------------------------------- keeper status


def test_status__markets_funding_insurance(keeper: Any, long_trader: str) -> None:
    code, out, err = keeper("status")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("vyperp on chain 31337 at block ")
    btc = next(line for line in lines if line.startswith("BTC-PERP ") and "ok 3/3" in line)
    assert " ".join(btc.split()) == "BTC-PERP 100,000 ok 3/3 100,000 99,990 x 0.3 100,010 x 0.2 0.05 (5,000)"
    funding = next(line for line in lines if line.startswith("ETH-PERP ") and "%" in line)
    # nothing settled yet; predicted: the interest rate alone, 0.01% per 8h
    assert " ".join(funding.split()).startswith("ETH-PERP 0% (0%/1h) 10.95% - in ")
    assert any(line.startswith("insurance fund 0x") and "payout cap 50%" in line for line in lines)
    assert "bad debt (absorbed by neither the fund nor ADL): 0 USDC" in lines


def test_status__account_with_position(keeper: Any, long_trader: str, net: LocalNet) -> None:
    net.set_index(BTC, 101_000)
    code, out, err = keeper("status", "--account", long_trader)
    assert code == 0, err
    lines = out.splitlines()
    i = next(i for i, line in enumerate(lines) if line.startswith(f"account {long_trader} subaccount 0"))
    assert lines[i].endswith(": HEALTHY")
    # mark = median(bid 99,990, ask 100,010, last 100,000), within index 101,000 +- 2%; fee 2.5
    assert lines[i + 1].split() == [
        "cash",
        "997.5",
        "equity",
        "997.5",
        "IM",
        "500",
        "MM",
        "325",
        "withdrawable",
        "497.5",
        "USDC,",
        "leverage",
        "5.01x",
    ]
    assert lines[i + 2].split()[:3] == ["POSITION", "SIDE", "SIZE"]
    assert lines[i + 3].split() == ["BTC-PERP", "long", "0.05", "100,000", "100,000", "5,000", "0", "0", "0"]


def test_status__json__exact_values(keeper: Any, long_trader: str, net: LocalNet) -> None:
    # the book's mark (100,000) clamped to index x (1 + mark_band 1.625% = MM 6.5% / 4): liquidatable
    net.set_index(BTC, 80_000)
    code, out, err = keeper("status", "--account", long_trader, "--json")
    assert code == 0, err
    s = json.loads(out)
    assert set(s) == {
        "chain_id",
        "block",
        "timestamp",
        "clearinghouse",
        "collateral",
        "markets",
        "insurance_fund",
        "bad_debt",
        "account",
        "problems",
    }
    btc = s["markets"][BTC]
    assert set(btc) >= {
        "index",
        "index_valid",
        "mark",
        "best_bid",
        "best_ask",
        "open_interest",
        "funding",
        "tick_size",
        "lot_size",
    }
    assert (btc["index"], btc["index_valid"], btc["index_fresh_sources"], btc["open_interest"]) == (
        "80000",
        True,
        3,
        "0.05",
    )
    assert set(btc["funding"]) == {
        "interval_s",
        "last_rate",
        "last_apr",
        "predicted_rate",
        "predicted_apr",
        "current_premium",
        "samples",
        "next_funding_time",
        "next_funding_in_s",
    }
    assert s["insurance_fund"]["payout_cap"] == "0.5"
    a = s["account"]
    (p,) = a["positions"]
    mark = Decimal(btc["mark"])
    assert mark == Decimal("81300")
    assert Decimal(p["unrealized_pnl"]) == Decimal("0.05") * (mark - 100_000)
    assert Decimal(a["equity"]) == Decimal("997.5") + Decimal(p["unrealized_pnl"])
    assert a["health"] == "liquidatable" and Decimal(a["equity"]) < Decimal(a["maintenance_margin"])


def test_status__bankrupt_account(keeper: Any, long_trader: str, net: LocalNet) -> None:
    net.set_index(BTC, 75_000)
    code, out, _ = keeper("status", "--account", long_trader, "--json")
    assert json.loads(out)["account"]["health"] == "bankrupt"


def test_status__stale_index__markets_shown_account_unreadable(
    keeper: Any, long_trader: str, net: LocalNet
) -> None:
    assert net.anvil is not None
    net.anvil.increase_time(120)  # beyond the oracles' max_age of 60 s
    code, out, _ = keeper("status", "--account", long_trader)
    assert code == 1
    assert "BTC-PERP: no predicted funding rate: " in out
    assert f"note: account {long_trader} subaccount 0: margin unreadable: " in out
    btc = next(line for line in out.splitlines() if line.startswith("BTC-PERP "))
    assert btc.split()[1:5] == ["INVALID", "0/3,", "last", "100,000"]
    assert int(btc.split()[5].removesuffix("s")) >= 120 and btc.split()[6] == "ago"


def test_status__index_held_by_the_guard__shown_with_its_median(
    keeper: Any, long_trader: str, net: LocalNet
) -> None:
    assert not net.set_index(BTC, 200_000, confirm=False)  # +100%: beyond the 50% guard
    code, out, _ = keeper("status", "--account", long_trader)
    assert code == 1
    btc = next(line for line in out.splitlines() if line.startswith("BTC-PERP "))
    assert " ".join(btc.split()[1:8]) == "HELD 200,000 3/3: moved too fast (guard)"
    code, out, _ = keeper("status", "--json")
    held = json.loads(out)["markets"][BTC]
    assert (held["index_valid"], held["index_held"], held["index_median"]) == (False, True, "200000")


def test_status__console_script(net: LocalNet, localnet: tuple[LocalNet, Path]) -> None:
    """The installed `keeper` entry point, as a person runs it."""
    assert net.anvil is not None
    keeper_bin = Path(sys.executable).parent / "keeper"
    run = subprocess.run(
        [str(keeper_bin), "status", "--json", "--rpc", net.anvil.url, "--manifest", str(localnet[1])],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert set(json.loads(run.stdout)["markets"]) == {"BTC-PERP", "ETH-PERP", "SOL-PERP"}


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["--account", "0x" + "ab" * 20], "no account 0xABaBaBaBABabABabAbAbABAbABabababaBaBABaB subaccount 0 at the clearinghouse"),
        (["--account", "trader"], "--account: 'trader' is not an address"),
    ],
)  # fmt: skip
def test_status__bad_account__error(keeper: Any, argv: list[str], error: str) -> None:
    code, out, err = keeper("status", *argv)
    assert (code, out) == (2, "")
    assert err.startswith("keeper: error: ") and error in err


def test_status__unreachable_node__error(
    localnet: tuple[LocalNet, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    assert main(["status", "--rpc", url, "--manifest", str(localnet[1])]) == 2
    assert f"keeper: error: cannot reach the node at {url}: " in capsys.readouterr().err


def test_status__bad_manifest__error(
    net: LocalNet, tmp_path: Path, capsys: pytest.CaptureFixture[str], localnet: tuple[LocalNet, Path]
) -> None:
    assert net.anvil is not None
    rpc = ["--rpc", net.anvil.url]
    assert main(["status", *rpc, "--manifest", str(tmp_path / "none.json")]) == 2
    assert "deployment manifest not found" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text("{not json")
    assert main(["status", *rpc, "--manifest", str(tmp_path / "bad.json")]) == 2
    assert "invalid deployment manifest" in capsys.readouterr().err
    stale = json.loads(localnet[1].read_text()) | {"clearinghouse": "0x" + "12" * 20}
    (tmp_path / "stale.json").write_text(json.dumps(stale))
    assert main(["status", *rpc, "--manifest", str(tmp_path / "stale.json")]) == 2
    assert "is from another deployment" in capsys.readouterr().err
    other = json.loads(localnet[1].read_text()) | {"chain_id": 1}
    (tmp_path / "other.json").write_text(json.dumps(other))
    assert main(["status", *rpc, "--manifest", str(tmp_path / "other.json")]) == 2
    assert "is for chain 1" in capsys.readouterr().err
    # a manifest of a deployer from before the LiquidationEngine, and one naming another engine
    manifest = json.loads(localnet[1].read_text())
    older = {k: v for k, v in manifest.items() if k != "liquidation_engine"}
    (tmp_path / "older.json").write_text(json.dumps(older))
    assert main(["status", *rpc, "--manifest", str(tmp_path / "older.json")]) == 2
    err = capsys.readouterr().err
    assert f"the manifest {tmp_path / 'older.json'} has no liquidation_engine (LiquidationEngine)" in err
    moved = manifest | {"liquidation_engine": net.lens.address}
    (tmp_path / "moved.json").write_text(json.dumps(moved))
    assert main(["status", *rpc, "--manifest", str(tmp_path / "moved.json")]) == 2
    err = capsys.readouterr().err
    assert f"names the liquidation engine {net.lens.address}, but its clearinghouse" in err
    assert f"uses {net.engine.address}" in err


# ---------------------------------------------------------------- keeper trade


def test_trade__place_cancel_cancel_all__round_trip(keeper: Any, trader_key: str, net: LocalNet) -> None:
    btc = net.market(BTC)
    account = net.account("trader")
    code, out, err = keeper(
        "trade", "place", "--market", BTC, "--side", "buy", "--size", "0.001", "--price", "99000"
    )
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("place buy 0.001 BTC-PERP @ 99000 (gtc): tx 0x") and ", gas used " in lines[0]
    tx = lines[0].split(" tx ")[1].split()[0]
    receipt = net.w3.eth.get_transaction_receipt(tx)
    assert f"in block {receipt['blockNumber']}, gas used {receipt['gasUsed']:,}" in lines[0]
    assert lines[1] == "rests 0.001 @ 99,000 as order #1"
    assert lines[2] == "position BTC-PERP: flat; 1 resting order"
    # IM 99 x 10% + the order's risk, MM the risk alone: 99 x k, k = ceil((price band 2% + mark band
    # 1.625%) / (1 - 2%)) + maker fee 0.02% = 3.7189796% (to the 1e-9): 3.681789804
    margin = lines[3]
    assert margin.startswith(f"account #{account}: equity 1,000 USDC, IM 13.58179, MM 3.68179,")
    assert margin.endswith("; healthy")

    code, out, err = keeper("trade", "cancel", "--market", BTC, "--order", "1")
    assert code == 0, err
    assert out.startswith("cancel BTC-PERP order #1 (buy 0.001 @ 99,000): tx 0x")
    assert net.lens.functions.order(btc.address, 1).call()[0] == 0

    for price in ("98000", "98500"):
        assert (
            keeper("trade", "place", "--market", BTC, "--side", "buy", "--size", "0.001", "--price", price)[0]
            == 0
        )
    code, out, err = keeper("trade", "cancel-all", "--market", BTC)
    assert code == 0, err
    assert out.startswith("cancel-all BTC-PERP: 2 orders (#2, #3): tx 0x")
    assert btc.functions.open_order_stats(account).call()[0] == 0
    code, out, _ = keeper("trade", "cancel-all", "--market", BTC)
    assert (code, out.splitlines()[0]) == (0, "no resting orders in BTC-PERP")


def test_trade__cancel_all__an_order_gone_since_it_was_listed__skipped(
    keeper: Any, trader_key: str, net: LocalNet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Beyond MAX_CANCELS (here 1) the orders go one by one; one of them filled
    after the list was read: it is skipped, on both paths."""
    from keeper.bots import scan

    ids = []
    for price in ("98000", "98500", "99000"):
        code, out, err = keeper(
            "trade", "place", "--market", BTC, "--side", "buy", "--size", "0.001", "--price", price
        )
        assert code == 0, err
        ids.append(int(out.splitlines()[1].rsplit("#", 1)[1]))
    listed = list(ids)
    net.fund("maker", 100_000)
    order(net, "maker", False, "0.001", 99_000, IOC)  # fills ids[2] after the list below was read
    monkeypatch.setattr(scan, "MAX_CANCELS", 1)
    monkeypatch.setattr(scan, "resting_order_ids", lambda *_a, **_k: listed)
    code, out, err = keeper("trade", "cancel-all", "--market", BTC)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith(f"cancel {BTC} order #{ids[1]}: tx 0x")
    assert lines[1] == f"cancel {BTC} order #{ids[2]}: no longer rests"
    assert lines[2].startswith(f"cancel-all {BTC}: 1 order (#{ids[0]}): tx 0x")
    assert net.market(BTC).functions.open_order_stats(net.account("trader")).call()[0] == 0


def test_trade__market_order__fills_and_shows_position(keeper: Any, trader_key: str, net: LocalNet) -> None:
    net.fund("maker", 100_000)
    order(net, "maker", False, "0.01", 100_000)
    code, out, err = keeper("trade", "place", "--market", BTC, "--side", "buy", "--size", "0.01")
    assert code == 0, err
    lines = out.splitlines()
    # a market order's limit: the price band's edge, index 100,000 + 2%
    assert lines[0].startswith("place buy 0.01 BTC-PERP at market (limit 102000): tx 0x")
    assert lines[1] == "filled 0.01 @ 100,000 (1 fill), fee 0.5 USDC"
    assert (
        lines[2]
        == "position BTC-PERP: long 0.01 @ 100,000, mark 100,000, unrealized PnL 0, funding owed 0; 0 resting orders"
    )
    assert net.market(BTC).functions.position(net.account("trader")).call()[0] == to_wad("0.01")
    # more than the book holds: the rest of a market order is cancelled
    order(net, "maker", False, "0.01", 100_000)
    code, out, err = keeper("trade", "place", "--market", BTC, "--side", "buy", "--size", "0.03")
    assert code == 0, err
    assert out.splitlines()[1:3] == [
        "filled 0.01 @ 100,000 (1 fill), fee 0.5 USDC",
        "the rest, 0.02, is cancelled (IOC)",
    ]


def test_trade__limit_order_past_max_fills__its_crossing_rest_is_cancelled(
    keeper: Any, trader_key: str, net: LocalNet
) -> None:
    net.fund("maker", 100_000)
    fills = net.lens.functions.market_params(net.market(BTC).address).call()[7]  # max_fills
    for i in range(fills + 1):
        order(net, "maker", False, "0.001", 100_000 + i)
    code, out, err = keeper(
        "trade",
        "place",
        "--market",
        BTC,
        "--side",
        "buy",
        "--size",
        f"{(fills + 3) / 1000}",
        "--price",
        "100100",
    )
    assert code == 0, err
    lines = out.splitlines()
    assert lines[1].startswith(f"filled {fills / 1000:g} @ ") and f" ({fills} fills), fee " in lines[1]
    assert lines[2] == (
        "the rest, 0.003, is cancelled (max_fills reached with the book still within the limit:"
        " resting, it would cross the book)"
    )
    assert "0 resting orders" in lines[3]


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["place", "--market", BTC, "--side", "buy", "--size", "0.00015", "--price", "99000"], "size 0.00015 is not a multiple of BTC-PERP's lot size 0.0001"),
        (["place", "--market", BTC, "--side", "buy", "--size", "0.001", "--price", "99000.5"], "price 99000.5 is not a multiple of BTC-PERP's tick size 1"),
        (["place", "--market", "DOGE-PERP", "--side", "buy", "--size", "1"], "unknown market 'DOGE-PERP': this deployment has BTC-PERP, ETH-PERP, SOL-PERP"),
        (["place", "--market", BTC, "--side", "buy", "--size", "1", "--price", "100000"], "place buy 1 BTC-PERP @ 100000 (gtc) reverted (simulated, nothing sent): below initial margin"),
        (["place", "--market", BTC, "--side", "sell", "--size", "0.0001", "--price", "99000"], "reverted (simulated, nothing sent): order below min notional"),
        (["place", "--market", BTC, "--side", "sell", "--size", "0.001", "--reduce-only"], "reduce-only would increase position"),
        (["cancel", "--market", BTC, "--order", "7"], "order #7 does not rest in BTC-PERP (filled, cancelled or unknown)"),
        (["place", "--market", BTC, "--side", "buy", "--size", "0.001", "--type", "ioc"], "ioc orders need a price"),
    ],
)  # fmt: skip
def test_trade__bad_order__error_and_nothing_sent(
    keeper: Any, trader_key: str, net: LocalNet, argv: list[str], error: str
) -> None:
    block = net.w3.eth.block_number
    code, out, err = keeper("trade", *argv)
    assert (code, out) == (2, "")
    assert err.startswith("keeper: error: ") and error in err, err
    assert net.w3.eth.block_number == block


def test_trade__bad_side__usage_error(keeper: Any, trader_key: str) -> None:
    with pytest.raises(SystemExit) as exit_:
        keeper("trade", "place", "--market", BTC, "--side", "long", "--size", "1")
    assert exit_.value.code == 2


def test_trade__someone_elses_order__refused(keeper: Any, trader_key: str, net: LocalNet) -> None:
    net.fund("maker", 100_000)
    order(net, "maker", True, "0.01", 99_000)
    code, _, err = keeper("trade", "cancel", "--market", BTC, "--order", "1")
    assert code == 2 and f"order #1 in BTC-PERP belongs to account #{net.account('maker')}, not to" in err


def test_trade__key__missing_malformed_or_without_account(
    keeper: Any, net: LocalNet, monkeypatch: pytest.MonkeyPatch
) -> None:
    argv = ("trade", "cancel-all", "--market", BTC)
    code, _, err = keeper(*argv)
    assert code == 2 and f"no trader key: set ${TRADER_KEY_ENV} (or pass --key)" in err
    code, _, err = keeper(*argv, "--key", "0x1234")
    assert code == 2 and "not a 32-byte hex private key" in err and "0x1234" not in err
    nobody = net.actor("nobody")
    code, _, err = keeper(*argv, "--key", nobody.key)
    assert code == 2 and f"{nobody.address} has no subaccount 0 at the clearinghouse" in err
