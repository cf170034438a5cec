"""The end of a simulation run (:mod:`keeper.sim.engine`): the :class:`SimData` the report is made
of (``data.json``), filled in from the chain once the keepers have stopped: the events, block
times, the solvency check (:mod:`keeper.sim.ledger`), the keepers' transactions and the run's
configuration and counters."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from keeper.bots.scan import batch_call
from keeper.chain import trace_revert_reason
from keeper.model import position_change_of_fill
from keeper.sim.ledger import check_solvency

# ---------------------------------------------------------------- collected data


@dataclass
class SimData:
    """Everything the report needs, JSON-serializable (``data.json``)."""

    config: dict[str, Any]
    symbols: list[str]
    phases: dict[str, tuple[int, int]]  # phase -> (start, end) s from the start
    crash_start: int  # s from the start
    steps: list[dict[str, Any]] = field(default_factory=list)
    events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    labels: dict[int, str] = field(default_factory=dict)  # account id -> who
    roles: dict[int, str] = field(default_factory=dict)  # account id -> maker, trader, whale, insurance, ...
    traders: list[dict[str, Any]] = field(default_factory=list)
    liquidatable: dict[int, list[tuple[int, bool]]] = field(default_factory=dict)  # account -> transitions
    block_times: dict[int, int] = field(default_factory=dict)  # block -> s from the start
    solvency: dict[str, Any] = field(default_factory=dict)
    keepers: dict[str, Any] = field(default_factory=dict)
    maker: dict[str, Any] = field(default_factory=dict)
    run: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, default=str)


class RunSummary:
    """The end of :class:`~keeper.sim.engine.Simulation` (mixed into it): what it collects into
    its :class:`SimData` at the end of the run."""

    # ------------------------------------------------------------ the end

    def _finish(self, final_block: int) -> None:
        """Events, block times, the solvency check and the keepers' summary, at `final_block`."""
        net, lane, gate, keepers, maker = self.net, self.lane, self.gate, self.keepers, self.maker
        assert net is not None and lane is not None and gate is not None and keepers is not None
        assert maker is not None
        d, data = net.deployment, self.data
        lo, hi = self.first_block, final_block
        ch, engine = net.ch, net.engine
        # BadDebt is the clearinghouse's event, the rest the liquidation engine's
        events = {
            name: _logs(getattr((ch if name == "BadDebt" else engine).events, name)(), lo, hi)
            for name in ("Liquidation", "BadDebt", "AutoDeleverage", "Deleveraged", "Takeover")
        }
        events["Covered"] = _logs(d.insurance_fund.events.Covered(), lo, hi)
        events["FundingSettled"] = []
        for s, md in d.markets.items():
            events["FundingSettled"] += [
                {**e, "symbol": s} for e in _logs(md.funding.events.FundingSettled(), lo, hi)
            ]
        maker_id = self.accounts[maker.owner]
        events["MakerPositionChanged"] = []
        for s, md in d.markets.items():
            # its own trades (PositionChanged) and its fills as a maker (Fill carries its new position)
            logs = _logs(md.market.events.PositionChanged(), lo, hi, {"account": maker_id})
            logs += [
                {**e, **position_change_of_fill(e)}
                for e in _logs(md.market.events.Fill(), lo, hi, {"maker": maker_id})
            ]
            logs.sort(key=lambda r: (r["block"], r["log_index"]))
            events["MakerPositionChanged"] += [{**e, "symbol": s} for e in logs]
        data.events = events
        for account, ep in self._episodes.items():
            if ep.transitions:
                data.liquidatable[account] = ep.transitions
        blocks = sorted({lo - 1, *range(lo, hi + 1)})
        headers = lane.batch([("eth_getBlockByNumber", [hex(b), False]) for b in blocks])
        data.block_times = {
            b: int(h["timestamp"], 16) - self.t_base for b, h in zip(blocks, headers, strict=True)
        }
        # keepers' own fee accounts (their share of liquidation fees)
        owners = {b: a for b, a in self.keeper_addresses.items()}
        ids = batch_call(net.w3, [ch.functions.account_of(a, 0) for a in owners.values()], hi)
        for bot, account in zip(owners, ids, strict=True):
            if isinstance(account, int) and account:
                data.labels[account], data.roles[account] = f"{bot} keeper", "keeper"
        # the liquidation keeper's backstop account (its takeovers), subaccount 1
        (backstop,) = batch_call(net.w3, [ch.functions.account_of(owners["liquidation"], 1)], hi)
        if isinstance(backstop, int) and backstop:
            data.labels[backstop], data.roles[backstop] = "liquidation keeper (backstop, sub 1)", "backstop"
        self.say(f"solvency check at block {hi} ...")
        solvency = check_solvency(
            ch, net.token, d.insurance_fund, {s: md.market for s, md in d.markets.items()}, hi
        )
        data.solvency = solvency.as_dict()
        data.keepers = {
            "processes": keepers.summary(),
            "transactions": self._keeper_outcomes(hi),
            "gate": {
                n: {"requests": ln.requests, "transactions": ln.transactions, "rounds": ln.rounds}
                for n, ln in gate.lanes.items()
            },
        }
        data.maker = {
            "account": maker_id,
            "hedges": {s: asdict(h) for s, h in maker.hedges.items()},
            "deposit": self.config.maker_deposit_usd,
        }
        data.run.update(
            {
                "seed": self.config.seed,
                "quick": self.config.quick,
                "steps": len(self.path),
                "first_block": lo,
                "final_block": hi,
                "participant_txs": dict(lane.sent_by_tag),
                **self.counters,
            }
        )

    def _keeper_outcomes(self, final_block: int) -> dict[str, Any]:
        """Per keeper: its transactions mined by `final_block`, and every one that reverted on-chain
        with the reason (`debug_traceTransaction`, which replays it inside its block)."""
        lane, gate = self.lane, self.gate
        assert lane is not None and gate is not None
        out: dict[str, Any] = {}
        for bot, ln in gate.lanes.items():
            hashes = list(dict.fromkeys(ln.hashes))
            receipts = lane.batch([("eth_getTransactionReceipt", [h]) for h in hashes]) if hashes else []
            mined = [r for r in receipts if r and int(r["blockNumber"], 16) <= final_block]
            reverted = []
            for r in mined:
                if int(r["status"], 16) == 1:
                    continue
                trace = lane.batch(
                    [("debug_traceTransaction", [r["transactionHash"], {"tracer": "callTracer"}])],
                    check=False,
                )[0]
                reason = trace_revert_reason(trace) or "?"
                reverted.append(
                    {
                        "block": int(r["blockNumber"], 16),
                        "tx": r["transactionHash"],
                        "reason": reason,
                        "gas_used": int(r["gasUsed"], 16),
                    }
                )
            out[bot] = {"sent": len(hashes), "mined": len(mined), "reverted": reverted}
        return out

    def _config_dict(self) -> dict[str, Any]:
        c = self.config
        return {
            "seed": c.seed,
            "quick": c.quick,
            "traders": c.traders,
            "schedule": asdict(c.schedule),
            "insurance_fund_usd": c.insurance_fund_usd,
            "maker_deposit_usd": c.maker_deposit_usd,
            "markets": {
                m.config.symbol: {
                    "start": float(m.config.initial_price),
                    "initial_margin": float(m.config.initial_margin),
                    "maintenance_margin": float(m.config.maintenance_margin),
                    "mark_band": float(m.config.mark_band),
                    "max_leverage": round(1 / float(m.config.initial_margin)),
                    "bankrupt_band": float(m.config.bankrupt_band),
                    "liquidation_fee": float(m.config.liquidation_fee),
                    "funding_interval": m.config.funding_interval,
                    "volatility": m.path.volatility,
                    "crash_beta": m.path.beta,
                    "maker_level_usd": m.book.level_usd,
                }
                for m in c.markets
            },
        }


def _logs(event: Any, lo: int, hi: int, filters: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Decoded logs of `event` in blocks lo..hi: args (ints as ints) + block, tx, log index."""
    kwargs: dict[str, Any] = {"from_block": lo, "to_block": hi}
    if filters:
        kwargs["argument_filters"] = filters
    out = []
    for ev in event.get_logs(**kwargs):
        row = dict(ev["args"])
        row.update(
            block=int(ev["blockNumber"]), tx=ev["transactionHash"].to_0x_hex(), log_index=int(ev["logIndex"])
        )
        out.append(row)
    out.sort(key=lambda r: (r["block"], r["log_index"]))
    return out


__all__ = ["RunSummary", "SimData"]
