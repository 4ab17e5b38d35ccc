"""Where in the user's Python file a traced operation was written.

The first frame outside geomir's tracing code is the user's; its current instruction's
position (``co_positions``, Python >= 3.11) spans the whole expression being evaluated
(a call, a binary operation). The file's syntax tree then gives the spans of the call's
callee and arguments, or of an operator, so that an error's caret points at the argument
that is wrong, as it does in a .geo file.
"""

from __future__ import annotations

import ast as pyast
import linecache
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from geomir.diagnostics import SourceFile, Span

import geomir

_HERE = str(Path(__file__).resolve().parent)
_CORE = str(Path(geomir.__file__).resolve().parent) + "/"


def _internal(filename: str) -> bool:
    path = str(Path(filename).resolve()) if not filename.startswith("<") else filename
    return path.startswith(_HERE) or path.startswith(_CORE)


def user_frame():
    """The innermost frame that is not geomir's tracing machinery."""
    frame = sys._getframe(1)
    while frame is not None and _internal(frame.f_code.co_filename):
        frame = frame.f_back
    return frame


@lru_cache(maxsize=64)
def _source(filename: str) -> SourceFile:
    """The file's text, named as a .geo file's path is shown (bytes that are not UTF-8 as ``\\xff``)."""
    from geomir.compiler import _shown_path

    return SourceFile(_shown_path(filename), "".join(linecache.getlines(filename)))


@lru_cache(maxsize=64)
def _tree(filename: str, text: str):
    try:
        return pyast.parse(text)
    except (SyntaxError, ValueError):
        return None


def _span(source: SourceFile, node) -> Span:
    return Span(source, node.lineno, node.col_offset + 1, node.end_lineno, node.end_col_offset + 1)


@dataclass
class Site:
    """The spans of one traced expression: the whole, its callee and its arguments (for
    calls) or its operator (for binary operations); the whole where unknown."""

    span: Span
    callee: Span
    args: list[Span]
    keywords: dict[str, tuple[Span, Span]]  # name -> (name span, value span)
    op: Span

    def arg(self, i: int) -> Span:
        return self.args[i] if i < len(self.args) else self.span


def _find(tree, position):
    line, end_line, col, end_col = position
    for node in pyast.walk(tree):
        if (getattr(node, "lineno", None), getattr(node, "end_lineno", None),
                getattr(node, "col_offset", None), getattr(node, "end_col_offset", None)) == (line, end_line, col, end_col):
            if isinstance(node, (pyast.Call, pyast.BinOp, pyast.UnaryOp)):
                return node
    return None


def _operator(source: SourceFile, node: pyast.BinOp) -> Span:
    """The operator token between the two operands of ``node``."""
    line = source.line_text(node.left.end_lineno)
    start = node.left.end_col_offset if node.left.end_lineno == node.right.lineno else 0
    stop = node.right.col_offset if node.left.end_lineno == node.right.lineno else len(line)
    for i in range(start, min(stop, len(line))):
        if line[i] in "+-*/@":
            return Span(source, node.left.end_lineno, i + 1, node.left.end_lineno, i + 2)
    return _span(source, node)


def site(frame=None) -> Site:
    """The spans of the expression the user's frame is evaluating."""
    frame = frame or user_frame()
    if frame is None:  # pragma: no cover - called from nowhere
        empty = Span(SourceFile("<unknown>", ""), 1, 1)
        return Site(empty, empty, [], {}, empty)
    code = frame.f_code
    source = _source(code.co_filename)
    position = None
    try:
        position = list(code.co_positions())[frame.f_lasti // 2]
    except (IndexError, AttributeError):  # pragma: no cover
        pass
    if position is None or position[0] is None:
        whole = Span(source, frame.f_lineno, 1)
        return Site(whole, whole, [], {}, whole)
    line, end_line, col, end_col = position
    whole = Span(source, line, (col or 0) + 1, end_line, (end_col or col or 0) + 1)
    tree = _tree(code.co_filename, source.text) if source.text else None
    node = _find(tree, position) if tree is not None else None
    if isinstance(node, pyast.Call):
        callee = node.func.attr if isinstance(node.func, pyast.Attribute) else None
        if isinstance(node.func, pyast.Attribute):
            fspan = Span(source, node.func.end_lineno, node.func.end_col_offset - len(callee) + 1,
                         node.func.end_lineno, node.func.end_col_offset + 1)
        else:
            fspan = _span(source, node.func)
        keywords = {k.arg: (_span(source, k), _span(source, k.value)) for k in node.keywords if k.arg}
        return Site(whole, fspan, [_span(source, a) for a in node.args], keywords, whole)
    if isinstance(node, pyast.BinOp):
        return Site(whole, whole, [_span(source, node.left), _span(source, node.right)], {}, _operator(source, node))
    return Site(whole, whole, [], {}, whole)


def def_span(fn) -> Span:
    """The span of ``def name`` of a Python function (its name), for model-level errors."""
    code = fn.__code__
    source = _source(code.co_filename)
    line = code.co_firstlineno
    # decorators come first: find the 'def' line
    for offset in range(0, 50):
        text = source.line_text(line + offset)
        index = text.find(f"def {fn.__name__}")
        if index >= 0:
            col = index + 5
            return Span(source, line + offset, col, line + offset, col + len(fn.__name__))
        if not text and offset > 0 and line + offset > len(source.text.split("\n")):
            break
    return Span(source, line, 1)
