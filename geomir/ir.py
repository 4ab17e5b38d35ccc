"""Print and parse geomir IR text (MLIR syntax) with one context that knows our dialects."""

from __future__ import annotations

import io

from xdsl.dialects.builtin import ModuleOp
from xdsl.parser import Parser
from xdsl.printer import Printer
from xdsl.utils.exceptions import ParseError, VerifyException

from geomir.diagnostics import IRError, SourceError, SourceFile, Span, remember_source
from geomir.dialects import make_context
from geomir.verify import verify_module


def print_ir(module: ModuleOp, generic: bool = False, debug_info: bool = False) -> str:
    """The textual IR of ``module`` (custom syntax, or MLIR's generic form; with
    ``debug_info``, each op's source location as ``loc("file":line:col)``)."""
    stream = io.StringIO()
    Printer(stream=stream, print_generic_format=generic, print_debuginfo=debug_info).print_op(module)
    return stream.getvalue().rstrip("\n") + "\n"


def parse_ir(text: str, filename: str = "<ir>") -> ModuleOp:
    """Parse and verify IR text; errors become :class:`IRError` with the location."""
    if not text.strip():
        raise IRError(f"{filename}: empty IR file (expected a builtin.module)")
    remember_source(SourceFile(filename, text))
    try:
        module = Parser(make_context(), text, filename).parse_module()
    except ParseError as err:
        location = err.span.get_location()
        span = Span(SourceFile(filename, text), location.line, location.col, location.line, location.col + max(1, err.span.len))
        raise SourceError(err.msg, span) from None
    except VerifyException as err:
        raise IRError(f"{filename}: invalid IR: {err}") from None
    try:
        verify_module(module)
    except VerifyException as err:
        raise IRError(f"{filename}: invalid IR: {err}") from None
    return module
