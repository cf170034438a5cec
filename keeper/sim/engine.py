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
:func:`keeper.report.write_report` turns the :class:`~keeper.sim.results.SimData` into
``report.md`` and plots.

Here: the run, the chain and the participants' setup, the keeper processes, teardown. The
configuration is :mod:`keeper.sim.config`, a step :mod:`keeper.sim.step`, the end of the run and
the collected data :mod:`keeper.sim.results`.
"""

from __future__ import annotations

import http.client
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, TextIO

from eth_account import Account
from web3 import Web3

from keeper.anvil import Anvil, dev_private_keys
from keeper.bots.scan import batch_call
from keeper.chain import TxError
from keeper.deploy import DeployConfig
from keeper.localnet import LocalNet, start_localnet
from keeper.sim.config import SimConfig, SimError
from keeper.sim.crowd import Crowd, Trader, make_crowd
from keeper.sim.gate import RpcGate
from keeper.sim.keepers import BOTS, KeeperProcesses, keeper_config, round_markers, write_config
from keeper.sim.lane import LaneError, SimLane, Tx
from keeper.sim.maker import MarketMaker
from keeper.sim.market import MarketSpec
from keeper.sim.path import Step, phase_bounds, price_path, write_csv
from keeper.sim.results import RunSummary, SimData
from keeper.sim.step import BLOCK_BOTS, Stepping, _checked, _data, _Episode

KEYS = 20  # dev keys: deployer, insurance, 9 oracle reporters, the funding, liquidation and ADL keepers
GAS_LIMIT = 1_000_000_000  # a block holds a whole step of the crowd
GENESIS = 1_760_101_140  # 2025-10-10 12:59 UTC: chain time of the deployment on an anvil of our own
MAX_UINT = 2**256 - 1


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


class Simulation(Stepping, RunSummary):
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
            p = net.lens.functions.market_params(md.market.address).call()
            self.specs[symbol] = MarketSpec(
                symbol, md.market.address, int(md.market.functions.TICK_SIZE().call()),
                int(md.market.functions.LOT_SIZE().call()), int(p[0]), int(p[1]), int(p[5]), int(p[9]),
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


# ---------------------------------------------------------------- helpers


def _attempt(fn: Callable[[], Any]) -> None:
    """Run a teardown step; a failure (the node already gone) must not stop the next ones."""
    try:
        fn()
    except (TxError, OSError, RuntimeError, http.client.HTTPException) as exc:
        print(f"simulate: teardown: {type(exc).__name__}: {exc}", file=sys.stderr)


__all__ = ["GAS_LIMIT", "Progress", "Simulation"]
