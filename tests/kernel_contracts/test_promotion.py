"""Promotion stages and the router (issue 10): a good candidate goes offline -> shadow ->
canary -> full; a drift above a bound blocks it (offline, or live in shadow), for any
drift size (hypothesis: promoted exactly when the drift is within the bound, no false
promotion); too few compared calls pause the promotion; in full the escalation policy
warns, falls back and blocks; every decision is logged; the state survives a killed
process."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("torch")

from geomir.contracts import load_contract  # noqa: E402
from geomir.contracts.check import build_kernels  # noqa: E402
from geomir.contracts.promotion import Router, promote, promoted  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]

CONTRACT = f"""\
contract: promo
model: {ROOT / 'examples' / 'lipschitz_classifier.geo'}
entry: RobustClassifier
reference: {{target: torch, dtype: float64}}
candidate: {{target: torch, dtype: float32}}
inputs: {{samples: 128, seed: 0}}
numerical: {{max_abs: 1e-3}}
statistical: {{quantile: 0.99, max_quantile_error: 1e-3}}
observability: {{sample_rate: 1.0}}
escalation: [{{above: 0.5, action: warn}}, {{above: 1.0, action: fallback}}, {{above: 2.0, action: block}}]
stages: {{shadow: {{window: 12, min_samples: 5}}, canary: {{window: 20, min_samples: 3, fraction: 0.5}}, full: {{window: 10, min_samples: 5}}}}
"""


@pytest.fixture(scope="module")
def kernels():
    contract, base = load_contract(CONTRACT)
    return build_kernels(contract, base)


def _path(tmp_path, text=CONTRACT, name="c.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def _xs(router, i, rows=8):
    rng = np.random.default_rng(100 + i)
    return [rng.normal(size=(rows, 32))]


def test_a_good_candidate_is_promoted_stage_by_stage_and_decisions_are_logged(tmp_path):
    router = promote(_path(tmp_path), calls=200)
    assert promoted(router)
    kinds = [(e["stage"], e["kind"]) for e in router.events()]
    assert kinds == [("offline", "passed"), ("shadow", "started"), ("shadow", "window passed"), ("canary", "started"),
                     ("canary", "window passed"), ("full", "started")]
    decisions = router.decisions()
    shadow = [d for d in decisions if d["stage"] == "shadow"]
    canary = [d for d in decisions if d["stage"] == "canary"]
    assert len(shadow) == 12 and all(d["answered_by"] == "reference" and d["compared"] for d in shadow)
    assert len(canary) == 20 and {d["answered_by"] for d in canary} == {"reference", "candidate"}
    assert all(d["compared"] == (d["answered_by"] == "candidate") for d in canary)
    assert all(d["inputs_hash"] and (d["max_error"] is None or d["max_error"] < 1e-3) for d in decisions)


def test_an_over_bound_candidate_is_blocked_offline(tmp_path):
    router = promote(_path(tmp_path, CONTRACT.replace("dtype: float32}", "dtype: float32, perturb: 0.01}")), calls=50)
    assert router.status == "blocked" and router.stage == "offline" and not router.decisions()
    assert "numerical.max_abs" in router.events()[0]["detail"]


def _drifting(kernels, after: int, drift: float):
    """The float32 candidate, shifted by `drift` along e_0 from the `after`-th call on."""
    calls = [0]

    def candidate(xs):
        calls[0] += 1
        y = kernels.candidate(xs)
        if calls[0] > after:
            y = y.copy()
            y[:, 0] += drift
        return y

    return candidate


@settings(max_examples=12, deadline=None)
@given(ratio=st.floats(0.05, 4.0))
def test_live_drift_is_promoted_exactly_when_within_the_bound(kernels, tmp_path_factory, ratio):
    """The drift appears after the offline check (call 1 is the offline run): the shadow
    stage must catch it. No false promotion over drift sizes around the bound."""
    contract, base = load_contract(CONTRACT)
    k = build_kernels(contract, base, candidate=_drifting(kernels, after=1, drift=ratio * 1e-3))
    router = Router(contract, state=tmp_path_factory.mktemp("s") / "s.sqlite", kernels=k)
    for i in range(60):
        if router.status != "running" or router.stage == "full":
            break
        router(*_xs(router, i))
    within = ratio * 1e-3 + 2e-6 <= 1e-3  # the float32 kernel's own error is ~1e-6
    beyond = ratio * 1e-3 - 2e-6 > 1e-3
    if within:
        assert promoted(router)
    if beyond:
        assert router.status == "blocked" and router.stage == "shadow"


def test_too_few_compared_calls_pause_the_promotion_until_resumed(tmp_path):
    text = CONTRACT.replace("canary: {window: 20, min_samples: 3, fraction: 0.5}",
                            "canary: {window: 4, min_samples: 4, fraction: 0.25}")
    router = promote(_path(tmp_path, text), calls=100)
    assert router.stage == "canary" and router.status == "paused"
    assert router.events()[-1]["kind"] == "inconclusive"
    router.resume()
    assert router.status == "running" and router.events()[-1]["kind"] == "resumed"


def test_in_full_the_escalation_policy_warns_falls_back_and_blocks(kernels, tmp_path):
    contract, base = load_contract(CONTRACT.replace("promotion", "promotion"))
    drift = [0.0]

    def candidate(xs):
        y = kernels.candidate(xs).copy()
        y[:, 0] += drift[0]
        return y

    router = Router(contract, state=tmp_path / "s.sqlite", kernels=build_kernels(contract, base, candidate))
    i = 0
    while router.stage != "full":
        router(*_xs(router, i))
        i += 1
    drift[0] = 0.7e-3  # 0.7 of the bound: within it, above the warn threshold: windows pass
    for _ in range(10):
        router(*_xs(router, i))
        i += 1
    assert router.status == "running" and router.events()[-1]["kind"] == "window passed"
    drift[0] = 1.5e-3  # over the bound, under 2x: fall back to the reference
    router(*_xs(router, i))
    i += 1
    assert router.events()[-1]["kind"] == "fallback"
    assert router.decisions()[-1]["answered_by"] == "candidate"
    router(*_xs(router, i))
    i += 1
    assert router.decisions()[-1]["answered_by"] == "reference"  # the fallback window
    drift[0] = 3e-3  # twice the bound: block
    while router.status == "running" and i < 200:
        router(*_xs(router, i))
        i += 1
    assert router.status == "blocked" and router.events()[-1]["kind"] == "blocked"
    out = router(*_xs(router, i))
    assert router.decisions()[-1]["answered_by"] == "reference" and out is not None


def test_the_state_survives_a_killed_process(tmp_path):
    text = CONTRACT.replace("shadow: {window: 12, min_samples: 5}", "shadow: {window: 100000, min_samples: 5}")
    path = _path(tmp_path, text)
    state = tmp_path / "c.state.sqlite"
    proc = subprocess.Popen([sys.executable, "-m", "geomir.driver", "contract", "promote", str(path), "--calls", "100000"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    served = 0
    deadline = time.time() + 120
    while time.time() < deadline and served < 5:
        time.sleep(0.5)
        if state.exists():
            try:
                with sqlite3.connect(state) as db:
                    served = db.execute("SELECT COUNT(*) FROM decisions").fetchone()[0]
            except sqlite3.OperationalError:
                pass
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert served >= 5, proc.stderr.read()
    done = subprocess.run([sys.executable, "-m", "geomir.driver", "contract", "promote", str(path), "--calls", "3"],
                          capture_output=True, text=True)
    assert done.returncode == 4, done.stderr  # still in shadow: not promoted yet
    assert "[offline] passed" not in done.stdout  # the offline check is not run again
    with sqlite3.connect(state) as db:
        stage, calls = db.execute("SELECT stage, calls FROM state").fetchone()
        total = db.execute("SELECT COUNT(*) FROM decisions").fetchone()[0]
    assert stage == "shadow" and total >= served + 3 and calls >= served + 3 - 1


def test_a_window_also_ends_after_its_seconds(tmp_path, monkeypatch):
    from geomir.contracts import promotion

    text = CONTRACT.replace("shadow: {window: 12, min_samples: 5}", "shadow: {window: 100000, seconds: 60, min_samples: 5}")
    contract, base = load_contract(text)
    router = Router(contract, state=tmp_path / "s.sqlite")
    now = [promotion.time.time()]
    monkeypatch.setattr(promotion.time, "time", lambda: now[0])
    for i in range(6):
        router(*_xs(router, i))
    assert router.stage == "shadow"
    now[0] += 61.0  # a minute later the next call closes the window
    router(*_xs(router, 6))
    assert router.stage == "canary" and [e["kind"] for e in router.events()][-2:] == ["window passed", "started"]


def test_decisions_record_what_observability_asks_for(tmp_path):
    text = CONTRACT.replace("observability: {sample_rate: 1.0}",
                            "observability: {sample_rate: 1.0, record: [inputs_hash, max_error, kl, pearson, "
                            "max_prob_diff, mean_prob_diff, top1]}")
    router = promote(_path(tmp_path, text), calls=15)
    compared = [d for d in router.decisions() if d["compared"]]
    assert compared
    for d in compared:
        m = d["metrics"]
        assert set(m) == {"inputs_hash", "max_error", "kl", "pearson", "max_prob_diff", "mean_prob_diff", "top1"}
        assert m["mean_prob_diff"] <= m["max_prob_diff"]
        assert m["max_error"] < 1e-3 and m["kl"] < 1e-9 and m["pearson"] > 0.999999 and m["top1"] == 1.0


def _kind_contract(clause: str) -> str:
    text = CONTRACT.replace("numerical: {max_abs: 1e-3}\nstatistical: {quantile: 0.99, max_quantile_error: 1e-3}\n", clause)
    return text.replace("candidate: {target: torch, dtype: float32}", "candidate: {target: torch, dtype: float64}")


KINDS = {  # clause -> (contract text, how to drift the outputs by `r` times the bound)
    "max_abs": ("numerical: {max_abs: 1e-3}\n", lambda y, r: y + np.eye(y.shape[1])[0] * r * 1e-3),
    "max_rel": ("numerical: {max_rel: 1e-3}\n", lambda y, r: y * (1 + r * 1e-3)),
    "quantile": ("numerical: {max_abs: 1.0}\nstatistical: {quantile: 0.5, max_quantile_error: 1e-3}\n",
                 lambda y, r: y + np.eye(y.shape[1])[0] * r * 1e-3),
}


@pytest.mark.parametrize("kind", sorted(KINDS))
@settings(max_examples=8, deadline=None)
@given(ratio=st.floats(0.1, 3.0).filter(lambda r: abs(r - 1) > 0.02))
def test_every_clause_kind_promotes_exactly_within_its_bound(kernels, tmp_path_factory, kind, ratio):
    text, drift = KINDS[kind]
    contract, base = load_contract(_kind_contract(text))
    exact = build_kernels(contract, base)  # float64 candidate: its only error is the injected drift
    k = build_kernels(contract, base, candidate=lambda xs: drift(exact.reference(xs), ratio))
    router = Router(contract, state=tmp_path_factory.mktemp("k") / "s.sqlite", kernels=k)
    for i in range(60):
        if router.status != "running" or router.stage == "full":
            break
        router(*_xs(router, i))
    if ratio < 1:
        assert promoted(router), router.events()
    else:
        assert router.status == "blocked" and router.stage == "offline", router.events()


def test_a_stage_transition_is_saved_and_a_rerun_stays_in_it(tmp_path):
    """The call that closes a window and starts the next stage saved the old stage's state:
    a rerun went back to canary and paused with '3 compared calls < min_samples 2'
    (finding 2)."""
    path = _path(tmp_path)
    state = tmp_path / "c.state.sqlite"
    assert promoted(promote(path, calls=200))
    with sqlite3.connect(state) as db:
        assert db.execute("SELECT stage, status, calls, compared FROM state").fetchone() == ("full", "running", 0, 0)
    again = promote(path, calls=200)
    assert promoted(again) and again.events()[-1]["kind"] == "started"
    assert not any(e["kind"] == "inconclusive" for e in again.events())


def test_an_inconclusive_window_counts_the_compared_calls_it_holds(tmp_path):
    text = CONTRACT.replace("canary: {window: 20, min_samples: 3, fraction: 0.5}",
                            "canary: {window: 4, min_samples: 4, fraction: 0.25}")
    router = promote(_path(tmp_path, text), calls=100)
    assert router.status == "paused"
    held = sum(d["compared"] for d in router.decisions() if d["stage"] == "canary")
    assert router.events()[-1]["detail"] == f"{held} compared calls < min_samples 4" and held < 4


def test_in_full_a_violation_below_every_escalation_step_does_not_block(kernels, tmp_path):
    """Escalation [block above 2]: a drift at 1.5 times the bound reaches no step, so the
    policy takes no action (it is logged as 'violated'); it used to block (finding 5)."""
    contract, base = load_contract(CONTRACT.replace(
        "escalation: [{above: 0.5, action: warn}, {above: 1.0, action: fallback}, {above: 2.0, action: block}]",
        "escalation: [{above: 2.0, action: block}]"))
    drift = [0.0]

    def candidate(xs):
        y = kernels.candidate(xs).copy()
        y[:, 0] += drift[0]
        return y

    router = Router(contract, state=tmp_path / "s.sqlite", kernels=build_kernels(contract, base, candidate))
    i = 0
    while router.stage != "full" and i < 100:
        router(*_xs(router, i))
        i += 1
    drift[0] = 1.5e-3
    router(*_xs(router, i))
    assert router.status == "running" and router.events()[-1]["kind"] == "violated"
    assert router.decisions()[-1]["answered_by"] == "candidate"
    drift[0] = 3e-3
    router(*_xs(router, i + 1))
    assert router.status == "blocked" and router.events()[-1]["kind"] == "blocked"


# -- findings of the kernel-contract hunt (hunt-kc) --------------------------------------------


def test_an_edited_contract_starts_its_promotion_again(tmp_path):
    """The state was keyed by the contract's name only: an edited contract (a perturbed,
    violating candidate) inherited `full` and was 'promoted' without a check (hunt-kc 2)."""
    path = _path(tmp_path)
    assert promoted(promote(path, calls=200))
    path.write_text(CONTRACT.replace("dtype: float32}", "dtype: float32, perturb: 0.01}"))
    shown = []
    router = promote(path, calls=50, on_event=shown.append)
    assert router.stage == "offline" and router.status == "blocked" and not promoted(router)
    assert shown[0]["kind"] == "restarted" and "changed since the state was saved" in shown[0]["detail"]
    assert promoted(promote(_path(tmp_path), calls=200))  # back to the original: checked again from offline


def test_unusable_state_files_are_usage_errors(tmp_path, capsys):
    """A file that is not SQLite, a directory, a missing directory: exit 3 (hunt-kc 8)."""
    from geomir.driver import main

    path = _path(tmp_path)
    (tmp_path / "garbage.sqlite").write_text("garbage\n" * 20)
    for state, message in ((tmp_path / "garbage.sqlite", "file is not a database"), (tmp_path, "it is a directory"),
                           (tmp_path / "no" / "s.sqlite", "does not exist")):
        assert main(["contract", "promote", str(path), "--calls", "2", "--state", str(state)]) == 2
        err = capsys.readouterr().err
        assert "cannot use the state file" in err and message in err and "internal" not in err, err


def test_a_saved_stage_the_contract_does_not_have_starts_again(tmp_path):
    """A saved stage not in `promotion` raised a ValueError (exit 3) (hunt-kc 8)."""
    path = _path(tmp_path, CONTRACT + "promotion: [offline, shadow, full]\n")
    assert promoted(promote(path, calls=200))
    with sqlite3.connect(tmp_path / "c.state.sqlite") as db:
        db.execute("UPDATE state SET stage = 'canary'")
    shown = []
    router = promote(path, calls=200, on_event=shown.append)
    assert promoted(router) and shown[0]["kind"] == "restarted"
    assert "the saved stage canary is not in the contract's promotion" in shown[0]["detail"]


def test_live_p99_leaves_out_the_call_that_compiles(kernels, tmp_path):
    """The first call of each shape (JIT compilation) was in the shadow window's p99 and
    blocked a good candidate (hunt-kc 5)."""
    contract, base = load_contract(CONTRACT + "runtime: {max_p99_ms: 1000}\n")  # loose: loaded CI machines
    seen = set()

    def compiling(xs):
        shape = xs[0].shape
        if shape not in seen:
            seen.add(shape)
            time.sleep(1.5)  # a JIT compilation
        return kernels.candidate(xs)

    router = Router(contract, state=tmp_path / "s.sqlite", kernels=build_kernels(contract, base, compiling))
    for i in range(60):
        if router.status != "running" or router.stage == "full":
            break
        router(*_xs(router, i))
    assert promoted(router), router.events()[-1]


def test_a_step_below_the_bound_acts_live(kernels, tmp_path):
    """`{above: 0.1, action: block}` was never applied: a drift at 0.3 of the bound was
    promoted (hunt-kc 11)."""
    contract, base = load_contract(CONTRACT.replace(
        "escalation: [{above: 0.5, action: warn}, {above: 1.0, action: fallback}, {above: 2.0, action: block}]",
        "escalation: [{above: 0.1, action: block}]"))
    router = Router(contract, state=tmp_path / "s.sqlite",
                    kernels=build_kernels(contract, base, _drifting(kernels, after=1, drift=0.3e-3)))
    for i in range(60):
        if router.status != "running" or router.stage == "full":
            break
        router(*_xs(router, i))
    assert router.status == "blocked" and router.stage == "shadow", router.events()
    assert '"numerical.max_abs"' in router.events()[-1]["detail"]


def test_live_probability_metrics_are_for_logits_only(tmp_path):
    """The router recorded KL / top-1 / Pearson on Poincaré outputs, which check does not
    read as logits."""
    text = CONTRACT.replace("lipschitz_classifier.geo", "hyperbolic_mlp.geo").replace("RobustClassifier",
                                                                                       "HyperbolicMLP")
    text = text.replace("observability: {sample_rate: 1.0}",
                        "observability: {sample_rate: 1.0, record: [max_error, kl, top1, pearson]}")
    contract, base = load_contract(text)
    router = Router(contract, state=tmp_path / "s.sqlite")
    router(np.random.default_rng(0).normal(0, 0.1, (8, 16)))
    assert set(router.decisions()[-1]["metrics"]) == {"max_error"}
