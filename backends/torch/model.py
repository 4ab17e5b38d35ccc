"""Parameters and the nn.Module form of generated PyTorch code."""

from __future__ import annotations

import functools
import re

import torch

from geomir.backends.common.autodiff import InputSpec, ModelInputError, check_call, checked_function
from geomir.backends.common.init import ParamSpec, check_seed, draw, select
from geomir.backends.common.weights import NONNEGATIVE, apply, deployed, for_dtype

__all__ = ["CompiledModel", "InputSpec", "ModelInputError", "ParamSpec", "checked", "init_params", "transform_params"]


def _value(name: str, spec: ParamSpec, seed: int, dtype: torch.dtype | None) -> torch.Tensor:
    dtype = dtype or spec.dtype or torch.get_default_dtype()
    value = torch.tensor(for_dtype(draw(name, spec, seed), str(dtype)), dtype=dtype)  # rounded once, as proved
    if spec.manifold is not None:  # a tangent at the origin -> a point (same steps as JAX)
        value = spec.manifold.expmap0(spec.manifold.proju(spec.manifold.origin_like(value), value))
    return value


def init_params(specs: dict[str, ParamSpec], seed: int = 0, dtype: torch.dtype | None = None, names=None) -> dict[str, torch.Tensor]:
    """Initial parameter tensors: float64 draws cast to ``dtype`` (points mapped on the manifold)."""
    seed = check_seed(seed)
    if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise ModelInputError(f"init_params: dtype must be a floating torch dtype (torch.float32, ...), found {dtype}")
    return {name: _value(name, spec, seed, dtype) for name, spec in select(specs, names).items()}


def checked(function, param_names: list[str], inputs: tuple[InputSpec, ...]):
    """``function`` (a generated model) checking its params and inputs at each call.
    The parameters' declared dtypes are read from the module's PARAMS."""
    specs = function.__globals__.get("PARAMS", {})
    declared = {n: getattr(specs.get(n), "dtype", None) for n in param_names}
    return checked_function(function, functools.partial(check_call, function.__name__, declared, inputs,
                                                         _is_tensor, _is_float, "torch tensor", _broadcast_to))


def _is_tensor(x) -> bool:
    return isinstance(x, torch.Tensor)


def _is_float(dtype) -> bool:
    return dtype.is_floating_point


def _broadcast_to(x: torch.Tensor, shape: tuple) -> torch.Tensor:
    return x.expand(shape)  # a view: no copy


def transform_params(specs: dict[str, ParamSpec], params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Trained ``params`` after the recorded quantization/pruning (geomc --quantize/--prune),
    the weights ``verify-contracts{weights=...}`` proved; other parameters unchanged."""
    out = dict(params)
    for name, spec in specs.items():
        ts = deployed(spec.transforms)
        if ts and name in params:
            value = params[name]
            new = for_dtype(apply(value.detach().cpu().double().numpy(), ts), str(value.dtype))  # as proved
            out[name] = torch.as_tensor(new, dtype=value.dtype, device=value.device)
    return out


_SEGMENT = re.compile(r"[A-Za-z0-9]+(?:_[A-Za-z0-9]+)*")  # no leading, trailing or double '_'


def param_key(name: str) -> str:
    """The ``ParameterDict`` key of an IR parameter name (keys cannot hold '.'); injective.

    ``Model.linear0.weight`` -> ``Model__linear0__weight``: '__' joins segments that have
    no '__' and no '_' at an end, so it splits back one way. Any other name (a ``let``
    named ``linear0__weight``) is escaped instead: '%' then each byte that is not a
    letter, digit or '_' as %XX (``%A%2Elinear0__weight``), never one of the joined keys."""
    segments = name.split(".")
    if all(_SEGMENT.fullmatch(s) for s in segments):
        return "__".join(segments)
    return "%" + "".join(chr(b) if chr(b).isascii() and (chr(b).isalnum() or b == 95) else f"%{b:02X}"
                         for b in name.encode())


class GeoParameter(torch.nn.Parameter):
    """An ``nn.Parameter`` whose ``.manifold`` and ``.constraint`` survive ``copy.deepcopy``
    (``nn.Parameter.__deepcopy__`` keeps only the data: a deep-copied module's ball biases
    were then trained as Euclidean vectors and W >= 0 no longer projected)."""

    def __deepcopy__(self, memo):
        if id(self) in memo:
            return memo[id(self)]
        result = super().__deepcopy__(memo)
        for attr in ("manifold", "constraint"):
            if attr in self.__dict__:
                setattr(result, attr, self.__dict__[attr])  # the runtime's manifold object is shared, as in the module
        return result


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
            p = GeoParameter(value)
            p.manifold = self.specs[name].manifold
            if NONNEGATIVE in self.specs[name].transforms:
                p.constraint = "nonnegative"  # geomir's optimizers project onto W >= 0
            self.params[self._key(name)] = p

    @staticmethod
    def _key(name: str) -> str:
        return param_key(name)

    def named_geo_parameters(self) -> dict[str, torch.nn.Parameter]:
        """Parameters under their IR names (``Model.layer0.weight``)."""
        return {name: self.params[self._key(name)] for name in self.param_names}

    def forward(self, *inputs: torch.Tensor, **named: torch.Tensor):
        return type(self).function(self.named_geo_parameters(), *inputs, **named)
