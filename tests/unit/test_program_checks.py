"""The differential check of generated programs (program_checks.check_jets) tells the
reference's own rounding at high orders from a wrong jet. (Generator seeds 7980 and 8148,
where the nested-jvp reference is 5.6e-8 and 0.028 off at orders 8 and 7, now pass; they
take 250 s and 40 s, mostly eager JAX at order 8, so they are not run here:
``python tools/fuzz_programs.py 7980 7981``.)"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("jax")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the shared backend helpers

from .geo_programs import generate_program  # noqa: E402
from .program_checks import check_jets  # noqa: E402

MLP = """model U(x: R[3]) -> R[2] {
  let h = sin(linear(x, 3 -> 16))
  return linear(tanh(linear(h, 16 -> 16)), 16 -> 2)
}
derive d8 = directional(U, order = 8)
"""


def test_a_wrong_coefficient_at_a_high_order_is_still_caught(monkeypatch):
    check_jets(MLP)
    from geomir.backends.torch import taylor

    exact = taylor.to_derivatives

    def off_by_1e_6(jet):
        d = exact(jet).clone()
        d[7] += 1e-6 * d[7].abs().max().clamp_min(1.0)
        return d

    monkeypatch.setattr(taylor, "to_derivatives", off_by_1e_6)
    with pytest.raises(AssertionError, match=r"differs from the reference by .*: torch jets, @d8"):
        check_jets(MLP)


def test_a_tangent_returned_by_a_model_is_transported_where_the_caller_uses_it():
    """Generator seed 14397: ``let g = Step(...)`` returns 0.1 * logmap0(v), a tangent at the
    origin, and ``expmap(h, g)`` uses it at h. insert-transport took a call's result to be
    at an unknown point and left it; after jet-expand the pipeline's verification saw the
    origin and rejected the program, telling the user to run insert-transport (which had
    run). Now the call's result is at the origin and is carried to h."""
    import geomir
    from geomir.dialects import geo

    source = generate_program(random.Random(14397)).source
    stripped = "".join(line for line in source.splitlines(True) if not line.lstrip().startswith("@"))
    module = geomir.to_ir(stripped)  # the default pipeline
    dec = next(op for op in module.ops if getattr(op, "sym_name", None) is not None and op.sym_name.data == "Dec")
    assert any(isinstance(op, geo.ParallelTransportOp) for op in dec.walk())
    from .program_checks import JETS

    geomir.to_ir(stripped, passes=JETS)
