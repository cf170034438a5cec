"""`make demo`: a local perp exchange under stress, and the report of what happened.

Starts anvil on a free port, deploys vyperp (BTC, ETH and SOL perps), funds the insurance
fund, starts the four protocol keepers as processes (`keeper run oracle|funding|liquidation|adl`
from a generated YAML config), and plays a seeded price path on simulated time with a market
maker doing the basis trade and a crowd of traders at 1x-100x: a calm period with funding, a
crash modelled on 10 October 2025 (BTC about -14% in 40 minutes, the worst minute in the middle,
the book's depth collapsing), a partial recovery. Writes `out/report.md` with its plots
(keeper/report/), and stops everything it started, also on Ctrl-C.

    python scripts/simulate.py [--seed N] [--quick] [--out DIR] [--rpc URL] [--no-progress]
    ape run simulate            # ape's local foundry node when connected to one, else an anvil of its own
    VYPERP_SIM_ARGS="--seed 3" ape run simulate      # options under ape (it passes none to main())

Under ape on its foundry node the default is `--quick`: ape-foundry runs anvil with
`--steps-tracing`, which keeps every transaction's trace in memory (the full run: ~20 GB).
`--rpc`: a running anvil dev node (default mnemonic) instead of a fresh one; the simulation
drives its mining and clock while it runs (see keeper/sim/engine.py).
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from keeper.anvil import DEFAULT_MNEMONIC  # noqa: E402
from keeper.chain import TxError  # noqa: E402
from keeper.report import write_report  # noqa: E402
from keeper.sim.config import SimError, default_config  # noqa: E402
from keeper.sim.engine import Simulation  # noqa: E402


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0].strip("`: "))
    ap.add_argument("--seed", type=int, default=7, help="seed of the price path and the crowd (default 7)")
    ap.add_argument("--quick", action="store_true", help="a short run (tests): fewer traders and steps")
    ap.add_argument("--out", type=Path, default=REPO / "out", help="where the report goes (default out/)")
    ap.add_argument("--rpc", help="a running anvil dev node (default mnemonic) instead of a fresh anvil")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    return ap.parse_args(list(argv))


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through every finally: keepers and node stopped


def simulate(args: argparse.Namespace) -> int:
    config = default_config(seed=args.seed, quick=args.quick)
    where = args.rpc or "a fresh anvil on a free port"
    print(f"vyperp stress simulation: seed {config.seed}, {config.traders} traders, {where}")
    started = time.monotonic()
    previous = signal.signal(signal.SIGTERM, _terminate) if _main_thread() else None
    try:
        data = Simulation(config, args.out, rpc_url=args.rpc, progress=not args.no_progress).run()
    except KeyboardInterrupt:
        print("\nsimulate: interrupted; every process and node it started is stopped", file=sys.stderr)
        return 130
    except (
        SimError,
        OSError,
        TxError,
    ) as exc:  # OSError, TxError: the node went away (e.g. a Ctrl-C killed it)
        print(f"\nsimulate: error: {exc}", file=sys.stderr)
        return 1
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    numbers = write_report(data, args.out)
    n = numbers
    print(f"\nreport: {args.out / 'report.md'} ({time.monotonic() - started:.0f} s)")
    rows = [
        ("accounts liquidated", f"{n['accounts_liquidated']} of {n['traders']}"),
        ("liquidations (closing / no fill)", f"{n['liquidations_closing']} / {n['liquidations_no_fill']}"),
        ("notional liquidated", f"${n['notional_liquidated_usd']:,.0f}"),
        ("backstop takeovers", f"{n['takeovers']} (${n['takeover_notional_usd']:,.0f})"),
        ("bad debt (covered by the fund)", f"${n['bad_debt_usd']:,.0f} (${n['bad_debt_covered_usd']:,.0f})"),
        ("insurance fund drawdown", f"${n['insurance_fund_drawdown_usd']:,.0f}"),
        ("ADL events", f"{n['adl_events']} (accounts {', '.join(map(str, n['adl_accounts'])) or '-'})"),
        ("keeper latency p50 / p90 / max", _latency(n)),
        (
            "solvency check",
            "holds to the wei" if n["solvency_holds"] else f"FAILS ({n['solvency_difference']})",
        ),
    ]
    for k, v in rows:
        print(f"  {k:<34} {v}")
    return 0 if n["solvency_holds"] else 1


def _latency(n: dict[str, Any]) -> str:
    b, s = n["latency_blocks"], n["latency_seconds"]
    if not b:
        return "-"
    return f"{b['p50']:g} / {b['p90']:g} / {b['max']:g} blocks, {s['p50']:g} / {s['p90']:g} / {s['max']:g} s"


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _ape_rpc() -> str | None:
    """Under `ape run`: the provider's RPC URI when it is a local dev node with the default
    mnemonic (ape-foundry's anvil), else None (the simulation starts an anvil of its own)."""
    try:
        from ape import networks

        provider = networks.active_provider
        if provider is None or provider.network.name != "local":
            return None
        uri = getattr(provider, "http_uri", None)
        mnemonic = getattr(provider, "mnemonic", None)
    except Exception:  # a provider without an RPC URI may raise anything: then not a node we can use
        return None
    if not uri or mnemonic != DEFAULT_MNEMONIC:
        return None
    return str(uri)


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None and "ape" in sys.modules:  # `ape run simulate` calls main() with no arguments
        rpc = _ape_rpc()
        args = shlex.split(os.environ.get("VYPERP_SIM_ARGS", ""))
        if rpc and "VYPERP_SIM_ARGS" not in os.environ:
            # ape-foundry starts anvil with --steps-tracing: every transaction's trace stays in memory
            # (the full run's ~20,000 transactions take ~20 GB); the quick run keeps it small
            args = ["--quick"]
        print(f"ape: {'using the connected node ' + rpc if rpc else 'not a local dev node: starting anvil'}")
        return simulate(parse_args([*args, "--rpc", rpc] if rpc else args))
    return simulate(parse_args(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    raise SystemExit(main())
