"""Where the gas of the trading paths goes: the transactions of the gas
table's trading rows (bench/gas.py, a book of 5), replayed with ``debug_traceTransaction`` (anvil started
with ``--steps-tracing``), its gas split by contract and by kind of opcode
(cold/warm storage reads, storage writes by kind, events, calls, compute).

    .venv/bin/python bench/gas_trace.py

The split adds up to the receipt's ``gasUsed``: intrinsic gas (21,000 and
calldata) + execution - refund.
"""

from __future__ import annotations

import sys
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.gas import measure  # noqa: E402

CALLS = {"CALL", "STATICCALL", "DELEGATECALL", "CALLCODE"}


def kind(op: str, cost: int) -> str:
    """The class of an opcode's own cost."""
    if op == "SLOAD":
        return "SLOAD cold" if cost >= 2100 else "SLOAD warm"
    if op == "SSTORE":
        return {22100: "SSTORE new (cold)", 20000: "SSTORE new", 5000: "SSTORE (cold)", 2900: "SSTORE"}.get(
            cost, "SSTORE warm"
        )
    if op.startswith("LOG"):
        return "LOG"
    if op in ("TLOAD", "TSTORE"):
        return "transient"
    return "compute"


def split(trace: dict, to: str) -> tuple[dict[str, Counter], int]:
    """Execution gas by (contract, kind); call overheads by the caller."""
    steps = trace["structLogs"]
    out: dict[str, Counter] = defaultdict(Counter)
    stack_addr = [to.lower()]
    open_calls: list[tuple[int, int, str]] = []  # (step index, gas before, caller)
    child_sum: list[int] = []
    total = 0
    for i, s in enumerate(steps):
        depth = s["depth"]
        nxt = steps[i + 1] if i + 1 < len(steps) else None
        here = stack_addr[-1]
        if s["op"] in CALLS and nxt is not None and nxt["depth"] > depth:
            target = "0x" + s["stack"][-2][2:].rjust(40, "0")[-40:]
            open_calls.append((i, s["gas"], here))
            child_sum.append(0)
            stack_addr.append(target.lower())
            continue
        if nxt is not None and nxt["depth"] == depth:
            cost = s["gas"] - nxt["gas"]
        else:
            cost = s["gasCost"] if s["op"] not in CALLS else s["gas"] - (nxt["gas"] if nxt else s["gas"])
        out[here][kind(s["op"], cost)] += cost
        total += cost
        if child_sum:
            child_sum[-1] += cost
        if nxt is not None and nxt["depth"] < depth:
            # back in the caller: the call's own overhead = gas before - gas after - the child's steps
            _, before, caller = open_calls.pop()
            spent = child_sum.pop()
            stack_addr.pop()
            overhead = before - nxt["gas"] - spent
            out[caller]["CALL (cold/warm access, arguments)"] += overhead
            total += overhead
            if child_sum:
                child_sum[-1] += spent + overhead
    return out, total


def report(net, names: dict[str, str], title: str, receipt) -> None:
    tx = receipt["transactionHash"]
    trace = net.w3.provider.make_request(
        "debug_traceTransaction", [tx.hex() if hasattr(tx, "hex") else tx, {}]
    )
    if "error" in trace:
        raise RuntimeError(f"debug_traceTransaction: {trace['error']} (anvil needs --steps-tracing)")
    t = net.w3.eth.get_transaction(tx)
    data = bytes(t["input"])
    intrinsic = 21_000 + sum(16 if b else 4 for b in data)
    by_contract, execution = split(trace["result"], t["to"])
    used = int(receipt["gasUsed"])
    refund = intrinsic + execution - used
    print(
        f"\n{title}: gasUsed {used:,} = intrinsic {intrinsic:,} + execution {execution:,} - refund {refund:,}"
    )
    for addr, kinds in by_contract.items():
        name = names.get(addr, addr)
        print(f"  {name:<16} {sum(kinds.values()):>8,}")
        for k, g in kinds.most_common():
            print(f"      {k:<36} {g:>8,}")


TRACED = (
    "market order vs 1 resting, both hold positions",
    "market order vs 6 resting (6 makers)",
    "limit order at a new price level (fresh tick)",
    "limit order at a new price level (tick used before)",
    "limit order at an existing level",
    "limit order at a new price level between two levels (tick used before)",
    "limit order at a new price level between two levels (fresh tick)",
    "cancel",
    "cancel (level keeps other orders)",
    "cancel the oldest order of a level",
    "cancel inside a level (neither its oldest nor its newest order)",
    "cancel, the last order of a deeper level",
    "cancel, the last order of the worst level",
)


def main() -> int:
    def inspect(net, rows) -> None:
        m = net.market("BTC-PERP")
        md = net.deployment.markets["BTC-PERP"]
        names = {
            net.ch.address.lower(): "Clearinghouse",
            m.address.lower(): "PerpMarket",
            md.oracle.address.lower(): "IndexOracle",
            net.token.address.lower(): "collateral",
        }
        for row in rows:
            if row.name in TRACED and row.tx is not None:
                report(net, names, row.name, net.w3.eth.get_transaction_receipt(row.tx))

    measure(deep=5, anvil_args=("--steps-tracing",), inspect=inspect)
    return 0


if __name__ == "__main__":
    sys.exit(main())
