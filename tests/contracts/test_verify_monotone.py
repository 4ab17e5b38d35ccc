"""Monotonicity by sign analysis (geomir.monotonicity, run by verify-contracts): proofs with
nonnegative weights are checked numerically, and a failure names the op that mixes signs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from xdsl.dialects import func

import geomir
from geomir import monotonicity as monotone
from geomir.backends.common.init import ParamSpec, draw
from geomir.dialects import geo
from geomir.pipeline import UNCHECKED_PIPELINE

ROOT = Path(__file__).resolve().parents[2]

DOSE = """@monotone(dose, {direction})
model DoseResponse(dose: R[2], covariates: R[3]) -> R[1] {{
  let h = {act}(linear(dose, 2 -> 6) + linear(covariates, 3 -> 6))
  let h = {act}(linear(h, 6 -> 4))
  return {sign}linear(h, 4 -> 1)
}}
"""


def _funcs(source: str) -> dict[str, func.FuncOp]:
    module = geomir.to_ir(source, passes=[])
    return {op.sym_name.data: op for op in module.ops if isinstance(op, func.FuncOp)}


def _weights(transform):
    """A weight() for the analysis: seed-0 draws with ``transform`` applied (dose layers)."""
    def weight(value):
        op = value.owner
        if not isinstance(op, geo.ParamOp):
            return None
        shape = tuple(value.type.get_shape())
        w = draw(op.param_name.data, ParamSpec(shape, op.init.data), 0)
        return transform(op.param_name.data, w)
    return weight


def _numeric(source, transform, name, direction, seed):
    """Step each named coordinate up at random points: the output moves only one way."""
    torch = pytest.importorskip("torch")
    mod = geomir.compile(source, target="torch", passes=UNCHECKED_PIPELINE)
    params = {k: torch.tensor(transform(k, v.double().numpy())) for k, v in mod.init_params(seed=0, dtype=torch.float64).items()}
    g = torch.Generator().manual_seed(seed)
    dose = torch.randn(64, 2, generator=g, dtype=torch.float64) * 3
    cov = torch.randn(64, 3, generator=g, dtype=torch.float64) * 3
    y0 = getattr(mod, name)(params, dose, cov)
    for i in range(2):
        step = torch.zeros(2, dtype=torch.float64)
        step[i] = 0.5
        dy = getattr(mod, name)(params, dose + step, cov) - y0
        assert bool((dy >= -1e-12).all()) if direction == "increasing" else bool((dy <= 1e-12).all())


def _positive(name, w):
    return np.abs(w) if "bias" not in name and "linear1" not in name else w  # covariates' layer: any sign


@settings(max_examples=10, deadline=None)
@given(act=st.sampled_from(["tanh", "sigmoid", "relu", "softplus"]), negate=st.booleans(), seed=st.integers(0, 1000))
def test_nonnegative_weights_prove_monotonicity_and_it_holds(act, negate, seed):
    direction = "decreasing" if negate else "increasing"
    source = DOSE.format(direction=direction, act=act, sign="-" if negate else "")
    funcs = _funcs(source)
    holds, (signs,), broken = monotone.monotone_in(funcs["DoseResponse"], funcs, _weights(_positive), (0,), direction)
    assert holds and broken is None and signs.tolist() == [1.0 if not negate else -1.0]
    _numeric(source, _positive, "DoseResponse", direction, seed)


def test_a_sign_flip_or_a_wavy_activation_breaks_the_proof():
    funcs = _funcs(DOSE.format(direction="increasing", act="sin", sign=""))
    holds, _, broken = monotone.monotone_in(funcs["DoseResponse"], funcs, _weights(_positive), (0,), "increasing")
    assert not holds and broken.op.name == "geo.sin" and "is not monotone" in broken.why
    funcs = _funcs(DOSE.format(direction="increasing", act="tanh", sign="-"))
    holds, (signs,), broken = monotone.monotone_in(funcs["DoseResponse"], funcs, _weights(_positive), (0,), "increasing")
    assert not holds and broken is None and signs.tolist() == [-1.0]


def test_calls_carry_signs_and_constant_inputs_stay_constant():
    source = """model Inner(u: R[3]) -> R[2] {
  return softplus(linear(u, 3 -> 2))
}
@monotone(a, increasing)
model Outer(a: R[3], b: R[3]) -> R[2] {
  return Inner(a) + 2.0 * tanh(linear(b, 3 -> 2))
}
"""
    funcs = _funcs(source)
    weight = _weights(lambda name, w: np.abs(w) if name.startswith("Inner") else w)
    holds, (signs,), _ = monotone.monotone_in(funcs["Outer"], funcs, weight, (0,), "increasing")
    assert holds and signs.tolist() == [1.0, 1.0]


def test_verify_contracts_reports_the_mixing_layer(tmp_path):
    path = tmp_path / "dose.geo"
    path.write_text(DOSE.format(direction="increasing", act="softplus", sign=""))
    proc = subprocess.run([sys.executable, "-m", "geomir.driver", str(path), "--passes=verify-contracts"],
                          capture_output=True, text=True, cwd=ROOT, timeout=300, check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"{path}:2:7: error: cannot prove @monotone(dose, increasing) for model DoseResponse: " in proc.stderr
    assert "weights of mixed sign act on coordinates that move with the input" in proc.stderr
    assert "note: here (weights of seed 0)" in proc.stderr


def test_nonnegative_layers_prove_the_example_and_stay_monotone_through_training():
    """linear(..., nonnegative = true): |Glorot| init on every backend, projected optimizer
    steps; the example's DoseResponse is proved and stays monotone after steps that push
    its weights below zero."""
    torch = pytest.importorskip("torch")
    from geomir.backends.torch.optim import RiemannianAdam

    path = ROOT / "examples" / "lipschitz_classifier.geo"
    module = geomir.to_ir(path)  # the default pipeline proves it
    f = next(op for op in module.ops if isinstance(op, func.FuncOp) and op.sym_name.data == "DoseResponse")
    assert [str(a) for a in f.attributes["proved"].data] == ["#contract.monotone<[0], increasing>"]
    mod = geomir.compile(path, target="torch")
    net = mod.DoseResponseModule(seed=0, dtype=torch.float64)
    constrained = ["DoseResponse.linear0.weight", "DoseResponse.linear2.weight"]
    params = net.named_geo_parameters()
    assert all(bool((params[n] >= 0).all()) for n in constrained)
    assert bool((params["DoseResponse.linear1.weight"] < 0).any())  # unconstrained layers keep their sign
    opt = RiemannianAdam(net.parameters(), lr=0.5)
    g = torch.Generator().manual_seed(0)
    dose, cov = torch.randn(32, 1, generator=g, dtype=torch.float64), torch.randn(32, 4, generator=g, dtype=torch.float64)
    for _ in range(5):  # a loss that wants the response to fall with the dose
        opt.zero_grad()
        (net(dose, cov) * dose).sum().backward()
        opt.step()
    params = net.named_geo_parameters()
    assert all(bool((params[n] >= 0).all()) for n in constrained)
    assert any(bool((params[n] == 0).any()) for n in constrained)  # the projection was active
    with torch.no_grad():
        y0 = net(dose, cov)
        assert bool((net(dose + 0.3, cov) - y0 >= -1e-12).all())


def test_nonnegative_init_on_jax():
    pytest.importorskip("jax")
    mod = geomir.compile(ROOT / "examples" / "lipschitz_classifier.geo", target="jax")
    params = mod.init_params(seed=3)
    assert float(np.min(np.asarray(params["DoseResponse.linear0.weight"]))) >= 0


def test_a_bad_nonnegative_flag_is_located():
    with pytest.raises(geomir.SourceError, match="keyword 'nonnegative' of linear must be true or false, found 'yes'"):
        geomir.to_ir("model F(x: R[2]) -> R[1] {\n  return linear(x, 2 -> 1, nonnegative = yes)\n}\n")
