"""Kernel contracts: the YAML file, its schema (pydantic) and its errors with lines.

A contract bounds how far a *candidate* kernel (an inference build: Triton, JAX, lower
precision) may drift from the *reference* kernel (the training build: torch, float64) of
the same model with the same weights. See docs/kernel-contracts.md for every field.

    contract: hyp-encoder-v1
    model: examples/hyperbolic_mlp.geo
    reference: {target: torch, dtype: float64}
    candidate: {target: triton, dtype: float32}
    inputs: {distribution: normal, scale: 0.25, samples: 4096, seed: 0}
    numerical: {max_abs: 1e-2, max_rel: 3e-2, metric: manifold}
    statistical: {quantile: 0.999, max_quantile_error: 5e-3, max_kl: 1e-3}
    runtime: {max_p99_ms: 2.0, max_memory_mb: 512}
    observability: {sample_rate: 0.01, record: [inputs_hash, max_error, latency_ms]}
    escalation: [{above: 0.5, action: warn}, {above: 1.0, action: fallback}, {above: 2.0, action: block}]
    promotion: [offline, shadow, canary, full]

:func:`load_contract` reads a file (or text), validates it and raises
:class:`ContractSpecError` at the line and column of the offending field, naming it
(``hyp.yaml:6:20: error: numerical.max_abs: must be a number > 0, found -1``).
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from geomir.diagnostics import EncodingError, SourceError, SourceFile, Span, UsageError, read_text_file

TARGETS = ("torch", "jax", "triton")
DTYPES = ("float64", "float32", "bfloat16", "float16")
METRICS = ("euclidean", "manifold", "relative")
RECORDS = ("inputs_hash", "max_error", "mean_error", "latency_ms", "kl", "top1", "pearson", "max_prob_diff",
           "mean_prob_diff")
ACTIONS = ("warn", "fallback", "block")
STAGES = ("offline", "shadow", "canary", "full")


class ContractSpecError(SourceError):
    """A contract file that does not parse or validate (file:line:col, the field)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _found(v) -> str:
    """How a YAML value reads in a message: ``true``, ``'text'``, ``12``."""
    return str(v).lower() if isinstance(v, bool) or v is None else repr(v)


def _number(kind: str):
    """A before-validator: ``kind`` values only, not booleans or text (pydantic's lax mode
    reads ``true`` as 1 and ``"100"`` as 100), and not NaN or infinite (``.inf``)."""

    def check(v):
        if isinstance(v, (bool, str)):
            raise ValueError(f"must be {kind}, found {_found(v)}")
        if isinstance(v, float) and math.isnan(v):
            raise ValueError(f"must be {kind}, found nan")
        if isinstance(v, float) and math.isinf(v):
            raise ValueError(f"must be {'a finite number' if kind == 'a number' else kind}, found {v}")
        return v

    return BeforeValidator(check)


Number = Annotated[float, _number("a number")]
Integer = Annotated[int, _number("an integer")]


def _positive(name: str):
    def check(cls, v):
        if v is not None and not (v > 0 and math.isfinite(v)):
            raise ValueError(f"must be a number > 0, found {v:g}")
        return v

    return field_validator(name)(classmethod(check))


class Kernel(_Strict):
    """One build of the model: the target, the element type of weights and inputs, and
    for Triton the dot-product precision."""

    target: Literal["torch", "jax", "triton"]
    dtype: Literal["float64", "float32", "bfloat16", "float16"] = "float32"
    precision: Literal["ieee", "tf32", "tf32x3", "bf16"] | None = None
    perturb: Number = Field(0.0, ge=0.0, description="fault injection for testing: add uniform noise in "
                            "[-p, p] (absolute, in output units) to every candidate output")

    @model_validator(mode="after")
    def _precision_on_triton(self):
        if self.precision is not None and self.target != "triton":
            raise ValueError(f"precision applies to target triton only, not {self.target}")
        return self


class Reference(Kernel):
    """The reference build: the ground truth, so without ``perturb``."""

    perturb: Number = Field(0.0, description="not allowed: fault injection applies to the candidate only")

    @field_validator("perturb")
    @classmethod
    def _no_perturb(cls, v):
        if v != 0:
            raise ValueError(f"applies to the candidate only (fault injection); the reference is the ground truth, "
                             f"found {v:g}")
        return v


class Inputs(_Strict):
    """The inputs both kernels run on: every model input drawn from ``distribution``
    (tangent coordinates at the origin, mapped to the manifold for points) with ``scale``."""

    distribution: Literal["normal", "uniform"] = "normal"
    scale: Number | None = None
    samples: Integer = Field(4096, ge=1, le=10_000_000)
    seed: Integer = Field(0, ge=0)
    batch: Integer = Field(1024, ge=1, description="rows per kernel call")

    _scale = _positive("scale")


class Numerical(_Strict):
    """Per-sample error bounds. Left out, each bound is the candidate dtype's default
    (torch.testing.assert_close): error <= atol + rtol |reference|."""

    max_abs: Number | None = None
    max_rel: Number | None = None
    metric: Literal["euclidean", "manifold", "relative"] = "euclidean"

    _abs = _positive("max_abs")
    _rel = _positive("max_rel")


class Statistical(_Strict):
    """Distribution-level bounds: the ``quantile`` of the per-sample error, the KL
    divergence between the output distributions (softmax of the outputs) at that
    quantile, the top-1 agreement rate."""

    quantile: Number = Field(0.999, gt=0.0, le=1.0)
    max_quantile_error: Number | None = None
    max_kl: Number | None = None
    min_top1: Annotated[float, Field(ge=0.0, le=1.0), _number("a number")] | None = None

    _err = _positive("max_quantile_error")
    _kl = _positive("max_kl")


class Runtime(_Strict):
    """Latency (p99 of a kernel call on ``inputs.batch`` rows) and peak memory bounds."""

    max_p99_ms: Number | None = None
    max_memory_mb: Number | None = None
    repeats: Integer = Field(30, ge=3)

    _p99 = _positive("max_p99_ms")
    _mem = _positive("max_memory_mb")


class Observability(_Strict):
    sample_rate: Number = Field(0.01, ge=0.0, le=1.0)
    record: tuple[Literal["inputs_hash", "max_error", "mean_error", "latency_ms", "kl", "top1", "pearson",
                          "max_prob_diff", "mean_prob_diff"], ...] = ("inputs_hash", "max_error", "latency_ms")


class Step(_Strict):
    """``above`` a share of a clause's bound (measured / bound), take ``action``."""

    above: Number
    action: Literal["warn", "fallback", "block"]

    _above = _positive("above")


class Stage(_Strict):
    """One live stage of the promotion (in the manner of Argo Rollouts' analysis runs):
    after ``window`` calls (or ``seconds``, whichever comes first), the compared calls of the window are evaluated against every
    clause. More than ``failure_limit`` failed calls (a numerical clause violated on the
    call) fails the stage at once; fewer than ``min_samples`` compared calls at the end is
    inconclusive (the promotion pauses); else it passes and the next stage starts.
    ``fraction``: the share of calls the candidate answers (canary)."""

    window: Integer = Field(200, ge=1)
    seconds: Annotated[float, Field(gt=0.0), _number("a number")] | None = Field(
        None, description="the window also ends after this long")
    failure_limit: Integer = Field(0, ge=0)
    min_samples: Integer = Field(20, ge=1)
    fraction: Number = Field(0.1, gt=0.0, le=1.0)

    _seconds = _positive("seconds")

    @model_validator(mode="after")
    def _samples_fit_the_window(self):
        if self.min_samples > self.window:
            raise ValueError(f"min_samples {self.min_samples} > window {self.window}: a window compares at most "
                             "window calls, so every window would be inconclusive")
        return self


def _stages() -> dict:
    return {"shadow": Stage(), "canary": Stage(), "full": Stage()}


class Contract(_Strict):
    contract: str = Field(min_length=1, description="the contract's name")
    model: str = Field(description="the .geo program, relative to the contract file")
    entry: str | None = Field(None, description="the model of the program (default: its only one)")
    weights: str | None = Field(None, description="trained weights (.npz/.pt), default: seed 0")
    reference: Reference
    candidate: Kernel
    inputs: Inputs = Inputs()
    numerical: Numerical = Numerical()
    statistical: Statistical | None = None
    runtime: Runtime | None = None
    observability: Observability = Observability()
    escalation: tuple[Step, ...] = (Step(above=1.0, action="warn"),)
    promotion: tuple[Literal["offline", "shadow", "canary", "full"], ...] = STAGES
    stages: dict[Literal["shadow", "canary", "full"], Stage] = Field(default_factory=_stages)

    @field_validator("stages")
    @classmethod
    def _all_stages(cls, given):
        return {**_stages(), **given}

    @field_validator("escalation")
    @classmethod
    def _increasing(cls, steps):
        thresholds = [s.above for s in steps]
        if thresholds != sorted(thresholds) or len(set(thresholds)) != len(thresholds):
            raise ValueError(f"thresholds must increase, found {thresholds}")
        return steps

    @field_validator("promotion")
    @classmethod
    def _ordered(cls, stages):
        if not stages or stages[0] != "offline" or len(set(stages)) != len(stages) or \
                list(stages) != [s for s in STAGES if s in stages]:
            raise ValueError(f"stages run in the order {', '.join(STAGES)}, starting with offline; found "
                             f"{', '.join(stages) or 'none'}")
        return stages


# -- YAML with positions ------------------------------------------------------------------------

_CORE = (  # YAML 1.2 core schema (yaml.org/spec/1.2.2, 10.3.2), and the merge key ``<<``
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", "~nN"),
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("tag:yaml.org,2002:int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
    ("tag:yaml.org,2002:float", r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
     r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$", "-+.0123456789"),
    ("tag:yaml.org,2002:merge", r"^(?:<<)$", "<"),
)
"""PyYAML reads YAML 1.1 (``0100`` octal, ``1:30`` sexagesimal, ``1_000``, ``off`` a
boolean, ``1e-3`` text); a contract is YAML 1.2: these resolvers replace PyYAML's."""


def _loader():
    """A safe YAML 1.2 (core schema) loader that refuses duplicate keys and keys that are
    not names, and records where each alias is used (built lazily: PyYAML is imported on
    first use)."""
    import yaml

    class Loader(yaml.SafeLoader):
        def __init__(self, stream):
            super().__init__(stream)
            self.alias_uses: dict = {}  # (id(parent node), id(key node) or index) -> mark of the alias

        def compose_node(self, parent, index):
            use = self.peek_event().start_mark if self.check_event(yaml.AliasEvent) else None
            node = super().compose_node(parent, index)
            if use is not None:
                self.alias_uses[(id(parent), id(index) if isinstance(index, yaml.Node) else index)] = use
            return node

        def construct_yaml_int(self, node):
            value = self.construct_scalar(node)
            base = {"0o": 8, "0x": 16}.get(value[:2], 10)
            return int(value[2:] if base != 10 else value, base)

        def construct_mapping(self, node, deep=False):
            seen: dict = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                if not isinstance(key, str):
                    raise yaml.constructor.ConstructorError(
                        None, None, f"a key is a field name, found {key!r} ({type(key).__name__})", key_node.start_mark)
                if key in seen:
                    first = seen[key]
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key '{key}' (first at line {first.line + 1}, column "
                        f"{first.column + 1}): a key may appear once in a mapping", key_node.start_mark)
                seen[key] = key_node.start_mark
            return super().construct_mapping(node, deep)

    Loader.add_constructor("tag:yaml.org,2002:int", Loader.construct_yaml_int)
    Loader.yaml_implicit_resolvers = {}
    for tag, regexp, first in _CORE:
        Loader.add_implicit_resolver(tag, re.compile(regexp), [*first, ""] if tag.endswith("null") else list(first))
    return Loader


def _parse(text: str):
    """(the YAML node tree, the data, where aliases are used) of one document; raises
    yaml.YAMLError."""
    loader = _loader()(text)
    try:
        node = loader.get_single_node()
        return node, (loader.construct_document(node) if node is not None else None), loader.alias_uses
    finally:
        loader.dispose()


def _at(mark) -> tuple[int, int]:
    return mark.line + 1, mark.column + 1


def _positions(node, aliases: dict, path=(), out=None, at=None, above=()) -> dict[tuple, tuple[int, int]]:
    """(path of keys/indices) -> (line, column) of every node, 1-based; keys map to the key.
    Under an alias, everything is at the alias (``at``), not at its anchor."""
    import yaml

    out = {} if out is None else out
    out.setdefault(path, at or _at(node.start_mark))
    if id(node) in above:  # a recursive alias
        return out
    children = []
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            out.setdefault((*path, key.value, "__key__"), at or _at(key.start_mark))
            children.append(((*path, key.value), value, aliases.get((id(node), id(key)))))
    elif isinstance(node, yaml.SequenceNode):
        children = [((*path, i), item, aliases.get((id(node), i))) for i, item in enumerate(node.value)]
    for where, child, use in children:
        _positions(child, aliases, where, out, at or (use and _at(use)), (*above, id(node)))
    return out


def _describe(loc: tuple) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "the contract"


def contract_file(source: str | Path) -> Path | None:
    """The file a contract ``source`` names, or None for YAML text: a string with a
    newline, or one that is no existing file and reads as a YAML mapping (a one-line
    ``{contract: ..., model: ...}``, or ``contract: x``); any other string is a path."""
    import yaml

    if not isinstance(source, str):
        return Path(source)
    if "\n" in source:
        return None
    if os.path.isfile(source):
        return Path(source)
    if source.lstrip().startswith("{"):  # flow-style YAML, even when it does not parse (an error at its column)
        return None
    try:
        return None if isinstance(_parse(source)[1], dict) else Path(source)
    except yaml.YAMLError:
        return Path(source)


def load_contract(source: str | Path) -> tuple[Contract, Path]:
    """The validated contract and its file's directory (the base of relative paths);
    ``source``: a path or YAML text (:func:`contract_file` tells which)."""
    import yaml

    path = contract_file(source)
    if path is not None:
        text, name = _read(path, text_too=isinstance(source, str) and not path.exists()), str(path)
    else:
        text, name = str(source), "<contract>"
    file = SourceFile(name, text)
    try:
        node, data, aliases = _parse(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = getattr(err, "problem", None) or str(err)
        message = problem if problem.startswith(("duplicate key", "a key is")) else f"not valid YAML: {problem}"
        raise ContractSpecError(message, Span(file, line, col)) from None
    if not isinstance(data, dict):
        raise ContractSpecError("a contract is a YAML mapping (contract: ..., model: ..., reference: ..., ...)",
                                Span(file, 1, 1))
    try:
        contract = Contract.model_validate(data)
    except ValidationError as err:
        raise _spec_error(err.errors()[0], _positions(node, aliases), file) from None
    return contract, (path.parent if path is not None else Path.cwd())


def _spec_error(first: dict, positions: dict, file: SourceFile) -> ContractSpecError:
    """Pydantic's first error as ``path: what was expected, found what`` at its line."""
    loc = tuple(p for p in first["loc"] if not (isinstance(p, str) and p.startswith(("function-", "literal"))))
    message = first["msg"].removeprefix("Value error, ").replace("Input should be", "must be")
    if "[key]" in loc:  # a mapping key outside a Literal (stages: {offline: ...}): at the key
        loc = loc[:loc.index("[key]")]
        return ContractSpecError(f"{_describe(loc)}: unknown key, {message.replace('must be', 'expected')}",
                                 Span(file, *positions.get((*loc, "__key__"), (1, 1))))
    where = positions.get(loc) or positions.get((*loc, "__key__"))
    if first["type"] == "extra_forbidden":
        where = positions.get((*loc, "__key__"), where)
    parent = loc
    while where is None and parent:
        parent = parent[:-1]
        where = positions.get(parent)
    if first["type"] == "extra_forbidden":
        message = "unknown field" + _known(loc)
    elif first["type"] == "missing":
        message = "is required"
    elif "found" not in message and isinstance(first.get("input"), (str, int, float, bool)):
        message = f"{message}, found {_found(first['input'])}"
    return ContractSpecError(f"{_describe(loc)}: {message}", Span(file, *(where or (1, 1))))


def _read(path: Path, text_too: bool = False) -> str:
    """The contract file's text, read as every geomir tool reads a file
    (:func:`geomir.diagnostics.read_text_file`): not UTF-8 is an error at the first bad
    byte's line and column, a :class:`ContractSpecError` as any other wrong contract file.
    ``text_too``: the path is no file, given as a string that could have been YAML text:
    the error says it is neither."""
    try:
        return read_text_file(path, "contract ")
    except EncodingError as err:
        raise ContractSpecError(err.message, err.span) from None
    except UsageError as err:
        if not text_too:
            raise
        raise UsageError(f"{err.message}; nor is it the YAML text of a contract (a mapping: "
                         "'{contract: ..., model: ...}' or lines 'key: value')") from None


def _known(loc: tuple) -> str:
    model = Contract
    parts = list(loc[:-1])
    while parts:
        part = parts.pop(0)
        field = model.model_fields.get(part) if isinstance(part, str) else None
        annotation = getattr(field, "annotation", None)
        args = getattr(annotation, "__args__", (annotation,))
        candidates = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
        if not candidates:
            return ""
        model = candidates[0]
        if getattr(annotation, "__origin__", None) in (dict, tuple) and parts:
            parts.pop(0)  # the key or index under the field
    return f" (expected one of {', '.join(model.model_fields)})"


def json_schema() -> dict:
    """The contract file's JSON schema (docs/kernel-contract.schema.json)."""
    return Contract.model_json_schema()
