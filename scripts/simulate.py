"""`make demo`: a local vyperp exchange, end to end.

1. starts anvil on a free port and deploys the protocol (3 markets);
2. runs the oracle reporter as its own process (`keeper run oracle`), a
   seeded random walk per market with per-venue noise, and prints the
   indexes it reads back from the chain;
3. plays seed 001's worked example on the order book: a trader buys 0.1 BTC
   at $86,000, index and book move to $90,000, the account shows +$400;
4. stops everything it started.

    .venv/bin/python scripts/simulate.py [--steps N] [--interval S] [--out DIR]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from keeper.deploy import DeployConfig, MarketConfig, from_wad, to_wad  # noqa: E402
from keeper.localnet import LocalNet, start_localnet  # noqa: E402

IOC, GTC = 2, 0


def demo_markets() -> tuple[MarketConfig, ...]:
    return (
        MarketConfig("BTC-PERP", Decimal("86000"), tick_size=Decimal("1"), lot_size=Decimal("0.001")),
        MarketConfig("ETH-PERP", Decimal("4000"), tick_size=Decimal("0.1"), lot_size=Decimal("0.01")),
        MarketConfig("SOL-PERP", Decimal("200"), tick_size=Decimal("0.01"), lot_size=Decimal("0.1")),
    )


def read_indexes(net: LocalNet) -> dict[str, Decimal]:
    out = {}
    for symbol, md in net.deployment.markets.items():
        valid, price, fresh = md.oracle.functions.index_status().call()
        out[symbol] = from_wad(price) if valid else Decimal("NaN")
    return out


def run_oracle_reporter(net: LocalNet, out: Path, steps: int, interval: float) -> None:
    """The reporter as a separate process, exactly as an operator runs it."""
    manifest = out / "manifest.json"
    config = out / "keeper.yaml"
    reporter_keys = net.keys[2 : net.next_key]
    config.write_text(
        yaml.safe_dump(
            {
                "rpc_url": net.w3.provider.endpoint_uri,
                "manifest": str(manifest),
                "log_level": "WARNING",
                "oracle": {"interval_s": interval, "seed": 7, "reporter_keys": reporter_keys},
            }
        )
    )
    cmd = [
        sys.executable,
        "-m",
        "keeper.cli",
        "run",
        "oracle",
        "--config",
        str(config),
        "--steps",
        str(steps),
    ]
    print(f"$ keeper run oracle --config {config.relative_to(REPO)} --steps {steps}")
    proc = subprocess.Popen(cmd, cwd=REPO)
    try:
        print(f"{'t (s)':>6}  " + "  ".join(f"{s:>14}" for s in net.deployment.markets))
        t0 = time.time()
        while proc.poll() is None:
            idx = read_indexes(net)
            print(f"{time.time() - t0:>6.1f}  " + "  ".join(f"{v:>14.2f}" for v in idx.values()), flush=True)
            time.sleep(interval)
        if proc.returncode != 0:
            raise SystemExit(f"oracle reporter exited with {proc.returncode}")
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(10)
    net.resync_nonces()  # the reporter process sent from the same keys
    print("on-chain indexes after the reporter stopped:")
    for s, v in read_indexes(net).items():
        print(f"  {s:<10} {v:,.2f}")


def seed001_example(net: LocalNet) -> Decimal:
    """0.1 BTC bought at $86,000; index and book move to $90,000: +$400."""
    ch, btc = net.ch, net.market("BTC-PERP")
    net.set_index("BTC-PERP", 86_000)
    net.fund("maker", 1_000_000)
    net.fund("trader", 10_000)

    def order(who, is_buy, size, price, kind):
        a = net.actor(who)
        net.backend.transact(
            ch,
            "place_order",
            a.address,
            0,
            btc.address,
            is_buy,
            to_wad(size),
            to_wad(price),
            kind,
            False,
            0,
            sender=a.address,
        )

    order("maker", False, "0.1", 86_000, GTC)
    order("trader", True, "0.1", 86_000, IOC)
    net.set_index("BTC-PERP", 90_000)
    # the book moves too: mark = median(bid 90,000, ask 90,010, last 86,000) = 90,000
    order("maker", True, "0.01", 90_000, GTC)
    order("maker", False, "0.01", 90_010, GTC)
    s = ch.functions.account_summary(net.actor("trader").address, 0).call()
    pos = s[6][0]
    print("\nseed 001: 0.1 BTC bought at $86,000; index and book move to $90,000")
    print(
        f"  position {from_wad(pos[1])} BTC at entry ${from_wad(pos[2]):,.0f}, mark ${from_wad(pos[3]):,.0f}"
    )
    print(
        f"  unrealized PnL ${from_wad(pos[4]):+,.2f}   equity ${from_wad(s[2]):,.2f}   withdrawable ${from_wad(s[5]):,.2f}"
    )
    return from_wad(pos[4])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=8, help="oracle reporter steps")
    ap.add_argument("--interval", type=float, default=0.5, help="seconds between reporter steps")
    ap.add_argument("--out", type=Path, default=REPO / "out")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    print("starting anvil on a free port and deploying vyperp ...")
    with start_localnet(
        DeployConfig(markets=demo_markets()), manifest_path=args.out / "manifest.json"
    ) as net:
        m = net.deployment.manifest
        print(
            f"  chain {m['chain_id']} at {net.w3.provider.endpoint_uri}, clearinghouse {m['clearinghouse']}"
        )
        run_oracle_reporter(net, args.out, args.steps, args.interval)
        pnl = seed001_example(net)
    print("\nstopped anvil and the keeper.")
    return 0 if pnl == 400 else 1


if __name__ == "__main__":
    raise SystemExit(main())
