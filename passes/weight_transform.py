"""What ``quantize-weights`` and ``prune-weights`` share: record a weight transform on the
``geo.param`` ops it applies to (the numerics: geomir.backends.common.weights)."""

from __future__ import annotations

from collections.abc import Callable

from xdsl.dialects import builtin
from xdsl.ir import Operation

from geomir.backends.common import weights
from geomir.diagnostics import UsageError
from geomir.dialects import geo


def check(transform: str, pass_name: str) -> None:
    """A UsageError naming the pass when ``transform`` is malformed."""
    try:
        weights.parse(transform)
    except ValueError as err:
        raise UsageError(f"{pass_name}: {err}") from None


def record(module: builtin.ModuleOp, transform: str, applies: Callable[[builtin.TensorType], bool]) -> int:
    """Append ``transform`` to every tensor parameter ``applies`` accepts; how many."""
    count = 0
    for op in module.walk():
        if isinstance(op, geo.ParamOp) and isinstance(op.result.type, builtin.TensorType) and applies(op.result.type):
            _append(op, transform)
            count += 1
    return count


def _append(op: Operation, transform: str) -> None:
    old = op.attributes.get(weights.ATTR_NAME)
    items = list(old.data) if old is not None else []
    op.attributes[weights.ATTR_NAME] = builtin.ArrayAttr([*items, builtin.StringAttr(transform)])
