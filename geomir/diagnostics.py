"""One diagnostics path for the whole compiler.

Every user-facing failure is a :class:`GeomirError`. Errors tied to source text carry
a :class:`Span` and render as ``file:line:col: error: message`` followed by the source
line and a caret under the offending token. The CLI prints ``render()`` and exits with
``exit_code``; a user error never shows a Python traceback.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field


@dataclass(frozen=True)
class SourceFile:
    """A named source text (a path, or ``<string>`` for text given directly)."""

    name: str
    text: str = field(repr=False)

    def line_text(self, line: int) -> str:
        # Lines end at '\n' only, as the lexer counts them (splitlines() would also split
        # at form feeds, lone '\r' and U+2028, and show the wrong line).
        lines = self.text.split("\n")
        return lines[line - 1].removesuffix("\r") if 1 <= line <= len(lines) else ""


_ONE_COLUMN = str.maketrans({c: " " for c in "\t\r\f\v\x1c\x1d\x1e\x85\u2028\u2029"})


@dataclass(frozen=True)
class Span:
    """A 1-based source range; ``end_column`` is exclusive and on ``line`` if known."""

    source: SourceFile
    line: int
    column: int
    end_line: int | None = None
    end_column: int | None = None

    @property
    def location(self) -> str:
        return f"{self.source.name}:{self.line}:{self.column}"

    def excerpt(self) -> str:
        """The source line with a caret (and tildes) under the spanned token."""
        # One column per character, as the lexer counts them: tabs and other control
        # whitespace show as one space so the caret stays under its column.
        text = self.source.line_text(self.line).translate(_ONE_COLUMN)
        width = 1
        if self.end_line in (None, self.line) and self.end_column is not None:
            width = max(1, self.end_column - self.column)
        width = max(1, min(width, len(text) - self.column + 1))
        gutter = f"{self.line:>5} | "
        marker = " " * (self.column - 1) + "^" + "~" * (width - 1)
        return f"{gutter}{text}\n{' ' * (len(gutter) - 2)}| {marker}"


class GeomirError(Exception):
    """Base of every error geomir reports to a user."""

    exit_code = 1
    kind = "error"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def render(self) -> str:
        return f"{self.kind}: {self.message}"


@dataclass
class Note:
    message: str
    span: Span | None = None


class SourceError(GeomirError):
    """An error at a place in a source file (syntax, names, types, contracts)."""

    category = "error"

    def __init__(self, message: str, span: Span | None, notes: list[Note] | None = None):
        super().__init__(message)
        self.span = span
        self.notes = list(notes or [])

    def __str__(self) -> str:
        where = f"{self.span.location}: " if self.span else ""
        return f"{where}{self.message}"

    def render(self) -> str:
        parts = []
        if self.span is None:
            parts.append(f"error: {self.message}")
        else:
            parts.append(f"{self.span.location}: error: {self.message}")
            parts.append(self.span.excerpt())
        for note in self.notes:
            if note.span is None:
                parts.append(f"note: {note.message}")
            else:
                parts.append(f"{note.span.location}: note: {note.message}")
                parts.append(note.span.excerpt())
        return "\n".join(parts)


class GeoSyntaxError(SourceError):
    """The text does not follow the grammar."""


class GeoNameError(SourceError):
    """A name is unknown, defined twice, or used before its definition."""


class GeoTypeError(SourceError):
    """Types disagree: manifold, dimension, point vs tangent, arity, element type."""


class ContractAnnotationError(SourceError):
    """A contract annotation is malformed or does not fit the model it annotates."""


class NonFiniteError(SourceError):
    """A NaN or inf made by an op of a compiled model run with ``check_finite=True``
    (``geomc --check-finite``), at that op's source location."""


class UsageError(GeomirError):
    """The command line or API was used wrongly (bad flag, unknown pass, missing file)."""

    exit_code = 2


class EncodingError(SourceError):
    """A file that is not UTF-8 text, reported at its first bad byte (exit 1, as any other
    error in the file's contents)."""


class TargetNotBuiltError(UsageError):
    """A code-generation target that exists in the interface but is not built yet."""


class IRError(GeomirError):
    """Textual IR given by the user fails to parse or verify."""


class IRSourceError(SourceError, IRError):
    """Textual IR that fails to verify, at the op that is wrong (file:line:col and caret)."""


class InternalCompilerError(GeomirError):
    """A pass produced IR that fails verification: a compiler bug, not a user error."""

    exit_code = 3
    kind = "internal compiler error"


# The texts the frontends compiled, by name: a pass that fails after lowering shows the
# caret line of text given as a string ("<string>") too, and the text that was compiled
# rather than what the file holds now. Replaced, never mutated, so each thread and context
# sees its own.
_COMPILED: ContextVar[dict[str, str]] = ContextVar("geomir_compiled_texts", default={})


_KEEP = 64  # names remembered; the oldest go first


def remember_source(source: SourceFile) -> None:
    """Record ``source`` as the text compiled under its name (for :func:`op_span`)."""
    texts = {name: text for name, text in _COMPILED.get().items() if name != source.name}
    texts[source.name] = source.text
    _COMPILED.set(dict(list(texts.items())[-_KEEP:]))


def _text_of(name: str) -> str:
    """The text compiled under ``name``; else the file's, or linecache's (a notebook
    cell); else empty (no caret line)."""
    import linecache
    from pathlib import Path

    if (text := _COMPILED.get().get(name)) is not None:
        return text
    try:
        return decode_text(Path(name).read_bytes(), name)
    except (OSError, EncodingError):
        return "".join(linecache.getlines(name))


def file_location(loc, last: bool = False):
    """The ``FileLineColLoc`` of an IR location: itself, or for a ``FusedLoc`` (the location
    of an op that passes fused from several, e.g. ``jet.layer`` from a linear map and its
    activation) the first of its file locations (``last``: the last one); None if it has none."""
    from xdsl.dialects import builtin

    if isinstance(loc, builtin.FileLineColLoc):
        return loc
    if isinstance(loc, builtin.FusedLoc):
        found = [f for f in (file_location(inner) for inner in loc.locations.data) if f is not None]
        return (found[-1] if last else found[0]) if found else None
    return None


def location_text(loc, last: bool = False) -> str | None:
    """``file:line:col`` of :func:`file_location`, or None."""
    loc = file_location(loc, last)
    return None if loc is None else f"{loc.filename.data}:{loc.line.data}:{loc.column.data}"


def op_span(op) -> Span | None:
    """The source span of an IR op (its ``FileLineColLoc``, the first of a fused location),
    with the compiled text for the caret line; None for an op without a file location."""
    loc = file_location(op.location)
    if loc is None:
        return None
    return span_at(loc.filename.data, loc.line.data, loc.column.data)


def span_at(name: str, line: int, column: int) -> Span:
    """The span at ``name:line:column``, with the compiled text for the caret line."""
    return Span(SourceFile(name, _text_of(name)), line, column)


_INSTALL = {"torch": ("PyTorch", "pip install torch==2.13.0"),
            "matplotlib": ("matplotlib", "pip install matplotlib, or geomir[plot]")}
"""Optional module -> (its name in messages, how to install it)."""


def require_installed(module: str, needs: str, why: str = "") -> None:
    """A UsageError when the optional ``module`` is not installed: ``"<needs> <name><why>,
    which is not installed (<how to install it>)"``, ``needs`` saying who needs it and for
    what (``"--report=jets runs the model with"``)."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        name, install = _INSTALL[module]
        raise UsageError(f"{needs} {name}{why}, which is not installed ({install})")


def add_debug_option(parser, top: bool = False) -> None:
    """``--debug`` on an argparse parser (:func:`cli_main` reads it from argv): on the
    top-level parser (``top``) and on each subcommand's, so that it goes before or after the
    subcommand."""
    import argparse

    parser.add_argument("--debug", action="store_true", default=False if top else argparse.SUPPRESS,
                        help="show Python tracebacks for internal errors")


def cli_main(run, argv: list[str] | None = None, what: str = "internal error") -> int:
    """Run a command-line entry point ``run(argv) -> exit code`` the way every geomir tool
    does: a GeomirError is printed (file:line:col, caret) with its exit code, Ctrl-C is 130,
    anything else is a bug reported in one line (exit 3), with the traceback under --debug."""
    import sys

    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        return run(argv)
    except GeomirError as err:
        sys.stderr.write(err.render() + "\n")
        return err.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as err:
        if debug:
            raise
        sys.stderr.write(f"{what}: {type(err).__name__}: {err}\n(this is a bug in geomir; rerun with --debug for a "
                         "traceback)\n")
        return 3


# -- reading files -----------------------------------------------------------------------------

_BOM = b"\xef\xbb\xbf"


def decode_text(data: bytes, name: str) -> str:
    """``data`` as UTF-8 text, a leading byte-order mark dropped. Bytes that are not UTF-8
    are an :class:`EncodingError` at the first bad one, ``name:line:col`` with the column a
    text editor shows (characters, not bytes, from the start of the line; the byte-order
    mark not counted) and the line, its bad bytes shown as U+FFFD, under a caret."""
    skip = len(_BOM) if data.startswith(_BOM) else 0
    body = data[skip:]
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as err:
        before = body[:err.start].decode("utf-8")  # valid: the error is at the first bad byte
        line = before.count("\n") + 1
        column = len(before) - (before.rfind("\n") + 1) + 1
        source = SourceFile(name, body.decode("utf-8", "replace"))
        raise EncodingError(f"the file is not UTF-8 (byte 0x{body[err.start]:02x} at offset {skip + err.start}: "
                            f"{err.reason}); save it as UTF-8", Span(source, line, column)) from None


def read_text_file(path, what: str = "") -> str:
    """The text of the file at ``path`` (see :func:`decode_text`), the one reader of every
    geomir tool (geomc, apel, kernel contracts): a file that cannot be read is a
    :class:`UsageError`, ``cannot read <what>'path': reason`` (exit 2); one that is not
    UTF-8 an :class:`EncodingError` at its first bad byte (exit 1)."""
    from pathlib import Path

    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise UsageError(f"cannot read {what}'{path}': {err.strerror or err}") from None
    return decode_text(data, str(path))
