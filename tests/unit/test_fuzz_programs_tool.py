"""tools/fuzz_programs.py: seeds -> programs -> the shared check; findings as JSON lines."""

from __future__ import annotations

import importlib.util
import json
import random
from pathlib import Path

import pytest

from .geo_programs import generate_program

TOOL = Path(__file__).resolve().parents[2] / "tools" / "fuzz_programs.py"


@pytest.fixture(scope="module")
def fuzz():
    spec = importlib.util.spec_from_file_location("fuzz_programs", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_show_prints_the_generators_program(fuzz, capsys):
    assert fuzz.main(["5", "7", "--show"]) == 0
    out = capsys.readouterr().out
    for seed in (5, 6):
        assert f"// seed {seed}\n{generate_program(random.Random(seed)).source}" in out


def test_findings_are_recorded_and_the_run_goes_on(fuzz, tmp_path, monkeypatch, capsys):
    from geomir.diagnostics import UsageError

    from . import program_checks

    outcomes = iter([AssertionError("differs from the reference by 1.0e+00: torch jets, @f\n--- generated.geo ---\n"),
                     None, UsageError("refused"), ZeroDivisionError("boom")])

    def fake_check(source):
        outcome = next(outcomes)
        if outcome is not None:
            raise outcome

    monkeypatch.setattr(program_checks, "check_jets", fake_check)
    out = tmp_path / "findings.jsonl"
    assert fuzz.main(["10", "14", "--out", str(out)]) == 1
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["seed"], r["kind"]) for r in rows] == [(10, "mismatch"), (12, "rejected"), (13, "crash")]
    assert rows[0]["message"] == "differs from the reference by 1.0e+00: torch jets, @f"
    assert rows[0]["program"] == generate_program(random.Random(10)).source
    assert "ZeroDivisionError: boom" in rows[2]["message"]
    assert "checked 4, skipped 0, mismatch 1, rejected 1, crash 1" in capsys.readouterr().err


def test_only_filters_programs_and_a_clean_run_exits_0(fuzz, monkeypatch, capsys):
    from . import program_checks

    seen = []
    monkeypatch.setattr(program_checks, "check_jets", seen.append)
    assert fuzz.main(["0", "40", "--only", "holonomy_angle"]) == 0
    assert seen and all("holonomy_angle" in s for s in seen)
    assert f"checked {len(seen)}, skipped {40 - len(seen)}," in capsys.readouterr().err
