"""Every kernel specialization the examples (and tests/triton/models) launch, compiled for
sm_90 without a GPU (tests/triton/ttir_sites.py, in a subprocess without TRITON_INTERPRET)
and checked with FileCheck: one ``tt.dot`` per jet coefficient in the reduction loop, the
activation's epilogue in the same kernel after it, one store per output tile and no other
global traffic."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

# find_spec, not importorskip: importing triton here, before the other modules of this
# directory set TRITON_INTERPRET=1, would make their kernels non-interpreted.
if importlib.util.find_spec("triton") is None or importlib.util.find_spec("torch") is None:
    pytest.skip("needs torch and triton", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[2]
MODELS = [*sorted((ROOT / "examples").glob("*.geo")), ROOT / "tests/triton/models/kernels_tour.geo"]

# An instruction that only the activation's epilogue emits, after the reduction loop.
EPILOGUE = {
    "geo.tanh": "math.exp", "geo.sigmoid": "math.exp", "geo.softplus": "math.exp",
    "geo.exp": "math.exp", "geo.sin": "math.sin", "geo.cos": "math.cos", "geo.relu": "arith.cmpf",
    None: "arith.addf",  # the bias (every layer of these models without an activation has one)
}


@pytest.fixture(scope="module")
def sections(tmp_path_factory) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["TRITON_CACHE_DIR"] = str(tmp_path_factory.mktemp("triton-cache"))
    env["GEOMIR_CACHE_DIR"] = str(tmp_path_factory.mktemp("geomir-cache"))
    proc = subprocess.run([sys.executable, str(ROOT / "tests/triton/ttir_sites.py"), *map(str, MODELS)],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=900, check=False)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "// ---- torch:" not in proc.stdout  # every site of these models has a kernel
    parts = re.split(r"^// ==== (.*)$", proc.stdout, flags=re.M)
    return {parts[i].split(" | ")[0]: parts[i + 1] for i in range(1, len(parts), 2)}


def _filecheck(text: str, checks: str, tmp_path: Path) -> None:
    check_file = tmp_path / "checks.txt"
    check_file.write_text(checks)
    proc = subprocess.run([sys.executable, "-m", "filecheck", str(check_file)], input=text,
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, checks + proc.stdout[-3000:] + proc.stderr[-3000:]


def _fields(name: str) -> dict:
    kind, *rest = name.split()
    out = {"kind": kind}
    for item in rest:
        k, v = item.split("=", 1)
        out[k] = None if v == "None" else v
    return out


def _jet_checks(K: int, marker: str) -> str:
    return f"""\
CHECK-LABEL: tt.func public @jet_layer_kernel
CHECK-NOT: tt.store
CHECK: scf.for
CHECK-COUNT-{K + 1}: tt.dot
CHECK-NOT: tt.dot
CHECK: scf.yield
CHECK-NOT: tt.dot
CHECK-NOT: tt.store
CHECK: {marker}
CHECK-NOT: tt.load
CHECK-NOT: tt.dot
CHECK-COUNT-{K + 1}: tt.store
CHECK-NOT: tt.store
CHECK-NOT: tt.load
CHECK: tt.return
"""


LAPLACIAN_CHECKS = """\
CHECK-LABEL: tt.func public @laplacian_layer_kernel
CHECK-NOT: tt.store
CHECK: scf.for
CHECK-COUNT-2: tt.dot
CHECK-NOT: tt.dot
CHECK: scf.yield
CHECK-NOT: tt.store
CHECK-NOT: tt.dot
CHECK: {marker}
CHECK-NOT: tt.dot
CHECK: tt.store
CHECK-NOT: tt.store
CHECK: scf.for
CHECK: scf.for
CHECK-COUNT-{dirs}: tt.dot
CHECK-NOT: tt.dot
CHECK: scf.yield
CHECK-NOT: tt.load
CHECK-COUNT-{dirs}: tt.store
CHECK-NOT: tt.load
CHECK: tt.store
CHECK-NOT: tt.store
CHECK: tt.return
"""

POINCARE_CHECKS = """\
CHECK-LABEL: tt.func public @{name}
CHECK-NOT: tt.store
CHECK: scf.for
CHECK: tt.dot
CHECK-NOT: tt.dot
CHECK: scf.yield
CHECK-NOT: tt.store
CHECK: math.log
CHECK-NOT: tt.dot
CHECK-NOT: tt.store
CHECK: "tt.reduce"
CHECK-NOT: tt.dot
CHECK: tt.store
CHECK-NOT: tt.store
CHECK: tt.return
"""


def test_every_site_kind_is_compiled(sections):
    kinds = {_fields(name)["kind"] for name in sections}
    assert kinds == {"dense", "jet_layer", "laplacian", "poincare"}
    orders = {int(_fields(name)["K"]) for name in sections if name.startswith("jet_layer")}
    assert {1, 2, 4, 8} <= orders


def test_site_ttir(sections, tmp_path):
    for name, body in sections.items():
        f = _fields(name)
        assert body.count("tt.func ") == 1 and "tt.call" not in body, name
        assert "tf32" not in body, name  # ieee fp32 dot products by default
        # max/min that drop NaN on the GPU (tl.maximum's default) would hide a NaN that the
        # interpreter of some Triton versions (np.maximum) and torch keep
        assert "maxnumf" not in body and "minnumf" not in body, name
        marker = EPILOGUE[f["activation"]]
        if f["kind"] in ("jet_layer", "dense"):
            K = int(f["K"])
            _filecheck(body, _jet_checks(K, marker), tmp_path)
            assert body.count("tt.dot ") == K + 1 and body.count("tt.store ") == K + 1, name
        elif f["kind"] == "laplacian":
            dirs = int(re.search(r"scf\.for %d0 = \S+ to %D step %c(\d+)_i32", body).group(1))  # DIRS
            _filecheck(body, LAPLACIAN_CHECKS.format(marker=marker, dirs=dirs), tmp_path)
            assert body.count("tt.dot ") == 2 + dirs and body.count("tt.store ") == 2 + dirs, name
        else:
            fn = re.search(r"tt\.func public @(\w+)", body).group(1)
            _filecheck(body, POINCARE_CHECKS.format(name=fn), tmp_path)
            assert body.count("tt.dot ") == 1 and body.count("tt.store ") == 1, name


def test_first_stage_ttir_is_triton_compile_ttir(tmp_path):
    """The sites above are compiled by triton.compile's first stage only (fast); for one
    kernel, that text is what the whole triton.compile reports."""
    code = """
import os; os.environ.pop("TRITON_INTERPRET", None)
from geomir.backends.triton import layer, poincare
from geomir.backends.triton.ttir import ttir
for spec in (layer.jet_layer_spec(2, "sin", True), poincare.poincare_layer_spec("tanh", True, m=24)):
    assert ttir(*spec) == ttir(*spec, full=True)
print("same")
"""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["TRITON_CACHE_DIR"] = str(tmp_path)  # a real compile (a cached one keeps the source paths it was made from)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=300, check=False)
    assert proc.returncode == 0 and "same" in proc.stdout, proc.stderr[-3000:]
