"""Backstop takeover (opt-in: the liquidation keeper's `takeover_subaccount`, PROTOCOL.md §10):
a liquidatable position the book could not close is taken over by the keeper's own subaccount
(`LiquidationEngine.takeover(account, market, size, subaccount)`), as much as its margin allows
in whole lots (`plan_takeovers`, `takeover_size`). `TakeoverBackstop` holds the reads and the
outcome of the `LiquidationBot`'s takeovers (the bot picks the positions and sends them; see
keeper/bots/liquidation.py)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from hexbytes import HexBytes
from web3 import Web3
from web3.contract import Contract

from keeper.bots.scan import WAD, BlockId, CallFailed, MarketDirectory, batch_call
from keeper.chain import ChainClient
from keeper.liquidation_model import LiquidationParams, worst_case_deficit
from keeper.retry import call_with_retry

if TYPE_CHECKING:
    from keeper.bots.liquidation import LiquidationAction

# reverts of `takeover` meaning "already done by someone else / the state moved": not failures
# (an account of our own key is never taken over: the contract refuses)
TAKEOVER_BENIGN_REVERTS = (
    "not liquidatable",
    "takeover: no position",
    "takeover: account has open orders, liquidate first",
    "takeover: insurance fund cannot cover, adl",
    "takeover: own account",
)
# gas limit of a `takeover` (measured on anvil: ~250k with the taker in one market; the two
# margin reads grow with the markets of each account: ~25k per further market, up to 8)
TAKEOVER_GAS = 600_000
TAKEOVER_MARGIN_HAIRCUT = Fraction(99, 100)  # of the taker's free margin used, for the mark moving meanwhile


@dataclass(frozen=True)
class TakeoverCandidate:
    """A liquidatable position the book could not close, as read just before a takeover."""

    account: int
    market: str
    equity: int
    mm: int
    size: int
    mark: int
    open_orders: int
    lot: int  # PerpMarket.LOT_SIZE
    imr: int  # the market's initial margin ratio, WAD
    params: LiquidationParams
    own: bool = False  # owned by the keeper's address: the contract refuses


def takeover_size(
    abs_size: int,
    mark: int,
    lot: int,
    *,
    afford: int,
    small_position_notional: int,
    bankrupt: bool,
) -> int:
    """Whole lots of a position of `abs_size` a taker can take over when it can carry `afford`
    (base WAD) more; 0 when nothing. A bankrupt account only whole. The contract's small
    position rule takes the whole position when what is left is worth at most
    `small_position_notional`: when the taker cannot carry it whole, it takes less, leaving
    more than that. A partial takeover worth less than `small_position_notional` is not worth
    a transaction (0): the discount a takeover earns frees a little margin each time."""
    if abs_size <= 0 or mark <= 0 or lot <= 0:
        return 0
    if afford >= abs_size:
        return abs_size
    if bankrupt:
        return 0
    q = afford // lot * lot
    left = -(-(small_position_notional + 1) * WAD // mark)  # the least left: worth more than small
    left = -(-left // lot) * lot
    q = min(q, abs_size - left)
    return q if q > 0 and q * mark // WAD >= small_position_notional else 0


def plan_takeovers(
    candidates: Sequence[TakeoverCandidate],
    free_margin: int,
    capacity: int,
    *,
    max_notional: int | None = None,
) -> list[tuple[TakeoverCandidate, int]]:
    """(candidate, size) of each takeover the taker can afford, in the order given (worst first).

    `free_margin` is the taker's `equity - IM` (WAD): a takeover adds at most `size x mark x imr`
    to its IM (its equity does not fall: the price is at or better than mark for the taker), so
    each one uses that much of it (`TAKEOVER_MARGIN_HAIRCUT` kept back for the mark moving).
    `max_notional` caps the notional of each takeover. A bankrupt account is taken over whole
    only when the fund covers `-equity + |size| x mark x takeover_discount`, reserved within
    the plan like the liquidations'. Positions with resting orders (`liquidate` cancels them
    first) and the keeper's own accounts are skipped."""
    out: list[tuple[TakeoverCandidate, int]] = []
    free = int(free_margin * TAKEOVER_MARGIN_HAIRCUT)
    remaining = capacity
    for c in candidates:
        if c.size == 0 or c.open_orders or c.own or free <= 0:
            continue
        abs_size = abs(c.size)
        afford = free * WAD * WAD // (c.mark * c.imr) if c.imr > 0 else abs_size
        if max_notional is not None:
            afford = min(afford, max_notional * WAD // c.mark)
        bankrupt = c.equity < 0
        worst = worst_case_deficit(c.equity, abs_size, c.mark, c.params.takeover_discount) if bankrupt else 0
        if bankrupt and worst > remaining:
            continue
        q = takeover_size(
            abs_size, c.mark, c.lot, afford=afford,
            small_position_notional=c.params.small_position_notional, bankrupt=bankrupt,
        )  # fmt: skip
        if q == 0:
            continue
        free -= -(-q * c.mark * c.imr // (WAD * WAD))
        remaining -= worst
        out.append((c, q))
    return out


# ---------------------------------------------------------------- the bot's backstop


class TakeoverBackstop:
    """The takeover part of `LiquidationBot` (a mixin): the taker's account, the candidates read
    at the round's block, a mined takeover counted. The attributes are the bot's."""

    client: ChainClient
    ch: Contract
    engine: Contract
    lens: Contract
    w3: Web3
    directory: MarketDirectory
    log: logging.Logger
    takeover_subaccount: int | None
    takeovers: int
    _taker: int  # the takeover subaccount's account id, once it exists
    _market_info: dict[str, tuple[int, int]]  # market -> (LOT_SIZE, imr)

    def _fields(self, a: LiquidationAction) -> dict[str, Any]:
        raise NotImplementedError

    def _observe_latency(self, a: LiquidationAction, receipt: Any, fields: dict[str, Any]) -> None:
        raise NotImplementedError

    def _record_error(self, what: str, detail: str, *, retry: str | None = None) -> None:
        raise NotImplementedError

    def _mined_takeover(
        self, a: LiquidationAction, tx_hash: HexBytes, receipt: Any, events: Any, counts: dict[str, int]
    ) -> None:
        ev = events[0]["args"] if events else {}
        fields = {
            **self._fields(a),
            "tx_hash": tx_hash.to_0x_hex(),
            "block": receipt["blockNumber"],
            "gas_used": receipt["gasUsed"],
            "taken_size": ev.get("size"),
            "price": ev.get("price"),
            "fee": ev.get("fee"),
        }
        # (the pair stays in the no-fill back-off: what is left waits for liquidity or more margin)
        counts["taken_over"] += 1
        self.takeovers += 1
        self._observe_latency(a, receipt, fields)
        self.log.info("taken over (backstop)", extra=fields)

    def _taker_account(self) -> int:
        if not self._taker:
            self._taker = int(
                call_with_retry(
                    self.ch.functions.account_of(self.client.address, self.takeover_subaccount),
                    logger=self.log,
                )
            )
            if not self._taker:
                self.log.warning(
                    "takeover subaccount has no account (deposit collateral into it): no takeover",
                    extra={"sender": self.client.address, "subaccount": self.takeover_subaccount},
                )
        return self._taker

    def _takeover_reads(
        self, keys: list[tuple[int, str]], block: BlockId = "latest"
    ) -> tuple[list[TakeoverCandidate], int, int]:
        """(candidates in `keys` order, the taker's free margin, insurance capacity) at `block`."""
        for m in {m for _, m in keys} - set(self._market_info):
            market = self.directory.contracts[m]
            lot = int(call_with_retry(market.functions.LOT_SIZE(), logger=self.log))
            imr = int(call_with_retry(self.lens.functions.market_params(market.address), logger=self.log)[0])
            self._market_info[m] = (lot, imr)
        accounts = sorted({a for a, _ in keys})
        ch, engine = self.ch, self.engine
        fns = [ch.functions.margin(self._taker), engine.functions.insurance_capacity()]
        fns += [ch.functions.margin(a) for a in accounts]
        fns += [ch.functions.account_key(a) for a in accounts]
        fns += [self.directory.contracts[m].functions.position(a) for a, m in keys]
        fns += [engine.functions.liquidation_params(m) for _, m in keys]
        r = batch_call(self.w3, fns, block, logger=self.log)
        n = len(accounts)
        taker, capacity, margins, owners = r[0], r[1], r[2 : 2 + n], r[2 + n : 2 + 2 * n]
        positions, params = r[2 + 2 * n : 2 + 2 * n + len(keys)], r[2 + 2 * n + len(keys) :]
        if isinstance(taker, CallFailed) or isinstance(capacity, CallFailed):
            self._record_error("takeover", f"taker margin: {getattr(taker, 'reason', capacity)}")
            return [], 0, 0
        by_account = dict(zip(accounts, zip(margins, owners, strict=True), strict=True))
        out = []
        for (a, m), pos, lp in zip(keys, positions, params, strict=True):
            margin, owner = by_account[a]
            if any(isinstance(x, CallFailed) for x in (margin, owner, pos, lp)):
                continue  # a stale market: next round
            lot, imr = self._market_info[m]
            out.append(
                TakeoverCandidate(
                    a, m, int(margin[0]), int(margin[2]), int(pos[0]), int(pos[3]), int(pos[6]), lot, imr,
                    LiquidationParams(*lp), own=Web3.to_checksum_address(owner[0]) == self.client.address,
                )
            )  # fmt: skip
        return out, int(taker[0]) - int(taker[1]), int(capacity)


__all__ = [
    "TAKEOVER_BENIGN_REVERTS",
    "TakeoverBackstop",
    "TakeoverCandidate",
    "plan_takeovers",
    "takeover_size",
]
