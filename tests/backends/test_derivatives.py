"""Derivative requests (the autodiff reference lowering) against independent oracles:
torch.autograd.functional (a different code path from torch.func), jax.hessian and
jax.experimental.jet, and central finite differences. float64 throughout."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from jax.experimental import jet

import geomir

jax.config.update("jax_enable_x64", True)

SOURCE = """
model U(x: R[3]) -> R[1] {
  let h = tanh(linear(x, 3 -> 8))
  let h = sin(linear(h, 8 -> 8)) * exp(-0.5 * h * h)
  return linear(h, 8 -> 1)
}
model V(x: R[3]) -> R[2] {
  return tanh(linear(x, 3 -> 2))
}
derive lap = laplacian(U)
derive bih = biharmonic(U)
derive hv = hvp(U)
derive jv = jvp(V)
derive vj = vjp(V)
derive d5 = directional(U, order = 5)
"""


@pytest.fixture(scope="module")
def mods(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    return geomir.compile(SOURCE, target="torch", cache_dir=cache), geomir.compile(SOURCE, target="jax", cache_dir=cache)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(4, 3)), rng.normal(size=(4, 3)), rng.normal(size=(4, 2))


def _torch_params(tm):
    return tm.init_params(seed=1, dtype=torch.float64)


def _u_single(tm, params):
    return lambda x: tm.U(params, x.unsqueeze(0))[0, 0]


def test_laplacian_and_hvp_match_autograd_hessian(mods, data) -> None:
    tm, _ = mods
    params = _torch_params(tm)
    x, v, _ = (torch.tensor(a) for a in data)
    lap = tm.lap(params, x)
    hv = tm.hv(params, x, v)
    for i in range(x.shape[0]):
        H = torch.autograd.functional.hessian(_u_single(tm, params), x[i])
        torch.testing.assert_close(lap[i, 0], torch.trace(H), rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(hv[i], H @ v[i], rtol=1e-10, atol=1e-12)


def test_biharmonic_matches_nested_jax_hessians(mods, data) -> None:
    tm, jm = mods
    x = data[0]
    bih = tm.bih(_torch_params(tm), torch.tensor(x)).numpy()
    jparams = jm.init_params(seed=1, dtype=jnp.float64)
    u = lambda z: jm.U(jparams, z[None])[0, 0]  # noqa: E731
    lap = lambda z: jnp.trace(jax.hessian(u)(z))  # noqa: E731
    expected = jax.jit(jax.vmap(lambda z: jnp.trace(jax.hessian(lap)(z))))(jnp.asarray(x))
    np.testing.assert_allclose(bih[:, 0], expected, rtol=1e-9)


def test_jvp_and_vjp_match_finite_differences_and_autograd(mods, data) -> None:
    tm, _ = mods
    params = _torch_params(tm)
    x, v, w = (torch.tensor(a) for a in data)
    y, dy = tm.jv(params, x, v)
    h = 1e-6
    fd = (tm.V(params, x + h * v) - tm.V(params, x - h * v)) / (2 * h)
    torch.testing.assert_close(y, tm.V(params, x))
    torch.testing.assert_close(dy, fd, rtol=1e-7, atol=1e-9)
    xg = x.clone().requires_grad_()
    expected = torch.autograd.grad((tm.V(params, xg) * w).sum(), xg)[0]
    torch.testing.assert_close(tm.vj(params, x, w), expected, rtol=1e-12, atol=1e-12)


def test_directional_matches_jax_experimental_jet(mods, data) -> None:
    tm, jm = mods
    x, v, _ = data
    ours = tm.d5(_torch_params(tm), torch.tensor(x), torch.tensor(v)).numpy()
    assert ours.shape == (6, 4, 1)
    jparams = jm.init_params(seed=1, dtype=jnp.float64)
    f = lambda z: jm.U(jparams, z)  # noqa: E731
    zeros = [jnp.zeros_like(x)] * 4
    y0, series = jax.jit(lambda x, v: jet.jet(f, (x,), ((v, *zeros),)))(jnp.asarray(x), jnp.asarray(v))
    expected = np.stack([np.asarray(y0)] + [np.asarray(s) for s in series])
    np.testing.assert_allclose(ours, expected, rtol=1e-9, atol=1e-10)
    # and the JAX backend gives the same jet
    np.testing.assert_allclose(np.asarray(jm.d5(jparams, jnp.asarray(x), jnp.asarray(v))), ours, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("request_name", ["laplacian", "biharmonic"])
def test_torch_basis_directions_follow_the_input_device(request_name) -> None:
    """laplacian/biharmonic build the basis vectors e_i on the input's device: a CPU e_i made
    every such request on a CUDA input fail with a device mismatch. Checked without a GPU
    under FakeTensorMode (fake CUDA tensors)."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    from geomir.backends.torch import derivatives

    def f(params, z):
        return (z ** 3).sum(-1, keepdim=True)

    with FakeTensorMode():
        x = torch.empty(5, 3, dtype=torch.float64, device="cuda")
        out = getattr(derivatives, request_name)(f, {}, (x,))
        assert out.device == x.device and out.dtype == x.dtype and out.shape == (5, 1)
    x = torch.tensor(np.random.default_rng(0).normal(size=(4, 3)))
    torch.testing.assert_close(derivatives.laplacian(f, {}, (x,)), 6.0 * x.sum(-1, keepdim=True))
