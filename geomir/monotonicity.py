"""Sign analysis behind ``@monotone``: for each value, per coordinate, how it moves when the
named inputs increase (the other inputs held fixed). Used by the ``verify-contracts`` pass.

Lattice per coordinate: +1 (nondecreasing), -1 (nonincreasing), 0 (does not depend on the
named inputs), NaN (unknown). One rule per op in :data:`RULES`: a linear map combines the
signs of its weights with its input's (all terms one sign -> that sign; none -> 0; mixed
or unknown -> unknown), nondecreasing activations keep signs, neg and negative scales flip
them, sums combine, calls analyse the callee with its arguments' signs. A monotone model
is one whose output coordinates are all in {0, +1} (increasing) or {0, -1} (decreasing).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from xdsl.dialects import func
from xdsl.ir import Operation, SSAValue

from geomir.dialects import geo

INCREASING_ACTIVATIONS = frozenset({"tanh", "sigmoid", "relu", "softplus", "exp", "log", "sqrt"})
"""Elementwise activations that never decrease (they keep every sign)."""


@dataclass
class Broken:
    """Where the analysis lost the sign of some coordinate, and why."""

    op: Operation
    why: str


def _combine(*terms: np.ndarray) -> np.ndarray:
    """Elementwise sign of a sum of terms with the given signs."""
    stack = np.stack(terms)
    unknown = np.isnan(stack).any(axis=0)
    pos = (stack > 0).any(axis=0)
    neg = (stack < 0).any(axis=0)
    out = np.where(pos & ~neg, 1.0, np.where(neg & ~pos, -1.0, 0.0))
    out[(pos & neg) | unknown] = np.nan
    return out


def _linear(signs: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Signs of W x from the signs of x: per output row, the signs of sign(W_ij) s_j."""
    ws = np.sign(w)
    terms = ws * signs[None, :]  # (m, n); 0 where W_ij = 0 or s_j = 0
    terms[np.isnan(terms) & (ws == 0)] = 0.0  # a zero weight kills an unknown input
    unknown = np.isnan(terms).any(axis=1)
    pos = (terms > 0).any(axis=1)
    neg = (terms < 0).any(axis=1)
    out = np.where(pos & ~neg, 1.0, np.where(neg & ~pos, -1.0, 0.0))
    out[(pos & neg) | unknown] = np.nan
    return out


class SignAnalysis:
    """Signs of every value of a function given its arguments' signs; ``weight(value)``
    gives a parameter's array (None for a computed weight)."""

    def __init__(self, funcs: dict[str, func.FuncOp], weight):
        self.funcs = funcs
        self.weight = weight
        self.broken: Broken | None = None

    def run(self, f: func.FuncOp, arg_signs: list[np.ndarray]) -> list[np.ndarray]:
        signs: dict[SSAValue, np.ndarray] = dict(zip(f.body.block.args, arg_signs))
        for op in f.body.block.ops:
            if isinstance(op, func.ReturnOp):
                return [signs[v] for v in op.operands]
            ins = [signs[v] for v in op.operands]
            rule = RULES.get(op.name)
            if rule is None and op.name.startswith("geo.") and op.name.removeprefix("geo.") in geo.UNARY_OPS:
                rule = _unary
            out = rule(self, op, ins) if rule is not None else _opaque(self, op, ins)
            outs = out if isinstance(out, list) else [out] * len(op.results)  # a call: one per result
            for r, o in zip(op.results, outs):
                signs[r] = o if o.shape == (_width(r),) else np.full(_width(r), np.nan)
        return []

    def lose(self, op: Operation, why: str, out: np.ndarray) -> np.ndarray:
        if self.broken is None and np.isnan(out).any():
            self.broken = Broken(op, why)
        return out


def _width(value: SSAValue) -> int:
    t = value.type
    return t.dim_value if isinstance(t, geo.GeoValueType) else int(t.get_shape()[0])


def _opaque(a: SignAnalysis, op, ins) -> np.ndarray:
    """An op without a rule: constant if its inputs are, else unknown."""
    width = _width(op.results[0]) if op.results else 0
    if all(np.all(s == 0) for s in ins):
        return np.zeros(width)
    return a.lose(op, f"no monotonicity rule for {op.name}", np.full(width, np.nan))


def _unary(a: SignAnalysis, op, ins) -> np.ndarray:
    name = op.name.removeprefix("geo.")
    if name in INCREASING_ACTIVATIONS:
        return ins[0]
    if name == "neg":
        return -ins[0]
    out = np.where(ins[0] == 0, 0.0, np.nan)
    return a.lose(op, f"{op.name} is not monotone", out)


def _param(a: SignAnalysis, op, ins) -> np.ndarray:
    t = op.result.type
    shape = t.get_shape() if hasattr(t, "get_shape") else (t.dim_value,)
    return np.zeros(shape[0])  # rows of a weight / coordinates of a bias: constant


def _linear_rule(a: SignAnalysis, op, ins) -> np.ndarray:
    w = a.weight(op.operands[1])
    if w is None:
        return a.lose(op, "a linear map whose weight is computed", np.full(_width(op.result), np.nan))
    out = _linear(ins[0], w)
    if np.isnan(out).any() and not np.isnan(ins[0]).any():
        row = int(np.flatnonzero(np.isnan(out))[0])
        mixed = w[row][(ins[0] != 0) & (w[row] != 0)]
        why = (f"weights of mixed sign act on coordinates that move with the input "
               f"(output {row}: from {mixed.min():.3g} to {mixed.max():.3g})")
        return a.lose(op, why, out)
    return out


def _call(a: SignAnalysis, op, ins) -> list[np.ndarray]:
    """The callee's result signs, each for its own result (not the first for all)."""
    callee = a.funcs[op.callee.string_value()]
    outs = a.run(callee, ins)
    return outs if len(outs) == len(op.results) else [np.full(_width(r), np.nan) for r in op.results]


def _scale(a: SignAnalysis, op, ins) -> np.ndarray:
    return np.sign(op.factor.value.data) * ins[0] if op.factor.value.data else np.zeros_like(ins[0])


def _sum(a: SignAnalysis, op, lhs: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    out = _combine(lhs, rhs)
    lost = np.isnan(out) & ~np.isnan(lhs) & ~np.isnan(rhs)
    if lost.any():
        i = int(np.flatnonzero(lost)[0])
        what = "difference" if op.name == "geo.sub" else "sum"
        return a.lose(op, f"the {what} combines a term that increases with the input and one that decreases "
                      f"(coordinate {i}): its direction is unknown", out)
    return out


RULES = {
    "geo.param": _param,
    "geo.linear": _linear_rule,
    "geo.bias": lambda a, op, ins: _sum(a, op, ins[0], np.broadcast_to(ins[1], ins[0].shape)),
    "geo.add": lambda a, op, ins: _sum(a, op, ins[0], ins[1]),
    "geo.sub": lambda a, op, ins: _sum(a, op, ins[0], -ins[1]),
    "geo.scale": _scale,
    "geo.coords": lambda a, op, ins: ins[0],
    "func.call": _call,
}
"""Op name -> rule (analysis, op, operand signs) -> result signs; unary ops use
:func:`_unary`, anything else is constant or unknown (:func:`_opaque`)."""


def monotone_in(f: func.FuncOp, funcs, weight, inputs: tuple[int, ...], direction: str):
    """(holds, output signs, the op where a sign was lost or None)."""
    args = f.body.block.args
    arg_signs = [np.ones(_width(v)) if i in inputs else np.zeros(_width(v)) for i, v in enumerate(args)]
    analysis = SignAnalysis(funcs, weight)
    outs = analysis.run(f, arg_signs)
    want = 1.0 if direction == "increasing" else -1.0
    holds = all(np.all((s == 0) | (s == want)) for s in outs)
    return holds, outs, analysis.broken
