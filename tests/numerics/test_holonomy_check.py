"""The holonomy check (issue 8, ``geomc --report=holonomy``): the rotation angles it
reports for a model's loops against Gauss-Bonnet oracles that never transport anything
(the signed spherical excess of Van Oosterom & Strackee; hyperbolic triangle areas from
side lengths by the law of cosines), and the holonomy matrix it builds is orthogonal with
the 2-D angle as its rotation when the loop lies in a plane. float64."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

import geomir  # noqa: E402
from geomir import holonomy_check as hc  # noqa: E402
from geomir.backends.torch import runtime as R  # noqa: E402
from geomir.compiler import frontend  # noqa: E402
from geomir.jet_report import draw_inputs, models_of  # noqa: E402

from .test_holonomy import _angle_error, _hyperbolic_angles  # noqa: E402

LOOPS = """
manifold S = sphere()
manifold H = poincare(c = 1.0)

model Turn(a: S[3], b: S[3], c: S[3], v: tangent S[3]) -> R[1] {
  return holonomy_angle(v, a, b, c)
}

model Step(h: H[2]) -> H[2] {
  return mobius_tanh(mobius_linear(h, 2 -> 2))
}

model Carry(a: H[4], b: H[4], c: H[4]) -> tangent H[4] {
  return holonomy(logmap0(b), a, b, c)
}

model Flat(x: R[2]) -> R[2] {
  return tanh(linear(x, 2 -> 2))
}
"""


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    path = tmp_path_factory.mktemp("geo") / "loops.geo"
    path.write_text(LOOPS)
    return path


def _inputs(source, model, batch, seed):
    f = next(f for f in models_of(frontend(source.read_text(), str(source))) if f.sym_name.data == model)
    return [x.numpy() for x in draw_inputs(f, 0, batch, seed)[0]]


def test_a_holonomy_op_on_the_sphere_turns_by_the_excess(source):
    (r,) = hc.check_holonomy(source, "Turn", batch=32, seed=4)
    a, b, c, _ = _inputs(source, "Turn", 32, 4)
    det = np.linalg.det(np.stack([a, b, c], 1))
    excess = 2 * np.arctan2(det, 1 + (a * b).sum(-1) + (b * c).sum(-1) + (c * a).sum(-1))
    assert r.kind == "holonomy op" and r.where.endswith("loops.geo:6:10") and r.points == 3
    assert np.max(np.abs(r.angles - np.abs(excess))) <= 1e-9


def _signed_area(x, y, z, c=1.0):
    """The signed area of the hyperbolic triangle (x, y, z) on the ball: sides by geodesic
    distance, angles by the law of cosines, orientation in the Klein model."""
    ball = R.PoincareBall(c=c)
    t = [torch.tensor(p, dtype=torch.float64) for p in (x, y, z)]
    sides = [float(ball.dist(t[1], t[2])), float(ball.dist(t[0], t[2])), float(ball.dist(t[0], t[1]))]
    if min(sides) < 1e-9:
        return 0.0
    klein = [2 * p / (1 + c * p @ p) for p in (x, y, z)]
    e1, e2 = klein[1] - klein[0], klein[2] - klein[0]
    orientation = np.sign(e1[0] * e2[1] - e1[1] * e2[0])
    return orientation * (math.pi - sum(_hyperbolic_angles(*sides, c))) / c


def test_a_recurrent_block_turns_by_minus_the_area_its_trajectory_encloses(source, tmp_path):
    steps = 6
    (r,) = hc.check_holonomy(source, "Step", batch=16, seed=2, steps=steps)
    assert r.kind == "recurrent block" and r.points == steps + 1
    mod = geomir.compile(source, target="torch", cache_dir=tmp_path)
    params = mod.init_params(2, torch.float64)
    (x0,) = _inputs(source, "Step", 16, 2)
    xs = [torch.tensor(x0)]
    for _ in range(steps):
        xs.append(mod.Step(params, xs[-1]))
    pts = np.stack([x.numpy() for x in xs], 1)  # (B, T+1, 2)
    for row in range(pts.shape[0]):
        p = pts[row]
        area = sum(_signed_area(p[0], p[i], p[i + 1]) for i in range(1, len(p) - 1))  # fan from x_0
        assert _angle_error(r.angles[row], abs(_angle_error(-area, 0.0))) <= 1e-7


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), k=st.integers(3, 6), kind=st.sampled_from(["ball", "lorentz", "sphere"]))
def test_the_holonomy_matrix_is_orthogonal_and_planar_loops_turn_by_their_2d_angle(seed, k, kind):
    rng = np.random.default_rng(seed)
    m = {"ball": R.PoincareBall(c=0.7), "lorentz": R.Lorentz(c=0.7), "sphere": R.Sphere()}[kind]
    n = 4 if kind == "ball" else 5
    tangent = np.zeros((8, k, n))
    tangent[..., 1 if kind != "ball" else 0] = rng.uniform(-0.6, 0.6, (8, k))
    tangent[..., 2 if kind != "ball" else 1] = rng.uniform(-0.6, 0.6, (8, k))
    loop = [m.expmap0(torch.tensor(tangent[:, i])) for i in range(k)]  # a totally geodesic 2-plane
    angles, matrix = hc.rotation_angles(m, loop)
    d = matrix.shape[-1]
    assert d == 4  # the manifold's dimension: the normal coordinate of the sphere and hyperboloid drops out
    eye = torch.eye(d, dtype=torch.float64)
    assert torch.allclose(matrix.transpose(1, 2) @ matrix, eye.expand_as(matrix), atol=1e-10)
    # the 2-D angle of the same loop, seen in the plane's own 2-D manifold
    plane = {"ball": R.PoincareBall(c=0.7), "lorentz": R.Lorentz(c=0.7), "sphere": R.Sphere()}[kind]
    keep = [0, 1] if kind == "ball" else [0, 1, 2]
    small = [p[:, keep] for p in loop]
    v = plane.proju(small[0], torch.tensor(rng.normal(size=(8, len(keep)))))
    expected = plane.holonomy_angle(small, v)[:, 0].abs()
    assert torch.allclose(angles, expected, atol=1e-9)


def test_flat_models_have_no_loops_and_thresholds_flag(source):
    reports = hc.check_holonomy(source, batch=8, threshold=0.1)
    assert [r.model for r in reports] == ["Turn", "Step", "Carry"]
    for r in reports:
        assert r.flagged == (r.max > 0.1)
    assert not any(r.flagged for r in hc.check_holonomy(source, batch=8, threshold=math.pi))
    assert hc.check_holonomy(source, "Flat") == []
