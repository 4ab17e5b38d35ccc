"""``jet-expand``: lower forward-mode derivative requests to one Taylor propagation.

Needs: derivative requests whose models (and the models they call) have bodies in the
module. Guarantees: every ``jet.directional`` and ``jet.jvp`` is replaced by the model's
body evaluated on jets: the differentiated input becomes ``jet.seed x, v order K``, each
geo op with a jet operand becomes ``jet.apply "<op>"`` (its typing is the op's own, its
Taylor rule lives in the backend runtime), ops on plain values (weights, other inputs)
stay as they are, calls of other models are expanded in place, and a result that does not
depend on the input becomes ``jet.lift``. ``jet.jvp`` takes coefficients 0 and 1 of an
order-1 jet. Parameters keep their names, so the derived function reads the model's
weights. Other requests (vjp, hvp, laplacian, biharmonic) are left for later passes.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import builtin, func
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter

from geomir.diagnostics import IRError
from geomir.dialects import geo, jet
from geomir.pipeline import register_pass


@register_pass
@dataclass(frozen=True)
class JetExpand(ModulePass):
    """Lower jet.directional and jet.jvp to one Taylor-mode propagation (jet.apply per op)."""

    name = "jet-expand"

    def apply(self, ctx: Context, op: builtin.ModuleOp) -> None:
        funcs = {f.sym_name.data: f for f in op.ops if isinstance(f, func.FuncOp)}
        for request in [o for o in op.walk() if isinstance(o, (jet.DirectionalOp, jet.JvpOp))]:
            _expand_request(request, funcs)


def _expand_request(request, funcs: dict[str, func.FuncOp]) -> None:
    order = request.order.data if isinstance(request, jet.DirectionalOp) else 1
    inputs = list(request.model_inputs)
    wrt = request.wrt.data
    emit = _Emitter(InsertPoint.before(request), request.location)
    seed = emit(jet.SeedOp(inputs[wrt], request.direction, order))
    args: list[SSAValue] = list(inputs)
    args[wrt] = seed
    result = _expand_body(request.callee.string_value(), args, order, funcs, emit, [])
    if isinstance(request, jet.JvpOp):
        new = [emit(jet.CoeffOp(result, 0)), emit(jet.CoeffOp(result, 1))]
    else:
        new = [result]
    for old, value in zip(request.results, new):
        old.replace_all_uses_with(value)
    request.detach()
    request.erase()


class _Emitter:
    """Inserts ops at one place; new ops without a source location get the request's."""

    def __init__(self, where: InsertPoint, location):
        self.where = where
        self.location = location

    def __call__(self, op: Operation) -> SSAValue:
        if isinstance(op.location, builtin.UnknownLoc):
            op.location = self.location
        Rewriter.insert_op(op, self.where)
        return op.results[0] if op.results else None


def _is_jet(value: SSAValue) -> bool:
    return isinstance(value.type, jet.JetType)


def _expand_body(name: str, args: list[SSAValue], order: int, funcs, emit: _Emitter, stack: list[str]) -> SSAValue:
    """Emit model ``name``'s body on ``args`` (some of them jets); return its jet result."""
    callee = funcs.get(name)
    if callee is None or not callee.body.blocks:
        raise IRError(f"jet-expand: @{name} has no body in this module")
    if name in stack:
        raise IRError(f"jet-expand: models call each other in a cycle: {' -> '.join('@' + n for n in stack + [name])}")
    block = callee.body.block
    mapping: dict[SSAValue, SSAValue] = dict(zip(block.args, args))
    for op in block.ops:
        operands = [mapping.get(v, v) for v in op.operands]
        if isinstance(op, func.ReturnOp):
            (value,) = operands
            return value if _is_jet(value) else emit(jet.LiftOp(value, order))
        if not any(_is_jet(v) for v in operands):
            clone = op.clone(value_mapper=mapping)
            emit(clone)
            continue
        if isinstance(op, func.CallOp):
            value = _expand_body(op.callee.string_value(), operands, order, funcs, emit, stack + [name])
        elif isinstance(op, geo.GeoOp):
            applied = jet.ApplyOp(op.name, operands, dict(op.properties))
            applied.location = op.location
            value = emit(applied)
            if op.results[0].name_hint:
                value.name_hint = op.results[0].name_hint
        else:
            raise IRError(f"jet-expand: no Taylor rule for {op.name} in @{name}")
        mapping[op.results[0]] = value
    raise IRError(f"jet-expand: @{name} has no return")
