"""Chain reads shared by the keepers (liquidation, ADL), the auditor, the scenario runner and
the simulation: `batch_call` (`eth_call`s in JSON-RPC batches), the Clearinghouse's health scan
(`scan_health`), its markets (`MarketDirectory`), the positions of accounts (`read_positions`),
their resting orders (`resting_order_ids`) and the events of a receipt (`receipt_events`)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi import decode as abi_decode
from eth_utils.abi import get_abi_output_types
from hexbytes import HexBytes
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractLogicError, Web3RPCError
from web3.logs import DISCARD

from keeper.chain import TxError, decode_revert_data
from keeper.retry import batch_request, call_with_retry
from keeper.units import WAD

HEALTH_PAGE = 500  # Clearinghouse.MAX_HEALTH_PAGE
HEALTH_SPLIT_BUDGET = 512  # extra health calls per scan to isolate the accounts a stale market makes fail
ORDER_PAGE = 1000  # Lens.orders_of: ids per call
MAX_CANCELS = 200  # LiquidationEngine.MAX_CANCELS: order ids per liquidate/adl call
RPC_BATCH = 200  # eth_calls per JSON-RPC batch

BlockId = int | str


# ---------------------------------------------------------------- data


@dataclass(frozen=True)
class Health:
    """One row of `Clearinghouse.health`."""

    account: int
    equity: int
    im: int
    mm: int
    liquidatable: bool


@dataclass(frozen=True)
class Position:
    """`PerpMarket.position(account)` of one account in one market."""

    account: int
    market: str  # market contract address
    size: int
    open_notional: int
    mark: int
    unrealized_pnl: int
    open_orders: int

    @property
    def notional(self) -> int:
        return abs(self.size) * self.mark // WAD


# ---------------------------------------------------------------- batched reads


@dataclass(frozen=True)
class CallFailed:
    """A reverted (or failed) read in a batch."""

    reason: str


def _block_param(block: BlockId) -> str:
    return hex(block) if isinstance(block, int) else block


def _decode_output(fn: ContractFunction, data: str) -> Any:
    types = get_abi_output_types(fn.abi)  # type: ignore[arg-type]
    values = abi_decode(types, HexBytes(data))
    return values[0] if len(values) == 1 else tuple(values)


def _revert_text(error: Any) -> str:
    if not isinstance(error, dict):
        return str(error)
    data = error.get("data")
    if isinstance(data, str) and data.startswith("0x"):
        decoded = decode_revert_data(bytes.fromhex(data[2:]))
        if decoded is not None:
            return decoded
    message = str(error.get("message", error))
    return message.removeprefix("execution reverted: ").removeprefix("execution reverted")


def batch_call(
    w3: Web3,
    fns: Sequence[ContractFunction],
    block: BlockId = "latest",
    *,
    chunk: int = RPC_BATCH,
    sender: str | None = None,
    logger: logging.Logger | None = None,
) -> list[Any]:
    """`eth_call` of every function in JSON-RPC batches of `chunk`; each entry is the decoded
    result (one output: the value; several: a tuple) or a `CallFailed` (a reverted read).
    With `sender`, the calls are made from that address (a pre-flight of calls that check
    `msg.sender`). Transport errors are retried (reads only). Without batch support: one call
    at a time."""
    out: list[Any] = []
    provider = w3.provider
    origin: dict[str, str] = {"from": sender} if sender is not None else {}
    if not hasattr(provider, "make_batch_request"):
        for fn in fns:
            try:
                out.append(
                    call_with_retry(
                        lambda fn=fn: fn.call(dict(origin), block_identifier=block),  # type: ignore[arg-type]
                        logger=logger,
                    )
                )
            except (ContractLogicError, Web3RPCError) as exc:
                out.append(CallFailed(str(exc)))
        return out
    block_param = _block_param(block)
    for start in range(0, len(fns), chunk):
        part = fns[start : start + chunk]
        requests = [
            ("eth_call", [{**origin, "to": fn.address, "data": fn._encode_transaction_data()}, block_param])
            for fn in part
        ]
        responses = batch_request(provider, requests, logger=logger)
        for fn, resp in zip(part, responses, strict=True):
            if "error" in resp and resp["error"] is not None:
                out.append(CallFailed(_revert_text(resp["error"])))
            else:
                out.append(_decode_output(fn, resp["result"]))
    return out


def scan_health(
    ch: Contract,
    *,
    page: int = HEALTH_PAGE,
    block: BlockId = "latest",
    split_budget: int = HEALTH_SPLIT_BUDGET,
    logger: logging.Logger | None = None,
) -> tuple[list[Health], list[tuple[int, int, str]]]:
    """Every account's health, read in pages of `page` ids (JSON-RPC batches of pages).

    A page reverts whole when the index of a market one of its accounts trades is stale (or
    when it runs out of gas): it is split in halves, down to single accounts, so that the
    accounts not exposed to that market are still read, within `split_budget` extra calls per
    scan (a stale market most accounts trade would otherwise cost two calls per account).
    Returns (rows, failed ranges as (first id, count, reason)); they are read again next round."""
    w3 = ch.w3
    count = int(
        call_with_retry(lambda: ch.functions.account_count().call(block_identifier=block), logger=logger)
    )
    todo = [(s, min(page, count + 1 - s)) for s in range(1, count + 1, page)]
    rows: list[Health] = []
    failed: list[tuple[int, int, str]] = []
    budget = split_budget
    while todo:
        chunk = 8 if max(n for _, n in todo) > 64 else RPC_BATCH
        results = batch_call(
            w3, [ch.functions.health(s, n) for s, n in todo], block, chunk=chunk, logger=logger
        )
        retry: list[tuple[int, int]] = []
        for (start, n), result in zip(todo, results, strict=True):
            if not isinstance(result, CallFailed):
                rows.extend(Health(int(r[0]), int(r[1]), int(r[2]), int(r[3]), bool(r[4])) for r in result)
            elif n > 1 and budget >= 2:
                budget -= 2
                half = (n + 1) // 2
                retry += [(start, half), (start + half, n - half)]
            else:
                failed.append((start, n, result.reason))
        todo = retry
    rows.sort(key=lambda h: h.account)
    failed.sort()
    return rows, failed


def describe_failed_ranges(failed: Sequence[tuple[int, int, str]]) -> str:
    """'accounts 3, 7..9: stale index' from scan_health's failed ranges (grouped by reason)."""
    by_reason: dict[str, list[str]] = {}
    for start, n, reason in failed:
        by_reason.setdefault(reason, []).append(str(start) if n == 1 else f"{start}..{start + n - 1}")
    return "; ".join(f"accounts {', '.join(r)}: {reason}" for reason, r in by_reason.items())


class MarketDirectory:
    """The Clearinghouse's markets: index (bit of `active_markets`) -> address -> contract, with symbols
    from the manifest where known. Re-read when `market_count` changes."""

    def __init__(self, ch: Contract, contracts: Mapping[str, Contract] | None = None) -> None:
        self.ch = ch
        self.w3 = ch.w3
        self._given = {Web3.to_checksum_address(c.address): (s, c) for s, c in (contracts or {}).items()}
        self.addresses: list[str] = []
        self.contracts: dict[str, Contract] = {}
        self.symbols: dict[str, str] = {}

    def refresh(self, logger: logging.Logger | None = None) -> None:
        n = int(call_with_retry(self.ch.functions.market_count(), logger=logger))
        if n == len(self.addresses):
            return
        from keeper.artifacts import abi  # lazily: the compiler wrapper

        addresses = [
            Web3.to_checksum_address(call_with_retry(self.ch.functions.markets(i), logger=logger))
            for i in range(n)
        ]
        for a in addresses:
            symbol, contract = self._given.get(a, (a, None))
            self.contracts[a] = contract or self.w3.eth.contract(address=a, abi=abi("PerpMarket"))
            self.symbols[a] = symbol
        self.addresses = addresses

    def of_mask(self, mask: int) -> list[str]:
        return [a for i, a in enumerate(self.addresses) if mask >> i & 1]

    def name(self, address: str) -> str:
        return self.symbols.get(address, address)


def read_positions(
    directory: MarketDirectory,
    accounts: Sequence[int],
    block: BlockId = "latest",
    *,
    logger: logging.Logger | None = None,
) -> tuple[dict[int, list[Position]], list[tuple[int, str]]]:
    """Positions of `accounts` in their active markets (two batches: masks, then positions).
    Returns (account -> positions with size != 0 or orders, failures as (account, reason))."""
    ch = directory.ch
    masks = batch_call(directory.w3, [ch.functions.active_markets(a) for a in accounts], block, logger=logger)
    pairs: list[tuple[int, str]] = []
    failures: list[tuple[int, str]] = []
    for a, mask in zip(accounts, masks, strict=True):
        if isinstance(mask, CallFailed):
            failures.append((a, mask.reason))
            continue
        pairs.extend((a, m) for m in directory.of_mask(int(mask)))
    fns = [directory.contracts[m].functions.position(a) for a, m in pairs]
    out: dict[int, list[Position]] = {a: [] for a in accounts}
    for (a, m), r in zip(pairs, batch_call(directory.w3, fns, block, logger=logger), strict=True):
        if isinstance(r, CallFailed):
            failures.append((a, f"{directory.name(m)}: {r.reason}"))
            continue
        size, open_notional, _entry, mark, upnl, _funding, open_orders = r
        if size != 0 or open_orders != 0:
            out[a].append(
                Position(a, m, int(size), int(open_notional), int(mark), int(upnl), int(open_orders))
            )
    return out, failures


def resting_order_ids(
    lens: Contract,
    market: Contract | str,
    account: int,
    expected: int,
    block: BlockId = "latest",
    *,
    limit: int = MAX_CANCELS,
    logger: logging.Logger | None = None,
) -> list[int]:
    """Ids of the account's resting orders in `market` (a PerpMarket contract or its address):
    `Lens.orders_of` over ids 1..next_order_id-1, pages of 1,000, several pages per batch,
    stopping once `expected` (or `limit`) are found."""
    if expected <= 0:
        return []
    address = Web3.to_checksum_address(market if isinstance(market, str) else market.address)
    next_id = int(
        call_with_retry(
            lambda: lens.functions.next_order_id(address).call(block_identifier=block), logger=logger
        )
    )
    starts = list(range(1, next_id, ORDER_PAGE))
    found: list[int] = []
    for k in range(0, len(starts), 8):
        pages = batch_call(
            lens.w3, [lens.functions.orders_of(address, account, s, ORDER_PAGE) for s in starts[k : k + 8]],
            block, logger=logger,
        )  # fmt: skip
        for r in pages:
            if isinstance(r, CallFailed):
                raise TxError(f"orders_of failed: {r.reason}")
            found.extend(int(i) for i in r)
        if len(found) >= min(expected, limit):
            break
    return found[:limit]


def receipt_events(contract: Contract, name: str, receipt: Any) -> list[Any]:
    """The `name` events of `receipt` emitted by `contract` itself (web3's `process_receipt`
    decodes every log whose topic matches, whoever emitted it)."""
    events = getattr(contract.events, name)().process_receipt(receipt, errors=DISCARD)
    return [e for e in events if e["address"] == contract.address]


__all__ = [
    "HEALTH_PAGE",
    "MAX_CANCELS",
    "BlockId",
    "CallFailed",
    "Health",
    "MarketDirectory",
    "Position",
    "batch_call",
    "describe_failed_ranges",
    "read_positions",
    "receipt_events",
    "resting_order_ids",
    "scan_health",
]
