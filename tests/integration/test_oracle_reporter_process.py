"""Integration: anvil, the protocol deployed, and the oracle reporter run as
its own process (`keeper run oracle`); the index moves on-chain."""

import subprocess
import sys
from decimal import Decimal

import pytest
import yaml

from keeper.deploy import DeployConfig, MarketConfig, from_wad
from keeper.localnet import start_localnet

pytestmark = pytest.mark.integration


def test_oracle_reporter_process__moves_every_index_on_chain(tmp_path):
    markets = (
        MarketConfig("BTC-PERP", Decimal("100000"), tick_size=Decimal("1")),
        MarketConfig("SOL-PERP", Decimal("200")),
    )
    with start_localnet(DeployConfig(markets=markets), manifest_path=tmp_path / "m.json") as net:
        before = {s: md.oracle.functions.index().call() for s, md in net.deployment.markets.items()}
        config = tmp_path / "keeper.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "rpc_url": net.w3.provider.endpoint_uri,
                    "manifest": str(tmp_path / "m.json"),
                    "oracle": {
                        "interval_s": 0.2,
                        "seed": 11,
                        "volatility": 0.01,
                        "reporter_keys": net.keys[2:8],
                    },
                }
            )
        )
        proc = subprocess.run(
            [sys.executable, "-m", "keeper.cli", "run", "oracle", "--config", str(config), "--steps", "4"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        for symbol, md in net.deployment.markets.items():
            valid, price, fresh = md.oracle.functions.index_status().call()
            assert valid and fresh == 3
            assert price != before[symbol], f"{symbol} index did not move"
            # a random walk of 4 steps of 1% stays within ~10% of the start
            assert abs(from_wad(price) / from_wad(before[symbol]) - 1) < Decimal("0.1")
            # every source pushed: each reporter's last report is recent
            for i in range(3):
                kind, addr, p, ts = md.oracle.functions.source(i).call()
                assert kind == 1 and p > 0
