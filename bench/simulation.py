"""Throughput of the simulation's transaction paths and of the liquidation keeper's scan, on anvil.

1. **Participants' orders** (keeper/sim/lane.py, what the market maker and the crowd use): a
   burst of `--orders` IOC market orders from `--traders` keyless accounts against a maker's
   resting orders, sent in JSON-RPC batches of 500 (the node signs: impersonation), mined in
   blocks of 1,000; sustained transactions per second from the first send until every order is
   seen mined and filled (blocks' transaction counts, the market's `Fill` events; the calldata is
   encoded before the clock starts).
2. **Keeper transactions** (keeper/bots/inflight.py `send_batch` and `wait_receipts`, the
   liquidation keeper's path): `--orders` permissionless `settle_funding` calls from one keeper
   key, each signed locally (coincurve), pre-flighted with one `eth_call` batch, sent in JSON-RPC
   batches, one block per batch of distinct accounts, receipts polled as the keeper polls them.
3. **Liquidation keeper's scan** (`scan_health`, as `keeper run liquidation` reads it): the
   health of `--accounts` accounts (created cheaply: deposits only, one block), read in pages of
   `Clearinghouse.health` (500 accounts per `eth_call`, several calls per JSON-RPC batch);
   accounts per second for each page size, best of 3 reads.

    .venv/bin/python bench/simulation.py                      # 5,000 orders, 10,000 accounts
    .venv/bin/python bench/simulation.py --orders 2000 --accounts 2000

Targets (issue 6): >= 500 transactions per second; 10,000 accounts' health in under 1 second.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from web3 import Web3  # noqa: E402

from keeper.anvil import Anvil  # noqa: E402
from keeper.bots.inflight import Outgoing, send_batch, wait_receipts  # noqa: E402
from keeper.bots.scan import scan_health  # noqa: E402
from keeper.chain import ChainClient  # noqa: E402
from keeper.deploy import DeployConfig  # noqa: E402
from keeper.localnet import LocalNet, start_localnet  # noqa: E402
from keeper.sim.config import default_config  # noqa: E402
from keeper.sim.engine import GAS_LIMIT  # noqa: E402
from keeper.sim.lane import SimLane, Tx  # noqa: E402
from keeper.sim.market import GTC, IOC  # noqa: E402

SYMBOL = "BTC-PERP"
BATCH = 500  # transactions per JSON-RPC batch
BLOCK = 1_000  # transactions per mined block
ORDER_GAS = 400_000
KEEPER_GAS = 200_000
MAX_UINT = 2**256 - 1


@dataclass
class Rate:
    what: str
    command: str
    count: int
    seconds: float
    unit: str
    note: str = ""

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else float("inf")


def address(i: int) -> str:
    return Web3.to_checksum_address(Web3.keccak(text=f"vyperp-bench:{i}")[-20:])


def data(contract, fn: str, *args) -> bytes:
    return bytes.fromhex(contract.encode_abi(fn, list(args))[2:])


def deposit_all(net: LocalNet, lane: SimLane, owners: list[str], usd: float) -> None:
    """Mint to the deployer, then one deposit for each owner: all in blocks of BLOCK."""
    ch, token, funder = net.ch, net.token, net.backend.deployer
    units = net.units(usd)
    setup = [
        Tx(funder, token.address, data(token, "mint", funder, units * len(owners))),
        Tx(funder, token.address, data(token, "approve", ch.address, MAX_UINT)),
    ]
    lane.send_and_mine(setup, at=lane.timestamp())
    for start in range(0, len(owners), BLOCK):
        txs = [
            Tx(funder, ch.address, data(ch, "deposit", 0, units, o), gas=300_000)
            for o in owners[start : start + BLOCK]
        ]
        lane.send_and_mine(txs, at=lane.timestamp())


def setup_book(net: LocalNet, lane: SimLane, orders: int, size: int) -> None:
    """A maker with one huge resting order each side, 0.5% from the index."""
    ch, m = net.ch, net.market(SYMBOL)
    maker = address(-1)
    lane.set_balances([maker], 10**21)
    deposit_all(net, lane, [maker], 1e9)
    index = int(net.oracle(SYMBOL).functions.index().call())
    tick = int(m.functions.TICK_SIZE().call())
    bid, ask = index * 995 // 1000 // tick * tick, index * 1005 // 1000 // tick * tick
    quotes = [
        Tx(
            maker,
            ch.address,
            data(ch, "place_order", maker, 0, m.address, is_buy, size * orders, price, GTC, False, 0),
        )
        for is_buy, price in ((True, bid), (False, ask))
    ]
    lane.send_and_mine(quotes, at=lane.timestamp())


def limits(net: LocalNet) -> tuple[int, int]:
    """IOC limits that always reach the maker's quotes: index +- 2%, on the tick grid."""
    m = net.market(SYMBOL)
    index = int(net.oracle(SYMBOL).functions.index().call())
    tick = int(m.functions.TICK_SIZE().call())
    return index * 102 // 100 // tick * tick, index * 98 // 100 // tick * tick


def order_args(net: LocalNet, owners: list[str], orders: int, size: int) -> list[tuple]:
    """`orders` IOC orders' place_order arguments: each owner alternates buy and sell, staying flat."""
    m = net.market(SYMBOL)
    up, down = limits(net)
    out = []
    for k in range(orders):
        owner = owners[k % len(owners)]
        is_buy = (k // len(owners)) % 2 == 0
        out.append((owner, 0, m.address, is_buy, size, up if is_buy else down, IOC, False, 0))
    return out


def bench_participants(net: LocalNet, lane: SimLane, traders: int, orders: int, size: int) -> Rate:
    owners = [address(i) for i in range(traders)]
    lane.set_balances(owners, 10**21)
    deposit_all(net, lane, owners, 10_000)
    ch = net.ch
    txs = [
        Tx(a[0], ch.address, data(ch, "place_order", *a), gas=ORDER_GAS)
        for a in order_args(net, owners, orders, size)
    ]
    fill_topic = net.market(SYMBOL).events.Fill().topic  # 0x-prefixed hex, from the ABI
    started = time.monotonic()
    blocks: list[int] = []
    for start in range(0, len(txs), BLOCK):
        block = txs[start : start + BLOCK]
        for b in range(0, len(block), BATCH):
            lane.send(block[b : b + BATCH])
        blocks += lane.mine_pending(lane.timestamp())
    # mined and filled: the blocks' transaction counts and the market's Fill events (one per order:
    # each fills against the maker's one resting order). Receipts would cost more than the burst:
    # anvil builds a 1,000-transaction block's receipts in ~2 s.
    included = sum(
        len(h["transactions"])
        for h in lane.batch([("eth_getBlockByNumber", [hex(n), False]) for n in blocks])
    )
    flt = {
        "fromBlock": hex(blocks[0]),
        "toBlock": hex(blocks[-1]),
        "address": net.market(SYMBOL).address,
        "topics": [fill_topic],
    }
    fills = len(lane.call("eth_getLogs", flt))
    seconds = time.monotonic() - started
    return Rate(
        "participants' orders: node-signed, JSON-RPC batches of 500, blocks of 1,000",
        "python bench/simulation.py --orders N --traders T",
        fills,
        seconds,
        "tx/s",
        f"{included:,} mined in {len(blocks)} blocks, {fills:,} filled; {traders} traders",
    )


def bench_keeper(net: LocalNet, lane: SimLane, owners: list[str], count: int) -> Rate:
    """`count` keeper transactions through the liquidation keeper's path (send_batch, then
    wait_receipts): `settle_funding` of the traders, permissionless like `liquidate` (send_batch
    pre-flights without a sender), one batch of distinct accounts per block."""
    key = net.actor("bench keeper")
    client = ChainClient(net.w3, key.key, receipt_timeout_s=300, logger=logging.getLogger("bench.keeper"))
    settle = net.ch.functions.settle_funding
    calls = [settle(owners[k % len(owners)], 0) for k in range(count)]
    started = time.monotonic()
    hashes = []
    for start in range(0, count, len(owners)):
        batch = [Outgoing(k, c, KEEPER_GAS) for k, c in enumerate(calls[start : start + len(owners)])]
        sent = send_batch(client, batch, chunk=BATCH)
        hashes += [h for _k, h in sent if not isinstance(h, Exception)]
        lane.mine_pending(lane.timestamp())
    sending = time.monotonic() - started
    receipts = wait_receipts(client, hashes, timeout_s=300)
    seconds = time.monotonic() - started
    ok = sum(1 for r in receipts if not isinstance(r, Exception))
    from eth_keys.backends import get_backend

    return Rate(
        f"keeper transactions: settle_funding, signed locally (send_batch), blocks of {len(owners)}",
        "python bench/simulation.py --orders N --traders T",
        ok,
        seconds,
        "tx/s",
        f"{count - ok} failed; signed, sent and mined in {sending:.1f} s ({count / sending:,.0f} tx/s), then the "
        f"keeper's receipt polling {seconds - sending:.1f} s; signer {type(get_backend()).__name__}",
    )


def bench_scan(net: LocalNet, lane: SimLane, accounts: int, pages: list[int]) -> list[Rate]:
    have = int(net.ch.functions.account_count().call())
    owners = [address(100_000 + i) for i in range(max(0, accounts - have))]
    deposit_all(net, lane, owners, 100)
    n = int(net.ch.functions.account_count().call())
    out = []
    for page in pages:
        best = float("inf")
        for _ in range(3):
            started = time.monotonic()
            rows, failed = scan_health(net.ch, page=page)
            best = min(best, time.monotonic() - started)
            assert not failed and len(rows) == n, (len(rows), n, failed)
        out.append(
            Rate(
                f"liquidation keeper's health scan, pages of {page} (scan_health)",
                f"python bench/simulation.py --accounts {accounts}",
                n,
                best,
                "accounts/s",
                f"{n:,} accounts, {len(owners):,} of them created for this (deposits only)",
            )
        )
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--orders", type=int, default=5_000, help="orders in each burst")
    ap.add_argument("--traders", type=int, default=500, help="accounts the participants' burst comes from")
    ap.add_argument("--accounts", type=int, default=10_000, help="accounts whose health the keeper reads")
    ap.add_argument("--pages", default="100,250,500", help="health page sizes to measure")
    args = ap.parse_args()
    logging.getLogger("keeper.chain").setLevel(logging.WARNING)
    config = DeployConfig(markets=(default_config().markets[0].config,))
    node = Anvil(
        accounts=20,
        extra_args=("--gas-limit", str(GAS_LIMIT), "--block-base-fee-per-gas", "0", "--auto-impersonate"),
    ).start()
    try:
        node.rpc("anvil_setBlockTimestampInterval", [0])  # the index stays fresh whatever the bench takes
        net = start_localnet(config, rpc_url=node.url, accounts=20)
        lane = SimLane(node.url)
        lane.set_automine(False)
        size = int(net.market(SYMBOL).functions.LOT_SIZE().call()) * 10  # 0.001 BTC, $120 a fill
        setup_book(net, lane, 2 * args.orders + 10, size)
        results = [bench_participants(net, lane, args.traders, args.orders, size)]
        results.append(bench_keeper(net, lane, [address(i) for i in range(args.traders)], args.orders))
        results += bench_scan(net, lane, args.accounts, [int(p) for p in args.pages.split(",") if p])
        lane.close()
    finally:
        node.stop()
    version = os.popen(f"{node_binary()} --version").read().splitlines()[:1]
    print(f"\nbench/simulation.py on {os.cpu_count()} cores, {version[0] if version else 'anvil'}")
    print(f"{'what':<82} {'count':>7} {'seconds':>8} {'rate':>14}  note")
    print("-" * 150)
    for r in results:
        print(f"{r.what:<82} {r.count:>7,} {r.seconds:>8.2f} {r.rate:>9,.0f} {r.unit:<5}  {r.note}")
    print("\ncommand: python bench/simulation.py " + " ".join(sys.argv[1:]))
    print("targets: >= 500 tx/s; 10,000 accounts' health in < 1 s (>= 10,000 accounts/s)")
    return 0


def node_binary() -> str:
    from keeper.anvil import find_anvil

    return find_anvil()


if __name__ == "__main__":
    raise SystemExit(main())
