"""``jet-expand``: lower derivative requests to one Taylor-mode propagation each.

Needs: derivative requests whose models (and the models they call) have bodies in the
module. Guarantees: every forward-mode request is replaced by the model's body evaluated
on jets. The differentiated input is seeded, each geo op with a jet operand becomes
``jet.apply "<op>"`` (its typing is the op's own, its Taylor rule lives in the backend
runtime), ops on plain values (weights, other inputs) stay as they are, and a result that
does not depend on the input is lifted. Parameters keep their names, so the derived
function reads the model's weights.

Calls of other models on jets: each called model is evaluated on jets ONCE per kind of
arguments (the callee, the types of its arguments, which of them are jets and of which
kind: Taylor jets of order K, collapsed jets, stencil jets), callees before callers, with
no Python recursion (:class:`JetFunctions`). Except for stencil jets (:func:`_crosses_calls`),
that evaluation is a private function ``@<model>__<kind>_wrt<i>`` (``jet2``, ``lap``; the
indices of its jet arguments) marked ``jet.function``, placed after its model, and each call
site calls it: the derived code grows with the program, not with the number of paths through
its calls. Stencil jets are expanded in place at each call.
A call whose operands are all plain stays a call of the model.

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
  and input), never a function that merely has the name. Jet functions are named the same way.

``jet.vjp`` and ``jet.grad`` stay: they are reverse mode, emitted as the framework's
reverse pass over the generated code (no per-primitive derivative code either way).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field

from xdsl.context import Context
from xdsl.dialects import builtin, func
from xdsl.ir import Attribute, Block, Operation, Region, SSAValue
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
        state = _State({f.sym_name.data: f for f in op.ops if isinstance(f, func.FuncOp)}, op)
        for request in [o for o in op.walk() if type(o) in LOWERINGS]:
            LOWERINGS[type(request)](request, state)
            request.detach()
            request.erase()


@dataclass
class _State:
    """What the lowerings of one module share: its functions by name, the module, the jvp
    helpers made so far (by (model, wrt)) and the models evaluated on jets so far."""

    funcs: dict[str, func.FuncOp]
    module: builtin.ModuleOp
    helpers: dict[tuple[str, int], func.FuncOp] = field(default_factory=dict)
    jet_functions: JetFunctions = field(init=False)

    def __post_init__(self):
        self.jet_functions = JetFunctions(self.funcs)


# -- one lowering per request --------------------------------------------------------------


def _replace(request: Operation, values: list[SSAValue]) -> None:
    for old, value in zip(request.results, values, strict=True):
        old.replace_all_uses_with(value)


def _lower_directional(request: jet.DirectionalOp, state: _State) -> None:
    _lower_along(request, request.order.data, state, lambda emit, result: [result])


def _lower_jvp(request: jet.JvpOp, state: _State) -> None:
    _lower_along(
        request, 1, state, lambda emit, result: [emit(jet.CoeffOp(result, 0)), emit(jet.CoeffOp(result, 1))]
    )


def _lower_along(request, order: int, state: _State, finish) -> None:
    emit = _Emitter(InsertPoint.before(request), request.location)
    seed = emit(jet.SeedOp(request.model_inputs[request.wrt.data], request.direction, order))
    result = _expand_request(request, seed, lambda v: jet.LiftOp(v, order), state, emit)
    _replace(request, finish(emit, result))


def _lower_laplacian(request: jet.LaplacianOp, state: _State) -> None:
    emit = _Emitter(InsertPoint.before(request), request.location)
    seed = emit(jet.CollapsedSeedOp(request.model_inputs[request.wrt.data]))
    result = _expand_request(request, seed, jet.CollapsedLiftOp, state, emit)
    _replace(request, [emit(jet.TraceOp(result))])


def _lower_biharmonic(request: jet.BiharmonicOp, state: _State) -> None:
    emit = _Emitter(InsertPoint.before(request), request.location)
    seed = emit(jet.StencilSeedOp(request.model_inputs[request.wrt.data], "biharmonic"))
    result = _body_on(request, seed, state, emit, stencil="biharmonic")
    if not _is_jet(result):  # the output does not depend on the input: Δ²f = 0, the origin of R^n
        _replace(request, [emit(geo.OriginOp(result))])
        return
    _replace(request, [emit(jet.StencilSumOp(result, "biharmonic"))])


def _lower_hvp(request: jet.HvpOp, state: _State) -> None:
    tangent = _tangent_function(request.callee_name, request.wrt.data, state, request.location)
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
"""Request op -> its lowering (request, the module's :class:`_State`)."""


def _tangent_function(name: str, wrt: int, state: _State, location) -> func.FuncOp:
    """``@<name>__jvp_wrt<wrt>(inputs..., v) = ∂_v <name>`` (private), made once per (model,
    input) and reused only from ``state.helpers``: a function of the module that merely has the
    name (a user's model called ``U__jvp_wrt0``) is never taken for it; the helper then gets
    a fresh name (``U__jvp_wrt0_1``...)."""
    if (name, wrt) in state.helpers:
        return state.helpers[(name, wrt)]
    funcs, module = state.funcs, state.module
    symbol = fresh_symbol(f"{name}__jvp_wrt{wrt}", funcs, module)
    model = _model(name, funcs)
    inputs = list(model.function_type.inputs.data)
    (output,) = model.function_type.outputs.data
    block = Block(arg_types=[*inputs, inputs[wrt].tangent()])
    emit = _Emitter(InsertPoint.at_end(block), location)
    args = list(block.args[:-1])
    args[wrt] = emit(jet.SeedOp(args[wrt], block.args[-1], 1))
    result = _as_jet(state.jet_functions.expand(name, args, emit), lambda v: jet.LiftOp(v, 1), emit)
    emit(func.ReturnOp(emit(jet.CoeffOp(result, 1))))
    tangent = func.FuncOp(symbol, ([*inputs, inputs[wrt].tangent()], [output.tangent()]), Region(block), "private")
    input_names.copy_input_names(model, tangent, extra=["v"])
    tangent.location = location
    module.body.block.add_op(tangent)
    funcs[symbol] = tangent
    state.helpers[(name, wrt)] = tangent
    return tangent


def fresh_symbol(base: str, funcs, module: builtin.ModuleOp) -> str:
    """``base``, or ``base_1``, ``base_2``... : the first that names no function and no other
    symbol of the module."""
    return _first_free(base, funcs, _module_symbols(module))


def _module_symbols(module: builtin.ModuleOp) -> set[str]:
    """The names the ops of ``module`` define (functions and any other symbol)."""
    taken = set()
    for op in module.ops:
        sym = op.attributes.get("sym_name") or op.properties.get("sym_name")
        if isinstance(sym, builtin.StringAttr):
            taken.add(sym.data)
    return taken


def _first_free(base: str, *taken) -> str:
    """``base``, or ``base_1``, ``base_2``... : the first in none of ``taken``."""
    symbol, k = base, 0
    while any(symbol in names for names in taken):
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


def _body_on(request, seed: SSAValue, state: _State, emit: _Emitter, stencil: str | None = None) -> SSAValue:
    """The request's model body on its inputs with the seed in place of input ``wrt``: a jet,
    or a plain value where the output does not depend on that input."""
    args: list[SSAValue] = list(request.model_inputs)
    args[request.wrt.data] = seed
    return state.jet_functions.expand(request.callee_name, args, emit, stencil)


def _expand_request(request, seed: SSAValue, lift, state: _State, emit: _Emitter) -> SSAValue:
    return _as_jet(_body_on(request, seed, state, emit), lift, emit)


def expand_to_jet(name: str, args: list[SSAValue], lift, funcs, emit: _Emitter) -> SSAValue:
    """Model ``name``'s body on ``args`` (some of them jets), as a jet: a result that does
    not depend on the jets is lifted by ``lift(value)`` (the op that makes a plain value a
    constant jet). The jet functions its calls need are added to the model's module."""
    return _as_jet(JetFunctions(funcs).expand(name, args, emit), lift, emit)


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


def _model(name: str, funcs) -> func.FuncOp:
    callee = funcs.get(name)
    if callee is None or not callee.body.blocks:
        raise IRError(f"jet-expand: @{name} has no body in this module")
    return callee


@dataclass(frozen=True)
class _Key:
    """One evaluation of a model on jets: model ``callee`` on arguments of ``types`` (jets
    where the call passes jets), in a stencil propagation (``stencil``: its name) or not
    (a stencil's jets have an ordinary jet type)."""

    callee: str
    types: tuple[Attribute, ...]
    stencil: str | None


@dataclass(frozen=True)
class _Call:
    """A call of a model with a jet operand, met while evaluating its caller on jets: the
    call, its operands in the caller's evaluation, and where that evaluation emits."""

    key: _Key
    op: func.CallOp
    operands: list[SSAValue]
    emit: _Emitter


def _crosses_calls(key: _Key) -> bool:
    """Whether ``key``'s jets may be passed to and returned from a function: all but stencil
    jets (``jet.stencil_sum`` checks that its jet comes from a ``jet.stencil_seed`` through
    ``jet.apply``/``jet.layer`` ops, not through a call)."""
    return key.stencil is None


def _kind_name(key: _Key) -> str:
    """``jet<K>``, ``lap`` or the stencil's name, then ``_wrt`` and the jet arguments' indices."""
    jets = [i for i, t in enumerate(key.types) if isinstance(t, jet.AnyJet)]
    t = key.types[jets[0]]
    kind = key.stencil or ("lap" if isinstance(t, jet.CollapsedType) else f"jet{t.order_value}")
    return f"{kind}_wrt{'_'.join(map(str, jets))}"


class JetFunctions:
    """The models of one module evaluated on jets. Where the jets cross calls
    (:func:`_crosses_calls`), each model is evaluated once per :class:`_Key`, into a private
    function ``@<model>__<kind>`` placed after its model (after the ones made for it so
    far: callees before callers where the models are), and each such call calls it; the
    other calls are expanded in place, in their caller's evaluation."""

    def __init__(self, funcs: dict[str, func.FuncOp]):
        self.funcs = funcs
        self.made: dict[_Key, func.FuncOp] = {}
        self.last: dict[str, Operation] = {}  # model -> the last function placed after it
        self.symbols: set[str] | None = None  # the module's symbols, read once (then kept up to date)

    def expand(self, name: str, args: list[SSAValue], emit: _Emitter, stencil: str | None = None) -> SSAValue:
        """Model ``name``'s body on ``args``, emitted by ``emit`` (see :func:`_expand_body`).
        The evaluations its calls need run on an explicit stack, callees before callers (a
        chain of 1000 models is 1000 entries, not 1000 Python frames). An entry: the
        evaluation and what makes its caller's value of its result (a call of the function
        it made; None: the result itself, expanded in place)."""
        stack: list[tuple[Generator, Callable | None]] = [(_expand_body(name, args, self.funcs, emit, stencil), None)]
        evaluating = {name: None}  # the models on the stack, in order (a model twice is a cycle)
        sent = None
        while stack:
            evaluation, then = stack[-1]
            try:
                call = evaluation.send(sent)
            except StopIteration as done:
                stack.pop()
                evaluating.popitem()
                sent = then(done.value) if then else done.value
                continue
            key, sent = call.key, None
            if _crosses_calls(key) and key in self.made:
                sent = _call_of(self.made[key], call)
                continue
            if key.callee in evaluating:
                cycle = " -> ".join("@" + n for n in [*evaluating, key.callee])
                raise IRError(f"jet-expand: models call each other in a cycle: {cycle}")
            evaluating[key.callee] = None
            if _crosses_calls(key):
                stack.append((self._make(key), lambda made, call=call: _call_of(made, call)))
            else:
                stack.append((_expand_body(key.callee, call.operands, self.funcs, call.emit, key.stencil), None))
        return sent

    def _make(self, key: _Key) -> Generator[_Call, SSAValue, func.FuncOp]:
        """The evaluation of ``key`` as a private function, placed after its model."""
        model = _model(key.callee, self.funcs)
        block = Block(arg_types=key.types)
        emit = _Emitter(InsertPoint.at_end(block), model.location)
        result = yield from _expand_body(key.callee, list(block.args), self.funcs, emit, key.stencil)
        emit(func.ReturnOp(result))
        module = model.parent_op()
        if self.symbols is None:
            self.symbols = _module_symbols(module)
        symbol = _first_free(f"{key.callee}__{_kind_name(key)}", self.symbols, self.funcs)
        self.symbols.add(symbol)
        made = func.FuncOp(symbol, (key.types, [result.type]), Region(block), "private")
        made.location = model.location
        made.attributes[jet.FUNCTION_ATTR] = builtin.UnitAttr()
        input_names.copy_input_names(model, made)
        module.body.block.insert_op_after(made, self.last.get(key.callee, model))
        self.last[key.callee] = made
        self.funcs[symbol] = made
        self.made[key] = made
        return made


def _call_of(made: func.FuncOp, call: _Call) -> SSAValue:
    """``call``'s value from the function ``made`` for it: a call of it, where ``call`` was."""
    new = func.CallOp(made.sym_name.data, call.operands, made.function_type.outputs.data)
    new.location = call.op.location
    value = call.emit(new)
    value.name_hint = call.op.results[0].name_hint
    return value


def _needed(block: Block) -> set[Operation]:
    """The ops of ``block`` that its return depends on (the return included)."""
    todo = [op for op in block.ops if isinstance(op, func.ReturnOp)]
    needed: set[Operation] = set()
    while todo:
        op = todo.pop()
        if op not in needed:
            needed.add(op)
            todo.extend(v.owner for v in op.operands if isinstance(v.owner, Operation) and v.owner.parent is block)
    return needed


def _expand_body(name: str, args: list[SSAValue], funcs, emit: _Emitter,
                 stencil: str | None) -> Generator[_Call, SSAValue, SSAValue]:
    """Emit model ``name``'s body on ``args`` (some of them jets); return its result: a jet,
    or a plain value where it does not depend on them (a called model's plain result stays
    plain in its caller; only the request's result is lifted). At a call with a jet operand
    it yields a :class:`_Call` and is sent the call's value (:meth:`JetFunctions.expand`).
    Ops the result does not depend on are left out (dead lets: a jet function made for a
    call whose value is never used would stay in the module, uncalled, after dce)."""
    block = _model(name, funcs).body.block
    needed = _needed(block)
    mapping: dict[SSAValue, SSAValue] = dict(zip(block.args, args))
    for op in block.ops:
        if op not in needed:
            continue
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
            key = _Key(op.callee.string_value(), tuple(v.type for v in operands), stencil)
            value = yield _Call(key, op, operands, emit)
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
