"""Derivative requests: ``derive lap_u = laplacian(U)``, ``derive d4 = directional(U, order = 4)``.

One rule per derivative in ``DERIVATIVES``. A rule checks the model fits (e.g. the
Laplacian needs a Euclidean input) and gives the derived function's signature; the
jet passes lower the request later.
"""

from __future__ import annotations

from dataclasses import dataclass

from geomir.diagnostics import GeoNameError, GeoTypeError, Note

from . import ast
from .common import constant, source_text, suggest
from .types import ValueType

MAX_ORDER = 8


@dataclass(frozen=True)
class JetValue:
    """K+1 Taylor coefficients of a value of type ``base``."""

    order: int
    base: ValueType

    def __str__(self) -> str:
        return f"jet<{self.order}, {self.base}>"


@dataclass(frozen=True)
class DerivedSignature:
    op: str
    model: ast.ModelDef
    wrt: int
    order: int | None
    inputs: tuple[tuple[str, ValueType], ...]
    results: tuple[ValueType | JetValue, ...]


@dataclass(frozen=True)
class _Rule:
    extra: str | None  # name of the extra input after the model's inputs
    keywords: tuple[str, ...]
    doc: str


DERIVATIVES = {
    "jvp": _Rule("v", ("wrt",), "(f(x), J v): Jacobian-vector product along direction v"),
    "vjp": _Rule("w", ("wrt",), "wᵀ J: vector-Jacobian product with cotangent w of the output"),
    "hvp": _Rule("v", ("wrt",), "H v: Hessian-vector product of a scalar model"),
    "grad": _Rule(None, ("wrt",), "∇f: gradient of a scalar model"),
    "directional": _Rule("v", ("wrt", "order"), "Taylor coefficients 0..K of t ↦ f(x + t v)"),
    "laplacian": _Rule(None, ("wrt",), "Δf: trace of the Hessian, per output component"),
    "biharmonic": _Rule(None, ("wrt",), "Δ²f: Laplacian of the Laplacian, per output component"),
}


def check_derive(decl: ast.DeriveDecl, models: dict[str, ast.ModelDef], derived: dict) -> DerivedSignature:
    rule = DERIVATIVES.get(decl.op)
    if rule is None:
        raise GeoNameError(
            f"unknown derivative '{decl.op}'{suggest(decl.op, DERIVATIVES)} (expected one of {', '.join(DERIVATIVES)})",
            decl.op_span,
        )
    positional = [a for a in decl.args if isinstance(a, ast.Positional)]
    usage = f"{decl.op}(Model{''.join(', ' + k + ' = ...' for k in rule.keywords)})"
    if len(positional) != 1 or not isinstance(positional[0].value, ast.Var):
        span = positional[1].span if len(positional) > 1 else decl.op_span
        raise GeoTypeError(f"{decl.op} takes one model name, then keywords: write {usage}", span)
    target = positional[0].value
    model = models.get(target.name)
    if model is None:
        notes = [Note(f"'{target.name}' is a derived function; derive from its model instead")] if target.name in derived else []
        raise GeoNameError(f"unknown model '{target.name}'{suggest(target.name, models)}", target.span, notes)
    keywords: dict[str, ast.Keyword] = {}
    for arg in decl.args:
        if isinstance(arg, ast.Dims):
            raise GeoTypeError(f"{decl.op} takes no 'in -> out' shape: write {usage}", arg.span)
        if isinstance(arg, ast.Keyword):
            if arg.name not in rule.keywords:
                raise GeoTypeError(f"{decl.op} has no keyword '{arg.name}' (keywords: {', '.join(rule.keywords)})", arg.name_span)
            if arg.name in keywords:
                raise GeoTypeError(f"keyword '{arg.name}' given twice", arg.name_span)
            keywords[arg.name] = arg

    wrt = 0
    if "wrt" in keywords:
        v = keywords["wrt"].value
        names = [p.name for p in model.params]
        if not isinstance(v, ast.Var) or v.name not in names:
            raise GeoNameError(
                f"wrt must name an input of model {model.name} ({', '.join(names)}), found '{source_text(v)}'", v.span
            )
        wrt = names.index(v.name)
    paths = [p for p in model.params if p.type.path]
    if paths:
        raise GeoTypeError(
            f"{decl.op} of a model with path inputs is not supported: input '{paths[0].name}' of {model.name} "
            f"is {paths[0].type.describe()} (winding numbers are locally constant; differentiate a model of points)",
            target.span,
        )
    x = model.params[wrt].type
    out = model.result_type

    order = None
    if decl.op == "directional":
        if "order" not in keywords:
            raise GeoTypeError(f"directional needs the derivative order: write {usage}", decl.op_span)
        v = keywords["order"].value
        value = constant(v)
        if value is None or not value.is_int or not 1 <= value.value <= MAX_ORDER:
            found = (f"{value.value:g}" if value.is_int else repr(float(value.value))) if value else f"'{source_text(v)}'"
            raise GeoTypeError(f"order must be an integer from 1 to {MAX_ORDER}, found {found}", v.span)
        order = int(value.value)

    where = keywords["wrt"].value.span if "wrt" in keywords else target.span
    if decl.op in ("laplacian", "biharmonic", "hvp", "grad"):
        if not (x.kind == "euclidean" and not x.tangent):
            raise GeoTypeError(
                f"{decl.op} needs a Euclidean input; input '{model.params[wrt].name}' of {model.name} is {x.describe()}",
                where,
            )
        if out.kind != "euclidean" or out.tangent:
            raise GeoTypeError(f"{decl.op} needs a Euclidean output; {model.name} returns {out.describe()}", target.span)
    if decl.op in ("hvp", "grad") and out.dim != 1:
        raise GeoTypeError(f"{decl.op} needs a scalar model (output R[1]); {model.name} returns {out.describe()}", target.span)

    inputs = tuple((p.name, p.type) for p in model.params)
    if rule.extra:
        extra_type = out.as_tangent() if decl.op == "vjp" else x.as_tangent()
        taken = {p.name for p in model.params}
        name = rule.extra
        while name in taken:
            name += "_"
        inputs += ((name, extra_type),)
    results: tuple = {
        "jvp": (out, out.as_tangent()),
        "vjp": (x.as_tangent(),),
        "hvp": (x.as_tangent(),),
        "grad": (x.as_tangent(),),
        "directional": (JetValue(order or 0, out),),
        "laplacian": (out,),
        "biharmonic": (out,),
    }[decl.op]
    return DerivedSignature(decl.op, model, wrt, order, inputs, results)
