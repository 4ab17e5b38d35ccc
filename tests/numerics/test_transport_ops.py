"""The transport ops compiled (issue 8): ``geo.holonomy`` / ``geo.holonomy_angle`` lowered
to torch and JAX give the Gauss-Bonnet angle of a hyperbolic triangle, and a model whose
tangents insert-transport carried to a common point computes what the hand-written
transports compute. float64."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import geomir  # noqa: E402
from geomir.backends.torch import runtime as R  # noqa: E402
from geomir.diagnostics import GeomirError  # noqa: E402

from . import x64  # noqa: E402, F401
from .test_holonomy import _angle_error, _hyperbolic_angles  # noqa: E402

pytestmark = pytest.mark.usefixtures("x64")

P = "!geo.point<poincare<1.0>, 2, f64>"
T = "!geo.tangent<poincare<1.0>, 2, f64>"
E1 = "!geo.point<euclidean, 1, f64>"
LOOP_IR = f"""
func.func @loop(%a: {P}, %b: {P}, %c: {P}, %v: {T}) -> ({T}, {E1}) {{
  %h = geo.holonomy %v around %a, %b, %c : {T} around {P}, {P}, {P} -> {T}
  %t = geo.holonomy_angle %v around %a, %b, %c : {T} around {P}, {P}, {P} -> {E1}
  func.return %h, %t : {T}, {E1}
}}
"""


@pytest.fixture(scope="module")
def loop_ir(tmp_path_factory):
    path = tmp_path_factory.mktemp("ir") / "loop.mlir"
    path.write_text(LOOP_IR)
    return path


@pytest.mark.parametrize("target", ["torch", "jax"])
def test_compiled_holonomy_angle_is_minus_the_area(loop_ir, tmp_path, target):
    mod = geomir.compile(loop_ir, target=target, cache_dir=tmp_path)
    rng = np.random.default_rng(3)
    ball = R.PoincareBall(c=1.0)
    checked = 0
    for _ in range(20):
        pts = rng.uniform(-0.6, 0.6, size=(3, 2))
        klein = 2 * pts / (1 + (pts * pts).sum(axis=1, keepdims=True))
        e1, e2 = klein[1] - klein[0], klein[2] - klein[0]
        orientation = np.sign(e1[0] * e2[1] - e1[1] * e2[0])
        t = [torch.tensor(p, dtype=torch.float64) for p in pts]
        sides = [float(ball.dist(t[1], t[2])), float(ball.dist(t[0], t[2])), float(ball.dist(t[0], t[1]))]
        if min(sides) < 0.05:
            continue
        expected = -(math.pi - sum(_hyperbolic_angles(*sides, 1.0))) * orientation
        v = rng.normal(size=2)
        if target == "torch":
            args = [torch.tensor(a, dtype=torch.float64) for a in (*pts, v)]
        else:
            import jax.numpy as jnp

            args = [jnp.asarray(a, dtype=jnp.float64) for a in (*pts, v)]
        h, angle = mod.loop({}, *args)
        assert _angle_error(float(np.asarray(angle).reshape(-1)[0]), expected) <= 1e-6
        # the map is a rotation of the tangent plane: it keeps the metric norm of v at a
        assert abs(float(ball.norm(t[0], torch.tensor(h.numpy() if isinstance(h, torch.Tensor) else np.array(h)))) - float(ball.norm(t[0], torch.as_tensor(v)))) <= 1e-9
        checked += 1
    assert checked >= 10


MIX = """
manifold H = poincare(c = 1.0)

model Mix(x: H[2], y: H[2], z: H[2]) -> H[2] {
  let s = logmap(x, y) + logmap(y, z)
  return expmap(z, logmap0(z) + s)
}
"""


@pytest.mark.parametrize("target", ["torch", "jax"])
def test_inserted_transports_compute_the_hand_written_ones(tmp_path, target):
    src = tmp_path / "mix.geo"
    src.write_text(MIX.replace("H[2]", "H[2, f64]"))
    mod = geomir.compile(src, target=target, cache_dir=tmp_path)
    rng = np.random.default_rng(0)
    ball = R.PoincareBall(c=1.0)
    x, y, z = (torch.tensor(rng.uniform(-0.5, 0.5, size=2), dtype=torch.float64) for _ in range(3))
    s = ball.logmap(x, y) + ball.transp(y, x, ball.logmap(y, z))  # u + w carried to x
    o = ball.logmap0(z) + ball.transp(x, ball.origin_like(x), s)  # s carried to the origin
    expected = ball.expmap(z, ball.transp(ball.origin_like(z), z, o))
    if target == "torch":
        out = mod.Mix({}, x, y, z)
    else:
        import jax.numpy as jnp

        out = mod.Mix({}, *(jnp.asarray(a.numpy()) for a in (x, y, z)))
    assert np.allclose(np.asarray(out), expected.numpy(), atol=1e-12)


def test_without_the_pass_the_build_fails_naming_both_points(tmp_path):
    src = tmp_path / "mix.geo"
    src.write_text(MIX)
    with pytest.raises(GeomirError, match=r"geo.add mixes tangent vectors at different base points: "
                                          r"operand 'rhs' is a tangent at %y \(argument 1 of @Mix\) but "
                                          r"operand 'lhs' is a tangent at %x \(argument 0 of @Mix\)"):
        geomir.compile(src, target="torch", passes="cse,dce", cache_dir=tmp_path)


SPHERE_LOOP = """
manifold S = sphere()

model Turn(a: S[3, f64], b: S[3, f64], c: S[3, f64], v: tangent S[3, f64]) -> R[1, f64] {
  return holonomy_angle(v, a, b, c)
}

model Carry(a: S[3, f64], b: S[3, f64], c: S[3, f64], d: S[3, f64]) -> tangent S[3, f64] {
  return holonomy(logmap(a, c), a, b, c, d)
}
"""


@pytest.mark.parametrize("target", ["torch", "jax"])
def test_dsl_holonomy_on_the_sphere_is_the_signed_excess(tmp_path, target):
    """holonomy_angle(v, a, b, c) written in .geo: the triangle's signed spherical excess
    (Van Oosterom-Strackee, an independent closed form); holonomy(...) around a
    quadrilateral keeps the tangent's length and its tangency at a."""
    src = tmp_path / "loop.geo"
    src.write_text(SPHERE_LOOP)
    mod = geomir.compile(src, target=target, cache_dir=tmp_path)
    conv = (lambda a: torch.tensor(a)) if target == "torch" else (lambda a: __import__("jax.numpy").numpy.asarray(a))
    rng = np.random.default_rng(7)
    for _ in range(10):
        pts = rng.normal(size=(4, 3)) + np.array([0.0, 0.0, 0.8])
        pts /= np.linalg.norm(pts, axis=1, keepdims=True)
        tri = pts[:3]
        det = np.linalg.det(tri)
        excess = 2 * math.atan2(det, 1 + tri[0] @ tri[1] + tri[1] @ tri[2] + tri[2] @ tri[0])
        v = rng.normal(size=3)
        v -= (v @ tri[0]) * tri[0]
        angle = float(np.asarray(mod.Turn({}, *(conv(p) for p in (*tri, v)))).reshape(-1)[0])
        assert _angle_error(angle, excess) <= 1e-9
        u = np.asarray(mod.Carry({}, *(conv(p) for p in pts)))
        w = np.arccos(np.clip(pts[0] @ pts[2], -1, 1))  # |logmap(a, c)| is the arc length
        assert abs(np.linalg.norm(u) - w) <= 1e-9 and abs(u @ pts[0]) <= 1e-9
