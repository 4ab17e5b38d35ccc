"""Accuracy of the manifold runtime against mpmath (50 digits) on the SAME input points.

Inputs are sampled in float64, rounded to the dtype under test and projected with the
runtime's ``proj``; mpmath then evaluates the exact formula on exactly those rounded
coordinates, so the errors measured are the runtime's own (not the input rounding).
Each test prints its median/max relative errors (``pytest -s``); docs/numerics.md quotes them.
"""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest
import torch

from geomir.backends.common.manifolds import CONSTANTS
from geomir.backends.torch import runtime as R

from . import CURVATURES, ball_points, lorentz_points, sphere_points, unit

N = 200  # points per case
DIM = 8
TORCH = {"float32": torch.float32, "float64": torch.float64}
# (dtype, hyperbolic radius of the samples, median bound for distances)
BALL_CASES = [("float32", 12.0, 1e-4), ("float64", 20.0, 1e-8)]


def mpv(row) -> list:
    return [mp.mpf(float(t)) for t in row]


def mp_sq(a) -> mp.mpf:
    return mp.fsum(t * t for t in a)


def mp_dot(a, b) -> mp.mpf:
    return mp.fsum(s * t for s, t in zip(a, b))


def rel_errors(out: torch.Tensor, refs: list) -> np.ndarray:
    """Normwise relative error per row (absolute where the reference is 0)."""
    out = out.detach().double().numpy().reshape(len(refs), -1)
    errs = []
    for o, r in zip(out, refs):
        r = [r] if not isinstance(r, (list, tuple)) else r
        num = mp.sqrt(mp.fsum((mp.mpf(float(a)) - b) ** 2 for a, b in zip(o, r)))
        den = mp.sqrt(mp.fsum(b * b for b in r))
        errs.append(float(num / den) if den != 0 else float(num))
    return np.array(errs)


def check(errs: np.ndarray, bound: float, what: str) -> None:
    med, mx = float(np.median(errs)), float(np.max(errs))
    print(f"ACC {what}: median {med:.2e} max {mx:.2e}")
    assert med < bound, f"{what}: median relative error {med:.3e} >= {bound:.0e} (max {mx:.3e})"


def t(a: np.ndarray, dtype: str) -> torch.Tensor:
    return torch.tensor(a, dtype=TORCH[dtype])


def mp_clip_ball(z: list, c: float, dtype: str) -> list:
    """The runtime's projection, exactly: keep sqrt(c)|z| <= 1 - ball_eps."""
    maxnorm = (1 - mp.mpf(CONSTANTS[dtype].ball_eps)) / mp.sqrt(c)
    n = mp.sqrt(mp_sq(z))
    return [s * maxnorm / n for s in z] if n > maxnorm else z


# ---------------------------------------------------------------------------------------
# Poincaré ball
# ---------------------------------------------------------------------------------------


def mp_ball_dist(c, x, y) -> mp.mpf:
    x, y = mpv(x), mpv(y)
    t_ = 2 * c * mp_sq([a - b for a, b in zip(x, y)]) / ((1 - c * mp_sq(x)) * (1 - c * mp_sq(y)))
    return mp.acosh(1 + t_) / mp.sqrt(c)


def mp_mobius_add(c, x, y) -> list:
    xy, x2, y2 = mp_dot(x, y), mp_sq(x), mp_sq(y)
    den = 1 + 2 * c * xy + c * c * x2 * y2
    return [((1 + 2 * c * xy + c * y2) * a + (1 - c * x2) * b) / den for a, b in zip(x, y)]


@pytest.mark.parametrize("dtype,radius,bound", BALL_CASES)
@pytest.mark.parametrize("c", CURVATURES)
def test_ball_dist(c, dtype, radius, bound):
    rng = np.random.default_rng(1)
    ball = R.PoincareBall(c)
    x = ball.proj(t(ball_points(rng, N, DIM, c, radius), dtype))
    y = ball.proj(t(ball_points(rng, N, DIM, c, radius), dtype))
    with mp.workdps(50):
        refs = [mp_ball_dist(c, a.tolist(), b.tolist()) for a, b in zip(x.double(), y.double())]
        check(rel_errors(ball.dist(x, y), refs), bound, f"poincare c={c} {dtype} dist r<={radius}")


@pytest.mark.parametrize("dtype,radius,bound", BALL_CASES)
@pytest.mark.parametrize("c", CURVATURES)
def test_ball_dist_close_pairs(c, dtype, radius, bound):
    """Pairs at hyperbolic distance 1e-3..1e-1 anywhere up to the radius: the asinh form
    keeps relative accuracy where arccosh(1 + t) would lose it all."""
    rng = np.random.default_rng(2)
    ball = R.PoincareBall(c)
    xs = ball_points(rng, N, DIM, c, radius)
    x = ball.proj(t(xs, dtype))
    lam = 2.0 / (1.0 - c * np.sum(xs * xs, -1, keepdims=True))
    v = unit(rng, N, DIM) * 10.0 ** rng.uniform(-3, -1, (N, 1)) / lam
    y = ball.expmap(x, t(v, dtype))
    with mp.workdps(50):
        refs = [mp_ball_dist(c, a.tolist(), b.tolist()) for a, b in zip(x.double(), y.double())]
        # 3x looser: relative error here is that of sqrt(delta_x delta_y) itself, see docs
        check(rel_errors(ball.dist(x, y), refs), 3 * bound, f"poincare c={c} {dtype} dist close pairs")


@pytest.mark.parametrize("dtype,radius,bound", BALL_CASES)
@pytest.mark.parametrize("c", CURVATURES)
def test_ball_expmap0_logmap0(c, dtype, radius, bound):
    rng = np.random.default_rng(3)
    ball = R.PoincareBall(c)
    # expmap0: tangent vectors of Riemannian length up to `radius` (|v|_0 = 2|v|)
    v = t(unit(rng, N, DIM) * rng.uniform(0.0, radius / 2.0, (N, 1)), dtype)
    y = ball.proj(t(ball_points(rng, N, DIM, c, radius), dtype))
    sc = mp.sqrt(c)
    with mp.workdps(50):
        refs = []
        for row in v.double().tolist():
            a = mpv(row)
            n = mp.sqrt(mp_sq(a))
            refs.append(mp_clip_ball([mp.tanh(sc * n) * s / (sc * n) for s in a], c, dtype))
        check(rel_errors(ball.expmap0(v), refs), 8 * CONSTANTS[dtype].eps, f"poincare c={c} {dtype} expmap0")
        refs = []
        for row in y.double().tolist():
            a = mpv(row)
            n = mp.sqrt(mp_sq(a))
            refs.append([mp.atanh(sc * n) * s / (sc * n) for s in a])
        check(rel_errors(ball.logmap0(y), refs), bound, f"poincare c={c} {dtype} logmap0")


@pytest.mark.parametrize("dtype,radius,bound", BALL_CASES)
@pytest.mark.parametrize("c", CURVATURES)
def test_ball_mobius_add(c, dtype, radius, bound):
    rng = np.random.default_rng(4)
    ball = R.PoincareBall(c)
    x = ball.proj(t(ball_points(rng, N, DIM, c, radius), dtype))
    y = ball.proj(t(ball_points(rng, N, DIM, c, radius), dtype))
    with mp.workdps(50):
        refs = [mp_clip_ball(mp_mobius_add(c, mpv(a), mpv(b)), c, dtype)
                for a, b in zip(x.double().tolist(), y.double().tolist())]
        check(rel_errors(ball.mobius_add(x, y), refs), 8 * CONSTANTS[dtype].eps,
              f"poincare c={c} {dtype} mobius_add")


# ---------------------------------------------------------------------------------------
# Lorentz and sphere
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype,bound", [("float32", 1e-5), ("float64", 1e-10)])
@pytest.mark.parametrize("c", CURVATURES)
def test_lorentz_dist(c, dtype, bound):
    """Hyperbolic radius up to 10; reference arccosh(-c<x, y>_L)/sqrt(c) on the rounded coordinates."""
    rng = np.random.default_rng(5)
    lor = R.Lorentz(c)
    x = lor.proj(t(lorentz_points(rng, N, DIM, c, 10.0), dtype))
    y = lor.proj(t(lorentz_points(rng, N, DIM, c, 10.0), dtype))
    with mp.workdps(50):
        refs = []
        for a, b in zip(x.double().tolist(), y.double().tolist()):
            a, b = mpv(a), mpv(b)
            refs.append(mp.acosh(-c * (mp_dot(a[1:], b[1:]) - a[0] * b[0])) / mp.sqrt(c))
        check(rel_errors(lor.dist(x, y), refs), bound, f"lorentz c={c} {dtype} dist")


@pytest.mark.parametrize("dtype,bound", [("float32", 1e-5), ("float64", 1e-10)])
def test_sphere_dist(dtype, bound):
    """Random, nearly coincident (angle >= 1e-3 f32, 1e-6 f64) and nearly antipodal pairs;
    reference: the angle between the rounded vectors, atan2(|x ^ y|, <x, y>)."""
    rng = np.random.default_rng(6)
    sph = R.Sphere()
    m = N // 3
    x = sphere_points(rng, N, DIM)
    y = sphere_points(rng, N, DIM)
    tiny = 1e-3 if dtype == "float32" else 1e-6
    pert = unit(rng, N, DIM) * tiny * rng.uniform(1.0, 10.0, (N, 1))
    y[:m] = x[:m] + pert[:m]
    y[m:2 * m] = -x[m:2 * m] + pert[m:2 * m]
    x, y = sph.proj(t(x, dtype)), sph.proj(t(y, dtype))
    with mp.workdps(50):
        refs = []
        for a, b in zip(x.double().tolist(), y.double().tolist()):
            a, b = mpv(a), mpv(b)
            ab = mp_dot(a, b)
            refs.append(mp.atan2(mp.sqrt(mp_sq(a) * mp_sq(b) - ab * ab), ab))
        check(rel_errors(sph.dist(x, y), refs), bound, f"sphere {dtype} dist")


def test_constants_table_is_consistent():
    for name, k in CONSTANTS.items():
        assert k.min_delta <= k.ball_eps, name
        assert math.cosh(k.max_hyp_z) ** 2 < {"float64": 1.7e308, "float16": 65504.0}.get(name, 3.4e38), name


def _ratio_helpers():
    from geomir.backends.common import manifolds as M

    return [(M._tanhc, mp.tanh, M.TANHC), (M._sinhc, mp.sinh, M.SINHC), (M._sinc, mp.sin, M.SINC),
            (M._asinhc, mp.asinh, M.ASINHC), (M._atanc, mp.atan, M.ATANC)]


def _ratio_points(switch: float) -> list[float]:
    """q = 0, tiny q, the old switch eps^(1/3) of float64/float32, both sides of this switch."""
    return [0.0, 1e-12, 6e-6, 4.9e-3, 0.05, 0.5 * switch, switch * (1 - 1e-7), switch,
            switch * (1 + 1e-7), 2 * switch]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_ratio_helpers_across_the_series_threshold(dtype):
    """f(z)/z as a function of q = z^2 (series below the helper's switch, quotient above)
    stays within 2 ulps of mpmath on both sides of the switch and at 0."""
    eps = CONSTANTS[dtype].eps
    with mp.workdps(40):
        for helper, f, spec in _ratio_helpers():
            q = t(np.array(_ratio_points(spec.switch) + [1.0, 4.0]), dtype)
            out = helper(R.OPS, q).double().numpy()
            for a, o in zip(q.double().tolist(), out):
                z = mp.sqrt(mp.mpf(a))
                ref = f(z) / z if a > 0 else mp.mpf(1)
                assert abs(o - ref) / ref <= 2 * eps, f"{helper.__name__}({a}) = {o}, expected {ref}"


# Relative error of d^k/dq^k by order k: the quotient's derivatives cancel like eps q^-k
# just above the switch, the cut series loses its tail just below (docs/numerics.md).
RATIO_DERIVATIVE_BOUND = [1e-13, 1e-12, 1e-12, 1e-12, 1e-11, 1e-10, 1e-8, 1e-7, 1e-5]


def test_ratio_helpers_high_order_derivatives_across_the_switch():
    """Autodiff of the runtime (torch.func.hessian, nested jvp or grad, the gradient of a
    Laplacian loss) of f(z)/z in q: d^k/dq^k, k <= 8, match mpmath at 0, in the series range, on both
    sides of the switch and above it (float64). With the switch at eps^(1/3) the quotient's
    third derivative was 100 % off just above it (tanh at q = 6e-6), the second 2e-4 (sinh);
    two series terms gave 0 for k >= 3 below it (generator seed 8148)."""
    def derivatives(fn, q, K):  # nested reverse mode (elementwise: grad of the sum); linear in K, not 2^K as nested jvp
        q = q.clone().requires_grad_(True)
        out = [fn(q)]
        for _ in range(K):
            (g,) = torch.autograd.grad(out[-1].sum(), q, create_graph=True)
            out.append(g)
        return [o.detach().tolist() for o in out]

    with mp.workdps(50):
        for helper, f, spec in _ratio_helpers():
            points = _ratio_points(spec.switch) + [1.0, 30.0]
            q = torch.tensor(points, dtype=torch.float64)
            got = derivatives(lambda s: helper(R.OPS, s), q, 8)
            h = lambda s: f(mp.sqrt(s)) / mp.sqrt(s)  # noqa: E731
            taylor = mp.taylor(f, 0, 41)  # f(z)/z = sum_j taylor[2j+1] q^j near 0
            for i, a in enumerate(q.tolist()):
                if a < 1e-4:
                    want = [sum(taylor[2 * j + 1] * mp.factorial(j) / mp.factorial(j - k) * mp.mpf(a) ** (j - k)
                                for j in range(k, 20)) for k in range(9)]
                else:
                    want = [c * mp.factorial(k) for k, c in enumerate(mp.taylor(h, mp.mpf(a), 8))]
                for k in range(9):
                    err = abs(got[k][i] - want[k]) / abs(want[k])
                    assert err <= RATIO_DERIVATIVE_BOUND[k], \
                        f"{helper.__name__}^({k})({a}) = {got[k][i]}, expected {want[k]} (relative error {float(err):.1e})"
