"""jet-expand and calls of models (bug hunt 5, stress items 2 and 7). A called model is
evaluated on jets once per kind of arguments, not once per call site, and on an explicit
stack, not one Python frame per call level: a chain of ~1000 models crashed with a
RecursionError (exit 3), and M_i(x) = M_{i-1}(M_{i-1}(x)) grew the derived code as 2^k.
Jets cross calls as private jet functions (``@<model>__jet2_wrt0``, ``@<model>__lap_wrt0``);
stencil jets are still expanded in place."""

from __future__ import annotations

import inspect
import sys

import numpy as np
import pytest
import torch
from xdsl.context import Context
from xdsl.dialects import func

import geomir
from geomir.compiler import frontend
from geomir.diagnostics import IRError
from geomir.passes.jet_expand import JetExpand
from geomir.pipeline import run_pipeline

REFERENCE = "insert-transport,cse,dce"  # no jet-expand: the requests run as nested autodiff
INLINED = "insert-transport,jet-expand,inline-models,jet-fuse,cse,dce"  # the jet functions inlined


def _chain(n: int, derive: str) -> str:
    """M0, then M_i(x) = M_{i-1}(x): a chain of n models, and ``derive`` on the last."""
    s = "model M0(x: R[2]) -> R[1] {\n  return linear(tanh(x), 2 -> 1)\n}\n"
    s += "".join(f"model M{i}(x: R[2]) -> R[1] {{\n  return M{i - 1}(x)\n}}\n" for i in range(1, n))
    return s + f"derive d = {derive.format(f'M{n - 1}')}\n"


def _twice(k: int, derive: str) -> str:
    """M_i(x) = M_{i-1}(M_{i-1}(x)): 2^k paths through M0, and ``derive`` on M_k."""
    s = "model M0(x: R[2]) -> R[2] {\n  return tanh(linear(x, 2 -> 2))\n}\n"
    s += "".join(f"model M{i}(x: R[2]) -> R[2] {{\n  return M{i - 1}(M{i - 1}(x))\n}}\n" for i in range(1, k + 1))
    return s + f"derive d = {derive.format(f'M{k}')}\n"


def _functions(module) -> dict[str, func.FuncOp]:
    return {f.sym_name.data: f for f in module.ops if isinstance(f, func.FuncOp)}


@pytest.mark.parametrize("derive", ["laplacian({})", "directional({}, order = 2)", "hvp({})"])
def test_a_deep_chain_of_calls_expands_without_a_python_frame_per_level(derive):
    """The pass under a recursion limit 60 frames above the caller's depth, on a chain of
    120 models (before: a frame per level, a RecursionError at ~1000 models by default)."""
    module = frontend(_chain(120, derive), "chain.geo")
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(len(inspect.stack(0)) + 60)
    try:
        JetExpand().apply(Context(), module)
    finally:
        sys.setrecursionlimit(limit)
    module.verify()
    assert "jet." not in str(_functions(module)["M119"])  # the models themselves are untouched


@pytest.mark.parametrize("derive, kind", [("laplacian({})", "lap"), ("jvp({})", "jet1"),
                                          ("directional({}, order = 1)", "jet1"),
                                          ("directional({}, order = 2)", "jet2")])
def test_a_model_called_twice_per_level_is_evaluated_once_per_level(derive, kind):
    """k = 12: one jet function per model, after it; the derived function calls M11's
    twice (before: 4096 copies of M0's body, seconds of compile time)."""
    module = geomir.to_ir(_twice(12, derive), passes="jet-expand")
    names = [f.sym_name.data for f in module.ops if isinstance(f, func.FuncOp)]
    for i in range(12):
        made = _functions(module)[f"M{i}__{kind}_wrt0"]
        assert made.sym_visibility.data == "private"
        assert names.index(f"M{i}__{kind}_wrt0") == names.index(f"M{i}") + 1  # callees before callers
    d = _functions(module)["d"]
    calls = [op.callee.string_value() for op in d.walk() if isinstance(op, func.CallOp)]
    assert calls == [f"M11__{kind}_wrt0"] * 2
    assert sum(1 for _ in module.walk()) < 300


def test_requests_of_one_kind_share_the_jet_functions_and_dce_keeps_them():
    source = _twice(2, "jvp({})") + "derive e = directional(M1, order = 1)\n"
    funcs = _functions(geomir.to_ir(source))  # the default pipeline: jet-fuse, cse, dce after jet-expand
    assert sorted(n for n in funcs if "__" in n) == ["M0__jet1_wrt0", "M1__jet1_wrt0"]
    for request, callee in (("d", "M1__jet1_wrt0"), ("e", "M0__jet1_wrt0")):
        assert [op.callee.string_value() for op in funcs[request].walk() if isinstance(op, func.CallOp)] == [callee] * 2


def test_a_dead_call_makes_no_jet_function():
    source = """model A(x: R[2]) -> R[2] {
  return tanh(linear(x, 2 -> 2))
}
model B(x: R[2]) -> R[2] {
  let unused = A(x)
  return sin(x)
}
derive d = jvp(B)
"""
    funcs = _functions(geomir.to_ir(source, passes="jet-expand"))
    assert not [n for n in funcs if "__" in n]


PROGRAM = """manifold H = poincare(c = 1.0)
model A(x: R[2]) -> R[2] {
  return tanh(linear(x, 2 -> 2))
}
model Const(x: R[2], y: R[2]) -> R[2] {
  return sin(linear(y, 2 -> 2))
}
model B(x: R[2], y: R[2]) -> R[2] {
  let a = A(x)
  return a * Const(x, y) + A(a) + A(a) + Const(y, a) + A(y)
}
model Ball(p: H[2], x: R[2]) -> tangent H[2] {
  let q = mobius_scalar(linear(B(x, x), 2 -> 1), p)
  return logmap(p, mobius_add(p, q))
}
model Top(x: R[2], y: R[2], p: H[2]) -> R[1] {
  let v = B(B(y, x), A(x))
  return linear(exp(-0.5 * v * v) + coords(Ball(p, v)), 2 -> 1)
}
derive d1 = directional(Top, order = 1)
derive d2 = directional(Top, wrt = y, order = 2)
derive lap = laplacian(Top)
derive hv = hvp(Top, wrt = y)
derive jv = jvp(Top, wrt = p)
derive bih = biharmonic(Top)
"""
"""Calls with a jet in either argument, a callee whose result does not depend on the jet,
one called twice on the same value, through a manifold model, every forward request."""


def _outputs(module, name, args) -> tuple:
    out = getattr(module, name)(module.init_params(seed=1, dtype=torch.float64), *args)
    return out if isinstance(out, tuple) else (out,)


def test_jet_functions_compute_the_autodiff_reference_and_inline_models_keeps_the_numbers():
    """torch, float64: within 1e-10 of nested autodiff (biharmonic, expanded in place as
    before, is left to the slower tests); inline-models after jet-expand inlines the jet
    functions and computes the same numbers."""
    jets = geomir.compile(PROGRAM, target="torch")
    assert hasattr(jets, "A__jet1_wrt0") and hasattr(jets, "B__lap_wrt0_1")
    inlined = geomir.compile(PROGRAM, target="torch", passes=INLINED)
    ref = geomir.compile(PROGRAM, target="torch", passes=REFERENCE)
    g = torch.Generator().manual_seed(0)
    x, y, v = (0.5 * torch.randn(3, 2, generator=g, dtype=torch.float64) for _ in range(3))
    p = ref.poincare_c1.expmap0(0.3 * torch.randn(3, 2, generator=g, dtype=torch.float64))
    calls = {"d1": (x, y, p, v), "d2": (x, y, p, v), "lap": (x, y, p), "hv": (x, y, p, v),
             "jv": (x, y, p, ref.poincare_c1.proju(p, v)), "bih": (x, y, p)}
    for name, args in calls.items():
        got = _outputs(jets, name, args)
        for a, b in zip(_outputs(inlined, name, args), got, strict=True):
            torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-12, msg=name)
        if name != "bih":
            for a, b in zip(_outputs(ref, name, args), got, strict=True):
                assert float((a - b).abs().max()) <= 1e-10 * max(float(a.abs().max()), 1.0), name


def test_models_defined_after_their_callers_in_mlir(tmp_path):
    """.mlir input may define a caller first: the jet functions go after their models, and
    the code runs as the .geo program's does."""
    source = _twice(3, "laplacian({})")
    module = geomir.to_ir(source, passes="")
    models = [f for f in module.ops if isinstance(f, func.FuncOp)]
    for f in models:
        f.detach()
    module.body.block.add_ops(reversed(models))  # d, M3, M2, M1, M0
    path = tmp_path / "reversed.mlir"
    path.write_text(str(module))
    mlir, geo = geomir.compile(path, target="torch"), geomir.compile(source, target="torch")
    params = geo.init_params(seed=1, dtype=torch.float64)
    x = torch.linspace(-1, 1, 6, dtype=torch.float64).reshape(3, 2)
    np.testing.assert_array_equal(mlir.d(params, x).numpy(), geo.d(params, x).numpy())


def test_a_cycle_is_named_when_the_pass_runs_alone():
    """The pipeline rejects recursive models first; the pass alone (xdsl-opt) names the cycle."""
    text = """builtin.module {
  func.func @A(%x: !geo.point<euclidean, 2, f32>) -> !geo.point<euclidean, 2, f32> {
    %y = func.call @B(%x) : (!geo.point<euclidean, 2, f32>) -> !geo.point<euclidean, 2, f32>
    func.return %y : !geo.point<euclidean, 2, f32>
  }
  func.func @B(%x: !geo.point<euclidean, 2, f32>) -> !geo.point<euclidean, 2, f32> {
    %y = func.call @A(%x) : (!geo.point<euclidean, 2, f32>) -> !geo.point<euclidean, 2, f32>
    func.return %y : !geo.point<euclidean, 2, f32>
  }
  func.func @d(%x: !geo.point<euclidean, 2, f32>, %v: !geo.tangent<euclidean, 2, f32>) -> !jet.jet<1, !geo.point<euclidean, 2, f32>> {
    %j = jet.directional @A(%x) along %v wrt 0 order 1 : (!geo.point<euclidean, 2, f32>), !geo.tangent<euclidean, 2, f32> -> !jet.jet<1, !geo.point<euclidean, 2, f32>>
    func.return %j : !jet.jet<1, !geo.point<euclidean, 2, f32>>
  }
}"""
    module = frontend(text, "rec.mlir")
    with pytest.raises(IRError, match=r"models call each other in a cycle: @A -> @B -> @A"):
        JetExpand().apply(Context(), module)
    with pytest.raises(IRError, match="cycle"):
        run_pipeline(frontend(text, "rec.mlir"), ["jet-expand"])
