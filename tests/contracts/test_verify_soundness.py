"""Regression tests for unsound or crashing proofs in verify-contracts: each model here was
once proved below its true Lipschitz constant (or crashed the compiler); the proved bound
must now be at least an empirical lower bound, or the proof must fail with a located error."""

from __future__ import annotations

import math

import numpy as np
import pytest

import geomir
from geomir.diagnostics import SourceError, UsageError
from geomir.passes.verify_contracts import ContractError, lipschitz_contracts
from geomir.pipeline import UNCHECKED_PIPELINE, with_weight_transforms

torch = pytest.importorskip("torch")
from geomir.backends.torch import runtime  # noqa: E402


def _proof(source: str):
    (_, _, proof), = lipschitz_contracts(geomir.to_ir(source, passes=[]))
    return proof


def _model(source: str, name: str = "F"):
    mod = geomir.compile(source, target="torch", passes=UNCHECKED_PIPELINE)
    params = mod.init_params(seed=0, dtype=torch.float64)
    return lambda *xs: getattr(mod, name)(params, *xs)


LORENTZ_COORDS = """manifold L = lorentz(c = {c})

@lipschitz(1000000.0{radius})
model F(x: L[3]) -> R[3] {{
  return coords(x)
}}
"""


def test_coords_of_a_hyperboloid_point_are_not_1_lipschitz_without_a_radius():
    # the ambient coordinates grow like e^(sqrt(c) d(o, x)): once proved 1
    proof = _proof(LORENTZ_COORDS.format(c=1.0, radius=""))
    assert math.isinf(proof.bound)
    assert "coords of a hyperboloid point at unbounded distance" in proof.blocker.why
    with pytest.raises(SourceError, match="declare @lipschitz\\(L, radius = R\\)"):
        geomir.to_ir(LORENTZ_COORDS.format(c=1.0, radius=""), passes=["verify-contracts"])


@pytest.mark.parametrize("c", [0.3, 1.0, 4.0])
@pytest.mark.parametrize("radius", [0.2, 1.0, 2.5])
def test_coords_of_a_hyperboloid_point_on_a_radius_bound_the_stretch(c, radius):
    proof = _proof(LORENTZ_COORDS.format(c=c, radius=f", radius = {radius}"))
    f = _model(LORENTZ_COORDS.format(c=c, radius=f", radius = {radius}"))
    m = runtime.Lorentz(c=c)
    rng = np.random.default_rng(0)
    best = 0.0
    for _ in range(300):
        u = rng.normal(size=2)
        u /= np.linalg.norm(u)
        r = radius * rng.uniform() ** 0.1
        w = rng.normal(size=2)
        v2 = u * r + 1e-5 * w / np.linalg.norm(w)
        if np.linalg.norm(v2) > radius:
            continue
        x, y = m.expmap0(torch.tensor([0.0, *(u * r)])), m.expmap0(torch.tensor([0.0, *v2]))
        best = max(best, float((f(x) - f(y)).norm() / m.dist(x, y)))
    assert best > 1.0 and best <= proof.bound * (1 + 1e-9)  # it was proved 1
    assert proof.bound == pytest.approx(math.sqrt(math.cosh(2 * math.sqrt(c) * radius)))


def test_coords_of_a_torus_point_are_not_lipschitz():
    source = """manifold T = torus(units = radians)

@lipschitz(100.0)
model F(x: T[2]) -> R[2] {
  return coords(x)
}
"""
    f = _model(source)
    a, b = torch.tensor([2 * math.pi - 1e-3, 0.0]), torch.tensor([1e-3, 0.0])
    assert float((f(a) - f(b)).norm()) > 6.0  # torus distance 2e-3: the angles wrap
    proof = _proof(source)  # once proved 1
    assert math.isinf(proof.bound) and "jump by the period" in proof.blocker.why


def test_a_zero_scale_does_not_make_the_bound_nan_and_hide_a_moving_value():
    """0 * (unbounded radius) was NaN; a NaN radius made expmap0's factor NaN, and Möbius
    addition took the NaN bound for 'not moving': proved 0 for a 1-Lipschitz model."""
    source = """manifold H = poincare(c = 1.0)

@lipschitz(100.0)
model F(x: H[3]) -> H[3] {
  let t = logmap0(x)
  let v = tanh(t) + 0 * t
  return mobius_add(expmap0(v), expmap0(0 * tanh(t)))
}
"""
    from geomir.contract_report import empirical_metric_lipschitz
    from xdsl.dialects import func

    proof = _proof(source)
    f = next(op for op in geomir.to_ir(source, passes=[]).ops if isinstance(op, func.FuncOp))
    empirical = empirical_metric_lipschitz(_model(source), f.function_type.inputs.data,
                                           f.function_type.outputs.data[0], math.inf)
    assert empirical > 0.9
    assert math.isfinite(proof.bound) and proof.bound >= empirical


CHAIN = """@lipschitz({bound})
model F(x: R[3, f64]) -> R[3, f64] {{
  let h = tanh(linear(x, 3 -> 3))
  return linear(h, 3 -> 3)
}}
"""


def _weights(path, w0, w1):
    np.savez(path, **{"F.linear0.weight": w0, "F.linear0.bias": np.zeros(3),
                      "F.linear1.weight": w1, "F.linear1.bias": np.zeros(3)})
    return path


def test_huge_trained_weights_fail_the_proof_instead_of_crashing(tmp_path):
    # the layered bound multiplied the two layers: inf entries, then a ValueError traceback
    path = _weights(tmp_path / "big.npz", np.full((3, 3), 1e200), np.full((3, 3), 1e200))
    with pytest.raises(ContractError) as info:
        geomir.to_ir(CHAIN.format(bound=100.0), passes=with_weight_transforms("", weights_file=path))
    assert "overflows the float64 range" in info.value.render()


def test_the_layered_bound_of_layers_of_very_different_scales_is_finite(tmp_path):
    """W2 W1 overflows (1e400) though W3 W2 W1 is 1e100: the layered bound crashed on the
    inf block; it now works on powers-of-two-normalised layers."""
    source = """@lipschitz(1e110)
model F(x: R[3, f64]) -> R[3, f64] {
  let h = tanh(linear(x, 3 -> 3))
  let h = tanh(linear(h, 3 -> 3))
  return linear(h, 3 -> 3)
}
"""
    rng = np.random.default_rng(0)
    w = [rng.uniform(0.5, 1.0, (3, 3)) * scale for scale in (1e200, 1e200, 1e-300)]
    path = tmp_path / "scales.npz"
    np.savez(path, **{f"F.linear{i}.weight": w[i] for i in range(3)}, **{f"F.linear{i}.bias": np.zeros(3) for i in range(3)})
    module = geomir.to_ir(source, passes=with_weight_transforms("", weights_file=path))
    (f,) = [op for op in module.ops if hasattr(op, "sym_name")]
    bound = f.attributes["proved"].data[0].bound_value
    # the Jacobian at 0 (tanh' = 1, zero biases) is W3 W2 W1: a lower bound
    assert np.linalg.norm(w[2] @ w[1] @ w[0], 2) <= bound < 1e110


def test_weights_that_bf16_cannot_hold_are_a_located_error(tmp_path):
    path = _weights(tmp_path / "wide.npz", np.full((3, 3), 1e100), np.full((3, 3), 1e-100))
    with pytest.raises(ContractError) as info:  # was a ValueError traceback (inf weights)
        geomir.to_ir(CHAIN.format(bound=100.0),
                     passes=with_weight_transforms("", quantize="bf16", weights_file=path))
    text = info.value.render()
    assert "parameter 'F.linear0.weight'" in text and "non-finite values after quantize:bf16" in text
    assert "<string>:3:16" in text


def test_a_trained_ball_point_off_the_ball_is_refused(tmp_path):
    source = """manifold H = poincare(c = 1.0)

@lipschitz(1e30, radius = 1.0)
model F(x: H[2]) -> H[2] {
  return mobius_linear(x, 2 -> 2)
}
"""
    path = tmp_path / "off.npz"
    np.savez(path, **{"F.mobius_linear0.weight": np.eye(2), "F.mobius_linear0.bias": np.array([1.5, 0.0])})
    # was clamped to |x| = 1 - 1e-15 and proved (1.7e15): a bound of another point
    with pytest.raises(UsageError, match="'F.mobius_linear0.bias' is not a point of the Poincaré ball"):
        geomir.to_ir(source, passes=with_weight_transforms("", weights_file=path))


def test_the_pruning_fraction_is_recorded_exactly():
    module = geomir.to_ir(CHAIN.format(bound=100.0), passes=["prune-weights{method=magnitude fraction=0.4999999}"])
    text = geomir.print_ir(module)
    assert '"prune:magnitude:0.4999999"' in text  # was rounded to 0.5 (prunes floor(0.5 size))
    module = geomir.to_ir(CHAIN.format(bound=100.0), passes=["prune-weights{method=magnitude fraction=0.9999999}"])
    assert '"prune:magnitude:0.9999999"' in geomir.print_ir(module)  # was "1", then a usage error


def test_a_sum_of_opposite_directions_names_the_sum():
    source = """@monotone(x, increasing)
model F(x: R[3]) -> R[3] {
  return x - x
}
"""
    with pytest.raises(ContractError) as info:  # said "the output moves the other way"
        geomir.to_ir(source, passes=["verify-contracts"])
    text = info.value.render()
    assert "the difference combines a term that increases with the input and one that decreases" in text
    assert "<string>:3:12: note: here" in text


_TWO_RESULTS_MONOTONE = """builtin.module {
  func.func @G(%x: !geo.point<euclidean, 3, f32>) -> (!geo.point<euclidean, 3, f32>, !geo.point<euclidean, 3, f32>) {
    %n = geo.neg %x : !geo.point<euclidean, 3, f32> -> !geo.point<euclidean, 3, f32>
    func.return %x, %n : !geo.point<euclidean, 3, f32>, !geo.point<euclidean, 3, f32>
  }
  func.func @F(%x: !geo.point<euclidean, 3, f32>) -> !geo.point<euclidean, 3, f32> attributes {contracts = [#contract.monotone<[0], increasing>]} {
    %a, %b = func.call @G(%x) : (!geo.point<euclidean, 3, f32>) -> (!geo.point<euclidean, 3, f32>, !geo.point<euclidean, 3, f32>)
    func.return %b : !geo.point<euclidean, 3, f32>
  }
}
"""

_TWO_RESULTS_SO2 = """builtin.module {
  func.func @G(%x: !geo.point<euclidean, 2, f32>) -> (!geo.point<euclidean, 2, f32>, !geo.point<euclidean, 2, f32>) {
    %o = geo.origin %x : !geo.point<euclidean, 2, f32> -> !geo.point<euclidean, 2, f32>
    %p = geo.param "G.p" init "uniform_small" : tensor<2xf32>
    %b = geo.bias %o, %p : !geo.point<euclidean, 2, f32>, tensor<2xf32> -> !geo.point<euclidean, 2, f32>
    func.return %x, %b : !geo.point<euclidean, 2, f32>, !geo.point<euclidean, 2, f32>
  }
  func.func @F(%x: !geo.point<euclidean, 2, f32>) -> !geo.point<euclidean, 2, f32> attributes {contracts = [#contract.equivariant<so2>]} {
    %a, %b = func.call @G(%x) : (!geo.point<euclidean, 2, f32>) -> (!geo.point<euclidean, 2, f32>, !geo.point<euclidean, 2, f32>)
    func.return %b : !geo.point<euclidean, 2, f32>
  }
}
"""


def _verify_mlir(tmp_path, text):
    path = tmp_path / "two.mlir"
    path.write_text(text)
    return geomir.to_ir(path, passes=["verify-contracts"])


def test_each_result_of_a_call_has_its_own_signs(tmp_path):
    # F returns the second result of G, -x: it was given the first result's signs (+1)
    with pytest.raises(ContractError, match="cannot prove @monotone\\(x, increasing\\) for model F"):
        _verify_mlir(tmp_path, _TWO_RESULTS_MONOTONE)


def test_each_result_of_a_call_has_its_own_equivariance_label(tmp_path):
    # F returns a fixed learned vector (G's second result), labelled like G's first (x)
    with pytest.raises(ContractError, match="its output is invariant under so2 but must be equivariant"):
        _verify_mlir(tmp_path, _TWO_RESULTS_SO2)
