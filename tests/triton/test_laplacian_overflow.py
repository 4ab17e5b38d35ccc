"""Derivatives of a model whose ``exp`` overflows: torch (fused and unfused), JAX and Triton
(interpreter) give the same answer, the one backends/common/taylor.py describes ("Overflow").

An overflowing exp stands for a finite real e^u beyond the dtype's range. Each jet
coefficient of exp is e^(u_0) times an exact bracket (f1: e f1, f2: e (f2 + sum_d f1_d^2/2);
ordinary jets: e z_k with z = exp(x - x_0)), so the rules give +-inf by the bracket's sign,
0 where the bracket is exactly 0 (a unit that does not depend on x), and NaN only where the
result is undefined in floating point: overflowed terms of opposite signs meeting in a later
sum (the model's value is then NaN too) or an underflowed exp times an overflowed bracket.
``check_finite=True`` reports the first inf at the exp layer's source line on every target.

Before the fix every rule computed phi' f2 + phi''/2 sum_d f1_d^2 with f2 = 0 after a linear
map of the seed: inf * 0 = NaN for every overflowing exp, and the backends disagreed after a
second exp layer (Triton inf where torch gave NaN: torch's phi''/2 came from the order-2
recurrence, NaN there, Triton's from e/2).
"""

from __future__ import annotations

import os

os.environ["TRITON_INTERPRET"] = "1"  # read when @triton.jit decorates: before the imports

import math
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("triton")

import jax.numpy as jnp

import geomir
from geomir.backends.triton import runtime
from geomir.diagnostics import NonFiniteError

SRC = """model F(x: R[2]) -> R[1] {
  return linear(exp(linear(x, 2 -> 4)), 4 -> 1)
}
derive lap_f = laplacian(F)
derive d2_f = directional(F, order = 2)
"""
W1 = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, 0.0]])
W2 = np.array([[1.0, -2.0, 3.0, 0.5]])
X = np.array([[0.5, -0.3],    # nothing overflows
              [100.0, 1.0],   # unit 0 (w2 = +1): +inf
              [1.0, 100.0],   # unit 1 (w2 = -2): -inf
              [100.0, 100.0],  # units 0 and 1, opposite signs: NaN (F too)
              [-100.0, 1.0],  # unit 2 (w2 = +3): +inf
              [-100.0, 100.0]])  # units 1 and 2: NaN
V = np.array([[0.3, 0.7], [0.0, 1.0], [1.0, 0.0], [0.6, -0.8], [0.0, 1.0], [1.0, 1.0]])


def _params(b4: float = 0.0):
    """The weights above; b4 is the bias of unit 3, whose weight row is 0 (a constant unit)."""
    return {"F.linear0.weight": W1, "F.linear0.bias": np.array([0.0, 0.0, 0.0, b4]),
            "F.linear1.weight": W2, "F.linear1.bias": np.zeros(1)}


def _expected(b4: float, dtype) -> tuple[np.ndarray, np.ndarray]:
    """(Laplacian, second directional derivative along V) in closed form: the sum over the
    units of w2_j e^(u_j) |W1_j|^2 (resp. (W1_j . v)^2), each term in float64 and then
    rounded to dtype (a term beyond its range is +-inf; the sum of +inf and -inf is NaN)."""
    u = X @ W1.T + np.array([0.0, 0.0, 0.0, b4])
    with np.errstate(over="ignore", invalid="ignore"):
        e = np.exp(u.astype(np.float64)).astype(dtype)  # overflow as the dtype overflows
        lap_terms = W2[0].astype(dtype) * e * (W1**2).sum(-1).astype(dtype)
        d2_terms = W2[0].astype(dtype) * e * ((V @ W1.T) ** 2).astype(dtype)
        # 0 where the bracket is exactly 0 (e^u 0 = 0), whatever e
        lap_terms = np.where((W1**2).sum(-1) == 0, 0.0, lap_terms)
        d2_terms = np.where((V @ W1.T) ** 2 == 0, 0.0, d2_terms)
        return lap_terms.sum(-1, keepdims=True).astype(dtype), d2_terms.sum(-1, keepdims=True).astype(dtype)


@pytest.fixture(scope="module")
def modules(tmp_path_factory):
    cache = tmp_path_factory.mktemp("overflow")
    out = {t: geomir.compile(SRC, target=t, cache_dir=cache) for t in ("torch", "jax", "triton")}
    out["torch-unfused"] = geomir.compile(SRC, target="torch", passes="insert-transport,jet-expand,cse,dce",
                                          cache_dir=cache)
    return out


def _call(mod, target: str, name: str, params: dict, dtype, *args):
    if target == "jax":
        p = {k: jnp.asarray(v, dtype=dtype) for k, v in params.items()}
        return np.asarray(getattr(mod, name)(p, *(jnp.asarray(a, dtype=dtype) for a in args)))
    tdt = torch.float32 if dtype == np.float32 else torch.float64
    p = {k: torch.tensor(v, dtype=tdt) for k, v in params.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy's overflow warnings in the interpreter
        warnings.simplefilter("error", runtime.TritonFallbackWarning)  # the kernels run, not torch
        return getattr(mod, name)(p, *(torch.tensor(a, dtype=tdt) for a in args)).numpy()


def _same(got: np.ndarray, want: np.ndarray, what: str, rtol: float = 2e-6) -> None:
    """Equal NaN/inf patterns (signs included); finite entries within rtol of the largest
    finite |entry| of their row."""
    assert np.array_equal(np.isnan(got), np.isnan(want)), (what, got.ravel(), want.ravel())
    assert np.array_equal(np.isposinf(got), np.isposinf(want)), (what, got.ravel(), want.ravel())
    assert np.array_equal(np.isneginf(got), np.isneginf(want)), (what, got.ravel(), want.ravel())
    ok = np.isfinite(want)
    scale = np.where(ok, np.abs(want), 0.0).max(-1, keepdims=True)
    err = np.where(ok, np.abs(np.where(ok, got, 0.0) - np.where(ok, want, 0.0)), 0.0)
    assert (err <= rtol * scale).all(), (what, float((err / np.maximum(scale, 1e-300)).max()))


@pytest.mark.parametrize("b4", [0.0, 100.0])
def test_every_target_gives_the_closed_form_where_exp_overflows(modules, b4):
    """float32 on every target (Triton's kernels take float32), float64 on torch and JAX
    (there e^100 is finite: the same rows are finite)."""
    for dtype, targets in ((np.float32, ("torch", "torch-unfused", "jax", "triton")),
                           (np.float64, ("torch", "torch-unfused"))):
        lap_want, d2_want = _expected(b4, dtype)
        if dtype == np.float32:  # the cases the rows were built for
            assert np.isposinf(lap_want[[1, 4], 0]).all() and np.isneginf(lap_want[2, 0])
            assert np.isnan(lap_want[[3, 5], 0]).all() and np.isfinite(lap_want[0, 0])
        for t in targets:
            mod = modules[t.removesuffix("-unfused")] if t != "torch-unfused" else modules[t]
            lap = _call(mod, t.removesuffix("-unfused"), "lap_f", _params(b4), dtype, X)
            d2 = _call(mod, t.removesuffix("-unfused"), "d2_f", _params(b4), dtype, X, V)
            _same(lap, lap_want, f"{t} {dtype.__name__} laplacian b4={b4}")
            _same(d2[2], d2_want, f"{t} {dtype.__name__} d2 b4={b4}")


def test_a_second_exp_layer_agrees_across_targets(modules, tmp_path):
    """exp(linear(exp(linear(x)))): after an overflowing first layer the second one sees
    infinite f1 and f2 (the old rules: NaN on torch and JAX, inf on Triton). Random rows
    and weights, float32: the three targets give the same NaN/inf pattern and values."""
    src = "model G(x: R[2]) -> R[3] {\n  let h = exp(linear(x, 2 -> 3))\n  return exp(linear(h, 3 -> 3))\n}\nderive lap_g = laplacian(G)\n"
    mods = {t: geomir.compile(src, target=t, cache_dir=tmp_path) for t in ("torch", "jax", "triton")}
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((200, 2)) * 10.0 ** rng.uniform(-1, 3, (200, 1))).astype(np.float32)
    params = {k: v.numpy() for k, v in mods["torch"].init_params(seed=0).items()}
    ref = _call(mods["torch"], "torch", "lap_g", params, np.float32, x)
    assert np.isinf(ref).any() and np.isfinite(ref).any()
    for t in ("jax", "triton"):  # the Triton target's bound for generated programs: 1e-4
        _same(_call(mods[t], t, "lap_g", params, np.float32, x), ref, t, rtol=1e-4)


@pytest.mark.parametrize("target", ["torch", "jax", "triton"])
def test_check_finite_reports_the_overflowing_exp(tmp_path, target):
    """The inf is reported at the exp of the fused layer on every target (docs/backends.md,
    Checked execution), naming its linear map, before it reaches the Laplacian."""
    mod = geomir.compile(SRC, target=target, cache_dir=tmp_path, check_finite=True)
    with pytest.raises(NonFiniteError, match=r":2:17: jet\.layer \(geo\.exp, after the linear map at "
                                             r".*:2:21\) in @lap_f gave 1 inf"):
        _call(mod, target, "lap_f", _params(), np.float32, X[1:2])


def test_the_exp_rules_give_zero_for_an_exactly_zero_bracket():
    """e^u 0 = 0 for an overflowed e (taylor.exp_times), in the collapsed and ordinary rules
    of torch and JAX alike; a NaN value stays NaN."""
    from geomir.backends.jax import taylor as JT
    from geomir.backends.torch import taylor as TT

    u = np.array([[100.0, 100.0, -200.0, math.nan]], dtype=np.float32)
    f1 = np.array([[[0.0, 2.0, 0.0, 0.0]]], dtype=np.float32)
    f2 = np.array([[0.0, -1.0, 5.0, 0.0]], dtype=np.float32)
    for mod, arr in ((TT, torch.tensor), (JT, jnp.asarray)):
        lap = mod.collapsed.exp(mod.LaplacianJet(arr(u), arr(f1), arr(f2)))
        assert np.array_equal(np.asarray(lap.f1), [[[0.0, np.inf, 0.0, np.nan]]], equal_nan=True)
        assert np.array_equal(np.asarray(lap.f2), [[0.0, np.inf, 0.0, np.nan]], equal_nan=True)
        jet = mod.exp(arr(np.stack([u, f1[0], f2])))
        assert np.array_equal(np.asarray(jet[1]), [[0.0, np.inf, 0.0, np.nan]], equal_nan=True)
        assert np.array_equal(np.asarray(jet[2]), [[0.0, np.inf, 0.0, np.nan]], equal_nan=True)
