"""Suite-wide fixtures."""

import random
import zlib

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
