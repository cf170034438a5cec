"""The simulation behind ``make demo``: a local perp exchange under stress.

A fresh anvil (or a given dev node), the protocol deployed by the one deployer (3 markets), an
insurance fund with deposits, the four protocol keepers as real processes (``keeper run
oracle|funding|liquidation|adl``, :mod:`keeper.sim.keepers`), a market maker doing the basis
trade (:mod:`keeper.sim.maker`) and a crowd of levered traders (:mod:`keeper.sim.crowd`),
played over a seeded price path (:mod:`keeper.sim.path`): a calm period with funding, a crash
modelled on 10 October 2025, a partial recovery.

**Simulated time.** The simulation mines every block itself (automine off) at exact
timestamps, so hours of funding take minutes. A step of the path:

1. an empty block at the step's time `t`; the oracle keeper (replaying the path's CSV, one row
   per round) is let go and reports every source, each report mined as it is sent (automine
   on for this phase: the reporter estimates gas against pending state, one report at a time);
2. the market maker re-quotes around the new index and the crowd trades: one batch, one
   block at `t + 1`, in the batch's order;
3. the funding, liquidation and ADL keepers are let go on that block; whatever they send is
   mined in the next block (`t + 2`, ...), after which they are let go again, until none of
   them has anything left to send;
4. the maker re-balances its off-chain hedge; the step's state is recorded.

**Reproducible.** The keepers talk to the node through :class:`~keeper.sim.gate.RpcGate`,
which holds each keeper at the start of its round until the simulation has mined, and tells
when each has finished reacting to a block: every block's content depends only on the chain
state, the seed and the path, never on timing (the same seed gives the same report numbers).

**Measured from the chain**: every block's `Clearinghouse.health` (when each account became
liquidatable), the events (liquidations, bad debt, insurance covers, ADL, funding), each
step's market state, and at the end the solvency identity (:mod:`keeper.sim.ledger`).
:func:`keeper.report.write_report` turns the :class:`SimData` into ``report.md`` and plots.
"""

from __future__ import annotations

import http.client
import json
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple, TextIO

from eth_abi import decode as abi_decode
from eth_account import Account
from web3 import Web3

from keeper.anvil import Anvil, dev_private_keys
from keeper.bots.liquidation import CallFailed, batch_call, resting_order_ids
from keeper.chain import TxError, trace_revert_reason
from keeper.deploy import DeployConfig, MarketConfig
from keeper.localnet import LocalNet, start_localnet
from keeper.model import position_change_of_fill
from keeper.sim.crowd import Crowd, Trader, TraderState, make_crowd
from keeper.sim.gate import RpcGate
from keeper.sim.keepers import BOTS, KeeperProcesses, keeper_config, round_markers, write_config
from keeper.sim.lane import LaneError, SimLane, Tx
from keeper.sim.ledger import check_solvency
from keeper.sim.maker import MakerBook, MarketMaker
from keeper.sim.market import WAD, CancelAll, Intent, MarketSpec, MarketView, Order
from keeper.sim.path import MarketPath, Schedule, Step, phase_bounds, price_path, write_csv

KEYS = 20  # dev keys: deployer, insurance, 9 oracle reporters, the funding, liquidation and ADL keepers
GAS_LIMIT = 1_000_000_000  # a block holds a whole step of the crowd
GENESIS = 1_760_101_140  # 2025-10-10 12:59 UTC: chain time of the deployment on an anvil of our own
BLOCK_BOTS = ("funding", "liquidation", "adl")  # let go after every block the simulation mines
HEALTH_PAGE = 500  # Clearinghouse.health page
PARK_GRACE_S = 2.0  # how long a settled keeper with nothing pending gets to park before a block is mined
MAX_UINT = 2**256 - 1
BOOK_DEPTH = 10  # levels per side read with Lens.market_summary
DEPTH_BAND = 0.02  # depth counted within +-2% of the index


class SimError(RuntimeError):
    """The simulation cannot go on (no suitable node, a keeper stalled, a setup transaction failed)."""


# ---------------------------------------------------------------- configuration


class SimMarket(NamedTuple):
    """One market: as deployed, how its price moves, how the maker quotes it."""

    config: MarketConfig
    path: MarketPath
    book: MakerBook


@dataclass(frozen=True)
class SimConfig:
    seed: int
    traders: int
    schedule: Schedule
    markets: tuple[SimMarket, ...]
    insurance_fund_usd: float = 250_000.0
    maker_deposit_usd: float = 20_000_000.0
    venue_noise: float = 0.0003  # oracle sources around the fair price
    max_blocks_per_step: int = 40  # keeper blocks per step at most (a stuck keeper cannot hang a step)
    settle_timeout_s: float = 60.0  # wall seconds a keeper may take to react to a block
    quick: bool = False

    @property
    def symbols(self) -> list[str]:
        return [m.config.symbol for m in self.markets]


def _market(
    symbol: str, price: str, tick: str, lot: str, imr: str, mmr: str, vol: float, beta: float, drift: float,
    level_usd: float, inventory_usd: float,
) -> SimMarket:  # fmt: skip
    config = MarketConfig(
        symbol,
        Decimal(price),
        tick_size=Decimal(tick),
        lot_size=Decimal(lot),
        initial_margin=Decimal(imr),  # 1% on BTC: up to 100x, as the crowd wants
        maintenance_margin=Decimal(mmr),
        bankrupt_band=Decimal("0.02"),  # a bankrupt account closes within mark -+ 2%
    )
    return SimMarket(
        config, MarketPath(symbol, float(price), vol, beta, drift), MakerBook(level_usd, inventory_usd)
    )


def default_config(seed: int = 7, quick: bool = False) -> SimConfig:
    """The demo: BTC, ETH and SOL perps at about their prices of 10 October 2025, 200 traders,
    8 hours of calm in 10-minute steps, the 40-minute crash minute by minute, an hour of
    recovery. `quick` (tests): 60 traders, 90 minutes of calm in 15-minute steps, the crash in
    4-minute steps, 20 minutes of recovery."""
    markets = (
        _market("BTC-PERP", "120000", "1", "0.0001", "0.01", "0.005", 0.45, 1.0, 0.012, 1_000_000, 8_000_000),
        _market("ETH-PERP", "4300", "0.01", "0.001", "0.02", "0.01", 0.60, 1.4, 0.015, 400_000, 3_000_000),
        _market("SOL-PERP", "220", "0.001", "0.01", "0.04", "0.02", 0.80, 2.0, 0.02, 150_000, 1_200_000),
    )
    if quick:
        return SimConfig(seed, 60, Schedule(90 * 60, 900, 2400, 240, 1200, 600), markets, quick=True)
    return SimConfig(seed, 200, Schedule(8 * 3600, 600, 2400, 60, 3600, 600), markets)


# ---------------------------------------------------------------- collected data


@dataclass
class SimData:
    """Everything the report needs, JSON-serializable (``data.json``)."""

    config: dict[str, Any]
    symbols: list[str]
    phases: dict[str, tuple[int, int]]  # phase -> (start, end) s from the start
    crash_start: int  # s from the start
    steps: list[dict[str, Any]] = field(default_factory=list)
    events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    labels: dict[int, str] = field(default_factory=dict)  # account id -> who
    roles: dict[int, str] = field(default_factory=dict)  # account id -> maker, trader, whale, insurance, ...
    traders: list[dict[str, Any]] = field(default_factory=list)
    liquidatable: dict[int, list[tuple[int, bool]]] = field(default_factory=dict)  # account -> transitions
    block_times: dict[int, int] = field(default_factory=dict)  # block -> s from the start
    solvency: dict[str, Any] = field(default_factory=dict)
    keepers: dict[str, Any] = field(default_factory=dict)
    maker: dict[str, Any] = field(default_factory=dict)
    run: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, default=str)


# ---------------------------------------------------------------- progress


class Progress:
    """A progress bar on stderr: redrawn in place on a terminal, a line per 10% otherwise."""

    def __init__(self, total: int, stream: TextIO | None = None, enabled: bool = True) -> None:
        self.total = max(total, 1)
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = self.stream.isatty()
        self.started = time.monotonic()
        self._last_decile = -1

    def update(self, done: int, detail: str = "") -> None:
        if not self.enabled:
            return
        frac = done / self.total
        bar = "#" * int(30 * frac) + "." * (30 - int(30 * frac))
        line = f"[{bar}] {100 * frac:5.1f}% {done}/{self.total} {detail} ({time.monotonic() - self.started:.0f} s)"
        if self.tty:
            self.stream.write("\r" + line[:150].ljust(150))
            if done >= self.total:
                self.stream.write("\n")
        elif int(10 * frac) != self._last_decile:
            self._last_decile = int(10 * frac)
            self.stream.write(line + "\n")
        self.stream.flush()


# ---------------------------------------------------------------- the simulation


def _address(name: str) -> str:
    """A participant's address: no key, the node signs (impersonation)."""
    return Web3.to_checksum_address(Web3.keccak(text=f"vyperp-sim:{name}")[-20:])


@dataclass
class _Episode:
    """An account's liquidatable state, as observed block by block."""

    liquidatable: bool = False
    transitions: list[tuple[int, bool]] = field(default_factory=list)


class Simulation:
    """One run (see the module docstring): ``Simulation(config, out_dir).run()`` -> SimData."""

    def __init__(
        self,
        config: SimConfig,
        out: Path,
        *,
        rpc_url: str | None = None,
        progress: bool = True,
        say: Callable[[str], None] = print,
    ) -> None:
        self.config = config
        self.out = Path(out)
        self.rpc_url = rpc_url
        self.show_progress = progress
        self.say = say
        self.path = price_path([m.path for m in config.markets], config.schedule, config.seed)
        bounds = phase_bounds(self.path)
        self.data = SimData(
            config=self._config_dict(),
            symbols=config.symbols,
            phases=dict(bounds),
            crash_start=bounds.get("crash", (0, 0))[0],
        )
        self.anvil: Anvil | None = None
        self.lane: SimLane | None = None
        self.net: LocalNet | None = None
        self.gate: RpcGate | None = None
        self.keepers: KeeperProcesses | None = None
        self.specs: dict[str, MarketSpec] = {}
        self.maker: MarketMaker | None = None
        self.crowd: Crowd | None = None
        self.accounts: dict[str, int] = {}  # owner -> account id
        self.t_setup = 0  # chain time of the setup block
        self.t_base = 0  # chain time of the path's t = 0
        self.keeper_addresses: dict[str, str] = {}
        self.first_block = 0
        self.observed_block = 0
        self._episodes: dict[int, _Episode] = {}
        self._automine_restore: bool | None = None
        self.counters = dict.fromkeys(
            ("crowd_txs", "crowd_reverted", "maker_txs", "maker_reverted", "keeper_blocks", "capped_steps"), 0
        )

    # ------------------------------------------------------------ run

    def run(self) -> SimData:
        started = time.monotonic()
        self.out.mkdir(parents=True, exist_ok=True)
        try:
            self._start_chain()
            self._setup()
            self._start_keepers()
            progress = Progress(len(self.path), enabled=self.show_progress)
            for step in self.path:
                self._step(step)
                progress.update(step.index + 1, self._progress_detail(step))
            final_block = self.lane.block_number()  # type: ignore[union-attr]
            self._stop_keepers()
            self._finish(final_block)
        finally:
            self._teardown()
        self.data.run["wall_s"] = round(time.monotonic() - started, 1)
        (self.out / "data.json").write_text(self.data.to_json())
        return self.data

    def _progress_detail(self, step: Step) -> str:
        ever = sum(1 for e in self._episodes.values() if e.transitions)
        minutes = (step.t - self.data.crash_start) / 60
        return f"{step.phase:<8} t={minutes:+5.0f} min from the crash, accounts liquidatable so far {ever}"

    # ------------------------------------------------------------ chain

    def _start_chain(self) -> None:
        url = self.rpc_url
        if url is None:
            self.anvil = Anvil(
                accounts=KEYS,
                extra_args=(
                    "--gas-limit",
                    str(GAS_LIMIT),
                    "--block-base-fee-per-gas",
                    "0",
                    "--timestamp",
                    str(GENESIS),
                ),
            ).start()
            url = self.anvil.url
        lane = self.lane = SimLane(url)
        try:
            answer = lane.batch([("anvil_getAutomine", [])], check=False)[0]
            self._automine_restore = answer if isinstance(answer, bool) else True
            lane.call("anvil_setBlockTimestampInterval", 0)  # chain time moves only when we say so
            lane.call("anvil_autoImpersonateAccount", True)  # participants have no keys
            lane.call("evm_setBlockGasLimit", hex(GAS_LIMIT))
            lane.call("anvil_setNextBlockBaseFeePerGas", "0x0")
            lane.call("evm_setAutomine", True)
        except (TxError, OSError) as exc:
            raise SimError(
                f"the node at {url} is not an anvil dev node (anvil_* and evm_* methods): {exc}"
            ) from exc
        lane.set_balances([Account.from_key(k).address for k in dev_private_keys(KEYS)], 10**24)
        self.net = start_localnet(
            DeployConfig(markets=tuple(m.config for m in self.config.markets)),
            rpc_url=url,
            accounts=KEYS,
            manifest_path=self.out / "manifest.json",
        )
        self.data.config["market_addresses"] = {
            s: md.market.address for s, md in self.net.deployment.markets.items()
        }
        self.first_block = lane.block_number() + 1
        self.observed_block = self.first_block - 1

    def _setup(self) -> None:
        """Collateral for the maker and every trader, the insurance fund's deposit: one block."""
        net, lane, cfg = self.net, self.lane, self.config
        assert net is not None and lane is not None
        ch, token, fund = net.ch, net.token, net.deployment.insurance_fund
        for symbol, md in net.deployment.markets.items():
            p = md.market.functions.params().call()
            self.specs[symbol] = MarketSpec(
                symbol, md.market.address, int(md.market.functions.TICK_SIZE().call()),
                int(md.market.functions.LOT_SIZE().call()), int(p[0]), int(p[1]), int(p[5]),
            )  # fmt: skip
        maker = _address("maker")
        insurer = _address("insurance-lp")
        crowd_owners = [_address(f"trader-{i}") for i in range(cfg.traders + len(cfg.markets))]
        calm_steps = sum(1 for s in self.path if s.phase == "calm")
        traders = make_crowd(cfg.traders, crowd_owners, self.specs, calm_steps, cfg.seed)
        self.maker = MarketMaker(maker, {m.config.symbol: m.book for m in cfg.markets})
        self.crowd = Crowd(traders, self.specs, cfg.seed)
        lane.set_balances([maker, insurer, *crowd_owners], 10**21)
        funder = net.backend.deployer  # the mock token's minter
        units = net.units
        deposits = {maker: units(cfg.maker_deposit_usd)} | {t.owner: units(t.deposit) for t in traders}
        fund_units = units(cfg.insurance_fund_usd)
        txs = [
            Tx(funder, token.address, _data(token, "mint", funder, sum(deposits.values())), tag="setup"),
            Tx(funder, token.address, _data(token, "approve", ch.address, MAX_UINT), tag="setup"),
            Tx(funder, token.address, _data(token, "mint", insurer, fund_units), tag="setup"),
            Tx(insurer, token.address, _data(token, "approve", fund.address, MAX_UINT), tag="setup"),
            Tx(insurer, fund.address, _data(fund, "deposit", fund_units, insurer), tag="setup"),
        ]
        txs += [
            Tx(funder, ch.address, _data(ch, "deposit", 0, amount, owner), tag="setup")
            for owner, amount in deposits.items()
        ]
        lane.set_automine(False)
        self.t_setup = lane.timestamp()
        try:
            lane.send_and_mine(txs, at=self.t_setup)
        except LaneError as exc:
            raise SimError(f"setup failed: {exc}") from exc
        owners = list(deposits)
        ids = _checked(batch_call(net.w3, [ch.functions.account_of(o, 0) for o in owners]), "account ids")
        self.accounts = {o: int(i) for o, i in zip(owners, ids, strict=True)}
        self.t_base = self.t_setup + 60
        self._label_accounts(traders)

    def _label_accounts(self, traders: Sequence[Trader]) -> None:
        net = self.net
        assert net is not None and self.maker is not None
        d = self.data
        d.labels[self.accounts[self.maker.owner]] = "market maker"
        d.roles[self.accounts[self.maker.owner]] = "maker"
        ins, treasury = batch_call(
            net.w3, [net.ch.functions.insurance_account(), net.ch.functions.treasury_account()]
        )
        d.labels[int(ins)], d.roles[int(ins)] = "insurance fund", "insurance"
        d.labels[int(treasury)], d.roles[int(treasury)] = "treasury", "treasury"
        for t in traders:
            a = self.accounts[t.owner]
            d.labels[a] = t.label
            d.roles[a] = "whale" if t.style == "whale" else "trader"
            d.traders.append({"account": a, **asdict(t)})

    # ------------------------------------------------------------ keepers

    def _start_keepers(self) -> None:
        net, lane = self.net, self.lane
        assert net is not None and lane is not None
        csv_path = write_csv([*self.path, self.path[-1]], self.out / "price_path.csv")  # + one row to park on
        keys = {
            "oracle": net.keys[2 : net.next_key],
            "funding": net.actor("funding keeper").key,
            "liquidation": net.actor("liquidation keeper").key,
            "adl": net.actor("adl keeper").key,
        }
        config = write_config(
            self.out / "keepers.yaml",
            keeper_config(
                self.out / "manifest.json",
                keys,
                csv_path,
                seed=self.config.seed,
                venue_noise=self.config.venue_noise,
            ),
        )
        self.keeper_addresses = {b: net.actor(f"{b} keeper").address for b in BLOCK_BOTS}
        self.gate = RpcGate(lane.url, round_markers(net.ch.address)).start()
        self.keepers = KeeperProcesses(config, self.out / "logs").start({b: self.gate.url(b) for b in BOTS})
        self.say(
            f"keepers: {', '.join(f'keeper run {b} (pid {p.pid})' for b, p in self.keepers.procs.items())}"
        )
        if not self.gate.wait_settled(
            BOTS, self.config.settle_timeout_s, self.keepers.check_alive, parked_only=True
        ):
            raise SimError(f"the keepers did not start within {self.config.settle_timeout_s:.0f} s")

    def _stop_keepers(self) -> None:
        """Let every keeper go (a plain proxy, blocks mined as sent) and stop them gracefully
        (SIGTERM, SIGKILL after 10 s). Each part is tried even if one before it failed (the node
        may be gone: a Ctrl-C in the terminal reaches anvil too)."""
        _attempt(lambda: self.gate.open() if self.gate is not None else None)
        if self.lane is not None:
            self.lane.close()  # a request cut short by Ctrl-C leaves the keep-alive connection unusable
            _attempt(lambda: self.lane.set_automine(True))
        if self.keepers is not None:
            self.keepers.stop()

    def _teardown(self) -> None:
        """Stop everything this run started, whatever happened (a second Ctrl-C is ignored meanwhile)."""
        restore = None
        if threading.current_thread() is threading.main_thread():
            restore = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            if self.keepers is not None and any(p.poll() is None for p in self.keepers.procs.values()):
                self._stop_keepers()
            if self.gate is not None:
                _attempt(self.gate.stop)
            if self.lane is not None:
                if self.anvil is None and self._automine_restore is not None:  # a node we do not own
                    _attempt(lambda: self.lane.call("evm_setAutomine", self._automine_restore))
                    _attempt(lambda: self.lane.call("anvil_removeBlockTimestampInterval"))
                self.lane.close()
            if self.anvil is not None:
                self.anvil.stop()
        finally:
            if restore is not None:
                signal.signal(signal.SIGINT, restore)

    # ------------------------------------------------------------ one step

    def _step(self, step: Step) -> None:
        lane, gate, keepers = self.lane, self.gate, self.keepers
        assert lane is not None and gate is not None and keepers is not None
        laps: dict[str, float] = {}
        wall = lap = time.monotonic()
        t = self.t_base + step.t
        # 1. the oracle keeper reports this step's prices (reports mined as sent)
        lane.mine(t)
        gate.new_block()
        lane.set_automine(True)
        try:
            gate.release(["oracle"])
            if not gate.wait_settled(
                ["oracle"], self.config.settle_timeout_s, keepers.check_alive, parked_only=True
            ):
                raise SimError(f"step {step.index}: the oracle keeper did not report within the timeout")
        finally:
            lane.set_automine(False)
        laps["oracle"], lap = time.monotonic() - lap, time.monotonic()
        # 2. the maker and the crowd
        views = self._views(step)
        intents = self._intents(step, views)
        quoted = _quoted_depth(intents, self.maker.owner if self.maker else "", views)
        txs = [self._tx(i) for i in intents]
        hashes = lane.send(txs)
        block = lane.mine(t + 1)
        gate.new_block()
        for tx, receipt in zip(txs, lane.receipts(hashes, [block]), strict=True):
            self.counters[f"{tx.tag}_txs"] += 1
            self.counters[f"{tx.tag}_reverted"] += int(receipt["status"], 16) != 1
        laps["participants"], lap = time.monotonic() - lap, time.monotonic()
        # 3. the keepers react, block after block, until none has anything to send
        offset, blocks, capped = 2, 0, False
        while True:
            gate.release(BLOCK_BOTS)
            if not gate.wait_settled(BLOCK_BOTS, self.config.settle_timeout_s, keepers.check_alive):
                raise SimError(f"step {step.index}: a keeper did not settle within the timeout")
            # done when nothing is pending and every keeper parked. A settled keeper may still be
            # between its last receipt and parking (a loaded CPU makes that visible): it gets
            # PARK_GRACE_S to park, so no block nobody needs is mined (an empty block would make
            # the run's block numbers depend on timing)
            if lane.pending() == 0 and gate.wait_settled(BLOCK_BOTS, PARK_GRACE_S, parked_only=True):
                if lane.pending() == 0:
                    break
            if blocks >= self.config.max_blocks_per_step:
                capped = True
                break
            lane.mine(t + offset)
            gate.new_block()
            offset, blocks = offset + 1, blocks + 1
        self.counters["keeper_blocks"] += blocks
        self.counters["capped_steps"] += capped
        laps["keepers"], lap = time.monotonic() - lap, time.monotonic()
        self._observe()
        laps["observe"], lap = time.monotonic() - lap, time.monotonic()
        # 4. the hedge and the record
        self._record(step, t, blocks, time.monotonic() - wall, quoted)
        laps["record"] = time.monotonic() - lap
        self.data.steps[-1]["laps"] = {k: round(v, 3) for k, v in laps.items()}

    def _views(self, step: Step) -> dict[str, MarketView]:
        net = self.net
        assert net is not None
        fns = [
            net.lens.functions.market_summary(net.deployment.markets[s].market.address, 0)
            for s in self.config.symbols
        ]
        out = {}
        for symbol, summary in zip(
            self.config.symbols, _checked(batch_call(net.w3, fns), "market_summary"), strict=True
        ):
            out[symbol] = MarketView(
                symbol,
                int(summary[0]),
                int(summary[2]),
                int(summary[3]),
                int(summary[4]),
                step.prices[symbol],
            )
        return out

    def _intents(self, step: Step, views: dict[str, MarketView]) -> list[Intent]:
        net, maker, crowd = self.net, self.maker, self.crowd
        assert net is not None and maker is not None and crowd is not None
        w3 = net.w3
        maker_id = self.accounts[maker.owner]
        symbols = self.config.symbols
        markets = {s: net.deployment.markets[s].market for s in symbols}
        fns = [markets[s].functions.position(maker_id) for s in symbols]
        fns += [markets[t.symbol].functions.position(self.accounts[t.owner]) for t in crowd.traders]
        results = _checked(batch_call(w3, fns), "positions")
        maker_pos = {s: results[i] for i, s in enumerate(symbols)}
        rows = self._health(self.lane.block_number())  # type: ignore[union-attr]
        states = {}
        for t, pos in zip(crowd.traders, results[len(symbols) :], strict=True):
            equity, im, _mm = rows.get(self.accounts[t.owner], (0, 0, 0))
            states[t.owner] = TraderState(equity, im, int(pos[0]))
        resting = {
            s: resting_order_ids(net.lens, markets[s], maker_id, int(maker_pos[s][6]))
            if int(maker_pos[s][6])
            else []
            for s in symbols
        }
        crash = self.data.phases.get("crash", (0, 1))
        progress = (
            0.0 if step.t < crash[0] else (step.t - crash[0] + step.length) / max(crash[1] - crash[0], 1)
        )
        return maker.quote(
            self.t_base + step.t, self.specs, views, {s: int(maker_pos[s][0]) for s in symbols}, resting
        ) + crowd.orders(step, progress, views, states)

    def _tx(self, intent: Intent) -> Tx:
        net, maker = self.net, self.maker
        assert net is not None and maker is not None
        ch = net.ch
        market = self.specs[intent.symbol].address
        tag = "maker" if intent.owner == maker.owner else "crowd"
        if isinstance(intent, CancelAll):
            return Tx(
                intent.owner,
                ch.address,
                _data(ch, "cancel_all", intent.owner, 0, market, list(intent.order_ids)),
                tag=tag,
            )
        assert isinstance(intent, Order)
        data = _data(
            ch, "place_order", intent.owner, 0, market, intent.is_buy, intent.size, intent.price, intent.kind,
            intent.reduce_only, 0,
        )  # fmt: skip
        return Tx(intent.owner, ch.address, data, tag=tag)

    # ------------------------------------------------------------ observation

    def _health(self, block: int) -> dict[int, tuple[int, int, int]]:
        """Account -> (equity, IM, MM) at `block`, every page of Clearinghouse.health."""
        net = self.net
        assert net is not None
        n = int(net.ch.functions.account_count().call(block_identifier=block))
        fns = [net.ch.functions.health(s, min(HEALTH_PAGE, n + 1 - s)) for s in range(1, n + 1, HEALTH_PAGE)]
        out = {}
        for page in _checked(batch_call(net.w3, fns, block), "health"):
            for r in page:
                out[int(r[0])] = (int(r[1]), int(r[2]), int(r[3]))
        return out

    def _observe(self) -> None:
        """Every block since the last observation: which accounts are liquidatable (equity < MM)."""
        net, lane = self.net, self.lane
        assert net is not None and lane is not None
        latest = lane.block_number()
        blocks = list(range(self.observed_block + 1, latest + 1))
        if not blocks:
            return
        ch = net.ch
        n = int(ch.functions.account_count().call(block_identifier=latest))
        calls = []
        for b in blocks:
            for s in range(1, n + 1, HEALTH_PAGE):
                data = ch.encode_abi("health", [s, min(HEALTH_PAGE, n + 1 - s)])
                calls.append((b, ("eth_call", [{"to": ch.address, "data": data}, hex(b)])))
        answers = lane.batch([c for _b, c in calls], check=False)
        for (b, _c), answer in zip(calls, answers, strict=True):
            if isinstance(answer, dict):  # a step's first block: every index stale until the reports
                continue
            (rows,) = abi_decode(["(uint256,int256,uint256,uint256,bool)[]"], bytes.fromhex(answer[2:]))
            for account, equity, _im, mm, _liq in rows:
                ep = self._episodes.setdefault(int(account), _Episode())
                now = int(equity) < int(mm)
                if now != ep.liquidatable:
                    ep.liquidatable = now
                    ep.transitions.append((b, now))
        self.observed_block = latest

    def _record(
        self, step: Step, t: int, keeper_blocks: int, wall_s: float, quoted: dict[str, tuple[float, float]]
    ) -> None:
        net, maker = self.net, self.maker
        assert net is not None and maker is not None
        d = net.deployment
        symbols = self.config.symbols
        maker_id = self.accounts[maker.owner]
        fns: list[Any] = []
        for s in symbols:
            md = d.markets[s]
            fns += [
                net.lens.functions.market_summary(md.market.address, BOOK_DEPTH),
                md.funding.functions.predicted_rate(),
                md.funding.functions.last_rate(),
                md.market.functions.position(maker_id),
            ]
        fns += [
            d.insurance_fund.functions.totalAssets(),
            net.ch.functions.bad_debt(),
            net.ch.functions.margin(maker_id),
        ]
        r = _checked(batch_call(net.w3, fns), "the step's state")
        markets = {}
        for k, s in enumerate(symbols):
            summary, predicted, last, pos = r[4 * k : 4 * k + 4]
            index = int(summary[0])
            hedge = maker.rehedge(s, int(pos[0]), step.prices[s])
            h = maker.hedges[s]
            markets[s] = {
                "fair": step.prices[s],
                "index": index / WAD,
                "mark": int(summary[2]) / WAD,
                "best_bid": int(summary[3]) / WAD,
                "best_ask": int(summary[4]) / WAD,
                "open_interest": int(summary[6]) / WAD,
                "depth_bid_usd": _depth(summary[7], index, below=True),
                "depth_ask_usd": _depth(summary[8], index, below=False),
                "quoted_bid_usd": quoted.get(s, (0.0, 0.0))[0],
                "quoted_ask_usd": quoted.get(s, (0.0, 0.0))[1],
                "predicted_rate": int(predicted) / WAD,
                "last_rate": int(last) / WAD,
                "maker_mode": maker.modes.get(s, "normal"),
                "maker_size": int(pos[0]) / WAD,
                "maker_funding_owed": int(pos[5]) / WAD,
                "hedge_qty": h.qty,
                "hedge_value": h.value(step.prices[s]),
                "hedge_traded": hedge,
            }
        n = len(symbols) * 4
        self.data.steps.append(
            {
                "index": step.index,
                "phase": step.phase,
                "t": step.t,
                "block": self.observed_block,
                "insurance_assets": int(r[n]) / 10**d.config.collateral_decimals,
                "bad_debt": int(r[n + 1]) / WAD,
                "maker_equity": int(r[n + 2][0]) / WAD,
                "keeper_blocks": keeper_blocks,
                "wall_s": round(wall_s, 3),
                "markets": markets,
            }
        )

    # ------------------------------------------------------------ the end

    def _finish(self, final_block: int) -> None:
        """Events, block times, the solvency check and the keepers' summary, at `final_block`."""
        net, lane, gate, keepers, maker = self.net, self.lane, self.gate, self.keepers, self.maker
        assert net is not None and lane is not None and gate is not None and keepers is not None
        assert maker is not None
        d, data = net.deployment, self.data
        lo, hi = self.first_block, final_block
        ch, engine = net.ch, net.engine
        # BadDebt is the clearinghouse's event, the rest the liquidation engine's
        events = {
            name: _logs(getattr((ch if name == "BadDebt" else engine).events, name)(), lo, hi)
            for name in ("Liquidation", "BadDebt", "AutoDeleverage", "Deleveraged", "Takeover")
        }
        events["Covered"] = _logs(d.insurance_fund.events.Covered(), lo, hi)
        events["FundingSettled"] = []
        for s, md in d.markets.items():
            events["FundingSettled"] += [
                {**e, "symbol": s} for e in _logs(md.funding.events.FundingSettled(), lo, hi)
            ]
        maker_id = self.accounts[maker.owner]
        events["MakerPositionChanged"] = []
        for s, md in d.markets.items():
            # its own trades (PositionChanged) and its fills as a maker (Fill carries its new position)
            logs = _logs(md.market.events.PositionChanged(), lo, hi, {"account": maker_id})
            logs += [
                {**e, **position_change_of_fill(e)}
                for e in _logs(md.market.events.Fill(), lo, hi, {"maker": maker_id})
            ]
            logs.sort(key=lambda r: (r["block"], r["log_index"]))
            events["MakerPositionChanged"] += [{**e, "symbol": s} for e in logs]
        data.events = events
        for account, ep in self._episodes.items():
            if ep.transitions:
                data.liquidatable[account] = ep.transitions
        blocks = sorted({lo - 1, *range(lo, hi + 1)})
        headers = lane.batch([("eth_getBlockByNumber", [hex(b), False]) for b in blocks])
        data.block_times = {
            b: int(h["timestamp"], 16) - self.t_base for b, h in zip(blocks, headers, strict=True)
        }
        # keepers' own fee accounts (their share of liquidation fees)
        owners = {b: a for b, a in self.keeper_addresses.items()}
        ids = batch_call(net.w3, [ch.functions.account_of(a, 0) for a in owners.values()], hi)
        for bot, account in zip(owners, ids, strict=True):
            if isinstance(account, int) and account:
                data.labels[account], data.roles[account] = f"{bot} keeper", "keeper"
        # the liquidation keeper's backstop account (its takeovers), subaccount 1
        (backstop,) = batch_call(net.w3, [ch.functions.account_of(owners["liquidation"], 1)], hi)
        if isinstance(backstop, int) and backstop:
            data.labels[backstop], data.roles[backstop] = "liquidation keeper (backstop, sub 1)", "backstop"
        self.say(f"solvency check at block {hi} ...")
        solvency = check_solvency(
            ch, net.token, d.insurance_fund, {s: md.market for s, md in d.markets.items()}, hi
        )
        data.solvency = solvency.as_dict()
        data.keepers = {
            "processes": keepers.summary(),
            "transactions": self._keeper_outcomes(hi),
            "gate": {
                n: {"requests": ln.requests, "transactions": ln.transactions, "rounds": ln.rounds}
                for n, ln in gate.lanes.items()
            },
        }
        data.maker = {
            "account": maker_id,
            "hedges": {s: asdict(h) for s, h in maker.hedges.items()},
            "deposit": self.config.maker_deposit_usd,
        }
        data.run.update(
            {
                "seed": self.config.seed,
                "quick": self.config.quick,
                "steps": len(self.path),
                "first_block": lo,
                "final_block": hi,
                "participant_txs": dict(lane.sent_by_tag),
                **self.counters,
            }
        )

    def _keeper_outcomes(self, final_block: int) -> dict[str, Any]:
        """Per keeper: its transactions mined by `final_block`, and every one that reverted on-chain
        with the reason (`debug_traceTransaction`, which replays it inside its block)."""
        lane, gate = self.lane, self.gate
        assert lane is not None and gate is not None
        out: dict[str, Any] = {}
        for bot, ln in gate.lanes.items():
            hashes = list(dict.fromkeys(ln.hashes))
            receipts = lane.batch([("eth_getTransactionReceipt", [h]) for h in hashes]) if hashes else []
            mined = [r for r in receipts if r and int(r["blockNumber"], 16) <= final_block]
            reverted = []
            for r in mined:
                if int(r["status"], 16) == 1:
                    continue
                trace = lane.batch(
                    [("debug_traceTransaction", [r["transactionHash"], {"tracer": "callTracer"}])],
                    check=False,
                )[0]
                reason = trace_revert_reason(trace) or "?"
                reverted.append(
                    {
                        "block": int(r["blockNumber"], 16),
                        "tx": r["transactionHash"],
                        "reason": reason,
                        "gas_used": int(r["gasUsed"], 16),
                    }
                )
            out[bot] = {"sent": len(hashes), "mined": len(mined), "reverted": reverted}
        return out

    def _config_dict(self) -> dict[str, Any]:
        c = self.config
        return {
            "seed": c.seed,
            "quick": c.quick,
            "traders": c.traders,
            "schedule": asdict(c.schedule),
            "insurance_fund_usd": c.insurance_fund_usd,
            "maker_deposit_usd": c.maker_deposit_usd,
            "markets": {
                m.config.symbol: {
                    "start": float(m.config.initial_price),
                    "initial_margin": float(m.config.initial_margin),
                    "maintenance_margin": float(m.config.maintenance_margin),
                    "max_leverage": round(1 / float(m.config.initial_margin)),
                    "bankrupt_band": float(m.config.bankrupt_band),
                    "liquidation_fee": float(m.config.liquidation_fee),
                    "funding_interval": m.config.funding_interval,
                    "volatility": m.path.volatility,
                    "crash_beta": m.path.beta,
                    "maker_level_usd": m.book.level_usd,
                }
                for m in c.markets
            },
        }


# ---------------------------------------------------------------- helpers


def _attempt(fn: Callable[[], Any]) -> None:
    """Run a teardown step; a failure (the node already gone) must not stop the next ones."""
    try:
        fn()
    except (TxError, OSError, RuntimeError, http.client.HTTPException) as exc:
        print(f"simulate: teardown: {type(exc).__name__}: {exc}", file=sys.stderr)


def _data(contract: Any, fn: str, *args: Any) -> bytes:
    return bytes.fromhex(contract.encode_abi(fn, list(args))[2:])


def _checked(results: list[Any], what: str) -> list[Any]:
    for r in results:
        if isinstance(r, CallFailed):
            raise SimError(f"reading {what} failed: {r.reason}")
    return results


def _depth(levels: Sequence[Any], index: int, *, below: bool) -> float:
    """USD resting within DEPTH_BAND of the index on one side of the book."""
    bound = index * (1 - DEPTH_BAND) if below else index * (1 + DEPTH_BAND)
    total = 0.0
    for price, size, _orders in levels:
        if (below and price >= bound) or (not below and price <= bound):
            total += int(price) * int(size) / WAD / WAD
    return total


def _quoted_depth(
    intents: Sequence[Intent], maker: str, views: dict[str, MarketView]
) -> dict[str, tuple[float, float]]:
    """USD the maker quoted within DEPTH_BAND of the index this step: (bids, asks) per market."""
    out: dict[str, list[float]] = {}
    for i in intents:
        if isinstance(i, Order) and i.owner == maker:
            index = views[i.symbol].index
            within = abs(i.price - index) <= index * DEPTH_BAND
            side = out.setdefault(i.symbol, [0.0, 0.0])
            side[0 if i.is_buy else 1] += i.size * i.price / WAD / WAD if within else 0.0
    return {s: (v[0], v[1]) for s, v in out.items()}


def _logs(event: Any, lo: int, hi: int, filters: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Decoded logs of `event` in blocks lo..hi: args (ints as ints) + block, tx, log index."""
    kwargs: dict[str, Any] = {"from_block": lo, "to_block": hi}
    if filters:
        kwargs["argument_filters"] = filters
    out = []
    for ev in event.get_logs(**kwargs):
        row = dict(ev["args"])
        row.update(
            block=int(ev["blockNumber"]), tx=ev["transactionHash"].to_0x_hex(), log_index=int(ev["logIndex"])
        )
        out.append(row)
    out.sort(key=lambda r: (r["block"], r["log_index"]))
    return out


__all__ = ["Progress", "SimConfig", "SimData", "SimError", "SimMarket", "Simulation", "default_config"]
