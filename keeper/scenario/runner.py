"""The scenario runner: runs one parsed scenario on a fresh deployment (:class:`ScenarioRunner`,
:func:`run_scenario`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal, localcontext
from pathlib import Path
from typing import Any

from keeper.orders import ORDER_TYPES, REMOVED_REASONS, cancelled_rest, market_limit
from keeper.rpc import FastLane, is_chain_error
from keeper.scenario.errors import ScenarioEnvironmentError, _describe_error
from keeper.scenario.expectations import ExpectationChecks
from keeper.scenario.hooks import ADVANCE_KEEPERS, KEEPERS
from keeper.scenario.loader import load_scenario
from keeper.scenario.results import ScenarioResult, StepResult
from keeper.scenario.schema import (
    INSURANCE_DEPOSITOR,
    RUNNER_ACTORS,
    AmountStep,
    CancelStep,
    LiquidateStep,
    OracleStep,
    OrderStep,
    Scenario,
    Step,
)
from keeper.units import WAD, fmt, format_duration, from_wad, to_units


class ScenarioRunner(ExpectationChecks):
    """Runs one parsed scenario on a fresh deployment. `out` receives each printed line."""

    def __init__(
        self,
        scenario: Scenario,
        rpc_url: str | None = None,
        *,
        verbose: bool = False,
        out: Callable[[str], None] | None = None,
    ) -> None:
        self.scenario = scenario
        self.rpc_url = rpc_url
        self.verbose = verbose
        self._out = out
        self.result = ScenarioResult(scenario.name, scenario.source)
        self.net: Any = None
        self.index: dict[str, Decimal] = {s: m.index for s, m in scenario.spec.markets.items()}
        self.labels: dict[str, tuple[str, int]] = {}
        self.start_block = 0
        self._topics: dict[str, dict[str, list[str]]] | None = None
        # advance: the current stop's block timestamp, the fast lane, each market's next funding time
        self.now = 0
        self._lane: FastLane | None = None
        self.next_funding: dict[str, int] = {}
        self.funding_counts = {"settle": 0, "sample": 0}
        self.risk_counts = {"liquidation": 0, "adl": 0}
        self.directory: Any = None  # keeper.bots.scan.MarketDirectory, for the advance keepers
        self.health_cache: tuple[tuple[int, int], list[Any]] | None = None
        self._time_frozen = False

    # ------------------------------------------------------------ output

    def say(self, line: str) -> None:
        self.result.output.append(line)
        if self._out is not None:
            self._out(line)

    def note(self, text: str) -> None:
        self.result.notes.append(text)
        self.say(f"note: {text}")

    # ------------------------------------------------------------ run

    def run(self) -> ScenarioResult:
        sc = self.scenario
        self.say(f"scenario {sc.name} ({sc.source})")
        if sc.spec.description:
            self.say("  " + " ".join(sc.spec.description.split()))
        missing = sc.missing_features()
        if missing:
            self.note(f"requires {', '.join(missing)}: not implemented yet, expect failures")
        self.net = self._start()
        try:
            self._freeze_time()
            try:
                self._setup()
            except Exception as exc:
                if not is_chain_error(exc):
                    raise
                self.result.error = f"setup failed: {_describe_error(exc)}"
                self.say(f"FAIL  {self.result.error}")
                return self._finish()
            for step in sc.steps:
                sr = self._run_step(step)
                self.result.steps.append(sr)
                if not sr.ok:
                    rest = len(sc.steps) - step.index
                    self.result.error = f"step {step.index} failed: {sr.error}"
                    if rest:
                        self.say(f"stopped: {rest} step(s) not run")
                    break
            return self._finish()
        finally:
            self._unfreeze_time()
            if self._lane is not None:
                self._lane.close()
            self.net.stop()

    def _freeze_time(self) -> None:
        """Chain time stands still between steps: every block gets the previous block's timestamp."""
        answer = self.net.w3.provider.make_request("anvil_setBlockTimestampInterval", [0])
        if answer.get("error"):
            self.note(f"the node cannot pin block timestamps ({answer['error']}): times follow its clock")
            return
        self._time_frozen = True

    def _unfreeze_time(self) -> None:
        if self._time_frozen:
            self._time_frozen = False
            try:
                self.net.w3.provider.make_request("anvil_removeBlockTimestampInterval", [])
            except Exception as exc:
                if not is_chain_error(exc):
                    raise

    @property
    def lane(self) -> FastLane:
        if self._lane is None:
            keys = {c.address: c.account.key.hex() for c in self.net.backend.clients.values()}
            self._lane = FastLane(self.net.w3.provider.endpoint_uri, keys)
        return self._lane

    def funding_contracts(self) -> dict[str, str]:
        """Symbol -> FundingRate address."""
        return {s: md.funding.address for s, md in self.net.deployment.markets.items()}

    def _finish(self) -> ScenarioResult:
        r = self.result
        exps = r.expectations
        failed = [e for e in exps if not e.ok]
        if r.ok:
            self.say(f"PASS  {len(r.steps)} steps, {len(exps)} expectations hold")
        else:
            bits = []
            if failed:
                bits.append(f"{len(failed)} of {len(exps)} expectations failed")
            if r.error:
                bits.append(r.error)
            self.say("FAIL  " + "; ".join(bits))
        return r

    def _start(self) -> Any:
        from eth_account import Account

        from keeper.anvil import AnvilError, dev_private_keys
        from keeper.chain import ChainClient, TxError
        from keeper.deploy import DeployConfig
        from keeper.localnet import start_localnet
        from keeper.retry import connect

        spec = self.scenario.spec
        markets = [m.market_config(s) for s, m in spec.markets.items()]
        needed = 2 + sum(mc.oracle_sources for mc in markets) + len(spec.accounts) + len(RUNNER_ACTORS)
        n_keys = max(60, needed + 4)
        kwargs: dict[str, Any] = {}
        if spec.insurance_fee_share is not None:
            kwargs["insurance_fee_share"] = spec.insurance_fee_share
        if spec.insurance_payout_cap is not None:
            kwargs["insurance_payout_cap"] = spec.insurance_payout_cap
        config = DeployConfig(collateral_decimals=spec.collateral_decimals, markets=markets, **kwargs)
        try:
            if self.rpc_url is not None:
                w3 = connect(self.rpc_url)
                keys = dev_private_keys(n_keys)
                funder = ChainClient(w3, keys[0])
                if w3.eth.get_balance(funder.address) < 10**18:
                    raise ScenarioEnvironmentError(
                        f"the node at {self.rpc_url} does not fund anvil's default dev accounts"
                    )
                for key in keys[1:needed]:  # dev nodes started with few accounts: top the others up
                    addr = Account.from_key(key).address
                    if w3.eth.get_balance(addr) < 10**18:
                        funder.transfer(addr, 100 * 10**18)
            net = start_localnet(config, rpc_url=self.rpc_url, accounts=n_keys)
        except (AnvilError, OSError, TxError) as exc:
            raise ScenarioEnvironmentError(f"cannot start the local chain: {exc}") from exc
        except Exception as exc:
            if not is_chain_error(exc):
                raise
            raise ScenarioEnvironmentError(f"cannot deploy on {self.rpc_url or 'anvil'}: {exc}") from exc
        self.start_block = int(net.deployment.manifest["block"]) + 1
        return net

    def _setup(self) -> None:
        net, spec = self.net, self.scenario.spec
        parts = []
        for symbol, m in spec.markets.items():
            mc = net.deployment.markets[symbol].config
            parts.append(
                f"{symbol} index {fmt(m.index)} tick {fmt(mc.tick_size)} lot {fmt(mc.lot_size)} "
                f"min notional {fmt(mc.min_order_notional)} IM {fmt(mc.initial_margin)} "
                f"MM {fmt(mc.maintenance_margin)} fees {fmt(mc.taker_fee)}/{fmt(mc.maker_fee)} "
                f"mark band {fmt(mc.mark_band)} price band {fmt(mc.price_band)}"
            )
            parts.append(
                f"{symbol} funding {mc.premium_mode} every {format_duration(mc.funding_interval)} "
                f"quoted per {format_duration(mc.funding_period)}, interest {fmt(mc.interest_rate)} "
                f"clamp {fmt(mc.funding_clamp)} cap {fmt(mc.funding_cap)} impact notional "
                f"{fmt(mc.impact_notional)}, samples every {format_duration(mc.sample_interval)}"
            )
            parts.append(
                f"{symbol} liquidation fee {fmt(mc.liquidation_fee)} (keeper share {fmt(mc.liquidator_share)}), "
                f"bankrupt band {fmt(mc.bankrupt_band)}, takeover discount {fmt(mc.takeover_discount)}, "
                f"small position {fmt(mc.small_position_notional)}"
            )
        self.say(f"setup: collateral {spec.collateral_decimals} decimals; chain {net.w3.eth.chain_id}")
        for p in parts:
            self.say(f"  market {p}")
        for name, acc in spec.accounts.items():
            actor = net.actor(name)
            if acc.deposit:
                self._deposit(name, acc.deposit)
            self.say(f"  account {name} {actor.address} deposit {fmt(acc.deposit or Decimal(0))}")
        fund = net.deployment.insurance_fund
        cap = from_wad(self._call(fund.functions.payout_cap()))
        if spec.insurance_fund > 0:
            # an ERC-4626 deposit by a liquidity provider of the fund (an actor of the runner's own)
            units = to_units(spec.insurance_fund, spec.collateral_decimals)
            lp = net.actor(INSURANCE_DEPOSITOR)
            self._tx(net.token, "mint", lp.address, units)
            self._tx(net.token, "approve", fund.address, units, sender=lp.address)
            self._tx(fund, "deposit", units, lp.address, sender=lp.address)
        self.say(
            f"  insurance fund {fund.address}: {fmt(spec.insurance_fund)} deposited, payout cap {fmt(cap)} "
            "of its assets per bad-debt event"
        )

    # ------------------------------------------------------------ steps

    def _run_step(self, step: Step) -> StepResult:
        head = f"[{step.index}] line {step.line}" if step.line else f"[{step.index}]"
        sr = StepResult(step.index, step.line, step.kind, self._describe(step))
        self.say(f"{head}  {step.kind:<8} {sr.summary}" + (f"  # {step.note}" if step.note else ""))
        if step.kind == "expect":
            for spec, line in zip(step.spec, step.item_lines or (None,) * len(step.spec), strict=False):
                er = self._check(step, spec, line)
                sr.expectations.append(er)
                self.say("      " + er.describe())
            return sr
        reason: str | None = None
        outcome = ""
        try:
            outcome = getattr(self, f"_step_{step.kind}")(step.spec)
        except Exception as exc:
            if not is_chain_error(exc):
                raise
            from keeper.chain import TxReverted

            if isinstance(exc, TxReverted):
                reason = exc.reason or "(no reason)"
                sr.revert_reason = reason
            else:
                sr.ok, sr.error = False, _describe_error(exc)
        if sr.error is None:
            if step.expect_revert is not None:
                if reason is None:
                    sr.ok, sr.error = (
                        False,
                        f"expected a revert with '{step.expect_revert}', but it succeeded",
                    )
                elif step.expect_revert not in reason:
                    sr.ok, sr.error = False, f"expected a revert with '{step.expect_revert}', got '{reason}'"
                else:
                    outcome = f"reverted as expected: {reason}"
            elif reason is not None:
                sr.ok, sr.error = False, f"reverted: {reason}"
        if sr.ok:
            if outcome:
                self.say(f"      -> {outcome}")
        else:
            self.say(f"      FAIL  {sr.error}")
        return sr

    def _describe(self, step: Step) -> str:
        s = step.spec
        rev = f" (expect revert '{step.expect_revert}')" if step.expect_revert else ""
        if step.kind == "oracle":
            return f"{s.market} index -> {fmt(s.price)}{rev}"
        if step.kind == "order":
            price = f" @ {fmt(s.price)}" if s.price is not None else ""
            flags = " reduce-only" if s.reduce_only else ""
            label = f" [{s.label}]" if s.label else ""
            return f"{s.account} {s.side} {fmt(s.size)} {s.market}{price} {s.type}{flags}{label}{rev}"
        if step.kind == "cancel":
            what = s.label if s.label is not None else f"order #{s.order_id}"
            return f"{s.account} cancels {what}{rev}"
        if step.kind in ("deposit", "withdraw"):
            return f"{s.account} {step.kind}s {fmt(s.amount)}{rev}"
        if step.kind == "advance":
            return f"{format_duration(s)} ({s} s){rev}"
        if step.kind == "keepers":
            return ", ".join(s) + rev
        if step.kind == "liquidate":
            return f"{s.by} liquidates {s.account} in {s.market}{rev}"
        return f"{len(s)} item(s)"

    def _step_oracle(self, s: OracleStep) -> str:
        confirmed = self.net.set_index(s.market, s.price)
        self.index[s.market] = s.price
        # a move beyond the index guard (PROTOCOL.md §4) is confirmed by the owner, visibly
        return "the guard held the move back: the owner reset the reference" if confirmed else ""

    def _step_order(self, s: OrderStep) -> str:
        net = self.net
        actor = net.actor(s.account)
        mkt = net.market(s.market)
        is_buy = s.side == "buy"
        price = to_units(s.price, 18) if s.price is not None else self._market_limit(mkt, is_buy)
        size = to_units(s.size, 18)
        hint = self._call(net.lens.functions.find_hint(mkt.address, is_buy, price))
        receipt = self._tx(
            net.ch,
            "place_order",
            actor.address,
            0,
            mkt.address,
            is_buy,
            size,
            price,
            ORDER_TYPES[s.type],
            s.reduce_only,
            hint,
            sender=actor.address,
        )
        bits = []
        if s.price is None:
            bits.append(f"limit {fmt(from_wad(price))}")
        fills = self._logs(mkt, "Fill", receipt)
        if fills:
            filled = sum(f["size"] for f in fills)
            value = sum(f["size"] * f["price"] for f in fills)
            with localcontext() as ctx:
                ctx.prec = 60
                avg = (Decimal(value) / filled / WAD).quantize(Decimal(1).scaleb(-18))
            bits.append(
                f"filled {fmt(from_wad(filled))} @ {fmt(avg)} ({len(fills)} fill{'s' * (len(fills) > 1)})"
            )
        order_id = 0
        placed = self._logs(mkt, "OrderPlaced", receipt)
        for ev in placed:
            order_id = ev["order_id"]
            bits.append(
                f"rests {fmt(from_wad(ev['size']))} @ {fmt(from_wad(ev['price']))} as order #{order_id}"
            )
        rest = cancelled_rest(
            size, sum(f["size"] for f in fills), sum(e["size"] for e in placed), ORDER_TYPES[s.type]
        )
        if rest:
            bits.append(rest)
        for ev in self._logs(mkt, "OrderRemoved", receipt):
            if ev["reason"] in (3, 4):
                bits.append(f"order #{ev['order_id']}: {REMOVED_REASONS[ev['reason']]}")
        if not fills and not order_id:
            bits.append("nothing filled, nothing rests")
        if s.label is not None:
            self.labels[s.label] = (s.market, order_id)
            if not order_id:
                bits.append(f"label '{s.label}' names no resting order")
        return "; ".join(bits)

    def _market_limit(self, mkt: Any, is_buy: bool) -> int:
        """The limit of a market order: the price band's edge around the index."""
        index = self._call(mkt.functions.index_price())
        band = self._call(self.net.lens.functions.market_params(mkt.address))[9]
        return market_limit(index, band, self._call(mkt.functions.TICK_SIZE()), is_buy)

    def _step_cancel(self, s: CancelStep) -> str:
        net = self.net
        if s.label is not None:
            symbol, order_id = self.labels[s.label]
        else:
            symbol, order_id = s.market or next(iter(self.scenario.spec.markets)), int(s.order_id or 0)
        actor = net.actor(s.account)
        mkt = net.market(symbol)
        self._tx(net.ch, "cancel_order", actor.address, 0, mkt.address, order_id, sender=actor.address)
        return f"cancelled {symbol} order #{order_id}"

    def _step_deposit(self, s: AmountStep) -> str:
        self._deposit(s.account, s.amount)
        return ""

    def _step_withdraw(self, s: AmountStep) -> str:
        actor = self.net.actor(s.account)
        units = to_units(s.amount, self.scenario.spec.collateral_decimals)
        self._tx(self.net.ch, "withdraw", 0, units, sender=actor.address)
        return ""

    def _step_advance(self, seconds: int) -> str:
        """Play the keepers' schedule over `seconds`: stops at most min(sample_interval) apart, on every
        market's next funding time, block timestamps exact; ADVANCE_KEEPERS act at every stop."""
        lane = self.lane
        lane.nonces.clear()  # the ChainClients sent since the last advance
        start = lane.timestamp()
        end = start + seconds
        step = min(md.config.sample_interval for md in self.net.deployment.markets.values())
        self.next_funding = {
            m: st.next_funding_time for m, st in lane.funding_states(self.funding_contracts()).items()
        }
        before = dict(self.funding_counts)
        risk_before = dict(self.risk_counts)
        t, stops = start, 0
        try:
            with lane.manual_mining():
                while t < end:
                    nxt = min(t + step, end, *(n for n in self.next_funding.values() if n > t))
                    self.now, seconds_since, t = nxt, nxt - t, nxt
                    for _name, action in ADVANCE_KEEPERS:
                        action(self, seconds_since)
                    stops += 1
                if lane.timestamp() < end:  # nothing was sent at the last stop: its block must still exist
                    lane.call("evm_mine", end)
        finally:
            self.net.resync_nonces()
        after = lane.timestamp()
        settled = self.funding_counts["settle"] - before["settle"]
        sampled = self.funding_counts["sample"] - before["sample"]
        return (
            f"chain time {start} -> {after} in {stops} stop{'s' * (stops != 1)}; keepers: "
            f"{', '.join(name for name, _a in ADVANCE_KEEPERS)}; funding: {settled} settlement(s), "
            f"{sampled} sample(s); liquidations: {self.risk_counts['liquidation'] - risk_before['liquidation']}, "
            f"ADL: {self.risk_counts['adl'] - risk_before['adl']}"
        )

    def _step_keepers(self, names: tuple[str, ...]) -> str:
        said = []
        for name in names:
            summary = KEEPERS[name](self, 0)
            said.append(summary or f"ran {name}")
        return "; ".join(said)

    def _step_liquidate(self, s: LiquidateStep) -> str:
        """`by` calls LiquidationEngine.liquidate on the account's subaccount 0 in `market`, listing every
        resting order of the account there (max_size: the whole position when not given)."""
        net = self.net
        account = self._call(net.ch.functions.account_of(net.actor(s.account).address, 0))
        mkt = net.market(s.market)
        max_size = to_units(s.max_size, 18) if s.max_size is not None else 2**256 - 1
        order_ids = self._resting_orders(mkt, account)
        by = net.actor(s.by).address
        receipt = self._tx(net.engine, "liquidate", account, mkt.address, max_size, order_ids, sender=by)
        return "; ".join(self._describe_liquidation(receipt)) or "nothing closed"

    def _resting_orders(self, mkt: Any, account: int) -> list[int]:
        """Ids of the account's resting orders in a market (the liquidation keeper's reader)."""
        from keeper.bots.scan import resting_order_ids

        if account == 0:
            return []
        count = self._call(mkt.functions.open_order_stats(account))[0]
        return resting_order_ids(self.net.lens, mkt, account, count)

    def _describe_liquidation(self, receipt: Any) -> list[str]:
        """What a liquidation, takeover or ADL transaction did, from the events in its receipt."""
        bits = []
        for ev in self._logs(self.net.engine, "Liquidation", receipt):
            bits.append(
                f"liquidated account {ev['account']}: closed {fmt(from_wad(ev['closed_size']))} at mark "
                f"{fmt(from_wad(ev['mark']))} (limit {fmt(from_wad(ev['limit_price']))}), fee "
                f"{fmt(from_wad(ev['fee']))} (keeper {fmt(from_wad(ev['liquidator_fee']))}), equity "
                f"{fmt(from_wad(ev['equity_before']))} -> {fmt(from_wad(ev['equity_after']))}, size left "
                f"{fmt(from_wad(ev['size_after']))}" + (" (bankrupt)" if ev["bankrupt"] else "")
            )
        for ev in self._logs(self.net.engine, "Deleveraged", receipt):
            bits.append(
                f"ADL account {ev['account']} against {ev['counterparty']}: {fmt(from_wad(ev['size']))} "
                f"@ {fmt(from_wad(ev['price']))} (score {fmt(from_wad(ev['score']))}, its size left "
                f"{fmt(from_wad(ev['counterparty_size']))})"
            )
        for ev in self._logs(self.net.ch, "BadDebt", receipt):
            bits.append(
                f"bad debt of account {ev['account']}: {fmt(from_wad(ev['deficit']))}, insurance fund paid "
                f"{fmt(from_wad(ev['covered']))}, uncovered {fmt(from_wad(ev['uncovered']))}"
            )
        return bits

    def _deposit(self, name: str, amount: Decimal) -> None:
        net = self.net
        actor = net.actor(name)
        units = to_units(amount, self.scenario.spec.collateral_decimals)
        self._tx(net.token, "mint", actor.address, units)
        self._tx(net.token, "approve", net.ch.address, units, sender=actor.address)
        self._tx(net.ch, "deposit", 0, units, sender=actor.address)

    # ------------------------------------------------------------ chain helpers

    def _tx(self, contract: Any, fn: str, *args: Any, sender: str | None = None) -> Any:
        receipt = self.net.backend.transact(contract, fn, *args, sender=sender)
        if self.verbose:
            self.say(
                f"      tx {fn} gas {receipt['gasUsed']} block {receipt['blockNumber']} "
                f"{receipt['transactionHash'].to_0x_hex()}"
            )
        return receipt

    def _call(self, fn: Any) -> Any:
        """A view call; a revert raises TxReverted with its reason (like a transaction)."""
        from web3.exceptions import ContractLogicError, Web3RPCError

        from keeper.chain import TxReverted, revert_reason

        try:
            return fn.call()
        except (ContractLogicError, Web3RPCError) as exc:
            raise TxReverted(revert_reason(exc)) from exc

    def _logs(self, contract: Any, event: str, receipt: Any) -> list[Any]:
        from web3.logs import DISCARD

        out = []
        for ev in getattr(contract.events, event)().process_receipt(receipt, errors=DISCARD):
            if ev["address"] == contract.address:
                out.append(ev["args"])
        return out


def run_scenario(
    scenario: str | Path | Mapping[str, Any] | Scenario,
    rpc_url: str | None = None,
    *,
    verbose: bool = False,
    out: Callable[[str], None] | None = None,
) -> ScenarioResult:
    """Parse (unless already parsed) and run a scenario on a fresh deployment: on `rpc_url` (a node
    that knows anvil's default dev mnemonic) or on an anvil of its own, always stopped afterwards.
    Raises ScenarioError for a malformed scenario, ScenarioEnvironmentError when no chain is available."""
    sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    return ScenarioRunner(sc, rpc_url, verbose=verbose, out=out).run()
