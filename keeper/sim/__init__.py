"""Market participants and the stress simulation (``make demo``), apart from the protocol's keepers.

The keepers (``keeper/bots``) keep the protocol running; this package plays the market around
them, on a local chain only:

* :mod:`keeper.sim.maker`: the market maker, quoting around the index, doing the basis trade
  and pulling liquidity in a crash;
* :mod:`keeper.sim.crowd`: a crowd of levered traders;
* :mod:`keeper.sim.path`: the seeded price path (calm, crash, recovery);
* :mod:`keeper.sim.market`: what a participant sees of a market and what it asks of it;
* :mod:`keeper.sim.lane`: the participants' JSON-RPC transaction lane;
* :mod:`keeper.sim.gate`: the JSON-RPC gate that makes the keeper processes react block by block;
* :mod:`keeper.sim.keepers`: the keeper processes and their config;
* :mod:`keeper.sim.ledger`: the solvency check, to the wei;
* :mod:`keeper.sim.engine`: the simulation that runs them all (``scripts/simulate.py``), with
  :mod:`keeper.sim.config` (what a run is), :mod:`keeper.sim.step` (one step of it) and
  :mod:`keeper.sim.results` (the data it collects).
"""
