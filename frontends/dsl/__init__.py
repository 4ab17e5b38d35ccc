"""The .geo language: lark grammar, parser, type checker and IR builder."""

from __future__ import annotations

from xdsl.dialects.builtin import ModuleOp

from .irgen import build_module
from .parser import parse_program
from .typecheck import check_program


def compile_source(text: str, filename: str = "<string>") -> ModuleOp:
    """Parse, type-check and lower .geo source to IR; raises SourceError on user errors."""
    return build_module(check_program(parse_program(text, filename)))


__all__ = ["build_module", "check_program", "compile_source", "parse_program"]
