"""benchmarks/triton_sass.py: one kernel compiled for sm_90 without a GPU, its registers,
spills and loop mix read back from ptxas and cuobjdump (the tools in the triton wheel)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

if importlib.util.find_spec("triton") is None or importlib.util.find_spec("torch") is None:
    pytest.skip("needs torch and triton", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[2]


def test_static_report_of_one_config(tmp_path):
    out = tmp_path / "sass.json"
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["TRITON_CACHE_DIR"] = str(tmp_path / "cache")
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks/triton_sass.py"), "--kernels", "jet", "laplacian",
                           "--orders", "2", "--limit", "1", "--out", str(out)],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads(out.read_text())["rows"]
    assert [(r["kernel"], r["K"]) for r in rows] == [("jet", 2), ("laplacian", None)]
    for row in rows:
        assert 0 < row["registers"] <= 255 and row["spill_store_bytes"] >= 0 and row["shared_bytes"] > 0
        hot = row["hot_loop"]
        assert hot["ffma"] > 0 and 0 < hot["ffma_share"] < 1 and hot["hgmma"] == 0  # IEEE: FMA units only
    jet, lap = rows
    # 32x32 tile, 4 warps: 8 outputs a thread; 3 coefficients x 8 x BLOCK_K 32 FFMAs a step
    assert jet["config"]["BLOCK_N"] * jet["config"]["BLOCK_M"] == 1024 and jet["hot_loop"]["ffma"] == 3 * 8 * 32
    assert len(lap["loops"]) == 2 and lap["hot_loop"]["ffma"] == lap["config"]["DIRS"] * 8 * 32
    assert "FFMA" in proc.stdout
