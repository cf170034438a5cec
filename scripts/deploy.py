"""Deploy vyperp to any ape network and write the deployment manifest.

    ape run deploy                                   # ape's local test network
    ape run deploy --network ethereum:local:foundry  # a node ape-foundry starts
    VYPERP_DEPLOYER=<alias> ape run deploy --network <ecosystem:network:provider>

The deployer is ape's first test account on local networks, otherwise the
ape account alias in ``VYPERP_DEPLOYER``. Oracle reporters default to the
deployer; ``VYPERP_REPORTERS`` (comma-separated addresses) overrides them for
every market (then no initial prices are pushed: the reporters push them).
The manifest goes to ``deployments/<network>.json`` (or ``VYPERP_MANIFEST``).
"""

from __future__ import annotations

import os
from pathlib import Path

from keeper.deploy import ApeBackend, DeployConfig, Deployment, deploy_protocol, write_manifest


def deploy(
    project, sender, config: DeployConfig | None = None, manifest_path: str | Path | None = None
) -> Deployment:
    """Deploy with ape; used by `ape run deploy` and by tests/ape."""
    config = config or DeployConfig()
    reporters = [r.strip() for r in os.environ.get("VYPERP_REPORTERS", "").split(",") if r.strip()]
    if reporters:
        config.reporters = {m.symbol: reporters for m in config.markets}
        config.push_initial_prices = False
    d = deploy_protocol(ApeBackend(project, sender), config)
    if manifest_path:
        write_manifest(d.manifest, manifest_path)
    return d


def main():
    from ape import accounts, networks, project

    network = networks.provider.network
    if network.name in ("local", "development") or network.name.endswith("-fork"):
        sender = accounts.test_accounts[0]
    else:
        alias = os.environ.get("VYPERP_DEPLOYER")
        if not alias:
            raise SystemExit("set VYPERP_DEPLOYER to the ape account alias that deploys on this network")
        sender = accounts.load(alias)
    path = os.environ.get("VYPERP_MANIFEST") or f"deployments/{network.ecosystem.name}-{network.name}.json"
    d = deploy(project, sender, manifest_path=path)
    print(f"deployed on chain {d.manifest['chain_id']} at block {d.manifest['block']}; manifest: {path}")
    for key in ("clearinghouse", "liquidation_engine", "lens", "insurance_fund"):
        print(f"  {key:<19} {d.manifest[key]}")
    for symbol, m in d.manifest["markets"].items():
        print(f"  {symbol:<10} market {m['market']}  oracle {m['oracle']}")
