"""Checked execution: ``geomir.compile(..., check_finite=True)`` (``geomc --check-finite``).

The generated code then calls :func:`check_finite` on each function's inputs and parameters
and on every value an op makes, so the first NaN or inf of a call raises
:class:`NonFiniteError` at the op's ``file:line:col`` with the source line and a caret,
instead of flowing silently into the outputs. The checks read the values back (a device
sync per op): a debugging mode, not for speed. Under ``jax.jit`` the values are tracers
and are not checked (use ``jax.experimental.checkify`` there); eager JAX calls are.
No torch or jax import here.
"""

from __future__ import annotations

import sys

from geomir.diagnostics import NonFiniteError, Span, SourceFile, _text_of


def _parts(value) -> list:
    """The arrays of a value: itself, or those of a tuple (a LaplacianJet, several results)."""
    if isinstance(value, (tuple, list)):
        return [p for v in value for p in _parts(v)]
    return [] if value is None or isinstance(value, (bool, int, str)) else [value]


def _as_numpy(part):
    """A floating array as numpy (read back from the device); None where nothing can be
    checked (a tracer under jax.jit, an integer array)."""
    import numpy as np

    torch = sys.modules.get("torch")
    if torch is not None and isinstance(part, torch.Tensor):
        return part.detach().float().cpu().numpy() if part.is_floating_point() else None
    jax = sys.modules.get("jax")
    if jax is not None and isinstance(part, jax.core.Tracer):
        return None
    a = np.asarray(part)
    return a if np.issubdtype(a.dtype, np.floating) else None


def _span(where: str | None) -> Span | None:
    if not where:
        return None
    name, line, column = where.rsplit(":", 2)
    return Span(SourceFile(name, _text_of(name)), int(line), int(column))


def check_finite(where: str | None, what: str, function: str, value):
    """``value`` if every entry is finite; else NonFiniteError at ``where`` ("file:line:col"):
    ``what`` (an op, an input, a parameter) in ``@function`` gave so many NaN and inf."""
    import numpy as np

    for part in _parts(value):
        a = _as_numpy(part)
        if a is None or np.isfinite(a).all():
            continue
        nan, inf = int(np.isnan(a).sum()), int(np.isinf(a).sum())
        found = " and ".join(f"{n} {kind}" for n, kind in ((nan, "NaN"), (inf, "inf")) if n)
        first = tuple(int(i) for i in np.argwhere(~np.isfinite(a))[0])
        raise NonFiniteError(f"{what} in @{function} gave {found} of {a.size} values, the first at index "
                             f"{list(first)} of shape {list(a.shape)} (the first non-finite value of this call)",
                             _span(where))
    return value
