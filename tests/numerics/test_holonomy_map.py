"""The holonomy heatmap (issue 8, ``geomc --plot=holonomy``): the curvature it draws,
from frames transported around small loops, against independent oracles in float64:

* closed forms: expmap0 images of a plane of tangents are totally geodesic, so their
  curvature is the manifold's: -c on the ball (as H^2 in H^2 and as a plane in H^3), +1 on
  the sphere; maps between flat spaces of the same dimension give 0;
* Brioschi's formula, which gives K from the pull-back metric g = J^T G J and its first
  and second derivatives alone (nested torch.func forward-mode, no transport), for MLP
  surfaces in R^3 with random weights (hypothesis) and for a hyperbolic encoder into H^16.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

from geomir import holonomy_map as hm  # noqa: E402
from geomir.diagnostics import UsageError  # noqa: E402

SOURCE = """
manifold H = poincare(c = 0.5)
manifold B = poincare(c = 1.0)
manifold S = sphere()

model Ball(v: tangent H[2]) -> H[2] {
  return expmap0(v)
}

model Plane(v: tangent H[2]) -> H[3] {
  return expmap0(linear(v, 2 -> 3, bias = false))
}

model Round(v: tangent S[3]) -> S[3] {
  return expmap0(v)
}

model Flat(x: R[2]) -> R[2] {
  return tanh(linear(tanh(linear(x, 2 -> 8)), 8 -> 2))
}

model Surface(x: R[2]) -> R[3] {
  return tanh(linear(tanh(linear(x, 2 -> 8)), 8 -> 3))
}

model Encoder(x: B[2]) -> B[16] {
  return mobius_tanh(mobius_linear(x, 2 -> 16))
}

model Score(x: R[2]) -> R[1] {
  return linear(x, 2 -> 1)
}
"""


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    path = tmp_path_factory.mktemp("geo") / "surfaces.geo"
    path.write_text(SOURCE)
    return path


@pytest.mark.parametrize("model,expected", [("Ball", -0.5), ("Plane", -0.5), ("Round", 1.0)])
def test_totally_geodesic_images_have_the_manifolds_curvature(source, model, expected):
    r = hm.holonomy_map(source, model, grid=6)
    assert not r.blank
    assert np.max(np.abs(r.curvature - expected)) <= 1e-6 * abs(expected)
    # the angle is the curvature times the loop's area (Gauss-Bonnet), with the sign of K
    assert np.all(np.sign(r.angle) == np.sign(expected))


def test_flat_to_flat_maps_have_no_holonomy(source):
    r = hm.holonomy_map(source, "Flat", grid=6)
    assert not r.blank
    assert np.max(np.abs(r.angle)) <= 1e-12


def _ball_weight(c):
    return lambda p: (2.0 / (1.0 - c * (p * p).sum(-1))) ** 2


def _brioschi(F, q, weight=None):
    """Gaussian curvature of g = w(F) J^T J at q (2,) from g and its derivatives."""
    es, et = torch.tensor([[1.0, 0.0]], dtype=torch.float64), torch.tensor([[0.0, 1.0]], dtype=torch.float64)

    def g(u):
        p, a = torch.func.jvp(F, (u[None],), (es,))
        _, b = torch.func.jvp(F, (u[None],), (et,))
        w = weight(p[0]) if weight is not None else 1.0
        return torch.stack([w * a[0] @ a[0], w * a[0] @ b[0], w * b[0] @ b[0]])

    E, Fm, G = g(q)
    d1 = torch.func.jacfwd(g)(q)
    d2 = torch.func.jacfwd(torch.func.jacfwd(g))(q)
    Eu, Ev, Fu, Fv, Gu, Gv = d1[0, 0], d1[0, 1], d1[1, 0], d1[1, 1], d1[2, 0], d1[2, 1]
    Evv, Fuv, Guu = d2[0, 1, 1], d2[1, 0, 1], d2[2, 0, 0]
    m1 = torch.stack([torch.stack([-Evv / 2 + Fuv - Guu / 2, Eu / 2, Fu - Ev / 2]),
                      torch.stack([Fv - Gu / 2, E, Fm]), torch.stack([Gv / 2, Fm, G])])
    m2 = torch.stack([torch.stack([torch.zeros_like(E), Ev / 2, Gu / 2]),
                      torch.stack([Ev / 2, E, Fm]), torch.stack([Gu / 2, Fm, G])])
    return float((torch.linalg.det(m1) - torch.linalg.det(m2)) / (E * G - Fm * Fm) ** 2)


def _compare(r, sl, weight, cells):
    worst = 0.0
    scale = np.nanmax(np.abs(r.curvature))
    for i, j in cells:
        q = torch.tensor([r.s[j], r.t[i]], dtype=torch.float64)
        oracle = _brioschi(sl.F, q, weight)
        worst = max(worst, abs(r.curvature[i, j] - oracle) / max(scale, abs(oracle)))
    return worst


@settings(max_examples=4, deadline=None)
@given(seed=st.integers(0, 2**16))
def test_surfaces_in_r3_match_brioschi(source, seed):
    r = hm.holonomy_map(source, "Surface", grid=5, seed=seed, extent=1.5)
    sl = hm.model_slice(source, "Surface", seed=seed, extent=1.5)
    assert not r.blank
    assert _compare(r, sl, None, [(i, j) for i in range(5) for j in range(5)]) <= 2e-5


def test_a_hyperbolic_encoder_into_h16_matches_brioschi(source):
    """Curvature of the encoder's image surface in H^16 (intrinsic: the ambient -1 plus
    the bending of the surface, which the transport-and-project frame picks up)."""
    r = hm.holonomy_map(source, "Encoder", grid=6, seed=3)
    sl = hm.model_slice(source, "Encoder", seed=3)
    assert not r.blank
    assert _compare(r, sl, _ball_weight(1.0), [(i, j) for i in range(0, 6, 2) for j in range(0, 6, 2)]) <= 2e-5


def test_bad_requests_say_what_is_wrong(source):
    with pytest.raises(UsageError, match="returns R\\[1\\], a space of dimension 1"):
        hm.holonomy_map(source, "Score")
    with pytest.raises(UsageError, match="defines 7 models .* name one with --model"):
        hm.holonomy_map(source)
    with pytest.raises(UsageError, match="no model 'Nope'"):
        hm.holonomy_map(source, "Nope")
    with pytest.raises(UsageError, match="pick two different coordinates 1..2 \\(the tangent space at the origin\\)"):
        hm.holonomy_map(SOURCE.replace("v: tangent S[3]) -> S[3] {\n  return expmap0(v)", "v: S[3]) -> S[3] {\n  return v"),
                        "Round", axes=(0, 1))
    with pytest.raises(UsageError, match="--plot-grid must be at least 2"):
        hm.holonomy_map(source, "Flat", grid=1)
