"""Regressions from the fifth APEL bug hunt: point types with an element type (``R[2, f64]``,
as in .geo) and model agents run in it, a signature mismatch that names the element types,
a .geo error of a model agent located in the .geo file, and ``?weights=FILE`` taken as
``geomc --weights`` takes it (the model's own parameters, ball points on the ball)."""

from __future__ import annotations

import numpy as np
import pytest

from geomir.apel import compile_file
from geomir.apel.checks import run_checks
from geomir.apel.engine import AgentUnavailable, Engine
from geomir.apel.store import open_store
from geomir.diagnostics import GeoTypeError
from geomir.dialects import geo

from .helpers import program

torch = pytest.importorskip("torch")


@pytest.fixture
def store(tmp_path):
    with open_store(tmp_path / "runs.sqlite") as s:
        yield s


def _write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    return path


PRECISE = "model Precise(x: R[2, f64]) -> R[1, f64] {\n  return linear(x, 2 -> 1)\n}\n"
AGENT = """pure agent precise(x: {t_in}) -> {t_out} {{ model "m.geo:Precise" }}
workflow W(x: {t_in}) -> {t_out} {{ let y = call precise(x)  return y }}
"""


# --- 1. element types ----------------------------------------------------------------------------


def test_an_f64_model_is_an_agent_declared_in_f64(tmp_path, store):
    import geomir

    _write(tmp_path, "m.geo", PRECISE)
    prog = program(tmp_path / "a.apel", AGENT.format(t_in="R[2, f64]", t_out="R[1, f64]"))
    (agent,) = [a for a in prog.agents.values()]
    assert agent.params()[0][1].element_type == geo.PointType(geo.EuclideanAttr(), 2, geo.f64).element_type
    assert run_checks(compile_file(tmp_path / "a.apel")[0]) == []
    x = [0.1 + 1e-12, 0.2]  # below float32's resolution: a float32 cast would lose it
    result = Engine(prog, store).start({"x": x})
    assert result.status == "completed", result.error
    mod = geomir.compile(tmp_path / "m.geo", target="torch")
    want = mod.Precise(mod.init_params(0), torch.tensor([x], dtype=torch.float64))[0].numpy()
    assert np.array_equal(np.asarray(result.output), want)


def test_an_element_type_mismatch_names_both_element_types(tmp_path):
    _write(tmp_path, "m.geo", PRECISE)
    _write(tmp_path, "a.apel", AGENT.format(t_in="R[2]", t_out="R[1, f64]"))
    (problem,) = run_checks(compile_file(tmp_path / "a.apel")[0])
    assert "(element type f64 vs f32)" in problem.message and "()" not in problem.message
    assert "takes a point of dimension 2 on euclidean (f64)" in problem.message


def test_an_unknown_element_type_is_located(tmp_path):
    with pytest.raises(GeoTypeError) as info:
        program(tmp_path / "a.apel", "agent f(x: R[2, f65]) -> int\n")
    assert "unknown element type 'f65'" in info.value.message and "f64" in info.value.message
    assert (info.value.span.line, info.value.span.column) == (1, 17)


# --- 2. a .geo error in a model agent's file --------------------------------------------------------


def test_a_model_error_is_located_in_the_geo_file(tmp_path):
    _write(tmp_path, "m.geo", "model F(x: R[2]) -> R[1] {\n  let h = tanh(x)\n  return linear(h, 3 -> 1)\n}\n")
    _write(tmp_path, "a.apel", 'pure agent f(x: R[2]) -> R[1] { model "m.geo:F" }\n')
    (problem,) = run_checks(compile_file(tmp_path / "a.apel")[0])
    text = problem.render()
    assert f"{tmp_path / 'a.apel'}:1:12: error: agent 'f': dimension mismatch in linear" in text
    assert f"{tmp_path / 'm.geo'}:3:20: note: in model 'm.geo:F'" in text
    assert "    3 |   return linear(h, 3 -> 1)\n      |                    ^" in text


# --- 3. ?weights=FILE ----------------------------------------------------------------------------------

TWO = """manifold H = poincare(c = 1.0)
model Encoder(x: H[2]) -> H[3] {
  return mobius_tanh(mobius_linear(x, 2 -> 3))
}
model Classifier(x: H[2]) -> R[1] {
  return coords(linear(logmap0(Encoder(x)), 3 -> 1))
}
"""
ENC = """manifold H = poincare(c = 1.0)
pure agent enc(x: H[2]) -> H[3] {{ model "two.geo:Encoder?weights={file}" }}
workflow W(x: H[2]) -> H[3] {{ let y = call enc(x)  return y }}
"""


def _encoder_weights(tmp_path, bias: np.ndarray | None = None):
    """A file of Encoder's parameters only (seed 1's, as if trained), and those tensors."""
    import geomir

    mod = geomir.compile(_write(tmp_path, "two.geo", TWO), target="torch")
    params = mod.init_params(1, torch.float64, mod.FUNCTION_PARAMS["Encoder"])
    if bias is not None:
        params["Encoder.mobius_linear0.bias"] = torch.tensor(bias)
    np.savez(tmp_path / "enc.npz", **{k: v.numpy() for k, v in params.items()})
    return mod, params


def test_weights_of_the_one_model_the_agent_runs(tmp_path, store):
    mod, params = _encoder_weights(tmp_path)
    x = [0.1, 0.2]
    result = Engine(program(tmp_path / "a.apel", ENC.format(file="enc.npz")), store).start({"x": x})
    assert result.status == "completed", result.error
    held = {k: v.float() for k, v in params.items()}  # an f32 model holds the file's values in float32
    want = mod.Encoder(held, torch.tensor(x, dtype=torch.float32)).double().numpy()
    assert np.allclose(np.asarray(result.output), want, rtol=0, atol=1e-7)


def test_a_ball_point_off_the_ball_is_refused(tmp_path, store):
    _encoder_weights(tmp_path, bias=np.full(3, 0.9))  # |b| = 1.56 >= 1
    with pytest.raises(AgentUnavailable) as info:
        Engine(program(tmp_path / "a.apel", ENC.format(file="enc.npz")), store).start({"x": [0.1, 0.2]})
    assert "'Encoder.mobius_linear0.bias' is not a point of the Poincaré ball (|x| = 1.55885" in info.value.message


def test_a_model_that_stops_compiling_before_the_run_is_located_in_its_file(tmp_path, store):
    """The engine's 'cannot be loaded' kept only the message of a .geo error (the model file
    changed after the program was checked): its file:line:col is a note now, as at --check."""
    _write(tmp_path, "m.geo", PRECISE)
    prog = program(tmp_path / "a.apel", AGENT.format(t_in="R[2, f64]", t_out="R[1, f64]"))
    _write(tmp_path, "m.geo", PRECISE.replace("2 -> 1", "3 -> 1"))
    with pytest.raises(AgentUnavailable) as info:
        Engine(prog, store).start({"x": [0.1, 0.2]})
    (note,) = [n for n in info.value.notes if n.span is not None and n.span.source.name.endswith("m.geo")]
    assert (note.span.line, note.message) == (2, "in model 'm.geo:Precise'")
