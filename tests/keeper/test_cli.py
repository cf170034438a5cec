from __future__ import annotations

import json
import logging
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from keeper.anvil import Anvil
from keeper.chain import ChainClient
from keeper.cli import BOTS, build_parser, main


@pytest.fixture(autouse=True)
def _restore_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("VYPERP_CONFIG", "VYPERP_RPC_URL", "VYPERP_MANIFEST", "VYPERP_PRIVATE_KEY"):
        monkeypatch.delenv(name, raising=False)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def stub_artifacts(monkeypatch: pytest.MonkeyPatch, index_oracle_artifact: Any) -> None:
    """keeper.artifacts is the lead's module; the CLI only needs abi(name)."""
    module = types.ModuleType("keeper.artifacts")
    module.abi = lambda name: {"IndexOracle": index_oracle_artifact[0]}[name]  # type: ignore[attr-defined]
    monkeypatch.setitem(__import__("sys").modules, "keeper.artifacts", module)


@pytest.fixture
def deployment(
    tmp_path: Path, node: Anvil, deployer: ChainClient, deploy_contract: Any, index_oracle_artifact: Any
) -> tuple[Path, Path, Any]:
    reporters = node.addresses[1:4]
    oracle = deploy_contract(
        deployer, *index_oracle_artifact, "BTC-PERP index", reporters, 60, 2, 5 * 10**17, 5 * 10**17
    )
    manifest = {
        "chain_id": 31337,
        "block": deployer.w3.eth.block_number,
        "deployer": deployer.address,
        "collateral": {"address": "0x" + "00" * 19 + "01", "decimals": 6, "symbol": "USDC"},
        "clearinghouse": "0x" + "00" * 19 + "02",
        "markets": {
            "BTC-PERP": {
                "oracle": oracle.address,
                "market": None,
                "reporters": reporters,
                "initial_price": "100000",
            }
        },
    }
    manifest_path = tmp_path / "local.json"
    manifest_path.write_text(json.dumps(manifest))
    config = tmp_path / "keeper.yaml"
    keys = ", ".join(f"'{k}'" for k in node.private_keys[1:4])
    config.write_text(f"oracle:\n  interval_s: 0.01\n  reporter_keys: [{keys}]\n")
    return manifest_path, config, oracle


def test_parser__run_oracle_options() -> None:
    args = build_parser().parse_args(["run", "oracle", "--dry-run", "--steps", "3", "--rpc", "http://x"])
    assert args.bot == "oracle" and args.dry_run and args.steps == 3 and args.rpc_url == "http://x"
    assert "oracle" in BOTS


def test_run_oracle_once(node: Anvil, deployment: tuple[Path, Path, Any], stub_artifacts: None) -> None:
    manifest, config, oracle = deployment
    code = main(
        ["run", "oracle", "--config", str(config), "--rpc", node.url, "--manifest", str(manifest), "--once"]
    )
    assert code == 0
    valid, price, fresh = oracle.functions.index_status().call()
    assert valid and fresh == 3
    assert price == pytest.approx(100_000 * 10**18, rel=0.01)  # started from the manifest's initial price


def test_run_oracle_steps__restarts_from_onchain_index(
    node: Anvil, deployment: tuple[Path, Path, Any], stub_artifacts: None
) -> None:
    manifest, config, oracle = deployment
    argv = ["run", "oracle", "--config", str(config), "--rpc", node.url, "--manifest", str(manifest)]
    assert main([*argv, "--steps", "2"]) == 0
    assert oracle.functions.index_status().call()[0]
    assert main([*argv, "--steps", "1"]) == 0


def test_run_oracle_dry_run__sends_nothing(
    node: Anvil, deployment: tuple[Path, Path, Any], stub_artifacts: None
) -> None:
    manifest, config, oracle = deployment
    argv = ["run", "oracle", "--config", str(config), "--rpc", node.url, "--manifest", str(manifest)]
    assert main([*argv, "--dry-run", "--once"]) == 0
    assert oracle.functions.index_status().call()[2] == 0


def test_errors__clear_message_exit_2(
    node: Anvil,
    deployment: tuple[Path, Path, Any],
    stub_artifacts: None,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    manifest, config, _ = deployment
    assert (
        main(["run", "oracle", "--rpc", node.url, "--manifest", str(tmp_path / "none.json"), "--once"]) == 2
    )
    assert "manifest not found" in capsys.readouterr().err

    other_chain = json.loads(manifest.read_text()) | {"chain_id": 1}
    wrong = tmp_path / "mainnet.json"
    wrong.write_text(json.dumps(other_chain))
    assert main(["run", "oracle", "--config", str(config), "--rpc", node.url, "--manifest", str(wrong)]) == 2
    assert "is chain 31337" in capsys.readouterr().err

    assert main(["run", "oracle", "--rpc", node.url, "--manifest", str(manifest), "--once"]) == 2
    assert "no reporter keys" in capsys.readouterr().err

    bad = tmp_path / "bad.yaml"
    bad.write_text("oracle:\n  intervall_s: 1\n")
    assert main(["run", "oracle", "--config", str(bad), "--once"]) == 2
    assert "unknown setting 'oracle.intervall_s'" in capsys.readouterr().err
