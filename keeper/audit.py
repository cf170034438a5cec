"""`keeper audit adl`: replay an auto-deleveraging from chain history and prove it took the
highest-scored positions (PROTOCOL.md §11), or name the account it skipped.

    keeper audit adl --tx 0xHASH [--rpc URL] [--manifest PATH] [--json]
    keeper audit adl --block N   [--rpc URL] [--manifest PATH] [--json]

For each `AutoDeleverage` event of the transaction (or of every transaction of the block),
emitted by the deployment's LiquidationEngine (the manifest's `liquidation_engine`):

1. its `Deleveraged` events give the counterparties used, in call order, with the size taken
   and the score the contract computed;
2. the state of the block before (`eth_call` with block_identifier = block - 1) gives, for
   every account 1..account_count with the market's bit in `active_markets`, its position and
   its live score, twice: the engine's `adl_score` view, and the Python model
   (`liquidation_model.adl_score` of `position` and `margin`), which must agree;
3. `check_adl` (pure) proves that no eligible account (opposite side, score > 0) with a score
   above the lowest score used was skipped, nor left partly used while a lower-scored one was
   used; otherwise it names the account and both scores.

Assumption (printed with every report): the ADL transaction was the first state change of its
block, so the state at block - 1 is the state it ran on (on anvil each transaction is its own
block). The scores recorded in the events are compared with the recomputed ones: a mismatch
means the assumption failed (or the score view is wrong), and the audit is inconclusive.

Exit codes: 0 proved, 1 a skipped account is named (violation), 3 inconclusive, 2 usage errors
(no ADL in the transaction, unknown transaction, ...).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from hexbytes import HexBytes
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import TransactionNotFound
from web3.logs import DISCARD

from keeper.liquidation_model import adl_score

ASSUMPTION = (
    "assumes the ADL transaction was the first state change in its block: scores are recomputed "
    "from the state at block - 1 (on anvil each transaction is its own block)"
)

EXIT_PROVED = 0
EXIT_VIOLATION = 1
EXIT_INCONCLUSIVE = 3

Verdict = Literal["proved", "violation", "inconclusive"]


@dataclass(frozen=True)
class UsedCounterparty:
    """One `Deleveraged` event: a counterparty, the size taken from it, its score in the tx."""

    account: int
    size: int
    score: int


@dataclass(frozen=True)
class LiveScore:
    """An account's position and score at block - 1."""

    account: int
    size: int
    score: int  # the contract's adl_score view
    model_score: int  # liquidation_model.adl_score of position() and margin()


@dataclass
class Check:
    verdict: Verdict
    violations: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    lowest_used: int | None = None


@dataclass
class AdlAudit:
    tx_hash: str
    block: int
    tx_index: int
    account: int
    market: str
    bankrupt_size: int  # at block - 1
    closed: int
    price: int
    used: list[UsedCounterparty]
    eligible: list[LiveScore]  # opposite side, score > 0, highest first
    check: Check
    assumption: str = ASSUMPTION

    @property
    def exit_code(self) -> int:
        return {"proved": EXIT_PROVED, "violation": EXIT_VIOLATION}.get(self.check.verdict, EXIT_INCONCLUSIVE)


class AuditError(Exception):
    """The audit could not run (no such transaction, no ADL in it, ...)."""


# ---------------------------------------------------------------- pure proof


def check_adl(
    bankrupt_account: int,
    bankrupt_size: int,
    used: Sequence[UsedCounterparty],
    scores: Mapping[int, LiveScore],
) -> Check:
    """Prove the ADL took the highest scores first, from the live scores before it ran.

    Eligible: every other account on the opposite side of `bankrupt_size` with a score > 0. With
    `lowest` the lowest score among the counterparties used:

    * an eligible account not used whose score is above `lowest` was skipped: violation;
    * an eligible account used for less than its size while a lower-scored account was used
      after it: violation;
    * a counterparty not eligible (same side, no profit, no position), or used out of score
      order: violation (the contract refuses both: it would mean the events lie);
    * a recorded score that differs from the recomputed one, or the contract's score view that
      differs from the model: inconclusive (the state before the block is not the state the
      ADL ran on, or the view is wrong).

    An unused account whose score equals `lowest` is a tie, noted, not a violation (the keeper's
    rule breaks ties by the lower account id)."""
    check = Check("proved")
    if not used:
        check.verdict = "inconclusive"
        check.notes.append("no counterparty was used")
        return check
    mismatches = _score_mismatches(used, scores)
    if mismatches:
        check.verdict = "inconclusive"
        check.notes += mismatches

    def eligible(s: LiveScore) -> bool:
        return _eligible(s, bankrupt_account, bankrupt_size)

    violations = _used_out_of_rule(used, scores, eligible)
    check.lowest_used = min(u.score for u in used)
    skipped, ties = _skipped_by_rank(used, scores, eligible)
    check.notes += ties
    violations += skipped
    if violations:
        check.verdict = "violation"
        check.violations = violations
    return check


def _score_mismatches(used: Sequence[UsedCounterparty], scores: Mapping[int, LiveScore]) -> list[str]:
    """Scores that disagree: an event's with the one recomputed at block - 1, the contract's
    view with the model's (each makes the audit inconclusive)."""
    notes = []
    for u in used:
        live = scores.get(u.account)
        recomputed = live.score if live else 0
        if u.score != recomputed:
            notes.append(
                f"account {u.account}: score {u.score} in the event, {recomputed} recomputed at block - 1"
            )
    for s in scores.values():
        if s.score != s.model_score:
            notes.append(f"account {s.account}: adl_score view {s.score} != model {s.model_score}")
    return notes


def _eligible(s: LiveScore, bankrupt_account: int, bankrupt_size: int) -> bool:
    """Another account, on the side opposite the bankrupt one, with a score > 0."""
    return (
        s.account != bankrupt_account and s.score > 0 and s.size != 0 and (s.size > 0) != (bankrupt_size > 0)
    )


def _used_out_of_rule(
    used: Sequence[UsedCounterparty], scores: Mapping[int, LiveScore], eligible: Callable[[LiveScore], bool]
) -> list[str]:
    """Counterparties that were not eligible, or were used after a lower score."""
    violations = []
    for k, u in enumerate(used):
        live = scores.get(u.account)
        if live is None or not eligible(live):
            violations.append(
                f"account {u.account} was deleveraged but is not eligible (opposite side, score > 0)"
            )
        if k and u.score > used[k - 1].score:
            violations.append(
                f"account {u.account} (score {u.score}) used after a lower score {used[k - 1].score}"
            )
    return violations


def _skipped_by_rank(
    used: Sequence[UsedCounterparty], scores: Mapping[int, LiveScore], eligible: Callable[[LiveScore], bool]
) -> tuple[list[str], list[str]]:
    """(violations, notes) of the eligible accounts, highest score first: one skipped above the
    lowest score used, or used only in part while a lower score came after it, is a violation;
    one not used at the lowest score is a tie (a note)."""
    violations, notes = [], []
    by_account = {u.account: u for u in used}
    lowest = min(u.score for u in used)
    lowest_account = next(u.account for u in reversed(used) if u.score == lowest)
    for s in sorted(scores.values(), key=lambda s: (-s.score, s.account)):
        if not eligible(s):
            continue
        u = by_account.get(s.account)
        if u is None and s.score > lowest:
            violations.append(
                f"account {s.account} (score {s.score}) was skipped while account {lowest_account} "
                f"(score {lowest}) was deleveraged"
            )
        elif u is None and s.score == lowest:
            notes.append(f"account {s.account} ties the lowest score used ({lowest}): not used (tie)")
        elif u is not None and u.size < abs(s.size):
            later = [v for v in used[used.index(u) + 1 :] if v.score < s.score]
            if later:
                violations.append(
                    f"account {s.account} (score {s.score}) was used for {u.size} of {abs(s.size)} while "
                    f"account {later[0].account} (score {later[0].score}) was deleveraged after it"
                )
    return violations, notes


# ---------------------------------------------------------------- chain


def _events(contract: Contract, name: str, receipt: Any) -> list[Any]:
    """The `name` events of `receipt` emitted by `contract` itself."""
    events = getattr(contract.events, name)().process_receipt(receipt, errors=DISCARD)
    return [e for e in events if e["address"] == contract.address]


def _require_state(ch: Contract, block: int) -> None:
    """Raise AuditError when the node no longer keeps the state at `block`: the audit reads the
    state before the ADL, which a node that keeps recent states only (anvil --prune-history, a
    full node's last 128 blocks) drops as the chain moves on; no event carries every score."""
    from web3.exceptions import Web3RPCError

    from keeper.chain import revert_reason

    try:
        ch.functions.market_count().call(block_identifier=block)
    except Web3RPCError as exc:  # a revert is a ContractLogicError; market_count() has none
        raise AuditError(
            f"the node cannot read the state at block {block} ({revert_reason(exc)}): the audit replays "
            "the state before the ADL, which a node keeps for recent blocks only: run it against an "
            "archive node, or soon after the ADL"
        ) from None


def live_scores(ch: Contract, engine: Contract, market: Contract, block: int) -> dict[int, LiveScore]:
    """Position and score (the engine's view, and the model) of every account with the market's
    bit, at `block`."""
    from keeper.bots.scan import CallFailed, batch_call

    w3 = ch.w3
    idx = next(
        i
        for i in range(int(ch.functions.market_count().call(block_identifier=block)))
        if Web3.to_checksum_address(ch.functions.markets(i).call(block_identifier=block)) == market.address
    )
    n = int(ch.functions.account_count().call(block_identifier=block))
    accounts = list(range(1, n + 1))
    masks = batch_call(w3, [ch.functions.active_markets(a) for a in accounts], block)
    active = [
        a for a, m in zip(accounts, masks, strict=True) if not isinstance(m, CallFailed) and int(m) >> idx & 1
    ]
    fns = [
        f
        for a in active
        for f in (
            market.functions.position(a),
            ch.functions.margin(a),
            engine.functions.adl_score(a, market.address),
        )
    ]
    results = batch_call(w3, fns, block)
    out: dict[int, LiveScore] = {}
    for k, a in enumerate(active):
        pos, margin, score = results[3 * k : 3 * k + 3]
        for r in (pos, margin, score):
            if isinstance(r, CallFailed):
                raise AuditError(f"reading account {a} at block {block} failed: {r.reason}")
        size, open_notional, _entry, mark, upnl = (int(x) for x in pos[:5])
        if size == 0:
            continue
        model = adl_score(upnl, open_notional, size, mark, int(margin[0]))
        out[a] = LiveScore(a, size, int(score), model)
    return out


def _market_contract(w3: Web3, address: str, markets: Mapping[str, Contract]) -> tuple[str, Contract]:
    for symbol, c in markets.items():
        if c.address == Web3.to_checksum_address(address):
            return symbol, c
    from keeper.artifacts import abi

    address = Web3.to_checksum_address(address)
    return address, w3.eth.contract(address=address, abi=abi("PerpMarket"))


def audit_receipt(
    ch: Contract, engine: Contract, receipt: Any, markets: Mapping[str, Contract]
) -> list[AdlAudit]:
    """Audit every AutoDeleverage (an event of `engine`) of one receipt."""
    w3 = ch.w3
    adls = _events(engine, "AutoDeleverage", receipt)
    delevs = _events(engine, "Deleveraged", receipt)
    out: list[AdlAudit] = []
    block = int(receipt["blockNumber"])
    for adl in adls:
        a = adl["args"]
        symbol, market = _market_contract(w3, a["market"], markets)
        # the Deleveraged events of this ADL: logged before it, after the previous AutoDeleverage
        used = [
            UsedCounterparty(int(e["args"]["counterparty"]), int(e["args"]["size"]), int(e["args"]["score"]))
            for e in delevs
            if e["args"]["account"] == a["account"]
            and e["args"]["market"] == a["market"]
            and e["logIndex"] < adl["logIndex"]
            and all(not (o["logIndex"] < adl["logIndex"] and e["logIndex"] < o["logIndex"]) for o in adls)
        ]
        before = block - 1
        _require_state(ch, before)
        scores = live_scores(ch, engine, market, before)
        bankrupt_size = int(market.functions.position(int(a["account"])).call(block_identifier=before)[0])
        check = check_adl(int(a["account"]), bankrupt_size, used, scores)
        eligible = sorted(
            (
                s
                for s in scores.values()
                if s.account != a["account"] and s.score > 0 and (s.size > 0) != (bankrupt_size > 0)
            ),
            key=lambda s: (-s.score, s.account),
        )
        out.append(
            AdlAudit(
                tx_hash=HexBytes(receipt["transactionHash"]).to_0x_hex(),
                block=block,
                tx_index=int(receipt["transactionIndex"]),
                account=int(a["account"]),
                market=symbol,
                bankrupt_size=bankrupt_size,
                closed=int(a["size"]),
                price=int(a["price"]),
                used=used,
                eligible=eligible,
                check=check,
            )
        )
    return out


def audit_adl(
    ch: Contract,
    engine: Contract,
    *,
    tx_hash: str | None = None,
    block: int | None = None,
    markets: Mapping[str, Contract] | None = None,
) -> list[AdlAudit]:
    """Audit the ADL(s) of a transaction, or of every transaction of a block: the
    `AutoDeleverage` events of `engine` (the clearinghouse `ch`'s LiquidationEngine)."""
    w3 = ch.w3
    markets = markets or {}
    if (tx_hash is None) == (block is None):
        raise AuditError("give a transaction hash or a block number")
    if tx_hash is not None:
        try:
            receipts = [w3.eth.get_transaction_receipt(HexBytes(tx_hash))]
        except TransactionNotFound:
            raise AuditError(f"transaction {tx_hash} not found (or not mined)") from None
    else:
        logs = engine.events.AutoDeleverage().get_logs(from_block=block, to_block=block)
        hashes = list(dict.fromkeys(HexBytes(ev["transactionHash"]) for ev in logs))
        receipts = [w3.eth.get_transaction_receipt(h) for h in hashes]
    audits = [x for r in receipts for x in audit_receipt(ch, engine, r, markets)]
    if not audits:
        where = f"transaction {tx_hash}" if tx_hash else f"block {block}"
        raise AuditError(f"no AutoDeleverage event of the liquidation engine {engine.address} in {where}")
    if len(audits) > 1 or any(x.tx_index > 0 for x in audits):
        for x in audits:
            x.check.notes.append(
                f"the block holds {len(audits)} ADL(s); this one is transaction {x.tx_index} of its block: "
                "the state at block - 1 may not be the state it ran on"
            )
    return audits


# ---------------------------------------------------------------- report


def _wad(x: int) -> str:
    return f"{x / 10**18:,.6f}"


def _exact(x: int) -> str:
    """A WAD integer as its exact decimal (18 places)."""
    sign, x = ("-" if x < 0 else ""), abs(x)
    return f"{sign}{x // 10**18}.{x % 10**18:018d}"


def format_audit(x: AdlAudit) -> str:
    used = {u.account: u for u in x.used}
    lines = [
        f"ADL audit: tx {x.tx_hash} (block {x.block}, index {x.tx_index})",
        f"  bankrupt account {x.account} in {x.market}: size {_wad(x.bankrupt_size)}, "
        f"closed {_wad(x.closed)} at {_wad(x.price)}",
        f"  note: {x.assumption}",
        f"  eligible positions at block {x.block - 1} (opposite side, score > 0), highest score first:",
        f"  {'rank':>4} {'account':>8} {'size':>16} {'score':>24} {'taken':>16}  status",
    ]
    for rank, s in enumerate(x.eligible, 1):
        u = used.get(s.account)
        if u is not None:
            status = "deleveraged" + ("" if u.size == abs(s.size) else " (partly)")
        elif x.check.lowest_used is not None and s.score > x.check.lowest_used:
            status = "SKIPPED"
        elif x.check.lowest_used is not None and s.score == x.check.lowest_used:
            status = "not used (tie)"
        else:
            status = "not needed"
        taken = _wad(u.size) if u else "-"
        lines.append(
            f"  {rank:>4} {s.account:>8} {_wad(s.size):>16} {_exact(s.score):>24} {taken:>16}  {status}"
        )
    lines.append("  (scores: exact decimals; the messages below give them as WAD integers, x 1e-18)")
    for note in x.check.notes:
        lines.append(f"  note: {note}")
    if x.check.verdict == "proved":
        lines.append(
            f"  PROVED: no eligible account with a score above the lowest used ({x.check.lowest_used}) was "
            f"skipped; {len(x.used)} counterparties in non-increasing score order"
        )
    elif x.check.verdict == "violation":
        for v in x.check.violations:
            lines.append(f"  VIOLATION: {v}")
    else:
        lines.append("  INCONCLUSIVE: the recomputed scores do not match the ones the ADL used (see notes)")
    return "\n".join(lines)


def audit_exit_code(audits: Sequence[AdlAudit]) -> int:
    codes = [x.exit_code for x in audits]
    if EXIT_VIOLATION in codes:
        return EXIT_VIOLATION
    if EXIT_INCONCLUSIVE in codes:
        return EXIT_INCONCLUSIVE
    return EXIT_PROVED


def to_json(audits: Sequence[AdlAudit]) -> str:
    return json.dumps([{**asdict(x), "verdict": x.check.verdict} for x in audits], indent=2, default=str)


# ---------------------------------------------------------------- CLI


def add_audit_command(sub: Any) -> None:
    """`keeper audit adl --tx HASH | --block N` (registered in keeper.cli.COMMANDS)."""
    audit = sub.add_parser("audit", help="audit past keeper actions from chain history")
    kinds = audit.add_subparsers(dest="audit", metavar="WHAT", required=True)
    p = kinds.add_parser(
        "adl", help="prove an ADL took the highest-scored positions (exit 0), or name the skipped one (1)"
    )
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--tx", help="the ADL transaction hash")
    which.add_argument("--block", type=int, help="every ADL of this block")
    p.add_argument("--config", help="YAML or TOML settings file (default: $VYPERP_CONFIG)")
    p.add_argument("--rpc", dest="rpc_url", help="JSON-RPC URL (overrides settings)")
    p.add_argument("--manifest", help="deployment manifest JSON (overrides settings)")
    p.add_argument("--json", action="store_true", help="print the audit as JSON")
    p.set_defaults(handler=run_audit_adl)


def run_audit_adl(args: argparse.Namespace) -> int:
    from keeper.context import RunContext
    from keeper.errors import CliError
    from keeper.settings import load_settings

    settings = load_settings(args.config, rpc_url=args.rpc_url, manifest=args.manifest)
    ctx = RunContext(settings, args)
    engine = ctx.liquidation_engine()  # an older manifest without one fails first, naming it
    ch = ctx.clearinghouse()
    markets = {s: ctx.contract("PerpMarket", m.market) for s, m in ctx.manifest.markets.items() if m.market}
    try:
        audits = audit_adl(ch, engine, tx_hash=args.tx, block=args.block, markets=markets)
    except AuditError as exc:
        raise CliError(str(exc)) from None
    if args.json:
        print(to_json(audits))
    else:
        print("\n\n".join(format_audit(x) for x in audits))
    sys.stdout.flush()
    return audit_exit_code(audits)


__all__ = [
    "ASSUMPTION",
    "AdlAudit",
    "AuditError",
    "Check",
    "LiveScore",
    "UsedCounterparty",
    "add_audit_command",
    "audit_adl",
    "audit_exit_code",
    "check_adl",
    "format_audit",
    "live_scores",
]
