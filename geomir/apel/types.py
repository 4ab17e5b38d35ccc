"""APEL value types, as IR attributes, and when a value of one type may flow into another.

Primitive types are ``!apel.t<kind>``, records ``!apel.record<"Name">`` (nominal: two
records are the same type when they have the same name), lists ``!apel.list<T>``, and
manifold values the geo dialect's ``!geo.point`` (the same manifold geometry, dimension and
element type, whatever the manifold is called in each file).
"""

from __future__ import annotations

from xdsl.dialects.builtin import f32
from xdsl.ir import Attribute

from geomir.dialects import apel, geo

STR, INT, FLOAT, BOOL, JSON, NONE = (apel.ValueType(k) for k in apel.PRIMITIVES)


def assignable(src: Attribute, dst: Attribute) -> bool:
    """May a value of type ``src`` be passed where ``dst`` is expected?"""
    if src == dst or dst == JSON or src == JSON:
        return True
    if src == INT and dst == FLOAT:
        return True
    if isinstance(src, apel.ListType) and isinstance(dst, apel.ListType):
        return assignable(src.elem, dst.elem)
    return False


def describe(t: Attribute) -> str:
    """A type as a user reads it: ``str``, ``Order``, ``list[int]``, ``point of dimension 16 on poincare(c=1)``
    (then ``(f64)`` for an element type other than f32)."""
    if isinstance(t, apel.ValueType):
        return t.kind.data
    if isinstance(t, apel.RecordType):
        return t.record.data
    if isinstance(t, apel.ListType):
        return f"list[{describe(t.elem)}]"
    if isinstance(t, geo.PointType):
        elt = "" if t.element_type == f32 else f" ({t.element_type})"
        return f"a point of dimension {t.dim.data} on {manifold_text(t.manifold)}{elt}"
    return str(t)


def manifold_text(m: Attribute) -> str:
    if isinstance(m, geo.CurvedManifoldAttr):
        kind = "poincare" if isinstance(m, geo.PoincareAttr) else "lorentz"
        return f"{kind}(c={m.c.value.data:g})"
    if isinstance(m, geo.TorusAttr):
        return f"torus(units={m.units.data})"
    return {geo.EuclideanAttr: "euclidean", geo.SphereAttr: "sphere"}.get(type(m), str(m))


def mismatch(src: Attribute, dst: Attribute) -> str:
    """Why ``src`` does not fit ``dst``, naming both sides (and, for manifold values, the
    part that differs)."""
    if isinstance(src, geo.PointType) and isinstance(dst, geo.PointType):
        parts = []
        if src.manifold != dst.manifold:
            parts.append(f"manifold {manifold_text(src.manifold)} vs {manifold_text(dst.manifold)}")
        if src.dim != dst.dim:
            parts.append(f"dimension {src.dim.data} vs {dst.dim.data}")
        if src.element_type != dst.element_type:
            parts.append(f"element type {src.element_type} vs {dst.element_type}")
        why = f" ({'; '.join(parts)})" if parts else ""
        return f"manifold mismatch: {describe(src)} where {describe(dst)} is expected{why}"
    return f"type mismatch: {describe(src)} where {describe(dst)} is expected"
