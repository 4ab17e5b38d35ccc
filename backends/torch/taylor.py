"""Taylor-mode (jet) runtime for generated PyTorch code: the rules of
``geomir.backends.common.taylor`` bound to torch (``taylor.tanh(jet)``, ``taylor.RULES``,
``taylor.collapsed.mul(a, b)``, ``taylor.PoincareBall(c)``, ``taylor.Sphere()``,
``taylor.Lorentz(c)``). See docs/jets.md."""

from __future__ import annotations

import functools

import torch

from geomir.backends.common import taylor as _t
from geomir.backends.common import taylor_quadric as _q
from geomir.backends.torch import fused as _fused
from geomir.backends.torch.runtime import TorchOps


@functools.lru_cache(maxsize=256)
def _coeffs(values: tuple, dtype: torch.dtype, device: torch.device, ndim: int) -> torch.Tensor:
    """The constants of :meth:`TorchJetOps.coeffs`, made once per (values, dtype, device):
    no host-to-device copy per call, so a CUDA graph can capture the functions that use
    them. Read-only by convention (no caller writes into them)."""
    with torch.inference_mode(False), torch.no_grad():
        return torch.tensor(values, dtype=dtype, device=device).reshape(-1, *([1] * ndim))


class TorchJetOps(TorchOps, _t.JetOps):
    """:class:`TorchOps` plus the leading-axis primitives of jets."""

    @staticmethod
    def stack0(xs):
        return torch.stack(list(xs), dim=0)

    @staticmethod
    def cat0(xs):
        return torch.cat(list(xs), dim=0)

    @staticmethod
    def sum0(x):
        return torch.sum(x, dim=0)

    @staticmethod
    def coeffs(values, like):
        return _coeffs(tuple(values), like.dtype, like.device, like.ndim)

    @staticmethod
    def directions(x):
        n = x.shape[-1]
        eye = torch.eye(n, dtype=x.dtype, device=x.device)
        return eye.reshape(n, *([1] * (x.ndim - 1)), n).expand(n, *x.shape)


OPS = TorchJetOps()
globals().update(_t.bind(OPS))
layer = functools.partial(_fused.layer, OPS)  # jet.layer: the scheduled torch kernels (fused.py)
LaplacianJet = _t.LaplacianJet


# The jet manifolds (``taylor.PoincareBall(c=1.5, collapsed=True)``), bound to OPS.
Euclidean, Torus, PoincareBall, Sphere, Lorentz = (
    _t.bound_manifold(cls, OPS) for cls in (_t.Euclidean, _t.Torus, _t.PoincareBall, _q.Sphere, _q.Lorentz)
)
