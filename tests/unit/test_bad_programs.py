"""Bad .geo programs: each must fail with a located error naming what was expected and found.

Every case gives the exact ``line:col`` of the reported error (1-based, the column of the
caret) and substrings its message must contain. A handful go through the real ``geomc``
command line to check the rendered diagnostic: ``path:L:C: error: ...``, the source line,
and a caret under column C, exit code 1, no traceback.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from geomir.diagnostics import (
    ContractAnnotationError,
    GeoNameError,
    GeoSyntaxError,
    GeoTypeError,
    SourceError,
)
from geomir.frontends.dsl import compile_source
from geomir.verify import verify_module

ROOT = Path(__file__).resolve().parents[2]


def src(*lines: str) -> str:
    """Source text from lines: line k of the program is ``lines[k - 1]``."""
    return "\n".join(lines) + "\n"


BALL = "manifold H = poincare(c = 1.0)"
TORUS = "manifold T = torus(units = radians)"
IDENTITY = ("model M(x: R[8]) -> R[8] {", "  return x", "}")  # lines 1-3
SCALAR = ("model U(x: R[2]) -> R[1] {", "  return linear(x, 2 -> 1)", "}")  # lines 1-3


@dataclass(frozen=True)
class Bad:
    id: str
    text: str
    line: int
    col: int
    says: tuple[str, ...]
    error: type[SourceError] = SourceError


CASES = [
    # --- syntax -------------------------------------------------------------------
    Bad(
        "syntax-missing-rparen",
        src("model M(x: R[8] -> R[8] {", "  return x", "}"),
        1, 17, ("expected ')' or ','", "found '->'"), GeoSyntaxError,
    ),
    Bad(
        "syntax-missing-arrow",
        src("model M(x: R[8]) R[8] {", "  return x", "}"),
        1, 18, ("expected '->'", "found 'R'"), GeoSyntaxError,
    ),
    Bad(
        "syntax-missing-let-equals",
        src("model M(x: R[8]) -> R[8] {", "  let y tanh(x)", "  return y", "}"),
        2, 9, ("expected '='", "found 'tanh'"), GeoSyntaxError,
    ),
    Bad(
        "syntax-unexpected-char",
        src("model M(x: R[8]) -> R[8] {", "  return x $ x", "}"),
        2, 12, ("unexpected character '$'",), GeoSyntaxError,
    ),
    Bad(
        "syntax-unclosed-brace",
        src("model M(x: R[8]) -> R[8] {", "  return x"),
        2, 11, ("'}'", "found end of file", "a '}' is missing"), GeoSyntaxError,
    ),
    Bad(
        "syntax-unclosed-call",
        src("model M(x: R[8]) -> R[8] {", "  return tanh(x", "}"),
        3, 1, ("')'", "found '}'"), GeoSyntaxError,
    ),
    Bad(
        "syntax-stray-token-at-top-level",
        src(*IDENTITY, "return x"),
        4, 1, ("expected '@', 'derive', 'manifold', 'model'", "found 'return'"), GeoSyntaxError,
    ),
    Bad(
        "syntax-two-expressions-in-a-row",
        src("model M(x: R[8]) -> R[8] {", "  return x x", "}"),
        2, 12, ("found 'x'", "'}'"), GeoSyntaxError,
    ),
    Bad(
        "syntax-missing-dimension",
        src("model M(x: R[]) -> R[8] {", "  return x", "}"),
        1, 14, ("expected an integer", "found ']'"), GeoSyntaxError,
    ),
    Bad(
        "syntax-integer-literal-too-large",
        src("model M(x: R[8]) -> R[8] {", "  return x * 1" + "0" * 400, "}"),
        2, 14, ("integer literal too large",), GeoSyntaxError,
    ),
    # --- names --------------------------------------------------------------------
    Bad(
        "unknown-name",
        src("model M(x: R[8]) -> R[8] {", "  let hidden = tanh(x)", "  return hiden", "}"),
        3, 10, ("unknown name 'hiden'", "did you mean 'hidden'?"), GeoNameError,
    ),
    Bad(
        "unknown-function-did-you-mean",
        src("model M(x: R[8]) -> R[8] {", "  return tnah(x)", "}"),
        2, 10, ("unknown function 'tnah'", "did you mean 'tanh'?"), GeoNameError,
    ),
    Bad(
        "unknown-manifold",
        src("manifold Ball = poincare()", "model M(x: Bal[8]) -> R[8] {", "  return coords(x)", "}"),
        2, 12, ("unknown manifold 'Bal'", "did you mean 'Ball'?", "declared: Ball, R"), GeoNameError,
    ),
    Bad(
        "unknown-manifold-kind",
        src("manifold H = poincaree(c = 1.0)"),
        1, 14, ("unknown manifold kind 'poincaree'", "did you mean 'poincare'?", "euclidean, poincare, lorentz"),
        GeoTypeError,
    ),
    Bad(
        "duplicate-model",
        src(*IDENTITY, "model M(y: R[8]) -> R[8] {", "  return y", "}"),
        4, 7, ("'M' is already defined",), GeoNameError,
    ),
    Bad(
        "duplicate-manifold",
        src(BALL, "manifold H = sphere()"),
        2, 10, ("'H' is already defined",), GeoNameError,
    ),
    Bad(
        "manifold-and-model-share-a-name",
        src("manifold M = sphere()", *IDENTITY),
        2, 7, ("'M' is already defined",), GeoNameError,
    ),
    Bad(
        "duplicate-parameter",
        src("model M(x: R[8], x: R[4]) -> R[8] {", "  return x", "}"),
        1, 18, ("parameter 'x' appears twice in model M",), GeoNameError,
    ),
    Bad(
        "model-called-before-defined",
        src("model A(x: R[8]) -> R[8] {", "  return B(x)", "}", "model B(x: R[8]) -> R[8] {", "  return x", "}"),
        2, 10, ("unknown function 'B'",), GeoNameError,
    ),
    Bad(
        "model-calls-itself",
        src("model M(x: R[8]) -> R[8] {", "  return M(x)", "}"),
        2, 10, ("model M calls itself", "recursive models are not supported"), GeoNameError,
    ),
    Bad(
        "builtin-used-as-model-name",
        src("model tanh(x: R[8]) -> R[8] {", "  return x", "}"),
        1, 7, ("'tanh' is a built-in operation and cannot name a model",), GeoNameError,
    ),
    Bad(
        "value-called-as-function",
        src("model M(x: R[8]) -> R[8] {", "  let f = tanh(x)", "  return f(x)", "}"),
        3, 10, ("'f' is a value, not a function",), GeoNameError,
    ),
    Bad(
        "derived-function-called-from-model",
        src(*SCALAR, "derive du = jvp(U)", "model V(x: R[2]) -> R[1] {", "  return du(x)", "}"),
        6, 10, ("'du' is a derived function", "only models and built-in operations"), GeoNameError,
    ),
    # --- manifold declarations ----------------------------------------------------
    Bad(
        "curvature-zero",
        src("manifold H = poincare(c = 0)"),
        1, 27, ("curvature c of poincare must be a positive number", "found 0"), GeoTypeError,
    ),
    Bad(
        "curvature-negative",
        src("manifold L = lorentz(c = -1)"),
        1, 26, ("curvature c of lorentz must be a positive number", "found -1"), GeoTypeError,
    ),
    Bad(
        "torus-bad-units",
        src("manifold T = torus(units = degrees)"),
        1, 28, ("torus units must be one of radians, turns", "found 'degrees'"), GeoTypeError,
    ),
    Bad(
        "sphere-takes-no-arguments",
        src("manifold S = sphere(c = 1.0)"),
        1, 21, ("sphere takes no arguments", "found 'c'"), GeoTypeError,
    ),
    Bad(
        "sphere-dimension-too-small",
        src("manifold S = sphere()", "model M(x: S[1]) -> R[1] {", "  return coords(x)", "}"),
        2, 14, ("dimension of S must be at least 2", "found 1"), GeoTypeError,
    ),
    Bad(
        "unknown-element-type",
        src("model M(x: R[8, f128]) -> R[8] {", "  return x", "}"),
        1, 17, ("unknown element type 'f128'", "f32, f64, f16, bf16"), GeoTypeError,
    ),
    # --- arity, keywords, dims ----------------------------------------------------
    Bad(
        "builtin-too-many-arguments",
        src("model M(x: R[8]) -> R[8] {", "  return tanh(x, x)", "}"),
        2, 18, ("wrong number of arguments", "tanh(x) takes 1 argument, found 2"), GeoTypeError,
    ),
    Bad(
        "builtin-too-few-arguments",
        src(BALL, "model M(x: H[8]) -> R[1] {", "  return dist(x)", "}"),
        3, 10, ("wrong number of arguments", "dist(x, y) takes 2 arguments, found 1"), GeoTypeError,
    ),
    Bad(
        "holonomy-loop-too-short",
        src(BALL, "model M(x: H[8], y: H[8]) -> tangent H[8] {", "  return holonomy(logmap(x, y), x, y)", "}"),
        3, 10, ("wrong number of arguments", "holonomy(v, a, b, c, ...) takes at least 4 arguments, found 3"), GeoTypeError,
    ),
    Bad(
        "holonomy-loop-mixes-manifolds",
        src(BALL, "manifold S = sphere()", "model M(x: H[8], y: H[8], z: S[8]) -> tangent H[8] {",
            "  return holonomy(logmap(x, y), x, y, z)", "}"),
        4, 39, ("manifold mismatch for argument 'c' of holonomy", "expected H[8]", "found S[8]"), GeoTypeError,
    ),
    Bad(
        "holonomy-angle-needs-two-dimensions",
        src(BALL, "model M(x: H[8], y: H[8], z: H[8]) -> R[1] {", "  return holonomy_angle(logmap(x, y), x, y, z)", "}"),
        3, 39, ("holonomy_angle needs a 2-dimensional manifold", "dimension 8"), GeoTypeError,
    ),
    Bad(
        "param-size-not-positive",
        src("model M(x: R[4]) -> R[4] {", "  let W = param(4, 0)", "  return linear(x, W)", "}"),
        2, 20, ("param sizes must be positive integers, found 0",), GeoTypeError,
    ),
    Bad(
        "param-rank-three",
        src("model M(x: R[4]) -> R[4] {", "  let W = param(4, 4, 2)", "  return linear(x, W)", "}"),
        2, 23, ("param declares a vector or a matrix (1 or 2 sizes), found 3",), GeoTypeError,
    ),
    Bad(
        "param-unknown-init",
        src("model M(x: R[4]) -> R[4] {", "  let W = param(4, 4, init = ones)", "  return linear(x, W)", "}"),
        2, 30, ("unknown init 'ones'", "glorot_uniform"), GeoTypeError,
    ),
    Bad(
        "declared-weight-wrong-size",
        src(BALL, "model M(x: H[8]) -> H[4] {", "  let W = param(4, 6)", "  return mobius_matvec(W, x)", "}"),
        4, 27, ("dimension mismatch in mobius_matvec: W is 4×6, so x must have dimension 6", "found H[8]"), GeoTypeError,
    ),
    Bad(
        "declared-weight-is-a-vector",
        src("model M(x: R[4]) -> R[4] {", "  let b = param(4)", "  return linear(x, b)", "}"),
        3, 20, ("argument 'W' of linear must be a matrix of parameters", "found param[4]"), GeoTypeError,
    ),
    Bad(
        "param-declared-twice",
        src("model M(x: R[4]) -> R[4] {", "  let W = param(4, 4)", "  let W = param(4, 4)", "  return linear(x, W)", "}"),
        3, 11, ("parameter 'W' of model M is declared twice",), GeoTypeError,
    ),
    Bad(
        "model-call-wrong-arity",
        src(*IDENTITY, "model N(x: R[8]) -> R[8] {", "  return M(x, x)", "}"),
        5, 10, ("wrong number of arguments", "model M(x: R[8]) takes 1, found 2"), GeoTypeError,
    ),
    Bad(
        "model-call-with-keyword",
        src(*IDENTITY, "model N(x: R[8]) -> R[8] {", "  return M(x, bias = true)", "}"),
        5, 15, ("model M takes positional arguments only",), GeoTypeError,
    ),
    Bad(
        "misspelt-keyword",
        src("model M(x: R[8]) -> R[3] {", "  return linear(x, 8 -> 3, bais = true)", "}"),
        2, 28, ("linear has no keyword 'bais'", "keywords: bias"), GeoTypeError,
    ),
    Bad(
        "keyword-on-builtin-without-keywords",
        src("model M(x: R[8]) -> R[8] {", "  return tanh(x = x)", "}"),
        2, 15, ("tanh has no keyword 'x'", "keywords: none"), GeoTypeError,
    ),
    Bad(
        "keyword-given-twice",
        src("model M(x: R[8]) -> R[3] {", "  return linear(x, 8 -> 3, bias = true, bias = false)", "}"),
        2, 41, ("keyword 'bias' given twice",), GeoTypeError,
    ),
    Bad(
        "bias-not-a-boolean",
        src("model M(x: R[8]) -> R[3] {", "  return linear(x, 8 -> 3, bias = 1)", "}"),
        2, 35, ("keyword 'bias' of linear must be true or false", "found '1'"), GeoTypeError,
    ),
    Bad(
        "dims-on-a-non-layer",
        src("model M(x: R[8]) -> R[8] {", "  return tanh(x, 2 -> 3)", "}"),
        2, 18, ("tanh has no parameters", "'2 -> 3' is not allowed here", "expected tanh(x)"), GeoTypeError,
    ),
    Bad(
        "layer-without-dims",
        src("model M(x: R[8]) -> R[8] {", "  return linear(x)", "}"),
        2, 10, ("linear declares its parameters", "write linear(x, in -> out"), GeoTypeError,
    ),
    Bad(
        "layer-output-dimension-zero",
        src("model M(x: R[8]) -> R[8] {", "  return linear(x, 8 -> 0)", "}"),
        2, 25, ("output dimension of linear must be at least 1", "found 0"), GeoTypeError,
    ),
    # --- dimensions, element types ------------------------------------------------
    Bad(
        "layer-input-dimension-mismatch",
        src("model M(x: R[8]) -> R[32] {", "  return linear(x, 16 -> 32)", "}"),
        2, 20, ("dimension mismatch in linear", "expects input dimension 16", "found R[8]", "dimension 8"),
        GeoTypeError,
    ),
    Bad(
        "mobius-layer-input-dimension-mismatch",
        src(BALL, "model M(x: H[16]) -> H[8] {", "  return mobius_linear(x, 32 -> 8)", "}"),
        3, 27, ("dimension mismatch in mobius_linear", "expects input dimension 32", "found H[16]"), GeoTypeError,
    ),
    Bad(
        "plus-dimension-mismatch",
        src("model M(x: R[8], y: R[4]) -> R[8] {", "  return x + y", "}"),
        2, 14, ("dimension mismatch for the right side of '+'", "expected R[8]", "found R[4]"), GeoTypeError,
    ),
    Bad(
        "element-type-mismatch",
        src("model M(x: R[8], y: R[8, f64]) -> R[8] {", "  return x * y", "}"),
        2, 14, ("element type mismatch (f32 vs f64)", "right side of '*'", "expected R[8]", "found R[8, f64]"),
        GeoTypeError,
    ),
    Bad(
        "element-type-mismatch-in-model-call",
        src(*IDENTITY, "model N(x: R[8, f64]) -> R[8] {", "  return M(x)", "}"),
        5, 12, ("element type mismatch (f32 vs f64)", "argument 'x' of model M"), GeoTypeError,
    ),
    # --- manifolds, points and tangents -------------------------------------------
    Bad(
        "manifold-mismatch-ball-plus-torus",
        src(BALL, TORUS, "model M(x: H[4], y: T[4]) -> H[4] {", "  return mobius_add(x, y)", "}"),
        4, 24,
        ("manifold mismatch for argument 'y' of mobius_add", "expected H[4] (a point on poincare(c=1))",
         "found T[4] (a point on torus(units=radians))"),
        GeoTypeError,
    ),
    Bad(
        "manifold-mismatch-torus-point-to-ball-model",
        src(BALL, TORUS, "model F(x: H[4]) -> R[1] {", "  return dist(x, x)", "}",
            "model G(t: T[4]) -> R[1] {", "  return F(t)", "}"),
        7, 12,
        ("manifold mismatch for argument 'x' of model F", "expected H[4]", "found T[4] (a point on torus"),
        GeoTypeError,
    ),
    Bad(
        "manifold-mismatch-different-curvature",
        src(BALL, "manifold K = poincare(c = 0.5)", "model M(x: H[4], y: K[4]) -> R[1] {", "  return dist(x, y)", "}"),
        4, 18, ("manifold mismatch", "poincare(c=1)", "found K[4] (a point on poincare(c=0.5))"), GeoTypeError,
    ),
    Bad(
        "tangent-used-where-point-expected",
        src(BALL, "model M(v: tangent H[4]) -> H[4] {", "  return expmap(v, v)", "}"),
        3, 17, ("expmap expects a point for 'x'", "found a tangent vector"), GeoTypeError,
    ),
    Bad(
        "tangent-passed-to-model-expecting-point",
        src(BALL, "model F(x: H[4]) -> H[4] {", "  return proj(x)", "}",
            "model G(v: tangent H[4]) -> H[4] {", "  return F(v)", "}"),
        6, 12, ("a tangent vector used where a point is expected", "expected H[4]", "found tangent H[4]"),
        GeoTypeError,
    ),
    Bad(
        "point-used-where-tangent-expected",
        src(BALL, "model M(x: H[4]) -> H[4] {", "  return expmap(x, x)", "}"),
        3, 20,
        ("a point used where a tangent vector is expected", "argument 'v' of expmap", "expected tangent H[4]",
         "found H[4]"),
        GeoTypeError,
    ),
    Bad(
        "expmap0-of-a-point",
        src("manifold S = sphere()", "model M(x: S[3]) -> S[3] {", "  return expmap0(x)", "}"),
        3, 18, ("expmap0 expects a tangent vector for 'v'", "found a point S[3]", "logmap0"), GeoTypeError,
    ),
    Bad(
        "linear-algebra-on-ball-point",
        src(BALL, "model M(x: H[4]) -> H[4] {", "  return tanh(x)", "}"),
        3, 15, ("tanh needs a vector", "found H[4] (a point on poincare(c=1))", "logmap0"), GeoTypeError,
    ),
    Bad(
        "plus-on-ball-points",
        src(BALL, "model M(x: H[4], y: H[4]) -> H[4] {", "  return x + y", "}"),
        3, 10, ("'+' needs vectors", "found H[4]", "use mobius_add"), GeoTypeError,
    ),
    Bad(
        "scaling-a-ball-point",
        src(BALL, "model M(x: H[4]) -> H[4] {", "  return 2 * x", "}"),
        3, 14, ("cannot scale H[4]", "mobius_scalar"), GeoTypeError,
    ),
    Bad(
        "mobius-op-on-torus",
        src(TORUS, "model M(t: T[4]) -> T[4] {", "  return mobius_tanh(t)", "}"),
        3, 22, ("mobius_tanh expects a point on poincare", "found T[4]"), GeoTypeError,
    ),
    # --- numbers ------------------------------------------------------------------
    Bad(
        "number-plus-vector",
        src("model M(x: R[8]) -> R[8] {", "  return 1.0 + x", "}"),
        2, 14, ("'+' between a number and R[8]", "is not defined", "both sides must be vectors"), GeoTypeError,
    ),
    Bad(
        "float-layer-size",
        src("model M(x: R[2]) -> R[2] {", "  return linear(x, 2.0 -> 2)", "}"),
        2, 20, ("a layer size is a whole number (IN -> OUT), found 2.0",), GeoSyntaxError,
    ),
    Bad(
        "curvatures-that-print-alike",
        src("manifold A = poincare(c = 0.3)", "manifold B = poincare(c = 0.30000000000000004)",
            "model M(x: A[2]) -> B[2] {", "  return x", "}"),
        4, 10, ("expected B[2] (a point on poincare(c=0.30000000000000004)), found A[2] (a point on poincare(c=0.3))",),
        GeoTypeError,
    ),
    Bad(
        "vector-minus-number",
        src("model M(x: R[8]) -> R[8] {", "  return x - 1.0", "}"),
        2, 12, ("'-' between R[8] (a point on euclidean) and a number", "is not defined"), GeoTypeError,
    ),
    Bad(
        "number-divided-by-vector",
        src("model M(x: R[8]) -> R[8] {", "  return 1 / x", "}"),
        2, 12, ("dividing a number by a vector is not defined",), GeoTypeError,
    ),
    Bad(
        "vector-divided-by-constant-zero",
        src("model M(x: R[8]) -> R[8] {", "  let k = 2 - 2", "  return x / k", "}"),
        3, 14, ("division by the constant zero",), GeoTypeError,
    ),
    Bad(
        "constant-division-by-zero",
        src("model M(x: R[8]) -> R[8] {", "  return x * (1 / 0)", "}"),
        2, 17, ("division by zero in a constant expression",), GeoTypeError,
    ),
    Bad(
        "division-by-let-bound-zero",
        src("model M(x: R[8]) -> R[8] {", "  let k = 0", "  return x * (1 / k)", "}"),
        3, 17, ("division by zero in a constant expression",), GeoTypeError,
    ),
    Bad(
        "scale-factor-overflows",
        src("model M(x: R[8]) -> R[8] {", "  return x / 1e-320", "}"),
        2, 14, ("scale factor of '/' must be a finite number", "found inf"), GeoTypeError,
    ),
    Bad(
        "pow-with-infinite-exponent",
        src("model M(x: R[8]) -> R[8] {", "  return pow(x, 1e400)", "}"),
        2, 17, ("argument 'p' of pow must be a finite number", "found inf"), GeoTypeError,
    ),
    Bad(
        "pow-arguments-swapped",
        src("model M(x: R[8]) -> R[8] {", "  return pow(2.0, x)", "}"),
        2, 14, ("argument 1 of pow ('x') must be a point or vector", "found a number (2)"), GeoTypeError,
    ),
    # --- model bodies -------------------------------------------------------------
    Bad(
        "return-type-mismatch",
        src("model M(x: R[8]) -> R[4] {", "  return tanh(x)", "}"),
        2, 10, ("dimension mismatch for the result of model M", "expected R[4]", "found R[8]"), GeoTypeError,
    ),
    Bad(
        "return-tangent-for-point",
        src(BALL, "model M(x: H[4]) -> H[4] {", "  return logmap0(x)", "}"),
        3, 10, ("a tangent vector used where a point is expected", "result of model M", "found tangent H[4]"),
        GeoTypeError,
    ),
    Bad(
        "return-a-number",
        src("model M(x: R[8]) -> R[8] {", "  return 2", "}"),
        2, 10, ("model M must return R[8]", "found a number (2)"), GeoTypeError,
    ),
    Bad(
        "missing-return",
        src("model M(x: R[8]) -> R[8] {", "  let y = tanh(x)", "}"),
        3, 1, ("model M has no return statement", "expected 'return' of R[8]"), GeoTypeError,
    ),
    Bad(
        "statement-after-return",
        src("model M(x: R[8]) -> R[8] {", "  return x", "  let y = tanh(x)", "}"),
        3, 3, ("statement after return in model M",), GeoTypeError,
    ),
    # --- contracts ----------------------------------------------------------------
    Bad(
        "lipschitz-negative",
        src("@lipschitz(-1)", *IDENTITY),
        1, 12, ("Lipschitz bound must be a finite number > 0", "found -1"), ContractAnnotationError,
    ),
    Bad(
        "lipschitz-no-argument",
        src("@lipschitz()", *IDENTITY),
        1, 2, ("@lipschitz takes one bound, found 0", "@lipschitz(L)"), ContractAnnotationError,
    ),
    Bad(
        "lipschitz-not-a-number",
        src("@lipschitz(x)", *IDENTITY),
        1, 12, ("Lipschitz bound must be a number", "found 'x'"), ContractAnnotationError,
    ),
    Bad(
        "lipschitz-keyword",
        src("@lipschitz(2.0, L = 2.0)", *IDENTITY),
        1, 17, ("unknown option 'L' of @lipschitz", "radius = R"), ContractAnnotationError,
    ),
    Bad(
        "lipschitz-radius",
        src("@lipschitz(2.0, radius = 0)", *IDENTITY),
        1, 26, ("the radius must be a finite number > 0, found 0",), ContractAnnotationError,
    ),
    Bad(
        "lipschitz-radius-twice",
        src("@lipschitz(2.0, radius = 1, radius = 2)", *IDENTITY),
        1, 29, ("@lipschitz's radius is given twice",), ContractAnnotationError,
    ),
    Bad(
        "equivariant-unknown-group",
        src("@equivariant(foo)", *IDENTITY),
        1, 14, ("unknown symmetry group 'foo'", "so2, perm, torus_translation, ball_rotation"),
        ContractAnnotationError,
    ),
    Bad(
        "equivariant-so2-odd-dimension",
        src("@equivariant(so2)", "model M(x: R[3]) -> R[3] {", "  return x", "}"),
        1, 14, ("@equivariant(so2) needs an input it acts on: a Euclidean input of even dimension", "model M has (R[3] -> R[3])"),
        ContractAnnotationError,
    ),
    Bad(
        "equivariant-torus-without-torus-input",
        src("@equivariant(torus_translation)", *IDENTITY),
        1, 14, ("@equivariant(torus_translation) needs an input it acts on: an input on a torus",), ContractAnnotationError,
    ),
    Bad(
        "equivariant-torus-tangent-output",
        src(TORUS, "@equivariant(torus_translation)", "model M(t: T[2]) -> tangent T[2] {", "  return logmap0(t)", "}"),
        2, 14, ("needs an output on the torus or in R^n", "model M has (T[2] -> tangent T[2])"),
        ContractAnnotationError,
    ),
    Bad(
        "equivariant-ball-tangent-output",
        src(BALL, "@equivariant(ball_rotation)", "model M(x: H[2]) -> tangent H[2] {", "  return logmap0(x)", "}"),
        2, 14, ("needs an output on the Poincaré ball", "model M has (H[2] -> tangent H[2])"),
        ContractAnnotationError,
    ),
    Bad(
        "monotone-names-non-input",
        src("@monotone(z, increasing)", *IDENTITY),
        1, 11, ("@monotone names 'z', which is not an input of model M", "inputs: x"), ContractAnnotationError,
    ),
    Bad(
        "monotone-bad-direction",
        src("@monotone(x, sideways)", *IDENTITY),
        1, 14, ("last argument of @monotone must be increasing or decreasing", "found 'sideways'"),
        ContractAnnotationError,
    ),
    Bad(
        "monotone-curved-input",
        src(BALL, "@monotone(x, increasing)", "model M(x: H[4]) -> R[4] {", "  return coords(x)", "}"),
        2, 11, ("monotonicity needs an ordered input", "'x' is H[4] (a point on poincare(c=1))"),
        ContractAnnotationError,
    ),
    Bad(
        "unknown-contract",
        src("@lipshitz(2.0)", *IDENTITY),
        1, 2, ("unknown contract '@lipshitz'", "did you mean 'lipschitz'?"), ContractAnnotationError,
    ),
    # --- derivative requests ------------------------------------------------------
    Bad(
        "derive-unknown-model",
        src("model Energy(x: R[2]) -> R[1] {", "  return linear(x, 2 -> 1)", "}", "derive lap = laplacian(Enrgy)"),
        4, 24, ("unknown model 'Enrgy'", "did you mean 'Energy'?"), GeoNameError,
    ),
    Bad(
        "derive-unknown-op",
        src(*SCALAR, "derive lap = laplace(U)"),
        4, 14, ("unknown derivative 'laplace'", "did you mean 'laplacian'?", "jvp, vjp, hvp"), GeoNameError,
    ),
    Bad(
        "derive-directional-order-0",
        src(*SCALAR, "derive d = directional(U, order = 0)"),
        4, 35, ("order must be an integer from 1 to 8", "found 0"), GeoTypeError,
    ),
    Bad(
        "derive-directional-order-9",
        src(*SCALAR, "derive d = directional(U, order = 9)"),
        4, 35, ("order must be an integer from 1 to 8", "found 9"), GeoTypeError,
    ),
    Bad(
        "derive-directional-order-missing",
        src(*SCALAR, "derive d = directional(U)"),
        4, 12, ("directional needs the derivative order", "order = ..."), GeoTypeError,
    ),
    Bad(
        "derive-laplacian-of-ball-input",
        src(BALL, "model P(x: H[4]) -> R[1] {", "  return dist(x, x)", "}", "derive lap = laplacian(P)"),
        5, 24, ("laplacian needs a Euclidean input", "input 'x' of P is H[4] (a point on poincare(c=1))"),
        GeoTypeError,
    ),
    Bad(
        "derive-hvp-of-non-scalar",
        src(*IDENTITY, "derive h = hvp(M)"),
        4, 16, ("hvp needs a scalar model (output R[1])", "M returns R[8]"), GeoTypeError,
    ),
    Bad(
        "derive-wrt-not-an-input",
        src(*SCALAR, "derive d = jvp(U, wrt = y)"),
        4, 25, ("wrt must name an input of model U (x)", "found 'y'"), GeoNameError,
    ),
    Bad(
        "derive-unknown-keyword",
        src(*SCALAR, "derive d = laplacian(U, order = 2)"),
        4, 25, ("laplacian has no keyword 'order'", "keywords: wrt"), GeoTypeError,
    ),
    Bad(
        "derive-from-derived-function",
        src(*SCALAR, "derive du = jvp(U)", "derive ddu = jvp(du)"),
        5, 18, ("unknown model 'du'",), GeoNameError,
    ),
    Bad(
        "vector-plus-declared-weight",
        src("model A(x: R[2]) -> R[2] {", "  let W = param(2, 2)", "  return x + W", "}"),
        3, 14, ("'+' needs vectors", "found param[2, 2] (a learned tensor)", "linear(x, W)"), GeoTypeError,
    ),
    Bad(
        "declared-weight-times-vector-weight",
        src("model A(x: R[2]) -> R[2] {", "  let W = param(2, 2)", "  let b = param(2)", "  return linear(x, W * b)", "}"),
        4, 20, ("'*' needs vectors", "found param[2, 2] (a learned tensor)"), GeoTypeError,
    ),
    Bad(
        "dimension-above-int32",
        src("@lipschitz(2.0)", "model A(x: R[1000000000000]) -> R[1] {", "  return linear(x, 1000000000000 -> 1)", "}"),
        2, 14, ("dimension of R is too large", "largest dimension is 2147483647", "found 1000000000000"), GeoTypeError,
    ),
    Bad(
        "dimension-above-int64",
        src("model A(x: R[2]) -> R[99999999999999999999999] {", "  return linear(x, 2 -> 1)", "}"),
        1, 23, ("dimension of R is too large", "found a 23-digit number"), GeoTypeError,
    ),
    Bad(
        "layer-output-dimension-too-large",
        src("model A(x: R[2]) -> R[2] {", "  return linear(x, 2 -> 2147483648)", "}"),
        2, 25, ("output dimension of linear is too large", "found 2147483648"), GeoTypeError,
    ),
    Bad(
        "param-size-too-large",
        src("model A(x: R[2]) -> R[2] {", "  let W = param(2, 1e12)", "  return linear(x, W)", "}"),
        2, 20, ("a param size is too large", "found 1000000000000"), GeoTypeError,
    ),
    Bad(
        "integer-literal-beyond-conversion",
        src("model A(x: R[2]) -> R[" + "9" * 5000 + "] {", "  return x", "}"),
        1, 23, ("integer literal too large (5000 digits)",), GeoSyntaxError,
    ),
    Bad(
        "keyword-as-let-name",
        src("model A(x: R[2]) -> R[2] {", "  let model = x", "  return model", "}"),
        2, 7, ("'model' is a keyword and cannot be used as a name", "keywords: manifold, model, let, return, derive"),
        GeoSyntaxError,
    ),
    Bad(
        "keyword-as-model-name",
        src("model derive(x: R[2]) -> R[2] {", "  return x", "}"),
        1, 7, ("'derive' is a keyword",), GeoSyntaxError,
    ),
    Bad(
        "keyword-as-value",
        src("model A(x: R[2]) -> R[2] {", "  return return", "}"),
        2, 10, ("'return' is a keyword",), GeoSyntaxError,
    ),
    Bad(
        "type-prefix-as-manifold-name",
        src("manifold tangent = torus()", "model A(x: tangent tangent[2]) -> R[2] {", "  return coords(x)", "}"),
        1, 10, ("'tangent' starts a type (tangent H[n]) and cannot name a manifold",), GeoSyntaxError,
    ),
    Bad(
        "layer-output-below-sphere-dimension",
        src("manifold S = sphere()", "model F(v: tangent S[3]) -> tangent S[3] {", "  return linear(linear(v, 3 -> 1), 1 -> 3)", "}"),
        3, 32, ("sphere needs dimension at least 2, found 1",), GeoTypeError,
    ),
]


def test_cases_are_distinct() -> None:
    assert len(CASES) >= 30
    assert len({c.id for c in CASES}) == len(CASES)
    assert len({c.text for c in CASES}) == len(CASES)


def _compile_error(case: Bad) -> SourceError:
    with pytest.raises(SourceError) as info:
        compile_source(case.text, "bad.geo")
    return info.value


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_program_is_located(case: Bad) -> None:
    err = _compile_error(case)
    assert isinstance(err, case.error), f"{type(err).__name__}: {err}"
    assert err.span is not None
    assert (err.span.line, err.span.column) == (case.line, case.col), str(err)
    for text in case.says:
        assert text in err.message, f"{text!r} not in {err.message!r}"
    assert str(err).startswith(f"bad.geo:{case.line}:{case.col}: ")


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_program_renders_caret_under_column(case: Bad) -> None:
    err = _compile_error(case)
    first, source_line, caret_line, *notes = err.render().splitlines()
    assert first == f"bad.geo:{case.line}:{case.col}: error: {err.message}"
    gutter, _, shown = source_line.partition(" | ")
    assert int(gutter) == case.line
    assert shown == case.text.split("\n")[case.line - 1]
    pad, _, marker = caret_line.partition("| ")
    assert len(pad) == len(gutter) + 1
    assert marker.index("^") == case.col - 1
    assert marker.strip("^~ ") == ""


def test_let_bound_numbers_are_folded() -> None:
    """Arithmetic on let-bound numbers folds to their value (it once folded to 0)."""
    from geomir.ir import print_ir

    text = src("model M(x: R[2]) -> R[2] {", "  let k = -0.1", "  let k2 = k * -0.5", "  return x / (k2 * 4)", "}")
    assert "factor 5.0 " in print_ir(compile_source(text, "good.geo"))


def test_notes_point_at_first_definition() -> None:
    err = _compile_error(next(c for c in CASES if c.id == "duplicate-model"))
    assert [(n.message, n.span.line, n.span.column) for n in err.notes] == [("first defined here", 1, 7)]
    assert "bad.geo:1:7: note: first defined here" in err.render()


def test_note_points_at_later_model_definition() -> None:
    err = _compile_error(next(c for c in CASES if c.id == "model-called-before-defined"))
    (note,) = err.notes
    assert "models must be defined before the models that call them" in note.message
    assert (note.span.line, note.span.column) == (4, 7)


def test_location_with_form_feed_and_crlf() -> None:
    """Lines are counted at '\\n' only, as the lexer does, whatever other breaks the text has."""
    for text in (
        "// section\x0c break\nmodel M(x: R[8]) -> R[8] {\n  return y\n}\n",
        "// a\u2028b\nmodel M(x: R[8]) -> R[8] {\n  return y\n}\n",
        "// a\r\nmodel M(x: R[8]) -> R[8] {\r\n  return y\r\n}\r\n",
    ):
        with pytest.raises(GeoNameError) as info:
            compile_source(text, "bad.geo")
        err = info.value
        assert (err.span.line, err.span.column) == (3, 10)
        rendered = err.render().splitlines()
        assert rendered[1] == "    3 |   return y"
        assert rendered[2] == "      |          ^"


def test_tab_indented_caret_stays_under_column() -> None:
    with pytest.raises(GeoNameError) as info:
        compile_source("model M(x: R[8]) -> R[8] {\n\treturn y\n}\n", "bad.geo")
    err = info.value
    assert (err.span.line, err.span.column) == (2, 9)
    _, source_line, caret_line = err.render().splitlines()
    assert source_line.index("y") == caret_line.index("^")


def test_errors_after_lowering_show_the_compiled_text(tmp_path: Path) -> None:
    """A contract that fails in a pass (after lowering) shows its caret lines for source
    given as a string, and the text compiled, not what the file holds by then."""
    import threading

    import geomir

    text = src("@lipschitz(0.1)", "model F(x: R[4]) -> R[2] {", "  return linear(tanh(linear(x, 4 -> 8)), 8 -> 2)", "}")

    def rendered(source) -> list[str]:
        with pytest.raises(SourceError) as info:
            geomir.to_ir(source)
        return info.value.render().splitlines()

    lines = rendered(text)
    assert lines[0].startswith("<string>:2:7: error: cannot prove @lipschitz(0.1) for model F")
    assert lines[1:3] == ["    2 | model F(x: R[4]) -> R[2] {", "      |       ^"]
    assert lines[3].startswith("<string>:3:22: note: the layer that contributes most")
    assert lines[4] == "    3 |   return linear(tanh(linear(x, 4 -> 8)), 8 -> 2)"
    # another string compiled in another thread does not change what this one shows
    other = threading.Thread(target=lambda: rendered("\n\n" + text))
    other.start()
    other.join()
    assert rendered(text)[1] == "    2 | model F(x: R[4]) -> R[2] {"


# --- the real command line ---------------------------------------------------------

CLI_CASES = [
    "syntax-unexpected-char",
    "syntax-unclosed-brace",
    "unknown-function-did-you-mean",
    "manifold-mismatch-ball-plus-torus",
    "monotone-bad-direction",
    "derive-directional-order-9",
]


@pytest.mark.parametrize("case_id", CLI_CASES)
def test_geomc_renders_error(case_id: str, tmp_path: Path) -> None:
    case = next(c for c in CASES if c.id == case_id)
    path = tmp_path / "bad.geo"
    path.write_text(case.text)
    proc = subprocess.run(
        [sys.executable, "-m", "geomir.driver", str(path), "--emit=ir"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    assert proc.stdout == ""
    first, source_line, caret_line, *_ = proc.stderr.splitlines()
    assert first.startswith(f"{path}:{case.line}:{case.col}: error: ")
    for text in case.says:
        assert text in first
    expected_line = case.text.split("\n")[case.line - 1]
    assert source_line.endswith(" | " + expected_line)
    # The caret sits under column C of the source line as printed above it.
    column_zero = source_line.index(" | ") + 3
    assert caret_line.index("^") - column_zero == case.col - 1
    assert caret_line[: column_zero - 3].strip() == ""


# --- the checker and the IR verifier agree ------------------------------------------

MANIFOLDS = src(BALL, TORUS, "manifold S = sphere()", "manifold L = lorentz(c = 1.0)")
SIGNATURE_TYPES = (
    "R[1]", "R[2]", "R[3]", "tangent R[2]", "H[2]", "tangent H[2]", "T[2]", "tangent T[2]", "S[3]", "L[3]", "R[2, f64]",
)
ANNOTATIONS = (
    "@lipschitz(1.0)", "@equivariant(so2)", "@equivariant(perm)", "@equivariant(torus_translation)",
    "@equivariant(ball_rotation)", "@monotone(a, increasing)", "@monotone(a, o, decreasing)",
)
DERIVATIONS = (
    "jvp(M)", "vjp(M, wrt = o)", "hvp(M)", "hvp(M, wrt = o)", "directional(M, order = 2)", "laplacian(M)",
    "biharmonic(M, wrt = o)",
)


def _models() -> list[str]:
    """Models M(a, o) -> o, and M(a) -> (a, logmap0(a), coords(a) or dist(a, a))."""
    models = [src(f"model M(a: {a}, o: {o}) -> {o} {{", "  return o", "}") for a in SIGNATURE_TYPES for o in SIGNATURE_TYPES]
    for a in SIGNATURE_TYPES:
        point = a.removeprefix("tangent ")
        manifold, _, rest = point.partition("[")
        coords = "R[" + rest
        dtype = rest.partition(",")[2].rstrip("]")
        ones = f"R[1,{dtype}]" if dtype else "R[1]"
        for body, result in (("a", a), ("logmap0(a)", "tangent " + point), ("coords(a)", coords), ("dist(a, a)", ones)):
            models.append(src(f"model M(a: {a}) -> {result} {{", f"  return {body}", "}"))
    return models


@pytest.mark.parametrize("item", ANNOTATIONS + DERIVATIONS)
def test_whatever_the_checker_accepts_verifies(item: str) -> None:
    """A contract or derivation the checker accepts must give IR that passes the module
    verifier geomc runs on the frontend's output (else geomc exits 3, not 1)."""
    accepted = 0
    for model in _models():
        text = MANIFOLDS + (f"{item}\n{model}" if item.startswith("@") else f"{model}derive d = {item}\n")
        try:
            module = compile_source(text, "sig.geo")
        except SourceError:
            continue
        verify_module(module)
        accepted += 1
    assert accepted > 0


def test_single_input_shapes_compile() -> None:
    """The one-input models above are well typed (so the agreement test exercises them)."""
    single = [m for m in _models() if ", o:" not in m]
    assert len(single) == 4 * len(SIGNATURE_TYPES)
    failures = []
    for model in single:
        try:
            compile_source(MANIFOLDS + model, "sig.geo")
        except SourceError as err:
            failures.append(str(err))
    # dist and logmap0 need a point: tangent inputs fail those two shapes only.
    assert len(failures) == 2 * sum(t.startswith("tangent") for t in SIGNATURE_TYPES), failures


def test_a_float_order_is_shown_as_a_float():
    """``order = 8.0`` was refused with "found 8", which reads as a valid order."""
    import geomir

    src = "model U(x: R[2]) -> R[1] {{ return linear(x, 2 -> 1) }}\nderive d = directional(U, order = {})\n"
    with pytest.raises(GeoTypeError, match=r"order must be an integer from 1 to 8, found 8\.0$"):
        geomir.to_ir(src.format("8.0"))
    with pytest.raises(GeoTypeError, match=r"found 9$"):
        geomir.to_ir(src.format("9"))


def test_a_let_that_names_an_input_keeps_the_input_name():
    """``let a = x`` renamed input x to a (the signature became M(a, y2); --wrt x was refused)."""
    import geomir

    src = "model M(x: R[2], y: R[2]) -> R[2] {\n  let y2 = y\n  let a = x\n  return tanh(a) + y2\n}\n"
    text = geomir.print_ir(geomir.to_ir(src)) if hasattr(geomir, "print_ir") else str(geomir.to_ir(src))
    assert "func.func @M(%x: " in text and ", %y: " in text
