"""Smoke test of benchmarks/bench_jax_compile.py: tiny settings run every method on every
manifold, the methods agree with geomir where they run, and the JSON has what the docstring
promises. Nothing here asserts on speed."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("jax")

ROOT = Path(__file__).resolve().parents[2]


def _load():
    spec = importlib.util.spec_from_file_location("bench_jax_compile_under_test", ROOT / "benchmarks" / "bench_jax_compile.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _rows(bench, tmp_path, *argv) -> dict:
    out = tmp_path / "bench.json"
    assert bench.main([*argv, "--n", "4", "--repeats", "1", "--out", str(out), "--cache-dir", str(tmp_path / "cache"),
                       "--quiet"]) == 0
    result = json.loads(out.read_text())
    assert result["dtype"] == "float64" and "jax_version" in result["machine"]
    return {(r["manifold"], r["method"]): r for r in result["rows"]}


def _ran_and_agrees(r: dict) -> None:
    assert r["finite"] and r["eqns"] > 0 and r["xla_compile_s"] > 0 and r["call_ms"] > 0, r
    if r["method"] != "geomir":
        assert r["max_rel_diff_vs_geomir"] <= 1e-10, r


def test_every_method_and_the_ones_that_cannot_run(tmp_path):
    bench = _load()
    rows = _rows(bench, tmp_path, "--orders", "1", "--manifolds", "poincare")
    assert set(rows) == {("poincare", k) for k in bench.METHODS}
    for method in bench.METHODS:
        _ran_and_agrees(rows[("poincare", method)])
    rows = _rows(bench, tmp_path, "--orders", "1", "--manifolds", "sphere", "--methods", "jax.jet", "nested_jvp",
                 "--nested-max-order", "0")
    assert "atan" in rows[("sphere", "jax.jet")]["unsupported"]  # jax.jet has no atan rule
    assert "2^K" in rows[("sphere", "nested_jvp")]["skipped"]
    _ran_and_agrees(rows[("sphere", "geomir")])


def test_bad_orders_are_refused(capsys):
    with pytest.raises(SystemExit):
        _load().main(["--orders", "0"])
    assert "--orders must be >= 1" in capsys.readouterr().err
