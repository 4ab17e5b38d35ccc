"""``geomc --report=jets``: the jet health report (geomir/jet_report.py) and the emitter's
``tap`` instrumentation."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from geomir.backends.common import pyemit
from geomir.backends.torch.emitter import FLAVOR

import geomir
from geomir import jet_report
from geomir.dialects import geo
from geomir.driver import main

ROOT = Path(__file__).resolve().parents[2]

MLP = """\
model MLP(x: R[4]) -> R[3] {
  let h = tanh(linear(x, 4 -> 16))
  let h = tanh(linear(h, 16 -> 16))
  return linear(h, 16 -> 3)
}
"""

VANISH = """\
model Vanish(x: R[4]) -> R[2] {
  let h = tanh(linear(x, 4 -> 8))
  let h = scale(h, 1e-9)
  return linear(h, 8 -> 2)
}

model Saturated(x: R[4]) -> R[2] {
  let h = tanh(scale(linear(x, 4 -> 8), 1000.0))
  return linear(h, 8 -> 2)
}
"""

EXPLODE = """\
model Explode(x: R[3]) -> R[3] {
  let h = scale(x, 10000.0)
  let h = scale(h, 1000.0)
  return scale(h, 0.5)
}

model Curved(x: R[3]) -> R[3] {
  return sin(scale(x, 2000.0))
}
"""

NAN = """\
model Root(x: R[3]) -> R[3] {
  let h = linear(x, 3 -> 3)
  let h = sqrt(h)
  return tanh(h)
}
"""


def write(tmp_path: Path, text: str, name: str = "m.geo") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def geomc(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "geomir.driver", *args], check=False, capture_output=True, text=True, cwd=ROOT)


def rows(out: str, where: str) -> list[list[str]]:
    """The table rows of layer ``where`` ("file:line"), as lists of cell texts."""
    return [[c.strip() for c in line.split("│")[1:-1]] for line in out.splitlines() if line.startswith(f"│ {where} ")]


def layer(report: jet_report.ModelReport, line: int) -> jet_report.Layer:
    (found,) = [x for x in report.layers if x.line == line]
    return found


# -- the report on healthy and broken models ---------------------------------------------------------


def test_healthy_tanh_mlp_has_no_flags(tmp_path: Path, capsys) -> None:
    path = write(tmp_path, MLP)
    assert main([path, "--report=jets"]) == 0
    out = capsys.readouterr().out
    assert "@MLP: ok" in out
    for line in (2, 3, 4):
        (row,) = rows(out, f"{path}:{line}")
        assert row[-1] == "ok"
    (row,) = rows(out, f"{path}:2")
    assert row[1] == "let h = tanh(linear(x, 4 -> 16))" and row[2] == "linear, bias, tanh"
    (report,) = jet_report.report_jets(path)
    assert [x.kind for x in report.layers] == ["input", "layer", "layer", "layer"]
    assert not report.flagged
    seed = report.layers[0]
    assert seed.d1_median == pytest.approx(1.0) and seed.d2_max == 0.0  # the jet of x + t v, |v| = 1


def test_vanishing_is_flagged_at_its_line(tmp_path: Path, capsys) -> None:
    path = write(tmp_path, VANISH)
    assert main([path, "--report=jets", "--model", "Vanish"]) == 0  # flags alone do not fail
    out = capsys.readouterr().out
    assert rows(out, f"{path}:2")[0][-1] == "ok"
    assert rows(out, f"{path}:3")[0][-1] == "VANISHING"
    assert rows(out, f"{path}:4")[0][-1] == "VANISHING"  # and every layer after it
    assert f"@Vanish: VANISHING at {path}:3 (2 layers)" in out
    assert "@Saturated" not in out
    (report,) = jet_report.report_jets(path, model="Vanish")
    assert layer(report, 3).rel1_median == pytest.approx(1e-9 * layer(report, 2).rel1_median, rel=1e-12)
    # a saturated tanh (inputs scaled by 1000) kills the first derivative for typical rows
    (saturated,) = jet_report.report_jets(path, model="Saturated")
    assert saturated.first("VANISHING").line == 8
    assert layer(saturated, 8).rel1_median < 1e-20


def test_exploding_is_flagged_at_its_line(tmp_path: Path, capsys) -> None:
    path = write(tmp_path, EXPLODE)
    assert main([path, "--report=jets"]) == 0
    out = capsys.readouterr().out
    assert rows(out, f"{path}:2")[0][-1] == "ok"  # 1e4 < 1e6
    assert rows(out, f"{path}:3")[0][-1] == "EXPLODING"  # 1e7
    assert f"@Explode: EXPLODING at {path}:3" in out
    # the second derivative alone: |∂ sin(2000 x)| ≤ 2000 |v|, |∂²| up to 4e6 |v|²
    (curved,) = jet_report.report_jets(path, model="Curved")
    row = layer(curved, 8)
    assert row.flags == ["EXPLODING"] and row.rel1_max < 1e4 and row.rel2_max > 1e6
    # thresholds are options
    assert main([path, "--report=jets", "--model=Explode", "--jets-explode=1e8"]) == 0
    assert "@Explode: ok" in capsys.readouterr().out


def test_nan_is_flagged_with_its_rows(tmp_path: Path, capsys) -> None:
    path = write(tmp_path, NAN)
    assert main([path, "--report=jets"]) == 0
    out = capsys.readouterr().out
    (row,) = rows(out, f"{path}:3")
    assert row[-1].startswith("NaN (") and row[-1].endswith("/256 rows)")
    assert rows(out, f"{path}:2")[0][-1] == "ok"
    assert f"@Root: NaN at {path}:3 (2 layers)" in out
    (report,) = jet_report.report_jets(path)
    assert 0 < layer(report, 3).nonfinite_rows < 256  # sqrt of a negative coordinate in some rows


def test_poincare_model(capsys) -> None:
    assert main(["examples/hyperbolic_mlp.geo", "--report=jets", "--batch=64"]) == 0
    out = capsys.readouterr().out
    assert "jets of @HyperbolicMLP along x: poincare(c=1)[16]" in out
    assert "@HyperbolicMLP: ok" in out and "@PrototypeScore: ok" in out
    (row,) = rows(out, "examples/hyperbolic_mlp.geo:7")[:1]
    assert row[2] == "logmap0, tanh, expmap0" and row[-1] == "ok"
    (report,) = jet_report.report_jets("examples/hyperbolic_mlp.geo", model="PrototypeScore", wrt="prototype", batch=16)
    assert report.wrt == "prototype"
    assert [x.line for x in report.layers] == [None, 14]  # only the dist depends on the prototype


def test_tangents_at_different_points_are_transported_as_in_the_default_pipeline(tmp_path: Path, capsys) -> None:
    """A program geomc compiles (its tangents carried to one point by insert-transport) is
    one the report accepts: the shipped example and the smallest such model."""
    path = write(tmp_path, "manifold H = poincare()\nmodel A(x: H[2], y: H[2]) -> tangent H[2] {\n"
                 "  return logmap0(x) + logmap(x, y)\n}\n")
    assert main([path, "--report=jets", "--batch=16"]) == 0
    out = capsys.readouterr().out
    (row,) = rows(out, f"{path}:3")
    assert "parallel_transport" in row[2] and row[-1] == "ok"
    assert main(["examples/hyperbolic_residual.geo", "--report=jets", "--batch=16"]) == 0


def test_a_model_called_twice_gives_one_layer_per_run(tmp_path: Path) -> None:
    path = write(tmp_path, "model B(x: R[2]) -> R[2] {\n  return tanh(linear(x, 2 -> 2))\n}\n"
                 "model A(x: R[2]) -> R[2] {\n  let h = B(x)\n  let h = B(h)\n  return h + x\n}\n")
    (report,) = jet_report.report_jets(path, model="A", batch=16)
    assert [x.label for x in report.layers] == ["input", f"{path}:2", f"{path}:2 #2", f"{path}:7"]
    assert [x.ops for x in report.layers[1:]] == [["linear", "bias", "tanh"]] * 2 + [["add"]]


# -- the numbers against an independent computation -----------------------------------------------


def _jvp_norms(fn, x, v):
    """Per-row |∂f| and |∂²f| along v by nested torch.func.jvp of the compiled model."""
    def first(y):
        return torch.func.jvp(fn, (y,), (v,))[1]

    d1 = first(x)
    d2 = torch.func.jvp(first, (x,), (v,))[1]
    return fn(x).norm(dim=-1), d1.norm(dim=-1), d2.norm(dim=-1)


@pytest.mark.parametrize(
    ("source", "name", "line"), [(MLP, "MLP", 4), (Path("examples/hyperbolic_mlp.geo"), "HyperbolicMLP", 8)]
)
def test_numbers_match_nested_jvp_of_the_compiled_model(source, name: str, line: int, tmp_path: Path, capsys) -> None:
    path = str(source) if isinstance(source, Path) else write(tmp_path, source)
    (report,) = jet_report.report_jets(path, model=name, batch=64, seed=3)
    compiled = geomir.compile(Path(path), "torch", cache_dir=tmp_path / "cache")
    params = compiled.init_params(3, torch.float64, compiled.FUNCTION_PARAMS[name])
    (x,) = report.inputs
    f0, d1, d2 = _jvp_norms(lambda y: getattr(compiled, name)(params, y), x, report.direction)
    out = layer(report, line)
    assert out.f0_median == pytest.approx(float(f0.median()), rel=1e-12)
    assert out.d1_median == pytest.approx(float(d1.median()), rel=1e-12)
    assert out.d1_max == pytest.approx(float(d1.max()), rel=1e-12)
    assert out.d2_median == pytest.approx(float(d2.median()), rel=1e-9)
    assert out.d2_max == pytest.approx(float(d2.max()), rel=1e-9)
    # and the printed table says the same, to its 3 digits
    assert main([path, "--report=jets", f"--model={name}", "--batch=64", "--seed=3"]) == 0
    (row,) = rows(capsys.readouterr().out, f"{path}:{line}")
    assert row[3:8] == [f"{float(t):.3g}" for t in (f0.median(), d1.median(), d1.max(), d2.median(), d2.max())]


def test_inputs_are_valid_points_and_directions_unit_tangents() -> None:
    (report,) = jet_report.report_jets("examples/manifolds_tour.geo", model="LorentzOps", batch=32)
    (x,) = report.inputs
    minkowski = -x[:, 0] ** 2 + (x[:, 1:] ** 2).sum(-1)
    assert torch.allclose(minkowski, torch.full_like(minkowski, -1.0))
    v = report.direction
    assert torch.allclose(v.norm(dim=-1), torch.ones(32, dtype=v.dtype))
    assert torch.allclose(-x[:, 0] * v[:, 0] + (x[:, 1:] * v[:, 1:]).sum(-1), torch.zeros(32, dtype=v.dtype), atol=1e-12)
    assert not report.flagged


# -- the command line ---------------------------------------------------------------------------------


def test_fail_on_flags_exits_1_with_a_one_line_summary(tmp_path: Path) -> None:
    path = write(tmp_path, VANISH)
    proc = geomc(path, "--report=jets", "--model=Vanish", "--fail-on-flags")
    assert proc.returncode == 1
    assert proc.stderr == f"error: jet report: @Vanish: VANISHING at {path}:3 (2 layers)\n"
    assert "VANISHING" in proc.stdout  # the table is still printed
    healthy = write(tmp_path, MLP, "mlp.geo")
    assert main([healthy, "--report=jets", "--fail-on-flags", "--batch=16"]) == 0


def test_bad_model_name_is_a_clean_error(tmp_path: Path) -> None:
    proc = geomc("examples/hyperbolic_mlp.geo", "--report=jets", "--model", "Nope")
    assert proc.returncode == 2
    assert proc.stderr == (
        "error: --report=jets: no model 'Nope' in examples/hyperbolic_mlp.geo (models: HyperbolicMLP, PrototypeScore)\n"
    )
    assert proc.stdout == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--report=jets", "--model=MLP", "--wrt=y"], "error: --report=jets: model @MLP has no input 'y' (inputs: x)"),
        (["--model=MLP"], "error: --model needs --report"),
        (["--batch=8"], "error: --batch needs --report"),
        (["--report=jets", "--seed=-1"], "error: --seed must be a non-negative integer, not -1"),
        (["--report=jets", "--target=torch"], "error: --report runs its own pipeline; drop --target"),
        (["--report=jets", "--batch=0"], "error: --batch must be at least 1, not 0"),
        (["--report=jets", "--jets-vanish=1", "--jets-explode=0.5"], "error: need 0 < --jets-vanish < --jets-explode < inf, got 1 and 0.5"),
    ],
)
def test_usage_errors(args: list[str], message: str, tmp_path: Path, capsys) -> None:
    assert main([write(tmp_path, MLP), *args]) == 2
    captured = capsys.readouterr()
    assert captured.err == message + "\n" and captured.out == ""


def test_unknown_report_kind_is_a_usage_error(tmp_path: Path) -> None:
    proc = geomc(write(tmp_path, MLP), "--report=lipschitz")
    assert proc.returncode == 2 and "argument --report: invalid choice: 'lipschitz'" in proc.stderr


def test_manifold_without_jet_maps_is_a_clean_error(monkeypatch, capsys) -> None:
    monkeypatch.setattr(pyemit, "_JET_MANIFOLDS", (geo.EuclideanAttr, geo.PoincareAttr, geo.TorusAttr))
    assert main(["examples/manifolds_tour.geo", "--report=jets", "--model=SphereOps"]) == 2
    captured = capsys.readouterr()
    assert captured.err == "error: --report=jets of @SphereOps: Taylor-mode jets of expmap on sphere are not built yet\n"


def test_missing_torch_is_a_clean_error(monkeypatch, tmp_path: Path, capsys) -> None:
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else find_spec(name, *a))
    assert main([write(tmp_path, MLP), "--report=jets"]) == 2
    assert "--report=jets runs the model with PyTorch, which is not installed" in capsys.readouterr().err


def test_report_to_a_file(tmp_path: Path, capsys) -> None:
    out = tmp_path / "report.txt"
    assert main([write(tmp_path, MLP), "--report=jets", "--batch=8", "-o", str(out)]) == 0
    assert capsys.readouterr().out == ""
    text = out.read_text()
    assert "@MLP: ok" in text and "\x1b[" not in text


# -- the emitter's tap ---------------------------------------------------------------------------------


def test_tap_is_off_by_default_and_marks_every_jet_when_on() -> None:
    module = geomir.to_ir(Path("examples/pinn_laplacian.geo"), passes="jet-expand,cse,dce")
    plain = pyemit.emit_python(module, FLAVOR, "examples/pinn_laplacian.geo")
    assert plain == pyemit.PythonEmitter(module, FLAVOR, "examples/pinn_laplacian.geo").emit()
    assert "_tap" not in plain
    tapped = pyemit.emit_python(module, FLAVOR, "examples/pinn_laplacian.geo", tap=True)
    assert tapped.count("\ndef _tap(where, op, value):\n") == 1
    assert "_tap('examples/pinn_laplacian.geo:5:11', 'geo.tanh', h)" in tapped
    # without the tap lines and the hook, the tapped source is the plain one
    kept = [line for line in tapped.split("\n") if not line.strip().startswith("_tap(")]
    start = kept.index("def _tap(where, op, value):")
    assert "\n".join(kept[:start] + kept[start + 6:]) == plain
