"""xDSL's generic cleanups, registered under geomir's pass registry.

- ``cse``: common-subexpression elimination (xdsl.transforms.common_subexpression_elimination).
  Needs nothing; guarantees no two pure ops with equal operands and attributes remain.
  A parameter's identity is its name: ``geo.param`` ops with the same name (and so the
  same init and type, which the module verifier enforces) merge, as after inlining a
  model called twice; parameters with different names never merge. Two ``func.call`` ops
  of the same model with the same operands in one block merge too when the model is pure
  (every op of its body, and of the models it calls, has no side effects, as every model
  written in .geo): ``let a = F(x)`` and ``let b = F(x)`` run F once.
- ``dce``: dead-code elimination (xdsl.transforms.dead_code_elimination).
  Guarantees no unused op without side effects remains (unused lets and their params),
  unused calls of pure models included (``let a = F(x)`` with a unused); a call of a
  function that may have effects (a declaration, say) stays.
"""

from xdsl.context import Context
from xdsl.dialects import builtin, func
from xdsl.traits import is_side_effect_free
from xdsl.transforms.common_subexpression_elimination import CommonSubexpressionElimination, cse
from xdsl.transforms.dead_code_elimination import DeadCodeElimination

from geomir.pipeline import register_pass


def pure_functions(module: builtin.ModuleOp) -> set[str]:
    """The functions of ``module`` whose calls have no side effects: defined here (not a
    declaration), every op of the body side-effect free, and every function it calls or
    differentiates (``func.call``, the ``jet`` requests' callees) pure as well. A cycle of
    calls is not pure (the pipeline rejects it anyway). Callees first, in a loop: a chain of
    thousands of calls needs no Python recursion."""
    funcs = {op.sym_name.data: op for op in module.ops if isinstance(op, func.FuncOp)}
    callees: dict[str, set[str]] = {}
    callers: dict[str, set[str]] = {name: set() for name in funcs}
    ready = []
    for name, f in funcs.items():
        calls = _own_calls(f)
        if calls is None or not calls <= funcs.keys():
            continue  # a declaration, an op with side effects, or a call of a function not here
        callees[name] = calls
        for callee in calls:
            callers[callee].add(name)
        if not calls:
            ready.append(name)
    pure: set[str] = set()
    while ready:  # a function is pure once all its callees are; one in (or above) a cycle never is
        name = ready.pop()
        pure.add(name)
        for caller in callers[name]:
            if caller in callees and callees[caller] <= pure:
                ready.append(caller)
    return pure


def _own_calls(f: func.FuncOp) -> set[str] | None:
    """The functions ``f``'s body calls or differentiates; None when ``f`` is a declaration
    or an op of its body has side effects."""
    if f.is_declaration:
        return None
    calls = set()
    for op in f.body.walk():
        if isinstance(op, func.ReturnOp):
            continue
        callee = getattr(op, "callee", None)  # func.call and the jet requests name a function
        if isinstance(callee, builtin.SymbolRefAttr):
            calls.add(callee.string_value())
        if not (isinstance(op, func.CallOp) or is_side_effect_free(op)):
            return None
    return calls


def merge_pure_calls(module: builtin.ModuleOp) -> bool:
    """Replace each call of a pure function by an equal earlier call in the same block (same
    callee, operands and result types); True if any call went."""
    pure = pure_functions(module)
    changed = False
    for f in module.ops:
        if not isinstance(f, func.FuncOp):
            continue
        for block in (b for region in f.regions for b in region.blocks):
            seen: dict[tuple, func.CallOp] = {}
            for op in list(block.ops):
                if not isinstance(op, func.CallOp) or op.callee.string_value() not in pure:
                    continue
                key = (op.callee.string_value(), tuple(op.operands), tuple(op.result_types))
                first = seen.setdefault(key, op)
                if first is not op:
                    for old, new in zip(op.results, first.results, strict=True):
                        old.replace_all_uses_with(new)
                    op.detach()
                    op.erase()
                    changed = True
    return changed


def erase_unused_pure_calls(module: builtin.ModuleOp) -> bool:
    """Erase each call of a pure function none of whose results is used; True if any went."""
    pure = pure_functions(module)
    dead = [op for op in module.walk()
            if isinstance(op, func.CallOp) and op.callee.string_value() in pure
            and not any(result.uses for result in op.results)]
    for op in dead:
        op.detach()
        op.erase()
    return bool(dead)


@register_pass
class CSE(CommonSubexpressionElimination):
    """Common-subexpression elimination of pure ops (xDSL's cse)."""

    name = "cse"

    def apply(self, ctx: Context, op: builtin.ModuleOp) -> None:
        cse(op)
        while merge_pure_calls(op):  # merged calls make equal operands for later ops
            cse(op)


@register_pass
class DCE(DeadCodeElimination):
    """Dead-code elimination of unused side-effect-free ops and model calls (xDSL's dce)."""

    name = "dce"

    def apply(self, ctx: Context, op: builtin.ModuleOp) -> None:
        super().apply(ctx, op)
        while erase_unused_pure_calls(op):  # a call's operands may be dead now
            super().apply(ctx, op)
