"""ADL keeper: auto-deleverages bankrupt positions that liquidation cannot handle (PROTOCOL.md §11).

One step (`run_once`):

1. earlier transactions without a receipt are looked up (never re-sent blindly);
2. the Clearinghouse's `health` pages give the bankrupt accounts (equity < 0), worst first
   (lowest equity / MM);
3. for each bankrupt account and each market where it holds a position, the pure
   `find_adl_cases` keeps the cases the insurance fund cannot cover:
   `worst_case_deficit(equity, |size|, mark, bankrupt_band) > insurance_capacity()` (the
   others belong to the liquidation keeper, which closes them into the book);
4. per case, one at a time (each ADL changes the scores of its counterparties): the live
   `adl_score` and position of every account with a position in that market (accounts
   1..account_count whose `active_markets` has the market's bit) are read at one block, and
   `plan_adl` (pure; `liquidation_model.adl_queue`) takes the opposite-side profitable
   positions, highest score first, ties to the lower account id, until the bankrupt size is
   absorbed (at most 32 per call: the rest next round);
5. `adl(account, market, candidates, order_ids)` is sent (pre-flight eth_call first) and its
   `Deleveraged` events logged, with every candidate's score and the reason.

`adl`, `adl_score`, `insurance_capacity` and `liquidation_params` are the LiquidationEngine's
(its `AutoDeleverage` and `Deleveraged` events come from the engine's address); the
Clearinghouse gives `health` and `active_markets`, the Lens the resting orders (`orders_of`)
an ADL cancels. Every address comes from the deployment manifest.

A revert meaning the state moved ("adl: account not bankrupt", "adl: no position", "adl:
insurance fund can cover, liquidate") is counted as skipped. Decisions come from on-chain
state only: a restarted keeper picks up where the chain is.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hexbytes import HexBytes
from web3.contract import Contract

from keeper.bots.inflight import InFlight
from keeper.bots.liquidation import is_benign_revert, priority
from keeper.bots.loop import LoopingBot
from keeper.bots.scan import (
    HEALTH_PAGE,
    CallFailed,
    Health,
    MarketDirectory,
    Position,
    batch_call,
    describe_failed_ranges,
    read_positions,
    receipt_events,
    resting_order_ids,
    scan_health,
)
from keeper.chain import ChainClient, TxError, TxReverted, TxTimeout
from keeper.liquidation_model import Candidate, LiquidationParams, adl_queue, worst_case_deficit
from keeper.retry import call_with_retry
from keeper.txpool import SentTx

MAX_ADL = 32  # LiquidationEngine.MAX_ADL: candidates per call

BENIGN_REVERTS = (
    "adl: account not bankrupt",
    "adl: no position",
    "adl: insurance fund can cover, liquidate",
)


@dataclass(frozen=True)
class AdlCase:
    """A bankrupt position the insurance fund cannot cover: for ADL."""

    account: int
    market: str
    equity: int
    size: int
    mark: int
    open_orders: int
    worst_case_deficit: int
    capacity: int


@dataclass(frozen=True)
class RankedCandidate:
    """One account with a position in the case's market, as read for the ranking."""

    account: int
    size: int
    score: int


@dataclass(frozen=True)
class AdlPlan:
    case: AdlCase
    takes: list[tuple[int, int, int]]  # (account, size taken, score), in call order
    eligible: int  # opposite-side profitable positions in the market
    unabsorbed: int  # bankrupt size left after this call (too few candidates, or beyond MAX_ADL)

    @property
    def candidates(self) -> list[int]:
        return [a for a, _, _ in self.takes]


# ---------------------------------------------------------------- pure logic


def find_adl_cases(
    bankrupt: Iterable[Health],
    positions: Mapping[int, Sequence[Position]],
    params: Mapping[str, LiquidationParams],
    capacity: int,
) -> tuple[list[AdlCase], list[tuple[int, str]]]:
    """The (account, market) pairs of bankrupt accounts (equity < 0) whose worst-case deficit
    exceeds the insurance fund's capacity, worst account first; and the pairs left to the
    liquidation keeper (the fund covers them)."""
    cases: list[AdlCase] = []
    to_liquidate: list[tuple[int, str]] = []
    for h in sorted((h for h in bankrupt if h.equity < 0), key=priority):
        for p in sorted(positions.get(h.account, ()), key=lambda p: (-p.notional, p.market)):
            if p.size == 0:
                continue
            worst = worst_case_deficit(h.equity, abs(p.size), p.mark, params[p.market].bankrupt_band)
            if worst > capacity:
                cases.append(
                    AdlCase(h.account, p.market, h.equity, p.size, p.mark, p.open_orders, worst, capacity)
                )
            else:
                to_liquidate.append((h.account, p.market))
    return cases, to_liquidate


def plan_adl(case: AdlCase, ranked: Iterable[RankedCandidate], *, max_candidates: int = MAX_ADL) -> AdlPlan:
    """The candidates of one ADL call: `adl_queue` (opposite side, score > 0, highest score first,
    ties to the lower account id, each taking min(remaining, |size|)), at most `max_candidates`."""
    ranked = [r for r in ranked if r.account != case.account]
    scores = {r.account: r.score for r in ranked}
    queue = adl_queue(case.size, [Candidate(r.account, r.size, r.score) for r in ranked])
    eligible = sum(1 for r in ranked if r.score > 0 and r.size != 0 and (r.size > 0) != (case.size > 0))
    takes = [(a, take, scores[a]) for a, take in queue[:max_candidates]]
    return AdlPlan(case, takes, eligible, abs(case.size) - sum(t for _, t, _ in takes))


def is_benign_adl_revert(reason: str) -> bool:
    return is_benign_revert(reason, BENIGN_REVERTS)


# ---------------------------------------------------------------- chain reads (shared with the auditor)


def read_market_scores(
    directory: MarketDirectory,
    engine: Contract,
    market: str,
    block: int | str = "latest",
    *,
    logger: logging.Logger | None = None,
) -> list[RankedCandidate]:
    """Size and live `adl_score` (the LiquidationEngine's view) of every account (1..account_count)
    with the market's bit in `active_markets`, at `block`."""
    ch = directory.ch
    n = int(call_with_retry(lambda: ch.functions.account_count().call(block_identifier=block), logger=logger))
    accounts = list(range(1, n + 1))
    bit = 1 << directory.addresses.index(market)
    masks = batch_call(directory.w3, [ch.functions.active_markets(a) for a in accounts], block, logger=logger)
    active = [
        a for a, m in zip(accounts, masks, strict=True) if not isinstance(m, CallFailed) and int(m) & bit
    ]
    mkt = directory.contracts[market]
    fns = [f for a in active for f in (mkt.functions.position(a), engine.functions.adl_score(a, market))]
    results = batch_call(directory.w3, fns, block, logger=logger)
    out: list[RankedCandidate] = []
    for k, a in enumerate(active):
        pos, score = results[2 * k], results[2 * k + 1]
        if isinstance(pos, CallFailed) or isinstance(score, CallFailed):
            reason = pos.reason if isinstance(pos, CallFailed) else score.reason  # type: ignore[union-attr]
            raise TxError(f"reading account {a} in {directory.name(market)} failed: {reason}")
        if int(pos[0]) != 0:
            out.append(RankedCandidate(a, int(pos[0]), int(score)))
    return out


# ---------------------------------------------------------------- bot


class AdlBot(LoopingBot):
    """Deleverages bankrupt positions beyond the insurance fund against the highest-scored opposite positions."""

    name = "adl"
    label = "ADL keeper"
    counters = {
        "adl_sent": ("sent", "ADL transactions the node accepted"),
        "adl": ("adls", "ADLs mined"),
        "adl_failed": ("adl_failed", "ADLs refused or reverted, not by a competitor"),
    }

    def __init__(
        self,
        client: ChainClient,
        clearinghouse: Contract,
        markets: Mapping[str, Contract] | None = None,
        *,
        engine: Contract,
        lens: Contract,
        max_per_round: int = 10,
        health_page: int = HEALTH_PAGE,
        dry_run: bool = False,
        logger: logging.Logger | None = None,
    ) -> None:
        self.client = client
        self.ch = clearinghouse
        self.engine = engine  # LiquidationEngine: adl, adl_score, insurance_capacity, liquidation_params
        self.lens = lens  # Lens: the resting orders an ADL cancels
        self.w3 = client.w3
        self.directory = MarketDirectory(clearinghouse, markets)
        self.max_per_round = max_per_round
        self.health_page = health_page
        self.dry_run = dry_run
        self.log = logger or logging.getLogger("keeper.adl")
        self._guard = threading.Lock()
        self.in_flight = InFlight(self.w3, client.address, client=client)
        self.steps = 0
        self.sent = 0
        self.adls = 0
        self.adl_failed = 0
        self.deleveraged_size = 0
        self.skipped = 0
        self.failures = 0
        self.last_success: float | None = None
        self.last_error: str | None = None
        self.last_round: dict[str, Any] = {}

    def _step(self) -> dict[str, int]:
        """One round. Returns counts (bankrupt, cases, adl, skipped, failed, in_flight), or None when a
        round is already running. (`run_once()` runs it under the in-progress guard.)"""
        started = time.monotonic()
        counts = dict.fromkeys(("bankrupt", "cases", "adl", "skipped", "failed", "in_flight"), 0)
        self.steps += 1
        self.in_flight.refresh(self.log)
        self.directory.refresh(self.log)
        block = int(call_with_retry(lambda: self.w3.eth.block_number, logger=self.log))
        rows, failed_pages = scan_health(self.ch, page=self.health_page, block=block, logger=self.log)
        if failed_pages:
            counts["failed"] += 1
            self._record_error("health", describe_failed_ranges(failed_pages))
        bankrupt = [h for h in rows if h.equity < 0]
        counts["bankrupt"] = len(bankrupt)
        if bankrupt:
            positions, failures = read_positions(
                self.directory, [h.account for h in bankrupt], block, logger=self.log
            )
            for account, reason in failures:
                counts["failed"] += 1
                self._record_error("position", f"account {account}: {reason}")
            markets = {p.market for ps in positions.values() for p in ps}
            params = {
                m: LiquidationParams(
                    *call_with_retry(self.engine.functions.liquidation_params(m), logger=self.log)
                )
                for m in markets
            }
            capacity = int(
                call_with_retry(
                    lambda: self.engine.functions.insurance_capacity().call(block_identifier=block)
                )
            )
            cases, to_liquidate = find_adl_cases(bankrupt, positions, params, capacity)
            for account, market in to_liquidate:
                self.log.debug(
                    "bankrupt, the insurance fund covers it: the liquidation keeper's",
                    extra={"account": account, "market": self.directory.name(market)},
                )
            counts["cases"] = len(cases)
            for case in cases[: self.max_per_round]:
                if (case.account, case.market) in self.in_flight.txs:
                    counts["in_flight"] += 1
                    continue
                self._handle(case, counts)
        self.adls += counts["adl"]
        self.skipped += counts["skipped"]
        self.failures += counts["failed"]
        if counts["failed"] == 0:
            self.last_success = time.time()
        self.last_round = {**counts, "block": block, "duration_s": round(time.monotonic() - started, 3)}
        if counts["bankrupt"] or counts["failed"]:
            self.log.info("ADL round done", extra=self.last_round)
        return counts

    def _handle(self, case: AdlCase, counts: dict[str, int]) -> None:
        """Rank, plan and send one ADL (state read at the latest block, after any earlier ADL of this round)."""
        try:
            block = int(call_with_retry(lambda: self.w3.eth.block_number, logger=self.log))
            ranked = read_market_scores(self.directory, self.engine, case.market, block, logger=self.log)
            plan = plan_adl(case, ranked)
            order_ids = resting_order_ids(
                self.lens, case.market, case.account, case.open_orders, block, logger=self.log
            )
        except TxError as exc:
            counts["failed"] += 1
            self._record_error("read", f"account {case.account}: {exc}")
            return
        fields = self._fields(plan, block)
        if not plan.takes:
            counts["failed"] += 1
            self._record_error(
                "adl", f"account {case.account}: no opposite-side profitable position to deleverage"
            )
            return
        if self.dry_run:
            self.log.info("dry-run: would auto-deleverage", extra=fields)
            return
        call = self.engine.functions.adl(case.account, case.market, plan.candidates, order_ids)
        try:
            tx_hash = self.client.send_nowait(call)
        except TxError as exc:
            self._outcome(case, exc, counts, fields)
            return
        self.in_flight.add((case.account, case.market), tx_hash)
        self.sent += 1
        try:
            receipt = self.client.wait(tx_hash)
        except TxTimeout as exc:
            counts["failed"] += 1
            self._record_error("adl", f"account {case.account}: {exc}")
            return
        except TxError as exc:
            self.in_flight.discard((case.account, case.market))
            self._outcome(case, exc, counts, fields)
            return
        self.in_flight.discard((case.account, case.market))
        self._mined(plan, tx_hash, receipt, fields, counts)

    def _mined(
        self, plan: AdlPlan, tx_hash: HexBytes, receipt: Any, fields: dict[str, Any], counts: dict[str, int]
    ) -> None:
        adl = receipt_events(self.engine, "AutoDeleverage", receipt)
        delev = receipt_events(self.engine, "Deleveraged", receipt)
        size = int(adl[0]["args"]["size"]) if adl else 0
        counts["adl"] += 1
        self.deleveraged_size += size
        self.log.info(
            "auto-deleveraged",
            extra={
                **fields,
                "tx_hash": tx_hash.to_0x_hex(),
                "block": receipt["blockNumber"],
                "gas_used": receipt["gasUsed"],
                "closed_size": size,
                "price": int(adl[0]["args"]["price"]) if adl else None,
                "deleveraged": [
                    {
                        "counterparty": int(e["args"]["counterparty"]),
                        "size": int(e["args"]["size"]),
                        "score": int(e["args"]["score"]),
                        "counterparty_size": int(e["args"]["counterparty_size"]),
                    }
                    for e in delev
                ],
            },
        )

    def _outcome(self, case: AdlCase, exc: TxError, counts: dict[str, int], fields: dict[str, Any]) -> None:
        if isinstance(exc, TxReverted) and is_benign_adl_revert(exc.reason):
            counts["skipped"] += 1
            self.log.info("ADL skipped: state moved", extra={**fields, "reason": exc.reason})
            return
        counts["failed"] += 1
        self.adl_failed += 1
        self._record_error("adl", f"account {case.account} {self.directory.name(case.market)}: {exc}")

    def _fields(self, plan: AdlPlan, block: int) -> dict[str, Any]:
        c = plan.case
        return {
            "account": c.account,
            "market": self.directory.name(c.market),
            "why": "bankrupt beyond the insurance fund: worst-case deficit > capacity",
            "equity": c.equity,
            "size": c.size,
            "mark": c.mark,
            "worst_case_deficit": c.worst_case_deficit,
            "insurance_capacity": c.capacity,
            "scores_block": block,
            "eligible": plan.eligible,
            "candidates": [{"account": a, "take": t, "score": s} for a, t, s in plan.takes],
            "unabsorbed": plan.unabsorbed,
        }

    def _on_adopted(self, adopted: list[SentTx]) -> None:
        self.in_flight.adopt(self.engine, adopted, "adl", self.log)

    def _record_error(self, what: str, detail: str) -> None:
        self.last_error = f"{what}: {detail}"
        self.log.error(f"{what} failed", extra={"what": what, "error": detail})

    def _start_info(self) -> dict[str, Any]:
        return {
            "clearinghouse": self.ch.address,
            "liquidation_engine": self.engine.address,
            "sender": self.client.address,
            "max_per_round": self.max_per_round,
        }

    def health(self) -> dict[str, Any]:
        return {
            **self._base_health(),
            "sender": self.client.address,
            "adl_sent": self.sent,
            "adls": self.adls,
            "adl_failed": self.adl_failed,
            "deleveraged_size": self.deleveraged_size,
            "pending_txs": self.in_flight.as_dict(),
            "last_round": dict(self.last_round),
        }


__all__ = [
    "BENIGN_REVERTS",
    "MAX_ADL",
    "AdlBot",
    "AdlCase",
    "AdlPlan",
    "RankedCandidate",
    "find_adl_cases",
    "is_benign_adl_revert",
    "plan_adl",
    "read_market_scores",
]
