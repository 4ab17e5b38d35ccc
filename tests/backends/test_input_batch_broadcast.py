"""Generated functions broadcast their inputs' batch axes to one shape before computing
(backends/common/autodiff.check_call): every row is one point, for the forward model and for
each derivative request alike. A derivative used to stack the seed jet of an unbatched x
with a batched direction (a raw framework error), or to broadcast a batched plain input
against the coefficient axis (an error, or wrong numbers when the batch size equalled K+1).
Oracle: the same request row by row. Batch axes that do not broadcast: a ModelInputError."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import geomir
from geomir.backends.common.autodiff import ModelInputError

SRC = """model F(x: R[3], y: R[3]) -> R[3] {
  return tanh(linear(x, 3 -> 3)) * y + sin(y)
}
model S(x: R[3], y: R[3]) -> R[1] {
  return linear(F(x, y), 3 -> 1)
}
derive j = jvp(F)
derive vj = vjp(F)
derive d4 = directional(F, order = 4)
derive lap = laplacian(F)
derive h = hvp(S)
derive g = grad(S)
"""
B = 5  # = K + 1 of d4: a batched y broadcast against the coefficient axis went unnoticed
EXTRA = {"j": "v", "vj": "w", "d4": "v", "h": "v"}  # the request's direction argument


@pytest.fixture
def x64():
    """JAX float64 for one test (restored afterwards)."""
    import jax

    old = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", old)


@pytest.fixture(scope="module")
def modules():
    return {t: geomir.compile(SRC, target=t) for t in ("torch", "jax")}


def _cases():
    g = torch.Generator().manual_seed(0)
    x1, y1, v1 = (torch.randn(3, dtype=torch.float64, generator=g) for _ in range(3))
    xb, yb, vb = (torch.randn(B, 3, dtype=torch.float64, generator=g) for _ in range(3))
    # (x, y, direction): one input batched and the others not, in every position
    return [(x1, yb, v1), (xb, y1, v1), (x1, y1, vb), (xb[None], yb[:, None], vb)]


def _tuple(out):
    return out if isinstance(out, tuple) else (out,)


@pytest.mark.parametrize("name", ["F", "j", "vj", "d4", "lap", "h", "g"])
def test_every_function_treats_each_broadcast_row_as_a_point(modules, name):
    mod = modules["torch"]
    params = mod.init_params(seed=1, dtype=torch.float64)
    fn = getattr(mod, name)
    for x, y, v in _cases():
        args = (x, y, v) if name in EXTRA else (x, y)
        batch = torch.broadcast_shapes(*(a.shape[:-1] for a in args))
        rows = [a.expand(*batch, 3).reshape(-1, 3) for a in args]
        outs = _tuple(fn(params, *args))
        for i in range(rows[0].shape[0]):
            refs = _tuple(fn(params, *(a[i] for a in rows)))  # one point: (*lead, n)
            for o, r in zip(outs, refs, strict=True):
                lead = r.shape[:-1]
                assert o.shape == (*lead, *batch, r.shape[-1]), (name, o.shape)
                got = o.reshape(*lead, -1, r.shape[-1])[..., i, :]
                assert torch.allclose(got, r, rtol=1e-12, atol=1e-12), (name, tuple(x.shape), tuple(y.shape), i)


@pytest.mark.usefixtures("x64")
def test_jax_broadcasts_as_torch(modules):
    import jax.numpy as jnp

    tm, jm = modules["torch"], modules["jax"]
    params = tm.init_params(seed=1, dtype=torch.float64)
    jp = {k: jnp.asarray(p.numpy()) for k, p in params.items()}
    for x, y, v in _cases():
        for name in ("d4", "lap", "j"):
            args = (x, y, v) if name in EXTRA else (x, y)
            t = tm.__dict__[name](params, *args)
            j = jm.__dict__[name](jp, *(jnp.asarray(a.numpy()) for a in args))
            for a, b in zip(t if isinstance(t, tuple) else (t,), j if isinstance(j, tuple) else (j,), strict=True):
                assert a.shape == tuple(b.shape) and np.allclose(a.numpy(), np.asarray(b), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("target", ["torch", "jax"])
def test_batch_axes_that_do_not_broadcast_are_an_input_error(modules, target):
    mod = modules[target]
    params = mod.init_params(seed=1)
    if target == "jax":
        import jax.numpy as jnp
        x, y = jnp.ones((4, 3), jnp.float32), jnp.ones((5, 3), jnp.float32)
    else:
        x, y = torch.ones(4, 3), torch.ones(5, 3)
    for name in ("F", "lap", "d4"):
        args = (x, y, x) if name in EXTRA else (x, y)
        with pytest.raises(ModelInputError, match=r"batch axes do not broadcast \('x' \(4,\), 'y' \(5,\)"):
            getattr(mod, name)(params, *args)


def test_equal_batches_pass_through_untouched(modules):
    """The usual call: the very tensors go in (no expand, no copy)."""
    mod = modules["torch"]
    params = mod.init_params(seed=1)
    x, y = torch.randn(4, 3), torch.randn(4, 3)
    assert mod.F.check(params, (x, y))[0] is x
    out = mod.F.check(params, (torch.randn(3), y))
    assert out[0].shape == (4, 3) and out[1] is y and out[0].stride(0) == 0  # a view
