"""Round-trip helpers shared by the dialect tests (raw xDSL printer/parser, no geomir layers)."""

from __future__ import annotations

import io

from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation
from xdsl.parser import Parser
from xdsl.printer import Printer

from geomir.dialects import make_context


def print_ir(op: Operation, generic: bool = False) -> str:
    stream = io.StringIO()
    Printer(stream=stream, print_generic_format=generic).print_op(op)
    return stream.getvalue()


def parse_ir(text: str) -> ModuleOp:
    return Parser(make_context(), text).parse_module()


def assert_round_trips(module: ModuleOp) -> str:
    """Custom and generic text both parse back to the same, verified IR; the custom text."""
    module.verify()
    text = print_ir(module)
    parsed = parse_ir(text)
    parsed.verify()
    assert print_ir(parsed) == text
    assert module.is_structurally_equivalent(parsed)
    from_generic = parse_ir(print_ir(module, generic=True))
    from_generic.verify()
    assert print_ir(from_generic) == text
    return text
