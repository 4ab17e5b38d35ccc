"""Kernel contract checks (issue 10): injected faults of known size pass when under the
bound and fail when over, for every clause kind, with zero false passes (hypothesis);
measured values against independent formulas (scipy's KL); the real pair torch float64 vs
JAX float32 passes its contract and a bfloat16 candidate is measured; geomc contract check
exits 0 / 1 and writes its JSON report."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("torch")

from geomir.contracts import load_contract  # noqa: E402
from geomir.contracts.check import check_contract, evaluate, sample_errors  # noqa: E402
from geomir.dialects import geo  # noqa: E402
from xdsl.dialects.builtin import f64  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
LOGITS = geo.PointType(geo.EuclideanAttr(), 10, f64)


def _contract(clauses: str, dtype: str = "float32"):
    text = (f"contract: t\nmodel: examples/lipschitz_classifier.geo\nentry: RobustClassifier\n"
            f"reference: {{target: torch, dtype: float64}}\ncandidate: {{target: torch, dtype: {dtype}}}\n{clauses}")
    return load_contract(text)[0]


def _verdict(clauses, name):
    (c,) = [c for c in clauses if c.clause.startswith(name)]
    return c


def _outputs(seed, n=400, dim=10):
    rng = np.random.default_rng(seed)
    return rng.normal(0, 2.0, (n, dim))


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), size=st.floats(1e-6, 1.0), bound=st.floats(1e-6, 1.0))
def test_injected_drift_passes_exactly_when_under_max_abs(seed, size, bound):
    y = _outputs(seed)
    rng = np.random.default_rng(seed + 1)
    a = size * rng.uniform(0, 1, y.shape[0])  # per-sample drift of known norm along e_0
    shifted = y.copy()
    shifted[:, 0] += a
    clauses, _, _ = evaluate(_contract(f"numerical: {{max_abs: {bound!r}}}"), y, shifted, LOGITS)
    c = _verdict(clauses, "numerical.max_abs")
    assert math.isclose(c.measured, a.max(), rel_tol=1e-9)
    assert (c.verdict == "pass") == (a.max() <= bound)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), size=st.floats(1e-6, 1.0), bound=st.floats(1e-6, 1.0))
def test_injected_drift_passes_exactly_when_under_max_rel(seed, size, bound):
    y = _outputs(seed)
    shifted = y * (1 + size)  # relative error exactly `size` on every sample
    clauses, _, _ = evaluate(_contract(f"numerical: {{max_rel: {bound!r}}}"), y, shifted, LOGITS)
    c = _verdict(clauses, "numerical.max_rel")
    assert math.isclose(c.measured, size, rel_tol=1e-9)
    assert (c.verdict == "pass") == (size <= bound * (1 + 1e-12)) or math.isclose(size, bound, rel_tol=1e-9)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), factor=st.floats(0.01, 10.0), dtype=st.sampled_from(["float32", "bfloat16"]))
def test_allclose_default_passes_exactly_within_torch_tolerances(seed, factor, dtype):
    torch = pytest.importorskip("torch")
    from geomir.contracts.tolerances import DEFAULTS

    y = _outputs(seed)
    rtol, atol = DEFAULTS[dtype]
    shifted = y + factor * (atol + rtol * np.abs(y)) * np.sign(np.random.default_rng(seed).normal(size=y.shape))
    clauses, _, _ = evaluate(_contract("", dtype), y, shifted, LOGITS)
    c = _verdict(clauses, "numerical.allclose")
    close = torch.allclose(torch.tensor(shifted), torch.tensor(y), rtol=rtol, atol=atol)
    if not math.isclose(factor, 1.0, rel_tol=1e-6):
        assert (c.verdict == "pass") == bool(close)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), size=st.floats(1e-4, 2.0), bound=st.floats(1e-6, 1e-1), q=st.sampled_from([0.5, 0.99, 0.999]))
def test_quantile_and_kl_clauses_against_scipy(seed, size, bound, q):
    from scipy.special import rel_entr, softmax

    y = _outputs(seed)
    rng = np.random.default_rng(seed + 2)
    shifted = y + size * rng.normal(size=y.shape)
    clauses, pct, _ = evaluate(_contract(f"statistical: {{quantile: {q}, max_quantile_error: {bound!r}, max_kl: {bound!r}}}"),
                               y, shifted, LOGITS)
    err = np.linalg.norm(shifted - y, axis=-1)
    kl = rel_entr(softmax(y, axis=-1), softmax(shifted, axis=-1)).sum(-1)
    qe, qk = _verdict(clauses, "statistical.quantile_error"), _verdict(clauses, "statistical.kl")
    assert math.isclose(qe.measured, np.quantile(err, q), rel_tol=1e-12)
    assert math.isclose(qk.measured, np.quantile(kl, q), rel_tol=1e-7, abs_tol=1e-15)
    assert (qe.verdict == "pass") == (np.quantile(err, q) <= bound)
    assert (qk.verdict == "pass") == (qk.measured <= bound)
    assert set(pct["error"]) >= {"p50", "p99", "p99.9"} and set(pct["kl"]) >= {"p50", "p99", "p99.9"}


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), flips=st.integers(0, 40), bound=st.floats(0.8, 1.0))
def test_top1_agreement_clause(seed, flips, bound):
    y = _outputs(seed, n=100)
    shifted = y.copy()
    top = np.argmax(y, -1)
    for i in range(flips):  # make another class win on the first `flips` samples
        shifted[i, (top[i] + 1) % 10] = y[i].max() + 1.0
    clauses, pct, _ = evaluate(_contract(f"statistical: {{min_top1: {bound!r}}}"), y, shifted, LOGITS)
    c = _verdict(clauses, "statistical.top1")
    assert c.measured == pytest.approx(1 - flips / 100)
    assert (c.verdict == "pass") == (1 - flips / 100 >= bound)


def test_nan_outputs_fail_every_error_clause():
    y = _outputs(0)
    bad = y.copy()
    bad[3, 2] = np.nan
    clauses, _, notes = evaluate(_contract("numerical: {max_abs: 1.0, max_rel: 1.0}\nstatistical: {max_quantile_error: 1.0}"),
                                 y, bad, LOGITS)
    assert all(c.verdict == "FAIL" for c in clauses if c.bound is not None)
    assert "NaN or inf" in notes[0]


def test_escalation_follows_the_share_of_the_bound():
    y = _outputs(0)
    c = _contract("numerical: {max_abs: 1.0}\nescalation: [{above: 0.5, action: warn}, {above: 1.0, action: fallback}, "
                  "{above: 2.0, action: block}]")
    for drift, action in ((0.2, ""), (0.7, "warn"), (1.5, "fallback"), (3.0, "block")):
        shifted = y.copy()
        shifted[:, 0] += drift
        (clause,) = evaluate(c, y, shifted, LOGITS)[0]
        assert clause.action == action, drift


def test_manifold_metric_is_the_geodesic_distance():
    import torch

    from geomir.backends.torch import runtime as R

    ball = R.PoincareBall(c=1.0)
    rng = np.random.default_rng(0)
    x = ball.expmap0(torch.tensor(rng.normal(0, 0.5, (50, 4)))).numpy()
    y = ball.expmap0(torch.tensor(rng.normal(0, 0.5, (50, 4)))).numpy()
    t = geo.PointType(geo.PoincareAttr(1.0), 4, f64)
    d = sample_errors(x, y, t, "manifold")
    assert np.allclose(d, ball.dist(torch.tensor(x), torch.tensor(y))[..., 0].numpy(), rtol=1e-12)


def _real(tmp_path, candidate: str, clauses: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(f"contract: real\nmodel: {ROOT / 'examples' / 'hyperbolic_mlp.geo'}\nentry: HyperbolicMLP\n"
                    f"reference: {{target: torch, dtype: float64}}\ncandidate: {candidate}\n"
                    f"inputs: {{samples: 256, seed: 0}}\n{clauses}")
    return path


def test_the_jax_float32_kernel_passes_its_contract_and_bfloat16_is_measured(tmp_path):
    pytest.importorskip("jax")
    report = check_contract(_real(tmp_path, "{target: jax, dtype: float32}",
                                  "numerical: {max_abs: 1e-4, metric: manifold}\nstatistical: {max_quantile_error: 1e-5}"))
    assert report.passed, [(c.clause, c.measured) for c in report.clauses]
    bf16 = check_contract(_real(tmp_path, "{target: torch, dtype: bfloat16}", "numerical: {metric: manifold}"))
    (allclose,) = bf16.clauses
    assert allclose.clause == "numerical.allclose" and math.isfinite(allclose.measured)
    assert bf16.percentiles["error"]["max"] > report.percentiles["error"]["max"]  # bf16 drifts more


def test_a_candidate_override_with_an_injected_fault_is_caught(tmp_path):
    path = _real(tmp_path, "{target: torch, dtype: float32}", "numerical: {max_abs: 1e-3}")
    assert check_contract(path).passed
    assert not check_contract(path.read_text().replace("dtype: float32}", "dtype: float32, perturb: 0.01}")).passed

    def broken(xs):
        from geomir.contracts.check import build_kernels

        return build_kernels(load_contract(path)[0], tmp_path).reference(xs) + 0.5
    assert not check_contract(path, candidate=broken).passed


def test_cli_exit_codes_and_json_report(tmp_path):
    ok = _real(tmp_path, "{target: torch, dtype: float32}", "numerical: {max_abs: 1e-3}")
    proc = subprocess.run([sys.executable, "-m", "geomir.driver", "contract", "check", str(ok)], capture_output=True,
                          text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "numerical.max_abs" in proc.stdout and "PASS" in proc.stdout
    report = json.loads((tmp_path / "c.report.json").read_text())
    assert report["passed"] is True and report["clauses"][0]["verdict"] == "pass"
    bad = tmp_path / "bad.yaml"
    bad.write_text(ok.read_text().replace("max_abs: 1e-3", "max_abs: 1e-12"))
    proc = subprocess.run([sys.executable, "-m", "geomir.driver", "contract", "check", str(bad), "-o",
                           str(tmp_path / "r.json")], capture_output=True, text=True)
    assert proc.returncode == 1 and "VIOLATED" in proc.stdout
    assert json.loads((tmp_path / "r.json").read_text())["passed"] is False
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(ok.read_text().replace("max_abs: 1e-3", "max_abs: -3"))
    proc = subprocess.run([sys.executable, "-m", "geomir.driver", "contract", "check", str(wrong)],
                          capture_output=True, text=True)
    assert proc.returncode == 1 and "wrong.yaml:7:" in proc.stderr and "numerical.max_abs" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_triton_candidate_that_fell_back_to_torch_says_so(tmp_path):
    """Without a GPU or TRITON_INTERPRET the Triton launch sites run the torch code: the
    report records it, so a contract is never passed on torch's numbers unknowingly."""
    pytest.importorskip("triton")
    path = _real(tmp_path, "{target: triton, dtype: float32}", "numerical: {max_abs: 1e-4}")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    code = ("import json, warnings; warnings.simplefilter('ignore'); from geomir.contracts.check import check_contract; "
            f"r = check_contract({str(path)!r}); print(json.dumps([r.percentiles['triton_launches'], r.notes]))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    launches, notes = json.loads(proc.stdout.strip().splitlines()[-1])
    if launches["kernel"] == 0:  # no GPU here
        assert launches["torch_fallback"] and any("ran the torch code" in n for n in notes)


def test_cli_exit_codes_are_the_documented_ones(tmp_path, capsys):
    """docs/kernel-contracts.md gave 1 for every wrong file; a non-UTF-8 contract was an
    internal error (exit 3); unreadable files and an ambiguous entry exit 2, as cli.md's
    'cannot read' (findings 7 and 12c)."""
    from geomir.driver import main

    ok = _real(tmp_path, "{target: torch, dtype: float32}", "numerical: {max_abs: 1e-3}").read_text()
    cases = {
        "latin1": (ok.replace("contract: real", "contract: r\xe9al").encode("latin-1"), 1, "the file is not UTF-8"),
        "invalid": (ok.replace("max_abs: 1e-3", "max_abs: true").encode(), 1, "must be a number, found true"),
        "duplicate": ((ok + "\ncontract: other\n").encode(), 1, "duplicate key 'contract'"),
        "no_model": (ok.replace("hyperbolic_mlp.geo", "nope.geo").encode(), 2, "model file"),
        "no_weights": (ok.replace("entry:", "weights: nope.npz\nentry:").encode(), 2, "nope.npz"),
        "ambiguous": (ok.replace("hyperbolic_mlp.geo", "lipschitz_classifier.geo").replace("entry: HyperbolicMLP\n", "")
                      .encode(), 2, "name one with entry"),
    }
    for name, (text, code, message) in cases.items():
        path = tmp_path / f"{name}.yaml"
        path.write_bytes(text)
        assert main(["contract", "check", str(path), "-o", str(tmp_path / "r.json")]) == code, name
        assert message in capsys.readouterr().err, name
    assert main(["contract", "check", str(tmp_path / "missing.yaml")]) == 2
    doc = (ROOT / "docs" / "kernel-contracts.md").read_text()
    assert "1 a clause is violated, or the contract file is wrong" in doc and "2 the check cannot\nrun" in doc


def test_perturb_is_absolute_noise_as_the_schema_says():
    """The schema said 'relative' noise; check.py adds absolute noise in [-p, p] (finding 12b)."""
    from geomir.contracts import json_schema

    described = json_schema()["$defs"]["Kernel"]["properties"]["perturb"]["description"]
    assert "absolute" in described and "relative" not in described
    contract = _contract("inputs: {samples: 64}\nnumerical: {max_abs: 1.0}").model_copy(
        update={"candidate": load_contract("contract: t\nmodel: m\nreference: {target: torch}\n"
                                           "candidate: {target: torch, dtype: float64, perturb: 0.25}\n")[0].candidate})
    from geomir.contracts.check import build_kernels

    k = build_kernels(contract, ROOT)
    dy = k.candidate(k.inputs) - k.reference(k.inputs)
    assert np.abs(dy).max() <= 0.25 and np.abs(dy).max() > 0.2  # absolute: whatever the size of y


# -- findings of the kernel-contract hunt (hunt-kc) --------------------------------------------


def _on(manifold, dim, seed=0):
    """Points of ``manifold`` (a runtime manifold) from tangents at the origin."""
    import torch

    rng = np.random.default_rng(seed)
    u = torch.tensor(rng.normal(0, 0.5, (40, dim)))
    return manifold.expmap0(manifold.proju(manifold.origin_like(u), u)).numpy()


def test_manifold_metric_counts_a_candidate_off_the_manifold():
    """The candidate was projected before measuring: 2 y on the sphere and x0 + 100 on the
    hyperboloid measured ~0 (hunt-kc 1)."""
    from geomir.jet_report import runtime_manifold

    for attr, off, at_least in ((geo.SphereAttr(), lambda y: 2.0 * y, 1.0 - 1e-9),
                                (geo.LorentzAttr(1.0), lambda y: y + np.eye(y.shape[1])[0] * 100.0, 99.0)):
        y = _on(runtime_manifold(attr), 4)
        t = geo.PointType(attr, 4, f64)
        assert np.all(sample_errors(y, off(y), t, "manifold") >= at_least), attr
        assert np.max(sample_errors(y, y, t, "manifold")) < 1e-9, attr  # on the manifold: the geodesic distance


def _nan_contract(q=0.999, escalation=""):
    return _contract(f"numerical: {{max_abs: 1e-3}}\nstatistical: {{quantile: {q}, max_quantile_error: 1e-3, "
                     f"max_kl: 1e-3, min_top1: 0.99}}\n{escalation}")


def test_nonfinite_rows_fail_the_statistical_clauses_too():
    """One NaN row among many passed the quantile, KL and top-1 clauses; many NaN rows gave
    NaN measures and percentiles and no escalation action; an all-NaN row's argmax agreed
    (hunt-kc 6)."""
    y = _outputs(0, n=1000)
    one = y.copy()
    one[5] = np.nan
    clauses, pct, _ = evaluate(_nan_contract(), y, one, LOGITS)
    assert {c.clause: c.verdict for c in clauses} == {c.clause: "FAIL" for c in clauses} and len(clauses) == 4
    assert all(c.nonfinite == 1 for c in clauses) and pct["top1_agreement"] == pytest.approx(0.999)
    many = y.copy()
    many[::2] = np.nan
    clauses, pct, _ = evaluate(_nan_contract(0.5, "escalation: [{above: 1.0, action: block}]"), y, many, LOGITS)
    assert all(not math.isnan(c.measured) for c in clauses)
    assert [c.action for c in clauses] == ["block"] * 4
    assert not any(math.isnan(v) for v in pct["error"].values()) and pct["error"]["p50"] == math.inf
    assert pct["top1_agreement"] == pytest.approx(0.5)


def test_cpu_memory_clause_measures_the_candidates_peak():
    """The candidate had run on every sample before the peak RSS was read: a candidate taking
    ~200 MB a call passed max_memory_mb 100 (hunt-kc 3)."""
    import torch

    import geomir

    contract = _contract("inputs: {samples: 32, batch: 32}\nnumerical: {max_abs: 1.0}\n"
                         "runtime: {max_memory_mb: 100, repeats: 3}", "float64").model_copy(
        update={"model": str(ROOT / "examples" / "lipschitz_classifier.geo")})
    module = geomir.compile(ROOT / "examples" / "lipschitz_classifier.geo", target="torch")
    params = module.init_params(0, torch.float64, module.FUNCTION_PARAMS["RobustClassifier"])

    def hungry(xs):
        scratch = np.ones(25_000_000)  # 200 MB, touched
        with torch.no_grad():
            return module.RobustClassifier(params, torch.tensor(xs[0])).numpy() + 0 * scratch[0]

    report = check_contract(contract, candidate=hungry)
    memory = _verdict(report.clauses, "runtime.memory_mb")
    assert memory.measured > 150 and memory.verdict == "FAIL", (memory.measured, memory.detail)


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def _main_error(capsys, *argv):
    from geomir.driver import main

    code = main(["contract", *argv])
    return code, capsys.readouterr().err


def test_models_a_contract_cannot_compare_are_usage_errors(tmp_path, capsys):
    """A path input was cut into several paths by `batch` and reported on 'samples'; a model
    with two outputs crashed (exit 3) (hunt-kc 4, 9)."""
    two = _write(tmp_path, "two.mlir", "func.func @Two(%a: !geo.point<euclidean, 4, f64>) -> "
                 "(!geo.point<euclidean, 4, f64>, !geo.point<euclidean, 4, f64>) {\n"
                 "  func.return %a, %a : !geo.point<euclidean, 4, f64>, !geo.point<euclidean, 4, f64>\n}\n")
    head = "reference: {target: torch, dtype: float64}\ncandidate: {target: torch, dtype: float32}\ninputs: {samples: 64, batch: 16}\n"
    cases = {"two.yaml": (f"contract: two\nmodel: {two}\nentry: Two\n{head}", "@Two returns 2 outputs"),
             "path.yaml": (f"contract: w\nmodel: {ROOT / 'examples/winding/phase_memory.geo'}\nentry: Winding\n{head}",
                           "@Winding takes a path (input 1)")}
    for name, (text, message) in cases.items():
        code, err = _main_error(capsys, "check", str(_write(tmp_path, name, text)), "-o", str(tmp_path / "r.json"))
        assert code == 2 and message in err and "internal" not in err, (name, err)


def test_weights_that_are_not_real_numbers_are_usage_errors(tmp_path, capsys):
    """Strings crashed (exit 3), complex lost their imaginary part, booleans were taken, an
    unknown array was ignored (hunt-kc 10). Integers are converted, as documented."""
    import torch

    import geomir

    module = geomir.compile(ROOT / "examples" / "hyperbolic_mlp.geo", target="torch")
    params = {k: v.numpy() for k, v in module.init_params(0, torch.float64,
                                                          module.FUNCTION_PARAMS["HyperbolicMLP"]).items()}
    variants = {"str": ({k: np.full(v.shape, "a") for k, v in params.items()}, "holds str32 values"),
                "cplx": ({k: v + 1j for k, v in params.items()}, "holds complex128 values"),
                "bool": ({k: v > 0 for k, v in params.items()}, "holds bool values"),
                "extra": ({**params, "bogus": np.zeros(3)}, "1 arrays that are no parameter of hyperbolic_mlp.geo: bogus"),
                "int": ({k: np.round(v * 10).astype(np.int64) for k, v in params.items()}, None)}
    for name, (arrays, message) in variants.items():
        np.savez(tmp_path / f"{name}.npz", **arrays)
        path = _real(tmp_path, "{target: torch, dtype: float32}", f"numerical: {{max_abs: 1.0}}\nweights: {name}.npz\n")
        code, err = _main_error(capsys, "check", str(path), "-o", str(tmp_path / "r.json"))
        assert (code, message is None or message in err) == (2 if message else 0, True), (name, err)


def test_an_escalation_step_below_the_bound_applies_in_check(tmp_path, capsys):
    """`{above: 0.1, action: block}` was shown ('PASS (escalation: block)') and exit 0
    (hunt-kc 11)."""
    path = _real(tmp_path, "{target: torch, dtype: float32}", "numerical: {max_abs: 1e-3}\n"
                 "escalation: [{above: 1e-6, action: warn}, {above: 1e-5, action: block}]\n")
    report = check_contract(path)
    assert report.action == "block" and not report.passed and not report.violated
    from geomir.driver import main

    assert main(["contract", "check", str(path), "-o", str(tmp_path / "r.json")]) == 1
    assert "REJECTED (escalation: block)" in capsys.readouterr().out
    warned = check_contract(path.read_text().replace("{above: 1e-5, action: block}", "{above: 0.5, action: block}"))
    assert warned.passed and warned.action == "warn" and any("reach a warn step" in n for n in warned.notes)


def test_triton_launches_count_the_compared_run_only(monkeypatch):
    """The warm-up and timing calls were counted as launches too (hunt-kc 12)."""
    from geomir.contracts import check

    contract = _contract("inputs: {samples: 16, batch: 8}\nnumerical: {max_abs: 1.0}\nruntime: {repeats: 3}")
    k = check.build_kernels(contract, ROOT)
    calls = [0]

    def candidate(xs):
        calls[0] += 1
        return k.reference(xs)

    monkeypatch.setattr(check, "_triton_launches", lambda: (lambda start=calls[0]: (calls[0] - start, {})))
    report = check.run_check(contract, check.Kernels(k.entry, k.reference, candidate, k.inputs, k.output_type),
                             count_launches=True)
    assert report.percentiles["triton_launches"]["kernel"] == 1 and calls[0] > 1
