"""Bounded reward drift (issue 10): the RL example trains with the reference kernel and
rolls out with a float16 kernel under a contract; the expected-return drift stays under the
contract's bound, a broken kernel exceeds it and the router blocks it. The lemma behind
the bound (logit error eps => TV <= 1 - exp(-2 eps)) is checked on random logits."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[2]


def _example():
    spec = importlib.util.spec_from_file_location("rl_bandit", ROOT / "examples" / "rl_bandit.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), eps=st.floats(1e-6, 3.0), scale=st.floats(0.1, 30.0))
def test_logit_error_bounds_the_total_variation(seed, eps, scale):
    rng = np.random.default_rng(seed)
    z = scale * rng.normal(size=(16, 5))
    d = rng.normal(size=z.shape)
    d *= eps / np.linalg.norm(d, axis=-1, keepdims=True)  # |dz|_2 = eps on every row
    p, q = (np.exp(a - a.max(-1, keepdims=True)) for a in (z, z + d))
    p, q = p / p.sum(-1, keepdims=True), q / q.sum(-1, keepdims=True)
    tv = 0.5 * np.abs(p - q).sum(-1)
    assert np.all(tv <= 1 - math.exp(-2 * eps) + 1e-12)


def test_the_drift_stays_under_the_contract_bound_and_a_broken_kernel_is_blocked(tmp_path):
    out = _example().run(steps=120, workdir=tmp_path)
    good, broken = out["good"], out["broken"]
    assert good["contract_passed"] and good["logit_error_max"] <= out["eps"]
    assert good["drift"] <= good["bound"]
    assert good["tv_max"] <= 1 - math.exp(-2 * good["logit_error_max"]) + 1e-12  # the lemma, on the real pair
    for key in ("kl_mean", "kl_max", "max_prob_diff", "mean_prob_diff", "pearson"):
        assert math.isfinite(good[key])
    assert good["pearson"] > 0.999
    assert not broken["contract_passed"] and broken["drift"] > broken["bound"]
    assert broken["router_status"] == "blocked" and broken["answered_by"] == ["reference"]


@pytest.mark.parametrize("argv,message", [
    (["--steps", "0"], "--steps: must be >= 1"),  # trained nothing and reported success
    (["--steps", "-5"], "--steps: must be >= 1"),
    (["--eps", "0"], "--eps: must be a finite number > 0"),  # was a ContractSpecError traceback
    (["--eps", "-1"], "--eps: must be a finite number > 0"),
    (["--eps", "nan"], "--eps: must be a finite number > 0"),
])
def test_bad_options_are_usage_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        _example().main(argv)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize("kwargs,message", [(dict(steps=0), "steps"), (dict(eps=float("inf")), "eps"),
                                            (dict(candidate="float8"), "candidate")])
def test_run_refuses_bad_arguments_before_any_work(kwargs, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        _example().run(**{"steps": 1, "workdir": tmp_path, **kwargs})
    assert not any(tmp_path.iterdir())


def test_the_same_seed_gives_the_same_numbers_and_a_violation_names_its_clause(tmp_path):
    example = _example()
    a = example.run(steps=5, eps=0.001, seed=4, workdir=tmp_path / "a")
    b = example.run(steps=5, eps=0.001, seed=4, workdir=tmp_path / "b")
    assert a["return_reference"] == b["return_reference"] and a["good"]["drift"] == b["good"]["drift"]
    c = example.run(steps=5, eps=0.001, seed=5, workdir=tmp_path / "c")
    assert c["return_reference"] != a["return_reference"]
    # eps = 0.001 is below float16's error: the report says which clause failed, measured where
    assert not a["good"]["contract_passed"] and a["good"]["contract_samples"] == 2048
    assert any(f.startswith("numerical.max_abs: ") for f in a["good"]["contract_failed"])
