"""The scenario runner's expectations: each checked against the value read from the chain
(account, market and insurance fund fields, event counts)."""

from __future__ import annotations

from bisect import bisect_left
from decimal import Decimal, localcontext
from typing import Any

from keeper.model import position_change_of_fill
from keeper.rpc import is_chain_error
from keeper.scenario.errors import UnobservableValue, _describe_error
from keeper.scenario.loader import PROTOCOL_CONTRACTS, _contract_events
from keeper.scenario.results import ExpectationResult
from keeper.scenario.schema import (
    PER_MARKET_FIELDS,
    AccountExpect,
    EventExpect,
    Expectation,
    InsuranceExpect,
    MarketExpect,
    Scenario,
    Step,
)
from keeper.units import WAD, from_wad


class ExpectationChecks:
    """Mixed into :class:`keeper.scenario.runner.ScenarioRunner`: its expectation checks, reading
    from its `net` (the local chain) since `start_block`, with its `_call` (a view call)."""

    scenario: Scenario
    net: Any
    start_block: int
    _topics: dict[str, dict[str, list[str]]] | None

    def _check(self, step: Step, e: Expectation, line: int | None) -> ExpectationResult:
        subject = self._subject(e)
        if isinstance(e, EventExpect):
            er = ExpectationResult(step.index, line, subject, e.count, None)
            try:
                er.actual = self._event_count(e.event)
                er.ok = er.actual == e.count
            except Exception as exc:
                if not is_chain_error(exc):
                    raise
                er.error = _describe_error(exc)
            return er
        er = ExpectationResult(step.index, line, subject, e.value, None, e.tol)
        try:
            er.actual = self._actual(e)
            er.ok = abs(er.actual - e.value) <= e.tol
        except UnobservableValue as exc:
            er.error = str(exc)
        except Exception as exc:
            if not is_chain_error(exc):
                raise
            er.error = _describe_error(exc)
        return er

    def _subject(self, e: Expectation) -> str:
        if isinstance(e, AccountExpect):
            market = e.market or (self._single_market() if e.field in PER_MARKET_FIELDS else None)
            return f"{e.account}.{e.field}" + (f"[{market}]" if market else "")
        if isinstance(e, MarketExpect):
            return f"{e.market}.{e.field}"
        if isinstance(e, InsuranceExpect):
            return "insurance_fund.balance"
        return f"events {e.event} (count)"

    def _single_market(self) -> str | None:
        markets = self.scenario.spec.markets
        return next(iter(markets)) if len(markets) == 1 else None

    def _actual(self, e: Expectation) -> Decimal:
        net = self.net
        if isinstance(e, InsuranceExpect):
            # ERC-4626 totalAssets: the fund's booked assets + its whole token units of pending cash
            units = self._call(net.deployment.insurance_fund.functions.totalAssets())
            return Decimal(units).scaleb(-self.scenario.spec.collateral_decimals)
        if isinstance(e, MarketExpect):
            return self._market_field(e.market, e.field)
        assert isinstance(e, AccountExpect)
        account = self._call(net.ch.functions.account_of(net.actor(e.account).address, 0))
        f = e.field
        if f == "cash":
            return from_wad(self._call(net.ch.functions.cash(account)))
        if f in ("equity", "initial_margin", "maintenance_margin", "withdrawable"):
            margin = self._call(net.ch.functions.margin(account))
            pos = ("equity", "initial_margin", "maintenance_margin", "withdrawable").index(f)
            return from_wad(margin[pos])
        symbols = [e.market] if e.market else list(self.scenario.spec.markets)
        if f in ("liquidated_size", "adl_size"):
            return from_wad(sum(self._risk_sizes(account, s)[f] for s in symbols))
        if f in ("realized_pnl", "funding_paid", "fees_paid"):
            key = {"realized_pnl": "realized_pnl", "funding_paid": "funding_paid", "fees_paid": "fee_paid"}[f]
            total = sum(ev[key] for ev in self._position_changes(account, e.market))
            if f == "funding_paid":  # settled so far + owed now (+ = paid)
                for s in symbols:
                    self._check_funding_observable(account, s)
                total += sum(self._call(net.market(s).functions.position(account))[5] for s in symbols)
            return from_wad(total)
        if f == "open_orders":
            return Decimal(self._call(net.market(symbols[0]).functions.open_order_stats(account))[0])
        views = [self._call(net.market(s).functions.position(account)) for s in symbols]
        if f == "position":
            return from_wad(views[0][0])
        if f == "entry_price":
            return from_wad(views[0][2])
        return from_wad(sum(v[4] for v in views))  # unrealized_pnl

    def _market_field(self, symbol: str, f: str) -> Decimal:
        ffns = self.net.deployment.markets[symbol].funding.functions
        if f == "period_funding_rate":
            params = self._call(ffns.params())
            with localcontext() as ctx:
                ctx.prec = 100
                return from_wad(self._call(ffns.last_rate())) * params[1] / params[0]
        funding_views = {
            "last_funding_rate": ffns.last_rate,
            "funding_apr": ffns.funding_apr,
            "predicted_funding_rate": ffns.predicted_rate,
            "last_premium": ffns.last_premium,
        }
        if f in funding_views:
            return from_wad(self._call(funding_views[f]()))
        fns = self.net.market(symbol).functions
        view = {
            "index": fns.index_price,
            "mark": fns.mark_price,
            "open_interest": fns.open_interest,
            "best_bid": fns.best_bid,
            "best_ask": fns.best_ask,
            "last_trade": lambda: self.net.lens.functions.last_trade_price(self.net.market(symbol).address),
            "cumulative_funding": fns.cumulative_funding,
        }[f]
        return from_wad(self._call(view()))

    def _risk_sizes(self, account: int, symbol: str) -> dict[str, int]:
        """Base WAD of the account's position in `symbol` closed by liquidations (Liquidation.closed_size +
        Takeover.size, the account being the one liquidated) and by ADL (Deleveraged.size, the account
        being the bankrupt one or the counterparty), from the liquidation engine's events."""
        if account == 0:
            return {"liquidated_size": 0, "adl_size": 0}
        acc = _topic_word(account)
        mkt = _topic_word(int(self.net.market(symbol).address, 16))
        liquidated = sum(ev["closed_size"] for ev in self._engine_events("Liquidation", acc, mkt))
        liquidated += sum(ev["size"] for ev in self._engine_events("Takeover", acc, mkt))
        adl = sum(ev["size"] for ev in self._engine_events("Deleveraged", acc, None, mkt))
        adl += sum(ev["size"] for ev in self._engine_events("Deleveraged", None, acc, mkt))
        return {"liquidated_size": liquidated, "adl_size": adl}

    def _position_changes(self, account: int, symbol: str | None) -> list[dict[str, Any]]:
        """Every change of the account's positions, in order: its PositionChanged events, and its
        fills as a maker (a maker's Fill carries its new position and emits no PositionChanged;
        `position_change_of_fill`). Each a dict with PositionChanged's fields, `blockNumber` and
        `logIndex`."""
        if account == 0:
            return []
        symbols = [symbol] if symbol else list(self.scenario.spec.markets)
        markets = [self.net.market(s) for s in symbols]
        topics = self._topic_map("PerpMarket")
        changed, fill = markets[0].events.PositionChanged(), markets[0].events.Fill()
        logs = self.net.w3.eth.get_logs(
            {
                "fromBlock": self.start_block,
                "toBlock": "latest",
                "address": [m.address for m in markets],
                "topics": [topics["PositionChanged"] + topics["Fill"], _topic_word(account)],
            }
        )
        out = []
        for log in sorted(logs, key=lambda x: (x["blockNumber"], x["logIndex"])):
            if "0x" + bytes(log["topics"][0]).hex() in topics["Fill"]:
                args = position_change_of_fill(fill.process_log(log)["args"])
            else:
                args = dict(changed.process_log(log)["args"])
            out.append({**args, "blockNumber": log["blockNumber"], "logIndex": log["logIndex"]})
        return out

    def _check_funding_observable(self, account: int, symbol: str) -> None:
        """Raise UnobservableValue when funding was settled into the account's cash without an event.

        Every settlement is told by an event: PositionChanged (a taker's trade, a transfer, and
        PerpMarket.settle_funding reached from Clearinghouse.withdraw and settle_funding) or, for a
        maker's fill, its Fill. This is the safety net that would catch a path that does not,
        since `funding_paid` is summed from events. Detected by replaying the accumulator: after
        each change the account's snapshot is the market's cumulative funding at that point, and
        the next change must settle exactly ceil(size x (cumulative now - then)); today's snapshot
        must still be the last one. The accumulator's history comes from events too
        (:meth:`_funding_moves`), never from an `eth_call` at an old block: a node keeps the
        state of recent blocks only, and a long `advance` leaves the first trades far behind."""
        if account == 0:
            return
        mkt = self.net.market(symbol)
        moves = self._funding_moves(symbol)
        size, cum = 0, 0
        for ev in self._position_changes(account, symbol):
            cum_then = _cumulative_at(moves, (ev["blockNumber"], ev["logIndex"]))
            if size != 0 and ev["funding_paid"] != -((-size * (cum_then - cum)) // WAD):
                break
            size, cum = ev["size"], cum_then
        else:
            if size == 0 or self._call(mkt.functions.funding_snapshot(account)) == cum:
                return
        raise UnobservableValue(
            f"funding was settled into cash without an event in {symbol}: "
            "funding_paid cannot be summed from PositionChanged and Fill events"
        )

    def _funding_moves(self, symbol: str) -> list[tuple[tuple[int, int], int]]:
        """Every move of the market's funding accumulator, in order: ((block, log index), cumulative
        funding after it), from its FundingRate's FundingSettled events (the only caller of
        PerpMarket.add_cumulative_funding; the accumulator starts at 0). Checked against the
        market's `cumulative_funding` now: a move without an event raises UnobservableValue."""
        funding = self.net.deployment.markets[symbol].funding
        logs = self.net.w3.eth.get_logs(
            {
                "fromBlock": self.start_block,
                "toBlock": "latest",
                "address": funding.address,
                "topics": [self._topic_map("FundingRate")["FundingSettled"]],
            }
        )
        settled = funding.events.FundingSettled()
        moves = sorted(
            ((log["blockNumber"], log["logIndex"]), settled.process_log(log)["args"]["cumulative_funding"])
            for log in logs
        )
        now = self._call(self.net.market(symbol).functions.cumulative_funding())
        if (moves[-1][1] if moves else 0) != now:
            raise UnobservableValue(
                f"the funding accumulator of {symbol} moved without a FundingSettled event: "
                "funding_paid cannot be replayed from events"
            )
        return moves

    def _topic_map(self, contract: str) -> dict[str, list[str]]:
        """Event name -> topic0s, of one protocol contract."""
        if self._topics is None:
            from eth_utils import event_abi_to_log_topic

            self._topics = {
                c: {
                    name: sorted({"0x" + event_abi_to_log_topic(a).hex() for a in entries})
                    for name, entries in _contract_events(c).items()
                }
                for c in PROTOCOL_CONTRACTS
            }
        return self._topics[contract]

    def _protocol_addresses(self) -> dict[str, list[str]]:
        """Contract kind -> the deployment's addresses of that kind."""
        d = self.net.deployment
        mds = list(d.markets.values())
        return {
            "Clearinghouse": [d.clearinghouse.address],
            "LiquidationEngine": [d.liquidation_engine.address],
            "PerpMarket": [md.market.address for md in mds],
            "IndexOracle": [md.oracle.address for md in mds],
            "FundingRate": [md.funding.address for md in mds],
            "InsuranceFund": [d.insurance_fund.address],
        }

    def _event_count(self, name: str) -> int:
        """Logs named `name` emitted by any protocol contract (clearinghouse, liquidation engine, markets,
        oracles, funding rates, insurance fund) since deployment; each contract's logs matched against
        its own ABI."""
        total = 0
        for contract, addresses in self._protocol_addresses().items():
            topics = self._topic_map(contract).get(name)
            if not topics:
                continue
            logs = self.net.w3.eth.get_logs(
                {"fromBlock": self.start_block, "toBlock": "latest", "address": addresses, "topics": [topics]}
            )
            total += len(logs)
        return total

    def _engine_events(self, name: str, *topics: str | None) -> list[Any]:
        """Decoded args of the liquidation engine's `name` events since deployment, filtered by
        indexed topics."""
        engine = self.net.engine
        logs = self.net.w3.eth.get_logs(
            {
                "fromBlock": self.start_block,
                "toBlock": "latest",
                "address": engine.address,
                "topics": [self._topic_map("LiquidationEngine")[name], *topics],
            }
        )
        event = getattr(engine.events, name)()
        return [event.process_log(log)["args"] for log in logs]


def _cumulative_at(moves: list[tuple[tuple[int, int], int]], at: tuple[int, int]) -> int:
    """The accumulator just before the log at `at` (block, log index): the last move logged before it."""
    i = bisect_left(moves, (at,))
    return moves[i - 1][1] if i else 0


def _topic_word(x: int) -> str:
    """An indexed uint256/address as a log topic."""
    return "0x" + x.to_bytes(32, "big").hex()
