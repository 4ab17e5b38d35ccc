"""A model that calls another (bug hunt 5): verify-contracts proves the callee on the radii
of the call's operands (once per radii), so a caller's declared radius reaches its callees
and the callee's result radius comes back; never on the smaller radius a callee's own
contract may declare. Sound against random pairs inside the radius, and the bound
inline-models gives."""

from __future__ import annotations

import math

import numpy as np
import pytest

import geomir
from geomir.passes.verify_contracts import _Prover, lipschitz_contracts
from geomir.pipeline import UNCHECKED_PIPELINE

torch = pytest.importorskip("torch")
from geomir.backends.torch import runtime  # noqa: E402

SOURCE = """manifold H = poincare(c = 1.0)
@lipschitz(8.0{enc_radius})
model Encoder(x: H[2]) -> H[6] {{
  let h = mobius_linear(x, 2 -> 6)
  return mobius_tanh(h)
}}
@lipschitz(1.0e9, radius = 0.5)
model F(x: H[2]) -> R[3] {{
  let z = Encoder(x)
  return coords(mobius_linear(z, 6 -> 3))
}}
"""


def _bound(source: str, passes: list[str]) -> float:
    proofs = {f.sym_name.data: p.bound for f, _, p in lipschitz_contracts(geomir.to_ir(source, passes=passes))}
    return proofs["F"]


def _pairs_estimate(source: str, radius: float, n: int = 2000) -> float:
    """max |F(x) - F(y)| / d(x, y) over random pairs x, y of the ball (c = 1) within
    ``radius`` of the origin, half of them close pairs (the local stretch)."""
    mod = geomir.compile(source, target="torch", passes=UNCHECKED_PIPELINE)
    params = mod.init_params(0, torch.float64)
    rng = np.random.default_rng(0)

    def inside(m):  # tangents of norm <= radius / 2: d(0, expmap0(v)) = 2 |v|
        v = rng.normal(size=(m, 2))
        v *= (radius / 2) * rng.uniform(0, 1, (m, 1)) ** 0.5 / np.linalg.norm(v, axis=1, keepdims=True)
        return v

    u = inside(n)
    w = np.concatenate([inside(n // 2), u[n // 2:] + 1e-4 * rng.normal(size=(n - n // 2, 2))])
    w *= np.minimum(1.0, (radius / 2) / np.linalg.norm(w, axis=1, keepdims=True))
    ball = runtime.PoincareBall(c=1.0)
    x, y = ball.expmap0(torch.tensor(u)), ball.expmap0(torch.tensor(w))
    dist = ball.dist(x, y).reshape(-1)
    fx, fy = mod.F(params, x), mod.F(params, y)
    keep = dist > 1e-9
    return float(((fx - fy).norm(dim=1)[keep] / dist[keep]).max())


@pytest.mark.parametrize("enc_radius", [", radius = 0.5", ", radius = 0.1", ""])
def test_a_caller_proves_its_callee_on_its_own_radius(enc_radius):
    """F's radius 0.5 reaches Encoder (whose mobius_linear needs one), whatever radius
    Encoder declares (0.1 is smaller than F's: not used), and Encoder's result radius
    bounds F's mobius_linear: F is proved, as after inline-models, and the bound holds."""
    source = SOURCE.format(enc_radius=enc_radius)
    bound = _bound(source, [])
    assert math.isfinite(bound)
    assert bound == pytest.approx(_bound(source, ["inline-models"]), rel=1e-9)
    assert bound == _bound(SOURCE.format(enc_radius=", radius = 0.5"), [])  # never Encoder's own 0.1
    assert _pairs_estimate(source, 0.5) <= bound


def test_the_callee_is_proved_once_per_radii():
    module = geomir.to_ir(SOURCE.format(enc_radius=", radius = 0.1"), passes=[])
    funcs = {f.sym_name.data: f for f in module.ops}
    prover = _Prover(funcs, 0, {"F": 0.5})
    assert math.isfinite(prover.prove("F").bound)
    small, large = prover.prove("Encoder", (0.1,)), prover.prove("Encoder", (0.5,))
    assert small.bound < large.bound and set(prover.proofs) == {("F", (0.5,)), ("Encoder", (0.5,)), ("Encoder", (0.1,))}
    assert math.isinf(prover.prove("Encoder").bound)  # no radius: mobius_matvec of an unbounded input
    assert 0 < large.radius < math.inf  # mobius_tanh keeps the result inside the ball
