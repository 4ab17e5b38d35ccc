"""The built-in operations of .geo: one row per primitive, typing rule beside IR rule.

Each :class:`Builtin` names its positional parameters (arity is checked before ``check``
runs), whether it declares parameters with ``in -> out`` (a layer), and its keywords.
``check(site)`` returns the result type (raising located errors through ``site``);
``lower(lw, call, operands)`` emits the IR and returns the result value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from xdsl.dialects.builtin import ArrayAttr, StringAttr

from geomir.backends.common import weights
from geomir.dialects import geo

from . import ast
from .types import ValueType, WeightType, check_dim

if TYPE_CHECKING:  # pragma: no cover
    from .irgen import Lowerer
    from .typecheck import CallSite


@dataclass(frozen=True)
class Builtin:
    name: str
    params: tuple[str, ...]
    check: Callable[["CallSite"], ValueType]
    lower: Callable[["Lowerer", object, list], object]
    doc: str
    layer: bool = False
    keywords: tuple[str, ...] = ()
    variadic: bool = False  # the last positional parameter repeats (one or more times)

    def param_name(self, i: int) -> str:
        """The name of positional argument ``i`` (repeats of a variadic one are numbered)."""
        if i < len(self.params) - 1 or not self.variadic:
            return self.params[i]
        return f"{self.params[-1]}{i - len(self.params) + 2}" if i >= len(self.params) else self.params[-1]

    def arity_ok(self, n: int) -> bool:
        return n >= len(self.params) if self.variadic else n == len(self.params)

    @property
    def signature(self) -> str:
        parts = list(self.params)
        if self.variadic:
            parts.append("...")
        if self.layer:
            parts.append("in -> out")
        parts += [f"{k} = ..." for k in self.keywords]
        return f"{self.name}({', '.join(parts)})"


BUILTINS: dict[str, Builtin] = {}
EXPLICIT_WEIGHT: dict[str, Builtin] = {}
"""The forms of layer builtins that take a declared weight (``let W = param(m, n)``)
instead of declaring their own: the checker picks them when a weight is passed."""


def _register(b: Builtin) -> None:
    BUILTINS[b.name] = b


# --- elementwise on vectors ---------------------------------------------------------

_UNARY_DOCS = {
    "neg": "-x",
    "tanh": "hyperbolic tangent",
    "sigmoid": "logistic sigmoid 1/(1+exp(-x))",
    "relu": "max(x, 0)",
    "softplus": "log(1 + exp(x))",
    "exp": "exponential",
    "log": "natural logarithm",
    "sqrt": "square root",
    "sin": "sine",
    "cos": "cosine",
}

for _name, _doc in _UNARY_DOCS.items():
    if _name == "neg":
        continue  # spelled with the '-' operator
    _register(
        Builtin(
            _name,
            ("x",),
            lambda s: s.vector(0),
            lambda lw, call, ops, _op=geo.UNARY_OPS[_name]: lw.emit(_op(ops[0])),
            f"Elementwise {_doc} of a vector (Euclidean point or tangent vector).",
        )
    )


def _check_pow(s: "CallSite") -> ValueType:
    x = s.vector(0)  # the base first: pow(2, x) swaps the arguments
    s.checked["exponent"] = s.number(1)
    return x


_register(
    Builtin(
        "pow",
        ("x", "p"),
        _check_pow,
        lambda lw, call, ops: lw.emit(geo.PowOp(ops[0], call.checked["exponent"])),
        "Elementwise x**p for a constant p.",
    )
)


def _check_scale(s: "CallSite") -> ValueType:
    x = s.vector(0)
    s.checked["factor"] = s.number(1)
    return x


_register(
    Builtin(
        "scale",
        ("x", "factor"),
        _check_scale,
        lambda lw, call, ops: lw.emit(geo.ScaleOp(ops[0], call.checked["factor"])),
        "x times a constant factor (also written factor * x).",
    )
)


# --- layers -----------------------------------------------------------------------


def _check_linear(s: "CallSite") -> ValueType:
    x = s.vector(0)
    _, out = s.layer_dims(x)
    s.flag("bias", True)
    s.flag("nonnegative", False)
    return x.with_dim(out)


def _lower_linear(lw: "Lowerer", call, ops):
    (x,) = ops
    n_in, n_out = call.checked["dims"]
    layer = lw.new_layer("linear")
    dtype = call.type.dtype
    w = lw.param(layer, "weight", lw.tensor_type((n_out, n_in), dtype), "glorot_uniform")
    if call.checked["nonnegative"]:
        # a constraint, kept by every init and by geomir's optimizers (projected steps)
        w.owner.attributes[weights.ATTR_NAME] = ArrayAttr([StringAttr(weights.NONNEGATIVE)])
    y = lw.emit(geo.LinearOp(x, w))
    if call.checked["bias"]:
        b = lw.param(layer, "bias", lw.tensor_type((n_out,), dtype), "zeros")
        y = lw.emit(geo.BiasOp(y, b))
    return y


_register(
    Builtin(
        "linear",
        ("x",),
        _check_linear,
        _lower_linear,
        "Affine layer W x + b on vectors; W is out×in (Glorot-uniform init), b starts at zero. "
        "nonnegative = true keeps W >= 0 (|Glorot| init, projected optimizer steps): monotone layers.",
        layer=True,
        keywords=("bias", "nonnegative"),
    )
)


# --- manifold maps ----------------------------------------------------------------


def _check_expmap(s):
    x = s.point(0)
    s.same(0, 1, expected=x.as_tangent())
    return x


def _check_logmap(s):
    x = s.point(0)
    s.same(0, 1)
    return x.as_tangent()


def _check_dist(s):
    x = s.point(0)
    s.same(0, 1)
    return x.euclidean(1)


def _check_transport(s):
    x = s.point(0)
    s.same(0, 1)
    s.same(0, 2, expected=x.as_tangent())
    return x.as_tangent()


_register(Builtin("expmap", ("x", "v"), _check_expmap, lambda lw, c, o: lw.emit(geo.ExpmapOp(*o)),
                  "Exponential map: follow the geodesic from point x with initial velocity v."))
_register(Builtin("logmap", ("x", "y"), _check_logmap, lambda lw, c, o: lw.emit(geo.LogmapOp(*o)),
                  "Logarithmic map: the tangent vector at x pointing to y (inverse of expmap)."))
_register(Builtin("expmap0", ("v",), lambda s: s.tangent(0).as_point(), lambda lw, c, o: lw.emit(geo.Expmap0Op(*o)),
                  "Exponential map at the manifold's origin."))
_register(Builtin("logmap0", ("y",), lambda s: s.point(0).as_tangent(), lambda lw, c, o: lw.emit(geo.Logmap0Op(*o)),
                  "Logarithmic map at the manifold's origin."))
_register(Builtin("dist", ("x", "y"), _check_dist, lambda lw, c, o: lw.emit(geo.DistOp(*o)),
                  "Geodesic distance, as R[1]."))
_register(Builtin("proj", ("x",), lambda s: s.point(0), lambda lw, c, o: lw.emit(geo.ProjOp(*o)),
                  "Project onto the manifold (clamp into the ball, renormalise, wrap angles)."))
_register(Builtin("parallel_transport", ("x", "y", "v"), _check_transport,
                  lambda lw, c, o: lw.emit(geo.ParallelTransportOp(*o)),
                  "Carry tangent vector v at x to y along the geodesic."))
def _check_loop(s):
    x = s.point(1)
    for i in range(2, len(s.args)):
        s.same(1, i)
    s.same(1, 0, expected=x.as_tangent())
    return x


def _check_holonomy_angle(s):
    x = _check_loop(s)
    if x.manifold.intrinsic_dim(x.dim) != 2:
        raise s.error(
            f"holonomy_angle needs a 2-dimensional manifold, found {x.describe()} of dimension "
            f"{x.manifold.intrinsic_dim(x.dim)}; holonomy(v, ...) gives the transported vector in any dimension",
            s.args[1][0].span,
        )
    return x.euclidean(1)


_register(Builtin("holonomy", ("v", "a", "b", "c"), lambda s: _check_loop(s).as_tangent(),
                  lambda lw, c, o: lw.emit(geo.HolonomyOp(o[1:], o[0])),
                  "Holonomy: tangent v at a carried by parallel transport around the closed geodesic "
                  "polygon a -> b -> c -> ... -> a (the identity on flat manifolds).", variadic=True))
_register(Builtin("holonomy_angle", ("v", "a", "b", "c"), _check_holonomy_angle,
                  lambda lw, c, o: lw.emit(geo.HolonomyAngleOp(o[1:], o[0])),
                  "The signed angle from v to its holonomy around a -> b -> c -> ... -> a on a 2-dimensional "
                  "manifold, as R[1]: by Gauss-Bonnet the curvature integrated over the enclosed region.",
                  variadic=True))
_register(Builtin("coords", ("x",), lambda s: s.value(0).euclidean(), lambda lw, c, o: lw.emit(geo.CoordsOp(*o)),
                  "The representation coordinates of a point or tangent vector as a Euclidean vector."))


# --- paths on a torus: winding numbers (math: geomir.backends.common.winding) ----------

PATH_BUILTINS = ("unwrap", "winding", "winding_margin", "endpoint")
"""The builtins that take a path (``path T[n]``); every other builtin rejects one."""

_register(Builtin("unwrap", ("p",), lambda s: s.path(0).euclidean(),
                  lambda lw, c, o: lw.emit(geo.UnwrapOp(*o)),
                  "The unwrapped displacement of a path on a torus, as R[n]: the sum of its shortest signed "
                  "steps (each in [-P/2, P/2), P the period), i.e. where the path lifted to R^n ends "
                  "relative to its start."))
_register(Builtin("winding", ("p",), lambda s: s.path(0).euclidean(),
                  lambda lw, c, o: lw.emit(geo.WindingOp(*o)),
                  "The winding vector of a path on a torus, as R[n]: round(unwrap(p) / P) per angle, "
                  "integer-valued (a loop wound k times gives exactly k)."))
_register(Builtin("winding_margin", ("p",), lambda s: s.path(0).euclidean(1),
                  lambda lw, c, o: lw.emit(geo.WindingMarginOp(*o)),
                  "The certified margin of winding(p), as R[1]: no perturbation of the path's points smaller "
                  "than it (in the max norm) can change the winding vector; 0 when uncertified."))
_register(Builtin("endpoint", ("p",), lambda s: s.path(0).as_point(),
                  lambda lw, c, o: lw.emit(geo.EndpointOp(*o)),
                  "The last point of a path on a torus, as a point T[n] (angles wrapped by proj)."))


# --- Poincaré ball (gyrovector) operations ------------------------------------------

_BALL = ("poincare",)


def _check_mobius_add(s):
    x = s.point(0, _BALL)
    s.same(0, 1)
    return x


def _check_mobius_scalar(s):
    x = s.point(1, _BALL)
    s.same(1, 0, expected=x.euclidean(1))
    return x


def _check_mobius_layer(s):
    x = s.point(0, _BALL)
    _, out = s.layer_dims(x)
    if s.builtin.name == "mobius_linear":
        s.flag("bias", True)
    return x.with_dim(out)


def _lower_mobius_matvec(lw: "Lowerer", call, ops, layer: str | None = None):
    (x,) = ops
    n_in, n_out = call.checked["dims"]
    layer = layer or lw.new_layer("mobius_matvec")
    w = lw.param(layer, "weight", lw.tensor_type((n_out, n_in), call.type.dtype), "glorot_uniform")
    return lw.emit(geo.MobiusMatvecOp(w, x))


def _lower_mobius_linear(lw: "Lowerer", call, ops):
    layer = lw.new_layer("mobius_linear")
    y = _lower_mobius_matvec(lw, call, ops, layer)
    if call.checked["bias"]:
        # The bias is a point on the ball (starting at the origin), so a Riemannian
        # optimizer moves it along geodesics.
        b = lw.param(layer, "bias", lw.ir_type(call.type), "zeros")
        y = lw.emit(geo.MobiusAddOp(y, b))
    return y


_register(Builtin("mobius_add", ("x", "y"), _check_mobius_add, lambda lw, c, o: lw.emit(geo.MobiusAddOp(*o)),
                  "Möbius addition x ⊕ y on the Poincaré ball."))
_register(Builtin("mobius_scalar", ("r", "x"), _check_mobius_scalar, lambda lw, c, o: lw.emit(geo.MobiusScalarOp(*o)),
                  "Möbius scalar multiplication r ⊗ x, r an R[1]."))
_register(Builtin("mobius_matvec", ("x",), _check_mobius_layer, _lower_mobius_matvec,
                  "Möbius matrix-vector product expmap0(W logmap0(x)) with a learned W.", layer=True))
_register(Builtin("mobius_linear", ("x",), _check_mobius_layer, _lower_mobius_linear,
                  "Hyperbolic linear layer: (W ⊗ x) ⊕ b, b a learned point (starts at the origin).",
                  layer=True, keywords=("bias",)))


def _lower_mobius_act(act: str):
    def lower(lw: "Lowerer", call, ops):
        t = lw.emit(geo.Logmap0Op(ops[0]))
        return lw.emit(geo.Expmap0Op(lw.emit(geo.UNARY_OPS[act](t))))

    return lower


for _act in ("tanh", "sigmoid", "relu"):
    _register(Builtin(f"mobius_{_act}", ("x",), lambda s: s.point(0, _BALL), _lower_mobius_act(_act),
                      f"Möbius version of {_act}: expmap0({_act}(logmap0(x)))."))


# --- declared parameters ----------------------------------------------------------------


def _check_param(s: "CallSite") -> WeightType:
    from .common import source_text

    dims = []
    for i in range(len(s.args)):
        value = s.number(i)
        if value != int(value) or value < 1:
            raise s.error(f"param sizes must be positive integers, found {value:g}", s.args[i][0].span)
        check_dim(int(value), "a param size", s.args[i][0].span)
        dims.append(int(value))
    if len(dims) > 2:
        raise s.error(f"param declares a vector or a matrix (1 or 2 sizes), found {len(dims)}", s.args[2][0].span)
    init = "glorot_uniform" if len(dims) == 2 else "zeros"
    kw = s.keywords.get("init")
    if kw is not None:
        from geomir.dialects.geo import PARAM_INITS

        name = kw.value.name if isinstance(kw.value, ast.Var) else source_text(kw.value)
        if name not in PARAM_INITS:
            raise s.error(f"unknown init '{name}' (expected one of {', '.join(PARAM_INITS)})", kw.value.span)
        init = name
    s.checked["init"] = init
    dtype = "f32"
    kw = s.keywords.get("dtype")
    if kw is not None:
        from .types import DTYPES

        dtype = kw.value.name if isinstance(kw.value, ast.Var) else source_text(kw.value)
        if dtype not in DTYPES:
            raise s.error(f"unknown element type '{dtype}' (expected one of {', '.join(DTYPES)})", kw.value.span)
    return WeightType(tuple(dims), dtype)


def _lower_param(lw: "Lowerer", call, ops):
    ty = call.type
    return lw.named_param(lw.tensor_type(ty.shape, ty.dtype), call.checked["init"], call)


_register(Builtin("param", ("m",), _check_param, _lower_param,
                  "A learned tensor of the model, named by its let: let W = param(m, n) is an m×n matrix "
                  "(Glorot-uniform init), param(n) a vector (zeros); init = glorot_uniform | zeros | "
                  "uniform_small | normal, dtype = f32 (default) | f64 | f16 | bf16, the element type of the "
                  "values it multiplies. Use it with mobius_matvec(W, x) and linear(x, W); a weight used "
                  "twice is shared.", keywords=("init", "dtype"), variadic=True))


def _same_dtype(s: "CallSite", w: WeightType, i: int, x: ValueType) -> None:
    if w.dtype != x.dtype:
        raise s.error(f"element type mismatch in {s.name}: the weight is {w.dtype}, {x.describe()} is {x.dtype}; "
                      f"declare it param(..., dtype = {x.dtype})", s.args[i][0].span)


def _check_matvec_w(s: "CallSite") -> ValueType:
    w = s.weight(0, 2)
    x = s.point(1, _BALL)
    if w.shape[1] != x.dim:
        raise s.error(f"dimension mismatch in mobius_matvec: W is {w.shape[0]}×{w.shape[1]}, so x must have "
                      f"dimension {w.shape[1]}, found {x.describe()}", s.args[1][0].span)
    _same_dtype(s, w, 0, x)
    return x.with_dim(w.shape[0])


def _check_linear_w(s: "CallSite") -> ValueType:
    x = s.vector(0)
    w = s.weight(1, 2)
    if w.shape[1] != x.dim:
        raise s.error(f"dimension mismatch in linear: W is {w.shape[0]}×{w.shape[1]}, so x must have "
                      f"dimension {w.shape[1]}, found {x.describe()}", s.args[0][0].span)
    _same_dtype(s, w, 1, x)
    return x.with_dim(w.shape[0])


EXPLICIT_WEIGHT["mobius_matvec"] = Builtin(
    "mobius_matvec", ("W", "x"), _check_matvec_w, lambda lw, c, o: lw.emit(geo.MobiusMatvecOp(o[0], o[1])),
    "Möbius matrix-vector product expmap0(W logmap0(x)) with a declared W (let W = param(m, n)).")
EXPLICIT_WEIGHT["linear"] = Builtin(
    "linear", ("x", "W"), _check_linear_w, lambda lw, c, o: lw.emit(geo.LinearOp(o[0], o[1])),
    "W x with a declared W (let W = param(m, n)); no bias.")
