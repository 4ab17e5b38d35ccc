"""Equivariance by construction, behind ``@equivariant(G)``: which values move with the
group and which stay fixed. Used by the ``verify-contracts`` pass.

Each value gets a label: :data:`INV` (g·v = v: parameters, inputs the group does not act
on, anything computed from invariants only) or :data:`EQUI` (v moves by the group's action
on its space: the pairwise rotation for so2, the permutation for perm, the translation for
torus_translation, the rotation for ball_rotation). One table of rules per group in
:data:`RULES` says which ops keep these labels: Möbius addition of two rotating points
rotates (R(x ⊕ y) = Rx ⊕ Ry), a coordinatewise tanh of a rotating tangent vector does not,
and so on. Two rules hold for every group, since each acts by isometries: an op whose
operands are all invariant is invariant, and the distance between two moving points is
invariant. A fixed point of the action (the origin of a Euclidean space or of the ball under
a rotation: R·0 = 0) is :data:`FIXED`, both at once: it is invariant, and it moves with the
group (trivially), so it meets moving values in any op that keeps EQUI. A model is
equivariant when its output is EQUI, or INV for an invariance output (R[1]; R^n for the
torus); where the group acts trivially (perm or ball_rotation on inputs of dimension 1:
one permutation, one rotation) every model holds. A learned weight is generic: no rule assumes structure
in it, so a linear layer on a moving value breaks the proof and the failure names it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from xdsl.dialects import func
from xdsl.ir import Attribute, Operation

from geomir import input_names
from geomir.dialects import geo
from geomir.dialects.contract import GROUP_ACTS_ON, ONE_DIMENSION

INV = "invariant"
EQUI = "equivariant"
FIXED = "fixed"  # a fixed point of the action: INV and EQUI at once


@dataclass
class Broken:
    """Where a moving value stopped moving with the group, and why."""

    op: Operation
    why: str


Label = str  # INV, EQUI or FIXED
Rule = Callable[[Operation, Sequence[Label]], "Label | str"]  # a str other than INV/EQUI: why it breaks


def acted_inputs(group: str, types: Sequence[Attribute]) -> list[bool]:
    """Which inputs the group acts on: every input of a space it acts on
    (geomir.dialects.contract.GROUP_ACTS_ON: so2 the even-dimensional Euclidean points, perm
    the Euclidean points, torus_translation the torus points, ball_rotation the Poincaré
    points), all by one and the same group element, as docs/language.md states. None is
    held fixed for its dimension: where one element cannot act on them all,
    :func:`inputs_problem` refuses the model."""
    return [bool(GROUP_ACTS_ON[group](t)) for t in types]


_ELEMENT = {"perm": ("permutation of the coordinates", "every Euclidean input"),
            "ball_rotation": ("rotation", "every input on the Poincaré ball"),
            "torus_translation": ("shift of the angles", "every input on a torus")}


def _type_text(t: Attribute) -> str:
    m = t.manifold
    return f"R[{t.dim_value}]" if isinstance(m, geo.EuclideanAttr) else f"{m.short()}[{t.dim_value}]"


def inputs_problem(group: str, types: Sequence[Attribute], names: Sequence[str] | None = None) -> str | None:
    """Why one element of ``group`` cannot act on all the inputs it acts on (None if it can):
    for perm, ball_rotation and torus_translation they need one dimension. A model with
    ``x: R[3], y: R[2]`` under perm is refused, not proved with y held fixed (a tester
    permuting both inputs, as the contract reads, would find it broken). Shared by the prover
    (:func:`equivariant`) and the numeric check (geomir.equivariance_check)."""
    if group not in ONE_DIMENSION:
        return None
    acted = [i for i, a in enumerate(acted_inputs(group, types)) if a]
    if len({types[i].dim_value for i in acted}) <= 1:
        return None
    names = list(names) if names is not None else [f"input {i}" for i in range(len(types))]
    found = ", ".join(f"{names[i]} is {_type_text(types[i])}" for i in acted)
    element, inputs = _ELEMENT[group]
    return (f"{group} acts by one and the same {element} on {inputs}, so they need one "
            f"dimension; {found}")


def output_label(group: str, out: Attribute) -> Label:
    """The label the model's output must have: EQUI where the group acts on it, else INV."""
    if group == "torus_translation":
        return EQUI if isinstance(out.manifold, geo.TorusAttr) else INV
    return INV if out.dim_value == 1 else EQUI


# --- rules ------------------------------------------------------------------------------------


def _all_equi(op, labels):
    return EQUI if all(label == EQUI for label in labels) else _mixed(op)


def _mixed(op):
    return (f"{op.name} combines a value that moves with the group and one that does not "
            f"(a learned or fixed vector is not moved by the group)")


def _breaks(reason: str) -> Rule:
    return lambda op, labels: reason


_UNARY = tuple(f"geo.{name}" for name in geo.UNARY_OPS if name != "neg")

# Orthogonal actions on vectors (so2: the same rotation of every coordinate pair;
# ball_rotation: one rotation of R^n acting on points of the ball and on tangent vectors):
# linear combinations with invariant coefficients commute; coordinatewise maps do not.
_ORTHOGONAL: dict[str, Rule] = {
    "geo.add": _all_equi,
    "geo.sub": _all_equi,
    "geo.neg": _all_equi,
    "geo.scale": _all_equi,
    "geo.coords": _all_equi,
    "geo.proj": _all_equi,  # radial clamps commute with rotations
    "geo.expmap": _all_equi,
    "geo.logmap": _all_equi,  # a tangent at x rotates with x
    "geo.expmap0": _all_equi,
    "geo.logmap0": _all_equi,
    "geo.parallel_transport": _all_equi,
    "geo.mobius_add": _all_equi,  # R(x ⊕ y) = Rx ⊕ Ry
    "geo.mobius_scalar": lambda op, labels: EQUI if tuple(labels) == (INV, EQUI) else (
        "mobius_scalar needs an invariant scale r: a scale that moves with the input breaks the rotation"),
    "geo.mobius_matvec": _breaks("a learned matrix W does not commute with rotations: "
                                 "W logmap0(Rx) != R W logmap0(x) for a generic W"),
    "geo.linear": _breaks("a learned weight matrix does not commute with rotations: "
                          "W(Rx) != R(Wx) for a generic W"),
    "geo.bias": _breaks("adding a learned bias does not commute with rotations: Rx + b != R(x + b)"),
    "geo.mul": _breaks("a coordinatewise product of rotating vectors does not rotate"),
    "geo.div": _breaks("a coordinatewise quotient of rotating vectors does not rotate"),
    "geo.pow": _breaks("a coordinatewise power does not commute with rotations"),
    **{name: _breaks(f"{name.removeprefix('geo.')} acts coordinatewise and does not commute "
                     f"with rotations (it changes the direction of a rotated vector)")
       for name in _UNARY},
}

# Permutations of the coordinates: coordinatewise maps commute, learned layers mix.
_PERMUTATION: dict[str, Rule] = {
    **{name: _all_equi for name in (*_UNARY, "geo.neg", "geo.scale", "geo.pow", "geo.coords", "geo.proj",
                                     "geo.add", "geo.sub", "geo.mul", "geo.div", "geo.expmap", "geo.logmap")},
    "geo.linear": _breaks("a learned weight matrix mixes coordinates: W(Px) != P(Wx) for a generic W"),
    "geo.bias": _breaks("a learned bias differs between coordinates: Px + b != P(x + b)"),
}

# Translations of the flat torus: isometries whose differential is the identity, so tangent
# vectors between moving points are invariant and stepping from a moving point moves.
_TRANSLATION: dict[str, Rule] = {
    "geo.logmap": lambda op, labels: INV if tuple(labels) == (EQUI, EQUI) else _mixed(op),
    "geo.parallel_transport": lambda op, labels: INV if tuple(labels) == (EQUI, EQUI, INV) else _mixed(op),
    "geo.expmap": lambda op, labels: EQUI if tuple(labels) == (EQUI, INV) else _mixed(op),
    "geo.proj": _all_equi,  # wrapping commutes with a shift
    "geo.coords": _breaks("the coordinates of a torus point shift with the translation; "
                          "read the point through dist or logmap from another moving point"),
    "geo.logmap0": _breaks("logmap0 measures from the fixed origin, which a translation moves away from"),
}

RULES: dict[str, dict[str, Rule]] = {
    "so2": _ORTHOGONAL,
    "ball_rotation": _ORTHOGONAL,
    "perm": _PERMUTATION,
    "torus_translation": _TRANSLATION,
}
"""Group -> op name -> rule(op, operand labels) -> EQUI, INV, or why the op breaks it."""


def _rule_for(group: str, op: Operation, labels: Sequence[Label]) -> Label | str:
    if op.name == "geo.origin":  # rotations and permutations fix the origin of R^n and of the ball
        fixed = group != "torus_translation" and op.result.type.manifold.kind in ("euclidean", "poincare")
        return FIXED if fixed else INV  # the sphere's and the hyperboloid's are not acted on; a shift moves points off it
    if all(label in (INV, FIXED) for label in labels):
        return INV  # a function of invariants (this covers parameters and constants)
    labels = [EQUI if label == FIXED else label for label in labels]  # it moves with the others
    if op.name == "geo.dist":
        # every group acts by isometries: d(gx, gy) = d(x, y)
        return INV if tuple(labels) == (EQUI, EQUI) else (
            "the distance from a moving point to a fixed one changes under the group")
    rule = RULES[group].get(op.name)
    if rule is None:
        return f"no equivariance rule for {op.name} under {group}"
    return rule(op, labels)


class EquivarianceAnalysis:
    """Labels of every value of the module's functions for one group."""

    def __init__(self, funcs: dict[str, func.FuncOp], group: str):
        self.funcs = funcs
        self.group = group
        self.memo: dict[tuple[str, tuple[Label, ...]], tuple[Label | None, Broken | None]] = {}

    def run(self, f: func.FuncOp, args: Sequence[Label]) -> tuple[Label | None, Broken | None]:
        """The output label of ``f`` given its arguments' labels (None and where it broke,
        when a moving value met an op without a rule that keeps it moving)."""
        key = (f.sym_name.data, tuple(args))
        if key in self.memo:
            return self.memo[key]
        labels, broken = self.run_all(f, args)
        result = (None, broken) if labels is None else ((labels[0] if labels else INV), None)
        self.memo[key] = result
        return result

    def run_all(self, f: func.FuncOp, args: Sequence[Label]) -> tuple[list[Label] | None, Broken | None]:
        """The labels of each of ``f``'s results (None and where it broke)."""
        key = ("*" + f.sym_name.data, tuple(args))
        if key in self.memo:
            return self.memo[key]
        self.memo[key] = (None, Broken(f, f"@{f.sym_name.data} calls itself; recursion has no equivariance rule"))
        labels = dict(zip(f.body.block.args, args))
        result: tuple[list[Label] | None, Broken | None] = ([], None)
        for op in f.body.block.ops:
            if isinstance(op, func.ReturnOp):
                result = ([labels[v] for v in op.operands], None)
                break
            ins = [labels[v] for v in op.operands]
            if isinstance(op, func.CallOp) and any(label == EQUI for label in ins):
                outs, broken = self.run_all(self.funcs[op.callee.string_value()], ins)
                if outs is None:
                    result = (None, broken)
                    break
            else:
                out = _rule_for(self.group, op, ins)
                if out not in (INV, EQUI, FIXED):
                    result = (None, Broken(op, out))
                    break
                outs = [out] * len(op.results)
            for r, out in zip(op.results, outs):  # a call: each result its own callee result's label
                labels[r] = out
        self.memo[key] = result
        return result


def equivariant(f: func.FuncOp, funcs: dict[str, func.FuncOp], group: str) -> tuple[bool, Label | None, Broken | None]:
    """Whether ``f`` commutes with ``group`` by construction: (holds, output label, where
    the proof broke or None). A model whose inputs one group element cannot all act on
    (:func:`inputs_problem`) does not hold, broken at ``f`` itself with that reason."""
    ftype = f.function_type
    names = [name or f"input {i}" for i, name in enumerate(input_names.input_names(f))]
    problem = inputs_problem(group, ftype.inputs.data, names)
    if problem is not None:
        return False, None, Broken(f, problem)
    acts = acted_inputs(group, ftype.inputs.data)
    if group in ("perm", "ball_rotation") and any(a and t.dim_value == 1 for a, t in zip(acts, ftype.inputs.data)):
        return True, FIXED, None  # S_1 and SO(1) hold the identity only: every model commutes with it
    label, broken = EquivarianceAnalysis(funcs, group).run(f, [EQUI if a else INV for a in acts])
    if label is None:
        return False, None, broken
    return label in (FIXED, output_label(group, ftype.outputs.data[0])), label, None
