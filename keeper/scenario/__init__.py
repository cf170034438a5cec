"""Scenario runner: replay a YAML scenario on a real local chain.

    keeper scenario run FILE.yaml [--rpc URL] [--verbose]
    keeper scenario check FILE.yaml

A scenario (format: ``SCENARIOS.md``; every level is a pydantic model with
unknown keys rejected) sets up markets and accounts on a fresh deployment of
the protocol (:func:`keeper.localnet.start_localnet`), drives it step by step
and checks expectations. Exit codes of ``run``: 0 every expectation holds,
1 an expectation or a step failed, 2 the file is malformed (or the node
could not be started).

Python API: :func:`load_scenario` (parse and validate, raises
:class:`ScenarioError` with ``line N`` in its message) and :func:`run_scenario`
(returns a :class:`ScenarioResult`).

Beyond SCENARIOS.md this runner accepts:

* top level ``requires: [funding, liquidation, adl]``: features the scenario
  needs; the test suite skips it while one is missing from
  ``IMPLEMENTED_FEATURES`` (a scenario that needs one without saying so fails);
  ``insurance_fee_share`` (default: the deployer's, 0.5 of trading fees) and
  ``insurance_payout_cap`` (the fund pays at most this fraction of its assets
  per bad-debt event, beyond it ADL; default 0.5, ``DeployConfig``);
* market keys ``price_band`` (every order but a liquidation is priced within
  index x (1 +- price_band); default 0.02, in [0.001, 0.2]; ``mark_band`` is
  at most maintenance_margin / 4, its default), ``max_open_orders``,
  ``max_fills``, ``max_open_interest``, ``oracle_sources``, ``oracle_quorum``,
  ``oracle_max_age`` (a duration), ``oracle_max_divergence`` and
  ``oracle_reference_rate`` (per hour), the index guard's fractions
  (PROTOCOL.md §4; default 0.5 each, in [0.05, 10] and [0.01, 10], whole
  basis points). An ``oracle`` step that moves the
  index beyond the guard is confirmed by the owner, and the step says so;
  unset keys fall back to ``keeper.deploy.MarketConfig``; the funding keys
  are applied to the market's FundingRate (checked against its hard bounds
  before deploying); the liquidation keys to the market's
  ``Clearinghouse.LiquidationParams`` (hard bounds checked too):
  ``liquidation_fee`` (of closed notional, default 0.005, at most 0.05),
  ``liquidator_share`` (of that fee, to the caller; default 0.5),
  ``bankrupt_band`` (a bankrupt account closes within mark -+ this; default
  0.05, in [0.001, 0.5]), ``takeover_discount`` (default 0.01, at most 0.1),
  ``small_position_notional`` (positions and remainders worth at most this
  close whole; default 1000);
* steps: ``cancel`` by ``order_id`` (+ ``market``), ``expect_revert`` and
  ``note`` beside the step kind (``- advance: 1h`` / ``  note: ...``);
  ``keepers: [oracle]`` re-reports every index now, ``keepers: [funding]``
  runs one pass of the funding keeper (``keeper.bots.funding``) now,
  ``keepers: [liquidation]`` / ``[adl]`` one pass of the liquidation / ADL
  keeper (``keeper.bots.liquidation.LiquidationBot``,
  ``keeper.bots.adl.AdlBot``) from keys of the runner's own;
  ``liquidate: {account, market, by, max_size?}``: `by` calls
  ``LiquidationEngine.liquidate`` on the account's subaccount 0, listing all its
  resting orders in the market (the fee share goes to `by`);
* account fields ``open_orders`` (per market), ``initial_margin``,
  ``maintenance_margin``; ``liquidated_size`` (base units of the account's
  position closed by ``Liquidation`` + taken over by ``Takeover`` events) and
  ``adl_size`` (``Deleveraged`` events where it is the bankrupt account or the
  counterparty), per market or summed over all; market fields
  ``predicted_funding_rate`` (the running interval's rate if it settled now),
  ``period_funding_rate`` (the last rate per funding_period: last rate x
  period / interval) and ``last_premium`` (the last settled mean premium).

Semantics worth knowing: a ``market`` order is an IOC whose limit is the price
band's edge, index x (1 +- price_band) rounded inwards to the tick (the widest
price the market takes), so the minimum order notional is checked at that
limit, not at the fill price (reduce-only IOCs are exempt); chain time stands
still between steps (anvil's block timestamp interval is set to 0 for the
run, and restored afterwards), so only ``advance`` moves it;
``advance: D`` plays the keepers' schedule: it steps time forward in stops no
longer than the smallest ``sample_interval`` of the markets, landing exactly
on every market's next funding time, and at each stop (block timestamp exact)
runs every action of ``ADVANCE_KEEPERS`` in order: the oracle reporter
re-reports every market's current index; the funding keeper's plan (settle
or sample as due, ``keeper.bots.funding.plan_funding_actions``) is executed;
the liquidation keeper's plan (``keeper.bots.liquidation.plan_liquidations``:
liquidatable accounts worst first, bankrupt ones the insurance fund can cover)
and then the ADL keeper's (the accounts left to ADL, against the profitable
opposite positions by live ``adl_score``) are executed, each call simulated
first and skipped when it would revert benignly or close nothing.
Those stops use a fast transaction lane (JSON-RPC batches, node-signed dev
accounts, fixed gas, receipts checked): a day at 60 s samples is 1,440 stops.
``funding_paid`` is the funding settled into cash (``PositionChanged``
events) plus the funding owed now (``position().funding_owed``), + = paid;
event counts cover every protocol contract (clearinghouse, liquidation engine,
markets, oracles, funding rates, insurance fund; each matched against its own ABI) from the
block after the deployment, so they include the setup's deposits;
``insurance_fund: balance`` is the fund's ERC-4626 ``totalAssets()`` (its
assets plus the whole token units of its pending cash at the clearinghouse),
funded at setup by an ERC-4626 deposit from an actor of the runner's own;
a failed expectation does not stop the run, a failed step does.

Layout of the package: :mod:`~keeper.scenario.schema` (the models, pure),
:mod:`~keeper.scenario.loader` (the YAML loader that keeps line numbers and the
static checks, pure), :mod:`~keeper.scenario.hooks` (the keepers' actions at the
stops of ``advance`` and in ``keepers:`` steps), :mod:`~keeper.scenario.runner`
(:class:`ScenarioRunner`, chain I/O; its expectation reads in
:mod:`~keeper.scenario.expectations`, its results in
:mod:`~keeper.scenario.results`) and :mod:`~keeper.scenario.cli` (the CLI glue).
The fast transaction lane is :class:`keeper.rpc.FastLane`; the decimal helpers
are in :mod:`keeper.units`.
"""
