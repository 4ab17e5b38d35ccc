"""``import geomir`` and a generated module load lazily: a deployed torch or JAX module
imports its runtime only, not the compiler (xdsl, lark); geomir's names load on first use."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import geomir

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "hyperbolic_mlp.geo"
COMPILER = ("xdsl", "lark", "geomir.compiler", "geomir.frontends.dsl")


def _loaded_after(code: str, cwd: Path) -> set[str]:
    """The compiler's modules loaded by running ``code`` in a fresh interpreter."""
    probe = f"{code}\nimport sys\nprint(' '.join(m for m in sys.modules if m.split('.')[0] in ('xdsl', 'lark') "\
            f"or m in {COMPILER!r}))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=cwd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return set(out.stdout.split())


@pytest.mark.parametrize("target", ["torch", "jax"])
def test_a_generated_module_runs_without_loading_the_compiler(tmp_path, target):
    pytest.importorskip(target)
    (tmp_path / f"hm_{target}.py").write_text(geomir.emit_source(str(EXAMPLE), target=target))
    array = "torch.zeros(2, 16)" if target == "torch" else "jax.numpy.zeros((2, 16))"
    loaded = _loaded_after(f"import {target}, hm_{target} as m\n"
                           f"m.HyperbolicMLP(m.init_params(seed=0), {array})", tmp_path)
    assert loaded == set()


def test_import_geomir_defers_the_compiler_until_a_name_is_used(tmp_path):
    assert _loaded_after("import geomir", tmp_path) == set()
    assert {"xdsl", "geomir.compiler"} <= _loaded_after("import geomir\ngeomir.to_ir", tmp_path)
    # a submodule by attribute loads that submodule only (the traced ops import the compiler)
    assert _loaded_after("import geomir\ngeomir.topology.winding", tmp_path) == set()


def test_the_public_names():
    namespace: dict = {}
    exec("from geomir import *", namespace)
    for name in ("compile", "to_ir", "print_ir", "trace", "PoincareBall", "Jet", "laplacian", "linear",
                 "mobius_tanh", "parallel_transport", "DEFAULT_PIPELINE", "GeomirError"):
        assert namespace[name] is getattr(geomir, name)
    assert "linear" in dir(geomir)
    assert geomir.memory.__name__ == "geomir.memory"  # submodules by attribute
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        geomir.nope
