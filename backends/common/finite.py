"""Checked execution: ``geomir.compile(..., check_finite=True)`` (``geomc --check-finite``).

The generated code then calls :data:`check_finite` on each function's inputs and parameters
and on every value an op makes, so the first NaN or inf of a call raises
:class:`NonFiniteError` at the op's ``file:line:col`` with the source line and a caret,
instead of flowing silently into the outputs; the caret line is the text that was compiled
(the generated module carries the source lines its checks point at). The checks read the
values back (a device sync per op): a debugging mode, not for speed. Inside torch.func and eager JAX transforms
(the grad, hvp and vjp requests) the checks read the values under the wrappers. Under
``jax.jit`` the values are abstract and are not checked (use ``jax.experimental.checkify``).
No torch or jax import here.
"""

from __future__ import annotations

import sys

from geomir.diagnostics import NonFiniteError, SourceFile, Span, span_at


def _parts(value) -> list:
    """The arrays of a value: itself, or those of a tuple (a LaplacianJet, several results)."""
    if isinstance(value, (tuple, list)):
        return [p for v in value for p in _parts(v)]
    return [] if value is None or isinstance(value, (bool, int, str)) else [value]


def _report(part) -> tuple[int, int, int, list[int], list[int]] | None:
    """(NaN count, inf count, size, index of the first non-finite entry, shape) of a floating
    array with a non-finite entry; None where all are finite or nothing can be checked (a
    tracer under jax.jit, an integer array)."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(part, torch.Tensor):
        if not part.is_floating_point():
            return None
        functorch = torch._C._functorch  # inside torch.func (vjp, hvp, grad): the values underneath
        while functorch.is_functorch_wrapped_tensor(part):
            part = functorch.get_unwrapped(part)
        part = part.detach()  # torch ops only: an unwrapped tensor may have no storage numpy can read
        bad = ~torch.isfinite(part)
        if not bool(bad.any()):
            return None
        return (int(torch.isnan(part).sum()), int(torch.isinf(part).sum()), part.numel(),
                bad.nonzero()[0].tolist(), list(part.shape))
    jax = sys.modules.get("jax")
    if jax is not None:  # eager jax.grad/vjp/jvp/vmap: the concrete values under the tracers
        while isinstance(part, jax.core.Tracer):
            inner = getattr(part, "primal", None)  # JVPTracer; BatchTracer: val
            inner = getattr(part, "val", None) if inner is None else inner
            if inner is None:  # under jax.jit: abstract, nothing to read
                return None
            part = inner
    import numpy as np

    a = np.asarray(part)
    if not np.issubdtype(a.dtype, np.floating) or np.isfinite(a).all():
        return None
    first = np.argwhere(~np.isfinite(a))[0]
    return int(np.isnan(a).sum()), int(np.isinf(a).sum()), a.size, [int(i) for i in first], list(a.shape)


def _span(where: str | None, lines: dict[str, dict[int, str]] | None) -> Span | None:
    if not where:
        return None
    name, line, column = where.rsplit(":", 2)
    if lines is None:  # a module generated before modules carried their lines: the text by file name
        return span_at(name, int(line), int(column))
    text = lines.get(name, {}).get(int(line), "")
    return Span(SourceFile(name, "\n" * (int(line) - 1) + text), int(line), int(column))  # only that line known


class FiniteCheck:
    """``check_finite(where, what, function, value)``: ``value`` if every entry is finite;
    else NonFiniteError at ``where`` ("file:line:col"): ``what`` (an op, an input, a
    parameter) in ``@function`` gave so many NaN and inf. The caret line comes from
    ``lines`` (file -> line -> text: the lines of the compiled source a generated module
    carries, see :meth:`with_lines`); without them (a module generated before they were
    carried) from the text last compiled under that file name, else the file as it is now."""

    def __init__(self, lines: dict[str, dict[int, str]] | None = None):
        self.lines = lines

    def with_lines(self, lines: dict[str, dict[int, str]]) -> FiniteCheck:
        """The check with the caret lines of one generated module."""
        return FiniteCheck(lines)

    def __call__(self, where: str | None, what: str, function: str, value):
        for part in _parts(value):
            report = _report(part)
            if report is None:
                continue
            nan, inf, size, first, shape = report
            found = " and ".join(f"{n} {kind}" for n, kind in ((nan, "NaN"), (inf, "inf")) if n)
            raise NonFiniteError(f"{what} in @{function} gave {found} of {size} values, the first at index "
                                 f"{first} of shape {shape} (the first non-finite value of this call)",
                                 _span(where, self.lines))
        return value


check_finite = FiniteCheck()
