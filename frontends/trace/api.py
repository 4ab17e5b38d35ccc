"""The Python face of tracing: spaces (types), ``@trace``, contract decorators, and
:class:`TracedFunction` (``.ir``, ``.module``, ``.compile``).

    import geomir as g
    H = g.PoincareBall(c=1.0)

    @g.lipschitz(8.0, radius=0.5)
    @g.trace(x=H.point(16))
    def encoder(x):
        return g.mobius_tanh(g.mobius_linear(x, 32))

    print(encoder.ir)
    m = encoder.compile(target="torch")
"""

from __future__ import annotations

import functools
import math
import re
import sys

from xdsl.dialects import builtin

from geomir.diagnostics import Span, UsageError, remember_source
from geomir.frontends.dsl import ast
from geomir.frontends.dsl.irgen import build_module
from geomir.frontends.dsl.types import (DTYPES, EUCLIDEAN, PATH_MANIFOLDS, TORUS_UNITS, Manifold, ValueType,
                                        check_dim)

from . import source as src
from .tracer import TraceError, _current, number, signature_types, trace_model, tracing_stack

# -- spaces ------------------------------------------------------------------------------------


class Space:
    """A manifold for traced code: ``H.point(16)`` and ``H.tangent(16)`` are input types
    (on a torus also ``T.path(16)``).
    Types print with the space's name (``H[16]``), by default its geometry
    (``poincare(c=1)[16]``)."""

    def __init__(self, manifold: Manifold):
        if not manifold.name:
            manifold = Manifold(manifold.kind, manifold.c, manifold.units, manifold.geometry())
        self.manifold = manifold

    def point(self, dim: int, dtype: str = "f32") -> ValueType:
        return self._type(dim, dtype, False)

    def tangent(self, dim: int, dtype: str = "f32") -> ValueType:
        return self._type(dim, dtype, True)

    def path(self, dim: int, dtype: str = "f32") -> ValueType:
        """``path T[dim]``: a path of any length >= 1 of points on this torus (an input of
        shape (..., T, dim)), for ``unwrap``, ``winding``, ``winding_margin``, ``endpoint``."""
        return self._type(dim, dtype, False, path=True)

    def _type(self, dim, dtype, tangent, path: bool = False) -> ValueType:
        span = src.site().span
        if path and self.manifold.kind not in PATH_MANIFOLDS:
            raise TraceError(f"paths are on torus manifolds, found a path on {self.manifold.geometry()}", span)
        if not isinstance(dim, int) or isinstance(dim, bool) or dim < self.manifold.min_dim:
            raise TraceError(f"dimension of {self.manifold.geometry()} must be an integer of at least "
                             f"{self.manifold.min_dim}, found {dim!r}", span)
        if dtype not in DTYPES:
            raise TraceError(f"unknown element type '{dtype}' (expected one of {', '.join(DTYPES)})", span)
        check_dim(dim, f"the dimension of {self.manifold.geometry()}", span)
        return ValueType(self.manifold, dim, dtype, tangent, path)

    def __repr__(self) -> str:
        return f"<space {self.manifold.geometry()}>"


def _curvature(kind: str, c) -> float:
    if not isinstance(c, (int, float)) or isinstance(c, bool) or not (c > 0 and math.isfinite(c)):
        raise TraceError(f"curvature c of {kind} must be a positive number, found {c!r}", src.site().span)
    return float(c)


def PoincareBall(c: float = 1.0, name: str = "") -> Space:
    """The Poincaré ball of curvature -c."""
    return Space(Manifold("poincare", _curvature("poincare", c), None, name))


def Lorentz(c: float = 1.0, name: str = "") -> Space:
    """The hyperboloid (Lorentz model) of curvature -c."""
    return Space(Manifold("lorentz", _curvature("lorentz", c), None, name))


def Sphere(name: str = "") -> Space:
    """The unit sphere in R^n (points have n coordinates)."""
    return Space(Manifold("sphere", None, None, name))


def Torus(units: str = "radians", name: str = "") -> Space:
    """The flat torus, angles in radians or turns."""
    if units not in TORUS_UNITS:
        raise TraceError(f"torus units must be one of {', '.join(TORUS_UNITS)}, found {units!r}", src.site().span)
    return Space(Manifold("torus", None, units, name))


Euclidean = Space(EUCLIDEAN)
"""Euclidean space R^n: ``Euclidean.point(4)`` is ``R[4]``."""


def R(dim: int, dtype: str = "f32") -> ValueType:
    """``R[dim]``: a Euclidean point."""
    return Euclidean.point(dim, dtype)


# -- contracts ---------------------------------------------------------------------------------

class _WithContracts:
    """A plain function with contract decorators, waiting for ``@trace`` above them."""

    def __init__(self, fn, annotations: list):
        self.fn = fn
        self.annotations = annotations
        functools.update_wrapper(self, fn)

    def _with(self, annotation) -> "_WithContracts":
        return _WithContracts(self.fn, [annotation, *self.annotations])

    def __call__(self, /, *args, **kwargs):
        return self.fn(*args, **kwargs)


def _annotation(name: str, args: tuple, kwargs: dict) -> ast.Annotation:
    s = src.site()
    nodes = []
    for i, value in enumerate(args):
        span = s.arg(i)
        nodes.append(ast.Positional(span, _literal(value, span)))
    for key, value in kwargs.items():
        name_span, value_span = s.keywords.get(key, (s.span, s.span))
        nodes.append(ast.Keyword(name_span, key, _literal(value, value_span), name_span))
    return ast.Annotation(s.span, name, s.callee, nodes)


def _literal(value, span: Span) -> ast.Expr:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return number(value, span)
    if isinstance(value, str):
        return ast.Var(span, value)
    raise TraceError(f"a contract argument must be a number or a name (a string), found {type(value).__name__}", span)


def _contract(name: str):
    def decorator_factory(*args, **kwargs):
        annotation = _annotation(name, args, kwargs)

        def decorate(target):
            if isinstance(target, (TracedFunction, _WithContracts)):
                return target._with(annotation)
            return _WithContracts(target, [annotation])

        return decorate

    decorator_factory.__name__ = name
    return decorator_factory


lipschitz = _contract("lipschitz")
lipschitz.__doc__ = "@lipschitz(L) or @lipschitz(L, radius=R): proved by verify-contracts, as in .geo."
equivariant = _contract("equivariant")
equivariant.__doc__ = "@equivariant('so2' | 'perm' | 'torus_translation' | 'ball_rotation')."
monotone = _contract("monotone")
monotone.__doc__ = "@monotone('x', ..., 'increasing' | 'decreasing') naming inputs of the function."


# -- traced functions --------------------------------------------------------------------------


class TracedFunction:
    """A Python function traced to a model. ``.ir``: its IR after the default pipeline
    (what ``geomc --emit=ir`` prints); ``.module``: the frontend's IR (callees first);
    ``.compile(target)``: the generated module; called inside another traced function,
    it is a model call (``func.call``), as in ``.geo``."""

    def __init__(self, fn, inputs: dict[str, ValueType], annotations: list[ast.Annotation] | None = None):
        if isinstance(fn, _WithContracts):
            annotations = [*(annotations or []), *fn.annotations]
            fn = fn.fn
        _check_traceable(fn)
        self.fn = fn
        self.name = fn.__name__
        self._busy = False  # being traced: a call of itself is recursion
        self._given = dict(inputs)
        frame = src.user_frame()
        self._scope = dict(frame.f_locals) if frame is not None and frame.f_locals is not frame.f_globals else None
        self._annotations = list(annotations or [])
        self._model: ast.ModelDef | None = None
        self._deps: dict[str, ast.ModelDef] = {}
        functools.update_wrapper(self, fn)

    def _with(self, annotation: ast.Annotation) -> "TracedFunction":
        other = TracedFunction(self.fn, self._given, [annotation, *self._annotations])
        other._scope = self._scope
        return other

    @property
    def model(self) -> ast.ModelDef:
        """The checked model (traced on first use)."""
        if self._model is None:
            if self._busy:
                raise TraceError(f"{self.name} calls itself: a traced model cannot be recursive (a model calls "
                                 "other models, as in .geo; unroll with a Python loop)", src.site().span)
            inputs = signature_types(self.fn, self._given, self._scope)
            deps: dict[str, ast.ModelDef] = {}
            self._busy = True
            try:
                self._model = trace_model(self.fn, inputs, deps, self._annotations)
            except RecursionError:
                if tracing_stack():  # an inner trace: the outermost one says it
                    raise
                raise TraceError(f"{self.name}: traced functions call each other too deeply for Python's recursion "
                                 f"limit ({sys.getrecursionlimit()}; a call between traced functions takes about 5 "
                                 "Python frames while it is traced): raise it with sys.setrecursionlimit, or write "
                                 "the chain as a .geo program", src.site().span) from None
            finally:
                self._busy = False
            self._deps = deps
        return self._model

    @property
    def module(self) -> builtin.ModuleOp:
        """The frontend's IR: the callees (in call order), then this model."""
        model = self.model
        source = model.span.source
        items = [*self._deps.values(), model]
        for item in items:  # the text traced, for the caret lines of errors after lowering (as .geo files)
            remember_source(item.span.source)
        module = build_module(ast.Program(source, items))
        for op in module.walk():
            for r in op.results:
                if r.name_hint and re.fullmatch(r"_t\d+", r.name_hint):
                    r.name_hint = None  # an unnamed temporary: printed as %0, %1, ...
        return module

    def lowered(self, passes=None) -> builtin.ModuleOp:
        """The IR after ``passes`` (the default pipeline when None)."""
        from geomir.pipeline import DEFAULT_PIPELINE, parse_pipeline, run_pipeline

        names = list(DEFAULT_PIPELINE) if passes is None else parse_pipeline(passes)
        return run_pipeline(self.module, names)

    @property
    def ir(self) -> str:
        """The IR after the default pipeline, as ``geomc --emit=ir`` prints it."""
        from geomir.ir import print_ir

        return print_ir(self.lowered())

    def compile(self, target: str = "torch", passes=None, cache_dir=None, **options):
        """The generated module for ``target`` ("torch", "jax", "triton"), imported:
        ``m.<name>(params, *inputs)``, ``m.init_params(seed)``, and for torch/triton
        ``m.<name>Module(seed=0)``."""
        from geomir.compiler import compile_module

        return compile_module(self.lowered(passes), target, self.model.span.source.name, cache_dir, **options)

    def __call__(self, /, *args, **kwargs):  # positional-only self: an input may be named 'self'
        if not tracing_stack():
            raise TraceError(f"{self.name} is a traced model; to run it, compile it: "
                             f"m = {self.name}.compile(target=\"torch\"); m.{self.name}(params, ...)", src.site().span)
        tracing = _current()
        callee = self.model
        s = src.site()
        nodes = [ast.Positional(span, tracing.operand(a, span)) for a, span in self._bind(callee, args, kwargs, s)]
        for name, m in {**self._deps, callee.name: callee}.items():
            known = tracing.deps.get(name)
            if name == tracing.model.name or (known is not None and known is not m):
                raise TraceError(f"two different traced functions are named '{name}'; a module needs one model per name",
                                 s.callee)
            tracing.checker.models[name] = m
            tracing.deps[name] = m
        return tracing.record(ast.Call(s.span, callee.name, s.callee, nodes))

    def _bind(self, callee: ast.ModelDef, args: tuple, kwargs: dict, s) -> list[tuple[object, object]]:
        """The call's arguments in the callee's input order, (value, span) each; keyword
        arguments name the callee's inputs."""
        inputs = [p.name for p in callee.params]
        slots = {i: (a, s.arg(i)) for i, a in enumerate(args)}
        for name, value in kwargs.items():
            span = s.keywords.get(name, (s.span, s.span))[1]
            if name not in inputs:
                raise TraceError(f"{self.name} has no input '{name}' (its inputs: {', '.join(inputs) or 'none'})", span)
            if inputs.index(name) in slots:
                raise TraceError(f"input '{name}' of {self.name} is given twice", span)
            slots[inputs.index(name)] = (value, span)
        missing = [n for i, n in enumerate(inputs) if i not in slots]
        if kwargs and missing:
            raise TraceError(f"the call of {self.name} lacks input(s) {', '.join(missing)}", s.span)
        return [slots[i] for i in sorted(slots)]

    def __repr__(self) -> str:
        return f"<geomir.trace {self.name}>"


def _check_traceable(fn) -> None:
    """A Python function with a name (the model's); a clear error for the rest."""
    span = src.site().span
    if isinstance(fn, functools.partial):
        raise TraceError("a functools.partial cannot be traced; trace a def function and give the fixed values "
                         "as parameters with defaults (def f(x, k=2.0): ...)", span)
    if not hasattr(fn, "__code__") or not hasattr(fn, "__name__"):
        raise TraceError(f"@trace takes a Python function (def), found {type(fn).__name__}", span)
    if fn.__name__ == "<lambda>":
        raise TraceError("a lambda cannot be traced: the model is named after its function; write def name(x): ...",
                         span)


def trace(fn=None, /, **inputs):
    """Decorator: ``@trace(x=H.point(16))`` (or annotations, ``def f(x: H.point(16))``)
    traces the function into a model on first use."""
    if fn is not None and callable(fn) and not inputs:
        return TracedFunction(fn, {})

    for name, value in inputs.items():
        if not isinstance(value, ValueType):
            raise UsageError(f"@trace({name}=...) needs a type such as H.point(16) or g.R(4), found {value!r}")

    def decorate(f):
        return TracedFunction(f, inputs)

    return decorate


__all__ = ["Euclidean", "Lorentz", "PoincareBall", "R", "Space", "Sphere", "Torus", "TracedFunction",
           "equivariant", "lipschitz", "monotone", "trace"]
