"""``jet-expand``: lower derivative requests to one Taylor-mode propagation each.

Needs: derivative requests whose models (and the models they call) have bodies in the
module. Guarantees: every forward-mode request is replaced by the model's body evaluated
on jets. The differentiated input is seeded, each geo op with a jet operand becomes
``jet.apply "<op>"`` (its typing is the op's own, its Taylor rule lives in the backend
runtime), ops on plain values (weights, other inputs) stay as they are, calls of other
models are expanded in place, and a result that does not depend on the input is lifted.
Parameters keep their names, so the derived function reads the model's weights.

One lowering per request (``LOWERINGS``):

* ``jet.directional``: ``jet.seed x, v order K``; the result is the jet.
* ``jet.jvp``: an order-1 jet, then ``jet.coeff`` 0 and 1.
* ``jet.laplacian``: ``jet.collapsed_seed x`` (a ``!jet.collapsed`` jet: value, the D
  coordinate directions, the summed second-order part), then ``jet.trace``.
* ``jet.biharmonic``: ``jet.stencil_seed x stencil "biharmonic"`` (order-4 jets along
  D² directions), then ``jet.stencil_sum``.
* ``jet.hvp``: reverse over forward. A private function ``@<model>__jvp_wrt<k>`` (the
  model's inputs and v; it returns coefficient 1 of the order-1 jet, ∂_v f) is added, and
  the request becomes ``jet.grad`` of it: H v = ∇_x (∇f · v). The helper's name is fresh:
  where a function of the module already has that name (a user's model may), a suffix
  ``_1``, ``_2``... is added, and only the helpers this pass made are reused (by model
  and input), never a function that merely has the name.

``jet.vjp`` and ``jet.grad`` stay: they are reverse mode, emitted as the framework's
reverse pass over the generated code (no per-primitive derivative code either way).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import builtin, func
from xdsl.ir import Block, Operation, Region, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter

from geomir import input_names
from geomir.diagnostics import IRError, SourceError, op_span
from geomir.dialects import geo, jet
from geomir.pipeline import register_pass


@register_pass
@dataclass(frozen=True)
class JetExpand(ModulePass):
    """Lower jvp, directional, laplacian, biharmonic and hvp requests to Taylor mode."""

    name = "jet-expand"

    def apply(self, ctx: Context, op: builtin.ModuleOp) -> None:
        funcs = {f.sym_name.data: f for f in op.ops if isinstance(f, func.FuncOp)}
        helpers: dict[tuple[str, int], func.FuncOp] = {}  # (model, wrt) -> the jvp function made here
        for request in [o for o in op.walk() if type(o) in LOWERINGS]:
            LOWERINGS[type(request)](request, funcs, op, helpers)
            request.detach()
            request.erase()


# -- one lowering per request --------------------------------------------------------------


def _replace(request: Operation, values: list[SSAValue]) -> None:
    for old, value in zip(request.results, values, strict=True):
        old.replace_all_uses_with(value)


def _lower_directional(request: jet.DirectionalOp, funcs, module, helpers) -> None:
    _lower_along(request, request.order.data, funcs, lambda emit, result: [result])


def _lower_jvp(request: jet.JvpOp, funcs, module, helpers) -> None:
    _lower_along(
        request, 1, funcs, lambda emit, result: [emit(jet.CoeffOp(result, 0)), emit(jet.CoeffOp(result, 1))]
    )


def _lower_along(request, order: int, funcs, finish) -> None:
    emit = _Emitter(InsertPoint.before(request), request.location)
    seed = emit(jet.SeedOp(request.model_inputs[request.wrt.data], request.direction, order))
    result = _expand_request(request, seed, lambda v: jet.LiftOp(v, order), funcs, emit)
    _replace(request, finish(emit, result))


def _lower_laplacian(request: jet.LaplacianOp, funcs, module, helpers) -> None:
    emit = _Emitter(InsertPoint.before(request), request.location)
    seed = emit(jet.CollapsedSeedOp(request.model_inputs[request.wrt.data]))
    result = _expand_request(request, seed, jet.CollapsedLiftOp, funcs, emit)
    _replace(request, [emit(jet.TraceOp(result))])


def _lower_biharmonic(request: jet.BiharmonicOp, funcs, module, helpers) -> None:
    emit = _Emitter(InsertPoint.before(request), request.location)
    seed = emit(jet.StencilSeedOp(request.model_inputs[request.wrt.data], "biharmonic"))
    result = _body_on(request, seed, funcs, emit)
    if not _is_jet(result):  # the output does not depend on the input: Δ²f = 0, the origin of R^n
        _replace(request, [emit(geo.OriginOp(result))])
        return
    _replace(request, [emit(jet.StencilSumOp(result, "biharmonic"))])


def _lower_hvp(request: jet.HvpOp, funcs, module: builtin.ModuleOp, helpers) -> None:
    tangent = _tangent_function(request.callee_name, request.wrt.data, funcs, module, request.location, helpers)
    emit = _Emitter(InsertPoint.before(request), request.location)
    grad = jet.GradOp.for_model(tangent, list(request.inputs), wrt=request.wrt.data)
    _replace(request, [emit(grad)])


LOWERINGS: dict[type, Callable] = {
    jet.DirectionalOp: _lower_directional,
    jet.JvpOp: _lower_jvp,
    jet.LaplacianOp: _lower_laplacian,
    jet.BiharmonicOp: _lower_biharmonic,
    jet.HvpOp: _lower_hvp,
}
"""Request op -> its lowering (request, functions by name, module, the jvp helpers made so far
by (model, wrt))."""


def _tangent_function(name: str, wrt: int, funcs, module: builtin.ModuleOp, location, helpers) -> func.FuncOp:
    """``@<name>__jvp_wrt<wrt>(inputs..., v) = ∂_v <name>`` (private), made once per (model,
    input) and reused only from ``helpers``: a function of the module that merely has the
    name (a user's model called ``U__jvp_wrt0``) is never taken for it; the helper then gets
    a fresh name (``U__jvp_wrt0_1``...)."""
    if (name, wrt) in helpers:
        return helpers[(name, wrt)]
    symbol = fresh_symbol(f"{name}__jvp_wrt{wrt}", funcs, module)
    model = funcs.get(name)
    if model is None or not model.body.blocks:
        raise IRError(f"jet-expand: @{name} has no body in this module")
    inputs = list(model.function_type.inputs.data)
    (output,) = model.function_type.outputs.data
    block = Block(arg_types=[*inputs, inputs[wrt].tangent()])
    emit = _Emitter(InsertPoint.at_end(block), location)
    args = list(block.args[:-1])
    args[wrt] = emit(jet.SeedOp(args[wrt], block.args[-1], 1))
    result = expand_to_jet(name, args, lambda v: jet.LiftOp(v, 1), funcs, emit)
    emit(func.ReturnOp(emit(jet.CoeffOp(result, 1))))
    tangent = func.FuncOp(symbol, ([*inputs, inputs[wrt].tangent()], [output.tangent()]), Region(block), "private")
    input_names.copy_input_names(model, tangent, extra=["v"])
    tangent.location = location
    module.body.block.add_op(tangent)
    funcs[symbol] = tangent
    helpers[(name, wrt)] = tangent
    return tangent


def fresh_symbol(base: str, funcs, module: builtin.ModuleOp) -> str:
    """``base``, or ``base_1``, ``base_2``... : the first that names no function and no other
    symbol of the module."""
    taken = set(funcs)
    for op in module.ops:
        sym = op.attributes.get("sym_name") or op.properties.get("sym_name")
        if isinstance(sym, builtin.StringAttr):
            taken.add(sym.data)
    symbol, k = base, 0
    while symbol in taken:
        k += 1
        symbol = f"{base}_{k}"
    return symbol


# -- evaluating a model body on jets --------------------------------------------------------


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
    return isinstance(value.type, (jet.JetType, jet.CollapsedType))


def _body_on(request, seed: SSAValue, funcs, emit: _Emitter) -> SSAValue:
    """The request's model body on its inputs with the seed in place of input ``wrt``: a jet,
    or a plain value where the output does not depend on that input."""
    args: list[SSAValue] = list(request.model_inputs)
    args[request.wrt.data] = seed
    return _expand_body(request.callee_name, args, funcs, emit, [])


def _expand_request(request, seed: SSAValue, lift, funcs, emit: _Emitter) -> SSAValue:
    return _as_jet(_body_on(request, seed, funcs, emit), lift, emit)


def expand_to_jet(name: str, args: list[SSAValue], lift, funcs, emit: _Emitter) -> SSAValue:
    """Model ``name``'s body on ``args`` (some of them jets), as a jet: a result that does
    not depend on the jets is lifted by ``lift(value)`` (the op that makes a plain value a
    constant jet)."""
    return _as_jet(_expand_body(name, args, funcs, emit, []), lift, emit)


def _as_jet(value: SSAValue, lift, emit: _Emitter) -> SSAValue:
    return value if _is_jet(value) else emit(lift(value))


def _is_flat_transport(op: Operation) -> bool:
    return isinstance(op, geo.ParallelTransportOp) and op.x.type.manifold.kind in geo.FLAT


def _no_rule(op: Operation, name: str):
    """A located error: a derivative requested through an op that has no jet rule (every geo
    op has one; this guards ops from other dialects)."""
    message = f"jet-expand: no Taylor rule for {op.name} in @{name}; derivatives of this model are not available"
    span = op_span(op)
    return SourceError(message, span) if span is not None else IRError(message)


def _expand_body(name: str, args: list[SSAValue], funcs, emit: _Emitter, stack: list[str]) -> SSAValue:
    """Emit model ``name``'s body on ``args`` (some of them jets); return its result: a jet,
    or a plain value where it does not depend on them (a called model's plain result stays
    plain in its caller; only the request's result is lifted)."""
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
            return value
        if _is_flat_transport(op):  # the identity on its vector: no dependence on the endpoints
            mapping[op.results[0]] = operands[2]
            continue
        if not any(_is_jet(v) for v in operands):
            clone = op.clone(value_mapper=mapping)
            emit(clone)
            continue
        if isinstance(op, func.CallOp):
            value = _expand_body(op.callee.string_value(), operands, funcs, emit, stack + [name])
        elif isinstance(op, (geo.GeoOp, geo.HolonomyOp, geo.HolonomyAngleOp)):
            applied = jet.ApplyOp(op.name, operands, dict(op.properties))
            applied.location = op.location
            value = emit(applied)
            if op.results[0].name_hint:
                value.name_hint = op.results[0].name_hint
        else:
            raise _no_rule(op, name)
        mapping[op.results[0]] = value
    raise IRError(f"jet-expand: @{name} has no return")
