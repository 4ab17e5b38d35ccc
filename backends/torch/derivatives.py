"""Derivative requests for generated PyTorch code, by torch.func (see common/autodiff.py)."""

from __future__ import annotations

import torch
import torch.func

from geomir.backends.common.autodiff import AutodiffOps, Derivatives


def _vjp(f, x, w):
    _, pull = torch.func.vjp(f, x)
    return pull(w)[0]


def _basis(x, i):
    """e_i broadcast to ``x``'s shape, on ``x``'s device and in its dtype (a CPU basis
    vector made every derivative request on a CUDA input fail with a device mismatch)."""
    return (torch.arange(x.shape[-1], device=x.device) == i).to(x.dtype).expand_as(x)


def _dense(x):
    """``x``, copied where it is a broadcast view (a stride-0 axis of size > 1: a batch
    broadcast against another input's by autodiff.check_call, or a basis vector), which
    torch.func.jvp refuses as a primal. clone, not contiguous: it runs on fake tensors too."""
    if any(st == 0 and n > 1 for st, n in zip(x.stride(), x.shape)):
        return x.clone()
    return x


_D = Derivatives(
    AutodiffOps(
        jvp=lambda f, x, v: torch.func.jvp(f, (_dense(x),), (_dense(v),)),
        vjp=_vjp,
        grad=torch.func.grad,
        stack=torch.stack,
        basis=_basis,
    )
)

jvp, vjp, hvp, grad, directional = _D.jvp, _D.vjp, _D.hvp, _D.grad, _D.directional
laplacian, biharmonic = _D.laplacian, _D.biharmonic
