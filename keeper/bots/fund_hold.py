"""The insurance fund's holds (PROTOCOL.md §11.0), sent by the liquidation keeper.

An account below zero at a valid index is a loss the fund will book once the account is
liquidated; until then a fund holder could redeem at the pre-loss share price. So each
round the liquidation keeper sends `hold(account)` for every account it sees below zero
that it has not held yet, before that round's liquidations (the same batch order: mined
first), and `release(account)` for every account it held whose equity is back at or above
zero (liquidated and settled, or the price came back). The contract re-checks both, so a
stale view costs a refused call ("already held", "not held": benign), never a wrong hold.
Holds by others are left to others: `release` is permissionless.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from hexbytes import HexBytes
from web3.contract import Contract

from keeper.bots.inflight import Outgoing
from keeper.chain import TxError, TxReverted

#: gas limit of a hold or release (a bound, not a measure: each reads the account's margin over its markets)
HOLD_GAS = 400_000
_ALREADY = ("insurance: account already held", "insurance: account not held")


class FundHolds:
    """The accounts this keeper holds in the fund, and the calls that keep them right."""

    def __init__(self, fund: Contract, logger: logging.Logger) -> None:
        self.fund = fund
        self.log = logger
        self.held: set[int] = set()

    def calls(self, healths: Iterable) -> list[Outgoing]:
        """Holds for the accounts below zero not held yet, releases for ours back at or above zero."""
        below = {h.account for h in healths if h.equity < 0}
        out = [
            Outgoing(("hold", a), self.fund.functions.hold(a), HOLD_GAS) for a in sorted(below - self.held)
        ]
        out += [
            Outgoing(("release", a), self.fund.functions.release(a), HOLD_GAS)
            for a in sorted(self.held - below)
        ]
        return out

    def sent(self, results: Iterable[tuple[tuple[str, int], HexBytes | TxError]]) -> int:
        """Book what `send_batch` returned for `calls()`; returns the failures (not benign)."""
        failed = 0
        for (kind, account), result in results:
            reason = result.reason if isinstance(result, TxReverted) else ""
            if isinstance(result, TxError) and not any(r in reason for r in _ALREADY):
                failed += 1
                self.log.warning(f"fund {kind} failed", extra={"account": account, "error": str(result)})
                continue
            if kind == "hold":
                self.held.add(account)
            else:
                self.held.discard(account)
            if not isinstance(result, TxError):
                self.log.info(f"fund {kind} sent", extra={"account": account, "tx_hash": result.to_0x_hex()})
        return failed
