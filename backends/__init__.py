"""Code-generation targets. Each target is a backend package (emitter + runtime).

No target is built yet in this version: asking for one raises TargetNotBuiltError
(geomc exits with code 2). The PyTorch, JAX and Triton backends register here as they land.
"""

from __future__ import annotations

from geomir.diagnostics import TargetNotBuiltError, UsageError

TARGETS = ("torch", "jax", "triton")
_BUILT: dict[str, object] = {}


def get_backend(target: str):
    """The backend for ``target``; a clear error when it is unknown or not built yet."""
    if target not in TARGETS:
        raise UsageError(f"unknown target '{target}' (expected one of {', '.join(TARGETS)})")
    if target not in _BUILT:
        raise TargetNotBuiltError(
            f"target '{target}' is not built yet in this version of geomir; "
            "use --emit=ir to see the model's IR"
        )
    return _BUILT[target]
