"""Shared fixtures for keeper tests: one anvil per session, state reverted after every test."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import vyper
from web3 import Web3

from keeper.anvil import Anvil
from keeper.chain import ChainClient
from keeper.retry import connect

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def anvil_node() -> Iterator[Anvil]:
    with Anvil(accounts=10) as node:
        yield node


@pytest.fixture
def node(anvil_node: Anvil) -> Iterator[Anvil]:
    """The session anvil, with every change made by the test reverted afterwards."""
    snap = anvil_node.snapshot()
    anvil_node.set_automine(True)
    yield anvil_node
    anvil_node.set_automine(True)
    anvil_node.revert(snap)


@pytest.fixture
def w3(node: Anvil) -> Web3:
    return connect(node.url)


@pytest.fixture
def deployer_key(node: Anvil) -> str:
    return node.private_keys[0]


@pytest.fixture
def deployer(w3: Web3, deployer_key: str) -> ChainClient:
    return ChainClient(w3, deployer_key, receipt_timeout_s=10)


def compile_source(source: str) -> tuple[list[dict[str, Any]], str]:
    """(abi, bytecode) of Vyper source text."""
    out = vyper.compile_code(source, output_formats=["abi", "bytecode"])
    return out["abi"], out["bytecode"]


def compile_file(path: Path) -> tuple[list[dict[str, Any]], str]:
    """(abi, bytecode) of a contract file, compiled from the repo root so snekmate imports resolve."""
    out = subprocess.run(
        [sys.executable, "-m", "vyper", "-f", "abi,bytecode", str(path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"vyper failed on {path}:\n{out.stderr}")
    abi_line, bytecode = out.stdout.strip().splitlines()
    return json.loads(abi_line), bytecode


def deploy(client: ChainClient, abi: list[dict[str, Any]], bytecode: str, *args: Any) -> Any:
    """Deploy through the ChainClient; returns the web3 contract."""
    receipt = client.deploy(client.w3.eth.contract(abi=abi, bytecode=bytecode).constructor(*args))
    return client.w3.eth.contract(address=receipt["contractAddress"], abi=abi)


THING_SOURCE = """# pragma version 0.4.3
value: public(uint256)
calls: public(uint256)


@external
def set_value(v: uint256):
    assert v != 13, "thing: unlucky"
    self.value = v
    self.calls += 1


@external
def set_value_before(v: uint256, deadline: uint256):
    assert block.timestamp < deadline, "thing: too late"
    self.value = v


@external
@payable
def deposit():
    pass
"""


@pytest.fixture(scope="session")
def thing_artifact() -> tuple[list[dict[str, Any]], str]:
    return compile_source(THING_SOURCE)


@pytest.fixture
def thing(deployer: ChainClient, thing_artifact: tuple[list[dict[str, Any]], str]) -> Any:
    """A tiny contract with a setter that reverts on 13."""
    return deploy(deployer, *thing_artifact)


@pytest.fixture(scope="session")
def index_oracle_artifact() -> tuple[list[dict[str, Any]], str]:
    return compile_file(REPO_ROOT / "contracts" / "IndexOracle.vy")


@pytest.fixture(scope="session")
def mock_aggregator_artifact() -> tuple[list[dict[str, Any]], str]:
    return compile_file(REPO_ROOT / "contracts" / "mocks" / "MockAggregator.vy")


@pytest.fixture(scope="session")
def deploy_contract() -> Any:
    """deploy(client, abi, bytecode, *args) -> web3 contract."""
    return deploy
