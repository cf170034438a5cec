"""A crowd of levered longs that one index move makes liquidatable, on a LocalNet (the idea of
bench/liquidations.py, for tests): keyless accounts (anvil `--auto-impersonate`), their deposits
and orders sent with automine off and mined in one block; a maker's bid deep enough to absorb
every liquidation, above every bankruptcy price."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import Any

from keeper.deploy import DeployConfig, MarketConfig, to_wad
from keeper.localnet import LocalNet

GTC, IOC = 0, 2
SYMBOL = "BTC-PERP"
PRICE = 100_000
MOVE_TO = 92_000  # -8%: every ~9x long is below maintenance (6.5%), none is bankrupt
BID = 91_000  # the maker's bid the liquidations sell into (bankruptcy prices are ~88,900)
SIZE = "0.01"  # $1,000 notional each: closed whole (small_position_notional)
MARGIN = "111.2"  # ~9x
ANVIL_ARGS = ("--auto-impersonate",)  # the crowd's accounts have no keys


def crowd_config() -> DeployConfig:
    """One market, BTC-PERP at PRICE."""
    return DeployConfig(
        markets=[MarketConfig(SYMBOL, Decimal(PRICE), tick_size=Decimal("1"), lot_size=Decimal("0.0001"))]
    )


def owner(i: int) -> str:
    return f"0x{0x30000 + i:040x}"


def levered_longs(net: LocalNet, n: int) -> list[int]:
    """`n` keyless accounts each long SIZE at PRICE with MARGIN, and the maker's bid at BID.
    Returns their account ids."""
    assert net.anvil is not None, "needs anvil (--auto-impersonate)"
    w3, be, m, ch = net.w3, net.backend, net.market(SYMBOL), net.ch
    net.fund("maker", 50_000_000)
    maker = net.actor("maker").address
    funder = net.actor("funder").address
    be.transact(net.token, "mint", funder, net.units(Decimal(MARGIN) * n + 1))
    be.transact(net.token, "approve", ch.address, 2**256 - 1, sender=funder)
    be.transact(ch, "place_order", maker, 0, m.address, False, to_wad(SIZE) * n, to_wad(PRICE), GTC, False, 0,
                sender=maker)  # fmt: skip
    owners = [w3.to_checksum_address(owner(i)) for i in range(n)]

    def tx(sender: str, gas: int, fn: str, args: list[Any]) -> tuple[str, list[Any]]:
        return "eth_sendTransaction", [
            {"from": sender, "to": ch.address, "gas": hex(gas), "data": ch.encode_abi(fn, args)}
        ]

    # one JSON-RPC batch, one block: per owner gas money, a deposit (by the funder), a buy into the ask
    batch: list[tuple[str, list[Any]]] = []
    for a in owners:
        batch.append(("anvil_setBalance", [a, hex(10**18)]))
        batch.append(tx(funder, 300_000, "deposit", [0, net.units(MARGIN), a]))
        batch.append(
            tx(a, 600_000, "place_order", [a, 0, m.address, True, to_wad(SIZE), to_wad(PRICE), IOC, False, 0])
        )
    net.anvil.set_automine(False)
    try:
        answers = w3.provider.make_batch_request(batch)
        net.anvil.mine()
    finally:
        net.anvil.set_automine(True)
    hashes = [
        r["result"] for (method, _), r in zip(batch, answers, strict=True) if method == "eth_sendTransaction"
    ]
    assert len(hashes) == 2 * n and all(w3.eth.get_transaction_receipt(h)["status"] == 1 for h in hashes)
    be.transact(ch, "place_order", maker, 0, m.address, True, to_wad(SIZE) * (n + 10), to_wad(BID), GTC, False, 0,
                sender=maker)  # fmt: skip
    return [ch.functions.account_of(a, 0).call() for a in owners]


def push_index(net: LocalNet, price: int) -> int:
    """Every reporter reports `price` and one block is mined with the reports, whether automine
    is on or not; returns that block. A move the index guard holds back is confirmed by the
    deployer (PROTOCOL.md §4) in a later block."""
    assert net.anvil is not None
    md = net.deployment.markets[SYMBOL]
    now = net.backend.timestamp()
    hashes = [
        net.backend.client(r).send_nowait(md.oracle.functions.report(to_wad(price), now), gas=150_000)
        for r in md.reporters
    ]
    net.anvil.mine()
    receipts = [net.backend.client(md.reporters[0]).wait(h) for h in hashes]
    assert len({r["blockNumber"] for r in receipts}) == 1
    if not md.oracle.functions.index_status().call()[0]:
        h = net.backend.client(net.backend.deployer).send_nowait(md.oracle.functions.reset_reference())
        net.anvil.mine()
        net.backend.client(net.backend.deployer).wait(h)
    return int(receipts[0]["blockNumber"])


def liquidations_per_account(net: LocalNet, from_block: int) -> Counter[int]:
    """How many `Liquidation` events (the LiquidationEngine's) each account has since `from_block`."""
    return Counter(
        int(e["args"]["account"]) for e in net.engine.events.Liquidation().get_logs(from_block=from_block)
    )


def liquidatable(net: LocalNet, accounts: list[int]) -> list[int]:
    rows: list[Any] = net.ch.functions.health(1, net.ch.functions.account_count().call()).call()
    wanted = set(accounts)
    return [int(r[0]) for r in rows if r[0] in wanted and r[4]]
