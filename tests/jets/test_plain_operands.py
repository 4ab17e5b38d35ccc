"""A jet combined with a plain value (an input the derivative does not move, or a value
computed from one): ``add``, ``sub``, ``mul`` and ``div`` call the runtime's plain-operand
helpers (``taylor.add_plain`` ...: O(K), no constant jet) instead of lifting the value to
(y, 0, ..., 0) and running the O(K^2) rules on zeros. Oracles: the lifted rules (the same
numbers), torch.func (nested jvp; the Hessian's trace), and JAX; ordinary and collapsed
jets; a plain value with fewer batch axes than the jet, and with more."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

import geomir
from geomir.backends.common import pyemit
from geomir.backends.common import taylor as common
from geomir.backends.torch import taylor

from . import x64  # noqa: F401  (fixture: jax float64)

FORMS = [("add", 0), ("add", 1), ("sub", 0), ("sub", 1), ("mul", 0), ("mul", 1), ("div", 0)]
"""(primitive, position of the jet operand) with a plain-operand helper."""


def test_the_emitter_and_the_runtime_name_the_same_helpers():
    assert pyemit._PLAIN_FORMS == common.PLAIN_FORMS
    for helpers in common.PLAIN_FORMS.values():
        for name in filter(None, helpers):
            assert name in common.HELPERS and callable(getattr(taylor, name))


def _lifted(prim: str, j: int, a, y):
    """The rule on the lifted constant: what the emitter wrote before the helpers."""
    if isinstance(a, common.LaplacianJet):
        c = taylor.laplacian_lift(y, a)
        rule = taylor.COLLAPSED_RULES[prim]
    else:
        c = taylor.lift(y, a)
        rule = taylor.RULES[prim]
    return rule(a, c) if j == 0 else rule(c, a)


def _helper(prim: str, j: int):
    return getattr(taylor, common.PLAIN_FORMS[prim][j])


@pytest.mark.parametrize("prim, j", FORMS)
@pytest.mark.parametrize("y_shape", [(5, 3), (3,), (1, 3)])
def test_helpers_equal_the_lifted_rules(prim, j, y_shape):
    g = torch.Generator().manual_seed(len(y_shape))
    a = torch.randn(5, 5, 3, dtype=torch.float64, generator=g)  # K = 4, batch 5, n = 3
    y = torch.rand(*y_shape, dtype=torch.float64, generator=g) + 0.5
    got, ref = _helper(prim, j)(a, y), _lifted(prim, j, a, y)
    assert got.shape == ref.shape and torch.allclose(got, ref, rtol=1e-14, atol=0)
    lap = common.LaplacianJet(a[0], a[1:4], a[4])
    got, ref = _helper(prim, j)(lap, y), _lifted(prim, j, lap, y)
    for part, (g_, r_) in enumerate(zip(got, ref, strict=True)):
        r_ = r_.expand(g_.shape) if part == 1 else r_  # a lifted f1 part may stay broadcast
        assert g_.shape == r_.shape and torch.allclose(g_, r_, rtol=1e-14, atol=0), part


def test_a_plain_value_with_a_batch_axis_the_jet_lacks_widens_every_coefficient():
    """The jet of one point (K+1, n), the plain value batched (B, n): the result is
    (K+1, B, n), every coefficient broadcast, as the lifted sum is where B != K+1."""
    a = torch.randn(3, 4, dtype=torch.float64)
    y = torch.randn(5, 4, dtype=torch.float64)
    out = taylor.add_plain(a, y)
    assert out.shape == (3, 5, 4)
    assert torch.equal(out[0], a[0] + y) and torch.equal(out[1:], a[1:, None].expand(2, 5, 4))
    assert torch.equal(taylor.mul_plain(a, y), a[:, None] * y)


def test_no_nan_from_zero_terms():
    """An infinite coefficient of the jet stays in its place: the lifted Cauchy product
    added inf * 0 = NaN into the later coefficients."""
    a = torch.tensor([[1.0], [float("inf")], [2.0], [3.0]], dtype=torch.float64)
    y = torch.tensor([2.0], dtype=torch.float64)
    got = taylor.mul_plain(a, y)
    assert torch.equal(got, torch.tensor([[2.0], [float("inf")], [4.0], [6.0]], dtype=torch.float64))
    assert _lifted("mul", 0, a, y)[2:].isnan().all()  # what lifting gave


SRC = """model F(x: R[3], y: R[3]) -> R[3] {
  let h = tanh(linear(x, 3 -> 3))
  let g = exp(y)
  return (h * y + g) / (g + scale(y * y, 2.0)) - (y - h) * g + (h - y) + g / (h * h + g)
}
derive d4 = directional(F, order = 4)
derive lap = laplacian(F)
"""


@pytest.fixture(scope="module")
def compiled():
    return {target: geomir.compile(SRC, target=target) for target in ("torch", "jax")}


def test_generated_code_calls_the_helpers_and_lifts_nothing_it_need_not(compiled):
    code = geomir.compiler.emit_source(SRC, "torch")
    for helper in ("mul_plain", "add_plain", "div_plain", "rsub_plain", "sub_plain"):
        assert f"taylor.{helper}(" in code, helper
    # only g / jet lifts g (the quotient's recurrence needs g's jet), once per request
    assert code.count("taylor.lift(") == 1 and code.count("taylor.laplacian_lift(") == 1


@pytest.mark.usefixtures("x64")
def test_compiled_derivatives_match_torch_func_and_jax(compiled):
    mod = compiled["torch"]
    params = mod.init_params(seed=0, dtype=torch.float64)
    g = torch.Generator().manual_seed(1)
    x, y, v = (torch.randn(6, 3, dtype=torch.float64, generator=g) for _ in range(3))

    def f(xi, yi):
        return mod.F(params, xi, yi)

    # d^k/dt^k f(x + t v, y) at t = 0 by nested torch.func.jvp, k = 0..4
    def nth(fn, k):
        if k == 0:
            return fn
        prev = nth(fn, k - 1)
        return lambda t: torch.func.jvp(prev, (t,), (torch.ones_like(t),))[1]

    t0 = torch.zeros(6, 1, dtype=torch.float64)
    line = lambda t: f(x + t * v, y)  # noqa: E731
    ref = torch.stack([nth(line, k)(t0) for k in range(5)])
    got = mod.d4(params, x, y, v)
    assert torch.allclose(got, ref, rtol=1e-10, atol=1e-10)
    lap_ref = torch.stack([
        torch.func.hessian(lambda xi: mod.F(params, xi[None], yi[None])[0])(xi).diagonal(dim1=-2, dim2=-1).sum(-1)
        for xi, yi in zip(x, y, strict=True)])
    lap = mod.lap(params, x, y)
    assert torch.allclose(lap, lap_ref, rtol=1e-10, atol=1e-10)
    import jax.numpy as jnp

    jmod = compiled["jax"]
    jp = {k: jnp.asarray(p.numpy()) for k, p in params.items()}
    jx, jy, jv = (jnp.asarray(t.numpy()) for t in (x, y, v))
    assert np.allclose(np.asarray(jmod.d4(jp, jx, jy, jv)), got.numpy(), rtol=1e-12, atol=1e-12)
    assert np.allclose(np.asarray(jmod.lap(jp, jx, jy)), lap.numpy(), rtol=1e-12, atol=1e-12)
