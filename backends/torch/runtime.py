"""Manifold runtime for generated PyTorch code: :class:`TorchOps` and the five manifolds
bound to it. The math lives in ``geomir.backends.common.manifolds``; see docs/numerics.md."""

from __future__ import annotations

import math

import torch

from geomir.backends.common import manifolds as _m


def softplus(x: torch.Tensor) -> torch.Tensor:
    """log(1 + e^x), accurate and monotone everywhere (torch.nn.functional.softplus returns x
    above its threshold 20, a step down of up to 2e-9: not monotone, and not what JAX and
    the jets compute)."""
    return torch.logaddexp(x, torch.zeros((), dtype=x.dtype, device=x.device))


class TorchOps(_m.ArrayOps):
    """:class:`~geomir.backends.common.manifolds.ArrayOps` on ``torch.Tensor``."""

    sqrt = staticmethod(torch.sqrt)
    exp = staticmethod(torch.exp)
    log = staticmethod(torch.log)
    log1p = staticmethod(torch.log1p)
    expm1 = staticmethod(torch.expm1)
    tanh = staticmethod(torch.tanh)
    atanh = staticmethod(torch.atanh)
    sinh = staticmethod(torch.sinh)
    cosh = staticmethod(torch.cosh)
    asinh = staticmethod(torch.asinh)
    acosh = staticmethod(torch.acosh)
    sin = staticmethod(torch.sin)
    cos = staticmethod(torch.cos)
    atan = staticmethod(torch.atan)
    atan2 = staticmethod(torch.atan2)
    abs = staticmethod(torch.abs)
    sign = staticmethod(torch.sign)
    floor = staticmethod(torch.floor)
    remainder = staticmethod(torch.remainder)
    where = staticmethod(torch.where)
    maximum = staticmethod(torch.maximum)
    minimum = staticmethod(torch.minimum)
    zeros_like = staticmethod(torch.zeros_like)
    full_like = staticmethod(torch.full_like)

    @staticmethod
    def sum(x):
        return torch.sum(x, dim=-1, keepdim=True)

    @staticmethod
    def sum_steps(x):
        return torch.sum(x, dim=-2)

    @staticmethod
    def max_steps(x):
        return torch.amax(x, dim=-2)

    @staticmethod
    def cumsum_steps(x):
        return torch.cumsum(x, dim=-2)

    @staticmethod
    def concat_steps(xs):
        return torch.cat(xs, dim=-2)

    @staticmethod
    def min_last(x):
        return torch.amin(x, dim=-1, keepdim=True)

    @staticmethod
    def concat(xs):
        return torch.cat(xs, dim=-1)

    @staticmethod
    def matmul_t(x, w):
        return torch.matmul(x, w.transpose(-1, -2))

    _NAMES = {torch.float64: "float64", torch.float32: "float32",
              torch.float16: "float16", torch.bfloat16: "bfloat16"}

    @classmethod
    def dtype_name(cls, x):
        return cls._NAMES.get(x.dtype) or str(x.dtype).removeprefix("torch.")


OPS = TorchOps()


class Euclidean(_m.Euclidean):
    """R^n on torch tensors."""

    def __init__(self) -> None:
        super().__init__(OPS)


class PoincareBall(_m.PoincareBall):
    """Poincaré ball of curvature -c on torch tensors."""

    def __init__(self, c: float = 1.0) -> None:
        super().__init__(OPS, c)


class Lorentz(_m.Lorentz):
    """Hyperboloid <x, x>_L = -1/c on torch tensors."""

    def __init__(self, c: float = 1.0) -> None:
        super().__init__(OPS, c)


class Sphere(_m.Sphere):
    """Unit sphere on torch tensors."""

    def __init__(self) -> None:
        super().__init__(OPS)


class Torus(_m.Torus):
    """Flat torus of period ``period`` (a number, 'radians' or 'turns') on torch tensors."""

    def __init__(self, period: float | str = 2.0 * math.pi) -> None:
        super().__init__(OPS, period)


__all__ = ["TorchOps", "OPS", "Euclidean", "PoincareBall", "Lorentz", "Sphere", "Torus"]
