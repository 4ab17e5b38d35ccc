"""What a reader profiling the generated modules found, fixed in the emitter and in cse:

* ``jet.coeff`` k >= 2 of a jet made by the autodiff reference (``derivatives.directional``,
  in the derivative convention already) was scaled by k! a second time; on runtime jets it
  scaled all K+1 coefficients to read one;
* ``sin`` and ``cos`` of one jet ran the coupled recurrence twice (``taylor.sincos`` makes both);
* a plain point used by several jet ops was lifted to a constant jet at each use;
* ``coords`` (the identity) was a call or a copy line;
* a module imported ``taylor`` (about 15 ms) and ``math`` without using them; the JAX module's
  docstring promised ``*Module`` classes it does not have; the CONTRACTS comment said the
  table is empty without verify-contracts (its ``proved`` lists are);
* cse kept two calls of the same model with the same input.

The values stay those of the old code (the fixed coefficient: those of nested torch.func jvp).
"""

from __future__ import annotations

import ast
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import geomir
from geomir.compiler import compile_module
from geomir.ir import parse_ir
from geomir.pipeline import DEFAULT_PIPELINE, run_pipeline

from .helpers import ROOT

ALL_EXAMPLES = sorted((ROOT / "examples").rglob("*.geo"))
OPTIONAL_IMPORTS = ("math", "taylor")  # what a module imports only where its code reads it

# F = tanh(W2 tanh(W1 x + b1)), and D reads coefficients 1, 2 and 4 of its order-4 jet.
COEFF_IR = """
func.func @F(%x: !geo.point<euclidean, 2, f64>) -> !geo.point<euclidean, 3, f64> {
  %w1 = geo.param "F.w1" init "glorot_uniform" : tensor<5x2xf64>
  %b1 = geo.param "F.b1" init "normal" : tensor<5xf64>
  %0 = geo.linear %x, %w1 : !geo.point<euclidean, 2, f64>, tensor<5x2xf64> -> !geo.point<euclidean, 5, f64>
  %1 = geo.bias %0, %b1 : !geo.point<euclidean, 5, f64>, tensor<5xf64> -> !geo.point<euclidean, 5, f64>
  %2 = geo.tanh %1 : !geo.point<euclidean, 5, f64> -> !geo.point<euclidean, 5, f64>
  %w2 = geo.param "F.w2" init "glorot_uniform" : tensor<3x5xf64>
  %3 = geo.linear %2, %w2 : !geo.point<euclidean, 5, f64>, tensor<3x5xf64> -> !geo.point<euclidean, 3, f64>
  %4 = geo.tanh %3 : !geo.point<euclidean, 3, f64> -> !geo.point<euclidean, 3, f64>
  func.return %4 : !geo.point<euclidean, 3, f64>
}
func.func @D(%x: !geo.point<euclidean, 2, f64>, %v: !geo.tangent<euclidean, 2, f64>) -> (!geo.tangent<euclidean, 3, f64>, !geo.tangent<euclidean, 3, f64>, !geo.tangent<euclidean, 3, f64>) {
  %0 = jet.directional @F(%x) along %v wrt 0 order 4 : (!geo.point<euclidean, 2, f64>), !geo.tangent<euclidean, 2, f64> -> !jet.jet<4, !geo.point<euclidean, 3, f64>>
  %1 = jet.coeff %0 index 1 : !jet.jet<4, !geo.point<euclidean, 3, f64>> -> !geo.tangent<euclidean, 3, f64>
  %2 = jet.coeff %0 index 2 : !jet.jet<4, !geo.point<euclidean, 3, f64>> -> !geo.tangent<euclidean, 3, f64>
  %3 = jet.coeff %0 index 4 : !jet.jet<4, !geo.point<euclidean, 3, f64>> -> !geo.tangent<euclidean, 3, f64>
  func.return %1, %2, %3 : !geo.tangent<euclidean, 3, f64>, !geo.tangent<euclidean, 3, f64>, !geo.tangent<euclidean, 3, f64>
}
"""


def _nested_jvp(f, x, v, order: int) -> list[torch.Tensor]:
    """d^k/dt^k f(x + t v) at t = 0, k = 0..order, by nested torch.func.jvp."""
    g = lambda t: f(x + t * v)  # noqa: E731
    ds = [g]
    for _ in range(order):
        prev = ds[-1]
        ds.append(lambda t, prev=prev: torch.func.jvp(prev, (t,), (torch.ones_like(t),))[1])
    t0 = torch.zeros((), dtype=x.dtype)
    return [d(t0) for d in ds]


@pytest.mark.parametrize("pipeline", ["default", "reference"])
def test_jet_coeff_reads_the_kth_derivative_on_both_paths(tmp_path: Path, pipeline: str) -> None:
    passes = list(DEFAULT_PIPELINE) if pipeline == "default" else ["cse", "dce"]
    module = run_pipeline(parse_ir(COEFF_IR), passes)
    m = compile_module(module, "torch", cache_dir=tmp_path)
    p = m.init_params(seed=3, dtype=torch.float64)
    rng = np.random.default_rng(0)
    x = torch.tensor(rng.normal(size=(4, 2)))
    v = torch.tensor(rng.normal(size=(4, 2)))
    got = m.D(p, x, v)
    w1, b1, w2 = p["F.w1"], p["F.b1"], p["F.w2"]
    want = _nested_jvp(lambda y: torch.tanh(torch.tanh(y @ w1.T + b1) @ w2.T), x, v, 4)
    for g, k in zip(got, (1, 2, 4)):
        torch.testing.assert_close(g, want[k], rtol=1e-12, atol=1e-12)


def test_jet_coeff_scales_only_the_coefficient_it_reads() -> None:
    from geomir.backends.torch.emitter import emit

    code = emit(run_pipeline(parse_ir(COEFF_IR), list(DEFAULT_PIPELINE)), "<coeff>")
    body = code.split("def D(", 1)[1].split("\n\n\n", 1)[0]
    assert "to_derivatives(" not in body, body
    assert re.search(r"= v\d+\[2\] \* 2\.0$", body, re.M) and re.search(r"= v\d+\[4\] \* 24\.0$", body, re.M), body


SINCOS = """
manifold T = torus(units = radians)
model Phase(theta: T[4]) -> R[2] {
  let s = sin(coords(theta))
  let c = cos(coords(theta))
  return linear(tanh(s * c + s), 4 -> 2)
}
derive d_phase = directional(Phase, order = 4)
derive j_phase = jvp(Phase)
"""

LIFTS = """
manifold H = poincare(c = 1.0)
model Agg(x: H[4], y: H[4], z: H[4]) -> tangent H[4] {
  let my = tanh(linear(logmap(y, x), 4 -> 4))
  return logmap(x, y) + my + logmap(x, z) + logmap(z, x)
}
derive d_agg = directional(Agg, order = 2)
"""


@pytest.mark.parametrize("target", ["torch", "jax"])
def test_sin_and_cos_of_one_jet_are_one_sincos(target: str) -> None:
    code = geomir.emit_source(SINCOS, target)
    for fn in ("d_phase", "j_phase"):
        body = code.split(f"def {fn}(", 1)[1].split("\n\n\n", 1)[0]
        assert body.count("taylor.sincos(") == 1, body
        assert "taylor.sin(" not in body and "taylor.cos(" not in body, body


@pytest.mark.parametrize("target", ["torch", "jax"])
def test_a_plain_point_is_lifted_once_per_jet(target: str) -> None:
    code = geomir.emit_source(LIFTS, target)
    body = code.split("def d_agg(", 1)[1].split("\n\n\n", 1)[0]
    assert len(re.findall(r"taylor\.lift\(y, ", body)) == 1, body
    assert len(re.findall(r"taylor\.lift\(z, ", body)) == 1, body
    assert re.search(r"^    y_lifted = taylor\.lift\(y, v\d+\)$", body, re.M), body


def _inputs(f_name: str, m, dtype=torch.float64):
    rng = np.random.default_rng(7)
    n = 32
    if f_name.endswith("phase"):
        theta = torch.tensor(rng.uniform(0, 2 * math.pi, (n, 4)), dtype=dtype)
        return (theta, torch.tensor(rng.normal(size=(n, 4)), dtype=dtype))
    ball = m.poincare_c1
    pts = [ball.expmap0(torch.tensor(0.4 * rng.normal(size=(n, 4)), dtype=dtype)) for _ in range(3)]
    return (*pts, torch.tensor(rng.normal(size=(n, 4)), dtype=dtype))


@pytest.mark.parametrize("source,fn,order", [(SINCOS, "d_phase", 4), (SINCOS, "j_phase", 1), (LIFTS, "d_agg", 2)])
def test_the_shared_values_keep_the_numbers(tmp_path: Path, source: str, fn: str, order: int) -> None:
    """float64: the Taylor-mode code against nested torch.func jvp of the plain model."""
    m = geomir.compile(source, target="torch", cache_dir=tmp_path)
    p = m.init_params(seed=1, dtype=torch.float64)
    args = _inputs(fn, m)
    got = getattr(m, fn)(p, *args)
    model = m.Phase if "phase" in fn else m.Agg
    *points, v = args
    want = _nested_jvp(lambda y: model(p, y, *points[1:]), points[0], v, order)
    if fn == "j_phase":
        got = list(got)
    for k in range(order + 1):
        torch.testing.assert_close(got[k], want[k], rtol=1e-10, atol=1e-10)


def _imported(code: str) -> dict[str, int]:
    """Module-level import name -> its line."""
    out = {}
    for node in ast.parse(code).body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for a in node.names:
                out[(a.asname or a.name).split(".")[0]] = node.lineno
    return out


def _read_names(code: str) -> set[str]:
    return {n.id for n in ast.walk(ast.parse(code)) if isinstance(n, ast.Name)}


@pytest.mark.parametrize("target", ["torch", "jax"])
@pytest.mark.parametrize("path", ALL_EXAMPLES, ids=[p.stem for p in ALL_EXAMPLES])
def test_a_module_imports_the_optional_names_only_where_it_reads_them(path: Path, target: str) -> None:
    code = geomir.emit_source(path, target)
    imported, read = _imported(code), _read_names(code)
    for name in OPTIONAL_IMPORTS:
        assert (name in imported) == (name in read), f"{name}: imported {name in imported}, read {name in read}"
    assert {"model", "runtime", "derivatives"} <= set(imported)  # the module's own API, always there


def test_a_module_without_derivatives_runs_without_taylor(tmp_path: Path) -> None:
    m = geomir.compile(ROOT / "examples" / "hyperbolic_mlp.geo", target="torch", cache_dir=tmp_path)
    assert not hasattr(m, "taylor") and not hasattr(m, "math")
    x = m.poincare_c1.expmap0(0.1 * torch.randn(4, 16))
    assert m.HyperbolicMLP(m.init_params(0), x).shape == (4, 8)


@pytest.mark.parametrize("target", ["torch", "jax"])
def test_the_module_docstring_and_comments_say_what_is_there(target: str) -> None:
    code = geomir.emit_source(ROOT / "examples" / "hyperbolic_mlp.geo", target, passes="cse,dce")
    doc = ast.get_docstring(ast.parse(code))
    has_classes = "class HyperbolicMLPModule(" in code
    assert has_classes == (target == "torch")
    assert ("*Module classes" in doc) == has_classes, doc
    # without verify-contracts the table is not empty: the declared contracts, nothing proved
    assert "'declared': ['#contract.lipschitz<6.0, radius = 0.5>'], 'proved': []" in code
    assert "Empty when the pipeline did not run it" not in code
    pinn = geomir.emit_source(ROOT / "examples" / "pinn_laplacian.geo", target)
    assert "# Manifolds" not in pinn  # no manifold objects, no section for them


@pytest.mark.parametrize("target", ["torch", "jax"])
@pytest.mark.parametrize("path", ALL_EXAMPLES, ids=[p.stem for p in ALL_EXAMPLES])
def test_coords_is_neither_a_call_nor_a_copy(path: Path, target: str) -> None:
    code = geomir.emit_source(path, target)
    assert "taylor.coords(" not in code
    assert not re.search(r"^    v\d+ = [A-Za-z_]\w*$", code, re.M), "a copy line for coords"


def test_a_model_called_twice_on_one_input_runs_once(tmp_path: Path) -> None:
    src = ("model F(x: R[4]) -> R[4] {\n  return tanh(linear(x, 4 -> 4))\n}\n"
           "model G(x: R[4]) -> R[4] {\n  let a = F(x)\n  let b = F(x)\n  return a + b\n}\n")
    code = geomir.emit_source(src, "torch")
    assert code.split("def G(", 1)[1].count("F(params, x)") == 1
    m = geomir.compile(src, target="torch", cache_dir=tmp_path)
    p = m.init_params(0, dtype=torch.float64)
    x = torch.randn(5, 4, dtype=torch.float64)
    assert torch.equal(m.G(p, x), 2 * m.F(p, x))
