"""Ball transport between nearby points near the boundary, and hyperboloid distances at
large radius, against mpmath (50 digits), torch and JAX, float32 and float64.

* ``PoincareBall.transp`` (and ``gyration``): Ungar's closed form
  gyr[u, v] w = w + 2(a u + b v)/d cancelled terms of order |w| in a u + b v down to a
  result of order d |w|, d ~ delta^2 for nearby points near the boundary: relative errors
  of eps/delta^2 (float64: 2 at hyperbolic radius 20 and c = 1, 1e12 at 34; float32: above
  1, i.e. sign flips, from radius 10). The
  rotation form (``_gyr``) is left with delta's own rounding, eps/delta, the limit of every
  ball map (docs/numerics.md, "Known limits").
* ``Lorentz.dist``: the Minkowski chord |y - x|_L^2 = |ys - xs|^2 - (y0 - x0)^2 cancelled
  squares of coordinates ~e^(sqrt(c) r): d(o, expmap0(25 e1)) was 0 at c = 2.5 in float64.
  The ball-image chord keeps eps relative accuracy from the origin and between far apart
  points; close pairs far out are limited by the rounding of their coordinates.

The references are evaluated in mpmath on exactly the rounded coordinates the runtime gets
(hyperboloid: with x0 = sqrt(1/c + |xs|^2), the point ``proj`` keeps). Bounds are a few
times the measured maxima; the old formulas exceed each of them by orders of magnitude.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from geomir.backends.common.manifolds import CONSTANTS
from geomir.backends.jax import runtime as J
from geomir.backends.jax import taylor as JTJ
from geomir.backends.torch import runtime as R
from geomir.backends.torch import taylor as JTT

from . import unit
from .test_manifold_accuracy import mp_dot, mp_sq, mpv
from . import x64  # noqa: F401  (fixture: jax float64 in this module)

pytestmark = pytest.mark.usefixtures("x64")

BACKENDS = ("torch", "jax")
DTYPES = ("float32", "float64")
TORCH = {"float32": torch.float32, "float64": torch.float64}
DPS = 50
HSET = settings(max_examples=12, deadline=None, derandomize=True)
DIM = 5


def eps(dtype: str) -> float:
    return CONSTANTS[dtype].eps


def runtime(backend: str):
    return R if backend == "torch" else J


def arr(backend: str, a, dtype: str):
    a = np.asarray(a, dtype=np.float64)
    return torch.tensor(a, dtype=TORCH[dtype]) if backend == "torch" else jnp.asarray(a, dtype=dtype)


def to_np(a) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        a = a.detach()
    return np.asarray(a, dtype=np.float64)


def rel_err(out_row, ref: list) -> float:
    """Normwise relative error of one row against an mpmath vector."""
    num = mp.sqrt(mp.fsum((mp.mpf(float(a)) - b) ** 2 for a, b in zip(out_row, ref)))
    return float(num / mp.sqrt(mp_sq(ref)))


# =========================================================================================
# Poincaré ball: transport and gyration
# =========================================================================================


def mp_gyration(c, u, v, w) -> list:
    """Ungar's closed form, exact at DPS digits (the cancellation costs ~30 of them)."""
    c = mp.mpf(c)
    u2, v2, uv, uw, vw = mp_sq(u), mp_sq(v), mp_dot(u, v), mp_dot(u, w), mp_dot(v, w)
    a = -c * c * uw * v2 + c * vw + 2 * c * c * uv * vw
    b = -c * c * vw * u2 - c * uw
    d = 1 + 2 * c * uv + c * c * u2 * v2
    return [wi + 2 * (a * ui + b * vi) / d for wi, ui, vi in zip(w, u, v)]


def mp_transp(c, x, y, v) -> list:
    """(delta_y/delta_x) gyr[y, -x] v on the given coordinates (floats or mpf)."""
    x, y, v = ([mp.mpf(t) for t in a] for a in (x, y, v))
    g = mp_gyration(c, y, [-t for t in x], v)
    r = (1 - c * mp_sq(y)) / (1 - c * mp_sq(x))
    return [r * t for t in g]


def ball_pairs(backend, dtype, c, radius, step, n, seed, dim=DIM):
    """x at hyperbolic radius ``radius`` from 0 (random directions), y = exp_x of a tangent
    of Riemannian length ``step`` (random direction), v tangent at x with |v|_x ~ 1;
    sampled in float64 and rounded to ``dtype`` (then projected, as the runtime's points are)."""
    rng = np.random.default_rng(seed)
    b64 = R.PoincareBall(c)
    x = b64.proj(torch.tensor(np.tanh(math.sqrt(c) * radius / 2) / math.sqrt(c) * unit(rng, n, dim)))
    lam = b64.lambda_x(x)
    y = b64.expmap(x, torch.tensor(unit(rng, n, dim)) * step / lam)
    v = torch.tensor(rng.standard_normal((n, dim))) / lam
    ball = runtime(backend).PoincareBall(c)
    x, y = ball.proj(arr(backend, x.numpy(), dtype)), ball.proj(arr(backend, y.numpy(), dtype))
    return ball, x, y, arr(backend, v.numpy(), dtype)


def deltas(c, x, y):
    """Exact 1 - c|x|^2 and 1 - c|y|^2 of the rounded rows (floats)."""
    with mp.workdps(DPS):
        return ([float(1 - c * mp_sq(mpv(r))) for r in to_np(x)],
                [float(1 - c * mp_sq(mpv(r))) for r in to_np(y)])


def transp_errors(c, x, y, v, out):
    """Per row: relative error against mpmath and eps/delta_min scale factor 1/delta_min."""
    errs, inv = [], []
    dx, dy = deltas(c, x, y)
    with mp.workdps(DPS):
        for xr, yr, vr, o, a, b in zip(to_np(x), to_np(y), to_np(v), to_np(out), dx, dy):
            errs.append(rel_err(o, mp_transp(c, xr, yr, vr)))
            inv.append(1.0 / min(a, b))
    return np.array(errs), np.array(inv)


def check_transp(c, dtype, x, y, v, out, what, k=4.0):
    """max relative error <= k eps (1 + 1/delta_min): delta's rounding is the limit."""
    errs, inv = transp_errors(c, x, y, v, out)
    ratio = errs / (eps(dtype) * (1.0 + inv))
    print(f"ACC {what}: median {np.median(errs):.2e} max {errs.max():.2e} "
          f"(max / (eps (1 + 1/delta)) = {ratio.max():.2f})")
    assert ratio.max() <= k, (f"{what}: relative error {errs[ratio.argmax()]:.3e} is "
                              f"{ratio.max():.3g} eps (1 + 1/delta_min) (bound {k})")


@pytest.mark.parametrize("backend", BACKENDS)
def test_ball_transport_examples_from_the_report(backend):
    """The reported cases: on one ray the gyration is the identity and the transport is
    v delta_y/delta_x. float64 gave 1.4649e-9 for 1.2214e-9; float32 flipped the sign."""
    m = runtime(backend)
    ball = m.PoincareBall(1.0)
    x = ball.expmap0(arr(backend, [10.0, 0.0], "float64"))
    y = ball.expmap0(arr(backend, [9.9, 0.0], "float64"))
    v = arr(backend, [1e-9, 0.0], "float64")
    out = to_np(ball.transp(x, y, v))
    with mp.workdps(DPS):
        ref = mp_transp(1.0, to_np(x), to_np(y), to_np(v))
    assert abs(float(ref[0]) - 1.2214e-9) < 1e-13
    assert rel_err(out, ref) < 1e-7  # delta ~ 8e-9: eps/delta = 2.7e-8
    for a, b in [(0.99999, 0.999998914), (0.999998914, 0.99999)]:
        x, y = arr(backend, [a, 0.0], "float32"), arr(backend, [b, 0.0], "float32")
        v = arr(backend, [1e-6, 0.0], "float32")
        out = to_np(ball.transp(x, y, v))
        with mp.workdps(DPS):
            ref = mp_transp(1.0, to_np(x), to_np(y), to_np(v))
        assert out[0] > 0 and out[1] == 0
        assert rel_err(out, ref) < 0.1  # delta_y ~ 2e-6: float32 rounds |y|^2 by 3 %


# (dtype, c, hyperbolic radius of x, Riemannian step x -> y)
NEAR_BOUNDARY = [
    ("float64", 1.0, 16.0, 1e-3), ("float64", 1.0, 20.0, 0.1), ("float64", 1.0, 30.0, 1.0),
    ("float64", 2.5, 12.0, 0.1), ("float64", 2.5, 20.0, 1e-3), ("float64", 0.3, 40.0, 0.5),
    ("float32", 1.0, 6.0, 0.1), ("float32", 1.0, 10.0, 1e-3), ("float32", 1.0, 12.0, 1.0),
    ("float32", 2.5, 5.0, 0.1), ("float32", 2.5, 7.0, 1.0), ("float32", 0.3, 18.0, 0.3),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype,c,radius,step", NEAR_BOUNDARY)
def test_ball_transport_near_boundary_matches_mpmath(backend, dtype, c, radius, step):
    ball, x, y, v = ball_pairs(backend, dtype, c, radius, step, 24, seed=int(radius * 10 + c * 7))
    check_transp(c, dtype, x, y, v, ball.transp(x, y, v),
                 f"{backend} poincare c={c} {dtype} transp r={radius} step={step}")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@HSET
@given(seed=st.integers(0, 2**31 - 1), c=st.sampled_from([0.3, 1.0, 2.5]),
       depth=st.floats(0.05, 1.0), log_step=st.floats(-4.0, 0.5))
def test_ball_transport_random_near_boundary(backend, dtype, seed, c, depth, log_step):
    """Random radius up to the projection limit (depth 1: 2 artanh(1 - ball_eps)/sqrt(c)),
    random step 1e-4..3: relative error within a few eps/delta of mpmath, and the
    transported vector keeps its Riemannian norm (in the runtime's metric to rounding; in
    the exact metric of the rounded points to eps/delta)."""
    rmax = 2 * math.atanh(1 - CONSTANTS[dtype].ball_eps) / math.sqrt(c)
    ball, x, y, v = ball_pairs(backend, dtype, c, depth * rmax, 10.0 ** log_step, 8, seed)
    out = ball.transp(x, y, v)
    what = f"{backend} poincare c={c} {dtype} transp (random)"
    check_transp(c, dtype, x, y, v, out, what)
    nx, ny = to_np(ball.norm(x, v))[:, 0], to_np(ball.norm(y, out))[:, 0]
    assert np.max(np.abs(ny - nx) / nx) <= 16 * eps(dtype), f"{what}: runtime norm not preserved"
    dx, dy = deltas(c, x, y)
    with mp.workdps(DPS):
        for o, vr, a, b in zip(to_np(out), to_np(v), dx, dy):
            ex = 2 / mp.mpf(a) * mp.sqrt(mp_sq(mpv(vr)))
            ey = 2 / mp.mpf(b) * mp.sqrt(mp_sq(mpv(o)))
            assert abs(float((ey - ex) / ex)) <= 4 * eps(dtype) * (1 + 1 / min(a, b)), f"{what}: exact norm"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype,c,radius,step", [("float64", 1.0, 24.0, 0.05), ("float32", 1.0, 9.0, 0.05),
                                                 ("float32", 2.5, 6.0, 0.5)])
def test_ball_transport_there_and_back_near_boundary(backend, dtype, c, radius, step):
    """transp(y, x, transp(x, y, v)) = v and <Pv, Pw>_y = <v, w>_x to rounding: the
    rotation form is a rotation in the runtime's arithmetic, not only in exact arithmetic."""
    ball, x, y, v = ball_pairs(backend, dtype, c, radius, step, 24, seed=5)
    w = arr(backend, to_np(v)[::-1].copy(), dtype)
    pv, pw = ball.transp(x, y, v), ball.transp(x, y, w)
    back = to_np(ball.transp(y, x, pv))
    err = np.linalg.norm(back - to_np(v), axis=-1) / np.linalg.norm(to_np(v), axis=-1)
    assert err.max() <= 16 * eps(dtype), f"there and back: {err.max():.2e}"
    scale = to_np(ball.norm(x, v) * ball.norm(x, w))[:, 0]
    ip = np.abs(to_np(ball.inner(y, pv, pw) - ball.inner(x, v, w))[:, 0]) / scale
    assert ip.max() <= 16 * eps(dtype), f"inner product: {ip.max():.2e}"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype,c,radius", [("float64", 1.0, 20.0), ("float64", 2.5, 14.0), ("float32", 1.0, 8.0)])
def test_gyration_of_nearly_opposite_points(backend, dtype, c, radius):
    """gyr[u, v] w with v ~ -u near the boundary (transp's case) against its definition
    evaluated in mpmath; it is a rotation, so the error is relative to |w|."""
    ball, x, y, w = ball_pairs(backend, dtype, c, radius, 0.2, 24, seed=9)
    out = to_np(ball.gyration(y, -x, w))
    dx, dy = deltas(c, x, y)
    with mp.workdps(DPS):
        errs = np.array([rel_err(o, mp_gyration(c, mpv(b), [-t for t in mpv(a)], mpv(ww)))
                         for o, a, b, ww in zip(out, to_np(x), to_np(y), to_np(w))])
    bound = 4 * eps(dtype) * (1 + 1 / np.minimum(dx, dy))
    print(f"ACC {backend} poincare c={c} {dtype} gyration r={radius}: max {errs.max():.2e}")
    assert np.all(errs <= bound), f"gyration: {errs.max():.2e}"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype,c,radius,step", [("float64", 1.0, 20.0, 0.1), ("float64", 2.5, 12.0, 1e-3),
                                                 ("float32", 1.0, 8.0, 0.1)])
def test_jet_transport_near_boundary_matches_mpmath(backend, dtype, c, radius, step):
    """The Taylor rules use the runtime's rotation form too: along curves through nearby
    points near the boundary, coefficient 0 of the jet transport is as accurate as the
    runtime's, and coefficient 1 (the directional derivative) matches mpmath's derivative
    of the exact transport as closely (measured: at most 1.3 eps/delta; Ungar's closed
    form, which the rules used before, was off by orders of magnitude more)."""
    ball, x, y, v = ball_pairs(backend, dtype, c, radius, step, 3, seed=11)
    jets = (JTT if backend == "torch" else JTJ).PoincareBall(c)
    rng = np.random.default_rng(3)
    dirs = [rng.standard_normal(to_np(a).shape) * 1e-3 * np.array(d)[:, None] ** 2
            for a, d in zip((x, y, v), (*deltas(c, x, y), np.ones(3)))]
    stack = (torch.stack if backend == "torch" else jnp.stack)
    curves = [stack([a, arr(backend, d, dtype)]) for a, d in zip((x, y, v), dirs)]
    out = jets.transp(*curves)
    check_transp(c, dtype, x, y, v, out[0], f"{backend} jet transp c={c} {dtype} r={radius}")
    dx, dy = deltas(c, x, y)
    with mp.workdps(DPS):
        for i, (o1, a, b) in enumerate(zip(to_np(out[1]), dx, dy)):
            pts = [mpv(to_np(a_)[i]) for a_ in (x, y, v)]
            ds = [mpv(d[i]) for d in dirs]

            def along(t):
                return mp_transp(c, *([p + t * q for p, q in zip(P, D)] for P, D in zip(pts, ds)))

            ref = [mp.diff(lambda t: along(t)[k], 0) for k in range(DIM)]
            err = rel_err(o1, ref)
            assert err <= 4 * eps(dtype) * (1 + 1 / min(a, b)), f"row {i}: coefficient 1 off by {err:.2e}"


# =========================================================================================
# Hyperboloid distance at large radius
# =========================================================================================


def mp_lorentz_dist(c, x, y) -> mp.mpf:
    """arccosh(-c<x, y>_L)/sqrt(c) for the points with spatial coordinates xs, ys."""
    c = mp.mpf(c)
    xs, ys = mpv(x[1:]), mpv(y[1:])
    x0, y0 = mp.sqrt(1 / c + mp_sq(xs)), mp.sqrt(1 / c + mp_sq(ys))
    # -c<x, y>_L - 1 = c(x0 y0 - <xs, ys>) - 1, formed at DPS digits
    a = c * (x0 * y0 - mp_dot(xs, ys))
    return mp.acosh(a) / mp.sqrt(c) if a > 1 else mp.mpf(0)


def lorentz_at(backend, dtype, c, rho, dirs):
    """Points at hyperbolic radius rho (array (n,)) along unit spatial directions, built at
    DPS digits, spatial part rounded to ``dtype``, x0 from the runtime's proj."""
    sc = mp.sqrt(c)
    rows = []
    with mp.workdps(DPS):
        for r, d in zip(rho, dirs):
            s = mp.sinh(sc * mp.mpf(float(r))) / sc
            rows.append([0.0] + [float(s * mp.mpf(float(t))) for t in d])
    lor = runtime(backend).Lorentz(c)
    return lor, lor.proj(arr(backend, np.array(rows), dtype))


def dist_errors(c, x, y, out):
    with mp.workdps(DPS):
        refs = [mp_lorentz_dist(c, a, b) for a, b in zip(to_np(x), to_np(y))]
        return np.array([float(abs(mp.mpf(float(o)) - r) / r) if r > 0 else abs(float(o))
                         for o, r in zip(to_np(out)[:, 0], refs)]), np.array([float(r) for r in refs])


def max_radius(dtype, c):
    """The largest radius whose x0 is comfortably finite (the expmap cap max_hyp_z)."""
    return 0.95 * CONSTANTS[dtype].max_hyp_z / math.sqrt(c)


@pytest.mark.parametrize("backend", BACKENDS)
def test_lorentz_dist_examples_from_the_report(backend):
    """d(o, expmap0(r e1)) = r at c = 2.5: it was 0.0 at r = 25 and 36.09 at r = 30."""
    lor = runtime(backend).Lorentz(2.5)
    for r in (25.0, 30.0, 100.0):
        x = lor.expmap0(arr(backend, [0.0, r, 0.0], "float64"))
        o = lor.origin_like(x)
        for d in (lor.dist(o, x), lor.dist(x, o)):
            assert abs(float(to_np(d)[0]) - r) <= 8 * eps("float64") * r
    for r in (10.0, 20.0):
        x = lor.expmap0(arr(backend, [0.0, r, 0.0], "float32"))
        assert abs(float(to_np(lor.dist(lor.origin_like(x), x))[0]) - r) <= 8 * eps("float32") * r


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("c", [0.3, 1.0, 2.5])
def test_lorentz_dist_to_the_origin_and_between_far_points(backend, dtype, c):
    """From the origin, and between far points whose directions are at least 60 degrees
    apart (a well-conditioned distance): within a few eps of mpmath at any radius."""
    rng = np.random.default_rng(11)
    n, rmax = 24, max_radius(dtype, c)
    rho = rng.uniform(0.5, rmax, n)
    lor, x = lorentz_at(backend, dtype, c, rho, unit(rng, n, DIM - 1))
    o = lor.origin_like(x)
    for a, b in [(o, x), (x, o)]:
        errs, _ = dist_errors(c, a, b, lor.dist(a, b))
        print(f"ACC {backend} lorentz c={c} {dtype} dist to origin r<={rmax:.0f}: max {errs.max():.2e}")
        assert errs.max() <= 8 * eps(dtype), f"dist to the origin: {errs.max():.2e}"
    u, w = unit(rng, n, DIM - 1), unit(rng, n, DIM - 1)
    ok = np.sum(u * w, -1) < 0.5
    _, x = lorentz_at(backend, dtype, c, rng.uniform(0.5, rmax, n)[ok], u[ok])
    _, y = lorentz_at(backend, dtype, c, rng.uniform(0.5, rmax, n)[ok], w[ok])
    errs, _ = dist_errors(c, x, y, lor.dist(x, y))
    print(f"ACC {backend} lorentz c={c} {dtype} dist far pairs r<={rmax:.0f}: max {errs.max():.2e}")
    assert errs.max() <= 8 * eps(dtype), f"dist between far points: {errs.max():.2e}"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@HSET
@given(seed=st.integers(0, 2**31 - 1), c=st.sampled_from([0.3, 1.0, 2.5]),
       depth=st.floats(0.0, 1.0), log_d=st.floats(-6.0, 1.5))
@example(seed=0, c=0.3, depth=0.9, log_d=0.0)
@example(seed=1, c=2.5, depth=0.6, log_d=-3.0)
def test_lorentz_dist_random_pairs(backend, dtype, seed, c, depth, log_d):
    """Pairs at distance d = 1e-6..30 from a point at any radius where eps X <= 0.1
    (float32: 14.3/sqrt(c), float64: 34.4/sqrt(c); further out the coordinates cannot
    resolve a short chord at all), the step at a random angle to the radial direction:
    relative error <= 8 eps (1 + X), X = sqrt(c) min(x0, y0) (measured: 3.1 eps (1 + X) in
    300 random cases; the worst are near-radial steps, whose difference form cancels X).
    The plain chord lost about eps X^2 (1e12 eps (1 + X) at float64, r = 56, c = 0.3), and
    near the origin the rounding of the given x0 (0.3 in float32 at d = 1e-4,
    sqrt(c) x0 = 13): the reference takes x0 from the spatial coordinates, as ``proj``."""
    rng = np.random.default_rng(seed)
    n, sc = 8, math.sqrt(c)
    # beyond eps X ~ 0.1 the coordinates cannot resolve a short chord at all
    r0 = depth * min(max_radius(dtype, c), math.acosh(0.1 / eps(dtype)) / sc)
    d = min(10.0 ** log_d, max_radius(dtype, c) - r0)  # y's coordinates stay finite
    # y = exp_x(d t) built at DPS digits in the plane of x's direction e and a unit t
    e, t = unit(rng, n, DIM - 1), unit(rng, n, DIM - 1)
    rows_x, rows_y = [], []
    with mp.workdps(DPS):
        for ei, ti in zip(e, t):
            ei, ti = [mp.mpf(float(s)) for s in ei], [mp.mpf(float(s)) for s in ti]
            ph = mp.mpf(float(rng.uniform(0, math.pi)))  # angle of the step against e
            p = [a - mp_dot(ei, ti) * b for a, b in zip(ti, ei)]
            pn = mp.sqrt(mp_sq(p))
            p = [a / pn for a in p]
            z = sc * mp.mpf(r0)
            x = [mp.cosh(z) / sc] + [mp.sinh(z) / sc * a for a in ei]
            # unit tangent at x: cos(ph) radial + sin(ph) along p
            tx = [mp.cos(ph) * mp.sinh(z)] + [mp.cos(ph) * mp.cosh(z) * a + mp.sin(ph) * b for a, b in zip(ei, p)]
            zd = sc * mp.mpf(d)
            y = [mp.cosh(zd) * a + mp.sinh(zd) / sc * b for a, b in zip(x, tx)]
            rows_x.append([0.0] + [float(a) for a in x[1:]])
            rows_y.append([0.0] + [float(a) for a in y[1:]])
    lor = runtime(backend).Lorentz(c)
    x, y = lor.proj(arr(backend, rows_x, dtype)), lor.proj(arr(backend, rows_y, dtype))
    out = lor.dist(x, y)
    errs, _ = dist_errors(c, x, y, out)
    big_x = sc * np.minimum(to_np(x)[:, 0], to_np(y)[:, 0])
    bound = eps(dtype) * (1 + big_x)
    ratio = errs / bound
    assert ratio.max() <= 8, (f"{backend} lorentz c={c} {dtype} r={r0:.3g} d={d:.2e}: relative error "
                              f"{errs[ratio.argmax()]:.2e} = {ratio.max():.3g} eps (1 + X)")
    there, back = to_np(out)[:, 0], to_np(lor.dist(y, x))[:, 0]
    assert np.all(np.abs(back - there) <= 16 * bound * np.maximum(there, back)), "dist is symmetric"


@pytest.mark.parametrize("backend", BACKENDS)
def test_lorentz_dist_short_chords_near_the_origin(backend):
    """The case the plain chord (kept up to sqrt(c) x0 = 16 before 2026-12-07) got wrong:
    d = 1e-4 at sqrt(c) x0 = 13 in float32, off by up to 0.3 (the rounding of the given x0
    in y0 - x0); now within 8 eps (1 + X) of mpmath, as everywhere."""
    c, dtype, n = 1.0, "float32", 32
    rng = np.random.default_rng(4)
    e = unit(rng, n, DIM - 1)
    r0 = math.asinh(13.0)  # x0 = cosh(r0) ~ 13
    rows_x, rows_y = [], []
    with mp.workdps(DPS):
        for ei in e:
            t = rng.standard_normal(DIM - 1)
            t -= (t @ ei) * ei
            t /= np.linalg.norm(t)
            for r, rows in ((r0, rows_x), (r0 + 1e-4 * rng.uniform(-1, 1), rows_y)):
                z = mp.mpf(float(r))
                rows.append([0.0] + [float(mp.sinh(z) * mp.mpf(float(a))) for a in ei + 1e-4 * t * (rows is rows_y)])
    lor = runtime(backend).Lorentz(c)
    x, y = lor.proj(arr(backend, rows_x, dtype)), lor.proj(arr(backend, rows_y, dtype))
    errs, refs = dist_errors(c, x, y, lor.dist(x, y))
    assert refs.max() < 2e-3
    big_x = np.minimum(to_np(x)[:, 0], to_np(y)[:, 0])
    assert np.max(errs / (eps(dtype) * (1 + big_x))) <= 8, f"short chords: {errs.max():.2e}"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_lorentz_dist_coincident_points_and_gradients(backend, dtype):
    """dist(x, x) = 0 exactly with a zero gradient, and finite gradients far out."""
    lor_t = R.Lorentz(2.5)
    x = lor_t.expmap0(torch.tensor([[0.0, 0.3, -0.2, 0.1], [0.0, 9.0, 2.0, -1.0]], dtype=TORCH[dtype]))
    y = lor_t.expmap0(torch.tensor([[0.0, -0.1, 0.5, 0.0], [0.0, 9.5, 1.0, 0.0]], dtype=TORCH[dtype]))
    if backend == "torch":
        xx = x.clone().requires_grad_(True)
        d0 = lor_t.dist(xx, xx)
        (g0,) = torch.autograd.grad(d0.sum(), xx)
        xg, yg = x.clone().requires_grad_(True), y.clone().requires_grad_(True)
        gx, gy = torch.autograd.grad(lor_t.dist(xg, yg).sum(), (xg, yg))
        d0, g0, gx, gy = map(to_np, (d0, g0, gx, gy))
    else:
        import jax

        lor = J.Lorentz(2.5)
        xj, yj = jnp.asarray(x.numpy()), jnp.asarray(y.numpy())
        d0 = lor.dist(xj, xj)
        g0 = jax.grad(lambda a: lor.dist(a, a).sum())(xj)
        gx, gy = jax.grad(lambda a, b: lor.dist(a, b).sum(), argnums=(0, 1))(xj, yj)
        d0, g0, gx, gy = map(to_np, (d0, g0, gx, gy))
    assert np.all(d0 == 0) and np.all(g0 == 0)
    assert np.all(np.isfinite(gx)) and np.all(np.isfinite(gy))


def _turning(p, rng):
    """Unit tangents (0, w), w a unit vector orthogonal to p's spatial part: the points turn
    about the origin (tangents with a radial part have coordinates ~ x0 far out, and their
    Minkowski norms cancel them)."""
    ps = p[:, 1:]
    w = rng.standard_normal(ps.shape)
    pn2 = np.sum(ps * ps, -1, keepdims=True)
    w = w - np.sum(w * ps, -1, keepdims=True) / np.where(pn2 > 0, pn2, 1.0) * ps
    return np.concatenate([np.zeros_like(p[:, :1]), w / np.linalg.norm(w, axis=-1, keepdims=True)], -1)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_lorentz_jet_dist_at_large_radius(backend, dtype):
    """The Taylor rule forms the runtime's distance (the ball-image chord beyond
    sqrt(c) x0 = 16): coefficient 0 from the origin and between far points within 8 eps of
    mpmath (the Minkowski chord it used gave 0 for d(o, x) at sqrt(c) r ~ 40 in float64),
    coefficient 1 the runtime's jvp."""
    c = 2.5
    rng = np.random.default_rng(12)
    n, rmax = 12, max_radius(dtype, c)
    lor, x = lorentz_at(backend, dtype, c, rng.uniform(0.5 * rmax, rmax, n), unit(rng, n, DIM - 1))
    _, y = lorentz_at(backend, dtype, c, rng.uniform(0.5 * rmax, rmax, n), unit(rng, n, DIM - 1))
    o = lor.origin_like(x)
    jets = (JTT if backend == "torch" else JTJ).Lorentz(c)
    stack = torch.stack if backend == "torch" else jnp.stack
    for a, b in [(o, x), (x, o), (x, y)]:
        ta, tb = (arr(backend, _turning(to_np(p), rng), dtype) for p in (a, b))
        out = jets.dist(stack([a, ta]), stack([b, tb]))
        errs, _ = dist_errors(c, a, b, out[0])
        assert errs.max() <= 8 * eps(dtype), f"jet dist coefficient 0: {errs.max():.2e}"
        if backend == "torch":
            _, ref = torch.func.jvp(lor.dist, (a, b), (ta, tb))
        else:
            import jax

            _, ref = jax.jvp(lor.dist, (a, b), (ta, tb))
        err = np.abs(to_np(out[1]) - to_np(ref)) / np.maximum(np.abs(to_np(ref)), 1e-30)
        assert err.max() <= 64 * eps(dtype), f"jet dist coefficient 1: {err.max():.2e}"


def mp_lorentz_logmap(c, x, y) -> list:
    """arccosh(a)/sqrt(a^2 - 1) (y - a x), a = -c<x, y>_L, on the points whose spatial
    coordinates are x's and y's (x0, y0 from them, as ``proj`` keeps)."""
    c = mp.mpf(c)
    xs, ys = mpv(x[1:]), mpv(y[1:])
    X = [mp.sqrt(1 / c + mp_sq(xs))] + xs
    Y = [mp.sqrt(1 / c + mp_sq(ys))] + ys
    a = c * (X[0] * Y[0] - mp_dot(xs, ys))
    f = mp.acosh(a) / mp.sqrt(a * a - 1)
    return [f * (q - a * p) for p, q in zip(X, Y)]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype,radius", [("float64", 10.0), ("float64", 15.0), ("float64", 20.0), ("float32", 5.0)])
def test_lorentz_logmap_at_large_radius(backend, dtype, radius):
    """logmap(x, y) takes the chord from ``_chord`` (the ball images): within a few
    eps (1 + X)^2 of mpmath at any radius. The Minkowski chord <y - x, y - x>_L lost
    eps c x0^2/d^2: 8e-4 relative at r = 15 in float64 (now 1e-10)."""
    c, n = 1.0, 12
    rng = np.random.default_rng(int(radius))
    lor64 = R.Lorentz(c)
    e = unit(rng, n, DIM - 1)
    x = lor64.expmap0(torch.tensor(np.concatenate([np.zeros((n, 1)), radius * e], 1)))
    xn = x.numpy()
    radial = math.sqrt(c) * np.concatenate([np.linalg.norm(xn[:, 1:], axis=1, keepdims=True), xn[:, :1] * e], 1)
    phi = rng.uniform(0, math.pi, (n, 1))  # unit tangents at any angle to the radial one
    v = torch.tensor((np.cos(phi) * radial + np.sin(phi) * _turning(xn, rng)) * 10.0 ** rng.uniform(-3, 0, (n, 1)))
    y = lor64.expmap(x, v)
    lor = runtime(backend).Lorentz(c)
    xa, ya = lor.proj(arr(backend, x.numpy(), dtype)), lor.proj(arr(backend, y.numpy(), dtype))
    out = to_np(lor.logmap(xa, ya))
    big_x = math.sqrt(c) * to_np(xa)[:, 0]
    with mp.workdps(DPS):
        errs = np.array([rel_err(o, mp_lorentz_logmap(c, a, b)) for o, a, b in zip(out, to_np(xa), to_np(ya))])
    ratio = errs / (eps(dtype) * (1 + big_x))
    print(f"ACC {backend} lorentz {dtype} logmap r={radius}: max {errs.max():.2e} = {ratio.max():.3g} eps (1 + X)")
    assert ratio.max() <= 64, f"logmap: {errs.max():.2e}"
