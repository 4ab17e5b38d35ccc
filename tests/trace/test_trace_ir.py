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
