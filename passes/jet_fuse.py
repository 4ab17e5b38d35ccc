"""``jet-fuse``: one ``jet.layer`` per dense layer of a jet propagation.

Needs: jet-expanded IR (``jet.apply`` ops, from ``jet-expand``). Guarantees: every chain
``jet.apply "geo.linear"(x, W)`` → ``jet.apply "geo.bias"(·, b)`` → ``jet.apply
"<activation>"(·)`` on a jet (or collapsed jet) x, with a plain weight and bias, whose
intermediate values have no other use, is one ``jet.layer %x, %W, %b activation
"<activation>"``. The bias and the activation are each optional, but a lone linear map is
left alone. The activation is any unary elementwise geo op without properties: every
backend's fused layer makes its rules' special cases (exp's overflow, sqrt's constant 0
where a collapsed input rests at 0). The result keeps the last op's name; its location is the linear op's (the layer's
line) or, with an activation on another line, ``loc(fused[linear, activation])`` (MLIR's
fused location: reports name the layer by the first, a NaN check blames the second).
Backends emit a ``jet.layer`` as one block (torch/JAX: ``taylor.layer``) or one kernel.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import builtin
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)

from geomir.dialects import geo, jet
from geomir.pipeline import register_pass


def _is_jet(value: SSAValue) -> bool:
    return isinstance(value.type, (jet.JetType, jet.CollapsedType))


def _only_user(value: SSAValue) -> Operation | None:
    uses = list(value.uses)
    return uses[0].operation if len(uses) == 1 else None


def _apply_of(op: Operation | None, primitives) -> jet.ApplyOp | None:
    if isinstance(op, jet.ApplyOp) and op.primitive.data in primitives and not op.params.data:
        return op
    return None


ACTIVATIONS = frozenset(f"geo.{name}" for name in geo.UNARY_OPS)
"""The activations a layer may end with: the unary elementwise geo ops."""

class FuseLayer(RewritePattern):
    """linear (→ bias) (→ activation) on a jet: one ``jet.layer``."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: jet.ApplyOp, rewriter: PatternRewriter) -> None:
        if op.primitive.data != "geo.linear" or not _is_jet(op.args[0]) or _is_jet(op.args[1]):
            return
        chain: list[jet.ApplyOp] = [op]
        bias = None
        nxt = _apply_of(_only_user(op.result), {"geo.bias"})
        if nxt is not None and nxt.args[0] == op.result and not _is_jet(nxt.args[1]):
            chain.append(nxt)
            bias = nxt.args[1]
        act = _apply_of(_only_user(chain[-1].result), ACTIVATIONS)
        if act is not None:
            chain.append(act)
        if len(chain) == 1:
            return
        last = chain[-1]
        layer = jet.LayerOp(op.args[0], op.args[1], bias, act.primitive.data if act else None)
        layer.location = op.location
        if act is not None and act.location != op.location and all(
                isinstance(loc, builtin.FileLineColLoc) for loc in (op.location, act.location)):
            layer.location = builtin.FusedLoc([op.location, act.location], builtin.NoneAttr())
        layer.result.name_hint = last.result.name_hint
        rewriter.replace(last, layer)
        for dead in reversed(chain[:-1]):
            rewriter.erase(dead)


@register_pass
@dataclass(frozen=True)
class JetFuse(ModulePass):
    """Fuse each layer's jet ops (linear, bias, activation) into one ``jet.layer``."""

    name = "jet-fuse"

    def apply(self, ctx: Context, op: builtin.ModuleOp) -> None:
        PatternRewriteWalker(FuseLayer(), apply_recursively=False).rewrite_module(op)
