"""Liquidation keeper benchmark: N accounts long at ~9x, one index move makes every one of
them liquidatable, and the liquidation keeper (keeper.bots.liquidation.LiquidationBot, in a
thread, as `keeper run liquidation` runs it) liquidates them. Measured: blocks and seconds
from the block of the index move to the block of the last liquidation, gas per liquidation
(receipts), and the gas of the keeper's `health(1, 100)` page (eth_estimateGas).

    .venv/bin/python bench/liquidations.py                     # 1,000 accounts, 1 s blocks
    .venv/bin/python bench/liquidations.py --accounts 200 --block-time 2 --gas-limits 30000000

The chain mines a block every `--block-time` seconds (interval mining, as a real chain:
transactions sent meanwhile share the next block). Each run of `--gas-limits` starts from the
same snapshot with that block gas limit; a liquidation costs ~180k gas, so at 30M gas a block
holds ~165 of them and 1,000 need at least 7 blocks whatever the keeper does: the table gives
that lower bound beside the measure.

The keeper signs every transaction locally: with `coincurve` installed (eth_keys then uses
libsecp256k1) a signature costs ~0.8 ms, without it ~9 ms, which then dominates (1,000
liquidations: ~9 s of signing). The table's title says which backend ran.

Setup (fast): anvil with --auto-impersonate, accounts with no keys, deposits and orders sent
in blocks of 500 accounts with automine off (as bench/gas.py).
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import threading
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from web3.logs import DISCARD  # noqa: E402

from keeper.bots.liquidation import LiquidationBot  # noqa: E402
from keeper.chain import ChainClient  # noqa: E402
from keeper.deploy import DeployConfig, MarketConfig, to_wad  # noqa: E402
from keeper.localnet import LocalNet, start_localnet  # noqa: E402
from keeper.logs import setup_logging  # noqa: E402

GTC, IOC = 0, 2
SYMBOL = "BTC-PERP"
PRICE = 100_000
MOVE_TO = 92_000  # -8%: every 9x long is below maintenance (6.5%), none is bankrupt
BID = 91_000  # the maker's bid that absorbs the liquidations (above every bankruptcy price, ~88,900)
SIZE = "0.01"  # $1,000 notional each: closed whole (small_position_notional)
MARGIN = "111.2"  # ~9x: 1,000 / 111.2 = 8.99
SETUP_GAS_LIMIT = 1_000_000_000


@dataclass
class Result:
    gas_limit: int
    accounts: int
    blocks: int
    seconds: float
    liquidations: int
    gas_min: int
    gas_avg: int
    gas_max: int
    per_block: list[int]
    rounds: int

    @property
    def lower_bound(self) -> int:
        return math.ceil(self.accounts * self.gas_avg / self.gas_limit)


def bench_market() -> MarketConfig:
    # a 10% price band: the maker's bid rests at BID, 9% under the index, before the move
    return MarketConfig(
        SYMBOL, Decimal(PRICE), tick_size=Decimal("1"), lot_size=Decimal("0.0001"), price_band=Decimal("0.1")
    )


def setup(net: LocalNet, n: int) -> list[int]:
    """A maker and `n` keyless accounts each long SIZE at PRICE with MARGIN; the maker's bid at BID."""
    w3, be, m, ch = net.w3, net.backend, net.market(SYMBOL), net.ch
    net.fund("maker", 50_000_000)
    maker = net.actor("maker").address
    funder = net.actor("funder").address
    be.transact(net.token, "mint", funder, net.units(Decimal(MARGIN) * n + 1))
    be.transact(net.token, "approve", ch.address, 2**256 - 1, sender=funder)
    be.transact(
        ch,
        "place_order",
        maker,
        0,
        m.address,
        False,
        to_wad(SIZE) * n,
        to_wad(PRICE),
        GTC,
        False,
        0,
        sender=maker,
    )
    hashes = []
    net.anvil.set_automine(False)
    try:
        for i in range(n):
            owner = w3.to_checksum_address(f"0x{0x20000 + i:040x}")
            net.anvil.rpc("anvil_setBalance", [owner, hex(10**18)])
            deposit = ch.encode_abi("deposit", [0, net.units(MARGIN), owner])
            hashes.append(
                w3.eth.send_transaction({"from": funder, "to": ch.address, "gas": 300_000, "data": deposit})
            )
            buy = ch.encode_abi(
                "place_order", [owner, 0, m.address, True, to_wad(SIZE), to_wad(PRICE), IOC, False, 0]
            )
            hashes.append(
                w3.eth.send_transaction({"from": owner, "to": ch.address, "gas": 600_000, "data": buy})
            )
            if (i + 1) % 500 == 0 or i == n - 1:
                net.anvil.mine()
                net.anvil.set_automine(True)
                net.set_index(SYMBOL, PRICE)  # the reporters keep the index fresh
                net.anvil.set_automine(False)
    finally:
        net.anvil.set_automine(True)
    failed = [h for h in hashes if w3.eth.get_transaction_receipt(h)["status"] != 1]
    if failed:
        raise RuntimeError(f"{len(failed)} setup transactions failed")
    be.transact(
        ch, "place_order", maker, 0, m.address, True, to_wad(SIZE) * (n + 10), to_wad(BID), GTC, False, 0,
        sender=maker,
    )  # fmt: skip
    net.set_index(SYMBOL, PRICE)
    accounts = [
        ch.functions.account_of(w3.to_checksum_address(f"0x{0x20000 + i:040x}"), 0).call() for i in range(n)
    ]
    longs, _shorts = m.functions.open_interest_sides().call()
    assert longs >= to_wad(SIZE) * n, "positions not opened"
    return accounts


def health_gas(net: LocalNet) -> int:
    ch = net.ch
    return int(net.w3.eth.estimate_gas({"to": ch.address, "data": ch.encode_abi("health", [1, 100])}))


def run_keeper(net: LocalNet, n: int, gas_limit: int, block_time: int, keeper_key: str) -> Result:
    w3, ch, engine = net.w3, net.ch, net.engine
    net.anvil.rpc("evm_setBlockGasLimit", [hex(gas_limit)])
    net.anvil.mine()  # the new limit applies from the next block
    net.anvil.rpc("evm_setIntervalMining", [block_time])
    client = ChainClient(w3, keeper_key, receipt_timeout_s=120)
    bot = LiquidationBot(
        client, ch, {SYMBOL: net.market(SYMBOL)}, engine=engine, lens=net.lens,
        logger=logging.getLogger("bench.liquidation"),
    )  # fmt: skip
    stop = threading.Event()
    thread = threading.Thread(target=bot.run_forever, args=(0.2, stop), daemon=True)
    try:
        thread.start()
        time.sleep(0.5)  # the keeper is idle, polling
        net.resync_nonces()
        started = time.monotonic()
        net.set_index(SYMBOL, MOVE_TO)
        move_block = w3.eth.block_number
        deadline = started + 300
        liquidated = 0
        while liquidated < n and time.monotonic() < deadline:
            time.sleep(0.1)
            liquidated = len(engine.events.Liquidation().get_logs(from_block=move_block))
        seconds = time.monotonic() - started
    finally:
        stop.set()
        thread.join(timeout=30)
        net.anvil.rpc("evm_setIntervalMining", [0])
        net.anvil.set_automine(True)
    logs = engine.events.Liquidation().get_logs(from_block=move_block)
    if len(logs) < n:
        raise RuntimeError(f"only {len(logs)} of {n} accounts liquidated in 300 s")
    if len({ev["args"]["account"] for ev in logs}) != len(logs):
        raise RuntimeError("an account was liquidated twice")
    gas = []
    per_block: dict[int, int] = {}
    for ev in logs:
        receipt = w3.eth.get_transaction_receipt(ev["transactionHash"])
        gas.append(int(receipt["gasUsed"]))
        per_block[ev["blockNumber"]] = per_block.get(ev["blockNumber"], 0) + 1
        assert (
            engine.events.Liquidation().process_receipt(receipt, errors=DISCARD)[0]["args"]["size_after"] == 0
        )
    last = max(per_block)
    return Result(
        gas_limit=gas_limit,
        accounts=n,
        blocks=last - move_block,
        seconds=seconds,
        liquidations=len(logs),
        gas_min=min(gas),
        gas_avg=sum(gas) // len(gas),
        gas_max=max(gas),
        per_block=[per_block.get(b, 0) for b in range(move_block + 1, last + 1)],
        rounds=bot.steps,
    )


def signer_backend() -> str:
    """eth_keys' ECDSA backend: coincurve (libsecp256k1, ~0.8 ms per signed tx) or native (~9 ms)."""
    from eth_keys.backends import get_backend

    return type(get_backend()).__name__


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=1_000)
    ap.add_argument("--block-time", type=int, default=1, help="seconds between blocks (interval mining)")
    ap.add_argument(
        "--gas-limits",
        default="30000000,100000000",
        help="block gas limits to run with, comma-separated (30M: anvil's default)",
    )
    ap.add_argument("--verbose", action="store_true", help="the keeper's JSON logs on stderr")
    args = ap.parse_args()
    if args.verbose:
        setup_logging("INFO")
    limits = [int(x) for x in args.gas_limits.split(",") if x]
    config = DeployConfig(markets=(bench_market(),))
    t0 = time.monotonic()
    with start_localnet(
        config, accounts=20, anvil_args=("--auto-impersonate", "--gas-limit", str(SETUP_GAS_LIMIT))
    ) as net:
        setup(net, args.accounts)
        setup_s = time.monotonic() - t0
        hg = health_gas(net)
        keeper = net.actor("liquidation-keeper").key
        snap = net.anvil.snapshot()
        results = []
        for limit in limits:
            net.anvil.revert(snap)
            snap = net.anvil.snapshot()
            net.resync_nonces()
            results.append(run_keeper(net, args.accounts, limit, args.block_time, keeper))
    print(
        f"\nliquidation keeper: {args.accounts:,} accounts long ~9x, index {PRICE:,} -> {MOVE_TO:,}, ", end=""
    )
    print(f"{args.block_time:g} s blocks (setup {setup_s:.0f} s); signing backend: {signer_backend()}")
    print(f"{'block gas limit':>16} {'blocks':>7} {'bound':>6} {'seconds':>8} {'liquidated':>11} "
          f"{'gas/liq min':>12} {'avg':>8} {'max':>8} {'rounds':>7}  liquidations per block")  # fmt: skip
    print("-" * 120)
    for r in results:
        print(
            f"{r.gas_limit:>16,} {r.blocks:>7} {r.lower_bound:>6} {r.seconds:>8.1f} {r.liquidations:>11,} "
            f"{r.gas_min:>12,} {r.gas_avg:>8,} {r.gas_max:>8,} {r.rounds:>7}  {r.per_block}"
        )
    print("\nblocks: from the block of the index move to the block of the last liquidation;")
    print("bound: ceil(accounts x avg gas / block gas limit), the fewest blocks the gas allows.")
    print(
        f"\nhealth(1, 100) with 100 open positions: {hg:,} gas (eth_estimateGas), {hg - 21_000:,} without the"
    )
    print("21,000 intrinsic gas; pages of 500 are what the keeper reads per eth_call.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
