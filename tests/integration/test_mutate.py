"""scripts/mutate.py: the mutation run's list stays valid while the contracts
change. Every mutant applies exactly once and changes its contract, every
deployable has mutants, every test folder named exists. Running the mutants
is the script's job (`make mutate`, hours); nothing is run here."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts import mutants_common as common
from scripts import mutate

REPO = Path(__file__).resolve().parents[2]
DEPLOYABLES = sorted(p.name for p in (REPO / "contracts").glob("*.vy") if p.stem[0].isupper())


def test_mutants__at_least_60__names_unique():
    names = [m.name for m in mutate.MUTANTS]
    assert len(names) >= 60
    assert len(names) == len(set(names))


@pytest.mark.parametrize("mutant", mutate.MUTANTS, ids=lambda m: m.name)
def test_mutant__applies_once__and_changes_its_contract(mutant):
    source = (REPO / "contracts" / mutant.contract).read_text()
    assert mutate.apply(mutant, source) != source


@pytest.mark.parametrize("contract", DEPLOYABLES)
def test_every_deployable__has_a_mutant(contract):
    assert any(m.contract == contract for m in mutate.MUTANTS), contract


def test_every_test_path__exists__and_every_mutant_says_what_it_breaks():
    for m in mutate.MUTANTS:
        assert m.tests and m.what, m.name
        for path in m.tests:
            assert (REPO / path).is_dir(), f"{m.name}: {path}"
    assert (REPO / mutate.E2E).is_dir()


def test_mutant__text_not_found__clear_error():
    m = mutate.Mutant("x", "PerpMarket.vy", "nothing", (mutate.PM,), (("no such text", ""),))
    with pytest.raises(ValueError, match="x: PerpMarket.vy has 0 copies of 'no such text', not 1"):
        mutate.apply(m, "source")


def test_unknown_mutant__usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        mutate.main(["nosuch"])
    assert e.value.code == 2
    assert "unknown mutant nosuch" in capsys.readouterr().err


def test_verdict__caught_timeout_survived_broken():
    tests = (mutate.PM, mutate.E2E)
    failed = "F\nFAILED tests/unitary/perp_market/test_x.py::test_y - AssertionError: 1\n1 failed in 3s\n"
    assert mutate.verdict(1, failed, tests) == (
        "caught",
        "tests/unitary/perp_market/test_x.py::test_y: AssertionError: 1",
    )
    assert mutate.verdict(None, "", tests)[0] == "timeout"
    assert mutate.verdict(0, "10 passed in 3s\n", tests) == ("survived", "exit 0: 10 passed in 3s")
    compile_error = (
        "E   vyper.exceptions.TypeMismatch: bad\nERROR tests/unitary/perp_market/test_x.py::test_y\n"
    )
    assert mutate.verdict(1, compile_error, tests)[0] == "broken"
    # a test file that does not import (someone's edit in progress) catches nothing
    collection = "E   ImportError: cannot import name 'WAD'\nERROR tests/e2e/test_x.py\n1 error in 1.10s\n"
    assert mutate.verdict(1, collection, tests) == ("broken", "exit 1: 1 error in 1.10s")
    # a failure outside the chosen tests is not this mutant's catch
    other = "FAILED tests/unitary/index_oracle/test_x.py::test_y - AssertionError\n"
    assert mutate.verdict(1, other, tests)[0] == "broken"


def test_score_and_table__timeouts_count_as_caught():
    m = mutate.MUTANTS[0]
    outcomes = [
        mutate.Outcome(m, "caught", 1.0, "t"),
        mutate.Outcome(m, "timeout", 600.0, "(killed)"),
        mutate.Outcome(m, "survived", 9.0, "a|b"),
        mutate.Outcome(m, "broken", 2.0, "x"),
    ]
    assert mutate.score(outcomes) == (2, 4)
    report = mutate.table(outcomes, 95)
    assert "4 of 95 mutants run; score 2 / 4 = 50.0%" in report
    assert "a\\|b" in report and report.count(f"| {m.name} |") == 4


def test_copy_tree__untracked_files_too(tmp_path):
    common.copy_tree(tmp_path, untracked=True)
    assert (tmp_path / "contracts" / "PerpMarket.vy").read_text() == (
        REPO / "contracts" / "PerpMarket.vy"
    ).read_text()
    assert (tmp_path / "scripts" / "mutate.py").is_file()
    assert not (tmp_path / ".venv").exists()
