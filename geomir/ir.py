"""Print and parse geomir IR text (MLIR syntax) with one context that knows our dialects."""

from __future__ import annotations

import io
import re
import unicodedata

from xdsl.dialects.builtin import ModuleOp
from xdsl.dialects.func import FuncOp
from xdsl.ir import Operation, SSAValue
from xdsl.parser import Parser
from xdsl.parser.generic_parser import ParserState
from xdsl.printer import Printer
from xdsl.utils.exceptions import ParseError, VerifyException
from xdsl.utils.lexer import Input, Token
from xdsl.utils.lexer import Span as XSpan
from xdsl.utils.mlir_lexer import MLIRLexer, MLIRTokenKind, StringLiteral

from geomir import input_names
from geomir.diagnostics import IRError, IRSourceError, SourceError, SourceFile, Span, remember_source
from geomir.dialects import geo, make_context
from geomir.verify import verify_module


def print_ir(module: ModuleOp, generic: bool = False, debug_info: bool = False) -> str:
    """The textual IR of ``module`` (custom syntax, or MLIR's generic form; with
    ``debug_info``, each op's source location as ``loc("file":line:col)``)."""
    stream = io.StringIO()
    module = _spelled_as_named(module)
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
    """xDSL's printer, with value names the parser reads back (see :func:`_ascii_hint`), and a
    function's inputs spelled by their source names where the hint cannot hold them
    (``%x_1``: see geomir.input_names). Names taken in a scope are kept in its ``ssa_names``
    table as ``"%name"`` (a hint never starts with ``%``), so numbering never repeats one."""

    def print_ssa_value(self, value: SSAValue) -> str:
        if value in self._ssa_values:
            return super().print_ssa_value(value)
        name = _pick_name(self.ssa_names, value) or self._get_new_valid_name_id()
        self._ssa_values[value] = name
        self.print_string(f"%{name}")
        return name


def _pick_name(taken: dict[str, int], value: SSAValue) -> str | None:
    """The name the printer gives ``value`` in a scope whose names are ``taken`` (updated);
    None: a number."""
    source = _ascii_hint(input_names.source_name(value))
    safe = _ascii_hint(value.name_hint)
    if source and f"%{source}" not in taken:
        name = source
    elif safe is None:
        return None
    else:
        while True:
            index = taken.get(safe, 0)
            taken[safe] = index + 1
            name = f"{safe}_{index}" if index else safe
            if f"%{name}" not in taken:
                break
    taken[f"%{name}"] = 1
    return name


def _spelled_as_named(module: ModuleOp) -> ModuleOp:
    """``module``, or a copy in which each function input that the printer would spell
    other than its source name (``%v_1`` for a second ``v``; ``%e`` for ``é``) carries the
    name as an attribute, so that the printed text reads back with the same names."""
    def unspelled(f: FuncOp) -> list[str | None]:
        taken: dict[str, int] = {}
        printed = [_pick_name(taken, a) for a in f.body.block.args]
        return [name if name is not None and name != p else None
                for name, p in zip(input_names.input_names(f), printed)]

    def funcs(module):
        return [op for op in module.walk() if isinstance(op, FuncOp) and len(op.body.blocks) == 1]

    pins = [unspelled(f) for f in funcs(module)]
    if not any(any(names) for names in pins):
        return module
    module = module.clone()  # the same functions in the same order
    for f, names in zip(funcs(module), pins):
        input_names.pin_names(f, names)
    return module


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
        raise SourceError(_parse_message(err.msg), span) from None
    except OverflowError:
        # xDSL converts an integer literal given a float type (`9999...9 : f64`) with float(),
        # which overflows beyond the range of f64: an error at that literal, not a crash.
        raise _overflow_error(text, filename, parser.pos if parser is not None else 0) from None
    except RecursionError:
        # xDSL's parser descends once per level of nested attributes, types and regions:
        # a few hundred levels exhaust Python's stack.
        raise _too_deep_error(text, filename, parser) from None
    except VerifyException as err:
        raise IRError(f"{filename}: invalid IR: {err}") from None
    for f in module.walk():
        if isinstance(f, FuncOp) and len(f.body.blocks) == 1:  # several blocks: verify_module refuses it
            input_names.keep_written_names(f, [parser.written_names.get(a) for a in f.body.block.args])
    try:
        verify_module(module)
    except VerifyException as err:
        raise _invalid_ir(err, module, parser.op_starts, text, filename) from None
    return module


_PARSE_MESSAGES = {
    "in block definition": "expected an operation or '}' to close the block",
    "Expected ':'function type signature expected": "expected ':' and the op's function type (a generic op "
    "is written \"name\"(operands) <{properties}> : (operand types) -> result types)",
}
"""xDSL messages that say nothing (or run two messages together), as geomir says them."""


def _parse_message(message: str) -> str:
    return _PARSE_MESSAGES.get(message.strip(), message)


class _LocatingParser(Parser):
    """xDSL's parser, remembering where each op's text starts (parsed ops carry no
    location unless the text has ``loc(...)``)."""

    def __init__(self, ctx, text: str, filename: str):
        self.op_starts: dict[Operation, int] = {}
        self.written_names: dict[SSAValue, str] = {}  # as the text spells them (a hint drops `_1`)
        self.first_uses: dict[str, XSpan] = {}  # value name -> where it is first used before its definition
        super().__init__(ctx, text, filename)
        self._parser_state = ParserState(_Lexer(Input(text, filename)))

    def resolve_operand(self, operand, type):
        if operand.operand_name not in self.ssa_values:
            self.first_uses.setdefault(operand.operand_name, operand.span)
        return super().resolve_operand(operand, type)

    def parse_module(self, *args, **kwargs):
        """xDSL's, with a value used and never defined reported at its first use (xDSL
        reports it at the end of the text)."""
        try:
            return super().parse_module(*args, **kwargs)
        except ParseError as err:
            undefined = [n for n in self.forward_ssa_references if n in self.first_uses]
            if not err.msg.startswith("values used but not defined") or not undefined:
                raise
            first = min(undefined, key=lambda n: self.first_uses[n].start)
            others = [f"%{n}" for n in undefined if n != first]
            also = f" (also used and never defined: {', '.join(others)})" if others else ""
            raise ParseError(self.first_uses[first], f"%{first} is used but never defined{also}") from None

    def _parse_extended_type_or_attribute(self, name: str, is_type: bool):
        """xDSL's, with a type or attribute whose parameters do not verify
        (``!geo.point<poincare<-1.0>, 2, f32>``) reported at its text, not without a place."""
        start = self._current_token.span.start - len(name) - 1  # the `!name` / `#name` token
        try:
            return super()._parse_extended_type_or_attribute(name, is_type)
        except VerifyException as err:
            span = XSpan(max(start, 0), self._current_token.span.start, self.lexer.input)
            message = " ".join(str(err).split())
            bad_element = re.fullmatch(r"parameter 'element_type' does not verify: Unexpected attribute (.+)", message)
            if bad_element:  # xDSL's parameter check runs before the type's own verifier
                allowed = ", ".join(map(str, geo.ELEMENT_TYPES))
                message = f"element type must be one of {allowed}, found {bad_element.group(1)}"
            raise ParseError(span, message) from None

    def _register_ssa_definition(self, name, values, span) -> None:
        super()._register_ssa_definition(name, values, span)
        if len(values) == 1:
            self.written_names[values[0]] = name

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


def _too_deep_error(text: str, filename: str, parser: Parser | None) -> SourceError:
    """The error for IR nested deeper than the parser can go, at the token it had reached
    (the first line when it had not started)."""
    token = parser._current_token.span if parser is not None else None
    start, width = (token.start, max(1, min(token.len, 24))) if token is not None else (0, 1)
    message = ("IR nested too deeply: the parser reached Python's recursion limit here; nest attributes, types "
               "and regions less deeply")
    return SourceError(message, _span_at(text, filename, start, width))


def _span_at(text: str, filename: str, start: int, width: int) -> Span:
    """The span of ``width`` characters at offset ``start`` of ``text`` (on one line)."""
    line = text.count("\n", 0, start) + 1
    column = start - (text.rfind("\n", 0, start) + 1) + 1
    return Span(SourceFile(filename, text), line, column, line, column + width)
