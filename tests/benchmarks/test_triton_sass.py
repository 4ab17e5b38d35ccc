"""benchmarks/triton_sass.py on the 64x64-tile, 8-warp kernels (the jet kernel at K = 4,
the H100 autotuner's pick at setting A, and the Laplacian's DIRS 2 and 4 candidates),
compiled for sm_90 without a GPU; their registers, spills and loop mix read back from
ptxas and cuobjdump (the tools in the triton wheel). Also a guard: the hot loops stay
FFMA-bound with few local loads (a change that spills into them fails here)."""

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


def test_static_report_of_the_setting_a_kernels(tmp_path):
    out = tmp_path / "sass.json"
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["TRITON_CACHE_DIR"] = str(tmp_path / "cache")
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks/triton_sass.py"), "--kernels", "jet", "laplacian",
                           "--orders", "4", "--tiles", "64x64", "--warps", "8", "--out", str(out)],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads(out.read_text())["rows"]
    assert [(r["kernel"], r["K"], r["config"].get("DIRS")) for r in rows] == \
        [("jet", 4, None), ("laplacian", None, 2), ("laplacian", None, 4)]
    for row in rows:
        assert 0 < row["registers"] <= 255 and row["spill_store_bytes"] >= 0 and row["shared_bytes"] > 0
        hot = row["hot_loop"]
        assert hot["hgmma"] == 0 and hot["ffma_share"] >= 0.8 and hot["ldl"] <= 64, row  # IEEE: FMA units
    jet, lap2, lap4 = rows
    # 64x64 tile, 8 warps: 16 outputs a thread; BLOCK_K = 32 FFMAs each per dot and k-step
    assert jet["hot_loop"]["ffma"] == 5 * 16 * 32
    assert len(lap2["loops"]) == 2 and lap2["hot_loop"]["ffma"] == 2 * 16 * 32 and lap4["hot_loop"]["ffma"] == 4 * 16 * 32
    assert "FFMA" in proc.stdout
