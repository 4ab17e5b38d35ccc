"""Type checker for .geo programs.

Needs: a parsed :class:`ast.Program`. Guarantees: every name resolves, every call has
the right arity and argument types (manifold, dimension, point vs tangent, element
type), contract annotations and derivative requests fit the models they name. It fills
``Expr.type``, ``Call.target``/``Call.checked``, ``Param.type``, ``ModelDef.result_type``,
``Annotation.contract`` and ``DeriveDecl.signature`` in place, and raises the first error
as a :class:`SourceError` (file:line:col, caret, expected vs found).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from geomir.diagnostics import GeoNameError, GeoTypeError, Note, Span

from . import ast
from .builtins import BUILTINS, EXPLICIT_WEIGHT, PATH_BUILTINS, Builtin
from .common import constant, fold, program_depth, room_for, source_text, suggest
from .contracts import check_annotation, check_no_repeats
from .derive import check_derive
from .types import (DTYPES, EUCLIDEAN, MANIFOLD_KINDS, PATH_MANIFOLDS, TORUS_UNITS, Manifold, ScalarType, ValueType,
                    WeightType, check_dim)


# --- manifold declarations ---------------------------------------------------------


def check_manifold_decl(decl: ast.ManifoldDecl) -> Manifold:
    if decl.kind not in MANIFOLD_KINDS:
        raise GeoTypeError(
            f"unknown manifold kind '{decl.kind}'{suggest(decl.kind, MANIFOLD_KINDS)} "
            f"(expected one of {', '.join(MANIFOLD_KINDS)})",
            decl.kind_span,
        )
    allowed = {"poincare": ("c",), "lorentz": ("c",), "torus": ("units",)}.get(decl.kind, ())
    values: dict[str, ast.Keyword] = {}
    for arg in decl.args:
        if not isinstance(arg, ast.Keyword):
            expected = f"a keyword argument ({', '.join(a + ' = ...' for a in allowed)})" if allowed else "no arguments"
            raise GeoTypeError(f"{decl.kind}(...) takes {expected}, found a positional argument", arg.span)
        if arg.name not in allowed:
            what = f"takes {', '.join(allowed)}" if allowed else "takes no arguments"
            raise GeoTypeError(f"{decl.kind} {what}, found '{arg.name}'", arg.name_span)
        if arg.name in values:
            raise GeoTypeError(f"'{arg.name}' given twice", arg.name_span)
        values[arg.name] = arg
    c = units = None
    if "c" in allowed:
        c = 1.0
        if "c" in values:
            value = constant(values["c"].value)
            if value is None or not value.value > 0 or value.value == float("inf"):
                found = f"{value.value:g}" if value else "a non-constant expression"
                raise GeoTypeError(
                    f"curvature c of {decl.kind} must be a positive number, found {found}",
                    values["c"].value.span,
                )
            c = value.value
    if "units" in allowed:
        units = "radians"
        if "units" in values:
            v = values["units"].value
            if not isinstance(v, ast.Var) or v.name not in TORUS_UNITS:
                raise GeoTypeError(
                    f"torus units must be one of {', '.join(TORUS_UNITS)}, found '{source_text(v)}'", v.span
                )
            units = v.name
    return Manifold(decl.kind, c, units, decl.name)


# --- expressions -------------------------------------------------------------------


class CallSite:
    """A builtin call under check: typed positional arguments, keywords and dims."""

    def __init__(self, builtin: Builtin, call: ast.Call, args: list[tuple[ast.Expr, object]]):
        self.builtin = builtin
        self.call = call
        self.args = args
        self.keywords = {a.name: a for a in call.args if isinstance(a, ast.Keyword)}
        dims = [a for a in call.args if isinstance(a, ast.Dims)]
        self.dims = dims[0] if dims else None
        self.checked: dict[str, object] = {}
        self._check_shape(dims)

    @property
    def name(self) -> str:
        return self.builtin.name

    def error(self, message: str, span: Span | None = None) -> GeoTypeError:
        return GeoTypeError(message, span or self.call.callee_span)

    def _check_shape(self, dims: list[ast.Dims]) -> None:
        b = self.builtin
        sig = b.signature
        # Keywords first: in tanh(x = y) the mistake is the keyword, not the arity.
        seen = set()
        for a in self.call.args:
            if isinstance(a, ast.Keyword):
                if a.name not in b.keywords:
                    allowed = ", ".join(b.keywords) or "none"
                    raise self.error(f"{b.name} has no keyword '{a.name}' (keywords: {allowed})", a.name_span)
                if a.name in seen:
                    raise self.error(f"keyword '{a.name}' given twice", a.name_span)
                seen.add(a.name)
        if not b.arity_ok(len(self.args)):
            span = self.args[len(b.params)][0].span if len(self.args) > len(b.params) else self.call.span
            plural = "argument" if len(b.params) == 1 else "arguments"
            least = "at least " if b.variadic else ""
            raise self.error(
                f"wrong number of arguments: {sig} takes {least}{len(b.params)} {plural}, found {len(self.args)}",
                span,
            )
        if b.layer and not dims:
            raise self.error(f"{b.name} declares its parameters: write {sig}", self.call.span)
        if dims and not b.layer:
            raise self.error(f"{b.name} has no parameters; '{dims[0].in_dim} -> {dims[0].out_dim}' is not allowed here (expected {sig})", dims[0].span)
        if len(dims) > 1:
            raise self.error(f"{b.name} takes one 'in -> out' shape, found {len(dims)}", dims[1].span)

    # -- argument accessors, each raising a located error
    def value(self, i: int) -> ValueType:
        """Argument ``i`` as a point or vector (never a path: only :meth:`path` takes one)."""
        expr, ty = self.args[i]
        if not isinstance(ty, ValueType) or ty.path:
            hint = f"; a path is taken only by {', '.join(PATH_BUILTINS)}" if isinstance(ty, ValueType) else ""
            raise self.error(
                f"argument {i + 1} of {self.name} ('{self.builtin.param_name(i)}') must be a point or vector, "
                f"found {ty.describe()}{hint}",
                expr.span,
            )
        return ty

    def path(self, i: int) -> ValueType:
        """Argument ``i`` as a path on a torus (``path T[n]``)."""
        expr, ty = self.args[i]
        if not isinstance(ty, ValueType) or not ty.path:
            what = ty.describe() if not isinstance(ty, ValueType) else (
                f"a tangent vector {ty.describe()}" if ty.tangent else f"a point {ty.describe()}")
            raise self.error(
                f"{self.name} expects a path on a torus (path T[n]) for '{self.builtin.param_name(i)}', found {what}",
                expr.span,
            )
        return ty

    def vector(self, i: int) -> ValueType:
        ty = self.value(i)
        if not ty.is_vector:
            raise self.error(
                f"{self.name} needs a vector (a Euclidean point or a tangent vector) for '{self.builtin.param_name(i)}', "
                f"found {ty.describe()}; map it to a tangent space first (e.g. logmap0)",
                self.args[i][0].span,
            )
        return ty

    def point(self, i: int, kinds: tuple[str, ...] | None = None) -> ValueType:
        ty = self.value(i)
        span = self.args[i][0].span
        if ty.tangent:
            raise self.error(
                f"{self.name} expects a point for '{self.builtin.param_name(i)}', found a tangent vector {ty.describe()}",
                span,
            )
        if kinds and ty.kind not in kinds:
            raise self.error(
                f"{self.name} expects a point on {' or '.join(kinds)} for '{self.builtin.param_name(i)}', found {ty.describe()}",
                span,
            )
        return ty

    def tangent(self, i: int, kinds: tuple[str, ...] | None = None) -> ValueType:
        ty = self.value(i)
        span = self.args[i][0].span
        if not ty.tangent:
            hint = "; use logmap0 to get a tangent vector" if not ty.is_vector else "; declare it 'tangent ...'"
            raise self.error(
                f"{self.name} expects a tangent vector for '{self.builtin.param_name(i)}', found a point {ty.describe()}{hint}",
                span,
            )
        if kinds and ty.kind not in kinds:
            raise self.error(
                f"{self.name} expects a tangent vector of {' or '.join(kinds)}, found {ty.describe()}", span
            )
        return ty

    def same(self, i: int, j: int, expected: ValueType | None = None) -> ValueType:
        """Argument j must have the type of argument i (or ``expected``)."""
        want = expected or self.value(i)
        got = self.value(j)
        if got != want:
            raise type_mismatch(f"argument '{self.builtin.param_name(j)}' of {self.name}", want, got, self.args[j][0].span)
        return got

    def weight(self, i: int, rank: int) -> "WeightType":
        expr, ty = self.args[i]
        if not isinstance(ty, WeightType) or len(ty.shape) != rank:
            what = "a matrix" if rank == 2 else "a vector"
            raise self.error(
                f"argument '{self.builtin.param_name(i)}' of {self.name} must be {what} of parameters "
                f"(let W = param({', '.join(['m', 'n'][:rank])})), found {ty.describe()}", expr.span)
        return ty

    def number(self, i: int) -> float:
        expr, ty = self.args[i]
        if not isinstance(ty, ScalarType):
            raise self.error(
                f"argument '{self.builtin.param_name(i)}' of {self.name} must be a number, found {ty.describe()}", expr.span
            )
        if not math.isfinite(ty.value):
            raise self.error(
                f"argument '{self.builtin.param_name(i)}' of {self.name} must be a finite number, found {ty.value:g}", expr.span
            )
        return ty.value

    def layer_dims(self, x: ValueType, i: int = 0) -> tuple[int, int]:
        dims = self.dims
        if dims.in_dim != x.dim:
            raise self.error(
                f"dimension mismatch in {self.name}: the layer expects input dimension {dims.in_dim}, "
                f"found {x.describe()} of dimension {x.dim}",
                dims.in_span,
            )
        if dims.out_dim < 1:
            raise self.error(f"output dimension of {self.name} must be at least 1, found {dims.out_dim}", dims.out_span)
        minimum = x.manifold.min_dim  # tangents of the sphere and hyperboloid too
        if dims.out_dim < minimum:
            raise self.error(f"{x.manifold.geometry()} needs dimension at least {minimum}, found {dims.out_dim}", dims.out_span)
        check_dim(dims.out_dim, f"the output dimension of {self.name}", dims.out_span)
        self.checked["dims"] = (dims.in_dim, dims.out_dim)
        return dims.in_dim, dims.out_dim

    def flag(self, name: str, default: bool) -> bool:
        kw = self.keywords.get(name)
        if kw is None:
            value = default
        elif isinstance(kw.value, ast.Var) and kw.value.name in ("true", "false"):
            value = kw.value.name == "true"
        else:
            raise self.error(f"keyword '{name}' of {self.name} must be true or false, found '{source_text(kw.value)}'", kw.value.span)
        self.checked[name] = value
        return value


def type_mismatch(what: str, want: ValueType, got: ValueType, span: Span) -> GeoTypeError:
    """The one message shape for two types that should agree, naming the difference."""
    if want.manifold != got.manifold:
        detail = "manifold mismatch"
    elif want.path != got.path:
        kind = "a tangent vector" if want.tangent else "a point"
        detail = f"a path used where {kind} is expected" if got.path else f"{'a tangent vector' if got.tangent else 'a point'} used where a path is expected"
    elif want.tangent != got.tangent:
        detail = "a tangent vector used where a point is expected" if got.tangent else "a point used where a tangent vector is expected"
    elif want.dim != got.dim:
        detail = "dimension mismatch"
    else:
        detail = f"element type mismatch ({want.dtype} vs {got.dtype})"
    return GeoTypeError(f"{detail} for {what}: expected {want.describe()}, found {got.describe()}", span)


def weight_misuse(ty: WeightType, needs: str, span: Span) -> GeoTypeError:
    """The error for a declared parameter used as a value (``needs``: what was expected)."""
    return GeoTypeError(
        f"{needs}, found {ty.describe()}; a declared parameter is used only as the matrix of "
        "linear(x, W) or mobius_matvec(W, x)", span
    )


def _no_weight_operand(expr: ast.BinOp, lhs, rhs) -> None:
    """``x + W``, ``W * W``: an arithmetic operand that is a declared parameter is an error."""
    for ty, side in ((lhs, expr.lhs), (rhs, expr.rhs)):
        if isinstance(ty, WeightType):
            raise weight_misuse(ty, f"'{expr.op}' needs vectors (Euclidean points or tangent vectors)", side.span)


@dataclass
class _Scope:
    model: ast.ModelDef
    values: dict[str, object]


class TypeChecker:
    """Walks a program in order; models may call models defined above them."""

    def __init__(self, program: ast.Program):
        self.program = program
        self.manifolds: dict[str, Manifold] = {"R": EUCLIDEAN}
        self.models: dict[str, ast.ModelDef] = {}
        self.derived: dict[str, ast.DeriveDecl] = {}
        self.defined_at: dict[str, Span] = {}

    def run(self) -> ast.Program:
        with room_for(program_depth(self.program)):  # check_expr recurses once per level
            return self._run()

    def _run(self) -> ast.Program:
        for item in self.program.items:
            if isinstance(item, ast.ManifoldDecl):
                self._declare(item.name, item.name_span, "manifold")
                self.manifolds[item.name] = check_manifold_decl(item)
            elif isinstance(item, ast.ModelDef):
                self._declare(item.name, item.name_span, "model")
                self.check_model(item)
                self.models[item.name] = item
            else:
                self._declare(item.name, item.name_span, "derived function")
                item.signature = check_derive(item, self.models, self.derived)
                self.derived[item.name] = item
        return self.program

    def _declare(self, name: str, span: Span, what: str) -> None:
        if name in BUILTINS:
            raise GeoNameError(f"'{name}' is a built-in operation and cannot name a {what}", span)
        if name == "R":
            raise GeoNameError("'R' is the built-in Euclidean space and cannot be redefined", span)
        if name in self.defined_at:
            raise GeoNameError(
                f"'{name}' is already defined", span, [Note("first defined here", self.defined_at[name])]
            )
        self.defined_at[name] = span

    # -- types
    def resolve_type(self, t: ast.TypeExpr) -> ValueType:
        manifold = self.manifolds.get(t.manifold)
        if manifold is None:
            known = sorted(self.manifolds)
            raise GeoNameError(
                f"unknown manifold '{t.manifold}'{suggest(t.manifold, known)} (declared: {', '.join(known)})",
                t.manifold_span,
            )
        if t.dim < manifold.min_dim:
            raise GeoTypeError(
                f"dimension of {t.manifold} must be at least {manifold.min_dim} ({manifold.geometry()}), found {t.dim}",
                t.dim_span,
            )
        check_dim(t.dim, f"the dimension of {t.manifold}", t.dim_span)
        dtype = t.dtype or "f32"
        if dtype not in DTYPES:
            raise GeoTypeError(
                f"unknown element type '{dtype}'{suggest(dtype, DTYPES)} (expected one of {', '.join(DTYPES)})",
                t.dtype_span,
            )
        if t.path and manifold.kind not in PATH_MANIFOLDS:
            raise GeoTypeError(
                f"paths are on torus manifolds: expected a torus after 'path', found {t.manifold} "
                f"({manifold.geometry()})",
                t.manifold_span,
            )
        return ValueType(manifold, t.dim, dtype, t.tangent, t.path)

    # -- models
    def check_model(self, model: ast.ModelDef) -> None:
        scope = _Scope(model, {})
        for p in model.params:
            if p.name in scope.values:
                raise GeoNameError(f"parameter '{p.name}' appears twice in model {model.name}", p.name_span)
            p.type = self.resolve_type(p.type_expr)
            scope.values[p.name] = p.type
        model.result_type = self.resolve_type(model.result)
        if model.result_type.path:
            raise GeoTypeError(
                f"model {model.name} returns {model.result_type.describe()}; a path is an input type only "
                f"(a model returns a point or a vector, e.g. endpoint(p) or winding(p))",
                model.result.prefix_span or model.result.span,
            )
        returned = False
        for stmt in model.body:
            if returned:
                raise GeoTypeError(f"statement after return in model {model.name}", stmt.span)
            if isinstance(stmt, ast.Let):
                scope.values[stmt.name] = self.check_expr(stmt.value, scope)
            else:
                ty = self.check_expr(stmt.value, scope)
                if ty != model.result_type:
                    if isinstance(ty, ValueType):
                        raise type_mismatch(f"the result of model {model.name}", model.result_type, ty, stmt.value.span)
                    raise GeoTypeError(
                        f"model {model.name} must return {model.result_type.describe()}, found {ty.describe()}",
                        stmt.value.span,
                    )
                returned = True
        if not returned:
            raise GeoTypeError(
                f"model {model.name} has no return statement (expected 'return' of {model.result_type})",
                model.close_span,
            )
        for annotation in model.annotations:
            annotation.contract = check_annotation(annotation, model)
        check_no_repeats(model)

    def check_expr(self, expr: ast.Expr, scope: _Scope):
        ty = self._infer(expr, scope)
        expr.type = ty
        return ty

    def _infer(self, expr: ast.Expr, scope: _Scope):
        if isinstance(expr, ast.Number):
            return ScalarType(expr.value, expr.is_int)
        if isinstance(expr, ast.Var):
            if expr.name in scope.values:
                return scope.values[expr.name]
            raise self._unknown_value(expr.name, expr.span, scope)
        if isinstance(expr, ast.Neg):
            ty = self.check_expr(expr.operand, scope)
            if isinstance(ty, ScalarType):
                return ScalarType(-ty.value, ty.is_int)
            if not ty.is_vector:
                raise GeoTypeError(f"cannot negate {ty.describe()}: '-' needs a vector (a Euclidean point or a tangent vector)", expr.span)
            return ty
        if isinstance(expr, ast.BinOp):
            return self._binop(expr, scope)
        if isinstance(expr, ast.Call):
            return self._call(expr, scope)
        raise AssertionError(f"unknown expression {expr!r}")

    def _unknown_value(self, name: str, span: Span, scope: _Scope) -> GeoNameError:
        if name in self.manifolds:
            return GeoNameError(f"'{name}' is a manifold, not a value", span)
        if name in self.models or name in BUILTINS:
            return GeoNameError(f"'{name}' is a function; call it as {name}(...)", span)
        return GeoNameError(f"unknown name '{name}'{suggest(name, scope.values)}", span)

    def _binop(self, expr: ast.BinOp, scope: _Scope):
        lhs = self.check_expr(expr.lhs, scope)
        rhs = self.check_expr(expr.rhs, scope)
        if isinstance(lhs, ScalarType) and isinstance(rhs, ScalarType):
            # From the operands' types, not constant(expr): a side may be a let-bound number.
            return fold(expr, lhs, rhs)
        if isinstance(lhs, ScalarType) or isinstance(rhs, ScalarType):
            vec, vec_expr = (rhs, expr.rhs) if isinstance(lhs, ScalarType) else (lhs, expr.lhs)
            scalar_first = isinstance(lhs, ScalarType)
            if expr.op in ("+", "-"):
                sides = f"a number and {vec.describe()}" if scalar_first else f"{vec.describe()} and a number"
                raise GeoTypeError(f"'{expr.op}' between {sides} is not defined; both sides must be vectors of the same type",
                                   expr.op_span)
            if expr.op == "/" and scalar_first:
                raise GeoTypeError("dividing a number by a vector is not defined; write (1 / v) only for numbers", expr.op_span)
            if expr.op == "/" and rhs.value == 0:
                raise GeoTypeError("division by the constant zero", expr.rhs.span)
            number, number_expr = (lhs, expr.lhs) if scalar_first else (rhs, expr.rhs)
            factor = 1.0 / number.value if expr.op == "/" else number.value
            if not math.isfinite(factor):
                raise GeoTypeError(
                    f"the scale factor of '{expr.op}' must be a finite number, found {factor:g}", number_expr.span
                )
            if not vec.is_vector:
                hint = "; use mobius_scalar for Poincaré points" if vec.kind == "poincare" and not vec.path else ""
                raise GeoTypeError(
                    f"cannot scale {vec.describe()} with '{expr.op}'{hint}",
                    vec_expr.span,
                )
            return vec
        _no_weight_operand(expr, lhs, rhs)
        if not lhs.is_vector or not rhs.is_vector:
            bad, bad_expr = (lhs, expr.lhs) if not lhs.is_vector else (rhs, expr.rhs)
            if lhs.manifold != rhs.manifold:
                raise type_mismatch(f"the right side of '{expr.op}'", lhs, rhs, expr.rhs.span)
            hint = "; use mobius_add for Poincaré points" if bad.kind == "poincare" else ""
            raise GeoTypeError(
                f"'{expr.op}' needs vectors (Euclidean points or tangent vectors), found {bad.describe()}{hint}",
                bad_expr.span,
            )
        if lhs != rhs:
            raise type_mismatch(f"the right side of '{expr.op}'", lhs, rhs, expr.rhs.span)
        return lhs

    def _call(self, call: ast.Call, scope: _Scope):
        if call.callee in scope.values and call.callee not in BUILTINS:
            raise GeoNameError(f"'{call.callee}' is a value, not a function", call.callee_span)
        args = []
        for a in call.args:
            if isinstance(a, ast.Positional):
                args.append((a.value, self.check_expr(a.value, scope)))
        if call.callee in self.models:
            return self._model_call(call, self.models[call.callee], args)
        builtin = BUILTINS.get(call.callee)
        explicit = EXPLICIT_WEIGHT.get(call.callee)
        if explicit is not None and any(isinstance(t, WeightType) for _, t in args):
            builtin = explicit  # mobius_matvec(W, x), linear(x, W): the weight is given
        if builtin is None:
            if call.callee == scope.model.name:
                raise GeoNameError(
                    f"model {call.callee} calls itself; recursive models are not supported", call.callee_span
                )
            if call.callee in self.derived:
                raise GeoNameError(
                    f"'{call.callee}' is a derived function; a model can call only models and built-in operations",
                    call.callee_span,
                    [Note(f"{call.callee} is derived here", self.derived[call.callee].name_span)],
                )
            hint = suggest(call.callee, list(BUILTINS) + list(self.models))
            later = [i for i in self.program.items if isinstance(i, ast.ModelDef) and i.name == call.callee]
            note = []
            if later:
                rule = "models must be defined before the models that call them"
                note = [Note(f"{call.callee} is defined here, after the call; {rule}", later[0].name_span)]
            raise GeoNameError(f"unknown function '{call.callee}'{hint}", call.callee_span, note)
        site = CallSite(builtin, call, args)
        result = builtin.check(site)
        call.target = builtin
        call.checked = site.checked
        return result

    def _model_call(self, call: ast.Call, model: ast.ModelDef, args):
        extra = [a for a in call.args if not isinstance(a, ast.Positional)]
        if extra:
            raise GeoTypeError(f"model {model.name} takes positional arguments only", extra[0].span)
        if len(args) != len(model.params):
            sig = ", ".join(f"{p.name}: {p.type}" for p in model.params)
            raise GeoTypeError(
                f"wrong number of arguments: model {model.name}({sig}) takes {len(model.params)}, found {len(args)}",
                call.span,
                [Note(f"{model.name} is defined here", model.name_span)],
            )
        for param, (expr, ty) in zip(model.params, args):
            if ty != param.type:
                if not isinstance(ty, ValueType):
                    raise GeoTypeError(
                        f"argument '{param.name}' of model {model.name} must be {param.type.describe()}, found {ty.describe()}",
                        expr.span,
                    )
                raise type_mismatch(f"argument '{param.name}' of model {model.name}", param.type, ty, expr.span)
        call.target = model
        return model.result_type


def check_program(program: ast.Program) -> ast.Program:
    """Type-check ``program`` in place and return it."""
    return TypeChecker(program).run()
