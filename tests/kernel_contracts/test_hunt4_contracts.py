"""Fixes of the fourth bug hunt on kernel contracts: escalation over a window's failed calls,
-o/--state that would overwrite the model or weights, the torus metric, Triton fallbacks in
promote's offline stage, Router's default state for YAML text, contract weights checked as
--weights checks them, one-line YAML text, non-finite outputs in full, the documented
defaults, and geomc's repeated options and --weights naming a directory."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import math
import re
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from geomir.contracts import Contract, load_contract  # noqa: E402
from geomir.contracts.check import build_kernels, sample_errors  # noqa: E402
from geomir.contracts.promotion import Router  # noqa: E402
from geomir.contracts.spec import contract_file  # noqa: E402
from geomir.diagnostics import UsageError  # noqa: E402
from geomir.dialects import geo  # noqa: E402
from geomir.driver import _event_notes, main  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "examples" / "lipschitz_classifier.geo"

CONTRACT = f"""\
contract: hunt4
model: {MODEL}
entry: RobustClassifier
reference: {{target: torch, dtype: float64}}
candidate: {{target: torch, dtype: float32}}
inputs: {{samples: 32}}
numerical: {{max_abs: 1e-3}}
observability: {{sample_rate: 1.0}}
escalation: [{{above: 1.0, action: warn}}, {{above: 3.0, action: block}}]
promotion: [offline, full]
stages: {{full: {{window: 50, min_samples: 5, failure_limit: 1}}}}
"""


@pytest.fixture(scope="module")
def kernels():
    contract, base = load_contract(CONTRACT)
    return build_kernels(contract, base)


def _drifting(kernels, drift: list[float]):
    """The kernels with a candidate whose first output moves by ``drift[0]``."""
    def candidate(xs):
        y = kernels.candidate(xs).copy()
        y[:, 0] += drift[0]
        return y
    return dataclasses.replace(kernels, candidate=candidate)


def geomc(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exit_:  # argparse's usage errors
            code = exit_.code
    return code, out.getvalue(), err.getvalue()


# -- 1: failure_limit acts on the strongest failed call of the window -------------------------


def test_failure_limit_escalates_by_the_strongest_failed_call_even_across_a_restart(tmp_path, kernels):
    drift = [0.0]
    state = tmp_path / "s.sqlite"
    router = Router(CONTRACT, state=state, kernels=_drifting(kernels, drift))
    assert router.stage == "full"
    rng = np.random.default_rng(0)
    drift[0] = 10e-3  # 10 times the bound: a block step
    router(rng.normal(size=(2, 32)))
    assert router.status == "running" and router.state.worst == "block"  # 1 failure, limit 1
    router = Router(CONTRACT, state=state, kernels=_drifting(kernels, drift))  # a restarted process
    drift[0] = 1.2e-3  # 1.2 times: only a warn step, but the window already holds a block
    router(rng.normal(size=(2, 32)))
    assert router.status == "blocked", router.events()
    assert router.events()[-1]["kind"] == "blocked"


# -- 2: -o / --state may not name the contract's model or weights ------------------------------


def test_contract_outputs_may_not_overwrite_the_model_or_the_weights(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("m.geo").write_text(MODEL.read_text())
    Path("w.npz").write_bytes(b"not read: refused before")
    Path("c.yaml").write_text(CONTRACT.replace(str(MODEL), "m.geo") + "weights: w.npz\n")
    for args, what in ((["check", "c.yaml", "-o", "m.geo"], "-o m.geo is the contract's model"),
                       (["check", "c.yaml", "-o", "./w.npz"], "-o ./w.npz is the contract's weights file"),
                       (["promote", "c.yaml", "--state", "m.geo"], "--state m.geo is the contract's model")):
        code, out, err = geomc("contract", *args)
        assert code == 2 and what in err and "Traceback" not in err, err
    assert Path("m.geo").read_text() == MODEL.read_text()
    assert Path("w.npz").read_bytes() == b"not read: refused before"


# -- 3: the torus metric ------------------------------------------------------------------------


def test_manifold_error_on_the_torus_is_the_shortest_angle_difference():
    torus = geo.PointType(geo.TorusAttr("radians"), 2)
    rng = np.random.default_rng(1)
    y_ref = rng.uniform(0.0, 2 * math.pi, (64, 2))
    delta = rng.uniform(-1e-3, 1e-3, (64, 2))
    other = np.where(y_ref > math.pi, y_ref - 2 * math.pi, y_ref + 2 * math.pi)  # the same points
    errors = sample_errors(y_ref, other + delta, torus, "manifold")
    np.testing.assert_allclose(errors, np.linalg.norm(delta, axis=-1), atol=1e-12)
    nan = other.copy()
    nan[3, 1] = np.nan
    assert not np.isfinite(sample_errors(y_ref, nan, torus, "manifold")[3])


# -- 4: a Triton candidate that ran torch's code is noted in promote's offline event ------------


def test_promote_offline_notes_a_triton_candidate_that_ran_torch(tmp_path, kernels, capsys):
    from geomir.backends.triton import runtime

    def fell_back(xs):
        runtime.STATS["torch", "dense", "device"] += 1
        return kernels.candidate(xs)

    text = CONTRACT.replace("candidate: {target: torch, dtype: float32}", "candidate: {target: triton, dtype: float32}")
    router = Router(text, state=tmp_path / "s.sqlite", kernels=dataclasses.replace(kernels, candidate=fell_back))
    offline = router.events()[0]
    assert offline["kind"] == "passed"
    notes = _event_notes(offline["detail"])
    assert len(notes) == 1 and "ran the torch code" in notes[0] and "device (1)" in notes[0]
    assert '"triton_launches": {"kernel": 0, "torch_fallback": {"device": 1}}' in offline["detail"]


# -- 5: Router(YAML text) keeps its state under the contract's name ------------------------------


def test_router_of_yaml_text_keeps_its_state_under_the_contract_name(tmp_path, monkeypatch, kernels):
    monkeypatch.chdir(tmp_path)
    router = Router(CONTRACT, kernels=kernels)
    assert router.store.path == Path("hunt4.state.sqlite") and Path("hunt4.state.sqlite").is_file()


# -- 6: contract weights are checked as geomc --weights checks them ------------------------------


def test_contract_weights_off_the_poincare_ball_are_a_usage_error(tmp_path):
    import torch

    import geomir
    from geomir.contracts.check import check_contract

    model = ROOT / "examples" / "hyperbolic_mlp.geo"
    module = geomir.compile(model, target="torch")
    params = {k: v.numpy() for k, v in module.init_params(0, torch.float64).items()}
    bias = np.zeros_like(params["HyperbolicMLP.mobius_linear1.bias"])
    bias[0] = 2.0  # |b| = 2 >= 1/sqrt(c) = 1
    np.savez(tmp_path / "w.npz", **{**params, "HyperbolicMLP.mobius_linear1.bias": bias})
    text = (f"contract: ball\nmodel: {model}\nentry: HyperbolicMLP\nweights: w.npz\n"
            "reference: {target: torch, dtype: float64}\ncandidate: {target: torch, dtype: float32}\n"
            "inputs: {samples: 8}\nnumerical: {max_abs: 1e-3, metric: manifold}\n")
    with pytest.raises(UsageError, match=r"'HyperbolicMLP.mobius_linear1.bias' is not a point of the Poincaré ball"):
        check_contract(text, base=tmp_path)


# -- 7: one-line YAML text ------------------------------------------------------------------------


def test_one_line_yaml_is_contract_text_and_a_missing_path_says_it_is_neither(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    line = ("{contract: one, model: m.geo, reference: {target: torch, dtype: float64}, "
            "candidate: {target: torch, dtype: float32}}")
    contract, base = load_contract(line)
    assert contract.contract == "one" and base == tmp_path
    assert contract_file(line) is None and contract_file("contract: x") is None
    assert contract_file("c.yaml") == Path("c.yaml") and contract_file(Path("{a: 1}")) == Path("{a: 1}")
    Path("{a: 1}").write_text("x")
    assert contract_file("{a: 1}") == Path("{a: 1}")  # an existing file is a file
    with pytest.raises(UsageError, match=r"cannot read contract 'c.yaml': .*nor is it the YAML text of a contract"):
        load_contract("c.yaml")


# -- 8: non-finite outputs are events; the documented defaults are the code's --------------------


def test_a_nan_candidate_in_full_is_reported_as_nonfinite_on_every_call(tmp_path, kernels):
    text = CONTRACT.replace("observability: {sample_rate: 1.0}", "observability: {sample_rate: 0.0}")
    nan = [False]

    def candidate(xs):
        y = kernels.candidate(xs)
        return np.full_like(y, np.nan) if nan[0] else y

    router = Router(text, state=tmp_path / "s.sqlite", kernels=dataclasses.replace(kernels, candidate=candidate))
    nan[0] = True
    rng = np.random.default_rng(2)
    for _ in range(3):
        router(rng.normal(size=(2, 32)))
    events = [e for e in router.events() if e["kind"] == "nonfinite"]
    assert [e["detail"] for e in events] == [
        f"call {i}: 2 of 2 candidate output rows are NaN or inf (served, not compared)" for i in range(3)]


def test_the_documented_defaults_are_the_code_defaults():
    import yaml

    doc = (ROOT / "docs" / "kernel-contracts.md").read_text()
    block = re.search(r"takes the defaults.*?```\n(.*?)```", doc, re.S).group(1)
    documented = yaml.safe_load(block)
    contract = Contract(contract="d", model="m.geo", reference={"target": "torch", "dtype": "float64"},
                        candidate={"target": "torch", "dtype": "float32"})
    for stage, fields in documented["stages"].items():
        expected = contract.stages[stage].model_dump(exclude_none=True)
        if stage != "canary":
            expected.pop("fraction")
        assert fields == expected, stage
    assert documented["observability"]["sample_rate"] == contract.observability.sample_rate
    assert documented["escalation"] == [s.model_dump() for s in contract.escalation]


# -- 9: geomc's repeated options and --weights naming a directory -------------------------------


def test_a_repeated_option_is_a_usage_error_and_a_weights_directory_is_named_so(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = geomc(str(MODEL), "--quantize=int8", "--quantize=bf16", "--emit=ir")
    assert code == 2 and out == "" and "argument --quantize: given twice (--quantize int8, then --quantize bf16)" in err
    code, out, err = geomc("contract", "check", "c.yaml", "-o", "a.json", "-o", "b.json")
    assert code == 2 and "argument -o/--output: given twice" in err
    Path("wdir.npz").mkdir()
    code, out, err = geomc(str(MODEL), "--weights=wdir.npz", "--emit=ir")
    assert code == 2 and err == ("error: weights file 'wdir.npz' is a directory, not a .npz archive or a .pt "
                                 "state dict\n"), err
