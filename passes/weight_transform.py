"""What ``quantize-weights`` and ``prune-weights`` share: record a weight transform on the
``geo.param`` ops it applies to (the numerics: geomir.backends.common.weights)."""

from __future__ import annotations

from collections.abc import Callable

from xdsl.dialects import builtin, func
from xdsl.ir import Operation

from geomir.backends.common import weights
from geomir.diagnostics import UsageError
from geomir.dialects import contract, geo


def check(transform: str, pass_name: str) -> None:
    """A UsageError naming the pass when ``transform`` is malformed."""
    try:
        weights.parse(transform)
    except ValueError as err:
        raise UsageError(f"{pass_name}: {err}") from None


def record(module: builtin.ModuleOp, transform: str, applies: Callable[[builtin.TensorType], bool]) -> int:
    """Append ``transform`` to every tensor parameter ``applies`` accepts; how many. Where
    any changed, the Lipschitz bounds an earlier ``verify-contracts`` proved leave
    ``proved``: they were proved on the old weights (run it again to prove them on the new
    ones)."""
    count = 0
    for op in module.walk():
        if isinstance(op, geo.ParamOp) and isinstance(op.result.type, builtin.TensorType) and applies(op.result.type):
            _append(op, transform)
            count += 1
    if count:
        _drop_lipschitz_proofs(module)
    return count


def _drop_lipschitz_proofs(module: builtin.ModuleOp) -> None:
    """Move ``#contract.lipschitz`` from every function's ``proved`` to
    ``proved_before_transforms`` (the bound before, for verify-contracts' message).
    Monotonicity and equivariance stay: quantization and pruning keep the weights' signs
    and do not touch the ops the equivariance proof reads."""
    for op in module.walk():
        proved = op.attributes.get(contract.PROVED_ATTR_NAME) if isinstance(op, func.FuncOp) else None
        if proved is None:
            continue
        stale = [c for c in proved.data if isinstance(c, contract.LipschitzAttr)]
        if stale:
            contract.set_proved(op, [c for c in proved.data if not isinstance(c, contract.LipschitzAttr)],
                                checked=contract.proved_is_checked(op))  # what is left stays as trusted as it was
            old = op.attributes.get(contract.STALE_ATTR_NAME)
            op.attributes[contract.STALE_ATTR_NAME] = builtin.ArrayAttr([*(old.data if old else ()), *stale])


def _append(op: Operation, transform: str) -> None:
    old = op.attributes.get(weights.ATTR_NAME)
    items = list(old.data) if old is not None else []
    op.attributes[weights.ATTR_NAME] = builtin.ArrayAttr([*items, builtin.StringAttr(transform)])
