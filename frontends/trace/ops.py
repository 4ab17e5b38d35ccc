"""The built-in operations for traced Python: one function per ``.geo`` builtin, generated
from the same table (``frontends/dsl/builtins.BUILTINS``), so each is checked and lowered
by the same rule.

Layers declare their parameters by size: ``linear(x, 32)`` (the input size is x's) or
``linear(x, 16, 32)`` (checked against x), as ``linear(x, 16 -> 32)`` in ``.geo``;
keywords are Python values: ``linear(x, 8, bias=False)``.
"""

from __future__ import annotations

from geomir.frontends.dsl import ast
from geomir.frontends.dsl.builtins import BUILTINS, EXPLICIT_WEIGHT, Builtin
from geomir.frontends.dsl.types import WeightType

from . import source as src
from .tracer import Traced, TraceError, current


def _call(builtin: Builtin, args: tuple, kwargs: dict):
    tracing = current()
    s = src.site()
    nodes: list = []
    positional = list(args)
    layer = builtin.layer and not (builtin.name in EXPLICIT_WEIGHT and any(
        isinstance(a, Traced) and isinstance(a.type, WeightType) for a in args))  # mobius_matvec(W, x)
    if layer:
        sizes = []
        while positional and isinstance(positional[-1], int) and not isinstance(positional[-1], bool):
            sizes.insert(0, positional.pop())
        spans = s.args[len(positional):] or [s.span]
        if len(sizes) not in (1, 2):
            sig = f"{builtin.name}(x, out) or {builtin.name}(x, in, out)"
            raise TraceError(f"{builtin.name} declares its parameters by size: write {sig}", s.span)
    for i, value in enumerate(positional):
        nodes.append(ast.Positional(s.arg(i), tracing.operand(value, s.arg(i))))
    if layer:
        if len(sizes) == 1:
            x = positional[0] if positional else None
            n_in = x.dim if isinstance(x, Traced) else 0
            nodes.append(ast.Dims(spans[-1], n_in, sizes[0], spans[-1], spans[-1]))
        else:
            nodes.append(ast.Dims(spans[0], sizes[0], sizes[1], spans[0], spans[-1]))
    for name, value in kwargs.items():
        name_span, value_span = s.keywords.get(name, (s.span, s.span))
        nodes.append(ast.Keyword(name_span, name, tracing.operand(value, value_span), name_span))
    return tracing.record(ast.Call(s.span, builtin.name, s.callee, nodes))


def _make(builtin: Builtin):
    def op(*args, **kwargs):
        return _call(builtin, args, kwargs)

    params = ", ".join(builtin.params) + (", ..." if builtin.variadic else "")
    sizes = ", out | in, out" if builtin.layer else ""
    keywords = "".join(f", {k}=..." for k in builtin.keywords)
    op.__name__ = op.__qualname__ = builtin.name
    op.__doc__ = f"{builtin.name}({params}{sizes}{keywords}): {builtin.doc}"
    return op


OPS = {name: _make(b) for name, b in BUILTINS.items()}
"""name -> the traced Python function of each .geo builtin."""

globals().update(OPS)
__all__ = sorted(OPS)
