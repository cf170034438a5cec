"""Liquidation keeper: finds accounts below maintenance margin and liquidates them, worst first.

One step (`run_once`):

1. earlier transactions without a receipt are looked up; their (account,
   market) pairs are skipped while they may still be mined (never re-sent
   blindly);
2. the Clearinghouse's batched `health(from, count)` view is read in pages
   (500 accounts per call). A page reverts as a whole when the index of a
   market one of its accounts trades is stale: it is split in halves (within
   a budget) so that the accounts not exposed to that market are still read;
   the accounts that fail are logged, counted as one failure, and read again
   next round;
3. for each liquidatable account (`equity < MM`), its markets
   (`active_markets` bitmask) and positions are read (JSON-RPC batches), and
   the pure planner (`plan_liquidations`) decides, per (account, market):

   * equity >= 0, or equity < 0 and the insurance fund can cover the worst
     case (`worst_case_deficit <= insurance_capacity`)    -> `liquidate`;
   * equity < 0, the fund covers it alone but not after the bankrupt ones
     before it in this plan                               -> `liquidate` too, in
     the same batch after the ones before it (mined in that order, worst first:
     the contract re-checks the capacity per call and refuses, "insurance fund
     cannot cover, adl", one the ones before it left uncovered: handed to ADL,
     no failure). The ADL keeper, like `adl`, checks each account alone against
     the whole capacity, so these are never left waiting between the two;
   * equity < 0 beyond what the fund can cover            -> left to the ADL
     keeper (logged, counted as `adl_handoff`).

   **Worst first** means the lowest `equity / MM` ratio first (bankrupt
   accounts have a negative ratio and come before every solvent one); ties go
   to the larger shortfall `MM - equity`, then the lower account id. The
   ratio is size-independent: an account about to go bankrupt goes before a
   large one barely under its margin. Within an account, the largest
   notional first;
4. the resting orders of each chosen account in that market are listed
   (`Lens.orders_of`, pages of 1,000 ids; at most 200 per call, the rest
   next round) so that the call cancels all of them and closes;
5. every liquidation is sent at once (`send_batch`: one JSON-RPC batch of
   pre-flight `eth_call`s re-checks each on-chain just before sending, then
   the transactions are signed and sent in batches of 100, worst first; the
   gas limit is bounded by the market's `max_fills` and the orders cancelled,
   `liquidation_gas`), then every receipt is awaited (batched polling). A
   revert meaning "someone was first" ("not liquidatable", "liquidate: no
   position") is counted as skipped, "insurance fund cannot cover, adl" as a
   hand-off to ADL, neither as a failure. A transaction without a receipt in
   time stays in flight (`InFlight`) until its receipt shows up or its nonce
   is taken;
6. **Backstop takeover** (opt-in: `takeover_subaccount`, PROTOCOL.md §10): the
   positions whose liquidation closed nothing in an earlier round (their
   resting orders cancelled by it) or reverted "would leave the account below
   zero, takeover" are read at the round's scan block and taken over, in the
   round's one batch after the liquidations, from the keeper's own subaccount
   (`takeover(account, market, size, subaccount)`), worst first, each as
   much as the subaccount's margin allows in whole lots (`plan_takeovers`:
   a takeover adds at most `size x mark x imr` to its initial margin; at most
   `takeover_max_notional` each; a bankrupt account only whole and only when
   the fund covers it), re-checked by `eth_call` from our address and sent like
   the liquidations (tracked in flight under the same (account, market) key:
   never sent twice, nor while a liquidation of the pair may be mined).

Everything is decided from on-chain state, so a restarted keeper (or a second
one) finds nothing left to do after the first has acted. A liquidation that
closed nothing (the book has no bid/ask within the bankruptcy price) is not
retried for `no_fill_backoff_blocks` blocks: the backstop `takeover` or
deeper liquidity is needed, which is logged.

Its own liquidations still in the node's pool when it starts (a restart after
`kill -9`) are found with `txpool_content` and count as in flight: they are
not sent again. One whose receipt comes after its round's wait (mining
paused; replaced with bumped fees by the ChainClient meanwhile) is counted
when it shows up. The latency of each liquidation (the
`liquidation_latency_*` metrics) runs from the scan that first found the
account liquidatable (in blocks: from that scan's block) to the liquidation's
receipt; after a restart, from the first scan of the new process.

The contracts (every address from the deployment manifest): the Clearinghouse's `health`,
`margin` and `active_markets`; the LiquidationEngine's `liquidate`, `takeover`,
`insurance_capacity` and `liquidation_params` (its `Liquidation` and `Takeover` events come
from the engine's address, `BadDebt` from the Clearinghouse's); the Lens's `orders_of` and
`next_order_id`; the markets' `position` and `params`.

The chain reads it shares with the ADL keeper, the auditor and the scenario runner are in
keeper/bots/scan.py (`batch_call`, `scan_health`, `MarketDirectory`, `read_positions`,
`resting_order_ids`, `receipt_events`); the batched sending and the in-flight tracking in
keeper/bots/inflight.py (`send_batch`, `wait_receipts`, `InFlight`); the takeover planning and
reads in keeper/bots/takeover.py.

Measured with bench/liquidations.py (1,000 accounts made liquidatable by one
index move, 1 s blocks): all liquidated in 3 blocks at a 100M block gas limit,
8 blocks at 30M (where the gas alone needs 7: ~182k gas each); signing
dominates the keeper's time without `coincurve` (eth_keys' pure-Python ECDSA,
~9 ms per transaction).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Literal

from hexbytes import HexBytes
from web3.contract import Contract

from keeper.artifacts import abi
from keeper.bots.fund_hold import FundHolds
from keeper.bots.inflight import InFlight, Outgoing, send_batch, wait_receipts
from keeper.bots.loop import LoopingBot
from keeper.bots.scan import (
    HEALTH_PAGE,
    MAX_CANCELS,
    BlockId,
    Health,
    MarketDirectory,
    Position,
    describe_failed_ranges,
    read_positions,
    receipt_events,
    resting_order_ids,
    scan_health,
)
from keeper.bots.takeover import (
    TAKEOVER_BENIGN_REVERTS,
    TAKEOVER_GAS,
    TakeoverBackstop,
    plan_takeovers,
)
from keeper.chain import ChainClient, TxError, TxReverted, TxTimeout
from keeper.liquidation_model import LiquidationParams, worst_case_deficit
from keeper.metrics import Histogram
from keeper.retry import call_with_retry
from keeper.txpool import SentTx

MAX_UINT = 2**256 - 1
LATENCY_SECONDS_BUCKETS = (0.5, 1, 2, 3, 5, 10, 20, 30, 60, 120, 300)
LATENCY_BLOCKS_BUCKETS = (0, 1, 2, 3, 5, 10, 20, 50, 100)

# reverts meaning "already done by someone else / the state moved": not failures
BENIGN_REVERTS = (
    "not liquidatable",
    "liquidate: no position",
    "liquidate: insurance fund cannot cover, adl",
)
FUND_CANNOT_COVER = "insurance fund cannot cover, adl"  # the revert that hands an account to ADL
BELOW_ZERO = "liquidate: would leave the account below zero, takeover"

ActionKind = Literal["liquidate", "adl", "takeover"]


# ---------------------------------------------------------------- data


@dataclass(frozen=True)
class LiquidationAction:
    """One planned `liquidate` (kind "liquidate") or a case left to the ADL keeper (kind "adl")."""

    account: int
    market: str
    kind: ActionKind
    reason: str
    equity: int
    mm: int
    size: int
    mark: int
    open_orders: int = 0
    worst_case_deficit: int = 0  # bankrupt accounts only
    take_size: int = 0  # kind "takeover": the size taken over


@dataclass
class LiquidationPlan:
    liquidate: list[LiquidationAction] = field(default_factory=list)
    # bankrupt, the fund covers each alone but not together with the ones before: sent all the
    # same, in the same batch in rank order; the contract re-checks the capacity per call, in
    # mining (nonce) order, and refuses the ones it can no longer cover (then: ADL)
    beyond_reservation: list[LiquidationAction] = field(default_factory=list)
    adl: list[LiquidationAction] = field(default_factory=list)
    in_flight: list[tuple[int, str]] = field(default_factory=list)  # skipped: a tx of ours may still be mined
    deferred: int = 0  # beyond max_actions: next round


# ---------------------------------------------------------------- pure logic


def priority(h: Health) -> tuple[Fraction, int, int]:
    """Sort key, worst first: lowest equity / MM, then largest shortfall MM - equity, then lowest id."""
    ratio = Fraction(h.equity, h.mm) if h.mm > 0 else Fraction(-1 if h.equity < 0 else 0)
    return (ratio, -(h.mm - h.equity), h.account)


def rank_liquidatable(healths: Iterable[Health]) -> list[Health]:
    """The liquidatable accounts (equity < MM), worst first (see `priority`)."""
    return sorted((h for h in healths if h.equity < h.mm), key=priority)


def plan_liquidations(
    ranked: Sequence[Health],
    positions: Mapping[int, Sequence[Position]],
    params: Mapping[str, LiquidationParams],
    capacity: int,
    *,
    in_flight: Collection[tuple[int, str]] = (),
    max_actions: int | None = None,
) -> LiquidationPlan:
    """Per liquidatable account (in `ranked` order) and market where it holds a position:
    liquidate when it is solvent or the insurance fund can cover the worst case, else hand it
    to the ADL keeper.

    A bankrupt liquidation may draw on the fund up to `worst_case_deficit` (its deficit plus
    the bankrupt band on its notional): within one plan that amount is reserved, so two
    bankrupt accounts that together exceed `capacity` are not both sent in the batch. One the
    fund covers alone (as `adl` checks it: `worst <= capacity`, so the ADL keeper leaves it
    alone) but not after the reservations goes to `beyond_reservation`: sent too, worst first, the
    contract accepting each while the fund covers it (it re-checks the capacity per call,
    in mining order; a refusal hands it to ADL). Only what the fund cannot cover alone goes
    to `adl`. An account's deficit is reserved once, the band of each of its markets on top.
    """
    plan = LiquidationPlan()
    remaining = capacity
    for h in ranked:
        reserved_deficit = False
        # markets of resting orders only first: `liquidate` there cancels them, so their order
        # risk no longer holds back the closes after them in the batch (PROTOCOL.md §10)
        for p in sorted(positions.get(h.account, ()), key=lambda p: (p.size != 0, -p.notional, p.market)):
            if p.size == 0 and p.open_orders == 0:
                continue
            if (h.account, p.market) in in_flight:
                plan.in_flight.append((h.account, p.market))
                continue
            if max_actions is not None and len(plan.liquidate) + len(plan.beyond_reservation) >= max_actions:
                plan.deferred += 1
                continue
            base = dict(
                account=h.account, market=p.market, equity=h.equity, mm=h.mm, size=p.size, mark=p.mark,
                open_orders=p.open_orders,
            )  # fmt: skip
            if p.size == 0 or h.equity >= 0:
                reason = (
                    "cancel the orders of a market without position"
                    if p.size == 0
                    else "equity below maintenance margin"
                )
                plan.liquidate.append(LiquidationAction(kind="liquidate", reason=reason, **base))
                continue
            lp = params[p.market]
            worst = worst_case_deficit(h.equity, abs(p.size), p.mark, lp.bankrupt_band)
            # what this close adds to the fund's exposure: the deficit once per account, the band per market
            need = worst if not reserved_deficit else worst + h.equity
            if need <= remaining:
                remaining -= need
                reserved_deficit = True
                into, kind, reason = (
                    plan.liquidate,
                    "liquidate",
                    "bankrupt, insurance fund covers the worst case",
                )
            elif worst <= capacity:
                into, kind = plan.beyond_reservation, "liquidate"
                reason = (
                    "bankrupt, the fund covers it alone: the contract re-checks it after the ones before it"
                )
            else:
                into, kind, reason = plan.adl, "adl", "bankrupt beyond the insurance fund's capacity: ADL"
            into.append(LiquidationAction(kind=kind, reason=reason, worst_case_deficit=worst, **base))
    return plan


def is_benign_revert(reason: str, benign: Sequence[str] = BENIGN_REVERTS) -> bool:
    """A revert meaning someone else acted first (or the state moved since our read)."""
    return any(r in reason for r in benign)


def liquidation_gas(max_fills: int, order_ids: int) -> int:
    """Gas limit of a `liquidate`/`adl` call: bounded by the market's `max_fills` and the orders
    it cancels (measured on anvil: ~220k for one fill, ~50k per further fill with a cold maker,
    ~12.5k per cancel; the budget keeps a margin over each)."""
    return 300_000 + 60_000 * max_fills + 15_000 * order_ids


# ---------------------------------------------------------------- bot


class LiquidationBot(TakeoverBackstop, LoopingBot):
    """Liquidates every account below maintenance margin, worst first (see the module docstring)."""

    name = "liquidation"
    label = "liquidation keeper"
    counters = {
        "liquidations_sent": ("sent", "liquidation transactions the node accepted"),
        "liquidations": ("liquidations", "liquidations mined that closed a position"),
        "liquidations_failed": (
            "liquidations_failed",
            "liquidations refused or reverted, not by a competitor",
        ),
        "adl_handoffs": ("adl_handoffs", "bankrupt positions left to the ADL keeper"),
        "takeovers_sent": ("takeovers_sent", "backstop takeover transactions the node accepted"),
        "takeovers": ("takeovers", "backstop takeovers mined"),
        "takeovers_failed": ("takeovers_failed", "takeovers refused or reverted, not by a competitor"),
    }

    def __init__(
        self,
        client: ChainClient,
        clearinghouse: Contract,
        markets: Mapping[str, Contract] | None = None,
        *,
        engine: Contract,
        lens: Contract,
        max_per_round: int = 1_000,
        health_page: int = HEALTH_PAGE,
        gas: int | None = None,
        no_fill_backoff_blocks: int = 10,
        takeover_subaccount: int | None = None,
        takeover_max_notional: int | None = None,
        dry_run: bool = False,
        logger: logging.Logger | None = None,
    ) -> None:
        if not 1 <= health_page <= HEALTH_PAGE:
            raise ValueError(f"health_page must be in 1..{HEALTH_PAGE}")
        if takeover_subaccount is not None and takeover_subaccount < 0:
            raise ValueError("takeover_subaccount must be >= 0")
        self.client = client
        self.ch = clearinghouse
        self.engine = engine  # LiquidationEngine: liquidate, takeover, insurance_capacity, liquidation_params
        self.lens = lens  # Lens: the resting orders a liquidation cancels
        self.w3 = client.w3
        self.directory = MarketDirectory(clearinghouse, markets)
        self.max_per_round = max_per_round
        self.health_page = health_page
        self.gas = gas
        self.no_fill_backoff_blocks = no_fill_backoff_blocks
        self.takeover_subaccount = takeover_subaccount
        self.takeover_max_notional = takeover_max_notional  # quote WAD per takeover (None: no cap)
        self.dry_run = dry_run
        self.log = logger or logging.getLogger("keeper.liquidation")
        self._guard = threading.Lock()
        self.in_flight = InFlight(self.w3, client.address, client=client)
        self._holds: FundHolds | None = None  # the fund's holds on accounts below zero (fund_hold.py)
        # (account, market) -> block of a liquidation that closed nothing (no liquidity within bounds)
        self._no_fill: dict[tuple[int, str], int] = {}
        # (account, market) whose liquidation reverted "would leave the account below zero": takeover
        self._below_zero: set[tuple[int, str]] = set()
        self._taker: int = 0  # the takeover subaccount's account id, once it exists
        self._market_info: dict[str, tuple[int, int]] = {}  # market -> (LOT_SIZE, imr)
        # account -> (block, time) of the scan that first found it liquidatable, for the latency
        self._first_seen: dict[int, tuple[int, float]] = {}
        # in flight after their round's wait timed out: settled when their receipt shows
        self._waiting: dict[tuple[int, str], LiquidationAction] = {}
        self.latency_seconds = Histogram(LATENCY_SECONDS_BUCKETS)
        self.latency_blocks = Histogram(LATENCY_BLOCKS_BUCKETS)
        self._max_fills: dict[str, int] = {}
        self._timings: dict[str, float] = {}
        self.steps = 0
        self.sent = 0
        self.liquidations = 0
        self.liquidations_failed = 0
        self.closed_size = 0
        self.adl_handoffs = 0
        self.takeovers_sent = 0
        self.takeovers = 0
        self.takeovers_failed = 0
        self.skipped = 0
        self.failures = 0
        self.last_success: float | None = None
        self.last_error: str | None = None
        self.last_round: dict[str, Any] = {}

    # ------------------------------------------------------------ one step

    def _step(self) -> dict[str, int]:
        """One round. Returns counts (liquidatable, planned, liquidated, taken_over, adl_handoff,
        skipped, failed, in_flight, cancelled), or None when a round is already running. (`run_once()` runs it
        under the in-progress guard.)"""
        started = time.monotonic()
        counts = dict.fromkeys(
            (
                "liquidatable", "planned", "liquidated", "taken_over", "adl_handoff", "skipped", "failed",
                "in_flight", "cancelled",
            ),
            0,
        )  # fmt: skip
        self.steps += 1
        self._timings = {}
        late = self.in_flight.refresh(self.log)
        self.directory.refresh(self.log)
        if late:
            self._settle_late(late, counts)
        self._waiting = {k: a for k, a in self._waiting.items() if k in self.in_flight.txs}
        block = int(call_with_retry(lambda: self.w3.eth.block_number, logger=self.log))

        rows, failed_pages = scan_health(self.ch, page=self.health_page, block=block, logger=self.log)
        self._lap("scan", started)
        if failed_pages:
            counts["failed"] += 1
            self._record_error("health", describe_failed_ranges(failed_pages), retry="next round")
        self._send_holds(rows, block, counts)
        ranked = rank_liquidatable(rows)
        counts["liquidatable"] = len(ranked)
        self._note_first_seen(ranked, block)
        if ranked:
            t = time.monotonic()
            plan = self._plan(ranked, block, counts)
            self._lap("plan", t)
            counts["planned"] = len(plan.liquidate) + len(plan.beyond_reservation)
            counts["adl_handoff"] = len(plan.adl)
            for a in plan.adl:
                self.log.warning("left to the ADL keeper", extra=self._fields(a))
            if plan.deferred:
                self.log.info(
                    "more liquidations than max_per_round: next round", extra={"deferred": plan.deferred}
                )
            if self.dry_run:
                for a in plan.liquidate + plan.beyond_reservation:
                    self.log.info("dry-run: would liquidate", extra=self._fields(a))
            else:
                # one batch, worst first: mined in that order, each call re-checks the fund's capacity
                rank = {h.account: i for i, h in enumerate(ranked)}
                actions = sorted(plan.liquidate + plan.beyond_reservation, key=lambda a: rank[a.account])
                takeovers: list[Outgoing] = []
                if self.takeover_subaccount is not None:
                    # what earlier rounds could not close in the book, planned at the scan's block
                    # and sent in the round's one batch after the liquidations (one send, one
                    # wait: the same chain history gives the same actions whenever this runs)
                    t = time.monotonic()
                    takeovers = self._takeovers(ranked, block)
                    taken = {(o.key.account, o.key.market) for o in takeovers}
                    actions = [a for a in actions if (a.account, a.market) not in taken]
                    self._lap("takeover", t)
                self._send_and_settle(
                    self._liquidation_calls(actions, block, counts) + takeovers, counts, block
                )
        self.liquidations += counts["liquidated"]
        self.adl_handoffs += counts["adl_handoff"]
        self.skipped += counts["skipped"]
        self.failures += counts["failed"]
        if counts["failed"] == 0:
            self.last_success = time.time()
        self.last_round = {
            **counts,
            "block": block,
            "duration_s": round(time.monotonic() - started, 3),
            "timings_s": dict(self._timings),
        }
        if counts["liquidatable"] or counts["failed"]:
            self.log.info("liquidation round done", extra=self.last_round)
        return counts

    def _send_holds(self, rows: list[Health], block: int, counts: dict[str, int]) -> None:
        """Hold the fund's withdrawals for accounts below zero, release ours (fund_hold.py)."""
        if self._holds is None:
            fund = call_with_retry(self.ch.functions.insurance_fund(), logger=self.log)
            self._holds = FundHolds(self.w3.eth.contract(address=fund, abi=abi("InsuranceFund")), self.log)
        calls = [] if self.dry_run else self._holds.calls(rows)
        if calls:
            counts["failed"] += self._holds.sent(send_batch(self.client, calls, block=block, logger=self.log))

    def _note_first_seen(self, ranked: list[Health], block: int) -> None:
        """Remember when each liquidatable account was first seen so; forget the others, except
        those with a transaction in flight (mined, its receipt not yet seen: its latency is
        observed when it is)."""
        now = time.time()
        liquidatable = {h.account for h in ranked}
        keep = liquidatable | {a for a, _ in self.in_flight.txs}
        self._first_seen = {a: v for a, v in self._first_seen.items() if a in keep}
        for a in liquidatable - set(self._first_seen):
            self._first_seen[a] = (block, now)

    def _on_adopted(self, adopted: list[SentTx]) -> None:
        self.in_flight.adopt(self.engine, adopted, "liquidate", self.log)
        self.in_flight.adopt(self.engine, adopted, "takeover", self.log)

    def histograms(self) -> dict[str, tuple[Histogram, str]]:
        return {
            "liquidation_latency_seconds": (
                self.latency_seconds,
                "seconds from the scan that first found the account liquidatable to its liquidation's receipt",
            ),
            "liquidation_latency_blocks": (
                self.latency_blocks,
                "blocks from the block where the keeper first found the account liquidatable to its liquidation",
            ),
        }

    def _lap(self, phase: str, since: float) -> None:
        self._timings[phase] = round(time.monotonic() - since, 3)

    def _plan(self, ranked: list[Health], block: int, counts: dict[str, int]) -> LiquidationPlan:
        positions, failures = read_positions(
            self.directory, [h.account for h in ranked], block, logger=self.log
        )
        for account, reason in failures:
            counts["failed"] += 1
            self._record_error("position", f"account {account}: {reason}", retry="next round")
        # a liquidation that filled nothing is not repeated for a while (no liquidity within bounds)
        for key, at in list(self._no_fill.items()):
            if block - at >= self.no_fill_backoff_blocks:
                del self._no_fill[key]
        backoff = set(self._no_fill)
        markets = {p.market for ps in positions.values() for p in ps}
        params = {
            m: LiquidationParams(
                *call_with_retry(self.engine.functions.liquidation_params(m), logger=self.log)
            )
            for m in markets
        }
        for m in markets - set(self._max_fills):
            # IPerpMarket.MarketParams: imr, mmr, taker_fee, maker_fee, mark_band, min_order_notional,
            # max_open_orders, max_fills, max_open_interest, price_band
            self._max_fills[m] = int(
                call_with_retry(self.lens.functions.market_params(m), logger=self.log)[7]
            )
        capacity = int(call_with_retry(self.engine.functions.insurance_capacity(), logger=self.log))
        plan = plan_liquidations(
            ranked,
            positions,
            params,
            capacity,
            in_flight=set(self.in_flight.txs) | backoff,
            max_actions=self.max_per_round,
        )
        for key in plan.in_flight:
            if key in self.in_flight.txs:
                counts["in_flight"] += 1
            else:  # backing off after a liquidation that filled nothing
                counts["skipped"] += 1
        return plan

    def _liquidation_calls(
        self, actions: list[LiquidationAction], block: BlockId, counts: dict[str, int]
    ) -> list[Outgoing]:
        """The `liquidate` transactions of `actions`, each cancelling the account's resting
        orders in the market (read at `block`)."""
        outgoing: list[Outgoing] = []
        for a in actions:
            try:
                order_ids = resting_order_ids(
                    self.lens, a.market, a.account, a.open_orders, block, logger=self.log
                )
            except TxError as exc:
                counts["failed"] += 1
                self._record_error("orders", f"account {a.account}: {exc}")
                continue
            call = self.engine.functions.liquidate(a.account, a.market, MAX_UINT, order_ids)
            gas = self.gas or liquidation_gas(self._max_fills.get(a.market, 64), len(order_ids))
            outgoing.append(Outgoing(a, call, gas))
        return outgoing

    def _send_and_settle(
        self, outgoing: list[Outgoing], counts: dict[str, int], block: BlockId = "latest"
    ) -> None:
        """Send (`send_batch`), track in flight, wait for every receipt, count the outcomes."""
        if not outgoing:
            return
        sent: list[tuple[LiquidationAction, HexBytes]] = []
        t = time.monotonic()
        for a, result in send_batch(self.client, outgoing, block=block, logger=self.log):
            if isinstance(result, TxError):
                self._outcome(a, result, counts)
            else:
                self.in_flight.add((a.account, a.market), result)
                sent.append((a, result))
                if a.kind == "takeover":
                    self.takeovers_sent += 1
                else:
                    self.sent += 1
        self._lap("send", t)
        t = time.monotonic()
        results = wait_receipts(self.client, [h for _, h in sent])
        self._lap("wait", t)
        self._settle(sent, results, counts)

    def _settle(
        self, sent: list[tuple[LiquidationAction, HexBytes]], results: list[Any], counts: dict[str, int]
    ) -> None:
        for (a, tx_hash), result in zip(sent, results, strict=True):
            key = (a.account, a.market)
            if isinstance(result, TxTimeout):
                counts["failed"] += 1
                self._waiting[key] = a
                self._record_error(
                    "liquidate", f"account {a.account}: {result}", retry="when its receipt shows"
                )
                continue
            self.in_flight.discard(key)
            self._waiting.pop(key, None)
            if isinstance(result, TxError):
                self._outcome(a, result, counts)
                continue
            self._mined(a, tx_hash, result, counts)

    def _settle_late(self, mined: list[tuple[Any, HexBytes]], counts: dict[str, int]) -> None:
        """Liquidations whose receipt came after their round's wait (or sent by an earlier run
        of this key): counted now, as if waited for."""
        sent = [
            (
                self._waiting.pop(key, None)
                or LiquidationAction(key[0], key[1], "liquidate", "sent by an earlier run", 0, 0, 0, 0),
                h,
            )
            for key, h in mined
        ]
        self._settle(sent, self.client.wait_many([h for _, h in mined], timeout_s=0), counts)

    def _mined(self, a: LiquidationAction, tx_hash: HexBytes, receipt: Any, counts: dict[str, int]) -> None:
        takeovers = receipt_events(self.engine, "Takeover", receipt)
        if takeovers or a.kind == "takeover":
            self._mined_takeover(a, tx_hash, receipt, takeovers, counts)
            return
        events = receipt_events(self.engine, "Liquidation", receipt)
        ev = events[0]["args"] if events else {}
        closed = int(ev.get("closed_size", 0))
        bad_debt = receipt_events(self.ch, "BadDebt", receipt)
        fields = {
            **self._fields(a),
            "tx_hash": tx_hash.to_0x_hex(),
            "block": receipt["blockNumber"],
            "gas_used": receipt["gasUsed"],
            "closed_size": closed,
            "size_after": ev.get("size_after"),
            "limit_price": ev.get("limit_price"),
            "fee": ev.get("fee"),
            "liquidator_fee": ev.get("liquidator_fee"),
            "equity_after": ev.get("equity_after"),
        }
        if bad_debt:
            fields["bad_debt"] = {k: int(v) for k, v in bad_debt[0]["args"].items() if k != "account"}
        if a.size == 0:
            counts["cancelled"] += 1
            self.log.info("cancelled the orders of a liquidatable account", extra=fields)
            return
        if closed == 0 and a.open_orders > MAX_CANCELS:
            # more resting orders than one call cancels: this call cancelled 200, the close comes next round
            counts["skipped"] += 1
            self.log.info("liquidation cancelled orders, more remain: closes next round", extra=fields)
            return
        if closed == 0:
            self._no_fill[(a.account, a.market)] = int(receipt["blockNumber"])
            counts["skipped"] += 1
            self.log.warning(
                "liquidation closed nothing: no liquidity within the bound (takeover needed)", extra=fields
            )
            return
        counts["liquidated"] += 1
        self.closed_size += closed
        self._observe_latency(a, receipt, fields)
        self.log.info("liquidated", extra=fields)

    def _observe_latency(self, a: LiquidationAction, receipt: Any, fields: dict[str, Any]) -> None:
        first = self._first_seen.get(a.account)
        if first is not None:
            fields["latency_blocks"] = int(receipt["blockNumber"]) - first[0]
            fields["latency_s"] = round(time.time() - first[1], 3)
            self.latency_blocks.observe(fields["latency_blocks"])
            self.latency_seconds.observe(fields["latency_s"])

    def _outcome(self, a: LiquidationAction, exc: TxError, counts: dict[str, int]) -> None:
        reason = exc.reason if isinstance(exc, TxReverted) else ""
        takeover = a.kind == "takeover"
        if not takeover and (FUND_CANNOT_COVER in reason or self._fund_spent(a, exc)):
            # the fund's capacity went to the ones before it (the contract re-checks per call): ADL
            counts["adl_handoff"] += 1
            self.log.warning("left to the ADL keeper", extra={**self._fields(a), "reason": reason})
            return
        if not takeover and BELOW_ZERO in reason and self.takeover_subaccount is not None:
            self._below_zero.add((a.account, a.market))
            counts["skipped"] += 1
            self.log.info("liquidation would leave the account below zero: takeover", extra=self._fields(a))
            return
        what = "takeover" if takeover else "liquidate"
        if is_benign_revert(reason, TAKEOVER_BENIGN_REVERTS if takeover else BENIGN_REVERTS):
            counts["skipped"] += 1
            label = "takeover" if takeover else "liquidation"
            self.log.info(f"{label} skipped: state moved", extra={**self._fields(a), "reason": reason})
            return
        counts["failed"] += 1
        if takeover:
            self.takeovers_failed += 1
        else:
            self.liquidations_failed += 1
        self._record_error(what, f"account {a.account} {self.directory.name(a.market)}: {exc}")

    def _fund_spent(self, a: LiquidationAction, exc: TxError) -> bool:
        """A bankrupt liquidation reverted on-chain without a reason (a node without the debug
        API: its replay on the block before passes, the transactions before it in the block
        changed the state; `ChainClient.wait` traces it inside its block otherwise) and the fund
        no longer covers its worst case: it was refused for that ("insurance fund cannot cover")."""
        if a.equity >= 0 or not isinstance(exc, TxReverted) or exc.receipt is None:
            return False
        capacity = int(call_with_retry(self.engine.functions.insurance_capacity(), logger=self.log))
        return capacity < a.worst_case_deficit

    # ------------------------------------------------------------ backstop takeover

    def _takeovers(self, ranked: list[Health], block: BlockId) -> list[Outgoing]:
        """The takeovers, from `takeover_subaccount`, of the liquidatable positions the book
        could not close: a liquidation that closed nothing (its orders cancelled; backing off)
        or that reverted "would leave the account below zero". Read at `block`, planned within
        the taker's margin (`plan_takeovers`); the caller sends them (`send_batch` re-checks each
        by `eth_call` from our address) and tracks them in flight like the liquidations."""
        liquidatable = {h.account: i for i, h in enumerate(ranked)}
        keys = sorted(
            (
                k
                for k in set(self._no_fill) | self._below_zero
                if k[0] in liquidatable and k not in self.in_flight.txs
            ),
            key=lambda k: (liquidatable[k[0]], k[1]),
        )
        self._below_zero.clear()
        if not keys or not self._taker_account():
            return []
        candidates, free, capacity = self._takeover_reads(keys, block)
        planned = plan_takeovers(candidates, free, capacity, max_notional=self.takeover_max_notional)
        outgoing = []
        for c, q in planned:
            a = LiquidationAction(
                c.account, c.market, "takeover", "the book could not close it: backstop takeover",
                c.equity, c.mm, c.size, c.mark, take_size=q,
            )  # fmt: skip
            call = self.engine.functions.takeover(c.account, c.market, q, self.takeover_subaccount)
            outgoing.append(Outgoing(a, call, TAKEOVER_GAS))
        if len(planned) < len(candidates):
            self.log.info(
                "positions left for takeover beyond the taker's margin (or with orders)",
                extra={"candidates": len(candidates), "planned": len(planned), "free_margin": free},
            )
        return outgoing

    def _fields(self, a: LiquidationAction) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "account": a.account,
            "market": self.directory.name(a.market),
            "why": a.reason,
            "equity": a.equity,
            "maintenance_margin": a.mm,
            "size": a.size,
            "mark": a.mark,
        }
        if a.open_orders:
            fields["open_orders"] = a.open_orders
        if a.equity < 0 and a.worst_case_deficit:
            fields["worst_case_deficit"] = a.worst_case_deficit
        if a.kind == "takeover":
            fields["take_size"] = a.take_size
        return fields

    def _record_error(self, what: str, detail: str, *, retry: str | None = None) -> None:
        self.last_error = f"{what}: {detail}"
        extra: dict[str, Any] = {"what": what, "error": detail}
        if retry:
            extra["retry"] = retry
        self.log.error(f"{what} failed", extra=extra)

    # ------------------------------------------------------------ health

    def _start_info(self) -> dict[str, Any]:
        return {
            "clearinghouse": self.ch.address,
            "liquidation_engine": self.engine.address,
            "sender": self.client.address,
            "max_per_round": self.max_per_round,
            "takeover_subaccount": self.takeover_subaccount,
        }

    def health(self) -> dict[str, Any]:
        return {
            **self._base_health(),
            "sender": self.client.address,
            "liquidations_sent": self.sent,
            "liquidations": self.liquidations,
            "liquidations_failed": self.liquidations_failed,
            "closed_size": self.closed_size,
            "adl_handoffs": self.adl_handoffs,
            "takeovers_sent": self.takeovers_sent,
            "takeovers": self.takeovers,
            "takeovers_failed": self.takeovers_failed,
            "pending_txs": self.in_flight.as_dict(),
            "no_fill_backoff": len(self._no_fill),
            "last_round": dict(self.last_round),
        }


__all__ = [
    "BENIGN_REVERTS",
    "LiquidationAction",
    "LiquidationBot",
    "LiquidationPlan",
    "is_benign_revert",
    "liquidation_gas",
    "plan_liquidations",
    "priority",
    "rank_liquidatable",
]
