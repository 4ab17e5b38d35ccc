"""Suite-wide fixtures, and one setting: XLA compiles with LLVM's cheap passes.

The suite compiles a few thousand small JAX functions on the CPU (XLA's compiler is half
the time of the JAX-heavy files); LLVM's full optimisation buys nothing on 3-row inputs,
and its cheap passes (XLA_FLAGS below) take about 15% off those files. It is an optimisation level, not a numerics mode (fast math stays off),
and the suite passes with and without it. A user's own XLA_FLAGS win.
"""

import os
import random
import zlib
from pathlib import Path

if not Path("/dev/nvidiactl").exists():  # CPU machines only: tests/gpu keeps the device's own settings
    os.environ.setdefault("XLA_FLAGS", "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true")

import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _seeded_global_rngs(request):
    """Seed Python's, numpy's and torch's global generators from the test's id, so a test that
    draws from them draws the same numbers on every run, alone or under xdist: a failure
    reproduces, and CI cannot fail by the luck of the draw. Hypothesis tests draw their own."""
    seed = zlib.crc32(request.node.nodeid.encode())
    random.seed(seed)
    np.random.seed(seed)
    try:
        import torch
    except ImportError:
        return
    torch.manual_seed(seed)
