"""Lower an APEL program to the ``apel`` dialect.

Names are resolved and every value gets a type here; a name that does not exist, a field a
record does not have, or a call with the wrong number of arguments stops lowering with a
located error. Whether connected agents agree on their types, whether side effects can be
undone and whether loops end are the check passes' business (geomir/apel/checks.py), so
that they also run on IR given as text.
"""

from __future__ import annotations

import importlib
import typing
from collections.abc import Callable

from xdsl.dialects.builtin import FloatAttr, IntAttr, ModuleOp
from xdsl.ir import Attribute, Block, Region, SSAValue

from geomir.diagnostics import GeoNameError, GeoSyntaxError, GeoTypeError, Note, Span
from geomir.dialects import apel
from geomir.frontends.dsl import ast as geo_ast
from geomir.frontends.dsl.common import suggest
from geomir.frontends.dsl.irgen import location
from geomir.frontends.dsl.typecheck import check_manifold_decl
from geomir.frontends.dsl.types import DTYPES, EUCLIDEAN, ValueType

from . import ast
from .types import BOOL, FLOAT, INT, JSON, NONE, STR, assignable, describe

BUDGET_KEYS = {"calls": int, "seconds": float, "depth": int}
"""Keys of an agent's ``budget``: calls per run, seconds per call, delegation depth."""

BUILTINS = ("len", "abs", "str", "int", "float")
STATEMENT_KEYWORDS = frozenset({"let", "parallel", "while", "repeat", "if", "send", "return", "fail", "call", "run",
                                "receive"})
"""Keywords that start a statement (apel.lark). The lexer takes a keyword for a name where
the keyword cannot stand, so one read as an unknown name in a workflow ends an unfinished
expression (``let x = n +`` before ``return x``)."""
MAX_NESTING = 200
"""How deeply expressions may nest: levels of operators, calls, record constructions, field
accesses and lists in one another (200 pass, 201 are refused). A name or a literal is no
level, nor are parentheses; a chain of one operator level (``a + b + c``, ``not not x``)
is one level, whatever its length."""
_PRIMS = {"str": STR, "int": INT, "float": FLOAT, "bool": BOOL, "json": JSON, "none": NONE}


class _Workflow:
    """One workflow being lowered: its slot types and the unique step names."""

    def __init__(self, decl: ast.WorkflowDecl):
        self.decl = decl
        self.slots: dict[str, tuple[Attribute, Span]] = {}
        self.steps: dict[str, int] = {}
        self.parallel = 0  # depth of parallel branches around the statement being lowered

    def step_name(self, base: str) -> str:
        n = self.steps.get(base, 0) + 1
        self.steps[base] = n
        return base if n == 1 else f"{base}#{n}"


def _always_ends(stmts: list) -> bool:
    """Every path through ``stmts`` ends in ``return`` or ``fail`` (an ``if`` counts when
    both its branches do; a loop body may not run, a parallel branch cannot return)."""
    for stmt in stmts:
        if isinstance(stmt, (ast.Return, ast.Fail)):
            return True
        if isinstance(stmt, ast.If) and stmt.orelse and _always_ends(stmt.then) and _always_ends(stmt.orelse):
            return True
    return False


class Lowering:
    def __init__(self, program: ast.Program):
        self.program = program
        self.types: dict[str, Attribute] = dict(_PRIMS)
        self.records: dict[str, dict[str, Attribute]] = {}
        self.manifolds = {"R": EUCLIDEAN}
        self.agents: dict[str, ast.AgentDecl] = {}
        self.workflows: dict[str, ast.WorkflowDecl] = {}
        self.defined_at: dict[str, Span] = {}
        self.ops: list = []
        self.block: Block | None = None
        self.wf: _Workflow | None = None
        self.locals: dict[str, SSAValue] = {}  # block arguments: agent parameters, a compensated result
        self.depth = 0  # expressions being lowered, one inside the next

    # -- helpers
    def emit(self, op, span: Span):
        op.location = location(span)
        self.block.add_op(op)
        return op.results[0] if op.results else None

    def declare(self, name: str, span: Span, what: str) -> None:
        if name in self.defined_at or name in _PRIMS:
            notes = [Note("first defined here", self.defined_at[name])] if name in self.defined_at else []
            raise GeoNameError(f"{what} '{name}' is already defined", span, notes)
        self.defined_at[name] = span

    def in_block(self, arg_types=()) -> tuple[Region, Block]:
        block = Block(arg_types=list(arg_types))
        return Region(block), block

    def nested(self, fill: Callable[[], None], arg_types=()) -> Region:
        region, block = self.in_block(arg_types)
        outer, self.block = self.block, block
        try:
            fill()
        finally:
            self.block = outer
        return region

    # -- declarations
    def run(self) -> ModuleOp:
        items = self.program.items
        for item in items:
            if isinstance(item, ast.ManifoldDecl):
                self.declare(item.name, item.name_span, "manifold")
                self.manifolds[item.name] = check_manifold_decl(_geo_manifold_decl(item))
        for item in items:
            if isinstance(item, (ast.TypeDecl, ast.ImportDecl)):
                self.declare(item.name, item.name_span, "type")
        for item in items:  # aliases and records may refer to each other in any order
            if isinstance(item, ast.TypeDecl):
                self.types[item.name] = apel.RecordType(item.name) if item.fields is not None else None
            elif isinstance(item, ast.ImportDecl):
                self.types[item.name] = apel.RecordType(item.name)
        for item in items:
            if isinstance(item, ast.TypeDecl) and item.alias is not None:
                self.types[item.name] = self.resolve(item.alias, {item.name})
        for item in items:
            if isinstance(item, ast.TypeDecl) and item.fields is not None:
                self.ops.append(self.record(item))
            elif isinstance(item, ast.ImportDecl):
                self.ops.append(self.pydantic_record(item))
        for item in items:
            if isinstance(item, ast.AgentDecl):
                self.declare(item.name, item.name_span, "agent")
                self.agents[item.name] = item
            elif isinstance(item, ast.WorkflowDecl):
                self.declare(item.name, item.name_span, "workflow")
                self.workflows[item.name] = item
        for item in items:
            if isinstance(item, ast.AgentDecl):
                self.ops.append(self.agent(item))
            elif isinstance(item, ast.WorkflowDecl):
                self.ops.append(self.workflow(item))
        return ModuleOp(self.ops)

    def resolve(self, t: ast.TypeRef, aliasing: frozenset[str] = frozenset()) -> Attribute:
        if t.kind == "list":
            return apel.ListType(self.resolve(t.elem, aliasing))
        if t.kind == "point":
            manifold = self.manifolds.get(t.name)
            if manifold is None:
                raise GeoNameError(f"unknown manifold '{t.name}'{suggest(t.name, self.manifolds)} "
                                   f"(declared: {', '.join(sorted(self.manifolds))})", t.span)
            if t.dim < manifold.min_dim:
                raise GeoTypeError(f"dimension of {t.name} must be at least {manifold.min_dim} "
                                   f"({manifold.geometry()}), found {t.dim}", t.span)
            from geomir.frontends.dsl.irgen import ir_type

            return ir_type(ValueType(manifold, t.dim, _element_type(t)))
        if t.name in aliasing:
            raise GeoTypeError(f"type alias '{t.name}' refers to itself", t.span)
        if t.name not in self.types:
            raise GeoNameError(f"unknown type '{t.name}'{suggest(t.name, self.types)} (types: "
                               f"{', '.join(sorted(self.types))}, list[T], or a manifold point like H[16])", t.span)
        found = self.types[t.name]
        if found is None:  # an alias not resolved yet
            decl = next(i for i in self.program.items if isinstance(i, ast.TypeDecl) and i.name == t.name)
            found = self.types[t.name] = self.resolve(decl.alias, aliasing | {t.name})
        return found

    def record(self, decl: ast.TypeDecl) -> apel.RecordOp:
        fields: dict[str, Attribute] = {}
        for f in decl.fields:
            if f.name in fields:
                raise GeoNameError(f"field '{f.name}' given twice in record '{decl.name}'", f.name_span)
            fields[f.name] = self.resolve(f.type)
        self.records[decl.name] = fields
        op = apel.RecordOp(decl.name, list(fields.items()))
        op.location = location(decl.name_span)
        return op

    def pydantic_record(self, decl: ast.ImportDecl) -> apel.RecordOp:
        model = import_object(decl.target, decl.target_span)
        fields_of = getattr(model, "model_fields", None)
        if not isinstance(fields_of, dict):
            raise GeoTypeError(f"'{decl.target}' is not a pydantic model (a class with model_fields)", decl.target_span)
        fields = {name: self.python_type(info.annotation) for name, info in fields_of.items()}
        self.records[decl.name] = fields
        op = apel.RecordOp(decl.name, list(fields.items()), decl.target)
        op.location = location(decl.name_span)
        return op

    def python_type(self, annotation) -> Attribute:
        """The APEL type of a pydantic field annotation (json when it has no APEL spelling)."""
        simple = {str: STR, int: INT, float: FLOAT, bool: BOOL, type(None): NONE}
        if annotation in simple:
            return simple[annotation]
        if typing.get_origin(annotation) is list and typing.get_args(annotation):
            return apel.ListType(self.python_type(typing.get_args(annotation)[0]))
        name = getattr(annotation, "__name__", None)
        if name in self.records or isinstance(self.types.get(name), apel.RecordType):
            return apel.RecordType(name)
        return JSON

    def agent(self, decl: ast.AgentDecl) -> apel.AgentOp:
        params = self.params(decl.params, f"agent '{decl.name}'")
        budget: dict[str, Attribute] = {}
        for option in decl.budget:
            if option.name in budget:
                raise GeoTypeError(f"budget '{option.name}' given twice for agent '{decl.name}'", option.name_span)
            kind = BUDGET_KEYS.get(option.name)
            if kind is None:
                raise GeoTypeError(f"unknown budget '{option.name}'{suggest(option.name, BUDGET_KEYS)} "
                                   f"(expected {', '.join(BUDGET_KEYS)})", option.name_span)
            value = option.value
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0 or (kind is int and not isinstance(value, int)):
                raise GeoTypeError(f"budget {option.name} must be a positive {'integer' if kind is int else 'number'}, "
                                   f"found {value!r}", option.value_span)
            budget[option.name] = IntAttr(value) if kind is int else FloatAttr(float(value), 64)
        for name, span in decl.delegates:
            if name not in self.agents:
                raise GeoNameError(f"agent '{decl.name}' delegates to unknown agent '{name}'"
                                   f"{suggest(name, self.agents)}", span)
        types = [t for _, t in params]

        def preconditions():
            self.locals = dict(zip((n for n, _ in params), self.block.args))
            try:
                for expr in decl.requires:
                    cond = self.expr(expr)
                    self.expect_bool(expr, "a precondition")
                    self.emit(apel.CheckOp(cond, source_of(expr)), expr.span)
            finally:
                self.locals = {}

        op = apel.AgentOp(decl.name, params, self.resolve(decl.result), decl.effect,
                          decl.impl[0] if decl.impl else None, decl.model[0] if decl.model else None,
                          budget, [n for n, _ in decl.delegates], decl.retry or 0, self.nested(preconditions, types))
        op.location = location(decl.name_span)
        return op

    def params(self, params: list[ast.Param], owner: str) -> list[tuple[str, Attribute]]:
        seen: dict[str, Span] = {}
        out = []
        for p in params:
            if p.name in seen:
                raise GeoNameError(f"parameter '{p.name}' of {owner} given twice", p.name_span,
                                   [Note("first given here", seen[p.name])])
            seen[p.name] = p.name_span
            out.append((p.name, self.resolve(p.type)))
        return out

    # -- workflows
    def workflow(self, decl: ast.WorkflowDecl) -> apel.WorkflowOp:
        params = self.params(decl.params, f"workflow '{decl.name}'")
        self.wf = _Workflow(decl)
        for (name, t), p in zip(params, decl.params):
            self.wf.slots[name] = (t, p.name_span)
        body = self.nested(lambda: self.stmts(decl.body))
        if not _always_ends(decl.body):
            raise GeoTypeError(f"workflow '{decl.name}' can reach its end without 'return' (it returns "
                               f"{describe(self.resolve(decl.result))}): end every path with 'return' or 'fail'",
                               decl.end_span)
        op = apel.WorkflowOp(decl.name, params, self.resolve(decl.result), body)
        op.location = location(decl.name_span)
        self.wf = None
        return op

    def stmts(self, stmts: list) -> None:
        for stmt in stmts:
            getattr(self, "stmt_" + type(stmt).__name__.lower())(stmt)

    def stmt_let(self, stmt: ast.Let) -> None:
        value = self.step(stmt.step, stmt.name)
        t = value.type
        if stmt.name in self.wf.slots:
            old, where = self.wf.slots[stmt.name]
            if not assignable(t, old):
                raise GeoTypeError(f"'{stmt.name}' was {describe(old)}, now bound to {describe(t)}", stmt.name_span,
                                   [Note("first bound here", where)])
        else:
            self.wf.slots[stmt.name] = (t, stmt.name_span)
        self.emit(apel.SetOp(stmt.name, value), stmt.name_span)

    def stmt_do(self, stmt: ast.Do) -> None:
        self.step(stmt.step, None)

    def stmt_parallel(self, stmt: ast.Parallel) -> None:
        names, regions = [], []
        for i, branch in enumerate(stmt.branches):
            name = branch.name or f"b{i}"
            if name in names:
                raise GeoNameError(f"branch '{name}' given twice", branch.span)
            names.append(name)
            self.wf.parallel += 1
            try:
                regions.append(self.nested(lambda b=branch: self.stmts(b.body)))
            finally:
                self.wf.parallel -= 1
        self.emit(apel.ParallelOp(self.wf.step_name("parallel"), names, regions), stmt.span)

    def stmt_while(self, stmt: ast.While) -> None:
        if stmt.bound is not None and stmt.bound < 1:
            raise GeoTypeError(f"a loop bound must be at least 1, found {stmt.bound}", stmt.bound_span)
        def cond():
            value = self.expr(stmt.cond)
            self.expect_bool(stmt.cond, "a while condition")
            self.emit(apel.YieldOp(value), stmt.cond.span)

        name = self.wf.step_name("while")
        self.emit(apel.WhileOp(name, stmt.bound, self.nested(cond), self.nested(lambda: self.stmts(stmt.body))), stmt.span)

    def stmt_repeat(self, stmt: ast.Repeat) -> None:
        if stmt.count < 1:
            raise GeoTypeError(f"repeat needs a count of at least 1, found {stmt.count}", stmt.count_span)
        name = self.wf.step_name("repeat")
        self.emit(apel.RepeatOp(name, stmt.count, self.nested(lambda: self.stmts(stmt.body))), stmt.span)

    def stmt_if(self, stmt: ast.If) -> None:
        cond = self.expr(stmt.cond)
        self.expect_bool(stmt.cond, "an if condition")
        name = self.wf.step_name("if")
        self.emit(apel.IfOp(cond, name, self.nested(lambda: self.stmts(stmt.then)),
                            self.nested(lambda: self.stmts(stmt.orelse))), stmt.span)

    def stmt_send(self, stmt: ast.Send) -> None:
        value = self.expr(stmt.value) if stmt.value is not None else None
        self.emit(apel.SendOp(stmt.event, self.wf.step_name(f"send:{stmt.event}"), value), stmt.span)

    def stmt_return(self, stmt: ast.Return) -> None:
        if self.wf.parallel:
            raise GeoTypeError("'return' inside a parallel branch: a branch cannot end the workflow; "
                               "'let' a slot in the branch and return it after the parallel", stmt.span)
        value = self.expr(stmt.value)
        want = self.resolve(self.wf.decl.result)
        if not assignable(value.type, want):
            raise GeoTypeError(f"workflow '{self.wf.decl.name}' returns {describe(want)}, found {describe(value.type)}",
                               stmt.value.span)
        self.emit(apel.ReturnOp(value), stmt.span)

    def stmt_fail(self, stmt: ast.Fail) -> None:
        self.emit(apel.FailOp(stmt.message), stmt.span)

    # -- steps
    def step(self, step, name: str | None) -> SSAValue:
        if isinstance(step, ast.ValueStep):
            return self.expr(step.expr)
        if isinstance(step, ast.CallStep):
            return self.call(step, name)
        if isinstance(step, ast.RunStep):
            wf = self.workflows.get(step.workflow)
            if wf is None:
                raise GeoNameError(f"unknown workflow '{step.workflow}'{suggest(step.workflow, self.workflows)}",
                                   step.workflow_span)
            args = self.args(step.args, [p.name for p in wf.params], f"workflow '{wf.name}'", step.workflow_span)
            return self.emit(apel.RunOp(wf.name, args, self.wf.step_name(name or wf.name), self.resolve(wf.result)), step.span)
        if isinstance(step, ast.ReceiveStep):
            return self.emit(apel.ReceiveOp(step.event, self.wf.step_name(name or f"receive:{step.event}"),
                                            self.resolve(step.type), step.timeout), step.span)
        raise AssertionError(step)

    def find_agent(self, name: str, span: Span) -> ast.AgentDecl:
        agent = self.agents.get(name)
        if agent is None:
            raise GeoNameError(f"unknown agent '{name}'{suggest(name, self.agents)}", span)
        return agent

    def call(self, step: ast.CallStep, name: str | None) -> SSAValue:
        agent = self.find_agent(step.agent, step.agent_span)
        args = self.args(step.args, [p.name for p in agent.params], f"agent '{agent.name}'", step.agent_span)
        result_type = self.resolve(agent.result)

        def compensation():
            comp = step.compensate
            target = self.find_agent(comp.agent, comp.agent_span)
            self.locals = {name: self.block.args[0]} if name else {}
            try:
                values = self.args(comp.args, [p.name for p in target.params], f"agent '{target.name}'", comp.agent_span)
            finally:
                self.locals = {}
            self.emit(apel.CompensateOp(target.name, values), comp.span)

        region = self.nested(compensation, [result_type]) if step.compensate else Region()
        op = apel.CallOp(agent.name, args, self.wf.step_name(name or agent.name), result_type, step.retry, region)
        return self.emit(op, step.span)

    def args(self, args: list[ast.Arg], params: list[str], owner: str, span: Span) -> list[SSAValue]:
        """The values of positional then keyword arguments, in parameter order."""
        return [self.expr(a.value) for a in self.ordered(args, params, owner, span)]

    def ordered(self, args: list[ast.Arg], params: list[str], owner: str, span: Span) -> list[ast.Arg]:
        """Positional then keyword arguments, in parameter order."""
        placed: dict[str, ast.Arg] = {}
        for i, arg in enumerate(args):
            if arg.name is None:
                if placed and any(a.name for a in args[:i]):
                    raise GeoTypeError("a positional argument after a keyword argument", arg.span)
                if i >= len(params):
                    raise GeoTypeError(f"{owner} takes {len(params)} argument{'s' * (len(params) != 1)}, "
                                       f"found {len(args)}", arg.span)
                placed[params[i]] = arg
            else:
                if arg.name not in params:
                    raise GeoNameError(f"{owner} has no parameter '{arg.name}'{suggest(arg.name, params)} "
                                       f"(parameters: {', '.join(params) or 'none'})", arg.name_span)
                if arg.name in placed:
                    raise GeoTypeError(f"argument '{arg.name}' given twice", arg.name_span)
                placed[arg.name] = arg
        missing = [p for p in params if p not in placed]
        if missing:
            raise GeoTypeError(f"{owner} is missing argument{'s' * (len(missing) > 1)} {', '.join(missing)}", span)
        return [placed[p] for p in params]

    # -- expressions
    def expect_bool(self, expr: ast.Expr, what: str) -> None:
        if expr.type not in (BOOL, JSON):
            raise GeoTypeError(f"{what} must be a bool, found {describe(expr.type)}", expr.span)

    def expr(self, e: ast.Expr) -> SSAValue:
        """Lower an expression. Chains of one operator level (``a + b + c ...``, ``not not x``)
        are lowered without recursion; other nesting is limited to ``MAX_NESTING`` levels."""
        self.depth += 1
        try:
            if self.depth > MAX_NESTING and not isinstance(e, (ast.Var, ast.Literal)):  # a leaf is no level
                raise GeoSyntaxError(f"expression nested more than {MAX_NESTING} levels deep; split it with 'let'",
                                     e.span)
            value = getattr(self, "expr_" + type(e).__name__.lower())(e)
        finally:
            self.depth -= 1
        e.type = value.type
        return value

    def expr_var(self, e: ast.Var) -> SSAValue:
        if e.name in self.locals:
            return self.locals[e.name]
        if self.wf is None or e.name not in self.wf.slots:
            if self.wf is not None and e.name in STATEMENT_KEYWORDS:
                raise GeoSyntaxError(f"incomplete expression: expected a value, found '{e.name}', a keyword that "
                                     "starts a statement (is the expression before it unfinished?)", e.span)
            known = list(self.locals) + (list(self.wf.slots) if self.wf else [])
            raise GeoNameError(f"unknown name '{e.name}'{suggest(e.name, known)}", e.span)
        return self.emit(apel.GetOp(e.name, self.wf.slots[e.name][0]), e.span)

    def expr_literal(self, e: ast.Literal) -> SSAValue:
        t = {bool: BOOL, int: INT, float: FLOAT, str: STR, type(None): NONE}[type(e.value)]
        return self.emit(apel.ConstOp(e.value, t), e.span)

    def expr_field(self, e: ast.Field) -> SSAValue:
        value = self.expr(e.value)
        t = value.type
        if t == JSON:
            return self.emit(apel.FieldOp(value, e.name, JSON), e.name_span)
        fields = self.records.get(t.record.data) if isinstance(t, apel.RecordType) else None
        if fields is None:
            raise GeoTypeError(f"{describe(t)} has no fields (found '.{e.name}')", e.name_span)
        if e.name not in fields:
            raise GeoNameError(f"{describe(t)} has no field '{e.name}'{suggest(e.name, fields)} "
                               f"(fields: {', '.join(fields)})", e.name_span)
        return self.emit(apel.FieldOp(value, e.name, fields[e.name]), e.name_span)

    def expr_binop(self, e: ast.BinOp) -> SSAValue:
        spine = [e]  # a left-nested chain, outermost first
        while isinstance(spine[-1].lhs, ast.BinOp):
            spine.append(spine[-1].lhs)
        value = self.expr(spine[-1].lhs)
        for node in reversed(spine):
            value = self.binop(node, value, self.expr(node.rhs))
            node.type = value.type
        return value

    def binop(self, e: ast.BinOp, lhs: SSAValue, rhs: SSAValue) -> SSAValue:
        a, b, op = lhs.type, rhs.type, e.op
        numbers = (INT, FLOAT, JSON)
        if op in ("and", "or"):
            ok, t = a in (BOOL, JSON) and b in (BOOL, JSON), BOOL
        elif op in ("==", "!="):
            ok, t = True, BOOL
        elif op in ("<", "<=", ">", ">="):
            ok, t = (a in numbers and b in numbers) or (a == b == STR), BOOL
        elif op == "+" and a == b == STR:
            ok, t = True, STR
        else:
            ok = a in numbers and b in numbers
            t = INT if a == b == INT and op != "/" else (JSON if JSON in (a, b) else FLOAT)
        if not ok:
            raise GeoTypeError(f"'{op}' does not apply to {describe(a)} and {describe(b)}", e.op_span)
        return self.emit(apel.BinaryOp(op, lhs, rhs, t), e.span)

    def expr_unop(self, e: ast.UnOp) -> SSAValue:
        chain = [e]  # ``not not x``, ``- - x``: outermost first
        while isinstance(chain[-1].operand, ast.UnOp):
            chain.append(chain[-1].operand)
        value = self.expr(chain[-1].operand)
        for node in reversed(chain):
            want = (BOOL, JSON) if node.op == "not" else (INT, FLOAT, JSON)
            if value.type not in want:
                raise GeoTypeError(f"'{node.op}' does not apply to {describe(value.type)}", node.span)
            value = self.emit(apel.UnaryOp(node.op, value, BOOL if node.op == "not" else value.type), node.span)
            node.type = value.type
        return value

    def expr_listlit(self, e: ast.ListLit) -> SSAValue:
        items = [self.expr(i) for i in e.items]
        types = {i.type for i in items}
        elem = types.pop() if len(types) == 1 else (FLOAT if types == {INT, FLOAT} else JSON)
        return self.emit(apel.ListOp(items, apel.ListType(elem if items else JSON)), e.span)

    def expr_funccall(self, e: ast.FuncCall) -> SSAValue:
        if e.name in self.records:
            fields = self.records[e.name]
            ordered = self.ordered(e.args, list(fields), f"record '{e.name}'", e.name_span)
            args = [self.expr(a.value) for a in ordered]
            for (field, want), value, arg in zip(fields.items(), args, ordered):
                if not assignable(value.type, want):
                    raise GeoTypeError(f"field '{field}' of {e.name} is {describe(want)}, found {describe(value.type)}",
                                       arg.value.span)
            return self.emit(apel.NewOp(list(zip(fields, args)), apel.RecordType(e.name)), e.span)
        if e.name not in BUILTINS:
            known = list(self.records) + list(BUILTINS)
            hint = " (agents are called with 'call')" if e.name in self.agents else suggest(e.name, known)
            raise GeoNameError(f"unknown function or record '{e.name}'{hint}", e.name_span)
        if len(e.args) != 1 or e.args[0].name is not None:
            raise GeoTypeError(f"{e.name}(...) takes one positional argument", e.span)
        value = self.expr(e.args[0].value)
        t = value.type
        ok = {"len": t == STR or t == JSON or isinstance(t, apel.ListType), "abs": t in (INT, FLOAT, JSON)}.get(e.name, True)
        if not ok:
            raise GeoTypeError(f"{e.name}(...) does not apply to {describe(t)}", e.args[0].span)
        result = {"len": INT, "abs": t, "str": STR, "int": INT, "float": FLOAT}[e.name]
        return self.emit(apel.BuiltinOp(e.name, [value], result), e.span)


def source_of(node: ast.Node) -> str:
    """The source text a node spans (on one line), e.g. a precondition for messages."""
    s = node.span
    line = s.source.line_text(s.line)
    end = s.end_column if s.end_line == s.line and s.end_column else len(line) + 1
    return line[s.column - 1:end - 1]


def import_object(target: str, span: Span | None):
    """``module.path:Name`` → the object (located error when it cannot be imported)."""
    module, _, attr = target.partition(":")
    if not module or not attr:
        raise GeoTypeError(f"expected 'module.path:Name', found '{target}'", span)
    try:
        obj = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as err:
        raise GeoNameError(f"cannot import '{target}': {err}", span) from None
    return obj


def _element_type(t: ast.TypeRef) -> str:
    """The element type of point type ``t`` (``R[2, f64]``; f32 when none is written), as .geo
    spells them; a located error for another name."""
    dtype = t.dtype or "f32"
    if dtype not in DTYPES:
        raise GeoTypeError(f"unknown element type '{dtype}'{suggest(dtype, DTYPES)} (expected one of "
                           f"{', '.join(DTYPES)})", t.dtype_span)
    return dtype


def _geo_manifold_decl(decl: ast.ManifoldDecl) -> geo_ast.ManifoldDecl:
    """The .geo AST of a manifold declaration, so both languages check it with one function."""
    def value(o: ast.Option):
        if isinstance(o.value, str):
            return geo_ast.Var(o.value_span, o.value)
        return geo_ast.Number(o.value_span, float(o.value), isinstance(o.value, int))

    args = [geo_ast.Keyword(o.span, o.name, value(o), o.name_span) for o in decl.options]
    return geo_ast.ManifoldDecl(decl.span, decl.name, decl.name_span, decl.kind, decl.kind_span, args)


def lower_program(program: ast.Program) -> ModuleOp:
    """The ``apel`` IR of a parsed program (located errors for unknown names and bad types)."""
    return Lowering(program).run()


def compile_workflow_source(text: str, filename: str = "<string>") -> ModuleOp:
    from .parser import parse_workflow_file

    return lower_program(parse_workflow_file(text, filename))
