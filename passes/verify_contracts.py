"""``verify-contracts``: prove each model's ``#contract.lipschitz<L>`` from its weights.

Needs: models whose parameters are ``geo.param`` ops; the weights are the initial ones of
seed 0 (``init_params(seed=0)``, drawn exactly as every backend draws them), or with
``verify-contracts{weights="trained.npz"}`` (``geomc --weights``) those of a trained
weights file (geomir.weights_file), after their recorded weight transforms; every entry of
the file that names a parameter of the module is checked before any proof, contracts or not
(check_weights_file). Guarantees:
every function with a Lipschitz contract gets ``proved = [#contract.lipschitz<B>]`` with a
certified bound B (Euclidean / geodesic distances of the joint input and the output); a
contract with B > L fails with the model's file:line:col, the declared and the proved
bound, and the layer that contributes most. ``#contract.monotone`` is proved by sign
analysis of the same weights (geomir.monotonicity) and recorded in ``proved`` too; a failure
names the op where a coordinate's direction was lost. ``#contract.equivariant<G>`` is
proved by construction (geomir.equivariance: which ops commute with G) and recorded too;
a failure names the op that does not commute and why.

The bound is the smaller of two sound bounds:

* compositional: one rule per op in :data:`RULES` (a linear map multiplies by a certified
  spectral norm, an activation by its largest |slope|, a sum adds, a call multiplies by
  the callee's bound proved on the radii of its operands), over the whole dataflow graph;
* layered: a chain x -> W_1 -> act -> ... -> W_m from the model's input is bounded jointly
  by the Combettes-Pesquet rule (geomir.certify.layered_lipschitz_bound), which uses the
  activations' slope ranges and the norms of products of adjacent layers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from xdsl.context import Context
from xdsl.dialects import builtin, func
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass

from geomir import certify, equivariance, input_names, monotonicity
from geomir import hyperbolic_bounds as hb
from geomir.backends.common import weights
from geomir.backends.common.init import ParamSpec, draw
from geomir.backends.common.pyemit import weight_transforms
from geomir.diagnostics import Note, SourceError, UsageError, op_span
from geomir.dialects import contract, geo
from geomir.pipeline import register_pass
from geomir.weights_file import WeightFile

PROVED_ATTR_NAME = contract.PROVED_ATTR_NAME
"""``func.func`` attribute: the contracts this pass proved, with their proved constants."""


class ContractError(SourceError):
    """A declared contract that the compiler cannot prove."""


@dataclass
class Bound:
    """A Lipschitz bound of one value w.r.t. the function's joint input, an upper bound on
    its distance from the origin (|v|, or d(0, x) on a manifold; inf when unknown), and why
    the bound is infinite when it is."""

    value: float
    why: str = ""  # for inf: the op that has no rule
    where: Operation | None = None
    radius: float = math.inf


@dataclass
class Proof:
    bound: float
    layers: list[tuple[float, Operation]] = field(default_factory=list)  # (spectral norm, linear op)
    blocker: Bound | None = None
    radius: float = math.inf  # the result's distance from the origin, at most (inputs within the radii proved on)


MAX_PROVED_VALUES = 2**26
"""The most values of one parameter the prover draws (512 MiB of float64): beyond, a clear error."""

Weights = int | WeightFile  # the seed whose init is proved, or a trained weights file


def _weight(value: SSAValue, source: Weights, transformed: bool = True):
    """The parameter's value (drawn from seed ``source`` as every backend draws it, or read
    from a weights file) after its weight transforms (quantize-weights, prune-weights,
    nonnegativity) and rounded to its element type, as the backends cast it (a float32
    model multiplies by float32 weights); a ball point as its tangent at the origin. A
    file's values are rounded to the element type first: a compiled module holds them in its
    dtype, and its ``transform_params`` transforms those. None for a computed value."""
    owner = value.owner
    if not isinstance(owner, geo.ParamOp):
        return None
    t = value.type
    shape = _param_shape(t)
    transforms = weight_transforms(owner)
    if not transformed:  # before quantization and pruning; a constraint is part of the model
        transforms = tuple(t for t in transforms if t == weights.NONNEGATIVE)
    name = owner.param_name.data
    if math.prod(shape) > MAX_PROVED_VALUES:
        raise ContractError(f"parameter '{name}' has {math.prod(shape)} values, more than the contract prover "
                            f"draws ({MAX_PROVED_VALUES}); a contract needs smaller layers", op_span(owner))
    elt = _element_name(t.element_type)
    if not isinstance(source, WeightFile):
        value = draw(name, ParamSpec(shape, owner.init.data, transforms=transforms), source)
    else:
        value = _as_element_type(_read_param(source, name, t), elt, name, source, owner)
        c = _curvature(t) if isinstance(t, geo.PointType) else None
        if c is not None:  # a point on the ball (as the module holds it) -> logmap0
            _check_on_ball(value, c, name, source, f" once rounded to {elt}")
            norm = float(np.linalg.norm(value))
            value = value * (math.atanh(math.sqrt(c) * norm) / (math.sqrt(c) * norm)) if norm > 0 else value
        value = weights.apply(value, weights.deployed(transforms))
    if not np.all(np.isfinite(value)):  # e.g. bf16 rounding of values beyond its range: inf
        raise ContractError(f"parameter '{name}' ({_source_text(source)}) has non-finite values after "
                            f"{', '.join(transforms) or 'loading'}, so no contract can be proved",
                            op_span(owner))
    if isinstance(t, geo.PointType) and not isinstance(t.manifold, geo.EuclideanAttr):
        return value  # a ball point's tangent: the backend casts the point, not this
    return _as_element_type(value, elt, name, source, owner)  # what the compiled model multiplies by


def _as_element_type(value: np.ndarray, elt: str, name: str, source: Weights, owner: Operation) -> np.ndarray:
    """``value`` rounded to ``elt`` as a backend casts it; a ContractError when some value is
    beyond the type's range."""
    cast = weights.as_element_type(value, elt)
    if not np.all(np.isfinite(cast)):
        raise ContractError(f"parameter '{name}' ({_source_text(source)}) has values beyond the range of {elt}, "
                            f"the type the model runs it in (largest |value| {np.abs(value).max():.6g}), "
                            f"so no contract can be proved", op_span(owner))
    return cast


def _param_shape(t) -> tuple[int, ...]:
    return tuple(t.get_shape()) if isinstance(t, builtin.TensorType) else (t.dim_value,)


def _read_param(source: WeightFile, name: str, t) -> np.ndarray:
    """Parameter ``name`` (of type ``t``) from a weights file: a UsageError when it is
    missing, misshapen or not finite, or, for a point of the Poincaré ball, off the ball."""
    value = source.get(name, _param_shape(t))
    c = _curvature(t) if isinstance(t, geo.PointType) else None
    if c is not None:
        _check_on_ball(value, c, name, source)
    return value


def _check_on_ball(value: np.ndarray, c: float, name: str, source: WeightFile, how: str = "") -> None:
    """A UsageError when ``value`` is not a point of the Poincaré ball of curvature -c (no
    distance from the origin, no bound)."""
    norm = float(np.linalg.norm(value))
    if not math.sqrt(c) * norm < 1.0:
        raise UsageError(f"weights file '{source}': '{name}' is not a point of the Poincaré ball{how} "
                         f"(|x| = {norm:.6g} >= 1/sqrt(c) = {1 / math.sqrt(c):.6g})")


def check_weights_file(module: builtin.ModuleOp, source: WeightFile) -> None:
    """A UsageError when an entry of ``source`` that names a parameter of ``module`` is
    misshapen, not finite or (a ball point) off the ball, whether or not its model has a
    contract, or when the file holds none of the module's parameters (the weights of another
    program). The parameters a proof reads must be in the file (:func:`_weight`); others may
    be missing (a file of the one deployed model of a program of several), and entries of
    other models are ignored."""
    types: dict[str, object] = {}
    for op in module.walk():
        if isinstance(op, geo.ParamOp):
            types.setdefault(op.param_name.data, op.result.type)
    for name, t in types.items():
        if name in source.arrays:
            _read_param(source, name, t)
    if types and not set(types) & set(source.arrays):
        known = ", ".join(f"'{n}'" for n in sorted(source.arrays)[:3]) + (", ..." if len(source.arrays) > 3 else "")
        raise UsageError(f"weights file '{source}' holds none of the program's parameters (it has: "
                         f"{known or 'nothing'}; the program reads '{sorted(types)[0]}', ...): the weights of another "
                         "program?")


def _element_name(elt) -> str:
    """'f64', 'f32', 'f16' or 'bf16': the element type a backend casts the parameter to."""
    return {builtin.Float64Type: "f64", builtin.Float32Type: "f32", builtin.Float16Type: "f16",
            builtin.BFloat16Type: "bf16"}[type(elt)]


def _source_text(source: Weights) -> str:
    return f"weights of {source}" if isinstance(source, WeightFile) else f"weights of seed {source}"


def _slope_max(name: str) -> float | None:
    rng = certify.SLOPES.get(name.removeprefix("geo."))
    return None if rng is None else max(abs(rng[0]), abs(rng[1]))


class _Prover:
    def __init__(self, funcs: dict[str, func.FuncOp], seed: Weights, radius: dict[str, float] | None = None,
                 transformed: bool = True):
        self.funcs = funcs
        self.seed = seed
        self.transformed = transformed  # False: the weights before their weight transforms
        self.radius = radius or {}  # function -> input radius of its contract
        self.proofs: dict[tuple[str, tuple[float, ...]], Proof] = {}  # (function, its inputs' radii) -> proof
        self.proving: set[str] = set()  # functions whose proof is under way: a call of one is recursive
        self.norms: dict[SSAValue, float] = {}

    def norm(self, w: SSAValue) -> float | None:
        if w not in self.norms:
            value = _weight(w, self.seed, self.transformed)
            self.norms[w] = None if value is None else certify.spectral_norm_bound(value)
        return self.norms[w]

    def prove(self, name: str, radii: tuple[float, ...] | None = None) -> Proof:
        """The proof for function ``name`` on inputs at distances at most ``radii`` from the
        origin (one per input; default: its contract's radius for each, ∞ without one), each
        proved once per radii: a call proves its callee on the radii of its operands."""
        f = self.funcs.get(name)
        if f is None or f.is_declaration:  # nothing to prove a bound on
            return Proof(math.inf, blocker=Bound(math.inf, "it is declared without a body in this module"))
        if radii is None:
            radii = (self.radius.get(name, math.inf),) * len(f.body.block.args)
        key = (name, radii)
        if key not in self.proofs:
            if name in self.proving:  # a recursive call has no finite bound
                return Proof(math.inf)
            self._prove_all(key)
        return self.proofs[key]

    def _prove_all(self, key: tuple[str, tuple[float, ...]]) -> None:
        """Prove ``key`` and, first, the callees its calls ask for, with a stack of the
        proofs under way instead of Python recursion (a chain of a thousand models)."""
        stack = [(key, self._proof_steps(self.funcs[key[0]], key[1]))]
        self.proving.add(key[0])
        try:
            while stack:
                top, steps = stack[-1]
                try:
                    name, radii = next(steps)  # a callee this proof needs
                except StopIteration as done:
                    self.proofs[top] = done.value
                    self.proving.discard(top[0])
                    stack.pop()
                    continue
                f = self.funcs.get(name)
                if f is None or f.is_declaration or (name, radii) in self.proofs or name in self.proving:
                    continue  # the call rule's prove() answers these at once
                self.proving.add(name)
                stack.append(((name, radii), self._proof_steps(f, radii)))
        finally:
            self.proving.difference_update(k[0] for k, _ in stack)

    def _proof_steps(self, f: func.FuncOp, radii: tuple[float, ...]):
        """The proof of ``f`` on ``radii``: a generator that yields (callee, radii) before
        each call's rule runs, so that the callee's proof is made first (_prove_all), and
        returns the :class:`Proof`."""
        bounds: dict[SSAValue, Bound] = {arg: Bound(1.0, radius=r) for arg, r in zip(f.body.block.args, radii)}
        layers: list[tuple[float, Operation]] = []
        result = None
        radius = 0.0
        for op in f.body.block.ops:
            if isinstance(op, func.ReturnOp):
                outs = [bounds[v] for v in op.operands]
                result = max(outs, key=lambda b: b.value) if outs else Bound(0.0)
                radius = max((b.radius for b in outs), default=0.0)
                continue
            rule = RULES.get(op.name, _unary if op.name in _UNARY else None)
            ins = [bounds[v] for v in op.operands]
            blocked = next((b for b in ins if math.isinf(b.value)), None)
            if blocked is not None:
                out = Bound(blocked.value, blocked.why, blocked.where)
            elif rule is None:
                out = Bound(math.inf, f"no Lipschitz rule for {op.name} yet", op)
            else:
                if isinstance(op, func.CallOp):
                    yield op.callee.string_value(), tuple(b.radius for b in ins)
                out = _checked(rule(self, op, ins), op)
            if isinstance(op, geo.LinearOp) and self.norm(op.operands[1]) is not None:
                layers.append((self.norm(op.operands[1]), op))
            for r in op.results:
                bounds[r] = out
        bound = result.value if result is not None else 0.0
        chain = _chain(f, self.seed, self.transformed)  # a global bound: valid on any radius too
        if chain is not None:
            bound = min(bound, chain)
        return Proof(bound, layers, result if result is not None and math.isinf(result.value) else None, radius)


# --- rules ------------------------------------------------------------------------------------


def _times(a: float, b: float) -> float:
    """a * b where 0 * inf = 0: a zero bound or radius is an exact zero (a constant, the
    zero vector, a zero weight), which any factor keeps zero. NaN would compare false with
    everything and slip through the checks below."""
    return 0.0 if a == 0.0 or b == 0.0 else a * b


def _checked(out: Bound, op: Operation) -> Bound:
    """``out`` with an unknown (NaN) radius made inf, and a NaN or overflowed bound made an
    infinite one that says where: a bound must never be a NaN, which no comparison rejects."""
    radius = out.radius if out.radius == out.radius else math.inf
    if math.isnan(out.value) or (math.isinf(out.value) and not out.why):
        return Bound(math.inf, f"the bound at {op.name} overflows the float64 range (weights or scales too "
                     "large)", op, radius)
    return out if radius is out.radius else Bound(out.value, out.why, out.where, radius)


def _norm(v) -> float:
    return float(np.linalg.norm(v)) if v is not None else math.inf


def _linear(p: _Prover, op, ins):
    norm = p.norm(op.operands[1])
    if norm is None:
        return Bound(math.inf, "a linear map whose weight is not a parameter", op)
    return Bound(_times(ins[0].value, norm), radius=_times(ins[0].radius, norm))


_RANGE = {  # activation, input radius, dimension -> output radius
    "tanh": lambda r, n: min(r, math.sqrt(n)),
    "sin": lambda r, n: min(r, math.sqrt(n)),
    "sigmoid": lambda r, n: math.sqrt(n),
    "cos": lambda r, n: math.sqrt(n),
    "relu": lambda r, n: r,
    "neg": lambda r, n: r,
    "softplus": lambda r, n: r + math.sqrt(n) * math.log(2.0),
}


def _unary(p: _Prover, op, ins):
    slope = _slope_max(op.name)
    if slope is None:
        return Bound(math.inf, f"{op.name} has an unbounded slope (not globally Lipschitz)", op)
    rng = _RANGE.get(op.name.removeprefix("geo."))
    radius = rng(ins[0].radius, op.results[0].type.dim_value) if rng else math.inf
    return Bound(ins[0].value * slope, radius=radius)


def _call(p: _Prover, op, ins):
    """The callee's bound, proved on its operands' radii (not on the radius its own contract
    declares, which may be smaller), times the operands' joint bound; the radius of its result."""
    proof = p.prove(op.callee.string_value(), tuple(b.radius for b in ins))
    if math.isinf(proof.bound):
        why = proof.blocker.why if proof.blocker else "a recursive call"
        return Bound(math.inf, f"@{op.callee.string_value()}: {why}", proof.blocker.where if proof.blocker else op)
    return Bound(proof.bound * math.sqrt(sum(b.value**2 for b in ins)), radius=proof.radius)


def _param(p: _Prover, op, ins):
    value = _weight(op.results[0], p.seed, p.transformed)
    t = op.results[0].type
    if value is not None and _curvature(t) is not None:  # a ball point: expmap0 of the drawn tangent
        return Bound(0.0, radius=hb.ball_radius_of_tangent(_norm(value)))
    return Bound(0.0, radius=_norm(value) if value is not None and value.ndim == 1 else math.inf)


def _curvature(t) -> float | None:
    """c of a type on the Poincaré ball, else None."""
    m = getattr(t, "manifold", None)
    return float(m.c.value.data) if isinstance(m, geo.PoincareAttr) else None


def _euclidean(t) -> bool:
    return isinstance(getattr(t, "manifold", None), geo.EuclideanAttr)


def _logmap0(p: _Prover, op, ins):
    c = _curvature(op.operands[0].type)
    if _euclidean(op.operands[0].type):
        return Bound(ins[0].value, radius=ins[0].radius)
    if c is None:
        return Bound(math.inf, f"no Lipschitz rule for logmap0 on {op.operands[0].type.manifold} yet", op)
    return Bound(ins[0].value * hb.logmap0_factor(c), radius=hb.tangent_radius_of_ball(ins[0].radius))


def _expmap0(p: _Prover, op, ins):
    c = _curvature(op.operands[0].type)
    if _euclidean(op.operands[0].type):
        return Bound(ins[0].value, radius=ins[0].radius)
    if c is None:
        return Bound(math.inf, f"no Lipschitz rule for expmap0 on {op.operands[0].type.manifold} yet", op)
    factor = hb.expmap0_factor(c, ins[0].radius)
    if math.isinf(factor):
        return Bound(math.inf, "expmap0 of a tangent vector of unbounded norm: distances on the ball grow like "
                     "exp(2 sqrt(c) |v|); bound it (tanh, sigmoid) or declare @lipschitz(L, radius = R)", op)
    return Bound(ins[0].value * factor, radius=hb.ball_radius_of_tangent(ins[0].radius))


def _mobius_add(p: _Prover, op, ins):
    x, y = ins
    c = _curvature(op.results[0].type)
    in_x, in_y = hb.mobius_add_factors(c, x.radius, y.radius)
    if x.value > 0 and math.isinf(in_x):
        return Bound(math.inf, "x ⊕ y moves with x by up to exp(sqrt(c) d(0, y)) and y is not bounded; "
                     "declare @lipschitz(L, radius = R)", op)
    return Bound((in_x * x.value if x.value > 0 else 0.0) + in_y * y.value, radius=x.radius + y.radius)


def _mobius_matvec(p: _Prover, op, ins):
    """expmap0(W logmap0(x)): factor |W| S(sqrt(c) |W| R_x), radius |W| R_x."""
    norm = p.norm(op.operands[0])
    x = ins[1]
    c = _curvature(op.results[0].type)
    if norm is None:
        return Bound(math.inf, "a Möbius matvec whose weight is not a parameter", op)
    tangent = _times(norm, hb.tangent_radius_of_ball(x.radius))
    factor = hb.expmap0_factor(c, tangent)
    if math.isinf(factor):
        return Bound(math.inf, "mobius_matvec of an input at unbounded distance from the origin: distances on the "
                     "ball grow like exp(sqrt(c) |W| d(0, x)); declare @lipschitz(L, radius = R)", op)
    return Bound(_times(x.value * hb.logmap0_factor(c), _times(norm, factor)), radius=hb.ball_radius_of_tangent(tangent))


def _coords(p: _Prover, op, ins):
    """The representation coordinates (Euclidean distances) of a value: the identity for
    vectors and tangents; on the ball, sphere and hyperboloid, the embedding's stretch of
    geodesic distances; none on the torus, whose angles jump where they wrap."""
    t = op.operands[0].type
    x = ins[0]
    m = getattr(t, "manifold", None)
    if isinstance(t, geo.TangentType) or isinstance(m, geo.EuclideanAttr):
        return Bound(x.value, radius=x.radius)
    if isinstance(m, geo.PoincareAttr):  # |x - y| <= d(x, y) / 2: the conformal factor is >= 2
        return Bound(x.value, radius=hb.ball_coords_norm(m.curvature, x.radius))
    if isinstance(m, geo.SphereAttr):  # a chord is never longer than its arc; unit vectors
        return Bound(x.value, radius=1.0)
    if isinstance(m, geo.LorentzAttr):
        c = m.curvature
        factor = hb.lorentz_coords_factor(c, x.radius)
        if x.value > 0 and math.isinf(factor):
            return Bound(math.inf, "coords of a hyperboloid point at unbounded distance from the origin: the "
                         "ambient coordinates stretch geodesic distances by sqrt(cosh(2 sqrt(c) d(o, x))); "
                         "declare @lipschitz(L, radius = R)", op)
        return Bound(_times(x.value, factor), radius=hb.lorentz_coords_norm(c, x.radius))
    if isinstance(m, geo.TorusAttr):
        if x.value == 0:  # a fixed point: constant coordinates
            return Bound(0.0)
        return Bound(math.inf, "coords of a torus point jump by the period where an angle wraps around: not "
                     "continuous, so not Lipschitz (read torus points through dist or logmap)", op)
    return Bound(math.inf, f"no Lipschitz rule for coords on {m} yet", op)


def _sum(p, op, ins):
    return Bound(ins[0].value + ins[1].value, radius=ins[0].radius + ins[1].radius)


RULES = {
    "geo.param": _param,
    "geo.linear": _linear,
    "geo.bias": _sum,
    "geo.add": _sum,
    "geo.sub": _sum,
    "geo.scale": lambda p, op, ins: Bound(_times(abs(op.factor.value.data), ins[0].value),
                                          radius=_times(abs(op.factor.value.data), ins[0].radius)),
    "geo.coords": _coords,
    # the triangle inequality: |d(a,b) - d(a',b')| <= d(a,a') + d(b,b'), on any manifold
    "geo.dist": _sum,
    "geo.logmap0": _logmap0,
    "geo.expmap0": _expmap0,
    "geo.origin": lambda p, op, ins: Bound(0.0, radius=0.0),  # a constant
    "geo.mobius_add": _mobius_add,
    "geo.mobius_matvec": _mobius_matvec,
    "func.call": _call,
}
"""Op name -> rule (prover, op, operand bounds) -> result bound and radius. Unary
activations use their slope range (geomir.certify.SLOPES); the ball's maps their
curvature-aware factors (geomir.hyperbolic_bounds) at the operands' radii; an op without
a rule has no finite bound."""
_UNARY = frozenset(f"geo.{name}" for name in geo.UNARY_OPS)


def _chain(f: func.FuncOp, seed: Weights, transformed: bool = True) -> float | None:
    """The layered bound when ``f`` is a chain linear (bias) (act) ... linear (bias) from
    its only input, else None."""
    args = f.body.block.args
    ret = f.body.block.last_op
    if len(args) != 1 or not isinstance(ret, func.ReturnOp) or len(ret.operands) != 1:
        return None
    weights, slopes = [], []
    v, pending = ret.operands[0], None
    while v is not args[0]:
        owner = v.owner
        if isinstance(owner, geo.BiasOp):
            v = owner.operands[0]
        elif owner is not None and getattr(owner, "name", None) in _UNARY:
            rng = certify.SLOPES.get(owner.name.removeprefix("geo."))
            if rng is None or pending is not None or not weights:
                return None
            pending, v = rng, owner.operands[0]
        elif isinstance(owner, geo.LinearOp):
            w = _weight(owner.operands[1], seed, transformed)
            if w is None:
                return None
            if weights:
                slopes.append(pending or (1.0, 1.0))
            weights.append(w)
            pending, v = None, owner.operands[0]
        else:
            return None
    if not weights or pending is not None:
        return None
    return certify.layered_lipschitz_bound(weights[::-1], slopes[::-1])


# --- the pass ---------------------------------------------------------------------------------


def _lipschitz_text(c: contract.LipschitzAttr) -> str:
    radius = "" if math.isinf(c.radius_value) else f", radius = {c.radius_value:g}"
    return f"@lipschitz({c.bound_value:g}{radius})"


def _fail(f: func.FuncOp, c: contract.LipschitzAttr, proof: Proof, before: float | None = None,
          source: Weights = 0) -> ContractError:
    name = f.sym_name.data
    declared = c.bound_value
    what = _lipschitz_text(c)
    notes = []
    transforms = _transforms(f)
    if before is not None and before <= declared and transforms and proof.blocker is None:
        message = (f"{what} of model {name} held before the weight transforms "
                   f"(proved {before:.6g}) but not after {', '.join(transforms)}: the proved bound is "
                   f"{proof.bound:.6g}, {proof.bound / declared:.4g}x the declared {declared:g} "
                   f"(+{proof.bound - before:.3g}, {100 * (proof.bound / before - 1):+.2f}% over the bound before)")
        grown = [(norm - _norm_before(op, source), norm, op) for norm, op in proof.layers]
        if grown:
            change, norm, op = max(grown, key=lambda item: item[0])
            notes.append(Note(f"the layer whose spectral norm grew most: {norm - change:.4g} -> {norm:.4g} "
                              f"({', '.join(weight_transforms(op.operands[1].owner)) or 'unchanged'})", op_span(op)))
        return ContractError(message, op_span(f), notes)
    if proof.blocker is not None:
        message = (f"cannot prove {what} for model {name}: "
                   f"{proof.blocker.why}, so no finite bound follows")
        if proof.blocker.where is not None:
            notes.append(Note("here", op_span(proof.blocker.where)))
    else:
        message = (f"cannot prove {what} for model {name}: the proved bound is "
                   f"{proof.bound:.6g}, {proof.bound / declared:.3g}x the declared {declared:g}")
        if proof.layers:
            norm, op = max(proof.layers, key=lambda item: item[0])
            notes.append(Note(f"the layer that contributes most: spectral norm {norm:.4g} "
                              f"({_source_text(source)})", op_span(op)))
    return ContractError(message, op_span(f), notes)


def _transforms(f: func.FuncOp) -> list[str]:
    """The distinct weight transforms on the parameters ``f`` reads, in first-use order."""
    seen: dict[str, None] = {}
    for op in f.walk():
        if isinstance(op, geo.ParamOp):
            seen.update(dict.fromkeys(weight_transforms(op)))
    return list(seen)


def _norm_before(op: Operation, source: Weights) -> float:
    """The certified spectral norm of a linear op's weight without its weight transforms."""
    w = _weight(op.operands[1], source, transformed=False)
    return certify.spectral_norm_bound(w) if w is not None else 0.0


def _proved_before(f: func.FuncOp, declared: contract.LipschitzAttr, funcs: dict[str, func.FuncOp],
                   source: Weights) -> float | None:
    """The bound on ``f`` for this contract's radius before the weight transforms, when an
    earlier verify-contracts run recorded one (in ``proved``, or in
    ``proved_before_transforms`` where weight transforms moved it). The recorded number may
    come from a hand-written input, so it only says that there was an earlier proof: the
    bound is proved again, from the weights without their transforms."""
    recorded = False
    for name in (PROVED_ATTR_NAME, contract.STALE_ATTR_NAME):
        attr = f.attributes.get(name)
        recorded |= attr is not None and any(isinstance(c, contract.LipschitzAttr) and c.radius == declared.radius
                                             for c in attr.data)
    if not recorded:
        return None
    proof = _Prover(funcs, source, {f.sym_name.data: declared.radius_value}, transformed=False).prove(f.sym_name.data)
    return proof.bound if math.isfinite(proof.bound) else None


def lipschitz_contracts(module: builtin.ModuleOp, seed: Weights = 0) -> list[tuple[func.FuncOp, contract.LipschitzAttr, Proof]]:
    """(function, declared contract, proof) for each Lipschitz contract (each proved on its own
    input radius), without failing (geomir.contract_report's view of this pass). ``seed``:
    the seed of the weights, or a WeightFile of trained ones."""
    funcs = {f.sym_name.data: f for f in module.ops if isinstance(f, func.FuncOp)}
    provers: dict[tuple[str, float], _Prover] = {}
    out = []
    for name, f in funcs.items():
        if f.is_declaration:  # no body, no bound (verify-contracts refuses its contract)
            continue
        for c in contract.get_contracts(f):
            if isinstance(c, contract.LipschitzAttr):
                key = (name, c.radius_value)
                if key not in provers:
                    provers[key] = _Prover(funcs, seed, {name: c.radius_value})
                out.append((f, c, provers[key].prove(name)))
    return out


@register_pass
@dataclass(frozen=True)
class VerifyContracts(ModulePass):
    """Prove @lipschitz, @monotone and @equivariant contracts; record them in ``proved``."""

    name = "verify-contracts"

    weights: str = ""  # a trained weights file (geomir.weights_file); empty: the init of seed 0

    def apply(self, ctx: Context, op: builtin.ModuleOp) -> None:
        source: Weights = WeightFile(self.weights) if self.weights else 0
        if isinstance(source, WeightFile):  # every parameter, contracts or not
            check_weights_file(op, source)
        funcs = {f.sym_name.data: f for f in op.ops if isinstance(f, func.FuncOp)}
        for f in funcs.values():
            if contract.get_contracts(f):
                _check_bodies(f, funcs)
        proved: dict[func.FuncOp, list] = {}
        for f, c, proof in lipschitz_contracts(op, seed=source):
            if not proof.bound <= c.bound_value:
                raise _fail(f, c, proof, _proved_before(f, c, funcs, source), source)
            proved.setdefault(f, []).append(contract.LipschitzAttr(max(proof.bound, 1e-300), c.radius))
        for f in funcs.values():
            for c in contract.get_contracts(f):
                if isinstance(c, contract.MonotoneAttr):
                    _prove_monotone(f, c, funcs, source)
                    proved.setdefault(f, []).append(c)
                elif isinstance(c, contract.EquivariantAttr):
                    _prove_equivariant(f, c.group.data, funcs)
                    proved.setdefault(f, []).append(c)
        # This pass owns ``proved``: what it proved now replaces whatever the input said, and
        # a function without contracts keeps no claim at all (nor bounds "proved before
        # transforms": only a contract's failure message reads them).
        on = weights_label(source)
        for f in funcs.values():
            if f in proved:
                contract.set_proved(f, proved[f], checked=True, on=on)
            else:
                contract.set_proved(f, None, checked=False)
                f.attributes.pop(contract.STALE_ATTR_NAME, None)


def _check_bodies(f: func.FuncOp, funcs: dict[str, func.FuncOp]) -> None:
    """A ContractError when ``f`` (which declares contracts) or a function it calls, directly
    or through others, is a declaration without a body: there is nothing to prove them on."""
    if f.is_declaration:
        what = ", ".join(str(c) for c in contract.get_contracts(f))
        raise ContractError(f"@{f.sym_name.data} is a declaration without a body: its contract {what} cannot be "
                            "proved (give it a body or drop the contract)", op_span(f))
    seen = {f.sym_name.data}
    todo = [f]
    while todo:
        g = todo.pop()
        for call in g.walk():
            if not isinstance(call, func.CallOp):
                continue
            name = call.callee.string_value()
            callee = funcs.get(name)
            if callee is None or callee.is_declaration:
                raise ContractError(f"cannot prove the contracts of model {f.sym_name.data}: @{g.sym_name.data} "
                                    f"calls @{name}, which has no body in this module", op_span(call))
            if name not in seen:
                seen.add(name)
                todo.append(callee)


def _prove_monotone(f: func.FuncOp, c: contract.MonotoneAttr, funcs, source: Weights = 0) -> None:
    """Sign analysis (geomir.monotonicity) with the weights; raise if it fails."""
    holds, _, broken = monotonicity.monotone_in(f, funcs, lambda v: _weight(v, source), c.input_indices, c.direction.data)
    if holds:
        return
    given = input_names.input_names(f)
    names = ", ".join(given[i] or f"input {i}" for i in c.input_indices)
    what = f"@monotone({names}, {c.direction.data})"
    if broken is not None:
        message = f"cannot prove {what} for model {f.sym_name.data}: {broken.why}"
        notes = [Note(f"here ({_source_text(source)})", op_span(broken.op))]
    else:
        message = (f"cannot prove {what} for model {f.sym_name.data}: the output moves the "
                   f"other way in some coordinate")
        notes = []
    raise ContractError(message, op_span(f), notes)


def _prove_equivariant(f: func.FuncOp, group: str, funcs) -> None:
    """Equivariance by construction (geomir.equivariance); raise where it breaks."""
    holds, label, broken = equivariance.equivariant(f, funcs, group)
    if holds:
        return
    what = f"@equivariant({group})"
    if broken is not None:
        message = f"cannot prove {what} for model {f.sym_name.data}: {broken.why}"
        notes = [Note("here", op_span(broken.op))] if broken.op is not f else []
    else:
        want = equivariance.output_label(group, f.function_type.outputs.data[0])
        message = (f"cannot prove {what} for model {f.sym_name.data}: its output is {label} under "
                   f"{group} but must be {want}"
                   + (" (an output the group acts on must move with the inputs)" if want == equivariance.EQUI else ""))
        notes = []
    raise ContractError(message, op_span(f), notes)


# --- proofs read from the input -----------------------------------------------------------------


def recheck_proved(module: builtin.ModuleOp, seed: Weights = 0) -> list[str]:
    """Re-prove each ``proved`` entry that verify-contracts did not write in this process
    (one read from a .mlir input: contract.proved_is_checked) with the prover, on the
    weights of ``seed`` after their weight transforms: a Lipschitz entry stays when geomir
    proves a bound at most its constant on its radius, a monotone or equivariant entry when
    geomir proves the property; the others are dropped. The code generators emit only
    proofs geomir checked. Returns a note per dropped entry."""
    funcs = {f.sym_name.data: f for f in module.ops if isinstance(f, func.FuncOp)}
    notes = []
    for name, f in funcs.items():
        if contract.proved_is_checked(f):
            continue
        kept = []
        for c in f.attributes[PROVED_ATTR_NAME].data:
            why = _recheck(f, c, funcs, seed)
            if why is None:
                kept.append(c)
            else:
                notes.append(f"@{name}: dropped the claim proved = {c} read from the input: geomir does not prove it "
                             f"({why})")
        contract.set_proved(f, kept or None, checked=True, on=weights_label(seed))
    return notes


def weights_label(source: Weights) -> str | None:
    """What a function's ``proved_on`` says of the weights its proofs hold for: a weights
    file's path and the start of its SHA-256 (``"w.npz (sha256 1a2b...)"``), ``"seed N"``,
    or None for seed 0 (the default the generated code's comment names)."""
    if isinstance(source, WeightFile):
        import hashlib

        digest = hashlib.sha256(source.path.read_bytes()).hexdigest()[:16]
        return f"{source} (sha256 {digest})"
    return None if source == 0 else f"seed {source}"


def _recheck(f: func.FuncOp, c, funcs: dict[str, func.FuncOp], seed: Weights) -> str | None:
    """None when geomir proves entry ``c`` of ``f``'s ``proved``; else why not."""
    try:
        _check_bodies(f, funcs)
        if isinstance(c, contract.LipschitzAttr):
            proof = _Prover(funcs, seed, {f.sym_name.data: c.radius_value}).prove(f.sym_name.data)
            if proof.bound <= c.bound_value:
                return None
            if proof.blocker is not None:
                return f"no finite bound: {proof.blocker.why}"
            return f"the bound it proves is {proof.bound:.6g}"
        if isinstance(c, contract.MonotoneAttr):
            _prove_monotone(f, c, funcs, seed)
        elif isinstance(c, contract.EquivariantAttr):
            _prove_equivariant(f, c.group.data, funcs)
        return None
    except SourceError as err:  # ContractError: what the prover found, as verify-contracts would say it
        return err.message
