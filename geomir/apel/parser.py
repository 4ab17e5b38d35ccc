"""Parse ``.apel`` text into the AST (lark LALR + a transformer). Syntax errors are the
.geo frontend's: file:line:col, a caret, what was expected and what was found."""

from __future__ import annotations

import ast as pyast
from functools import lru_cache
from importlib import resources

from lark import Lark, Token, Transformer_NonRecursive, v_args
from lark.exceptions import UnexpectedInput, VisitError

from geomir.diagnostics import GeoSyntaxError, SourceError, SourceFile, Span, remember_source
from geomir.frontends.dsl.parser import _syntax_error

from . import ast


@lru_cache(maxsize=1)
def _lark() -> Lark:
    grammar = resources.files(__package__).joinpath("apel.lark").read_text()
    return Lark(grammar, start="module", parser="lalr", propagate_positions=True)


class _ToAst(Transformer_NonRecursive):  # no recursion: long expressions are deep trees
    def __init__(self, source: SourceFile):
        super().__init__()
        self.source = source

    def tok(self, token: Token) -> Span:
        return Span(self.source, token.line, token.column, token.end_line, token.end_column)

    def meta(self, meta) -> Span:
        return Span(self.source, meta.line, meta.column, meta.end_line, meta.end_column)

    def string(self, token: Token) -> str:
        try:
            return pyast.literal_eval(str(token))
        except (SyntaxError, ValueError):
            raise GeoSyntaxError(f"malformed string literal {token}", self.tok(token)) from None

    # -- declarations
    @v_args(meta=True)
    def module(self, meta, items):
        return ast.Program(self.source, list(items))

    @v_args(meta=True)
    def manifold_decl(self, meta, children):
        name, kind, options = children
        return ast.ManifoldDecl(self.meta(meta), str(name), self.tok(name), str(kind), self.tok(kind), options or [])

    def options(self, children):
        return list(children)

    @v_args(meta=True)
    def option(self, meta, children):
        name, value = children
        plain = value.value if isinstance(value, ast.Literal) else value.name
        return ast.Option(self.meta(meta), str(name), self.tok(name), plain, value.span)

    @v_args(meta=True)
    def type_decl(self, meta, children):
        name, body = children
        if isinstance(body, ast.TypeRef):
            return ast.TypeDecl(self.meta(meta), str(name), self.tok(name), None, body)
        return ast.TypeDecl(self.meta(meta), str(name), self.tok(name), body)

    def record_body(self, children):
        return [c for c in children if c is not None]

    @v_args(meta=True)
    def field(self, meta, children):
        name, type_ref = children
        return ast.Param(self.meta(meta), str(name), self.tok(name), type_ref)

    param = field

    def params(self, children):
        return [c for c in children if c is not None]

    @v_args(meta=True)
    def import_decl(self, meta, children):
        name, target = children
        return ast.ImportDecl(self.meta(meta), str(name), self.tok(name), self.string(target), self.tok(target))

    @v_args(meta=True)
    def named_type(self, meta, children):
        return ast.TypeRef(self.meta(meta), "named", str(children[0]))

    @v_args(meta=True)
    def point_type(self, meta, children):
        name, dim, dtype = children
        return ast.TypeRef(self.meta(meta), "point", str(name), int(dim),
                           dtype=str(dtype) if dtype is not None else None,
                           dtype_span=self.tok(dtype) if dtype is not None else None)

    @v_args(meta=True)
    def list_type(self, meta, children):
        return ast.TypeRef(self.meta(meta), "list", "list", elem=children[1])

    @v_args(meta=True)
    def agent_decl(self, meta, children):
        effect = "effectful"
        if isinstance(children[0], Token) and children[0].type in ("PURE", "IDEMPOTENT"):
            effect = str(children[0])
            children = children[1:]
        _, name, params, result, *body = children
        agent = ast.AgentDecl(self.meta(meta), str(name), self.tok(name), effect, params or [], result)
        for kind, value in (body[0] if body else []):
            if kind in ("impl", "model", "retry") and getattr(agent, kind) is not None:
                raise GeoSyntaxError(f"'{kind}' given twice for agent '{agent.name}'", value[1])
            if kind in ("requires", "budget", "delegates"):
                getattr(agent, kind).extend(value if kind != "requires" else [value])
            else:
                setattr(agent, kind, value)
        if agent.impl is not None and agent.model is not None:
            raise GeoSyntaxError(f"agent '{agent.name}' has both 'impl' and 'model'; give one", agent.model[1])
        return agent

    def agent_body(self, children):
        return list(children)

    def impl_clause(self, children):
        return "impl", (self.string(children[1]), self.tok(children[1]))

    def model_clause(self, children):
        return "model", (self.string(children[1]), self.tok(children[1]))

    def requires_clause(self, children):
        return "requires", children[1]

    def budget_clause(self, children):
        return "budget", children[1]

    def delegates_clause(self, children):
        return "delegates", [(str(t), self.tok(t)) for t in children[1:]]

    def retry_clause(self, children):
        return "retry", int(children[1])

    @v_args(meta=True)
    def workflow_decl(self, meta, children):
        _, name, params, result, (body, end) = children
        return ast.WorkflowDecl(self.meta(meta), str(name), self.tok(name), params or [], result, body, end)

    def block(self, children):
        *stmts, close = children
        return list(stmts), self.tok(close)

    # -- statements
    @v_args(meta=True)
    def let_stmt(self, meta, children):
        _, name, step = children
        return ast.Let(self.meta(meta), str(name), self.tok(name), step)

    @v_args(meta=True)
    def do_stmt(self, meta, children):
        return ast.Do(self.meta(meta), children[0])

    @v_args(meta=True)
    def parallel_stmt(self, meta, children):
        return ast.Parallel(self.tok(children[0]), list(children[1:]))

    @v_args(meta=True)
    def branch(self, meta, children):
        keyword, *rest = children
        name = str(rest[0]) if len(rest) == 2 else None
        return ast.Branch(self.tok(keyword), name, rest[-1][0])

    def loop_bound(self, children):
        return children[0]

    @v_args(meta=True)
    def while_stmt(self, meta, children):
        keyword, cond, *rest = children
        bound = rest[0] if len(rest) == 2 else None
        return ast.While(self.tok(keyword), cond, int(bound) if bound is not None else None,
                         self.tok(bound) if bound is not None else None, rest[-1][0])

    @v_args(meta=True)
    def repeat_stmt(self, meta, children):
        keyword, count, (body, _) = children
        return ast.Repeat(self.tok(keyword), int(count), self.tok(count), body)

    @v_args(meta=True)
    def if_stmt(self, meta, children):
        keyword, cond, (then, _), *rest = children
        orelse: list = []
        if rest:
            tail = rest[1]
            orelse = [tail] if isinstance(tail, ast.If) else tail[0]
        return ast.If(self.tok(keyword), cond, then, orelse)

    if_chain = if_stmt

    @v_args(meta=True)
    def send_stmt(self, meta, children):
        keyword, name, value = children
        return ast.Send(self.tok(keyword), str(name), self.tok(name), value)

    @v_args(meta=True)
    def return_stmt(self, meta, children):
        return ast.Return(self.tok(children[0]), children[1])

    @v_args(meta=True)
    def fail_stmt(self, meta, children):
        return ast.Fail(self.tok(children[0]), self.string(children[1]))

    # -- steps
    @v_args(meta=True)
    def call_step(self, meta, children):
        keyword, name, args, *options = children
        step = ast.CallStep(self.meta(meta), str(name), self.tok(name), args or [])
        for kind, value, span in options:
            if getattr(step, kind) is not None:
                raise GeoSyntaxError(f"'{kind}' given twice for this call", span)
            setattr(step, kind, value)
        return step

    def retry_option(self, children):
        keyword, count = children
        return "retry", int(count), self.tok(keyword)

    @v_args(meta=True)
    def compensate_option(self, meta, children):
        keyword, name, args = children
        return "compensate", ast.Compensation(self.meta(meta), str(name), self.tok(name), args or []), self.tok(keyword)

    @v_args(meta=True)
    def run_step(self, meta, children):
        _, name, args = children
        return ast.RunStep(self.meta(meta), str(name), self.tok(name), args or [])

    @v_args(meta=True)
    def receive_step(self, meta, children):
        _, name, type_ref, *timeout = children
        seconds = timeout[-1].value if timeout and timeout[-1] is not None else None
        return ast.ReceiveStep(self.meta(meta), str(name), self.tok(name), type_ref, seconds)

    @v_args(meta=True)
    def value_step(self, meta, children):
        return ast.ValueStep(self.meta(meta), children[0])

    # -- expressions
    def call_args(self, children):
        return [c if isinstance(c, ast.Arg) else ast.Arg(c.span, None, c) for c in children if c is not None]

    @v_args(meta=True)
    def named_arg(self, meta, children):
        name, value = children
        return ast.Arg(self.meta(meta), str(name), value, self.tok(name))

    @v_args(meta=True)
    def binop(self, meta, children):
        lhs, op, rhs = children
        return ast.BinOp(self.meta(meta), str(op), lhs, rhs, self.tok(op))

    @v_args(meta=True)
    def unop(self, meta, children):
        op, operand = children
        return ast.UnOp(self.meta(meta), str(op), operand)

    @v_args(meta=True)
    def field_access(self, meta, children):
        value, name = children
        return ast.Field(self.meta(meta), value, str(name), self.tok(name))

    def var(self, children):
        (name,) = children
        return ast.Var(self.tok(name), str(name))

    @v_args(meta=True)
    def list_lit(self, meta, children):
        return ast.ListLit(self.meta(meta), [c for c in children if c is not None])

    @v_args(meta=True)
    def func_call(self, meta, children):
        name, args = children
        return ast.FuncCall(self.meta(meta), str(name), self.tok(name), args or [])

    def int_lit(self, children):
        return ast.Literal(self.tok(children[0]), int(children[0]))

    def float_lit(self, children):
        return ast.Literal(self.tok(children[0]), float(children[0]))

    def string_lit(self, children):
        return ast.Literal(self.tok(children[0]), self.string(children[0]))

    def true_lit(self, children):
        return ast.Literal(self.tok(children[0]), True)

    def false_lit(self, children):
        return ast.Literal(self.tok(children[0]), False)

    def none_lit(self, children):
        return ast.Literal(self.tok(children[0]), None)


def parse_workflow_file(text: str, filename: str = "<string>") -> ast.Program:
    """Parse .apel source text. Raises :class:`GeoSyntaxError` on malformed input. A leading
    byte-order mark is dropped (as geomir's file reader, diagnostics.read_text_file, does)."""
    text = text.removeprefix("\ufeff")
    source = SourceFile(filename, text)
    remember_source(source)  # located errors after lowering show this text's lines (as .geo and .mlir)
    try:
        tree = _lark().parse(text)
    except UnexpectedInput as err:
        raise _syntax_error(err, source, _lark()) from None
    try:
        return _ToAst(source).transform(tree)
    except VisitError as err:
        if isinstance(err.orig_exc, SourceError):
            raise err.orig_exc from None
        raise
