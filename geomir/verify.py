"""Whole-module checks beyond each op's own verifier.

- every function's ``contracts`` are #contract attributes that fit its signature;
- parameters are identified by name: every ``geo.param`` of one name, in any function,
  has the same type and init (so inlining and cse can merge them safely);
- structure: the module holds only ``func.func`` ops (no nested modules, no ops at module
  level), each a declaration or a body of one block;
- every operand is defined before its use (dominance: a value defined later in the
  block, or by the op itself, is rejected; xDSL's parser accepts forward references).
Run after parsing IR text and after every pass.
"""

from __future__ import annotations

from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Block, Operation, SSAValue
from xdsl.traits import IsolatedFromAbove
from xdsl.utils.exceptions import VerifyException

from geomir import input_names
from geomir.dialects.contract import verify_function_contracts
from geomir.dialects.geo import ParamOp


def verify_module(module: ModuleOp) -> None:
    """Raise VerifyException naming the first problem found; the checks of this module set
    the exception's ``op`` to the op at fault (geomir.ir reports its line and column)."""
    module.verify()
    _verify_structure(module)
    for block in module.body.blocks:
        _verify_dominance(block, set())
    params: dict[str, ParamOp] = {}
    for op in module.walk():
        if isinstance(op, func.FuncOp):
            problem = input_names.arg_attrs_problem(op)
            if problem is not None:
                raise _error(op, f"func.func @{op.sym_name.data}: {problem}")
            try:
                verify_function_contracts(op)
            except VerifyException as err:
                err.op = op
                raise
        elif isinstance(op, ParamOp):
            name = op.param_name.data
            first = params.setdefault(name, op)
            if _meaning(first) != _meaning(op):
                raise _error(
                    op,
                    f"geo.param: parameter '{name}' is declared twice with different meanings: "
                    f"{_describe(first)} and {_describe(op)}",
                )


def _transforms(op: ParamOp) -> tuple[str, ...]:
    from geomir.backends.common import weights

    attr = op.attributes.get(weights.ATTR_NAME)
    return tuple(a.data for a in attr.data) if attr is not None else ()


def _meaning(op: ParamOp) -> tuple:
    """What a parameter declaration fixes: its type, its init and its weight transforms (the
    prover and the backends must see the same values)."""
    return op.result.type, op.init, _transforms(op)


def _describe(op: ParamOp) -> str:
    transforms = _transforms(op)
    return (f"{op.result.type} init {op.init.data!r}"
            + (f" weight_transforms {list(transforms)}" if transforms else " without weight_transforms"))


def _error(op: Operation, message: str) -> VerifyException:
    err = VerifyException(message)
    err.op = op
    return err


def _value_name(value: SSAValue) -> str:
    return f"%{value.name_hint}" if value.name_hint else f"a {value.type} value"


def _verify_structure(module: ModuleOp) -> None:
    """Only functions (and an APEL program's records, agents and workflows) at module level,
    each function a declaration or a single block."""
    for op in module.body.ops:
        if not isinstance(op, func.FuncOp) and not op.name.startswith("apel."):
            raise _error(op, f"{op.name}: only func.func (or apel.* declarations) may appear at module level, "
                             f"found {op.name}")
        if not isinstance(op, func.FuncOp):
            continue
        blocks = list(op.body.blocks)
        # A declaration (no body) parses: inline-models reports calls of it by name.
        if len(blocks) > 1:
            raise _error(op, f"func.func: @{op.sym_name.data} has {len(blocks)} blocks (expected exactly one)")


def _verify_dominance(block: Block, visible: set[SSAValue]) -> None:
    """Every operand of an op in ``block`` is in ``visible`` (values of the enclosing
    blocks defined before the op's ancestor), a block argument or an earlier result."""
    visible = set(visible)
    visible.update(block.args)
    for op in block.ops:
        for index, operand in enumerate(op.operands):
            if operand not in visible:
                raise _error(op, _dominance_message(op, index, operand))
        for region in op.regions:
            inner = set() if op.has_trait(IsolatedFromAbove) else visible
            for nested in region.blocks:
                _verify_dominance(nested, inner)
        visible.update(op.results)


def _dominance_message(op: Operation, index: int, operand: SSAValue) -> str:
    owner = operand.owner
    if owner is op:
        what = "is a result of the op itself"
    elif isinstance(owner, Operation):
        what = f"is defined after its use (by {owner.name})"
    else:
        what = "is an argument of a block that does not enclose the use"
    return f"{op.name}: operand #{index} ({_value_name(operand)}) {what}; a value must be defined before it is used"
