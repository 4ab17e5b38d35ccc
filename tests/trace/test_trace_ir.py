"""Traced Python and .geo give the same IR (issue 9): every model of examples/*.geo,
written as traced Python in traced_examples.py, lowers to the same functions, before the
passes and after the default pipeline (contracts proved alike). Value names are not
compared (a traced temporary has none)."""

from __future__ import annotations

from pathlib import Path

import pytest
from xdsl.dialects import func

import geomir
from geomir.ir import print_ir
from geomir.jet_report import models_of

from .traced_examples import EXAMPLES

ROOT = Path(__file__).resolve().parents[2]


def _functions(module) -> dict[str, str]:
    """name -> printed function, with value names cleared (compared up to renaming)."""
    module = module.clone()
    for op in module.walk():
        for r in op.results:
            r.name_hint = None
        for region in op.regions:
            for block in region.blocks:
                for a in block.args:
                    a.name_hint = None
    return {f.sym_name.data: print_ir(f) for f in module.ops if isinstance(f, func.FuncOp)}


def test_every_example_is_covered():
    assert sorted(EXAMPLES) == sorted(p.name for p in (ROOT / "examples").glob("*.geo"))


@pytest.mark.parametrize("example", sorted(EXAMPLES))
@pytest.mark.parametrize("passes", [None, ""], ids=["default-pipeline", "frontend"])
def test_traced_models_have_the_ir_of_the_geo_models(example, passes):
    geo = _functions(geomir.to_ir(ROOT / "examples" / example, passes=passes))
    for traced in EXAMPLES[example]:
        mine = _functions(traced.lowered(passes))
        for name, text in mine.items():
            assert name in geo, f"{name} is not a model of {example}"
            assert text == geo[name], f"{name} differs from {example}:\n{text}\n--- .geo ---\n{geo[name]}"
    covered = {t.name for t in EXAMPLES[example]}
    assert covered == {f.sym_name.data for f in models_of(geomir.to_ir(ROOT / "examples" / example, passes=""))}


DECLARED = """
manifold H = poincare(c = 1.0)

model encoder(x: H[16]) -> H[32] {
  let W = param(32, 16)
  return mobius_tanh(mobius_matvec(W, x))
}

model shared(x: R[4], y: R[4]) -> R[4] {
  let W = param(4, 4, init = normal)
  let h = tanh(linear(x, W))
  return linear(h, W) + linear(y, W)
}
"""


def test_declared_parameters_trace_to_the_geo_params():
    """def f(x, W: Param[32, 16]) is let W = param(32, 16): one geo.param named after W,
    shared by every use (the issue's example)."""
    import geomir as g

    H = g.PoincareBall(c=1.0)

    @g.trace(x=H.point(16))
    def encoder(x, W: g.Param[32, 16]):
        return g.mobius_tanh(g.mobius_matvec(W, x))

    @g.trace(x=g.R(4), y=g.R(4))
    def shared(x, W: g.Param[4, 4, "normal"], y):
        h = g.tanh(g.linear(x, W))
        return g.linear(h, W) + g.linear(y, W)

    geo = _functions(geomir.to_ir(DECLARED, passes=""))
    for traced in (encoder, shared):
        (text,) = _functions(traced.module).values()
        assert text == geo[traced.name]
    assert encoder.ir.count('geo.param "encoder.W" init "glorot_uniform" : tensor<32x16xf32>') == 1
    assert shared.ir.count("geo.param") == 1 and shared.ir.count("geo.linear") == 3
    torch = pytest.importorskip("torch")
    m = shared.compile("torch")
    params = m.init_params(0, torch.float64)
    assert sorted(params) == ["shared.W"]
    x, y = torch.randn(3, 4, dtype=torch.float64), torch.randn(3, 4, dtype=torch.float64)
    W = params["shared.W"]
    expected = torch.tanh(x @ W.T) @ W.T + y @ W.T
    assert torch.allclose(m.shared(params, x, y), expected, atol=1e-12)
