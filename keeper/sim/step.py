"""One step of a simulation run (:mod:`keeper.sim.engine`, whose docstring describes it): the
oracle keeper reports, the maker and the crowd trade, the block keepers react block after block
until none has anything left to send; then the step's blocks are observed (which accounts are
liquidatable) and its state recorded."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from eth_abi import decode as abi_decode

from keeper.bots.scan import CallFailed, batch_call, resting_order_ids
from keeper.sim.config import SimError
from keeper.sim.crowd import TraderState
from keeper.sim.lane import Tx
from keeper.sim.market import WAD, CancelAll, Intent, MarketView, Order
from keeper.sim.path import Step

BLOCK_BOTS = ("funding", "liquidation", "adl")  # let go after every block the simulation mines
HEALTH_PAGE = 500  # Clearinghouse.health page
PARK_GRACE_S = 2.0  # how long a settled keeper with nothing pending gets to park before a block is mined
BOOK_DEPTH = 10  # levels per side read with Lens.market_summary
DEPTH_BAND = 0.02  # depth counted within +-2% of the index


@dataclass
class _Episode:
    """An account's liquidatable state, as observed block by block."""

    liquidatable: bool = False
    transitions: list[tuple[int, bool]] = field(default_factory=list)


class Stepping:
    """The steps of :class:`~keeper.sim.engine.Simulation` (mixed into it): running one, reading
    the markets, the participants' transactions, the observation and the record."""

    # ------------------------------------------------------------ one step

    def _step(self, step: Step) -> None:
        lane, gate, keepers = self.lane, self.gate, self.keepers
        assert lane is not None and gate is not None and keepers is not None
        laps: dict[str, float] = {}
        wall = lap = time.monotonic()
        t = self.t_base + step.t
        # 1. the oracle keeper reports this step's prices (reports mined as sent)
        lane.mine(t)
        gate.new_block()
        lane.set_automine(True)
        try:
            gate.release(["oracle"])
            if not gate.wait_settled(
                ["oracle"], self.config.settle_timeout_s, keepers.check_alive, parked_only=True
            ):
                raise SimError(f"step {step.index}: the oracle keeper did not report within the timeout")
        finally:
            lane.set_automine(False)
        laps["oracle"], lap = time.monotonic() - lap, time.monotonic()
        # 2. the maker and the crowd
        views = self._views(step)
        intents = self._intents(step, views)
        quoted = _quoted_depth(intents, self.maker.owner if self.maker else "", views)
        txs = [self._tx(i) for i in intents]
        hashes = lane.send(txs)
        block = lane.mine(t + 1)
        gate.new_block()
        for tx, receipt in zip(txs, lane.receipts(hashes, [block]), strict=True):
            self.counters[f"{tx.tag}_txs"] += 1
            self.counters[f"{tx.tag}_reverted"] += int(receipt["status"], 16) != 1
        laps["participants"], lap = time.monotonic() - lap, time.monotonic()
        # 3. the keepers react, block after block, until none has anything to send
        offset, blocks, capped = 2, 0, False
        while True:
            gate.release(BLOCK_BOTS)
            if not gate.wait_settled(BLOCK_BOTS, self.config.settle_timeout_s, keepers.check_alive):
                raise SimError(f"step {step.index}: a keeper did not settle within the timeout")
            # done when nothing is pending and every keeper parked. A settled keeper may still be
            # between its last receipt and parking (a loaded CPU makes that visible): it gets
            # PARK_GRACE_S to park, so no block nobody needs is mined (an empty block would make
            # the run's block numbers depend on timing)
            if lane.pending() == 0 and gate.wait_settled(BLOCK_BOTS, PARK_GRACE_S, parked_only=True):
                if lane.pending() == 0:
                    break
            if blocks >= self.config.max_blocks_per_step:
                capped = True
                break
            lane.mine(t + offset)
            gate.new_block()
            offset, blocks = offset + 1, blocks + 1
        self.counters["keeper_blocks"] += blocks
        self.counters["capped_steps"] += capped
        laps["keepers"], lap = time.monotonic() - lap, time.monotonic()
        self._observe()
        laps["observe"], lap = time.monotonic() - lap, time.monotonic()
        # 4. the hedge and the record
        self._record(step, t, blocks, time.monotonic() - wall, quoted)
        laps["record"] = time.monotonic() - lap
        self.data.steps[-1]["laps"] = {k: round(v, 3) for k, v in laps.items()}

    def _views(self, step: Step) -> dict[str, MarketView]:
        net = self.net
        assert net is not None
        fns = [
            net.lens.functions.market_summary(net.deployment.markets[s].market.address, 0)
            for s in self.config.symbols
        ]
        out = {}
        for symbol, summary in zip(
            self.config.symbols, _checked(batch_call(net.w3, fns), "market_summary"), strict=True
        ):
            out[symbol] = MarketView(
                symbol,
                int(summary[0]),
                int(summary[2]),
                int(summary[3]),
                int(summary[4]),
                step.prices[symbol],
            )
        return out

    def _intents(self, step: Step, views: dict[str, MarketView]) -> list[Intent]:
        net, maker, crowd = self.net, self.maker, self.crowd
        assert net is not None and maker is not None and crowd is not None
        w3 = net.w3
        maker_id = self.accounts[maker.owner]
        symbols = self.config.symbols
        markets = {s: net.deployment.markets[s].market for s in symbols}
        fns = [markets[s].functions.position(maker_id) for s in symbols]
        fns += [markets[t.symbol].functions.position(self.accounts[t.owner]) for t in crowd.traders]
        results = _checked(batch_call(w3, fns), "positions")
        maker_pos = {s: results[i] for i, s in enumerate(symbols)}
        rows = self._health(self.lane.block_number())  # type: ignore[union-attr]
        states = {}
        for t, pos in zip(crowd.traders, results[len(symbols) :], strict=True):
            equity, im, _mm = rows.get(self.accounts[t.owner], (0, 0, 0))
            states[t.owner] = TraderState(equity, im, int(pos[0]))
        resting = {
            s: resting_order_ids(net.lens, markets[s], maker_id, int(maker_pos[s][6]))
            if int(maker_pos[s][6])
            else []
            for s in symbols
        }
        crash = self.data.phases.get("crash", (0, 1))
        progress = (
            0.0 if step.t < crash[0] else (step.t - crash[0] + step.length) / max(crash[1] - crash[0], 1)
        )
        return maker.quote(
            self.t_base + step.t, self.specs, views, {s: int(maker_pos[s][0]) for s in symbols}, resting
        ) + crowd.orders(step, progress, views, states)

    def _tx(self, intent: Intent) -> Tx:
        net, maker = self.net, self.maker
        assert net is not None and maker is not None
        ch = net.ch
        market = self.specs[intent.symbol].address
        tag = "maker" if intent.owner == maker.owner else "crowd"
        if isinstance(intent, CancelAll):
            return Tx(
                intent.owner,
                ch.address,
                _data(ch, "cancel_all", intent.owner, 0, market, list(intent.order_ids)),
                tag=tag,
            )
        assert isinstance(intent, Order)
        data = _data(
            ch, "place_order", intent.owner, 0, market, intent.is_buy, intent.size, intent.price, intent.kind,
            intent.reduce_only, 0,
        )  # fmt: skip
        return Tx(intent.owner, ch.address, data, tag=tag)

    # ------------------------------------------------------------ observation

    def _health(self, block: int) -> dict[int, tuple[int, int, int]]:
        """Account -> (equity, IM, MM) at `block`, every page of Clearinghouse.health."""
        net = self.net
        assert net is not None
        n = int(net.ch.functions.account_count().call(block_identifier=block))
        fns = [net.ch.functions.health(s, min(HEALTH_PAGE, n + 1 - s)) for s in range(1, n + 1, HEALTH_PAGE)]
        out = {}
        for page in _checked(batch_call(net.w3, fns, block), "health"):
            for r in page:
                out[int(r[0])] = (int(r[1]), int(r[2]), int(r[3]))
        return out

    def _observe(self) -> None:
        """Every block since the last observation: which accounts are liquidatable (equity < MM)."""
        net, lane = self.net, self.lane
        assert net is not None and lane is not None
        latest = lane.block_number()
        blocks = list(range(self.observed_block + 1, latest + 1))
        if not blocks:
            return
        ch = net.ch
        n = int(ch.functions.account_count().call(block_identifier=latest))
        calls = []
        for b in blocks:
            for s in range(1, n + 1, HEALTH_PAGE):
                data = ch.encode_abi("health", [s, min(HEALTH_PAGE, n + 1 - s)])
                calls.append((b, ("eth_call", [{"to": ch.address, "data": data}, hex(b)])))
        answers = lane.batch([c for _b, c in calls], check=False)
        for (b, _c), answer in zip(calls, answers, strict=True):
            if isinstance(answer, dict):  # a step's first block: every index stale until the reports
                if not _reverted(answer):  # not a revert: the node failed (or no longer keeps the state)
                    raise SimError(f"reading health at block {b} failed: {answer.get('error')}")
                continue
            (rows,) = abi_decode(["(uint256,int256,uint256,uint256,bool)[]"], bytes.fromhex(answer[2:]))
            for account, equity, _im, mm, _liq in rows:
                ep = self._episodes.setdefault(int(account), _Episode())
                now = int(equity) < int(mm)
                if now != ep.liquidatable:
                    ep.liquidatable = now
                    ep.transitions.append((b, now))
        self.observed_block = latest

    def _record(
        self, step: Step, t: int, keeper_blocks: int, wall_s: float, quoted: dict[str, tuple[float, float]]
    ) -> None:
        net, maker = self.net, self.maker
        assert net is not None and maker is not None
        d = net.deployment
        symbols = self.config.symbols
        maker_id = self.accounts[maker.owner]
        fns: list[Any] = []
        for s in symbols:
            md = d.markets[s]
            fns += [
                net.lens.functions.market_summary(md.market.address, BOOK_DEPTH),
                md.funding.functions.predicted_rate(),
                md.funding.functions.last_rate(),
                md.market.functions.position(maker_id),
            ]
        fns += [
            d.insurance_fund.functions.totalAssets(),
            net.ch.functions.bad_debt(),
            net.ch.functions.margin(maker_id),
        ]
        r = _checked(batch_call(net.w3, fns), "the step's state")
        markets = {}
        for k, s in enumerate(symbols):
            summary, predicted, last, pos = r[4 * k : 4 * k + 4]
            index = int(summary[0])
            hedge = maker.rehedge(s, int(pos[0]), step.prices[s])
            h = maker.hedges[s]
            markets[s] = {
                "fair": step.prices[s],
                "index": index / WAD,
                "mark": int(summary[2]) / WAD,
                "best_bid": int(summary[3]) / WAD,
                "best_ask": int(summary[4]) / WAD,
                "open_interest": int(summary[6]) / WAD,
                "depth_bid_usd": _depth(summary[7], index, below=True),
                "depth_ask_usd": _depth(summary[8], index, below=False),
                "quoted_bid_usd": quoted.get(s, (0.0, 0.0))[0],
                "quoted_ask_usd": quoted.get(s, (0.0, 0.0))[1],
                "predicted_rate": int(predicted) / WAD,
                "last_rate": int(last) / WAD,
                "maker_mode": maker.modes.get(s, "normal"),
                "maker_size": int(pos[0]) / WAD,
                "maker_funding_owed": int(pos[5]) / WAD,
                "hedge_qty": h.qty,
                "hedge_value": h.value(step.prices[s]),
                "hedge_traded": hedge,
            }
        n = len(symbols) * 4
        self.data.steps.append(
            {
                "index": step.index,
                "phase": step.phase,
                "t": step.t,
                "block": self.observed_block,
                "insurance_assets": int(r[n]) / 10**d.config.collateral_decimals,
                "bad_debt": int(r[n + 1]) / WAD,
                "maker_equity": int(r[n + 2][0]) / WAD,
                "keeper_blocks": keeper_blocks,
                "wall_s": round(wall_s, 3),
                "markets": markets,
            }
        )


def _data(contract: Any, fn: str, *args: Any) -> bytes:
    return bytes.fromhex(contract.encode_abi(fn, list(args))[2:])


def _reverted(answer: dict[str, Any]) -> bool:
    """A JSON-RPC error answer to an `eth_call` that is the call's revert, not the node's failure."""
    error = answer.get("error")
    if not isinstance(error, dict):
        return False
    data, message = error.get("data"), str(error.get("message", ""))
    return (isinstance(data, str) and data.startswith("0x")) or message.startswith("execution reverted")


def _checked(results: list[Any], what: str) -> list[Any]:
    for r in results:
        if isinstance(r, CallFailed):
            raise SimError(f"reading {what} failed: {r.reason}")
    return results


def _depth(levels: Sequence[Any], index: int, *, below: bool) -> float:
    """USD resting within DEPTH_BAND of the index on one side of the book."""
    bound = index * (1 - DEPTH_BAND) if below else index * (1 + DEPTH_BAND)
    total = 0.0
    for price, size, _orders in levels:
        if (below and price >= bound) or (not below and price <= bound):
            total += int(price) * int(size) / WAD / WAD
    return total


def _quoted_depth(
    intents: Sequence[Intent], maker: str, views: dict[str, MarketView]
) -> dict[str, tuple[float, float]]:
    """USD the maker quoted within DEPTH_BAND of the index this step: (bids, asks) per market."""
    out: dict[str, list[float]] = {}
    for i in intents:
        if isinstance(i, Order) and i.owner == maker:
            index = views[i.symbol].index
            within = abs(i.price - index) <= index * DEPTH_BAND
            side = out.setdefault(i.symbol, [0.0, 0.0])
            side[0 if i.is_buy else 1] += i.size * i.price / WAD / WAD if within else 0.0
    return {s: (v[0], v[1]) for s, v in out.items()}


__all__ = ["BLOCK_BOTS", "Stepping"]
