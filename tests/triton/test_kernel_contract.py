"""The real pair of issue 10: the torch float64 reference vs the Triton kernels of the
same model (the interpreter on CPU) pass their kernel contract."""

from __future__ import annotations

import os

os.environ["TRITON_INTERPRET"] = "1"  # read when @triton.jit decorates: before the imports

from pathlib import Path

import pytest

pytest.importorskip("triton")
torch = pytest.importorskip("torch")

from geomir.backends.triton import runtime as triton_runtime  # noqa: E402
from geomir.contracts.check import check_contract  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("example,entry,bound", [("hyperbolic_mlp.geo", "HyperbolicMLP", 1e-4),
                                                  ("pinn_laplacian.geo", "U", 1e-4)])
def test_the_triton_float32_kernel_passes_its_contract(tmp_path, example, entry, bound):
    path = tmp_path / "c.yaml"
    path.write_text(f"contract: triton-{entry}\nmodel: {ROOT / 'examples' / example}\nentry: {entry}\n"
                    "reference: {target: torch, dtype: float64}\ncandidate: {target: triton, dtype: float32}\n"
                    f"inputs: {{samples: 64, seed: 0, batch: 64}}\nnumerical: {{max_abs: {bound}, metric: manifold}}\n")
    before = sum(n for (p, *_), n in triton_runtime.STATS.items() if p == "triton")
    report = check_contract(path)
    assert report.passed, [(c.clause, c.measured) for c in report.clauses]
    assert sum(n for (p, *_), n in triton_runtime.STATS.items() if p == "triton") > before  # the kernels ran
    assert report.percentiles["triton_launches"]["kernel"] > 0 and not report.percentiles["triton_launches"]["torch_fallback"]
