"""Suite-wide fixtures, and two settings for speed: XLA compiles with LLVM's cheap passes,
and JAX caches every compile of the run on disk.

The suite compiles a few thousand small JAX functions on the CPU (XLA's compiler is half
the time of the JAX-heavy files); LLVM's full optimisation buys nothing on 3-row inputs,
and its cheap passes (XLA_FLAGS below) take about 15% off those files. It is an
optimisation level, not a numerics mode (fast math stays off), and the suite passes with
and without it. A user's own XLA_FLAGS and JAX_COMPILATION_CACHE_DIR win.
"""

import os
import random
import zlib
from pathlib import Path

if not Path("/dev/nvidiactl").exists():  # CPU machines only: tests/gpu keeps the device's own settings
    os.environ.setdefault("XLA_FLAGS", "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true")

# One JAX compilation cache for the run, shared by the xdist workers (they inherit this
# environment from the controller, which loads this file first): many tests jit the same
# example functions; every compile is cached (default: only those over 1 s). About 12% off
# tests/backends + tests/jets. Removed at exit by the process that made it.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    import atexit
    import shutil
    import tempfile

    _jax_cache = tempfile.mkdtemp(prefix="geomir-tests-jax-cache-")
    os.environ.update(JAX_COMPILATION_CACHE_DIR=_jax_cache, JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
                      JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
    atexit.register(shutil.rmtree, _jax_cache, ignore_errors=True)

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
