"""Where each tangent vector of a function lives: its base point.

A ``!geo.tangent`` type does not say which point it is attached to; the ops that make
tangents do. This analysis follows them, one rule per op in :data:`RULES`:

* ``logmap(x, y)`` is at ``x``; ``logmap0(y)`` at the origin; ``parallel_transport(x, y,
  v)`` at ``y``; ``holonomy(v around x, ...)`` at ``x``;
* vector ops (``+ - * /``, ``scale``, activations, ``linear``, ``bias``) keep the base of
  their tangent operands, which must agree (a ``linear`` that changes the dimension maps
  into another space: its result's base is unknown);
* ``expmap(x, v)`` and ``parallel_transport(x, y, v)`` need ``v`` at ``x``, ``expmap0(v)``
  at the origin;
* function arguments are at an unknown point: compatible with any; a call's tangent result
  is where its callee's returned tangent is, in the caller's terms (the origin, or the
  point passed for one of the callee's arguments), else unknown;
* on flat manifolds (Euclidean space, the torus) transport is the identity, so tangents at
  different points combine as they are: no conflict.

:func:`find_conflicts` lists the ops that combine tangents at two different known points
(the ``insert-transport`` pass fixes them); :func:`verify_base_points` rejects IR that
still has one, naming the op and both points.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from xdsl.dialects import builtin, func
from xdsl.ir import Block, Operation, SSAValue

from geomir.diagnostics import SourceError, UsageError, location_text, op_span
from geomir.dialects import geo
from geomir.verify import SymbolTables


@dataclass(frozen=True)
class Base:
    """A base point: an SSA point value, or the origin of a manifold (``point`` None)."""

    point: SSAValue | None
    manifold: object = None  # the ManifoldAttr, for the origin

    @property
    def is_origin(self) -> bool:
        return self.point is None

    def describe(self) -> str:
        if self.point is None:
            return f"the origin of {self.manifold}"
        return describe_value(self.point)


UNKNOWN = None
"""The base of a tangent whose point the IR does not say (an argument, a call result)."""


def describe_value(value: SSAValue) -> str:
    """``%x (argument 0 of @f)`` or ``%p (geo.expmap at file:3:9)``."""
    name = f"%{value.name_hint}" if value.name_hint else "a value"
    owner = value.owner
    if isinstance(owner, Block):
        parent = owner.parent_op()
        where = f" of @{parent.sym_name.data}" if isinstance(parent, func.FuncOp) else ""
        return f"{name} (argument {value.index}{where})"
    loc = location(owner)
    return f"{name} ({owner.name}{' at ' + loc if loc else ''})"


def location(op: Operation) -> str | None:
    return location_text(op.location)


@dataclass(frozen=True)
class Conflict:
    """``op`` needs operand ``moved`` at ``target`` but it is at ``source``."""

    op: Operation
    moved: int
    source: Base
    target: Base
    other: int | None = None  # the operand that fixes the target, for vector ops

    def message(self) -> str:
        role = _role(self.op, self.moved)
        if self.other is not None:
            what = (f"{role} is a tangent at {self.source.describe()} but {_role(self.op, self.other)} "
                    f"is a tangent at {self.target.describe()}")
        else:
            what = f"{role} is a tangent at {self.source.describe()}, not at {self.target.describe()}"
        return (f"{self.op.name} mixes tangent vectors at different base points: {what}. "
                "Run the insert-transport pass (in the default pipeline) or carry one over with "
                "parallel_transport(from, to, v)")


def _role(op: Operation, index: int) -> str:
    names = [name for name, _ in type(op).get_irdl_definition().operands] if hasattr(type(op), "get_irdl_definition") else []
    if len(names) == len(op.operands):
        return f"operand '{names[index]}'"
    if isinstance(op, geo._LoopOp):
        return "the tangent" if index == len(op.operands) - 1 else f"loop point {index}"
    return f"operand {index}"


Bases = dict[SSAValue, "Base | None"]
Rule = Callable[[Operation, Bases, list], "Base | None"]


def _is_tangent(value: SSAValue) -> bool:
    return isinstance(value.type, geo.TangentType)


def _at(value: SSAValue) -> Base:
    return Base(value)


def _origin(value: SSAValue) -> Base:
    return Base(None, value.type.manifold)


def same(a: Base | None, b: Base | None) -> bool:
    """Whether two known bases are the same point."""
    if a is None or b is None:
        return True
    if a.is_origin or b.is_origin:
        return a.is_origin and b.is_origin
    if a.point is b.point:
        return True
    # geo.origin values are the origin whatever their shape donor
    return all(isinstance(p.owner, geo.OriginOp) for p in (a.point, b.point))


def _normalize(base: Base | None) -> Base | None:
    if base is not None and base.point is not None and isinstance(base.point.owner, geo.OriginOp):
        return Base(None, base.point.type.manifold)
    return base


def _flat(value: SSAValue) -> bool:
    return isinstance(value.type, geo.GeoValueType) and value.type.manifold.kind in geo.FLAT


def _need(op: Operation, bases: Bases, conflicts: list, index: int, target: Base) -> None:
    if _flat(op.operands[index]):
        return
    source = bases.get(op.operands[index])
    if source is not None and not same(_normalize(source), _normalize(target)):
        conflicts.append(Conflict(op, index, source, target))


def _vector(op: Operation, bases: Bases, conflicts: list) -> Base | None:
    """Vector ops: the tangent operands share one base; the result keeps it."""
    first_index, first = None, None
    for i, v in enumerate(op.operands):
        if not _is_tangent(v) or _flat(v):
            continue
        b = bases.get(v)
        if b is None:
            continue
        if first is None:
            first_index, first = i, b
        elif not same(_normalize(first), _normalize(b)):
            conflicts.append(Conflict(op, i, b, first, other=first_index))
    if first is None or not _is_tangent(op.results[0]):
        return None
    # a linear map into another space (other dimension) leaves the tangent space: unknown
    return first if op.results[0].type == op.operands[first_index].type else None


def _transport(op, bases, conflicts):
    _need(op, bases, conflicts, 2, _at(op.operands[0]))
    return _at(op.operands[1])


def _expmap(op, bases, conflicts):
    _need(op, bases, conflicts, 1, _at(op.operands[0]))
    return None


def _expmap0(op, bases, conflicts):
    _need(op, bases, conflicts, 0, _origin(op.operands[0]))
    return None


def _holonomy(op, bases, conflicts):
    _need(op, bases, conflicts, len(op.operands) - 1, _at(op.operands[0]))
    return _at(op.operands[0]) if isinstance(op, geo.HolonomyOp) else None


RULES: dict[str, Rule] = {
    "geo.logmap": lambda op, bases, conflicts: _at(op.operands[0]),
    "geo.logmap0": lambda op, bases, conflicts: _origin(op.operands[0]),
    "geo.parallel_transport": _transport,
    "geo.expmap": _expmap,
    "geo.expmap0": _expmap0,
    "geo.holonomy": _holonomy,
    "geo.holonomy_angle": _holonomy,
    **{f"geo.{name}": _vector for name in (*geo.UNARY_OPS, *geo.BINARY_OPS, "scale", "pow", "linear", "bias")},
}
"""Op name -> rule (op, bases so far, conflicts found) -> the base of the op's tangent
result (None: unknown or not a tangent). Ops without a rule give unknown bases; a
``func.call``'s is its callee's (:meth:`Analysis.call_base`)."""


def analyze(f: func.FuncOp) -> tuple[Bases, list[Conflict]]:
    """The base of every tangent value of ``f`` (None when unknown), and the conflicts."""
    return Analysis().run(f)


def find_conflicts(module: builtin.ModuleOp) -> list[Conflict]:
    """Every op of ``module`` that combines tangents at different base points."""
    analysis = Analysis()
    return [c for f in module.walk() if isinstance(f, func.FuncOp) for c in analysis.run(f)[1]]


class Analysis:
    """The analyses of functions of IR that does not change meanwhile: each function's once,
    after those of the functions whose returned tangent it uses (a loop, not a recursion: a
    chain of calls may be long), each callee found in a table of the module's symbols."""

    def __init__(self) -> None:
        self.symbols = SymbolTables()
        self.done: dict[func.FuncOp, tuple[Bases, list[Conflict]]] = {}

    def run(self, f: func.FuncOp) -> tuple[Bases, list[Conflict]]:
        for g in self._callees_first(f):
            self.done[g] = self._analyze(g)
        return self.done[f]

    def forget(self, f: func.FuncOp) -> None:
        """Drop ``f``'s analysis (after a change of its body: the next :meth:`run` redoes it;
        insert-transport's fixes do not change the base of the tangent ``f`` returns, so its
        callers' analyses stay)."""
        self.done.pop(f, None)

    def _callees_first(self, f: func.FuncOp) -> list[func.FuncOp]:
        """``f`` and the functions not analyzed yet that it takes a tangent from, directly or
        not, each after those it calls. A cycle of calls is cut where it closes (the call
        that closes it gives an unknown base; check_no_recursion rejects such IR)."""
        if f in self.done:
            return []
        order, seen = [], {f}
        stack = [(f, iter(self._tangent_callees(f)))]
        while stack:
            g, callees = stack[-1]
            callee = next(callees, None)
            if callee is None:
                stack.pop()
                order.append(g)
            elif callee not in seen and callee not in self.done:
                seen.add(callee)
                stack.append((callee, iter(self._tangent_callees(callee))))
        return order

    def _tangent_callees(self, f: func.FuncOp) -> list[func.FuncOp]:
        calls = (op for op in f.walk() if isinstance(op, func.CallOp) and op.results and _is_tangent(op.results[0]))
        return [callee for op in calls if (callee := self.callee(op)) is not None]

    def _analyze(self, f: func.FuncOp) -> tuple[Bases, list[Conflict]]:
        bases: Bases = {}
        conflicts: list[Conflict] = []
        for op in f.walk():
            rule = RULES.get(op.name)
            if not op.results or (rule is None and not isinstance(op, func.CallOp)):
                continue
            base = self.call_base(op) if rule is None else rule(op, bases, conflicts)
            if base is not None and _is_tangent(op.results[0]):
                bases[op.results[0]] = base
        return bases, conflicts

    def call_base(self, op: func.CallOp) -> Base | None:
        """The base the callee gives its returned tangent, in the caller's terms: the origin,
        or the point the call passes for one of the callee's arguments (else unknown). Without
        this, a tangent returned from a model was 'unknown' here and became known once
        inline-models inlined the call: an op the insert-transport pass had left alone then
        failed verification (generator seed 14397)."""
        callee = self.callee(op) if _is_tangent(op.results[0]) else None
        if callee not in self.done:
            return None  # (no tangent, no such function, or a cycle of calls: unknown here)
        block = callee.body.first_block
        ret = block.last_op if block is not None else None
        if not isinstance(ret, func.ReturnOp) or not ret.operands:
            return None
        base = _normalize(self.done[callee][0].get(ret.operands[0]))
        if base is None:
            return None
        if base.is_origin:
            return base
        owner = base.point.owner
        if isinstance(owner, Block) and owner is block:  # an argument of the callee
            return _at(op.operands[base.point.index])
        return None

    def callee(self, op: func.CallOp) -> func.FuncOp | None:
        """The function ``op`` calls (None outside a module, or no such function)."""
        try:
            callee = self.symbols.lookup(op, op.callee)
        except ValueError:  # no symbol table around the call
            return None
        return callee if isinstance(callee, func.FuncOp) else None


def verify_base_points(module: builtin.ModuleOp) -> None:
    """Raise a :class:`SourceError` (at the op's file:line:col) or :class:`UsageError`
    for the first op that mixes tangents at different base points."""
    conflicts = find_conflicts(module)
    if not conflicts:
        return
    first = conflicts[0]
    span = op_span(first.op)
    more = f" ({len(conflicts) - 1} more such op{'s' if len(conflicts) > 2 else ''})" if len(conflicts) > 1 else ""
    if span is not None:
        raise SourceError(first.message() + more, span)
    raise UsageError(first.message() + more)
