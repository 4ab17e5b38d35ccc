"""The .geo abstract syntax tree.

Plain dataclasses; every node carries the :class:`Span` of its source text. The type
checker fills in ``Expr.type`` (and ``Call.target``) in place; the IR builder reads them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from geomir.diagnostics import SourceFile, Span


@dataclass(eq=False)
class Node:
    span: Span


# --- types -----------------------------------------------------------------------


@dataclass(eq=False)
class TypeExpr(Node):
    """``H[16]``, ``tangent H[16]``, ``path T[4]``, ``R[4, f64]``."""

    manifold: str
    dim: int
    dtype: str | None
    tangent: bool
    manifold_span: Span
    dim_span: Span
    dtype_span: Span | None = None
    path: bool = False
    prefix_span: Span | None = None  # the 'tangent' / 'path' keyword


# --- expressions -------------------------------------------------------------------


@dataclass(eq=False)
class Expr(Node):
    # Filled by the type checker: a frontends.dsl.types type.
    type: Any = field(default=None, init=False)


@dataclass(eq=False)
class Var(Expr):
    name: str


@dataclass(eq=False)
class Number(Expr):
    value: float
    is_int: bool


@dataclass(eq=False)
class Neg(Expr):
    operand: Expr


@dataclass(eq=False)
class BinOp(Expr):
    op: str  # one of + - * /
    lhs: Expr
    rhs: Expr
    op_span: Span


@dataclass(eq=False)
class Positional(Node):
    value: Expr


@dataclass(eq=False)
class Keyword(Node):
    name: str
    value: Expr
    name_span: Span


@dataclass(eq=False)
class Dims(Node):
    """A layer's parameter shape ``in -> out``."""

    in_dim: int
    out_dim: int
    in_span: Span
    out_span: Span


Arg = Positional | Keyword | Dims


@dataclass(eq=False)
class Call(Expr):
    callee: str
    callee_span: Span
    args: list[Arg]
    # Filled by the type checker: a Builtin, or the ModelDef being called.
    target: Any = field(default=None, init=False)
    # Filled by the type checker: builtin-specific checked arguments.
    checked: Any = field(default=None, init=False)


# --- statements and items ----------------------------------------------------------


@dataclass(eq=False)
class Let(Node):
    name: str
    name_span: Span
    value: Expr


@dataclass(eq=False)
class Return(Node):
    value: Expr


Stmt = Let | Return


@dataclass(eq=False)
class Annotation(Node):
    name: str
    name_span: Span
    args: list[Arg]
    # Filled by the type checker: a checked contract (frontends.dsl.contracts).
    contract: Any = field(default=None, init=False)


@dataclass(eq=False)
class Param(Node):
    name: str
    name_span: Span
    type_expr: TypeExpr
    type: Any = field(default=None, init=False)


@dataclass(eq=False)
class ManifoldDecl(Node):
    name: str
    name_span: Span
    kind: str
    kind_span: Span
    args: list[Arg]


@dataclass(eq=False)
class ModelDef(Node):
    name: str
    name_span: Span
    params: list[Param]
    result: TypeExpr
    body: list[Stmt]
    annotations: list[Annotation]
    close_span: Span
    result_type: Any = field(default=None, init=False)


@dataclass(eq=False)
class DeriveDecl(Node):
    name: str
    name_span: Span
    op: str
    op_span: Span
    args: list[Arg]
    # Filled by the type checker: frontends.dsl.typecheck.DerivedSignature.
    signature: Any = field(default=None, init=False)


Item = ManifoldDecl | ModelDef | DeriveDecl


@dataclass(eq=False)
class Program:
    source: SourceFile
    items: list[Item]
