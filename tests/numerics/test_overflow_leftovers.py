"""The Poincaré ball on huge but finite inputs (backends/common/manifolds.py, "huge but
finite inputs"; docs/numerics.md, "Huge inputs").

Before the fix, in float32 with |v| > 1.8e19 (float64: 1.3e154) |v|^2 overflowed: expmap(x, v)
went to the boundary along x (tanhc(inf) = 0), expmap0 and proj returned 0, and logmap0,
mobius_add and mobius_matvec gave NaN; the ratios c|y|^2/delta and c|x+y|^2 x overflowed from
|y| ~ 1e13..1e16 on (float32). The fix flags such rows with a comparison of a squared norm
that the map computes anyway and gives them the map's limit or its formula on a scaled copy.

* What is fixed is checked against mpmath evaluating the runtime's own formulas (its floor
  delta = max(1 - c|x|^2, min_delta) and its projection onto the stable radius) on the same
  rounded inputs, on both backends.
* What is left (docs/numerics.md lists it) is checked to be loud: NaN or inf, not a finite
  wrong value.
* Normal inputs give the previous formulas' values bit for bit (the previous methods are
  copied below), and their gradients too, except logmap0's (and so mobius_matvec's), which
  now computes |y|^2 once: within 2 ulps of the row's largest entry.
* The fused Triton Poincaré kernel (backends/triton/poincare.py) with weights so large that
  |W x|^2 overflows gives the runtime's boundary point (it gave 0).
"""

from __future__ import annotations

import math
import os
import sys

import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest
import torch

from geomir.backends.common import manifolds as M
from geomir.backends.common.manifolds import CONSTANTS
from geomir.backends.jax import runtime as J
from geomir.backends.torch import runtime as R

from . import x64  # noqa: F401  (fixture: jax float64 in this module)

pytestmark = pytest.mark.usefixtures("x64")

DIM = 5
TORCH = {"float32": torch.float32, "float64": torch.float64}
BOUND = {"float32": 3e-6, "float64": 1e-13}  # normwise relative error vs mpmath
# largest |entry| of the huge rows: around the first overflow of a ratio, then past |x|^2's
# overflow up to max_finite (ALL); SQUARE keeps c|x|^2 finite (c <= 2.5, DIM entries)
ALL = {"float32": [3e9, 1e13, 2e19, 1e25, 1e30, 1e37, 3e38],
       "float64": [1e77, 1e100, 1e160, 1e200, 1e250, 1e300, 1.7e308]}
SQUARE = {"float32": [3e9, 1e13, 1e16, 1e18], "float64": [1e77, 1e100, 1e140, 1e150]}
# a base point of expmap: c|x|^2 |x| below max_finite (the plain formula, unguarded)
CUBE = {"float32": [3e9, 1e11, 1e12], "float64": [1e77, 1e90, 1e100]}


# -- the runtime's formulas in mpmath --------------------------------------------------------


class MpBall:
    def __init__(self, c: float, dtype: str):
        self.c, self.k = mp.mpf(c), CONSTANTS[dtype]

    @staticmethod
    def sq(a):
        return mp.fsum(t * t for t in a)

    def delta(self, x):
        return max(1 - self.c * self.sq(x), mp.mpf(self.k.min_delta))

    def proj(self, x):
        maxnorm = (1 - mp.mpf(self.k.ball_eps)) / mp.sqrt(self.c)
        n = mp.sqrt(self.sq(x))
        return [t * maxnorm / n for t in x] if n > maxnorm else x

    def add(self, x, y, dx, dy):
        s = [a + b for a, b in zip(x, y)]
        cs2 = self.c * self.sq(s)
        return [(cs2 * a + dx * b) / (cs2 + dx * dy) for a, b in zip(x, s)]

    def mobius_add(self, x, y):
        return self.proj(self.add(x, y, self.delta(x), self.delta(y)))

    def expmap0(self, v):
        z = mp.sqrt(self.c * self.sq(v))
        return self.proj([mp.tanh(z) / z * t for t in v])

    def logmap0(self, y):
        d = self.delta(y)
        w = mp.sqrt(self.c * self.sq(y) / d)
        return [mp.asinh(w) / (w * mp.sqrt(d)) * t for t in y]

    def expmap(self, x, v):
        dx, n = self.delta(x), mp.sqrt(self.sq(v))
        z = mp.sqrt(self.c) * n / dx
        y = [mp.tanh(z) / (mp.sqrt(self.c) * n) * t for t in v]
        return self.proj(self.add(x, y, dx, mp.sech(z) ** 2))

    def mobius_scalar(self, r, x):
        return self.expmap0([r * t for t in self.logmap0(x)])

    def mobius_matvec(self, w, x):
        lx = self.logmap0(x)
        return self.expmap0([mp.fsum(a * t for a, t in zip(row, lx)) for row in w])


def _mp(row) -> list:
    return [mp.mpf(float(t)) for t in row]


def _rel(out, ref) -> float:
    num = mp.sqrt(mp.fsum((mp.mpf(float(a)) - b) ** 2 for a, b in zip(out, ref)))
    return float(num / mp.sqrt(mp.fsum(b * b for b in ref)))


def _unit(rng, n):
    u = rng.standard_normal((n, DIM))
    return u / np.abs(u).max(-1, keepdims=True)  # largest |entry| 1


def _points(rng, c, n):
    """Points of the ball at hyperbolic radius 0.5..4."""
    radius = rng.uniform(0.5, 4.0, (n, 1))
    u = rng.standard_normal((n, DIM))
    return np.tanh(np.sqrt(c) * radius / 2) / np.sqrt(c) * u / np.linalg.norm(u, axis=-1, keepdims=True)


# name -> (magnitudes, runtime call, mpmath call) on (ball, points x, huge rows h, huge rows h2)
CASES = {
    "expmap(x, huge v)": (ALL, lambda B, x, h, h2: B.expmap(x, h), lambda m, x, h, h2: m.expmap(x, h)),
    "expmap(huge x, v)": (CUBE, lambda B, x, h, h2: B.expmap(h, x), lambda m, x, h, h2: m.expmap(h, x)),
    "expmap0(huge)": (ALL, lambda B, x, h, h2: B.expmap0(h), lambda m, x, h, h2: m.expmap0(h)),
    "proj(huge)": (SQUARE, lambda B, x, h, h2: B.proj(h), lambda m, x, h, h2: m.proj(h)),
    "logmap0(huge)": (SQUARE, lambda B, x, h, h2: B.logmap0(h), lambda m, x, h, h2: m.logmap0(h)),
    "mobius_add(x, huge)": (ALL, lambda B, x, h, h2: B.mobius_add(x, h), lambda m, x, h, h2: m.mobius_add(x, h)),
    "mobius_add(huge, x)": (SQUARE, lambda B, x, h, h2: B.mobius_add(h, x), lambda m, x, h, h2: m.mobius_add(h, x)),
    "mobius_add(huge, huge)": (SQUARE, lambda B, x, h, h2: B.mobius_add(h, h2),
                               lambda m, x, h, h2: m.mobius_add(h, h2)),
    "mobius_scalar(huge r, x)": (ALL, lambda B, x, h, h2: B.mobius_scalar(h[..., :1] * 1e-2, x),
                                 lambda m, x, h, h2: m.mobius_scalar(h[0] * mp.mpf(1e-2), x)),
}


def _run(backend: str, dtype: str, fn, ball_c, args):
    if backend == "torch":
        return fn(R.PoincareBall(ball_c), *(torch.tensor(a, dtype=TORCH[dtype]) for a in args)).double().numpy()
    return np.asarray(fn(J.PoincareBall(ball_c), *(jnp.asarray(a, dtype=dtype) for a in args)), dtype=np.float64)


@pytest.mark.filterwarnings("ignore:overflow encountered")
@pytest.mark.parametrize("backend", ["torch", "jax"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("c", [1.0, 2.5])
def test_fixed_maps_match_mpmath_on_huge_inputs(c, dtype, backend):
    rng = np.random.default_rng(0)
    ball = MpBall(c, dtype)
    worst = {}
    with mp.workdps(60):
        for name, (mags, fn, ref_fn) in CASES.items():
            mag = np.array(mags[dtype])[:, None]
            n = len(mag)
            # the inputs as the runtime sees them, rounded to dtype
            x, h, h2 = (np.asarray(a, dtype=dtype).astype(np.float64)
                        for a in (_points(rng, c, n), mag * _unit(rng, n), mag[::-1] * _unit(rng, n)))
            out = _run(backend, dtype, fn, c, (x, h, h2))
            # NaN compares false: a non-finite row counts as an error of inf
            worst[name] = max(_rel(out[i], ref_fn(ball, _mp(x[i]), _mp(h[i]), _mp(h2[i])))
                              if np.isfinite(out[i]).all() else math.inf for i in range(n))
        # mobius_matvec(W, x) with |W logmap0(x)|^2 past the range
        big = 1e20 if dtype == "float32" else 1e200
        w = np.asarray(rng.standard_normal((3, DIM)) * big, dtype=dtype).astype(np.float64)
        x = np.asarray(_points(rng, c, 4), dtype=dtype).astype(np.float64)
        out = _run(backend, dtype, lambda B, w_, x_: B.mobius_matvec(w_, x_), c, (w, x))
        wm = [_mp(row) for row in w]
        worst["mobius_matvec(huge W, x)"] = max(_rel(out[i], ball.mobius_matvec(wm, _mp(x[i])))
                                                if np.isfinite(out[i]).all() else math.inf for i in range(4))
    print(f"ACC huge {backend} {dtype} c={c}: " + ", ".join(f"{k} {v:.1e}" for k, v in worst.items()))
    bad = {k: v for k, v in worst.items() if not v <= BOUND[dtype]}
    assert not bad, f"relative error vs mpmath above {BOUND[dtype]:.0e}: {bad}"


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_expmap_of_a_huge_tangent_goes_to_the_boundary_along_the_transported_direction(dtype):
    """The reported defect, by closed-form geometry: for |v| -> inf, expmap_x(v) tends to the
    boundary point x (+) v/(sqrt(c)|v|), here clamped to the stable radius; the old runtime
    returned the point along x."""
    ball = R.PoincareBall(1.0)
    x = torch.tensor([[0.3, 0.0, 0.0]], dtype=TORCH[dtype])
    xe = torch.tensor([0.3, 1.0, 0.0], dtype=torch.float64)  # x + e1, |x + e1|^2 = 1.09
    limit = (1.09 * torch.tensor([0.3, 0.0, 0.0], dtype=torch.float64) + 0.91 * xe) / 1.09  # x (+) e1
    assert abs(float(limit.norm()) - 1.0) < 1e-15
    maxnorm = 1.0 - CONSTANTS[dtype].ball_eps
    for mag in ALL[dtype][1:]:
        got = ball.expmap(x, torch.tensor([[0.0, mag, 0.0]], dtype=TORCH[dtype]))[0].double()
        assert float((got - maxnorm * limit).norm()) < 10 * CONSTANTS[dtype].eps, (mag, got)


@pytest.mark.filterwarnings("ignore:overflow encountered")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gradients_on_flagged_rows_are_finite(dtype):
    """Reverse mode through expmap0, proj, logmap0, mobius_add, mobius_matvec and expmap at a
    far base point on huge rows (in the ranges docs/numerics.md gives): finite, the scale is a
    constant and the unused branches get finite arguments. expmap's gradient where
    c|v|^2/delta_x^2 overflows is not (docs/numerics.md); its value is."""
    c = 1.3
    rng = np.random.default_rng(1)
    ball = R.PoincareBall(c)
    x = torch.tensor(_points(rng, c, 4), dtype=TORCH[dtype])
    for mags, name, fn in [(ALL, "expmap0", lambda x, h: ball.expmap0(h)), (SQUARE, "proj", lambda x, h: ball.proj(h)),
                           (SQUARE, "logmap0", lambda x, h: ball.logmap0(h)),
                           (ALL, "mobius_add(x, huge)", lambda x, h: ball.mobius_add(x, h)),
                           (SQUARE, "mobius_add(huge, x)", lambda x, h: ball.mobius_add(h, x)),
                           (CUBE, "expmap(huge x, v)", lambda x, h: ball.expmap(h, 0.1 * x)),
                           (ALL, "mobius_matvec", lambda x, h: ball.mobius_matvec(h[:DIM] * 1e-10, x))]:
        mag = np.array(mags[dtype])[-4:, None]
        h = torch.tensor(mag * _unit(rng, len(mag)), dtype=TORCH[dtype], requires_grad=True)
        xg = x[:len(mag)].clone().requires_grad_()
        out = fn(xg, h)
        grads = torch.autograd.grad((out * torch.arange(1.0, out.shape[-1] + 1, dtype=out.dtype)).sum(), (xg, h),
                                    allow_unused=True)
        assert bool(torch.isfinite(out).all()), name
        assert all(g is None or bool(torch.isfinite(g).all()) for g in grads), (name, grads)


@pytest.mark.filterwarnings("ignore:overflow encountered")
@pytest.mark.parametrize("backend", ["torch", "jax"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_what_is_left_is_loud(dtype, backend):
    """docs/numerics.md, "Huge inputs", what is left: a point whose c|x|^2 overflows in logmap0,
    mobius_add and proj (a second reduction per call would fix proj; it runs every optimizer step), a base point of expmap with c|x|^2 |x| past max_finite, logmap and dist
    past their ratio's overflow. They give NaN (dist: inf), never a finite value."""
    k = CONSTANTS[dtype]
    over = math.sqrt(k.max_finite) * 2  # |x|^2 overflows
    ratio = math.sqrt(k.max_finite * k.min_delta) * 4  # c|y - x|^2 / (delta_x delta_y) overflows
    c = 1.0
    x = _points(np.random.default_rng(2), c, 1)
    e = np.array([[0.6, 0.0, -0.8, 0.0, 0.0]])
    calls = {"logmap0": lambda B, x, h: B.logmap0(h), "mobius_add(huge, x)": lambda B, x, h: B.mobius_add(h, x),
             "expmap(huge, v)": lambda B, x, h: B.expmap(h, x), "logmap(x, huge)": lambda B, x, h: B.logmap(x, h),
             "logmap(huge, x)": lambda B, x, h: B.logmap(h, x), "proj": lambda B, x, h: B.proj(h)}
    for name, fn in calls.items():
        out = _run(backend, dtype, fn, c, (x, over * e))
        assert np.isnan(out).any(), (name, out)
    out = _run(backend, dtype, lambda B, x, h: B.expmap(h, x), c, (x, 10 * k.max_finite ** (1 / 3) * e))
    assert np.isnan(out).any(), out
    for mag in (ratio, over):
        out = _run(backend, dtype, lambda B, x, h: B.dist(x, h), c, (x, mag * e))
        assert np.isposinf(out).all(), out
    # just below: finite (logmap at the largest |y - x| whose ratio is finite)
    out = _run(backend, dtype, lambda B, x, h: B.logmap(x, h), c, (x, math.sqrt(k.max_finite * k.min_delta) / 4 * e))
    assert np.isfinite(out).all(), out


# -- normal inputs: the previous formulas, bit for bit ----------------------------------------


class _Before:
    """The ball's methods as they were (git HEAD before the fix), on a runtime's ops."""

    def __init__(self, ball):
        self.b, self.o = ball, ball.ops

    def _delta(self, x):
        o = self.o
        return o.clamp(1.0 - self.b.c * o.sqnorm(x), lo=o.consts(x).min_delta)

    def proj(self, x):
        o = self.o
        maxnorm = (1.0 - o.consts(x).ball_eps) / self.b.sqrt_c
        n = o.norm(x)
        out = n > maxnorm
        return x * o.where(out, maxnorm / o.where(out, n, 1.0), 1.0)

    def _add(self, x, y, dx, dy):
        o = self.o
        s = x + y
        cs2 = self.b.c * o.sqnorm(s)
        den = o.clamp(cs2 + dx * dy, lo=o.consts(x).tiny)
        return (cs2 * x + dx * s) / den

    def mobius_add(self, x, y):
        return self.proj(self._add(x, y, self._delta(x), self._delta(y)))

    def expmap0(self, v):
        return self.proj(M._tanhc(self.o, self.b.c * self.o.sqnorm(v)) * v)

    def logmap0(self, y):
        o = self.o
        d = self._delta(y)
        return M._asinhc(o, self.b.c * o.sqnorm(y) / d) / o.sqrt(d) * y

    def expmap(self, x, v):
        o = self.o
        dx = self._delta(x)
        q = self.b.c * o.sqnorm(v) / (dx * dx)
        t = M._tanhc(o, q)
        small = q < 1.0
        z = o.sqrt(o.where(small, 1.0, q))
        e = o.exp(-2.0 * z)
        dy = o.where(small, 1.0 - q * t * t, 4.0 * e / ((1.0 + e) * (1.0 + e)))
        return self.proj(self._add(x, t * v / dx, dx, dy))

    def mobius_matvec(self, w, x):
        return self.expmap0(self.o.matmul_t(self.logmap0(x), w))


def _normal_inputs(dtype, c, n=300):
    """Points from the origin to the stable radius and a little outside the ball, tangent
    vectors from 0 (exactly) to 30, a weight."""
    rng = np.random.default_rng(3)
    u = rng.standard_normal((n, DIM))
    u /= np.linalg.norm(u, axis=-1, keepdims=True)
    r = np.concatenate([[0.0], 10.0 ** rng.uniform(-8, 0, n // 2), rng.uniform(0.9, 1.2, n - n // 2 - 1)])
    x = u * r[:, None] / np.sqrt(c)
    y = rng.standard_normal((n, DIM)) * 0.4
    v = rng.standard_normal((n, DIM)) * 10.0 ** rng.uniform(-6, 1.5, (n, 1))
    v[:3] = 0.0
    w = rng.standard_normal((4, DIM))
    return [np.asarray(a, dtype=dtype) for a in (x, y, v, w)]


NORMAL = {"proj": lambda B, x, y, v, w: B.proj(3.0 * v), "expmap0": lambda B, x, y, v, w: B.expmap0(v),
          "logmap0": lambda B, x, y, v, w: B.logmap0(x), "mobius_add": lambda B, x, y, v, w: B.mobius_add(x, y),
          "expmap": lambda B, x, y, v, w: B.expmap(x, v), "mobius_matvec": lambda B, x, y, v, w: B.mobius_matvec(w, x)}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("c", [0.3, 1.0, 2.5])
def test_normal_inputs_keep_their_values_bit_for_bit(c, dtype):
    """Values on both backends (eager) equal the previous formulas' exactly; torch gradients
    too, but for logmap0 (|y|^2 now computed once) and mobius_matvec: 2 ulps of the row's
    largest entry."""
    args = _normal_inputs(dtype, c)
    for name, fn in NORMAL.items():
        for runtime, conv in ((R, lambda a: torch.tensor(a)), (J, jnp.asarray)):
            ball = runtime.PoincareBall(c)
            t = [conv(a) for a in args]
            new, old = np.asarray(fn(ball, *t)), np.asarray(fn(_Before(ball), *t))
            assert np.array_equal(new, old), (name, runtime.__name__, np.abs(new - old).max())
        grads = []
        for b in (R.PoincareBall(c), _Before(R.PoincareBall(c))):
            t = [torch.tensor(a, requires_grad=True) for a in args]
            out = fn(b, *t)
            weights = torch.linspace(-1.0, 2.0, out.shape[-1], dtype=out.dtype)
            grads.append(torch.autograd.grad((out * weights).sum(), t, allow_unused=True))
        for g_new, g_old in zip(*grads):
            if g_old is None:
                continue
            if name in ("logmap0", "mobius_matvec"):
                scale = g_old.abs().amax(-1, keepdim=True).clamp_min(torch.finfo(g_old.dtype).tiny)
                assert float(((g_new - g_old).abs() / scale).max()) <= 2.5 * torch.finfo(g_old.dtype).eps, name
            else:
                assert torch.equal(g_new, g_old), name


# -- the fused Triton kernel ------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:overflow encountered")
@pytest.mark.filterwarnings("ignore:invalid value encountered")
def test_the_triton_poincare_kernel_with_huge_weights_matches_the_runtime():
    """mobius_matvec(W, x) (+) b with |W x|^2 past float32's range, in the fused Triton kernel
    (interpreter): the runtime's boundary point along W logmap0(x); it returned 0, which
    tanhc(inf) = 0 made of it."""
    if "triton" in sys.modules and os.environ.get("TRITON_INTERPRET", "0") in ("", "0"):
        pytest.skip("triton was imported without TRITON_INTERPRET")
    # read when triton is imported and later, lazily: set for the session, as tests/triton's
    # conftest does
    os.environ["TRITON_INTERPRET"] = "1"
    pytest.importorskip("triton")
    from geomir.backends.triton import poincare

    if not poincare.INTERPRET:
        pytest.skip("the Triton kernels were imported without TRITON_INTERPRET")

    ball = R.PoincareBall(1.0)
    g = torch.Generator().manual_seed(0)
    x = ball.expmap0(0.3 * torch.randn(5, 8, generator=g))
    b = ball.expmap0(0.2 * torch.randn(6, generator=g))
    for scale in (1e20, 1e30, 1e36):
        w = torch.randn(6, 8, generator=g) * scale
        tip = ball.mobius_matvec(w, x).double()
        direction = (x @ w.T).double()  # W logmap0(x) is a positive multiple of W x
        assert torch.allclose(tip / tip.norm(dim=-1, keepdim=True),
                              direction / direction.norm(dim=-1, keepdim=True), atol=1e-6)
        for bias in (None, b):
            got = poincare.poincare_layer(x, w, bias, c=1.0)
            ref = ball.mobius_matvec(w, x) if bias is None else ball.mobius_add(ball.mobius_matvec(w, x), bias)
            assert bool(torch.isfinite(got).all()) and float((got - ref).abs().max()) < 1e-6, (scale, got, ref)
