"""JAX modules: init_params refuses a dtype JAX cannot give (float64 without x64: it was
truncated to float32 with only a warning), and the generated functions and derivative
entry points compose with jax.jit, jax.vmap and jax.grad, equal to the torch target."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import geomir

jax.config.update("jax_enable_x64", True)

SOURCE = """
manifold H = poincare(c = 1.0)
model U(x: R[2]) -> R[1] {
  let h = tanh(linear(x, 2 -> 8))
  return linear(h, 8 -> 1)
}
model E(x: H[3]) -> H[4] {
  return mobius_tanh(mobius_linear(x, 3 -> 4))
}
derive lap = laplacian(U)
derive d3 = directional(U, order = 3)
derive hv = hvp(U)
"""


@pytest.fixture(scope="module")
def mods(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    return geomir.compile(SOURCE, target="torch", cache_dir=cache), geomir.compile(SOURCE, target="jax", cache_dir=cache)


def test_float64_parameters_without_x64_are_refused(mods) -> None:
    _, jm = mods
    with jax.enable_x64(False):
        with pytest.raises(jm.model.ModelInputError, match="float64 needs 64-bit JAX"):
            jm.init_params(seed=0, dtype=jnp.float64)
        assert all(v.dtype == jnp.float32 for v in jm.init_params(seed=0).values())
    assert all(v.dtype == jnp.float64 for v in jm.init_params(seed=0, dtype=jnp.float64).values())


def test_a_model_declared_float64_without_x64_is_refused(tmp_path) -> None:
    """init_params() of a model declared in f64 read the declared dtype and JAX truncated it
    to float32 with only its own warning; it is refused as init_params(dtype=float64) is."""
    jm = geomir.compile("model F(x: R[3, f64]) -> R[1, f64] { return linear(x, 3 -> 1) }", target="jax",
                        cache_dir=tmp_path)
    with jax.enable_x64(False):
        with pytest.raises(jm.model.ModelInputError, match="'F.linear0.weight' declared float64 needs 64-bit JAX"):
            jm.init_params(seed=0)
        assert all(v.dtype == jnp.float32 for v in jm.init_params(seed=0, dtype=jnp.float32).values())
    assert all(v.dtype == jnp.float64 for v in jm.init_params(seed=0).values())


def test_jit_vmap_grad_of_the_derivative_entry_points_equal_torch(mods) -> None:
    tm, jm = mods
    rng = np.random.default_rng(0)
    x, v = rng.normal(size=(5, 2)), rng.normal(size=(5, 2))
    jp, tp = jm.init_params(seed=2, dtype=jnp.float64), tm.init_params(seed=2, dtype=torch.float64)
    jx, jv = jnp.asarray(x), jnp.asarray(v)
    for name, args, out_axes in [("lap", (jx,), 0), ("d3", (jx, jv), 1), ("hv", (jx, jv), 0)]:
        f = getattr(jm, name)
        expected = getattr(tm, name)(tp, *(torch.tensor(np.asarray(a)) for a in args)).numpy()
        np.testing.assert_allclose(np.asarray(jax.jit(f)(jp, *args)), expected, rtol=1e-12, atol=1e-12)
        mapped = jax.vmap(lambda *a: f(jp, *a), out_axes=out_axes)(*args)
        np.testing.assert_allclose(np.asarray(mapped), expected, rtol=1e-12, atol=1e-12)
    g = jax.jit(jax.grad(lambda p: jnp.sum(jm.lap(p, jx))))(jp)
    tparams = {k: tp[k].clone().requires_grad_() for k in tm.FUNCTION_PARAMS["lap"]}
    tg = torch.autograd.grad(tm.lap(tparams, torch.tensor(x)).sum(), list(tparams.values()), allow_unused=True)
    for key, t in zip(tparams, tg):  # the Laplacian does not see the last bias: no torch gradient, JAX's 0
        t = torch.zeros_like(tparams[key]) if t is None else t
        np.testing.assert_allclose(np.asarray(g[key]), t.numpy(), rtol=1e-10, atol=1e-12)
    # a point-valued model under jit and vmap
    xe = jm.poincare_c1.expmap0(jnp.asarray(0.3 * rng.normal(size=(4, 3))))
    te = tm.E(tp, torch.tensor(np.asarray(xe)))
    np.testing.assert_allclose(np.asarray(jax.jit(jax.vmap(lambda z: jm.E(jp, z)))(xe)), te.numpy(), rtol=1e-12, atol=1e-12)
