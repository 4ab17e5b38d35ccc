"""Taylor-mode (jet) runtime for generated JAX code: the rules of
``geomir.backends.common.taylor`` bound to JAX (``taylor.tanh(jet)``, ``taylor.RULES``,
``taylor.collapsed.mul(a, b)``, ``taylor.PoincareBall(c)``, ``taylor.Sphere()``,
``taylor.Lorentz(c)``). See docs/jets.md."""

from __future__ import annotations


import jax.numpy as jnp

from geomir.backends.common import taylor as _t
from geomir.backends.common import taylor_quadric as _q
from geomir.backends.jax.runtime import JaxOps


class JaxJetOps(JaxOps, _t.JetOps):
    """:class:`JaxOps` plus the leading-axis primitives of jets (traceable: jit, grad, vmap)."""

    @staticmethod
    def stack0(xs):
        return jnp.stack(list(xs), axis=0)

    @staticmethod
    def cat0(xs):
        return jnp.concatenate(list(xs), axis=0)

    @staticmethod
    def sum0(x):
        # XLA on CPU reduces over a leading axis slowly (2x the whole forward Laplacian of
        # an MLP); an unrolled sum of the slices fuses into one elementwise loop.
        if x.shape[0] > 64:
            return jnp.sum(x, axis=0)
        total = x[0]
        for i in range(1, x.shape[0]):
            total = total + x[i]
        return total

    @staticmethod
    def coeffs(values, like):
        return jnp.asarray(values, dtype=like.dtype).reshape(-1, *([1] * like.ndim))

    @staticmethod
    def directions(x):
        n = x.shape[-1]
        eye = jnp.eye(n, dtype=x.dtype)
        return jnp.broadcast_to(eye.reshape(n, *([1] * (x.ndim - 1)), n), (n, *x.shape))


OPS = JaxJetOps()
globals().update(_t.bind(OPS))
LaplacianJet = _t.LaplacianJet


# The jet manifolds (``taylor.PoincareBall(c=1.5, collapsed=True)``), bound to OPS.
Euclidean, Torus, PoincareBall, Sphere, Lorentz = (
    _t.bound_manifold(cls, OPS) for cls in (_t.Euclidean, _t.Torus, _t.PoincareBall, _q.Sphere, _q.Lorentz)
)
