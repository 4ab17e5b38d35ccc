"""Random well-typed programs (geo_programs.py) run: every model and derive request, on
PyTorch and JAX, with the default passes (jet-expand, jet-fuse: Taylor-mode jets), gives
what the autodiff reference gives (the same program without jet-expand: nested jvp,
torch.func). Contract annotations are dropped: random weights rarely meet them, and
verify-contracts has its own tests. Inputs are valid points (backends/helpers.sample),
float64, 3 rows; where the reference is finite the others are finite and agree to 1e-8
(relative to max(|reference|, 1)), except in a request's rows where the model's own value
is NaN (log of a negative number): the jets are NaN there, autodiff may not be.

Few programs per run (hypothesis draws new ones every run; more with
GEOMIR_RUN_EXAMPLES=N): each compiles three times and runs every function on both
frameworks. This found the jet rules missing in test_jet_edge_cases.py. The check itself is in
program_checks.py; tools/fuzz_programs.py runs it over a range of generator seeds.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings

pytest.importorskip("torch")
pytest.importorskip("jax")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the shared backend helpers

from .geo_programs import well_typed_programs  # noqa: E402
from .program_checks import check_jets  # noqa: E402

RUNS = settings(max_examples=int(os.environ.get("GEOMIR_RUN_EXAMPLES", "6")), deadline=None,
                phases=tuple(p for p in Phase if p is not Phase.shrink),
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@RUNS
@given(well_typed_programs())
def test_generated_programs_run_and_match_the_autodiff_reference(source):
    check_jets(source)
