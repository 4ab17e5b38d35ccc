"""``verify-contracts`` on Lipschitz contracts: the proved bound is sound (never below an
adversarial empirical lower bound, over random models), tight (a 4-layer MLP beats the
product of spectral norms by >= 1.5x), recorded in the IR, and a failing or unprovable
contract is reported at the model's source line with the layer that contributes most."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import geomir
from geomir.certify import spectral_norm_bound
from geomir.contract_report import empirical_lipschitz
from geomir.dialects import contract
from geomir.ir import print_ir

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[2]


def _mlp(d: int, widths: list[int], act: str, out: int, declared: float = 1e12) -> str:
    lines = [f"@lipschitz({declared})", f"model F(x: R[{d}]) -> R[{out}] {{"]
    prev, n = "x", d
    for w in widths:
        lines.append(f"  let h = {act}(linear({prev}, {n} -> {w}))")
        prev, n = "h", w
    lines += [f"  return linear({prev}, {n} -> {out})", "}"]
    return "\n".join(lines) + "\n"


def _proved(source: str, name: str = "F") -> float:
    module = geomir.to_ir(source, passes="verify-contracts")
    f = next(op for op in module.ops if getattr(op, "sym_name", None) and op.sym_name.data == name)
    (attr,) = f.attributes["proved"].data
    assert isinstance(attr, contract.LipschitzAttr)
    return attr.bound_value


def _empirical(fn, d: int) -> float:
    return empirical_lipschitz(fn, [d])


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(d=st.integers(1, 5), widths=st.lists(st.integers(2, 12), min_size=1, max_size=3),
       act=st.sampled_from(["tanh", "relu", "sigmoid", "softplus", "sin"]), out=st.integers(1, 3))
def test_the_proved_bound_is_never_exceeded(d, widths, act, out, tmp_path_factory):
    source = _mlp(d, widths, act, out)
    proved = _proved(source)
    mod = geomir.compile(source, target="torch", cache_dir=tmp_path_factory.mktemp("c"))
    params = mod.init_params(seed=0, dtype=torch.float64)
    empirical = _empirical(lambda z: mod.F(params, z), d)
    assert empirical <= proved * (1 + 1e-9), (empirical, proved)


def test_four_layer_bound_beats_the_product_of_norms(tmp_path):
    source = _mlp(16, [64, 64, 64], "tanh", 1)  # 4 linear layers
    proved = _proved(source)
    mod = geomir.compile(source, target="torch", cache_dir=tmp_path)
    params = mod.init_params(seed=0, dtype=torch.float64)
    product = np.prod([spectral_norm_bound(params[f"F.linear{i}.weight"].numpy()) for i in range(4)])
    empirical = _empirical(lambda z: mod.F(params, z), 16)
    print(f"proved {proved:.4g}, product of norms {product:.4g} ({product / proved:.2f}x), "
          f"empirical {empirical:.4g} (proved / empirical {proved / empirical:.2f})")
    assert product / proved >= 1.5
    assert empirical <= proved


def test_compositional_rules_cover_calls_sums_and_distances():
    source = """
model A(x: R[4]) -> R[3] {
  return tanh(linear(x, 4 -> 3))
}
@lipschitz(1000.0)
model B(x: R[4], y: R[3]) -> R[1] {
  let z = A(x) + 2.0 * y
  return dist(z, y)
}
"""
    proved = _proved(source, "B")
    w = geomir.compile(source, target="torch").init_params(seed=0, dtype=torch.float64)["A.linear0.weight"].numpy()
    # dist: L(z) + L(y); z = A(x) + 2y: L_A * 1 + 2; y: 1
    assert proved == pytest.approx(spectral_norm_bound(w) + 2.0 + 1.0, rel=1e-9)


def test_the_proved_bound_is_recorded_in_the_ir():
    module = geomir.to_ir(_mlp(3, [8], "relu", 2, declared=100.0), passes="verify-contracts")
    text = print_ir(module)
    assert "contracts = [#contract.lipschitz<100.0>]" in text and "proved = [#contract.lipschitz<" in text
    assert geomir.print_ir(geomir.ir.parse_ir(text)) == text  # round trip


def _geomc(*args):
    return subprocess.run([sys.executable, "-m", "geomir.driver", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=300, check=False)


def test_a_contract_the_weights_break_fails_at_the_model(tmp_path):
    path = tmp_path / "tight.geo"
    path.write_text(_mlp(32, [64, 64], "relu", 10, declared=2.0))
    proc = _geomc(str(path), "--passes=verify-contracts")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"{path}:2:7: error: cannot prove @lipschitz(2) for model F: the proved bound is " in proc.stderr
    assert "x the declared 2" in proc.stderr
    assert "note: the layer that contributes most: spectral norm" in proc.stderr


def test_a_layer_too_large_for_the_prover_is_a_located_error(tmp_path):
    """A 200000 x 200000 layer (4e10 weights, 320 GB in float64) under a contract: the
    prover refuses at the layer instead of drawing the weights (MemoryError, exit 3)."""
    path = tmp_path / "huge.geo"
    path.write_text("@lipschitz(2.0)\nmodel F(x: R[200000]) -> R[200000] {\n  return linear(x, 200000 -> 200000)\n}\n")
    proc = _geomc(str(path), "--passes=verify-contracts")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert f"{path}:3:" in proc.stderr and "more than the contract prover draws" in proc.stderr


def test_an_op_without_a_rule_is_named(tmp_path):
    path = tmp_path / "energy.geo"
    path.write_text("@lipschitz(4.0)\nmodel Energy(p: R[2], q: R[2]) -> R[1] {\n  let d = dist(p, q)\n  return d * d\n}\n")
    proc = _geomc(str(path), "--passes=verify-contracts")
    assert proc.returncode == 1
    assert (f"{path}:2:7: error: cannot prove @lipschitz(4) for model Energy: "
            "no Lipschitz rule for geo.mul yet") in proc.stderr
    assert f"{path}:4:12: note: here" in proc.stderr


@pytest.mark.parametrize("target", ["torch", "jax", "triton"])
def test_emitted_modules_carry_the_proved_contracts(target):
    """CONTRACTS (declared and proved) in every target, the proof in each model's docstring,
    and on the Triton target in every kernel's KERNELS entry."""
    source = geomir.emit_source(ROOT / "examples" / "lipschitz_classifier.geo", target)
    namespace: dict = {}
    start = source.index("CONTRACTS = {")
    exec(source[start:source.index("\n}\n", start) + 3], namespace)  # noqa: S102 (our output)
    contracts = namespace["CONTRACTS"]
    assert contracts["RobustClassifier"]["declared"] == ["#contract.lipschitz<4.0>"]
    (proved,) = contracts["RobustClassifier"]["proved"]
    assert proved.startswith("#contract.lipschitz<3.52")
    assert contracts["DoseResponse"]["proved"] == ["#contract.monotone<[0], increasing>"]
    assert f"    Proved: {proved}" in source
    if target == "triton":
        assert source.count("'contracts': CONTRACTS.get('RobustClassifier', {}).get('proved', [])") == 3
