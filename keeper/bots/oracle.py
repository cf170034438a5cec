"""Oracle reporter bot: pushes feed prices to every IndexOracle source we hold a reporter key for.

One step (`run_once`): advance the feed one step; for each market read the
oracle's sources; plan one `report(price_wad, timestamp)` per reporter source
whose key we hold (venue price i for source i; timestamp = the chain's latest
block timestamp, since the chain may be time-warped); send them all, then wait
for all. Planning is pure (`plan_reports`); chain I/O stays in the class.

Each report goes out with a fixed gas limit (`REPORT_GAS`), not an estimate: several reports
to one oracle land in one block, and an estimate against the pending state (the other
reports already in the pool) comes out too low for the order they are mined in (each
report re-sorts the median cache; which storage slots are fresh in its transaction depends
on the reports before it). The limit is the measured worst case of `report()` with the
most sources the oracle allows (tests/unitary/index_oracle/test_gas.py: <= 70k for 8
sources, cold storage) with twice that as headroom; only the gas used is paid.

The index guard (PROTOCOL.md §4). Each step the bot reads every oracle's
`index_status()`: a fresh, quorate index that is invalid is held back by the
guard (the median moved faster than the reference price allows) or its sources
disagree (an even count whose middle prices differ by more than `max_spread`). The bot
logs a warning when that starts and an info line when it ends, and lists
those markets in its health (`guard_held`). Only the owner can confirm such a
move (`reset_reference()`); the bot never does. An oracle with Chainlink
sources needs its reference checkpointed regularly (reports do it for
reporter sources): when no report of ours went to it this step and its
reference is older than `reference_interval_s`, the bot calls
`update_reference()` (`plan_checkpoint`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from hexbytes import HexBytes
from web3 import Web3
from web3.contract import Contract

from keeper.bots.loop import LoopingBot
from keeper.chain import ChainClient, TxError
from keeper.feeds import FeedExhausted, PriceFeed
from keeper.retry import call_with_retry
from keeper.units import WAD

REPORT_GAS = 140_000  # 2x the measured bound of report() with MAX_SOURCES (8) reporters
KIND_REPORTER = 1
KIND_AGGREGATOR = 2


@dataclass(frozen=True)
class Source:
    """One oracle source as read from `source(i)`."""

    index: int
    kind: int
    addr: str
    price: int
    timestamp: int


@dataclass(frozen=True)
class Report:
    """One planned `report(price_wad, timestamp)` call."""

    market: str
    source: int
    reporter: str
    price: float
    price_wad: int
    timestamp: int


# ---------------------------------------------------------------- pure logic


def price_to_wad(price: float) -> int:
    """Price as an 18-decimal integer, via its shortest decimal repr (no binary float noise)."""
    wad = int(Decimal(str(price)) * WAD)
    if wad <= 0:
        raise ValueError(f"price must be > 0, got {price}")
    return wad


def plan_reports(
    market: str,
    sources: Iterable[Source],
    venue_prices: list[float],
    held_reporters: Iterable[str],
    chain_ts: int,
) -> tuple[list[Report], list[tuple[Source, str]]]:
    """Reports to send for one market, and the reporter sources skipped with the reason.

    Source i gets venue price i. A source is skipped when its last report is
    newer than `chain_ts` (it would revert as "timestamp went backwards") or
    already holds exactly this (price, timestamp) (a restart re-running a step).
    """
    held = {Web3.to_checksum_address(a) for a in held_reporters}
    reports: list[Report] = []
    skipped: list[tuple[Source, str]] = []
    for src in sources:
        if src.kind != KIND_REPORTER or Web3.to_checksum_address(src.addr) not in held:
            continue
        price = venue_prices[src.index]
        wad = price_to_wad(price)
        if src.timestamp > chain_ts:
            skipped.append((src, f"last report at {src.timestamp} is newer than chain time {chain_ts}"))
        elif src.timestamp == chain_ts and src.price == wad:
            skipped.append((src, "already reported"))
        else:
            reports.append(
                Report(market, src.index, Web3.to_checksum_address(src.addr), price, wad, chain_ts)
            )
    return reports, skipped


def plan_checkpoint(
    sources: Iterable[Source],
    reported: bool,
    quorate: bool,
    reference_time: int,
    chain_ts: int,
    interval_s: int,
) -> bool:
    """Whether to call `update_reference()` on an oracle this step: it has a
    Chainlink source (a feed moves without reports), none of our reports went
    to it (a report checkpoints), it has a quorum (or the call reverts), and
    its reference is at least `interval_s` old."""
    has_feed = any(s.kind == KIND_AGGREGATOR for s in sources)
    return has_feed and not reported and quorate and chain_ts - reference_time >= interval_s


# ---------------------------------------------------------------- bot


class OracleReporter(LoopingBot):
    """Pushes prices from a feed to the markets' IndexOracles, one report per held reporter source."""

    name = "oracle"
    label = "oracle reporter"
    stop_on = (FeedExhausted,)  # a replayed feed that runs out ends the loop
    counters = {
        "oracle_pushes": ("pushes", "price reports mined"),
        "oracle_reference_checkpoints": ("checkpoints", "update_reference() calls mined"),
    }

    def __init__(
        self,
        clients_by_reporter: Mapping[str, ChainClient],
        oracles: Mapping[str, Contract],
        feed: PriceFeed,
        *,
        dry_run: bool = False,
        report_gas: int = REPORT_GAS,
        reference_interval_s: int = 60,
        logger: logging.Logger | None = None,
    ) -> None:
        if not oracles:
            raise ValueError("no oracles to report to")
        self.clients = {Web3.to_checksum_address(a): c for a, c in clients_by_reporter.items()}
        self.oracles = dict(oracles)
        self.feed = feed
        self.dry_run = dry_run
        self.report_gas = report_gas
        self.reference_interval_s = reference_interval_s
        self.log = logger or logging.getLogger("keeper.oracle")
        self.w3: Web3 = next(iter(self.oracles.values())).w3
        self._guard = threading.Lock()
        self.steps = 0
        self.pushes = 0
        self.failures = 0
        self.skipped = 0
        self.last_success: float | None = None
        self.last_error: str | None = None
        self.last_prices: dict[str, float] = {}
        self.checkpoints = 0
        self.guard_held: set[str] = set()

    def chain_clients(self) -> list[ChainClient]:
        return list(self.clients.values())

    # ------------------------------------------------------------ reads

    def read_sources(self, oracle: Contract) -> list[Source]:
        count = int(call_with_retry(oracle.functions.source_count(), logger=self.log))
        sources = []
        for i in range(count):
            kind, addr, price, ts = call_with_retry(oracle.functions.source(i), logger=self.log)
            sources.append(Source(i, int(kind), Web3.to_checksum_address(addr), int(price), int(ts)))
        return sources

    def chain_timestamp(self) -> int:
        block = call_with_retry(lambda: self.w3.eth.get_block("latest"), logger=self.log)
        return int(block["timestamp"])

    # ------------------------------------------------------------ one step

    def _step(self) -> dict[str, int]:
        """One feed step and its reports. Returns counts, or None if a step is already running. (`run_once()` runs it under the in-progress guard.)"""
        fair = self.feed.step()
        chain_ts = self.chain_timestamp()
        planned: list[Report] = []
        skipped = 0
        sources_of: dict[str, list[Source]] = {}
        for market, oracle in self.oracles.items():
            sources = sources_of[market] = self.read_sources(oracle)
            try:
                venues = self.feed.venue_prices(market, len(sources))
            except KeyError:
                self.log.warning("feed has no price for market, skipped", extra={"market": market})
                continue
            reports, skips = plan_reports(market, sources, venues, self.clients, chain_ts)
            for src, why in skips:
                self.log.info("report skipped", extra={"market": market, "source": src.index, "reason": why})
            planned += reports
            skipped += len(skips)
        self.steps += 1
        self.skipped += skipped
        self.last_prices.update({m: p for m, p in fair.items() if m in self.oracles})

        if self.dry_run:
            for r in planned:
                self.log.info("dry-run: would report", extra=self._fields(r))
            self.last_success = time.time()
            return {"planned": len(planned), "pushed": 0, "failed": 0, "skipped": skipped}

        sent: list[tuple[Report, ChainClient, HexBytes]] = []
        failed = 0
        for r in planned:
            client = self.clients[r.reporter]
            oracle = self.oracles[r.market]
            try:
                tx_hash = client.send_nowait(
                    oracle.functions.report(r.price_wad, r.timestamp), gas=self.report_gas
                )
            except TxError as exc:
                failed += 1
                self._record_error(r, exc)
                continue
            sent.append((r, client, tx_hash))
        pushed = 0
        for r, client, tx_hash in sent:
            try:
                receipt = client.wait(tx_hash)
            except TxError as exc:
                failed += 1
                self._record_error(r, exc)
                continue
            pushed += 1
            self.log.info(
                "price pushed",
                extra={**self._fields(r), "tx_hash": tx_hash.to_0x_hex(), "block": receipt["blockNumber"]},
            )
        self.pushes += pushed
        self.failures += failed
        failed += self._watch_guard(sources_of, {r.market for r in planned}, chain_ts)
        if failed == 0:
            self.last_success = time.time()
        return {"planned": len(planned), "pushed": pushed, "failed": failed, "skipped": skipped}

    def _watch_guard(self, sources_of: Mapping[str, list[Source]], reported: set[str], chain_ts: int) -> int:
        """Log the markets whose index the guard holds back, and checkpoint the
        reference of oracles with Chainlink sources (`plan_checkpoint`).
        Returns the failed checkpoints."""
        failed = 0
        for market, sources in sources_of.items():
            oracle = self.oracles[market]
            valid, median, fresh = call_with_retry(oracle.functions.index_status(), logger=self.log)
            quorate = fresh > 0 and fresh >= int(call_with_retry(oracle.functions.quorum(), logger=self.log))
            reference, reference_time = call_with_retry(oracle.functions.reference_price(), logger=self.log)
            held = quorate and not valid
            if held and market not in self.guard_held:
                self.guard_held.add(market)
                self.log.warning(
                    "index held back: the guard, or disagreeing sources (the owner decides: reset_reference"
                    " or new sources)",
                    extra={"market": market, "median": str(median), "reference": str(reference)},
                )
            elif not held and market in self.guard_held:
                self.guard_held.discard(market)
                self.log.info("index guard released", extra={"market": market})
            if self.dry_run or not plan_checkpoint(
                sources, market in reported, quorate, int(reference_time), chain_ts, self.reference_interval_s
            ):
                continue
            client = next(iter(self.clients.values()))
            try:
                receipt = client.send(oracle.functions.update_reference(), gas=self.report_gas)
            except TxError as exc:
                failed += 1
                self.failures += 1
                self.last_error = f"{market} update_reference: {exc}"
                self.log.error("reference checkpoint failed", extra={"market": market, "error": str(exc)})
                continue
            self.checkpoints += 1
            self.log.info("reference checkpointed", extra={"market": market, "block": receipt["blockNumber"]})
        return failed

    def _fields(self, r: Report) -> dict[str, Any]:
        return {
            "market": r.market,
            "source": r.source,
            "reporter": r.reporter,
            "price": str(Decimal(str(r.price))),
            "price_wad": str(r.price_wad),
            "report_ts": r.timestamp,
        }

    def _record_error(self, r: Report, exc: Exception) -> None:
        self.last_error = f"{r.market} source {r.source}: {exc}"
        self.log.error(
            "report failed", extra={**self._fields(r), "error": str(exc), "error_type": type(exc).__name__}
        )

    # ------------------------------------------------------------ health

    def _start_info(self) -> dict[str, Any]:
        return {"markets": sorted(self.oracles), "reporters": sorted(self.clients)}

    def health(self) -> dict[str, Any]:
        return {
            **self._base_health(),
            "pushes": self.pushes,
            "checkpoints": self.checkpoints,
            "guard_held": sorted(self.guard_held),
            "last_prices": dict(self.last_prices),
        }


__all__ = [
    "REPORT_GAS",
    "OracleReporter",
    "Report",
    "Source",
    "plan_checkpoint",
    "plan_reports",
    "price_to_wad",
]
