"""scripts/fuzz.py (`make fuzz`): shards, their added-up counts, the exit
status, and a run stopped midway reporting what finished."""

from __future__ import annotations

import json
import re

from scripts import fuzz

FUNDING = "tests/fuzz/test_funding_stateful.py"


def test_fuzz__one_example_per_machine__counts_added_up__exit_0(tmp_path, capsys):
    code = fuzz.main(["--examples", "2", "--jobs", "2", "--out", str(tmp_path), FUNDING])
    out = capsys.readouterr().out
    assert code == 0, out
    # 1 example per shard, run once per collateral decimals (6 and 18): 4 in all
    steps = int(re.search(r"funding: 4 examples, ([\d,]+) steps checked", out)[1].replace(",", ""))
    assert "all invariants held after every step" in out
    shards = [json.loads((tmp_path / f"test_funding_stateful-shard-{k}.json").read_text()) for k in (0, 1)]
    assert [s["funding"]["examples"] for s in shards] == [2, 2]
    assert sum(s["funding"]["steps"] for s in shards) == steps > 4
    for s in shards:
        assert list(s["_tests"].values()) == ["passed", "passed"]
    # the live counts (tests/fuzz/stats.py), rewritten at every new example
    live = [
        json.loads((tmp_path / f"test_funding_stateful-shard-{k}.json.progress").read_text()) for k in (0, 1)
    ]
    assert [v["funding examples"] for v in live] == [2, 2]


def test_fuzz__time_limit__stops_the_shards__reports_what_finished__exit_1(tmp_path, capsys):
    code = fuzz.main(
        ["--examples", "1000", "--jobs", "1", "--time-limit", "0.05", "--out", str(tmp_path), FUNDING]
    )
    out = capsys.readouterr().out
    assert code == 1
    assert "STOPPED after" in out and "not a full run" in out
    assert "all invariants held" not in out


def test_fuzz__a_shard_that_fails__exit_1(tmp_path, capsys):
    code = fuzz.main(["--examples", "1", "--jobs", "1", "--out", str(tmp_path), "tests/fuzz/no_such_test.py"])
    out = capsys.readouterr().out
    assert code == 1
    log = tmp_path / "no_such_test-shard-0.log"
    assert f"a shard FAILED (exit 4): see {log}" in out and "no machine ran" in out


def test_fuzz__each_test_file_in_its_own_process_per_shard(tmp_path, capsys):
    liquidation = "tests/fuzz/test_liquidation_stateful.py::test_liquidation_stateful"
    code = fuzz.main(["--examples", "2", "--jobs", "2", "--out", str(tmp_path), FUNDING, liquidation])
    out = capsys.readouterr().out
    assert code == 0, out
    assert sorted(p.name for p in tmp_path.glob("*.json")) == [
        "test_funding_stateful-shard-0.json",
        "test_funding_stateful-shard-1.json",
        "test_liquidation_stateful-shard-0.json",
        "test_liquidation_stateful-shard-1.json",
    ]
    assert "funding: 4 examples" in out and "liquidation: 2 examples" in out
