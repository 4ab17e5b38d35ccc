"""Default tolerances per candidate dtype: those of ``torch.testing.assert_close``.

A numerical clause that leaves a bound out checks, per sample, ``error <= atol + rtol *
|reference|`` with the candidate dtype's pair below (the same table torch uses to decide
that two tensors are close). docs/kernel-contracts.md shows it.
"""

from __future__ import annotations

DEFAULTS: dict[str, tuple[float, float]] = {
    # dtype: (rtol, atol), as torch.testing.assert_close
    "float64": (1e-7, 1e-7),
    "float32": (1.3e-6, 1e-5),
    "bfloat16": (1.6e-2, 1e-5),
    "float16": (1e-3, 1e-5),
}


def default_tolerance(dtype: str) -> tuple[float, float]:
    """(rtol, atol) for a candidate of ``dtype``."""
    return DEFAULTS[dtype]
