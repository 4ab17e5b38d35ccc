"""``@geomir.trace``: run a Python function on symbolic values and record a model.

Tracing builds the same typed syntax tree the ``.geo`` parser builds (one ``let`` per
recorded operation, spans in the user's Python file) and hands it to the ``.geo`` type
checker, one statement at a time, and to its IR builder: a traced function and the
equivalent ``.geo`` model have the same IR by construction, and a type error names the
Python file, line and column (the argument that is wrong) with the same message.

Python control flow runs as Python: loops unroll, conditions on Python values are
resolved; a condition on a traced value (known only at run time) is an error at its line.
"""

from __future__ import annotations

import inspect
import sys
import threading
from dataclasses import dataclass, field

import numpy as np

from geomir.diagnostics import GeomirError, SourceError, Span
from geomir.frontends.dsl import ast
from geomir.frontends.dsl.contracts import check_annotation
from geomir.frontends.dsl.typecheck import TypeChecker, _Scope
from geomir.frontends.dsl.types import ScalarType, ValueType, WeightType

from . import source as src


class TraceError(SourceError):
    """A Python construct that cannot be traced (at the user's file:line:col)."""


@dataclass(frozen=True)
class ParamDecl:
    """``Param[32, 16]``: a learned tensor of the traced model, named by the parameter
    (``def f(x, W: Param[32, 16])`` is ``let W = param(32, 16)`` in .geo)."""

    shape: tuple[int, ...]
    init: str | None = None
    dtype: str | None = None


class Param:
    """``Param[32, 16]`` (a matrix, Glorot-uniform init), ``Param[32]`` (a vector, zeros),
    ``Param[32, 16, "normal", "f64"]`` (an init, an element type): a learned tensor."""

    def __class_getitem__(cls, item) -> ParamDecl:
        from geomir.frontends.dsl.types import DTYPES

        items = item if isinstance(item, tuple) else (item,)
        sizes = tuple(n for n in items if not isinstance(n, str))
        names = [n for n in items if isinstance(n, str)]
        dtype = next((n for n in names if n in DTYPES), None)
        init = next((n for n in names if n not in DTYPES), None)
        if not sizes or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in sizes):
            raise TraceError(f"Param[...] takes positive integer sizes (then an init and an element type), "
                             f"found {item!r}", src.site().span)
        return ParamDecl(sizes, init, dtype)


class Traced:
    """A symbolic value in a traced function: a point or tangent vector of a known type.

    Supports ``+ - * /`` (vectors; a Python number scales), unary ``-``, and the
    attributes ``type``, ``dim``, ``manifold``, ``tangent``. Its value exists only when
    the compiled model runs, so it cannot be converted to a bool, a number or an array,
    nor compared (``==``, ``<``, ...: a condition on it would be decided while tracing).
    Operators without a .geo counterpart (``**``, ``abs``, ``@``, ``x[i]``, ...) are
    errors naming the builtin to use."""

    __slots__ = ("name", "type", "_tracing")
    __array_priority__ = 1000  # numpy defers to our operators

    def __init__(self, name: str, type_: ValueType, tracing: "_Tracing"):
        self.name = name
        self.type = type_
        self._tracing = tracing

    @property
    def dim(self) -> int:
        return self.type.dim

    @property
    def shape(self) -> tuple[int, ...]:
        """A declared parameter's shape (``Param[32, 16]``), or (dim,) for a value."""
        return self.type.shape if isinstance(self.type, WeightType) else (self.type.dim,)

    @property
    def manifold(self):
        return self.type.manifold

    @property
    def tangent(self) -> bool:
        return self.type.tangent

    def __repr__(self) -> str:
        return f"<traced {self.name}: {self.type.describe()}>"

    def _fail(self, what: str):
        raise TraceError(
            f"{what} a traced value ({self.type.describe()}): its value is known only when the compiled model runs; "
            "conditions and loops must be on Python values (loops over range(n) unroll)",
            src.site().span,
        )

    def __bool__(self):
        self._fail("cannot branch on")

    def __eq__(self, other):
        self._fail("cannot compare (==) with")

    def __ne__(self, other):
        self._fail("cannot compare (!=) with")

    def __lt__(self, other):
        self._fail("cannot compare (<) with")

    def __le__(self, other):
        self._fail("cannot compare (<=) with")

    def __gt__(self, other):
        self._fail("cannot compare (>) with")

    def __ge__(self, other):
        self._fail("cannot compare (>=) with")

    __hash__ = object.__hash__  # still usable as a dict key (identity)

    def __float__(self):
        self._fail("cannot convert to a number")

    __int__ = __index__ = __float__

    def __iter__(self):
        self._fail("cannot iterate over")

    def __array__(self, *args, **kwargs):
        self._fail("cannot convert to an array")

    def __len__(self) -> int:
        return self.shape[0]

    # operators: one BinOp node each, typed by the .geo checker
    def _binop(self, op: str, other, reflected: bool = False):
        tracing = _current(self)
        s = src.site()
        if isinstance(other, (bool, np.bool_)):  # a bool is the int it is (True * x is x), as in Python
            other = int(other)
        mine = tracing.operand(self, s.arg(1 if reflected else 0))
        theirs = tracing.operand(other, s.arg(0 if reflected else 1))
        lhs, rhs = (theirs, mine) if reflected else (mine, theirs)
        return tracing.record(ast.BinOp(s.span, op, lhs, rhs, s.op))

    def __add__(self, o): return self._binop("+", o)
    def __radd__(self, o): return self._binop("+", o, True)
    def __sub__(self, o): return self._binop("-", o)
    def __rsub__(self, o): return self._binop("-", o, True)
    def __mul__(self, o): return self._binop("*", o)
    def __rmul__(self, o): return self._binop("*", o, True)
    def __truediv__(self, o): return self._binop("/", o)
    def __rtruediv__(self, o): return self._binop("/", o, True)

    def __neg__(self):
        tracing = _current(self)
        s = src.site()
        return tracing.record(ast.Neg(s.span, tracing.operand(self, s.span)))

    # Python operators with no .geo counterpart: a located error naming the builtin to use
    def _no_operator(self, what: str, instead: str):
        raise TraceError(f"{what} is not an operation on traced values ({self.type.describe()}); {instead}",
                         src.site().span)

    def __pow__(self, o, modulo=None):
        self._no_operator("x ** p", "write g.pow(x, p) (p a Python number)")

    def __rpow__(self, o):
        self._no_operator("a ** x", "write g.exp(math.log(a) * x)")

    def __abs__(self):
        self._no_operator("abs(x)", "write g.sqrt(x * x), or g.relu(x) + g.relu(-x)")

    def __pos__(self):
        self._no_operator("unary +", "write x")

    def __matmul__(self, o):
        self._no_operator("x @ W", "a layer declares its weight: g.linear(x, out), or with a declared "
                          "W: g.Param[out, in], g.linear(x, W) (g.mobius_matvec(W, x) on the ball)")

    __rmatmul__ = __matmul__

    def __floordiv__(self, o):
        self._no_operator("floor division (//)", "a model acts on real values: write x / y")

    __rfloordiv__ = __floordiv__

    def __mod__(self, o):
        self._no_operator("modulo (%)", "angles wrap on a torus: g.proj(x) of a point on g.Torus()")

    __rmod__ = __divmod__ = __rdivmod__ = __mod__

    def __getitem__(self, key):
        self._no_operator("indexing (x[i])", "a model acts on whole vectors: g.linear(x, 1) maps to R[1], "
                          "g.coords(x) gives a point's coordinates as a vector")

    def __setitem__(self, key, value):
        self._no_operator("item assignment (x[i] = ...)", "a traced value is immutable; build a new one "
                          "from builtins")


@dataclass
class _Tracing:
    """The state of one function being traced."""

    model: ast.ModelDef
    checker: TypeChecker
    scope: _Scope
    deps: dict = field(default_factory=dict)  # callee name -> ModelDef, in call order
    counter: int = 0
    values: list = field(default_factory=list)  # (Traced, let) in order

    def operand(self, value, span: Span) -> ast.Expr:
        """The syntax node of an argument: a traced value, or a Python number (or a NumPy
        scalar: the number it holds)."""
        if isinstance(value, Traced):
            if value._tracing is not self:
                raise TraceError(
                    f"{value.name} belongs to the trace of '{value._tracing.model.name}', not of '{self.model.name}'; "
                    "pass it as an argument (a traced function may call another one)", span)
            node = ast.Var(span, value.name)
            node.type = value.type
            return node
        if isinstance(value, (np.bool_, np.integer, np.floating)):  # a NumPy scalar (np.float32(2)): its value
            value = value.item()
        if isinstance(value, bool):
            node = ast.Var(span, "true" if value else "false")
            return node
        if isinstance(value, (int, float)):
            return number(value, span)
        kind = type(value).__module__.split(".")[0]
        hint = (" (an array or tensor: inside a traced function every input must be an argument of the function, "
                "and constants Python numbers)" if kind in ("numpy", "torch", "jax", "jaxlib") else "")
        raise TraceError(f"cannot trace a value of type {type(value).__name__}{hint}; expected a traced point or "
                         "vector, or a Python number", span)

    def record(self, expr: ast.Expr):
        """Type-check ``expr``, bind it to a new ``let``; the traced result (or a number)."""
        ty = self.checker.check_expr(expr, self.scope)
        if isinstance(ty, ScalarType):
            return ty.value if not ty.is_int else int(ty.value)
        self.counter += 1
        name = f"_t{self.counter}"
        let = ast.Let(expr.span, name, expr.span, expr)
        self.model.body.append(let)
        self.scope.values[name] = ty
        value = Traced(name, ty, self)
        self.values.append((value, let))
        return value


def number(value: int | float, span: Span) -> ast.Number:
    """A Python number as a literal; an int past what a float holds is the .geo error."""
    try:
        return ast.Number(span, float(value), isinstance(value, int))
    except OverflowError:
        digits = int(abs(value).bit_length() * 0.30103) + 1
        raise TraceError(f"integer literal too large ({digits} digits)", span) from None


class _Stack(threading.local):
    """The traces in progress, innermost last: one stack per thread (two threads tracing
    at once record each its own function)."""

    def __init__(self):
        self.tracings: list[_Tracing] = []


_STACK = _Stack()


def tracing_stack() -> list[_Tracing]:
    """This thread's traces in progress, innermost last."""
    return _STACK.tracings


def _current(value: Traced | None = None) -> _Tracing:
    stack = _STACK.tracings
    if value is not None:
        return value._tracing if value._tracing in stack else _dead(value)
    if not stack:
        raise TraceError("geomir operations build a model only inside a function decorated with @geomir.trace; "
                         "to run one, compile it: f.compile(target=\"torch\") (on arrays, winding numbers are "
                         "geomir.topology.winding/unwrap/certified_margin)", src.site().span)
    return stack[-1]


def _dead(value: Traced):
    raise TraceError(f"{value.name} is a traced value of '{value._tracing.model.name}', whose trace has ended; "
                     "it cannot be used outside that function", src.site().span)


def current() -> _Tracing:
    return _current()


def _name_values(tracing: _Tracing, frame_locals: dict) -> None:
    """Give recorded values the Python names that hold them when the function returns
    (names of inputs and names already given are left alone, so references stay exact)."""
    used = {p.name for p in tracing.model.params} | {s.name for s in tracing.model.body if isinstance(s, ast.Let)}
    for name, value in frame_locals.items():
        if not isinstance(value, Traced) or value._tracing is not tracing or name.startswith("_") or name in used:
            continue
        for traced, let in tracing.values:
            if traced is value and let.name.startswith("_t"):
                let.name = name
                used.add(name)
                break


class TraceRun:
    """Runs the user's function under a profiler hook that sees its locals at return."""

    def __init__(self, fn):
        self.fn = fn
        self.return_locals: dict = {}
        self.return_line: int | None = None

    def __call__(self, /, *args, **kwargs):  # positional-only self: an input may be named 'self'
        code = self.fn.__code__

        def hook(frame, event, arg):
            if event == "return" and frame.f_code is code:
                self.return_locals = dict(frame.f_locals)
                self.return_line = frame.f_lineno

        previous = sys.getprofile()
        sys.setprofile(hook)
        try:
            return self.fn(*args, **kwargs)
        finally:
            sys.setprofile(previous)


def signature_types(fn, given: dict[str, ValueType], scope: dict | None = None) -> list[tuple[str, ValueType]]:
    """The traced inputs: every parameter of ``fn``, typed by ``given`` or its annotation
    (string annotations are evaluated in fn's globals and ``scope``, the locals where
    ``@trace`` was applied)."""
    span = src.def_span(fn)
    try:  # string annotations (from __future__ import annotations) are evaluated in fn's globals
        sig = inspect.signature(fn, eval_str=True, locals=scope)
    except GeomirError:
        raise
    except Exception as err:  # noqa: BLE001 - a user's annotation that does not evaluate
        sig = inspect.signature(fn)
        if any(isinstance(p.annotation, str) for p in sig.parameters.values()):
            raise TraceError(f"the annotations of {fn.__name__} do not evaluate ({type(err).__name__}: {err}); "
                             "give the types with @geomir.trace(x=H.point(n))", span) from None
    out = []
    for name, p in sig.parameters.items():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise TraceError(f"@trace needs named parameters; '{p}' of {fn.__name__} cannot be traced", span)
        ty = given.get(name, p.annotation if isinstance(p.annotation, (ValueType, ParamDecl)) else None)
        if ty is None and p.default is not p.empty:
            continue  # a Python constant: its default value is used while tracing
        if ty is None:
            raise TraceError(
                f"parameter '{name}' of {fn.__name__} has no type: write @geomir.trace({name}=H.point(n)) "
                f"or annotate it ({name}: H.point(n))", span)
        out.append((name, ty))
    unknown = sorted(set(given) - set(sig.parameters))
    if unknown:
        raise TraceError(f"@trace types '{unknown[0]}', which is not a parameter of {fn.__name__} "
                         f"(parameters: {', '.join(sig.parameters) or 'none'})", span)
    return out


def trace_model(fn, inputs: list[tuple[str, ValueType]], models: dict[str, ast.ModelDef],
                annotations: list[ast.Annotation]) -> ast.ModelDef:
    """Trace ``fn`` into a checked :class:`ast.ModelDef` (callees in ``models``)."""
    span = src.def_span(fn)
    model = ast.ModelDef(span, fn.__name__, span, [], None, [], list(annotations), span)
    checker = TypeChecker(ast.Program(span.source, []))
    scope = _Scope(model, {})
    tracing = _Tracing(model, checker, scope, models)
    args = {}
    for name, ty in inputs:
        if isinstance(ty, ParamDecl):
            continue
        param = ast.Param(span, name, span, None)
        param.type = ty
        model.params.append(param)
        scope.values[name] = ty
    for name, ty in inputs:  # declared parameters: let W = param(...), in signature order
        if isinstance(ty, ParamDecl):
            sizes = [ast.Positional(span, ast.Number(span, float(n), True)) for n in ty.shape]
            keyword = [ast.Keyword(span, k, ast.Var(span, v), span) for k, v in (("init", ty.init), ("dtype", ty.dtype)) if v]
            call = ast.Call(span, "param", span, sizes + keyword)
            weight = checker.check_expr(call, scope)
            model.body.append(ast.Let(span, name, span, call))
            scope.values[name] = weight
            args[name] = Traced(name, weight, tracing)
        else:
            args[name] = Traced(name, ty, tracing)
    run = TraceRun(fn)
    positional = _positional_only(fn, args, span)
    stack = _STACK.tracings
    stack.append(tracing)
    try:
        result = run(*[args.pop(name) for name in positional], **args)
    except GeomirError:
        raise
    finally:
        stack.pop()
    ret_span = Span(span.source, run.return_line or span.line, 1)
    if ret_span.line != span.line:
        text = span.source.line_text(ret_span.line)
        ret_span = Span(span.source, ret_span.line, len(text) - len(text.lstrip()) + 1)
    if not isinstance(result, Traced) or result._tracing is not tracing:
        found = "nothing" if result is None else f"a {type(result).__name__}"
        raise TraceError(f"a traced function returns one traced point or vector; {fn.__name__} returned {found}",
                         ret_span)
    if isinstance(result.type, ValueType) and result.type.path:
        raise TraceError(f"{fn.__name__} returns {result.type.describe()}; a path is an input type only "
                         "(return a point or a vector, e.g. g.endpoint(p) or g.winding(p))", ret_span)
    _name_values(tracing, run.return_locals)
    value = ast.Var(ret_span, result.name)
    value.type = result.type
    model.body.append(ast.Return(ret_span, value))
    model.result_type = result.type
    for annotation in model.annotations:
        annotation.contract = check_annotation(annotation, model)
    _rename(model, tracing)
    return model


def _positional_only(fn, args: dict, span: Span) -> list[str]:
    """The positional-only parameters of ``fn`` (``def f(x, /)``), passed by position."""
    names = [p.name for p in inspect.signature(fn).parameters.values() if p.kind == p.POSITIONAL_ONLY]
    passed = [n for n in names if n in args]
    if passed != names[:len(passed)]:
        skipped = next(n for n in names if n not in args)
        raise TraceError(f"the positional-only parameter '{skipped}' of {fn.__name__} is a Python constant but a "
                         "traced one follows it; give it a type or make the parameters keyword-capable", span)
    return passed


def _rename(model: ast.ModelDef, tracing: _Tracing) -> None:
    """Update references after ``_name_values`` renamed lets (Python names for values)."""
    names = {traced.name: let.name for traced, let in tracing.values}
    for traced, _ in tracing.values:
        traced.name = names[traced.name]

    def fix(e):
        if isinstance(e, ast.Var) and e.name in names:
            e.name = names[e.name]
        for child in ("operand", "lhs", "rhs", "value"):
            if hasattr(e, child) and isinstance(getattr(e, child), ast.Node):
                fix(getattr(e, child))
        if isinstance(e, ast.Call):
            for a in e.args:
                fix(a)

    for stmt in model.body:
        fix(stmt.value)


__all__ = ["Param", "Traced", "TraceError", "current", "signature_types", "trace_model"]
