"""benchmarks/jets_table.py renders the committed H100 run as the table in
benchmarks/README.md (the rows and the goals, to the digit)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks/results"


def _module():
    spec = importlib.util.spec_from_file_location("jets_table", ROOT / "benchmarks/jets_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_readme_table_is_the_committed_run(capsys):
    table = _module()
    assert table.main([str(RESULTS / "bench_jets-cuda-A-H100.json"), "--extra",
                       str(RESULTS / "bench_jets-cuda-A-torch-triton-H100-v2.json"), "--extra-match", "graph"]) == 0
    out = capsys.readouterr().out.splitlines()
    readme = (ROOT / "benchmarks/README.md").read_text().splitlines()
    rows = [line for line in out if line.startswith(("| forward", "| d2", "| d4", "| lap"))]
    assert len(rows) == 43 and all(line in readme for line in rows)
    assert rows.index("| d4 | jax: stacked forward (K+1)N | 1.126 | 28.9 | 43% |") < \
        rows.index("| d4 | jax: nested jax.jvp (jit) | 1.184 | 27.5 | 41% |")  # sorted by median
    assert "| triton K=4: fastest alternative / geomir-Triton | 0.66 | >= 1.5 | no |" in out


def test_a_missing_size_is_a_clear_error():
    with pytest.raises(SystemExit, match="no run of size 'B'"):
        _module().main([str(RESULTS / "bench_jets-cuda-A-H100.json"), "--size", "B"])
