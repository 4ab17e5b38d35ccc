"""The manifold runtime on NumPy arrays (for the Python API when neither torch nor jax
holds the data): :class:`NumpyOps` and the torus bound to it."""

from __future__ import annotations

import math

import numpy as np

from geomir.backends.common import manifolds as _m


class NumpyOps(_m.ArrayOps):
    """:class:`~geomir.backends.common.manifolds.ArrayOps` on ``numpy.ndarray``."""

    sqrt = staticmethod(np.sqrt)
    exp = staticmethod(np.exp)
    log = staticmethod(np.log)
    log1p = staticmethod(np.log1p)
    expm1 = staticmethod(np.expm1)
    tanh = staticmethod(np.tanh)
    atanh = staticmethod(np.arctanh)
    sinh = staticmethod(np.sinh)
    cosh = staticmethod(np.cosh)
    asinh = staticmethod(np.arcsinh)
    acosh = staticmethod(np.arccosh)
    sin = staticmethod(np.sin)
    cos = staticmethod(np.cos)
    atan = staticmethod(np.arctan)
    atan2 = staticmethod(np.arctan2)
    abs = staticmethod(np.abs)
    sign = staticmethod(np.sign)
    floor = staticmethod(np.floor)
    remainder = staticmethod(np.remainder)
    where = staticmethod(np.where)
    maximum = staticmethod(np.maximum)
    minimum = staticmethod(np.minimum)
    zeros_like = staticmethod(np.zeros_like)
    full_like = staticmethod(np.full_like)

    @staticmethod
    def sum(x):
        return np.sum(x, axis=-1, keepdims=True)

    @staticmethod
    def sum_steps(x):
        return np.sum(x, axis=-2)

    @staticmethod
    def max_steps(x):
        return np.max(x, axis=-2)

    @staticmethod
    def cumsum_steps(x):
        return np.cumsum(x, axis=-2)

    @staticmethod
    def concat_steps(xs):
        return np.concatenate(xs, axis=-2)

    @staticmethod
    def min_last(x):
        return np.min(x, axis=-1, keepdims=True)

    @staticmethod
    def concat(xs):
        return np.concatenate(xs, axis=-1)

    @staticmethod
    def matmul_t(x, w):
        return np.matmul(x, np.swapaxes(w, -1, -2))

    @staticmethod
    def dtype_name(x):
        return np.dtype(x.dtype).name


OPS = NumpyOps()


class Torus(_m.Torus):
    """Flat torus of period ``period`` (a number, 'radians' or 'turns') on numpy arrays."""

    def __init__(self, period: float | str = 2.0 * math.pi) -> None:
        super().__init__(OPS, period)


__all__ = ["NumpyOps", "OPS", "Torus"]
