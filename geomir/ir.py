"""Print and parse geomir IR text (MLIR syntax) with one context that knows our dialects."""

from __future__ import annotations

import io
import re

from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation
from xdsl.parser import Parser
from xdsl.printer import Printer
from xdsl.utils.exceptions import ParseError, VerifyException

from geomir.diagnostics import IRError, IRSourceError, SourceError, SourceFile, Span, remember_source
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
    parser = None
    try:
        parser = _LocatingParser(make_context(), text, filename)  # lexes the first token: may raise
        module = parser.parse_module()
    except ParseError as err:
        location = err.span.get_location()
        span = Span(SourceFile(filename, text), location.line, location.col, location.line, location.col + max(1, err.span.len))
        raise SourceError(err.msg, span) from None
    except OverflowError:
        # xDSL converts an integer literal given a float type (`9999...9 : f64`) with float(),
        # which overflows beyond the range of f64: an error at that literal, not a crash.
        raise _overflow_error(text, filename, parser.pos if parser is not None else 0) from None
    except VerifyException as err:
        raise IRError(f"{filename}: invalid IR: {err}") from None
    try:
        verify_module(module)
    except VerifyException as err:
        raise _invalid_ir(err, module, parser.op_starts, text, filename) from None
    return module


class _LocatingParser(Parser):
    """xDSL's parser, remembering where each op's text starts (parsed ops carry no
    location unless the text has ``loc(...)``)."""

    def __init__(self, *args, **kwargs):
        self.op_starts: dict[Operation, int] = {}
        super().__init__(*args, **kwargs)

    def parse_operation(self) -> Operation:
        start = self._current_token.span.start
        op = super().parse_operation()
        self.op_starts.setdefault(op, start)
        return op


def _failing_op(err: VerifyException, module: ModuleOp) -> Operation | None:
    """The op ``err`` is about: the one verify_module named (``err.op``), else the first
    op whose own verifier raises the same message."""
    op = getattr(err, "op", None)
    if op is not None:
        return op
    for candidate in module.walk():
        try:
            candidate.verify(verify_nested_ops=False)
        except VerifyException as own:
            if str(own) == str(err):
                return candidate
        except Exception:  # noqa: BLE001 - a verifier that cannot run alone locates nothing
            continue
    return None


def _invalid_ir(err: VerifyException, module: ModuleOp, starts: dict[Operation, int], text: str, filename: str):
    """``err`` as a user error, at the failing op's line and column when it is known."""
    message = f"{filename}: invalid IR: {err}"
    op = _failing_op(err, module)
    start = starts.get(op) if op is not None else None
    if start is None:
        return IRError(message)
    end = text.find("\n", start)
    name = text.find(op.name, start, end if end != -1 else len(text))  # underline up to the op name
    width = name + len(op.name) - start if name != -1 else 1
    return IRSourceError(message, _span_at(text, filename, start, width))


_INTEGER = re.compile(r"(?<![\w.])[-+]?\d+")


def _overflow_error(text: str, filename: str, pos: int) -> SourceError:
    """The error for a number literal too large for its float type, at the last integer
    literal before ``pos`` (where the parser stopped)."""
    literals = list(_INTEGER.finditer(text, 0, pos))
    start, end = (literals[-1].start(), literals[-1].end()) if literals else (pos, pos + 1)
    shown = text[start:end] if end - start <= 24 else f"{text[start:start + 12]}... ({end - start} characters)"
    return SourceError(f"integer literal {shown} is out of range for its float type",
                       _span_at(text, filename, start, end - start))


def _span_at(text: str, filename: str, start: int, width: int) -> Span:
    """The span of ``width`` characters at offset ``start`` of ``text`` (on one line)."""
    line = text.count("\n", 0, start) + 1
    column = start - (text.rfind("\n", 0, start) + 1) + 1
    return Span(SourceFile(filename, text), line, column, line, column + width)
