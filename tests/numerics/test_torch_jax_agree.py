"""The torch and JAX runtimes compute the same numbers: every method of every manifold,
values and gradients, float64 within 1e-12 and float32 within 1e-5 (5e-5 for gradients),
relative to each row's largest entry, eagerly and under jax.jit."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from geomir.backends.jax import runtime as J

from . import DTYPES, MANIFOLDS, call, make, manifold_id, methods, points, run_backend, tangents
from . import x64  # noqa: F401  (fixture: jax float64 in this module)

RTOL = {"float32": 1e-5, "float64": 1e-12}
# gradients: float64 as values; float32 5e-5 because the ball transport's y-gradient is
# ill-conditioned (each backend is ~2e-5 from the float64 gradient; they differ by 1.6e-5)
GRAD_RTOL = {"float32": 5e-5, "float64": 1e-12}
N, DIM = 16, 5  # the shapes of test_manifold_identities: jax reuses its compiled primitives


pytestmark = pytest.mark.usefixtures("x64")
def inputs(spec, seed=0):
    """float64 NumPy inputs: points x, y, tangent v at x, scalars r, a 3 x DIM matrix W."""
    kind, p = spec
    rng = np.random.default_rng(seed)
    x = points(rng, kind, p, N, DIM, 2.0)
    y = points(rng, kind, p, N, DIM, 2.0)
    v = tangents(rng, kind, p, x, 1.0)
    return x, y, v, rng.uniform(-2, 2, (N, 1)), rng.standard_normal((3, DIM))


def assert_agree(a, b, rtol, what):
    """Row-wise |a - b| <= rtol * max(|b|, |a|, scale floor) in the max norm."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape, f"{what}: shapes {a.shape} vs {b.shape}"
    a2, b2 = a.reshape(a.shape[0], -1), b.reshape(b.shape[0], -1)
    scale = np.maximum(np.abs(a2).max(-1), np.abs(b2).max(-1))
    scale = np.maximum(scale, 1e-3 * max(scale.max(), 1e-300))
    err = (np.abs(a2 - b2).max(-1) / scale).max()
    assert err <= rtol, f"{what}: torch and jax differ by {err:.2e} (relative) > {rtol:.0e}"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("spec", MANIFOLDS, ids=manifold_id)
def test_values_and_gradients_agree(spec, dtype):
    kind, p = spec
    x, y, v, r, W = inputs(spec)
    for name in methods(kind):
        tv, tg = run_backend("torch", kind, p, dtype, name, x, y, v, r, W)
        jv, jg = run_backend("jax", kind, p, dtype, name, x, y, v, r, W)
        assert jv.dtype == np.dtype(dtype) and tv.dtype == np.dtype(dtype), name
        assert_agree(tv, jv, RTOL[dtype], f"{manifold_id(spec)}.{name} value")
        for k in tg:
            assert_agree(tg[k], jg[k], GRAD_RTOL[dtype], f"{manifold_id(spec)}.{name} d/d{k}")


@pytest.mark.parametrize("spec", [s for s in MANIFOLDS if s[1] in (None, 1.0)], ids=manifold_id)
def test_jit_matches_eager(spec):
    """One compiled function per manifold (one curvature: compiling is the slow part)
    returning every method's value and the gradient of their sum."""
    kind, p = spec
    m = make(J, kind, p)
    x, y, v, r, W = (jnp.asarray(a, jnp.float64) for a in inputs(spec, seed=1))

    def every_method(x, y, v):
        outs = [call(m, name, x, y, v, r, W) for name in methods(kind)]
        return sum(jnp.sum(o) for o in outs), outs

    (_, eager), g_eager = jax.value_and_grad(every_method, (0, 1, 2), has_aux=True)(x, y, v)
    (_, jitted), g_jit = jax.jit(jax.value_and_grad(every_method, (0, 1, 2), has_aux=True))(x, y, v)
    for name, a, b in zip(methods(kind), eager, jitted):
        assert_agree(a, b, 1e-12, f"{manifold_id(spec)}.{name} jit")
    for a, b in zip(g_eager, g_jit):
        assert_agree(a, b, 1e-10, f"{manifold_id(spec)} jit gradient")


def test_float32_inputs_stay_float32_without_x64():
    """The runtime does not need (or switch on) float64: float32 in, float32 out."""
    with jax.enable_x64(False):
        ball = J.PoincareBall(1.0)
        x = jnp.full((2, 3), 0.1, jnp.float32)
        assert ball.dist(x, -x).dtype == jnp.float32
        assert ball.expmap0(x).dtype == jnp.float32
