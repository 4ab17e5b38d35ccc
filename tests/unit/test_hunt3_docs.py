"""Docs-audit findings (hunt 3): what the docs say and what the code does agree.

* ``--weights FILE``: its entries for the program's parameters are checked, contracts or not
  (docs/cli.md: a misshapen or non-finite parameter is a usage error), and a file that
  holds none of them (another program's) is refused; the parameters a proof reads must
  be there.
* docs/passes.md's registry table is ``geomc --list-passes``.
* ``apel run --help`` says which workflow runs without ``--workflow``.
* ``--report=jets``: a gain of exactly the threshold is not flagged (strict ``>``).
* ``--report=holonomy --fail-on-flags``: one stderr line per flagged loop.
* docs/ir.md quotes the jet order message the verifier gives.
* APEL expressions nest 200 levels (201 refused); parentheses alone are no level.
* The runtime manifolds refuse a bool curvature/period and an unknown period name clearly.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import numpy as np
import pytest

import geomir
from geomir.diagnostics import GeomirError, UsageError
from geomir.pipeline import with_weight_transforms

ROOT = Path(__file__).resolve().parents[2]

# -- 1. --weights is checked without a contract ---------------------------------------------

PLAIN = "model M(x: R[3]) -> R[2] {\n  return tanh(linear(x, 3 -> 2))\n}\n"  # no contract
GOOD = {"M.linear0.weight": np.ones((2, 3)), "M.linear0.bias": np.zeros(2)}


@pytest.fixture
def plain(tmp_path):
    path = tmp_path / "plain.geo"
    path.write_text(PLAIN)
    return path


def _weights(tmp_path, name, arrays):
    path = tmp_path / f"{name}.npz"
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("quantize", [None, "int8"])
def test_weights_of_a_program_without_contracts_are_checked(plain, tmp_path, quantize):
    def lower(arrays, name):
        path = _weights(tmp_path, name, arrays)
        return geomir.to_ir(plain, passes=with_weight_transforms(None, quantize=quantize, weights_file=path))

    lower(GOOD, "good")  # the right file passes; so do a part of it and one with other models' entries
    lower({"M.linear0.weight": np.ones((2, 3))}, "part")
    lower({**GOOD, "Other.w": np.zeros(3)}, "more")
    cases = [
        ({**GOOD, "M.linear0.weight": np.full((2, 3), np.nan)}, "nan", "'M.linear0.weight' contains NaN or inf"),
        ({**GOOD, "M.linear0.weight": np.ones((1, 3))}, "shape",
         r"'M.linear0.weight' has shape \(1, 3\), the model expects \(2, 3\)"),
        ({"Other.w": np.zeros(3)}, "foreign", r"holds none of the program's parameters \(it has: 'Other.w'; "
         r"the program reads 'M.linear0.bias', \.\.\.\): the weights of another program\?"),
    ]
    for arrays, name, message in cases:
        with pytest.raises(UsageError, match=message):
            lower(arrays, name)


def test_geomc_weights_without_contracts_exits_2(plain, tmp_path, capsys):
    from geomir.driver import main

    path = _weights(tmp_path, "foreign", {"Other.w": np.zeros(3)})
    assert main([str(plain), f"--weights={path}", "--emit=ir"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: weights file '{path}' holds none of the program's parameters")
    nan = _weights(tmp_path, "nan", {**GOOD, "M.linear0.bias": np.array([0.0, np.inf])})
    assert main([str(plain), f"--weights={nan}", "--quantize=int8", "--emit=ir"]) == 2
    assert "'M.linear0.bias' contains NaN or inf" in capsys.readouterr().err


# -- 2. the registry table of docs/passes.md is --list-passes --------------------------------


def test_the_registry_table_is_the_registry():
    from geomir.pipeline import PASSES, available_passes

    text = (ROOT / "docs" / "passes.md").read_text()
    table = text.split("## The registry", 1)[1].split("`geomc --list-passes` prints", 1)[0]
    rows = re.findall(r"^\| `([a-z-]+)(?:\{[^`]*\})?` \| (.+?) \| `([^`]+)` \|$", table, re.M)
    documented = {name: (summary, where) for name, summary, where in rows}
    registered = available_passes()
    assert sorted(documented) == sorted(registered)
    for name, doc in registered.items():
        summary, where = documented[name]
        assert summary == doc.replace("``", "`"), name  # RST literals are Markdown code in the docs
        source = Path(inspect.getsourcefile(PASSES[name])).resolve()
        assert source == (ROOT / where).resolve(), name


# -- 3. apel run --help ----------------------------------------------------------------------


def test_apel_run_help_says_the_top_level_workflow_runs(capsys):
    from geomir.apel.cli import run

    with pytest.raises(SystemExit):
        run(["run", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "(default: the one top-level workflow, which no other workflow runs; a usage error when there are " \
           "several)" in help_text
    assert "the only one" not in help_text


# -- 4. a gain of exactly the threshold is not EXPLODING ---------------------------------------


def test_jet_report_thresholds_are_strict_despite_rounding():
    pytest.importorskip("torch")
    from geomir.jet_report import report_jets

    three = "model G(x: R[4]) -> R[4] {\n" + "".join(
        f"  let h = scale({'x' if i == 0 else 'h'}, 1000.0)\n" for i in range(3)) + "  return h\n}\n"
    (report,) = report_jets(three, batch=8)
    flags = {layer.line: layer.flags for layer in report.layers if layer.line}
    assert report.layers[2].rel1_max > 1e6  # 10^6 and an ulp or two: float64 norms
    assert flags == {2: [], 3: [], 4: ["EXPLODING"]}  # docs/cli.md: flagged at the third layer (10^9 > 10^6)
    one = "model G(x: R[4]) -> R[4] {\n  return scale(x, 0.7)\n}\n"
    (report,) = report_jets(one, batch=8, vanish=0.1, explode=0.7)
    assert report.layers[-1].rel1_max > 0.7 and report.layers[-1].flags == []


# -- 5b. one line per flagged loop ------------------------------------------------------------


def test_holonomy_fail_on_flags_prints_one_line_per_loop(plain, monkeypatch, capsys):
    from geomir import holonomy_check as hc
    from geomir.driver import main

    loops = [hc.LoopReport("A", "holonomy op", "m.geo:3:5", "poincare(c=1)[2]", 3, np.array([0.2, 0.5]), 0.1),
             hc.LoopReport("B", "recurrent block", "m.geo:9:7", "poincare(c=1)[2]", 9, np.array([0.3, np.nan]), 0.1),
             hc.LoopReport("C", "recurrent block", "m.geo:12:7", "poincare(c=1)[2]", 9, np.array([0.01]), 0.1)]
    monkeypatch.setattr(hc, "check_holonomy", lambda *a, **k: loops)
    assert main([str(plain), "--report=holonomy", "--fail-on-flags"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == ["error: holonomy report: @A (holonomy op at m.geo:3:5): rotation up to 0.5 rad > 0.1",
                   f"error: holonomy report: {loops[1].summary()}"]


# -- 5c. docs/ir.md quotes the verifier ---------------------------------------------------------


def test_ir_doc_quotes_the_jet_order_message(tmp_path):
    t = "!jet.jet<0, !geo.point<euclidean, 4, f32>>"
    path = tmp_path / "j.mlir"
    path.write_text(f"builtin.module {{\n  func.func @U(%x: {t}) -> {t} {{\n    func.return %x : {t}\n  }}\n}}\n")
    with pytest.raises(GeomirError) as info:
        geomir.to_ir(path, passes="")
    quoted = "jet.jet: order must be from 1 to 64, found 0"
    assert quoted in info.value.message
    assert f"`{quoted}`" in (ROOT / "docs" / "ir.md").read_text()


# -- 7. APEL nesting: 200 levels pass, 201 are refused ------------------------------------------


def _apel(tmp_path, expr: str):
    from geomir.apel import compile_file

    path = tmp_path / "w.apel"
    path.write_text(f"workflow W(n: int) -> int {{\n  let x = {expr}\n  return x\n}}\n")
    return compile_file(str(path))


@pytest.mark.parametrize("nest", [lambda k: "abs(" * k + "n" + ")" * k, lambda k: "(n + " * k + "n" + ")" * k,
                                  lambda k: "len(" + "[" * (k - 1) + "n" + "]" * (k - 1) + ")"])
def test_apel_expressions_nest_200_levels(tmp_path, nest):
    _apel(tmp_path, nest(200))
    with pytest.raises(GeomirError, match="expression nested more than 200 levels deep; split it with 'let'"):
        _apel(tmp_path, nest(201))


def test_apel_parentheses_alone_are_no_level(tmp_path):
    """Nor is a chain of one operator level: ``-(-(n))`` is ``- - n``."""
    _apel(tmp_path, "(" * 1000 + "n" + ")" * 1000)
    _apel(tmp_path, "-(" * 1000 + "n" + ")" * 1000)
    _apel(tmp_path, "abs(" * 200 + "(((n)))" + ")" * 200)


# -- questionable: runtime manifold arguments ---------------------------------------------------


def test_runtime_manifolds_refuse_bools_and_unknown_periods():
    pytest.importorskip("torch")
    from geomir.backends.torch import runtime as rt

    with pytest.raises(ValueError, match=r"unknown torus period 'degrees' \(expected 'radians', 'turns' or a "
                                         r"positive number\)"):
        rt.Torus("degrees")
    for bad in (True, np.bool_(True)):
        with pytest.raises(ValueError, match="curvature c must be a number, found"):
            rt.PoincareBall(bad)
        with pytest.raises(ValueError, match="curvature c must be a number, found"):
            rt.Lorentz(c=bad)
        with pytest.raises(ValueError, match="torus period must be a positive number, found"):
            rt.Torus(bad)
    assert rt.PoincareBall(2).c == 2.0 and rt.Torus("turns").period == 1.0 and rt.Lorentz(np.float32(0.5)).c == 0.5
