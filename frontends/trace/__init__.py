"""Tracing Python into geomir IR: ``@geomir.trace`` and the traced builtins.

A traced function is recorded as the typed syntax tree of the equivalent ``.geo`` model
and checked and lowered by the ``.geo`` type checker and IR builder (see tracer.py)."""

from .api import (Euclidean, Lorentz, PoincareBall, R, Space, Sphere, Torus, TracedFunction, equivariant, lipschitz,
                  monotone, trace)
from .ops import OPS
from .tracer import Param, Traced, TraceError

__all__ = ["Euclidean", "Lorentz", "OPS", "Param", "PoincareBall", "R", "Space", "Sphere", "Torus", "TraceError", "Traced",
           "TracedFunction", "equivariant", "lipschitz", "monotone", "trace"]
