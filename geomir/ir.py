"""Print and parse geomir IR text (MLIR syntax) with one context that knows our dialects."""

from __future__ import annotations

import io
import re
import unicodedata

from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation, SSAValue
from xdsl.parser import Parser
from xdsl.parser.generic_parser import ParserState
from xdsl.printer import Printer
from xdsl.utils.exceptions import ParseError, VerifyException
from xdsl.utils.lexer import Input, Token
from xdsl.utils.mlir_lexer import MLIRLexer, MLIRTokenKind, StringLiteral

from geomir.diagnostics import IRError, IRSourceError, SourceError, SourceFile, Span, remember_source
from geomir.dialects import make_context
from geomir.verify import verify_module


def print_ir(module: ModuleOp, generic: bool = False, debug_info: bool = False) -> str:
    """The textual IR of ``module`` (custom syntax, or MLIR's generic form; with
    ``debug_info``, each op's source location as ``loc("file":line:col)``)."""
    stream = io.StringIO()
    _Printer(stream=stream, print_generic_format=generic, print_debuginfo=debug_info).print_op(module)
    return stream.getvalue().rstrip("\n") + "\n"


_ASCII_NAME = re.compile(r"[A-Za-z_$.-][A-Za-z0-9_$.-]*")
"""An SSA value name MLIR's lexer reads back (xDSL accepts any ``\\w`` in a name hint:
``%Wé`` from a traced ``def f(Wé)`` would print, then not parse)."""


def _ascii_hint(hint: str | None) -> str | None:
    """``hint`` if the lexer reads it back; else its ASCII letters (accents dropped:
    ``Wé`` -> ``We``), or None (a number) when none is left."""
    if not hint or _ASCII_NAME.fullmatch(hint):
        return hint
    ascii_only = unicodedata.normalize("NFKD", hint).encode("ascii", "ignore").decode("ascii")
    return ascii_only if _ASCII_NAME.fullmatch(ascii_only) else None


class _Printer(Printer):
    """xDSL's printer, with value names the parser reads back (see :func:`_ascii_hint`)."""

    def print_ssa_value(self, value: SSAValue) -> str:
        hint = value.name_hint
        safe = _ascii_hint(hint)
        if value in self._ssa_values or safe == hint:
            return super().print_ssa_value(value)
        if safe is None:
            name = self._get_new_valid_name_id()
        else:
            index = self.ssa_names.get(safe, 0)
            name = f"{safe}_{index}" if index else safe
            self.ssa_names[safe] = index + 1
        self._ssa_values[value] = name
        self.print_string(f"%{name}")
        return name


class _Lexer(MLIRLexer):
    """xDSL's lexer, reading a string literal whose escapes spell UTF-8 (``"\\C3\\A9"``: é,
    as xDSL's printer writes non-ASCII text) as a string, as its documentation says, not
    as bytes (a ``geo.param "F.poids_é"`` would print, then not parse)."""

    def _lex_string_literal(self, start_pos):
        token = super()._lex_string_literal(start_pos)
        if token.kind is MLIRTokenKind.BYTES_LIT:
            try:
                StringLiteral.from_span(token.span).bytes_contents.decode("utf-8")
            except UnicodeDecodeError:
                return token
            return Token(MLIRTokenKind.STRING_LIT, token.span)
        return token


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

    def __init__(self, ctx, text: str, filename: str):
        self.op_starts: dict[Operation, int] = {}
        super().__init__(ctx, text, filename)
        self._parser_state = ParserState(_Lexer(Input(text, filename)))

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
