"""Manifold numerics written once, generic over an array namespace.

Every function here acts on the last axis and broadcasts over the leading ones; scalar
results (distances, inner products, norms, conformal factors) keep that axis with size 1,
shape ``(..., 1)``. The math only calls the primitives of :class:`ArrayOps`, so the torch
and JAX runtimes (``geomir.backends.torch.runtime``, ``geomir.backends.jax.runtime``) run
the same formulas in the same order. No torch or jax import here.

References: Ganea, Bécigneul & Hofmann 2018, "Hyperbolic Neural Networks" (gyrovector
operations); Ungar 2008, "Analytic Hyperbolic Geometry" (gyration); Nickel & Kiela 2018,
"Learning Continuous Hierarchies in the Lorentz Model" (hyperboloid); geoopt
(Kochurov et al. 2020) for conventions; Absil, Mahony & Sepulchre 2008 for sphere
retraction and transport. docs/numerics.md derives the stable forms used below.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from . import even_series as _even

Array = Any  # a torch.Tensor or a jax.Array; this module never imports either

# =========================================================================================
# Numerical constants: the only tuning knobs of the runtime, one row per float dtype.
#
# eps, tiny     finfo(dtype).eps and .tiny (smallest normal number).
# series_q      q = z**2 below which the forward-only kernels (the Triton Poincaré layer,
#               the numba engine) use 1 + a q + b q**2 for the even ratio functions f(z)/z:
#               the next term is O(q**3) with a coefficient < 0.06, exact to rounding when
#               q**3 < eps, i.e. q < eps**(1/3). The runtime's own series (autodiff-exact
#               to order 8) switch where ``RatioSeries`` below says, for every dtype.
# ball_eps      Poincaré projection keeps sqrt(c)*|x| <= 1 - ball_eps. It bounds
#               1 - c|x|**2 away from 0 so the conformal factor stays finite. float64: 1e-15
#               (about 9 ulps of 1) reaches hyperbolic radius 2*artanh(1-1e-15)/sqrt(c)
#               ~ 35/sqrt(c). float32: 1e-5 (Ganea et al. 2018's PROJ_EPS), radius
#               ~ 12.2/sqrt(c); a smaller value would reach further but 1 - c|x|**2 would
#               then carry > 1% rounding error (sqnorm error ~ sqrt(n) ulps vs 2e-5).
#               float16/bfloat16: about 8 ulps of 1 (4e-3, 3e-2).
# min_delta     floor on 1 - c|x|**2 (= eps): a point given outside the ball, or pushed
#               there by rounding in a long sum, behaves like a boundary point instead of
#               producing a negative conformal factor (NaN from sqrt).
# max_hyp_z     cap on the hyperbolic angle sqrt(c)*|v|_L fed to cosh/sinh in the
#               Lorentz exponential maps: the largest z with cosh(z)**2 finite in the
#               dtype, with margin (float64 300: e**600 ~ 1e260; float32/bfloat16 40:
#               e**80/4 ~ 1.4e34; float16 5). Beyond it the tangent vector is shortened.
# min_den       floor on |x + y|**2 on the sphere, which vanishes only at antipodal
#               points where logmap and transport are undefined (eps**2: the numerators
#               there are O(eps), so the quotients stay O(1/eps), finite).
# max_finite    finfo(dtype).max. The ratio series' switch is capped at
#               max_finite**(1/(terms + 1)) (float16: sinh and sin at 1.9 instead of 10 and 3):
#               autodiff of Horner multiplies the cotangent by q once per term, and an
#               overflow there times an underflowed partial sum was NaN.
# =========================================================================================


@dataclass(frozen=True)
class DtypeConstants:
    """Per-dtype constants (see the block comment above for how each was chosen)."""

    eps: float
    tiny: float
    series_q: float
    ball_eps: float
    min_delta: float
    max_hyp_z: float
    min_den: float
    max_finite: float


def _row(eps: float, tiny: float, ball_eps: float, max_hyp_z: float, max_finite: float) -> DtypeConstants:
    return DtypeConstants(
        eps=eps, tiny=tiny, series_q=eps ** (1.0 / 3.0), ball_eps=ball_eps,
        min_delta=eps, max_hyp_z=max_hyp_z, min_den=eps * eps, max_finite=max_finite,
    )


CONSTANTS: dict[str, DtypeConstants] = {
    "float64": _row(2.0 ** -52, 2.0 ** -1022, 1e-15, 300.0, 1.7976931348623157e308),
    "float32": _row(2.0 ** -23, 2.0 ** -126, 1e-5, 40.0, 3.4028234663852886e38),
    "float16": _row(2.0 ** -10, 2.0 ** -14, 4e-3, 5.0, 65504.0),
    "bfloat16": _row(2.0 ** -7, 2.0 ** -126, 3e-2, 40.0, 3.3895313892515355e38),
}

# The series branch of the even ratio functions f(z)/z = h(q), q = z^2: (number of terms,
# switch). Below the switch h is its Taylor series about 0 (Horner), above it the quotient
# f(sqrt q)/sqrt q. Both branches give values to about 1 ulp; the switch is placed for
# AUTODIFF of the runtime (torch.func.hessian, nested jvp, the gradient of a Laplacian
# loss): derivatives of the quotient in q cancel like eps q^-k at order k, those of a cut
# series lose the tail's C(n, k) a_n q^(n-k). Measured against mpmath (float64, k <= 8,
# relative to each derivative): the worst on either side of the switch is <= 3e-13 up to
# order 3, <= 2e-12 at order 4 and <= 1e-8 at order 8, but for sin (2e-6 just above its
# switch; docs/numerics.md has the table). The switch of sin stays
# below its first zero q = pi^2, where the alternating series would lose the value's ulps.
# float32 and narrower use the same places: the series is exact to their rounding there.
@dataclass(frozen=True)
class RatioSeries:
    """Coefficients a_1..a_(n-1) of h(q) = 1 + a_1 q + ... (floats) and the switch in q."""

    coeffs: tuple[float, ...]
    switch: float


def _series(exact, n: int, switch: float) -> RatioSeries:
    return RatioSeries(tuple(float(a) for a in exact(n)[1:]), switch)


TANHC = _series(_even.tanhc_series, 24, 0.3)
SINHC = _series(_even.sinhc_series, 16, 10.0)
SINC = _series(_even.sinc_series, 16, 3.0)
ASINHC = _series(_even.asinhc_series, 24, 0.15)
ATANC = _series(_even.atanc_series, 24, 0.15)


# =========================================================================================
# Array primitives
# =========================================================================================


class ArrayOps:
    """The array primitives the manifold math needs; a backend implements the abstract ones.

    Elementwise functions follow NumPy semantics; ``sum`` reduces the LAST axis and keeps
    it (size 1). ``where``/``clamp`` accept Python floats for the branches/bounds. The
    derived helpers (``clamp``, ``sqnorm``, ``dot``, ``norm``) are written here once, in
    terms of the primitives, so both backends also share their gradient conventions
    (``clamp`` passes the gradient where ``lo <= x <= hi``, like ``torch.clamp``).
    log, log1p, expm1, atanh, acosh, abs, sign, maximum and minimum complete the protocol
    for other callers; the formulas below do not need them.
    """

    # elementwise ---------------------------------------------------------------------
    def sqrt(self, x: Array) -> Array: raise NotImplementedError
    def exp(self, x: Array) -> Array: raise NotImplementedError
    def log(self, x: Array) -> Array: raise NotImplementedError
    def log1p(self, x: Array) -> Array: raise NotImplementedError
    def expm1(self, x: Array) -> Array: raise NotImplementedError
    def tanh(self, x: Array) -> Array: raise NotImplementedError
    def atanh(self, x: Array) -> Array: raise NotImplementedError
    def sinh(self, x: Array) -> Array: raise NotImplementedError
    def cosh(self, x: Array) -> Array: raise NotImplementedError
    def asinh(self, x: Array) -> Array: raise NotImplementedError
    def acosh(self, x: Array) -> Array: raise NotImplementedError
    def sin(self, x: Array) -> Array: raise NotImplementedError
    def cos(self, x: Array) -> Array: raise NotImplementedError
    def atan(self, x: Array) -> Array: raise NotImplementedError
    def atan2(self, y: Array, x: Array) -> Array: raise NotImplementedError
    def abs(self, x: Array) -> Array: raise NotImplementedError
    def sign(self, x: Array) -> Array: raise NotImplementedError
    def floor(self, x: Array) -> Array: raise NotImplementedError
    def remainder(self, x: Array, p: float) -> Array:
        """Floor-mod: the result has the sign of ``p`` (Python's ``%``)."""
        raise NotImplementedError
    def where(self, cond: Array, a: Array | float, b: Array | float) -> Array: raise NotImplementedError
    def maximum(self, a: Array, b: Array) -> Array: raise NotImplementedError
    def minimum(self, a: Array, b: Array) -> Array: raise NotImplementedError

    # shape and dtype -----------------------------------------------------------------
    def sum(self, x: Array) -> Array:
        """Sum over the last axis, keepdim."""
        raise NotImplementedError
    def concat(self, xs: list[Array]) -> Array:
        """Concatenate along the last axis."""
        raise NotImplementedError
    def matmul_t(self, x: Array, w: Array) -> Array:
        """``x @ w^T``: ``x`` of shape (..., n), ``w`` of shape (m, n) -> (..., m)."""
        raise NotImplementedError
    def zeros_like(self, x: Array) -> Array: raise NotImplementedError
    def full_like(self, x: Array, value: float) -> Array: raise NotImplementedError
    def dtype_name(self, x: Array) -> str:
        """'float64', 'float32', 'float16' or 'bfloat16'."""
        raise NotImplementedError

    # the step axis of paths, shape (..., T, n): axis -2 ---------------------------------
    def sum_steps(self, x: Array) -> Array:
        """Sum over axis -2, dropping it (0 for no steps)."""
        raise NotImplementedError
    def max_steps(self, x: Array) -> Array:
        """Maximum over axis -2 (at least one step), dropping it."""
        raise NotImplementedError
    def cumsum_steps(self, x: Array) -> Array:
        """Running sum along axis -2."""
        raise NotImplementedError
    def concat_steps(self, xs: list[Array]) -> Array:
        """Concatenate along axis -2."""
        raise NotImplementedError
    def min_last(self, x: Array) -> Array:
        """Minimum over the last axis, keepdim."""
        raise NotImplementedError

    # derived (shared by every backend) -------------------------------------------------
    def clamp(self, x: Array, lo: float | None = None, hi: float | None = None) -> Array:
        if lo is not None:
            x = self.where(x < lo, lo, x)
        if hi is not None:
            x = self.where(x > hi, hi, x)
        return x

    def sqnorm(self, x: Array) -> Array:
        return self.sum(x * x)

    def dot(self, x: Array, y: Array) -> Array:
        return self.sum(x * y)

    def norm(self, x: Array) -> Array:
        """Euclidean norm over the last axis; exactly 0, with zero gradient, at 0."""
        return self.sqrt0(self.sqnorm(x))

    def sqrt0(self, q: Array) -> Array:
        """sqrt(q) for q >= 0 with a finite gradient everywhere: 0 (value and gradient)
        where q <= tiny; NaN stays NaN (never a silent 0). The inner ``where`` keeps the
        unused branch finite so its gradient is 0, not NaN (the "double where")."""
        tiny = self.tiny(q)
        pos = q > tiny
        return self.where(pos, self.sqrt(self.where(pos, q, 1.0)), self.where(q <= tiny, 0.0, q))

    def eps(self, x: Array) -> float:
        """finfo(x.dtype).eps."""
        return self.consts(x).eps

    def tiny(self, x: Array) -> float:
        """finfo(x.dtype).tiny (smallest normal number)."""
        return self.consts(x).tiny

    def consts(self, x: Array) -> DtypeConstants:
        """The row of :data:`CONSTANTS` for ``x``'s dtype."""
        name = self.dtype_name(x)
        try:
            return CONSTANTS[name]
        except KeyError:
            raise TypeError(f"manifold ops need a floating-point array, found dtype {name}") from None


# =========================================================================================
# Shared scalar helpers (functions of q = z**2, smooth at q = 0)
# =========================================================================================


def _ratio(ops: ArrayOps, q: Array, fn, spec: RatioSeries) -> Array:
    """f(z)/z at z = sqrt(q), q >= 0, for an odd f with f'(0) = 1: Taylor series below
    ``spec.switch``, direct quotient above (with a safe argument in the unused branch)."""
    small = q < min(spec.switch, ops.consts(q).max_finite ** (1.0 / (len(spec.coeffs) + 2)))
    z = ops.sqrt(ops.where(small, 1.0, q))
    direct = fn(z) / z
    qq = ops.where(small, q, 0.0)  # a safe argument in the unused branch: no q^n overflow
    coeffs = spec.coeffs
    series = coeffs[-1]
    for a in reversed(coeffs[:-1]):  # Horner: 1 + q (a_1 + q (a_2 + ...))
        series = a + qq * series
    return ops.where(small, 1.0 + qq * series, direct)


def _tanhc(ops, q): return _ratio(ops, q, ops.tanh, TANHC)
def _sinhc(ops, q): return _ratio(ops, q, ops.sinh, SINHC)
def _sinc(ops, q): return _ratio(ops, q, ops.sin, SINC)
def _asinhc(ops, q): return _ratio(ops, q, ops.asinh, ASINHC)
def _atanc(ops, q): return _ratio(ops, q, ops.atan, ATANC)


def _coshq(ops: ArrayOps, q: Array) -> Array:
    """cosh(sqrt(q)) = 1 + 2 sinh(z/2)**2, smooth in q."""
    s = _sinhc(ops, q * 0.25)
    return 1.0 + 0.5 * q * s * s


def _cosq(ops: ArrayOps, q: Array) -> Array:
    """cos(sqrt(q)) = 1 - 2 sin(z/2)**2, smooth in q."""
    s = _sinc(ops, q * 0.25)
    return 1.0 - 0.5 * q * s * s


def _atan2c(ops: ArrayOps, a2: Array, b: Array) -> Array:
    """atan2(a, b)/a with a = sqrt(a2) >= 0: atan(a/b)/(a/b)/b (smooth at a = 0) where
    b >= a > 0 or b > a = 0 (angle <= pi/4, no overflow in a/b), the direct quotient
    otherwise (there a >= |b|, so a > 0 unless a = b = 0, which is not a sphere point)."""
    pos = (b > 0) & (b * b >= a2)
    bs = ops.where(pos, b, 1.0)
    fwd = _atanc(ops, a2 / (bs * bs)) / bs
    a = ops.sqrt(ops.clamp(ops.where(pos, 1.0, a2), lo=ops.consts(a2).tiny))
    back = ops.atan2(a, b) / a
    return ops.where(pos, fwd, back)


def _sech2(ops: ArrayOps, z: Array) -> Array:
    """1/cosh(z)**2 = 4e/(1+e)**2 with e = exp(-2z), z >= 0: underflows to 0, no inf/inf."""
    e = ops.exp(-2.0 * z)
    d = 1.0 + e
    return 4.0 * e / (d * d)


# -- huge but finite inputs --------------------------------------------------------------------
# |v|^2 overflows for |v| > sqrt(max_finite) (1.8e19 in float32, 1.3e154 in float64), and the
# ball's ratios (c|v|^2/delta^2, c|y|^2/delta) overflow earlier where delta is small. The ball
# maps that gave a wrong finite answer or NaN there flag such rows by comparing a squared
# norm they compute anyway, and give the flagged rows the map's limit or the formula of a
# scaled copy sigma x (sigma a power of two): a few (..., 1) ops, and one more reduction
# where a squared norm itself overflows (proj, expmap). The plain rows keep their values.
# docs/numerics.md ("Huge inputs") lists what is covered, and what is left, per dtype.


@functools.lru_cache(maxsize=None)
def _down_scale(max_finite: float, n: int, k: float = 1.0) -> float:
    """The largest power of two sigma with 4 n k (sigma max_finite)^2 <= max_finite: for every
    finite x with n entries, k |sigma x|^2 is finite, with a factor 4 to spare."""
    return 2.0 ** math.floor(-0.5 * (math.log2(4.0 * n * k) + math.log2(max_finite)))


@functools.lru_cache(maxsize=None)
def _add_limit(max_finite: float, c: float) -> float:
    """M = (max_finite sqrt(c)/4)^(2/3): where c|x+y|^2 <= M and y is in the ball, the Möbius
    numerator c|x+y|^2 x cannot overflow (|x| <= |x+y| + |y|, M^1.5/sqrt(c) = max_finite/4)."""
    return (max_finite / 4.0) ** (2.0 / 3.0) * c ** (1.0 / 3.0)  # no overflow in between


def _is_bool(value) -> bool:
    """A Python or NumPy bool: ``float`` takes True for 1.0, which no caller means."""
    return isinstance(value, bool) or type(value).__name__ in ("bool", "bool_")  # NumPy 2: numpy.bool


def _check_curvature(c: float) -> float:
    if _is_bool(c):
        raise ValueError(f"curvature c must be a number, found {c!r}")
    c = float(c)
    if not (math.isfinite(c) and c > 0.0):
        raise ValueError(f"curvature c must be finite and > 0, found {c}")
    return c


# =========================================================================================
# Manifolds
# =========================================================================================


class Manifold:
    """Base class: Riemannian operations on the last axis of batched arrays.

    Defaults describe a flat metric (identity transport, tangent space = R^n); curved
    manifolds override what differs. Scalars come back with shape ``(..., 1)``.
    """

    name = "manifold"

    def __init__(self, ops: ArrayOps) -> None:
        self.ops = ops

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    # points ---------------------------------------------------------------------------
    def origin_like(self, x: Array) -> Array:
        """The origin, with ``x``'s shape and dtype."""
        return self.ops.zeros_like(x)

    def proj(self, x: Array) -> Array:
        """Closest point of the manifold (identity on flat space)."""
        return x

    def expmap(self, x: Array, v: Array) -> Array:
        raise NotImplementedError

    def logmap(self, x: Array, y: Array) -> Array:
        raise NotImplementedError

    def expmap0(self, v: Array) -> Array:
        return self.expmap(self.origin_like(v), v)

    def logmap0(self, y: Array) -> Array:
        return self.logmap(self.origin_like(y), y)

    def retr(self, x: Array, v: Array) -> Array:
        """Retraction; the exponential map unless a subclass has a cheaper second-order one."""
        return self.expmap(x, v)

    def dist(self, x: Array, y: Array) -> Array:
        """Geodesic distance, shape (..., 1)."""
        return self.norm(x, self.logmap(x, y))

    # tangent vectors ------------------------------------------------------------------
    def proju(self, x: Array, u: Array) -> Array:
        """Projection of an ambient vector onto the tangent space at ``x``."""
        return u

    def inner(self, x: Array, u: Array, v: Array | None = None) -> Array:
        """Riemannian metric g_x(u, v) (v defaults to u), shape (..., 1)."""
        return self.ops.dot(u, u if v is None else v)

    def norm(self, x: Array, u: Array) -> Array:
        """Riemannian norm sqrt(g_x(u, u)), shape (..., 1); 0 with zero gradient at u = 0."""
        return self.ops.sqrt0(self.ops.clamp(self.inner(x, u), lo=0.0))

    def component_inner(self, x: Array, u: Array) -> Array:
        """The squared size of ``u`` that Riemannian Adam averages (Bécigneul & Ganea 2019):
        the squared Riemannian norm, one value per point, shape (..., 1) (clamped at 0 for
        indefinite ambient metrics). Euclidean-like manifolds override it per coordinate,
        which makes Riemannian Adam coincide with Adam there."""
        return self.ops.clamp(self.inner(x, u), lo=0.0)

    def egrad2rgrad(self, x: Array, g: Array) -> Array:
        """Riemannian gradient from the Euclidean gradient ``g`` of the coordinates."""
        return self.proju(x, g)

    def transp(self, x: Array, y: Array, v: Array) -> Array:
        """Parallel transport of ``v`` (tangent at ``x``) to ``y`` along the geodesic."""
        return v

    # holonomy -------------------------------------------------------------------------
    def holonomy(self, loop: Sequence[Array], v: Array) -> Array:
        """``v`` (tangent at ``loop[0]``) parallel-transported around the closed geodesic
        polygon loop[0] -> loop[1] -> ... -> loop[-1] -> loop[0]."""
        points = [*loop, loop[0]]
        for a, b in zip(points[:-1], points[1:]):
            v = self.transp(a, b, v)
        return v

    def area_form(self, x: Array, u: Array, w: Array) -> Array:
        """The Riemannian area form omega_x(u, w) of a 2-dimensional manifold (positive
        when w is counterclockwise from u), shape (..., 1). Flat: the coordinates' cross
        product."""
        return u[..., 0:1] * w[..., 1:2] - u[..., 1:2] * w[..., 0:1]

    def oriented_angle(self, x: Array, u: Array, w: Array) -> Array:
        """The signed angle from ``u`` to ``w`` in the tangent plane at ``x`` (2-D), in (-pi, pi]."""
        return self.ops.atan2(self.area_form(x, u, w), self.inner(x, u, w))

    def holonomy_angle(self, loop: Sequence[Array], v: Array) -> Array:
        """The rotation angle of the holonomy around ``loop`` (2-D manifolds): by
        Gauss-Bonnet, the integral of the curvature over the enclosed region, positive for
        a counterclockwise loop (0 on flat space)."""
        return self.oriented_angle(loop[0], v, self.holonomy(loop, v))


def _det3(x: Array, u: Array, w: Array) -> Array:
    """det[x, u, w] of 3-vectors on the last axis, shape (..., 1)."""
    def c(a, i):
        return a[..., i:i + 1]
    return (c(x, 0) * (c(u, 1) * c(w, 2) - c(u, 2) * c(w, 1))
            - c(x, 1) * (c(u, 0) * c(w, 2) - c(u, 2) * c(w, 0))
            + c(x, 2) * (c(u, 0) * c(w, 1) - c(u, 1) * c(w, 0)))


class Euclidean(Manifold):
    """R^n with the standard metric."""

    name = "euclidean"

    def component_inner(self, x, u):
        return u * u

    def expmap(self, x, v):
        return x + v

    def logmap(self, x, y):
        return y - x

    def expmap0(self, v):
        return v

    def logmap0(self, y):
        return y


class Torus(Euclidean):
    """Flat torus (S^1)^n of period P: points are angles wrapped to [0, P), logmap is the
    shortest signed difference in [-P/2, P/2), dist its Euclidean norm."""

    name = "torus"
    PERIODS = {"radians": 2.0 * math.pi, "turns": 1.0}

    def __init__(self, ops: ArrayOps, period: float | str = 2.0 * math.pi) -> None:
        super().__init__(ops)
        if isinstance(period, str):
            if period not in self.PERIODS:
                raise ValueError(f"unknown torus period {period!r} (expected "
                                 f"{', '.join(repr(k) for k in self.PERIODS)} or a positive number)")
            p = self.PERIODS[period]
        elif _is_bool(period):
            raise ValueError(f"torus period must be a positive number, found {period!r}")
        else:
            p = float(period)
        if not (math.isfinite(p) and p > 0.0):
            raise ValueError(f"torus period must be finite and > 0, found {period}")
        self.period = p

    def __repr__(self) -> str:
        return f"Torus(period={self.period!r})"

    def _wrap(self, x):
        """x mod P in [0, P); remainder can round up to exactly P for tiny negative x."""
        o, p = self.ops, self.period
        r = o.remainder(x, p)
        return o.where(r >= p, r - p, r)

    def _shortest(self, d):
        """d - P*round(d/P) in [-P/2, P/2) (to rounding); exactly d when |d| < P/2, where
        d/P + 1/2 may round up to 1 one ulp below P/2 (which flipped the sign)."""
        o, p = self.ops, self.period
        return o.where(o.abs(d) < 0.5 * p, d, d - p * o.floor(d / p + 0.5))

    def proj(self, x):
        return self._wrap(x)

    def expmap(self, x, v):
        return self._wrap(x + v)

    def logmap(self, x, y):
        return self._shortest(y - x)

    def expmap0(self, v):
        return self._wrap(v)

    def logmap0(self, y):
        return self._shortest(y)

    # paths, shape (..., T, n): winding numbers (math in geomir.backends.common.winding) ----
    def displacement(self, path):
        """The unwrapped displacement D = sum of shortest steps, (..., n)."""
        from . import winding

        return winding.displacement(self.ops, path, self.period)

    def winding(self, path):
        """The winding vector round(D / P), integer-valued, (..., n)."""
        from . import winding

        return winding.winding(self.ops, path, self.period)

    def winding_margin(self, path):
        """The certified per-point perturbation below which the winding cannot change, (..., 1)."""
        from . import winding

        return winding.margin(self.ops, path, self.period)

    def unwrap(self, path):
        """The path lifted to R^n, (..., T, n)."""
        from . import winding

        return winding.unwrap(self.ops, path, self.period)


class PoincareBall(Manifold):
    """Poincaré ball of curvature -c: |x| < 1/sqrt(c), metric lambda_x^2 <.,.>,
    lambda_x = 2/(1 - c|x|^2), origin 0 (Ganea et al. 2018).

    Written with delta_x = 1 - c|x|^2 and three cancellation-free identities
    (a = sqrt(c) x, b = sqrt(c) y):
      1 + 2<a,b> + |a|^2|b|^2 = |a+b|^2 + delta_x delta_y          (Möbius denominator)
      |(-x) (+) y|^2 = |x-y|^2 / (c|x-y|^2 + delta_x delta_y)       (Ungar)
      artanh(r) = asinh(r / sqrt(1 - r^2))
    so that dist = 2/sqrt(c) asinh(sqrt(c)|x-y| / sqrt(delta_x delta_y)).
    Every op that returns a point projects it (``proj``).
    """

    name = "poincare"

    def __init__(self, ops: ArrayOps, c: float = 1.0) -> None:
        super().__init__(ops)
        self.c = _check_curvature(c)
        self.sqrt_c = math.sqrt(self.c)

    def __repr__(self) -> str:
        return f"PoincareBall(c={self.c!r})"

    def _delta(self, x, cq=None):
        """1 - c|x|^2 (``cq``: c|x|^2 if already computed), floored at min_delta."""
        o = self.ops
        if cq is None:
            cq = self.c * o.sqnorm(x)
        return o.clamp(1.0 - cq, lo=o.consts(x).min_delta)

    def lambda_x(self, x):
        """Conformal factor 2/(1 - c|x|^2), shape (..., 1)."""
        return 2.0 / self._delta(x)

    def _proj_factor(self, x, force=None):
        """(|x|^2, the factor ``proj`` multiplies x by): maxnorm/|x| where |x| > maxnorm or
        in ``force`` ((..., 1), bool: rows holding a scaled copy of a point beyond the
        range, sent to the sphere of radius maxnorm whatever their norm), else 1. The
        comparison takes a plain sqrt, the factor the sqrt of a safe argument: the values
        and derivatives of the former sqrt0 form, in 9 ops instead of 15."""
        o = self.ops
        maxnorm = (1.0 - o.consts(x).ball_eps) / self.sqrt_c
        q = o.sqnorm(x)
        out = o.sqrt(q) > maxnorm
        if force is not None:
            out = out | force
        return q, o.where(out, maxnorm / o.sqrt(o.where(out, q, 1.0)), 1.0)

    def _proj(self, x, force=None):
        """``proj`` of an x whose squared norm is finite (see :meth:`_proj_factor`)."""
        return x * self._proj_factor(x, force)[1]

    def proj(self, x):
        """x, or maxnorm x/|x| (maxnorm = (1 - ball_eps)/sqrt(c)) where |x| > maxnorm. Where
        |x|^2 overflows (not a point near the ball: |x| > 1.8e19 in float32) the row is NaN,
        reported by ``check_finite`` (it was a silent 0): the exact value would need a second
        reduction on every call, and proj runs in every optimizer step."""
        q, factor = self._proj_factor(x)
        return x * self.ops.where(q > self.ops.consts(x).max_finite, math.nan, factor)

    def inner(self, x, u, v=None):
        lam = self.lambda_x(x)
        return lam * lam * self.ops.dot(u, u if v is None else v)

    def norm(self, x, u):
        return self.lambda_x(x) * self.ops.norm(u)

    def egrad2rgrad(self, x, g):
        h = 0.5 * self._delta(x)
        return g * (h * h)

    def _add(self, x, y, dx, dy, cqx=None):
        """x (+) y = (c|x+y|^2 x + delta_x (x+y)) / (c|x+y|^2 + delta_x delta_y), unprojected.
        Given ``cqx`` (c|x|^2), a row with c|x+y|^2 > M (``_add_limit``) gives x, the limit:
        the rest, delta_x (x+y - delta_y x)/den, is below 1/(c|x+y|) + |x| delta_y/(c|x+y|^2);
        and NaN where c|x|^2 overflowed (projecting x would need |x|)."""
        o = self.ops
        s = x + y
        cs2 = self.c * o.sqnorm(s)
        if cqx is not None:
            big = cs2 > _add_limit(o.consts(x).max_finite, self.c)
            cs2 = o.where(big, 1.0 + 0.0 * cqx, cs2)  # NaN where c|x|^2 overflowed
            dx = o.where(big, 0.0, dx)
        den = o.clamp(cs2 + dx * dy, lo=o.consts(x).tiny)
        return (cs2 * x + dx * s) / den

    def mobius_add(self, x, y):
        """Möbius addition x (+) y; the limit x where x + y is huge (``_add``; float16: not
        guarded, its M would be 645)."""
        o = self.ops
        cqx = self.c * o.sqnorm(x)
        guard = cqx if o.consts(x).max_finite > 1e5 else None
        return self._proj(self._add(x, y, self._delta(x, cqx), self._delta(y), guard))

    def expmap0(self, v):
        """proj(tanhc(c|v|^2) v). Where c|v|^2 overflows: proj of sigma v (``_down_scale``),
        forced to the boundary, i.e. maxnorm v/|v| (tanhc(inf) = 0 gave 0)."""
        o = self.ops
        k = o.consts(v)
        q = self.c * o.sqnorm(v)
        huge = q > k.max_finite
        f = o.where(huge, _down_scale(k.max_finite, v.shape[-1]), _tanhc(o, q))
        return self._proj(f * v, huge)

    def logmap0(self, y):
        """asinhc(w^2)/sqrt(delta_y) y with w^2 = c|y|^2/delta_y. Where w^2 overflows (and
        c|y|^2 does not), delta_y = min_delta and asinh(w) = log(2w) to rounding, so
        logmap0(y) = (log 2 - log(min_delta)/2 + log r)/r * y with r = sqrt(c)|y| (it was
        NaN); the other branch gets w^2 = 0 there, so gradients stay finite. |y|^2 is
        computed once (it was twice: the gradient's two terms now meet before the
        reduction's backward, a rounding-level change). Where c|y|^2 overflows: NaN."""
        o = self.ops
        k = o.consts(y)
        cq = self.c * o.sqnorm(y)
        d = self._delta(y, cq)
        w2 = cq / d
        far = w2 > k.max_finite
        r = o.sqrt(cq + d)  # sqrt(c)|y| where far (cq >= max_finite d there), > 0 elsewhere
        g = (math.log(2.0) - 0.5 * math.log(k.min_delta) + o.log(r)) / r
        return o.where(far, g, _asinhc(o, o.where(far, 0.0, w2)) / o.sqrt(d)) * y

    def expmap(self, x, v):
        """x (+) tanh(sqrt(c)|v|/delta_x) v/(sqrt(c)|v|); the second point's delta is
        passed as sech^2 z = 1 - q tanhc(q)^2 (exact, analytic in q: autodiff through
        v = 0 is exact to every order) below q = 1, as 4e/(1+e)^2 above (no cancellation),
        instead of being recomputed from its coordinates. Where q = c|v|^2/delta_x^2
        overflows, the second point is its limit v/(sqrt(c)|v|) = sigma v/(sqrt(c)|sigma v|)
        (sigma from ``_down_scale`` takes tanhc's place in t v, and sqrt(c)|sigma v| that of
        delta_x in t v/delta_x), with delta 0; tanhc(inf) = 0 went along x."""
        o = self.ops
        k = o.consts(x)
        dx = self._delta(x)
        q = self.c * o.sqnorm(v) / (dx * dx)
        t = _tanhc(o, q)
        small = q < 1.0
        dy = o.where(small, 1.0 - q * t * t, _sech2(o, o.sqrt(o.where(small, 1.0, q))))
        huge = q > k.max_finite
        tv = o.where(huge, _down_scale(k.max_finite, v.shape[-1], self.c), t) * v  # sigma v there
        cqs = o.sqnorm(tv) if self.c == 1.0 else self.c * o.sqnorm(tv)
        y = tv / o.where(huge, o.sqrt(o.where(huge, cqs, 1.0)), dx)
        del tv  # freed as early as t * v was: no more (n, d) memory live than before
        return self._proj(self._add(x, y, dx, dy))

    def logmap(self, x, y):
        """(2/(sqrt(c) lambda_x)) artanh(sqrt(c)|m|) m/|m|, m = (-x) (+) y, written as
        delta_x asinh(w)/w / sqrt(delta_x delta_y D) * N with N = delta_x (y-x) - c|y-x|^2 x,
        D = c|y-x|^2 + delta_x delta_y, w^2 = c|y-x|^2/(delta_x delta_y): one smooth
        factor, so the Jacobian at y = x is exactly the identity."""
        o = self.ops
        u = y - x
        dx, dy = self._delta(x), self._delta(y)
        cu2 = self.c * o.sqnorm(u)
        s2 = dx * dy
        n = dx * u - cu2 * x
        return dx * _asinhc(o, cu2 / s2) / o.sqrt(s2 * (cu2 + s2)) * n

    def dist(self, x, y):
        o = self.ops
        w2 = self.c * o.sqnorm(x - y) / (self._delta(x) * self._delta(y))
        return (2.0 / self.sqrt_c) * o.asinh(o.sqrt0(w2))

    def _gyr(self, u, t, w, h, uu, tt, ut):
        """gyr[u, v] w from u, t = v or t = s = u + v (the rows' choice: u ^ v = u ^ s),
        h = 1 + c<u, v>, |u|^2, |t|^2 and <u, t>.

        gyr[u, v] is the rotation of the plane span{u, v} by the argument of
        (1 + c u conj(v))^2 in a complex coordinate of that plane (Ungar 2008), the identity
        on its orthogonal complement. With A w = u<t, w> - t<u, w> (the bivector u ^ v) and
        q^2 = c^2 |u ^ t|^2 = c^2 (|u|^2|t|^2 - <u, t>^2) (Gram, >= 0):
            gyr[u, v] w = w + (2c/d) (c A^2 w + h A w),   d = h^2 + q^2,
        which is Ungar's w + 2(a u + b v)/d term by term (d = |1 + c u conj(v)|^2 =
        1 + 2c<u,v> + c^2|u|^2|v|^2). A is formed from the shorter of v and s, so its
        rounding is eps |u| min(|v|, |s|): with v ~ -u (nearby points near the boundary in
        ``transp``) the closed form's a u + b v cancelled terms of order |w| down to d |w|;
        here the error stays about eps |w|. d = h^2 + q^2 (not c|s|^2 + delta_u delta_v, its
        equal) keeps the map a rotation to rounding where the deltas are rounded. q^2 is not
        clamped at 0 (only d at tiny): on parallel u, t it rounds to either sign, and a clamp
        there zeroed its derivatives, which reach third-order ones (its rounding is far below
        h^2 >= (delta_u + delta_v)^2/4)."""
        o, c = self.ops, self.c
        uw, tw = o.dot(u, w), o.dot(t, w)
        q2 = (c * c) * (uu * tt - ut * ut)
        k = (2.0 * c) / o.clamp(h * h + q2, lo=o.consts(u).tiny)
        alpha = k * (c * (ut * tw - tt * uw) + h * tw)
        beta = k * (c * (uu * tw - ut * uw) + h * uw)
        return w + alpha * u - beta * t

    def _gyr_plane(self, u, v, s, uu, vv, du, dv):
        """(t, h, |t|^2) for ``_gyr``: t = s = u + v where |s| < |v|, else v (a 0/1 factor
        picks it exactly), and h = 1 + c<u, v> = (delta_u + delta_v + c|s|^2)/2, a sum of
        positive terms."""
        o = self.ops
        ss = o.sqnorm(s)
        use_s = ss < vv
        m = o.where(use_s, 1.0, o.zeros_like(ss))
        t = m * s + (1.0 - m) * v
        return t, 0.5 * (du + dv + self.c * ss), o.where(use_s, ss, vv)

    def gyration(self, u, v, w):
        """gyr[u, v] w = (-(u (+) v)) (+) (u (+) (v (+) w)), as the rotation in span{u, v}
        it is (``_gyr``)."""
        o, c = self.ops, self.c
        uu, vv = o.sqnorm(u), o.sqnorm(v)
        t, h, tt = self._gyr_plane(u, v, u + v, uu, vv, self._delta(u, c * uu), self._delta(v, c * vv))
        return self._gyr(u, t, w, h, uu, tt, o.dot(u, t))

    def transp(self, x, y, v):
        """(lambda_x/lambda_y) gyr[y, -x] v (Ganea et al. 2018, eq. 23), the gyration
        written as a rotation with s = y - x (``_gyr``)."""
        o, c = self.ops, self.c
        xx, yy = o.sqnorm(x), o.sqnorm(y)
        dx, dy = self._delta(x, c * xx), self._delta(y, c * yy)
        t, h, tt = self._gyr_plane(y, -x, y - x, yy, xx, dy, dx)
        return self._gyr(y, t, v, h, yy, tt, o.dot(y, t)) * (dy / dx)

    def area_form(self, x, u, w):
        """lambda_x^2 times the coordinates' cross product (the metric is conformal)."""
        return self.lambda_x(x) ** 2 * super().area_form(x, u, w)

    def mobius_scalar(self, r, x):
        """r (x) x = expmap0(r logmap0(x)); ``r`` broadcasts against (..., 1)."""
        return self.expmap0(r * self.logmap0(x))

    def mobius_matvec(self, w, x):
        """M (x) x = expmap0(W logmap0(x)); ``w`` has shape (m, n), ``x`` (..., n) -> (..., m).
        Equal to Ganea et al.'s tanh(|Mx|/|x| artanh(sqrt(c)|x|)) Mx/(sqrt(c)|Mx|), and 0 when Mx = 0."""
        return self.expmap0(self.ops.matmul_t(self.logmap0(x), w))


class _Quadric(Manifold):
    """{x : <x, x>_M = sigma/c} in R^n for an ambient bilinear form M: the unit sphere
    (sigma = +1, Euclidean M, c = 1) and the hyperboloid (sigma = -1, Minkowski M).

    With u = y - x and l2 = <u, u>_M (the squared chord), both share
      logmap = f(l2) * (u + sigma (c/2) l2 x)      (= y - cos_sigma(theta) x, cancellation-free)
      transp = v - 2 <y, v>_M / <x+y, x+y>_M (x + y)
      expmap = cos_sigma(z) x + sin_sigma(z)/z v,  z = sqrt(c <v, v>_M)
    Subclasses give M, the trig pair, the chord -> angle maps and <x+y, x+y>_M.
    """

    sigma = 1.0

    def __init__(self, ops: ArrayOps, c: float = 1.0) -> None:
        super().__init__(ops)
        self.c = _check_curvature(c)
        self.sqrt_c = math.sqrt(self.c)

    # hooks ------------------------------------------------------------------------------
    def _mdot(self, u, v):
        """Ambient bilinear form, shape (..., 1)."""
        raise NotImplementedError

    def _cos_sinc(self, q):
        """(cos_sigma(z), sin_sigma(z)/z) at z = sqrt(q)."""
        raise NotImplementedError

    def _cap(self, v, q):
        """Optionally shorten ``v`` (q = c <v, v>_M) before exponentiating."""
        return v, q

    def _log_factor(self, x, y, l2):
        """theta/sin_sigma(theta) for the chord l2 = <y-x, y-x>_M."""
        raise NotImplementedError

    def _sum_sq(self, x, y, l2):
        """<x+y, x+y>_M (nonzero except at antipodal sphere points)."""
        raise NotImplementedError

    def _log0_factor(self, y0, r2):
        """angle(o, y)/|y_s| from y0 and r2 = |y_s|^2 (y_s the coordinates 1..n-1)."""
        raise NotImplementedError

    # shared formulas -----------------------------------------------------------------------
    def origin_like(self, x):
        o = self.ops
        return o.concat([o.full_like(x[..., :1], 1.0 / self.sqrt_c), o.zeros_like(x[..., 1:])])

    def inner(self, x, u, v=None):
        return self._mdot(u, u if v is None else v)

    def proju(self, x, u):
        return u - (self.sigma * self.c) * self._mdot(x, u) * x

    def _chord(self, x, y):
        u = y - x
        return u, self.ops.clamp(self._mdot(u, u), lo=0.0)

    def expmap(self, x, v):
        v, q = self._cap(v, self.c * self.ops.clamp(self._mdot(v, v), lo=0.0))
        cos, sinc = self._cos_sinc(q)
        return self.proj(cos * x + sinc * v)

    def expmap0(self, v):
        """Exponential map at the origin; the 0-th coordinate of ``v`` is ignored (it is 0
        for a tangent vector at the origin)."""
        o = self.ops
        vs = v[..., 1:]
        vs, q = self._cap(vs, self.c * o.sqnorm(vs))
        cos, sinc = self._cos_sinc(q)
        return o.concat([cos / self.sqrt_c, sinc * vs])

    def logmap(self, x, y):
        u, l2 = self._chord(x, y)
        return self._log_factor(x, y, l2) * (u + (self.sigma * 0.5 * self.c) * l2 * x)

    def logmap0(self, y):
        o = self.ops
        ys = y[..., 1:]
        f = self._log0_factor(y[..., :1], o.sqnorm(ys))
        return o.concat([o.zeros_like(y[..., :1]), f * ys])

    def transp(self, x, y, v):
        _, l2 = self._chord(x, y)
        return v - (2.0 * self._mdot(y, v) / self._sum_sq(x, y, l2)) * (x + y)

    def area_form(self, x, u, w):
        """sqrt(c) det[x, u, w] for the 2-dimensional quadrics in R^3: the area form
        oriented by the outward normal x (the sphere) or by the future-pointing normal
        (the hyperboloid)."""
        return self.sqrt_c * _det3(x, u, w)


class Sphere(_Quadric):
    """Unit sphere S^(n-1) in R^n, origin e0 = (1, 0, ...). Angles come from atan2 of the
    chord |x - y| and the co-chord |x + y| (accurate at 0 and at pi, unlike arccos)."""

    name = "sphere"
    sigma = 1.0

    def __init__(self, ops: ArrayOps) -> None:
        super().__init__(ops, 1.0)

    def __repr__(self) -> str:
        return "Sphere()"

    def _mdot(self, u, v):
        return self.ops.dot(u, v)

    def _cos_sinc(self, q):
        return _cosq(self.ops, q), _sinc(self.ops, q)

    def _co2(self, x, y):
        o = self.ops
        return o.clamp(o.sqnorm(x + y), lo=o.consts(x).min_den)

    def _log_factor(self, x, y, l2):
        # theta = 2 atan2(l, h), sin(theta) = l h / 2 with h = |x + y|.
        h = self.ops.sqrt(self._co2(x, y))
        return (4.0 / h) * _atan2c(self.ops, l2, h)

    def _sum_sq(self, x, y, l2):
        return self._co2(x, y)

    def _log0_factor(self, y0, r2):
        return _atan2c(self.ops, r2, y0)

    def dist(self, x, y):
        o = self.ops
        return 2.0 * o.atan2(o.norm(x - y), o.norm(x + y))

    def proj(self, x):
        """x/|x|; the zero vector goes to the origin."""
        o = self.ops
        n = o.norm(x)
        pos = n > 0
        return o.where(pos, x / o.where(pos, n, 1.0), self.origin_like(x))

    def retr(self, x, v):
        """proj(x + v): the metric-projection retraction, second order (Absil et al. 2008),
        no trigonometric functions."""
        return self.proj(x + v)


class Lorentz(_Quadric):
    """Hyperboloid <x, x>_L = -1/c (x0 > 0) with <u, v>_L = -u0 v0 + sum u_i v_i, origin
    (1/sqrt(c), 0, ...) (Nickel & Kiela 2018; geoopt's Lorentz(k) with k = 1/c).
    Distances use the Minkowski chord: d = 2/sqrt(c) asinh(sqrt(c) |x - y|_L / 2),
    exact at coincident points where arccosh(-c<x, y>_L) loses all digits, the chord taken
    in the Poincaré ball (``dist``)."""

    name = "lorentz"
    sigma = -1.0

    def __repr__(self) -> str:
        return f"Lorentz(c={self.c!r})"

    def _mdot(self, u, v):
        return self.ops.dot(u[..., 1:], v[..., 1:]) - u[..., :1] * v[..., :1]

    def _cos_sinc(self, q):
        return _coshq(self.ops, q), _sinhc(self.ops, q)

    def _cap(self, v, q):
        o = self.ops
        qmax = o.consts(q).max_hyp_z ** 2
        over = q > qmax
        return v * o.where(over, o.sqrt(qmax / o.where(over, q, 1.0)), 1.0), o.clamp(q, hi=qmax)

    def _log_factor(self, x, y, l2):
        # s = sqrt(c) l / 2: sqrt(c) d = 2 asinh(s), sinh(sqrt(c) d) = 2 s sqrt(1 + s^2).
        s2 = 0.25 * self.c * l2
        return _asinhc(self.ops, s2) / self.ops.sqrt(1.0 + s2)

    def _sum_sq(self, x, y, l2):
        # <x+y, x+y>_L = -2/c - 2/c (1 + c l2/2), from l2 (no cancellation of big coordinates).
        return -(4.0 + self.c * l2) / self.c

    def _log0_factor(self, y0, r2):
        # d(o, y) = asinh(sqrt(c)|y_s|)/sqrt(c): well conditioned at any radius.
        return _asinhc(self.ops, self.c * r2)

    def _chord(self, x, y):
        """(y - x, l^2) with the squared Minkowski chord l^2 = <y - x, y - x>_L taken as
        that of the points' images in the Poincaré ball (a = 1 + sqrt(c) x0,
        b = 1 + sqrt(c) y0):
            l = |n|,  n = (b xs - a ys)/sqrt(a b) = (sqrt(c)(y0 - x0) xs - a (ys - xs))/sqrt(a b),
        equal on the hyperboloid. The first form is used where x0 and y0 differ by more than
        a factor 2 (exact from the origin and between far apart points), the second, with
        y0 - x0 = <us, xs + ys>/(x0 + y0) taken from the spatial coordinates (as ``proj``
        does: the rounding of a given x0, eps x0, would swamp a short chord) and us = ys - xs
        exact for close points, elsewhere. Relative error about eps (1 + sqrt(c) min(x0, y0))
        at any radius (near-radial close pairs far out are the worst). The plain form
        <u, u>_L cancelled squares of the coordinates: relative error eps c x0^2/d^2 (the
        distance to the origin was 0 at sqrt(c) r ~ 40 in float64; logmap was off by 8e-4
        at r = 15), and it carried the rounding of the given x0 into short chords (0.3 in
        float32 at d = 1e-4, sqrt(c) x0 = 13). ``dist``, ``logmap`` and ``transp`` read it;
        the jets (taylor_quadric) form the same function. Off the hyperboloid this is
        another extension than <u, u>_L: derivatives along non-tangent directions differ
        there (``egrad2rgrad`` removes that part)."""
        o, sc = self.ops, self.sqrt_c
        x0, y0 = x[..., :1], y[..., :1]
        xs, ys = x[..., 1:], y[..., 1:]
        near = o.abs(y0 - x0) <= o.minimum(x0, y0)  # x0/2 <= y0 <= 2 x0
        # q = ys - m xs with m = 0 or 1 (exact): us for the near form, else ys
        q = ys - o.where(near, 1.0, o.zeros_like(x0)) * xs
        qq = o.sqnorm(q)
        a = o.clamp(1.0 + sc * x0, lo=1.0)  # >= 2 on the hyperboloid; the clamps keep the
        b = o.clamp(1.0 + sc * y0, lo=1.0)  # unused branch finite for non-points (x0 < 0)
        ra, rb = o.sqrt(a), o.sqrt(b)
        # near: y0 - x0 = <us, xs + ys>/(x0 + y0) = (2<us, xs> + |us|^2)/(x0 + y0)
        u0s = (2.0 * o.dot(q, xs) + qq) / o.clamp(x0 + y0, lo=1.0 / sc)  # >= 2/sqrt(c) on it
        theta = o.where(near, sc * u0s / (ra * rb), rb / ra)  # sqrt(a b): no a b (overflow)
        return y - x, o.sqnorm(theta * xs - (ra / rb) * q)

    def dist(self, x, y):
        """(2/sqrt(c)) asinh(sqrt(c) l/2) for the Minkowski chord l (``_chord``); sqrt0
        gives 0 with a zero gradient at coincident points."""
        _, l2 = self._chord(x, y)
        sc = self.sqrt_c
        return (2.0 / sc) * self.ops.asinh(0.5 * sc * self.ops.sqrt0(l2))

    def proj(self, x):
        """Keep the spatial coordinates, recompute x0 = sqrt(1/c + |x_s|^2)."""
        o = self.ops
        xs = x[..., 1:]
        return o.concat([o.sqrt(1.0 / self.c + o.sqnorm(xs)), xs])

    def egrad2rgrad(self, x, g):
        """Raise the index with the Minkowski metric (flip g0), then project."""
        o = self.ops
        return self.proju(x, o.concat([-g[..., :1], g[..., 1:]]))
