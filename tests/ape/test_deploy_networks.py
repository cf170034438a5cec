"""ape test: `ape run deploy` on another ape network than the test provider: ethereum:local:foundry,
where ape-foundry starts its own anvil (on a random free port: `foundry: host: auto` in
ape-config.yaml, never 8545) and stops it afterwards."""

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_ape_run_deploy__foundry_network__deploys_and_stops_its_node(tmp_path):
    manifest = tmp_path / "foundry.json"
    bin_dir = Path(sys.executable).parent
    env = {
        **os.environ,
        "PATH": os.pathsep.join(
            [str(bin_dir), str(REPO / "node_modules" / ".bin"), os.environ.get("PATH", "")]
        ),
        "VYPERP_MANIFEST": str(manifest),
    }
    run = subprocess.run(
        [str(bin_dir / "ape"), "run", "deploy", "--network", "ethereum:local:foundry"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-3000:]
    assert "deployed on chain 31337" in out
    assert "Stopping 'anvil' process" in out  # ape-foundry stopped the node it started
    m = json.loads(manifest.read_text())
    assert m["chain_id"] == 31337
    assert set(m["markets"]) == {"BTC-PERP", "ETH-PERP", "SOL-PERP"}
