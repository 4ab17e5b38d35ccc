"""``inline-models``: inline every call of one model from another.

Needs: a module of ``func.func`` models; calls name functions of the same module and
form no cycle. Guarantees: no ``func.call`` remains in any function; the callee
functions stay (they may still be called from outside); inlined ``geo.param`` ops keep
their names, so a model called twice still shares one set of weights (``cse`` then
merges the duplicate parameter ops).
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import builtin, func
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter

from geomir.diagnostics import IRError
from geomir.pipeline import check_no_recursion, register_pass


@register_pass
@dataclass(frozen=True)
class InlineModels(ModulePass):
    """Inline calls between models (weights stay shared by parameter name)."""

    name = "inline-models"

    def apply(self, ctx: Context, op: builtin.ModuleOp) -> None:
        check_no_recursion(op)  # run_pipeline checks too; this pass may also be applied alone
        funcs = {f.sym_name.data: f for f in op.ops if isinstance(f, func.FuncOp)}
        done: set[str] = set()
        for name in funcs:
            _inline_into(name, funcs, done)


def _inline_into(name: str, funcs: dict[str, func.FuncOp], done: set[str]) -> None:
    if name in done:
        return
    f = funcs[name]
    for call in [o for o in f.walk() if isinstance(o, func.CallOp)]:
        callee_name = call.callee.string_value()
        callee = funcs.get(callee_name)
        if callee is None or not callee.body.blocks:
            raise IRError(f"inline-models: @{name} calls @{callee_name}, which has no body in this module")
        _inline_into(callee_name, funcs, done)
        _inline_call(call, callee)
    done.add(name)


def _inline_call(call: func.CallOp, callee: func.FuncOp) -> None:
    block = callee.body.block
    mapping = dict(zip(block.args, call.arguments))
    results = None
    for inner in block.ops:
        if isinstance(inner, func.ReturnOp):
            results = [mapping.get(v, v) for v in inner.arguments]
            break
        Rewriter.insert_op(inner.clone(value_mapper=mapping), InsertPoint.before(call))
    for old, new in zip(call.results, results):
        old.replace_all_uses_with(new)
    call.detach()
    call.erase()
