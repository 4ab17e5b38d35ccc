"""Whole-module checks beyond each op's own verifier.

- every function's ``contracts`` are #contract attributes that fit its signature;
- parameters are identified by name: every ``geo.param`` of one name, in any function,
  has the same type and init (so inlining and cse can merge them safely).
Run after parsing IR text and after every pass.
"""

from __future__ import annotations

from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp
from xdsl.utils.exceptions import VerifyException

from geomir.dialects.contract import verify_function_contracts
from geomir.dialects.geo import ParamOp


def verify_module(module: ModuleOp) -> None:
    """Raise VerifyException naming the first problem found."""
    module.verify()
    params: dict[str, ParamOp] = {}
    for op in module.walk():
        if isinstance(op, func.FuncOp):
            verify_function_contracts(op)
        elif isinstance(op, ParamOp):
            name = op.param_name.data
            first = params.setdefault(name, op)
            if (first.result.type, first.init) != (op.result.type, op.init):
                raise VerifyException(
                    f"geo.param: parameter '{name}' is declared twice with different meanings: "
                    f"{first.result.type} init {first.init.data!r} and {op.result.type} init {op.init.data!r}"
                )
