"""Kernel selection for the Triton target: which op groups of a function become one
Triton kernel launch. One rule per kernel, each a pattern over the IR:

=================  ==========================================================================
``jet_layer``      ``jet.layer`` on a jet ``!jet.jet<K, T>`` (made by jet-fuse)
``laplacian``      ``jet.layer`` on a collapsed jet ``!jet.collapsed<T>``
``dense``          ``geo.linear`` (→ ``geo.bias``) (→ unary activation) on plain points:
                   the forward pass, launched as the jet kernel at K = 0
``poincare``       ``geo.mobius_matvec`` (→ ``geo.mobius_add`` of a parameter bias)
                   (→ ``geo.logmap0`` → activation → ``geo.expmap0``) on one Poincaré ball
=================  ==========================================================================

An intermediate value of a group must have no use outside it. Every other op is emitted
as the torch backend emits it (the torch runtime, on the same tensors). Kernel selection is
the backend's instruction selection: passes stay backend-agnostic (docs/backends.md).

Checked execution (``check_finite=True``, :func:`select_checked`): every group is ONE op
(``geo.linear`` alone, ``geo.mobius_matvec`` alone, a ``jet.layer``), so that the value of
every op is checked where the op makes it and a NaN or inf is reported at the op that made
it, as on the torch target; the bias, Möbius addition and activation then run as torch ops.
"""

from __future__ import annotations

from xdsl.dialects import func
from xdsl.ir import Operation, SSAValue

from geomir.backends.common.pyemit import Fused
from geomir.diagnostics import location_text
from geomir.dialects import geo, jet

_UNARY = frozenset(f"geo.{name}" for name in ("tanh", "sigmoid", "relu", "softplus", "sin", "cos", "exp",
                                                "log", "sqrt", "neg"))
"""The activations a dense or Poincaré group absorbs: those with a kernel epilogue
(``kernels.ACTIVATIONS``; this module does not import triton): every unary geo op."""


def _only_user(value: SSAValue) -> Operation | None:
    uses = list(value.uses)
    return uses[0].operation if len(uses) == 1 else None


def _dims(t) -> tuple[int, str]:
    """(last-axis size, element type) of a geo point/tangent or a jet over one."""
    if isinstance(t, (jet.JetType, jet.CollapsedType)):
        t = t.base
    return t.dim_value, str(t.element_type)


def _where(op: Operation) -> str | None:
    return location_text(op.location)  # a fused jet.layer: its linear map's (the layer's line)


def _kwargs(activation: str | None, extra: str = "") -> str:
    act = f", activation={activation!r}" if activation else ""
    return f"{extra}{act}, precision=PRECISION)"


def _info(kernel: str, op: Operation, x: SSAValue, w: SSAValue, bias: bool, activation, **more) -> dict:
    n, dtype = _dims(x.type)
    m = w.type.get_shape()[0]
    return {"kernel": kernel, **more, "activation": activation, "bias": bias, "n": n, "m": m,
            "dtype": dtype, "where": _where(op)}


def _jet_layer(op: jet.LayerOp, single: bool = False) -> Fused:  # one op whatever ``single``
    act = op.activation.data if op.activation is not None else None
    inputs = [op.x, op.weight, *([op.bias] if op.bias is not None else [])]
    if isinstance(op.x.type, jet.CollapsedType):
        info = _info("laplacian", op, op.x, op.weight, op.bias is not None, act)
    else:
        info = _info("jet_layer", op, op.x, op.weight, op.bias is not None, act, K=op.x.type.order.data)
    return Fused([op], inputs, lambda a: f"taylor.layer({', '.join(a)}{_kwargs(act)}", info)


def _unary_after(value: SSAValue) -> Operation | None:
    user = _only_user(value)
    return user if user is not None and user.name in _UNARY and user.operands[0] == value else None


def _dense(op: geo.LinearOp, single: bool = False) -> Fused | None:
    x, w = op.operands
    if not isinstance(x.type, geo.GeoValueType):
        return None
    chain, inputs = [op], [x, w]
    user = None if single else _only_user(op.result)
    if isinstance(user, geo.BiasOp) and user.operands[0] == op.result:
        chain.append(user)
        inputs.append(user.operands[1])
    act = None if single else _unary_after(chain[-1].results[0])
    if act is not None:
        chain.append(act)
    name = act.name if act is not None else None
    info = _info("dense", op, x, w, len(inputs) == 3, name)
    return Fused(chain, inputs, lambda a: f"runtime.dense({', '.join(a)}{_kwargs(name)}", info)


def _is_param(value: SSAValue) -> bool:
    return isinstance(value.owner, geo.ParamOp)


def _poincare(op: geo.MobiusMatvecOp, single: bool = False) -> Fused | None:
    w, x = op.operands
    ball = x.type.manifold
    if not isinstance(ball, geo.PoincareAttr):
        return None
    c = float(ball.c.value.data)
    chain, inputs = [op], [x, w]
    user = None if single else _only_user(op.result)
    if isinstance(user, geo.MobiusAddOp) and user.operands[0] == op.result and _is_param(user.operands[1]):
        chain.append(user)
        inputs.append(user.operands[1])
    act = None
    log = None if single else _only_user(chain[-1].results[0])
    if isinstance(log, geo.Logmap0Op) and log.operands[0] == chain[-1].results[0]:
        fn = _unary_after(log.results[0])
        exp = _only_user(fn.results[0]) if fn is not None else None
        if isinstance(exp, geo.Expmap0Op) and exp.results[0].type.manifold == ball:
            chain += [log, fn, exp]
            act = fn.name
    info = _info("poincare", op, x, w, len(inputs) == 3, act, c=c)
    return Fused(chain, inputs, lambda a: f"runtime.poincare_layer({', '.join(a)}{_kwargs(act, f', c={c!r}')}", info)


RULES = {jet.LayerOp: _jet_layer, geo.LinearOp: _dense, geo.MobiusMatvecOp: _poincare}
"""Root op type -> the rule building its group (or None: no kernel); ``rule(op, single)``,
``single``: the root op alone (:func:`select_checked`)."""


def select(f: func.FuncOp, single: bool = False) -> list[Fused]:
    """The kernel launches of ``f``: non-overlapping groups, in program order (``single``:
    one op per group, see :func:`select_checked`)."""
    groups: list[Fused] = []
    taken: set[Operation] = set()
    for op in f.body.block.ops:
        rule = RULES.get(type(op))
        if rule is None or op in taken:
            continue
        group = rule(op, single)
        if group is not None and not taken.intersection(group.ops):
            groups.append(group)
            taken.update(group.ops)
    return groups


def select_checked(f: func.FuncOp) -> list[Fused]:
    """The launches of ``f`` for checked execution (``check_finite=True``): one op per
    kernel (a linear map, a Möbius matvec, a jet.layer), so that every op's value is checked
    where it is made, as the torch target checks it (see module)."""
    return select(f, single=True)
