"""Holonomy (issue 8, first step): parallel transport around geodesic triangles against
Gauss-Bonnet. The rotation angle of the transport around a counterclockwise triangle is
the integral of the curvature over it: +area on the unit sphere, -c * area on the Poincaré
ball and the hyperboloid, 0 on flat space and the torus. The oracles are independent of
transport: the signed spherical excess of Van Oosterom & Strackee, and hyperbolic angles
from the side lengths by the law of cosines. Transport preserves the metric and is
inverted by transporting back. float64, both runtimes, errors <= 1e-6 (measured ~1e-12)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
from geomir.backends.torch import runtime as torch_runtime  # noqa: E402

from . import x64  # noqa: E402, F401  (fixture: jax float64 in this module)

pytestmark = pytest.mark.usefixtures("x64")
TOL = 1e-6


def _runtimes():
    out = [pytest.param(torch_runtime, lambda a: torch.tensor(a, dtype=torch.float64), id="torch")]
    try:
        import jax.numpy as jnp

        from geomir.backends.jax import runtime as jax_runtime

        out.append(pytest.param(jax_runtime, lambda a: jnp.asarray(a, dtype=jnp.float64), id="jax"))
    except ImportError:  # pragma: no cover
        pass
    return out


RUNTIMES = _runtimes()
seeds = st.integers(0, 2**32 - 1)


def _f(x) -> float:
    return float(np.asarray(x).reshape(-1)[0])


def _angle_error(a: float, b: float) -> float:
    """|a - b| modulo 2 pi (a rotation angle is defined up to whole turns)."""
    return abs((a - b + math.pi) % (2 * math.pi) - math.pi)


def _hyperbolic_angles(a, b, c, curvature):
    """Interior angles opposite sides a, b, c of a triangle in curvature -curvature."""
    s = math.sqrt(curvature)
    A, B, C = a * s, b * s, c * s

    def angle(opp, x, y):
        return math.acos(max(-1.0, min(1.0, (math.cosh(x) * math.cosh(y) - math.cosh(opp)) / (math.sinh(x) * math.sinh(y)))))

    return angle(A, B, C), angle(B, A, C), angle(C, A, B)


@pytest.mark.parametrize("runtime,arr", RUNTIMES)
@settings(max_examples=40, deadline=None)
@given(seed=seeds)
def test_sphere_holonomy_is_the_signed_excess(runtime, arr, seed):
    rng = np.random.default_rng(seed)
    pts = rng.normal(size=(3, 3)) + np.array([0.0, 0.0, 0.5])  # small and large triangles
    pts /= np.linalg.norm(pts, axis=1, keepdims=True)
    det = np.linalg.det(pts)
    assume(abs(det) > 1e-3)
    excess = 2 * math.atan2(det, 1 + pts[0] @ pts[1] + pts[1] @ pts[2] + pts[2] @ pts[0])
    S = runtime.Sphere()
    loop = [arr(p) for p in pts]
    v = S.proju(loop[0], arr(rng.normal(size=3)))
    assert _angle_error(_f(S.holonomy_angle(loop, v)), excess) <= TOL


def _disk_triangle(rng, c):
    r = 0.9 / math.sqrt(c)
    pts = rng.uniform(-r, r, size=(3, 2)) / math.sqrt(2)
    return pts


def _to_hyperboloid(p, c):
    n2 = p @ p
    d = 1 - c * n2
    return np.concatenate([[(1 + c * n2) / (math.sqrt(c) * d)], 2 * p / d])


@pytest.mark.parametrize("runtime,arr", RUNTIMES)
@settings(max_examples=40, deadline=None)
@given(seed=seeds, c=st.sampled_from([0.25, 1.0, 3.0]))
def test_hyperbolic_holonomy_is_minus_c_times_the_area(runtime, arr, seed, c):
    rng = np.random.default_rng(seed)
    pts = _disk_triangle(rng, c)
    # orientation of the geodesic triangle: in the Klein model geodesics are straight
    klein = 2 * pts / (1 + c * (pts * pts).sum(axis=1, keepdims=True))
    e1, e2 = klein[1] - klein[0], klein[2] - klein[0]
    orientation = np.sign(e1[0] * e2[1] - e1[1] * e2[0])
    B = runtime.PoincareBall(c=c)
    loop = [arr(p) for p in pts]
    sides = [_f(B.dist(loop[1], loop[2])), _f(B.dist(loop[0], loop[2])), _f(B.dist(loop[0], loop[1]))]
    assume(min(sides) > 0.05 and orientation != 0)
    angles = _hyperbolic_angles(*sides, c)
    assume(min(angles) > 1e-3)
    area = (math.pi - sum(angles)) / c
    expected = -c * area * orientation
    assert _angle_error(_f(B.holonomy_angle(loop, arr(rng.normal(size=2)))), expected) <= TOL
    # the same triangle on the hyperboloid (an orientation-preserving isometry)
    L = runtime.Lorentz(c=c)
    hloop = [arr(_to_hyperboloid(p, c)) for p in pts]
    v = L.proju(hloop[0], arr(rng.normal(size=3)))
    assert _angle_error(_f(L.holonomy_angle(hloop, v)), expected) <= TOL


@pytest.mark.parametrize("runtime,arr", RUNTIMES)
@settings(max_examples=20, deadline=None)
@given(seed=seeds, k=st.integers(3, 6))
def test_flat_holonomy_is_the_identity(runtime, arr, seed, k):
    rng = np.random.default_rng(seed)
    for m in (runtime.Euclidean(), runtime.Torus()):
        loop = [m.proj(arr(p)) for p in rng.uniform(-3, 3, size=(k, 2))]
        v = arr(rng.normal(size=2))
        assert np.allclose(np.asarray(m.holonomy(loop, v)), np.asarray(v), atol=0)
        assert abs(_f(m.holonomy_angle(loop, v))) <= TOL


def _points(runtime, arr, name, rng, n):
    if name == "sphere":
        m = runtime.Sphere()
        x = rng.normal(size=(2, n + 1))
        x[:, 0] += 1.0  # keep the two points off antipodes
        return m, [arr(p / np.linalg.norm(p)) for p in x]
    if name == "poincare":
        m = runtime.PoincareBall(c=1.0)
        return m, [m.expmap0(arr(rng.normal(size=n) * 0.7)) for _ in range(2)]
    m = runtime.Lorentz(c=1.0)
    o = m.origin_like(arr(np.zeros(n + 1)))
    return m, [m.expmap(o, m.proju(o, arr(rng.normal(size=n + 1) * 0.7))) for _ in range(2)]


@pytest.mark.parametrize("runtime,arr", RUNTIMES)
@pytest.mark.parametrize("name", ["sphere", "poincare", "lorentz"])
@settings(max_examples=25, deadline=None)
@given(seed=seeds, n=st.integers(2, 5))
def test_transport_is_an_isometry_and_transporting_back_is_the_identity(runtime, arr, name, seed, n):
    rng = np.random.default_rng(seed)
    m, (x, y) = _points(runtime, arr, name, rng, n)
    width = n + 1 if name != "poincare" else n
    u, w = (m.proju(x, arr(rng.normal(size=width))) for _ in range(2))
    tu, tw = m.transp(x, y, u), m.transp(x, y, w)
    scale = _f(m.norm(x, u)) * _f(m.norm(x, w)) + 1e-300
    assert abs(_f(m.inner(y, tu, tw)) - _f(m.inner(x, u, w))) <= TOL * max(1.0, scale)
    back = m.transp(y, x, tu)
    assert np.max(np.abs(np.asarray(back) - np.asarray(u))) <= TOL * max(1.0, float(np.max(np.abs(np.asarray(u)))))
