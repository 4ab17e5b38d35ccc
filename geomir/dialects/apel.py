"""The ``apel`` dialect: agent workflows (APEL) as IR.

Declarations live at module level: ``apel.record`` (a record type and its fields, or a
pydantic model by import path), ``apel.agent`` (an agent's typed contract: parameters,
result, effects, budget, delegations, and a ``requires`` region of preconditions) and
``apel.workflow`` (a body region). Workflow bodies thread a *context* (named, versioned
slots): ``apel.get``/``apel.set`` read and write it, straight-line expressions are SSA
values, and control flow is structured (``apel.parallel``, ``apel.while``,
``apel.repeat``, ``apel.if``). Steps the runtime journals carry a ``step`` name:
``apel.call`` (an agent; its ``compensation`` region ends in ``apel.compensate``),
``apel.run`` (a sub-workflow), ``apel.receive`` and ``apel.send`` (events by correlation
id). Types: ``!apel.t<"str">`` (str, int, float, bool, json, none), ``!apel.record<"Order">``,
``!apel.list<T>``, and the geo dialect's ``!geo.point<...>`` for manifold values.
"""

from __future__ import annotations

from collections.abc import Sequence

from xdsl.dialects.builtin import (
    ArrayAttr,
    DictionaryAttr,
    FloatAttr,
    IntAttr,
    IntegerAttr,
    StringAttr,
    SymbolRefAttr,
)
from xdsl.ir import Attribute, Block, Dialect, ParametrizedAttribute, Region, SSAValue, TypeAttribute
from xdsl.irdl import (
    IRDLOperation,
    irdl_attr_definition,
    irdl_op_definition,
    operand_def,
    opt_operand_def,
    opt_prop_def,
    prop_def,
    region_def,
    result_def,
    traits_def,
    var_operand_def,
    var_region_def,
)
from xdsl.traits import IsTerminator, NoTerminator, SymbolOpInterface
from xdsl.utils.exceptions import VerifyException

PRIMITIVES = ("str", "int", "float", "bool", "json", "none")
EFFECTS = ("pure", "idempotent", "effectful")
BINARY_OPS = ("+", "-", "*", "/", "==", "!=", "<", "<=", ">", ">=", "and", "or")
UNARY_OPS = ("-", "not")


# --- types ------------------------------------------------------------------------------


@irdl_attr_definition
class ValueType(ParametrizedAttribute, TypeAttribute):
    """A primitive value: ``!apel.t<"str">``."""

    name = "apel.t"
    kind: StringAttr

    def __init__(self, kind: str):
        super().__init__(StringAttr(kind))

    def verify(self) -> None:
        if self.kind.data not in PRIMITIVES:
            raise VerifyException(f"apel.t: unknown kind '{self.kind.data}' (expected one of {', '.join(PRIMITIVES)})")


@irdl_attr_definition
class RecordType(ParametrizedAttribute, TypeAttribute):
    """A record declared by ``apel.record @Name``: ``!apel.record<"Order">``."""

    name = "apel.record"
    record: StringAttr

    def __init__(self, record: str):
        super().__init__(StringAttr(record))


@irdl_attr_definition
class ListType(ParametrizedAttribute, TypeAttribute):
    """A list: ``!apel.list<!apel.t<"int">>``."""

    name = "apel.list"
    elem: Attribute

    def __init__(self, elem: Attribute):
        super().__init__(elem)


def _s(value: str | StringAttr) -> StringAttr:
    return StringAttr(value) if isinstance(value, str) else value


def _strings(values: Sequence[str]) -> ArrayAttr:
    return ArrayAttr([StringAttr(v) for v in values])


# --- declarations --------------------------------------------------------------------------


@irdl_op_definition
class RecordOp(IRDLOperation):
    """A record type: its fields and their types, or a pydantic model (``pydantic``)."""

    name = "apel.record"
    sym_name = prop_def(StringAttr)
    field_names = prop_def(ArrayAttr[StringAttr])
    field_types = prop_def(ArrayAttr)
    pydantic = opt_prop_def(StringAttr)
    traits = traits_def(SymbolOpInterface())

    def __init__(self, name: str, fields: Sequence[tuple[str, Attribute]], pydantic: str | None = None):
        props = {"sym_name": StringAttr(name), "field_names": _strings([f for f, _ in fields]),
                 "field_types": ArrayAttr([t for _, t in fields])}
        if pydantic is not None:
            props["pydantic"] = StringAttr(pydantic)
        super().__init__(properties=props)

    def fields(self) -> dict[str, Attribute]:
        return {n.data: t for n, t in zip(self.field_names.data, self.field_types.data)}


@irdl_op_definition
class AgentOp(IRDLOperation):
    """An agent's contract. ``requires`` holds its preconditions: the block's arguments are
    the parameters, each ``apel.check`` one precondition."""

    name = "apel.agent"
    sym_name = prop_def(StringAttr)
    param_names = prop_def(ArrayAttr[StringAttr])
    param_types = prop_def(ArrayAttr)
    result_type = prop_def(Attribute)
    effect = prop_def(StringAttr)
    impl = opt_prop_def(StringAttr)
    model = opt_prop_def(StringAttr)
    budget = prop_def(DictionaryAttr)
    delegates = prop_def(ArrayAttr[StringAttr])
    retry = prop_def(IntAttr)
    requires = region_def("single_block")
    traits = traits_def(SymbolOpInterface(), NoTerminator())

    def __init__(self, name: str, params: Sequence[tuple[str, Attribute]], result: Attribute, effect: str,
                 impl: str | None, model: str | None, budget: dict[str, Attribute], delegates: Sequence[str],
                 retry: int, requires: Region):
        props = {"sym_name": StringAttr(name), "param_names": _strings([p for p, _ in params]),
                 "param_types": ArrayAttr([t for _, t in params]), "result_type": result,
                 "effect": StringAttr(effect), "budget": DictionaryAttr(budget),
                 "delegates": _strings(delegates), "retry": IntAttr(retry)}
        if impl is not None:
            props["impl"] = StringAttr(impl)
        if model is not None:
            props["model"] = StringAttr(model)
        super().__init__(properties=props, regions=[requires])

    def verify_(self) -> None:
        if self.effect.data not in EFFECTS:
            raise VerifyException(f"apel.agent @{self.sym_name.data}: unknown effect '{self.effect.data}'")
        if len(self.param_names.data) != len(self.param_types.data):
            raise VerifyException(f"apel.agent @{self.sym_name.data}: {len(self.param_names.data)} parameter names "
                                  f"for {len(self.param_types.data)} types")

    def params(self) -> list[tuple[str, Attribute]]:
        return [(n.data, t) for n, t in zip(self.param_names.data, self.param_types.data)]

    def budget_value(self, key: str):
        attr = self.budget.data.get(key)
        if attr is None:
            return None
        return attr.value.data if isinstance(attr, (IntegerAttr, FloatAttr)) else attr.data


@irdl_op_definition
class WorkflowOp(IRDLOperation):
    """A workflow: parameters (context slots set from the run's input), result type, body."""

    name = "apel.workflow"
    sym_name = prop_def(StringAttr)
    param_names = prop_def(ArrayAttr[StringAttr])
    param_types = prop_def(ArrayAttr)
    result_type = prop_def(Attribute)
    body = region_def("single_block")
    traits = traits_def(SymbolOpInterface(), NoTerminator())

    def __init__(self, name: str, params: Sequence[tuple[str, Attribute]], result: Attribute, body: Region):
        super().__init__(properties={"sym_name": StringAttr(name), "param_names": _strings([p for p, _ in params]),
                                     "param_types": ArrayAttr([t for _, t in params]), "result_type": result},
                         regions=[body])

    def params(self) -> list[tuple[str, Attribute]]:
        return [(n.data, t) for n, t in zip(self.param_names.data, self.param_types.data)]


# --- values ------------------------------------------------------------------------------


@irdl_op_definition
class GetOp(IRDLOperation):
    """Read a context slot."""

    name = "apel.get"
    slot = prop_def(StringAttr)
    result = result_def()

    def __init__(self, slot: str, type_: Attribute):
        super().__init__(properties={"slot": StringAttr(slot)}, result_types=[type_])


@irdl_op_definition
class SetOp(IRDLOperation):
    """Write a context slot (the context's version goes up by one)."""

    name = "apel.set"
    slot = prop_def(StringAttr)
    value = operand_def()

    def __init__(self, slot: str, value: SSAValue):
        super().__init__(properties={"slot": StringAttr(slot)}, operands=[value])


@irdl_op_definition
class ConstOp(IRDLOperation):
    """A literal: ``value`` is a string, int, float or bool attribute (absent: none)."""

    name = "apel.const"
    value = opt_prop_def(Attribute)
    result = result_def()

    def __init__(self, value, type_: Attribute):
        props = {}
        if isinstance(value, bool):
            props["value"] = IntegerAttr.from_bool(value)
        elif isinstance(value, int):
            props["value"] = IntAttr(value)
        elif isinstance(value, float):
            props["value"] = FloatAttr(value, 64)
        elif isinstance(value, str):
            props["value"] = StringAttr(value)
        super().__init__(properties=props, result_types=[type_])

    def python_value(self):
        v = self.value
        if v is None:
            return None
        if isinstance(v, IntegerAttr):  # BoolAttr is an i1 IntegerAttr
            return bool(v.value.data)
        if isinstance(v, IntAttr):
            return v.data
        if isinstance(v, FloatAttr):
            return v.value.data
        return v.data


@irdl_op_definition
class FieldOp(IRDLOperation):
    name = "apel.field"
    record = operand_def()
    field_name = prop_def(StringAttr)
    result = result_def()

    def __init__(self, record: SSAValue, field: str, type_: Attribute):
        super().__init__(operands=[record], properties={"field_name": StringAttr(field)}, result_types=[type_])


@irdl_op_definition
class BinaryOp(IRDLOperation):
    name = "apel.binop"
    lhs = operand_def()
    rhs = operand_def()
    op = prop_def(StringAttr)
    result = result_def()

    def __init__(self, op: str, lhs: SSAValue, rhs: SSAValue, type_: Attribute):
        super().__init__(operands=[lhs, rhs], properties={"op": StringAttr(op)}, result_types=[type_])

    def verify_(self) -> None:
        if self.op.data not in BINARY_OPS:
            raise VerifyException(f"apel.binop: unknown operator '{self.op.data}'")


@irdl_op_definition
class UnaryOp(IRDLOperation):
    name = "apel.unop"
    operand = operand_def()
    op = prop_def(StringAttr)
    result = result_def()

    def __init__(self, op: str, operand: SSAValue, type_: Attribute):
        super().__init__(operands=[operand], properties={"op": StringAttr(op)}, result_types=[type_])


@irdl_op_definition
class NewOp(IRDLOperation):
    """Build a record from its fields (``Order(item = x, qty = 2)``)."""

    name = "apel.new"
    values = var_operand_def()
    field_names = prop_def(ArrayAttr[StringAttr])
    result = result_def()

    def __init__(self, fields: Sequence[tuple[str, SSAValue]], type_: Attribute):
        super().__init__(operands=[[v for _, v in fields]], properties={"field_names": _strings([f for f, _ in fields])},
                         result_types=[type_])


@irdl_op_definition
class ListOp(IRDLOperation):
    name = "apel.list"
    items = var_operand_def()
    result = result_def()

    def __init__(self, items: Sequence[SSAValue], type_: Attribute):
        super().__init__(operands=[list(items)], result_types=[type_])


@irdl_op_definition
class BuiltinOp(IRDLOperation):
    """A builtin function of values: len, abs, str, int, float."""

    name = "apel.builtin"
    args = var_operand_def()
    callee = prop_def(StringAttr)
    result = result_def()

    def __init__(self, callee: str, args: Sequence[SSAValue], type_: Attribute):
        super().__init__(operands=[list(args)], properties={"callee": StringAttr(callee)}, result_types=[type_])


# --- steps ----------------------------------------------------------------------------------


@irdl_op_definition
class CallOp(IRDLOperation):
    """Call an agent: a journaled step. The ``compensation`` region (empty when the call
    has none) receives the step's result as its block argument and ends in
    ``apel.compensate``."""

    name = "apel.call"
    args = var_operand_def()
    agent = prop_def(SymbolRefAttr)
    step = prop_def(StringAttr)
    retry = opt_prop_def(IntAttr)
    result = result_def()
    compensation = region_def()

    def __init__(self, agent: str, args: Sequence[SSAValue], step: str, type_: Attribute, retry: int | None,
                 compensation: Region):
        props = {"agent": SymbolRefAttr(agent), "step": StringAttr(step)}
        if retry is not None:
            props["retry"] = IntAttr(retry)
        super().__init__(operands=[list(args)], properties=props, result_types=[type_], regions=[compensation])


@irdl_op_definition
class CompensateOp(IRDLOperation):
    """The compensation a call's region runs: call ``agent`` with ``args``."""

    name = "apel.compensate"
    args = var_operand_def()
    agent = prop_def(SymbolRefAttr)
    traits = traits_def(IsTerminator())

    def __init__(self, agent: str, args: Sequence[SSAValue]):
        super().__init__(operands=[list(args)], properties={"agent": SymbolRefAttr(agent)})


@irdl_op_definition
class RunOp(IRDLOperation):
    """Run a sub-workflow inside this run (its steps are journaled under ``step``)."""

    name = "apel.run"
    args = var_operand_def()
    workflow = prop_def(SymbolRefAttr)
    step = prop_def(StringAttr)
    result = result_def()

    def __init__(self, workflow: str, args: Sequence[SSAValue], step: str, type_: Attribute):
        super().__init__(operands=[list(args)], properties={"workflow": SymbolRefAttr(workflow), "step": StringAttr(step)},
                         result_types=[type_])


@irdl_op_definition
class ReceiveOp(IRDLOperation):
    """Wait for the event ``event`` with this run's correlation id (sent by another
    branch, or from outside: then the run suspends until it arrives)."""

    name = "apel.receive"
    event = prop_def(StringAttr)
    step = prop_def(StringAttr)
    timeout = opt_prop_def(FloatAttr)
    result = result_def()

    def __init__(self, event: str, step: str, type_: Attribute, timeout: float | None):
        props = {"event": StringAttr(event), "step": StringAttr(step)}
        if timeout is not None:
            props["timeout"] = FloatAttr(float(timeout), 64)
        super().__init__(properties=props, result_types=[type_])


@irdl_op_definition
class SendOp(IRDLOperation):
    name = "apel.send"
    value = opt_operand_def()
    event = prop_def(StringAttr)
    step = prop_def(StringAttr)

    def __init__(self, event: str, step: str, value: SSAValue | None):
        super().__init__(operands=[[value] if value is not None else []],
                         properties={"event": StringAttr(event), "step": StringAttr(step)})


# --- control flow ------------------------------------------------------------------------------


@irdl_op_definition
class ParallelOp(IRDLOperation):
    """Branches that run at the same time; the op completes when all have."""

    name = "apel.parallel"
    step = prop_def(StringAttr)
    branch_names = prop_def(ArrayAttr[StringAttr])
    branches = var_region_def("single_block")
    traits = traits_def(NoTerminator())

    def __init__(self, step: str, names: Sequence[str], branches: Sequence[Region]):
        super().__init__(properties={"step": StringAttr(step), "branch_names": _strings(names)},
                         regions=[list(branches)])


@irdl_op_definition
class WhileOp(IRDLOperation):
    """``cond`` (ending in ``apel.yield`` of a bool) is evaluated before each iteration of
    ``body``; ``max`` bounds the iterations (absent: unbounded, which the checks reject)."""

    name = "apel.while"
    max = opt_prop_def(IntAttr)
    loop = prop_def(StringAttr)
    cond = region_def("single_block")
    body = region_def("single_block")
    traits = traits_def(NoTerminator())

    def __init__(self, loop: str, bound: int | None, cond: Region, body: Region):
        props = {"loop": StringAttr(loop)}
        if bound is not None:
            props["max"] = IntAttr(bound)
        super().__init__(properties=props, regions=[cond, body])


@irdl_op_definition
class RepeatOp(IRDLOperation):
    name = "apel.repeat"
    count = prop_def(IntAttr)
    loop = prop_def(StringAttr)
    body = region_def("single_block")
    traits = traits_def(NoTerminator())

    def __init__(self, loop: str, count: int, body: Region):
        super().__init__(properties={"count": IntAttr(count), "loop": StringAttr(loop)}, regions=[body])


@irdl_op_definition
class IfOp(IRDLOperation):
    """A decision (journaled: a resumed run must take the same way)."""

    name = "apel.if"
    cond = operand_def()
    step = prop_def(StringAttr)
    then_region = region_def("single_block")
    else_region = region_def("single_block")
    traits = traits_def(NoTerminator())

    def __init__(self, cond: SSAValue, step: str, then_region: Region, else_region: Region):
        super().__init__(operands=[cond], properties={"step": StringAttr(step)}, regions=[then_region, else_region])


@irdl_op_definition
class CheckOp(IRDLOperation):
    """A precondition of an agent: ``cond`` must hold; ``text`` is its source."""

    name = "apel.check"
    cond = operand_def()
    text = prop_def(StringAttr)

    def __init__(self, cond: SSAValue, text: str):
        super().__init__(operands=[cond], properties={"text": StringAttr(text)})


@irdl_op_definition
class YieldOp(IRDLOperation):
    name = "apel.yield"
    value = operand_def()
    traits = traits_def(IsTerminator())

    def __init__(self, value: SSAValue):
        super().__init__(operands=[value])


@irdl_op_definition
class ReturnOp(IRDLOperation):
    name = "apel.return"
    value = operand_def()

    def __init__(self, value: SSAValue):
        super().__init__(operands=[value])


@irdl_op_definition
class FailOp(IRDLOperation):
    name = "apel.fail"
    message = prop_def(StringAttr)

    def __init__(self, message: str):
        super().__init__(properties={"message": StringAttr(message)})


STEP_OPS = (CallOp, RunOp, ReceiveOp, SendOp, IfOp)
"""Ops whose outcome the runtime journals under their ``step`` name."""

Apel = Dialect(
    "apel",
    [RecordOp, AgentOp, WorkflowOp, GetOp, SetOp, ConstOp, FieldOp, BinaryOp, UnaryOp, NewOp, ListOp, BuiltinOp,
     CallOp, CompensateOp, RunOp, ReceiveOp, SendOp, ParallelOp, WhileOp, RepeatOp, IfOp, CheckOp, YieldOp,
     ReturnOp, FailOp],
    [ValueType, RecordType, ListType],
)


def block_region(ops=(), arg_types: Sequence[Attribute] = ()) -> Region:
    """A single-block region holding ``ops``."""
    block = Block(arg_types=list(arg_types))
    block.add_ops(list(ops))
    return Region(block)
