"""Small helpers shared by the checker's rule tables: suggestions, constant folding, source
text, and the room deeply nested expressions need."""

from __future__ import annotations

import contextlib
import difflib
import sys
import threading

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


# -- deeply nested expressions ---------------------------------------------------------------

MAX_NESTING = 2000
"""The deepest expression the parser accepts: operators (``+ - * /``, unary ``-``) and calls
nested in one another, ``x + x + ... + x`` counting one level per ``+``. Deeper is a located
syntax error (the checker and the IR builder recurse once per level)."""

_FRAMES_PER_LEVEL = 6  # the checker's check_expr -> _infer -> _binop/_call -> check_expr, with room
_HEADROOM = 200  # frames beyond the nesting: builtin rules, the IR builder's ops, error rendering
_recursion_lock = threading.Lock()
_recursion_users = 0
_recursion_saved: int | None = None


def nesting_depth(node) -> int:
    """The nesting depth of an expression (an ``ast.Expr``, or an argument holding one):
    the most operators and calls on one path from it to a leaf. Iterative, for any depth."""
    deepest = 0
    stack = [(node, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (ast.Positional, ast.Keyword)):
            stack.append((node.value, depth))
        elif isinstance(node, ast.Neg):
            stack.append((node.operand, depth + 1))
        elif isinstance(node, ast.BinOp):
            stack += [(node.lhs, depth + 1), (node.rhs, depth + 1)]
        elif isinstance(node, ast.Call):
            stack += [(a, depth + 1) for a in node.args]
            deepest = max(deepest, depth + 1)
        else:
            deepest = max(deepest, depth)
    return deepest


def program_depth(program: ast.Program) -> int:
    """The deepest expression of ``program`` (:func:`nesting_depth`)."""
    roots: list = []
    for item in program.items:
        roots += getattr(item, "args", [])
        for annotation in getattr(item, "annotations", []):
            roots += annotation.args
        roots += [stmt.value for stmt in getattr(item, "body", [])]
    return max((nesting_depth(r) for r in roots), default=0)


@contextlib.contextmanager
def room_for(levels: int):
    """Run a recursive walk of expressions nested ``levels`` deep: Python's recursion limit is
    raised, for as long as the block runs, to what that depth needs above the current stack
    (never lowered; restored when the last such block ends, in any thread). The walks are
    plain Python recursion, which does not grow the C stack."""
    global _recursion_users, _recursion_saved
    if levels <= 50:  # the default limit (1000) is plenty
        yield
        return
    depth, frame = 0, sys._getframe()
    while frame is not None:
        depth, frame = depth + 1, frame.f_back
    wanted = depth + _FRAMES_PER_LEVEL * levels + _HEADROOM
    with _recursion_lock:
        if _recursion_users == 0:
            _recursion_saved = sys.getrecursionlimit()
        _recursion_users += 1
        if sys.getrecursionlimit() < wanted:
            sys.setrecursionlimit(wanted)
    try:
        yield
    finally:
        with _recursion_lock:
            _recursion_users -= 1
            if _recursion_users == 0 and _recursion_saved is not None:
                sys.setrecursionlimit(_recursion_saved)
                _recursion_saved = None
