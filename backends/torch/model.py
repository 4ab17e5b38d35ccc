"""Parameters and the nn.Module form of generated PyTorch code."""

from __future__ import annotations

import torch

from geomir.backends.common.init import ParamSpec, draw, select
from geomir.backends.common.weights import NONNEGATIVE, apply, deployed

__all__ = ["CompiledModel", "ParamSpec", "init_params", "transform_params"]


def _value(name: str, spec: ParamSpec, seed: int, dtype: torch.dtype | None) -> torch.Tensor:
    dtype = dtype or spec.dtype or torch.get_default_dtype()
    value = torch.tensor(draw(name, spec, seed), dtype=dtype)
    if spec.manifold is not None:  # a tangent at the origin -> a point (same steps as JAX)
        value = spec.manifold.expmap0(spec.manifold.proju(spec.manifold.origin_like(value), value))
    return value


def init_params(specs: dict[str, ParamSpec], seed: int = 0, dtype: torch.dtype | None = None, names=None) -> dict[str, torch.Tensor]:
    """Initial parameter tensors: float64 draws cast to ``dtype`` (points mapped on the manifold)."""
    return {name: _value(name, spec, seed, dtype) for name, spec in select(specs, names).items()}


def transform_params(specs: dict[str, ParamSpec], params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Trained ``params`` after the recorded quantization/pruning (geomc --quantize/--prune),
    the weights ``verify-contracts{weights=...}`` proved; other parameters unchanged."""
    out = dict(params)
    for name, spec in specs.items():
        ts = deployed(spec.transforms)
        if ts and name in params:
            value = params[name]
            out[name] = torch.as_tensor(apply(value.detach().cpu().double().numpy(), ts), dtype=value.dtype, device=value.device)
    return out


class CompiledModel(torch.nn.Module):
    """A generated function with its parameters as ``nn.Parameter``s.

    Subclasses (emitted by geomc) set ``function``, ``param_names`` and ``specs``.
    Parameters on a curved manifold carry ``.manifold`` so Riemannian optimizers
    (geomir.backends.torch.optim) treat them as points.
    """

    function = None
    param_names: list[str] = []
    specs: dict[str, ParamSpec] = {}

    def __init__(self, seed: int = 0, dtype: torch.dtype | None = None):
        super().__init__()
        self.params = torch.nn.ParameterDict()
        for name, value in init_params(self.specs, seed, dtype, self.param_names).items():
            p = torch.nn.Parameter(value)
            p.manifold = self.specs[name].manifold
            if NONNEGATIVE in self.specs[name].transforms:
                p.constraint = "nonnegative"  # geomir's optimizers project onto W >= 0
            self.params[self._key(name)] = p

    @staticmethod
    def _key(name: str) -> str:
        return name.replace(".", "__")

    def named_geo_parameters(self) -> dict[str, torch.nn.Parameter]:
        """Parameters under their IR names (``Model.layer0.weight``)."""
        return {name: self.params[self._key(name)] for name in self.param_names}

    def forward(self, *inputs: torch.Tensor):
        return type(self).function(self.named_geo_parameters(), *inputs)
