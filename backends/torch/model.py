"""Parameters and the nn.Module form of generated PyTorch code."""

from __future__ import annotations

import functools
import re

import torch
from torch._C import _functorch

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
    the weights ``verify-contracts{weights=...}`` proved; other parameters unchanged. The
    transforms run in NumPy on concrete tensors, as on JAX: a parameter traced by a
    torch.func transformation is a ``ModelInputError``, and the result of one that requires
    grad requires grad too, with a backward that is a ``ModelInputError`` (not a silent None
    gradient): call it on the trained params and differentiate with respect to the result."""
    out = dict(params)
    for name, spec in specs.items():
        ts = deployed(spec.transforms)
        if ts and name in params:
            value = params[name]
            if _functorch.is_functorch_wrapped_tensor(value):
                raise ModelInputError(f"transform_params: parameter '{name}' is traced by a torch.func transformation "
                                      "(torch.func.grad, vmap, ...); the transforms run in NumPy on concrete tensors: "
                                      "call transform_params on the trained params outside it and pass the result in")
            if value.requires_grad and torch.is_grad_enabled():
                out[name] = _NoGradient.apply(value, name, ts)
            else:
                out[name] = _transformed(value, ts)
    return out


def _transformed(value: torch.Tensor, ts: tuple[str, ...]) -> torch.Tensor:
    """``value`` after the transforms ``ts``, rounded for its dtype as proved."""
    new = for_dtype(apply(value.detach().cpu().double().numpy(), ts), str(value.dtype))
    return torch.as_tensor(new, dtype=value.dtype, device=value.device)


class _NoGradient(torch.autograd.Function):
    """:func:`_transformed` of a tensor that requires grad: the transforms (rounding,
    pruning) have no gradient, so differentiating through them is an error naming the
    parameter, as ``jax.grad`` through ``transform_params`` is."""

    @staticmethod
    def forward(value, name, ts):
        return _transformed(value, ts)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.name, ctx.ts = inputs[1], inputs[2]

    @staticmethod
    def backward(ctx, grad):
        raise ModelInputError(f"transform_params: parameter '{ctx.name}' has no gradient through its transforms "
                              f"({', '.join(ctx.ts)}, run in NumPy on concrete tensors): call transform_params on "
                              "the trained params outside the differentiated function (detached, or under "
                              "torch.no_grad()) and differentiate with respect to the result")


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


def _tag(p: torch.nn.Parameter, spec: ParamSpec) -> None:
    """Make ``p`` a :class:`GeoParameter` carrying ``spec``'s ``.manifold`` (and
    ``.constraint`` for W >= 0), in place: the object optimizers hold stays the same.
    The class is set as ``torch.utils.swap_tensors`` sets it (GeoParameter adds no state)."""
    if type(p) is torch.nn.Parameter:  # not a tensor subclass's parameter: that keeps its class
        p.__class__ = GeoParameter
    p.manifold = spec.manifold
    if NONNEGATIVE in spec.transforms:
        p.constraint = "nonnegative"  # geomir's optimizers project onto W >= 0


def _retag(module: CompiledModel, incompatible_keys=None) -> None:
    """``load_state_dict`` post-hook: see :meth:`CompiledModel._tag_parameters`."""
    module._tag_parameters()


class CompiledModel(torch.nn.Module):
    """A generated function with its parameters as ``nn.Parameter``s.

    Subclasses (emitted by geomc) set ``function``, ``param_names`` and ``specs``.
    Parameters on a curved manifold carry ``.manifold`` so Riemannian optimizers
    (geomir.backends.torch.optim) treat them as points; they keep it (and ``.constraint``)
    through ``load_state_dict(..., assign=True)`` and conversions (``.to``, ``.double``)
    that replace or swap the parameter tensors.
    """

    function = None
    param_names: list[str] = []
    specs: dict[str, ParamSpec] = {}

    def __init__(self, seed: int = 0, dtype: torch.dtype | None = None):
        super().__init__()
        self.params = torch.nn.ParameterDict()
        for name, value in init_params(self.specs, seed, dtype, self.param_names).items():
            self.params[self._key(name)] = GeoParameter(value)
        self._tag_parameters()
        self.register_load_state_dict_post_hook(_retag)

    @staticmethod
    def _key(name: str) -> str:
        return param_key(name)

    def _tag_parameters(self) -> None:
        """Each parameter's ``.manifold``/``.constraint`` from ``specs``: at init, and again
        after a load or conversion (assign=True, swap_module_params_on_conversion and
        overwrite_module_params_on_conversion put plain ``nn.Parameter``s in their place)."""
        for name, p in self.named_geo_parameters().items():
            _tag(p, self.specs[name])

    def _apply(self, fn, recurse=True):
        result = super()._apply(fn, recurse)
        self._tag_parameters()
        return result

    def named_geo_parameters(self) -> dict[str, torch.nn.Parameter]:
        """Parameters under their IR names (``Model.layer0.weight``)."""
        return {name: self.params[self._key(name)] for name in self.param_names}

    def forward(self, *inputs: torch.Tensor, **named: torch.Tensor):
        return type(self).function(self.named_geo_parameters(), *inputs, **named)
