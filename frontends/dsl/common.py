"""Small helpers shared by the checker's rule tables: suggestions, constant folding, source text."""

from __future__ import annotations

import difflib

from geomir.diagnostics import GeoTypeError

from . import ast
from .types import ScalarType


def suggest(name: str, candidates) -> str:
    """``; did you mean 'x'?`` when a close match exists, else the empty string."""
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.7)
    return f"; did you mean '{close[0]}'?" if close else ""


_FOLD = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: a / b,
}


def fold(expr: ast.BinOp, a: ScalarType, b: ScalarType) -> ScalarType:
    """``a op b`` for the numbers of a binary operation's two sides."""
    if expr.op == "/" and b.value == 0:
        raise GeoTypeError("division by zero in a constant expression", expr.op_span)
    return ScalarType(_FOLD[expr.op](a.value, b.value), a.is_int and b.is_int and expr.op != "/")


def constant(expr: ast.Expr) -> ScalarType | None:
    """The folded value of an expression made only of numbers, or None."""
    if isinstance(expr, ast.Number):
        return ScalarType(expr.value, expr.is_int)
    if isinstance(expr, ast.Neg):
        inner = constant(expr.operand)
        return ScalarType(-inner.value, inner.is_int) if inner else None
    if isinstance(expr, ast.BinOp):
        a, b = constant(expr.lhs), constant(expr.rhs)
        if a is None or b is None:
            return None
        return fold(expr, a, b)
    return None


def source_text(node: ast.Node) -> str:
    """The source text a node spans (its first line, for multi-line nodes)."""
    span = node.span
    line = span.source.line_text(span.line)
    end = span.end_column if span.end_line in (None, span.line) and span.end_column else len(line) + 1
    return line[span.column - 1 : end - 1]
