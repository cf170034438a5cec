"""The keepers' hooks of the scenario runner: what runs at every stop of ``advance``
(:data:`ADVANCE_KEEPERS`) and what a ``keepers: [...]`` step runs now (:data:`KEEPERS`)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from keeper.rpc import selector
from keeper.scenario.schema import ADL_KEEPER, LIQUIDATION_KEEPER
from keeper.units import fmt, from_wad, to_units

if TYPE_CHECKING:
    from keeper.scenario.runner import ScenarioRunner


def abi_encode(types: list[str], values: list[Any]) -> bytes:
    from eth_abi import encode

    return encode(types, values)


_REPORT_SELECTOR = selector("report(uint256,uint256)")
_FUNDING_SELECTORS = {"settle": selector("settle()"), "sample": selector("sample()")}


# What "keepers acting as they would live" do when time passes (`advance`):
# at every stop of the schedule, each action gets the runner (``runner.now`` is
# the stop's block timestamp) and the seconds since the previous stop, in this
# order; it may return a summary. Automine is off during an advance: an action
# sends through ``runner.lane.transact(calls, at=runner.now)`` (which mines its
# block at the stop's time), never through a ChainClient (that would wait for
# a receipt that never comes). Liquidation and ADL keepers go here.
AdvanceAction = Callable[["ScenarioRunner", int], "str | None"]


def _keeper_oracle(runner: ScenarioRunner, _seconds: int = 0) -> str | None:
    """The oracle reporter: every market's current index pushed again, so it stays fresh."""
    for symbol, price in runner.index.items():
        runner.net.set_index(symbol, price)
    return None


def _advance_oracle(runner: ScenarioRunner, _seconds: int) -> str | None:
    """The oracle reporter at a stop: every source of every market re-reports its index at the stop's time."""
    calls = []
    for symbol, price in runner.index.items():
        md = runner.net.deployment.markets[symbol]
        data = _REPORT_SELECTOR + abi_encode(["uint256", "uint256"], [to_units(price, 18), runner.now])
        calls += [(reporter, md.oracle.address, data) for reporter in md.reporters]
    runner.lane.transact(calls, at=runner.now)
    return None


def _advance_funding(runner: ScenarioRunner, _seconds: int) -> str | None:
    """The funding keeper at a stop: its plan (settle or sample as due) from the state just read."""
    from keeper.bots.funding import plan_funding_actions

    lane = runner.lane
    states = lane.funding_states(runner.funding_contracts())
    actions = plan_funding_actions(states.values(), runner.now)
    if actions:
        keeper = runner.net.backend.deployer
        contracts = runner.funding_contracts()
        lane.transact(
            [(keeper, contracts[a.market], _FUNDING_SELECTORS[a.kind]) for a in actions], at=runner.now
        )
        settled = [a.market for a in actions if a.kind == "settle"]
        runner.funding_counts["settle"] += len(settled)
        runner.funding_counts["sample"] += len(actions) - len(settled)
        if settled:
            states.update(lane.funding_states({m: contracts[m] for m in settled}))
    runner.next_funding = {m: st.next_funding_time for m, st in states.items()}
    return None


def _keeper_funding(runner: ScenarioRunner, _seconds: int = 0) -> str | None:
    """One pass of the funding keeper (keeper.bots.funding.FundingKeeper), now, from the deployer's key."""
    from keeper.bots.funding import FundingKeeper
    from keeper.chain import TxError

    net = runner.net
    contracts = {s: md.funding for s, md in net.deployment.markets.items()}
    bot = FundingKeeper(net.backend.client(), contracts, logger=logging.getLogger("keeper.funding"))
    result = bot.run_once()
    assert result is not None  # a fresh bot is never mid-step
    if result["failed"]:
        raise TxError(f"funding keeper: {bot.last_error}")
    return f"funding: {result['settled']} settled, {result['sampled']} sampled, {result['skipped']} skipped"


# ---------------------------------------------------------------- liquidation and ADL keepers
#
# `keepers: [liquidation]` / `[adl]` run one pass of the real bots
# (keeper.bots.liquidation.LiquidationBot, keeper.bots.adl.AdlBot) from keys of
# the runner's own. At the stops of `advance` the bots cannot run as they are
# (they wait for receipts, and automine is off): the same pure planners
# (`plan_liquidations`, ADL ranking) decide from the state read through the
# fast lane, and every call is simulated (eth_call) just before it is sent
# through the lane at the stop's time, so a call that would revert for a
# benign reason (the state moved) or close nothing (no liquidity within the
# bound: the live bot sends it and backs off) is skipped and printed.

MAX_UINT = 2**256 - 1


class _SayHandler(logging.Handler):
    """A keeper bot's log records as lines of the runner's output (INFO and below only when verbose)."""

    def __init__(self, runner: ScenarioRunner, label: str) -> None:
        super().__init__(logging.DEBUG)
        self.runner, self.label = runner, label

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno < logging.WARNING and not self.runner.verbose:
            return
        from keeper.logs import _RECORD_ATTRS

        extra = {k: v for k, v in record.__dict__.items() if k not in _RECORD_ATTRS}
        keys = ("account", "market", "why", "reason", "equity", "worst_case_deficit", "error")
        wad = ("equity", "worst_case_deficit")
        detail = ", ".join(
            f"{k} {fmt(from_wad(extra[k])) if k in wad and isinstance(extra[k], int) else extra[k]}"
            for k in keys
            if k in extra
        )
        self.runner.say(f"      {self.label}: {record.getMessage()}" + (f" ({detail})" if detail else ""))


def _bot_logger(runner: ScenarioRunner, name: str) -> logging.Logger:
    log = logging.getLogger(f"keeper.scenario.{name}")
    log.propagate = False
    log.setLevel(logging.DEBUG)
    for h in list(log.handlers):
        log.removeHandler(h)
    log.addHandler(_SayHandler(runner, f"{name} keeper"))
    return log


def _keeper_actor(runner: ScenarioRunner, name: str) -> Any:
    actor = runner.net.actor(name)
    if runner._lane is not None:
        runner._lane.keys.setdefault(actor.address, actor.key)
    return actor


def _lane_read(runner: ScenarioRunner, *fns: Any) -> list[Any]:
    """Results of view calls (web3 ContractFunctions) in one batch of the fast lane, at the latest block."""
    from eth_abi import decode
    from eth_utils.abi import get_abi_output_types

    raw = runner.lane.eth_calls(
        [(fn.address, bytes.fromhex(fn._encode_transaction_data()[2:])) for fn in fns]
    )
    out = []
    for fn, data in zip(fns, raw, strict=True):
        values = decode(get_abi_output_types(fn.abi), data)
        out.append(values[0] if len(values) == 1 else values)
    return out


def _lane_send_checked(runner: ScenarioRunner, kind: str, sender: str, fn: Any, why: str) -> Any | None:
    """Simulate `fn` from `sender`; send it through the lane at the stop's time when it would close
    something; return its (decoded) receipt, or None when skipped. A revert that is not benign fails
    the step (TxReverted), as a failed keeper pass does."""
    from keeper.bots import adl, liquidation
    from keeper.chain import TxReverted, decode_revert_data

    data = bytes.fromhex(fn._encode_transaction_data()[2:])
    to = fn.address  # the LiquidationEngine (liquidate, adl)
    answer = runner.lane.batch(
        [("eth_call", [{"from": sender, "to": to, "data": "0x" + data.hex()}, "latest"])], check=False
    )[0]
    if isinstance(answer, dict):
        error = answer.get("error") or {}
        revert = error.get("data") if isinstance(error, dict) else None
        reason = decode_revert_data(bytes.fromhex(revert[2:])) if isinstance(revert, str) else None
        reason = reason or str(error)
        # the bots' own list of "someone acted first / the state moved"
        if not liquidation.is_benign_revert(reason, (*liquidation.BENIGN_REVERTS, *adl.BENIGN_REVERTS)):
            raise TxReverted(f"{kind} keeper: {reason}")
        runner.say(f"      {kind} keeper at {runner.now}: {why}: would revert ({reason}), skipped")
        return None
    if int(answer, 16) == 0:
        runner.say(f"      {kind} keeper at {runner.now}: {why}: would close nothing (no liquidity), skipped")
        return None
    (raw,) = runner.lane.transact([(sender, to, data)], at=runner.now)
    receipt = runner.net.w3.eth.get_transaction_receipt(raw["transactionHash"])
    runner.risk_counts[kind] += 1
    runner.say(
        f"      {kind} keeper at {runner.now}: {why} -> " + "; ".join(runner._describe_liquidation(receipt))
    )
    return receipt


def _liquidatable(runner: ScenarioRunner) -> list[Any]:
    """Clearinghouse.health of every account (pages of 500, through the lane), liquidatable ones worst
    first (keeper.bots.liquidation.rank_liquidatable)."""
    from keeper.bots.liquidation import rank_liquidatable
    from keeper.bots.scan import HEALTH_PAGE, Health

    key = (runner.now, runner.lane.sent)  # nothing was sent since the last read: the same answer
    if runner.health_cache is not None and runner.health_cache[0] == key:
        return runner.health_cache[1]
    ch = runner.net.ch
    rows: list[Any] = []
    start = 1
    while True:
        (page,) = _lane_read(runner, ch.functions.health(start, HEALTH_PAGE))
        rows += [Health(int(r[0]), int(r[1]), int(r[2]), int(r[3]), bool(r[4])) for r in page]
        if len(page) < HEALTH_PAGE:
            break
        start += HEALTH_PAGE
    ranked = rank_liquidatable(rows)
    runner.health_cache = (key, ranked)
    return ranked


def _risk_state(runner: ScenarioRunner, ranked: list[Any]) -> tuple[Any, dict, dict, int]:
    """(market directory, account -> positions, market -> LiquidationParams, insurance capacity)."""
    from keeper.bots.scan import MarketDirectory, read_positions
    from keeper.chain import TxError
    from keeper.liquidation_model import LiquidationParams

    net = runner.net
    if runner.directory is None:
        runner.directory = MarketDirectory(net.ch, {s: md.market for s, md in net.deployment.markets.items()})
    directory = runner.directory
    directory.refresh()
    positions, failures = read_positions(directory, [h.account for h in ranked])
    if failures:
        raise TxError(f"reading positions: {failures}")
    markets = sorted({p.market for ps in positions.values() for p in ps})
    reads = _lane_read(
        runner,
        net.engine.functions.insurance_capacity(),
        *(net.engine.functions.liquidation_params(m) for m in markets),
    )
    params = {m: LiquidationParams(*p) for m, p in zip(markets, reads[1:], strict=True)}
    return directory, positions, params, int(reads[0])


def _advance_liquidation(runner: ScenarioRunner, _seconds: int) -> str | None:
    """The liquidation keeper at a stop: LiquidationBot's plan (plan_liquidations, worst first) from the
    state just read; each liquidate simulated, then sent through the lane."""
    from keeper.bots.liquidation import plan_liquidations
    from keeper.bots.scan import resting_order_ids

    ranked = _liquidatable(runner)
    if not ranked:
        return None
    directory, positions, params, capacity = _risk_state(runner, ranked)
    plan = plan_liquidations(ranked, positions, params, capacity)
    sender = _keeper_actor(runner, LIQUIDATION_KEEPER).address
    for a in plan.liquidate:
        order_ids = resting_order_ids(runner.net.lens, a.market, a.account, a.open_orders)
        fn = runner.net.engine.functions.liquidate(a.account, a.market, MAX_UINT, order_ids)
        why = f"account {a.account} in {directory.name(a.market)}: {a.reason}"
        _lane_send_checked(runner, "liquidation", sender, fn, why)
    return None


def _advance_adl(runner: ScenarioRunner, _seconds: int) -> str | None:
    """The ADL keeper at a stop: AdlBot's plan - the bankrupt positions beyond the insurance fund's
    capacity (find_adl_cases), each against the profitable opposite positions by live adl_score,
    highest first (read_market_scores, plan_adl) - each ADL simulated, then sent through the lane."""
    from keeper.bots.adl import find_adl_cases, plan_adl, read_market_scores
    from keeper.bots.scan import resting_order_ids
    from keeper.chain import TxError

    bankrupt = [h for h in _liquidatable(runner) if h.equity < 0]
    if not bankrupt:
        return None
    directory, positions, params, capacity = _risk_state(runner, bankrupt)
    cases, _to_liquidate = find_adl_cases(bankrupt, positions, params, capacity)
    sender = _keeper_actor(runner, ADL_KEEPER).address
    for case in cases:
        plan = plan_adl(case, read_market_scores(directory, runner.net.engine, case.market))
        why = (
            f"account {case.account} in {directory.name(case.market)}: equity {fmt(from_wad(case.equity))}, "
            f"worst case {fmt(from_wad(case.worst_case_deficit))} > insurance capacity "
            f"{fmt(from_wad(case.capacity))}"
        )
        if not plan.takes:
            raise TxError(f"adl keeper: {why}: no opposite-side profitable position to deleverage")
        order_ids = resting_order_ids(runner.net.lens, case.market, case.account, case.open_orders)
        fn = runner.net.engine.functions.adl(case.account, case.market, plan.candidates, order_ids)
        why += "; candidates " + ", ".join(f"{a} (score {fmt(from_wad(sc))})" for a, _t, sc in plan.takes)
        _lane_send_checked(runner, "adl", sender, fn, why)
    return None


def _since(runner: ScenarioRunner, block: int) -> list[str]:
    """What liquidations, ADL and bad debt did in the blocks after `block`."""
    w3 = runner.net.w3
    latest = w3.eth.block_number
    out = []
    for n in range(block + 1, latest + 1):
        for tx in w3.eth.get_block(n)["transactions"]:
            out += runner._describe_liquidation(w3.eth.get_transaction_receipt(tx))
    return out


def _keeper_adl(runner: ScenarioRunner, _seconds: int = 0) -> str | None:
    """One pass of the ADL keeper (keeper.bots.adl.AdlBot), now, from a key of its own."""
    from keeper.bots.adl import AdlBot
    from keeper.chain import TxError

    net = runner.net
    actor = _keeper_actor(runner, ADL_KEEPER)
    markets = {s: md.market for s, md in net.deployment.markets.items()}
    bot = AdlBot(
        net.client(actor.address), net.ch, markets, engine=net.engine, lens=net.lens,
        logger=_bot_logger(runner, "adl"),
    )  # fmt: skip
    block = net.w3.eth.block_number
    counts = bot.run_once()
    assert counts is not None  # a fresh bot is never mid-step
    for line in _since(runner, block):
        runner.say(f"      adl keeper: {line}")
    if counts["failed"]:
        raise TxError(f"adl keeper: {bot.last_error}")
    return f"adl: {counts['bankrupt']} bankrupt, {counts['cases']} beyond the insurance fund, {counts['adl']} deleveraged"


def _keeper_liquidation(runner: ScenarioRunner, _seconds: int = 0) -> str | None:
    """One pass of the liquidation keeper (keeper.bots.liquidation.LiquidationBot), now, from a key of its own."""
    from keeper.bots.liquidation import LiquidationBot
    from keeper.chain import TxError

    net = runner.net
    actor = _keeper_actor(runner, LIQUIDATION_KEEPER)
    markets = {s: md.market for s, md in net.deployment.markets.items()}
    bot = LiquidationBot(
        net.client(actor.address), net.ch, markets, engine=net.engine, lens=net.lens,
        logger=_bot_logger(runner, "liquidation"),
    )  # fmt: skip
    block = net.w3.eth.block_number
    counts = bot.run_once()
    assert counts is not None  # a fresh bot is never mid-step
    for line in _since(runner, block):
        runner.say(f"      liquidation keeper: {line}")
    if counts["failed"]:
        raise TxError(f"liquidation keeper: {bot.last_error}")
    return (
        f"liquidation: {counts['liquidatable']} liquidatable, {counts['liquidated']} liquidated, "
        f"{counts['adl_handoff']} left to ADL, {counts['skipped']} skipped"
    )


ADVANCE_KEEPERS: list[tuple[str, AdvanceAction]] = [
    ("oracle", _advance_oracle),
    ("funding", _advance_funding),
    ("liquidation", _advance_liquidation),
    ("adl", _advance_adl),
]


# `keepers: [...]` steps: run one keeper pass now
KEEPERS: dict[str, AdvanceAction] = {
    "oracle": _keeper_oracle,
    "funding": _keeper_funding,
    "liquidation": _keeper_liquidation,
    "adl": _keeper_adl,
}
