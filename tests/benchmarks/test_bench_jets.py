"""Smoke test of benchmarks/bench_jets.py: a tiny setting runs every method, every method
agrees with geomir, and the JSON has what the README promises. Nothing here asserts on
speed (the machine is shared)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("jax")

ROOT = Path(__file__).resolve().parents[2]


def _load_bench():
    name = "bench_jets_under_test"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / "bench_jets.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_tiny_run_has_every_method_and_they_agree(tmp_path: Path) -> None:
    bench = _load_bench()
    out = tmp_path / "bench.json"
    argv = ["--n", "32", "--d", "3", "--width", "16", "--layers", "1", "--repeats", "1", "--warmup", "1",
            "--out", str(out), "--cache-dir", str(tmp_path / "cache"), "--quiet"]
    status = bench.main(argv)
    result = json.loads(out.read_text())

    assert result["errors"] == [], result["errors"]
    assert status == 0 and result["ok"]
    s = result["settings"]
    assert (s["n"], s["d"], s["width"], s["layers"], s["dtype"], s["size"]) == (32, 3, 16, 1, "float32", "custom")
    for key in ("cpu_model", "cores_available", "torch_version", "jax_version", "hostname"):
        assert key in result["machine"]

    folx_installed = importlib.util.find_spec("folx") is not None
    methods = result["methods"]
    cpu_methods = [m for m in bench.METHODS if m[0] != "triton"]  # triton: --device cuda or --triton-interpret
    assert set(methods) == {bench.method_id(*m) for m in cpu_methods}
    for backend, task, method in cpu_methods:
        entry = methods[bench.method_id(backend, task, method)]
        if method.startswith("folx") and not folx_installed:
            assert entry["status"] == "skipped" and "folx" in entry["reason"]
            continue
        assert entry["status"] == "ok", entry
        assert entry["agrees"] is True, entry
        assert entry["median_ms"] > 0 and entry["min_ms"] <= entry["median_ms"]
        assert entry["repeats"] == 1
        if method != "geomir":
            assert entry["reference"] == bench.method_id(backend, "forward" if method.startswith("stacked") else task, "geomir")
            assert 0 <= entry["max_rel_diff"] <= s["rtol"]

    # geomir's torch and JAX code compute the same numbers.
    assert set(result["cross_backend"]) == set(bench.TASKS)
    assert all(c["agrees"] for c in result["cross_backend"].values())

    # Every goal has a ratio and a verdict (whatever it is on this machine).
    assert len(result["goals"]) == len(bench.GOALS)
    for goal in result["goals"]:
        if goal["goal"].startswith("jax Laplacian: folx") and not folx_installed:
            continue
        assert goal["ratio"] > 0 and isinstance(goal["passed"], bool)


def test_triton_rows_run_on_the_interpreter_and_agree(tmp_path: Path) -> None:
    """--triton-interpret adds geomir's Triton module (kernels on the Triton interpreter):
    its four rows run in strict mode (no torch fallback) and agree with geomir-torch. In a
    subprocess: the flag sets TRITON_INTERPRET for the whole process."""
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_jets.py"), "--n", "32", "--d", "3", "--width", "16",
         "--layers", "1", "--repeats", "1", "--warmup", "1", "--only", "torch", "--triton-interpret",
         "--triton-precision", "ieee", "tf32x3",
         "--out", str(out), "--cache-dir", str(tmp_path / "cache"), "--quiet"],
        capture_output=True, text=True, cwd=ROOT, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["ok"] and result["settings"]["backends"] == ["torch", "triton"]
    assert result["settings"]["triton_precision"] == "ieee"
    for task in bench_tasks():
        entry = result["methods"][f"triton/{task}/geomir"]
        assert entry["status"] == "ok" and entry["agrees"] is True, entry
        assert entry["reference"] == f"torch/{task}/geomir" and entry["cross_backend_rel_diff"] <= 2e-3
        assert entry["flops"] > 0 and entry["share_of_fp32_peak"] is None  # no GPU: no peak
        extra = result["methods"][f"triton/{task}/geomir [tf32x3]"]
        assert extra["status"] == "ok" and extra["agrees"] is True and extra["reference"] == f"triton/{task}/geomir"
    assert result["settings"]["triton_precisions"] == ["ieee", "tf32x3"]
    assert result["goals"] == [g for g in result["goals"] if not g["goal"].startswith("triton")]


def bench_tasks():
    return _load_bench().TASKS


def test_flops_convention() -> None:
    bench = _load_bench()
    forward = 2.0 * 4096 * (16 * 512 + 3 * 512 * 512 + 512)  # setting A
    assert bench.flops("forward", 4096, 16, 512, 4) == forward
    assert bench.flops("d4", 4096, 16, 512, 4) == 5 * forward
    assert bench.flops("lap", 4096, 16, 512, 4) == 18 * forward
    assert bench.fp32_peak_tflops("NVIDIA H100 80GB HBM3") == 66.9
    assert bench.fp32_peak_tflops("Some Future GPU") is None


def test_device_cuda_without_a_gpu_is_a_clear_error(tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_jets.py"), "--device", "cuda",
                           "--size", "A", "--out", str(tmp_path / "x.json")],
                          capture_output=True, text=True, cwd=ROOT, timeout=300, check=False)
    assert proc.returncode == 2
    assert "bench_jets: error: --device cuda: torch sees no CUDA GPU on this machine" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "x.json").exists()


def test_geo_source_has_the_requested_shape() -> None:
    bench = _load_bench()
    src = bench.geo_source(5, 8, 3, "float64")
    assert "model U(x: R[5, f64]) -> R[1, f64]" in src
    assert src.count("tanh(linear(") == 3 and "linear(h, 8 -> 1)" in src
    for request in ("directional(U, order = 2)", "directional(U, order = 4)", "laplacian(U)"):
        assert request in src


def test_rel_diff_is_per_order_for_jets() -> None:
    import numpy as np

    bench = _load_bench()
    ref = np.stack([np.full((4, 1), 1.0), np.full((4, 1), 1e-3)])
    out = ref.copy()
    out[1] += 1e-4  # small next to order 0, 10 % of order 1
    assert bench.rel_diff(out, ref, stacked=True) == pytest.approx(0.1)
    assert bench.rel_diff(out, ref, stacked=False) == pytest.approx(1e-4)
    assert bench.rel_diff(np.full((2, 1), np.nan), np.ones((2, 1)), stacked=False) == float("inf")
