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


def make_context() -> Context:
    """A fresh xDSL context with builtin, func, arith, geo, jet, contract and apel loaded."""
    ctx = Context()
    for dialect in (Builtin, Func, Arith, Geo, Jet, Contract, Apel):
        ctx.load_dialect(dialect)
    return ctx
