"""Random well-typed programs (geo_programs.py) run: every model and derive request, on
PyTorch and JAX, with the default passes (jet-expand, jet-fuse: Taylor-mode jets), gives
what the autodiff reference gives (the same program without jet-expand: nested jvp,
torch.func). Contract annotations are dropped: random weights rarely meet them, and
verify-contracts has its own tests. Inputs are valid points (backends/helpers.sample),
float64, 3 rows; where the reference is finite the others are finite and agree to 1e-8
(relative to max(|reference|, 1)), except in a request's rows where the model's own value
is NaN (log of a negative number): the jets are NaN there, autodiff may not be.

A time budget, not a count: a program compiles three times and runs every function on
both frameworks, and programs differ in size by 10x, so a fixed number of them cost 20 to
70 s a run. The test checks programs from a new random generator seed on each run until
GEOMIR_RUN_BUDGET_S (default 8) seconds have passed, at least GEOMIR_RUN_MIN (default 2);
GEOMIR_RUN_SEED fixes the first seed. A failure names its seed: ``python
tools/fuzz_programs.py SEED SEED+1`` reproduces it, and runs any range of seeds. This found
the jet rules missing in test_jet_edge_cases.py. The check itself is in program_checks.py.
"""

from __future__ import annotations

import os
import random
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("jax")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the shared backend helpers

from .geo_programs import generate_program  # noqa: E402
from .program_checks import check_jets  # noqa: E402

BUDGET_S = float(os.environ.get("GEOMIR_RUN_BUDGET_S", "8"))
MIN_PROGRAMS = int(os.environ.get("GEOMIR_RUN_MIN", "2"))


def test_generated_programs_run_and_match_the_autodiff_reference():
    first = int(os.environ.get("GEOMIR_RUN_SEED", random.SystemRandom().randrange(10**9)))
    start, seed = time.perf_counter(), first
    while seed - first < MIN_PROGRAMS or time.perf_counter() - start < BUDGET_S:
        source = generate_program(random.Random(seed)).source
        try:
            check_jets(source)
        except Exception as e:
            raise AssertionError(f"generator seed {seed} (python tools/fuzz_programs.py {seed} {seed + 1}): {e}") from e
        seed += 1
    print(f"checked {seed - first} programs, seeds {first}..{seed - 1}")
