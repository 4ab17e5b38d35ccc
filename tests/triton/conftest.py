"""The tests here run Triton kernels on CPU with the interpreter: TRITON_INTERPRET must be
set before triton decorates the kernels (their first import). Subprocess checks that
compile for sm_90 drop it again."""

import os

os.environ["TRITON_INTERPRET"] = "1"
os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")


import pytest  # noqa: E402


@pytest.fixture
def fresh_runtime():
    """The Triton runtime's counters and warn-once memory cleared, strict mode off after."""
    from geomir.backends.triton import runtime

    runtime.STATS.clear()
    runtime._WARNED.clear()
    yield
    runtime.set_strict(False)
