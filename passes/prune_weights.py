"""``prune-weights{method=magnitude fraction=F}``: zero a fraction of each weight matrix.

Needs: nothing. Guarantees: each rank-2 tensor parameter (weight matrix) carries
``weight_transforms = [..., "prune:magnitude:F"]``: the floor(F * size) entries of smallest
magnitude are zero in the weights every backend's ``init_params`` makes and in those
``verify-contracts`` proves contracts from. ``geomc --prune=magnitude:F`` runs
verify-contracts, this pass and verify-contracts again.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import builtin
from xdsl.passes import ModulePass

from geomir.pipeline import register_pass

from .weight_transform import check, record


@register_pass
@dataclass(frozen=True)
class PruneWeights(ModulePass):
    """Magnitude pruning: zero the smallest fraction of each weight matrix."""

    name = "prune-weights"

    method: str = "magnitude"
    fraction: float = 0.5

    def apply(self, ctx: Context, op: builtin.ModuleOp) -> None:
        # repr: the exact fraction (":g" rounds to 6 digits: 0.4999999 became 0.5, which zeroes
        # floor(0.5 * size) entries instead of floor(0.4999999 * size), and 0.9999999 became 1)
        transform = f"prune:{self.method}:{float(self.fraction)!r}"
        check(transform, self.name)
        record(op, transform, lambda t: len(t.get_shape()) == 2)
