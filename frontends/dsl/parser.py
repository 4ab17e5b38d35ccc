"""Parse .geo text into the AST (lark LALR parser + a transformer).

Syntax errors become :class:`GeoSyntaxError` with the location of the offending token
and a readable list of what was expected there.
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources

from lark import Lark, Token, Transformer_NonRecursive, Tree, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from geomir.diagnostics import GeoSyntaxError, SourceError, SourceFile, Span, remember_source

from . import ast
from .common import MAX_NESTING

# How terminals read in "expected ..." messages.
_TERMINAL_NAMES = {
    "NAME": "a name",
    "INT": "an integer",
    "FLOAT": "a number",
    "LPAR": "'('",
    "RPAR": "')'",
    "LSQB": "'['",
    "RSQB": "']'",
    "LBRACE": "'{'",
    "RBRACE": "'}'",
    "COMMA": "','",
    "COLON": "':'",
    "EQUAL": "'='",
    "AT": "'@'",
    "PLUS": "'+'",
    "MINUS": "'-'",
    "STAR": "'*'",
    "SLASH": "'/'",
    "__ANON_0": "'->'",
    "RETURN": "'return'",
    "TANGENT": "'tangent'",
    "PATH": "'path'",
    "MANIFOLD": "'manifold'",
    "MODEL": "'model'",
    "DERIVE": "'derive'",
    "LET": "'let'",
    "$END": "end of file",
}


_LONE_CR = re.compile(r"\r(?!\n)")

KEYWORDS = ("manifold", "model", "let", "return", "derive")
"""Reserved: never a name. ``tangent`` and ``path`` start a type; they cannot name a
manifold (``tangent tangent[2]`` would be ambiguous) but may name a value."""
TYPE_PREFIXES = ("tangent", "path")


@lru_cache(maxsize=1)
def _lark() -> Lark:
    grammar = resources.files(__package__).joinpath("geo.lark").read_text()
    return Lark(grammar, start="module", parser="lalr", propagate_positions=True)


def _describe_terminal(name: str, lark: Lark) -> str:
    pattern = lark.get_terminal(name).pattern if name in lark._terminals_dict else None
    if pattern is not None and pattern.type == "str":
        return f"'{pattern.value}'"
    if name in _TERMINAL_NAMES:
        return _TERMINAL_NAMES[name]
    return name.lower()


def _expected_text(expected: set[str], lark: Lark) -> str:
    names = sorted({_describe_terminal(e, lark) for e in expected})
    if len(names) > 8:
        names = names[:8] + ["..."]
    if len(names) == 1:
        return names[0]
    return ", ".join(names[:-1]) + " or " + names[-1]


def _found_text(token: Token) -> str:
    if token.type == "$END":
        return "end of file"
    return f"'{token.value}'"


class _ToAst(Transformer_NonRecursive):
    """lark tree -> ast nodes. Spans come from tokens and propagated rule positions.
    Non-recursive: an expression nested :data:`MAX_NESTING` deep is no deeper a Python stack."""

    def __init__(self, source: SourceFile):
        super().__init__()
        self.source = source

    # -- spans
    def tok(self, token: Token) -> Span:
        return Span(self.source, token.line, token.column, token.end_line, token.end_column)

    def meta(self, meta) -> Span:
        return Span(self.source, meta.line, meta.column, meta.end_line, meta.end_column)

    def int(self, token: Token) -> int:
        """An integer token's value (a located error past the digits Python converts)."""
        if len(token) > 4000:
            raise GeoSyntaxError(f"integer literal too large ({len(token)} digits)", self.tok(token))
        return int(token)

    def NAME(self, token: Token) -> Token:
        """Every name: the keywords are reserved."""
        if token in KEYWORDS:
            raise GeoSyntaxError(
                f"'{token}' is a keyword and cannot be used as a name (keywords: {', '.join(KEYWORDS)})", self.tok(token)
            )
        return token

    # -- items
    @v_args(meta=True)
    def module(self, meta, items):
        return ast.Program(self.source, list(items))

    @v_args(meta=True)
    def manifold_decl(self, meta, children):
        name, kind, args = children
        if name in TYPE_PREFIXES:
            example = {"tangent": "tangent H[n]", "path": "path T[n]"}[str(name)]
            raise GeoSyntaxError(f"'{name}' starts a type ({example}) and cannot name a manifold", self.tok(name))
        return ast.ManifoldDecl(
            self.meta(meta), str(name), self.tok(name), str(kind), self.tok(kind), args or []
        )

    @v_args(meta=True)
    def model_def(self, meta, children):
        annotations = [c for c in children if isinstance(c, ast.Annotation)]
        rest = children[len(annotations):]
        name, params, result, *body, close = rest
        span = self.tok(name)
        return ast.ModelDef(
            span, str(name), span, params or [], result, list(body), annotations, self.tok(close)
        )

    @v_args(meta=True)
    def annotation(self, meta, children):
        name, *args = children
        return ast.Annotation(self.meta(meta), str(name), self.tok(name), (args[0] if args else None) or [])

    def params(self, children):
        return [c for c in children if c is not None]

    @v_args(meta=True)
    def param(self, meta, children):
        name, type_expr = children
        return ast.Param(self.meta(meta), str(name), self.tok(name), type_expr)

    @v_args(meta=True)
    def type(self, meta, children):
        prefix, manifold, dim, dtype = children
        return ast.TypeExpr(
            self.meta(meta),
            str(manifold),
            self.int(dim),
            str(dtype) if dtype is not None else None,
            prefix is not None and prefix.type == "TANGENT",
            self.tok(manifold),
            self.tok(dim),
            self.tok(dtype) if dtype is not None else None,
            prefix is not None and prefix.type == "PATH",
            self.tok(prefix) if prefix is not None else None,
        )

    @v_args(meta=True)
    def let_stmt(self, meta, children):
        name, value = children
        return ast.Let(self.meta(meta), str(name), self.tok(name), value)

    @v_args(meta=True)
    def return_stmt(self, meta, children):
        keyword, value = children
        return ast.Return(self.tok(keyword), value)

    @v_args(meta=True)
    def derive_decl(self, meta, children):
        name, op, args = children
        return ast.DeriveDecl(self.meta(meta), str(name), self.tok(name), str(op), self.tok(op), args or [])

    # -- expressions
    @v_args(meta=True)
    def binop(self, meta, children):
        lhs, op, rhs = children
        return ast.BinOp(self.meta(meta), str(op), lhs, rhs, self.tok(op))

    @v_args(meta=True)
    def neg(self, meta, children):
        _, operand = children
        return ast.Neg(self.meta(meta), operand)

    def var(self, children):
        (name,) = children
        return ast.Var(self.tok(name), str(name))

    def int_lit(self, children):
        (tok,) = children
        try:
            value = float(self.int(tok))
        except OverflowError:
            raise GeoSyntaxError(f"integer literal too large ({len(tok)} digits)", self.tok(tok)) from None
        return ast.Number(self.tok(tok), value, True)

    def float_lit(self, children):
        (tok,) = children
        return ast.Number(self.tok(tok), float(tok), False)

    @v_args(meta=True)
    def call(self, meta, children):
        name, args = children
        return ast.Call(self.meta(meta), str(name), self.tok(name), args or [])

    def call_args(self, children):
        return [
            c if isinstance(c, (ast.Keyword, ast.Dims)) else ast.Positional(c.span, c)
            for c in children
            if c is not None
        ]

    @v_args(meta=True)
    def kwarg(self, meta, children):
        name, value = children
        return ast.Keyword(self.meta(meta), str(name), value, self.tok(name))

    @v_args(meta=True)
    def dims(self, meta, children):
        a, b = children
        for size in (a, b):
            if size.type == "FLOAT":
                raise GeoSyntaxError(f"a layer size is a whole number (IN -> OUT), found {size}", self.tok(size))
        return ast.Dims(self.meta(meta), self.int(a), self.int(b), self.tok(a), self.tok(b))


def parse_program(text: str, filename: str = "<string>") -> ast.Program:
    """Parse .geo source text. Raises GeoSyntaxError on malformed input.

    Lines end at ``\n``, ``\r\n`` or a lone ``\r`` (old Mac files): a lone ``\r`` becomes
    ``\n`` before lexing (one character for one, so columns stay), so that comments end at it
    and diagnostics count its lines."""
    text = text.removeprefix("\ufeff")  # a UTF-8 byte-order mark, as Windows editors write
    text = _LONE_CR.sub("\n", text)
    source = SourceFile(filename, text)
    remember_source(source)
    try:
        tree = _lark().parse(text)
    except UnexpectedInput as err:
        raise _syntax_error(err, source) from None
    _check_nesting(tree, source)
    try:
        return _ToAst(source).transform(tree)
    except VisitError as err:  # an int literal too large, etc.
        if isinstance(err.orig_exc, SourceError):
            raise err.orig_exc from None
        raise


_NESTING = frozenset({"binop", "neg", "call"})  # the rules that nest expressions: one level each


def _check_nesting(tree: Tree, source: SourceFile) -> None:
    """A located error for an expression nested more than :data:`MAX_NESTING` levels deep
    (operators and calls in one another), at the first operator or call past the limit; the
    message gives the depth of the whole expression. Iterative: any depth is measured."""
    first_too_deep = None  # (the outermost expression, the first node past the limit)
    deepest: dict[int, int] = {}  # id(outermost expression) -> its depth
    stack: list[tuple[Tree, int, Tree | None]] = [(tree, 0, None)]
    while stack:
        node, depth, root = stack.pop()
        if node.data in _NESTING:
            depth += 1
            root = root if root is not None else node
            deepest[id(root)] = max(deepest.get(id(root), 0), depth)
            if depth == MAX_NESTING + 1 and first_too_deep is None:
                first_too_deep = (root, node)
        # Children in reverse: popped left to right, so "first" is first in the source.
        stack += [(c, depth, root) for c in reversed(node.children) if isinstance(c, Tree)]
    if first_too_deep is None:
        return
    root, node = first_too_deep
    line, column = node.meta.line, node.meta.column
    name = node.children[0] if node.data == "call" else None  # a call: its name; else the first character
    end = column + (len(name) if isinstance(name, Token) else 1)
    raise GeoSyntaxError(
        f"expression nested too deeply ({deepest[id(root)]} levels of operators and calls); at most {MAX_NESTING}: "
        "split it with 'let' bindings",
        Span(source, line, column, line, end),
    )


def _syntax_error(err: UnexpectedInput, source: SourceFile, lark: Lark | None = None) -> GeoSyntaxError:
    """A located syntax error for lark's ``err`` (``lark``: the grammar that raised it,
    default the .geo grammar), naming what was expected and what was found."""
    lark = lark or _lark()
    if isinstance(err, UnexpectedCharacters):
        char = source.text[err.pos_in_stream] if err.pos_in_stream < len(source.text) else "?"
        span = Span(source, err.line, err.column, err.line, err.column + 1)
        return GeoSyntaxError(f"unexpected character {char!r}", span)
    if isinstance(err, UnexpectedToken):
        token = err.token
        # ``accepts`` (what really shifts here) is exact; ``expected`` (the LALR state's
        # table) may list tokens that fail after a reduction.
        accepted = set(err.accepts or err.expected)
        expected = _expected_text(accepted, lark)
        hint = ""
        if token.type == "$END":
            line, col = _end_position(source)
            span = Span(source, line, col, line, col + 1)
            if "RBRACE" in accepted:
                hint = " (a '}' is missing)"
        else:
            span = Span(source, token.line, token.column, token.end_line, token.end_column)
        return GeoSyntaxError(f"expected {expected}, found {_found_text(token)}{hint}", span)
    if isinstance(err, UnexpectedEOF):
        line, col = _end_position(source)
        span = Span(source, line, col, line, col + 1)
        return GeoSyntaxError(f"unexpected end of file, expected {_expected_text(set(err.expected), lark)}", span)
    span = Span(source, getattr(err, "line", 1) or 1, getattr(err, "column", 1) or 1)
    return GeoSyntaxError(str(err), span)


def _end_position(source: SourceFile) -> tuple[int, int]:
    lines = source.text.split("\n")  # lark counts lines at '\n' only
    # Point just after the last non-blank line.
    for index in range(len(lines) - 1, -1, -1):
        if lines[index].strip():
            return index + 1, len(lines[index].rstrip()) + 1
    return 1, 1
