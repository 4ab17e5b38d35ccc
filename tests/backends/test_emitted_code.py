"""Generated code: deterministic, standalone (only its own framework + geomir's runtime),
and reachable from the CLI and the Python API."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import geomir
from geomir.driver import main

from .helpers import EXAMPLES, ROOT


@pytest.mark.parametrize("target", ["torch", "jax"])
@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_example_emits_deterministic_valid_python(path: Path, target: str) -> None:
    first = geomir.emit_source(path, target)
    assert first == geomir.emit_source(path, target)
    compile(first, f"{path.stem}_{target}.py", "exec")  # valid Python
    assert "Do not edit" in first


def test_geomc_writes_the_module(tmp_path: Path) -> None:
    out = tmp_path / "hyp_torch.py"
    assert main(["examples/hyperbolic_mlp.geo", "--target=torch", "-o", str(out)]) == 0
    assert "class HyperbolicMLPModule(model.CompiledModel):" in out.read_text()


def test_compile_from_source_text(tmp_path: Path) -> None:
    src = "model Square(x: R[3]) -> R[3] {\n  return x * x\n}\n"
    m = geomir.compile(src, target="torch", cache_dir=tmp_path)
    import torch

    assert torch.equal(m.Square({}, torch.tensor([1.0, 2.0, 3.0])), torch.tensor([1.0, 4.0, 9.0]))


ISOLATED = textwrap.dedent(
    """
    import sys
    sys.modules[{blocked!r}] = None  # importing it now fails, as if it were not installed
    import geomir
    m = geomir.compile({path!r}, target={target!r}, cache_dir={cache!r})
    params = m.init_params(seed=0)
    print(sorted(params)[:1], type(next(iter(params.values()))).__module__)
    """
)


@pytest.mark.parametrize("target,blocked", [("torch", "jax"), ("jax", "torch")])
def test_generated_code_needs_only_its_own_framework(tmp_path: Path, target: str, blocked: str) -> None:
    script = ISOLATED.format(blocked=blocked, path=str(ROOT / "examples" / "hyperbolic_mlp.geo"), target=target, cache=str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert blocked not in proc.stdout


def test_torch_module_form_holds_manifold_parameters(tmp_path: Path) -> None:
    import torch

    m = geomir.compile(ROOT / "examples" / "hyperbolic_mlp.geo", target="torch", cache_dir=tmp_path)
    net = m.HyperbolicMLPModule(seed=0)
    params = net.named_geo_parameters()
    assert params["HyperbolicMLP.mobius_linear0.bias"].manifold is m.poincare_c1
    assert params["HyperbolicMLP.mobius_linear0.weight"].manifold is None
    x = m.poincare_c1.expmap0(0.1 * torch.randn(4, 16))
    y = net(x)
    assert y.shape == (4, 8) and torch.all(y.norm(dim=-1) < 1)
    # Deterministic init: the same seed gives the same parameters, another seed differs.
    again = m.HyperbolicMLPModule(seed=0).named_geo_parameters()
    other = m.HyperbolicMLPModule(seed=1).named_geo_parameters()
    w = "HyperbolicMLP.mobius_linear0.weight"
    assert torch.equal(params[w], again[w]) and not torch.equal(params[w], other[w])
