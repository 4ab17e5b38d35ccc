"""The APEL abstract syntax tree: plain dataclasses, each node with its source :class:`Span`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from geomir.diagnostics import SourceFile, Span


@dataclass(eq=False)
class Node:
    span: Span


# --- types ---------------------------------------------------------------------------


@dataclass(eq=False)
class TypeRef(Node):
    """``str``, ``Order``, ``H[16]`` (a point of a declared manifold; ``R[2, f64]`` with an
    element type, as in .geo: f32 when none is given), ``list[Order]``."""

    kind: str  # "named" | "point" | "list"
    name: str = ""
    dim: int = 0
    elem: TypeRef | None = None
    dtype: str | None = None  # a point's element type as written (None: f32)
    dtype_span: Span | None = None

    def __str__(self) -> str:
        dtype = f", {self.dtype}" if self.dtype is not None else ""
        return {"named": lambda: self.name, "point": lambda: f"{self.name}[{self.dim}{dtype}]",
                "list": lambda: f"list[{self.elem}]"}[self.kind]()


# --- expressions -----------------------------------------------------------------------


@dataclass(eq=False)
class Expr(Node):
    type: Any = field(default=None, init=False)  # filled by the checker (apel.types)


@dataclass(eq=False)
class Var(Expr):
    name: str


@dataclass(eq=False)
class Literal(Expr):
    value: Any  # str | int | float | bool | None


@dataclass(eq=False)
class BinOp(Expr):
    op: str
    lhs: Expr
    rhs: Expr
    op_span: Span


@dataclass(eq=False)
class UnOp(Expr):
    op: str  # "-" | "not"
    operand: Expr


@dataclass(eq=False)
class Field(Expr):
    value: Expr
    name: str
    name_span: Span


@dataclass(eq=False)
class ListLit(Expr):
    items: list[Expr]


@dataclass(eq=False)
class Arg(Node):
    name: str | None  # keyword arguments: ``qty = 2``
    value: Expr
    name_span: Span | None = None


@dataclass(eq=False)
class FuncCall(Expr):
    """A builtin function (``len(x)``) or a record construction (``Order(qty = 2)``)."""

    name: str
    name_span: Span
    args: list[Arg]


# --- steps and statements -------------------------------------------------------------


@dataclass(eq=False)
class Compensation(Node):
    agent: str
    agent_span: Span
    args: list[Arg]


@dataclass(eq=False)
class CallStep(Node):
    agent: str
    agent_span: Span
    args: list[Arg]
    retry: int | None = None
    compensate: Compensation | None = None


@dataclass(eq=False)
class RunStep(Node):
    workflow: str
    workflow_span: Span
    args: list[Arg]


@dataclass(eq=False)
class ReceiveStep(Node):
    event: str
    event_span: Span
    type: TypeRef
    timeout: float | None = None


@dataclass(eq=False)
class ValueStep(Node):
    expr: Expr


Step = CallStep | RunStep | ReceiveStep | ValueStep


@dataclass(eq=False)
class Let(Node):
    name: str
    name_span: Span
    step: Step


@dataclass(eq=False)
class Do(Node):
    step: Step


@dataclass(eq=False)
class Branch(Node):
    name: str | None
    body: list


@dataclass(eq=False)
class Parallel(Node):
    branches: list[Branch]


@dataclass(eq=False)
class While(Node):
    cond: Expr
    bound: int | None
    bound_span: Span | None
    body: list


@dataclass(eq=False)
class Repeat(Node):
    count: int
    count_span: Span
    body: list


@dataclass(eq=False)
class If(Node):
    cond: Expr
    then: list
    orelse: list


@dataclass(eq=False)
class Send(Node):
    event: str
    event_span: Span
    value: Expr | None


@dataclass(eq=False)
class Return(Node):
    value: Expr


@dataclass(eq=False)
class Fail(Node):
    message: str


# --- declarations ---------------------------------------------------------------------


@dataclass(eq=False)
class Param(Node):
    name: str
    name_span: Span
    type: TypeRef


@dataclass(eq=False)
class Option(Node):
    name: str
    name_span: Span
    value: Any
    value_span: Span


@dataclass(eq=False)
class ManifoldDecl(Node):
    name: str
    name_span: Span
    kind: str
    kind_span: Span
    options: list[Option]


@dataclass(eq=False)
class TypeDecl(Node):
    name: str
    name_span: Span
    fields: list[Param] | None  # a record
    alias: TypeRef | None = None


@dataclass(eq=False)
class ImportDecl(Node):
    name: str
    name_span: Span
    target: str
    target_span: Span


@dataclass(eq=False)
class AgentDecl(Node):
    name: str
    name_span: Span
    effect: str  # "pure" | "idempotent" | "effectful"
    params: list[Param]
    result: TypeRef
    impl: tuple[str, Span] | None = None
    model: tuple[str, Span] | None = None
    requires: list[Expr] = field(default_factory=list)
    budget: list[Option] = field(default_factory=list)
    delegates: list[tuple[str, Span]] = field(default_factory=list)
    retry: int | None = None


@dataclass(eq=False)
class WorkflowDecl(Node):
    name: str
    name_span: Span
    params: list[Param]
    result: TypeRef
    body: list
    end_span: Span


@dataclass(eq=False)
class Program:
    source: SourceFile
    items: list
