"""Taylor-mode runtime of generated Triton code: the torch rules
(``geomir.backends.torch.taylor``) with ``layer`` (``jet.layer``) launching the fused Triton
kernels through :func:`geomir.backends.triton.runtime.jet_layer`."""

from __future__ import annotations

from geomir.backends.torch import taylor as _torch_taylor
from geomir.backends.triton.runtime import jet_layer as layer

__all__ = ["layer"]


def __getattr__(name: str):
    """Every other rule, manifold and helper is the torch runtime's."""
    return getattr(_torch_taylor, name)
