"""Derivative requests for generated JAX code, by jax.jvp/vjp/grad (see common/autodiff.py)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from geomir.backends.common.autodiff import AutodiffOps, Derivatives


def _vjp(f, x, w):
    _, pull = jax.vjp(f, x)
    return pull(w)[0]


def _basis(x, i):
    return jnp.broadcast_to(jax.nn.one_hot(i, x.shape[-1], dtype=x.dtype), x.shape)


_D = Derivatives(
    AutodiffOps(
        jvp=lambda f, x, v: jax.jvp(f, (x,), (v,)),
        vjp=_vjp,
        grad=jax.grad,
        stack=jnp.stack,
        basis=_basis,
    )
)

jvp, vjp, hvp, grad, directional = _D.jvp, _D.vjp, _D.hvp, _D.grad, _D.directional
laplacian, biharmonic = _D.laplacian, _D.biharmonic
