"""geomir's IR dialects: ``geo`` (manifolds and layers), ``jet`` (Taylor jets and
derivative requests) and ``contract`` (function contracts), ``apel`` (agent workflows), plus :func:`make_context`."""

from __future__ import annotations

from xdsl.context import Context
from xdsl.dialects.arith import Arith
from xdsl.dialects.builtin import Builtin
from xdsl.dialects.func import Func

from geomir.dialects.apel import Apel
from geomir.dialects.contract import Contract
from geomir.dialects.geo import Geo
from geomir.dialects.jet import Jet

__all__ = ["Apel", "Contract", "Geo", "Jet", "make_context"]


def _parse_utf8_locations() -> None:
    """Let ``loc("\\C3\\A9.geo":1:9)`` parse: xDSL prints a non-ASCII file name as escaped
    UTF-8 bytes (as MLIR does), but lexes that literal as bytes, which its location parser
    refuses; a location's bytes that are UTF-8 are read as the file name they encode."""
    from xdsl.parser import AttrParser
    from xdsl.utils.lexer import Token
    from xdsl.utils.mlir_lexer import MLIRTokenKind, StringLiteral

    original = AttrParser._parse_location
    if getattr(original, "utf8_names", False):
        return

    def parse_location(self):
        token = self._current_token
        if token.kind == MLIRTokenKind.BYTES_LIT:
            try:
                StringLiteral.from_span(token.span).bytes_contents.decode("utf-8")
            except UnicodeDecodeError:
                pass
            else:
                self._parser_state.current_token = Token(MLIRTokenKind.STRING_LIT, token.span)
        return original(self)

    parse_location.utf8_names = True
    AttrParser._parse_location = parse_location


_parse_utf8_locations()


def make_context() -> Context:
    """A fresh xDSL context with builtin, func, arith, geo, jet, contract and apel loaded."""
    ctx = Context()
    for dialect in (Builtin, Func, Arith, Geo, Jet, Contract, Apel):
        ctx.load_dialect(dialect)
    return ctx
