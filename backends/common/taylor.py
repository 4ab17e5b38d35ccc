"""Taylor-mode (jet) arithmetic, written once, generic over an array namespace.

The ``jet-expand`` pass rewrites a model so that every primitive acts on truncated Taylor
series; the generated code then calls the rules below, bound to torch or JAX by
``geomir.backends.torch.taylor`` / ``geomir.backends.jax.taylor`` (the same pattern as
``manifolds.py``: one implementation, two bindings, the same numbers). No torch or jax
import here. docs/jets.md has the table of rules, their cost and the measured accuracy.

Representation
--------------
A jet of order K of a curve t -> x(t) is ONE array of shape ``(K+1, *batch, n)``: entry k
along axis 0 is the NORMALIZED Taylor coefficient ``x_k = x^(k)(0) / k!``, so that
``x(t) = sum_k x_k t^k + O(t^(K+1))``. Products are then Cauchy products
``(ab)_k = sum_j a_j b_(k-j)`` with no binomials. ``to_derivatives`` multiplies coefficient
k by k! and gives the DERIVATIVE convention ``d^k/dt^k x(t)`` at 0 (the convention of
jax.experimental.jet and of ``derivatives.directional``); ``from_derivatives`` inverts it.
``seed(x, v, K)`` is the jet of t -> x + t v and ``constant(x, K)`` that of a constant.

Shapes follow the runtime: every op acts on the last axis and broadcasts over the batch
axes; reductions (``sum_last``, ``sqnorm``) keep the last axis with size 1. Jets broadcast
against each other like arrays, so two jets of the same order must have the same rank
(a constant operand is lifted with ``constant``). Masks (``relu``, ``clamp``, ``select``)
are computed from coefficient 0 and broadcast over axis 0.

Rules
-----
``RULES[name](ops, *operands, **params) -> jet``, one per primitive, keyed by the geo op
mnemonic (``tanh``, ``linear``, ``pow``, ...). Operands are jets, except the weight of
``linear``, the bias of ``bias`` and the mask of ``select`` (plain arrays). Each elementwise
phi whose derivative is a function of phi is propagated by its ODE, ``y' = g(y) x'``, whose
normalized form ``k y_k = sum_(j=1..k) j x_j g_(k-j)`` is a single O(K^2) recurrence
(``_ode``); ``log``, ``sqrt``, ``pow`` and ``div`` use the analogous implicit recurrences.
Only the even ratio functions of the manifold maps (``tanhc``, ``asinhc``: functions of a
squared norm) compose by Faa di Bruno, O(K^3), because they must stay analytic at 0.

Collapsed Taylor mode (the Laplacian)
-------------------------------------
A :class:`LaplacianJet` ``(f0, f1, f2)`` propagates the forward Laplacian (Li et al. 2023;
Dangel et al. 2025, "Collapsing Taylor Mode AD"): ``f0`` the value ``(*batch, n)``, ``f1``
the first-order coefficients along D directions ``(D, *batch, n)`` and ``f2`` the SUM over
the directions of the (normalized) second-order coefficients, ``(*batch, n)``. The sum is
taken at every op instead of at the end, so the cost is that of one order-2 jet with D
first-order parts instead of D jets. ``COLLAPSED_RULES`` has one rule per primitive: linear
maps act on all parts, ``mul`` gives ``f2 = a0 b2 + a2 b0 + sum_d a1_d b1_d``, and an
elementwise phi gives ``f1 = phi'(f0) f1``, ``f2 = phi'(f0) f2 + phi''(f0)/2 sum_d f1_d^2``,
with phi, phi' and phi''/2 read off the ordinary order-2 rule at ``f0`` (so each unary phi
is written once). ``laplacian_seed(x)`` uses the identity directions;
``laplacian_of(jet) = 2 f2`` (the factor 2 = 2! turns the normalized coefficient into the
sum of second derivatives).

Overflow
--------
Where ``exp`` overflows, e^(x_0) stands for a finite real beyond the dtype's range. Its rules
apply the factor last, to an exact bracket: ordinary jets y_k = e^(x_0) z_k with
z = exp(x - x_0), the collapsed rule f1 = e f1 and f2 = e (f2 + sum_d f1_d^2 / 2)
(``exp_times``). A derivative coefficient is then +-inf by the sign of its bracket and 0
where the bracket is exactly 0 (a unit that does not depend on the input), not the NaN of
inf * 0 in phi' f2 + phi''/2 sum_d f1_d^2 (f2 is 0 after a linear map of the seed). NaN is
left only where the result is undefined in floating point: overflowed terms of opposite
signs meeting in a later sum (the model's value is NaN there too), or an underflowed exp
times an overflowed bracket. torch's and Triton's fused layers compute the same
(tests/triton/test_laplacian_overflow.py); ``check_finite=True`` reports the first inf at
the exp layer's source line.

Manifold maps
-------------
:class:`PoincareBall`, :class:`Euclidean` and :class:`Torus` compose the rules into the
runtime's maps (same formulas and conventions as ``manifolds.py``), for either table. At
the origin the norm |v(t)| is not analytic, so no map takes it: the ball's maps use the
squared norm q = c|v|^2 and the even functions tanh(sqrt q)/sqrt q and asinh(sqrt q)/sqrt q,
expanded as series IN q (see ``_even_coefficients``). ``dist`` is a norm and has no Taylor
series where its two curves meet: there it returns the runtime's convention (value 0,
all derivatives 0, like ``sqrt0``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from functools import cache, partial
from typing import Any, NamedTuple

from . import manifolds as _m
from .even_series import asinhc_series as _asinhc_series
from .even_series import atanc_series as _atanc_series
from .even_series import sinc_series as _sinc_series
from .even_series import sinhc_series as _sinhc_series
from .even_series import tanhc_series as _tanhc_series
from .manifolds import ArrayOps

Array = Any  # torch.Tensor or jax.Array; never imported here
Jet = Any  # an array of shape (K+1, *batch, n)


class JetOps(ArrayOps):
    """:class:`~geomir.backends.common.manifolds.ArrayOps` plus the leading-axis primitives
    jets need; the backends implement them next to their ``ArrayOps``."""

    def stack0(self, xs: list[Array]) -> Array:
        """Stack along a new leading axis."""
        raise NotImplementedError

    def cat0(self, xs: list[Array]) -> Array:
        """Concatenate along the existing leading axis."""
        raise NotImplementedError

    def sum0(self, x: Array) -> Array:
        """Sum over the leading axis (dropped)."""
        raise NotImplementedError

    def coeffs(self, values: list[float], like: Array) -> Array:
        """Constants of shape ``(len(values), 1, ..., 1)`` (``like.ndim`` ones), with
        ``like``'s dtype and device: broadcasts against a stack of arrays shaped like ``like``."""
        raise NotImplementedError

    def directions(self, x: Array) -> Array:
        """The n unit vectors of the last axis, shape ``(n, *x.shape)``: entry ``[d, ..., i]``
        is 1 where i = d."""
        raise NotImplementedError


# =========================================================================================
# Jets as lists of coefficients (internal) and the public helpers
# =========================================================================================


def _co(x: Jet) -> list[Array]:
    """The K+1 coefficients of a jet, as a list (views)."""
    return [x[k] for k in range(x.shape[0])]


def _cprod(a: list, b: list, k: int) -> Array:
    """k-th coefficient of the Cauchy product: sum_(j=0..k) a_j b_(k-j)."""
    s = a[0] * b[k]
    for j in range(1, k + 1):
        s = s + a[j] * b[k - j]
    return s


def _csq(a: list, k: int, lo: int = 0) -> Array:
    """k-th coefficient of a*a restricted to lo <= j <= k - lo: sum_j a_j a_(k-j), by symmetry
    2 sum_(lo<=j<k/2) a_j a_(k-j) (+ a_(k/2)^2). lo = 1 drops the terms with a_0."""
    s = None
    for j in range(lo, (k + 1) // 2):
        t = a[j] * a[k - j]
        s = t if s is None else s + t
    s = 2.0 * s if s is not None else None
    if k % 2 == 0:
        t = a[k // 2] * a[k // 2]
        s = t if s is None else s + t
    return s


def cauchy(ops: JetOps, a: Jet, b: Jet) -> Jet:
    """Jet of the product: ``c_k = sum_(j=0..k) a_j b_(k-j)``. O(K^2) elementwise products."""
    ac, bc = _co(a), _co(b)
    return ops.stack0([_cprod(ac, bc, k) for k in range(len(ac))])


def seed(ops: JetOps, x: Array, v: Array, K: int) -> Jet:
    """Jet of t -> x + t v: ``(x, v, 0, ..., 0)``, order K."""
    if K == 0:
        return ops.stack0([x])
    z = ops.zeros_like(v)
    return ops.stack0([x, v] + [z] * (K - 1))


def constant(ops: JetOps, x: Array, K: int) -> Jet:
    """Jet of a constant: ``(x, 0, ..., 0)``, order K."""
    z = ops.zeros_like(x)
    return ops.stack0([x] + [z] * K)


def lift(ops: JetOps, x: Array, like: Jet) -> Jet:
    """The constant jet of a plain value ``x`` (a parameter, an input that is not
    differentiated), broadcastable against the jet ``like``: size-1 axes are inserted in
    front of x up to like's batch rank, and the order is like's."""
    extra = like.ndim - 1 - x.ndim
    return constant(ops, x[(None,) * extra] if extra > 0 else x, like.shape[0] - 1)


def order(jet: Jet) -> int:
    """K of a jet of shape (K+1, ...)."""
    return jet.shape[0] - 1


def to_derivatives(ops: JetOps, jet: Jet) -> Jet:
    """Normalized coefficients -> derivatives d^k/dt^k at 0 (coefficient k times k!)."""
    return jet * ops.coeffs([float(math.factorial(k)) for k in range(jet.shape[0])], jet[0])


def from_derivatives(ops: JetOps, jet: Jet) -> Jet:
    """Derivatives d^k/dt^k at 0 -> normalized coefficients (coefficient k over k!)."""
    return jet / ops.coeffs([float(math.factorial(k)) for k in range(jet.shape[0])], jet[0])


# =========================================================================================
# Recurrence builders (on coefficient lists)
# =========================================================================================


def _dx(x: list) -> list:
    """The coefficients of x' up to the index shift: j x_j (entry 0 unused)."""
    return [None] + [float(j) * x[j] for j in range(1, len(x))]


def _integ(dx: list, g: list, k: int) -> Array:
    """Coefficient k of y for y' = g x', from dx = _dx(x): (1/k) sum_(j=1..k) j x_j g_(k-j)."""
    s = dx[1] * g[k - 1]
    for j in range(2, k + 1):
        s = s + dx[j] * g[k - j]
    return s / float(k)


def _ode(x: list, y0s: list, g0s: list, g_next: Callable) -> list[list]:
    """Solve the system y_i' = g_i x' (i = 1..r), y_i(0) = y0s[i], g_i(0) = g0s[i], where
    ``g_next(ys, m)`` returns the m-th coefficients of the g_i from the coefficients
    0..m of the y_i. Recurrence: ``y_k = (1/k) sum_(j=1..k) j x_j g_(k-j)``; O(K^2)."""
    K = len(x) - 1
    dx = _dx(x)
    ys = [[y0] for y0 in y0s]
    gs = [[g0] for g0 in g0s]
    for k in range(1, K + 1):
        for y, g in zip(ys, gs):
            y.append(_integ(dx, g, k))
        if k < K:
            for g, gk in zip(gs, g_next(ys, k)):
                g.append(gk)
    return ys


def _unary(fn: Callable) -> Callable:
    """A rule on coefficient lists -> a rule on jets (unpack, compute, stack)."""

    def rule(ops, x, *args, **kwargs):
        return ops.stack0(fn(ops, _co(x), *args, **kwargs))

    rule.__name__, rule.__doc__, rule.list_rule = fn.__name__, fn.__doc__, fn
    return rule


def _div_list(a: list, b: list) -> list:
    q = []
    for k in range(len(a)):
        s = a[k]
        for j in range(k):
            s = s - q[j] * b[k - j]
        q.append(s / b[0])
    return q


def _sqrt_list(ops, x: list) -> list:
    """y^2 = x: y_k = (x_k - sum_(j=1..k-1) y_j y_(k-j)) / (2 y_0). At x_0 = 0, as ``pow`` at
    p = 1/2: 0 where the curve rests at 0 (x_1..x_k = 0, the masked side of sqrt(relu(x))),
    NaN where it moves (no finite value); the division is by 1 there, so gradients through
    the select stay finite."""
    y = [ops.sqrt(x[0])]
    if len(x) == 1:
        return y
    at_zero = x[0] == 0
    two_y0, moving = ops.where(at_zero, 1.0, 2.0 * y[0]), None
    for k in range(1, len(x)):
        s = x[k]
        if k > 1:
            s = s - _csq(y, k, lo=1)
        moving = (x[k] != 0) if moving is None else moving | (x[k] != 0)
        y.append(ops.where(at_zero & moving, math.nan, s / two_y0))
    return y


def _pow_list(ops, x: list, p: float) -> list:
    """x^p; an integer 0 <= p <= max(8, K) by repeated Cauchy squaring (any x_0), otherwise
    the ODE p x' y = x y': y_k = sum_(j=1..k) ((p+1) j - k) x_j y_(k-j) / (k x_0).

    At x_0 = 0 (p > 0) the division is by 1 instead of 0 and gives y_k = 0 for k < p, the
    true coefficients (x^p is flat to order ceil(p) - 1 there), not 0/0. The coefficients
    with k > p have no finite value there unless the curve rests at 0 (x_1..x_k = 0, the
    masked side of relu(x)^p: 0); where it moves they are NaN, never a silent 0."""
    K = len(x) - 1
    if float(p).is_integer() and 0 <= p <= max(8, K):
        n = int(p)
        result, base = None, x
        while True:
            if n & 1:
                result = base if result is None else [_cprod(result, base, k) for k in range(K + 1)]
            n >>= 1
            if not n:
                break
            base = [_csq(base, k) for k in range(K + 1)]
        if result is None:  # p == 0
            return [ops.full_like(x[0], 1.0)] + [ops.zeros_like(x[0])] * K
        return result
    y = [x[0] ** p]
    if not K:
        return y
    at_zero = x[0] == 0
    x0, moving = ops.where(at_zero, 1.0, x[0]), None
    for k in range(1, K + 1):
        s = (p * k) * (x[k] * y[0])  # j = k: (p + 1) k - k
        for j in range(1, k):
            s = s + ((p + 1.0) * j - k) * (x[j] * y[k - j])
        s = s / (k * x0)
        moving = (x[k] != 0) if moving is None else moving | (x[k] != 0)
        y.append(ops.where(at_zero & moving, math.nan, s) if 0 < p < k else s)
    return y


# =========================================================================================
# The rules
# =========================================================================================

RULES: dict[str, Callable] = {}
"""Primitive name -> rule ``(ops, *jets_or_arrays, **params) -> jet`` on ordinary jets."""


def _register(name: str, table: dict | None = None):
    def deco(fn):
        (RULES if table is None else table)[name] = fn
        return fn

    return deco


# --- linear ------------------------------------------------------------------------------


@_register("add")
def add(ops, a, b):
    """(a + b)_k = a_k + b_k. O(K)."""
    return a + b


@_register("sub")
def sub(ops, a, b):
    """(a - b)_k = a_k - b_k. O(K)."""
    return a - b


@_register("neg")
def neg(ops, x):
    """(-x)_k = -x_k. O(K)."""
    return -x


@_register("scale")
def scale(ops, x, factor):
    """(s x)_k = s x_k for a constant s. O(K)."""
    return x * factor


@_register("linear")
def linear(ops, x, w):
    """(W x)_k = W x_k for a plain weight W (m, n): ONE matmul of the (K+1, *batch, n) jet,
    the coefficient axis acting as a batch axis (weights are not padded with zero series).
    O(K) matmul rows."""
    return ops.matmul_t(x, w)


@_register("bias")
def bias(ops, x, b):
    """(x + b)_0 = x_0 + b, (x + b)_k = x_k for k >= 1 (b a plain array or float). O(1)."""
    return ops.cat0([(x[0] + b)[None], x[1:]])


@_register("sum_last")
def sum_last(ops, x):
    """(sum_i x_i)_k = sum_i x_ik over the last axis, keepdim. O(K)."""
    return ops.sum(x)


# --- structural ----------------------------------------------------------------------------


@_register("coords")
def coords(ops, x):
    """geo.coords: the coordinates, unchanged. O(0)."""
    return x


@_register("primal")
def primal(ops, x):
    """Coefficient 0 (the value)."""
    return x[0]


@_register("with_primal")
def with_primal(ops, x, x0):
    """x with coefficient 0 replaced by the array x0 (higher coefficients kept)."""
    return ops.cat0([(x0 + ops.zeros_like(x[0]))[None], x[1:]])


@_register("select")
def select(ops, mask, a, b):
    """where(mask, a, b) for a mask constant along the curve (computed from coefficients 0):
    every coefficient is taken from the selected branch. O(K)."""
    return ops.where(mask, a, b)


# --- bilinear and quotient ------------------------------------------------------------------


@_register("mul")
def mul(ops, a, b):
    """(ab)_k = sum_(j=0..k) a_j b_(k-j) (Cauchy product). O(K^2)."""
    return cauchy(ops, a, b)


@_register("div")
def div(ops, a, b):
    """q = a/b from q b = a: q_k = (a_k - sum_(j<k) q_j b_(k-j)) / b_0. O(K^2)."""
    return ops.stack0(_div_list(_co(a), _co(b)))


@_register("sqnorm")
def sqnorm(ops, x):
    """|x|^2 over the last axis, keepdim: (x.x)_k = sum_i sum_j x_ij x_i(k-j), half the
    products by symmetry. O(K^2)."""
    xc = _co(x)
    return ops.sum(ops.stack0([_csq(xc, k) for k in range(len(xc))]))


# --- elementwise by ODE -------------------------------------------------------------------


def _sigmoid0(ops, x):
    """(sigma(x), sigma(x)(1 - sigma(x))) without cancellation: e = exp(-|x|)."""
    e = ops.exp(-ops.abs(x))
    d = 1.0 + e
    return ops.where(x >= 0, 1.0, e) / d, e / (d * d)


def _softplus0(ops, x):
    """log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|))."""
    return ops.where(x > 0, x, 0.0) + ops.log1p(ops.exp(-ops.abs(x)))


def exp_times(ops, e, z):
    """e z for a factor e = exp(u) that may have overflowed to inf: e^u is a finite real,
    so e^u 0 = 0 where z is exactly 0 (IEEE gives NaN there); elsewhere e z, +-inf by the
    sign of z where e overflowed, NaN where e or z is NaN. Used by the ``exp`` rules: an
    overflowing exp makes each derivative coefficient +-inf by the sign of its exact bracket
    (module docstring, "Overflow"), not NaN."""
    return ops.where((z == 0) & (e == math.inf), 0.0, e * z)


@_register("exp")
@_unary
def exp(ops, x):
    """y = e^x = e^(x_0) z with z = e^(x - x_0): z' = z x', k z_k = sum_(j=1..k) j x_j z_(k-j),
    z_0 = 1 (finite), y_k = e^(x_0) z_k (``exp_times``: +-inf, not NaN, where e^(x_0)
    overflows; 0 where z_k = 0). O(K^2)."""
    y0 = ops.exp(x[0])
    if len(x) == 1:
        return [y0]
    one = ops.full_like(x[0], 1.0)
    z = _ode(x, [one], [one], lambda ys, m: [ys[0][m]])[0]
    return [y0] + [exp_times(ops, y0, zk) for zk in z[1:]]


@_register("tanh")
@_unary
def tanh(ops, x):
    """y = tanh x: y' = (1 - y^2) x', g = 1 - y^2 with g_0 = sech^2 x_0 (no cancellation)
    and g_m = -sum_(j=0..m) y_j y_(m-j). O(K^2)."""
    y0 = ops.tanh(x[0])
    g0 = _m._sech2(ops, ops.abs(x[0]))
    return _ode(x, [y0], [g0], lambda ys, m: [-_csq(ys[0], m)])[0]


def _sigmoid_list(ops, x):
    y0, g0 = _sigmoid0(ops, x[0])
    return _ode(x, [y0], [g0], lambda ys, m: [ys[0][m] - _csq(ys[0], m)])[0]


@_register("sigmoid")
@_unary
def sigmoid(ops, x):
    """y = sigma(x): y' = y (1 - y) x', g_0 = e/(1+e)^2 (e = exp(-|x_0|)),
    g_m = y_m - sum_(j=0..m) y_j y_(m-j). O(K^2)."""
    return _sigmoid_list(ops, x)


@_register("softplus")
@_unary
def softplus(ops, x):
    """y = log(1 + e^x): y' = sigma(x) x', the sigmoid jet s of x (order K-1) integrated:
    k y_k = sum_(j=1..k) j x_j s_(k-j). O(K^2)."""
    K = len(x) - 1
    s, dx = (_sigmoid_list(ops, x[:K]) if K else []), _dx(x)
    return [_softplus0(ops, x[0])] + [_integ(dx, s, k) for k in range(1, K + 1)]


def _sincos_list(ops, x):
    return _ode(x, [ops.sin(x[0]), ops.cos(x[0])], [ops.cos(x[0]), -ops.sin(x[0])],
                lambda ys, m: [ys[1][m], -ys[0][m]])


@_register("sin")
@_unary
def sin(ops, x):
    """s = sin x with c = cos x (coupled): s' = c x', c' = -s x':
    k s_k = sum j x_j c_(k-j), k c_k = -sum j x_j s_(k-j). O(K^2) for both."""
    return _sincos_list(ops, x)[0]


@_register("cos")
@_unary
def cos(ops, x):
    """c = cos x, by the same coupled recurrence as ``sin``. O(K^2) for both."""
    return _sincos_list(ops, x)[1]


def sincos(ops, x):
    """(sin jet, cos jet) from one coupled recurrence."""
    s, c = _sincos_list(ops, _co(x))
    return ops.stack0(s), ops.stack0(c)


@_register("log")
@_unary
def log(ops, x):
    """y = log x: x y' = x', y_k = (x_k - (1/k) sum_(j=1..k-1) j y_j x_(k-j)) / x_0. O(K^2).
    Where x_0 < 0 the value is NaN and so is every coefficient (the recurrence alone would
    give finite derivatives of a function that is not defined there)."""
    y = [ops.log(x[0])]
    x0 = ops.where(x[0] < 0, math.nan, x[0])
    for k in range(1, len(x)):
        s = x[k]
        for j in range(1, k):
            s = s - (j / k) * (y[j] * x[k - j])
        y.append(s / x0)
    return y


@_register("sqrt")
@_unary
def sqrt(ops, x):
    """y = sqrt x from y^2 = x: y_k = (x_k - sum_(j=1..k-1) y_j y_(k-j)) / (2 y_0), x_0 > 0;
    at x_0 = 0 the zero jet where the curve rests there, NaN where it moves. O(K^2)."""
    return _sqrt_list(ops, x)


@_register("pow")
@_unary
def pow(ops, x, exponent):
    """y = x^p, constant real p: p x' y = x y', so
    y_k = sum_(j=1..k) ((p+1) j - k) x_j y_(k-j) / (k x_0) (x_0 > 0; x_0 != 0 for integer p;
    at x_0 = 0 see ``_pow_list``). Integer 0 <= p <= max(8, K): repeated Cauchy squaring,
    valid at any x_0. O(K^2)."""
    return _pow_list(ops, x, float(exponent))


@_register("asinh")
@_unary
def asinh(ops, x):
    """y = asinh x: y' = g x' with g = (1 + x^2)^(-1/2) (the pow recurrence on 1 + x^2,
    order K-1). O(K^2)."""
    K = len(x) - 1
    if K == 0:
        return [ops.asinh(x[0])]
    u = [1.0 + x[0] * x[0]] + [_csq(x, k) for k in range(1, K)]
    g, dx = _pow_list(ops, u, -0.5), _dx(x)
    return [ops.asinh(x[0])] + [_integ(dx, g, k) for k in range(1, K + 1)]


@_register("atanh")
@_unary
def atanh(ops, x):
    """y = atanh x: y' = g x' with g = 1/(1 - x^2) (quotient recurrence; g_0 from
    (1 - x_0)(1 + x_0)), |x_0| < 1; where |x_0| > 1 the value and every coefficient are NaN
    (g alone is finite there). O(K^2)."""
    K = len(x) - 1
    if K == 0:
        return [ops.atanh(x[0])]
    u0 = (1.0 - x[0]) * (1.0 + x[0])
    u = [ops.where(u0 < 0, math.nan, u0)] + [-_csq(x, k) for k in range(1, K)]
    one = [ops.full_like(x[0], 1.0)] + [ops.zeros_like(x[0])] * (K - 1)
    g, dx = _div_list(one, u), _dx(x)
    return [ops.atanh(x[0])] + [_integ(dx, g, k) for k in range(1, K + 1)]


@_register("atan2")
def atan2(ops, a, b):
    """theta = atan2(a, b), the angle of the point (b, a): theta' = (b a' - a b')/r with
    r = a^2 + b^2, so theta_k = (1/k) sum_(j=1..k) j (a_j p_(k-j) - b_j q_(k-j)) for the
    quotients p = b/r and q = a/r (order K-1). The branch is the one of coefficient 0.
    At a_0 = b_0 = 0: the zero jet where both curves rest at 0 (the angle of a zero vector
    stays 0, the runtime's gradient convention), NaN where either moves (no derivative); r_0
    is 1 there, so gradients through the select stay finite. O(K^2)."""
    ac, bc = _co(a), _co(b)
    K = len(ac) - 1
    theta0 = ops.atan2(ac[0], bc[0])
    if K == 0:
        return ops.stack0([theta0])
    at_zero = (ac[0] == 0) & (bc[0] == 0)
    moving = None
    for k in range(1, K + 1):
        step = (ac[k] != 0) | (bc[k] != 0)
        moving = step if moving is None else moving | step
    r = [_csq(ac, k) + _csq(bc, k) for k in range(K)]
    r[0] = ops.where(at_zero, 1.0, r[0])
    p, q = _div_list(bc[:K], r), _div_list(ac[:K], r)
    da, db = _dx(ac), _dx(bc)
    return ops.stack0([theta0] + [ops.where(at_zero & moving, math.nan, _integ(da, p, k) - _integ(db, q, k))
                                  for k in range(1, K + 1)])


# --- piecewise ------------------------------------------------------------------------------


@_register("relu")
def relu(ops, x):
    """max(x, 0): piecewise linear, so y_k = [x_0 > 0] x_k for every k (mask from
    coefficient 0). At the kink x_0 = 0 the curve's image has no Taylor series; the rule
    returns 0 there (every coefficient), the convention of torch/JAX autodiff (relu'(0) = 0).
    O(K). A NaN x_0 gives NaN, as torch.relu and jax.nn.relu do (never a silent 0)."""
    return ops.where(x[0] > 0, x, ops.where(x[0] <= 0, 0.0, x))


@_register("clamp")
def clamp(ops, x, lo=None, hi=None):
    """ops.clamp: value clamped; coefficients k >= 1 kept where lo <= x_0 <= hi and 0 where
    clamped (the runtime's gradient convention, mask from coefficient 0). O(K)."""
    x0 = x[0]
    keep = None
    if lo is not None:
        keep = x0 >= lo
    if hi is not None:
        keep = (x0 <= hi) if keep is None else keep & (x0 <= hi)
    if keep is None:
        return x
    return ops.cat0([ops.clamp(x0, lo, hi)[None], ops.where(keep, x[1:], 0.0)])


@_register("sqrt0")
def sqrt0(ops, x):
    """ops.sqrt0: the ``sqrt`` rule where x_0 > tiny, and the zero jet where x_0 <= tiny
    (value and every derivative 0, the runtime's convention for norms at 0); NaN stays
    NaN. O(K^2)."""
    tiny = ops.tiny(x[0])
    pos = x[0] > tiny
    return ops.where(pos, sqrt(ops, ops.where(pos, x, 1.0)), ops.where(x[0] <= tiny, 0.0, x))


@_register("abs0")
def abs0(ops, x):
    """|x| of a scalar, the 1-D norm (``dist`` on R^1, a flat circle): y_k = sign(x_0) x_k,
    exact. ``sqrt0(x^2)`` gives the same numbers in exact arithmetic, but its recurrence
    divides by |x_0| and cancels terms of size x_1^2 near x_0 = 0: float32 Laplacians lost
    several digits there (generator seed 10466). The zero jet where x_0^2 <= tiny, as
    ``sqrt0(x^2)``; a NaN x_0 makes every coefficient NaN, as ``sqrt0(x^2)`` does. O(K)."""
    x0 = x[0]
    sign = ops.where(x0 > 0, 1.0, ops.where(x0 < 0, -1.0, x0 - x0))  # NaN at NaN: every coefficient
    return ops.where(x0 * x0 <= ops.tiny(x0), 0.0, sign * x)


# --- even ratio functions (Faa di Bruno in q) ---------------------------------------------


@dataclass(frozen=True, eq=False)  # hashed by identity (the cache key of _shifted_series)
class EvenRatio:
    """h(q) = f(z)/z at z = sqrt(q) for an odd f with f'(0) = 1: analytic in q although z
    is not. ``series(n)`` gives its first n Taylor coefficients about q = 0 (exact rationals),
    ``radius`` the distance from 0 to its nearest singularity, ``f`` the rule of f on
    coefficient lists (used where q_0 is large enough for the route through z), and
    ``growth`` the measured error growth of that route: coefficient m of h at
    q_0 = rho * radius carries a relative error of about eps (growth/rho)^m."""

    name: str
    series: Callable[[int], tuple[Fraction, ...]]
    radius: float
    f: Callable
    growth: float


TANHC = EvenRatio("tanhc", _tanhc_series, math.pi ** 2 / 4, tanh.list_rule, 0.4)
ASINHC = EvenRatio("asinhc", _asinhc_series, 1.0, asinh.list_rule, 2.0)

# Where the coefficients of h at q_0 switch from the series about 0 (below) to f(z)/z with
# z = sqrt(q_0 + s) expanded in s (above). The second route's coefficients grow like
# q_0^(1/2 - m) and cancel in the quotient (error eps (growth/rho)^m at q_0 = rho radius),
# the series needs more terms as rho grows. Per dtype: (target relative error of the
# route through z at order K, smallest and largest rho). docs/jets.md has the measurements.
EVEN_SWITCH = {"float64": (1e-11, 1e-3, 0.5), "float32": (2e-5, 1e-3, 0.6),
               "float16": (1e-2, 1e-2, 0.6), "bfloat16": (1e-1, 1e-2, 0.6)}


@cache
def _shifted_series(spec: EvenRatio, K: int, dtype: str) -> tuple[float, tuple[tuple[float, ...], ...]]:
    """(q_s, A): the switch q_s = rho radius with rho = growth (eps/target)^(1/K) (clipped),
    and A[j][m] = C(m+j, m) a_(m+j), so that coefficient m of h about q_0 is
    sum_j A[j][m] q_0^j, truncated where the tail is below eps/4 of the sum of magnitudes at
    q_0 = q_s, for every m <= K."""
    eps = _m.CONSTANTS[dtype].eps
    target, lo, hi = EVEN_SWITCH[dtype]
    rho = lo if K == 0 else min(max(spec.growth * (eps / target) ** (1.0 / K), lo), hi)
    q_s = rho * spec.radius
    n = 64
    while True:  # terms of the table: enough that the tail bound can be checked
        exact = spec.series(n)
        a = [float(c) for c in exact]
        for J in range(1, n // 2 - K):
            if all(
                sum(abs(math.comb(m + j, m) * a[m + j]) * q_s ** j for j in range(J, n - m))
                <= 0.25 * eps * sum(abs(math.comb(m + j, m) * a[m + j]) * q_s ** j for j in range(J))
                for m in range(K + 1)
            ):
                A = tuple(tuple(float(math.comb(m + j, m) * exact[m + j]) for m in range(K + 1)) for j in range(J))
                return q_s, A
        n *= 2


def _even_coefficients(ops, q0: Array, spec: EvenRatio, K: int) -> list[Array]:
    """Normalized Taylor coefficients c_m = h^(m)(q_0)/m!, m = 0..K, of an even ratio h at
    q_0 >= 0. Below the switch q_s: the series about 0 shifted to q_0 (Horner over j of
    sum_j C(m+j, m) a_(m+j) q_0^j, all m at once); above: the jets of z = sqrt(q_0 + s) and
    f(z) in s, divided. The unused branch gets a safe argument (no 0/0, no overflow)."""
    q_s, A = _shifted_series(spec, K, ops.dtype_name(q0))
    small = q0 < q_s
    qa = ops.where(small, q0, 0.0)
    acc = ops.coeffs(list(A[-1]), qa)
    for row in reversed(A[:-1]):
        acc = acc * qa + ops.coeffs(list(row), qa)
    qb = ops.where(small, q_s, q0)
    one, zero = ops.full_like(qb, 1.0), ops.zeros_like(qb)
    z = _sqrt_list(ops, [qb, one] + [zero] * (K - 1) if K else [qb])
    direct = _div_list(spec.f(ops, z), z)
    return [ops.where(small, acc[m], direct[m]) for m in range(K + 1)]


def _compose(c: list, x: list) -> list:
    """Coefficients of phi(x(t)) from c_m = phi^(m)(x_0)/m!: sum_m c_m (x - x_0)^m with the
    powers of d = x - x_0 (d_0 = 0) by Cauchy products (Faa di Bruno). O(K^3)."""
    K = len(x) - 1
    out = [c[0]] + [None] * K
    p = [None] + list(x[1:])  # d^1: nonzero from index 1
    for m in range(1, K + 1):
        if m > 1:  # d^m = d^(m-1) d, nonzero from index m
            p = [None] * m + [_sum([p[i] * x[k - i] for i in range(m - 1, k)]) for k in range(m, K + 1)]
        for k in range(m, K + 1):
            t = c[m] * p[k]
            out[k] = t if out[k] is None else out[k] + t
    return out


def _sum(terms: list) -> Array:
    s = terms[0]
    for t in terms[1:]:
        s = s + t
    return s


def _even_rule(spec: EvenRatio) -> Callable:
    def rule(ops, q):
        qc = _co(q)
        K = len(qc) - 1
        return ops.stack0(_compose(_even_coefficients(ops, qc[0], spec, K), qc))

    rule.__name__ = spec.name
    return rule


tanhc = _register("tanhc")(_even_rule(TANHC))
tanhc.__doc__ = """h(q) = tanh(sqrt q)/sqrt q for q >= 0 (analytic, also at q = 0): the Taylor
coefficients of h at q_0 (series about 0 below the switch, tanh(z)/z through z = sqrt(q_0+s)
above), composed with q(t) - q_0 by Faa di Bruno. O(K^3) on (..., 1) arrays."""
asinhc = _register("asinhc")(_even_rule(ASINHC))
asinhc.__doc__ = """h(q) = asinh(sqrt q)/sqrt q for q >= 0, as ``tanhc``. O(K^3) on (..., 1)."""


# --- even functions of the quadric maps (sphere, hyperboloid) -----------------------------


def _sinh_list(ops, x: list) -> list:
    """sinh x, coupled with cosh (s' = c x', c' = s x'), as ``sincos``. O(K^2)."""
    return _ode(x, [ops.sinh(x[0]), ops.cosh(x[0])], [ops.cosh(x[0]), ops.sinh(x[0])],
                lambda ys, m: [ys[1][m], ys[0][m]])[0]


def _atan_list(ops, x: list) -> list:
    """atan x: y' = g x' with g = 1/(1 + x^2) (quotient recurrence, order K-1). O(K^2)."""
    K = len(x) - 1
    if K == 0:
        return [ops.atan(x[0])]
    u = [1.0 + x[0] * x[0]] + [_csq(x, k) for k in range(1, K)]
    one = [ops.full_like(x[0], 1.0)] + [ops.zeros_like(x[0])] * (K - 1)
    g, dx = _div_list(one, u), _dx(x)
    return [ops.atan(x[0])] + [_integ(dx, g, k) for k in range(1, K + 1)]


# sin(z)/z and sinh(z)/z are entire in q: their ``radius`` is a nominal scale (pi^2, the
# first zero of sin(z)/z at q = pi^2, of sinh(z)/z at q = -pi^2) that places the switch.
# atan(z)/z has its singularity at q = -1. Growths measured against mpmath (error of
# coefficient m relative to the largest coefficient): 0.08, 0.08 and 0.8; the values below
# carry a margin of 2.5, as for asinhc.
SINC = EvenRatio("sinc", _sinc_series, math.pi ** 2, sin.list_rule, 0.2)
SINHC = EvenRatio("sinhc", _sinhc_series, math.pi ** 2, _sinh_list, 0.2)
ATANC = EvenRatio("atanc", _atanc_series, 1.0, _atan_list, 2.0)

sinc = _register("sinc")(_even_rule(SINC))
sinc.__doc__ = """h(q) = sin(sqrt q)/sqrt q (entire in q), as ``tanhc``. O(K^3) on (..., 1)."""
sinhc = _register("sinhc")(_even_rule(SINHC))
sinhc.__doc__ = """h(q) = sinh(sqrt q)/sqrt q for q >= 0 (entire in q), as ``tanhc``. O(K^3) on (..., 1)."""
atanc = _register("atanc")(_even_rule(ATANC))
atanc.__doc__ = """h(q) = atan(sqrt q)/sqrt q for q >= 0 (analytic for q > -1), as ``tanhc``. O(K^3)
on (..., 1). The sphere's angles use it at q <= 1 (manifold maps: atan2 of two norms)."""


@_register("cosq")
def cosq(ops, q):
    """cos(sqrt q) = 1 - (q/2) sinc(q/4)^2 (the runtime's ``_cosq``, half-angle form, no
    cancellation near q = 0): one ``sinc`` and two Cauchy products. O(K^3) on (..., 1)."""
    s = sinc(ops, q * 0.25)
    return bias(ops, -0.5 * cauchy(ops, q, cauchy(ops, s, s)), 1.0)


@_register("coshq")
def coshq(ops, q):
    """cosh(sqrt q) = 1 + (q/2) sinhc(q/4)^2 (the runtime's ``_coshq``), q >= 0: one
    ``sinhc`` and two Cauchy products. O(K^3) on (..., 1)."""
    s = sinhc(ops, q * 0.25)
    return bias(ops, 0.5 * cauchy(ops, q, cauchy(ops, s, s)), 1.0)


# =========================================================================================
# Collapsed Taylor mode: the forward Laplacian
# =========================================================================================


class LaplacianJet(NamedTuple):
    """(f0, f1, f2): value (*batch, n); first-order coefficients along D directions
    (D, *batch, n); SUM over the directions of the normalized second-order coefficients
    (*batch, n). A NamedTuple, so a JAX pytree."""

    f0: Array
    f1: Array
    f2: Array


COLLAPSED_RULES: dict[str, Callable] = {}
"""Primitive name -> rule ``(ops, *laplacian_jets_or_arrays, **params) -> LaplacianJet``."""


def laplacian_seed(ops: JetOps, x: Array, directions: Array | None = None) -> LaplacianJet:
    """The Laplacian jet of the identity at x: f1 = the n unit directions (or the given
    ``directions``, shape (D, *x.shape), for sum_d v_d^T H v_d), f2 = 0."""
    f1 = ops.directions(x) if directions is None else directions
    return LaplacianJet(x, f1, ops.zeros_like(x))


def laplacian_constant(ops: JetOps, x: Array) -> LaplacianJet:
    """The Laplacian jet of a constant: f1 = 0 with a direction axis of size 1 (broadcasts
    against any D), f2 = 0."""
    z = ops.zeros_like(x)
    return LaplacianJet(x, z[None], z)


def laplacian_of(ops: JetOps, jet: LaplacianJet) -> Array:
    """sum_i d^2 f/dx_i^2 = 2 f2: f2 sums NORMALIZED second-order coefficients f''/2!."""
    return 2.0 * jet.f2


def laplacian_lift(ops: JetOps, x: Array, like: LaplacianJet) -> LaplacianJet:
    """The Laplacian jet of a plain value ``x`` (a parameter, an input that is not
    differentiated), broadcastable against ``like``: size-1 axes in front of x up to
    like's batch rank (as :func:`lift`)."""
    extra = like.f0.ndim - x.ndim
    return laplacian_constant(ops, x[(None,) * extra] if extra > 0 else x)


# -- a jet and a plain value: the linear cases without lifting ----------------------------
# ``jet.apply "geo.mul"(jet, y)`` with y plain (an input not differentiated, a parameter)
# would lift y to the constant jet (y, 0, ..., 0) and run the O(K^2) Cauchy product (the
# collapsed product: a sum over the D directions) on zeros. These compute the same in O(K)
# (O(1) per part), and a non-finite coefficient of the jet stays where it is instead of
# spreading NaN through inf * 0 terms. The emitter calls them (backends/common/pyemit.py).


def _plain_like(x: Array, batch_ndim: int) -> Array:
    """x with size-1 axes in front up to ``batch_ndim`` axes (as :func:`lift` pads)."""
    extra = batch_ndim - x.ndim
    return x[(None,) * extra] if extra > 0 else x


def _lead_like(a: Array, ndim: int) -> Array:
    """a (L, *batch, n) with size-1 axes after its leading axis (the coefficients, or f1's
    directions) up to ``ndim`` axes after it: a plain value with more batch axes than the
    jet then broadcasts against each coefficient, not against the coefficient axis."""
    extra = ndim - (a.ndim - 1)
    return a[(slice(None),) + (None,) * extra] if extra > 0 else a


def _neg(x):
    return LaplacianJet(-x.f0, -x.f1, -x.f2) if isinstance(x, LaplacianJet) else -x


def _apply_plain(a, y: Array, fn: Callable):
    """fn(part, y) on every coefficient (every part of a Laplacian jet), y broadcast per point."""
    if isinstance(a, LaplacianJet):
        nd = max(a.f0.ndim, y.ndim)
        return LaplacianJet(fn(a.f0, y), fn(_lead_like(a.f1, nd), y), fn(a.f2, y))
    nd = max(a.ndim - 1, y.ndim)
    return fn(_lead_like(a, nd), _plain_like(y, nd)[None])


def mul_plain(ops: JetOps, a, y: Array):
    """a y for a jet (or Laplacian jet) a and a plain y: every coefficient (part) times y."""
    return _apply_plain(a, y, lambda part, c: part * c)


def div_plain(ops: JetOps, a, y: Array):
    """a / y for a jet (or Laplacian jet) a and a plain y: every coefficient (part) over y."""
    return _apply_plain(a, y, lambda part, c: part / c)


def add_plain(ops: JetOps, a, y: Array):
    """a + y for a jet (or Laplacian jet) a and a plain y: y added to the value only. Where
    y widens the value (a batch axis the jet lacks), the other coefficients broadcast too."""
    if isinstance(a, LaplacianJet):
        f0 = a.f0 + y
        if f0.shape == a.f0.shape:
            return LaplacianJet(f0, a.f1, a.f2)
        z = ops.zeros_like(f0)
        return LaplacianJet(f0, _lead_like(a.f1, f0.ndim) + z, a.f2 + z)
    a = _lead_like(a, y.ndim)
    y0 = a[0] + y
    rest = a[1:]
    if y0.shape != rest.shape[1:]:
        rest = rest + ops.zeros_like(y0)[None]
    return ops.cat0([y0[None], rest])


def sub_plain(ops: JetOps, a, y: Array):
    """a - y for a jet (or Laplacian jet) a and a plain y."""
    return add_plain(ops, a, -y)


def rsub_plain(ops: JetOps, a, y: Array):
    """y - a for a jet (or Laplacian jet) a and a plain y."""
    return add_plain(ops, _neg(a), y)


PLAIN_FORMS = {"add": ("add_plain", "add_plain"), "mul": ("mul_plain", "mul_plain"),
               "sub": ("sub_plain", "rsub_plain"), "div": ("div_plain", None)}
"""Binary primitive -> (helper when the jet is operand 0, helper when it is operand 1; None:
lift the plain operand, as for y / jet)."""


# -- fused layers ---------------------------------------------------------------------------


def layer(ops: JetOps, x, w: Array, b: Array | None = None, activation: str | None = None):
    """``activation(W x + b)`` on a jet or a Laplacian jet (the IR's ``jet.layer``, made by
    ``jet-fuse``): one matmul of the stacked coefficients, the bias on coefficient 0 (f0),
    and the activation's rule (``"geo.tanh"`` or ``"tanh"``) from the matching table."""
    rules = COLLAPSED_RULES if isinstance(x, LaplacianJet) else RULES
    y = rules["linear"](ops, x, w)
    if b is not None:
        y = rules["bias"](ops, y, b)
    if activation is not None:
        y = rules[activation.removeprefix("geo.")](ops, y)
    return y


# -- stencils: fixed direction sets whose jets combine into a differential operator ------


def _biharmonic_stencil(n: int) -> tuple[list[tuple[int, int, float]], list[float]]:
    """Directions e_i (i < n), e_i + e_j and e_i - e_j (i < j), and weights with
    sum_p w_p D^4_p f = Δ²f. For the pairs D^4_{e_i+e_j} + D^4_{e_i-e_j} =
    2 f_iiii + 12 f_iijj + 2 f_jjjj (the odd terms cancel), so with A = sum_i f_iiii and
    S the sum over the pairs, Δ²f = A + 2 sum_{i<j} f_iijj = (4 - n)/3 A + S/6."""
    dirs: list[tuple[int, int, float]] = [(i, i, 0.0) for i in range(n)]
    dirs += [(i, j, s) for i in range(n) for j in range(i + 1, n) for s in (1.0, -1.0)]
    weights = [(4.0 - n) / 3.0] * n + [1.0 / 6.0] * (len(dirs) - n)
    return dirs, weights


STENCILS = {"biharmonic": (4, _biharmonic_stencil)}
"""name -> (jet order, n -> (directions (i, j, s) meaning e_i + s e_j, weights)); every
stencil has n² directions for an input of size n. The IR's
``jet.stencil_seed``/``jet.stencil_sum`` name them (``geomir.dialects.jet.STENCILS``)."""


def stencil_seed(ops: JetOps, x: Array, name: str) -> Jet:
    """The jets of t -> x + t d for every direction d of stencil ``name``, stacked on a new
    leading batch axis: shape (K+1, P, *x.shape). Cost: P = n² jets for "biharmonic"."""
    K, make = STENCILS[name]
    e = ops.directions(x)
    dirs, _ = make(x.shape[-1])
    v = ops.stack0([e[i] if s == 0.0 else e[i] + s * e[j] for i, j, s in dirs])
    return seed(ops, x[None] + ops.zeros_like(v), v, K)


def stencil_sum(ops: JetOps, jet: Jet, name: str) -> Array:
    """The stencil's weighted sum of the K-th derivatives (K! times the normalized top
    coefficients) of jets made by :func:`stencil_seed`."""
    K, make = STENCILS[name]
    top = jet[K]
    n = math.isqrt(top.shape[0])  # the stencil has n² directions for an input of size n
    _, weights = make(n)
    assert len(weights) == top.shape[0], "stencil_sum: the jet was not made by stencil_seed"
    w = ops.coeffs([math.factorial(K) * wt for wt in weights], top[0])
    return ops.sum0(w * top)


def _cmap(fn, *jets):
    return LaplacianJet(*(fn(*parts) for parts in zip(*jets)))


def _creg(name):
    return _register(name, COLLAPSED_RULES)


_creg("add")(lambda ops, a, b: _cmap(lambda u, v: u + v, a, b))
_creg("sub")(lambda ops, a, b: _cmap(lambda u, v: u - v, a, b))
_creg("neg")(lambda ops, x: _cmap(lambda u: -u, x))
_creg("scale")(lambda ops, x, factor: _cmap(lambda u: u * factor, x))
_creg("sum_last")(lambda ops, x: _cmap(ops.sum, x))
_creg("primal")(lambda ops, x: x.f0)
_creg("coords")(lambda ops, x: x)
_creg("select")(lambda ops, mask, a, b: _cmap(lambda u, v: ops.where(mask, u, v), a, b))
for _name, _fn in [("add", "a + b"), ("sub", "a - b"), ("neg", "-x"), ("scale", "s x, constant s"),
                   ("sum_last", "sum over the last axis"), ("select", "where(mask, a, b), mask constant")]:
    COLLAPSED_RULES[_name].__doc__ = f"{_fn}: every part. O(D)."
COLLAPSED_RULES["primal"].__doc__ = "The value f0."
COLLAPSED_RULES["coords"].__doc__ = "geo.coords: unchanged."


@_creg("with_primal")
def c_with_primal(ops, x, x0):
    """x with the value f0 replaced by x0."""
    return LaplacianJet(x0 + ops.zeros_like(x.f0), x.f1, x.f2)


@_creg("bias")
def c_bias(ops, x, b):
    """f0 + b; f1, f2 unchanged."""
    return LaplacianJet(x.f0 + b, x.f1, x.f2)


@_creg("linear")
def c_linear(ops, x, w):
    """W f0, W f1_d, W f2: three matmuls of the parts as they are (stacking them first
    would copy the whole (D+2, *batch, n) jet, for the same FLOPs). O(D)."""
    return _cmap(lambda u: ops.matmul_t(u, w), x)


@_creg("mul")
def c_mul(ops, a, b):
    """f0 = a0 b0, f1 = a0 b1 + a1 b0, f2 = a0 b2 + a2 b0 + sum_d a1_d b1_d. O(D)."""
    return LaplacianJet(a.f0 * b.f0, a.f0 * b.f1 + a.f1 * b.f0,
                        a.f0 * b.f2 + a.f2 * b.f0 + ops.sum0(a.f1 * b.f1))


@_creg("div")
def c_div(ops, a, b):
    """q0 = a0/b0, q1 = (a1 - q0 b1)/b0, q2 = (a2 - q0 b2 - sum_d q1_d b1_d)/b0. O(D)."""
    q0 = a.f0 / b.f0
    q1 = (a.f1 - q0 * b.f1) / b.f0
    return LaplacianJet(q0, q1, (a.f2 - q0 * b.f2 - ops.sum0(q1 * b.f1)) / b.f0)


@_creg("sqnorm")
def c_sqnorm(ops, x):
    """|x|^2 (last axis, keepdim): f0 = sum x0^2, f1 = 2 sum x0 x1,
    f2 = sum (2 x0 x2 + sum_d x1_d^2). O(D)."""
    return LaplacianJet(ops.sum(x.f0 * x.f0), 2.0 * ops.sum(x.f0 * x.f1),
                        ops.sum(2.0 * (x.f0 * x.f2) + ops.sum0(x.f1 * x.f1)))


def _collapse_unary(rule: Callable, name: str) -> Callable:
    """Collapsed rule of an elementwise phi from its ordinary rule: (c0, c1, c2) = the
    order-2 jet of phi along (f0, 1) = (phi, phi', phi''/2) at f0, then
    f1 = c1 f1, f2 = c1 f2 + c2 sum_d f1_d^2. Masks (relu, clamp, sqrt0) carry over. O(D)."""

    def c_rule(ops, x, *args, **kwargs):
        c = rule(ops, seed(ops, x.f0, ops.full_like(x.f0, 1.0), 2), *args, **kwargs)
        return LaplacianJet(c[0], c[1] * x.f1, c[1] * x.f2 + c[2] * ops.sum0(x.f1 * x.f1))

    c_rule.__name__ = f"collapsed_{name}"
    c_rule.__doc__ = f"{name} (from the order-2 rule at f0): f1 = phi' f1, f2 = phi' f2 + phi''/2 sum_d f1_d^2. O(D)."
    return c_rule


_UNARY = ("tanh", "sigmoid", "softplus", "sin", "cos", "log", "sqrt", "pow", "asinh",
          "atanh", "relu", "clamp", "sqrt0", "abs0", "tanhc", "asinhc", "sinc", "sinhc", "atanc", "cosq",
          "coshq")
for _name in _UNARY:
    COLLAPSED_RULES[_name] = _collapse_unary(RULES[_name], _name)


@_creg("exp")
def c_exp(ops, x):
    """e = exp(f0): f1 = e f1, f2 = e (f2 + sum_d f1_d^2 / 2), the factor e applied last
    (``exp_times``): where e overflows, +-inf by the sign of the exact bracket (0 where it
    is 0), not the NaN of inf * 0 + inf in phi' f2 + phi''/2 sum_d f1_d^2 (f2 = 0 after a
    linear map of the seed). The fused kernels (torch, Triton) compute the same. O(D)."""
    e = ops.exp(x.f0)
    return LaplacianJet(e, exp_times(ops, e, x.f1), exp_times(ops, e, x.f2 + 0.5 * ops.sum0(x.f1 * x.f1)))


def _collapse_binary(rule: Callable, name: str) -> Callable:
    """Collapsed rule of a binary elementwise phi(a, b) from its ordinary rule at order 2,
    along (1, 0), (0, 1) and (1, 1) from (a0, b0): the partials phi_a, phi_b, phi_aa/2,
    phi_bb/2 and phi_ab (the third minus the first two). Then f1 = phi_a a1 + phi_b b1 and
    f2 = phi_a a2 + phi_b b2 + sum_d (phi_aa/2 a1^2 + phi_ab a1 b1 + phi_bb/2 b1^2). O(D)."""

    def c_rule(ops, a, b):
        a0, b0 = a.f0 + 0.0 * b.f0, b.f0 + 0.0 * a.f0
        one = ops.full_like(a0, 1.0)
        ca = rule(ops, seed(ops, a0, one, 2), constant(ops, b0, 2))
        cb = rule(ops, constant(ops, a0, 2), seed(ops, b0, one, 2))
        cab = rule(ops, seed(ops, a0, one, 2), seed(ops, b0, one, 2))
        phi_ab = cab[2] - ca[2] - cb[2]
        second = ops.sum0(ca[2] * (a.f1 * a.f1) + phi_ab * (a.f1 * b.f1) + cb[2] * (b.f1 * b.f1))
        return LaplacianJet(ca[0], ca[1] * a.f1 + cb[1] * b.f1, ca[1] * a.f2 + cb[1] * b.f2 + second)

    c_rule.__name__ = f"collapsed_{name}"
    c_rule.__doc__ = (f"{name}(a, b) (from the order-2 rule at (a0, b0) along three directions): "
                      "f1 = phi_a a1 + phi_b b1, f2 = phi_a a2 + phi_b b2 + sum_d (second-order form of (a1, b1)). O(D).")
    return c_rule


def _at_rest(ops, x):
    """Where the Laplacian jet x rests at 0: f0, every f1_d and f2 are 0."""
    return (x.f0 == 0) & (ops.sum0(x.f1 * x.f1) == 0) & (x.f2 == 0)


_c_atan2_anywhere = _collapse_binary(RULES["atan2"], "atan2")


@_creg("atan2")
def c_atan2(ops, a, b):
    """atan2 from the order-2 rule (``_collapse_binary``), except where both inputs rest at 0
    (f0, f1, f2 all 0): the constant atan2(a0, b0) there, f1 = f2 = 0 (the rule, evaluated at
    b0 = 1 there so no NaN reaches gradients, would give NaN). O(D)."""
    rest = _at_rest(ops, a) & _at_rest(ops, b)
    y = _c_atan2_anywhere(ops, a, LaplacianJet(ops.where(rest, 1.0, b.f0), b.f1, b.f2))
    return LaplacianJet(ops.where(rest, ops.atan2(a.f0, b.f0), y.f0), ops.where(rest, 0.0, y.f1), ops.where(rest, 0.0, y.f2))


def _zero_at_rest(c_rule: Callable) -> Callable:
    """``c_rule`` of an x^p with 0 < p < 2 (not 1), except where the input rests at 0 (f0, f1,
    f2 all 0, the masked side of relu(x)^1.5): there phi' or phi'' is not finite but the output
    is the constant 0 (f1 = f2 = 0, not inf * 0). The rule is evaluated at 1 there, so no NaN
    reaches the gradient through the select."""

    def rule(ops, x, *args):
        rest = _at_rest(ops, x)
        y = c_rule(ops, LaplacianJet(ops.where(rest, 1.0, x.f0), x.f1, x.f2), *args)
        return LaplacianJet(*(ops.where(rest, 0.0, part) for part in y))

    return rule


_c_pow_anywhere = _collapse_unary(RULES["pow"], "pow")
_c_pow_at_rest = _zero_at_rest(_c_pow_anywhere)


@_creg("pow")
def c_pow(ops, x, exponent):
    """x^p from the order-2 rule at f0, as for any phi; for 0 < p < 2 (not 1) the constant 0
    where the input rests at 0 (``_zero_at_rest``). O(D)."""
    p = float(exponent)
    return (_c_pow_at_rest if 0 < p < 2 and p != 1 else _c_pow_anywhere)(ops, x, p)


COLLAPSED_RULES["sqrt"] = _zero_at_rest(_collapse_unary(RULES["sqrt"], "sqrt"))
COLLAPSED_RULES["sqrt"].__doc__ = "sqrt from the order-2 rule at f0; the constant 0 where the input rests at 0. O(D)."


assert set(RULES) == set(COLLAPSED_RULES), set(RULES) ^ set(COLLAPSED_RULES)


# =========================================================================================
# Manifold maps, composed from a table of rules
# =========================================================================================


class Algebra:
    """A rule table bound to an array namespace: ``J.tanh(x)`` is ``rules['tanh'](ops, x)``."""

    def __init__(self, ops: JetOps, rules: dict[str, Callable]):
        self.ops, self.rules = ops, rules
        for name, rule in rules.items():
            setattr(self, name, partial(rule, ops))


class JetManifold:
    """Base: the maps of ``manifolds.Manifold`` on jets (either table)."""

    def __init__(self, ops: JetOps, rules: dict[str, Callable] = RULES):
        self.ops, self.J = ops, Algebra(ops, rules)

    def proj(self, x):
        return x

    # The manifold's origin (a plain array) shaped like a value x0: the runtime's formula,
    # which reads only self.ops (and self.sqrt_c on the quadrics).
    origin_of = _m.Manifold.origin_like

    def origin_like(self, x):
        """geo.origin of a jet: the constant jet of the origin (it does not move along the
        curve), of either kind, shaped like ``x``."""
        if isinstance(x, LaplacianJet):
            return laplacian_constant(self.ops, self.origin_of(x.f0))
        return constant(self.ops, self.origin_of(x[0]), x.shape[0] - 1)

    def transp(self, x, y, v):
        """Parallel transport: the identity on flat manifolds."""
        return v

    def holonomy(self, *loop_and_v):
        """``v`` transported around the closed geodesic polygon of the loop points (the
        arguments before it): the manifold's ``transp`` rule, edge after edge."""
        *loop, v = loop_and_v
        for a, b in zip(loop, [*loop[1:], loop[0]]):
            v = self.transp(a, b, v)
        return v

    def dist(self, x, y):
        """|logmap(x, y)| through ``sqrt0`` (zero jet where the curves meet); in one
        dimension through ``abs0``, exact and without sqrt0's cancellation near 0."""
        J = self.J
        d = self.logmap(x, y)
        if (d.f0 if isinstance(d, LaplacianJet) else d).shape[-1] == 1:
            return J.abs0(d)
        return J.sqrt0(J.sqnorm(d))

    # -- the last axis of either kind of jet -----------------------------------------------
    @staticmethod
    def _parts(fn, *xs):
        """fn on the array of an ordinary jet, or on each part of Laplacian jets."""
        if isinstance(xs[0], LaplacianJet):
            return LaplacianJet(*(fn(*p) for p in zip(*xs)))
        return fn(*xs)

    def _coord(self, x, i: int):
        """Coordinate i, shape (..., 1)."""
        return self._parts(lambda a: a[..., i:i + 1], x)

    # -- 2-dimensional geometry (the runtime's formulas) -----------------------------------
    def inner(self, x, u, v=None):
        """g_x(u, v), shape (..., 1): the dot product on flat manifolds."""
        J = self.J
        return J.sqnorm(u) if v is None else J.sum_last(J.mul(u, v))

    def area_form(self, x, u, w):
        """omega_x(u, w) of a 2-dimensional manifold: the coordinates' cross product (flat)."""
        J, c = self.J, self._coord
        return J.sub(J.mul(c(u, 0), c(w, 1)), J.mul(c(u, 1), c(w, 0)))

    def holonomy_angle(self, *loop_and_v):
        """The signed angle from ``v`` to its holonomy around the loop (the arguments before
        it): atan2(omega(v, h), g(v, h)) at the loop's first point, h = holonomy(loop, v)."""
        *loop, v = loop_and_v
        h = self.holonomy(*loop, v)
        return self.J.atan2(self.area_form(loop[0], v, h), self.inner(loop[0], v, h))


class Euclidean(JetManifold):
    """R^n: expmap0 = logmap0 = identity, expmap = x + v, logmap = y - x."""

    def expmap0(self, v):
        return v

    def logmap0(self, y):
        return y

    def expmap(self, x, v):
        return self.J.add(x, v)

    def logmap(self, x, y):
        return self.J.sub(y, x)


class Torus(Euclidean):
    """Flat torus of period P: the maps of R^n with coefficient 0 wrapped exactly as the
    runtime wraps it (``manifolds.Torus``); higher coefficients are unchanged since the
    wrap is locally a translation. Near a wrap point (logmap: y_0 - x_0 = P/2 mod P;
    expmap/proj: x_0 = 0 mod P) the curve's image jumps; the jet is that of the branch
    chosen by coefficient 0 (the value the runtime returns)."""

    def __init__(self, ops: JetOps, period: float | str = 2.0 * math.pi, rules: dict = RULES):
        super().__init__(ops, rules)
        self.torus = _m.Torus(ops, period)
        self.period = self.torus.period

    def _wrapped(self, x, fn):
        return self.J.with_primal(x, fn(self.J.primal(x)))

    def proj(self, x):
        return self._wrapped(x, self.torus._wrap)

    def expmap0(self, v):
        return self._wrapped(v, self.torus._wrap)

    def logmap0(self, y):
        return self._wrapped(y, self.torus._shortest)

    def expmap(self, x, v):
        return self._wrapped(self.J.add(x, v), self.torus._wrap)

    def logmap(self, x, y):
        return self._wrapped(self.J.sub(y, x), self.torus._shortest)


class PoincareBall(JetManifold):
    """Poincaré ball of curvature -c, the formulas of ``manifolds.PoincareBall``
    (docs/numerics.md) composed from the rules; delta_x = 1 - c|x|^2 floored at min_delta
    (``clamp``), every point-valued map projected (``proj``, mask from coefficient 0).

    Origin: expmap0 = tanhc(c|v|^2) v and logmap0 = asinhc(c|y|^2/delta_y)/sqrt(delta_y) y
    use only squared norms and even series in q, so their jets are exact along curves through
    (or near) the origin; ``dist`` is asinh of ``sqrt0`` of a squared ratio, whose jet is the
    zero jet where the two curves meet (no Taylor series exists there)."""

    def __init__(self, ops: JetOps, c: float = 1.0, rules: dict = RULES):
        super().__init__(ops, rules)
        self.ball = _m.PoincareBall(ops, c)
        self.c, self.sqrt_c = self.ball.c, self.ball.sqrt_c

    def _delta(self, x, cq=None):
        """1 - c|x|^2 floored at min_delta; ``cq`` is c|x|^2 where the caller has it (as
        in the runtime)."""
        J = self.J
        k = self.ops.consts(J.primal(x))
        cq = J.scale(J.sqnorm(x), self.c) if cq is None else cq
        return J.clamp(J.bias(J.neg(cq), 1.0), lo=k.min_delta)

    def proj(self, x):
        """x, or (1 - ball_eps)/sqrt(c) x/|x| where |x_0| exceeds that radius."""
        J, o = self.J, self.ops
        x0 = J.primal(x)
        maxnorm = (1.0 - o.consts(x0).ball_eps) / self.sqrt_c
        out = o.norm(x0) > maxnorm
        n2 = J.sqnorm(x)
        n2 = J.select(out, n2, J.bias(J.scale(n2, 0.0), 1.0))  # safe where unused
        return J.select(out, J.mul(x, J.scale(J.pow(n2, -0.5), maxnorm)), x)

    def lambda_x(self, x):
        """2/delta_x, shape (..., 1)."""
        return self.J.scale(self.J.pow(self._delta(x), -1.0), 2.0)

    def inner(self, x, u, v=None):
        """lambda_x^2 <u, v> (the metric is conformal)."""
        lam = self.lambda_x(x)
        return self.J.mul(self.J.mul(lam, lam), super().inner(x, u, v))

    def area_form(self, x, u, w):
        """lambda_x^2 times the coordinates' cross product."""
        lam = self.lambda_x(x)
        return self.J.mul(self.J.mul(lam, lam), super().area_form(x, u, w))

    def expmap0(self, v):
        """proj(tanhc(c|v|^2) v)."""
        J = self.J
        return self.proj(J.mul(J.tanhc(J.scale(J.sqnorm(v), self.c)), v))

    def logmap0(self, y):
        """asinhc(c|y|^2/delta_y) / sqrt(delta_y) y."""
        J = self.J
        d = self._delta(y)
        w = J.div(J.scale(J.sqnorm(y), self.c), d)
        return J.mul(J.div(J.asinhc(w), J.sqrt(d)), y)

    def _add(self, x, y, dx, dy):
        J = self.J
        s = J.add(x, y)
        cs2 = J.scale(J.sqnorm(s), self.c)
        den = J.clamp(J.add(cs2, J.mul(dx, dy)), lo=self.ops.consts(J.primal(x)).tiny)
        return J.div(J.add(J.mul(cs2, x), J.mul(dx, s)), den)

    def mobius_add(self, x, y):
        """proj((c|x+y|^2 x + delta_x (x+y)) / (c|x+y|^2 + delta_x delta_y))."""
        return self.proj(self._add(x, y, self._delta(x), self._delta(y)))

    def mobius_scalar(self, r, x):
        """expmap0(r logmap0(x)); r a jet of shape (K+1, ..., 1)."""
        return self.expmap0(self.J.mul(r, self.logmap0(x)))

    def mobius_matvec(self, w, x):
        """expmap0(W logmap0(x)), W a plain (m, n) weight."""
        return self.expmap0(self.J.linear(self.logmap0(x), w))

    def expmap(self, x, v):
        """x (+) tanhc(q) v/delta_x with q = c|v|^2/delta_x^2; the second point's delta is
        sech^2 sqrt(q) = 1 - q tanhc(q)^2 (analytic in q)."""
        J = self.J
        dx = self._delta(x)
        q = J.div(J.scale(J.sqnorm(v), self.c), J.mul(dx, dx))
        t = J.tanhc(q)
        y = J.div(J.mul(t, v), dx)
        dy = J.bias(J.neg(J.mul(q, J.mul(t, t))), 1.0)
        return self.proj(self._add(x, y, dx, dy))

    def logmap(self, x, y):
        """delta_x asinhc(w2) / sqrt(delta_x delta_y D) N, N = delta_x (y-x) - c|y-x|^2 x,
        D = c|y-x|^2 + delta_x delta_y, w2 = c|y-x|^2/(delta_x delta_y)."""
        J = self.J
        u = J.sub(y, x)
        dx, dy = self._delta(x), self._delta(y)
        cu2 = J.scale(J.sqnorm(u), self.c)
        s2 = J.mul(dx, dy)
        n = J.sub(J.mul(dx, u), J.mul(cu2, x))
        f = J.div(J.mul(dx, J.asinhc(J.div(cu2, s2))), J.sqrt(J.mul(s2, J.add(cu2, s2))))
        return J.mul(f, n)

    def _gyr(self, u, t, w, h, uu, tt, ut):
        """The runtime's ``_gyr`` (the rotation of span{u, t}) on jets:
        w + alpha u - beta t with k = 2c/(h^2 + q^2), q^2 = c^2 (|u|^2|t|^2 - <u, t>^2)."""
        J, c = self.J, self.c
        uw, tw = J.sum_last(J.mul(u, w)), J.sum_last(J.mul(t, w))
        q2 = J.scale(J.sub(J.mul(uu, tt), J.mul(ut, ut)), c * c)
        tiny = self.ops.consts(J.primal(h)).tiny
        k = J.scale(J.pow(J.clamp(J.add(J.mul(h, h), q2), lo=tiny), -1.0), 2.0 * c)
        alpha = J.mul(k, J.add(J.scale(J.sub(J.mul(ut, tw), J.mul(tt, uw)), c), J.mul(h, tw)))
        beta = J.mul(k, J.add(J.scale(J.sub(J.mul(uu, tw), J.mul(ut, uw)), c), J.mul(h, uw)))
        return J.sub(J.add(w, J.mul(alpha, u)), J.mul(beta, t))

    def _gyr_plane(self, u, v, s, uu, vv, du, dv):
        """The runtime's ``_gyr_plane``: (t, h, |t|^2), t = s where |s_0| < |v_0| else v
        (mask from coefficient 0), h = (delta_u + delta_v + c|s|^2)/2."""
        J = self.J
        ss = J.sqnorm(s)
        use_s = J.primal(ss) < J.primal(vv)
        h = J.scale(J.add(J.add(du, dv), J.scale(ss, self.c)), 0.5)
        return J.select(use_s, s, v), h, J.select(use_s, ss, vv)

    def gyration(self, u, v, w):
        """gyr[u, v] w as the runtime computes it: the rotation in span{u, v} (``_gyr``),
        accurate where v ~ -u near the boundary, where Ungar's closed form cancels."""
        J, c = self.J, self.c
        uu, vv = J.sqnorm(u), J.sqnorm(v)
        t, h, tt = self._gyr_plane(u, v, J.add(u, v), uu, vv, self._delta(u, J.scale(uu, c)), self._delta(v, J.scale(vv, c)))
        return self._gyr(u, t, w, h, uu, tt, J.sum_last(J.mul(u, t)))

    def transp(self, x, y, v):
        """(lambda_x/lambda_y) gyr[y, -x] v = gyr[y, -x] v delta_y/delta_x, the gyration
        with s = y - x (the runtime's form)."""
        J, c = self.J, self.c
        xx, yy = J.sqnorm(x), J.sqnorm(y)
        dx, dy = self._delta(x, J.scale(xx, c)), self._delta(y, J.scale(yy, c))
        t, h, tt = self._gyr_plane(y, J.neg(x), J.sub(y, x), yy, xx, dy, dx)
        rot = self._gyr(y, t, v, h, yy, tt, J.sum_last(J.mul(y, t)))
        return J.mul(rot, J.div(dy, dx))

    def dist(self, x, y):
        """(2/sqrt(c)) asinh(sqrt0(c|x-y|^2/(delta_x delta_y)))."""
        J = self.J
        w2 = J.div(J.scale(J.sqnorm(J.sub(x, y)), self.c), J.mul(self._delta(x), self._delta(y)))
        return J.scale(J.asinh(J.sqrt0(w2)), 2.0 / self.sqrt_c)


# =========================================================================================
# Binding
# =========================================================================================

def bound_manifold(cls: type, ops: JetOps) -> type:
    """The jet manifold class ``cls`` with ``ops`` bound, as a backend exposes it:
    ``Bound(*params, collapsed=False)`` takes cls's own parameters (``c``, ``period``) and
    picks the rule table, ``COLLAPSED_RULES`` for Laplacian jets."""

    def __init__(self, *args, collapsed: bool = False, **kwargs):
        cls.__init__(self, ops, *args, rules=COLLAPSED_RULES if collapsed else RULES, **kwargs)

    return type(cls.__name__, (cls,), {"__init__": __init__, "__doc__": cls.__doc__})


HELPERS = ("cauchy", "seed", "constant", "lift", "to_derivatives", "from_derivatives", "sincos",
           "laplacian_seed", "laplacian_constant", "laplacian_of", "laplacian_lift",
           "stencil_seed", "stencil_sum", "layer", "add_plain", "sub_plain", "rsub_plain", "mul_plain",
           "div_plain")


def bind(ops: JetOps) -> dict[str, Any]:
    """Everything a backend module exposes, with ``ops`` bound: every rule of ``RULES``
    under its name, the helpers, ``RULES``/``COLLAPSED_RULES`` (bound tables),
    ``collapsed`` (the collapsed table as an :class:`Algebra`) and ``order``."""
    g = globals()
    out: dict[str, Any] = {name: partial(rule, ops) for name, rule in RULES.items()}
    out.update({name: partial(g[name], ops) for name in HELPERS})
    out["RULES"] = {k: out[k] for k in RULES}
    out["COLLAPSED_RULES"] = {k: partial(r, ops) for k, r in COLLAPSED_RULES.items()}
    out["collapsed"] = Algebra(ops, COLLAPSED_RULES)
    out["order"] = order
    out["LaplacianJet"] = LaplacianJet
    return out
