"""Smoke test of benchmarks/bench_toroidal_memory.py: a small run writes the JSON and the
plot the README describes, and the toroidal memory beats the flat one where it should."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("matplotlib")

ROOT = Path(__file__).resolve().parents[2]


def test_small_run(tmp_path):
    spec = importlib.util.spec_from_file_location("bench_toroidal_memory_under_test",
                                                  ROOT / "benchmarks" / "bench_toroidal_memory.py")
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench
    spec.loader.exec_module(bench)
    out = tmp_path / "recall.json"
    assert bench.main(["--loads", "16", "128", "--dims", "6", "--out", str(out), "--quiet"]) == 0
    result = json.loads(out.read_text())
    assert [r["load"] for r in result["runs"]] == [16, 128]
    for r in result["runs"]:
        assert r["toroidal_recall"] >= 0.99 and r["flat_recall"] <= 5 * r["chance"]
        assert 0 <= r["collision_rate"] <= 1 and r["occupancy"] == 1.0
    assert result["goal_met"] is True and result["machine"]["device"] == "cpu"
    assert out.with_suffix(".png").stat().st_size > 10_000
