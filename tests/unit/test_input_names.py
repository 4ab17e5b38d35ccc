"""Inputs keep their source names (geomir.input_names): xDSL hints drop a ``_<digits>``
ending, so ``model M(x_1, x)`` reached the backends as ``M(x, x)`` and was emitted as
``def M(params, x, x_1)``, the inputs swapped for a call by name, and its IR printed
``%x`` for ``x_1`` and ``%x_1`` for ``x``."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys

import numpy as np
import pytest

import geomir as g
from geomir.backends.common.autodiff import ModelInputError
from geomir.compiler import frontend
from geomir.ir import parse_ir, print_ir

torch = pytest.importorskip("torch")

SWAPPED = """\
model M(x_1: R[2], x: R[2]) -> R[2] {
  let x_2 = x_1 * x_1
  return x - x_2
}
derive dM = jvp(M)
"""


def _compiled(target):
    return g.compile(SWAPPED, target=target)


@pytest.mark.parametrize("target", ["torch", "jax"])
def test_a_model_is_called_by_its_input_names(target):
    m = _compiled(target)
    assert list(inspect.signature(m.M).parameters) == ["params", "x_1", "x"]
    conv = torch.tensor if target == "torch" else np.asarray
    P = m.init_params(0)
    a, b = conv(np.array([2.0, 3.0], np.float32)), conv(np.array([1.0, 1.0], np.float32))
    expected = np.array([1.0, 1.0]) - np.array([4.0, 9.0])  # x - x_1 * x_1 with x_1 = a, x = b
    for y in (m.M(P, a, b), m.M(P, x_1=a, x=b), m.M(P, x=b, x_1=a), m.M(P, a, x=b)):
        np.testing.assert_allclose(np.asarray(y), expected)
    assert list(inspect.signature(m.dM).parameters)[:3] == ["params", "x_1", "x"]


def test_a_wrong_name_is_a_model_input_error():
    m = _compiled("torch")
    P, a = m.init_params(0), torch.ones(2)
    with pytest.raises(ModelInputError, match=r"M\(params, x_1, x\): no input named 'y'"):
        m.M(P, a, y=a)
    with pytest.raises(ModelInputError, match="multiple values for argument 'x_1'"):
        m.M(P, a, x_1=a)
    with pytest.raises(ModelInputError, match=r"input 'x_1'"):
        m.M(P, x_1=torch.ones(3), x=a)
    module = m.MModule(0)
    np.testing.assert_allclose(module(x=a, x_1=2 * a).detach().numpy(), [-3.0, -3.0])


def test_the_ir_spells_the_source_names_and_reads_them_back():
    text = print_ir(frontend(SWAPPED, "swapped.geo"))
    assert '@M(%x_1: !geo.point<euclidean, 2, f32> {geo.name = "x_1"}, %x: !geo.point<euclidean, 2, f32>)' in text
    assert "%x_2 = geo.mul %x_1, %x_1" in text and "geo.sub %x, %x_2" in text
    assert print_ir(parse_ir(text)) == text
    plain = print_ir(frontend("model N(x: R[2], y: R[2]) -> R[2] {\n  return x - y\n}\n", "plain.geo"))
    assert "geo.name" not in plain  # names a hint holds print as before


def test_hand_written_ir_keeps_its_argument_names(tmp_path):
    text = """builtin.module {
  func.func @M(%x_1: !geo.point<euclidean, 2, f64>, %x: !geo.point<euclidean, 2, f64>) -> !geo.point<euclidean, 2, f64> {
    %0 = geo.sub %x, %x_1 : !geo.point<euclidean, 2, f64>, !geo.point<euclidean, 2, f64> -> !geo.point<euclidean, 2, f64>
    func.return %0 : !geo.point<euclidean, 2, f64>
  }
}
"""
    path = tmp_path / "hand.mlir"
    path.write_text(text)
    m = g.compile(path, target="torch")
    assert list(inspect.signature(m.M).parameters) == ["params", "x_1", "x"]
    one = torch.ones(2, dtype=torch.float64)
    np.testing.assert_allclose(m.M({}, x=one, x_1=3 * one).numpy(), [-2.0, -2.0])


def test_traced_inputs_keep_their_names():
    @g.trace(x_1=g.R(2, "f64"), x=g.R(2, "f64"))
    def f(x_1, x):
        return x - x_1

    m = f.compile("torch")
    one = torch.ones(2, dtype=torch.float64)
    np.testing.assert_allclose(m.f({}, x=one, x_1=3 * one).numpy(), [-2.0, -2.0])
    assert "%x_1: " in f.ir and '{geo.name = "x_1"}' in f.ir


def test_reports_name_the_input(tmp_path):
    src = tmp_path / "m.geo"
    src.write_text(SWAPPED)
    out = subprocess.run([sys.executable, "-m", "geomir.driver", str(src), "--report=jets", "--wrt", "x_1"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "x_1" in out.stdout
    monotone = "@monotone(x_1, increasing)\n" + SWAPPED.split("derive")[0]
    with pytest.raises(g.GeomirError, match=r"@monotone\(x_1, increasing\)"):
        g.compile(monotone, target="torch")


def test_a_source_name_never_hides_a_global_of_the_generated_module():
    """``poincare_c0_5`` (hinted ``poincare_c0``) is the manifold object's name in the module:
    the input is renamed ``v_poincare_c0_5``, as a hinted name is."""
    m = g.compile("manifold H = poincare(c = 0.5)\n"
                  "model M(poincare_c0_5: H[2], torus_1: R[2]) -> H[2] {\n"
                  "  return expmap0(logmap0(poincare_c0_5))\n}\n", target="torch")
    assert list(inspect.signature(m.M).parameters) == ["params", "v_poincare_c0_5", "torus_1"]
    y = m.M(m.init_params(0), torch.full((2,), 0.1), torch.zeros(2))
    np.testing.assert_allclose(y.numpy(), [0.1, 0.1], rtol=1e-6)


def test_a_derivative_helper_never_takes_an_input_name_and_the_ir_reads_back():
    """jet-expand's helper added a direction `v` next to an input `v`: printed `%v_1`, read
    back as an input named `v_1`, so `--emit=ir` did not round-trip."""
    text = print_ir(frontend("model U(x: R[2], v: R[2]) -> R[1] {\n  return linear(tanh(x) * v, 2 -> 1)\n}\n"
                             "derive h = hvp(U, wrt = x)\n", "v.geo"))
    from geomir.pipeline import DEFAULT_PIPELINE, run_pipeline

    lowered = print_ir(run_pipeline(parse_ir(text), list(DEFAULT_PIPELINE)))
    assert "@U__jvp_wrt0(%x: !geo.point<euclidean, 2, f32>, %v: !geo.point<euclidean, 2, f32>, %v_: " in lowered
    assert print_ir(parse_ir(lowered)) == lowered


def test_non_ascii_and_colliding_names_bind_by_keyword_and_read_back():
    @g.trace(é=g.R(2, "f64"), e=g.R(2, "f64"))
    def f(é, e):
        return é - 2 * e

    assert print_ir(parse_ir(f.ir)) == f.ir  # `é` prints as %e {geo.name = "é"}, `e` as %e_1 {geo.name = "e"}
    m = f.compile("torch")
    assert list(inspect.signature(m.f).parameters) == ["params", "é", "e"]
    one = torch.ones(2, dtype=torch.float64)
    np.testing.assert_allclose(m.f({}, é=one, e=3 * one).numpy(), [-5.0, -5.0])


def test_a_renamed_input_never_takes_another_inputs_name():
    m = g.compile("model M(torch: R[2], v_torch: R[2]) -> R[2] {\n  return torch - v_torch\n}\n", target="torch")
    assert list(inspect.signature(m.M).parameters) == ["params", "v_torch_", "v_torch"]
    one = torch.ones(2)
    np.testing.assert_allclose(m.M({}, v_torch=one, v_torch_=3 * one).numpy(), [2.0, 2.0])
    with pytest.raises(ModelInputError, match="no input named 'torch' .*renamed: 'v_torch_'"):
        m.M({}, torch=one, v_torch=one)


T = "!geo.point<euclidean, 2, f32>"


def _one_function(args: str, attrs: str = "") -> str:
    return (f'"builtin.module"() ({{\n  "func.func"() <{{sym_name = "M", function_type = ({T}, {T}) -> {T}{attrs}}}> ({{\n'
            f"  ^bb0({args}):\n    \"func.return\"(%a) : ({T}) -> ()\n  }}) : () -> ()\n}}) : () -> ()\n")


@pytest.mark.parametrize("attrs, message", [
    ('[{geo.name = "x_1"}]', "arg_attrs must be an array of one dictionary per input (2)"),
    ("[{geo.name = 3}, {}]", "geo.name must be a non-empty string"),
    ("[5, 6]", "should be of base attribute dictionary"),
])
def test_malformed_arg_attrs_are_invalid_ir(attrs, message):
    with pytest.raises(g.GeomirError, match=re.escape(message)):
        parse_ir(_one_function(f"%a: {T}, %b: {T}", f", arg_attrs = {attrs}"), "m.mlir")


def test_a_written_name_attribute_wins_and_numbered_inputs_stay_unnamed():
    from geomir.input_names import input_names

    f = parse_ir(_one_function(f"%x_1: {T}, %b: {T}", ', arg_attrs = [{geo.name = "x"}, {}]').replace("%a", "%x_1"))
    assert input_names(next(iter(f.ops))) == ["x", "b"]
    numbered = parse_ir(_one_function(f"%0: {T}, %1: {T}").replace("%a", "%0"))
    assert "geo.name" not in print_ir(numbered)


def test_a_model_named_like_a_helper_is_no_clash(tmp_path):
    """A model `_jet_report_M` (report helper's name) or `f__jvp_wrt0` (the categorical API's)
    was a 'Redefinition of symbol' internal error."""
    src = tmp_path / "m.geo"
    src.write_text("model _jet_report_M(x: R[2]) -> R[2] {\n  return x\n}\n"
                   "model M(x: R[2]) -> R[2] {\n  return tanh(_jet_report_M(x))\n}\n")
    from geomir.jet_report import report_jets

    (report,) = report_jets(src, model="M", batch=4)
    assert report.model == "M"

    @g.trace(x=g.R(2, "f64"))
    def f__jvp_wrt0(x):
        return g.tanh(x)

    @g.trace(x=g.R(2, "f64"))
    def f(x):
        return f__jvp_wrt0(x) * 2.0

    x, v = torch.full((2,), 0.3, dtype=torch.float64), torch.ones(2, dtype=torch.float64)
    _, t = g.jvp(f, x, v)
    np.testing.assert_allclose(t.numpy(), 2 / np.cosh(0.3) ** 2 * np.ones(2), rtol=1e-12)
