"""Contract annotations on models: ``@lipschitz(L)``, ``@equivariant(G)``, ``@monotone(x, increasing)``.

One rule per contract in ``CONTRACT_RULES``. A rule checks the annotation's arguments and
that the contract makes sense for the model's signature, and returns a frontend contract
value that the IR builder turns into a ``#contract.*`` attribute. Proving the contract
is the ``verify-contracts`` pass's job, not the type checker's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from geomir.diagnostics import ContractAnnotationError, Note

from geomir.dialects.contract import EquivariantAttr, signature_problem

from . import ast
from .common import constant, source_text, suggest
from .types import ValueType

GROUPS = {
    "so2": "rotations SO(2) acting on consecutive coordinate pairs of R^2k",
    "perm": "permutations of the coordinates",
    "torus_translation": "translations on the torus",
    "ball_rotation": "rotations of the Poincaré ball (isometries fixing the origin)",
}
DIRECTIONS = ("increasing", "decreasing")


@dataclass(frozen=True)
class Lipschitz:
    bound: float
    radius: float | None = None  # the bound holds on inputs within this distance of the origin


@dataclass(frozen=True)
class Equivariant:
    group: str


@dataclass(frozen=True)
class Monotone:
    inputs: tuple[int, ...]
    direction: str


def _err(message: str, node) -> ContractAnnotationError:
    return ContractAnnotationError(message, node.span if hasattr(node, "span") else node)


def _positional(a: ast.Annotation, usage: str) -> list[ast.Expr]:
    for arg in a.args:
        if not isinstance(arg, ast.Positional):
            raise _err(f"@{a.name} takes positional arguments only: {usage}", arg)
    return [arg.value for arg in a.args]


def _lipschitz(a: ast.Annotation, model: ast.ModelDef) -> Lipschitz:
    usage = "@lipschitz(L) or @lipschitz(L, radius = R) with numbers L, R > 0"
    keywords = [arg for arg in a.args if isinstance(arg, ast.Keyword)]
    args = [arg.value for arg in a.args if isinstance(arg, ast.Positional)]
    if len(args) != 1:
        raise _err(f"@lipschitz takes one bound, found {len(args)}: write {usage}", a.name_span if not args else args[-1])
    bound = _positive_number(args[0], "Lipschitz bound")
    radius = None
    for kw in keywords:
        if kw.name != "radius":
            raise _err(f"unknown option '{kw.name}' of @lipschitz{suggest(kw.name, ('radius',))} (write {usage})", kw.name_span)
        if radius is not None:
            raise _err("@lipschitz's radius is given twice", kw.name_span)
        radius = _positive_number(kw.value, "radius")
    return Lipschitz(bound, radius)


def _positive_number(expr: ast.Expr, what: str) -> float:
    value = constant(expr)
    if value is None:
        raise _err(f"the {what} must be a number, found '{source_text(expr)}'", expr)
    if not (value.value > 0 and math.isfinite(value.value)):
        raise _err(f"the {what} must be a finite number > 0, found {value.value:g}", expr)
    return value.value


def _equivariant(a: ast.Annotation, model: ast.ModelDef) -> Equivariant:
    usage = f"@equivariant(G) with G one of {', '.join(GROUPS)}"
    args = _positional(a, usage)
    if len(args) != 1:
        raise _err(f"@equivariant takes one argument, found {len(args)}: write {usage}", a.name_span if not args else args[-1])
    arg = args[0]
    if not isinstance(arg, ast.Var) or arg.name not in GROUPS:
        name = arg.name if isinstance(arg, ast.Var) else source_text(arg)
        raise _err(f"unknown symmetry group '{name}'{suggest(name.lower(), GROUPS)} (expected one of {', '.join(GROUPS)})", arg)
    group = arg.name
    problem = _signature_problem(EquivariantAttr(group), model)
    if problem:
        found = ", ".join(str(p.type) for p in model.params) + f" -> {model.result_type}"
        raise _err(f"@{problem}; model {model.name} has ({found})", arg)
    return Equivariant(group)


def _signature_problem(attr, model: ast.ModelDef) -> str | None:
    """The IR's rule (geomir.dialects.contract.signature_problem) on the model's types."""
    from .irgen import ir_type

    return signature_problem(attr, [ir_type(p.type) for p in model.params], [ir_type(model.result_type)])


def _monotone(a: ast.Annotation, model: ast.ModelDef) -> Monotone:
    usage = "@monotone(x, ..., increasing|decreasing) naming inputs of the model"
    args = _positional(a, usage)
    if len(args) < 2:
        raise _err(f"@monotone needs at least one input and a direction: write {usage}", a.name_span if not args else args[-1])
    *names, direction = args
    if not isinstance(direction, ast.Var) or direction.name not in DIRECTIONS:
        raise _err(f"the last argument of @monotone must be increasing or decreasing, found '{source_text(direction)}'", direction)
    params = {p.name: i for i, p in enumerate(model.params)}
    indices: list[int] = []
    for n in names:
        if not isinstance(n, ast.Var) or n.name not in params:
            shown = n.name if isinstance(n, ast.Var) else source_text(n)
            raise _err(f"@monotone names '{shown}', which is not an input of model {model.name} (inputs: {', '.join(params)})", n)
        index = params[n.name]
        if index in indices:
            raise _err(f"input '{n.name}' named twice in @monotone", n)
        if not _euclid(model.params[index].type):
            raise _err(f"monotonicity needs an ordered input; '{n.name}' is {model.params[index].type.describe()}", n)
        indices.append(index)
    if not _euclid(model.result_type):
        raise _err(f"monotonicity needs a Euclidean output; model {model.name} returns {model.result_type.describe()}", a.name_span)
    return Monotone(tuple(indices), direction.name)


def _euclid(t: ValueType) -> bool:
    return _point_on(t, "euclidean")


def _point_on(t: ValueType, kind: str) -> bool:
    """A point (not a tangent vector) on a manifold of this kind, as the IR verifier requires."""
    return t.kind == kind and not t.tangent


CONTRACT_RULES = {"lipschitz": _lipschitz, "equivariant": _equivariant, "monotone": _monotone}


def check_annotation(a: ast.Annotation, model: ast.ModelDef):
    rule = CONTRACT_RULES.get(a.name)
    if rule is None:
        raise ContractAnnotationError(
            f"unknown contract '@{a.name}'{suggest(a.name, CONTRACT_RULES)} (expected one of "
            + ", ".join("@" + n for n in CONTRACT_RULES)
            + ")",
            a.name_span,
        )
    paths = [p for p in model.params if p.type.path]
    if paths:
        raise _err(f"contracts are not checked on models with path inputs; input '{paths[0].name}' of model "
                   f"{model.name} is {paths[0].type.describe()}", a.name_span)
    return rule(a, model)


def check_no_repeats(model: ast.ModelDef) -> None:
    """One contract of a kind per model, for a checked model's annotations: two ``@lipschitz``
    (a second bound, or the same again: the language gives no meaning to two), the same
    ``@equivariant`` group twice, or an input named by two ``@monotone`` are located errors
    at the second annotation, with a note at the first."""
    seen: dict[object, ast.Annotation] = {}
    for a in model.annotations:
        c = a.contract
        if isinstance(c, Lipschitz):
            keys, what, hint = ["lipschitz"], "two @lipschitz contracts", "give one: @lipschitz(L) or @lipschitz(L, radius = R)"
        elif isinstance(c, Equivariant):
            keys, what, hint = [("equivariant", c.group)], f"@equivariant({c.group}) twice", "drop one"
        elif isinstance(c, Monotone):
            keys, what, hint = [("monotone", i) for i in c.inputs], None, "name each input in one @monotone"
        else:
            continue
        for key in keys:
            first = seen.get(key)
            if first is None:
                continue
            if what is None:
                what = f"two @monotone contracts naming input '{model.params[key[1]].name}'"
            raise ContractAnnotationError(
                f"model {model.name} has {what} (the first at {first.name_span.location}); {hint}", a.name_span,
                [Note(f"the first @{first.name} of model {model.name}", first.name_span)],
            )
        for key in keys:
            seen[key] = a
