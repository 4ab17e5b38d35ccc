"""Manifold runtime for generated JAX code: :class:`JaxOps` and the five manifolds
bound to it. The math lives in ``geomir.backends.common.manifolds``; see docs/numerics.md."""

from __future__ import annotations

import math

import jax.numpy as jnp

from geomir.backends.common import manifolds as _m


class JaxOps(_m.ArrayOps):
    """:class:`~geomir.backends.common.manifolds.ArrayOps` on ``jax.Array``; traceable
    (works under ``jax.jit``, ``jax.grad``, ``jax.vmap``). float64 needs the caller to
    enable ``jax_enable_x64``; the runtime never changes that flag."""

    sqrt = staticmethod(jnp.sqrt)
    exp = staticmethod(jnp.exp)
    log = staticmethod(jnp.log)
    log1p = staticmethod(jnp.log1p)
    expm1 = staticmethod(jnp.expm1)
    tanh = staticmethod(jnp.tanh)
    atanh = staticmethod(jnp.arctanh)
    sinh = staticmethod(jnp.sinh)
    cosh = staticmethod(jnp.cosh)
    asinh = staticmethod(jnp.arcsinh)
    acosh = staticmethod(jnp.arccosh)
    sin = staticmethod(jnp.sin)
    cos = staticmethod(jnp.cos)
    atan = staticmethod(jnp.arctan)
    abs = staticmethod(jnp.abs)
    sign = staticmethod(jnp.sign)
    floor = staticmethod(jnp.floor)
    remainder = staticmethod(jnp.remainder)
    where = staticmethod(jnp.where)
    maximum = staticmethod(jnp.maximum)
    minimum = staticmethod(jnp.minimum)
    zeros_like = staticmethod(jnp.zeros_like)
    full_like = staticmethod(jnp.full_like)

    @staticmethod
    def atan2(y, x):
        """jnp.arctan2 with torch's gradient at (0, 0): 0, not NaN (0/0), so an angle of a zero
        vector (holonomy_angle of v = 0) differentiates alike on both backends. Values are
        IEEE atan2's, signed zeros included; no custom_jvp, so jax.experimental.jet traces it."""
        zero = (x == 0) & (y == 0)
        at_zero = jnp.where(jnp.signbit(x), jnp.pi, 0.0) * jnp.where(jnp.signbit(y), -1.0, 1.0)
        return jnp.where(zero, at_zero, jnp.arctan2(y, jnp.where(zero, 1.0, x)))

    @staticmethod
    def sum(x):
        return jnp.sum(x, axis=-1, keepdims=True)

    @staticmethod
    def sum_steps(x):
        return jnp.sum(x, axis=-2)

    @staticmethod
    def max_steps(x):
        return jnp.max(x, axis=-2)

    @staticmethod
    def cumsum_steps(x):
        return jnp.cumsum(x, axis=-2)

    @staticmethod
    def concat_steps(xs):
        return jnp.concatenate(xs, axis=-2)

    @staticmethod
    def min_last(x):
        return jnp.min(x, axis=-1, keepdims=True)

    @staticmethod
    def concat(xs):
        return jnp.concatenate(xs, axis=-1)

    @staticmethod
    def matmul_t(x, w):
        if x.ndim > 2 and w.ndim == 2:  # one 2-D GEMM over all leading axes (jets' stacks)
            return jnp.matmul(x.reshape(-1, x.shape[-1]), w.T).reshape(*x.shape[:-1], w.shape[0])
        return jnp.matmul(x, jnp.swapaxes(w, -1, -2))

    @staticmethod
    def dtype_name(x):
        return jnp.dtype(x.dtype).name


OPS = JaxOps()


class Euclidean(_m.Euclidean):
    """R^n on jax arrays."""

    def __init__(self) -> None:
        super().__init__(OPS)


class PoincareBall(_m.PoincareBall):
    """Poincaré ball of curvature -c on jax arrays."""

    def __init__(self, c: float = 1.0) -> None:
        super().__init__(OPS, c)


class Lorentz(_m.Lorentz):
    """Hyperboloid <x, x>_L = -1/c on jax arrays."""

    def __init__(self, c: float = 1.0) -> None:
        super().__init__(OPS, c)


class Sphere(_m.Sphere):
    """Unit sphere on jax arrays."""

    def __init__(self) -> None:
        super().__init__(OPS)


class Torus(_m.Torus):
    """Flat torus of period ``period`` (a number, 'radians' or 'turns') on jax arrays."""

    def __init__(self, period: float | str = 2.0 * math.pi) -> None:
        super().__init__(OPS, period)


__all__ = ["JaxOps", "OPS", "Euclidean", "PoincareBall", "Lorentz", "Sphere", "Torus"]
