"""``quantize-weights{mode=int8|bf16}``: quantize the weights the model runs with.

Needs: nothing. Guarantees: each weight matrix (every tensor parameter for bf16; for
int8 the rank-2 ones, biases stay float as int8 inference keeps them in int32) carries
``weight_transforms = [..., "quantize:MODE"]``; the backends' ``init_params`` and
``verify-contracts`` apply it to the weights (symmetric int8 with one scale per output
row, or round-to-nearest-even bfloat16), so a ``verify-contracts`` run after this pass
proves the contracts of the quantized model. ``geomc --quantize=MODE`` runs
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
class QuantizeWeights(ModulePass):
    """Quantize the weights (mode=int8: per-row symmetric, or bf16) for every backend and proof."""

    name = "quantize-weights"

    mode: str = "int8"

    def apply(self, ctx: Context, op: builtin.ModuleOp) -> None:
        transform = f"quantize:{self.mode}"
        check(transform, self.name)
        rank = (2,) if self.mode == "int8" else (1, 2)
        record(op, transform, lambda t: len(t.get_shape()) in rank)
