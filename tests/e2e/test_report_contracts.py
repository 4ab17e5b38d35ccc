"""``geomc --report=contracts``: declared vs proved Lipschitz bounds, their tightness
against adversarial probes, and --fail-on-flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from geomir.driver import main

pytest.importorskip("torch")

PROVABLE = """@lipschitz(50.0)
model Net(x: R[6]) -> R[2] {
  let h = tanh(linear(x, 6 -> 32))
  let h = tanh(linear(h, 32 -> 32))
  return linear(h, 32 -> 2)
}
"""


def _too_tight(tmp_path: Path) -> str:
    """The example classifier declaring 2.0 where seed 0 proves 3.52."""
    path = tmp_path / "tight.geo"
    path.write_text(Path("examples/lipschitz_classifier.geo").read_text().replace("@lipschitz(4.0)", "@lipschitz(2.0)"))
    return str(path)


def test_a_failing_contract_is_a_row_not_an_error(tmp_path, capsys):
    path = _too_tight(tmp_path)
    assert main([path, "--report=contracts"]) == 0
    out = capsys.readouterr().out
    assert "RobustClassifier" in out and f"{path}:4:7" in out
    assert "FAILS (1.76x the declared)" in out


def test_the_example_holds(capsys):
    assert main(["examples/lipschitz_classifier.geo", "--report=contracts", "--fail-on-flags"]) == 0
    out = capsys.readouterr().out
    assert "RobustClassifier" in out and "holds" in out


def test_fail_on_flags_exits_1_with_the_models(tmp_path, capsys):
    path = _too_tight(tmp_path)
    assert main([path, "--report=contracts", "--fail-on-flags"]) == 1
    err = capsys.readouterr().err
    assert f"error: contract report: RobustClassifier ({path}:4:7): proved 3.523, declared 2" in err


def test_a_provable_contract_holds_and_is_tight(tmp_path: Path, capsys):
    path = tmp_path / "net.geo"
    path.write_text(PROVABLE)
    from geomir import contract_report

    (row,) = contract_report.report_contracts(path)
    assert row.holds and row.sound and row.empirical > 0
    assert 1.0 <= row.proved / row.empirical < 20
    assert main([str(path), "--report=contracts", "--fail-on-flags", "-o", str(tmp_path / "r.txt")]) == 0
    text = (tmp_path / "r.txt").read_text()
    assert "Net" in text and "holds" in text


def test_jet_options_are_rejected(capsys):
    assert main(["examples/lipschitz_classifier.geo", "--report=contracts", "--batch", "3"]) == 2
    assert "--batch is an option of --report=jets" in capsys.readouterr().err
    assert main(["examples/lipschitz_classifier.geo", "--report=contracts", "--model", "Nope"]) == 2
    assert "no model of that name" in capsys.readouterr().err
