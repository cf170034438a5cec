"""scripts/replay_mutants.py: every attack replay has a mutant, and every
mutant still applies to the contracts as they are (so the script cannot rot
while the contracts change). Running the mutants is the script's job (about
5 min); here one quick replay is run on its mutant to show it is caught."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts import replay_mutants as rm

REPO = Path(__file__).resolve().parents[2]


def test_mutants__every_replay_file_has_one__names_unique():
    replays = {str(p.relative_to(REPO)) for p in (REPO / "tests" / "e2e").glob("test_*.py")}
    assert {m.test for m in rm.MUTANTS} == replays
    names = [m.replay for m in rm.MUTANTS]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("mutant", rm.MUTANTS, ids=lambda m: m.replay)
def test_mutant__applies_once__and_changes_the_contract(mutant):
    source = (REPO / "contracts" / mutant.contract).read_text()
    mutated = rm.apply(mutant, source)
    assert mutated != source


def test_mutant__text_not_found__clear_error():
    m = rm.Mutant("x", "tests/e2e/x.py", "nothing", "PerpMarket.vy", (("no such text", ""),))
    with pytest.raises(ValueError, match="x: PerpMarket.vy has 0 copies of 'no such text', not 1"):
        rm.apply(m, "source")


def test_unknown_replay__usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        rm.main(["nosuch"])
    assert e.value.code == 2
    assert "unknown replay nosuch" in capsys.readouterr().err


def test_malformed_calls_mutant__caught__exit_0(tmp_path, capsys):
    code = rm.main(["malformed", "--keep", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "caught   malformed" in out and "1 of 1 mutants caught" in out
    mutated = (tmp_path / "malformed" / "contracts" / "PerpMarket.vy").read_text()
    assert '== account, "not your order"' not in mutated


def test_first_failure__where_the_line_and_the_error():
    log = (
        "/tmp/x/malformed/tests/e2e/test_malformed_calls.py:97: in test_cancel__reverts\n"
        '    assert not ok and "not your order" in out, out\n'
        "E   AssertionError: None\n"
    )
    assert rm._first_failure(log) == (
        'tests/e2e/test_malformed_calls.py:97 (test_cancel__reverts): assert not ok and "not your order" in out, out'
        "\n         -> AssertionError: None"
    )
    assert rm._first_failure("nothing") == "(see the log)"
