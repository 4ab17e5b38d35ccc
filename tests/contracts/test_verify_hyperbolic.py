"""Curvature-aware Lipschitz bounds on the Poincaré ball (geomir.hyperbolic_bounds, used by
verify-contracts): each factor against the metric Jacobian of the map it bounds, and the
proved bound of whole hyperbolic models against the largest metric Jacobian norm found
on inputs within the declared radius."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import geomir
from geomir import hyperbolic_bounds as hb
from geomir.diagnostics import SourceError
from geomir.passes.verify_contracts import lipschitz_contracts
from geomir.pipeline import UNCHECKED_PIPELINE

torch = pytest.importorskip("torch")
from geomir.backends.torch import runtime  # noqa: E402


def _ball(c):
    return runtime.PoincareBall(c=c)


def _lam(x, c):
    return 2.0 / (1.0 - c * (x * x).sum(-1, keepdim=True))


def _point(rng, dim, radius, c):
    """A point with d(0, x) = radius (geodesic), in a random direction."""
    v = rng.normal(size=dim)
    v = v / np.linalg.norm(v) * radius / 2.0  # d(0, expmap0(v)) = 2|v|
    return _ball(c).expmap0(torch.tensor(v))


def _metric_norm(f, x, c_in, c_out):
    """|| D f(x) || from the ball's metric (or R^n when c is None) to the output's."""
    jac = torch.autograd.functional.jacobian(f, x)
    y = f(x)
    scale_in = _lam(x, c_in) if c_in is not None else torch.ones(1, dtype=x.dtype)
    scale_out = _lam(y, c_out) if c_out is not None else torch.ones(1, dtype=x.dtype)
    return float(torch.linalg.matrix_norm(jac * scale_out.reshape(-1, 1) / scale_in.reshape(1, -1), 2))


@settings(max_examples=30, deadline=None)
@given(c=st.sampled_from([0.25, 1.0, 2.0]), rx=st.floats(0.05, 3.0), ry=st.floats(0.05, 3.0), seed=st.integers(0, 10**6))
def test_mobius_add_factor_in_x_bounds_the_jacobian(c, rx, ry, seed):
    rng = np.random.default_rng(seed)
    ball = _ball(c)
    in_x, in_y = hb.mobius_add_factors(c, rx, ry)
    y = _point(rng, 3, ry, c)
    for _ in range(20):
        x = _point(rng, 3, rx * rng.uniform(0, 1) ** 0.3, c)
        assert _metric_norm(lambda z: ball.mobius_add(z, y), x, c, c) <= in_x * (1 + 1e-9)
        assert _metric_norm(lambda z: ball.mobius_add(x, z), y, c, c) <= in_y * (1 + 1e-9)


def test_mobius_add_factor_is_tight_at_small_radii():
    c, rx, ry = 1.0, 0.5, 0.5
    rng = np.random.default_rng(0)
    ball = _ball(c)
    best = 0.0
    for _ in range(400):
        x, y = _point(rng, 3, rx, c), _point(rng, 3, ry, c)
        best = max(best, _metric_norm(lambda z: ball.mobius_add(z, y), x, c, c))
    in_x, _ = hb.mobius_add_factors(c, rx, ry)
    assert best <= in_x and in_x / best < 1.01


@settings(max_examples=30, deadline=None)
@given(c=st.sampled_from([0.25, 1.0, 2.0]), r=st.floats(0.01, 2.0), seed=st.integers(0, 10**6))
def test_expmap0_and_logmap0_factors_bound_their_jacobians(c, r, seed):
    rng = np.random.default_rng(seed)
    ball = _ball(c)
    for _ in range(10):
        v = torch.tensor(rng.normal(size=4))
        v = v / v.norm() * r * rng.uniform(0, 1) ** 0.3
        assert _metric_norm(ball.expmap0, v, None, c) <= hb.expmap0_factor(c, r) * (1 + 1e-9)
        x = _point(rng, 4, 2 * r * rng.uniform(0, 1), c)
        assert _metric_norm(ball.logmap0, x, c, None) <= hb.logmap0_factor(c) * (1 + 1e-9)
    # the expmap0 factor is attained at the rim (the transverse stretch)
    v = torch.tensor([r, 0.0, 0.0, 0.0], dtype=torch.float64)
    assert _metric_norm(ball.expmap0, v, None, c) == pytest.approx(hb.expmap0_factor(c, r), rel=1e-6)


HYPERBOLIC = """manifold H = poincare(c = {c})

@lipschitz(1000.0{radius})
model F(x: H[{n}]) -> {out} {{
{body}
}}
"""

_STEPS = [
    "  let h{i} = mobius_tanh({v})",
    "  let h{i} = mobius_sigmoid({v})",
    "  let h{i} = mobius_linear({v}, {n} -> {n})",
    "  let h{i} = mobius_matvec({v}, {n} -> {n})",
    "  let h{i} = mobius_add({v}, x)",
    "  let h{i} = expmap0(0.5 * tanh(logmap0({v})))",
]


def _empirical(source, n, c, radius, euclid_out, samples=48, seed=0):
    """Largest metric Jacobian norm of F on points within ``radius`` of the origin
    (geomir.contract_report.empirical_metric_lipschitz, as --report=contracts measures)."""
    from xdsl.dialects import func

    from geomir.contract_report import empirical_metric_lipschitz

    mod = geomir.compile(source, target="torch", passes=UNCHECKED_PIPELINE)
    params = mod.init_params(seed=0, dtype=torch.float64)
    f = next(op for op in geomir.to_ir(source, passes=[]).ops if isinstance(op, func.FuncOp) and op.sym_name.data == "F")
    return empirical_metric_lipschitz(lambda z: mod.F(params, z), f.function_type.inputs.data,
                                      f.function_type.outputs.data[0], radius, seed=seed, points=samples)


@settings(max_examples=12, deadline=None)
@given(c=st.sampled_from([0.5, 1.0]), n=st.integers(2, 5), radius=st.floats(0.2, 2.0),
       steps=st.lists(st.sampled_from(_STEPS), min_size=1, max_size=3), euclid_out=st.booleans())
def test_proved_hyperbolic_bounds_are_sound(c, n, radius, steps, euclid_out):
    body, v = [], "x"
    for i, step in enumerate(steps):
        body.append(step.format(i=i, v=v, n=n))
        v = f"h{i}"
    body.append(f"  return dist({v}, x)" if euclid_out else f"  return {v}")
    source = HYPERBOLIC.format(c=c, radius=f", radius = {radius!r}", n=n, out="R[1]" if euclid_out else f"H[{n}]",
                               body="\n".join(body))
    (_, _, proof), = lipschitz_contracts(geomir.to_ir(source, passes=[]))
    assert math.isfinite(proof.bound), (source, proof.blocker)
    assert _empirical(source, n, c, radius, euclid_out) <= proof.bound * (1 + 1e-9), source


def test_a_hyperbolic_mlp_is_proved_on_a_radius_and_not_without_one():
    source = """manifold H = poincare(c = 1.0)

@lipschitz({bound}{radius})
model Encoder(x: H[6]) -> H[3] {{
  let h = mobius_tanh(mobius_linear(x, 6 -> 16))
  return mobius_linear(h, 16 -> 3)
}}
"""
    module = geomir.to_ir(source.format(bound=1000.0, radius=", radius = 1.0"), passes=[])
    (_, declared, proof), = lipschitz_contracts(module)
    assert math.isfinite(proof.bound) and declared.radius_value == 1.0
    empirical = _empirical(source.format(bound=1000.0, radius=", radius = 1.0").replace("Encoder", "F"), 6, 1.0, 1.0, False)
    assert empirical <= proof.bound
    print(f"hyperbolic MLP on radius 1: proved {proof.bound:.4g}, empirical {empirical:.4g}, ratio {proof.bound / empirical:.3g}")
    ir = geomir.print_ir(geomir.to_ir(source.format(bound=1000.0, radius=", radius = 1.0"), passes=["verify-contracts"]))
    assert "proved = [#contract.lipschitz<" in ir and ", radius = 1.0>]" in ir
    with pytest.raises(SourceError) as info:
        geomir.to_ir(source.format(bound=1000.0, radius=""), passes=["verify-contracts"])
    text = info.value.render()
    assert "cannot prove @lipschitz(1000) for model Encoder: mobius_matvec of an input at unbounded distance" in text
    assert "declare @lipschitz(L, radius = R)" in text and "<string>:5:23: note: here" in text


def test_mobius_activations_are_bounded_without_a_radius():
    """tanh bounds the tangent vector, so expmap0 has a finite factor on its range."""
    source = """manifold H = poincare(c = 0.5)

@lipschitz(10.0)
model Act(x: H[4], y: H[4]) -> H[4] {
  return mobius_tanh(mobius_add(x, y))
}
"""
    # mobius_add of two unbounded moving points has no finite bound: the error says so
    with pytest.raises(SourceError, match="x ⊕ y moves with x by up to exp"):
        geomir.to_ir(source, passes=["verify-contracts"])
    single = source.replace("x: H[4], y: H[4]", "x: H[4]").replace("mobius_add(x, y)", "x")
    (_, _, proof), = lipschitz_contracts(geomir.to_ir(single, passes=[]))
    assert proof.bound == pytest.approx(0.5 * 2 * math.sinh(2 * math.sqrt(0.5) * 2) / (2 * math.sqrt(0.5) * 2))


def test_the_report_measures_hyperbolic_contracts_within_their_radius():
    from pathlib import Path

    from geomir import contract_report

    (row,) = contract_report.report_contracts(Path(__file__).resolve().parents[2] / "examples" / "hyperbolic_mlp.geo")
    assert row.holds and row.sound and row.empirical is not None
    assert 1.0 <= row.proved / row.empirical < 10  # measured 3.37 (5.333 / 1.582)


def test_the_report_measures_tangent_inputs_by_their_coordinates(tmp_path):
    """A tangent vector is measured by the Euclidean norm of its coordinates, as the
    prover measures it: scale(v, 3) is proved 3 and measured 3 (the report sampled it as a
    ball point, measured 77 and flagged the sound proof UNSOUND)."""
    from geomir import contract_report

    path = tmp_path / "t.geo"
    path.write_text("manifold H = poincare(c = 1.0)\n@lipschitz(1000.0, radius = 1.0)\n"
                    "model T(v: tangent H[2]) -> tangent H[2] {\n  return scale(v, 3.0)\n}\n"
                    "@lipschitz(1000.0, radius = 1.0)\nmodel E(v: tangent H[2]) -> H[2] {\n  return expmap0(v)\n}\n")
    rows = {row.model: row for row in contract_report.report_contracts(path)}
    assert rows["T"].sound and rows["T"].empirical == pytest.approx(3.0, rel=1e-6)
    assert rows["E"].sound and 1.0 <= rows["E"].proved / rows["E"].empirical < 1.01
