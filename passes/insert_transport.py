"""``insert-transport``: parallel-transport tangent vectors to a common base point before
they are combined.

Needs: geo IR (before ``jet-expand``). Guarantees: no op combines tangents at different
base points (:mod:`geomir.base_points`, which the pipeline checks at its end). For each
op that does, the pass inserts ``geo.parallel_transport`` right before it:

* a vector op (``+ - * /``) keeps its first known tangent operand's base point and carries
  the others there;
* ``expmap(x, v)`` and ``parallel_transport(x, y, v)`` carry ``v`` to ``x``; ``expmap0(v)``
  carries ``v`` to the origin; ``holonomy`` carries its tangent to the loop's first point;
* the origin (of ``logmap0`` tangents) becomes a ``geo.origin`` value.

The new ops take the combining op's source location, so an error or a dump points at the
line that mixed the tangents. Running the pass twice changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import builtin, func
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter

from geomir import base_points
from geomir.dialects import geo
from geomir.pipeline import register_pass


@register_pass
@dataclass(frozen=True)
class InsertTransport(ModulePass):
    """Insert parallel transport where tangents at different base points are combined."""

    name = "insert-transport"

    def apply(self, ctx: Context, op: builtin.ModuleOp) -> None:
        analysis = base_points.Analysis()  # shared: each callee analysed once, not once per caller and round
        for f in [o for o in op.walk() if isinstance(o, func.FuncOp)]:
            _transport_function(f, analysis)


def _transport_function(f: func.FuncOp, analysis: base_points.Analysis) -> None:
    limit = sum(1 for _ in f.walk()) + 1  # each round removes one conflict
    for _ in range(limit):
        _, conflicts = analysis.run(f)
        if not conflicts:
            return
        _fix(conflicts[0])
        analysis.forget(f)
    raise AssertionError(f"insert-transport: @{f.sym_name.data} did not settle")  # pragma: no cover


def _point_of(base: base_points.Base, like: SSAValue, before: Operation) -> SSAValue:
    if base.point is not None:
        return base.point
    origin = geo.OriginOp(like)
    origin.location = before.location
    origin.results[0].name_hint = "origin"
    Rewriter.insert_op(origin, InsertPoint.before(before))
    return origin.results[0]


def _fix(conflict: base_points.Conflict) -> None:
    op = conflict.op
    v = op.operands[conflict.moved]
    source = _point_of(conflict.source, v, op)
    target = _point_of(conflict.target, v, op)
    moved = geo.ParallelTransportOp(source, target, v)
    moved.location = op.location
    if v.name_hint:
        moved.results[0].name_hint = f"{v.name_hint}_moved"
    Rewriter.insert_op(moved, InsertPoint.before(op))
    operands = list(op.operands)
    operands[conflict.moved] = moved.results[0]
    op.operands = operands
