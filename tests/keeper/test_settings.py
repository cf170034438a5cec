from __future__ import annotations

import os
from pathlib import Path

import pytest

from keeper.settings import KeeperSettings, SettingsError, load_settings

KEY_A = "0x" + "11" * 32
KEY_B = "0x" + "22" * 32


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("VYPERP_"):
            monkeypatch.delenv(name)


@pytest.fixture
def yaml_file(tmp_path: Path) -> Path:
    path = tmp_path / "keeper.yaml"
    path.write_text(
        "rpc_url: http://file:1\n"
        "log_level: debug\n"
        "max_fee_gwei: 100\n"
        "oracle:\n"
        "  seed: 99\n"
        "  interval_s: 5\n"
        f"  reporter_keys: ['{KEY_A}', '{KEY_B}']\n"
    )
    return path


def test_defaults() -> None:
    s = load_settings()
    assert s.rpc_url == "http://127.0.0.1:8545"
    assert s.manifest == Path("deployments/local.json")
    assert s.private_key is None and s.dry_run is False
    assert (s.receipt_timeout_s, s.max_fee_gwei, s.priority_fee_gwei) == (30, 500, 1)
    assert s.oracle.feed == "random_walk" and s.oracle.seed == 7 and s.oracle.reporter_keys == []


def test_file_values_loaded(yaml_file: Path) -> None:
    s = load_settings(yaml_file)
    assert s.rpc_url == "http://file:1"
    assert s.log_level == "DEBUG"
    assert s.max_fee_gwei == 100
    assert s.oracle.seed == 99 and s.oracle.interval_s == 5
    assert [k.get_secret_value() for k in s.oracle.reporter_keys] == [KEY_A, KEY_B]


def test_env_beats_file__overrides_beat_both(yaml_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VYPERP_RPC_URL", "http://env:2")
    monkeypatch.setenv("VYPERP_MAX_FEE_GWEI", "200")
    monkeypatch.setenv("VYPERP_ORACLE__INTERVAL_S", "3")
    s = load_settings(yaml_file, max_fee_gwei=300, oracle={"volatility": 0.1})
    assert s.rpc_url == "http://env:2"  # env over file
    assert s.max_fee_gwei == 300  # override over env
    assert s.oracle.interval_s == 3  # nested env over file
    assert s.oracle.seed == 99  # file value kept where nothing overrides it (deep merge)
    assert s.oracle.volatility == 0.1  # nested override
    assert s.log_level == "DEBUG"


def test_none_overrides_are_ignored(yaml_file: Path) -> None:
    assert load_settings(yaml_file, rpc_url=None).rpc_url == "http://file:1"


def test_config_path_from_env_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "keeper.toml"
    path.write_text(
        f'dry_run = true\nprivate_key = "{KEY_A}"\n[oracle]\nfeed = "csv"\ncsv_path = "prices.csv"\n'
    )
    monkeypatch.setenv("VYPERP_CONFIG", str(path))
    s = load_settings()
    assert s.dry_run is True
    assert s.private_key is not None and s.private_key.get_secret_value() == KEY_A
    assert s.oracle.feed == "csv" and s.oracle.csv_path == Path("prices.csv")
    assert KEY_A not in repr(s)  # secrets stay hidden


def test_reporter_keys_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VYPERP_ORACLE__REPORTER_KEYS", f'["{KEY_A}"]')
    assert [k.get_secret_value() for k in load_settings().oracle.reporter_keys] == [KEY_A]


@pytest.mark.parametrize(
    ("content", "key"),
    [
        ("rpc_ulr: http://typo\n", "rpc_ulr"),
        ("oracle:\n  sead: 1\n", "oracle.sead"),
    ],
)
def test_unknown_key_in_file__rejected(tmp_path: Path, content: str, key: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    with pytest.raises(SettingsError, match=rf"unknown setting '{key}'") as info:
        load_settings(path)
    assert str(path) in str(info.value)


def test_unknown_override__rejected() -> None:
    with pytest.raises(SettingsError, match="unknown setting 'colour'"):
        load_settings(colour="blue")


def test_bad_values__clear_message(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="private_key: .*32-byte hex"):
        load_settings(private_key="0x1234")
    with pytest.raises(SettingsError, match="csv_path"):
        load_settings(oracle={"feed": "csv"})
    with pytest.raises(SettingsError, match="oracle.feed"):
        load_settings(oracle={"feed": "carrier-pigeon"})


def test_missing_or_unsupported_file(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="not found"):
        load_settings(tmp_path / "nope.yaml")
    ini = tmp_path / "keeper.ini"
    ini.write_text("x=1")
    with pytest.raises(SettingsError, match=".toml"):
        load_settings(ini)


def test_plain_construction_uses_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VYPERP_DRY_RUN", "true")
    assert KeeperSettings().dry_run is True
