"""Whole-module checks beyond each op's own verifier.

- every function's ``contracts`` are #contract attributes that fit its signature;
- parameters are identified by name: every ``geo.param`` of one name, in any function,
  has the same type and init (so inlining and cse can merge them safely);
- structure: the module holds only ``func.func`` ops (no nested modules, no ops at module
  level), each a declaration or a body of one block;
- every operand is defined before its use (dominance: a value defined later in the
  block, or by the op itself, is rejected; xDSL's parser accepts forward references).
Run after parsing IR text and after every pass. Each op's own checks are xDSL's, but a
``func.call``'s callee is found in a table of the module's symbols, read once
(:class:`SymbolTables`): xDSL scans the module for each call, which made the checks of a
program take time quadratic in its size.
"""

from __future__ import annotations

import contextvars
import dataclasses
from collections.abc import Iterator

from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp, StringAttr, SymbolRefAttr
from xdsl.ir import Block, ErasedSSAValue, Operation, OpTraits, SSAValue
from xdsl.traits import (IsolatedFromAbove, IsTerminator, NoTerminator, SymbolOpInterface, SymbolTable,
                         SymbolUserOpInterface)
from xdsl.utils.exceptions import VerifyException

from geomir import input_names
from geomir.dialects.contract import verify_function_contracts
from geomir.dialects.geo import ParamOp


def verify_module(module: ModuleOp) -> None:
    """Raise VerifyException naming the first problem found; the checks of this module set
    the exception's ``op`` to the op at fault (geomir.ir reports its line and column)."""
    token = _SYMBOLS.set(SymbolTables())
    try:
        _verify_op(module, _SYMBOLS.get())
    finally:
        _SYMBOLS.reset(token)
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


class SymbolTables:
    """Symbol lookup as xDSL's ``SymbolTable.lookup_symbol`` does it, but each symbol table's
    ops are read once: the symbols read are kept by name (xDSL scans the table's ops at every
    lookup). For IR that does not change while the object is in use."""

    def __init__(self) -> None:
        self._tables: dict[Operation, tuple[dict[StringAttr, Operation], Iterator[Operation]]] = {}

    def lookup(self, op: Operation, name: SymbolRefAttr) -> Operation | None:
        """The op that ``name`` refers to from ``op`` (None: none); ValueError when no
        symbol table encloses ``op``."""
        anchor = op
        while anchor is not None and not anchor.has_trait(SymbolTable):
            anchor = anchor.parent_op()
        if anchor is None:
            raise ValueError(f"Operation {op} has no SymbolTable ancestor")
        if anchor not in self._tables:
            self._tables[anchor] = ({}, iter(anchor.regions[0].block.ops))
        found = _find_symbol(*self._tables[anchor], name.root_reference)
        if found is None or not name.nested_references:
            return found
        root, *rest = name.nested_references.data
        return self.lookup(found, SymbolRefAttr(root, rest))


_SYMBOLS: contextvars.ContextVar[SymbolTables | None] = contextvars.ContextVar("geomir_verify_symbols", default=None)
"""The symbol tables of the verification under way (ops' own verifiers look symbols up in it)."""


def lookup_symbol(op: Operation, name: SymbolRefAttr | str) -> Operation | None:
    """``SymbolTable.lookup_symbol(op, name)``, from the tables of the verification under way
    when there is one (an op's verifier, e.g. a jet request's check of its model), so that
    verifying a module stays linear in its size."""
    symbols = _SYMBOLS.get()
    if symbols is None:
        return SymbolTable.lookup_symbol(op, name)
    return symbols.lookup(op, SymbolRefAttr(name) if isinstance(name, str) else name)


def _find_symbol(read: dict[StringAttr, Operation], unread: Iterator[Operation], name: StringAttr) -> Operation | None:
    """The first op of a table named ``name``: among those ``read`` so far (by name, the first
    of each), else the first of the ``unread`` ones, reading on up to it."""
    if name in read:
        return read[name]
    for op in unread:
        trait = op.get_trait(SymbolOpInterface)
        if trait is not None:
            symbol = trait.get_sym_attr_name(op)
            read.setdefault(symbol, op)
            if symbol == name:
                return op
    return None


def _verify_op(op: Operation, symbols: SymbolTables) -> None:
    """``op.verify()``: xDSL's checks of the blocks and ops nested in ``op``, then of ``op``,
    but a func.call's callee is looked up in ``symbols``."""
    for region in op.regions:
        for block in region.blocks:
            _verify_block(block, symbols)
            if block.parent is not region:
                raise ValueError("Parent pointer of block does not refer to containing region")
    if isinstance(op, func.CallOp):
        _verify_call(op, symbols)
    else:
        op.verify(verify_nested_ops=False)


def _verify_block(block: Block, symbols: SymbolTables) -> None:
    """xDSL's ``Block.verify``, its ops checked by :func:`_verify_op`."""
    for op in block.ops:
        if op.parent is not block:
            raise ValueError("Parent pointer of operation does not refer to containing region")
        _verify_op(op, symbols)
    region = block.parent
    parent = region.parent if region is not None else None
    if block.first_op is None and parent is not None and len(region.blocks) == 1 and not parent.has_trait(NoTerminator):
        raise VerifyException(f"Operation {parent.name} contains empty block in single-block region "
                              "that expects at least a terminator")


_CALL_DEF = dataclasses.replace(
    func.CallOp.get_irdl_definition(),
    traits=OpTraits(lambda: tuple(t for t in func.CallOp.get_irdl_definition().traits
                                  if not isinstance(t, SymbolUserOpInterface))),
)
"""func.call's definition without its symbol-use trait (whose check scans the module)."""


def _verify_call(op: func.CallOp, symbols: SymbolTables) -> None:
    """``op.verify()`` with the callee looked up in ``symbols``: xDSL's checks, in its words."""
    _verify_placement(op)
    try:
        _CALL_DEF.verify(op)
        _verify_callee(op, symbols.lookup(op, op.callee))
    except VerifyException as err:
        err.op = op
        op.emit_error(f"Operation does not verify: {err}", err)


def _verify_placement(op: Operation) -> None:
    """The checks xDSL's ``Operation.verify`` makes of every op before the op's own."""
    if any(isinstance(operand, ErasedSSAValue) for operand in op.operands):
        raise ValueError("Erased SSA value is used by the operation")
    block = op.parent
    region = block.parent if block is not None else None
    if op.successors:
        if block is None or region is None:
            raise VerifyException(f"Operation {op.name} with block successors does not belong to a block or a region")
        if block.last_op is not op:
            raise VerifyException(f"Operation {op.name} with block successors must terminate its parent block")
        if any(successor.parent is not region for successor in op.successors):
            raise VerifyException(f"Operation {op.name} is branching to a block of a different region")
    if region is None or block.last_op is not op or op.has_trait(IsTerminator):
        return
    if len(region.blocks) > 1:
        raise VerifyException(f"Operation {op.name} terminates block in multi-block region but is not a terminator")
    if region.parent is not None and not region.parent.has_trait(NoTerminator):
        raise VerifyException(f"Operation {op.name} terminates block in single-block region but is not a terminator")


def _verify_callee(op: func.CallOp, callee: Operation | None) -> None:
    """xDSL's check of a func.call against its callee (``CallOpSymbolUserOpInterface``)."""
    if callee is None:
        raise VerifyException(f"'{op.callee}' could not be found in symbol table")
    if not isinstance(callee, func.FuncOp):
        raise VerifyException(f"'{op.callee}' does not reference a valid function")
    inputs, outputs = callee.function_type.inputs, callee.function_type.outputs
    if len(inputs) != len(op.arguments):
        raise VerifyException("incorrect number of operands for callee")
    if len(outputs) != len(op.result_types):
        raise VerifyException("incorrect number of results for callee")
    for index, (expected, given) in enumerate(zip(inputs, (arg.type for arg in op.arguments))):
        if expected != given:
            raise VerifyException(f"operand type mismatch: expected operand type {expected}, "
                                  f"but provided {given} for operand number {index}")
    for index, (expected, given) in enumerate(zip(outputs, op.result_types)):
        if expected != given:
            raise VerifyException(f"result type mismatch: expected result type {expected}, but "
                                  f"provided {given} for result number {index}")


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
