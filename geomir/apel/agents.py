"""Agents: Python callables registered by name (or named in the .apel file with ``impl``),
geomir-compiled models (``model "encoder.geo:Encoder"``), and the run-time side of their
typed contracts: arguments and results are checked against the declared types (records
with pydantic, manifold values by shape, finiteness and membership of the manifold).

An agent is called with its declared parameters as keyword arguments. One that also takes
a parameter named ``apel`` receives an :class:`AgentCall`: the run id, the correlation id,
the step id, the idempotency key (run id + step id: side effects keyed by it happen once
however often a crashed run is resumed), the attempt number and a read-only view of the
run's context. An agent may hand its work to another by returning :class:`Delegate`.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any

import numpy as np
import pydantic
from xdsl.ir import Attribute

from geomir.backends.common.weights import ELEMENT_TYPES
from geomir.diagnostics import GeomirError, UsageError
from geomir.dialects import apel, geo

from .types import describe

_REGISTRY: dict[str, Callable] = {}


def agent(name: str | None = None):
    """Register a Python callable as the agent ``name`` (default: the function's name)::

        @geomir.apel.agent("pay")
        def pay(o, apel): ...
    """
    def register(fn: Callable) -> Callable:
        _REGISTRY[name or fn.__name__] = fn
        return fn

    return register


def register(name: str, fn: Callable) -> None:
    _REGISTRY[name] = fn


def registered() -> dict[str, Callable]:
    return dict(_REGISTRY)


@dataclass(frozen=True)
class AgentCall:
    """What a running step tells the agent it calls."""

    run_id: str
    correlation_id: str
    step_id: str
    idempotency_key: str
    attempt: int
    context: Mapping = field(default_factory=dict)
    delegation: tuple[str, ...] = ()
    context_version: int = 0  # writes the context has seen: equal versions, equal contexts


@dataclass(frozen=True)
class Delegate:
    """Returned by an agent: let agent ``to`` do the work, with these keyword arguments."""

    to: str
    args: dict


class ContractViolation(GeomirError):
    """A value broke an agent's typed contract (schema, manifold, precondition)."""


# --- implementations ------------------------------------------------------------------------


def resolve(agent_op: apel.AgentOp, base_dir: Path, overrides: Mapping[str, Callable] | None = None) -> Callable:
    """The callable behind an agent: ``overrides``, else ``impl``, ``model``, the registry."""
    name = agent_op.sym_name.data
    if overrides and name in overrides:
        return overrides[name]
    if agent_op.impl is not None:
        from .irgen import import_object

        return import_object(agent_op.impl.data, None)
    if agent_op.model is not None:
        return model_agent(agent_op, base_dir)
    if name in _REGISTRY:
        return _REGISTRY[name]
    raise UsageError(f"agent '{name}' has no implementation: give it 'impl \"module:function\"' or 'model "
                     f"\"file.geo:Model\"' in the workflow file, register it with @geomir.apel.agent('{name}'), or "
                     "pass it in agents={...}")


def _split_model(spec: str, base_dir: Path) -> tuple[Path, str]:
    path, sep, model = spec.rpartition(":")
    if not sep or not path or not model:
        raise UsageError(f"expected 'file.geo:Model', found '{spec}'")
    return (base_dir / path) if not Path(path).is_absolute() else Path(path), model


def model_signature(spec: str, base_dir: Path) -> tuple[list[Attribute], Attribute]:
    """The input and output types of the geomir model ``file.geo:Model``."""
    from geomir.compiler import read_source
    from geomir.frontends.dsl import compile_source
    from geomir.jet_report import models_of

    path, name = _split_model(spec.partition("?")[0], base_dir)
    text, filename = read_source(path)
    models = {f.sym_name.data: f for f in models_of(compile_source(text, filename))}
    if name not in models:
        raise UsageError(f"'{path}' has no model '{name}' (models: {', '.join(models) or 'none'})")
    ftype = models[name].function_type
    return list(ftype.inputs.data), ftype.outputs.data[0]


def model_agent(agent_op: apel.AgentOp, base_dir: Path) -> Callable:
    """A geomir model compiled for torch as an agent: arrays in (in the model's element
    types), a numpy array out. Its parameters are those of seed 0, or with ``?weights=FILE``
    after the model name (``model "enc.geo:Encoder?weights=enc.npz"``) trained ones, taken
    as ``geomc --weights`` takes them: the program is compiled with its contracts proved on
    them (each entry naming a parameter checked: shape, finite, ball points on the ball),
    the model reads the parameters it uses from the file, after their weight transforms."""
    import geomir
    from geomir.pipeline import with_weight_transforms

    spec, _, query = agent_op.model.data.partition("?")
    path, name = _split_model(spec, base_dir)
    signature, _ = model_signature(spec, base_dir)
    weights = _weights_file(agent_op.model.data, query, base_dir)
    passes = None if weights is None else with_weight_transforms(None, weights_file=str(weights))
    module = geomir.compile(path, target="torch", passes=passes)  # without torch: the target's UsageError, not an ImportError
    import torch

    params = module.init_params(0, names=module.FUNCTION_PARAMS[name])
    if weights is not None:
        params = module.transform_params({k: torch.as_tensor(weights.get(k, tuple(v.shape)), dtype=v.dtype)
                                          for k, v in params.items()})
    fn = getattr(module, name)
    names = [n for n, _ in agent_op.params()]
    dtype_names = {elt: name for name, elt in ELEMENT_TYPES.items()}  # f64 -> float64
    dtypes = [getattr(torch, dtype_names[str(t.element_type)]) for t in signature]

    def call(**kwargs):  # arguments in the model's element types (R[2, f64]: float64)
        inputs = [torch.as_tensor(np.asarray(kwargs[n], dtype=np.float64)).to(d) for n, d in zip(names, dtypes)]
        with torch.no_grad():
            return fn(params, *inputs).to(torch.float64).numpy()  # NumPy has no bfloat16

    call.__name__ = name
    return call


def _weights_file(model: str, query: str, base_dir: Path):
    """The :class:`~geomir.weights_file.WeightFile` of ``?weights=FILE`` (relative to the
    .apel file) after a model's name, or None without a query."""
    if not query:
        return None
    if not query.startswith("weights="):
        raise UsageError(f"model '{model}': expected '?weights=FILE' after the model name")
    from geomir.weights_file import WeightFile

    return WeightFile(base_dir / query.removeprefix("weights="))


def invoke(fn: Callable, args: dict, call: AgentCall):
    """Call ``fn`` with the arguments by name, and the :class:`AgentCall` if it asks for ``apel``."""
    try:
        sig = inspect.signature(fn)
        wants = "apel" in sig.parameters or any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
    except (TypeError, ValueError):
        wants = False
    return fn(**args, apel=call) if wants else fn(**args)


# --- run-time contracts ------------------------------------------------------------------------


class Schemas:
    """Value checking for one module's types: records become pydantic models."""

    def __init__(self, records: Mapping[str, apel.RecordOp]):
        self.records = records
        self._models: dict[str, type] = {}

    def model(self, name: str):
        if name not in self._models:
            op = self.records[name]
            if op.pydantic is not None:
                from .irgen import import_object

                self._models[name] = import_object(op.pydantic.data, None)
            else:
                fields = {f: (self.python(t), ...) for f, t in op.fields().items()}
                self._models[name] = pydantic.create_model(name, __config__=pydantic.ConfigDict(extra="forbid",
                                                           arbitrary_types_allowed=True), **fields)
        return self._models[name]

    def python(self, t: Attribute):
        """The Python annotation pydantic validates a declared type with."""
        if isinstance(t, apel.ValueType):
            return _STRICT[t.kind.data] if t.kind.data in _STRICT else {"json": Any, "none": type(None)}[t.kind.data]
        if isinstance(t, apel.ListType):
            return list[self.python(t.elem)]
        if isinstance(t, apel.RecordType):
            return self.model(t.record.data)
        return _point_annotation(t)

    def coerce(self, value, t: Attribute, what: str):
        """``value`` as the runtime stores a value of type ``t`` (records: dicts; manifold
        values: float arrays), or :class:`ContractViolation` naming ``what`` broke it.
        APEL's own types are strict, as JSON types are: no string for a number, no bool for
        an int (an int fits a float); an imported pydantic model validates as its own
        config says."""
        if isinstance(t, geo.PointType):
            return check_point(value, t, what)
        if isinstance(t, apel.ValueType) and t.kind.data == "json":
            return _plain(value)  # unchecked, but plain data, as the journal stores it
        try:
            checked = pydantic.TypeAdapter(self.python(t)).validate_python(
                value.model_dump() if isinstance(value, pydantic.BaseModel) and isinstance(t, apel.RecordType) else value)
        except pydantic.ValidationError as err:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'value'}: {_message(e)}" for e in err.errors()[:4])
            raise ContractViolation(f"{what} is not {describe(t)}: {problems}") from None
        return _plain(checked)

    def to_agent(self, value, t: Attribute):
        """Records go to agents as pydantic model instances."""
        if isinstance(t, apel.RecordType) and isinstance(value, dict):
            return self.model(t.record.data).model_validate(value)
        return value


def _message(error: dict) -> str:
    """A pydantic error's message; a point's own (from :func:`check_point`) without pydantic's prefix."""
    if isinstance(error.get("ctx", {}).get("error"), _PointError):
        return str(error["ctx"]["error"])
    return error["msg"]


class _PointError(ValueError):
    """A manifold value inside a record or list that breaks its type (pydantic reports where)."""


def _point_annotation(t: geo.PointType):
    """A manifold type as a pydantic annotation: validated with :func:`check_point`."""
    def validate(value):
        try:
            return check_point(value, t, "the value")
        except ContractViolation as err:
            raise _PointError(err.message.removeprefix("the value is ")) from None

    return Annotated[Any, pydantic.AfterValidator(validate)]


def _plain(value):
    """``value`` with its pydantic models as dicts, as the store keeps it (so a replayed
    value is the value the run had)."""
    if isinstance(value, pydantic.BaseModel):
        return value.model_dump(mode="python")
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    return value


# str, int, float, bool as pydantic validates them strictly, as JSON has them (pydantic's
# strict float takes an int; a float is finite: JSON has no NaN or infinity)
_STRICT = {"str": pydantic.StrictStr, "int": pydantic.StrictInt,
           "float": pydantic.confloat(strict=True, allow_inf_nan=False), "bool": pydantic.StrictBool}


def check_point(value, t: geo.PointType, what: str) -> np.ndarray:
    """A manifold value: float coordinates whose last axis is the declared dimension,
    finite, and on the manifold (to 1e-4 relative)."""
    raw = value.detach().cpu().numpy() if hasattr(value, "detach") else value
    found = _not_numeric(raw)
    if found is not None:
        raise ContractViolation(f"{what} is not {describe(t)}: found {found} coordinates") from None
    try:
        x = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError):
        raise ContractViolation(f"{what} is not {describe(t)}: found {type(value).__name__}") from None
    dim = t.dim.data
    if x.ndim == 0 or x.shape[-1] != dim:
        raise ContractViolation(f"{what} is not {describe(t)}: found shape {tuple(x.shape)} "
                                f"(the last axis must have {dim} coordinates)")
    if not np.all(np.isfinite(x)):
        raise ContractViolation(f"{what} is not {describe(t)}: it has NaN or infinite coordinates")
    m = t.manifold
    tol = 1e-4
    if isinstance(m, geo.PoincareAttr):
        bad = np.linalg.norm(x, axis=-1) >= 1 / math.sqrt(m.c.value.data)
        rule = f"inside the ball of radius {1 / math.sqrt(m.c.value.data):g}"
    elif isinstance(m, geo.SphereAttr):
        bad = np.abs(np.linalg.norm(x, axis=-1) - 1) > tol
        rule = "of norm 1"
    elif isinstance(m, geo.LorentzAttr):
        c = m.c.value.data
        inner = -x[..., 0] ** 2 + np.sum(x[..., 1:] ** 2, axis=-1)
        bad = (np.abs(inner + 1 / c) > tol * (1 + np.abs(inner))) | (x[..., 0] <= 0)
        rule = f"on the upper sheet <x, x> = -{1 / c:g}"
    else:
        return x
    if np.any(bad):
        raise ContractViolation(f"{what} is not {describe(t)}: a point is not {rule}")
    return x


def _not_numeric(value) -> str | None:
    """The type name of a coordinate that is not a number (a bool, a string, ...), or None."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "iuf":
            return None
        if value.dtype.kind != "O":
            return value.dtype.name
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return next((found for found in map(_not_numeric, value) if found is not None), None)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        return type(value).__name__
    return None


class Context(dict):
    """A run's context: typed slots by name, and its version, the number of writes that
    made it (a sub-workflow's copy starts from its caller's version)."""

    def __init__(self, slots=(), version: int = 0):
        super().__init__(slots)
        self.version = version

    def set(self, slot: str, value) -> None:
        self[slot] = value
        self.version += 1

    def copy(self) -> Context:
        return Context(self, self.version)


def context_view(context: dict) -> Mapping:
    return MappingProxyType(dict(context))
