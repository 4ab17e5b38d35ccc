"""Random well-typed .geo programs, for property tests of the frontend and the IR.

``generate_program(random.Random(seed))`` is a deterministic generator: it declares
random manifolds, then models whose bodies are chains/DAGs of let-bindings built
*forward*: each step picks, from a table of operations, one applicable to the types of
values already in scope (layers with matching ``in -> out`` dims, activations and
arithmetic on vectors, the manifold maps on points/tangents of the same space, Möbius
ops on Poincaré points, the winding ops on path inputs (``path T[n]``), calls of
earlier models with arguments converted to their parameter types, ...). The model's result type is the type of the final value (possibly
after converting it to a target type that lets a contract or a derivative request fit),
and its annotations and derive requests are chosen among those the signature admits
(``frontends/dsl/contracts.py``, ``frontends/dsl/derive.py``).

``well_typed_programs()`` is the hypothesis strategy: it wraps the generator with
``st.randoms()`` so hypothesis drives (and shrinks) the random choices.

The generator keeps its own model of the type rules (``VType`` below) instead of
calling the type checker, so that a program the compiler rejects points at a
disagreement between the two.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

from hypothesis import strategies as st

from geomir.frontends.dsl.builtins import BUILTINS  # only to keep generated names off them

__all__ = [
    "GeneratedProgram",
    "listing",
    "without_annotations",
    "generate_program",
    "program_features",
    "well_typed_programs",
    "generated_programs",
]

# ----------------------------------------------------------------------------------------
# The generator's model of .geo types
# ----------------------------------------------------------------------------------------

KINDS = ("euclidean", "poincare", "lorentz", "sphere", "torus")
UNARY = ("tanh", "sigmoid", "relu", "softplus", "exp", "log", "sqrt", "sin", "cos")
MOBIUS_ACTS = ("mobius_tanh", "mobius_sigmoid", "mobius_relu")
PATH_OPS = ("unwrap", "winding", "winding_margin", "endpoint")
DERIVE_OPS = ("jvp", "vjp", "hvp", "grad", "directional", "laplacian", "biharmonic")
GROUPS = ("so2", "perm", "torus_translation", "ball_rotation")

# Names never used for values, params, models or manifolds: keywords of the grammar,
# the keyword-ish identifiers of annotations and flags, and every builtin.
_RESERVED = {
    "manifold", "model", "let", "return", "derive", "tangent", "path", "R", "true", "false",
    "increasing", "decreasing", "radians", "turns", "wrt", "order", "bias", "c", "units",
    *GROUPS, *KINDS, *DERIVE_OPS,
}


@dataclass(frozen=True)
class Geometry:
    """A manifold up to renaming: two declarations with equal geometry are one type."""

    kind: str
    c: float | None = None
    units: str | None = None

    @property
    def min_dim(self) -> int:
        return 2 if self.kind in ("sphere", "lorentz") else 1


EUCLID = Geometry("euclidean")


@dataclass(frozen=True)
class VType:
    """A point, tangent or path type: geometry, dimension, element type. A path (an input
    only, on a torus) is taken by the winding ops alone: :meth:`_ModelGen.values` leaves
    paths out, :meth:`_ModelGen.paths` lists them."""

    geom: Geometry
    dim: int
    dtype: str
    tangent: bool = False
    path: bool = False

    @property
    def is_vector(self) -> bool:
        return not self.path and (self.tangent or self.geom.kind == "euclidean")

    @property
    def is_point(self) -> bool:
        return not self.tangent and not self.path

    @property
    def is_rpoint(self) -> bool:
        """A Euclidean point (what contracts call "Euclidean")."""
        return self.geom.kind == "euclidean" and not self.tangent

    @property
    def is_ball_point(self) -> bool:
        return self.geom.kind == "poincare" and not self.tangent

    def as_tangent(self) -> VType:
        return VType(self.geom, self.dim, self.dtype, True)

    def as_point(self) -> VType:
        return VType(self.geom, self.dim, self.dtype, False)  # also: a point of a path

    def with_dim(self, dim: int) -> VType:
        return VType(self.geom, dim, self.dtype, self.tangent)


def rtype(dim: int, dtype: str) -> VType:
    return VType(EUCLID, dim, dtype)


@dataclass(frozen=True)
class Num:
    """A compile-time number (folded by the type checker)."""

    value: float
    is_int: bool = False


# Precedences, as in geo.lark: sum < product < unary < atom.
SUM, PRODUCT, UNARY_PREC, ATOM = 1, 2, 3, 4


@dataclass
class Val:
    """An expression available in a model body: a let-bound name or an inline expression."""

    text: str
    type: VType | Num
    prec: int = ATOM
    refs: frozenset = frozenset()
    bound: bool = False


@dataclass
class ModelInfo:
    name: str
    params: list[tuple[str, VType]]
    result: VType

    @property
    def has_path(self) -> bool:
        """A model with a path input: no contracts, no derive requests (both rejected)."""
        return any(t.path for _, t in self.params)


@dataclass
class GeneratedProgram:
    source: str
    models: list[ModelInfo] = field(default_factory=list)
    manifolds: list[tuple[str, Geometry]] = field(default_factory=list)

    def __str__(self) -> str:  # hypothesis shows this on failure
        return self.source


def program_features(source: str) -> set[str]:
    """What a program's text uses: called names (builtins, models, derive ops, manifold
    kinds), ``@annotation`` names and their groups, element types, ``tangent``, ..."""
    feats = set(re.findall(r"\b([A-Za-z_][A-Za-z0-9_]*)\s*\(", source))
    feats |= {"@" + n for n in re.findall(r"@([a-z_]+)", source)}
    feats |= {f"group:{g}" for g in re.findall(r"@equivariant\((\w+)\)", source)}
    feats |= {f"monotone:{d}" for d in re.findall(r"@monotone\([^)]*\b(increasing|decreasing)\)", source)}
    feats |= {f"units:{u}" for u in re.findall(r"units\s*=\s*(\w+)", source)}
    feats |= {f"dtype:{d}" for d in re.findall(r",\s*(f16|bf16|f32|f64)\s*\]", source)}
    if re.search(r"\btangent\b", source):
        feats.add("tangent")
    if re.search(r"\bpath\b", source):
        feats.add("path")
    if "bias = false" in source:
        feats.add("bias=false")
    return feats


# ----------------------------------------------------------------------------------------
# Numbers
# ----------------------------------------------------------------------------------------


def _fmt(x: float) -> str:
    return f"{x:.3g}"


# Finite extremes of f64 (and zeros) as factors/exponents: the IR must print and parse
# them back exactly. Never used where they could fold to inf/nan.
_EXTREMES = [("1e300", 1e300), ("1e-300", 1e-300), ("5e-324", 5e-324), ("1.7976931348623157e308", 1.7976931348623157e308),
             ("0", 0.0), ("0.0", 0.0)]


def _safe(x: float) -> bool:
    """Whether ``x`` may be divided by, or multiplied with another number, staying finite."""
    return 1e-6 < abs(x) < 1e6


def _number(rng: random.Random, *, nonzero: bool = False, positive: bool = False, extreme: bool = False) -> Val:
    """A number literal or a small constant expression, with its folded value."""
    r = rng.random()
    if extreme and rng.random() < 0.05:
        text, v = rng.choice(_EXTREMES)
        val = Val(text, Num(v, "." not in text and "e" not in text))
    elif r < 0.3:
        v = rng.choice([0.5, 2.0, 0.1, 1.5, 3.0, 0.25])
        val = Val(repr(v), Num(v))
    elif r < 0.45:
        i = rng.randint(1, 4)
        val = Val(str(i), Num(float(i), True))
    elif r < 0.6:
        text = rng.choice(["1e-2", "2.5E+1", ".5", "3.", "1e1", "0.75"])
        val = Val(text, Num(float(text)))
    elif r < 0.75:
        v = float(_fmt(rng.uniform(0.01, 5.0)))
        val = Val(_fmt(v), Num(v))
    else:  # a constant expression, folded by the checker
        a, b = rng.randint(1, 6), rng.randint(1, 6)
        op = rng.choice("+*/")
        value = {"+": a + b, "*": a * b, "/": a / b}[op]
        val = Val(f"{a} {op} {b}", Num(float(value), op != "/"), SUM if op == "+" else PRODUCT)
    if not positive and not nonzero and rng.random() < 0.15:
        val = Val(f"-{_wrap(val, UNARY_PREC)}", Num(-val.type.value, val.type.is_int), UNARY_PREC)
    elif not positive and nonzero and rng.random() < 0.1:
        val = Val(f"-{_wrap(val, UNARY_PREC)}", Num(-val.type.value, val.type.is_int), UNARY_PREC)
    return val


def _wrap(v: Val, need: int) -> str:
    """The text of ``v`` as an operand that needs precedence ``need``."""
    return f"({v.text})" if v.prec < need else v.text


# ----------------------------------------------------------------------------------------
# Programs
# ----------------------------------------------------------------------------------------

_MANIFOLD_NAMES = {
    "euclidean": ["E", "Flat", "Rn"],
    "poincare": ["H", "B", "Ball", "P"],
    "lorentz": ["L", "Hyp", "Lor"],
    "sphere": ["S", "Sph", "Sn"],
    "torus": ["T", "Tor", "Ang"],
}
_MODEL_NAMES = ["Enc", "Dec", "Net", "Block", "Head", "Score", "Step", "F", "G", "Readout", "Mix"]
# Names with digits and underscores stress the IR printer's SSA name uniquing (h, h_1, ...);
# params v, w, v_ stress the naming of a derived function's extra input.
_PARAM_NAMES = ["x", "y", "z", "v", "w", "p", "q", "a", "b", "theta", "dose", "r", "u", "v_", "x_1"]
_LET_NAMES = ["h", "s", "t", "g", "m", "feat", "out", "tmp", "e", "d", "h2", "acc", "h_1", "x_0", "_t", "v_"]
_NUM_NAMES = ["k", "alpha", "beta", "gain"]


class _ProgramGen:
    def __init__(self, rng: random.Random):
        self.rng = rng
        self.items: list[str] = []
        self.manifolds: list[tuple[str, Geometry]] = []
        self.models: list[ModelInfo] = []
        self.top_names: set[str] = set()

    # -- names
    def fresh_top(self, base: str) -> str:
        name, i = base, 0
        while name in self.top_names or name in _RESERVED or _is_builtin(name):
            i += 1
            name = f"{base}{i}"
        self.top_names.add(name)
        return name

    def geometries(self) -> list[Geometry]:
        geoms = [EUCLID]
        for _, g in self.manifolds:
            if g not in geoms:
                geoms.append(g)
        return geoms

    def type_text(self, t: VType) -> str:
        names = [n for n, g in self.manifolds if g == t.geom]
        if t.geom == EUCLID:
            names = ["R"] * 3 + names
        name = self.rng.choice(names)
        dtype = ""
        if t.dtype != "f32" or self.rng.random() < 0.1:
            dtype = f", {t.dtype}"
        prefix = "tangent " if t.tangent else "path " if t.path else ""
        return f"{prefix}{name}[{t.dim}{dtype}]"

    # -- manifolds
    def declare_manifold(self, kind: str) -> None:
        rng = self.rng
        same_kind = [g for _, g in self.manifolds if g.kind == kind]
        name = self.fresh_top(rng.choice(_MANIFOLD_NAMES[kind]))
        if kind in ("poincare", "lorentz"):
            if same_kind and rng.random() < 0.4:  # same geometry, another name: same type
                geom = rng.choice(same_kind)
                args = f"c = {geom.c!r}" if geom.c != 1.0 or rng.random() < 0.5 else ""
            else:
                text, c = rng.choice(
                    [("1.0", 1.0), ("0.5", 0.5), ("2", 2.0), ("1 / 4", 0.25), ("1e-2", 0.01), (None, None), ("", 1.0)]
                )
                if text is None:
                    c = float(_fmt(rng.uniform(0.05, 5.0)))
                    text = _fmt(c)
                geom = Geometry(kind, c)
                args = f"c = {text}" if text else ""
        elif kind == "torus":
            units = rng.choice(["radians", "turns"])
            if same_kind and rng.random() < 0.4:
                units = rng.choice(same_kind).units
            geom = Geometry(kind, units=units)
            args = f"units = {units}" if units == "turns" or rng.random() < 0.6 else ""
        else:
            geom = Geometry(kind)
            args = ""
        if args and rng.random() < 0.05:
            args += ","
        self.manifolds.append((name, geom))
        self.items.append(f"manifold {name} = {kind}({args})")

    # -- derive requests
    def derive(self, model: ModelInfo) -> None:
        rng = self.rng
        out = model.result
        options = ["jvp", "vjp", "directional"]
        euclid_inputs = [i for i, (_, t) in enumerate(model.params) if t.is_rpoint]
        if euclid_inputs and out.is_rpoint:
            options += ["laplacian", "biharmonic"]
            if out.dim == 1:
                options += ["hvp", "hvp", "grad"]
        op = rng.choice(options)
        candidates = euclid_inputs if op in ("laplacian", "biharmonic", "hvp", "grad") else list(range(len(model.params)))
        wrt = rng.choice(candidates)
        kwargs = []
        if wrt != 0 or rng.random() < 0.3:
            kwargs.append(f"wrt = {model.params[wrt][0]}")
        if op == "directional":
            order = rng.randint(1, 8)
            text = str(order)
            if order >= 2 and rng.random() < 0.2:
                a = rng.randint(1, order - 1)
                text = f"{a} + {order - a}"
            kwargs.append(f"order = {text}")
        rng.shuffle(kwargs)
        name = self.fresh_top(f"{op[:3]}_{model.name.lower()}")
        args = ", ".join([model.name] + kwargs) + ("," if rng.random() < 0.05 else "")
        self.items.append(f"derive {name} = {op}({args})")

    def run(self) -> GeneratedProgram:
        rng = self.rng
        kinds = [rng.choice(KINDS[1:]) for _ in range(rng.randint(0, 4))]
        if rng.random() < 0.2:
            kinds.append("euclidean")
        rng.shuffle(kinds)
        n_models = rng.randint(1, 5)
        for i in range(n_models):
            take = len(kinds) if i == 0 and rng.random() < 0.6 else rng.randint(0, len(kinds))
            for _ in range(take):
                self.declare_manifold(kinds.pop())
            if rng.random() < 0.15:
                self.items.append(rng.choice(["// a comment", "# another comment", ""]))
            model = _ModelGen(self, self.fresh_top(rng.choice(_MODEL_NAMES))).run()
            self.models.append(model)
            for _ in range(rng.choice([0, 0, 1, 1, 2, 3])):
                derivable = [m for m in self.models[-2:] if not m.has_path]
                if derivable:
                    self.derive(rng.choice(derivable))
        for kind in kinds:  # declared after every model: unused, still legal
            self.declare_manifold(kind)
        source = "\n\n".join(self.items) + "\n"
        return GeneratedProgram(source, self.models, self.manifolds)


def _is_builtin(name: str) -> bool:
    return name in BUILTINS or name in UNARY or name in MOBIUS_ACTS


class _ModelGen:
    def __init__(self, prog: _ProgramGen, name: str):
        self.prog = prog
        self.rng = prog.rng
        self.name = name
        self.pool: list[Val] = []
        self.lines: list[str] = []
        self.bound: set[str] = set()
        self.counter = 0
        self.dtype = self.rng.choices(["f32", "f64", "f16", "bf16"], [0.6, 0.3, 0.05, 0.05])[0]

    # -- parameters
    def _random_type(self, geoms: list[Geometry], point_only: bool = False) -> VType:
        rng = self.rng
        g = rng.choice(geoms)
        dim = rng.randint(g.min_dim, 6)
        tangent = not point_only and rng.random() < 0.25
        dtype = self.dtype if rng.random() < 0.9 else rng.choice(["f32", "f64"])
        return VType(g, dim, dtype, tangent)

    def _params(self) -> list[tuple[str, VType]]:
        rng = self.rng
        geoms = self.prog.geometries()
        balls = [g for g in geoms if g.kind == "poincare"]
        tori = [g for g in geoms if g.kind == "torus"]
        flavors = ["euclid", "euclid_even", "mixed", "mixed"]
        if balls:
            flavors += ["ball", "ball"]
        if tori:
            flavors += ["torus", "path"]
        if self.prog.models:
            flavors += ["copy", "copy"]
        flavor = rng.choice(flavors)
        n = rng.randint(1, 3)
        if flavor == "euclid":
            dim = rng.randint(1, 6)
            types = [rtype(dim if rng.random() < 0.6 else rng.randint(1, 6), self.dtype) for _ in range(n)]
        elif flavor == "euclid_even":
            types = [rtype(rng.choice([2, 4, 6]), self.dtype) for _ in range(n)]
        elif flavor == "ball":
            g = rng.choice(balls)
            types = [VType(g, rng.randint(1, 6), self.dtype) for _ in range(n)]
        elif flavor == "torus":
            types = [VType(rng.choice(tori), rng.randint(1, 6), self.dtype)]
            types += [self._random_type(geoms) for _ in range(n - 1)]
        elif flavor == "path":  # a path on a torus (paths are inputs only), and other inputs
            types = [VType(rng.choice(tori), rng.randint(1, 6), self.dtype, path=True)]
            types += [self._random_type(geoms) for _ in range(n - 1)]
        elif flavor == "copy":
            callee = rng.choice(self.prog.models)
            types = [t for _, t in callee.params]
            self.dtype = types[0].dtype
            if rng.random() < 0.5:
                types.append(self._random_type(geoms))
        else:
            types = [self._random_type(geoms) for _ in range(n)]
        rng.shuffle(types)
        names = rng.sample(_PARAM_NAMES, len(types))
        return list(zip(names, types))

    # -- building blocks
    def dims(self, n: int, m: int) -> str:
        """A layer shape ``n -> m`` (rarely with leading zeros, which are still decimal)."""
        if self.rng.random() < 0.03:
            return f"0{n} -> 00{m}"
        return f"{n} -> {m}"

    def call(self, fn: str, args: list[Val], extra: str = "", result: VType | None = None) -> Val:
        trailing = "," if self.rng.random() < 0.03 else ""
        text = f"{fn}({', '.join([a.text for a in args] + ([extra] if extra else []))}{trailing})"
        refs = frozenset().union(*(a.refs for a in args)) if args else frozenset()
        return Val(text, result, ATOM, refs)

    def binop(self, op: str, lhs: Val, rhs: Val, result) -> Val:
        prec = SUM if op in "+-" else PRODUCT
        if self.rng.random() < 0.1:  # redundant parentheses
            lhs = Val(f"({lhs.text})", lhs.type, ATOM, lhs.refs)
        return Val(f"{_wrap(lhs, prec)} {op} {_wrap(rhs, prec + 1)}", result, prec, lhs.refs | rhs.refs)

    def values(self, pred) -> list[Val]:
        """Points and vectors in scope satisfying ``pred`` (never paths: see :meth:`paths`)."""
        return [v for v in self.pool if isinstance(v.type, VType) and not v.type.path and pred(v.type)]

    def paths(self, pred=lambda t: True) -> list[Val]:
        """The path inputs in scope satisfying ``pred``."""
        return [v for v in self.pool if isinstance(v.type, VType) and v.type.path and pred(v.type)]

    def path_op(self) -> Val:
        """One of the winding ops on a path in scope."""
        p = self.rng.choice(self.paths())
        fn = self.rng.choice(PATH_OPS)
        t = p.type
        result = {"unwrap": rtype(t.dim, t.dtype), "winding": rtype(t.dim, t.dtype),
                  "winding_margin": rtype(1, t.dtype), "endpoint": VType(t.geom, t.dim, t.dtype)}[fn]
        return self.call(fn, [p], result=result)

    def numbers(self) -> list[Val]:
        return [v for v in self.pool if isinstance(v.type, Num)]

    def number(self, *, nonzero: bool = False, extreme: bool = True) -> Val:
        """A number for a factor or exponent; ``nonzero``: a divisor (kept away from 0 and inf);
        ``extreme=False``: no f64 extremes (an exponent: x^1e308 has derivatives inf * 0,
        whose float value depends on the order of the products)."""
        nums = [v for v in self.numbers() if (not nonzero and extreme) or _safe(v.type.value)]
        if nums and self.rng.random() < 0.3:
            return self.rng.choice(nums)
        return _number(self.rng, nonzero=nonzero, extreme=extreme and not nonzero)

    def _out_dim(self, t: VType) -> int:
        """An output dimension for a layer on ``t`` that keeps the type valid.

        A tangent of the sphere or the hyperboloid keeps their minimum dimension 2 (the
        docs' rule; the checker lets ``linear(v, 3 -> 1)`` through on ``tangent S[3]`` and
        the IR builder then fails to verify ``tangent S[1]``: a known frontend bug).
        """
        low = 1 if t.geom.kind == "euclidean" else t.geom.min_dim
        return self.rng.choice([t.dim, self.rng.randint(low, 8)])

    def convert(self, v: Val, target: VType) -> Val | None:
        """An expression of type ``target`` computed from ``v`` (same element type), or None."""
        a = v.type
        if not isinstance(a, VType) or a.dtype != target.dtype:
            return None
        rng = self.rng
        if target.is_rpoint and a.geom != EUCLID:
            v = self.call("coords", [v], result=rtype(a.dim, a.dtype))
            a = v.type
        if a.geom != target.geom:
            return None
        if a == target:
            return v
        if a.is_ball_point and target.is_ball_point and rng.random() < 0.5:
            fn = rng.choice(["mobius_linear", "mobius_matvec"])
            return self.call(fn, [v], self.dims(a.dim, target.dim), result=target)
        if not a.is_vector:
            v = self.call("logmap0", [v], result=a.as_tangent())
            a = v.type
        if a.dim != target.dim:
            v = self.call("linear", [v], self.dims(a.dim, target.dim), result=a.with_dim(target.dim))
            a = v.type
        if a.tangent and not target.tangent:
            v = self.call("expmap0", [v], result=a.as_point())
        elif not a.tangent and target.tangent:  # a Euclidean point, wanted as a tangent of R
            v = self.call("logmap0", [v], result=a.as_tangent())
        return v

    def produce(self, target: VType) -> Val | None:
        """A value of type ``target``: one in scope, or one converted from a value in scope."""
        rng = self.rng
        if target.path:  # paths are inputs: only one in scope will do
            exact = self.paths(lambda t: t == target)
            return rng.choice(exact) if exact else None
        exact = self.values(lambda t: t == target)
        if exact and rng.random() < 0.8:
            return rng.choice(exact)
        sources = self.values(
            lambda t: t.dtype == target.dtype and (t.geom == target.geom or target.is_rpoint)
        )
        if target == rtype(1, target.dtype) and rng.random() < 0.3:
            points = self.values(lambda t: t.is_point and t.dtype == target.dtype)
            if points:
                p = rng.choice(points)
                return self.call("dist", [p, rng.choice(self.values(lambda t: t == p.type))], result=target)
        if not sources:
            return rng.choice(exact) if exact else None
        return self.convert(rng.choice(sources), target)

    def can_produce(self, target: VType) -> bool:
        if target.path:
            return bool(self.paths(lambda t: t == target))
        return bool(
            self.values(lambda t: t.dtype == target.dtype and (t.geom == target.geom or target.is_rpoint))
        )

    # -- one step of the body: an operation applicable to what is in scope
    def step(self) -> Val | None:
        rng = self.rng
        vectors = self.values(lambda t: t.is_vector)
        points = self.values(lambda t: t.is_point)
        tangents = self.values(lambda t: t.tangent)
        balls = self.values(lambda t: t.is_ball_point)
        callees = [m for m in self.prog.models if all(self.can_produce(t) for _, t in m.params)]
        kinds = []
        if vectors:
            kinds += ["unary", "unary", "unary", "neg", "pow", "scale", "numop", "linear", "linear", "binop", "binop"]
        if points:
            kinds += ["expmap", "logmap", "logmap0", "dist", "proj", "parallel_transport", "holonomy"]
        if tangents:
            kinds += ["expmap0"]
        if balls:
            kinds += ["mobius_add", "mobius_scalar", "mobius_matvec", "mobius_linear", "mobius_act"] * 2
        if callees:
            kinds += ["call", "call"]
        if self.paths():
            kinds += ["path_op", "path_op", "path_op"]
        kinds += ["coords", "numlet"] if self.values(lambda t: True) else ["numlet"]
        kind = rng.choice(kinds)

        if kind == "unary":
            v = rng.choice(vectors)
            return self.call(rng.choice(UNARY), [v], result=v.type)
        if kind == "neg":
            v = rng.choice(vectors)
            return Val(f"-{_wrap(v, UNARY_PREC)}", v.type, UNARY_PREC, v.refs)
        if kind in ("pow", "scale"):
            v = rng.choice(vectors)
            return self.call(kind, [v, self.number(extreme=kind == "scale")], result=v.type)
        if kind == "numop":
            v = rng.choice(vectors)
            form = rng.choice(["k*v", "v*k", "v/k"])
            if form == "v/k":
                return self.binop("/", v, self.number(nonzero=True), v.type)
            k = self.number()
            return self.binop("*", k, v, v.type) if form == "k*v" else self.binop("*", v, k, v.type)
        if kind == "linear":
            v = rng.choice(vectors)
            t = v.type
            out = self._out_dim(t)
            extra = self.dims(t.dim, out)
            if rng.random() < 0.15:  # a declared weight: linear(x, param(out, in))
                dtype = "" if t.dtype == "f32" else f", dtype = {t.dtype}"
                return self.call("linear", [v], f"param({out}, {t.dim}{dtype})", result=t.with_dim(out))
            if rng.random() < 0.3:
                extra += f", bias = {rng.choice(['true', 'false'])}"
            return self.call("linear", [v], extra, result=t.with_dim(out))
        if kind == "binop":
            a = rng.choice(vectors)
            b = a if rng.random() < 0.15 else self.produce(a.type)
            if b is None:
                return None
            if rng.random() < 0.5:
                a, b = b, a
            return self.binop(rng.choice("+-*/"), a, b, a.type)
        if kind == "expmap":
            x = rng.choice(points)
            v = self.produce(x.type.as_tangent())
            return None if v is None else self.call("expmap", [x, v], result=x.type)
        if kind in ("logmap", "dist"):
            x = rng.choice(points)
            y = self.produce(x.type) or x
            result = x.type.as_tangent() if kind == "logmap" else rtype(1, x.type.dtype)
            return self.call(kind, [x, y], result=result)
        if kind == "logmap0":
            x = rng.choice(points)
            return self.call("logmap0", [x], result=x.type.as_tangent())
        if kind == "proj":
            x = rng.choice(points)
            return self.call("proj", [x], result=x.type)
        if kind == "parallel_transport":
            x = rng.choice(points)
            y = self.produce(x.type) or x
            v = self.produce(x.type.as_tangent())
            return None if v is None else self.call(kind, [x, y, v], result=x.type.as_tangent())
        if kind == "holonomy":
            x = rng.choice(points)
            loop = [x] + [self.produce(x.type) or x for _ in range(rng.choice([2, 3]))]
            v = self.produce(x.type.as_tangent())
            if v is None:
                return None
            intrinsic = x.type.dim - (1 if x.type.geom.kind in ("sphere", "lorentz") else 0)
            if intrinsic == 2 and rng.random() < 0.5:
                return self.call("holonomy_angle", [v, *loop], result=rtype(1, x.type.dtype))
            return self.call("holonomy", [v, *loop], result=x.type.as_tangent())
        if kind == "expmap0":
            v = rng.choice(tangents)
            return self.call("expmap0", [v], result=v.type.as_point())
        if kind == "coords":
            v = rng.choice(self.values(lambda t: True))
            return self.call("coords", [v], result=rtype(v.type.dim, v.type.dtype))
        if kind == "mobius_add":
            x = rng.choice(balls)
            y = self.produce(x.type) or x
            return self.call(kind, [x, y], result=x.type)
        if kind == "mobius_scalar":
            x = rng.choice(balls)
            r = self.produce(rtype(1, x.type.dtype))
            return None if r is None else self.call(kind, [r, x], result=x.type)
        if kind in ("mobius_matvec", "mobius_linear"):
            x = rng.choice(balls)
            out = self._out_dim(x.type)
            if kind == "mobius_matvec" and rng.random() < 0.2:  # mobius_matvec(param(out, in), x)
                dtype = "" if x.type.dtype == "f32" else f", dtype = {x.type.dtype}"
                weight = Val(f"param({out}, {x.type.dim}{dtype})", x.type, ATOM)
                return self.call(kind, [weight, x], result=x.type.with_dim(out))
            extra = self.dims(x.type.dim, out)
            if kind == "mobius_linear" and rng.random() < 0.3:
                extra += f", bias = {rng.choice(['true', 'false'])}"
            return self.call(kind, [x], extra, result=x.type.with_dim(out))
        if kind == "mobius_act":
            x = rng.choice(balls)
            return self.call(rng.choice(MOBIUS_ACTS), [x], result=x.type)
        if kind == "call":
            m = rng.choice(callees)
            args = [self.produce(t) for _, t in m.params]
            if any(a is None for a in args):
                return None
            return self.call(m.name, args, result=m.result)
        if kind == "path_op":
            return self.path_op()
        if kind == "numlet":
            k = _number(self.rng, extreme=True)
            safe = [n for n in self.numbers() if _safe(n.type.value)]
            if rng.random() < 0.3 and safe and _safe(k.type.value):
                other = rng.choice(safe)
                k = self.binop("*", other, k, Num(other.type.value * k.type.value))
            return k
        raise AssertionError(kind)

    # -- binding
    def bind(self, v: Val) -> Val:
        rng = self.rng
        is_num = isinstance(v.type, Num)
        shadowable = [n for n in sorted(self.bound) if n not in v.refs or rng.random() < 0.5]
        if shadowable and not is_num and rng.random() < 0.25:  # a number never hides the last value
            name = rng.choice(shadowable)
        else:
            base = rng.choice(_NUM_NAMES if is_num else _LET_NAMES)
            name = base
            while name in self.bound or name in self.prog.top_names or name in _RESERVED:
                self.counter += 1
                name = f"{base}{self.counter}"
        # The new binding hides the old value and every inline expression that mentions it.
        self.pool = [p for p in self.pool if name not in p.refs]
        comment = rng.choices(["", "  // note", "  # note"], [0.9, 0.05, 0.05])[0]
        self.lines.append(f"  let {name} = {v.text}{comment}")
        self.bound.add(name)
        new = Val(name, v.type, ATOM, frozenset({name}), bound=True)
        self.pool.append(new)
        return new

    def run(self) -> ModelInfo:
        rng = self.rng
        params = self._params()
        for name, t in params:
            self.pool.append(Val(name, t, ATOM, frozenset({name}), bound=True))
            self.bound.add(name)
        last: Val | None = None
        for _ in range(rng.randint(0, 9)):
            v = self.step()
            if v is None:
                continue
            if isinstance(v.type, Num):
                self.bind(v)
                continue
            if len(v.text) > 70 or rng.random() < 0.65:
                v = self.bind(v)
            else:
                self.pool.append(v)
            last = v
        if last is None or last not in self.pool:
            if not self.values(lambda t: True):  # only path inputs: read one
                self.pool.append(self.path_op())
            last = rng.choice(self.values(lambda t: True))
        result = self._finish(last, params)
        rt = result.type
        annotations = self._annotations(params, rt)
        sig = ", ".join(f"{n}: {self.prog.type_text(t)}" for n, t in params)
        if rng.random() < 0.1 and params:
            sig += ","
        head = annotations + [f"model {self.name}({sig}) -> {self.prog.type_text(rt)} {{"]
        body = self.lines + [f"  return {result.text}", "}"]
        self.prog.items.append("\n".join(head + body))
        return ModelInfo(self.name, params, rt)

    def _finish(self, last: Val, params) -> Val:
        """The returned value: ``last``, or ``last`` converted to a type that fits more
        contracts and derivative requests."""
        rng = self.rng
        if rng.random() < 0.45:
            return last
        dtype = last.type.dtype
        first = params[0][1]
        targets = [rtype(1, dtype), rtype(rng.randint(1, 6), dtype)]
        if first.dtype == dtype:
            targets += [first if not first.path else first.as_point(), rtype(first.dim, dtype)]
        target = rng.choice(targets)
        return self.convert(last, target) or last

    def _annotations(self, params, out: VType) -> list[str]:
        rng = self.rng
        inputs = [t for _, t in params]
        found: list[str] = []
        if any(t.path for t in inputs):
            return found  # contracts are not checked on models with path inputs
        if rng.random() < 0.3:
            n = _number(rng, positive=True)
            found.append(f"@lipschitz({n.text})")
        # Each group's rule as in frontends/dsl/contracts.py, intersected with the IR-level
        # rule (geomir.dialects.contract.signature_problem), so the program is right by both:
        # groups acting on every input; torus/ball outputs are points, not tangents.
        groups = []
        euclid_in = all(t.is_rpoint for t in inputs)
        if euclid_in and all(t.dim % 2 == 0 for t in inputs) and out.is_rpoint and (out.dim % 2 == 0 or out.dim == 1):
            groups.append("so2")
        # perm, torus_translation and ball_rotation act by one element on all the inputs
        # they act on, which then need one dimension
        one_dim = lambda ts: len({t.dim for t in ts}) <= 1  # noqa: E731
        if euclid_in and one_dim(inputs) and out.is_rpoint and (out.dim == inputs[0].dim or out.dim == 1):
            groups.append("perm")
        tori = [t for t in inputs if t.geom.kind == "torus" and t.is_point]
        if tori and one_dim(tori) and ((out.geom.kind == "torus" and out.is_point) or out.is_rpoint):
            groups.append("torus_translation")
        if all(t.is_ball_point for t in inputs) and one_dim(inputs) and (
                out.is_ball_point or (out.is_rpoint and out.dim == 1)):
            groups.append("ball_rotation")
        for g in groups:
            if rng.random() < 0.6:
                found.append(f"@equivariant({g})")
        monotone = [n for n, t in params if t.is_rpoint]
        if monotone and out.is_rpoint and rng.random() < 0.5:
            names = rng.sample(monotone, rng.randint(1, len(monotone)))
            found.append(f"@monotone({', '.join(names)}, {rng.choice(['increasing', 'decreasing'])})")
        rng.shuffle(found)
        return found


def generate_program(rng: random.Random) -> GeneratedProgram:
    """A random well-typed .geo program, fully determined by ``rng``'s state."""
    return _ProgramGen(rng).run()


def generated_programs() -> st.SearchStrategy[GeneratedProgram]:
    """Strategy of :class:`GeneratedProgram` (source text plus the models' signatures)."""
    return st.randoms(use_true_random=False).map(generate_program)


def well_typed_programs() -> st.SearchStrategy[str]:
    """Strategy of random well-typed .geo programs, as source text."""
    return generated_programs().map(lambda p: p.source)


def without_annotations(source: str) -> str:
    """The program without its contract annotations (the ``@...`` lines)."""
    return re.sub(r"(?m)^\s*@[^\n]*\n", "", source)


def listing(source: str) -> str:
    """The program with line numbers, for a failure message."""
    return "--- generated.geo ---\n" + "\n".join(f"{i:3}| {line}" for i, line in enumerate(source.splitlines(), 1))
