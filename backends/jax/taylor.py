"""Taylor-mode (jet) runtime for generated JAX code: the rules of
``geomir.backends.common.taylor`` bound to JAX (``taylor.tanh(jet)``, ``taylor.RULES``,
``taylor.collapsed.mul(a, b)``, ``taylor.PoincareBall(c)``, ``taylor.Sphere()``,
``taylor.Lorentz(c)``). See docs/jets.md."""

from __future__ import annotations

import math

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


class Euclidean(_t.Euclidean):
    """Jets on R^n (JAX); ``collapsed=True`` for Laplacian jets."""

    def __init__(self, collapsed: bool = False) -> None:
        super().__init__(OPS, _t.COLLAPSED_RULES if collapsed else _t.RULES)


class Torus(_t.Torus):
    """Jets on the flat torus of period ``period`` (JAX)."""

    def __init__(self, period: float | str = 2.0 * math.pi, collapsed: bool = False) -> None:
        super().__init__(OPS, period, _t.COLLAPSED_RULES if collapsed else _t.RULES)


class PoincareBall(_t.PoincareBall):
    """Jets on the Poincaré ball of curvature -c (JAX)."""

    def __init__(self, c: float = 1.0, collapsed: bool = False) -> None:
        super().__init__(OPS, c, _t.COLLAPSED_RULES if collapsed else _t.RULES)


class Sphere(_q.Sphere):
    """Jets on the unit sphere (JAX)."""

    def __init__(self, collapsed: bool = False) -> None:
        super().__init__(OPS, _t.COLLAPSED_RULES if collapsed else _t.RULES)


class Lorentz(_q.Lorentz):
    """Jets on the hyperboloid of curvature -c (JAX)."""

    def __init__(self, c: float = 1.0, collapsed: bool = False) -> None:
        super().__init__(OPS, c, _t.COLLAPSED_RULES if collapsed else _t.RULES)
