"""Gas table of vyperp, measured on the compiled contracts: every figure is a
real transaction's ``gasUsed`` from an anvil receipt (intrinsic gas and
refunds included), except views, which are ``eth_estimateGas`` minus the
21,000 intrinsic gas.

    .venv/bin/python bench/gas.py            # full table, book of 5,000 orders
    .venv/bin/python bench/gas.py --deep 500 # smaller deep book, faster

``measure()`` returns the figures; tests/integration/test_gas_budgets.py
asserts the budgets on them (with a smaller deep book and 100 positions).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from keeper import artifacts  # noqa: E402
from keeper.deploy import DeployConfig, MarketConfig, to_wad  # noqa: E402
from keeper.localnet import LocalNet, start_localnet  # noqa: E402

GTC, POST_ONLY, IOC = 0, 1, 2

# The budgets of the issues; `None`: printed, not budgeted.
BUDGETS = {
    "deposit (existing account)": 60_000,
    "withdraw (no position)": 60_000,
    "oracle report": 50_000,
    "index read, median of 3 (view)": 15_000,
    # the issue of price protection: at most 5,000 over the 123,518 measured before it
    "market order vs 1 resting, both hold positions": 123_518 + 5_000,
    "each further maker order in the same call": 25_000,
    "limit order at a new price level (tick used before)": 120_000,
    "limit order at a new price level (fresh tick)": 120_000,
    "limit order at a used tick, the account's only resting order": 120_000,
    "limit order at a new price level between two levels (tick used before)": 120_000,
    # the four corner shapes are accepted at their measured storage floor
    # (docs/PROTOCOL.md §15): budget = the figure measured then + 1,000
    # (131,390 before price protection: the band check and the order risk in the margin cost 1,450)
    "limit order at a new price level between two levels (fresh tick)": 132_840 + 1_000,
    "each further maker order, taking the maker's last resting order": 25_000,
    "cancel": 40_000,
    "cancel (level keeps other orders)": 40_000,
    "cancel, the account's last resting order": 40_000,
    "cancel the oldest order of a level": 40_000,
    "cancel inside a level (neither its oldest nor its newest order)": 47_905 + 1_000,  # corner shape
    "cancel, the last order of a deeper level": 47_689 + 1_000,  # corner shape
    "cancel, the last order of the worst level": 42_230 + 1_000,  # corner shape
    "funding settlement, 10 open positions": 60_000,
    "funding settlement, 10,000 open positions": 60_000,
    "premium sample, 10 open positions": 80_000,
    "premium sample, 10,000 open positions": 80_000,
    "liquidation of one position (one fill)": 180_000,
    "ADL, each further counterparty": 80_000,
}


@dataclass
class Row:
    name: str
    gas: int
    note: str = ""
    tx: object = None  # the measured transaction's hash (bench/gas_trace.py), None for derived rows


def bench_market() -> MarketConfig:
    return MarketConfig(
        "BTC-PERP",
        Decimal("100000"),
        tick_size=Decimal("1"),
        lot_size=Decimal("0.0001"),
        taker_fee=Decimal("0.0005"),
        maker_fee=Decimal("0.0002"),
        min_order_notional=Decimal("1"),
        max_open_orders=1000,
        max_fills=64,
        # the widest price band (index x (1 +- 20%)): room for the 5,000-level deep book
        price_band=Decimal("0.2"),
    )


class Bench:
    def __init__(self, net: LocalNet):
        self.net = net
        self.m = net.market("BTC-PERP")
        self.rows: list[Row] = []
        self.last = None  # the receipt gas() read last: add() names its tx for bench/gas_trace.py

    def gas(self, receipt) -> int:
        self.last = receipt
        return int(receipt["gasUsed"])

    def order(self, who: str, side: str, size, price, kind=GTC, hint: int = 0):
        a = self.net.actor(who)
        return self.net.backend.transact(
            self.net.ch,
            "place_order",
            a.address,
            0,
            self.m.address,
            side == "buy",
            to_wad(size),
            to_wad(price),
            kind,
            False,
            hint,
            sender=a.address,
        )

    def order_id(self, receipt) -> int:
        logs = self.m.events.OrderPlaced().process_receipt(receipt)
        return logs[-1]["args"]["order_id"]

    def cancel(self, who: str, oid: int, *, via_router: bool = False):
        """The owner's cancel at the market (`PerpMarket.cancel`), or through the
        Clearinghouse (`cancel_order`, the path operators and the CLI's --operator take)."""
        a = self.net.actor(who)
        if via_router:
            return self.net.backend.transact(
                self.net.ch, "cancel_order", a.address, 0, self.m.address, oid, sender=a.address
            )
        return self.net.backend.transact(self.m, "cancel", oid, sender=a.address)

    def add(self, name: str, gas: int, note: str = "") -> int:
        last = self.last
        tx = last["transactionHash"] if last is not None and int(last["gasUsed"]) == gas else None
        self.rows.append(Row(name, gas, note, tx))
        return gas

    def fill_book(self, n: int, start_price: int, per_account: int = 900) -> None:
        """n resting one-lot asks, one per tick from start_price, from as many
        spammer accounts as the open-order cap needs, sent in batches."""
        for k in range((n + per_account - 1) // per_account):
            who = f"spammer{start_price}_{k}"
            self.net.fund(who, 1_000_000)
            a = self.net.actor(who)
            client = self.net.backend.client(a.address)
            pending = []
            for i in range(k * per_account, min(n, (k + 1) * per_account)):
                price = start_price + i
                call = self.net.ch.functions.place_order(
                    a.address,
                    0,
                    self.m.address,
                    False,
                    to_wad("0.0001"),
                    to_wad(price),
                    GTC,
                    False,
                    price - 1 if i else 0,
                )
                pending.append(client.send_nowait(call, gas=400_000))
                if len(pending) >= 200:
                    self._check(client.wait_all(pending))
                    pending = []
                    # the oracle reporter would keep pushing: keep the index fresh (max_age 60 s)
                    self.net.set_index("BTC-PERP", 100_000)
            self._check(client.wait_all(pending))
        self.net.set_index("BTC-PERP", 100_000)

    @staticmethod
    def _check(results) -> None:
        for r in results:
            if isinstance(r, Exception) or r["status"] != 1:
                raise RuntimeError(f"filling the book failed: {r}")


def measure(deep: int = 5_000, anvil_args: tuple[str, ...] = (), inspect=None) -> dict[str, int]:
    """The vault, oracle and order-book rows. `inspect(net, rows)`, if given,
    runs before the node stops (bench/gas_trace.py traces the rows' txs)."""
    config = DeployConfig(markets=(bench_market(),))
    with start_localnet(config, accounts=40, anvil_args=anvil_args) as net:
        b = Bench(net)
        be = net.backend
        # ---- vault
        maker = net.actor("maker")
        be.transact(net.token, "mint", maker.address, net.units(10_000_000))
        be.transact(net.token, "approve", net.ch.address, 2**256 - 1, sender=maker.address)
        b.add(
            "deposit (new account)",
            b.gas(be.transact(net.ch, "deposit", 0, net.units(5_000_000), sender=maker.address)),
        )
        b.add(
            "deposit (existing account)",
            b.gas(be.transact(net.ch, "deposit", 0, net.units(1_000), sender=maker.address)),
        )
        b.add(
            "withdraw (no position)",
            b.gas(be.transact(net.ch, "withdraw", 0, net.units(500), sender=maker.address)),
        )
        net.fund("taker", 5_000_000)
        for k in ("maker2", "maker3", "maker4", "maker5", "maker6"):
            net.fund(k, 1_000_000)
        # ---- oracle
        md = net.deployment.markets["BTC-PERP"]
        now = be.timestamp()
        rep = be.client(md.reporters[0]).send(md.oracle.functions.report(to_wad(100_000), now))
        b.add("oracle report", b.gas(rep))
        view = net.w3.eth.estimate_gas({"to": md.oracle.address, "data": md.oracle.encode_abi("index", [])})
        b.add("index read, median of 3 (view)", view - 21_000, "eth_estimateGas - 21,000")
        # ---- trading (every measured taker order consumes exactly the makers named).
        # The budgeted rows are a market maker's steady state: each account keeps
        # other resting orders (a parked bid far below), so no fill or cancel
        # empties its order word. The rows "... its last resting order" show the
        # other case: the storage refund of an emptied word comes back.
        makers = ["maker", "maker2", "maker3", "maker4", "maker5", "maker6"]
        parked = {k: b.order_id(b.order(k, "buy", "0.0001", 81_000)) for k in makers}
        b.order("maker", "sell", "0.1", 100_000)
        b.add(
            "market order, first trade of both accounts", b.gas(b.order("taker", "buy", "0.1", 100_000, IOC))
        )
        b.order("maker", "sell", "0.1", 100_010)
        g1 = b.add(
            "market order vs 1 resting, both hold positions",
            b.gas(b.order("taker", "buy", "0.1", 100_010, IOC)),
        )
        # makers 2..6 get positions first, so each fill is the steady-state case
        for k in makers[1:]:
            b.order(k, "sell", "0.0001", 100_020)
            b.order("taker", "buy", "0.0001", 100_020, IOC)
        for k in makers:
            b.order(k, "sell", "0.1", 100_030)
        g6 = b.gas(b.order("taker", "buy", "0.6", 100_030, IOC))
        b.add("market order vs 6 resting (6 makers)", g6)
        b.add("each further maker order in the same call", (g6 - g1) // 5, "(6 fills - 1 fill) / 5")
        # ---- resting orders
        r = b.order("maker", "sell", "0.01", 100_200)
        b.add("limit order at a new price level (fresh tick)", b.gas(r))
        oid = b.order_id(r)
        b.add("cancel", b.gas(b.cancel("maker", oid)), "the best level's last order")
        r = b.order("maker", "sell", "0.01", 100_200)
        b.add("limit order at a new price level (tick used before)", b.gas(r))
        r2 = b.order("maker", "sell", "0.01", 100_200)
        b.add("limit order at an existing level", b.gas(r2))
        b.add(
            "cancel (level keeps other orders)", b.gas(b.cancel("maker", b.order_id(r2))), "its newest order"
        )
        # ---- the other shapes of a cancel: the oldest order, one inside a level, a deeper level's last
        q = [b.order_id(b.order("maker", "sell", "0.01", 100_300)) for _ in range(3)]
        worst = b.order_id(b.order("maker", "sell", "0.01", 100_400))
        b.add(
            "cancel inside a level (neither its oldest nor its newest order)", b.gas(b.cancel("maker", q[1]))
        )
        b.add("cancel the oldest order of a level", b.gas(b.cancel("maker", q[0])))
        b.add(
            "cancel, the last order of a deeper level",
            b.gas(b.cancel("maker", q[2])),
            "between a better and a worse level",
        )
        b.add("cancel, the last order of the worst level", b.gas(b.cancel("maker", worst)), "not the best")
        # ---- a new level between two others: both neighbours' links are rewritten
        # (the hint saves a walk; for a level right behind the best, 0 is cheaper:
        # a hint's level is verified by reading its tail order)
        behind = b.order_id(b.order("maker", "sell", "0.01", 100_400))
        r4 = b.order("maker", "sell", "0.01", 100_300)
        b.add(
            "limit order at a new price level between two levels (tick used before)",
            b.gas(r4),
            "between 100,200 and 100,400; hint 0 (a walk of one level from the best)",
        )
        fresh_behind = b.order_id(b.order("maker", "sell", "0.01", 100_460))
        r5 = b.order("maker", "sell", "0.01", 100_430, hint=100_400)
        b.add(
            "limit order at a new price level between two levels (fresh tick)",
            b.gas(r5),
            "between 100,400 and 100,460; hint 100,400",
        )
        for oid in (b.order_id(r5), fresh_behind, b.order_id(r4), behind):
            b.cancel("maker", oid)
        r3 = b.order("maker", "sell", "0.01", 100_200)
        b.add(
            "cancel through the Clearinghouse (level keeps other orders)",
            b.gas(b.cancel("maker", b.order_id(r3), via_router=True)),
            "the operators' path",
        )
        # ---- the same when the order is the account's only one
        for k in makers:
            b.cancel(k, parked[k])
        b.add("cancel, the account's last resting order", b.gas(b.cancel("maker", b.order_id(r))))
        r = b.order("maker", "sell", "0.01", 100_200)
        b.add("limit order at a used tick, the account's only resting order", b.gas(r))
        b.cancel("maker", b.order_id(r))
        b.order("maker", "sell", "0.1", 100_040)
        g1 = b.gas(b.order("taker", "buy", "0.1", 100_040, IOC))
        for k in makers:
            b.order(k, "sell", "0.1", 100_050)
        g6 = b.gas(b.order("taker", "buy", "0.6", 100_050, IOC))
        b.add("each further maker order, taking the maker's last resting order", (g6 - g1) // 5)
        # ---- depth independence: 5 vs `deep` resting orders behind the top of book
        b.order("maker", "buy", "0.0001", 81_000)
        results = {}
        for label, n, base in (("5", 5, 101_000), (str(deep), deep, 110_000)):
            b.fill_book(n, base)
            top = base + n + 10  # a fresh tick behind the whole book
            r = b.order("maker", "sell", "0.01", top, hint=base + n - 1)
            place = b.gas(r)
            cancel = b.gas(b.cancel("maker", b.order_id(r)))
            results[label] = (place, cancel)
            b.add(f"place at a fresh tick behind a book of {label}", place, "hint = the level in front")
            b.add(f"cancel in a book of {label}", cancel)
            # market order against the best ask (the deep book sits behind it)
            b.order("maker", "sell", "0.001", 100_500 if n == 5 else 100_600)
            mo = b.gas(b.order("taker", "buy", "0.001", 100_500 if n == 5 else 100_600, IOC))
            b.add(f"market order vs 1 resting, book of {label}", mo)
        if inspect is not None:
            inspect(net, b.rows)
        return {row.name: row.gas for row in b.rows} | {"_rows": b.rows}


def measure_funding(counts: tuple[int, ...] = (10, 10_000)) -> list[Row]:
    """Premium sample and settlement gas with N open positions: N accounts
    (impersonated on anvil, no keys needed) each short one lot against a
    maker's bid; a book around the index for the impact prices."""
    rows: list[Row] = []
    config = DeployConfig(markets=(bench_market(),))
    with start_localnet(
        config, accounts=20, anvil_args=("--auto-impersonate", "--gas-limit", "1000000000")
    ) as net:
        w3, be, m = net.w3, net.backend, net.market("BTC-PERP")
        funding = net.deployment.markets["BTC-PERP"].funding
        net.fund("maker", 50_000_000)
        maker = net.actor("maker").address
        funder = net.actor("funder").address
        be.transact(net.token, "mint", funder, net.units(100 * max(counts) + 1))
        be.transact(net.token, "approve", net.ch.address, 2**256 - 1, sender=funder)
        made = 0
        for n in counts:
            # the maker's bid absorbs the new shorts; then a book around the index
            be.transact(
                net.ch,
                "place_order",
                maker,
                0,
                m.address,
                True,
                to_wad("0.0001") * (n - made),
                to_wad(99_990),
                GTC,
                False,
                0,
                sender=maker,
            )
            # setup in blocks of 500 accounts (automine off): one block per tx gets slow on a long chain
            hashes = []
            net.anvil.set_automine(False)
            try:
                for i in range(made, n):
                    owner = w3.to_checksum_address(f"0x{0x10000 + i:040x}")
                    net.anvil.rpc("anvil_setBalance", [owner, hex(10**18)])
                    hashes.append(
                        w3.eth.send_transaction(
                            {
                                "from": funder,
                                "to": net.ch.address,
                                "gas": 300_000,
                                "data": net.ch.encode_abi("deposit", [0, net.units(100), owner]),
                            }
                        )
                    )
                    hashes.append(
                        w3.eth.send_transaction(
                            {
                                "from": owner,
                                "to": net.ch.address,
                                "gas": 600_000,
                                "data": net.ch.encode_abi(
                                    "place_order",
                                    [
                                        owner,
                                        0,
                                        m.address,
                                        False,
                                        to_wad("0.0001"),
                                        to_wad(99_990),
                                        IOC,
                                        False,
                                        0,
                                    ],
                                ),
                            }
                        )
                    )
                    if (i + 1 - made) % 500 == 0 or i == n - 1:
                        net.anvil.mine()
                        net.anvil.set_automine(True)  # the reporter keeps the index fresh
                        net.set_index("BTC-PERP", 100_000)
                        net.anvil.set_automine(False)
            finally:
                net.anvil.set_automine(True)
            net.set_index("BTC-PERP", 100_000)
            failed = [h for h in hashes[-1000:] if w3.eth.get_transaction_receipt(h)["status"] != 1]
            if failed:
                tx = w3.eth.get_transaction(failed[0])
                try:
                    w3.eth.call({"from": tx["from"], "to": tx["to"], "data": tx["input"]})
                except Exception as exc:  # noqa: BLE001 - report why a setup transaction failed
                    raise RuntimeError(f"setup transaction failed: {exc}") from exc
                raise RuntimeError(f"{len(failed)} setup transactions failed")
            made = n
            longs, shorts = m.functions.open_interest_sides().call()
            assert shorts == to_wad("0.0001") * n, "positions not opened"
            net.set_index("BTC-PERP", 100_000)
            ask = be.transact(
                net.ch,
                "place_order",
                maker,
                0,
                m.address,
                False,
                to_wad("0.05"),
                to_wad(100_020),
                GTC,
                False,
                0,
                sender=maker,
            )
            bid = be.transact(
                net.ch,
                "place_order",
                maker,
                0,
                m.address,
                True,
                to_wad("0.05"),
                to_wad(99_980),
                GTC,
                False,
                0,
                sender=maker,
            )
            for _cycle in range(2):  # the second cycle is the steady state measured
                net.anvil.increase_time(61)
                net.set_index("BTC-PERP", 100_000)
                sample = int(be.transact(funding, "sample")["gasUsed"])
                nft = funding.functions.next_funding_time().call()
                net.anvil.rpc("evm_setNextBlockTimestamp", [nft])
                net.anvil.mine()
                net.set_index("BTC-PERP", 100_000)
                settle = int(be.transact(funding, "settle")["gasUsed"])
            rows.append(
                Row(f"premium sample, {n:,} open positions", sample, "impact walk of 1 level per side")
            )
            rows.append(Row(f"funding settlement, {n:,} open positions", settle))
            for r in (ask, bid):
                oid = m.events.OrderPlaced().process_receipt(r)[-1]["args"]["order_id"]
                be.transact(net.ch, "cancel_order", maker, 0, m.address, oid, sender=maker)
    return rows


def measure_liquidation(health_accounts: int = 100) -> list[Row]:
    """Liquidation, takeover, ADL and the keepers' health view, on anvil."""
    rows: list[Row] = []
    config = DeployConfig(markets=(bench_market(),))
    with start_localnet(config, accounts=health_accounts + 20) as net:
        b = Bench(net)
        be, m = net.backend, b.m
        net.fund("maker", 10_000_000)
        keeper = net.actor("keeper")

        def open_long(who: str, margin, size, price) -> int:
            net.fund(who, margin)
            b.order("maker", "sell", size, price)
            b.order(who, "buy", size, price, IOC)
            return net.ch.functions.account_of(net.actor(who).address, 0).call()

        # ---- liquidation: 0.1 BTC at $100,000 with $1,100, index to $93,600, one bid absorbs the close
        victims = [open_long(f"victim{i}", 1_100, "0.1", 100_000) for i in range(3)]
        b.order("maker", "buy", "1", 93_500)
        net.set_index("BTC-PERP", 93_600)
        first = be.transact(
            net.engine, "liquidate", victims[0], m.address, 2**256 - 1, [], sender=keeper.address
        )
        rows.append(Row("liquidation, keeper's first (creates its account)", b.gas(first)))
        r = be.transact(net.engine, "liquidate", victims[1], m.address, 2**256 - 1, [], sender=keeper.address)
        rows.append(Row("liquidation of one position (one fill)", b.gas(r), "dYdX v1: about 152,000"))
        # ---- takeover of a position the book cannot absorb
        net.set_index("BTC-PERP", 93_600)
        backstop = net.actor("backstop")
        net.fund("backstop", 100_000)
        r = be.transact(
            net.engine, "takeover", victims[2], m.address, to_wad("0.1"), 0, sender=backstop.address
        )
        rows.append(Row("backstop takeover (whole position)", b.gas(r)))
        # ---- health view of N accounts with positions
        for i in range(max(0, health_accounts - net.ch.functions.account_count().call())):
            open_long(f"h{i}", 20_000, "0.01", 93_600)
        count = net.ch.functions.account_count().call()
        n = min(health_accounts, count)
        est = net.w3.eth.estimate_gas({"to": net.ch.address, "data": net.ch.encode_abi("health", [1, n])})
        rows.append(Row(f"health view of {n} accounts (view)", est - 21_000, "eth_estimateGas - 21,000"))
    # ---- ADL: a bankrupt long against 1 and against 3 profitable shorts
    adl_gas = {}
    for k in (1, 3):
        with start_localnet(config, accounts=30) as net:
            b = Bench(net)
            be, m = net.backend, b.m
            net.fund("maker", 10_000_000)
            shorts = []
            for i in range(k):
                net.fund(f"short{i}", 50_000)
                b.order("maker", "buy", "1", 100_000)
                b.order(f"short{i}", "sell", "1", 100_000, IOC)
                shorts.append(net.ch.functions.account_of(net.actor(f"short{i}").address, 0).call())
            net.set_index("BTC-PERP", 110_000)
            net.fund("levered", 11_200 * k)
            b.order("maker", "sell", str(k), 110_000)
            b.order("levered", "buy", str(k), 110_000, IOC)
            bankrupt = net.ch.functions.account_of(net.actor("levered").address, 0).call()
            net.set_index("BTC-PERP", 80_000)
            ranked = sorted(shorts, key=lambda a: -net.engine.functions.adl_score(a, m.address).call())
            r = be.transact(
                net.engine, "adl", bankrupt, m.address, ranked, [], sender=net.actor("keeper").address
            )
            adl_gas[k] = b.gas(r)
    rows.append(Row("ADL against 1 counterparty", adl_gas[1]))
    rows.append(Row("ADL, each further counterparty", (adl_gas[3] - adl_gas[1]) // 2, "(3 - 1) / 2"))
    return rows


def sizes() -> list[Row]:
    return [
        Row(
            n,
            artifacts.runtime_size(n),
            f"runtime bytes (target {artifacts.SIZE_TARGET:,}, EIP-170 {artifacts.EIP170_LIMIT:,})",
        )
        for n in artifacts.deployables()
    ]


def print_rows(title: str, rows: list[Row]) -> int:
    """Print a table; return how many figures are over their budget."""
    print(f"\n{title:<58} {'gas':>9}  {'budget':>8}  note")
    print("-" * 100)
    over = 0
    for row in rows:
        budget = BUDGETS.get(row.name)
        mark = ""
        if budget is not None:
            mark = f"{budget:>8,}" + ("" if row.gas <= budget else "  OVER")
            over += row.gas > budget
        print(f"{row.name:<58} {row.gas:>9,}  {mark:>8}  {row.note}", flush=True)
    return over


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--deep", type=int, default=5_000, help="resting orders in the deep book")
    ap.add_argument("--positions", type=int, default=10_000, help="open positions for the funding figures")
    args = ap.parse_args()
    over = 0
    print(f"\n{'contract':<58} {'bytes':>9}  {'target':>8}  headroom  (EIP-170: {artifacts.EIP170_LIMIT:,})")
    print("-" * 100)
    for row in sizes():
        flag = "  OVER" if row.gas > artifacts.SIZE_TARGET else ""
        over += row.gas > artifacts.SIZE_TARGET
        room = artifacts.EIP170_LIMIT - row.gas
        print(f"{row.name:<58} {row.gas:>9,}  {artifacts.SIZE_TARGET:>8,}  {room:>8,}{flag}")
    figures = measure(args.deep)
    over += print_rows("vault, oracle, order book", figures.pop("_rows"))
    over += print_rows("funding", measure_funding((10, args.positions)))
    over += print_rows("liquidation, takeover, ADL", measure_liquidation())
    return 1 if over else 0


if __name__ == "__main__":
    raise SystemExit(main())
