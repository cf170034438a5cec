"""Funding keeper: premium samples every `sample_interval`, settlement at each interval boundary.

One step (`run_once`): read the chain's time (the latest block's timestamp:
the chain may be time-warped), then for every market read the FundingRate's
`next_funding_time`, `last_sample_time` and `params` (retried reads), and
plan at most one action per market (`plan_funding_actions`, pure):

* `now >= next_funding_time`                   -> `settle()`;
* else `now >= last_sample_time + sample_interval` -> `sample()`;
* else nothing.

Every action is decided from the on-chain state just read, so what another
keeper already did is skipped and a restart never doubles an action. The
contract enforces the same rules; a revert with "funding: too early",
"funding: sample too early" or "funding: settle first" means someone else
acted between our read and our transaction, or the interval ended before the
block that mined it (a sample sent just before `next_funding_time`): it is
logged and counted as skipped, not as a failure. The reason of a mined revert
is read by tracing it inside its own block (`ChainClient.wait`), so a revert
caused by the block's timestamp keeps its reason. Settlements are sent first (all markets, then
waited for), samples after. A transaction without a receipt in time is
remembered and its market skipped until the receipt shows up: it may still
be mined, so it is never re-sent blindly.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from hexbytes import HexBytes
from web3.contract import Contract
from web3.exceptions import TransactionNotFound

from keeper.bots.loop import LoopingBot
from keeper.chain import ChainClient, TxError, TxReverted, TxTimeout
from keeper.retry import call_with_retry

MAX_CATCHUP = 48  # FundingRate.MAX_CATCHUP: intervals settled per call at most

# reverts meaning "already done by someone else" (or not due by the chain's clock): not failures
BENIGN_REVERTS = ("funding: too early", "funding: sample too early", "funding: settle first")

ActionKind = Literal["settle", "sample"]


@dataclass(frozen=True)
class FundingState:
    """What the planner needs of one market's FundingRate, as read on-chain."""

    market: str
    next_funding_time: int
    last_sample_time: int
    funding_interval: int
    sample_interval: int


@dataclass(frozen=True)
class FundingAction:
    """One planned `settle()` or `sample()`."""

    market: str
    kind: ActionKind
    reason: str
    intervals: int = 0  # settle: intervals this call settles (catch-up, at most MAX_CATCHUP)


# ---------------------------------------------------------------- pure logic


def plan_funding_actions(states: Iterable[FundingState], now: int) -> list[FundingAction]:
    """The actions due at chain time `now`: at most one per market, settlements first.

    A market whose interval is due is settled (and not sampled: the contract
    refuses a sample then, "funding: settle first"); otherwise it is sampled
    when `sample_interval` has passed since its last sample.
    """
    settles: list[FundingAction] = []
    samples: list[FundingAction] = []
    for s in states:
        if now >= s.next_funding_time:
            due = min((now - s.next_funding_time) // max(s.funding_interval, 1) + 1, MAX_CATCHUP)
            settles.append(
                FundingAction(
                    s.market, "settle", f"interval due since {now - s.next_funding_time} s", intervals=due
                )
            )
        elif now >= s.last_sample_time + s.sample_interval:
            samples.append(FundingAction(s.market, "sample", f"last sample {now - s.last_sample_time} s ago"))
    return settles + samples


def is_benign_revert(reason: str) -> bool:
    """A revert meaning the action was already taken (or is not due yet by the chain's clock)."""
    return any(r in reason for r in BENIGN_REVERTS)


# ---------------------------------------------------------------- bot


class FundingKeeper(LoopingBot):
    """Samples premiums and settles funding on every market's FundingRate when due."""

    name = "funding"
    label = "funding keeper"
    counters = {
        "funding_settlements": ("settles", "funding settlements mined"),
        "funding_samples": ("samples", "premium samples mined"),
    }

    def __init__(
        self,
        client: ChainClient,
        funding_contracts: Mapping[str, Contract],
        *,
        dry_run: bool = False,
        logger: logging.Logger | None = None,
    ) -> None:
        if not funding_contracts:
            raise ValueError("no funding contracts to keep")
        self.client = client
        self.contracts = dict(funding_contracts)
        self.dry_run = dry_run
        self.log = logger or logging.getLogger("keeper.funding")
        self.w3 = client.w3
        self._guard = threading.Lock()
        # market -> hash of a sent transaction whose receipt did not come in time
        self._pending: dict[str, HexBytes] = {}
        self.steps = 0
        self.settles = 0
        self.samples = 0
        self.skipped = 0
        self.failures = 0
        self.last_success: float | None = None
        self.last_error: str | None = None
        self.markets: dict[str, dict[str, Any]] = {m: {} for m in self.contracts}

    # ------------------------------------------------------------ reads

    def chain_timestamp(self) -> int:
        block = call_with_retry(lambda: self.w3.eth.get_block("latest"), logger=self.log)
        return int(block["timestamp"])

    def read_state(self, market: str) -> FundingState:
        fns = self.contracts[market].functions
        nft = int(call_with_retry(fns.next_funding_time(), logger=self.log))
        last = int(call_with_retry(fns.last_sample_time(), logger=self.log))
        params = call_with_retry(fns.params(), logger=self.log)
        # FundingParams: interval, period, interest, clamp, cap, impact_notional, sample_interval, mode
        return FundingState(market, nft, last, int(params[0]), int(params[6]))

    # ------------------------------------------------------------ one step

    def _step(self, now: int | None = None) -> dict[str, int]:
        """One pass over every market at chain time `now` (default: the latest block's timestamp).

        Returns counts (planned, settled, sampled, skipped, failed), or None if a pass is
        already running. (`run_once()` runs it under the in-progress guard.)"""
        counts = {"planned": 0, "settled": 0, "sampled": 0, "skipped": 0, "failed": 0}
        if now is None:
            now = self.chain_timestamp()
        states: list[FundingState] = []
        for market in self.contracts:
            if not self._pending_cleared(market):
                counts["skipped"] += 1
                continue
            try:
                state = self.read_state(market)
            except Exception as exc:  # one market's read failing must not stop the others
                counts["failed"] += 1
                self._record_error(market, "read", exc)
                continue
            states.append(state)
            self.markets[market].update(
                next_funding_time=state.next_funding_time, last_sample_time=state.last_sample_time
            )
        actions = plan_funding_actions(states, now)
        counts["planned"] = len(actions)
        self.steps += 1

        if self.dry_run:
            for a in actions:
                self.log.info(f"dry-run: would {a.kind}", extra=self._fields(a, now))
            self.last_success = time.time()
            self.skipped += counts["skipped"]
            return counts

        # settlements first (and confirmed), then samples
        for kind in ("settle", "sample"):
            sent: list[tuple[FundingAction, HexBytes]] = []
            for a in (a for a in actions if a.kind == kind):
                try:
                    tx_hash = self.client.send_nowait(getattr(self.contracts[a.market].functions, kind)())
                except TxError as exc:
                    self._outcome(a, now, exc, counts)
                    continue
                sent.append((a, tx_hash))
            for a, tx_hash in sent:
                try:
                    receipt = self.client.wait(tx_hash)
                except TxTimeout as exc:
                    self._pending[a.market] = tx_hash
                    self._outcome(a, now, exc, counts)
                    continue
                except TxError as exc:
                    self._outcome(a, now, exc, counts)
                    continue
                counts["settled" if kind == "settle" else "sampled"] += 1
                self.markets[a.market]["last_action"] = kind
                self.log.info(
                    "funding settled" if kind == "settle" else "premium sampled",
                    extra={
                        **self._fields(a, now),
                        "tx_hash": tx_hash.to_0x_hex(),
                        "block": receipt["blockNumber"],
                        "gas_used": receipt["gasUsed"],
                    },
                )
        self.settles += counts["settled"]
        self.samples += counts["sampled"]
        self.skipped += counts["skipped"]
        self.failures += counts["failed"]
        if counts["failed"] == 0:
            self.last_success = time.time()
        return counts

    def _pending_cleared(self, market: str) -> bool:
        """False while an earlier transaction for `market` has no receipt (it may still be mined)."""
        tx_hash = self._pending.get(market)
        if tx_hash is None:
            return True
        state, receipt = self.client.tx_states([tx_hash])[0]  # a replacement with bumped fees counts
        if state == "unknown":
            try:
                receipt = call_with_retry(
                    lambda: self.w3.eth.get_transaction_receipt(tx_hash), logger=self.log
                )
            except TransactionNotFound:
                state = "pending"
        if state == "dropped":
            del self._pending[market]
            self.log.warning(
                "earlier transaction dropped (its nonce went to another)",
                extra={"market": market, "tx_hash": tx_hash.to_0x_hex()},
            )
            return True
        if state == "pending":
            self.log.warning(
                "earlier transaction still pending, market skipped",
                extra={"market": market, "tx_hash": tx_hash.to_0x_hex()},
            )
            return False
        del self._pending[market]
        self.log.info(
            "earlier transaction mined",
            extra={"market": market, "tx_hash": tx_hash.to_0x_hex(), "status": receipt["status"]},
        )
        return True

    def _outcome(self, a: FundingAction, now: int, exc: TxError, counts: dict[str, int]) -> None:
        """A transaction that did not go through: benign (someone else did it) or a failure."""
        if isinstance(exc, TxReverted) and is_benign_revert(exc.reason):
            counts["skipped"] += 1
            self.log.info(
                f"{a.kind} skipped: done by someone else or overtaken by the clock",
                extra={**self._fields(a, now), "reason": exc.reason},
            )
            return
        counts["failed"] += 1
        self._record_error(a.market, a.kind, exc)

    def _fields(self, a: FundingAction, now: int) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "market": a.market,
            "action": a.kind,
            "chain_time": now,
            "why": a.reason,
            "funding_contract": self.contracts[a.market].address,
        }
        if a.kind == "settle":
            fields["intervals"] = a.intervals
        return fields

    def _record_error(self, market: str, what: str, exc: BaseException) -> None:
        self.last_error = f"{market} {what}: {exc}"
        self.log.error(
            f"{what} failed",
            extra={"market": market, "error": str(exc), "error_type": type(exc).__name__},
        )

    # ------------------------------------------------------------ health

    def _start_info(self) -> dict[str, Any]:
        return {"markets": sorted(self.contracts), "sender": self.client.address}

    def health(self) -> dict[str, Any]:
        return {
            **self._base_health(),
            "sender": self.client.address,
            "settles": self.settles,
            "samples": self.samples,
            "pending_txs": {m: h.to_0x_hex() for m, h in self._pending.items()},
            "markets": {m: dict(v) for m, v in self.markets.items()},
        }


__all__ = [
    "BENIGN_REVERTS",
    "FundingAction",
    "FundingKeeper",
    "FundingState",
    "is_benign_revert",
    "plan_funding_actions",
]
