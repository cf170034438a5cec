"""Integration: anvil, the protocol deployed, a book trading above the index,
and the funding keeper run as its own process (`keeper run funding`) while
chain time moves on: longs pay shorts, and the on-chain accumulator and every
settled rate equal the PROTOCOL.md §9 formulas recomputed from the events."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from decimal import Decimal
from typing import Any

import pytest
import yaml

from keeper.deploy import DeployConfig, MarketConfig, to_wad
from keeper.localnet import start_localnet
from keeper.units import WAD

pytestmark = pytest.mark.integration

SYMBOL = "SOL-PERP"
INDEX = Decimal("100")
STEP_S = 10  # chain seconds per step of the test
STEPS = 30  # 300 chain seconds: 5 funding intervals of 60 s


def tdiv(a: int, b: int) -> int:
    """Integer division truncating toward zero, as Vyper's `//` on signed integers."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def band_premium(bid: int, ask: int, index: int) -> int:
    """impact_band: P = (max(0, bid - index) - max(0, index - ask)) / index; a thin side counts as the index."""
    b = bid or index
    a = ask or index
    return tdiv((max(0, b - index) - max(0, index - a)) * WAD, index)


def funding_rate(premium: int, params: Any) -> int:
    """F = clamp(P + clamp(interest - P, +-clamp) x interval / period, +-cap), WAD, as FundingRate._rate."""
    interval, period, interest, clamp, cap = params[0], params[1], params[2], params[3], params[4]
    f_period = premium + max(-clamp, min(clamp, interest - premium))
    return max(-cap, min(cap, tdiv(f_period * interval, period)))


def settle_delta(rate: int, base: int, index: int, intervals: int, cap: int) -> int:
    """One settle(): the first interval at `rate`, the others at `base` (the interest part), the
    whole move within +-cap x index, as FundingRate.settle."""
    delta = tdiv(rate * index, WAD) + tdiv(base * index, WAD) * (intervals - 1)
    bound = cap * index // WAD
    return max(-bound, min(bound, delta))


def _events(contract: Any, name: str) -> list[Any]:
    logs = getattr(contract.events, name)().get_logs(from_block=0)
    return sorted(logs, key=lambda ev: (ev["blockNumber"], ev["logIndex"]))


def test_funding_keeper_process__longs_pay_shorts_by_the_formula(tmp_path: Any) -> None:
    market = MarketConfig(
        SYMBOL,
        INDEX,
        tick_size=Decimal("0.01"),
        lot_size=Decimal("0.01"),
        taker_fee=Decimal(0),
        maker_fee=Decimal(0),
        funding_interval=60,
        funding_period=600,  # a short period: F = 10% of the period rate per interval, visible
        sample_interval=10,
        impact_notional=Decimal("500"),
        premium_mode="impact_band",
    )
    manifest = tmp_path / "manifest.json"
    with start_localnet(DeployConfig(markets=[market]), manifest_path=manifest) as net:
        md = net.deployment.markets[SYMBOL]
        mkt, funding = md.market, md.funding
        for name in ("maker", "long", "short"):
            net.fund(name, 10_000)
        keeper = net.actor("funding-keeper")

        def order(who: str, is_buy: bool, size: str, price: str, order_type: int) -> None:
            price_wad = to_wad(price)
            hint = net.lens.functions.find_hint(mkt.address, is_buy, price_wad).call()
            a = net.actor(who).address
            args = (a, 0, mkt.address, is_buy, to_wad(size), price_wad, order_type, False, hint)
            net.backend.transact(net.ch, "place_order", *args, sender=a)

        # the maker quotes both sides above the index (100): bid 100.50, ask 101.50, 20 SOL each
        order("maker", True, "20", "100.5", 1)
        order("maker", False, "20", "101.5", 1)
        # a long buys 5 from the ask, a short sells 5 into the bid: the maker ends flat
        order("long", True, "5", "101.5", 2)
        order("short", False, "5", "100.5", 2)
        accounts = {who: net.account(who) for who in ("maker", "long", "short")}
        assert mkt.functions.position(accounts["long"]).call()[0] == to_wad(5)
        assert mkt.functions.position(accounts["short"]).call()[0] == -to_wad(5)
        assert mkt.functions.position(accounts["maker"]).call()[0] == 0
        # impact bid 100.5 > index: premium +0.5% (impact_band), every sample
        assert band_premium(*funding.functions.impact_prices(to_wad(500)).call(), to_wad(INDEX)) == 5 * 10**15

        config = tmp_path / "keeper.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "rpc_url": net.w3.provider.endpoint_uri,
                    "manifest": str(manifest),
                    "funding": {"interval_s": 0.1, "key": keeper.key},
                }
            )
        )
        proc = subprocess.Popen(
            [sys.executable, "-m", "keeper.cli", "run", "funding", "--config", str(config), "--steps", "200"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            # chain time moves in steps while the keeper (its own process) reads it and acts
            for _ in range(STEPS):
                if proc.poll() is not None:
                    break
                net.anvil.increase_time(STEP_S)
                net.set_index(SYMBOL, INDEX)  # the index stays fresh (max age 60 s)
                time.sleep(0.35)
            stdout, stderr = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == 0, stderr[-3000:]
        logs = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
        assert not [entry for entry in logs if entry["level"] == "ERROR"], stderr[-3000:]
        stopped = [entry for entry in logs if entry["msg"] == "funding keeper stopped"]
        assert stopped and stopped[0]["steps"] == 200 and stopped[0]["failures"] == 0

        settled = _events(funding, "FundingSettled")
        sampled = _events(funding, "PremiumSampled")
        assert len(settled) >= 3, f"only {len(settled)} settlements in {STEPS * STEP_S} s"
        assert stopped[0]["settles"] == len(settled) and stopped[0]["samples"] == len(sampled)

        # every settled rate is the formula of the mean of its interval's samples
        params = funding.functions.params().call()
        base = funding_rate(0, params)  # the interest part: 0.01% per 600 s x 60 s
        assert base == 10**13
        cumulative = 0
        sampled_settlements = 0
        for i, ev in enumerate(settled):
            after = settled[i - 1] if i else None
            window = [
                s["args"]["premium"]
                for s in sampled
                if (
                    after is None
                    or (s["blockNumber"], s["logIndex"]) > (after["blockNumber"], after["logIndex"])
                )
                and (s["blockNumber"], s["logIndex"]) < (ev["blockNumber"], ev["logIndex"])
            ]
            args = ev["args"]
            # without samples in the interval its premium is 0: interest only (no book read at settlement)
            assert args["premium"] == (tdiv(sum(window), len(window)) if window else 0)
            assert args["rate"] == funding_rate(args["premium"], params)
            # 0.5% premium, interest 0.01%, clamp 0.05%: F_period = 0.45%, F = 0.045% per 60 s
            assert args["rate"] == (45 * 10**13 if window else base)
            sampled_settlements += bool(window)
            cumulative += settle_delta(args["rate"], base, args["index"], args["intervals"], params[4])
            assert args["cumulative_funding"] == cumulative
        for s in sampled:
            a = s["args"]
            assert a["premium"] == band_premium(a["impact_bid"], a["impact_ask"], a["index"])

        assert sampled_settlements >= 3, "the keeper sampled too few intervals"
        # the accumulator: the sum of the settlements' moves
        assert mkt.functions.cumulative_funding().call() == cumulative > 0
        # longs pay shorts, equal and opposite (each rounded against its account: at most 1 wei apart)
        long_owed = mkt.functions.position(accounts["long"]).call()[5]
        short_owed = mkt.functions.position(accounts["short"]).call()[5]
        assert long_owed > 0 > short_owed
        assert long_owed == 5 * cumulative and 0 <= long_owed + short_owed <= 1
